//! Cached statements and the read path: a repeated query must behave as if
//! it were prepared afresh, and a read must still see every commit.

mod common;

use hearth_d1::{D1Database, D1Value};

fn names(row: &hearth_d1::D1Row) -> Vec<&str> {
    row.columns().collect()
}

#[test]
fn a_cached_select_star_sees_a_column_added_by_alter_table() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a INTEGER, b TEXT);\nINSERT INTO t VALUES (1, 'x');")
        .unwrap();
    let q = t.db.prepare("SELECT * FROM t");
    assert_eq!(names(&q.first().unwrap().unwrap()), ["a", "b"]);

    t.db.prepare("ALTER TABLE t ADD COLUMN c REAL DEFAULT 2.5")
        .run()
        .unwrap();
    let row = q.first().unwrap().unwrap();
    assert_eq!(names(&row), ["a", "b", "c"]);
    assert_eq!(row.get("c"), Some(&D1Value::Real(2.5)));
    // The column names of an empty result follow the new schema too.
    let raw =
        t.db.prepare("SELECT * FROM t WHERE a = 99")
            .raw(true)
            .unwrap();
    assert_eq!(
        raw,
        vec![vec![
            D1Value::Text("a".into()),
            D1Value::Text("b".into()),
            D1Value::Text("c".into())
        ]]
    );
}

#[test]
fn a_cached_query_follows_a_table_dropped_and_recreated() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a INTEGER);\nINSERT INTO t VALUES (1);")
        .unwrap();
    let q = t.db.prepare("SELECT * FROM t");
    assert_eq!(q.raw(false).unwrap(), vec![vec![D1Value::Integer(1)]]);

    t.db.exec("DROP TABLE t;").unwrap();
    assert_eq!(
        common::err_text(q.all()),
        "D1_ERROR: no such table: t: SQLITE_ERROR"
    );
    t.db.exec("CREATE TABLE t (x TEXT, y TEXT);\nINSERT INTO t VALUES ('p', 'q');")
        .unwrap();
    let row = q.first().unwrap().unwrap();
    assert_eq!(names(&row), ["x", "y"]);
    assert_eq!(row.get("y"), Some(&D1Value::Text("q".into())));
}

#[test]
fn rows_read_does_not_add_up_across_runs_of_a_cached_statement() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a);\nINSERT INTO t VALUES (1), (2), (3), (4);")
        .unwrap();
    let q = t.db.prepare("SELECT * FROM t WHERE a > 10");
    let first = q.all().unwrap().meta.rows_read;
    assert!(first >= 3, "a full scan of four rows read {first}");
    for _ in 0..3 {
        assert_eq!(q.all().unwrap().meta.rows_read, first);
    }
}

#[test]
fn the_statement_policy_still_applies_to_a_repeated_query() {
    let t = common::open();
    for _ in 0..2 {
        assert_eq!(
            common::err_text(t.db.prepare("SELECT * FROM _cf_KV").all()),
            "D1_ERROR: access to _cf_KV.key is prohibited: SQLITE_AUTH"
        );
        assert_eq!(
            common::err_text(t.db.prepare("PRAGMA page_count").all()),
            "D1_ERROR: not authorized: SQLITE_AUTH"
        );
    }
}

#[test]
fn a_read_sees_a_commit_made_through_another_connection_and_its_bookmark() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a);").unwrap();
    let s = t.db.with_session(None).unwrap();
    let count = || {
        s.prepare("SELECT count(*) AS n FROM t")
            .first_column("n")
            .unwrap()
    };
    assert_eq!(count(), Some(D1Value::Integer(0)));
    let before = s.get_bookmark().unwrap();
    let size_of = || {
        t.db.prepare("SELECT count(*) FROM t")
            .all()
            .unwrap()
            .meta
            .size_after
    };
    let size_before = size_of();

    // A second handle on the same file has its own connection, as the CLI
    // beside a running server does.
    let other = D1Database::open(t.db.path()).unwrap();
    other
        .prepare("INSERT INTO t VALUES (?)")
        .bind(["x".repeat(50_000)])
        .run()
        .unwrap();

    assert_eq!(count(), Some(D1Value::Integer(1)));
    let after = s.get_bookmark().unwrap();
    assert!(after > before, "{before} -> {after}");
    assert_eq!(after, other.current_bookmark().unwrap());
    let size_after = size_of();
    assert!(
        size_after > size_before + 40_000,
        "{size_before} -> {size_after}"
    );
}

#[test]
fn reads_report_the_size_left_by_the_last_write() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a);").unwrap();
    let w =
        t.db.prepare("INSERT INTO t VALUES (?)")
            .bind(["y".repeat(30_000)])
            .run()
            .unwrap();
    let r = t.db.prepare("SELECT a FROM t").all().unwrap();
    assert_eq!(r.meta.size_after, w.meta.size_after);
    assert!(!r.meta.changed_db);
    assert_eq!(r.meta.last_row_id, w.meta.last_row_id);
}

#[test]
fn a_batch_of_reads_and_a_pragma_still_run_as_one_transaction() {
    let t = common::open();
    t.db.exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\nCREATE TABLE child (pid INTEGER REFERENCES parent(id));",
    )
    .unwrap();
    // `foreign_keys` cannot change inside a transaction, and every D1 call
    // is one, so turning it off on its own changes nothing.
    t.db.prepare("PRAGMA foreign_keys = OFF").run().unwrap();
    assert_eq!(
        common::err_text(t.db.prepare("INSERT INTO child VALUES (7)").run()),
        "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)"
    );
    let out =
        t.db.batch(&[
            t.db.prepare("SELECT count(*) AS n FROM parent"),
            t.db.prepare("SELECT count(*) AS n FROM child"),
        ])
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].results[0].get("n"), Some(&D1Value::Integer(0)));
}

#[test]
fn defer_foreign_keys_takes_effect_every_time_it_runs() {
    let t = common::open();
    t.db.exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\nCREATE TABLE child (pid INTEGER REFERENCES parent(id));",
    )
    .unwrap();
    // The child row comes first, so each batch needs the pragma to apply,
    // and the same pragma text runs twice.
    for id in [7, 8] {
        t.db.batch(&[
            t.db.prepare("PRAGMA defer_foreign_keys = true"),
            t.db.prepare("INSERT INTO child VALUES (?)").bind([id]),
            t.db.prepare("INSERT INTO parent VALUES (?)").bind([id]),
        ])
        .unwrap();
    }
    // Deferral ends with each transaction.
    assert_eq!(
        common::err_text(t.db.prepare("INSERT INTO child VALUES (9)").run()),
        "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)"
    );
}
