//! Every failure of the D1 contract. Messages carry D1's prefixes
//! (`D1_ERROR`, `D1_EXEC_ERROR`, `D1_COLUMN_NOTFOUND`, `D1_SESSION_ERROR`)
//! and, for SQLite failures, D1's `<sqlite message>: SQLITE_<CODE>` shape,
//! because applications match on these strings. Where a Hearth limit was
//! the cause, the message also names the limit.

use std::path::PathBuf;

use hearth_core::{ContractError, ErrorClass};

/// The message D1 gives when SQL tries to manage a transaction itself.
pub const TRANSACTION_STATEMENT_MESSAGE: &str = "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum D1Error {
    /// SQLite refused or failed the statement; `message` is already in
    /// D1's `<message>[ at offset N]: SQLITE_<CODE>` form.
    #[error("D1_ERROR: {message}")]
    Sqlite { message: String },

    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE` from SQL.
    #[error("D1_ERROR: {TRANSACTION_STATEMENT_MESSAGE}")]
    TransactionStatement,

    /// The query is empty or only comments.
    #[error("D1_ERROR: No SQL statements detected.")]
    NoStatements,

    #[error("D1_ERROR: Wrong number of parameter bindings for SQL query.")]
    WrongParameterCount { expected: usize, got: usize },

    #[error(
        "D1_ERROR: When executing multiple SQL statements in a single call, only the last statement can have parameters."
    )]
    ParametersBeforeLastStatement,

    #[error(
        "D1_ERROR: too many SQL variables: SQLITE_ERROR ({got} bound parameters; the limit is {limit} per query)"
    )]
    TooManyParameters { got: usize, limit: usize },

    #[error(
        "D1_ERROR: statement too long: SQLITE_TOOBIG (the SQL statement is {len} bytes; the limit is {limit} bytes)"
    )]
    StatementTooLong { len: usize, limit: usize },

    /// A bound string or BLOB is over the size limit.
    #[error(
        "D1_ERROR: string or blob too big: SQLITE_TOOBIG (bound parameter {index} is {len} bytes; strings, BLOBs and rows are limited to {limit} bytes)"
    )]
    ValueTooLarge {
        index: usize,
        len: usize,
        limit: usize,
    },

    /// SQLite built a string, BLOB or row over the size limit.
    #[error("D1_ERROR: {message} (strings, BLOBs and rows are limited to {limit} bytes)")]
    TooBig { message: String, limit: usize },

    #[error("D1_ERROR: {message} (the limit is {limit} columns per table)")]
    TooManyColumns { message: String, limit: usize },

    #[error("D1_ERROR: {message} (LIKE and GLOB patterns are limited to {limit} bytes)")]
    PatternTooLong { message: String, limit: usize },

    #[error("D1_ERROR: {message} (SQL functions take at most {limit} arguments)")]
    TooManyFunctionArgs { message: String, limit: usize },

    #[error(
        "D1_ERROR: D1 DB exceeded its CPU time limit and was reset. (the query or batch ran longer than the {limit_ms} ms limit)"
    )]
    TimeLimit { limit_ms: u128 },

    #[error(
        "D1_ERROR: database or disk is full: SQLITE_FULL (the database may not grow past {limit} bytes)"
    )]
    DatabaseFull { limit: u64 },

    /// `first(column)` named a column the row does not have.
    #[error("D1_COLUMN_NOTFOUND: Column not found ({0})")]
    ColumnNotFound(String),

    /// A statement of a `batch()` failed; every earlier statement of the
    /// batch was rolled back. The message is the failing statement's own.
    #[error("{error}")]
    Batch {
        /// Position of the failing statement in the batch.
        index: usize,
        /// Not a `source`: the message is already this error's own, and a
        /// cause chain would print it twice.
        error: Box<D1Error>,
    },

    /// A query of `exec()` failed; `line` is 1-based in the trimmed input.
    #[error("D1_EXEC_ERROR: Error in line {line}: {sql}: {detail}")]
    Exec {
        line: usize,
        sql: String,
        detail: String,
    },

    /// `DELETE/UPDATE ... LIMIT` on a table without a `rowid`: the bundled
    /// SQLite lacks D1's `SQLITE_ENABLE_UPDATE_DELETE_LIMIT`, and Hearth's
    /// rewrite of such statements selects the rows by `rowid`.
    #[error(
        "D1_ERROR: DELETE or UPDATE with LIMIT is not supported on WITHOUT ROWID table {table:?} by Hearth's D1 (it runs such statements through the table's rowid): SQLITE_ERROR"
    )]
    LimitWithoutRowid { table: String },

    /// `UPDATE ... FROM ... LIMIT`, which Hearth's rewrite does not cover.
    #[error(
        "D1_ERROR: UPDATE ... FROM with LIMIT is not supported by Hearth's D1; select the rows in a subquery instead: SQLITE_ERROR"
    )]
    UpdateFromLimit,

    #[error("D1_SESSION_ERROR: invalid bookmark or constraint")]
    InvalidBookmark(String),

    /// A statement prepared on another database was passed to `batch()`.
    #[error("D1_ERROR: batch() statements must all come from the same database")]
    ForeignStatement,

    #[error("D1_ERROR: cannot open database {path}: {message}")]
    Open { path: PathBuf, message: String },

    #[error("{0}")]
    Migration(#[from] MigrationError),

    /// The batch ran, but its results could not be handed to the caller
    /// (a worker's heap could not hold them), so it was rolled back.
    #[error(
        "D1_ERROR: the batch's results could not be delivered ({reason}); the batch was rolled back and nothing was written"
    )]
    NotDelivered { reason: String },

    /// Cluster mode: another node took the database's lease, so this
    /// node's write was refused by the log and not applied.
    #[error(
        "D1_ERROR: the write was not applied: another node took over the database (this node's lease token {token} is stale); try again"
    )]
    Fenced { token: i64 },

    /// Cluster mode: the write could not be shipped to the cluster's log,
    /// so it was not acknowledged.
    #[error(
        "D1_ERROR: the write was not acknowledged: it could not be made durable in the cluster: {message}"
    )]
    NotDurable { message: String },

    /// Cluster mode: this copy of the database holds a write the log did
    /// not take; it is rebuilt from the log before it serves again.
    #[error(
        "D1_ERROR: the database is being rebuilt from the cluster's log after a write that was not acknowledged; try again"
    )]
    Stale,

    /// Cluster mode: a session's bookmark names a write the database does
    /// not hold.
    #[error(
        "D1_SESSION_ERROR: the bookmark {bookmark} is newer than any write this database holds"
    )]
    BookmarkAhead { bookmark: String },
}

/// D1 raises every failure as a plain `Error` (the `D1_*` prefix of the
/// message tells them apart).
impl ContractError for D1Error {
    fn class(&self) -> ErrorClass {
        ErrorClass::Error
    }
}

impl D1Error {
    /// The message without its `D1_ERROR: ` prefix, as D1 nests it inside
    /// `D1_EXEC_ERROR` messages.
    pub fn detail(&self) -> String {
        let full = self.to_string();
        match full.strip_prefix("D1_ERROR: ") {
            Some(rest) => rest.to_owned(),
            None => full,
        }
    }
}

/// Failures of `migrations::{create, list, apply}`, worded like wrangler's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MigrationError {
    #[error("No migrations present at {}.", dir.display())]
    NoMigrationsDir { dir: PathBuf },

    #[error("Migration name must not be empty.")]
    EmptyName,

    #[error("Invalid migrations table name '{0}': use letters, digits and underscores")]
    InvalidTableName(String),

    #[error("Cannot read migrations at {}: {message}", path.display())]
    Io { path: PathBuf, message: String },

    #[error("Migration {name} failed with the following errors:\n{message}")]
    Failed { name: String, message: String },
}
