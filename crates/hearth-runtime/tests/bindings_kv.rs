//! `env.KV` as a worker sees it: a module worker exercises every method and
//! answers with a JSON transcript, which the test checks.

mod bindings_common;

use std::sync::Arc;

use bindings_common::{err, ok};
use hearth_core::clock::ManualClock;
use hearth_kv::{KvLimits, KvNamespace};
use hearth_runtime::bindings::KvAdapter;
use serde_json::Value;

const NOW_MS: u64 = 1_700_000_000_000;

/// Runs `body` against a fresh namespace bound as `KV`.
fn transcript(body: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_MS);
    let ns = KvNamespace::open(
        &dir.path().join("kv.sqlite"),
        clock.shared(),
        KvLimits::default(),
    )
    .unwrap();
    let body = format!("    const KV = env.KV;\n{body}");
    bindings_common::transcript(
        dir.path(),
        vec![Arc::new(KvAdapter::new("KV", Arc::new(ns)))],
        &body,
    )
}

#[test]
fn values_round_trip_in_every_type() {
    let t = transcript(
        r#"
    await attempt(out, "put", () => KV.put("greeting", "héllo"));
    await attempt(out, "text", () => KV.get("greeting"));
    await attempt(out, "textByOption", () => KV.get("greeting", { type: "text" }));
    await attempt(out, "missing", async () => (await KV.get("nope")) === null);
    await KV.put("obj", JSON.stringify({ a: [1, 2], b: null }));
    await attempt(out, "json", () => KV.get("obj", "json"));
    await KV.put("bin", new Uint8Array([0, 1, 254, 255]));
    await attempt(out, "arrayBuffer", async () => {
      const b = await KV.get("bin", "arrayBuffer");
      return [b instanceof ArrayBuffer, ...new Uint8Array(b)];
    });
    await KV.put("view", new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2));
    await attempt(out, "dataView", async () => [...new Uint8Array(await KV.get("view", "arrayBuffer"))]);
    await KV.put("buf", new Uint8Array([65, 66]).buffer);
    await attempt(out, "arrayBufferPut", () => KV.get("buf"));
    await attempt(out, "stream", async () => {
      const s = await KV.get("greeting", "stream");
      return [s instanceof ReadableStream, await new Response(s).text()];
    });
    await attempt(out, "putStream", async () => {
      const s = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("ab")); c.enqueue(new TextEncoder().encode("cd")); c.close(); } });
      await KV.put("streamed", s);
      return KV.get("streamed");
    });
    await KV.put("num", 42);
    await attempt(out, "coerced", () => KV.get("num"));
    await attempt(out, "badJson", () => KV.get("greeting", "json"));
    await attempt(out, "badType", () => KV.get("greeting", "xml"));
    await attempt(out, "badTypeMissingKey", () => KV.get("nope", "xml"));
    await attempt(out, "isPromise", () => KV.get("greeting") instanceof Promise);
    await attempt(out, "putUndefined", async () => { await KV.put("x", undefined); return KV.get("x"); });
    await attempt(out, "putNull", async () => { await KV.put("x", null); return KV.get("x"); });
    await attempt(out, "putObject", () => KV.put("x", { a: 1 }));
"#,
    );
    assert_eq!(ok(&t, "text"), "héllo");
    assert_eq!(ok(&t, "textByOption"), "héllo");
    assert_eq!(ok(&t, "missing"), true);
    assert_eq!(ok(&t, "json"), serde_json::json!({"a": [1, 2], "b": null}));
    assert_eq!(
        ok(&t, "arrayBuffer"),
        serde_json::json!([true, 0, 1, 254, 255])
    );
    assert_eq!(ok(&t, "dataView"), serde_json::json!([8, 7]));
    assert_eq!(ok(&t, "arrayBufferPut"), "AB");
    assert_eq!(ok(&t, "stream"), serde_json::json!([true, "héllo"]));
    assert_eq!(ok(&t, "putStream"), "abcd");
    assert_eq!(ok(&t, "coerced"), "42");
    assert_eq!(err(&t, "badJson").0, "SyntaxError");
    assert_eq!(
        err(&t, "badType"),
        (
            "TypeError".into(),
            "Unknown response type. Possible types are \"text\", \"arrayBuffer\", \"json\", and \"stream\".".into()
        )
    );
    assert_eq!(ok(&t, "badTypeMissingKey"), Value::Null);
    assert_eq!(ok(&t, "isPromise"), true);
    // workerd stores any primitive as its string form but refuses objects.
    assert_eq!(ok(&t, "putUndefined"), "undefined");
    assert_eq!(ok(&t, "putNull"), "null");
    assert_eq!(
        err(&t, "putObject"),
        (
            "TypeError".into(),
            "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.".into()
        )
    );
}

#[test]
fn metadata_and_expiration() {
    let t = transcript(&format!(
        r#"
    await KV.put("m", "v", {{ metadata: {{ owner: "ann", n: 3 }}, expirationTtl: 120 }});
    await attempt(out, "withMeta", () => KV.getWithMetadata("m"));
    await attempt(out, "withMetaJson", () => KV.getWithMetadata("m", {{ type: "json", cacheTtl: 60 }}).catch(e => e.constructor.name));
    await attempt(out, "withMetaMissing", () => KV.getWithMetadata("absent"));
    await KV.put("plain", "p");
    await attempt(out, "noMeta", () => KV.getWithMetadata("plain"));
    await attempt(out, "list", () => KV.list());
    await attempt(out, "expAbs", () => KV.put("e", "v", {{ expiration: {abs} }}));
    await attempt(out, "ttlTooSmall", () => KV.put("e", "v", {{ expirationTtl: 30 }}));
    await attempt(out, "ttlNotNumber", () => KV.put("e", "v", {{ expirationTtl: "abc" }}));
    await attempt(out, "expTooSoon", () => KV.put("e", "v", {{ expiration: {soon} }}));
    await attempt(out, "metaTooBig", () => KV.put("e", "v", {{ metadata: {{ big: "x".repeat(1100) }} }}));
    await attempt(out, "cacheTtlTooSmall", () => KV.get("m", {{ cacheTtl: 10 }}));
"#,
        abs = NOW_MS / 1000 + 3600,
        soon = NOW_MS / 1000 + 10,
    ));
    assert_eq!(
        ok(&t, "withMeta"),
        serde_json::json!({"value": "v", "metadata": {"owner": "ann", "n": 3}, "cacheStatus": null})
    );
    // "v" is not JSON: the value fails to parse.
    assert_eq!(ok(&t, "withMetaJson"), "SyntaxError");
    assert_eq!(
        ok(&t, "withMetaMissing"),
        serde_json::json!({"value": null, "metadata": null, "cacheStatus": null})
    );
    assert_eq!(
        ok(&t, "noMeta"),
        serde_json::json!({"value": "p", "metadata": null, "cacheStatus": null})
    );
    let now = NOW_MS / 1000;
    assert_eq!(
        ok(&t, "list"),
        serde_json::json!({
            "keys": [
                {"name": "m", "expiration": now + 120, "metadata": {"owner": "ann", "n": 3}},
                {"name": "plain"}
            ],
            "list_complete": true,
            "cacheStatus": null
        })
    );
    assert_eq!(ok(&t, "expAbs"), Value::Null);
    assert_eq!(
        err(&t, "ttlTooSmall"),
        (
            "Error".into(),
            "KV PUT failed: 400 Invalid expiration_ttl of 30. Expiration TTL must be at least 60."
                .into()
        )
    );
    assert_eq!(
        err(&t, "ttlNotNumber"),
        (
            "Error".into(),
            // workerd coerces a non-number to NaN and NaN to 0.
            "KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0."
                .into()
        )
    );
    assert_eq!(
        err(&t, "expTooSoon").1,
        format!(
            "KV PUT failed: 400 Invalid expiration of {}. Expiration times must be at least 60 seconds in the future.",
            now + 10
        )
    );
    assert_eq!(
        err(&t, "metaTooBig").1,
        "KV PUT failed: 413 Metadata length of 1110 exceeds limit of 1024."
    );
    assert_eq!(
        err(&t, "cacheTtlTooSmall").1,
        "KV GET failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 30."
    );
}

#[test]
fn key_rules_and_sizes() {
    let t = transcript(
        r#"
    await attempt(out, "empty", () => KV.get(""));
    await attempt(out, "dot", () => KV.put(".", "v"));
    await attempt(out, "dotdot", () => KV.delete(".."));
    await attempt(out, "long", () => KV.get("k".repeat(513)));
    await attempt(out, "longPut", () => KV.put("k".repeat(600), "v"));
    await attempt(out, "oversized", () => KV.put("big", new Uint8Array(25 * 1024 * 1024 + 1)));
    await attempt(out, "rejectsNotThrows", () => { const p = KV.get(""); p.catch(() => {}); return p instanceof Promise; });
    await KV.put("gone", "v");
    await attempt(out, "delete", () => KV.delete("gone"));
    await attempt(out, "afterDelete", () => KV.get("gone"));
    await attempt(out, "deleteMissing", () => KV.delete("never"));
"#,
    );
    assert_eq!(
        err(&t, "empty"),
        ("TypeError".into(), "Key name cannot be empty.".into())
    );
    assert_eq!(
        err(&t, "dot"),
        (
            "TypeError".into(),
            "\".\" is not allowed as a key name.".into()
        )
    );
    assert_eq!(
        err(&t, "dotdot"),
        (
            "TypeError".into(),
            "\"..\" is not allowed as a key name.".into()
        )
    );
    assert_eq!(
        err(&t, "long"),
        (
            "Error".into(),
            "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
                .into()
        )
    );
    assert_eq!(
        err(&t, "longPut").1,
        "KV PUT failed: 414 UTF-8 encoded length of 600 exceeds key length limit of 512."
    );
    assert_eq!(
        err(&t, "oversized").1,
        "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."
    );
    assert_eq!(ok(&t, "rejectsNotThrows"), true);
    assert_eq!(ok(&t, "delete"), Value::Null);
    assert_eq!(ok(&t, "afterDelete"), Value::Null);
    assert_eq!(ok(&t, "deleteMissing"), Value::Null);
}

#[test]
fn list_pages_with_prefix_limit_and_cursor() {
    let t = transcript(
        r#"
    for (const k of ["a/1", "a/2", "a/3", "b/1"]) await KV.put(k, k);
    await attempt(out, "page1", () => KV.list({ prefix: "a/", limit: 2 }));
    const first = await KV.list({ prefix: "a/", limit: 2 });
    await attempt(out, "page2", () => KV.list({ prefix: "a/", limit: 2, cursor: first.cursor }));
    await attempt(out, "limit0", () => KV.list({ limit: 0 }));
    await attempt(out, "limitHuge", () => KV.list({ limit: 1001 }));
    await attempt(out, "badCursor", () => KV.list({ cursor: "!!!" }));
"#,
    );
    let p1 = ok(&t, "page1");
    assert_eq!(
        p1["keys"],
        serde_json::json!([{"name": "a/1"}, {"name": "a/2"}])
    );
    assert_eq!(p1["list_complete"], false);
    assert!(p1["cursor"].is_string());
    assert_eq!(
        ok(&t, "page2"),
        serde_json::json!({"keys": [{"name": "a/3"}], "list_complete": true, "cacheStatus": null})
    );
    assert_eq!(
        err(&t, "limit0").1,
        "KV GET failed: 400 Invalid key_count_limit of 0. Please specify an integer greater than 0."
    );
    assert_eq!(
        err(&t, "limitHuge").1,
        "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000."
    );
    assert_eq!(err(&t, "badCursor").1, "KV GET failed: 400 Invalid cursor.");
}

#[test]
fn bulk_get_returns_maps() {
    let t = transcript(
        r#"
    await KV.put("x", "1", { metadata: { m: true } });
    await KV.put("y", "[2]");
    await attempt(out, "text", async () => [...await KV.get(["x", "y", "z"])]);
    await attempt(out, "isMap", async () => (await KV.get(["x"])) instanceof Map);
    await attempt(out, "json", async () => [...await KV.get(["x", "y"], "json")]);
    await attempt(out, "withMeta", async () => [...await KV.getWithMetadata(["x", "z"], { type: "text" })]);
    await KV.put("s", "not json");
    await attempt(out, "notJson", () => KV.get(["s"], "json"));
    await attempt(out, "badType", () => KV.get(["x"], "arrayBuffer"));
    await attempt(out, "none", () => KV.get([]));
    await attempt(out, "tooMany", () => KV.get(Array.from({ length: 101 }, (_, i) => "k" + i)));
"#,
    );
    assert_eq!(
        ok(&t, "text"),
        serde_json::json!([["x", "1"], ["y", "[2]"], ["z", null]])
    );
    assert_eq!(ok(&t, "isMap"), true);
    assert_eq!(ok(&t, "json"), serde_json::json!([["x", 1], ["y", [2]]]));
    assert_eq!(
        ok(&t, "withMeta"),
        serde_json::json!([["x", {"value": "1", "metadata": {"m": true}}], ["z", null]])
    );
    assert_eq!(
        err(&t, "notJson").1,
        "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value"
    );
    assert_eq!(
        err(&t, "badType").1,
        "KV GET_BULK failed: 400 \"arrayBuffer\" is not a valid type. Use \"json\" or \"text\""
    );
    assert_eq!(
        err(&t, "none").1,
        "KV GET_BULK failed: 400 You must request a minimum of 1 key"
    );
    assert_eq!(
        err(&t, "tooMany").1,
        "KV GET_BULK failed: 400 You can request a maximum of 100 keys"
    );
}
