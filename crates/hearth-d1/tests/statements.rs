//! Prepared statements: binding, first/all/raw/run shapes, values, meta.

mod common;

use hearth_d1::{D1Error, D1Value};

fn users() -> common::TestDb {
    let t = common::open();
    t.db.exec(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, avatar BLOB);",
    )
    .unwrap();
    t.db.batch(&[
        t.db.prepare("INSERT INTO users (name, score) VALUES (?, ?)")
            .bind(["ada".into(), D1Value::Real(9.5)]),
        t.db.prepare("INSERT INTO users (name, score) VALUES (?, ?)")
            .bind(["bob".into(), D1Value::Null]),
    ])
    .unwrap();
    t
}

#[test]
fn all_returns_rows_as_ordered_column_maps() {
    let t = users();
    let r =
        t.db.prepare("SELECT id, name, score FROM users ORDER BY id")
            .all()
            .unwrap();
    assert!(r.success);
    assert_eq!(r.results.len(), 2);
    let cols: Vec<_> = r.results[0].columns().collect();
    assert_eq!(cols, ["id", "name", "score"]);
    assert_eq!(r.results[0].get("name"), Some(&D1Value::Text("ada".into())));
    assert_eq!(r.results[0].get("score"), Some(&D1Value::Real(9.5)));
    assert_eq!(r.results[1].get("score"), Some(&D1Value::Null));
    let json = serde_json::to_string(&r.results).unwrap();
    assert_eq!(
        json,
        r#"[{"id":1,"name":"ada","score":9.5},{"id":2,"name":"bob","score":null}]"#
    );
}

#[test]
fn run_is_all_and_returns_empty_results_for_writes() {
    let t = users();
    let r = t.db.prepare("UPDATE users SET score = 1").run().unwrap();
    assert!(r.success);
    assert!(r.results.is_empty());
    assert_eq!(r.meta.changes, 2);
    let r =
        t.db.prepare("SELECT name FROM users WHERE id = 1")
            .run()
            .unwrap();
    assert_eq!(r.results.len(), 1);
}

#[test]
fn first_returns_the_first_row_or_none() {
    let t = users();
    let row =
        t.db.prepare("SELECT name FROM users ORDER BY id")
            .first()
            .unwrap()
            .unwrap();
    assert_eq!(row.get("name"), Some(&D1Value::Text("ada".into())));
    assert_eq!(
        t.db.prepare("SELECT * FROM users WHERE id = 99")
            .first()
            .unwrap(),
        None
    );
}

#[test]
fn first_column_returns_the_value_none_or_column_not_found() {
    let t = users();
    let stmt = t.db.prepare("SELECT name, score FROM users WHERE id = ?");
    assert_eq!(
        stmt.bind([1]).first_column("name").unwrap(),
        Some(D1Value::Text("ada".into()))
    );
    assert_eq!(
        stmt.bind([2]).first_column("score").unwrap(),
        Some(D1Value::Null)
    );
    assert_eq!(stmt.bind([99]).first_column("nope").unwrap(), None);
    let err = stmt.bind([1]).first_column("nope").unwrap_err();
    assert_eq!(err, D1Error::ColumnNotFound("nope".into()));
    assert_eq!(
        err.to_string(),
        "D1_COLUMN_NOTFOUND: Column not found (nope)"
    );
}

#[test]
fn raw_returns_arrays_with_optional_column_names_first() {
    let t = users();
    let stmt = t.db.prepare("SELECT id, name FROM users ORDER BY id");
    assert_eq!(
        stmt.raw(false).unwrap(),
        vec![
            vec![D1Value::Integer(1), D1Value::Text("ada".into())],
            vec![D1Value::Integer(2), D1Value::Text("bob".into())],
        ]
    );
    let with_names = stmt.raw(true).unwrap();
    assert_eq!(
        with_names[0],
        vec![D1Value::Text("id".into()), D1Value::Text("name".into())]
    );
    assert_eq!(with_names.len(), 3);
    // Column names come back even when no row does.
    let empty =
        t.db.prepare("SELECT id, name FROM users WHERE 0")
            .raw(true)
            .unwrap();
    assert_eq!(
        empty,
        vec![vec![
            D1Value::Text("id".into()),
            D1Value::Text("name".into())
        ]]
    );
    // raw keeps duplicate column names that the object form folds.
    let dup = t.db.prepare("SELECT 1 AS a, 2 AS a").raw(true).unwrap();
    assert_eq!(dup[1], vec![D1Value::Integer(1), D1Value::Integer(2)]);
    let obj =
        t.db.prepare("SELECT 1 AS a, 2 AS a")
            .first()
            .unwrap()
            .unwrap();
    assert_eq!(obj.len(), 1);
    assert_eq!(obj.get("a"), Some(&D1Value::Integer(2)));
}

#[test]
fn blobs_and_large_integers_round_trip() {
    let t = users();
    let blob: Vec<u8> = (0..=255).collect();
    t.db.prepare("UPDATE users SET avatar = ? WHERE id = 1")
        .bind([blob.clone()])
        .run()
        .unwrap();
    let got =
        t.db.prepare("SELECT avatar FROM users WHERE id = 1")
            .first_column("avatar")
            .unwrap();
    assert_eq!(got, Some(D1Value::Blob(blob)));
    for n in [i64::MAX, i64::MIN, 9_007_199_254_740_993] {
        let got =
            t.db.prepare("SELECT ? AS n")
                .bind([n])
                .first_column("n")
                .unwrap();
        assert_eq!(got, Some(D1Value::Integer(n)));
    }
    let got =
        t.db.prepare("SELECT ? AS s")
            .bind(["héllo ✓"])
            .first_column("s")
            .unwrap();
    assert_eq!(got, Some(D1Value::Text("héllo ✓".into())));
    let got =
        t.db.prepare("SELECT ? AS b")
            .bind([true])
            .first_column("b")
            .unwrap();
    assert_eq!(got, Some(D1Value::Integer(1)));
    // Blobs serialize as byte arrays, as a Worker receives them.
    assert_eq!(
        serde_json::to_string(&D1Value::Blob(vec![1, 2])).unwrap(),
        "[1,2]"
    );
}

#[test]
fn ordered_and_anonymous_parameters_bind_by_position() {
    let t = common::open();
    let row =
        t.db.prepare("SELECT ?2 AS b, ?1 AS a")
            .bind([10, 20])
            .first()
            .unwrap()
            .unwrap();
    assert_eq!(row.get("a"), Some(&D1Value::Integer(10)));
    assert_eq!(row.get("b"), Some(&D1Value::Integer(20)));
    // Named parameters are numbered by SQLite and bound by position too.
    let row =
        t.db.prepare("SELECT :x AS x, ?2 AS y")
            .bind([1, 2])
            .first()
            .unwrap()
            .unwrap();
    assert_eq!(row.get("x"), Some(&D1Value::Integer(1)));
    assert_eq!(row.get("y"), Some(&D1Value::Integer(2)));
}

#[test]
fn wrong_number_of_bindings_is_refused() {
    let t = common::open();
    let err = t.db.prepare("SELECT ?, ?").bind([1]).all().unwrap_err();
    assert_eq!(
        err,
        D1Error::WrongParameterCount {
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "D1_ERROR: Wrong number of parameter bindings for SQL query."
    );
    let err = t.db.prepare("SELECT 1").bind([1]).all().unwrap_err();
    assert_eq!(
        err.to_string(),
        "D1_ERROR: Wrong number of parameter bindings for SQL query."
    );
}

#[test]
fn several_statements_run_in_order_and_return_the_last_result() {
    let t = common::open();
    let r =
        t.db.prepare("CREATE TABLE a (x); INSERT INTO a VALUES (1); SELECT x FROM a WHERE x = ?")
            .bind([1])
            .all()
            .unwrap();
    assert_eq!(r.results.len(), 1);
    let err =
        t.db.prepare("SELECT ?; SELECT 2")
            .bind([1])
            .all()
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "D1_ERROR: When executing multiple SQL statements in a single call, only the last statement can have parameters."
    );
}

#[test]
fn empty_or_comment_only_sql_is_refused() {
    let t = common::open();
    for sql in ["", "   ", "-- nothing here", "/* */ ;"] {
        assert_eq!(
            common::err_text(t.db.prepare(sql).all()),
            "D1_ERROR: No SQL statements detected."
        );
    }
}

#[test]
fn sqlite_errors_use_d1_shape() {
    let t = users();
    assert_eq!(
        common::err_text(t.db.prepare("SELECT * FROM nope").all()),
        "D1_ERROR: no such table: nope: SQLITE_ERROR"
    );
    assert_eq!(
        common::err_text(t.db.prepare("SELEC 1").all()),
        "D1_ERROR: near \"SELEC\": syntax error at offset 0: SQLITE_ERROR"
    );
    assert_eq!(
        common::err_text(
            t.db.prepare("INSERT INTO users (id, name) VALUES (1, 'x')")
                .run()
        ),
        "D1_ERROR: UNIQUE constraint failed: users.id: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)"
    );
    assert_eq!(
        common::err_text(t.db.prepare("INSERT INTO users (name) VALUES (NULL)").run()),
        "D1_ERROR: NOT NULL constraint failed: users.name: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_NOTNULL)"
    );
}

#[test]
fn meta_reports_changes_rowid_size_and_rows() {
    let t = users();
    let r =
        t.db.prepare("INSERT INTO users (name) VALUES ('cy')")
            .run()
            .unwrap();
    let m = &r.meta;
    assert_eq!(m.changes, 1);
    assert_eq!(m.last_row_id, 3);
    assert!(m.changed_db);
    assert!(m.size_after > 0);
    assert_eq!(m.rows_written, 1);
    assert!(m.duration >= 0.0);
    assert_eq!(m.served_by, hearth_d1::SERVED_BY);
    assert!(m.served_by_primary);

    let r = t.db.prepare("SELECT * FROM users").all().unwrap();
    assert_eq!(r.meta.changes, 0);
    assert!(!r.meta.changed_db);
    assert_eq!(r.meta.rows_written, 0);
    assert_eq!(r.meta.rows_read, 3, "a full scan reads every row");
    assert_eq!(r.meta.size_after, m.size_after);

    // A scan that returns nothing still reads the rows it looked at.
    let r =
        t.db.prepare("SELECT * FROM users WHERE name = 'zed'")
            .all()
            .unwrap();
    assert!(r.results.is_empty());
    assert!(r.meta.rows_read >= 2, "rows_read = {}", r.meta.rows_read);

    let r =
        t.db.prepare("DELETE FROM users WHERE id > 1")
            .run()
            .unwrap();
    assert_eq!(r.meta.changes, 2);
    assert_eq!(r.meta.rows_written, 2);

    let json = serde_json::to_value(&r.meta).unwrap();
    for key in [
        "served_by",
        "duration",
        "changes",
        "last_row_id",
        "changed_db",
        "size_after",
        "rows_read",
        "rows_written",
        "timings",
    ] {
        assert!(json.get(key).is_some(), "meta lacks {key}");
    }
}

#[test]
fn size_after_grows_with_data() {
    let t = users();
    let before = t.db.prepare("SELECT 1").all().unwrap().meta.size_after;
    let big = "x".repeat(200_000);
    let after =
        t.db.prepare("INSERT INTO users (name) VALUES (?)")
            .bind([big])
            .run()
            .unwrap()
            .meta
            .size_after;
    assert!(after > before + 150_000, "{before} -> {after}");
}
