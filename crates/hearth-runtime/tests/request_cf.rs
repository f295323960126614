//! `request.cf` travels with a request a worker passes on: to a Durable
//! Object through `stub.fetch()` and to another worker through a service
//! binding's `fetch()`, as workerd sends it along.

mod durable_common;

use std::sync::Arc;

use durable_common::{Setup, request};
use hearth_runtime::{IsolatePool, ServiceBinding, ServiceRegistry, WorkerConfig};
use serde_json::{Value, json};

/// The object and the worker both answer with the `cf` they were given.
const FORWARD: &str = r#"
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async fetch(request) {
    return Response.json({ cf: request.cf ?? null });
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const stub = env.COUNTER.get(env.COUNTER.idFromName("cf"));
    switch (url.pathname) {
      case "/forward": return stub.fetch(request);
      case "/init": return stub.fetch("http://do/", { cf: { cacheTtl: 5, custom: "x" } });
      case "/rebuilt": return stub.fetch(new Request("http://do/", request));
      case "/plain": return stub.fetch("http://do/");
      case "/self": return Response.json({ cf: request.cf ?? null });
    }
    return new Response("no route", { status: 404 });
  }
}
"#;

fn edge_cf() -> Value {
    json!({
        "country": "NZ", "colo": "AKL", "asn": 9500, "city": "Auckland",
        "httpProtocol": "HTTP/2", "tlsVersion": "TLSv1.3",
        "botManagement": { "score": 99, "verifiedBot": false },
    })
}

fn cf_of(w: &durable_common::Worker, path: &str, cf: Option<&Value>) -> Value {
    let mut req = request("GET", path, "");
    req.cf = cf.map(|v| v.to_string());
    let r =
        w.rt.block_on(w.pool.dispatch(req))
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert_eq!(r.status, 200, "{path}: {text}");
    serde_json::from_str::<Value>(&text).unwrap()["cf"].clone()
}

#[test]
fn durable_object_sees_the_callers_cf() {
    let dir = tempfile::tempdir().unwrap();
    let w = Setup::new(dir.path(), FORWARD).start();
    let cf = edge_cf();
    // The incoming request, passed on as it is.
    assert_eq!(cf_of(&w, "/forward", Some(&cf)), cf);
    // A new Request built from it keeps its cf.
    assert_eq!(cf_of(&w, "/rebuilt", Some(&cf)), cf);
    // Without a cf from the front, the worker's own (runtime) cf goes along.
    let own = cf_of(&w, "/self", None);
    assert!(own.is_object(), "{own}");
    assert_eq!(cf_of(&w, "/forward", None), own);
    // `cf` given in the RequestInit.
    assert_eq!(
        cf_of(&w, "/init", Some(&cf)),
        json!({ "cacheTtl": 5, "custom": "x" })
    );
    // A request made from a URL alone has none.
    assert_eq!(cf_of(&w, "/plain", Some(&cf)), Value::Null);
    w.stop();
}

const CALLER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/forward": return env.CALLEE.fetch(request);
      case "/init": return env.CALLEE.fetch("http://callee/", { cf: { image: { width: 10 } } });
    }
    return new Response("no route", { status: 404 });
  }
}
"#;

const CALLEE: &str = r#"
export default {
  async fetch(request) {
    return Response.json({ cf: request.cf ?? null });
  }
}
"#;

#[test]
fn service_binding_fetch_carries_cf() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("callee.js"), CALLEE).unwrap();
    std::fs::write(dir.path().join("caller.js"), CALLER).unwrap();
    let registry = ServiceRegistry::new();
    let callee = IsolatePool::start(WorkerConfig::new(dir.path().join("callee.js"))).unwrap();
    registry.register("callee", Arc::new(callee.clone()));
    let mut config = WorkerConfig::new(dir.path().join("caller.js"));
    config.services = vec![ServiceBinding {
        binding: "CALLEE".into(),
        service: "callee".into(),
        entrypoint: None,
        registry,
    }];
    let caller = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cf_via = |path: &str, cf: &Value| -> Value {
        let mut req = request("GET", path, "");
        req.cf = Some(cf.to_string());
        let r = rt
            .block_on(caller.dispatch(req))
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        assert_eq!(r.status, 200, "{path}: {text}");
        serde_json::from_str::<Value>(&text).unwrap()["cf"].clone()
    };
    let cf = edge_cf();
    assert_eq!(cf_via("/forward", &cf), cf);
    assert_eq!(cf_via("/init", &cf), json!({ "image": { "width": 10 } }));
    for pool in [caller, callee] {
        pool.shutdown();
        pool.join();
    }
}
