//! Service bindings: one worker calling another served by the same process,
//! by `fetch()` or by JavaScript RPC, without going through a socket.
//!
//! The caller's side lives in `js/durable.js` and `isolate/durable.rs` and
//! shares the Durable Object stubs' call path and value codec: arguments
//! and results are structured-cloned, and an exception thrown by the callee
//! is rethrown in the caller with its name and message.
//!
//! Workers are started one after another and may bind each other in a
//! cycle, so a binding names its target through a [`ServiceRegistry`] that
//! the server fills once every worker runs.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;

use crate::error::DispatchError;
use crate::{WorkerRequest, WorkerResponse};

/// One call into a service.
#[derive(Debug, Clone)]
pub enum ServiceCall {
    /// `env.SERVICE.fetch(request)`.
    Fetch(WorkerRequest),
    /// `env.SERVICE.method(...args)`; `args` is the serialized argument list.
    Rpc { method: String, args: String },
}

/// Something a service binding can call: a worker's isolate pool, or a
/// Rust-native worker. `entrypoint` is the binding's named entrypoint
/// (`None`: the default export).
///
/// An RPC answer is a 200 response whose body is the serialized result; a
/// thrown exception comes back as a response carrying the runtime's error
/// header and the serialized exception.
pub trait ServiceTarget: Send + Sync {
    fn call(
        &self,
        entrypoint: Option<String>,
        call: ServiceCall,
    ) -> BoxFuture<'static, Result<WorkerResponse, DispatchError>>;
}

/// The served workers by name (`name` in each wrangler.toml).
#[derive(Clone, Default)]
pub struct ServiceRegistry {
    inner: Arc<RwLock<BTreeMap<String, Arc<dyn ServiceTarget>>>>,
}

impl std::fmt::Debug for ServiceRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRegistry")
            .field("services", &self.names())
            .finish()
    }
}

impl ServiceRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `name` callable; replaces an earlier target of that name.
    pub fn register(&self, name: impl Into<String>, target: Arc<dyn ServiceTarget>) {
        match self.inner.write() {
            Ok(mut m) => m.insert(name.into(), target),
            Err(p) => p.into_inner().insert(name.into(), target),
        };
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn ServiceTarget>> {
        match self.inner.read() {
            Ok(m) => m.get(name).cloned(),
            Err(p) => p.into_inner().get(name).cloned(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        match self.inner.read() {
            Ok(m) => m.keys().cloned().collect(),
            Err(p) => p.into_inner().keys().cloned().collect(),
        }
    }
}

/// A `services` entry of a worker: `env[binding]` calls `service`.
#[derive(Debug, Clone)]
pub struct ServiceBinding {
    pub binding: String,
    /// The other worker's `name`.
    pub service: String,
    /// A named `WorkerEntrypoint` class; `None` is the default export.
    pub entrypoint: Option<String>,
    pub registry: ServiceRegistry,
}

impl ServiceBinding {
    /// Sends one call to the bound worker.
    pub(crate) fn call(
        &self,
        call: ServiceCall,
    ) -> Result<BoxFuture<'static, Result<WorkerResponse, DispatchError>>, String> {
        let Some(target) = self.registry.get(&self.service) else {
            return Err(format!(
                "Service binding {} names the worker \"{}\", which is not running in this process.",
                self.binding, self.service
            ));
        };
        Ok(target.call(self.entrypoint.clone(), call))
    }
}

impl ServiceTarget for crate::IsolatePool {
    fn call(
        &self,
        entrypoint: Option<String>,
        call: ServiceCall,
    ) -> BoxFuture<'static, Result<WorkerResponse, DispatchError>> {
        let pool = self.clone();
        Box::pin(async move {
            match call {
                ServiceCall::Fetch(req) => match entrypoint {
                    None => pool.dispatch(req).await,
                    Some(name) => Ok(error_reply(
                        "Error",
                        &format!(
                            "fetch() on the entrypoint {name} is not supported by Hearth yet; call its RPC methods"
                        ),
                    )),
                },
                ServiceCall::Rpc { method, args } => {
                    pool.dispatch_service(entrypoint, method, args).await
                }
            }
        })
    }
}

/// An answer that makes the caller throw `name: message`, a structured-clone
/// error value.
pub(crate) fn error_reply(name: &str, message: &str) -> WorkerResponse {
    let body = crate::structured_clone::error_text(name, message);
    WorkerResponse {
        status: 500,
        status_text: "Internal Server Error".into(),
        headers: vec![(crate::durable::ERROR_HEADER.into(), "1".into())],
        body: bytes::Bytes::from(body),
        stream: None,
        web_socket: None,
    }
}

/// How `services` is served: each binding calls a worker of this process.
pub struct ServiceKind;

impl crate::bindings::registry::BindingKind for ServiceKind {
    fn section(&self) -> &'static str {
        "services"
    }

    /// Every binding must name a worker served by this process.
    fn check(
        &self,
        served: &[crate::bindings::registry::ServedConfig<'_>],
    ) -> Result<(), crate::bindings::registry::BindingError> {
        let names: Vec<&str> = served.iter().map(|s| s.config.name.as_str()).collect();
        for s in served {
            for b in &s.config.services {
                if !names.contains(&b.service.as_str()) {
                    return Err(crate::bindings::registry::BindingError::new(format!(
                        "{}: services: {}: service = {:?} is not a worker served by this process (serving: {}); add its config to the command line, e.g. hearth serve {} path/to/{}/wrangler.toml",
                        s.config.path.display(),
                        b.binding,
                        b.service,
                        names.join(", "),
                        s.config.path.display(),
                        b.service
                    )));
                }
            }
        }
        Ok(())
    }

    fn open(
        &self,
        cx: &mut crate::bindings::registry::OpenContext<'_>,
        out: &mut crate::bindings::registry::OpenedWorker,
    ) -> Result<(), crate::bindings::registry::BindingError> {
        out.worker.services = cx
            .config
            .services
            .iter()
            .map(|s| ServiceBinding {
                binding: s.binding.clone(),
                service: s.service.clone(),
                entrypoint: s.entrypoint.clone(),
                registry: cx.services.clone(),
            })
            .collect();
        Ok(())
    }
}
