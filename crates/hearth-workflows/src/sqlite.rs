//! The embedded backend: one SQLite file holding every instance of every
//! Workflow, their step journal, attempts and events.
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction, so two runners (or
//! a runner and the CLI in another process) never both claim an instance or
//! interleave a check with a write.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use crate::error::Result;
use crate::store::{Dialect, JournalStore, Row, Tx, Value};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wf_instances (
    workflow         TEXT NOT NULL,
    id               TEXT NOT NULL,
    status           TEXT NOT NULL,
    params           BLOB NOT NULL,
    created_ms       INTEGER NOT NULL,
    started_ms       INTEGER,
    ended_ms         INTEGER,
    output           BLOB,
    error_name       TEXT,
    error_message    TEXT,
    wake_at_ms       INTEGER,
    lease            INTEGER NOT NULL DEFAULT 0,
    lease_expires_ms INTEGER,
    paused_at_ms     INTEGER,
    PRIMARY KEY (workflow, id)
);
CREATE INDEX IF NOT EXISTS wf_instances_due
    ON wf_instances (wake_at_ms) WHERE status IN ('queued', 'waiting');
CREATE INDEX IF NOT EXISTS wf_instances_leased
    ON wf_instances (lease_expires_ms) WHERE status IN ('running', 'waitingForPause');
CREATE INDEX IF NOT EXISTS wf_instances_created
    ON wf_instances (workflow, created_ms, id);

CREATE TABLE IF NOT EXISTS wf_steps (
    workflow       TEXT NOT NULL,
    instance       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    occurrence     INTEGER NOT NULL,
    state          TEXT NOT NULL,
    retry_limit    INTEGER,
    retry_delay_ms INTEGER,
    backoff        TEXT,
    timeout_ms     INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    started_ms     INTEGER NOT NULL,
    ended_ms       INTEGER,
    wake_at_ms     INTEGER,
    event_type     TEXT,
    event_ms       INTEGER,
    output         BLOB,
    error_name     TEXT,
    error_message  TEXT,
    PRIMARY KEY (workflow, instance, kind, name, occurrence)
);

CREATE TABLE IF NOT EXISTS wf_attempts (
    workflow      TEXT NOT NULL,
    instance      TEXT NOT NULL,
    name          TEXT NOT NULL,
    occurrence    INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    started_ms    INTEGER NOT NULL,
    ended_ms      INTEGER,
    success       INTEGER,
    error_name    TEXT,
    error_message TEXT,
    PRIMARY KEY (workflow, instance, name, occurrence, attempt)
);

CREATE TABLE IF NOT EXISTS wf_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow     TEXT NOT NULL,
    instance     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    consumed     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS wf_events_pending
    ON wf_events (workflow, instance, event_type, seq) WHERE consumed = 0;
";

/// Each entry moves the schema one version forward (see
/// `hearth_core::sqlite::migrate`); a file from a newer build is refused
/// rather than misread.
const SCHEMA_STEPS: &[&str] = &[
    SCHEMA,
    // Which process runs a claimed instance (cluster mode names the node).
    "ALTER TABLE wf_instances ADD COLUMN runner TEXT;",
];

/// The journal in one SQLite file. Several processes may open it at once.
#[derive(Debug)]
pub struct SqliteJournal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteJournal {
    /// Opens (creating if needed) the journal at `path`, usually
    /// `DataDir::workflows()`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = hearth_core::sqlite::open(path)?;
        hearth_core::sqlite::migrate(&mut conn, path, SCHEMA_STEPS)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (an
        // open transaction rolls back when dropped), so the connection stays usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl JournalStore for SqliteJournal {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        f(&mut SqliteTx(&tx))?;
        tx.commit()?;
        Ok(())
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        f(&mut SqliteTx(&tx))?;
        tx.commit()?;
        Ok(())
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

struct SqliteTx<'a>(&'a Connection);

fn bind(params: &[Value]) -> Vec<SqlValue> {
    params
        .iter()
        .map(|v| match v {
            Value::Null => SqlValue::Null,
            Value::Int(i) => SqlValue::Integer(*i),
            Value::Text(t) => SqlValue::Text(t.clone()),
            Value::Blob(b) => SqlValue::Blob(b.clone()),
        })
        .collect()
}

impl Tx for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(bind(params)))?)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let rows = stmt.query_map(rusqlite::params_from_iter(bind(params)), |r| {
            let mut row = Vec::with_capacity(columns);
            for i in 0..columns {
                row.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    // The engine stores no floats; an integral one reads as such.
                    ValueRef::Real(v) => Value::Int(v as i64),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            Ok(Row(row))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
