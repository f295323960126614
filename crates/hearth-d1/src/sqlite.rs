//! The embedded backend: one SQLite file per database, one connection
//! behind a mutex. Every call (a query, a batch, an exec, a migration) is
//! one SQLite transaction, committed under `synchronous=FULL` before the
//! call returns. A call whose statements are all read-only runs without
//! the write lock: one statement in autocommit, several in a deferred
//! transaction. Prepared statements are cached per connection, and each SQL
//! text's analysis (statements, `LIMIT` rewrite) per database.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::ffi;
use rusqlite::hooks::AuthContext;
use rusqlite::limits::Limit;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, Statement, StatementStatus, ToSql};

use crate::analysis::{Analyses, Analysis, ColumnNames, Epoch};
use crate::error::D1Error;
use crate::replica::Replica;
use crate::validate::{self, D1Limits, Denial};
use crate::{D1Meta, D1Timings, D1Value, SERVED_BY};

/// Platform state lives in a `_cf_` table, which SQL from the binding can
/// neither read nor write (D1 keeps its own `_cf_KV` the same way).
const META_TABLE: &str = "_cf_KV";
const SEQ_KEY: &str = "hearth.d1.commit_seq";
const ID_KEY: &str = "hearth.d1.database_id";

/// How many SQLite VM steps run between two deadline checks.
const PROGRESS_STEPS: i32 = 1000;

/// Room kept between calls for this many queries' analyses.
const PLANS_KEPT: usize = 16;

/// Prepared statements kept per connection. SQLite re-prepares a cached
/// statement by itself when the schema changes.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// Hearth's own statements. They run past the statement policy, so their
/// text starts with a per-open random tag: user SQL can never hit one of
/// them in the statement cache and skip the policy.
#[derive(Debug)]
struct OwnSql {
    begin_immediate: String,
    begin_deferred: String,
    commit: String,
    rollback: String,
    read_seq: String,
    bump_seq: String,
    page_count: String,
}

impl OwnSql {
    fn new() -> Self {
        let tag = format!("/* hearth {} */ ", uuid::Uuid::new_v4().simple());
        let own = |sql: &str| format!("{tag}{sql}");
        Self {
            begin_immediate: own("BEGIN IMMEDIATE"),
            begin_deferred: own("BEGIN DEFERRED"),
            commit: own("COMMIT"),
            rollback: own("ROLLBACK"),
            read_seq: own(&format!(
                "SELECT value FROM {META_TABLE} WHERE key = '{SEQ_KEY}'"
            )),
            bump_seq: own(&format!(
                "UPDATE {META_TABLE} SET value = value + 1 WHERE key = '{SEQ_KEY}'"
            )),
            page_count: own("PRAGMA page_count"),
        }
    }
}

/// The commit sequence and size as of the last call, so a read reports
/// them without querying. `data_version` tells whether another connection
/// (a CLI beside the server) has committed since.
#[derive(Debug, Clone, Copy)]
struct Committed {
    data_version: Option<u32>,
    seq: u64,
    size: u64,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    committed: Committed,
    /// The last bookmark handed out and its sequence number, so a run of
    /// reads does not format the same bookmark again and again.
    bookmark: Option<(u64, Arc<str>)>,
    /// Each SQL text's statements, worked out once.
    analyses: Analyses,
    /// Room for one call's analyses, kept so a call allocates none.
    plans: Vec<Arc<Analysis>>,
}

/// How a call runs, decided from its statements before it starts.
enum Mode<'c> {
    /// One read-only statement, already prepared: no transaction of its own.
    /// Comes with when the call started, which its duration counts from.
    Autocommit(CachedStatement<'c>, Instant),
    /// Read-only statements sharing one snapshot, without the write lock.
    Read,
    /// Anything that may write: `BEGIN IMMEDIATE`.
    Write,
}

/// State shared with the SQLite callbacks.
#[derive(Debug)]
struct Guard {
    /// Set while Hearth runs its own statements, which bypass the policy.
    trusted: AtomicBool,
    /// Why the policy last refused a statement ([`Guard::NO_DENIAL`] or a
    /// [`Denial`] as `u8`).
    denial: AtomicU8,
    base: Instant,
    /// Nanoseconds after `base` at which to interrupt; 0 means none.
    deadline_ns: AtomicU64,
    timed_out: AtomicBool,
}

impl Guard {
    fn arm(&self, now: Instant, limit: Duration) {
        let at = now
            .saturating_duration_since(self.base)
            .saturating_add(limit)
            .as_nanos();
        let at = u64::try_from(at).unwrap_or(u64::MAX).max(1);
        self.timed_out.store(false, Ordering::SeqCst);
        self.deadline_ns.store(at, Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.deadline_ns.store(0, Ordering::SeqCst);
    }

    /// The progress handler: true interrupts the running statement.
    fn past_deadline(&self) -> bool {
        let at = self.deadline_ns.load(Ordering::Relaxed);
        if at == 0 {
            return false;
        }
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if now >= at {
            self.timed_out.store(true, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    const NO_DENIAL: u8 = 0;

    fn record_denial(&self, d: Denial) {
        let code = match d {
            Denial::Transaction => 1,
            Denial::Other => 2,
        };
        // A refused transaction statement explains more than anything else.
        let _ = self
            .denial
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                (cur != 1).then_some(code)
            });
    }

    fn take_denial(&self) -> Option<Denial> {
        match self.denial.swap(Self::NO_DENIAL, Ordering::SeqCst) {
            1 => Some(Denial::Transaction),
            2 => Some(Denial::Other),
            _ => None,
        }
    }
}

/// One query: SQL text (possibly several statements) and the values bound
/// to its last statement.
pub(crate) struct Query<'a> {
    pub sql: &'a str,
    pub params: &'a [D1Value],
}

/// What one query produced.
#[derive(Debug, Clone)]
pub(crate) struct QueryOutput {
    pub columns: ColumnNames,
    /// The rows' values, one row after another, `width` values each: one
    /// allocation for a query's rows rather than one per row.
    pub values: Vec<D1Value>,
    pub width: usize,
    pub meta: D1Meta,
}

impl QueryOutput {
    /// The rows, each its own list of values.
    pub fn rows(values: Vec<D1Value>, width: usize) -> impl Iterator<Item = Vec<D1Value>> {
        let count = values.len().checked_div(width).unwrap_or(0);
        let mut values = values.into_iter();
        (0..count).map(move |_| values.by_ref().take(width).collect())
    }
}

/// What one call (one transaction) produced.
pub(crate) struct UnitOutput {
    pub results: Vec<QueryOutput>,
    pub bookmark: Arc<str>,
}

#[derive(Debug)]
pub(crate) struct Backend {
    inner: Mutex<Inner>,
    own: OwnSql,
    guard: Arc<Guard>,
    limits: D1Limits,
    path: PathBuf,
    page_size: u64,
    database_id: String,
    /// Write calls started; with the pager's data version, it dates column
    /// names (see [`Epoch`]). Changed only under the `inner` lock.
    write_calls: AtomicU64,
    /// Cluster mode: where each call's commits go before it is answered.
    replica: Option<Replica>,
}

struct Snapshot {
    total_changes: u64,
    last_row_id: i64,
    size: u64,
}

/// The pager's data version: it changes with every commit this connection
/// makes and whenever a read finds that another connection has committed.
/// Reading it takes no lock and runs no statement, unlike
/// `PRAGMA data_version`, which would cost a read transaction per call.
fn data_version(conn: &Connection) -> Option<u32> {
    let mut version: u32 = 0;
    // SAFETY: the handle is open for the connection's lifetime, a null
    // name selects the main database, and SQLITE_FCNTL_DATA_VERSION writes
    // one unsigned int to the pointer.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            std::ptr::null(),
            ffi::SQLITE_FCNTL_DATA_VERSION,
            (&raw mut version).cast(),
        )
    };
    (rc == ffi::SQLITE_OK).then_some(version)
}

/// Skips whitespace and comments at the start of `sql`.
fn skip_trivia(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            return trimmed;
        }
    }
}

/// Whether a statement is a PRAGMA. SQLite applies a flag pragma
/// (`foreign_keys`, `defer_foreign_keys`) when it prepares the statement,
/// not when it steps it, and ignores `foreign_keys` inside a transaction.
/// So a pragma is prepared afresh each time, only inside the call's write
/// transaction, as every statement was before reads had their own path.
pub(crate) fn is_pragma(sql: &str) -> bool {
    skip_trivia(sql)
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("pragma"))
}

impl Backend {
    pub(crate) fn open(
        path: &Path,
        limits: D1Limits,
        replica: Option<Replica>,
    ) -> Result<Self, D1Error> {
        let open_err = |message: String| D1Error::Open {
            path: path.to_path_buf(),
            message,
        };
        let mut conn = hearth_core::sqlite::open(path).map_err(|e| open_err(e.to_string()))?;
        if let Some(r) = &replica {
            r.attach(&mut conn).map_err(|e| open_err(e.to_string()))?;
        }
        let guard = Arc::new(Guard {
            trusted: AtomicBool::new(false),
            denial: AtomicU8::new(Guard::NO_DENIAL),
            base: Instant::now(),
            deadline_ns: AtomicU64::new(0),
            timed_out: AtomicBool::new(false),
        });
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        let setup = (|| -> rusqlite::Result<(u64, String)> {
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
            let clamp = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
            // SQLite counts a row's record header against the same limit, so a
            // little room is added for it: a value of exactly the limit fits.
            let header_room = (limits.max_value_bytes / 1000).min(1024);
            conn.set_limit(
                Limit::SQLITE_LIMIT_LENGTH,
                clamp(limits.max_value_bytes.saturating_add(header_room)),
            )?;
            conn.set_limit(
                Limit::SQLITE_LIMIT_SQL_LENGTH,
                clamp(limits.max_sql_statement_bytes),
            )?;
            conn.set_limit(
                Limit::SQLITE_LIMIT_COLUMN,
                clamp(limits.max_columns_per_table),
            )?;
            conn.set_limit(
                Limit::SQLITE_LIMIT_VARIABLE_NUMBER,
                clamp(limits.max_bound_parameters),
            )?;
            conn.set_limit(
                Limit::SQLITE_LIMIT_FUNCTION_ARG,
                clamp(limits.max_function_args),
            )?;
            conn.set_limit(
                Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
                clamp(limits.max_like_pattern_bytes),
            )?;
            conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;

            let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let page_size = u64::try_from(page_size).unwrap_or(4096).max(512);
            let max_pages = (limits.max_database_bytes / page_size).max(1);
            let max_pages = i64::try_from(max_pages).unwrap_or(i64::MAX);
            conn.query_row(&format!("PRAGMA max_page_count = {max_pages}"), [], |_| {
                Ok(())
            })?;

            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
                 INSERT OR IGNORE INTO {META_TABLE} (key, value) VALUES ('{SEQ_KEY}', 0);
                 INSERT OR IGNORE INTO {META_TABLE} (key, value) VALUES ('{ID_KEY}', '{}');
                 COMMIT;",
                uuid::Uuid::new_v4().simple()
            ))?;
            let id: String = conn.query_row(
                &format!("SELECT value FROM {META_TABLE} WHERE key = ?1"),
                [ID_KEY],
                |r| r.get(0),
            )?;
            Ok((page_size, id))
        })();
        let (page_size, database_id) = setup.map_err(|e| open_err(e.to_string()))?;

        let g = guard.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if g.trusted.load(Ordering::SeqCst) {
                return rusqlite::hooks::Authorization::Allow;
            }
            let verdict = validate::authorize(&ctx);
            if let Err(d) = verdict {
                g.record_denial(d);
            }
            validate::to_authorization(verdict)
        }))
        .map_err(|e| open_err(e.to_string()))?;
        let g = guard.clone();
        conn.progress_handler(PROGRESS_STEPS, Some(move || g.past_deadline()))
            .map_err(|e| open_err(e.to_string()))?;

        let backend = Self {
            inner: Mutex::new(Inner {
                conn,
                committed: Committed {
                    data_version: None,
                    seq: 0,
                    size: 0,
                },
                bookmark: None,
                analyses: Analyses::new(),
                plans: Vec::new(),
            }),
            own: OwnSql::new(),
            guard,
            limits,
            path: path.to_path_buf(),
            page_size,
            database_id,
            write_calls: AtomicU64::new(0),
            replica,
        };
        if let Some(r) = &backend.replica {
            let inner = backend.lock();
            r.settle(&backend.path, || backend.checkpoint(&inner.conn))?;
        }
        Ok(backend)
    }

    /// Cluster mode: checkpoints the WAL whole; the count of frames it
    /// could not move (0 when done).
    fn checkpoint(&self, conn: &Connection) -> Result<i64, D1Error> {
        self.trusted(|| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)))
            .map_err(|e| self.map_err(e))
    }

    /// Cluster mode: whether this copy must be rebuilt from the log.
    pub(crate) fn is_broken(&self) -> bool {
        self.replica.as_ref().is_some_and(Replica::is_broken)
    }

    /// Cluster mode: the lease token this copy was rebuilt under.
    pub(crate) fn lease_token(&self) -> Option<i64> {
        self.replica.as_ref().map(Replica::token)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn limits(&self) -> &D1Limits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave SQLite half-written:
        // the open transaction is rolled back below before any reuse.
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs Hearth's own SQL past the statement policy.
    fn trusted<T>(&self, f: impl FnOnce() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        self.guard.trusted.store(true, Ordering::SeqCst);
        let r = f();
        self.guard.trusted.store(false, Ordering::SeqCst);
        r
    }

    /// The bookmark for the current commit position.
    pub(crate) fn current_bookmark(&self) -> Result<String, D1Error> {
        let inner = self.lock();
        let seq = self.read_seq(&inner.conn).map_err(|e| self.map_err(e))?;
        Ok(self.bookmark(seq))
    }

    fn bookmark(&self, seq: u64) -> String {
        format!(
            "{:08x}-{:08x}-{:08x}-{}",
            seq >> 32,
            seq & 0xffff_ffff,
            0,
            self.database_id
        )
    }

    /// Runs one of Hearth's own statements that returns a single integer.
    fn own_i64(&self, conn: &Connection, sql: &str) -> rusqlite::Result<i64> {
        self.trusted(|| conn.prepare_cached(sql)?.query_row([], |r| r.get(0)))
    }

    /// Runs one of Hearth's own statements that returns nothing.
    fn own_exec(&self, conn: &Connection, sql: &str) -> rusqlite::Result<()> {
        self.trusted(|| conn.prepare_cached(sql)?.execute([]).map(drop))
    }

    fn read_seq(&self, conn: &Connection) -> rusqlite::Result<u64> {
        Ok(u64::try_from(self.own_i64(conn, &self.own.read_seq)?).unwrap_or(0))
    }

    fn read_size(&self, conn: &Connection) -> rusqlite::Result<u64> {
        let pages = self.own_i64(conn, &self.own.page_count)?;
        Ok(u64::try_from(pages).unwrap_or(0) * self.page_size)
    }

    /// Re-reads the commit sequence and size if another connection has
    /// committed since they were last read (or they never were). Only a
    /// statement that read the database notices such a commit, so after
    /// one that touched no table (`SELECT 1`) the figures are those of the
    /// last call that did.
    fn refresh(&self, conn: &Connection, committed: &mut Committed) -> rusqlite::Result<()> {
        let version = data_version(conn);
        if version.is_none() || committed.data_version != version {
            committed.data_version = version;
            committed.seq = self.read_seq(conn)?;
            committed.size = self.read_size(conn)?;
        }
        Ok(())
    }

    /// Decides how a call runs. A statement that fails to prepare here
    /// takes the write path, which reports the failure properly. A lone
    /// read-only statement comes back prepared, so it is not looked up in
    /// the statement cache a second time.
    fn mode<'c>(
        &self,
        conn: &'c Connection,
        plans: &[Arc<Analysis>],
        started: Instant,
    ) -> Mode<'c> {
        let mut statements = 0usize;
        let mut last = None;
        for plan in plans {
            for piece in plan.pieces.iter() {
                if piece.pragma {
                    return Mode::Write;
                }
                // Returned to the cache first: a batch repeating one text
                // then reuses a single prepared statement.
                drop(last.take());
                self.guard.take_denial();
                match conn.prepare_cached(plan.text(piece)) {
                    Ok(stmt) if stmt.readonly() => last = Some(stmt),
                    _ => return Mode::Write,
                }
                statements += 1;
            }
        }
        self.guard.take_denial();
        match last {
            Some(stmt) if statements == 1 => Mode::Autocommit(stmt, started),
            _ => Mode::Read,
        }
    }

    /// Each query's analysis. Fails, at the query's index, on the shapes
    /// the `LIMIT` rewrite cannot serve (see [`crate::limit`]), in statement
    /// order; whether a table is `WITHOUT ROWID` is asked at every call.
    fn analyse(
        &self,
        conn: &Connection,
        analyses: &mut Analyses,
        queries: &[Query<'_>],
        out: &mut Vec<Arc<Analysis>>,
    ) -> Result<(), (usize, D1Error)> {
        for (i, q) in queries.iter().enumerate() {
            let plan = analyses.get(q.sql);
            for table in plan.pieces.iter().filter_map(|p| p.limit_table.as_deref()) {
                let without_rowid = self
                    .trusted(|| {
                        conn.prepare_cached(
                            "SELECT count(*) FROM pragma_table_list \
                             WHERE schema = 'main' AND name = ?1 AND wr = 1",
                        )?
                        .query_row([table], |row| row.get::<_, i64>(0))
                    })
                    .map_err(|e| (i, self.map_err(e)))?;
                if without_rowid > 0 {
                    return Err((
                        i,
                        D1Error::LimitWithoutRowid {
                            table: table.to_owned(),
                        },
                    ));
                }
            }
            if plan.update_from_limit {
                return Err((i, D1Error::UpdateFromLimit));
            }
            out.push(plan);
        }
        Ok(())
    }

    /// Runs `queries` in order as one transaction: all commit or none do.
    /// On failure, returns the index of the failing query with its error.
    pub(crate) fn run(&self, queries: &[Query<'_>]) -> Result<UnitOutput, (usize, D1Error)> {
        self.run_delivering(queries, Ok)
            .map(|(results, bookmark)| UnitOutput { results, bookmark })
    }

    /// Like [`Backend::run`], but hands the results to `deliver` while the
    /// transaction is still open, and commits only if it succeeds: a caller
    /// whose delivery can fail (building a large JavaScript value) then
    /// never reports a failure for a call that committed. A failed delivery
    /// rolls back and is reported at the last query's index.
    pub(crate) fn run_delivering<T>(
        &self,
        queries: &[Query<'_>],
        deliver: impl FnOnce(Vec<QueryOutput>) -> Result<T, D1Error>,
    ) -> Result<(T, Arc<str>), (usize, D1Error)> {
        if let Some(r) = &self.replica {
            r.check().map_err(|e| (0, e))?;
        }
        let mut inner = self.lock();
        let Inner {
            conn,
            committed,
            bookmark,
            analyses,
            plans: kept,
        } = &mut *inner;
        let mut plans = std::mem::take(kept);
        self.analyse(conn, analyses, queries, &mut plans)?;
        // One clock read serves the time limit and a lone read's duration.
        let started = Instant::now();
        self.guard.arm(started, self.limits.max_query_duration);
        let result = match self.mode(conn, &plans, started) {
            Mode::Write => {
                // Before any statement runs: names read from here on are
                // dated after whatever schema change this call makes.
                self.write_calls.fetch_add(1, Ordering::SeqCst);
                self.run_write(conn, committed, queries, &plans, deliver)
            }
            mode => self.run_read(conn, committed, queries, &plans, mode, deliver),
        };
        self.guard.disarm();
        let result = result.map(|(delivered, seq)| {
            let text = match bookmark {
                Some((cached, text)) if *cached == seq => text.clone(),
                _ => {
                    let text: Arc<str> = Arc::from(self.bookmark(seq));
                    *bookmark = Some((seq, text.clone()));
                    text
                }
            };
            (delivered, text)
        });
        if result.is_err() {
            if !conn.is_autocommit() {
                // Nothing of a failed call may stay applied.
                let _ = self.own_exec(conn, &self.own.rollback);
            }
            // Whatever was read mid-call may describe rolled-back state.
            committed.data_version = None;
        }
        plans.clear();
        plans.shrink_to(PLANS_KEPT);
        *kept = plans;
        match (result, &self.replica) {
            // Answered only once what it committed is in the log.
            (Ok(done), Some(r)) => r
                .ship(&self.path, || self.checkpoint(conn))
                .map(|()| done)
                .map_err(|e| (queries.len().saturating_sub(1), e)),
            (result, _) => result,
        }
    }

    fn run_read<T>(
        &self,
        conn: &Connection,
        committed: &mut Committed,
        queries: &[Query<'_>],
        plans: &[Arc<Analysis>],
        mode: Mode<'_>,
        deliver: impl FnOnce(Vec<QueryOutput>) -> Result<T, D1Error>,
    ) -> Result<(T, u64), (usize, D1Error)> {
        let last = queries.len().saturating_sub(1);
        let (in_transaction, mut prepared) = match mode {
            Mode::Autocommit(stmt, at) => (false, Some((stmt, at))),
            _ => (true, None),
        };
        if in_transaction {
            self.own_exec(conn, &self.own.begin_deferred)
                .map_err(|e| (0, self.map_err(e)))?;
        }
        let mut results = Vec::with_capacity(queries.len());
        let mut wrote = false;
        for (i, q) in queries.iter().enumerate() {
            let (out, w) = self
                .run_query(conn, q, &plans[i], prepared.take(), committed.size, false)
                .map_err(|e| (i, e))?;
            wrote |= w;
            results.push(out);
        }
        self.guard.disarm();
        let delivered = deliver(results).map_err(|e| (last, e))?;
        if in_transaction {
            self.own_exec(conn, &self.own.commit)
                .map_err(|e| (last, self.map_err(e)))?;
        }
        if wrote {
            // Statements were all read-only when the call was planned; if
            // one wrote after all, nothing cached can be trusted.
            committed.data_version = None;
        }
        // Checked after the reads, so the bookmark is never older than
        // the data they returned.
        self.refresh(conn, committed)
            .map_err(|e| (last, self.map_err(e)))?;
        Ok((delivered, committed.seq))
    }

    fn run_write<T>(
        &self,
        conn: &Connection,
        committed: &mut Committed,
        queries: &[Query<'_>],
        plans: &[Arc<Analysis>],
        deliver: impl FnOnce(Vec<QueryOutput>) -> Result<T, D1Error>,
    ) -> Result<(T, u64), (usize, D1Error)> {
        let last = queries.len().saturating_sub(1);
        self.own_exec(conn, &self.own.begin_immediate)
            .map_err(|e| (0, self.map_err(e)))?;
        // Under the write lock this is exact: nobody else can commit.
        let mut size = self.read_size(conn).map_err(|e| (0, self.map_err(e)))?;
        let mut results = Vec::with_capacity(queries.len());
        let mut wrote = false;
        for (i, q) in queries.iter().enumerate() {
            let (out, w) = self
                .run_query(conn, q, &plans[i], None, size, true)
                .map_err(|e| (i, e))?;
            size = out.meta.size_after;
            wrote |= w;
            results.push(out);
        }
        // The time limit covers the queries, not the commit's fsync.
        self.guard.disarm();
        if wrote {
            self.own_exec(conn, &self.own.bump_seq)
                .map_err(|e| (last, self.map_err(e)))?;
        }
        let seq = self.read_seq(conn).map_err(|e| (last, self.map_err(e)))?;
        // Before the commit: a delivery that fails must leave nothing applied.
        let delivered = deliver(results).map_err(|e| (last, e))?;
        self.own_exec(conn, &self.own.commit)
            .map_err(|e| (last, self.map_err(e)))?;
        *committed = Committed {
            // Read after the commit, which moves it too.
            data_version: data_version(conn),
            seq,
            size,
        };
        Ok((delivered, seq))
    }

    /// The counters a query's `meta` is computed from. The size is read
    /// only when asked: it cannot change without a write.
    fn snapshot(&self, conn: &Connection, size: Option<u64>) -> Result<Snapshot, D1Error> {
        let size = match size {
            Some(s) => s,
            None => self.read_size(conn).map_err(|e| self.map_err(e))?,
        };
        Ok(Snapshot {
            total_changes: conn.total_changes(),
            last_row_id: conn.last_insert_rowid(),
            size,
        })
    }

    /// Runs one query. Returns its output and whether it may have written.
    /// `prepared` is its first statement when [`Backend::mode`] already
    /// prepared it, with when that began: the duration counts its
    /// preparation, as it does for a statement prepared here. `size` is the
    /// database size before the query;
    /// `measure_size` (set in write calls) asks for the size to be re-read
    /// after a query that wrote.
    fn run_query(
        &self,
        conn: &Connection,
        q: &Query<'_>,
        plan: &Analysis,
        mut prepared: Option<(CachedStatement<'_>, Instant)>,
        size: u64,
        measure_size: bool,
    ) -> Result<(QueryOutput, bool), D1Error> {
        validate::check_query(&self.limits, q.sql, q.params)?;
        if plan.pieces.is_empty() {
            return Err(D1Error::NoStatements);
        }
        let before = self.snapshot(conn, Some(size))?;
        let start = prepared.as_ref().map_or_else(Instant::now, |(_, at)| *at);
        let mut wrote = false;
        let mut fullscan_steps: u64 = 0;
        let mut columns = None;
        let mut values = Vec::new();
        let mut width = 0;
        let mut row_count: u64 = 0;
        let n = plan.pieces.len();
        for (k, piece) in plan.pieces.iter().enumerate() {
            let is_last = k + 1 == n;
            let (mut fresh, mut cached);
            let stmt: &mut Statement<'_> = if let Some((stmt, _)) = prepared.take() {
                cached = stmt;
                &mut cached
            } else if piece.pragma {
                self.guard.take_denial();
                fresh = conn
                    .prepare(plan.text(piece))
                    .map_err(|e| self.map_err(e))?;
                &mut fresh
            } else {
                self.guard.take_denial();
                cached = conn
                    .prepare_cached(plan.text(piece))
                    .map_err(|e| self.map_err(e))?;
                &mut cached
            };
            let expected = stmt.parameter_count();
            if !is_last && expected > 0 {
                return Err(D1Error::ParametersBeforeLastStatement);
            }
            if is_last {
                if expected != q.params.len() {
                    return Err(D1Error::WrongParameterCount {
                        expected,
                        got: q.params.len(),
                    });
                }
                for (i, v) in q.params.iter().enumerate() {
                    stmt.raw_bind_parameter(i + 1, v)
                        .map_err(|e| self.map_err(e))?;
                }
            }
            wrote |= !stmt.readonly();
            {
                let mut rs = stmt.raw_query();
                while let Some(row) = rs.next().map_err(|e| self.map_err(e))? {
                    if is_last {
                        // Counted per row: a cached statement is re-prepared
                        // by its first step if the schema changed, and
                        // `SELECT *` may then have more columns. Stepping
                        // never re-prepares past the first row.
                        let count = row.as_ref().column_count();
                        if row_count == 0 {
                            width = count;
                        } else if count != width {
                            return Err(D1Error::Sqlite {
                                message: format!(
                                    "a row had {count} columns where the first had {width}"
                                ),
                            });
                        }
                        for c in 0..count {
                            let v = row.get_ref(c).map_err(|e| self.map_err(e))?;
                            values.push(D1Value::from(v));
                        }
                        row_count += 1;
                    }
                }
            }
            if is_last {
                // Read after stepping, for the same reason as the width.
                // Inside a write call, or after a statement that wrote, the
                // schema may have changed within the call: no epoch.
                let epoch: Option<Epoch> = if measure_size || wrote {
                    None
                } else {
                    data_version(conn).map(|v| (self.write_calls.load(Ordering::SeqCst), v))
                };
                columns = Some(plan.columns(stmt, epoch));
            }
            // Reset as read: a cached statement's counters would otherwise
            // add up across calls.
            fullscan_steps +=
                u64::try_from(stmt.reset_status(StatementStatus::FullscanStep)).unwrap_or(0);
        }
        let duration = start.elapsed().as_secs_f64() * 1000.0;
        let after = self.snapshot(conn, (!(measure_size && wrote)).then_some(size))?;
        let changes = after.total_changes.saturating_sub(before.total_changes);
        let rows_read = fullscan_steps.max(row_count).max(changes);
        let meta = D1Meta {
            served_by: Cow::Borrowed(SERVED_BY),
            served_by_region: None,
            served_by_primary: true,
            timings: D1Timings {
                sql_duration_ms: duration,
            },
            duration,
            changes,
            last_row_id: after.last_row_id,
            changed_db: changes != 0
                || after.last_row_id != before.last_row_id
                || after.size != before.size,
            size_after: after.size,
            rows_read,
            rows_written: changes,
        };
        Ok((
            QueryOutput {
                columns: columns.unwrap_or_else(|| ColumnNames {
                    names: Arc::from(Vec::new()),
                    distinct: true,
                }),
                values,
                width,
                meta,
            },
            wrote,
        ))
    }

    /// Turns a SQLite failure into D1's error shape.
    fn map_err(&self, e: rusqlite::Error) -> D1Error {
        let (code, extended, msg, offset) = match e {
            rusqlite::Error::SqliteFailure(err, msg) => (err.code, err.extended_code, msg, None),
            rusqlite::Error::SqlInputError {
                error, msg, offset, ..
            } => (error.code, error.extended_code, Some(msg), Some(offset)),
            rusqlite::Error::MultipleStatement => {
                return D1Error::Sqlite {
                    message: "A prepared SQL statement must contain only one statement.".to_owned(),
                };
            }
            other => {
                return D1Error::Sqlite {
                    message: other.to_string(),
                };
            }
        };
        match code {
            rusqlite::ErrorCode::OperationInterrupted
                if self.guard.timed_out.load(Ordering::SeqCst) =>
            {
                return D1Error::TimeLimit {
                    limit_ms: self.limits.max_query_duration.as_millis(),
                };
            }
            rusqlite::ErrorCode::DiskFull => {
                return D1Error::DatabaseFull {
                    limit: self.limits.max_database_bytes,
                };
            }
            rusqlite::ErrorCode::AuthorizationForStatementDenied
                if self.guard.take_denial() == Some(Denial::Transaction) =>
            {
                return D1Error::TransactionStatement;
            }
            _ => {}
        }
        let text = msg.unwrap_or_else(|| hearth_core::sqlite::error_string(extended));
        let message = format_message(&text, offset, extended);
        if code == rusqlite::ErrorCode::TooBig {
            return D1Error::TooBig {
                message,
                limit: self.limits.max_value_bytes,
            };
        }
        if text.starts_with("LIKE or GLOB pattern too complex") {
            return D1Error::PatternTooLong {
                message,
                limit: self.limits.max_like_pattern_bytes,
            };
        }
        if text.starts_with("too many arguments on function") {
            return D1Error::TooManyFunctionArgs {
                message,
                limit: self.limits.max_function_args,
            };
        }
        if text.starts_with("too many columns") {
            return D1Error::TooManyColumns {
                message,
                limit: self.limits.max_columns_per_table,
            };
        }
        D1Error::Sqlite { message }
    }
}

/// `<message>[ at offset N]: SQLITE_<CODE>[ (extended: SQLITE_<EXTENDED>)]`,
/// the shape D1 reports SQLite failures in.
fn format_message(text: &str, offset: Option<i32>, extended: i32) -> String {
    let primary = extended & 0xff;
    let mut out = text.to_owned();
    if let Some(o) = offset.filter(|o| *o >= 0) {
        out.push_str(&format!(" at offset {o}"));
    }
    out.push_str(": ");
    out.push_str(hearth_core::sqlite::code_name(primary));
    if extended != primary
        && let Some(name) = hearth_core::sqlite::extended_code_name(extended)
    {
        out.push_str(&format!(" (extended: {name})"));
    }
    out
}

impl ToSql for D1Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            D1Value::Null => ValueRef::Null,
            D1Value::Integer(i) => ValueRef::Integer(*i),
            D1Value::Real(f) => ValueRef::Real(*f),
            D1Value::Text(s) => ValueRef::Text(s.as_bytes()),
            D1Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl From<ValueRef<'_>> for D1Value {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => D1Value::Null,
            ValueRef::Integer(i) => D1Value::Integer(i),
            ValueRef::Real(f) => D1Value::Real(f),
            // Checked strictly first: the lossy path is slower on valid text.
            ValueRef::Text(t) => D1Value::Text(match std::str::from_utf8(t) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(t).into_owned(),
            }),
            ValueRef::Blob(b) => D1Value::Blob(b.to_vec()),
        }
    }
}
