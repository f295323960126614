//! How `d1_databases` is served: one SQLite file per database.

use std::sync::Arc;

use hearth_d1::D1Database;

use super::D1Adapter;
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
