//! How `d1_databases` is served: one SQLite file per database, or in
//! cluster mode one database per cluster, owned by one node at a time.

use std::sync::Arc;

use hearth_d1::D1Database;

use super::D1Adapter;
use super::cluster::ClusterD1;
use crate::bindings::registry::{BindingError, BindingKind, OpenContext, OpenedWorker};

pub struct D1Kind;

impl BindingKind for D1Kind {
    fn section(&self) -> &'static str {
        "d1_databases"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["d1/<database name>.sqlite"]
    }

    fn cli_verbs(&self) -> &'static [&'static str] {
        &["d1 execute", "d1 migrations"]
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        for db in &cx.config.d1_databases {
            let path = cx.data_dir.d1_database(db.local_id());
            if let Some(node) = cx.settings.cluster.clone() {
                // One handle per database on the node, whichever workers bind it.
                let id = db.local_id().to_owned();
                // Copies are named `<base>.t<token>-...` and a new one removes
                // the others of its base, so the base is the id in hex: no id
                // is another's prefix up to `.t`.
                let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
                let base = cx.data_dir.root().join(format!("d1/cluster/{hex}.sqlite"));
                let d1 = cx.shared(&format!("d1-cluster:{id}"), || {
                    Ok::<_, BindingError>(ClusterD1::new(node, &id, base))
                })?;
                out.worker
                    .bindings
                    .push(Arc::new(D1Adapter::clustered(&db.binding, d1)));
                continue;
            }
            let d1 = D1Database::open(&path).map_err(|e| {
                cx.error(
                    self.section(),
                    &db.binding,
                    format!("opening {}: {e}", path.display()),
                )
            })?;
            out.worker
                .bindings
                .push(Arc::new(D1Adapter::new(&db.binding, Arc::new(d1))));
        }
        Ok(())
    }
}
