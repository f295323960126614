//! The embedded backend of one object's storage: a SQLite file with the
//! key-value API in the hidden `_cf_KV` table, the alarm in `_cf_METADATA`,
//! and (for SQLite-backed classes) the application's own tables beside them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hearth_core::SharedClock;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, params};

use crate::alarms::{AlarmIndex, to_i64, to_u64};
use crate::error::{DoError, Result};
use crate::fence::FenceBook;
use crate::ship::{self, ChangeLog, Lease, LogError};
use crate::split::{renames_into_reserved, split_statements};
use crate::validate::{self, DoLimits, KeyRange};
use crate::{ListOptions, SqlCursor, SqlValue, StorageBackend};

const ALARM_KEY: &str = "alarm";
/// Cluster mode: the fencing token of the last lease that wrote, and its node.
const FENCE_TOKEN_KEY: &str = "fence_token";
const FENCE_NODE_KEY: &str = "fence_node";

/// The storage of one Durable Object. See the crate documentation for the
/// write-coalescing model: writes join an implicit transaction that
/// [`flush`](Self::flush) commits durably.
///
/// The object model gives each object one live instance, so calls are not
/// expected to race; the storage is still `Send + Sync` and serialises them.
#[derive(Debug)]
pub struct DurableObjectStorage {
    inner: Mutex<Inner>,
    gate: Arc<Gate>,
    backend: StorageBackend,
    limits: DoLimits,
    namespace: String,
    id: String,
    alarms: Arc<AlarmIndex>,
    clock: SharedClock,
    path: PathBuf,
    fences: Option<Arc<FenceBook>>,
    /// Cluster mode: where commits are shipped before they are acknowledged.
    log: Option<Arc<dyn ChangeLog>>,
    /// The WAL's frame count after the last local commit (the WAL hook's).
    wal_frames: Arc<AtomicU32>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// The file `conn` has open: the object's path, or in cluster mode the
    /// copy loaded last.
    file: PathBuf,
    /// The implicit transaction is open.
    open: bool,
    /// The alarm as committed, read when the implicit transaction opened.
    alarm_at_open: Option<i64>,
    unflushed_writes: u64,
    unflushed_bytes: u64,
    /// Nesting depth of `transaction` / `transaction_sync`.
    depth: u32,
    /// A flush asked for inside a transaction, done when it ends.
    flush_pending: bool,
    /// The uncommitted unit passed a limit: writes fail until the next
    /// flush, which discards the unit.
    over_limit: bool,
    /// Cluster mode: WAL frames already in the log, of the WAL with this salt.
    shipped_frames: u32,
    wal_salt: Option<[u8; 8]>,
    /// Cluster mode: the number of the last change in the log.
    seq: i64,
    /// Cluster mode: the log holds the object (a snapshot at least).
    in_log: bool,
    /// Cluster mode: log bytes since the last snapshot.
    log_bytes: u64,
    /// Cluster mode: the lease token the file was rebuilt under.
    loaded_token: Option<i64>,
    /// Cluster mode: the file may hold a commit the log does not; it is
    /// rebuilt from the log before the next call.
    diverged: bool,
    /// Group commit: the counts at the start of the newest event's writes
    /// (savepoint `_cf_segment`); the writes before it belong to answers
    /// already held for the commit. See [`DurableObjectStorage::begin_segment`].
    segment: Option<(u64, u64)>,
}

/// What the authorizer needs to know: whether the statement being prepared
/// is the application's (policed) or the storage layer's own (trusted), and
/// why it refused, so the error can use Cloudflare's message.
#[derive(Debug, Default)]
struct Gate {
    user: AtomicBool,
    refused_transaction: AtomicBool,
    saw_alter: AtomicBool,
}

impl DurableObjectStorage {
    /// Opens the object `id` of class `namespace` with what `host` shares
    /// among objects (limits, clock, alarm index, fencing).
    pub(crate) fn open(
        path: &Path,
        backend: StorageBackend,
        namespace: &str,
        id: &str,
        host: &crate::DurableObjectHost,
    ) -> Result<Self> {
        let limits = host.limits.clone();
        let alarms = host.alarms.clone();
        let clock = host.clock.clone();
        let fences = host.fences.clone();
        let log = host.log.clone().filter(|_| fences.is_some());
        let gate = Arc::new(Gate::default());
        let wal_frames = Arc::new(AtomicU32::new(0));
        let (mut restored, mut loaded_token) = (None, None);
        let mut file = path.to_path_buf();
        if let (Some(log), Some(fences)) = (&log, &fences) {
            // The local file is a cache: the log decides what the object holds.
            let token = fences.token(namespace, id).ok_or(DoError::NotLeased)?;
            file = ship::generation_path(path, token);
            restored = ship::restore(log.as_ref(), namespace, id, &file)?;
            loaded_token = Some(token);
        }
        let conn = connect(&file, &limits, &gate, log.as_ref().map(|_| &wal_frames))?;

        let storage = Self {
            inner: Mutex::new(Inner {
                conn,
                file,
                open: false,
                alarm_at_open: None,
                unflushed_writes: 0,
                unflushed_bytes: 0,
                depth: 0,
                flush_pending: false,
                over_limit: false,
                shipped_frames: 0,
                wal_salt: None,
                seq: restored.unwrap_or(0),
                in_log: restored.is_some(),
                log_bytes: 0,
                loaded_token,
                diverged: false,
                segment: None,
            }),
            gate,
            backend,
            limits,
            namespace: namespace.to_owned(),
            id: id.to_owned(),
            alarms,
            clock,
            path: path.to_path_buf(),
            fences,
            log,
            wal_frames,
        };
        if storage.fences.is_some() {
            let mut inner = storage.lock();
            storage.settle(&mut inner)?;
        }
        // Heal the index after a crash between its write and the object's.
        let alarm = storage.get_alarm()?;
        storage
            .alarms
            .reconcile(&storage.namespace, &storage.id, alarm.map(to_i64))?;
        Ok(storage)
    }

    pub fn backend(&self) -> StorageBackend {
        self.backend
    }

    /// The SQLite file the storage has open.
    pub fn path(&self) -> PathBuf {
        self.lock().file.clone()
    }

    pub fn limits(&self) -> &DoLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic mid-call leaves at worst an open implicit transaction,
        // which the next flush commits or a drop discards, as designed.
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    // ---------------------------------------------------------------- KV

    /// `get(key)`: the value, or `None` when absent.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        validate::check_key(&self.limits, self.backend, key)?;
        let inner = self.current()?;
        Ok(inner
            .conn
            .prepare_cached("SELECT value FROM _cf_KV WHERE key = ?1")?
            .query_row([key.as_bytes()], |r| r.get(0))
            .optional()?)
    }

    /// `get(keys)`: the keys found, in key order; absent keys are left out.
    pub fn get_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<(String, Vec<u8>)>> {
        validate::check_batch(&self.limits, keys.len())?;
        for k in keys {
            validate::check_key(&self.limits, self.backend, k.as_ref())?;
        }
        let wanted: BTreeSet<&[u8]> = keys.iter().map(|k| k.as_ref().as_bytes()).collect();
        let inner = self.current()?;
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT value FROM _cf_KV WHERE key = ?1")?;
        let mut out = Vec::new();
        for k in wanted {
            if let Some(v) = stmt.query_row([k], |r| r.get(0)).optional()? {
                out.push((String::from_utf8_lossy(k).into_owned(), v));
            }
        }
        Ok(out)
    }

    /// `put(key, value)`.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.put_many(&[(key, value)])
    }

    /// `put(entries)`: every entry is checked before any is written.
    pub fn put_many<K: AsRef<str>, V: AsRef<[u8]>>(&self, entries: &[(K, V)]) -> Result<()> {
        let sizes: Vec<usize> = entries.iter().map(|(_, v)| v.as_ref().len()).collect();
        self.put_many_measured(entries, &sizes)
    }

    /// `put(entries)` where the stored encoding of a value is not the one
    /// Cloudflare's limits measure: `sizes[i]` is entry `i`'s value size in
    /// the platform's own serialization, and the value limits apply to it.
    /// A missing size falls back to the stored length.
    pub fn put_many_measured<K: AsRef<str>, V: AsRef<[u8]>>(
        &self,
        entries: &[(K, V)],
        sizes: &[usize],
    ) -> Result<()> {
        validate::check_batch(&self.limits, entries.len())?;
        for (i, (k, v)) in entries.iter().enumerate() {
            let size = sizes.get(i).copied().unwrap_or(v.as_ref().len());
            validate::check_entry(&self.limits, self.backend, k.as_ref(), size)?;
        }
        let mut inner = self.current()?;
        self.begin(&mut inner)?;
        // The SQL API's row limit must not cut a KV entry short: the entry
        // limits above are the rule here, and a row carries a few bytes of
        // header besides key and value.
        let longest = entries
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
            .max()
            .unwrap_or(0);
        let sql_limit = i32::try_from(self.limits.max_sql_value_size).unwrap_or(i32::MAX);
        let needed = i32::try_from(longest.saturating_add(1024)).unwrap_or(i32::MAX);
        let raised = needed > sql_limit;
        if raised {
            inner.conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, needed)?;
        }
        let written = (|| -> rusqlite::Result<()> {
            let mut stmt = inner
                .conn
                .prepare_cached("INSERT OR REPLACE INTO _cf_KV (key, value) VALUES (?1, ?2)")?;
            for (k, v) in entries {
                stmt.execute(params![k.as_ref().as_bytes(), v.as_ref()])?;
            }
            Ok(())
        })();
        if raised {
            inner
                .conn
                .set_limit(Limit::SQLITE_LIMIT_LENGTH, sql_limit)?;
        }
        written?;
        let bytes: usize = entries
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
            .sum();
        self.wrote(&mut inner, entries.len() as u64, bytes as u64)
    }

    /// `delete(key)`: whether the key existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.delete_many(&[key])? > 0)
    }

    /// `delete(keys)`: how many of the keys existed.
    pub fn delete_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<usize> {
        validate::check_batch(&self.limits, keys.len())?;
        for k in keys {
            validate::check_key(&self.limits, self.backend, k.as_ref())?;
        }
        let unique: BTreeSet<&[u8]> = keys.iter().map(|k| k.as_ref().as_bytes()).collect();
        let mut inner = self.current()?;
        self.begin(&mut inner)?;
        let mut deleted = 0;
        {
            let mut stmt = inner
                .conn
                .prepare_cached("DELETE FROM _cf_KV WHERE key = ?1")?;
            for k in &unique {
                deleted += stmt.execute([k])?;
            }
        }
        let bytes: usize = unique.iter().map(|k| k.len()).sum();
        self.wrote(&mut inner, unique.len() as u64, bytes as u64)?;
        Ok(deleted)
    }

    /// `list(options)`: entries in UTF-8 byte order of their keys (reversed
    /// with `reverse`), at most `limit` of them.
    pub fn list(&self, options: &ListOptions) -> Result<Vec<(String, Vec<u8>)>> {
        let Some(KeyRange {
            start,
            end,
            reverse,
            limit,
        }) = validate::compile_list(options)?
        else {
            return Ok(Vec::new());
        };
        let order = if reverse { "DESC" } else { "ASC" };
        let limit = limit.map(to_i64).unwrap_or(-1);
        let inner = self.current()?;
        let rows = match end {
            Some(end) => {
                let mut stmt = inner.conn.prepare_cached(&format!(
                    "SELECT key, value FROM _cf_KV WHERE key >= ?1 AND key < ?2 ORDER BY key {order} LIMIT ?3"
                ))?;
                stmt.query_map(params![start, end, limit], read_entry)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            }
            None => {
                let mut stmt = inner.conn.prepare_cached(&format!(
                    "SELECT key, value FROM _cf_KV WHERE key >= ?1 ORDER BY key {order} LIMIT ?2"
                ))?;
                stmt.query_map(params![start, limit], read_entry)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            }
        };
        Ok(rows)
    }

    /// `deleteAll()`: every key, and for SQLite-backed objects every table
    /// of the application too. `delete_alarm` follows the compatibility flag
    /// `delete_all_deletes_alarm` (on from 2026-02-24); without it the
    /// alarm is kept, the older behaviour. Refused inside a transaction.
    pub fn delete_all(&self, delete_alarm: bool) -> Result<()> {
        let mut inner = self.current()?;
        if inner.depth > 0 {
            return Err(DoError::DeleteAllInTransaction);
        }
        self.begin(&mut inner)?;
        let objects: Vec<(String, String)> = inner
            .conn
            .prepare(
                "SELECT type, name FROM sqlite_master
                 WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                   AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // Foreign keys between the application's tables must not block the drop.
        inner.conn.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        for (kind, name) in &objects {
            let kind = if kind == "view" { "VIEW" } else { "TABLE" };
            inner.conn.execute_batch(&format!(
                "DROP {kind} IF EXISTS \"{}\"",
                name.replace('"', "\"\"")
            ))?;
        }
        inner.conn.execute("DELETE FROM _cf_KV", [])?;
        if delete_alarm {
            inner
                .conn
                .execute("DELETE FROM _cf_METADATA WHERE key = ?1", [ALARM_KEY])?;
        }
        self.wrote(&mut inner, 1, 0)
    }

    // ------------------------------------------------------------ alarms

    /// `getAlarm()`: the alarm time in ms since the Unix epoch, if set.
    pub fn get_alarm(&self) -> Result<Option<u64>> {
        let inner = self.current()?;
        Ok(read_alarm(&inner.conn)?.map(to_u64))
    }

    /// `setAlarm(scheduledTime)`: replaces any alarm. A time in the past is
    /// moved to now, so it fires at once (as on Cloudflare).
    pub fn set_alarm(&self, scheduled_ms: i64) -> Result<()> {
        if scheduled_ms <= 0 {
            return Err(DoError::AlarmTimeNotPositive);
        }
        let at = scheduled_ms.max(to_i64(self.clock.now_ms()));
        let mut inner = self.current()?;
        self.begin(&mut inner)?;
        inner.conn.execute(
            "INSERT OR REPLACE INTO _cf_METADATA (key, value) VALUES (?1, ?2)",
            params![ALARM_KEY, at],
        )?;
        self.wrote(&mut inner, 1, 0)
    }

    /// `deleteAlarm()`.
    pub fn delete_alarm(&self) -> Result<()> {
        let mut inner = self.current()?;
        self.begin(&mut inner)?;
        inner
            .conn
            .execute("DELETE FROM _cf_METADATA WHERE key = ?1", [ALARM_KEY])?;
        self.wrote(&mut inner, 1, 0)
    }

    /// After the alarm set for `scheduled_ms` ran successfully (or was given
    /// up): clears it unless the handler set another time, and flushes.
    /// Returns whether it was cleared.
    pub fn complete_alarm(&self, scheduled_ms: u64) -> Result<bool> {
        let cleared = {
            let mut inner = self.current()?;
            if read_alarm(&inner.conn)? == Some(to_i64(scheduled_ms)) {
                self.begin(&mut inner)?;
                inner
                    .conn
                    .execute("DELETE FROM _cf_METADATA WHERE key = ?1", [ALARM_KEY])?;
                self.wrote(&mut inner, 1, 0)?;
                true
            } else {
                false
            }
        };
        self.flush()?;
        Ok(cleared)
    }

    // --------------------------------------------------------------- SQL

    /// `sql.exec(query, ...bindings)`. Several statements may be given; they
    /// run in order and only the last one's rows are returned (only the last
    /// one may have parameters). SQLite-backed classes only.
    pub fn sql_exec(&self, query: &str, bindings: &[SqlValue]) -> Result<SqlCursor> {
        if self.backend != StorageBackend::Sqlite {
            return Err(DoError::SqlNotEnabled);
        }
        let mut inner = self.current()?;
        self.begin(&mut inner)?;
        let before = inner.conn.total_changes();
        let result_reads_changes = split_statements(query)
            .iter()
            .any(|text| reads_what_it_changes(text));
        let result = self.run_user_sql(&inner.conn, query, bindings);
        let changes = inner.conn.total_changes().saturating_sub(before);
        let UserSqlOutput {
            columns,
            rows,
            scanned,
            wrote,
        } = result?;
        let rows_written = changes;
        // An UPDATE or DELETE reads the rows it changes; an INSERT of
        // literal values reads none (what Cloudflare reports).
        let changed_read = if result_reads_changes { changes } else { 0 };
        let rows_read = scanned.max(rows.len() as u64).max(changed_read);
        if wrote {
            self.wrote(&mut inner, changes.max(1), query.len() as u64)?;
        }
        Ok(SqlCursor::new(columns, rows, rows_read, rows_written))
    }

    fn run_user_sql(
        &self,
        conn: &Connection,
        query: &str,
        bindings: &[SqlValue],
    ) -> Result<UserSqlOutput> {
        if query.len() > self.limits.max_sql_statement_length {
            // SQLite is handed the whole remaining text, so the limit is on all of it.
            return Err(DoError::Sql {
                message: "statement too long: SQLITE_TOOBIG".to_owned(),
            });
        }
        let statements = split_statements(query);
        let Some(last) = statements.len().checked_sub(1) else {
            return Err(DoError::SqlNoStatement);
        };
        let mut scanned = 0u64;
        let mut wrote = false;
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        for (n, text) in statements.iter().enumerate() {
            let is_last = n == last;
            // Each statement is prepared only after the previous one ran,
            // so it can use what they created.
            let mut stmt = {
                let _user = UserSql::enter(&self.gate);
                conn.prepare(text).map_err(|e| self.sql_error(e))?
            };
            if self.gate.saw_alter.swap(false, Ordering::SeqCst) && renames_into_reserved(text) {
                return Err(DoError::Sql {
                    message: "not authorized: SQLITE_AUTH".to_owned(),
                });
            }
            if !is_last {
                if stmt.parameter_count() > 0 {
                    return Err(DoError::SqlParametersBeforeLast);
                }
            } else {
                // SQLite would bind missing parameters as NULL; Cloudflare refuses.
                if stmt.parameter_count() != bindings.len() {
                    return Err(DoError::SqlWrongBindings {
                        expected: stmt.parameter_count(),
                        got: bindings.len(),
                    });
                }
                for (i, v) in bindings.iter().enumerate() {
                    stmt.raw_bind_parameter(i + 1, v)
                        .map_err(|e| self.sql_error(e))?;
                }
                columns = stmt.column_names().map(str::to_owned).collect();
            }
            wrote |= !stmt.readonly();
            let width = stmt.column_count();
            {
                let _user = UserSql::enter(&self.gate);
                let mut rs = stmt.raw_query();
                while let Some(row) = rs.next().map_err(|e| self.sql_error(e))? {
                    if is_last {
                        let mut values = Vec::with_capacity(width);
                        for c in 0..width {
                            values.push(SqlValue::from(
                                row.get_ref(c).map_err(|e| self.sql_error(e))?,
                            ));
                        }
                        rows.push(values);
                    }
                }
            }
            scanned += to_u64(i64::from(
                stmt.get_status(rusqlite::StatementStatus::FullscanStep),
            ));
        }
        Ok(UserSqlOutput {
            columns,
            rows,
            scanned,
            wrote,
        })
    }

    fn sql_error(&self, e: rusqlite::Error) -> DoError {
        if self.gate.refused_transaction.swap(false, Ordering::SeqCst) {
            return DoError::SqlTransactionStatement;
        }
        sql_error(e)
    }

    /// `sql.databaseSize`: bytes in use by the object's database.
    pub fn database_size(&self) -> Result<u64> {
        let inner = self.current()?;
        let pages: i64 = inner.conn.query_row(
            "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count)",
            [],
            |r| r.get(0),
        )?;
        let size: i64 = inner.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(to_u64(pages) * to_u64(size))
    }

    // ------------------------------------------------------- transactions

    /// `transactionSync(fn)`: runs `f` all-or-nothing. Returning `Err` rolls
    /// back every write `f` made (KV, SQL and alarm); nested calls nest as
    /// savepoints. SQLite-backed classes only.
    pub fn transaction_sync<T, E>(&self, f: impl FnOnce(&Self) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DoError>,
    {
        if self.backend != StorageBackend::Sqlite {
            return Err(DoError::TransactionSyncNotSql.into());
        }
        self.transaction(f)
    }

    /// `transaction(fn)` for either backend: like
    /// [`transaction_sync`](Self::transaction_sync); `deleteAll()` is refused
    /// inside it.
    pub fn transaction<T, E>(&self, f: impl FnOnce(&Self) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DoError>,
    {
        let depth = {
            let mut inner = self.current()?;
            self.begin(&mut inner)?;
            let depth = inner.depth;
            inner
                .conn
                .execute_batch(&format!("SAVEPOINT _cf_txn_{depth}"))
                .map_err(DoError::from)?;
            inner.depth += 1;
            depth
        };
        let result = f(self);
        let mut inner = self.lock();
        inner.depth = depth;
        let end = match &result {
            Ok(_) => format!("RELEASE _cf_txn_{depth}"),
            Err(_) => format!("ROLLBACK TO _cf_txn_{depth}; RELEASE _cf_txn_{depth}"),
        };
        inner.conn.execute_batch(&end).map_err(DoError::from)?;
        if depth == 0 && result.is_ok() && std::mem::take(&mut inner.flush_pending) {
            self.flush_locked(&mut inner)?;
        }
        result
    }

    // ------------------------------------------------------ output gate

    /// Commits the implicit transaction durably (`synchronous=FULL`) and
    /// mirrors an alarm change into the alarm index. The runtime calls this
    /// at every output-gate point. Inside a transaction it is deferred to
    /// the transaction's end.
    pub fn flush(&self) -> Result<()> {
        let mut inner = self.lock();
        if inner.depth > 0 {
            inner.flush_pending = true;
            return Ok(());
        }
        self.flush_locked(&mut inner)
    }

    /// Whether writes are waiting for a flush.
    pub fn has_unflushed_writes(&self) -> bool {
        let inner = self.lock();
        inner.open && (inner.unflushed_writes > 0 || inner.over_limit)
    }

    fn flush_locked(&self, inner: &mut Inner) -> Result<()> {
        if !inner.open {
            return Ok(());
        }
        let result = match self.over_limit(inner) {
            // The writes before the segment are whole units of their own,
            // held for this commit: they commit, the segment does not.
            Some(e) if inner.segment.is_some() => inner
                .conn
                .execute_batch("ROLLBACK TO _cf_segment")
                .map_err(DoError::from)
                .and_then(|()| self.commit(inner))
                .and(Err(e)),
            Some(e) => Err(e),
            None => self.commit(inner),
        };
        inner.over_limit = false;
        if result.is_err() && !inner.conn.is_autocommit() {
            // A failed commit loses the batch, as a broken output gate does
            // on Cloudflare; the storage stays usable.
            let _ = inner.conn.execute_batch("ROLLBACK");
        }
        inner.open = false;
        inner.unflushed_writes = 0;
        inner.unflushed_bytes = 0;
        inner.flush_pending = false;
        inner.segment = None;
        result
    }

    /// Group commit: the writes from here on belong to a new event, while
    /// the writes before it wait in the same implicit transaction for one
    /// commit with it. The unflushed limits then apply to the new event's
    /// writes alone, and passing one discards only them: the earlier ones
    /// still commit at the next flush. Returns `false` when the earlier
    /// writes should be committed first (they are past half a limit, or
    /// already over one), which keeps the whole unit under 1.5x the limits.
    pub fn begin_segment(&self) -> Result<bool> {
        let mut inner = self.lock();
        if !inner.open || inner.depth > 0 {
            return Ok(true);
        }
        if inner.over_limit
            || inner.unflushed_writes > self.limits.max_unflushed_writes / 2
            || inner.unflushed_bytes > self.limits.max_unflushed_bytes / 2
        {
            return Ok(false);
        }
        if inner.segment.is_some() {
            // Folds the previous segment into the unit before it.
            inner.conn.execute_batch("RELEASE _cf_segment")?;
        }
        inner.conn.execute_batch("SAVEPOINT _cf_segment")?;
        inner.segment = Some((inner.unflushed_writes, inner.unflushed_bytes));
        Ok(true)
    }

    /// Cluster mode: inside the write transaction, refuses when the file
    /// holds a newer fencing token than this node's lease, and records
    /// this node's token when it is newer than the file's.
    fn check_fence(&self, conn: &Connection) -> Result<()> {
        let Some(fences) = &self.fences else {
            return Ok(());
        };
        let Some(token) = fences.token(&self.namespace, &self.id) else {
            return Err(DoError::NotLeased);
        };
        let stored: Option<i64> = conn
            .prepare_cached("SELECT value FROM _cf_METADATA WHERE key = ?1")?
            .query_row([FENCE_TOKEN_KEY], |r| r.get(0))
            .optional()?;
        match stored {
            Some(stored) if stored > token => {
                fences.revoke(&self.namespace, &self.id);
                Err(DoError::Fenced { token, stored })
            }
            Some(stored) if stored == token => Ok(()),
            _ => {
                let mut put = conn.prepare_cached(
                    "INSERT OR REPLACE INTO _cf_METADATA (key, value) VALUES (?1, ?2)",
                )?;
                put.execute(rusqlite::params![FENCE_TOKEN_KEY, token])?;
                put.execute(rusqlite::params![FENCE_NODE_KEY, fences.node()])?;
                Ok(())
            }
        }
    }

    fn commit(&self, inner: &mut Inner) -> Result<()> {
        self.check_fence(&inner.conn)?;
        let alarm = read_alarm(&inner.conn)?;
        let changed = alarm != inner.alarm_at_open;
        if changed && let Some(at) = alarm {
            // Before the commit: the index may run ahead, never behind.
            self.alarms.set(&self.namespace, &self.id, at)?;
        }
        inner.conn.execute_batch("COMMIT")?;
        if let Err(e) = self.ship(inner, changed.then_some(alarm)) {
            // Committed here but not in the log: not acknowledged, and the
            // file is rebuilt from the log before the next call.
            inner.diverged = true;
            return Err(e);
        }
        if changed && alarm.is_none() {
            self.alarms.remove(&self.namespace, &self.id)?;
        }
        Ok(())
    }

    /// The state to serve a call from. Cluster mode: a file that may be
    /// ahead of the log, or was loaded under another lease than the one
    /// this node holds now (the object moved away and back), is rebuilt
    /// from the log first; a unit pending across such a move is discarded.
    fn current(&self) -> Result<MutexGuard<'_, Inner>> {
        let mut inner = self.lock();
        let (Some(_), Some(fences)) = (&self.log, &self.fences) else {
            return Ok(inner);
        };
        let token = fences.token(&self.namespace, &self.id);
        if !inner.diverged && token == inner.loaded_token {
            return Ok(inner);
        }
        let moved = inner.open && !inner.diverged;
        if inner.open {
            if !inner.conn.is_autocommit() {
                let _ = inner.conn.execute_batch("ROLLBACK");
            }
            inner.open = false;
            inner.depth = 0;
            inner.unflushed_writes = 0;
            inner.unflushed_bytes = 0;
            inner.flush_pending = false;
            inner.over_limit = false;
        }
        self.reload(&mut inner)?;
        if moved {
            return Err(DoError::LeaseMoved);
        }
        Ok(inner)
    }

    /// Rebuilds the file from the log under the lease held now.
    fn reload(&self, inner: &mut Inner) -> Result<()> {
        let (Some(log), Some(fences)) = (&self.log, &self.fences) else {
            return Ok(());
        };
        inner.diverged = true;
        let token = fences
            .token(&self.namespace, &self.id)
            .ok_or(DoError::NotLeased)?;
        // Closed before its file is replaced.
        drop(std::mem::replace(
            &mut inner.conn,
            hearth_core::sqlite::placeholder()?,
        ));
        let file = ship::generation_path(&self.path, token);
        let restored = ship::restore(log.as_ref(), &self.namespace, &self.id, &file)?;
        inner.in_log = restored.is_some();
        inner.seq = restored.unwrap_or(0);
        self.wal_frames.store(0, Ordering::SeqCst);
        inner.conn = connect(&file, &self.limits, &self.gate, Some(&self.wal_frames))?;
        inner.file = file;
        inner.shipped_frames = 0;
        inner.wal_salt = None;
        inner.log_bytes = 0;
        inner.loaded_token = Some(token);
        self.settle(inner)?;
        inner.diverged = false;
        Ok(())
    }

    /// Cluster mode, on a freshly opened file: records this node's token
    /// (so an old owner's pending commit is refused from the moment this
    /// node runs the object), then makes what opening wrote durable: a
    /// first snapshot for an object the log never saw, else a change.
    fn settle(&self, inner: &mut Inner) -> Result<()> {
        inner.conn.execute_batch("BEGIN IMMEDIATE")?;
        let fenced = self.check_fence(&inner.conn);
        let end = if fenced.is_ok() { "COMMIT" } else { "ROLLBACK" };
        inner.conn.execute_batch(end)?;
        fenced?;
        if self.log.is_none() {
            return Ok(());
        }
        if !inner.in_log {
            self.snapshot(inner)
        } else {
            self.ship(inner, None)
        }
    }

    /// Cluster mode: appends the frames of the commits since the last
    /// shipment to the log under this node's lease; takes a snapshot once
    /// the log outgrew the file.
    fn ship(&self, inner: &mut Inner, alarm: Option<Option<i64>>) -> Result<()> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        let upto = self.wal_frames.load(Ordering::SeqCst);
        let Some(frames) =
            ship::read_frames(&inner.file, inner.shipped_frames, upto, inner.wal_salt)?
        else {
            return Ok(());
        };
        let token = inner.loaded_token.ok_or(DoError::NotLeased)?;
        let change = frames.change;
        let bytes = change.len() as u64;
        match log.append(&self.lease(token), inner.seq + 1, change, alarm) {
            Ok(()) => {}
            Err(LogError::Fenced) => {
                if let Some(fences) = &self.fences {
                    fences.revoke(&self.namespace, &self.id);
                }
                return Err(DoError::FencedInLog { token });
            }
            Err(LogError::Backend(message)) => return Err(DoError::Shipping { message }),
        }
        inner.seq += 1;
        inner.shipped_frames = upto;
        inner.wal_salt = Some(frames.salt);
        inner.log_bytes += bytes;
        let file_bytes = std::fs::metadata(&inner.file).map(|m| m.len()).unwrap_or(0);
        if inner.log_bytes > log.snapshot_after_bytes().max(file_bytes)
            && let Err(e) = self.snapshot(inner)
        {
            // The log still holds every change; the next commit tries again.
            tracing::warn!(target: "hearth::durable", class = %self.namespace, id = %self.id, "snapshot failed: {e}");
        }
        Ok(())
    }

    /// Cluster mode: checkpoints the WAL into the file and uploads the
    /// file as the snapshot holding every change up to the last one.
    fn snapshot(&self, inner: &mut Inner) -> Result<()> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        let token = inner.loaded_token.ok_or(DoError::NotLeased)?;
        let busy: i64 = inner
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err(DoError::Shipping {
                message: "the checkpoint before a snapshot was blocked".into(),
            });
        }
        // Every shipped frame is in the file now; the WAL starts over.
        self.wal_frames.store(0, Ordering::SeqCst);
        inner.shipped_frames = 0;
        inner.wal_salt = None;
        let path = inner.file.clone();
        let io = |e| DoError::io(&path, e);
        let file = std::fs::File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let backend = |e: LogError| DoError::Shipping {
            message: e.to_string(),
        };
        let (mut offset, mut chunk) = (0u64, 0u32);
        while offset < len {
            let n = (len - offset).min(ship::SNAPSHOT_CHUNK as u64) as usize;
            let mut data = vec![0u8; n];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut data, offset).map_err(io)?;
            log.put_snapshot_chunk(&self.namespace, &self.id, inner.seq, chunk, data)
                .map_err(backend)?;
            offset += n as u64;
            chunk += 1;
        }
        match log.finish_snapshot(&self.lease(token), inner.seq, chunk) {
            Ok(()) => {}
            Err(LogError::Fenced) => {
                if let Some(fences) = &self.fences {
                    fences.revoke(&self.namespace, &self.id);
                }
                return Err(DoError::FencedInLog { token });
            }
            Err(e) => return Err(backend(e)),
        }
        inner.log_bytes = 0;
        inner.in_log = true;
        Ok(())
    }

    fn lease(&self, token: i64) -> Lease<'_> {
        Lease {
            namespace: &self.namespace,
            id: &self.id,
            node: self.fences.as_deref().map_or("", FenceBook::node),
            token,
        }
    }

    fn begin(&self, inner: &mut Inner) -> Result<()> {
        if let Some(e) = self.over_limit(inner) {
            return Err(e);
        }
        if !inner.open {
            // IMMEDIATE takes the write lock now, so the batch cannot fail
            // later on a lock held by another process.
            inner.conn.execute_batch("BEGIN IMMEDIATE")?;
            inner.open = true;
            inner.alarm_at_open = read_alarm(&inner.conn)?;
        }
        Ok(())
    }

    /// The error of a unit that passed a limit, if it did.
    fn over_limit(&self, inner: &Inner) -> Option<DoError> {
        if !inner.over_limit {
            return None;
        }
        let (writes, bytes) = segment_counts(inner);
        Some(if writes > self.limits.max_unflushed_writes {
            DoError::UncommittedLimit {
                what: "writes",
                count: writes,
                limit: self.limits.max_unflushed_writes,
                field: "limits.max_unflushed_writes",
            }
        } else {
            DoError::UncommittedLimit {
                what: "bytes",
                count: bytes,
                limit: self.limits.max_unflushed_bytes,
                field: "limits.max_unflushed_bytes",
            }
        })
    }

    /// Counts a write into the uncommitted unit. Past a limit the unit can
    /// no longer commit whole, so it is marked to be discarded; it is never
    /// committed early, which would make it survive a crash in part.
    fn wrote(&self, inner: &mut Inner, writes: u64, bytes: u64) -> Result<()> {
        inner.unflushed_writes = inner.unflushed_writes.saturating_add(writes);
        inner.unflushed_bytes = inner.unflushed_bytes.saturating_add(bytes);
        let (writes, bytes) = segment_counts(inner);
        if writes > self.limits.max_unflushed_writes || bytes > self.limits.max_unflushed_bytes {
            inner.over_limit = true;
        }
        match self.over_limit(inner) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Opens an object's file with the platform's limits and the authorizer;
/// with `wal_frames` (cluster mode), the WAL hook records each commit's
/// frame count there.
fn connect(
    path: &Path,
    limits: &DoLimits,
    gate: &Arc<Gate>,
    wal_frames: Option<&Arc<AtomicU32>>,
) -> Result<Connection> {
    let mut conn = hearth_core::sqlite::open(path)?;
    if let Some(frames) = wal_frames {
        // Replaces automatic checkpoints too: frames stay in the WAL
        // until shipped, and a snapshot checkpoints.
        let frames = frames.clone();
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                frames.store(u32::try_from(n).unwrap_or(0), Ordering::SeqCst);
                Ok(())
            },
        ))?;
        // The file is a cache rebuilt from the log whenever it is opened,
        // so a local fsync per commit buys nothing: PostgreSQL's commit is
        // what acknowledges.
        conn.pragma_update(None, "synchronous", "OFF")?;
    }
    let clamp = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, clamp(limits.max_sql_value_size))?;
    conn.set_limit(
        Limit::SQLITE_LIMIT_SQL_LENGTH,
        clamp(limits.max_sql_statement_length),
    )?;
    conn.set_limit(Limit::SQLITE_LIMIT_COLUMN, clamp(limits.max_sql_columns))?;
    conn.set_limit(
        Limit::SQLITE_LIMIT_VARIABLE_NUMBER,
        clamp(limits.max_sql_bound_parameters),
    )?;
    conn.set_limit(
        Limit::SQLITE_LIMIT_FUNCTION_ARG,
        clamp(limits.max_sql_function_args),
    )?;
    conn.set_limit(
        Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
        clamp(limits.max_sql_like_pattern),
    )?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let max_pages = limits.max_database_size / to_u64(page_size).max(512);
    conn.execute_batch(&format!(
        "PRAGMA max_page_count = {}",
        to_i64(max_pages.max(1))
    ))?;
    // The KV table is keyed by BLOB so that keys order (and prefix
    // bounds compare) by UTF-8 bytes, as Cloudflare orders them.
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _cf_KV (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS _cf_METADATA (key TEXT PRIMARY KEY, value) WITHOUT ROWID;",
    )?;

    let g = gate.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if !g.user.load(Ordering::SeqCst) {
            return Authorization::Allow;
        }
        if matches!(ctx.action, AuthAction::AlterTable { .. }) {
            g.saw_alter.store(true, Ordering::SeqCst);
        }
        match authorize(&ctx) {
            Verdict::Allow => Authorization::Allow,
            Verdict::Deny => Authorization::Deny,
            Verdict::Transaction => {
                g.refused_transaction.store(true, Ordering::SeqCst);
                Authorization::Deny
            }
        }
    }))?;
    Ok(conn)
}

/// The unflushed counts of the newest segment (the whole unit without one).
fn segment_counts(inner: &Inner) -> (u64, u64) {
    let (w, b) = inner.segment.unwrap_or((0, 0));
    (
        inner.unflushed_writes.saturating_sub(w),
        inner.unflushed_bytes.saturating_sub(b),
    )
}

fn read_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Vec<u8>)> {
    let key: Vec<u8> = r.get(0)?;
    Ok((String::from_utf8_lossy(&key).into_owned(), r.get(1)?))
}

/// The alarm an object's file holds (also read to copy it out of a
/// stopped data directory).
pub(crate) fn read_alarm(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT value FROM _cf_METADATA WHERE key = ?1")?
        .query_row([ALARM_KEY], |r| r.get(0))
        .optional()?)
}

/// What running the application's SQL produced.
struct UserSqlOutput {
    columns: Vec<String>,
    rows: Vec<Vec<SqlValue>>,
    /// Full-scan steps, an approximation of rows read.
    scanned: u64,
    /// Whether any statement could have written.
    wrote: bool,
}

/// Marks the statements prepared while it lives as the application's.
struct UserSql<'a>(&'a Gate);

impl<'a> UserSql<'a> {
    fn enter(gate: &'a Gate) -> Self {
        gate.refused_transaction.store(false, Ordering::SeqCst);
        gate.saw_alter.store(false, Ordering::SeqCst);
        gate.user.store(true, Ordering::SeqCst);
        Self(gate)
    }
}

impl Drop for UserSql<'_> {
    fn drop(&mut self) {
        self.0.user.store(false, Ordering::SeqCst);
    }
}

enum Verdict {
    Allow,
    Deny,
    Transaction,
}

/// Whether a statement reads the rows it changes (UPDATE, DELETE, or a
/// common table expression in front of one), unlike an INSERT or DDL.
fn reads_what_it_changes(text: &str) -> bool {
    let word: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    ["UPDATE", "DELETE", "WITH"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&word))
}

/// Names starting `_cf_` (any case) belong to the storage layer.
fn is_allowed_name(name: &str) -> bool {
    !name
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("_cf_"))
}

/// Pragmas an application may run: introspection and foreign-key control.
/// Anything touching durability (journal_mode, synchronous, ...) is refused.
const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "foreign_keys",
    "defer_foreign_keys",
    "quick_check",
    "integrity_check",
    "optimize",
    "data_version",
    "case_sensitive_like",
];

fn authorize(ctx: &AuthContext<'_>) -> Verdict {
    let ok = |b: bool| if b { Verdict::Allow } else { Verdict::Deny };
    match ctx.database_name {
        None | Some("main") | Some("temp") => {}
        Some(_) => return Verdict::Deny,
    }
    match ctx.action {
        AuthAction::Select | AuthAction::Recursive | AuthAction::Function { .. } => Verdict::Allow,
        AuthAction::Analyze { .. } => Verdict::Allow,
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Verdict::Transaction,
        AuthAction::CreateTable { table_name }
        | AuthAction::CreateTempTable { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::DropTempTable { table_name }
        | AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Read { table_name, .. }
        | AuthAction::Update { table_name, .. } => ok(is_allowed_name(table_name)),
        AuthAction::AlterTable { table_name, .. } => ok(is_allowed_name(table_name)),
        AuthAction::CreateView { view_name }
        | AuthAction::CreateTempView { view_name }
        | AuthAction::DropView { view_name }
        | AuthAction::DropTempView { view_name } => ok(is_allowed_name(view_name)),
        AuthAction::Reindex { index_name } => ok(is_allowed_name(index_name)),
        AuthAction::CreateIndex {
            index_name,
            table_name,
        }
        | AuthAction::CreateTempIndex {
            index_name,
            table_name,
        }
        | AuthAction::DropIndex {
            index_name,
            table_name,
        }
        | AuthAction::DropTempIndex {
            index_name,
            table_name,
        } => ok(is_allowed_name(index_name) && is_allowed_name(table_name)),
        AuthAction::CreateTrigger {
            trigger_name,
            table_name,
        }
        | AuthAction::CreateTempTrigger {
            trigger_name,
            table_name,
        }
        | AuthAction::DropTrigger {
            trigger_name,
            table_name,
        }
        | AuthAction::DropTempTrigger {
            trigger_name,
            table_name,
        } => ok(is_allowed_name(trigger_name) && is_allowed_name(table_name)),
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => ok(ALLOWED_PRAGMAS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(pragma_name))
            && pragma_value.is_none_or(is_allowed_name)),
        AuthAction::CreateVtable {
            table_name,
            module_name,
        }
        | AuthAction::DropVtable {
            table_name,
            module_name,
        } => ok(["fts5", "fts5vocab", "rtree", "rtree_i32"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(module_name))
            && is_allowed_name(table_name)),
        // ATTACH, DETACH and anything unknown.
        _ => Verdict::Deny,
    }
}

/// `<message>[ at offset N]: SQLITE_<CODE>`, the shape Cloudflare reports
/// SQLite failures in.
pub(crate) fn sql_error(e: rusqlite::Error) -> DoError {
    let (err, msg, offset) = match e {
        rusqlite::Error::SqliteFailure(err, msg) => (err, msg, None),
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => (error, Some(msg), Some(offset)),
        other => {
            return DoError::Sql {
                message: other.to_string(),
            };
        }
    };
    let primary = err.extended_code & 0xff;
    let mut message = msg.unwrap_or_else(|| err.to_string());
    if let Some(o) = offset.filter(|o| *o >= 0) {
        message.push_str(&format!(" at offset {o}"));
    }
    message.push_str(": ");
    message.push_str(hearth_core::sqlite::code_name(primary));
    DoError::Sql { message }
}

impl ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            SqlValue::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            SqlValue::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            SqlValue::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            SqlValue::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

impl From<ValueRef<'_>> for SqlValue {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => SqlValue::Null,
            ValueRef::Integer(i) => SqlValue::Integer(i),
            ValueRef::Real(f) => SqlValue::Real(f),
            ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
        }
    }
}
