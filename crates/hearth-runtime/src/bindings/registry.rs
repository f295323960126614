//! The list of binding kinds Hearth serves, and what each kind brings.
//!
//! A kind ([`BindingKind`]) is everything one config section needs while a
//! worker is served: it checks the section across every served worker,
//! opens the storage under the data directory, puts its adapters on the
//! worker's `env`, and adds the background tasks, internal routes and event
//! kinds it has. [`KINDS`] is the one list; `hearth serve` walks it through
//! [`open_workers`], and the bindings a config declares that no kind serves
//! are [`unserved`]. ARCHITECTURE.md has the recipe for adding a kind.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hearth_assets::AssetServer;
use hearth_config::Config;
use hearth_core::{DataDir, SharedClock};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::WorkerConfig;
use crate::pool::IsolatePool;
use crate::services::ServiceRegistry;

/// Every kind served, in the order they open. A new kind is one line here.
pub static KINDS: &[&dyn BindingKind] = &[
    &super::kv::KvKind,
    &super::d1::D1Kind,
    &super::r2::R2Kind,
    &crate::durable::kind::DurableObjectKind,
    &super::queue::QueueKind,
    &super::workflow::WorkflowKind,
    &super::cron::CronKind,
    &super::ratelimit::RateLimitKind,
    &super::analytics::AnalyticsKind,
    &super::ai::AiKind,
    &super::vectorize::VectorizeKind,
    &crate::services::ServiceKind,
    &super::assets::AssetsKind,
    &crate::cache::CacheKind,
];

/// One kind of binding (or trigger) and everything it brings.
pub trait BindingKind: Sync {
    /// The config section it serves, as wrangler names it (`kv_namespaces`).
    fn section(&self) -> &'static str;

    /// What it keeps under the data directory, relative to its root
    /// (`kv/<namespace id>.sqlite`); empty when it keeps nothing.
    fn data_paths(&self) -> &'static [&'static str] {
        &[]
    }

    /// The event kinds of `js/events.js` it dispatches to the worker
    /// (`queue`, `scheduled`, `workflow`).
    fn event_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    /// The `hearth` subcommands that work on its data (`kv key`).
    fn cli_verbs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks the section against every served worker's (a queue has one
    /// consumer across them, a `script_name` must be served, ...).
    fn check(&self, _served: &[ServedConfig<'_>]) -> Result<(), BindingError> {
        Ok(())
    }

    /// Opens what one worker's config declares of this kind into `out`.
    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError>;

    /// Runs once every worker is open, for kinds that reach across workers
    /// (a Durable Object binding to another worker's class).
    /// `workers[i]` is `served[i]`'s.
    fn link(
        &self,
        _served: &[ServedConfig<'_>],
        _workers: &mut [OpenedWorker],
    ) -> Result<(), BindingError> {
        Ok(())
    }
}

/// One config served by this process, with where its data lives.
#[derive(Clone, Copy)]
pub struct ServedConfig<'a> {
    pub config: &'a Config,
    pub data_dir: &'a DataDir,
}

/// Settings for every kind, from the command line.
#[derive(Debug, Clone, Default)]
pub struct KindSettings {
    /// How long a Workflow run may go silent before another runner takes
    /// it over; `None` keeps the engine's default.
    pub workflow_lease_ms: Option<u64>,
    /// R2's limits (`--r2-multipart-expiry` sets when abandoned multipart
    /// uploads are aborted).
    pub r2_limits: hearth_r2::R2Limits,
    /// How long Analytics Engine keeps points; `None` keeps Cloudflare's
    /// three months.
    pub analytics_retention_ms: Option<u64>,
    /// Cluster mode (`--cluster`): the node and its shared backends.
    pub cluster: Option<Arc<crate::cluster::ClusterNode>>,
    /// Workers AI's models (`--ai-config`), shared by every worker.
    pub ai: Option<std::sync::Arc<hearth_ai::Ai>>,
    /// AI Gateway (`--ai-gateway`): `env.AI.run(.., { gateway })` and
    /// `env.AI.gateway(id)` go through it.
    pub ai_gateway: Option<hearth_ai_gateway::Gateways>,
    /// The gateway's base URL as `getUrl()` answers it
    /// (`http://<listener>/__hearth/ai-gateway`), set once the listener is
    /// bound.
    pub ai_gateway_url: std::sync::Arc<std::sync::OnceLock<String>>,
}

/// What a kind opens with.
pub struct OpenContext<'a> {
    pub config: &'a Config,
    pub data_dir: &'a DataDir,
    pub clock: SharedClock,
    /// Every config served, this one included.
    pub served: &'a [ServedConfig<'a>],
    pub services: &'a ServiceRegistry,
    pub settings: &'a KindSettings,
    shared: &'a mut SharedStores,
}

impl OpenContext<'_> {
    /// The store of type `T` under `key` (its file's path, typically),
    /// opened once per process so workers sharing a data directory share
    /// it (one connection per file keeps writers from waiting on each
    /// other).
    pub fn shared<T, E>(&mut self, key: &str, open: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        T: Clone + Send + 'static,
    {
        self.shared.get_or_open(key, open)
    }

    /// An error about `binding` in this kind's section of the config.
    pub fn error(&self, section: &str, binding: &str, e: impl std::fmt::Display) -> BindingError {
        BindingError::new(format!(
            "{}: {section}: {binding}: {e}",
            self.config.path.display()
        ))
    }
}

/// Stores shared by the workers of one process, by type and key.
#[derive(Default)]
struct SharedStores {
    stores: Vec<(TypeId, String, Box<dyn Any + Send>)>,
}

impl SharedStores {
    fn get_or_open<T, E>(&mut self, key: &str, open: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        T: Clone + Send + 'static,
    {
        let id = TypeId::of::<T>();
        let found = self
            .stores
            .iter()
            .find(|(t, k, _)| *t == id && k == key)
            .and_then(|(_, _, store)| store.downcast_ref::<T>());
        if let Some(store) = found {
            return Ok(store.clone());
        }
        let store = open()?;
        self.stores
            .push((id, key.to_owned(), Box::new(store.clone())));
        Ok(store)
    }
}

/// One worker as its kinds opened it.
pub struct OpenedWorker {
    pub worker: WorkerConfig,
    /// Started on the worker's isolates once it serves, and again on the
    /// new ones after a `hearth dev` reload.
    pub tasks: Vec<Arc<dyn BackgroundTask>>,
    /// Endpoints under `/__hearth/<prefix>/`.
    pub routes: Vec<Arc<dyn InternalRoute>>,
    /// Static assets, served by the HTTP front ahead of the worker.
    pub assets: Option<Arc<AssetServer>>,
    /// `triggers.crons`, which the on-demand scheduled endpoint may run.
    pub crons: Vec<String>,
    /// Threads a kind runs beside the worker (expiry sweeps); they stop
    /// when this is dropped.
    pub keep_alive: Vec<Box<dyn Any + Send>>,
}

impl OpenedWorker {
    pub fn new(worker: WorkerConfig) -> Self {
        Self {
            worker,
            tasks: Vec::new(),
            routes: Vec::new(),
            assets: None,
            crons: Vec::new(),
            keep_alive: Vec::new(),
        }
    }
}

/// A kind's failure to open, with the config file, section and binding.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BindingError(String);

impl BindingError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Checks every kind across the served configs, then opens each worker
/// (`workers[i]` is `served[i]`'s, with its module, vars and limits set)
/// and links what reaches across workers.
pub fn open_workers(
    served: &[ServedConfig<'_>],
    workers: Vec<WorkerConfig>,
    clock: &SharedClock,
    services: &ServiceRegistry,
    settings: &KindSettings,
) -> Result<Vec<OpenedWorker>, BindingError> {
    for kind in KINDS {
        kind.check(served)?;
    }
    let mut shared = SharedStores::default();
    let mut opened = Vec::with_capacity(workers.len());
    for (s, worker) in served.iter().zip(workers) {
        let mut out = OpenedWorker::new(worker);
        let mut cx = OpenContext {
            config: s.config,
            data_dir: s.data_dir,
            clock: clock.clone(),
            served,
            services,
            settings,
            shared: &mut shared,
        };
        for kind in KINDS {
            kind.open(&mut cx, &mut out)?;
        }
        opened.push(out);
    }
    for kind in KINDS {
        kind.link(served, &mut opened)?;
    }
    Ok(opened)
}

/// The bindings `config` declares that no kind serves, as (section, name).
pub fn unserved(config: &Config) -> Vec<(&'static str, String)> {
    config
        .declared_bindings()
        .into_iter()
        .filter(|(section, _)| !KINDS.iter().any(|k| k.section() == *section))
        .collect()
}

/// Work a kind runs beside the worker's requests, on its isolates.
pub trait BackgroundTask: Send + Sync {
    /// Starts it on `pool`, inside the tokio runtime.
    fn start(&self, pool: &IsolatePool) -> Result<TaskHandle, BindingError>;
}

/// Makes `wake` fire whenever `clock` jumps forward (a test clock being
/// advanced), for as long as someone else holds it.
pub fn wake_on_jump(clock: &hearth_core::SharedClock, wake: &Arc<Notify>) {
    let weak = Arc::downgrade(wake);
    clock.on_jump(Box::new(move || match weak.upgrade() {
        Some(n) => {
            n.notify_one();
            true
        }
        None => false,
    }));
}

/// A running background task: woken early, stopped and awaited.
#[derive(Debug)]
pub struct TaskHandle {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TaskHandle {
    /// Spawns `run` on the current tokio runtime; it should end soon after
    /// its receiver turns `true`, and look again whenever `wake` fires.
    pub fn spawn<F, Fut>(wake: Arc<Notify>, run: F) -> Self
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(stop_rx));
        Self { wake, stop, task }
    }

    /// Makes the task look at its work now (after a send, or after moving
    /// a test clock).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the task after the work in flight and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        let _ = self.task.await;
    }
}

/// A request to an internal endpoint, past its access check and with its
/// body read (up to [`MAX_INTERNAL_BODY`]).
#[derive(Debug, Clone)]
pub struct InternalRequest {
    pub method: String,
    /// The path after `/__hearth/<prefix>/`.
    pub rest: String,
    pub query: Option<String>,
    pub body: Bytes,
}

/// An internal endpoint's answer.
#[derive(Debug, Clone)]
pub struct InternalResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl InternalResponse {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: Bytes::from(value.to_string()),
        }
    }
}

/// The largest body an internal endpoint reads.
pub const MAX_INTERNAL_BODY: usize = 1024 * 1024;

pub type InternalFuture = Pin<Box<dyn Future<Output = InternalResponse> + Send>>;

/// Endpoints a kind serves under `/__hearth/<prefix>/`, for one worker.
pub trait InternalRoute: Send + Sync + std::fmt::Debug {
    /// The first path segment after `/__hearth/` (`queues`).
    fn prefix(&self) -> &'static str;
    /// Whether this worker is the one that answers `rest` (the queue's
    /// consumer is its own). When no worker claims it, the first worker
    /// with the prefix answers, and names what is wrong.
    fn claims(&self, rest: &str) -> bool;
    fn handle(&self, req: InternalRequest) -> InternalFuture;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_paths_are_not_shared() {
        for (i, a) in KINDS.iter().enumerate() {
            for b in &KINDS[i + 1..] {
                assert_ne!(a.section(), b.section(), "two kinds serve one section");
                for pa in a.data_paths() {
                    for pb in b.data_paths() {
                        let first = |p: &str| p.split('/').next().unwrap_or_default().to_owned();
                        assert_ne!(
                            first(pa),
                            first(pb),
                            "{} and {} write to the same place",
                            a.section(),
                            b.section()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_event_kind_is_dispatched_by_events_js() {
        for kind in KINDS {
            for event in kind.event_kinds() {
                assert!(
                    crate::events::event_kind_known(event),
                    "{}: event kind {event:?} is not in js/events.js",
                    kind.section()
                );
            }
        }
    }

    /// Every binding section the config parser knows is served by a kind:
    /// a config that declares one of each has nothing to warn about.
    #[test]
    fn every_declared_binding_kind_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wrangler.toml");
        std::fs::write(
            &path,
            r#"
name = "all"
main = "index.js"
compatibility_date = "2025-09-01"
kv_namespaces = [{ binding = "KV", id = "kv" }]
d1_databases = [{ binding = "DB", database_name = "db", database_id = "db" }]
r2_buckets = [{ binding = "BUCKET", bucket_name = "bucket" }]
durable_objects.bindings = [{ name = "OBJ", class_name = "Obj" }]
migrations = [{ tag = "v1", new_sqlite_classes = ["Obj"] }]
queues.producers = [{ binding = "Q", queue = "q" }]
workflows = [{ binding = "FLOW", name = "flow", class_name = "Flow" }]
vectorize = [{ binding = "VEC", index_name = "idx" }]
ai = { binding = "AI" }
analytics_engine_datasets = [{ binding = "AE", dataset = "ae" }]
ratelimits = [{ name = "RL", namespace_id = "1", simple = { limit = 1, period = 60 } }]
services = [{ binding = "SVC", service = "other" }]
assets = { directory = "public", binding = "ASSETS" }
"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("index.js"), "export default {}").unwrap();
        std::fs::create_dir(dir.path().join("public")).unwrap();
        let loaded = hearth_config::load(&path, &Default::default()).unwrap();
        let declared = loaded.config.declared_bindings();
        let sections: std::collections::BTreeSet<&str> =
            declared.iter().map(|(section, _)| *section).collect();
        assert_eq!(sections.len(), 12, "one of each section: {declared:?}");
        assert_eq!(unserved(&loaded.config), Vec::new());
    }
}
