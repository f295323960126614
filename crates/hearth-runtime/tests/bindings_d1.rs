//! `env.DB` as a worker sees it: statements, binding rules, result shapes,
//! batch, exec, sessions and errors, checked through a JSON transcript.

mod bindings_common;

use std::sync::Arc;

use bindings_common::{cause, err, ok};
use hearth_d1::{D1Database, D1Value};
use hearth_runtime::BindingAdapter;
use hearth_runtime::bindings::D1Adapter;
use serde_json::{Value, json};

/// Runs `body` against a fresh database bound as `DB`.
fn transcript(body: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let db = D1Database::open(dir.path().join("db.sqlite")).unwrap();
    let body = format!("    const DB = env.DB;\n{body}");
    bindings_common::transcript(
        dir.path(),
        vec![Arc::new(D1Adapter::new("DB", Arc::new(db)))],
        &body,
    )
}

#[test]
fn adapter_reports_kind_and_backend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let adapter = D1Adapter::new("DB", Arc::new(D1Database::open(&path).unwrap()));
    assert_eq!(adapter.name(), "DB");
    assert_eq!(adapter.kind(), "d1");
    assert_eq!(adapter.backend(), format!("sqlite:{}", path.display()));
}

#[test]
fn statements_return_d1_shapes() {
    let t = transcript(
        r#"
    await DB.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)");
    await attempt(out, "run", async () => {
      const r = await DB.prepare("INSERT INTO t (name, score) VALUES (?, ?)").bind("ann", 1.5).run();
      return { success: r.success, results: r.results, changes: r.meta.changes, last_row_id: r.meta.last_row_id,
               changed_db: r.meta.changed_db, metaKeys: Object.keys(r.meta).sort() };
    });
    await DB.prepare("INSERT INTO t (name, score) VALUES (?1, ?2)").bind("bob", 2).run();
    await attempt(out, "all", async () => {
      const r = await DB.prepare("SELECT id, name, score FROM t ORDER BY id").all();
      return { success: r.success, results: r.results };
    });
    await attempt(out, "first", () => DB.prepare("SELECT name, score FROM t ORDER BY id").first());
    await attempt(out, "firstColumn", () => DB.prepare("SELECT name FROM t WHERE id = ?").bind(2).first("name"));
    await attempt(out, "firstNone", () => DB.prepare("SELECT name FROM t WHERE id = 99").first());
    await attempt(out, "firstColumnNone", () => DB.prepare("SELECT name FROM t WHERE id = 99").first("name"));
    await attempt(out, "firstMissingColumn", () => DB.prepare("SELECT name FROM t").first("nope"));
    await attempt(out, "raw", () => DB.prepare("SELECT id, name FROM t ORDER BY id").raw());
    await attempt(out, "rawNames", () => DB.prepare("SELECT id, name FROM t ORDER BY id").raw({ columnNames: true }));
    await attempt(out, "rawNamesEmpty", () => DB.prepare("SELECT id, name FROM t WHERE 0").raw({ columnNames: true }));
    await attempt(out, "statementProps", () => {
      const s = DB.prepare("SELECT ?").bind(1, "a");
      return [s.statement, s.params];
    });
    await attempt(out, "rebind", async () => {
      const s = DB.prepare("SELECT ? AS v");
      return [await s.bind(1).first("v"), await s.bind(2).first("v"), await s.bind(3).first("v")];
    });
    await attempt(out, "isPromise", () => { const p = DB.prepare("SELECT 1").all(); return p instanceof Promise; });
"#,
    );
    let run = ok(&t, "run");
    assert_eq!(run["success"], true);
    assert_eq!(run["results"], json!([]));
    assert_eq!(run["changes"], 1);
    assert_eq!(run["last_row_id"], 1);
    assert_eq!(run["changed_db"], true);
    assert_eq!(
        run["metaKeys"],
        json!([
            "changed_db",
            "changes",
            "duration",
            "last_row_id",
            "rows_read",
            "rows_written",
            "served_by",
            "served_by_primary",
            "size_after",
            "timings"
        ])
    );
    assert_eq!(
        ok(&t, "all"),
        json!({"success": true, "results": [
            {"id": 1, "name": "ann", "score": 1.5},
            {"id": 2, "name": "bob", "score": 2}
        ]})
    );
    assert_eq!(ok(&t, "first"), json!({"name": "ann", "score": 1.5}));
    assert_eq!(ok(&t, "firstColumn"), "bob");
    assert_eq!(ok(&t, "firstNone"), Value::Null);
    assert_eq!(ok(&t, "firstColumnNone"), Value::Null);
    assert_eq!(
        err(&t, "firstMissingColumn"),
        (
            "Error".into(),
            "D1_COLUMN_NOTFOUND: Column not found (nope)".into()
        )
    );
    assert_eq!(
        cause(&t, "firstMissingColumn").as_deref(),
        Some("Column not found")
    );
    assert_eq!(ok(&t, "raw"), json!([[1, "ann"], [2, "bob"]]));
    assert_eq!(
        ok(&t, "rawNames"),
        json!([["id", "name"], [1, "ann"], [2, "bob"]])
    );
    assert_eq!(ok(&t, "rawNamesEmpty"), json!([["id", "name"]]));
    assert_eq!(ok(&t, "statementProps"), json!(["SELECT ?", [1, "a"]]));
    assert_eq!(ok(&t, "rebind"), json!([1, 2, 3]));
    assert_eq!(ok(&t, "isPromise"), true);
}

#[test]
fn bound_values_follow_d1_type_rules() {
    let t = transcript(
        r#"
    const types = (v) => DB.prepare("SELECT typeof(?1) AS t, ?1 AS v").bind(v).first();
    await attempt(out, "int", () => types(42));
    await attempt(out, "intFromFloat", () => types(7.0));
    await attempt(out, "real", () => types(2.5));
    await attempt(out, "negZero", () => types(-0));
    await attempt(out, "nan", () => types(NaN));
    await attempt(out, "huge", () => types(1e300));
    await attempt(out, "text", () => types("x"));
    await attempt(out, "null", () => types(null));
    await attempt(out, "true", () => types(true));
    await attempt(out, "false", () => types(false));
    await attempt(out, "arrayBuffer", () => types(new Uint8Array([1, 2, 255]).buffer));
    await attempt(out, "uint8", () => types(new Uint8Array([3, 4])));
    await attempt(out, "byteArray", () => types([5, 6]));
    await attempt(out, "undefined", () => types(undefined));
    await attempt(out, "object", () => types({ a: 1 }));
    await attempt(out, "bigint", () => types(10n));
    await attempt(out, "badArray", () => types([1, 300]));
    await attempt(out, "bindThrowsSync", () => {
      try { DB.prepare("SELECT ?").bind(undefined); return "no throw"; } catch (e) { return "threw " + e.message; }
    });
    // Integers past 2^53 come back as JS numbers, as through D1's JSON.
    await attempt(out, "bigInteger", async () => {
      const v = await DB.prepare("SELECT 9007199254740993 AS v").first("v");
      return [typeof v, v === 9007199254740992];
    });
    await attempt(out, "maxInt", () => DB.prepare("SELECT 9223372036854775807 AS v").first("v"));
"#,
    );
    let tv = |label: &str| ok(&t, label);
    assert_eq!(tv("int"), json!({"t": "integer", "v": 42}));
    assert_eq!(tv("intFromFloat"), json!({"t": "integer", "v": 7}));
    assert_eq!(tv("real"), json!({"t": "real", "v": 2.5}));
    assert_eq!(tv("negZero"), json!({"t": "integer", "v": 0}));
    assert_eq!(tv("nan"), json!({"t": "null", "v": null}));
    assert_eq!(tv("huge"), json!({"t": "real", "v": 1e300}));
    assert_eq!(tv("text"), json!({"t": "text", "v": "x"}));
    assert_eq!(tv("null"), json!({"t": "null", "v": null}));
    assert_eq!(tv("true"), json!({"t": "integer", "v": 1}));
    assert_eq!(tv("false"), json!({"t": "integer", "v": 0}));
    // BLOBs come back as arrays of byte values.
    assert_eq!(tv("arrayBuffer"), json!({"t": "blob", "v": [1, 2, 255]}));
    assert_eq!(tv("uint8"), json!({"t": "blob", "v": [3, 4]}));
    assert_eq!(tv("byteArray"), json!({"t": "blob", "v": [5, 6]}));
    assert_eq!(
        err(&t, "undefined"),
        (
            "Error".into(),
            "D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'".into()
        )
    );
    assert_eq!(
        cause(&t, "undefined").as_deref(),
        Some("Type 'undefined' not supported for value 'undefined'")
    );
    assert_eq!(
        err(&t, "object").1,
        "D1_TYPE_ERROR: Type 'object' not supported for value '[object Object]'"
    );
    assert_eq!(
        err(&t, "bigint").1,
        "D1_TYPE_ERROR: Type 'bigint' not supported for value '10'"
    );
    assert_eq!(
        err(&t, "badArray").1,
        "D1_TYPE_ERROR: Type 'object' not supported for value '1,300'"
    );
    assert_eq!(
        ok(&t, "bindThrowsSync"),
        "threw D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'"
    );
    assert_eq!(ok(&t, "bigInteger"), json!(["number", true]));
    assert_eq!(ok(&t, "maxInt").as_f64(), Some(9_223_372_036_854_775_807.0));
}

#[test]
fn errors_carry_d1_messages_and_causes() {
    let t = transcript(
        r#"
    await attempt(out, "noTable", () => DB.prepare("SELECT * FROM nope").all());
    await attempt(out, "syntax", () => DB.prepare("SELEC 1").run());
    await attempt(out, "empty", () => DB.prepare("  ").all());
    await attempt(out, "params", () => DB.prepare("SELECT ?, ?").bind(1).all());
    await attempt(out, "begin", () => DB.prepare("BEGIN TRANSACTION").run());
    await attempt(out, "tooManyParams", () => DB.prepare("SELECT " + Array(101).fill("?").join(",")).bind(...Array(101).fill(1)).all());
    await attempt(out, "rejects", () => { const p = DB.prepare("SELECT * FROM nope").all(); p.catch(() => {}); return p instanceof Promise; });
    await DB.exec("CREATE TABLE u (v UNIQUE)");
    await DB.prepare("INSERT INTO u VALUES (1)").run();
    await attempt(out, "unique", () => DB.prepare("INSERT INTO u VALUES (1)").run());
"#,
    );
    assert_eq!(
        err(&t, "noTable"),
        (
            "Error".into(),
            "D1_ERROR: no such table: nope: SQLITE_ERROR".into()
        )
    );
    assert_eq!(
        cause(&t, "noTable").as_deref(),
        Some("no such table: nope: SQLITE_ERROR")
    );
    assert!(
        err(&t, "syntax")
            .1
            .starts_with("D1_ERROR: near \"SELEC\": syntax error")
    );
    assert_eq!(err(&t, "empty").1, "D1_ERROR: No SQL statements detected.");
    assert_eq!(
        err(&t, "params").1,
        "D1_ERROR: Wrong number of parameter bindings for SQL query."
    );
    assert!(err(&t, "begin").1.starts_with(
        "D1_ERROR: To execute a transaction, please use the state.storage.transaction()"
    ));
    assert_eq!(
        err(&t, "tooManyParams").1,
        "D1_ERROR: too many SQL variables: SQLITE_ERROR (101 bound parameters; the limit is 100 per query)"
    );
    assert_eq!(ok(&t, "rejects"), true);
    assert_eq!(
        err(&t, "unique").1,
        "D1_ERROR: UNIQUE constraint failed: u.v: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)"
    );
}

#[test]
fn batch_is_all_or_nothing_and_exec_counts_queries() {
    let t = transcript(
        r#"
    await attempt(out, "exec", () => DB.exec("CREATE TABLE b (v INTEGER);\nINSERT INTO b VALUES (1);\nINSERT INTO b VALUES (2);"));
    await attempt(out, "execError", () => DB.exec("INSERT INTO b VALUES (3);\nINSERTZ INTO b VALUES (4);"));
    await attempt(out, "afterExecError", () => DB.prepare("SELECT count(*) AS n FROM b").first("n"));
    const ins = DB.prepare("INSERT INTO b VALUES (?)");
    await attempt(out, "batch", async () => {
      const rs = await DB.batch([ins.bind(10), ins.bind(11), DB.prepare("SELECT v FROM b ORDER BY v")]);
      return rs.map((r) => [r.success, r.results, r.meta.changes]);
    });
    await attempt(out, "batchFails", () => DB.batch([ins.bind(20), DB.prepare("SELECT * FROM nope")]));
    await attempt(out, "afterBatchFail", () => DB.prepare("SELECT count(*) AS n FROM b WHERE v = 20").first("n"));
    await attempt(out, "batchEmpty", () => DB.batch([]));
    await attempt(out, "batchNotStatements", () => DB.batch(["SELECT 1"]));
"#,
    );
    let exec = ok(&t, "exec");
    assert_eq!(exec["count"], 3);
    assert!(exec["duration"].is_number());
    let (class, message) = err(&t, "execError");
    assert_eq!(class, "Error");
    assert!(
        message.starts_with(
            "D1_EXEC_ERROR: Error in line 2: INSERTZ INTO b VALUES (4);: near \"INSERTZ\": syntax error"
        ),
        "{message}"
    );
    assert!(
        cause(&t, "execError")
            .unwrap()
            .starts_with("Error in line 2: INSERTZ INTO b VALUES (4);")
    );
    // exec is one transaction: line 1 was rolled back with line 2.
    assert_eq!(ok(&t, "afterExecError"), 2);
    assert_eq!(
        ok(&t, "batch"),
        json!([
            [true, [], 1],
            [true, [], 1],
            [true, [{"v": 1}, {"v": 2}, {"v": 10}, {"v": 11}], 0]
        ])
    );
    assert_eq!(
        err(&t, "batchFails").1,
        "D1_ERROR: no such table: nope: SQLITE_ERROR"
    );
    assert_eq!(ok(&t, "afterBatchFail"), 0);
    assert_eq!(
        err(&t, "batchEmpty").1,
        "D1_ERROR: No SQL statements detected."
    );
    assert_eq!(err(&t, "batchNotStatements").0, "TypeError");
}

#[test]
fn sessions_hand_out_bookmarks() {
    let t = transcript(
        r#"
    await attempt(out, "primaryNull", () => DB.withSession("first-primary").getBookmark() === null);
    await attempt(out, "defaultNull", () => DB.withSession().getBookmark() === null);
    await attempt(out, "afterQuery", async () => {
      const s = DB.withSession("first-unconstrained");
      await s.prepare("CREATE TABLE s (a)").run();
      const b1 = s.getBookmark();
      await s.batch([s.prepare("INSERT INTO s VALUES (?)").bind(1)]);
      const b2 = s.getBookmark();
      const again = DB.withSession(b2);
      return [typeof b1, b1 < b2, again.getBookmark() === b2,
              await again.prepare("SELECT a FROM s").first("a")];
    });
    await attempt(out, "garbage", () => DB.withSession("latest"));
    await attempt(out, "garbageSync", () => {
      try { DB.withSession("latest"); return "no throw"; } catch (e) { return "threw"; }
    });
"#,
    );
    assert_eq!(ok(&t, "primaryNull"), true);
    assert_eq!(ok(&t, "defaultNull"), true);
    assert_eq!(ok(&t, "afterQuery"), json!(["string", true, true, 1]));
    assert_eq!(
        err(&t, "garbage"),
        (
            "Error".into(),
            "D1_SESSION_ERROR: invalid bookmark or constraint".into()
        )
    );
    assert_eq!(ok(&t, "garbageSync"), "threw");
}

/// Runs a worker that inserts `rows` rows in one `batch()` under a heap of
/// `memory_bytes`, and returns what the worker reported with the number of
/// rows the database then holds.
fn big_batch(rows: usize, memory_bytes: usize) -> (Value, i64) {
    use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest};

    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(D1Database::open(dir.path().join("db.sqlite")).unwrap());
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    std::fs::write(
        dir.path().join("index.js"),
        format!(
            r#"
export default {{
  async fetch(request, env) {{
    const insert = env.DB.prepare("INSERT INTO t (v) VALUES (?)");
    const statements = [];
    for (let i = 0; i < {rows}; i++) statements.push(insert.bind("row"));
    try {{
      const results = await env.DB.batch(statements);
      return Response.json({{ ok: results.length }});
    }} catch (e) {{
      return Response.json({{ error: String(e && e.message) }});
    }}
  }}
}};
"#
        ),
    )
    .unwrap();
    let mut config = WorkerConfig::new(dir.path().join("index.js"));
    config.isolates = 1;
    config.limits.memory_bytes = memory_bytes;
    config.bindings = vec![Arc::new(D1Adapter::new("DB", db.clone()))];
    let pool = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let resp = rt.block_on(pool.dispatch(WorkerRequest::new("t", "GET", "http://localhost/")));
    pool.shutdown();
    pool.join();
    let reported = match resp {
        Ok(r) if r.status == 200 => serde_json::from_slice(&r.body).unwrap(),
        Ok(r) => json!({ "status": r.status, "body": String::from_utf8_lossy(&r.body) }),
        Err(e) => json!({ "dispatch_error": e.to_string() }),
    };
    let count = db
        .prepare("SELECT count(*) AS n FROM t")
        .first_column("n")
        .unwrap();
    let count = match count {
        Some(D1Value::Integer(n)) => n,
        other => panic!("count: {other:?}"),
    };
    (reported, count)
}

#[test]
fn a_batch_whose_results_do_not_fit_the_heap_commits_nothing() {
    // The statements fit in 48 MiB; their 60,000 results do not. (Before
    // the results were built ahead of the commit, the worker was told
    // "out of memory" here while all 60,000 rows were stored.)
    let (reported, count) = big_batch(60_000, 48 * 1024 * 1024);
    let message = reported["error"].as_str().unwrap_or_else(|| {
        panic!("the batch should have failed, reported {reported}, {count} rows stored")
    });
    assert!(
        message.contains("could not be delivered") && message.contains("nothing was written"),
        "{message}"
    );
    assert_eq!(count, 0, "the batch failed, so no row may be stored");

    // The same batch with room for its results: reported and stored alike.
    let (reported, count) = big_batch(60_000, 128 * 1024 * 1024);
    assert_eq!(reported, json!({ "ok": 60_000 }));
    assert_eq!(count, 60_000);
}
