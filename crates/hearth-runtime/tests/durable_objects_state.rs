//! Durable Objects' state from JavaScript: the storage APIs, transactions,
//! input gates and blockConcurrencyWhile, resets, eviction, alarms and
//! hibernatable WebSockets.

mod durable_common;

use std::time::Duration;

use durable_common::{Setup, request, wait_for};
use hearth_do::StorageBackend;
use hearth_runtime::WsMessage;
use serde_json::json;

const OBJECTS: &str = r#"
import { DurableObject } from "cloudflare:workers";

const attempt = async (out, label, f) => {
  try { out[label] = { ok: await f() }; }
  catch (e) { out[label] = { error: e.constructor.name, message: e.message }; }
};

let built = 0;

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    built += 1;
    this.built = built;
    this.order = [];
    if (ctx.id.name === "explode") throw new Error("constructor failed");
    if (ctx.id.name === "slow-start") {
      ctx.blockConcurrencyWhile(async () => {
        await scheduler.wait(50);
        this.order.push("init");
      });
    }
  }

  async fetch(request) {
    const url = new URL(request.url);
    const s = this.ctx.storage;
    const out = {};
    switch (url.pathname) {
      case "/kv": {
        await attempt(out, "missing", () => s.get("nope"));
        await s.put("a", { deep: [1, 2] });
        await s.put({ b: 2, c: new Map([["x", 1]]), "d/1": "x", "d/2": "y", e: "z" });
        await attempt(out, "one", () => s.get("a"));
        await attempt(out, "many", async () => [...(await s.get(["a", "b", "zz"])).keys()]);
        await attempt(out, "mapValue", async () => (await s.get("c")) instanceof Map);
        await attempt(out, "list", async () => [...(await s.list()).keys()]);
        await attempt(out, "prefix", async () => [...(await s.list({ prefix: "d/" })).entries()]);
        await attempt(out, "range", async () => [...(await s.list({ start: "b", end: "d/2", reverse: true, limit: 2 })).keys()]);
        await attempt(out, "deleteOne", () => s.delete("a"));
        await attempt(out, "deleteAgain", () => s.delete("a"));
        await attempt(out, "deleteMany", () => s.delete(["b", "c", "zz"]));
        await attempt(out, "tooMany", () => s.get(Array.from({ length: 129 }, (_, i) => "k" + i)));
        await attempt(out, "bothStarts", () => s.list({ start: "a", startAfter: "b" }));
        await attempt(out, "badLimit", () => s.list({ limit: 0 }));
        await s.deleteAll();
        await attempt(out, "afterDeleteAll", async () => (await s.list()).size);
        break;
      }
      case "/sql": {
        const sql = s.sql;
        sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)");
        const ins = sql.exec("INSERT INTO t (name, data) VALUES (?, ?), (?, ?)", "x", new Uint8Array([1, 2]), "y", null);
        out.inserted = ins.rowsWritten;
        const cur = sql.exec("SELECT id, name FROM t ORDER BY id");
        out.columns = cur.columnNames;
        out.rows = [...cur];
        out.raw = sql.exec("SELECT id, name FROM t ORDER BY id").raw().toArray();
        out.one = sql.exec("SELECT name FROM t WHERE id = ?", 1).one();
        await attempt(out, "oneOfMany", () => sql.exec("SELECT * FROM t").one());
        await attempt(out, "oneOfNone", () => sql.exec("SELECT * FROM t WHERE id = 99").one());
        await attempt(out, "begin", () => sql.exec("BEGIN TRANSACTION"));
        await attempt(out, "noTable", () => sql.exec("SELECT * FROM missing"));
        await attempt(out, "bindings", () => sql.exec("SELECT ?", 1, 2));
        out.blob = new Uint8Array(sql.exec("SELECT data FROM t WHERE id = 1").one().data).join();
        out.readCount = sql.exec("SELECT * FROM t").rowsRead;
        out.size = sql.databaseSize > 0;
        break;
      }
      case "/txn": {
        const sql = s.sql;
        sql.exec("CREATE TABLE IF NOT EXISTS t (v INTEGER)");
        await attempt(out, "syncRollback", () => s.transactionSync(() => {
          sql.exec("INSERT INTO t VALUES (1)");
          throw new Error("undo");
        }));
        out.afterSyncRollback = sql.exec("SELECT count(*) AS n FROM t").one().n;
        out.syncValue = s.transactionSync(() => { sql.exec("INSERT INTO t VALUES (2)"); return "done"; });
        await attempt(out, "asyncRollback", () => s.transaction(async (txn) => {
          await txn.put("k", 1);
          sql.exec("INSERT INTO t VALUES (3)");
          throw new TypeError("undo async");
        }));
        out.afterAsync = { k: (await s.get("k")) ?? null, n: sql.exec("SELECT count(*) AS n FROM t").one().n };
        out.explicitRollback = await s.transaction(async (txn) => { await txn.put("k", 2); txn.rollback(); return "rolled"; });
        out.afterExplicit = (await s.get("k")) ?? null;
        out.asyncValue = await s.transaction(async (txn) => { await txn.put("k", 3); return (await txn.get("k")); });
        out.afterCommit = await s.get("k");
        break;
      }
      case "/kvonly": {
        await attempt(out, "sql", () => s.sql.exec("SELECT 1"));
        await attempt(out, "txnSync", () => s.transactionSync(() => 1));
        await s.put("x", 1);
        await attempt(out, "get", () => s.get("x"));
        await attempt(out, "bigKey", () => s.put("k".repeat(3000), 1));
        break;
      }
      case "/gate": {
        // Read-modify-write with awaits in between: input gates keep it atomic.
        const n = (await s.get("n")) ?? 0;
        await s.put("n", n + 1);
        out.n = n + 1;
        break;
      }
      case "/order": {
        this.order.push(url.searchParams.get("tag"));
        out.order = this.order;
        break;
      }
      case "/info": {
        out.built = this.built;
        out.n = (await s.get("n")) ?? 0;
        break;
      }
      case "/throw":
        throw new Error("handler failed");
      case "/alarm": {
        const ms = Number(url.searchParams.get("ms"));
        await s.setAlarm(Date.now() + ms);
        out.alarm = (await s.getAlarm()) !== null;
        break;
      }
      case "/alarm-state": {
        out.fired = (await s.get("fired")) ?? [];
        out.alarm = await s.getAlarm();
        out.during = (await s.get("during")) ?? "not run";
        break;
      }
      case "/details": {
        await attempt(out, "noAlarm", async () => (await s.getAlarm()) === null);
        await attempt(out, "alarmString", () => s.setAlarm("soon"));
        await attempt(out, "alarmNaN", () => s.setAlarm(NaN));
        await attempt(out, "putUndefined", () => s.put("u", undefined));
        await attempt(out, "txnSyncNotFn", () => s.transactionSync("x"));
        await attempt(out, "bindings", () => s.sql.exec("SELECT ? AS t, ? AS u, ? AS o", true, undefined, { a: 1 }).one());
        await attempt(out, "bigint", () => s.sql.exec("SELECT ? AS v", 5n).one());
        await attempt(out, "nextAtEnd", () => { const c = s.sql.exec("SELECT 1 AS x"); c.next(); return "value" in c.next(); });
        // A full 128 KiB byte array fits a key-value-backed object's value limit.
        await attempt(out, "fullBytes", async () => { await s.put("bytes", new Uint8Array(128 * 1024)); return (await s.get("bytes")).byteLength; });
        await attempt(out, "overBytes", () => s.put("bytes", new Uint8Array(128 * 1024 + 100)));
        break;
      }
    }
    return Response.json(out);
  }

  echo(v) { return v; }
  failNamed() { const e = new Error("named failure"); e.name = "MyError"; throw e; }

  async alarm(info) {
    // The alarm being delivered no longer shows as set.
    await this.ctx.storage.put("during", { alarm: await this.ctx.storage.getAlarm() });
    const fired = (await this.ctx.storage.get("fired")) ?? [];
    fired.push(info);
    await this.ctx.storage.put("fired", fired);
    if (this.ctx.id.name === "flaky" && fired.length === 1) throw new Error("first run fails");
  }
}

export class Chat extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    built += 1;
    this.instance = built;
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }
  async fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, ["room", "user:" + new URL(request.url).searchParams.get("user")]);
    server.serializeAttachment({ user: new URL(request.url).searchParams.get("user") });
    return new Response(null, { status: 101, webSocket: client });
  }
  async webSocketMessage(ws, message) {
    const { user } = ws.deserializeAttachment();
    const seen = ((await this.ctx.storage.get("seen")) ?? 0) + 1;
    await this.ctx.storage.put("seen", seen);
    ws.send(JSON.stringify({ user, message, seen, instance: this.instance,
      sockets: this.ctx.getWebSockets("room").length, tags: this.ctx.getTags(ws) }));
  }
  async webSocketClose(ws, code, reason) {
    ws.close(code, "closing: " + reason);
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/rpc-details") {
      const stub = env.COUNTER.getByName("rpc");
      const out = {};
      class Point { constructor() { this.x = 1; } }
      await attempt(out, "classInstance", () => stub.echo(new Point()));
      await attempt(out, "hole", async () => { const a = await stub.echo([1, , 3]); return [a.length, 1 in a]; });
      await attempt(out, "namedError", () => stub.failNamed());
      await attempt(out, "stubConstructor", () => stub.constructor());
      await attempt(out, "idJson", () => JSON.stringify(env.COUNTER.idFromName("rpc")));
      return Response.json(out);
    }
    if (url.pathname === "/ws-accept") {
      // The caller accept()s the object's WebSocket instead of returning it.
      const res = await env.CHAT.getByName("accepted").fetch("http://do/?user=cal", { headers: { Upgrade: "websocket" } });
      const ws = res.webSocket;
      ws.accept();
      const got = [];
      const done = new Promise((resolve) => {
        ws.addEventListener("message", (e) => { got.push(e.data); if (got.length === 2) resolve(); });
      });
      ws.send("ping");
      ws.send("hello");
      await done;
      const closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve([e.code, e.reason])));
      ws.close(4000, "bye");
      const closing = ws.readyState;
      // The object's webSocketClose answers; that answer is the caller's close event.
      const answer = await closed;
      return Response.json({ status: res.status, got, readyState: closing, answer, after: ws.readyState });
    }
    const name = url.searchParams.get("name") ?? "a";
    const ns = url.searchParams.get("ns") === "kv" ? env.KV_ONLY : url.searchParams.get("ns") === "chat" ? env.CHAT : env.COUNTER;
    const stub = ns.get(ns.idFromName(name));
    try {
      return await stub.fetch(request);
    } catch (e) {
      return Response.json({ error: e.message }, { status: 500 });
    }
  }
};
"#;

const CLASSES: &[(&str, &str, StorageBackend)] = &[
    ("COUNTER", "Counter", StorageBackend::Sqlite),
    ("KV_ONLY", "KvCounter", StorageBackend::KeyValue),
    ("CHAT", "Chat", StorageBackend::Sqlite),
];

fn script() -> String {
    format!("{OBJECTS}\nexport class KvCounter extends Counter {{}}\n")
}

#[test]
fn key_value_storage() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    let w = setup.start();
    let t = w.json("/kv");
    assert_eq!(t["missing"], json!({}), "undefined reads as a missing ok");
    assert_eq!(t["one"]["ok"], json!({"deep": [1, 2]}));
    assert_eq!(t["many"]["ok"], json!(["a", "b"]));
    assert_eq!(t["mapValue"]["ok"], true);
    assert_eq!(t["list"]["ok"], json!(["a", "b", "c", "d/1", "d/2", "e"]));
    assert_eq!(t["prefix"]["ok"], json!([["d/1", "x"], ["d/2", "y"]]));
    assert_eq!(t["range"]["ok"], json!(["d/1", "c"]));
    assert_eq!(t["deleteOne"]["ok"], true);
    assert_eq!(t["deleteAgain"]["ok"], false);
    assert_eq!(t["deleteMany"]["ok"], 2);
    assert_eq!(
        t["tooMany"]["message"],
        "Maximum number of key value pairs is 128. 129 pairs were provided."
    );
    assert_eq!(
        t["bothStarts"]["message"],
        "list() cannot be called with both start and startAfter values."
    );
    assert_eq!(t["badLimit"]["message"], "List limit must be positive.");
    assert_eq!(t["afterDeleteAll"]["ok"], 0);
    w.stop();
}

#[test]
fn sql_storage_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    let w = setup.start();
    let t = w.json("/sql");
    assert_eq!(t["inserted"], 2);
    assert_eq!(t["columns"], json!(["id", "name"]));
    assert_eq!(
        t["rows"],
        json!([{"id": 1, "name": "x"}, {"id": 2, "name": "y"}])
    );
    assert_eq!(t["raw"], json!([[1, "x"], [2, "y"]]));
    assert_eq!(t["one"], json!({"name": "x"}));
    assert_eq!(
        t["oneOfMany"]["message"],
        "Expected exactly one result from SQL query, but got multiple results."
    );
    assert_eq!(
        t["oneOfNone"]["message"],
        "Expected exactly one result from SQL query, but got no results."
    );
    assert!(
        t["begin"]["message"]
            .as_str()
            .unwrap()
            .starts_with("To execute a transaction, please use the state.storage.transaction()"),
        "{}",
        t["begin"]
    );
    assert_eq!(
        t["noTable"]["message"],
        "no such table: missing: SQLITE_ERROR"
    );
    assert_eq!(
        t["bindings"]["message"],
        "Wrong number of parameter bindings for SQL query."
    );
    assert_eq!(t["blob"], "1,2");
    assert_eq!(t["readCount"], 2);
    assert_eq!(t["size"], true);

    // A key-value class has no SQL API.
    let t = w.json("/kvonly?ns=kv");
    assert!(
        t["sql"]["message"]
            .as_str()
            .unwrap()
            .starts_with("SQL is not enabled for this Durable Object class.")
    );
    assert_eq!(
        t["txnSync"]["message"],
        "Durable Object is not backed by SQL."
    );
    assert_eq!(t["get"]["ok"], 1);
    assert_eq!(t["bigKey"]["error"], "RangeError");
    assert_eq!(
        t["bigKey"]["message"],
        "Keys cannot be larger than 2048 bytes. A key of size 3000 was provided."
    );
    w.stop();
}

#[test]
fn transactions_roll_back_on_throw() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    let w = setup.start();
    let t = w.json("/txn");
    assert_eq!(
        t["syncRollback"],
        json!({"error": "Error", "message": "undo"})
    );
    assert_eq!(t["afterSyncRollback"], 0);
    assert_eq!(t["syncValue"], "done");
    assert_eq!(
        t["asyncRollback"],
        json!({"error": "TypeError", "message": "undo async"})
    );
    assert_eq!(t["afterAsync"], json!({"k": null, "n": 1}));
    // rollback() undoes the writes; the callback's result still comes back.
    assert_eq!(t["explicitRollback"], "rolled");
    assert_eq!(t["afterExplicit"], json!(null));
    assert_eq!(t["asyncValue"], 3);
    assert_eq!(t["afterCommit"], 3);
    w.stop();
}

#[test]
fn input_gates_keep_read_modify_write_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    setup.isolates = 2;
    let w = setup.start();
    let pool = w.pool.clone();
    w.rt.block_on(async move {
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.dispatch(request("GET", "/gate", "")).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().status, 200);
        }
    });
    assert_eq!(w.json("/info")["n"], 40);
    w.stop();
}

#[test]
fn block_concurrency_while_holds_events_until_done() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    let w = setup.start();
    let pool = w.pool.clone();
    let orders = w.rt.block_on(async move {
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let r = pool
                        .dispatch(request(
                            "GET",
                            &format!("/order?name=slow-start&tag=e{i}"),
                            "",
                        ))
                        .await
                        .unwrap();
                    serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    // Every event saw the constructor's blockConcurrencyWhile finish first.
    for o in &orders {
        assert_eq!(o["order"][0], "init", "{o}");
    }
    let last = orders
        .iter()
        .map(|o| o["order"].as_array().unwrap().len())
        .max()
        .unwrap();
    assert_eq!(last, 4);
    w.stop();
}

#[test]
fn a_throwing_constructor_or_handler_resets_only_that_object() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    setup.isolates = 1;
    let w = setup.start();
    w.get("/gate?name=steady");
    let before = w.json("/info?name=steady")["built"].clone();

    let r = w.call("GET", "/info?name=explode", "");
    assert_eq!(r.status, 500);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        r#"{"error":"constructor failed"}"#
    );
    let r = w.call("GET", "/throw?name=thrower", "");
    assert_eq!(r.status, 500);
    assert!(String::from_utf8_lossy(&r.body).contains("handler failed"));

    // The other object kept its instance; the thrower is rebuilt.
    assert_eq!(w.json("/info?name=steady")["built"], before);
    let first = w.json("/info?name=thrower")["built"].as_u64().unwrap();
    w.call("GET", "/throw?name=thrower", "");
    let second = w.json("/info?name=thrower")["built"].as_u64().unwrap();
    assert!(second > first, "{first} {second}");
    w.stop();
}

#[test]
fn idle_objects_are_evicted_and_rebuilt_with_storage() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    setup.idle = Duration::from_millis(100);
    setup.isolates = 1;
    let w = setup.start();
    w.get("/gate?name=sleepy");
    let built = w.json("/info?name=sleepy")["built"].as_u64().unwrap();
    let after = wait_for(10, || {
        std::thread::sleep(Duration::from_millis(150));
        let t = w.json("/info?name=sleepy");
        (t["built"].as_u64().unwrap() > built).then_some(t)
    });
    assert_eq!(after["n"], 1, "storage outlives the instance");
    w.stop();
}

#[test]
fn alarms_fire_and_retry() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    let w = setup.start();
    assert_eq!(w.json("/alarm?name=ring&ms=50")["alarm"], true);
    let fired = wait_for(10, || {
        let t = w.json("/alarm-state?name=ring");
        (t["fired"].as_array().unwrap().len() == 1 && t["alarm"].is_null()).then_some(t)
    });
    assert_eq!(
        fired["fired"][0],
        json!({"retryCount": 0, "isRetry": false})
    );
    assert_eq!(fired["during"], json!({"alarm": null}));

    // The first run throws: retried after the 2 s backoff, with isRetry.
    w.json("/alarm?name=flaky&ms=10");
    let t = wait_for(15, || {
        let t = w.json("/alarm-state?name=flaky");
        (t["fired"].as_array().unwrap().len() == 2).then_some(t)
    });
    assert_eq!(t["fired"][0], json!({"retryCount": 0, "isRetry": false}));
    assert_eq!(t["fired"][1], json!({"retryCount": 1, "isRetry": true}));
    w.stop();
}

#[test]
fn alarm_set_before_a_restart_fires_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    let w = setup.start();
    w.json("/alarm?name=later&ms=300");
    w.stop();
    std::thread::sleep(Duration::from_millis(350));
    let w = setup.start();
    let t = wait_for(10, || {
        let t = w.json("/alarm-state?name=later");
        (t["fired"].as_array().unwrap().len() == 1).then_some(t)
    });
    assert_eq!(t["alarm"], json!(null));
    w.stop();
}

#[test]
fn hibernatable_websockets_survive_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    setup.idle = Duration::from_millis(100);
    let w = setup.start();
    let mut r = w.call("GET", "/?ns=chat&name=room&user=ann", "");
    assert_eq!(r.status, 101);
    let mut ch = r.web_socket.take().expect("a WebSocket");
    let recv = |ch: &mut hearth_runtime::WebSocketChannel| -> String {
        let msg =
            w.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), ch.outgoing.recv()).await
            })
            .expect("a message in time")
            .expect("channel open");
        match msg {
            WsMessage::Text(t) => t,
            other => panic!("{other:?}"),
        }
    };
    assert!(ch.incoming.send(WsMessage::Text("ping".into())));
    assert_eq!(recv(&mut ch), "pong", "automatic response");

    assert!(ch.incoming.send(WsMessage::Text("hello".into())));
    let first: serde_json::Value = serde_json::from_str(&recv(&mut ch)).unwrap();
    assert_eq!(first["user"], "ann");
    assert_eq!(first["seen"], 1);
    assert_eq!(first["sockets"], 1);
    assert_eq!(first["tags"], json!(["room", "user:ann"]));

    // Let the object be evicted; the socket stays open and the next message
    // rebuilds it, attachment included.
    std::thread::sleep(Duration::from_millis(400));
    assert!(ch.incoming.send(WsMessage::Text("again".into())));
    let second: serde_json::Value = serde_json::from_str(&recv(&mut ch)).unwrap();
    assert_eq!(second["user"], "ann");
    assert_eq!(second["seen"], 2);
    assert_ne!(second["instance"], first["instance"], "a new instance");

    assert!(ch.incoming.send(WsMessage::Close {
        code: 1000,
        reason: "done".into()
    }));
    let closed = w
        .rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), ch.outgoing.recv()).await })
        .unwrap();
    // The client's close ends the connection (echoed or not).
    assert!(
        matches!(closed, None | Some(WsMessage::Close { code: 1000, .. })),
        "{closed:?}"
    );
    w.stop();
}

#[test]
fn api_details_match_workerd() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    let w = setup.start();
    let t = w.json("/details?ns=kv");
    assert_eq!(t["noAlarm"]["ok"], true);
    assert_eq!(
        t["alarmString"]["message"],
        "Failed to execute 'setAlarm' on 'DurableObjectStorage': parameter 1 is not of type 'date'."
    );
    assert_eq!(
        t["alarmNaN"]["message"],
        "The value cannot be converted because it is not a valid Date."
    );
    assert_eq!(
        t["putUndefined"]["message"],
        "put() called with undefined value."
    );
    assert_eq!(t["fullBytes"]["ok"], 128 * 1024);
    assert_eq!(t["overBytes"]["error"], "RangeError");

    let t = w.json("/details");
    assert_eq!(
        t["txnSyncNotFn"]["message"],
        "Failed to execute 'transactionSync' on 'DurableObjectStorage': parameter 1 is not of type 'function'."
    );
    // Booleans and objects bind as their string form, undefined as NULL.
    assert_eq!(
        t["bindings"]["ok"],
        json!({"t": "true", "u": null, "o": "[object Object]"})
    );
    assert_eq!(
        t["bigint"]["message"],
        "Cannot convert a BigInt value to a number"
    );
    assert_eq!(t["nextAtEnd"]["ok"], false);

    let t = w.json("/rpc-details");
    assert_eq!(
        t["classInstance"]["message"],
        "Could not serialize object of type \"Point\". This type does not support serialization."
    );
    assert_eq!(t["hole"]["ok"], json!([3, false]));
    assert_eq!(t["namedError"]["error"], "Error");
    assert_eq!(t["namedError"]["message"], "MyError: named failure");
    assert_eq!(t["stubConstructor"]["message"], "Illegal constructor");
    assert_eq!(t["idJson"]["ok"], r#"{"name":"rpc"}"#);
    w.stop();
}

#[test]
fn a_caller_can_accept_an_objects_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let script = script();
    let mut setup = Setup::new(dir.path(), &script);
    setup.classes = CLASSES;
    let w = setup.start();
    let t = w.json("/ws-accept");
    assert_eq!(t["status"], 101);
    assert_eq!(t["got"][0], "pong", "the automatic response");
    let reply: serde_json::Value = serde_json::from_str(t["got"][1].as_str().unwrap()).unwrap();
    assert_eq!(reply["user"], "cal");
    assert_eq!(reply["message"], "hello");
    assert_eq!(t["readyState"], 2, "closing after close()");
    assert_eq!(t["answer"], serde_json::json!([4000, "closing: bye"]));
    assert_eq!(t["after"], 3);
    w.stop();
}
