//! Each SQL text's statements are worked out once and kept, as are the
//! column names of its last run. Nothing kept may outlive a schema change:
//! a repeated text must behave as it would if seen for the first time.

mod common;

use hearth_d1::{D1Error, D1Value};

fn names(row: &hearth_d1::D1Row) -> Vec<&str> {
    row.columns().collect()
}

#[test]
fn column_names_follow_a_renamed_column_and_a_narrower_table() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a INTEGER, b TEXT, c REAL);\nINSERT INTO t VALUES (1, 'x', 0.5);")
        .unwrap();
    let q = t.db.prepare("SELECT * FROM t");
    for _ in 0..2 {
        assert_eq!(names(&q.first().unwrap().unwrap()), ["a", "b", "c"]);
    }

    // Same number of columns, another name: the kept list must not be reused.
    t.db.exec("ALTER TABLE t RENAME COLUMN b TO z").unwrap();
    let row = q.first().unwrap().unwrap();
    assert_eq!(names(&row), ["a", "z", "c"]);
    assert_eq!(row.get("z"), Some(&D1Value::Text("x".into())));
    assert_eq!(row.get("b"), None);

    t.db.exec("DROP TABLE t;\nCREATE TABLE t (a INTEGER, z TEXT);\nINSERT INTO t VALUES (2, 'y');")
        .unwrap();
    let all = q.all().unwrap();
    assert_eq!(names(&all.results[0]), ["a", "z"]);
    assert_eq!(
        q.raw(true).unwrap()[0],
        vec![D1Value::Text("a".into()), D1Value::Text("z".into())]
    );
}

#[test]
fn a_limit_rewrite_is_refused_once_its_table_is_recreated_without_rowid() {
    let t = common::open();
    let del = t.db.prepare("DELETE FROM t WHERE k > ? LIMIT 1");
    t.db.exec(
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v);\nINSERT INTO t VALUES (1, 'a'), (2, 'b');",
    )
    .unwrap();
    assert_eq!(del.bind([0]).run().unwrap().meta.changes, 1);

    t.db.exec("DROP TABLE t;\nCREATE TABLE t (k INTEGER PRIMARY KEY, v) WITHOUT ROWID;\nINSERT INTO t VALUES (1, 'a');")
        .unwrap();
    let err = del.bind([0]).run().unwrap_err();
    assert!(
        matches!(&err, D1Error::LimitWithoutRowid { table } if table == "t"),
        "{err:?}"
    );
    // Refused before anything ran: the row is still there.
    let n =
        t.db.prepare("SELECT count(*) AS n FROM t")
            .first_column("n");
    assert_eq!(n.unwrap(), Some(D1Value::Integer(1)));

    t.db.exec("DROP TABLE t;\nCREATE TABLE t (k INTEGER PRIMARY KEY, v);\nINSERT INTO t VALUES (5, 'e'), (6, 'f');")
        .unwrap();
    assert_eq!(del.bind([0]).run().unwrap().meta.changes, 1);
}

#[test]
fn a_dropped_table_fails_a_repeated_read_with_sqlites_error() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a);\nINSERT INTO t VALUES (1);")
        .unwrap();
    let q = t.db.prepare("SELECT a FROM t WHERE a = ?");
    assert_eq!(
        q.bind([1]).first_column("a").unwrap(),
        Some(D1Value::Integer(1))
    );
    t.db.exec("DROP TABLE t").unwrap();
    assert_eq!(
        common::err_text(q.bind([1]).first()),
        "D1_ERROR: no such table: t: SQLITE_ERROR"
    );
}

#[test]
fn a_read_that_becomes_a_write_after_a_schema_change_is_not_kept_as_a_read() {
    let t = common::open();
    // A view reads; a table of the same name created after the view is
    // dropped is written by the same text's INSERT, so whether a text
    // writes is asked of the prepared statement every time.
    t.db.exec("CREATE TABLE base (a);\nCREATE VIEW v AS SELECT a FROM base;")
        .unwrap();
    let read = t.db.prepare("SELECT count(*) AS n FROM v");
    assert_eq!(read.first_column("n").unwrap(), Some(D1Value::Integer(0)));
    let write = t.db.prepare("INSERT INTO v VALUES (1)");
    assert!(
        write.run().is_err(),
        "a view without a trigger is read-only"
    );
    t.db.exec("DROP VIEW v;\nCREATE TABLE v (a);").unwrap();
    let r = write.run().unwrap();
    assert_eq!(r.meta.changes, 1);
    assert!(r.meta.changed_db);
    assert_eq!(read.first_column("n").unwrap(), Some(D1Value::Integer(1)));
}

#[test]
fn a_batch_repeating_one_read_gets_each_result() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');")
        .unwrap();
    let q = t.db.prepare("SELECT v FROM t WHERE id = ?");
    let out =
        t.db.batch(&[q.bind([3]), q.bind([1]), q.bind([2]), q.bind([1])])
            .unwrap();
    let got: Vec<_> = out
        .iter()
        .map(|r| r.results[0].get("v").cloned().unwrap())
        .collect();
    assert_eq!(
        got,
        ["three", "one", "two", "one"].map(|s| D1Value::Text(s.into()))
    );
}

#[test]
fn repeated_names_collapse_in_every_row_of_every_run() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a, b);\nINSERT INTO t VALUES (1, 2), (3, 4);")
        .unwrap();
    let q = t.db.prepare("SELECT a, b, a + 10 AS a FROM t ORDER BY a");
    for _ in 0..2 {
        let rows = q.all().unwrap().results;
        let got: Vec<Vec<(&str, &D1Value)>> = rows.iter().map(|r| r.iter().collect()).collect();
        assert_eq!(
            got,
            vec![
                vec![("a", &D1Value::Integer(11)), ("b", &D1Value::Integer(2))],
                vec![("a", &D1Value::Integer(13)), ("b", &D1Value::Integer(4))],
            ]
        );
        assert_eq!(
            serde_json::to_string(&rows[0]).unwrap(),
            r#"{"a":11,"b":2}"#
        );
    }
}

#[test]
fn texts_pushed_out_of_the_cache_and_long_texts_still_run() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a);\nINSERT INTO t VALUES (7);")
        .unwrap();
    let first = t.db.prepare("SELECT a FROM t");
    assert_eq!(first.first_column("a").unwrap(), Some(D1Value::Integer(7)));
    for i in 0..300 {
        let v = t.db.prepare(format!("SELECT {i} AS x")).first_column("x");
        assert_eq!(v.unwrap(), Some(D1Value::Integer(i)));
    }
    assert_eq!(first.first_column("a").unwrap(), Some(D1Value::Integer(7)));
    // Longer than any text the cache keeps, run twice.
    let long = format!("SELECT a FROM t WHERE a <> '{}'", "z".repeat(20_000));
    for _ in 0..2 {
        assert_eq!(
            t.db.prepare(long.as_str()).first_column("a").unwrap(),
            Some(D1Value::Integer(7))
        );
    }
}

#[test]
fn column_names_follow_a_rename_made_through_another_connection() {
    let t = common::open();
    t.db.exec("CREATE TABLE t (a INTEGER, b TEXT);\nINSERT INTO t VALUES (1, 'x');")
        .unwrap();
    let q = t.db.prepare("SELECT * FROM t");
    for _ in 0..2 {
        assert_eq!(names(&q.first().unwrap().unwrap()), ["a", "b"]);
    }
    // A second handle has its own connection, as the CLI beside a running
    // server does; this handle made no write call since the names were read.
    let other = hearth_d1::D1Database::open(t.db.path()).unwrap();
    other.exec("ALTER TABLE t RENAME COLUMN b TO z").unwrap();
    let row = q.first().unwrap().unwrap();
    assert_eq!(names(&row), ["a", "z"]);
    assert_eq!(row.get("z"), Some(&D1Value::Text("x".into())));
}
