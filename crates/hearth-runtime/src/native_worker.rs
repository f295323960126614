//! Rust-native workers: a worker whose `fetch(request, env, ctx)` is Rust
//! code, served by the same front and dispatch path as JavaScript workers
//! ([`crate::IsolatePool::dispatch`]) and reachable from JavaScript workers
//! through a service binding's `fetch()`.
//!
//! `env` gives typed access to the same binding contracts JavaScript
//! workers use ([`KvNamespace`], [`D1Database`], [`R2Bucket`]), so an
//! acknowledged write is as durable as from JavaScript. Handlers are
//! synchronous (the contracts are) and run on the blocking thread pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use hearth_d1::D1Database;
use hearth_kv::KvNamespace;
use hearth_r2::R2Bucket;

pub use crate::durable::{NativeRequest, NativeResponse};
use crate::error::DispatchError;
use crate::{WorkerRequest, WorkerResponse};

/// The worker's `env`: vars, secrets and bindings by name.
#[derive(Default, Clone)]
pub struct NativeEnv {
    vars: BTreeMap<String, serde_json::Value>,
    secrets: BTreeMap<String, String>,
    kv: BTreeMap<String, Arc<KvNamespace>>,
    d1: BTreeMap<String, Arc<D1Database>>,
    r2: BTreeMap<String, Arc<R2Bucket>>,
}

impl std::fmt::Debug for NativeEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeEnv")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("kv", &self.kv.keys().collect::<Vec<_>>())
            .field("d1", &self.d1.keys().collect::<Vec<_>>())
            .field("r2", &self.r2.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl NativeEnv {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_var(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.vars.insert(name.into(), value);
        self
    }

    pub fn with_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }

    pub fn with_kv(mut self, binding: impl Into<String>, ns: Arc<KvNamespace>) -> Self {
        self.kv.insert(binding.into(), ns);
        self
    }

    pub fn with_d1(mut self, binding: impl Into<String>, db: Arc<D1Database>) -> Self {
        self.d1.insert(binding.into(), db);
        self
    }

    pub fn with_r2(mut self, binding: impl Into<String>, bucket: Arc<R2Bucket>) -> Self {
        self.r2.insert(binding.into(), bucket);
        self
    }

    /// `[vars]` entry.
    pub fn var(&self, name: &str) -> Option<&serde_json::Value> {
        self.vars.get(name)
    }

    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).map(String::as_str)
    }

    /// The KV namespace bound as `binding`.
    pub fn kv(&self, binding: &str) -> Result<&KvNamespace, String> {
        self.kv
            .get(binding)
            .map(|a| a.as_ref())
            .ok_or_else(|| missing("KV namespace", binding))
    }

    pub fn d1(&self, binding: &str) -> Result<&D1Database, String> {
        self.d1
            .get(binding)
            .map(|a| a.as_ref())
            .ok_or_else(|| missing("D1 database", binding))
    }

    pub fn r2(&self, binding: &str) -> Result<&R2Bucket, String> {
        self.r2
            .get(binding)
            .map(|a| a.as_ref())
            .ok_or_else(|| missing("R2 bucket", binding))
    }
}

fn missing(kind: &str, binding: &str) -> String {
    format!("env.{binding} is not bound to a {kind}")
}

/// What a handler sees of the request's execution.
#[derive(Debug, Clone)]
pub struct NativeContext {
    /// The request id (the `cf-ray` the front answers with).
    pub request_id: String,
}

/// A worker implemented in Rust. An `Err` is an uncaught exception: the
/// client gets Workers' 500 "Error 1101" and the message goes to the log.
pub trait NativeWorker: Send + Sync {
    fn fetch(
        &self,
        request: NativeRequest,
        env: &NativeEnv,
        ctx: &NativeContext,
    ) -> Result<NativeResponse, String>;
}

/// A Rust-native worker with its `env`, as [`crate::WorkerConfig::native`].
pub struct RustWorker {
    worker: Box<dyn NativeWorker>,
    env: NativeEnv,
}

impl RustWorker {
    pub fn new(worker: impl NativeWorker + 'static, env: NativeEnv) -> Arc<Self> {
        Arc::new(Self {
            worker: Box::new(worker),
            env,
        })
    }

    pub fn env(&self) -> &NativeEnv {
        &self.env
    }
}

pub(crate) async fn dispatch(
    worker: Arc<RustWorker>,
    mut req: WorkerRequest,
) -> Result<WorkerResponse, DispatchError> {
    // A Rust worker takes its body whole.
    req.body = req
        .collect_body()
        .await
        .map_err(DispatchError::unreadable_body)?;
    let ctx = NativeContext {
        request_id: req.id.clone(),
    };
    let request = NativeRequest {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.body,
    };
    let outcome =
        tokio::task::spawn_blocking(move || worker.worker.fetch(request, &worker.env, &ctx)).await;
    let result = match outcome {
        Ok(r) => r,
        // A panic in the handler is an uncaught exception, not a crash.
        Err(e) => Err(format!("the Rust worker panicked: {e}")),
    };
    match result {
        Ok(r) => Ok(WorkerResponse {
            status: r.status,
            status_text: String::new(),
            headers: r.headers,
            body: r.body,
            stream: None,
            web_socket: None,
        }),
        Err(message) => {
            tracing::error!(target: "hearth::worker", "Rust worker failed: {message}");
            Err(DispatchError::Exception {
                stack: message.clone(),
                message,
                pass_through: false,
            })
        }
    }
}

/// Rust-native workers answer `fetch()` only; an RPC call fails on the
/// caller's side as a call to a method the receiver lacks.
pub(crate) fn rpc_unsupported(
    _worker: &RustWorker,
    method: &str,
) -> Result<WorkerResponse, DispatchError> {
    Ok(crate::services::error_reply(
        "TypeError",
        &format!("The RPC receiver does not implement the method \"{method}\"."),
    ))
}
