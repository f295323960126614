//! The embedded backend: one SQLite file per database, one connection
//! behind a mutex. Every call (a query, a batch, an exec, a migration) is
//! one SQLite transaction, committed under `synchronous=FULL` before the
//! call returns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::ffi;
use rusqlite::hooks::AuthContext;
use rusqlite::limits::Limit;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, StatementStatus, ToSql};

use crate::error::D1Error;
use crate::split::split_statements;
use crate::validate::{self, D1Limits, Denial};
use crate::{D1Meta, D1Timings, D1Value, SERVED_BY};

/// Platform state lives in a `_cf_` table, which SQL from the binding can
/// neither read nor write (D1 keeps its own `_cf_KV` the same way).
const META_TABLE: &str = "_cf_KV";
const SEQ_KEY: &str = "hearth.d1.commit_seq";
const ID_KEY: &str = "hearth.d1.database_id";

/// How many SQLite VM steps run between two deadline checks.
const PROGRESS_STEPS: i32 = 1000;

/// State shared with the SQLite callbacks.
#[derive(Debug)]
struct Guard {
    /// Set while Hearth runs its own statements, which bypass the policy.
    trusted: AtomicBool,
    /// Why the policy last refused a statement.
    denial: Mutex<Option<Denial>>,
    base: Instant,
    /// Nanoseconds after `base` at which to interrupt; 0 means none.
    deadline_ns: AtomicU64,
    timed_out: AtomicBool,
}

impl Guard {
    fn arm(&self, limit: Duration) {
        let at = self.base.elapsed().saturating_add(limit).as_nanos();
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

    fn record_denial(&self, d: Denial) {
        if let Ok(mut slot) = self.denial.lock() {
            // A refused transaction statement explains more than anything else.
            if *slot != Some(Denial::Transaction) {
                *slot = Some(d);
            }
        }
    }

    fn take_denial(&self) -> Option<Denial> {
        self.denial.lock().ok().and_then(|mut s| s.take())
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
    pub columns: Vec<String>,
    pub rows: Vec<Vec<D1Value>>,
    pub meta: D1Meta,
}

/// What one call (one transaction) produced.
pub(crate) struct UnitOutput {
    pub results: Vec<QueryOutput>,
    pub bookmark: String,
}

#[derive(Debug)]
pub(crate) struct Backend {
    conn: Mutex<Connection>,
    guard: Arc<Guard>,
    limits: D1Limits,
    path: PathBuf,
    page_size: u64,
    database_id: String,
}

struct Snapshot {
    total_changes: u64,
    last_row_id: i64,
    size: u64,
}

impl Backend {
    pub(crate) fn open(path: &Path, limits: D1Limits) -> Result<Self, D1Error> {
        let open_err = |message: String| D1Error::Open {
            path: path.to_path_buf(),
            message,
        };
        let mut conn = hearth_core::sqlite::open(path).map_err(|e| open_err(e.to_string()))?;
        let guard = Arc::new(Guard {
            trusted: AtomicBool::new(false),
            denial: Mutex::new(None),
            base: Instant::now(),
            deadline_ns: AtomicU64::new(0),
            timed_out: AtomicBool::new(false),
        });
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

        Ok(Self {
            conn: Mutex::new(conn),
            guard,
            limits,
            path: path.to_path_buf(),
            page_size,
            database_id,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn limits(&self) -> &D1Limits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written:
        // the open transaction is rolled back below before any reuse.
        match self.conn.lock() {
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
        let conn = self.lock();
        let seq = self.read_seq(&conn).map_err(|e| self.map_err(e))?;
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

    fn read_seq(&self, conn: &Connection) -> rusqlite::Result<u64> {
        let seq: i64 = self.trusted(|| {
            conn.query_row(
                &format!("SELECT value FROM {META_TABLE} WHERE key = ?1"),
                [SEQ_KEY],
                |r| r.get(0),
            )
        })?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    /// Runs `queries` in order as one transaction: all commit or none do.
    /// On failure, returns the index of the failing query with its error.
    pub(crate) fn run(&self, queries: &[Query<'_>]) -> Result<UnitOutput, (usize, D1Error)> {
        let conn = self.lock();
        self.guard.arm(self.limits.max_query_duration);
        let result = self.run_locked(&conn, queries);
        self.guard.disarm();
        if result.is_err() && !conn.is_autocommit() {
            // Nothing of a failed call may stay applied.
            let _ = self.trusted(|| conn.execute_batch("ROLLBACK"));
        }
        result
    }

    fn run_locked(
        &self,
        conn: &Connection,
        queries: &[Query<'_>],
    ) -> Result<UnitOutput, (usize, D1Error)> {
        let last = queries.len().saturating_sub(1);
        self.trusted(|| conn.execute_batch("BEGIN IMMEDIATE"))
            .map_err(|e| (0, self.map_err(e)))?;
        let mut results = Vec::with_capacity(queries.len());
        let mut wrote = false;
        for (i, q) in queries.iter().enumerate() {
            let (out, w) = self.run_query(conn, q).map_err(|e| (i, e))?;
            wrote |= w;
            results.push(out);
        }
        // The time limit covers the queries, not the commit's fsync.
        self.guard.disarm();
        if wrote {
            self.trusted(|| {
                conn.execute(
                    &format!("UPDATE {META_TABLE} SET value = value + 1 WHERE key = ?1"),
                    [SEQ_KEY],
                )
            })
            .map_err(|e| (last, self.map_err(e)))?;
        }
        let seq = self.read_seq(conn).map_err(|e| (last, self.map_err(e)))?;
        self.trusted(|| conn.execute_batch("COMMIT"))
            .map_err(|e| (last, self.map_err(e)))?;
        Ok(UnitOutput {
            results,
            bookmark: self.bookmark(seq),
        })
    }

    fn snapshot(&self, conn: &Connection) -> Result<Snapshot, D1Error> {
        let pages: i64 = self
            .trusted(|| conn.query_row("PRAGMA page_count", [], |r| r.get(0)))
            .map_err(|e| self.map_err(e))?;
        Ok(Snapshot {
            total_changes: conn.total_changes(),
            last_row_id: conn.last_insert_rowid(),
            size: u64::try_from(pages).unwrap_or(0) * self.page_size,
        })
    }

    /// Runs one query. Returns its output and whether it may have written.
    fn run_query(&self, conn: &Connection, q: &Query<'_>) -> Result<(QueryOutput, bool), D1Error> {
        validate::check_query(&self.limits, q.sql, q.params)?;
        let pieces = split_statements(q.sql);
        if pieces.is_empty() {
            return Err(D1Error::NoStatements);
        }
        let before = self.snapshot(conn)?;
        let start = Instant::now();
        let mut wrote = false;
        let mut fullscan_steps: u64 = 0;
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        let n = pieces.len();
        for (k, piece) in pieces.iter().enumerate() {
            let is_last = k + 1 == n;
            self.guard.take_denial();
            let mut stmt = conn.prepare(piece).map_err(|e| self.map_err(e))?;
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
                columns = stmt.column_names().map(str::to_owned).collect();
            }
            wrote |= !stmt.readonly();
            let width = columns.len();
            {
                let mut rs = stmt.raw_query();
                while let Some(row) = rs.next().map_err(|e| self.map_err(e))? {
                    if is_last {
                        let mut values = Vec::with_capacity(width);
                        for c in 0..width {
                            let v = row.get_ref(c).map_err(|e| self.map_err(e))?;
                            values.push(D1Value::from(v));
                        }
                        rows.push(values);
                    }
                }
            }
            fullscan_steps +=
                u64::try_from(stmt.get_status(StatementStatus::FullscanStep)).unwrap_or(0);
        }
        let duration = start.elapsed().as_secs_f64() * 1000.0;
        let after = self.snapshot(conn)?;
        let changes = after.total_changes.saturating_sub(before.total_changes);
        let rows_read = fullscan_steps
            .max(u64::try_from(rows.len()).unwrap_or(u64::MAX))
            .max(changes);
        let meta = D1Meta {
            served_by: SERVED_BY.to_owned(),
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
                columns,
                rows,
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
        let text = msg.unwrap_or_else(|| error_string(extended));
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

fn error_string(code: i32) -> String {
    // SAFETY: sqlite3_errstr returns a pointer to a static, NUL-terminated
    // English string for any code.
    unsafe {
        let p = ffi::sqlite3_errstr(code);
        if p.is_null() {
            return "unknown error".to_owned();
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
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
    out.push_str(code_name(primary));
    if extended != primary
        && let Some(name) = extended_code_name(extended)
    {
        out.push_str(&format!(" (extended: {name})"));
    }
    out
}

fn code_name(code: i32) -> &'static str {
    match code {
        ffi::SQLITE_ERROR => "SQLITE_ERROR",
        ffi::SQLITE_INTERNAL => "SQLITE_INTERNAL",
        ffi::SQLITE_PERM => "SQLITE_PERM",
        ffi::SQLITE_ABORT => "SQLITE_ABORT",
        ffi::SQLITE_BUSY => "SQLITE_BUSY",
        ffi::SQLITE_LOCKED => "SQLITE_LOCKED",
        ffi::SQLITE_NOMEM => "SQLITE_NOMEM",
        ffi::SQLITE_READONLY => "SQLITE_READONLY",
        ffi::SQLITE_INTERRUPT => "SQLITE_INTERRUPT",
        ffi::SQLITE_IOERR => "SQLITE_IOERR",
        ffi::SQLITE_CORRUPT => "SQLITE_CORRUPT",
        ffi::SQLITE_NOTFOUND => "SQLITE_NOTFOUND",
        ffi::SQLITE_FULL => "SQLITE_FULL",
        ffi::SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
        ffi::SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
        ffi::SQLITE_SCHEMA => "SQLITE_SCHEMA",
        ffi::SQLITE_TOOBIG => "SQLITE_TOOBIG",
        ffi::SQLITE_CONSTRAINT => "SQLITE_CONSTRAINT",
        ffi::SQLITE_MISMATCH => "SQLITE_MISMATCH",
        ffi::SQLITE_MISUSE => "SQLITE_MISUSE",
        ffi::SQLITE_AUTH => "SQLITE_AUTH",
        ffi::SQLITE_RANGE => "SQLITE_RANGE",
        ffi::SQLITE_NOTADB => "SQLITE_NOTADB",
        _ => "SQLITE_ERROR",
    }
}

fn extended_code_name(code: i32) -> Option<&'static str> {
    Some(match code {
        ffi::SQLITE_CONSTRAINT_CHECK => "SQLITE_CONSTRAINT_CHECK",
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => "SQLITE_CONSTRAINT_FOREIGNKEY",
        ffi::SQLITE_CONSTRAINT_NOTNULL => "SQLITE_CONSTRAINT_NOTNULL",
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY => "SQLITE_CONSTRAINT_PRIMARYKEY",
        ffi::SQLITE_CONSTRAINT_TRIGGER => "SQLITE_CONSTRAINT_TRIGGER",
        ffi::SQLITE_CONSTRAINT_UNIQUE => "SQLITE_CONSTRAINT_UNIQUE",
        ffi::SQLITE_CONSTRAINT_ROWID => "SQLITE_CONSTRAINT_ROWID",
        ffi::SQLITE_CONSTRAINT_DATATYPE => "SQLITE_CONSTRAINT_DATATYPE",
        _ => return None,
    })
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
            ValueRef::Text(t) => D1Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => D1Value::Blob(b.to_vec()),
        }
    }
}
