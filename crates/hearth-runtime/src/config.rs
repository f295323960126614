//! What the runtime needs to know about a worker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::bindings::BindingAdapter;
use crate::limits::Limits;

/// One worker: its entry module, its `env`, its limits.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The `main` module (an ES module with `export default { fetch }`).
    pub main: PathBuf,
    /// Directory modules may be imported from; imports resolving outside it
    /// are refused. Defaults to the directory of `main`.
    pub module_root: Option<PathBuf>,
    /// `[vars]`: strings stay strings, other JSON values arrive parsed.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Secrets (from `.dev.vars` or the environment); always strings.
    pub secrets: BTreeMap<String, String>,
    /// Binding adapters (KV, D1, R2, ...), each installs one `env` entry.
    pub bindings: Vec<Arc<dyn BindingAdapter>>,
    pub limits: Limits,
    /// Number of isolates; 0 means one per CPU core.
    pub isolates: usize,
    /// `compatibility_date`, exposed for diagnostics only for now.
    pub compatibility_date: Option<String>,
    /// `compatibility_flags`; with the date they decide Node.js
    /// compatibility (`nodejs_compat`, see [`crate::modules::node`]).
    pub compatibility_flags: Vec<String>,
    /// Every file the worker's isolates have read (modules and the
    /// `package.json` files consulted), for a watcher to restart the pool
    /// when one changes. Shared by clones of the config.
    pub loaded_files: crate::modules::LoadedFiles,
    /// Extra trust anchors for outgoing `fetch()` over https, as DER
    /// certificates, beside Mozilla's root store. Meant for a private CA or
    /// a test server's self-signed certificate.
    pub extra_root_certs: Vec<Vec<u8>>,
    /// The worker's Durable Object classes and their storage; the pool
    /// routes each object's events to one isolate.
    pub durable_objects: Option<Arc<crate::durable::DurableObjects>>,
    /// The worker's Workflows; their runs execute as events in the pool.
    pub workflows: Option<Arc<crate::bindings::workflow::runner::Workflows>>,
    /// `services` bindings: `env[binding]` calls another worker.
    pub services: Vec<crate::services::ServiceBinding>,
    /// A Rust-native worker: requests run it instead of JavaScript, and no
    /// isolate is started (`main` is then only a label).
    pub native: Option<Arc<crate::native_worker::RustWorker>>,
    /// The Cache API's store (`caches`); without one, `caches` stores nothing.
    pub cache: Option<Arc<dyn hearth_cache::Cache>>,
    /// A test clock (`hearth serve --test-clock`) that `Date.now()` and
    /// `new Date()` follow; without one they read the system clock.
    pub clock: Option<hearth_core::SharedClock>,
    /// In-process services the bindings' glue calls (see
    /// [`crate::local`]), by name.
    pub local_services: BTreeMap<String, Arc<dyn crate::local::LocalService>>,
    /// Where compiled modules are kept across restarts (see
    /// [`crate::bytecode`]); without one they are kept in memory only.
    pub bytecode_dir: Option<PathBuf>,
}

impl WorkerConfig {
    pub fn new(main: impl Into<PathBuf>) -> Self {
        Self {
            main: main.into(),
            module_root: None,
            vars: BTreeMap::new(),
            secrets: BTreeMap::new(),
            bindings: Vec::new(),
            limits: Limits::default(),
            isolates: 0,
            compatibility_date: None,
            compatibility_flags: Vec::new(),
            loaded_files: Default::default(),
            extra_root_certs: Vec::new(),
            durable_objects: None,
            workflows: None,
            services: Vec::new(),
            native: None,
            cache: None,
            clock: None,
            local_services: BTreeMap::new(),
            bytecode_dir: None,
        }
    }

    /// A Rust-native worker named `name` (served as `main = "rust:<name>"`).
    pub fn native(name: &str, worker: Arc<crate::native_worker::RustWorker>) -> Self {
        let mut config = Self::new(format!("rust:{name}"));
        config.native = Some(worker);
        config
    }

    pub(crate) fn isolate_count(&self) -> usize {
        if self.native.is_some() {
            0
        } else if self.isolates > 0 {
            self.isolates
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("main", &self.main)
            .field("module_root", &self.module_root)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field(
                "bindings",
                &self.bindings.iter().map(|b| b.name()).collect::<Vec<_>>(),
            )
            .field("limits", &self.limits)
            .field("isolates", &self.isolates)
            .field("services", &self.services)
            .field("native", &self.native.is_some())
            .field("extra_root_certs", &self.extra_root_certs.len())
            .field("bytecode_dir", &self.bytecode_dir)
            .finish()
    }
}
