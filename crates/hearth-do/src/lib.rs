//! Durable Objects: the contract for ids, per-object storage and alarms that
//! the runtime (and Rust-native objects) build on. No JavaScript, no HTTP, no
//! execution model here: one live instance per id, input gates, eviction and
//! WebSockets belong to the runtime.
//!
//! - [`DurableObjectHost`] opens the data directory's Durable Object state:
//!   the id secret, the alarm index and the class catalog.
//! - [`DurableObjectNamespace`] (one per class) makes ids: `id_from_name`
//!   (deterministic across restarts and processes), `new_unique_id`,
//!   `id_from_string` (Cloudflare's errors for malformed and foreign ids), and
//!   opens an object's [`DurableObjectStorage`].
//! - [`DurableObjectStorage`] has the key-value API (`get`/`put`/`delete` of
//!   one key or up to 128, `list`, `deleteAll`), the SQL API (`sql_exec` ->
//!   [`SqlCursor`], `database_size`) for SQLite-backed classes, transactions,
//!   and the alarm (`set_alarm`/`get_alarm`/`delete_alarm`).
//! - [`AlarmScheduler`] finds due alarms and runs the retry policy.
//!
//! # Write coalescing and the output gate
//!
//! On Cloudflare, the writes an object makes without awaiting anything else
//! are applied together as one implicit transaction, committed automatically;
//! the *output gate* holds any response (or RPC result, or outgoing message)
//! until the writes before it are durable. Hearth models this directly:
//!
//! 1. The first write opens an implicit transaction on the object's SQLite
//!    connection (`BEGIN IMMEDIATE`). Every later write joins it; reads see
//!    the writes at once.
//! 2. [`DurableObjectStorage::flush`] commits it durably (WAL with
//!    `synchronous=FULL`). The runtime calls `flush` at every output-gate
//!    point: before a response or RPC result leaves the object, before an
//!    outgoing `fetch`, and at the end of every event. Only after `flush`
//!    returned `Ok` may the response be released: *acknowledged means
//!    durable*.
//! 3. Writes never flushed are lost if the process dies (or the storage is
//!    dropped): exactly the writes whose responses were never released.
//! 4. The writes between two flushes are one unit: they all commit or none
//!    does, however many there are (Cloudflare coalesces un-awaited writes
//!    into one atomic batch too). Memory does not grow with the unit (SQLite
//!    spills dirty pages past its page cache to the WAL file); the unit is
//!    bounded by [`DoLimits::max_unflushed_writes`] and
//!    [`DoLimits::max_unflushed_bytes`]: the write that passes one fails
//!    with [`DoError::UncommittedLimit`], every later write fails the same
//!    way, and the next flush discards the whole unit and returns that
//!    error. Nothing of it is ever committed in part.
//! 5. A failed flush discards the batch (as a broken output gate resets the
//!    object on Cloudflare); the runtime should report the error and reset.
//!
//! 6. Group commit: the runtime may let an object take its next event while
//!    the answers of earlier ones wait for their writes (the input gate is
//!    open, the output gate holds them), so one flush commits the writes of
//!    several events with one fsync. [`DurableObjectStorage::begin_segment`]
//!    marks where the next event's writes start: the limits of point 4 then
//!    apply to that event's writes alone, and passing one discards only
//!    them, so the held answers' writes still commit whole.
//!
//! An alarm change is part of the same flush; it is mirrored into the alarm
//! index as described in [`AlarmScheduler`].
//!
//! # On disk
//!
//! ```text
//! <data dir>/do/secret                    32 random bytes (hex): the id key, made on first use
//! <data dir>/do/alarms.sqlite             every pending alarm, one row per object
//! <data dir>/do/migrations.sqlite         applied migration tags; each class's id key
//! <data dir>/do/<class key>/<id>.sqlite   one object: _cf_KV, _cf_METADATA, the app's tables
//! ```
//!
//! In cluster mode the object files are a cache of a [`ChangeLog`] (see
//! [`ship`]) and the id secret comes from the cluster.

mod alarms;
mod error;
mod fence;
mod id;
mod migrations;
pub mod ship;
mod split;
pub mod sqlite;
pub mod validate;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use hearth_config::DurableObjectMigration;
use hearth_core::{DataDir, SharedClock};

pub use alarms::{AlarmRetry, AlarmScheduler, DueAlarm};
pub use error::{DoError, Result};
pub use fence::FenceBook;
pub use id::DurableObjectId;
pub use ship::{ChangeLog, Lease, LogError, SnapshotHead};
pub use sqlite::DurableObjectStorage;
pub use validate::DoLimits;

use alarms::AlarmIndex;
use id::IdFactory;
use migrations::Catalog;

/// Which storage a class was created with (`new_classes` or
/// `new_sqlite_classes`). Both keep their data in SQLite here; the backend
/// decides the limits and whether the SQL API is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageBackend {
    /// The key-value storage API only; keys <= 2 KiB, values <= 128 KiB.
    KeyValue,
    /// SQLite-backed: the SQL API too; key + value <= 2 MB.
    Sqlite,
}

impl StorageBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageBackend::KeyValue => "kv",
            StorageBackend::Sqlite => "sqlite",
        }
    }
}

impl From<hearth_config::DurableObjectStorage> for StorageBackend {
    fn from(s: hearth_config::DurableObjectStorage) -> Self {
        match s {
            hearth_config::DurableObjectStorage::KeyValue => StorageBackend::KeyValue,
            hearth_config::DurableObjectStorage::Sqlite => StorageBackend::Sqlite,
        }
    }
}

/// Options of `list()`. `start` is inclusive, `start_after` and `end`
/// exclusive; `prefix` narrows the range further. Keys are ordered by their
/// UTF-8 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub start: Option<String>,
    pub start_after: Option<String>,
    pub end: Option<String>,
    pub prefix: Option<String>,
    pub reverse: bool,
    /// At least 1; `None` lists everything in range.
    pub limit: Option<u64>,
}

impl ListOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn start(mut self, key: impl Into<String>) -> Self {
        self.start = Some(key.into());
        self
    }
    pub fn start_after(mut self, key: impl Into<String>) -> Self {
        self.start_after = Some(key.into());
        self
    }
    pub fn end(mut self, key: impl Into<String>) -> Self {
        self.end = Some(key.into());
        self
    }
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// A SQL value, bound as a parameter or read from a row. Integers stay
/// integers here; the JavaScript adapter turns them into numbers as
/// Cloudflare does.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Integer(v)
    }
}
impl From<f64> for SqlValue {
    fn from(v: f64) -> Self {
        SqlValue::Real(v)
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_owned())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<Vec<u8>> for SqlValue {
    fn from(v: Vec<u8>) -> Self {
        SqlValue::Blob(v)
    }
}

/// One row of a [`SqlCursor`], with its column names.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRow {
    columns: Arc<[String]>,
    values: Vec<SqlValue>,
}

impl SqlRow {
    /// The value of a column by name; with duplicate names the last wins, as
    /// in the object Cloudflare builds for a row.
    pub fn get(&self, column: &str) -> Option<&SqlValue> {
        self.columns
            .iter()
            .rposition(|c| c == column)
            .and_then(|i| self.values.get(i))
    }
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
    pub fn values(&self) -> &[SqlValue] {
        &self.values
    }
    pub fn into_values(self) -> Vec<SqlValue> {
        self.values
    }
}

/// The result of `sql.exec()`: iterate it for rows, or use `to_array`,
/// `one` or `raw`. Each row is handed out once, as Cloudflare's cursor does.
///
/// The rows are read when `exec` runs (so the statement's effects and
/// counters are final at once), not streamed.
#[derive(Debug, Clone)]
pub struct SqlCursor {
    columns: Arc<[String]>,
    rows: VecDeque<Vec<SqlValue>>,
    rows_read: u64,
    rows_written: u64,
}

impl SqlCursor {
    pub(crate) fn new(
        columns: Vec<String>,
        rows: Vec<Vec<SqlValue>>,
        rows_read: u64,
        rows_written: u64,
    ) -> Self {
        Self {
            columns: columns.into(),
            rows: rows.into(),
            rows_read,
            rows_written,
        }
    }

    /// `columnNames`.
    pub fn column_names(&self) -> &[String] {
        &self.columns
    }

    /// `rowsRead`.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// `rowsWritten`: rows inserted, updated or deleted.
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// `toArray()`: every row not yet consumed.
    pub fn to_array(&mut self) -> Vec<SqlRow> {
        self.by_ref().collect()
    }

    /// `one()`: the only row; an error if there are none or several.
    pub fn one(&mut self) -> Result<SqlRow> {
        let first = self.next().ok_or(DoError::SqlOneGotNone)?;
        if !self.rows.is_empty() {
            self.rows.clear();
            return Err(DoError::SqlOneGotMany);
        }
        Ok(first)
    }

    /// `raw()`: the remaining rows as plain value arrays.
    pub fn raw(&mut self) -> impl Iterator<Item = Vec<SqlValue>> + '_ {
        std::iter::from_fn(move || self.rows.pop_front())
    }
}

impl Iterator for SqlCursor {
    type Item = SqlRow;
    fn next(&mut self) -> Option<SqlRow> {
        self.rows.pop_front().map(|values| SqlRow {
            columns: self.columns.clone(),
            values,
        })
    }
}

/// The Durable Object state of one data directory.
#[derive(Clone)]
pub struct DurableObjectHost {
    data_dir: DataDir,
    secret: Arc<[u8; 32]>,
    alarms: Arc<AlarmIndex>,
    catalog: Arc<Catalog>,
    clock: SharedClock,
    limits: DoLimits,
    /// Set in cluster mode: every commit checks its object's lease.
    fences: Option<Arc<FenceBook>>,
    /// Set in cluster mode: commits are shipped here before they are
    /// acknowledged, and objects are rebuilt from it when opened.
    log: Option<Arc<dyn ChangeLog>>,
}

impl fmt::Debug for DurableObjectHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableObjectHost")
            .field("data_dir", &self.data_dir)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DurableObjectHost {
    /// Opens (creating on first use) `<data dir>/do/`.
    pub fn open(data_dir: &DataDir, clock: SharedClock, limits: DoLimits) -> Result<Self> {
        let root = data_dir.durable_objects();
        let secret_path = root.join("secret");
        // Every object's id derives from the secret: a new one would orphan
        // all the objects on disk, so its loss is an error, not a fresh start.
        if !secret_path.exists() && id::holds_objects(&root)? {
            return Err(DoError::MissingSecret {
                path: secret_path.display().to_string(),
                root: root.display().to_string(),
            });
        }
        let secret = id::load_or_create_secret(&secret_path)?;
        Self::open_with_secret(data_dir, clock, limits, secret)
    }

    /// Opens `<data dir>/do/` with an id secret kept elsewhere (cluster
    /// mode: every node must make the same ids, so the cluster holds it)
    /// instead of `<data dir>/do/secret`.
    pub fn open_with_secret(
        data_dir: &DataDir,
        clock: SharedClock,
        limits: DoLimits,
        secret: [u8; 32],
    ) -> Result<Self> {
        let root = data_dir.durable_objects();
        let alarms = AlarmIndex::open(&root.join("alarms.sqlite"))?;
        let catalog = Catalog::open(&root.join("migrations.sqlite"))?;
        Ok(Self {
            data_dir: data_dir.clone(),
            secret: Arc::new(secret),
            alarms: Arc::new(alarms),
            catalog: Arc::new(catalog),
            clock,
            limits,
            fences: None,
            log: None,
        })
    }

    /// Cluster mode: objects opened from now on record and check the
    /// fencing tokens of `fences` on every commit.
    pub fn with_fences(mut self, fences: Arc<FenceBook>) -> Self {
        self.fences = Some(fences);
        self
    }

    /// Cluster mode with per-node files: each object's commits are shipped
    /// to `log` under its lease before they are acknowledged, and an object
    /// is rebuilt from the log when it is opened (see [`ship`]). Needs
    /// [`with_fences`](Self::with_fences).
    pub fn with_change_log(mut self, log: Arc<dyn ChangeLog>) -> Self {
        self.log = Some(log);
        self
    }

    /// The namespace of one class. `key` is the class's stable namespace key
    /// (its class name in the config).
    pub fn namespace(&self, key: &str, backend: StorageBackend) -> Result<DurableObjectNamespace> {
        let id_key = self.catalog.id_key(key)?;
        Ok(DurableObjectNamespace {
            key: key.to_owned(),
            backend,
            ids: IdFactory::new(&self.secret, &id_key),
            host: self.clone(),
        })
    }

    /// The scheduler over this data directory's alarm index.
    pub fn alarm_scheduler(&self) -> AlarmScheduler {
        AlarmScheduler::new(self.alarms.clone(), self.clock.clone(), self.limits.clone())
    }

    /// The id secret a data directory's objects were made with
    /// (`do/secret`), without creating one; `None` when it has none.
    pub fn stored_secret(data_dir: &DataDir) -> Result<Option<[u8; 32]>> {
        id::read_secret(&data_dir.durable_objects().join("secret"))
    }

    /// Applies the config's `[[migrations]]` not applied before, in list
    /// order (see the `migrations` module docs for the mapping). Call it
    /// before any object is opened. Returns the tags applied now.
    pub fn apply_migrations(&self, migrations: &[DurableObjectMigration]) -> Result<Vec<String>> {
        migrations::apply(
            &self.catalog,
            &self.alarms,
            &self.data_dir,
            self.clock.now_ms(),
            migrations,
        )
    }

    /// Every migration tag applied so far, oldest first.
    pub fn applied_migrations(&self) -> Result<Vec<String>> {
        self.catalog.applied_tags()
    }
}

/// One Durable Object class: makes its ids and opens its objects' storage.
#[derive(Clone)]
pub struct DurableObjectNamespace {
    key: String,
    backend: StorageBackend,
    ids: IdFactory,
    host: DurableObjectHost,
}

impl fmt::Debug for DurableObjectNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableObjectNamespace")
            .field("key", &self.key)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl DurableObjectNamespace {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn backend(&self) -> StorageBackend {
        self.backend
    }

    /// `idFromName(name)`: the same id for the same name, always.
    pub fn id_from_name(&self, name: &str) -> DurableObjectId {
        self.ids.named(name)
    }

    /// `newUniqueId()`: a random id no name maps to.
    pub fn new_unique_id(&self) -> Result<DurableObjectId> {
        self.ids.unique()
    }

    /// `idFromString(hex)`: an id previously shown by `to_string()`.
    pub fn id_from_string(&self, id: &str) -> Result<DurableObjectId> {
        self.ids.parse(id)
    }

    /// Opens the storage of one object (creating its file on first use) and
    /// reconciles its alarm with the alarm index.
    pub fn storage(&self, id: &DurableObjectId) -> Result<DurableObjectStorage> {
        if !self.ids.owns(id) {
            return Err(DoError::ForeignId { id: id.to_string() });
        }
        let hex = id.to_string();
        DurableObjectStorage::open(
            &self.host.data_dir.durable_object(&self.key, &hex),
            self.backend,
            &self.key,
            &hex,
            &self.host,
        )
    }
}
