//! D1 databases shipped to PostgreSQL as Durable Objects are: two nodes
//! with directories of their own, the lease moving between them, the new
//! owner rebuilding the database (bookmarks included) and the old one
//! refused. Each test uses a schema of its own. Skipped without a
//! reachable PostgreSQL unless `HEARTH_TEST_REQUIRE_CLUSTER=1`.

use std::sync::Arc;
use std::time::Duration;

use hearth_cluster::{Owner, Pg, PgChangeLog, Placement};
use hearth_d1::{D1Database, D1Error, D1Limits, D1Value, Replication};

mod pg_support;
use pg_support::{count, run};

const NS: &str = "d1";

fn schema(test: &str) -> Option<Pg> {
    pg_support::schema("hearth_d1l", test)
}

/// Moves the lease to `to` as placement's takeover does; the new token.
fn move_lease(pg: &Pg, id: &str, to: &str) -> i64 {
    let (p, id, to) = (pg.clone(), id.to_owned(), to.to_owned());
    pg.block(async move {
        let row = p
            .client()
            .await?
            .query_one(
                "UPDATE do_leases SET node_id = $2, token = token + 1
                 WHERE namespace = 'd1' AND object_id = $1 RETURNING token",
                &[&id, &to],
            )
            .await?;
        Ok(row.get(0))
    })
    .unwrap()
}

fn open(dir: &std::path::Path, log: &Arc<PgChangeLog>, node: &str, token: i64) -> D1Database {
    D1Database::open_replicated(
        dir.join("d1/main.sqlite"),
        D1Limits::default(),
        Replication {
            log: log.clone(),
            namespace: NS.into(),
            id: "main".into(),
            node: node.into(),
            token,
        },
    )
    .unwrap()
}

fn total(db: &D1Database) -> i64 {
    db.prepare("SELECT count(*) AS c FROM t")
        .first_column("c")
        .unwrap()
        .and_then(|v| v.as_i64())
        .unwrap()
}

#[test]
fn a_new_owner_rebuilds_the_database_and_the_old_owner_is_fenced() {
    let Some(pg) = schema("fence") else { return };
    let placement = Placement::open(
        pg.clone(),
        "a",
        "127.0.0.1:1".parse().unwrap(),
        Duration::from_secs(30),
    )
    .unwrap();
    // A small snapshot threshold: the log is snapshotted along the way.
    let log = PgChangeLog::open(pg.clone(), 4096).unwrap();
    let p = placement.clone();
    let Owner::Local { token } = pg
        .block(async move { p.resolve(NS, "main").await })
        .unwrap()
    else {
        panic!("a takes the free database")
    };
    let dir_a = tempfile::tempdir().unwrap();
    let on_a = open(dir_a.path(), &log, "a", token);
    on_a.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    let insert = on_a.prepare("INSERT INTO t VALUES (?, ?)");
    for i in 0..40i64 {
        insert
            .bind([D1Value::Integer(i), D1Value::Text("v".repeat(300))])
            .run()
            .unwrap();
    }
    // A batch is one transaction, shipped as one change or not at all.
    let e = on_a
        .batch(&[
            insert.bind([D1Value::Integer(100), D1Value::Text("x".into())]),
            insert.bind([D1Value::Integer(0), D1Value::Text("dup".into())]),
        ])
        .unwrap_err();
    assert!(e.to_string().contains("UNIQUE"), "{e}");
    let bookmark = on_a.current_bookmark().unwrap();
    assert!(
        count(
            &pg,
            "SELECT count(*) FROM do_snapshots WHERE namespace = 'd1'"
        ) == 1
    );
    assert!(
        count(
            &pg,
            "SELECT count(*) FROM do_changes WHERE namespace = 'd1'"
        ) < 41,
        "snapshots dropped the changes they hold"
    );

    let dir_b = tempfile::tempdir().unwrap();
    let t2 = move_lease(&pg, "main", "b");
    let on_b = open(dir_b.path(), &log, "b", t2);
    assert_eq!(total(&on_b), 40);
    assert_eq!(
        on_b.current_bookmark().unwrap(),
        bookmark,
        "the commit number and database id travel with the database"
    );
    on_b.check_bookmark(&bookmark).unwrap();

    // The old owner still has its file open; its commit is refused by the
    // log, not acknowledged, and never reaches the new owner.
    let e = on_a
        .prepare("INSERT INTO t VALUES (500, 'stale')")
        .run()
        .unwrap_err();
    assert!(matches!(e, D1Error::Fenced { .. }), "{e}");
    assert!(on_a.is_broken());
    assert!(matches!(
        on_a.prepare("SELECT 1").all().unwrap_err(),
        D1Error::Stale
    ));
    assert_eq!(total(&on_b), 40);

    // The new owner's writes are durable and move its bookmark on; a
    // bookmark past what a copy holds is refused rather than ignored.
    on_b.prepare("INSERT INTO t VALUES (41, 'b')")
        .run()
        .unwrap();
    let newer = on_b.current_bookmark().unwrap();
    assert!(newer > bookmark);
    let dir_c = tempfile::tempdir().unwrap();
    let t3 = move_lease(&pg, "main", "c");
    let on_c = open(dir_c.path(), &log, "c", t3);
    assert_eq!(total(&on_c), 41);
    on_c.check_bookmark(&newer).unwrap();
    let ahead = format!("00000001-00000000-00000000-{}", &newer[27..]);
    assert!(matches!(
        on_c.check_bookmark(&ahead).unwrap_err(),
        D1Error::BookmarkAhead { .. }
    ));
    run(&pg, format!("DROP SCHEMA {} CASCADE", pg.schema()));
}
