//! `env.BUCKET` as a worker sees it: objects, bodies, metadata, conditions,
//! ranges, list, delete and multipart uploads, checked through a JSON
//! transcript.

mod bindings_common;

use std::sync::Arc;

use bindings_common::{err, ok};
use hearth_core::clock::ManualClock;
use hearth_r2::{R2Bucket, R2Limits};
use hearth_runtime::BindingAdapter;
use hearth_runtime::bindings::R2Adapter;
use serde_json::{Value, json};

const NOW_MS: u64 = 1_700_000_000_000;

/// Runs `body` against a fresh bucket bound as `BUCKET`; parts may be as
/// small as 4 bytes so multipart stays quick.
fn transcript(body: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_MS);
    let limits = R2Limits {
        min_part_bytes: 4,
        ..R2Limits::default()
    };
    let bucket = R2Bucket::open(dir.path().join("bucket"), clock.shared(), limits).unwrap();
    let body = format!("    const B = env.BUCKET;\n{body}");
    bindings_common::transcript(
        dir.path(),
        vec![Arc::new(R2Adapter::new("BUCKET", bucket))],
        &body,
    )
}

#[test]
fn adapter_reports_kind() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_MS);
    let bucket = R2Bucket::open(dir.path(), clock.shared(), R2Limits::default()).unwrap();
    let adapter = R2Adapter::new("BUCKET", bucket).with_backend("fs:/data/r2/BUCKET");
    assert_eq!(adapter.name(), "BUCKET");
    assert_eq!(adapter.kind(), "r2_bucket");
    assert_eq!(adapter.backend(), "fs:/data/r2/BUCKET");
}

#[test]
fn put_get_head_and_bodies() {
    let t = transcript(
        r#"
    await attempt(out, "put", async () => {
      const o = await B.put("a.txt", "hello world", {
        httpMetadata: { contentType: "text/plain", cacheExpiry: new Date(1700000100000) },
        customMetadata: { owner: "ann" },
      });
      return { key: o.key, size: o.size, etag: o.etag, httpEtag: o.httpEtag, uploaded: o.uploaded.toISOString(),
               isDate: o.uploaded instanceof Date, httpMetadata: o.httpMetadata, customMetadata: o.customMetadata,
               storageClass: o.storageClass, md5: o.checksums.toJSON(), md5Bytes: o.checksums.md5.byteLength,
               hasBody: "body" in o };
    });
    await attempt(out, "text", async () => { const o = await B.get("a.txt"); return [o.bodyUsed, await o.text(), o.bodyUsed]; });
    await attempt(out, "arrayBuffer", async () => [...new Uint8Array(await (await B.get("a.txt")).arrayBuffer())].length);
    await attempt(out, "stream", async () => {
      const o = await B.get("a.txt");
      const s = o.body;
      return [s instanceof ReadableStream, await new Response(s).text(), o.bodyUsed];
    });
    await attempt(out, "readTwice", async () => { const o = await B.get("a.txt"); await o.text(); return o.text(); });
    await attempt(out, "blob", async () => { const b = await (await B.get("a.txt")).blob(); return [b.type, b.size]; });
    await attempt(out, "headers", async () => {
      const o = await B.head("a.txt");
      const h = new Headers();
      o.writeHttpMetadata(h);
      return [...h];
    });
    await attempt(out, "head", async () => { const o = await B.head("a.txt"); return [o.size, o.range, "body" in o, o.customMetadata]; });
    await attempt(out, "headMissing", async () => (await B.head("nope")) === null);
    await attempt(out, "getMissing", async () => (await B.get("nope")) === null);
    await B.put("j", JSON.stringify({ x: [1] }));
    await attempt(out, "json", async () => (await B.get("j")).json());
    await B.put("bin", new Uint8Array([0, 255, 7]));
    await attempt(out, "bin", async () => [...new Uint8Array(await (await B.get("bin")).arrayBuffer())]);
    await B.put("blobbed", new Blob(["bl", "ob"]));
    await attempt(out, "blobPut", async () => (await B.get("blobbed")).text());
    await B.put("streamed", new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("st")); c.enqueue(new TextEncoder().encode("ream")); c.close(); } }));
    await attempt(out, "streamPut", async () => (await B.get("streamed")).text());
    await attempt(out, "nullPut", async () => { const o = await B.put("empty", null); return [o.size, await (await B.get("empty")).text()]; });
    await attempt(out, "headersMeta", async () => {
      const o = await B.put("h", "x", { httpMetadata: new Headers({ "content-type": "image/png", "cache-control": "no-store", "x-other": "1" }) });
      return (await B.head("h")).httpMetadata;
    });
    await attempt(out, "badValue", () => B.put("k", 42));
    await attempt(out, "longKey", () => B.put("k".repeat(1025), "v"));
    await attempt(out, "bigMeta", () => B.put("k", "v", { customMetadata: { m: "x".repeat(2100) } }));
    await attempt(out, "isPromise", () => { const p = B.head("a.txt"); return p instanceof Promise; });
"#,
    );
    let put = ok(&t, "put");
    assert_eq!(put["key"], "a.txt");
    assert_eq!(put["size"], 11);
    assert_eq!(put["etag"], "5eb63bbbe01eeed093cb22bb8f5acdc3");
    assert_eq!(put["httpEtag"], "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    assert_eq!(put["uploaded"], "2023-11-14T22:13:20.000Z");
    assert_eq!(put["isDate"], true);
    assert_eq!(
        put["httpMetadata"],
        json!({"contentType": "text/plain", "cacheExpiry": "2023-11-14T22:15:00.000Z"})
    );
    assert_eq!(put["customMetadata"], json!({"owner": "ann"}));
    assert_eq!(put["storageClass"], "Standard");
    assert_eq!(
        put["md5"],
        json!({"md5": "5eb63bbbe01eeed093cb22bb8f5acdc3"})
    );
    assert_eq!(put["md5Bytes"], 16);
    assert_eq!(put["hasBody"], false);
    assert_eq!(ok(&t, "text"), json!([false, "hello world", true]));
    assert_eq!(ok(&t, "arrayBuffer"), 11);
    assert_eq!(ok(&t, "stream"), json!([true, "hello world", true]));
    assert_eq!(
        err(&t, "readTwice"),
        (
            "TypeError".into(),
            "Body has already been used. It can only be used once. Use tee() first if you need to read it twice.".into()
        )
    );
    assert_eq!(ok(&t, "blob"), json!(["text/plain", 11]));
    assert_eq!(
        ok(&t, "headers"),
        json!([
            ["content-type", "text/plain"],
            ["expires", "Tue, 14 Nov 2023 22:15:00 GMT"]
        ])
    );
    assert_eq!(
        ok(&t, "head"),
        json!([11, {"offset": 0, "length": 11}, false, {"owner": "ann"}])
    );
    assert_eq!(ok(&t, "headMissing"), true);
    assert_eq!(ok(&t, "getMissing"), true);
    assert_eq!(ok(&t, "json"), json!({"x": [1]}));
    assert_eq!(ok(&t, "bin"), json!([0, 255, 7]));
    assert_eq!(ok(&t, "blobPut"), "blob");
    assert_eq!(ok(&t, "streamPut"), "stream");
    assert_eq!(ok(&t, "nullPut"), json!([0, ""]));
    assert_eq!(
        ok(&t, "headersMeta"),
        json!({"contentType": "image/png", "cacheControl": "no-store"})
    );
    assert_eq!(err(&t, "badValue").0, "TypeError");
    assert_eq!(
        err(&t, "longKey"),
        (
            "Error".into(),
            "put: The specified object name is not valid. (10020)".into()
        )
    );
    assert_eq!(
        err(&t, "bigMeta").1,
        "put: Your metadata headers exceed the maximum allowed metadata size. (10012)"
    );
    assert_eq!(ok(&t, "isPromise"), true);
}

#[test]
fn conditions_and_checksums() {
    let t = transcript(
        r#"
    const o = await B.put("c", "data");
    const etag = o.etag;
    await attempt(out, "matchOk", async () => { const r = await B.get("c", { onlyIf: { etagMatches: etag } }); return ["body" in r, await r.text()]; });
    await attempt(out, "matchFails", async () => {
      const r = await B.get("c", { onlyIf: { etagMatches: "other" } });
      return [r.key, "body" in r, typeof r.text];
    });
    await attempt(out, "noneMatchHeaders", async () => {
      const r = await B.get("c", { onlyIf: new Headers({ "if-none-match": `"${etag}"` }) });
      return "body" in r;
    });
    await attempt(out, "uploadedBefore", async () => {
      const r = await B.get("c", { onlyIf: { uploadedBefore: new Date(1600000000000) } });
      return "body" in r;
    });
    await attempt(out, "quoted", () => B.get("c", { onlyIf: { etagMatches: `"${etag}"` } }));
    await attempt(out, "putIfAbsent", async () => (await B.put("c", "new", { onlyIf: { etagDoesNotMatch: "*" } })) === null);
    await attempt(out, "afterPutIfAbsent", async () => (await B.get("c")).text());
    await attempt(out, "putIfMatch", async () => (await B.put("c", "newer", { onlyIf: { etagMatches: etag } })).size);
    await attempt(out, "md5Ok", async () => (await B.put("m", "hello world", { md5: "5eb63bbbe01eeed093cb22bb8f5acdc3" })).checksums.toJSON());
    await attempt(out, "sha1Ok", async () => (await B.put("s", "hello world", { sha1: "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed" })).checksums.toJSON());
    await attempt(out, "md5Bad", () => B.put("m2", "hello world", { md5: "00000000000000000000000000000000" }));
    await attempt(out, "md5Short", () => B.put("m2", "x", { md5: "abc" }));
    await attempt(out, "twoHashes", () => B.put("m2", "x", { md5: "5eb63bbbe01eeed093cb22bb8f5acdc3", sha1: "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed" }));
"#,
    );
    assert_eq!(ok(&t, "matchOk"), json!([true, "data"]));
    assert_eq!(ok(&t, "matchFails"), json!(["c", false, "undefined"]));
    assert_eq!(ok(&t, "noneMatchHeaders"), false);
    assert_eq!(ok(&t, "uploadedBefore"), false);
    assert_eq!(
        err(&t, "quoted").0,
        "TypeError",
        "a quoted etag in the object form is refused"
    );
    assert_eq!(ok(&t, "putIfAbsent"), true);
    assert_eq!(ok(&t, "afterPutIfAbsent"), "data");
    assert_eq!(ok(&t, "putIfMatch"), 5);
    assert_eq!(
        ok(&t, "md5Ok"),
        json!({"md5": "5eb63bbbe01eeed093cb22bb8f5acdc3"})
    );
    assert_eq!(
        ok(&t, "sha1Ok"),
        json!({"md5": "5eb63bbbe01eeed093cb22bb8f5acdc3", "sha1": "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"})
    );
    assert_eq!(
        err(&t, "md5Bad").1,
        "put: The MD5 checksum you specified did not match what we received.\nYou provided a MD5 checksum with value: 00000000000000000000000000000000\nActual MD5 was: 5eb63bbbe01eeed093cb22bb8f5acdc3 (10037)"
    );
    assert_eq!(
        err(&t, "md5Short"),
        ("TypeError".into(), "MD5 is 32 hex characters, not 3".into())
    );
    assert_eq!(
        err(&t, "twoHashes"),
        (
            "TypeError".into(),
            "You cannot specify multiple hashing algorithms.".into()
        )
    );
}

#[test]
fn ranges() {
    let t = transcript(
        r#"
    await B.put("r", "0123456789");
    const read = async (range) => { const o = await B.get("r", { range }); return [o.range, await o.text()]; };
    await attempt(out, "offsetLength", () => read({ offset: 2, length: 3 }));
    await attempt(out, "offset", () => read({ offset: 7 }));
    await attempt(out, "length", () => read({ length: 4 }));
    await attempt(out, "suffix", () => read({ suffix: 3 }));
    await attempt(out, "header", () => read(new Headers({ range: "bytes=1-2" })));
    await attempt(out, "headerSuffix", () => read(new Headers({ range: "bytes=-2" })));
    await attempt(out, "noRangeHeader", () => read(new Headers()));
    await attempt(out, "beyond", () => read({ offset: 20 }));
    await attempt(out, "multi", () => read(new Headers({ range: "bytes=0-1,3-4" })));
    await attempt(out, "negative", () => read({ offset: -1 }));
    await attempt(out, "fraction", () => read({ length: 1.5 }));
    await attempt(out, "suffixAndOffset", () => read({ suffix: 1, offset: 1 }));
    await attempt(out, "streamRange", async () => { const o = await B.get("r", { range: { offset: 8 } }); return new Response(o.body).text(); });
"#,
    );
    assert_eq!(
        ok(&t, "offsetLength"),
        json!([{"offset": 2, "length": 3}, "234"])
    );
    assert_eq!(ok(&t, "offset"), json!([{"offset": 7, "length": 3}, "789"]));
    assert_eq!(
        ok(&t, "length"),
        json!([{"offset": 0, "length": 4}, "0123"])
    );
    assert_eq!(ok(&t, "suffix"), json!([{"offset": 7, "length": 3}, "789"]));
    assert_eq!(ok(&t, "header"), json!([{"offset": 1, "length": 2}, "12"]));
    assert_eq!(
        ok(&t, "headerSuffix"),
        json!([{"offset": 8, "length": 2}, "89"])
    );
    assert_eq!(
        ok(&t, "noRangeHeader"),
        json!([{"offset": 0, "length": 10}, "0123456789"])
    );
    assert_eq!(
        err(&t, "beyond"),
        (
            "Error".into(),
            "get: The requested range is not satisfiable (10039)".into()
        )
    );
    assert_eq!(
        err(&t, "multi").1,
        "get: The requested range is not satisfiable (10039)"
    );
    assert_eq!(
        err(&t, "negative"),
        (
            "RangeError".into(),
            "Invalid range. Starting offset (-1) must be greater than or equal to 0.".into()
        )
    );
    assert_eq!(
        err(&t, "fraction"),
        (
            "RangeError".into(),
            "Invalid range. Length (1.5) must be an integer, not floating point.".into()
        )
    );
    assert_eq!(
        err(&t, "suffixAndOffset"),
        (
            "TypeError".into(),
            "Suffix is incompatible with offset.".into()
        )
    );
    assert_eq!(ok(&t, "streamRange"), "89");
}

#[test]
fn list_and_delete() {
    let t = transcript(
        r#"
    for (const k of ["a/1", "a/2", "a/b/3", "c"]) await B.put(k, k, { customMetadata: { k } });
    await attempt(out, "all", async () => { const r = await B.list(); return [r.objects.map((o) => o.key), r.truncated, "cursor" in r, r.delimitedPrefixes]; });
    await attempt(out, "noInclude", async () => { const r = await B.list({ limit: 1 }); return [r.objects[0].customMetadata, r.objects[0].uploaded instanceof Date]; });
    await attempt(out, "include", async () => (await B.list({ limit: 1, include: ["customMetadata"] })).objects[0].customMetadata);
    await attempt(out, "delimited", async () => { const r = await B.list({ prefix: "a/", delimiter: "/" }); return [r.objects.map((o) => o.key), r.delimitedPrefixes]; });
    await attempt(out, "paged", async () => {
      const p1 = await B.list({ limit: 2 });
      const p2 = await B.list({ limit: 2, cursor: p1.cursor });
      return [p1.objects.map((o) => o.key), p1.truncated, typeof p1.cursor, p2.objects.map((o) => o.key), p2.truncated];
    });
    await attempt(out, "startAfter", async () => (await B.list({ startAfter: "a/2" })).objects.map((o) => o.key));
    await attempt(out, "badLimit", () => B.list({ limit: 0 }));
    await attempt(out, "badInclude", () => B.list({ include: ["nope"] }));
    await attempt(out, "deleteOne", async () => { await B.delete("c"); return (await B.head("c")) === null; });
    await attempt(out, "deleteMany", async () => { await B.delete(["a/1", "a/2", "missing"]); return (await B.list()).objects.map((o) => o.key); });
    await attempt(out, "deleteBadKey", () => B.delete("k".repeat(1025)));
"#,
    );
    assert_eq!(
        ok(&t, "all"),
        json!([["a/1", "a/2", "a/b/3", "c"], false, false, []])
    );
    // Without `include`, workerd hands out empty metadata objects.
    assert_eq!(ok(&t, "noInclude"), json!([{}, true]));
    assert_eq!(ok(&t, "include"), json!({"k": "a/1"}));
    assert_eq!(ok(&t, "delimited"), json!([["a/1", "a/2"], ["a/b/"]]));
    assert_eq!(
        ok(&t, "paged"),
        json!([["a/1", "a/2"], true, "string", ["a/b/3", "c"], false])
    );
    assert_eq!(ok(&t, "startAfter"), json!(["a/b/3", "c"]));
    assert_eq!(
        err(&t, "badLimit").1,
        "list: MaxKeys params must be positive integer <= 1000. (10022)"
    );
    assert_eq!(
        err(&t, "badInclude"),
        ("RangeError".into(), "Unsupported include value nope".into())
    );
    assert_eq!(ok(&t, "deleteOne"), true);
    assert_eq!(ok(&t, "deleteMany"), json!(["a/b/3"]));
    assert_eq!(
        err(&t, "deleteBadKey").1,
        "delete: The specified object name is not valid. (10020)"
    );
}

#[test]
fn multipart_uploads() {
    let t = transcript(
        r#"
    await attempt(out, "flow", async () => {
      const up = await B.createMultipartUpload("big", { httpMetadata: { contentType: "text/csv" }, customMetadata: { p: "1" } });
      const p1 = await up.uploadPart(1, "aaaa");
      const p2 = await up.uploadPart(2, new Uint8Array([98, 98]));
      const resumed = B.resumeMultipartUpload("big", up.uploadId);
      const o = await resumed.complete([p1, p2]);
      const got = await B.get("big");
      return [typeof up.uploadId, up.key, p1.partNumber, p1.etag, o.size, o.etag.endsWith("-2"),
              o.httpMetadata, o.customMetadata, await got.text()];
    });
    await attempt(out, "tooSmall", async () => {
      const up = await B.createMultipartUpload("small");
      const a = await up.uploadPart(1, "a");
      const b = await up.uploadPart(2, "bbbb");
      return up.complete([a, b]);
    });
    await attempt(out, "badPart", async () => {
      const up = await B.createMultipartUpload("bp");
      await up.uploadPart(1, "aaaa");
      return up.complete([{ partNumber: 1, etag: "nope" }]);
    });
    await attempt(out, "aborted", async () => {
      const up = await B.createMultipartUpload("ab");
      await up.abort();
      return up.uploadPart(1, "aaaa");
    });
    await attempt(out, "unknownUpload", () => B.resumeMultipartUpload("k", "not-an-id").uploadPart(1, "x"));
    await attempt(out, "partZero", async () => (await B.createMultipartUpload("z")).uploadPart(0, "x"));
"#,
    );
    let flow = ok(&t, "flow");
    assert_eq!(flow[0], "string");
    assert_eq!(flow[1], "big");
    assert_eq!(flow[2], 1);
    assert_eq!(flow[3], "74b87337454200d4d33f80c4663dc5e5");
    assert_eq!(flow[4], 6);
    assert_eq!(flow[5], true);
    assert_eq!(flow[6], json!({"contentType": "text/csv"}));
    assert_eq!(flow[7], json!({"p": "1"}));
    assert_eq!(flow[8], "aaaabb");
    assert_eq!(
        err(&t, "tooSmall").1,
        "completeMultipartUpload: Your proposed upload is smaller than the minimum allowed object size. (10011)"
    );
    assert_eq!(
        err(&t, "badPart").1,
        "completeMultipartUpload: One or more of the specified parts could not be found. (10025)"
    );
    assert_eq!(
        err(&t, "aborted").1,
        "uploadPart: The specified multipart upload does not exist. (10024)"
    );
    assert_eq!(
        err(&t, "unknownUpload").1,
        "uploadPart: The specified multipart upload does not exist. (10024)"
    );
    assert_eq!(err(&t, "partZero").0, "TypeError");
}

/// A body larger than one chunk streams in several reads of the handle; a
/// cancelled stream ends the body, and a later `text()` finds it used.
#[test]
fn large_bodies_stream_in_chunks_and_cancel() {
    let t = transcript(
        r#"
    await B.put("big", new Uint8Array(150 * 1024).fill(7));
    await attempt(out, "chunks", async () => {
      const reader = (await B.get("big")).body.getReader();
      const sizes = [];
      let sum = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        sizes.push(value.byteLength);
        for (const b of value) sum += b;
      }
      return [sizes.length, sizes.reduce((a, b) => a + b, 0), sum];
    });
    await attempt(out, "readAll", async () => (await (await B.get("big")).arrayBuffer()).byteLength);
    await attempt(out, "cancel", async () => {
      const o = await B.get("big");
      const reader = o.body.getReader();
      const first = (await reader.read()).value.byteLength;
      await reader.cancel();
      return [first, o.bodyUsed];
    });
    await attempt(out, "afterCancel", async () => {
      const o = await B.get("big");
      await o.body.cancel();
      return o.text();
    });
"#,
    );
    assert_eq!(ok(&t, "chunks"), json!([3, 150 * 1024, 7 * 150 * 1024]));
    assert_eq!(ok(&t, "readAll"), json!(150 * 1024));
    assert_eq!(ok(&t, "cancel"), json!([64 * 1024, true]));
    let (class, _) = err(&t, "afterCancel");
    assert_eq!(class, "TypeError");
}
