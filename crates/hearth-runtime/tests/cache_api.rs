//! The `caches` global as a worker sees it: requests to a module worker run
//! Cache API calls and answer with what they observed; expiry is driven by
//! the store's manual clock between requests.

use std::sync::Arc;

use hearth_cache::{Cache, CacheLimits, CacheStore};
use hearth_core::ManualClock;
use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest};
use serde_json::{Value, json};

const NOW_MS: u64 = 1_700_000_000_000;

const WORKER: &str = r#"
const ITEM = "https://cache.test/item";
const steps = {
  async put() {
    const res = new Response(new ReadableStream({
      start(c) { c.enqueue(new TextEncoder().encode("streamed ")); c.enqueue(new TextEncoder().encode("body")); c.close(); },
    }), { status: 200, statusText: "Fine", headers: { "cache-control": "max-age=60", "x-kind": "a" } });
    const put = await caches.default.put(new Request(ITEM), res);
    return { put: put === undefined, bodyUsed: res.bodyUsed };
  },
  async match() {
    const hit = await caches.default.match(ITEM);
    if (hit === undefined) return { hit: false };
    return {
      hit: true, status: hit.status, statusText: hit.statusText, body: await hit.text(),
      kind: hit.headers.get("x-kind"), cacheStatus: hit.headers.get("cf-cache-status"), age: hit.headers.get("age"),
    };
  },
  async named() {
    const c = await caches.open("other");
    await c.put(ITEM, new Response("other", { headers: { "cache-control": "max-age=60" } }));
    return { inNamed: await (await c.match(ITEM)).text(), sameAsDefault: c === caches.default };
  },
  async errors() {
    const out = {};
    for (const [label, f] of [
      ["post", () => caches.default.put(new Request(ITEM, { method: "POST", body: "x" }), new Response("x"))],
      ["partial", () => caches.default.put(ITEM, new Response("x", { status: 206 }))],
      ["varyStar", () => caches.default.put(ITEM, new Response("x", { headers: { vary: "*" } }))],
      ["longName", () => caches.open("x".repeat(1024))],
    ]) {
      try { await f(); out[label] = "resolved"; } catch (e) { out[label] = `${e.constructor.name}: ${e.message}`; }
    }
    return out;
  },
  async methods() {
    const head = new Request(ITEM, { method: "HEAD" });
    return {
      head: (await caches.default.match(head)) === undefined,
      ignoreMethod: (await caches.default.match(head, { ignoreMethod: true })) !== undefined,
      deletePost: await caches.default.delete(new Request(ITEM, { method: "POST", body: "x" })),
      delete: await caches.default.delete(ITEM),
      deleteAgain: await caches.default.delete(ITEM),
    };
  },
};
export default {
  async fetch(request) {
    const step = new URL(request.url).pathname.slice(1);
    return Response.json(await steps[step]());
  },
};
"#;

struct Worker {
    pool: IsolatePool,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Worker {
    fn start(with_store: bool, clock: &ManualClock) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.js"), WORKER).unwrap();
        let mut config = WorkerConfig::new(dir.path().join("index.js"));
        config.isolates = 1;
        if with_store {
            let store = CacheStore::open(
                &dir.path().join("cache"),
                clock.shared(),
                CacheLimits::default(),
            )
            .unwrap();
            config.cache = Some(Arc::new(store) as Arc<dyn Cache>);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Worker {
            pool: IsolatePool::start(config).unwrap(),
            rt,
            _dir: dir,
        }
    }

    fn step(&self, name: &str) -> Value {
        let url = format!("http://localhost/{name}");
        let resp = self
            .rt
            .block_on(self.pool.dispatch(WorkerRequest::new("t", "GET", url)))
            .unwrap();
        let text = String::from_utf8(resp.body.to_vec()).unwrap();
        assert_eq!(resp.status, 200, "{name}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.pool.shutdown();
    }
}

#[test]
fn put_then_match_until_the_clock_passes_max_age() {
    let clock = ManualClock::new(NOW_MS);
    let w = Worker::start(true, &clock);
    assert_eq!(w.step("match"), json!({"hit": false}));
    assert_eq!(w.step("put"), json!({"put": true, "bodyUsed": true}));
    clock.advance_secs(59);
    assert_eq!(
        w.step("match"),
        json!({"hit": true, "status": 200, "statusText": "Fine", "body": "streamed body",
               "kind": "a", "cacheStatus": "HIT", "age": "59"})
    );
    clock.advance_secs(1);
    assert_eq!(w.step("match"), json!({"hit": false}));
}

#[test]
fn named_caches_methods_and_errors() {
    let clock = ManualClock::new(NOW_MS);
    let w = Worker::start(true, &clock);
    assert_eq!(
        w.step("named"),
        json!({"inNamed": "other", "sameAsDefault": false})
    );
    assert_eq!(w.step("match"), json!({"hit": false}), "named is separate");
    assert_eq!(
        w.step("errors"),
        json!({
            "post": "TypeError: Cannot cache response to non-GET request.",
            "partial": "TypeError: Cannot cache response to a range request (206 Partial Content).",
            "varyStar": "TypeError: Cannot cache response with 'Vary: *' header.",
            "longName": "TypeError: Cache name is too long.",
        })
    );
    w.step("put");
    assert_eq!(
        w.step("methods"),
        json!({"head": true, "ignoreMethod": true, "deletePost": false, "delete": true, "deleteAgain": false})
    );
}

#[test]
fn without_a_store_caches_checks_arguments_and_stores_nothing() {
    let clock = ManualClock::new(NOW_MS);
    let w = Worker::start(false, &clock);
    assert_eq!(w.step("put"), json!({"put": true, "bodyUsed": true}));
    assert_eq!(w.step("match"), json!({"hit": false}));
    assert_eq!(
        w.step("errors")["post"],
        "TypeError: Cannot cache response to non-GET request."
    );
    assert_eq!(w.step("methods")["delete"], false);
}
