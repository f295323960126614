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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
///
/// A worker can run before the others are registered (its alarms, queue
/// batches or crons may fire while later workers still start), so a call to
/// a worker the server has announced with [`ServiceRegistry::expect`] but not
/// registered yet waits for it, up to [`REGISTRATION_WAIT`], instead of
/// failing: on Cloudflare the bound worker is always deployed.
#[derive(Clone, Default)]
pub struct ServiceRegistry {
    inner: Arc<RwLock<BTreeMap<String, Arc<dyn ServiceTarget>>>>,
    expected: Arc<RwLock<BTreeSet<String>>>,
    registered: Arc<tokio::sync::Notify>,
}

/// How long a call waits for an announced worker to be registered.
pub const REGISTRATION_WAIT: Duration = Duration::from_secs(120);

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
        let name = name.into();
        match self.inner.write() {
            Ok(mut m) => m.insert(name.clone(), target),
            Err(p) => p.into_inner().insert(name.clone(), target),
        };
        match self.expected.write() {
            Ok(mut e) => e.remove(&name),
            Err(p) => p.into_inner().remove(&name),
        };
        self.registered.notify_waiters();
    }

    /// Announces workers that will be registered soon: calls to them wait
    /// for [`ServiceRegistry::register`] rather than failing.
    pub fn expect<I: IntoIterator<Item = String>>(&self, names: I) {
        match self.expected.write() {
            Ok(mut e) => e.extend(names),
            Err(p) => p.into_inner().extend(names),
        }
    }

    fn is_expected(&self, name: &str) -> bool {
        match self.expected.read() {
            Ok(e) => e.contains(name),
            Err(p) => p.into_inner().contains(name),
        }
    }

    /// The target of `name`, waiting up to `limit` while it is announced
    /// but not registered yet.
    pub async fn wait_for(&self, name: &str, limit: Duration) -> Option<Arc<dyn ServiceTarget>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.registered.notified();
            if let Some(t) = self.get(name) {
                return Some(t);
            }
            if !self.is_expected(name) {
                return None;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.get(name);
            }
        }
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
        let missing = format!(
            "Service binding {} names the worker \"{}\", which is not running in this process.",
            self.binding, self.service
        );
        if let Some(target) = self.registry.get(&self.service) {
            return Ok(target.call(self.entrypoint.clone(), call));
        }
        if !self.registry.is_expected(&self.service) {
            return Err(missing);
        }
        // Still starting: wait for it.
        let (registry, service, entrypoint) = (
            self.registry.clone(),
            self.service.clone(),
            self.entrypoint.clone(),
        );
        Ok(Box::pin(async move {
            match registry.wait_for(&service, REGISTRATION_WAIT).await {
                Some(target) => target.call(entrypoint, call).await,
                None => Err(DispatchError::Exception {
                    stack: format!("Error: {missing}"),
                    message: missing,
                    pass_through: false,
                }),
            }
        }))
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

#[cfg(test)]
mod registration_tests {
    use super::*;

    struct Echo;

    impl ServiceTarget for Echo {
        fn call(
            &self,
            _entrypoint: Option<String>,
            _call: ServiceCall,
        ) -> BoxFuture<'static, Result<WorkerResponse, DispatchError>> {
            Box::pin(async {
                Ok(WorkerResponse {
                    status: 200,
                    status_text: "OK".into(),
                    headers: Vec::new(),
                    body: bytes::Bytes::from_static(b"echo"),
                    stream: None,
                    web_socket: None,
                })
            })
        }
    }

    fn binding(registry: &ServiceRegistry, service: &str) -> ServiceBinding {
        ServiceBinding {
            binding: "B".into(),
            service: service.into(),
            entrypoint: None,
            registry: registry.clone(),
        }
    }

    fn rpc() -> ServiceCall {
        ServiceCall::Rpc {
            method: "m".into(),
            args: "[]".into(),
        }
    }

    #[test]
    fn a_call_to_an_announced_worker_waits_for_its_registration() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let registry = ServiceRegistry::new();
        registry.expect(["later".to_string()]);
        let pending = binding(&registry, "later").call(rpc()).unwrap();
        let unknown = binding(&registry, "nobody").call(rpc());
        match unknown {
            Err(e) => assert!(e.contains("not running in this process"), "{e}"),
            Ok(_) => panic!("a worker nobody announced is not waited for"),
        }
        let answer = rt.block_on(async {
            let call = tokio::spawn(pending);
            tokio::task::yield_now().await;
            assert!(!call.is_finished(), "answered before the worker existed");
            registry.register("later", Arc::new(Echo));
            call.await.unwrap()
        });
        assert_eq!(answer.unwrap().status, 200);
        // Registered now: no waiting, and no longer "expected".
        assert!(!registry.is_expected("later"));
        assert!(binding(&registry, "later").call(rpc()).is_ok());
    }
}
