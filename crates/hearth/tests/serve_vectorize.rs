//! `[[vectorize]]` through `hearth serve`: every method of the binding with
//! Workers' shapes and Cloudflare's errors, the `hearth vectorize` commands
//! (also while a server runs), the error for an index not yet created, and
//! acknowledged upserts surviving `kill -9`.

mod web_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use web_support::Server;

/// `POST /` with `{ method, args }` calls `env.INDEX[method](...args)` and
/// answers `{ result }` or `{ error, name }`.
const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const { method, args } = await request.json();
    try {
      const result = await env.INDEX[method](...(args ?? []));
      return Response.json({ result: result === undefined ? null : result });
    } catch (e) {
      return Response.json({ error: String(e.message), name: e.name });
    }
  },
};
"#;

fn project(root: &Path) -> PathBuf {
    std::fs::write(root.join("index.js"), WORKER).unwrap();
    let config = root.join("wrangler.toml");
    std::fs::write(
        &config,
        "name = \"vec\"\nmain = \"index.js\"\n\n[[vectorize]]\nbinding = \"INDEX\"\nindex_name = \"docs\"\n",
    )
    .unwrap();
    config
}

fn cli(config: &Path, data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("vectorize")
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn call(server: &Server, method: &str, args: Value) -> Value {
    let body = json!({ "method": method, "args": args }).to_string();
    let reply = server.request(
        "POST",
        "/",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

fn ok(server: &Server, method: &str, args: Value) -> Value {
    let v = call(server, method, args);
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

fn err(server: &Server, method: &str, args: Value) -> (String, String) {
    let v = call(server, method, args);
    let e = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} did not fail: {v}"));
    (e.to_owned(), v["name"].as_str().unwrap_or("").to_owned())
}

fn ids(result: &Value) -> Vec<String> {
    result["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_index_not_created_names_the_command_and_is_picked_up_once_created() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path());
    let data = root.path().join("data");
    let server = Server::start("serve", &config, &data);
    let (message, _) = err(&server, "describe", json!([]));
    assert!(
        message.contains("Vectorize index \"docs\" does not exist")
            && message.contains("hearth vectorize create docs --dimensions"),
        "{message}"
    );
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("hearth vectorize create docs"), "{log}");
    assert!(!log.contains("not served by Hearth"), "{log}");

    let (done, _, stderr) = cli(
        &config,
        &data,
        &["create", "docs", "--dimensions", "3", "--metric", "cosine"],
    );
    assert!(done, "{stderr}");
    let info = ok(&server, "describe", json!([]));
    assert_eq!(info["dimensions"], 3);
    assert_eq!(info["vectorCount"], 0);
}

#[test]
fn the_binding_has_workers_shapes_and_cloudflares_errors() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path());
    let data = root.path().join("data");
    let (done, _, stderr) = cli(
        &config,
        &data,
        &["create", "docs", "--dimensions", "3", "--metric", "cosine"],
    );
    assert!(done, "{stderr}");
    let (done, _, stderr) = cli(
        &config,
        &data,
        &[
            "create-metadata-index",
            "docs",
            "--property-name",
            "genre",
            "--type",
            "string",
        ],
    );
    assert!(done, "{stderr}");
    let server = Server::start("serve", &config, &data);

    let m = ok(
        &server,
        "upsert",
        json!([[
            { "id": "a", "values": [1, 0, 0], "metadata": { "genre": "jazz", "title": "A" } },
            { "id": "b", "values": [0.9, 0.1, 0], "metadata": { "genre": "rock" } },
            { "id": "c", "values": [0, 1, 0], "namespace": "other" },
        ]]),
    );
    let mutation = m["mutationId"].as_str().unwrap().to_owned();
    assert_eq!(mutation.len(), 36, "{m}");
    // Visible as soon as the write is acknowledged.
    let r = ok(&server, "query", json!([[1, 0, 0], { "topK": 2 }]));
    assert_eq!(r["count"], 2);
    assert_eq!(ids(&r), ["a", "b"]);
    assert!((r["matches"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    assert!(r["matches"][0].get("values").is_none() && r["matches"][0].get("metadata").is_none());

    let r = ok(
        &server,
        "query",
        json!([[1, 0, 0], { "topK": 1, "returnValues": true, "returnMetadata": "all", "filter": { "genre": { "$ne": "jazz" } } }]),
    );
    assert_eq!(r["matches"][0]["id"], "b");
    assert_eq!(r["matches"][0]["metadata"], json!({ "genre": "rock" }));
    let v: Vec<f64> = serde_json::from_value(r["matches"][0]["values"].clone()).unwrap();
    assert!((v[0] - 0.9).abs() < 1e-6 && (v[1] - 0.1).abs() < 1e-6);
    let r = ok(
        &server,
        "query",
        json!([[1, 0, 0], { "returnMetadata": "indexed", "filter": { "genre": "jazz" } }]),
    );
    assert_eq!(r["matches"][0]["metadata"], json!({ "genre": "jazz" }));
    let r = ok(
        &server,
        "query",
        json!([[1, 0, 0], { "namespace": "other" }]),
    );
    assert_eq!(ids(&r), ["c"]);
    assert_eq!(r["matches"][0]["namespace"], "other");
    let r = ok(&server, "queryById", json!(["c", { "topK": 1 }]));
    assert_eq!(ids(&r), ["c"]);

    // insert leaves an existing id alone.
    ok(
        &server,
        "insert",
        json!([[{ "id": "a", "values": [0, 0, 1] }]]),
    );
    let got = ok(&server, "getByIds", json!([["a", "nope", "c"]]));
    assert_eq!(got.as_array().unwrap().len(), 2);
    assert_eq!(got[0]["values"], json!([1, 0, 0]));
    assert_eq!(got[0]["metadata"], json!({ "genre": "jazz", "title": "A" }));
    assert_eq!(got[1]["namespace"], "other");

    ok(&server, "deleteByIds", json!([["b"]]));
    let info = ok(&server, "describe", json!([]));
    assert_eq!(info["vectorCount"], 2);
    assert_eq!(info["dimensions"], 3);
    assert!(info["processedUpToMutation"].is_string());
    let page = ok(&server, "list", json!([{ "count": 1 }]));
    assert_eq!(page["vectors"], json!([{ "id": "a" }]));
    assert_eq!(page["isTruncated"], true);
    let page = ok(
        &server,
        "list",
        json!([{ "count": 1, "cursor": page["nextCursor"] }]),
    );
    assert_eq!(page["vectors"], json!([{ "id": "c" }]));

    let (e, name) = err(&server, "query", json!([[1, 0], {}]));
    assert_eq!(
        e,
        "VECTOR_QUERY_ERROR (code = 40006): invalid query vector, expected 3 dimensions, and got 2 dimensions"
    );
    assert_eq!(name, "Error");
    let (e, _) = err(
        &server,
        "query",
        json!([[1, 0, 0], { "topK": 50, "returnValues": true }]),
    );
    assert_eq!(
        e,
        "VECTOR_QUERY_ERROR (code = 40025): with returnValues=true or returnMetadata=all, max top K is 20, but got 50"
    );
    let (e, name) = err(
        &server,
        "query",
        json!([[1, 0, 0], { "returnMetadata": "some" }]),
    );
    assert!(e.contains("returnMetadata must be"), "{e}");
    assert_eq!(name, "TypeError");
    let (e, name) = err(
        &server,
        "upsert",
        json!([[{ "id": 1, "values": [1, 0, 0] }]]),
    );
    assert!(e.contains("id must be a string"), "{e}");
    assert_eq!(name, "TypeError");
    let (e, _) = err(
        &server,
        "upsert",
        json!([[{ "id": "x".repeat(65), "values": [1, 0, 0] }]]),
    );
    assert!(
        e.starts_with("VECTOR_UPSERT_ERROR (code = 40005)")
            && e.contains("over the limit of 64 bytes"),
        "{e}"
    );
    let (e, _) = err(
        &server,
        "query",
        json!([[1, 0, 0], { "filter": { "genre": { "$like": "j" } } }]),
    );
    assert!(e.contains("unsupported operator $like"), "{e}");

    // The worker keeps serving after every refused call.
    let health = server.get("/__hearth/health?worker=vec");
    assert!(health.text().contains("vectorize"), "{}", health.text());
    let status = server.get("/__hearth/vectorize/docs");
    assert_eq!(status.status, 200, "{}", status.text());
    let status = status.json();
    assert_eq!(
        (status["vectorCount"].clone(), status["metric"].clone()),
        (json!(2), json!("cosine"))
    );
    assert!(status["awaitingGraph"].is_u64(), "{status}");
}

#[test]
fn the_cli_twins_of_wranglers_commands() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path());
    let data = root.path().join("data");
    let run = |args: &[&str]| {
        let (done, out, stderr) = cli(&config, &data, args);
        assert!(done, "{args:?}: {stderr}");
        out
    };
    let (done, _, stderr) = cli(&config, &data, &["get", "docs"]);
    assert!(
        !done && stderr.contains("hearth vectorize create docs"),
        "{stderr}"
    );
    run(&[
        "create",
        "docs",
        "--dimensions",
        "2",
        "--metric",
        "euclidean",
        "--description",
        "test",
    ]);
    let (done, _, stderr) = cli(
        &config,
        &data,
        &["create", "docs", "--dimensions", "2", "--metric", "cosine"],
    );
    assert!(!done && stderr.contains("already exists"), "{stderr}");
    let (done, _, stderr) = cli(
        &config,
        &data,
        &[
            "create",
            "other",
            "--dimensions",
            "2",
            "--metric",
            "manhattan",
        ],
    );
    assert!(
        !done && stderr.contains("unknown metric \"manhattan\""),
        "{stderr}"
    );
    let list: Value = serde_json::from_str(&run(&["list"])).unwrap();
    assert_eq!(list[0]["name"], "docs");
    assert_eq!(
        list[0]["config"],
        json!({ "dimensions": 2, "metric": "euclidean" })
    );
    let get: Value = serde_json::from_str(&run(&["get", "docs"])).unwrap();
    assert_eq!(get["description"], "test");
    run(&[
        "create-metadata-index",
        "docs",
        "--property-name",
        "n",
        "--type",
        "number",
    ]);
    let ixs: Value = serde_json::from_str(&run(&["list-metadata-index", "docs"])).unwrap();
    assert_eq!(
        ixs["metadataIndexes"],
        json!([{ "propertyName": "n", "indexType": "number" }])
    );

    let file = root.path().join("vectors.ndjson");
    let lines: Vec<String> = (0..10)
        .map(|i| {
            json!({ "id": format!("v{i}"), "values": [i, 0], "metadata": { "n": i } }).to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out: Value = serde_json::from_str(&run(&[
        "insert",
        "docs",
        "--file",
        file.to_str().unwrap(),
        "--batch-size",
        "3",
    ]))
    .unwrap();
    assert_eq!(out, json!({ "read": 10, "written": 10 }));
    let info: Value = serde_json::from_str(&run(&["info", "docs"])).unwrap();
    assert_eq!(info["vectorCount"], 10);

    let q: Value = serde_json::from_str(&run(&[
        "query", "docs", "--vector", "4.2", "0", "--top-k", "2",
    ]))
    .unwrap();
    assert_eq!(q["matches"][0]["id"], "v4");
    assert_eq!(q["matches"][1]["id"], "v5");
    let q: Value = serde_json::from_str(&run(&[
        "query",
        "docs",
        "--vector",
        "[4.2,0]",
        "--top-k",
        "1",
        "--filter",
        r#"{"n":{"$gte":7}}"#,
        "--return-metadata",
        "all",
    ]))
    .unwrap();
    assert_eq!(q["matches"][0]["id"], "v7");
    assert_eq!(q["matches"][0]["metadata"], json!({ "n": 7 }));
    let q: Value = serde_json::from_str(&run(&[
        "query",
        "docs",
        "--vector-id",
        "v9",
        "--top-k",
        "1",
    ]))
    .unwrap();
    assert_eq!(q["matches"][0]["id"], "v9");

    let got: Value =
        serde_json::from_str(&run(&["get-vectors", "docs", "--ids", "v1", "v2"])).unwrap();
    assert_eq!(got[1]["values"], json!([2.0, 0.0]));
    let del: Value =
        serde_json::from_str(&run(&["delete-vectors", "docs", "--ids", "v1", "zz"])).unwrap();
    assert_eq!(del["count"], 1);
    let page: Value =
        serde_json::from_str(&run(&["list-vectors", "docs", "--count", "3"])).unwrap();
    assert_eq!(
        page["vectors"],
        json!([{ "id": "v0" }, { "id": "v2" }, { "id": "v3" }])
    );
    assert_eq!(page["totalCount"], 9);

    // A running server sees what the commands write.
    let server = Server::start("serve", &config, &data);
    assert_eq!(ok(&server, "describe", json!([]))["vectorCount"], 9);
    std::fs::write(
        &file,
        json!({ "id": "late", "values": [100, 0] }).to_string(),
    )
    .unwrap();
    run(&["insert", "docs", "--file", file.to_str().unwrap()]);
    let r = ok(&server, "query", json!([[100, 0], { "topK": 1 }]));
    assert_eq!(ids(&r), ["late"]);
    drop(server);

    run(&["delete-metadata-index", "docs", "--property-name", "n"]);
    run(&["delete", "docs", "--force"]);
    let list: Value = serde_json::from_str(&run(&["list"])).unwrap();
    assert_eq!(list, json!([]));
}

#[test]
fn acknowledged_upserts_survive_kill_9() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path());
    let data = root.path().join("data");
    let (done, _, stderr) = cli(
        &config,
        &data,
        &["create", "docs", "--dimensions", "8", "--metric", "cosine"],
    );
    assert!(done, "{stderr}");
    let server = Server::start("serve", &config, &data);
    // Distinct pseudo-random vectors (a hash of index and dimension).
    let vector = |i: usize| -> Vec<f64> {
        (0..8u64)
            .map(|d| {
                let h = (i as u64 * 8 + d + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                ((h >> 40) % 2001) as f64 / 1000.0 - 1.0
            })
            .collect()
    };
    let mut acked = Vec::new();
    for batch in 0..30 {
        let vs: Vec<Value> = (0..100)
            .map(|j| {
                let i = batch * 100 + j;
                json!({ "id": format!("v{i}"), "values": vector(i), "metadata": { "i": i } })
            })
            .collect();
        ok(&server, "upsert", json!([vs]));
        acked.extend((batch * 100)..(batch * 100 + 100));
    }
    ok(&server, "deleteByIds", json!([["v0", "v1"]]));
    // Killed with the graph still being built behind the writes.
    server.kill9();

    let server = Server::start("serve", &config, &data);
    assert_eq!(
        ok(&server, "describe", json!([]))["vectorCount"],
        acked.len() - 2
    );
    for chunk in acked[2..].chunks(500) {
        let want: Vec<String> = chunk.iter().map(|i| format!("v{i}")).collect();
        let got = ok(&server, "getByIds", json!([want]));
        assert_eq!(got.as_array().unwrap().len(), chunk.len());
    }
    assert_eq!(ok(&server, "getByIds", json!([["v0", "v1"]])), json!([]));
    // Every vector is found by its own values.
    for i in [2, 777, 2999] {
        let r = ok(&server, "query", json!([vector(i), { "topK": 1 }]));
        assert_eq!(ids(&r), [format!("v{i}")]);
    }

    // Once the graph is linked the server keeps a snapshot of it; writes
    // acknowledged after the snapshot survive a second kill -9 as well.
    let db = data.join("vectorize").join("docs.sqlite");
    let snapshot_nodes = || -> i64 {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("SELECT nodes FROM graph_snapshot", [], |r| r.get(0))
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while snapshot_nodes() < 2998 {
        assert!(std::time::Instant::now() < deadline, "no graph snapshot");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let vs: Vec<Value> = (3000..3100)
        .map(|i| json!({ "id": format!("v{i}"), "values": vector(i) }))
        .collect();
    ok(&server, "upsert", json!([vs]));
    // v5 takes v9000's values; v6 goes.
    ok(
        &server,
        "upsert",
        json!([[{ "id": "v5", "values": vector(9000) }]]),
    );
    ok(&server, "deleteByIds", json!([["v6"]]));
    server.kill9();

    let server = Server::start("serve", &config, &data);
    assert_eq!(ok(&server, "describe", json!([]))["vectorCount"], 3100 - 3);
    for i in [2, 1500, 3050] {
        let r = ok(&server, "query", json!([vector(i), { "topK": 1 }]));
        assert_eq!(ids(&r), [format!("v{i}")]);
    }
    let r = ok(&server, "query", json!([vector(9000), { "topK": 1 }]));
    assert_eq!(ids(&r), ["v5"]);
    let r = ok(&server, "query", json!([vector(6), { "topK": 5 }]));
    assert!(!ids(&r).contains(&"v6".to_owned()), "{r}");
    assert_eq!(ok(&server, "getByIds", json!([["v6"]])), json!([]));
    let log = server.log.lock().unwrap().join("\n");
    assert!(!log.contains("snapshot not used"), "{log}");
}

#[test]
fn an_index_deleted_under_a_running_server_is_gone_without_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path());
    let data = root.path().join("data");
    let create = |dims: &str| {
        let (done, _, stderr) = cli(
            &config,
            &data,
            &["create", "docs", "--dimensions", dims, "--metric", "cosine"],
        );
        assert!(done, "{stderr}");
    };
    create("3");
    let server = Server::start("serve", &config, &data);
    ok(
        &server,
        "upsert",
        json!([[{ "id": "a", "values": [1, 0, 0] }]]),
    );
    assert_eq!(ok(&server, "describe", json!([]))["vectorCount"], 1);

    let (done, _, stderr) = cli(&config, &data, &["delete", "docs"]);
    assert!(done, "{stderr}");
    let (message, _) = err(&server, "query", json!([[1, 0, 0]]));
    assert!(
        message.contains("hearth vectorize create docs"),
        "{message}"
    );
    let (message, _) = err(
        &server,
        "upsert",
        json!([[{ "id": "b", "values": [1, 0, 0] }]]),
    );
    assert!(message.contains("does not exist"), "{message}");

    // Created again with other dimensions: the server serves the new one.
    create("4");
    let info = ok(&server, "describe", json!([]));
    assert_eq!(info["dimensions"], 4);
    assert_eq!(info["vectorCount"], 0);
    ok(
        &server,
        "upsert",
        json!([[{ "id": "c", "values": [0, 0, 0, 1] }]]),
    );
    let r = ok(&server, "query", json!([[0, 0, 0, 1], { "topK": 3 }]));
    assert_eq!(ids(&r), ["c"]);
}
