//! D1: the `D1Database` contract over one SQLite file per database, plus
//! wrangler-style migrations ([`migrations`]).
//!
//! The API mirrors the Workers binding: [`D1Database::prepare`] gives a
//! [`D1PreparedStatement`]; [`D1PreparedStatement::bind`] attaches values to
//! its `?` / `?NNN` parameters; `first`, `all`, `raw` and `run` execute it.
//! [`D1Database::batch`] runs statements as one all-or-nothing transaction,
//! [`D1Database::exec`] runs raw SQL, and [`D1Database::with_session`]
//! starts a session that hands out bookmarks.
//!
//! Every call is one SQLite transaction committed under `synchronous=FULL`
//! before it returns, so a result that came back is durable. Errors read
//! like D1's (`D1_ERROR: no such table: t: SQLITE_ERROR`). Limits live in
//! [`D1Limits`]. This crate knows nothing of JavaScript or HTTP.

mod analysis;
mod error;
mod limit;
pub mod migrations;
mod replica;
mod split;
mod sqlite;
mod validate;

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

pub use error::{D1Error, MigrationError, TRANSACTION_STATEMENT_MESSAGE};
pub use replica::Replication;
pub use split::split_statements;
pub use validate::{
    D1Limits, FIRST_PRIMARY, FIRST_UNCONSTRAINED, MAX_BOUND_PARAMETERS, MAX_COLUMNS_PER_TABLE,
    MAX_DATABASE_BYTES, MAX_FUNCTION_ARGS, MAX_LIKE_PATTERN_BYTES, MAX_QUERY_DURATION,
    MAX_SQL_STATEMENT_BYTES, MAX_VALUE_BYTES, SessionConstraint, is_bookmark,
};

use analysis::ColumnNames;
use sqlite::{Backend, Query, QueryOutput};

/// What `meta.served_by` says.
pub const SERVED_BY: &str = "hearth.d1";

/// A SQLite value as D1 stores and returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum D1Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl D1Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            D1Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            D1Value::Real(f) => Some(*f),
            D1Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            D1Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_blob(&self) -> Option<&[u8]> {
        match self {
            D1Value::Blob(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, D1Value::Null)
    }
}

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for D1Value {
            fn from(v: $t) -> Self {
                D1Value::Integer(i64::from(v))
            }
        }
    )*};
}
from_integer!(i8, i16, i32, i64, u8, u16, u32);

/// Booleans bind as 1 / 0, as the Workers binding does.
impl From<bool> for D1Value {
    fn from(v: bool) -> Self {
        D1Value::Integer(i64::from(v))
    }
}

impl From<f64> for D1Value {
    fn from(v: f64) -> Self {
        D1Value::Real(v)
    }
}

impl From<f32> for D1Value {
    fn from(v: f32) -> Self {
        D1Value::Real(f64::from(v))
    }
}

impl From<String> for D1Value {
    fn from(v: String) -> Self {
        D1Value::Text(v)
    }
}

impl From<&str> for D1Value {
    fn from(v: &str) -> Self {
        D1Value::Text(v.to_owned())
    }
}

impl From<Vec<u8>> for D1Value {
    fn from(v: Vec<u8>) -> Self {
        D1Value::Blob(v)
    }
}

impl From<&[u8]> for D1Value {
    fn from(v: &[u8]) -> Self {
        D1Value::Blob(v.to_vec())
    }
}

impl<T: Into<D1Value>> From<Option<T>> for D1Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(D1Value::Null, Into::into)
    }
}

/// Serialized as D1 returns values to a Worker: BLOBs as arrays of bytes.
impl Serialize for D1Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            D1Value::Null => s.serialize_unit(),
            D1Value::Integer(i) => s.serialize_i64(*i),
            D1Value::Real(f) => s.serialize_f64(*f),
            D1Value::Text(t) => s.serialize_str(t),
            D1Value::Blob(b) => b.serialize(s),
        }
    }
}

/// One result row: column names to values, in column order. Like the
/// object a Worker receives, a name appears once; when a query returns two
/// columns with the same name, the later value wins at the first position.
/// The rows of one query share one list of names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct D1Row {
    names: Arc<[String]>,
    values: Vec<D1Value>,
}

/// How one query's columns become row entries, worked out once per query.
struct RowShape {
    /// Each name once, in the order of first appearance.
    names: Arc<[String]>,
    /// The entry each column's value goes to, when some name repeats.
    slots: Option<Vec<usize>>,
}

impl RowShape {
    fn new(columns: ColumnNames) -> Self {
        let ColumnNames {
            names: columns,
            distinct,
        } = columns;
        if distinct {
            return Self {
                names: columns,
                slots: None,
            };
        }
        let mut names: Vec<String> = Vec::with_capacity(columns.len());
        let mut slots = Vec::with_capacity(columns.len());
        for c in columns.iter() {
            match names.iter().position(|n| n == c) {
                Some(i) => slots.push(i),
                None => {
                    slots.push(names.len());
                    names.push(c.clone());
                }
            }
        }
        Self {
            names: names.into(),
            slots: Some(slots),
        }
    }

    fn row(&self, values: Vec<D1Value>) -> D1Row {
        let values = match &self.slots {
            None => values,
            Some(slots) => {
                let mut entries = vec![D1Value::Null; self.names.len()];
                for (value, &slot) in values.into_iter().zip(slots) {
                    entries[slot] = value;
                }
                entries
            }
        };
        D1Row {
            names: self.names.clone(),
            values,
        }
    }
}

impl D1Row {
    pub fn get(&self, column: &str) -> Option<&D1Value> {
        self.iter().find(|(n, _)| *n == column).map(|(_, v)| v)
    }

    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl Iterator<Item = &D1Value> {
        self.iter().map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &D1Value)> {
        self.names.iter().map(String::as_str).zip(&self.values)
    }

    pub fn len(&self) -> usize {
        self.names.len().min(self.values.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_entries(self) -> Vec<(String, D1Value)> {
        self.names.iter().cloned().zip(self.values).collect()
    }
}

impl Serialize for D1Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct D1Timings {
    /// Time spent executing SQL, in milliseconds.
    pub sql_duration_ms: f64,
}

/// `meta` of a [`D1Result`], with D1's field names.
///
/// `rows_read` and `rows_written` approximate D1's billing counters with
/// what stock SQLite exposes: `rows_read` is the largest of the full-scan
/// steps (`SQLITE_STMTSTATUS_FULLSCAN_STEP`), the rows returned and the rows
/// changed; `rows_written` is the rows inserted, updated or deleted,
/// including by triggers (`sqlite3_total_changes`). Index entries, which
/// D1 also bills as written rows, are not counted, and rows reached through
/// an index count only when returned or changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct D1Meta {
    pub served_by: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_by_region: Option<String>,
    pub served_by_primary: bool,
    pub timings: D1Timings,
    /// Milliseconds.
    pub duration: f64,
    pub changes: u64,
    pub last_row_id: i64,
    pub changed_db: bool,
    /// Bytes in the database after the query.
    pub size_after: u64,
    pub rows_read: u64,
    pub rows_written: u64,
}

/// What `all()`, `run()` and each entry of `batch()` return.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct D1Result {
    pub success: bool,
    pub results: Vec<D1Row>,
    pub meta: D1Meta,
}

impl D1Result {
    fn from_output(out: QueryOutput) -> Self {
        let QueryOutput {
            columns,
            values,
            width,
            meta,
        } = out;
        let shape = RowShape::new(columns);
        let results = QueryOutput::rows(values, width)
            .map(|values| shape.row(values))
            .collect();
        Self {
            success: true,
            results,
            meta,
        }
    }
}

/// What `exec()` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct D1ExecResult {
    /// Queries executed.
    pub count: usize,
    /// Milliseconds, summed over the queries.
    pub duration: f64,
}

/// The newest bookmark a session has seen (or started from).
#[derive(Debug)]
struct SessionState {
    bookmark: Mutex<Option<Arc<str>>>,
}

impl SessionState {
    /// Keeps the newest bookmark; bookmarks sort as text.
    fn observe(&self, bookmark: Arc<str>) {
        if let Ok(mut current) = self.bookmark.lock()
            && current.as_ref().is_none_or(|c| *c < bookmark)
        {
            *current = Some(bookmark);
        }
    }

    fn get(&self) -> Option<String> {
        self.bookmark
            .lock()
            .ok()
            .and_then(|b| b.as_deref().map(str::to_owned))
    }
}

/// A D1 database. Cheap to clone; clones share one connection. `Send + Sync`.
#[derive(Debug, Clone)]
pub struct D1Database {
    backend: Arc<Backend>,
}

impl D1Database {
    /// Opens (creating if needed) the database file at `path` with
    /// Cloudflare's limits.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, D1Error> {
        Self::open_with_limits(path, D1Limits::default())
    }

    pub fn open_with_limits(path: impl AsRef<Path>, limits: D1Limits) -> Result<Self, D1Error> {
        Ok(Self {
            backend: Arc::new(Backend::open(path.as_ref(), limits, None)?),
        })
    }

    /// Cluster mode: opens the database under a lease, its file (beside
    /// `base`, named after the lease) rebuilt from the cluster's log first.
    /// Every call is answered only after its commit reached the log; once
    /// the log refused one ([`D1Error::Fenced`], [`D1Error::NotDurable`])
    /// the handle refuses every call ([`D1Error::Stale`], see
    /// [`D1Database::is_broken`]) and must be opened again.
    pub fn open_replicated(
        base: impl AsRef<Path>,
        limits: D1Limits,
        replication: Replication,
    ) -> Result<Self, D1Error> {
        let (replica, file) = replica::Replica::restore(base.as_ref(), replication)?;
        Ok(Self {
            backend: Arc::new(Backend::open(&file, limits, Some(replica))?),
        })
    }

    /// Cluster mode: this copy holds a write the log did not take.
    pub fn is_broken(&self) -> bool {
        self.backend.is_broken()
    }

    /// Cluster mode: the lease token the copy was opened under.
    pub fn lease_token(&self) -> Option<i64> {
        self.backend.lease_token()
    }

    /// Fails with [`D1Error::BookmarkAhead`] when `bookmark` names a commit
    /// this database does not hold yet. Bookmarks carry the database's
    /// commit number, kept in the database itself, so one handed out by
    /// any copy is compared here.
    pub fn check_bookmark(&self, bookmark: &str) -> Result<(), D1Error> {
        let Some(wanted) = bookmark_seq(bookmark) else {
            return Ok(());
        };
        let current = self.current_bookmark()?;
        if bookmark_seq(&current).is_some_and(|have| have >= wanted) {
            Ok(())
        } else {
            Err(D1Error::BookmarkAhead {
                bookmark: bookmark.to_owned(),
            })
        }
    }

    pub fn path(&self) -> &Path {
        self.backend.path()
    }

    pub fn limits(&self) -> &D1Limits {
        self.backend.limits()
    }

    pub fn prepare(&self, sql: impl AsRef<str>) -> D1PreparedStatement {
        D1PreparedStatement {
            backend: self.backend.clone(),
            session: None,
            sql: Arc::from(sql.as_ref()),
            params: Vec::new(),
        }
    }

    /// Runs the statements in order as one transaction. If one fails, none
    /// of them stays applied and the error is that statement's.
    pub fn batch(&self, statements: &[D1PreparedStatement]) -> Result<Vec<D1Result>, D1Error> {
        run_batch(&self.backend, None, statements, Ok)
    }

    /// Like [`D1Database::batch`], but hands the results to `deliver`
    /// before the transaction commits, and commits only if it succeeds; its
    /// error rolls the batch back and is returned as
    /// [`D1Error::NotDelivered`]. For a caller whose delivery can fail
    /// (building a large JavaScript value): the outcome it reports is then
    /// always the outcome committed.
    pub fn batch_delivering<T>(
        &self,
        statements: &[D1PreparedStatement],
        deliver: impl FnOnce(Vec<D1Result>) -> Result<T, String>,
    ) -> Result<T, D1Error> {
        run_batch(&self.backend, None, statements, deliver)
    }

    /// Runs raw SQL, one query per line (a statement spanning lines is kept
    /// whole), all in one transaction. No bindings.
    pub fn exec(&self, sql: &str) -> Result<D1ExecResult, D1Error> {
        let chunks = split::exec_queries(sql);
        if chunks.is_empty() {
            return Err(D1Error::NoStatements);
        }
        let queries: Vec<Query<'_>> = chunks
            .iter()
            .map(|c| Query {
                sql: c.sql,
                params: &[],
            })
            .collect();
        match self.backend.run(&queries) {
            Ok(out) => Ok(D1ExecResult {
                count: out.results.len(),
                duration: out.results.iter().map(|r| r.meta.duration).sum(),
            }),
            Err((i, e)) => {
                let chunk = chunks.get(i).or(chunks.last());
                Err(D1Error::Exec {
                    line: chunk.map_or(1, |c| c.line),
                    sql: chunk.map_or_else(String::new, |c| c.sql.to_owned()),
                    detail: e.detail(),
                })
            }
        }
    }

    /// Starts a session: `None`, `""` or `"first-unconstrained"`,
    /// `"first-primary"`, or a bookmark from an earlier session. With one
    /// node every query sees the latest commit, so the constraint only
    /// decides what `get_bookmark` reports before the first query.
    pub fn with_session(
        &self,
        constraint_or_bookmark: Option<&str>,
    ) -> Result<D1DatabaseSession, D1Error> {
        let constraint = SessionConstraint::parse(constraint_or_bookmark)?;
        let bookmark = match &constraint {
            SessionConstraint::Bookmark(b) => Some(Arc::from(b.as_str())),
            _ => None,
        };
        Ok(D1DatabaseSession {
            backend: self.backend.clone(),
            constraint,
            state: Arc::new(SessionState {
                bookmark: Mutex::new(bookmark),
            }),
        })
    }

    /// The bookmark of the latest commit.
    pub fn current_bookmark(&self) -> Result<String, D1Error> {
        self.backend.current_bookmark()
    }

    pub(crate) fn run_queries(
        &self,
        queries: &[Query<'_>],
    ) -> Result<Vec<D1Result>, (usize, D1Error)> {
        self.backend
            .run(queries)
            .map(|out| out.results.into_iter().map(D1Result::from_output).collect())
    }
}

/// The commit number a bookmark names (its first two groups), `None` for
/// anything that is not a bookmark.
pub fn bookmark_seq(bookmark: &str) -> Option<u64> {
    if !is_bookmark(bookmark) {
        return None;
    }
    let hi = u64::from_str_radix(bookmark.get(..8)?, 16).ok()?;
    let lo = u64::from_str_radix(bookmark.get(9..17)?, 16).ok()?;
    Some((hi << 32) | lo)
}

/// A session of a [`D1Database`]: sequentially consistent, and it reports
/// the bookmark of the newest state it has seen.
#[derive(Debug, Clone)]
pub struct D1DatabaseSession {
    backend: Arc<Backend>,
    constraint: SessionConstraint,
    state: Arc<SessionState>,
}

impl D1DatabaseSession {
    pub fn prepare(&self, sql: impl AsRef<str>) -> D1PreparedStatement {
        D1PreparedStatement {
            backend: self.backend.clone(),
            session: Some(self.state.clone()),
            sql: Arc::from(sql.as_ref()),
            params: Vec::new(),
        }
    }

    pub fn batch(&self, statements: &[D1PreparedStatement]) -> Result<Vec<D1Result>, D1Error> {
        run_batch(&self.backend, Some(&self.state), statements, Ok)
    }

    /// [`D1Database::batch_delivering`] in this session.
    pub fn batch_delivering<T>(
        &self,
        statements: &[D1PreparedStatement],
        deliver: impl FnOnce(Vec<D1Result>) -> Result<T, String>,
    ) -> Result<T, D1Error> {
        run_batch(&self.backend, Some(&self.state), statements, deliver)
    }

    /// The newest bookmark seen; `None` before the first query unless the
    /// session started from a bookmark.
    pub fn get_bookmark(&self) -> Option<String> {
        self.state.get()
    }

    pub fn constraint(&self) -> &SessionConstraint {
        &self.constraint
    }
}

fn run_batch<T>(
    backend: &Arc<Backend>,
    session: Option<&Arc<SessionState>>,
    statements: &[D1PreparedStatement],
    deliver: impl FnOnce(Vec<D1Result>) -> Result<T, String>,
) -> Result<T, D1Error> {
    if statements.is_empty() {
        return Err(D1Error::NoStatements);
    }
    if statements.iter().any(|s| !Arc::ptr_eq(&s.backend, backend)) {
        return Err(D1Error::ForeignStatement);
    }
    let queries: Vec<Query<'_>> = statements
        .iter()
        .map(|s| Query {
            sql: &s.sql,
            params: &s.params,
        })
        .collect();
    let (delivered, bookmark) = backend
        .run_delivering(&queries, |outputs| {
            let results = outputs.into_iter().map(D1Result::from_output).collect();
            deliver(results).map_err(|reason| D1Error::NotDelivered { reason })
        })
        .map_err(|(index, e)| match e {
            // Not any one statement's failure.
            e @ (D1Error::NotDelivered { .. }
            | D1Error::Fenced { .. }
            | D1Error::NotDurable { .. }
            | D1Error::Stale) => e,
            e => D1Error::Batch {
                index,
                error: Box::new(e),
            },
        })?;
    if let Some(state) = session {
        state.observe(bookmark);
    }
    Ok(delivered)
}

/// A statement and its bound values. `bind` returns a new statement, so a
/// prepared statement can be bound many times (as in `batch`).
#[derive(Debug, Clone)]
pub struct D1PreparedStatement {
    backend: Arc<Backend>,
    session: Option<Arc<SessionState>>,
    sql: Arc<str>,
    params: Vec<D1Value>,
}

impl D1PreparedStatement {
    /// Binds values to the parameters in order (`?` and `?NNN` both count
    /// by position). Counts and sizes are checked when the statement runs.
    pub fn bind<I, V>(&self, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<D1Value>,
    {
        Self {
            backend: self.backend.clone(),
            session: self.session.clone(),
            sql: self.sql.clone(),
            params: values.into_iter().map(Into::into).collect(),
        }
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    pub fn params(&self) -> &[D1Value] {
        &self.params
    }

    fn execute(&self) -> Result<QueryOutput, D1Error> {
        let query = Query {
            sql: &self.sql,
            params: &self.params,
        };
        let mut out = self
            .backend
            .run(std::slice::from_ref(&query))
            .map_err(|(_, e)| e)?;
        if let Some(state) = &self.session {
            state.observe(out.bookmark);
        }
        out.results.pop().ok_or(D1Error::NoStatements)
    }

    /// The first row, or `None` when the query returns no rows.
    pub fn first(&self) -> Result<Option<D1Row>, D1Error> {
        let mut out = self.execute()?;
        if out.values.is_empty() {
            return Ok(None);
        }
        out.values.truncate(out.width);
        Ok(Some(RowShape::new(out.columns).row(out.values)))
    }

    /// One column of the first row; `None` when there are no rows,
    /// `D1_COLUMN_NOTFOUND` when the rows lack that column.
    pub fn first_column(&self, column: &str) -> Result<Option<D1Value>, D1Error> {
        match self.first()? {
            None => Ok(None),
            Some(row) => match row.get(column) {
                Some(v) => Ok(Some(v.clone())),
                None => Err(D1Error::ColumnNotFound(column.to_owned())),
            },
        }
    }

    pub fn all(&self) -> Result<D1Result, D1Error> {
        self.execute().map(D1Result::from_output)
    }

    /// Same as [`Self::all`], as in D1.
    pub fn run(&self) -> Result<D1Result, D1Error> {
        self.all()
    }

    /// Rows as arrays of values; with `column_names`, the first array holds
    /// the column names (even when there are no rows).
    pub fn raw(&self, column_names: bool) -> Result<Vec<Vec<D1Value>>, D1Error> {
        let out = self.execute()?;
        let rows = out.values.len().checked_div(out.width).unwrap_or(0);
        let mut raw = Vec::with_capacity(rows + 1);
        if column_names {
            raw.push(
                out.columns
                    .names
                    .iter()
                    .cloned()
                    .map(D1Value::Text)
                    .collect(),
            );
        }
        raw.extend(QueryOutput::rows(out.values, out.width));
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<D1Database>();
        assert_send_sync::<D1DatabaseSession>();
        assert_send_sync::<D1PreparedStatement>();
    }

    #[test]
    fn duplicate_column_names_keep_the_last_value_at_the_first_position() {
        let names = ColumnNames::new_for_test(vec!["a".into(), "b".into(), "a".into()].into());
        let row = RowShape::new(names).row(vec![
            D1Value::Integer(1),
            D1Value::Integer(2),
            D1Value::Integer(3),
        ]);
        let got: Vec<_> = row.iter().collect();
        assert_eq!(
            got,
            vec![("a", &D1Value::Integer(3)), ("b", &D1Value::Integer(2))]
        );
    }
}
