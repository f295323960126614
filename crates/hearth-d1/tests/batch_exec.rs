//! batch(): one all-or-nothing transaction. exec(): raw SQL, one query per line.

mod common;

use hearth_d1::{D1Error, D1Value};

fn count(t: &common::TestDb, table: &str) -> i64 {
    t.db.prepare(format!("SELECT count(*) AS n FROM {table}"))
        .first_column("n")
        .unwrap()
        .and_then(|v| v.as_i64())
        .unwrap()
}

#[test]
fn batch_returns_one_result_per_statement_in_order() {
    let t = common::open();
    let results =
        t.db.batch(&[
            t.db.prepare("CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)"),
            t.db.prepare("INSERT INTO b (v) VALUES (?)").bind(["one"]),
            t.db.prepare("INSERT INTO b (v) VALUES (?)").bind(["two"]),
            t.db.prepare("SELECT v FROM b ORDER BY id"),
        ])
        .unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[1].meta.last_row_id, 1);
    assert_eq!(results[2].meta.last_row_id, 2);
    assert_eq!(results[2].meta.changes, 1);
    let vs: Vec<_> = results[3]
        .results
        .iter()
        .map(|r| r.get("v").cloned().unwrap())
        .collect();
    assert_eq!(
        vs,
        [D1Value::Text("one".into()), D1Value::Text("two".into())]
    );
}

#[test]
fn a_failing_statement_rolls_back_the_whole_batch() {
    let t = common::open();
    t.db.exec("CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
        .unwrap();
    t.db.prepare("INSERT INTO b (v) VALUES ('kept')")
        .run()
        .unwrap();
    let insert = t.db.prepare("INSERT INTO b (v) VALUES (?)");
    let err =
        t.db.batch(&[
            insert.bind(["a"]),
            insert.bind(["b"]),
            insert.bind(["kept"]),
            insert.bind(["c"]),
        ])
        .unwrap_err();
    match &err {
        D1Error::Batch { index, .. } => assert_eq!(*index, 2),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "D1_ERROR: UNIQUE constraint failed: b.v: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)"
    );
    assert_eq!(count(&t, "b"), 1);
    // Schema changes roll back too.
    let err =
        t.db.batch(&[
            t.db.prepare("CREATE TABLE gone (a)"),
            t.db.prepare("SELECT * FROM nope"),
        ])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "D1_ERROR: no such table: nope: SQLITE_ERROR"
    );
    assert!(t.db.prepare("SELECT * FROM gone").all().is_err());
}

#[test]
fn an_empty_batch_is_refused() {
    let t = common::open();
    assert_eq!(
        common::err_text(t.db.batch(&[])),
        "D1_ERROR: No SQL statements detected."
    );
}

#[test]
fn statements_of_another_database_are_refused_in_a_batch() {
    let a = common::open();
    let b = common::open();
    assert_eq!(
        a.db.batch(&[b.db.prepare("SELECT 1")]).unwrap_err(),
        D1Error::ForeignStatement
    );
}

#[test]
fn exec_runs_each_line_and_counts_queries() {
    let t = common::open();
    let r = t
        .db
        .exec("CREATE TABLE e (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO e (v) VALUES ('a');\n\n-- a comment\nINSERT INTO e (v) VALUES ('b'); INSERT INTO e (v) VALUES ('c');\n")
        .unwrap();
    assert_eq!(r.count, 3, "blank and comment lines are not queries");
    assert!(r.duration >= 0.0);
    assert_eq!(count(&t, "e"), 3);
}

#[test]
fn exec_keeps_a_statement_spanning_lines_whole() {
    let t = common::open();
    let r = t
        .db
        .exec("CREATE TABLE m (\n  id INTEGER PRIMARY KEY,\n  v TEXT\n);\nCREATE TRIGGER m_t AFTER INSERT ON m\nBEGIN\n  UPDATE m SET v = 'seen' WHERE id = new.id;\nEND;\nINSERT INTO m (v) VALUES ('x')")
        .unwrap();
    assert_eq!(r.count, 3);
    assert_eq!(
        t.db.prepare("SELECT v FROM m").first_column("v").unwrap(),
        Some(D1Value::Text("seen".into()))
    );
}

#[test]
fn exec_errors_name_the_line_and_roll_everything_back() {
    let t = common::open();
    let err =
        t.db.exec("CREATE TABLE x (a);\nINSERT INTO x VALUES (1);\nINSERTZ INTO x VALUES (2);")
            .unwrap_err();
    assert_eq!(
        err,
        D1Error::Exec {
            line: 3,
            sql: "INSERTZ INTO x VALUES (2);".into(),
            detail: "near \"INSERTZ\": syntax error at offset 0: SQLITE_ERROR".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "D1_EXEC_ERROR: Error in line 3: INSERTZ INTO x VALUES (2);: near \"INSERTZ\": syntax error at offset 0: SQLITE_ERROR"
    );
    assert!(
        t.db.prepare("SELECT * FROM x").all().is_err(),
        "the earlier lines were rolled back"
    );
    let err = t.db.exec("\n\n  SELECT * FROM nope").unwrap_err();
    assert_eq!(
        err.to_string(),
        "D1_EXEC_ERROR: Error in line 1: SELECT * FROM nope: no such table: nope: SQLITE_ERROR"
    );
    assert_eq!(
        common::err_text(t.db.exec(" \n-- only a comment\n")),
        "D1_ERROR: No SQL statements detected."
    );
}

#[test]
fn exec_refuses_transaction_statements() {
    let t = common::open();
    let err =
        t.db.exec("BEGIN TRANSACTION;\nCREATE TABLE y (a);\nCOMMIT;")
            .unwrap_err();
    assert!(matches!(&err, D1Error::Exec { line: 1, .. }), "{err:?}");
    assert!(err.to_string().starts_with(
        "D1_EXEC_ERROR: Error in line 1: BEGIN TRANSACTION;: To execute a transaction"
    ));
}

#[test]
fn a_batch_commits_only_once_its_results_are_delivered() {
    let t = common::open();
    t.db.exec("CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    let insert = t.db.prepare("INSERT INTO b (v) VALUES (?)");
    let batch = [insert.bind(["a"]), insert.bind(["b"])];

    // While delivering, the rows are written but not committed: another
    // connection does not see them.
    let other = hearth_d1::D1Database::open(t.db.path()).unwrap();
    let err =
        t.db.batch_delivering(&batch, |results| {
            assert_eq!(results.len(), 2);
            assert_eq!(count_on(&other), 0);
            Err::<(), _>("out of memory".to_string())
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "D1_ERROR: the batch's results could not be delivered (out of memory); the batch was rolled back and nothing was written"
    );
    assert!(matches!(err, D1Error::NotDelivered { .. }));
    assert_eq!(count(&t, "b"), 0);

    let delivered =
        t.db.batch_delivering(&batch, |results| Ok(results.len()))
            .unwrap();
    assert_eq!(delivered, 2);
    assert_eq!(count(&t, "b"), 2);
    assert_eq!(count_on(&other), 2);
}

fn count_on(db: &hearth_d1::D1Database) -> i64 {
    db.prepare("SELECT count(*) AS n FROM b")
        .first_column("n")
        .unwrap()
        .and_then(|v| v.as_i64())
        .unwrap()
}
