//! Durable Object storage shipped to PostgreSQL: two nodes with data
//! directories of their own, the lease moving between them, and the log
//! refusing the old owner, also when its append races the takeover. Each
//! test uses a schema of its own. Skipped without a reachable PostgreSQL
//! unless `HEARTH_TEST_REQUIRE_CLUSTER=1`; the snapshot-in-S3 test also
//! needs the S3 double (`s3_double`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_cluster::{Owner, Pg, PgChangeLog, Placement};
use hearth_core::{DataDir, ManualClock};
use hearth_do::{DoError, DoLimits, DurableObjectHost, FenceBook, StorageBackend};
use hearth_testkit::s3_double;

mod pg_support;
use pg_support::{count, run};

fn schema(test: &str) -> Option<Pg> {
    pg_support::schema("hearth_tl", test)
}

fn drop_schema(pg: &Pg) {
    run(pg, format!("DROP SCHEMA {} CASCADE", pg.schema()));
}

struct Node {
    book: Arc<FenceBook>,
    ns: hearth_do::DurableObjectNamespace,
    _dir: tempfile::TempDir,
}

fn node(name: &str, log: &Arc<PgChangeLog>, clock: &ManualClock) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let book = Arc::new(FenceBook::new(name));
    let ns = DurableObjectHost::open_with_secret(
        &DataDir::new(dir.path()),
        clock.shared(),
        DoLimits::default(),
        log.id_secret().unwrap(),
    )
    .unwrap()
    .with_fences(book.clone())
    .with_change_log(log.clone())
    .namespace("Counter", StorageBackend::Sqlite)
    .unwrap();
    Node {
        book,
        ns,
        _dir: dir,
    }
}

/// Moves the lease to `to` as placement's takeover does; the new token.
fn move_lease(pg: &Pg, id: &str, to: &str) -> i64 {
    let (p, id, to) = (pg.clone(), id.to_owned(), to.to_owned());
    pg.block(async move {
        let row = p
            .client()
            .await?
            .query_one(
                "UPDATE do_leases SET node_id = $2, token = token + 1 WHERE object_id = $1 RETURNING token",
                &[&id, &to],
            )
            .await?;
        Ok(row.get(0))
    })
    .unwrap()
}

#[test]
fn a_new_owner_rebuilds_the_object_from_postgres_and_the_old_one_is_fenced() {
    let Some(pg) = schema("rebuild") else { return };
    let placement = Placement::open(
        pg.clone(),
        "a",
        "127.0.0.1:1".parse().unwrap(),
        Duration::from_secs(30),
    )
    .unwrap();
    let log = PgChangeLog::open(pg.clone(), 4096).unwrap();
    assert_eq!(
        log.id_secret().unwrap(),
        log.id_secret().unwrap(),
        "one secret for the cluster"
    );
    let clock = ManualClock::new(1_700_000_000_000);
    let a = node("a", &log, &clock);
    let id = a.ns.id_from_name("counter");
    let hex = id.to_string();
    let p = placement.clone();
    let h = hex.clone();
    let Owner::Local { token } = pg
        .block(async move { p.resolve("Counter", &h).await })
        .unwrap()
    else {
        panic!("a takes the free object")
    };
    a.book.grant("Counter", &hex, token);
    let on_a = a.ns.storage(&id).unwrap();
    on_a.sql_exec("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    for i in 0..60i64 {
        on_a.sql_exec(
            "INSERT INTO t VALUES (?, ?)",
            &[i.into(), "v".repeat(200).into()],
        )
        .unwrap();
        on_a.put("n", i.to_string().as_bytes()).unwrap();
        on_a.flush().unwrap();
    }
    assert!(count(&pg, "SELECT count(*) FROM do_snapshots") == 1);
    let backlog = count(&pg, "SELECT count(*) FROM do_changes");
    assert!(
        backlog < 60,
        "snapshots dropped the changes they hold: {backlog}"
    );

    let b = node("b", &log, &clock);
    let t2 = move_lease(&pg, &hex, "b");
    b.book.grant("Counter", &hex, t2);
    let on_b = b.ns.storage(&b.ns.id_from_string(&hex).unwrap()).unwrap();
    assert_eq!(on_b.get("n").unwrap().as_deref(), Some(&b"59"[..]));
    let mut rows = on_b.sql_exec("SELECT count(*) AS c FROM t", &[]).unwrap();
    assert_eq!(
        rows.one().unwrap().get("c"),
        Some(&hearth_do::SqlValue::Integer(60))
    );

    // The alarm index moves with the changes, under the lease.
    on_b.set_alarm(1_700_000_100_000).unwrap();
    on_b.flush().unwrap();
    assert_eq!(count(&pg, "SELECT count(*) FROM do_alarms"), 1);
    assert_eq!(
        count(&pg, "SELECT max(at_ms) FROM do_alarms"),
        1_700_000_100_000
    );
    on_b.delete_alarm().unwrap();
    on_b.flush().unwrap();
    assert_eq!(count(&pg, "SELECT count(*) FROM do_alarms"), 0);

    on_a.put("n", b"stale").unwrap();
    on_a.set_alarm(1_700_000_200_000).unwrap();
    let e = on_a.flush().unwrap_err();
    assert!(matches!(e, DoError::FencedInLog { .. }), "{e}");
    assert_eq!(on_b.get("n").unwrap().as_deref(), Some(&b"59"[..]));
    assert_eq!(
        count(&pg, "SELECT count(*) FROM do_alarms"),
        0,
        "a fenced commit records no alarm"
    );
    drop_schema(&pg);
}

#[test]
fn an_append_racing_a_takeover_waits_for_it_and_is_refused() {
    let Some(pg) = schema("race") else { return };
    let placement = Placement::open(
        pg.clone(),
        "a",
        "127.0.0.1:1".parse().unwrap(),
        Duration::from_secs(30),
    )
    .unwrap();
    let log = PgChangeLog::open(pg.clone(), 1 << 20).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let a = node("a", &log, &clock);
    let id = a.ns.id_from_name("counter");
    let hex = id.to_string();
    let (p, h) = (placement.clone(), hex.clone());
    let Owner::Local { token } = pg
        .block(async move { p.resolve("Counter", &h).await })
        .unwrap()
    else {
        panic!("a takes the free object")
    };
    a.book.grant("Counter", &hex, token);
    let on_a = Arc::new(a.ns.storage(&id).unwrap());
    on_a.put("n", b"1").unwrap();
    on_a.flush().unwrap();

    // A takeover in flight: the lease row is updated, not yet committed.
    let (tx_go, rx_go) = std::sync::mpsc::channel::<()>();
    let (tx_pid, rx_pid) = std::sync::mpsc::channel::<i32>();
    let (p, h) = (pg.clone(), hex.clone());
    let takeover = std::thread::spawn(move || {
        p.block({
            let p = p.clone();
            async move {
                let mut c = p.open().await?;
                let tx = c.transaction().await?;
                tx.execute(
                    "UPDATE do_leases SET node_id = 'b', token = token + 1 WHERE object_id = $1",
                    &[&h],
                )
                .await?;
                let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
                let _ = tx_pid.send(pid);
                // Hold the row until the append is seen waiting for it.
                tokio::task::spawn_blocking(move || rx_go.recv()).await.ok();
                tx.commit().await?;
                Ok(())
            }
        })
        .unwrap()
    });
    let takeover_pid = rx_pid.recv().unwrap();
    let writer = {
        let on_a = on_a.clone();
        std::thread::spawn(move || {
            on_a.put("n", b"2").unwrap();
            on_a.flush()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    // On a connection of its own: the node's shared one is queued behind
    // the waiting append.
    let blocked = || -> i64 {
        let p = pg.clone();
        pg.block(async move {
            Ok(p.open()
                .await?
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                    &[&takeover_pid],
                )
                .await?
                .get(0))
        })
        .unwrap()
    };
    while blocked() == 0 {
        assert!(
            Instant::now() < deadline,
            "the append never waited for the takeover"
        );
        std::thread::yield_now();
    }
    tx_go.send(()).unwrap();
    takeover.join().unwrap();
    let e = writer.join().unwrap().unwrap_err();
    assert!(matches!(e, DoError::FencedInLog { .. }), "{e}");
    assert_eq!(
        count(&pg, "SELECT count(*) FROM do_changes"),
        1,
        "the first write only: none after the takeover"
    );
    drop_schema(&pg);
}

/// With an S3 store, snapshots are objects in it (none in PostgreSQL), a
/// new owner restores from snapshot (S3) + changes (PostgreSQL), older
/// snapshots' objects are dropped, and a snapshot whose objects are gone
/// fails the open loudly rather than serving a partial object.
#[test]
fn a_new_owner_restores_snapshot_from_s3_and_changes_from_postgres() {
    let Some(pg) = schema("s3snap") else { return };
    let Some(config) = s3_double::config(&format!("{}/", pg.schema())) else {
        drop_schema(&pg);
        return;
    };
    let store = hearth_r2::S3Store::connect(&config).unwrap();
    let placement = Placement::open(
        pg.clone(),
        "a",
        "127.0.0.1:1".parse().unwrap(),
        Duration::from_secs(30),
    )
    .unwrap();
    let log = PgChangeLog::open_with_store(pg.clone(), 4096, store.clone()).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let a = node("a", &log, &clock);
    let id = a.ns.id_from_name("counter");
    let hex = id.to_string();
    let (p, h) = (placement.clone(), hex.clone());
    let Owner::Local { token } = pg
        .block(async move { p.resolve("Counter", &h).await })
        .unwrap()
    else {
        panic!("a takes the free object")
    };
    a.book.grant("Counter", &hex, token);
    let on_a = a.ns.storage(&id).unwrap();
    on_a.sql_exec("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    for i in 0..60i64 {
        on_a.sql_exec(
            "INSERT INTO t VALUES (?, ?)",
            &[i.into(), "v".repeat(200).into()],
        )
        .unwrap();
        on_a.put("n", i.to_string().as_bytes()).unwrap();
        on_a.flush().unwrap();
    }
    // Leave changes after the snapshot, so the new owner needs both.
    let mut extra = 0;
    while count(&pg, "SELECT count(*) FROM do_changes") == 0 {
        extra += 1;
        assert!(extra < 5, "every commit was followed by a snapshot");
        on_a.put("extra", extra.to_string().as_bytes()).unwrap();
        on_a.flush().unwrap();
    }
    assert_eq!(count(&pg, "SELECT count(*) FROM do_snapshots"), 1);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM do_snapshot_chunks"),
        0,
        "no snapshot bytes in PostgreSQL"
    );
    let seq = count(&pg, "SELECT seq FROM do_snapshots");
    let chunks = count(&pg, "SELECT chunks::bigint FROM do_snapshots");
    let dir = format!("do-snapshots/Counter/{hex}/");
    let mut objects = store.list_blobs(&dir, 1000).unwrap();
    objects.sort();
    let mut want: Vec<String> = (0..chunks).map(|c| format!("{dir}{seq}/{c}")).collect();
    want.sort();
    assert_eq!(
        objects, want,
        "the current snapshot's objects, and no older ones"
    );
    let backlog = count(&pg, "SELECT count(*) FROM do_changes");
    assert!(
        backlog < 60,
        "the snapshot dropped the changes it holds: {backlog}"
    );

    let b = node("b", &log, &clock);
    let t2 = move_lease(&pg, &hex, "b");
    b.book.grant("Counter", &hex, t2);
    let on_b = b.ns.storage(&b.ns.id_from_string(&hex).unwrap()).unwrap();
    assert_eq!(on_b.get("n").unwrap().as_deref(), Some(&b"59"[..]));
    let want_extra = extra.to_string();
    assert_eq!(
        on_b.get("extra").unwrap().as_deref(),
        (extra > 0).then_some(want_extra.as_bytes())
    );
    let mut rows = on_b.sql_exec("SELECT count(*) AS c FROM t", &[]).unwrap();
    assert_eq!(
        rows.one().unwrap().get("c"),
        Some(&hearth_do::SqlValue::Integer(60))
    );

    // Without the snapshot's objects a new owner cannot rebuild: it
    // refuses to open the object instead of serving what the log alone has.
    store.delete_blobs(&want).unwrap();
    let c = node("c", &log, &clock);
    let t3 = move_lease(&pg, &hex, "c");
    c.book.grant("Counter", &hex, t3);
    let read =
        c.ns.storage(&c.ns.id_from_string(&hex).unwrap())
            .and_then(|st| st.get("n").map(|_| ()));
    let e = read.expect_err("served without its snapshot");
    assert!(e.to_string().contains("missing chunk"), "{e}");
    drop_schema(&pg);
}
