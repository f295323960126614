//! How `kv_namespaces` is served: one SQLite file per namespace, a purge
//! thread per namespace, one adapter per binding.

use std::sync::Arc;
use std::time::Duration;

use hearth_core::{DataDir, SharedClock};
use hearth_kv::{KvError, KvLimits, KvNamespace, PostgresStore};

use super::KvAdapter;
use crate::bindings::registry::{BindingError, BindingKind, OpenContext, OpenedWorker};

/// How often expired keys are deleted from disk (reads hide them at once).
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub struct KvKind;

/// Opens the namespace `id` of `data_dir`, as the server and the CLI see it.
pub fn open_namespace(
    data_dir: &DataDir,
    id: &str,
    clock: SharedClock,
) -> Result<KvNamespace, KvError> {
    KvNamespace::open(&data_dir.kv_namespace(id), clock, KvLimits::default())
}

impl BindingKind for KvKind {
    fn section(&self) -> &'static str {
        "kv_namespaces"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["kv/<namespace id>.sqlite"]
    }

    fn cli_verbs(&self) -> &'static [&'static str] {
        &["kv key", "kv bulk"]
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let on_postgres = cx
            .settings
            .cluster
            .as_ref()
            .filter(|node| node.config().backends.kv == hearth_cluster::KvBackend::Postgres);
        for ns in &cx.config.kv_namespaces {
            let at = |e: &dyn std::fmt::Display| cx.error(self.section(), &ns.binding, e);
            if let Some(node) = on_postgres {
                let store = PostgresStore::open(node.pg().clone(), ns.local_id())
                    .map_err(|e| at(&format!("opening it in PostgreSQL: {e}")))?;
                let kv = Arc::new(KvNamespace::with_store(
                    Box::new(store),
                    cx.clock.clone(),
                    KvLimits::default(),
                ));
                let purger = kv.spawn_purger(PURGE_EVERY).map_err(|e| at(&e))?;
                out.keep_alive.push(Box::new(purger));
                out.worker
                    .bindings
                    .push(Arc::new(KvAdapter::new(&ns.binding, kv).with_backend(
                        format!(
                            "postgres:{}.kv_entries/{}",
                            node.pg().schema(),
                            ns.local_id()
                        ),
                    )));
                continue;
            }
            let path = cx.data_dir.kv_namespace(ns.local_id());
            let kv = open_namespace(cx.data_dir, ns.local_id(), cx.clock.clone())
                .map_err(|e| at(&format!("opening {}: {e}", path.display())))?;
            let kv = Arc::new(kv);
            let purger = kv.spawn_purger(PURGE_EVERY).map_err(|e| at(&e))?;
            out.keep_alive.push(Box::new(purger));
            out.worker.bindings.push(Arc::new(
                KvAdapter::new(&ns.binding, kv).with_backend(format!("sqlite:{}", path.display())),
            ));
        }
        Ok(())
    }
}
