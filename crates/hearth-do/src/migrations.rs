//! The Durable Object catalog (`<data dir>/do/migrations.sqlite`): which
//! `[[migrations]]` tags have been applied, and for every class the key its
//! ids are derived from.
//!
//! A class keeps its id key through renames, so `idFromName("x")` in a
//! renamed class gives the same id as before and reaches the same stored
//! object, as on Cloudflare.
//!
//! Mapping from wrangler's migrations (namespace key = class name):
//! - `new_classes` / `new_sqlite_classes`: recorded with their backend.
//! - `renamed_classes {from, to}`: `do/<from>/` moves to `do/<to>/`, the
//!   alarm index follows, and `to` inherits `from`'s id key.
//! - `deleted_classes`: `do/<class>/` and its alarms are removed.
//! - `transferred_classes`: refused ([`DoError::TransferUnsupported`]).
//!
//! Each step is idempotent and the tag is recorded in the same transaction
//! as the catalog change, so a crash mid-migration is repaired by applying
//! the list again.

use std::fs;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use hearth_config::DurableObjectMigration;
use hearth_core::DataDir;
use rusqlite::{Connection, OptionalExtension, params};

use crate::StorageBackend;
use crate::alarms::{AlarmIndex, to_i64};
use crate::error::{DoError, Result};

/// Each entry moves the schema one version forward (see
/// `hearth_core::sqlite::migrate`). Version 1 is the schema this file had
/// before it was versioned; being `IF NOT EXISTS`, it adopts it.
const CATALOG_SCHEMA_STEPS: &[&str] = &["CREATE TABLE IF NOT EXISTS applied_migrations (
    tag TEXT PRIMARY KEY,
    applied_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS namespaces (
    key TEXT PRIMARY KEY,
    id_key TEXT NOT NULL,
    backend TEXT
);"];

#[derive(Debug)]
pub(crate) struct Catalog {
    conn: Mutex<Connection>,
}

impl Catalog {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let mut conn = hearth_core::sqlite::open(path)?;
        hearth_core::sqlite::migrate(&mut conn, path, CATALOG_SCHEMA_STEPS)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The key a namespace's ids derive from: its own key unless it was
    /// renamed from another class.
    pub(crate) fn id_key(&self, key: &str) -> Result<String> {
        let found: Option<String> = self
            .lock()
            .query_row("SELECT id_key FROM namespaces WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(found.unwrap_or_else(|| key.to_owned()))
    }

    pub(crate) fn applied_tags(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT tag FROM applied_migrations ORDER BY applied_ms, tag")?;
        let tags = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(tags)
    }

    fn is_applied(&self, tag: &str) -> Result<bool> {
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM applied_migrations WHERE tag = ?1",
                [tag],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

/// Applies, in list order, every migration whose tag is not yet recorded.
/// Returns the tags applied by this call.
pub(crate) fn apply(
    catalog: &Catalog,
    alarms: &AlarmIndex,
    data_dir: &DataDir,
    now_ms: u64,
    migrations: &[DurableObjectMigration],
) -> Result<Vec<String>> {
    let mut applied = Vec::new();
    for m in migrations {
        if catalog.is_applied(&m.tag)? {
            continue;
        }
        if let Some(t) = m.transferred_classes.first() {
            return Err(DoError::TransferUnsupported {
                tag: m.tag.clone(),
                from: t.from.clone(),
                from_script: t.from_script.clone(),
            });
        }
        // File system and alarm index first: both steps are idempotent.
        for r in &m.renamed_classes {
            move_class_dir(data_dir, &m.tag, &r.from, &r.to)?;
            alarms.rename_namespace(&r.from, &r.to)?;
        }
        for class in &m.deleted_classes {
            alarms.remove_namespace(class)?;
            let dir = data_dir.durable_object_namespace(class);
            match fs::remove_dir_all(&dir) {
                Ok(()) => sync_parent(&dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DoError::io(&dir, e)),
            }
        }
        // Then the catalog and the tag, together.
        let mut conn = catalog.lock();
        let tx = conn.transaction()?;
        for class in &m.new_classes {
            record_class(&tx, class, StorageBackend::KeyValue)?;
        }
        for class in &m.new_sqlite_classes {
            record_class(&tx, class, StorageBackend::Sqlite)?;
        }
        for r in &m.renamed_classes {
            let (id_key, backend): (String, Option<String>) = tx
                .query_row(
                    "SELECT id_key, backend FROM namespaces WHERE key = ?1",
                    [&r.from],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?
                .unwrap_or_else(|| (r.from.clone(), None));
            tx.execute("DELETE FROM namespaces WHERE key = ?1", [&r.from])?;
            tx.execute(
                "INSERT OR REPLACE INTO namespaces (key, id_key, backend) VALUES (?1, ?2, ?3)",
                params![r.to, id_key, backend],
            )?;
        }
        for class in &m.deleted_classes {
            tx.execute("DELETE FROM namespaces WHERE key = ?1", [class])?;
        }
        tx.execute(
            "INSERT INTO applied_migrations (tag, applied_ms) VALUES (?1, ?2)",
            params![m.tag, to_i64(now_ms)],
        )?;
        tx.commit()?;
        applied.push(m.tag.clone());
    }
    Ok(applied)
}

fn record_class(
    tx: &rusqlite::Transaction<'_>,
    class: &str,
    backend: StorageBackend,
) -> Result<()> {
    tx.execute(
        "INSERT INTO namespaces (key, id_key, backend) VALUES (?1, ?1, ?2)
         ON CONFLICT (key) DO UPDATE SET backend = excluded.backend",
        params![class, backend.as_str()],
    )?;
    Ok(())
}

fn move_class_dir(data_dir: &DataDir, tag: &str, from: &str, to: &str) -> Result<()> {
    let src = data_dir.durable_object_namespace(from);
    let dst = data_dir.durable_object_namespace(to);
    if !src.exists() {
        // Nothing stored yet, or moved by an earlier, interrupted run.
        return Ok(());
    }
    if dst.exists() {
        let empty = fs::read_dir(&dst)
            .map_err(|e| DoError::io(&dst, e))?
            .next()
            .is_none();
        if !empty {
            return Err(DoError::RenameTargetExists {
                tag: tag.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        fs::remove_dir(&dst).map_err(|e| DoError::io(&dst, e))?;
    }
    fs::rename(&src, &dst).map_err(|e| DoError::io(&src, e))?;
    sync_parent(&dst)
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    hearth_core::fs::sync_dir(parent).map_err(|e| DoError::io(parent, e))
}
