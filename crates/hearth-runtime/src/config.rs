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
            loaded_files: Default::default(),
            extra_root_certs: Vec::new(),
            durable_objects: None,
        }
    }

    pub(crate) fn isolate_count(&self) -> usize {
        if self.isolates > 0 {
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
            .field("extra_root_certs", &self.extra_root_certs.len())
            .finish()
    }
}
