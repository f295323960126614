//! The SQL API of SQLite-backed objects: cursor behaviour and refusals.

mod common;

use common::*;
use hearth_core::ManualClock;
use hearth_do::{DurableObjectStorage, SqlValue};

fn object(dir: &std::path::Path) -> DurableObjectStorage {
    let ns = sqlite_ns(dir, &ManualClock::new(T0));
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    s.sql_exec(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)",
        &[],
    )
    .unwrap();
    s
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

#[test]
fn rows_iterate_with_column_names_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let c = s
        .sql_exec(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            &[1.into(), "ann".into(), 1.5.into(), vec![1u8, 2].into()],
        )
        .unwrap();
    assert_eq!(c.rows_written(), 1);
    assert!(c.column_names().is_empty());
    s.sql_exec("INSERT INTO t (id, name) VALUES (2, 'bob')", &[])
        .unwrap();
    let mut c = s.sql_exec("SELECT * FROM t ORDER BY id", &[]).unwrap();
    assert_eq!(c.column_names(), ["id", "name", "score", "data"]);
    let first = c.next().unwrap();
    assert_eq!(first.get("id"), Some(&SqlValue::Integer(1)));
    assert_eq!(first.get("name"), Some(&text("ann")));
    assert_eq!(first.get("score"), Some(&SqlValue::Real(1.5)));
    assert_eq!(first.get("data"), Some(&SqlValue::Blob(vec![1, 2])));
    let rest = c.to_array();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].get("score"), Some(&SqlValue::Null));
    // A consumed cursor yields nothing more.
    assert!(c.next().is_none());
    assert!(c.to_array().is_empty());
}

#[test]
fn raw_gives_value_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    s.sql_exec("INSERT INTO t (id, name) VALUES (1, 'a'), (2, 'b')", &[])
        .unwrap();
    let mut c = s
        .sql_exec("SELECT id, name FROM t ORDER BY id", &[])
        .unwrap();
    let raw: Vec<Vec<SqlValue>> = c.raw().collect();
    assert_eq!(
        raw,
        vec![
            vec![SqlValue::Integer(1), text("a")],
            vec![SqlValue::Integer(2), text("b")]
        ]
    );
}

#[test]
fn duplicate_column_names_keep_the_last_in_row_objects() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let mut c = s.sql_exec("SELECT 1 AS x, 2 AS x", &[]).unwrap();
    assert_eq!(c.column_names(), ["x", "x"]);
    let row = c.one().unwrap();
    assert_eq!(row.get("x"), Some(&SqlValue::Integer(2)));
    assert_eq!(row.values(), [SqlValue::Integer(1), SqlValue::Integer(2)]);
}

#[test]
fn one_requires_exactly_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    assert_eq!(
        err(s.sql_exec("SELECT * FROM t", &[]).unwrap().one()),
        "Expected exactly one result from SQL query, but got no results."
    );
    s.sql_exec("INSERT INTO t (id) VALUES (1), (2)", &[])
        .unwrap();
    let mut c = s.sql_exec("SELECT id FROM t ORDER BY id", &[]).unwrap();
    assert_eq!(
        err(c.one()),
        "Expected exactly one result from SQL query, but got multiple results."
    );
    assert!(c.next().is_none());
    let row = s
        .sql_exec("SELECT count(*) AS n FROM t", &[])
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(row.get("n"), Some(&SqlValue::Integer(2)));
}

#[test]
fn several_statements_run_in_order_and_the_last_ones_rows_return() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    // A later statement may use what an earlier one created.
    let mut c = s
        .sql_exec(
            "CREATE TABLE u (x); INSERT INTO u VALUES (5); SELECT x FROM u",
            &[],
        )
        .unwrap();
    assert_eq!(c.one().unwrap().get("x"), Some(&SqlValue::Integer(5)));
    let mut c = s
        .sql_exec(
            "INSERT INTO t (id) VALUES (1);
             INSERT INTO t (id) VALUES (2);
             SELECT id FROM t WHERE id > ? ORDER BY id;",
            &[0.into()],
        )
        .unwrap();
    assert_eq!(c.column_names(), ["id"]);
    assert_eq!(c.to_array().len(), 2);
    assert_eq!(c.rows_written(), 2);
    assert_eq!(
        err(s.sql_exec("SELECT ?; SELECT 1", &[1.into()])),
        "When executing multiple SQL statements in a single call, only the last statement can have parameters."
    );
}

#[test]
fn bindings_must_match_the_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let msg = "Wrong number of parameter bindings for SQL query.";
    assert_eq!(err(s.sql_exec("SELECT ?, ?", &[1.into()])), msg);
    assert_eq!(err(s.sql_exec("SELECT 1", &[1.into()])), msg);
    assert_eq!(
        err(s.sql_exec("  ", &[])),
        "SQL code did not contain a statement."
    );
}

#[test]
fn counters_report_rows_read_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let c = s
        .sql_exec("INSERT INTO t (id) VALUES (1), (2), (3)", &[])
        .unwrap();
    assert_eq!(c.rows_written(), 3);
    // Inserting literal values reads no rows.
    assert_eq!(c.rows_read(), 0);
    let c = s.sql_exec("SELECT * FROM t", &[]).unwrap();
    assert_eq!(c.rows_written(), 0);
    assert_eq!(c.rows_read(), 3);
    let c = s
        .sql_exec("UPDATE t SET name = 'x' WHERE id >= 2", &[])
        .unwrap();
    assert_eq!(c.rows_written(), 2);
    assert!(c.rows_read() >= 2);
    let c = s.sql_exec("DELETE FROM t WHERE id = 1", &[]).unwrap();
    assert_eq!(c.rows_written(), 1);
    assert!(c.rows_read() >= 1);
}

#[test]
fn transaction_statements_are_refused_with_cloudflares_message() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let msg = "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";
    for q in [
        "BEGIN TRANSACTION",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT sp",
        "RELEASE sp",
        "INSERT INTO t (id) VALUES (9); BEGIN",
    ] {
        assert_eq!(err(s.sql_exec(q, &[])), msg, "{q}");
    }
    // The refusal left storage working.
    s.sql_exec("INSERT INTO t (id) VALUES (1)", &[]).unwrap();
}

#[test]
fn reserved_cf_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    s.put("secret", b"v").unwrap();
    // SQLite's own wording for a denied column read, and for other actions.
    assert_eq!(
        err(s.sql_exec("SELECT * FROM _cf_KV", &[])),
        "access to _cf_KV.key is prohibited: SQLITE_AUTH"
    );
    assert_eq!(
        err(s.sql_exec("select value from _CF_kv", &[])),
        "access to _cf_KV.value is prohibited: SQLITE_AUTH"
    );
    for q in [
        "DELETE FROM _cf_KV",
        "INSERT INTO _cf_METADATA VALUES ('alarm', 1)",
        "DROP TABLE _cf_KV",
        "CREATE TABLE _cf_mine (x)",
        "CREATE INDEX _cf_i ON t (name)",
        "ALTER TABLE t RENAME TO _cf_t",
    ] {
        assert_eq!(
            err(s.sql_exec(q, &[])),
            "not authorized: SQLITE_AUTH",
            "{q}"
        );
    }
    assert_eq!(s.get("secret").unwrap(), Some(b"v".to_vec()));
    // The table is visible in the schema, as on Cloudflare, but not readable.
    let names: Vec<SqlValue> = s
        .sql_exec(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            &[],
        )
        .unwrap()
        .raw()
        .map(|mut r| r.remove(0))
        .collect();
    assert!(names.contains(&text("_cf_KV")));
}

#[test]
fn durability_settings_cannot_be_changed_from_sql() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    for q in [
        "PRAGMA synchronous = OFF",
        "PRAGMA journal_mode = DELETE",
        "ATTACH DATABASE 'x.db' AS x",
    ] {
        assert!(err(s.sql_exec(q, &[])).ends_with(": SQLITE_AUTH"), "{q}");
    }
    // Introspection is allowed.
    let cols = s.sql_exec("PRAGMA table_info(t)", &[]).unwrap().to_array();
    assert_eq!(cols.len(), 4);
}

#[test]
fn sqlite_errors_use_cloudflares_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    assert_eq!(
        err(s.sql_exec("SELECT * FROM nope", &[])),
        "no such table: nope: SQLITE_ERROR"
    );
    s.sql_exec("INSERT INTO t (id) VALUES (1)", &[]).unwrap();
    assert_eq!(
        err(s.sql_exec("INSERT INTO t (id) VALUES (1)", &[])),
        "UNIQUE constraint failed: t.id: SQLITE_CONSTRAINT"
    );
    assert!(err(s.sql_exec("SELEC 1", &[])).contains("syntax error"));
}

#[test]
fn sql_limits() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    // Row / string / BLOB size: 2 MB.
    s.sql_exec(
        "INSERT INTO t (id, data) VALUES (1, ?)",
        &[vec![0u8; 2 * 1024 * 1024 - 100].into()],
    )
    .unwrap();
    assert_eq!(
        err(s.sql_exec(
            "INSERT INTO t (id, data) VALUES (2, ?)",
            &[vec![0u8; 2 * 1024 * 1024 + 1].into()]
        )),
        "string or blob too big: SQLITE_TOOBIG"
    );
    // Bound parameters: 100.
    let q = format!("SELECT {}", vec!["?"; 101].join(","));
    let binds: Vec<SqlValue> = (0..101).map(SqlValue::Integer).collect();
    assert!(err(s.sql_exec(&q, &binds)).contains("too many SQL variables"));
    // Columns: 100.
    let cols: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    assert!(
        err(s.sql_exec(&format!("CREATE TABLE wide ({})", cols.join(",")), &[]))
            .contains("too many columns")
    );
    // Statement length: 100 KB.
    let long = format!("SELECT '{}'", "x".repeat(100_000));
    assert_eq!(
        err(s.sql_exec(&long, &[])),
        "statement too long: SQLITE_TOOBIG"
    );
}

#[test]
fn database_size_grows_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let before = s.database_size().unwrap();
    assert!(before > 0);
    s.sql_exec(
        "INSERT INTO t (id, data) VALUES (1, ?)",
        &[vec![7u8; 100_000].into()],
    )
    .unwrap();
    assert!(s.database_size().unwrap() >= before + 90_000);
}

#[test]
fn key_value_backed_objects_have_no_sql_api() {
    let dir = tempfile::tempdir().unwrap();
    let ns = kv_ns(dir.path(), &ManualClock::new(T0));
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    assert_eq!(
        err(s.sql_exec("SELECT 1", &[])),
        "SQL is not enabled for this Durable Object class. To enable it, change `new_classes` to `new_sqlite_classes` within the 'migrations' field in your wrangler.jsonc or wrangler.toml file. If using workerd directly,set `enableSql = true` in your workerd config for the class. Note that this change cannot be made after the class is already deployed to production."
    );
}
