//! A counter worker in Rust: `POST /count/<name>` increments a counter kept
//! in the `COUNTERS` KV namespace, `GET /count/<name>` reads it. Any other
//! path answers 404; a name longer than KV's key limit surfaces the binding's
//! own error as an uncaught exception (500).
//!
//! Serve it with [`config`] (see `tests/http.rs`): the same front, routing
//! and service bindings as a JavaScript worker.

use std::sync::Arc;

use hearth_kv::{GetOptions, KvNamespace, PutOptions};
use hearth_runtime::native_worker::{NativeRequest, NativeResponse};
use hearth_runtime::{NativeContext, NativeEnv, NativeWorker, RustWorker, WorkerConfig};

/// The KV binding the worker reads and writes.
pub const COUNTERS: &str = "COUNTERS";

pub struct Counter;

impl NativeWorker for Counter {
    fn fetch(
        &self,
        request: NativeRequest,
        env: &NativeEnv,
        _ctx: &NativeContext,
    ) -> Result<NativeResponse, String> {
        let path = path_of(&request.url);
        let Some(name) = path.strip_prefix("/count/").filter(|n| !n.is_empty()) else {
            return Ok(NativeResponse::text("not found").with_status(404));
        };
        let kv = env.kv(COUNTERS)?;
        let current = read(kv, name)?;
        let value = match request.method.as_str() {
            "GET" => current,
            "POST" => {
                let next = current + 1;
                // Ok means committed: the count survives a crash after this.
                kv.put(name, next.to_string(), &PutOptions::default())
                    .map_err(|e| e.to_string())?;
                next
            }
            _ => return Ok(NativeResponse::text("method not allowed").with_status(405)),
        };
        let body = serde_json::json!({"name": name, "count": value, "from": "rust"});
        Ok(NativeResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: bytes::Bytes::from(body.to_string()),
        })
    }
}

fn read(kv: &KvNamespace, name: &str) -> Result<u64, String> {
    let value = kv
        .get(name, &GetOptions::text())
        .map_err(|e| e.to_string())?;
    Ok(value
        .as_ref()
        .and_then(|v| v.as_text())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0))
}

fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .unwrap_or("/");
    path.split('?').next().unwrap_or(path)
}

/// The worker's config for the runtime, over an opened KV namespace.
pub fn config(counters: Arc<KvNamespace>) -> WorkerConfig {
    let env = NativeEnv::new().with_kv(COUNTERS, counters);
    WorkerConfig::native("counter", RustWorker::new(Counter, env))
}
