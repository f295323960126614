//! Every way a Durable Object call can fail. The `Display` text of each input
//! error is the message Workers code sees on Cloudflare (workerd's checks),
//! because applications match on those strings.

use hearth_core::{ContractError, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum DoError {
    // ---- ids ----
    #[error("Invalid Durable Object ID: must be 64 hex digits")]
    InvalidId { id: String },

    #[error("Durable Object ID is not valid for this namespace.")]
    ForeignId { id: String },

    // ---- cluster mode ----
    #[error(
        "Durable Object storage write refused: this node's lease on the object was taken over by another node (fencing token {token} is older than {stored}); the write was not committed"
    )]
    Fenced { token: i64, stored: i64 },

    #[error(
        "Durable Object storage write refused: this node holds no lease on the object in the cluster"
    )]
    NotLeased,

    #[error(
        "Durable Object storage write refused: this node's lease on the object (fencing token {token}) was taken over by another node; the write was not acknowledged"
    )]
    FencedInLog { token: i64 },

    #[error(
        "Durable Object storage write refused: the object moved to another node and back while this write was pending; the write was not committed"
    )]
    LeaseMoved,

    #[error(
        "Durable Object storage: the change could not be made durable outside this node ({message}); it was not acknowledged"
    )]
    Shipping { message: String },

    #[error(
        "Durable Object storage: restoring the object from the cluster's log failed: {message}"
    )]
    Restore { message: String },

    // ---- key-value API ----
    #[error("Keys cannot be larger than {limit} bytes. A key of size {size} was provided.")]
    KeyTooLarge { size: usize, limit: usize },

    #[error("Values cannot be larger than {limit} bytes. A value of size {size} was provided.")]
    ValueTooLarge { size: usize, limit: usize },

    /// SQLite-backed objects limit key and value together; SQLite's own
    /// wording is what Cloudflare reports.
    #[error("string or blob too big: SQLITE_TOOBIG")]
    EntryTooLarge { size: usize, limit: usize },

    #[error("Maximum number of key value pairs is {limit}. {count} pairs were provided.")]
    TooManyKeys { count: usize, limit: usize },

    #[error("list() cannot be called with both start and startAfter values.")]
    StartAndStartAfter,

    #[error("List limit must be positive.")]
    ListLimitNotPositive,

    #[error("Cannot call deleteAll() within a transaction")]
    DeleteAllInTransaction,

    // ---- alarms ----
    #[error("setAlarm() cannot be called with an alarm time <= 0")]
    AlarmTimeNotPositive,

    // ---- SQL API ----
    #[error(
        "SQL is not enabled for this Durable Object class. To enable it, change `new_classes` to `new_sqlite_classes` within the 'migrations' field in your wrangler.jsonc or wrangler.toml file. If using workerd directly,set `enableSql = true` in your workerd config for the class. Note that this change cannot be made after the class is already deployed to production."
    )]
    SqlNotEnabled,

    #[error("Durable Object is not backed by SQL.")]
    TransactionSyncNotSql,

    #[error(
        "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing."
    )]
    SqlTransactionStatement,

    #[error(
        "When executing multiple SQL statements in a single call, only the last statement can have parameters."
    )]
    SqlParametersBeforeLast,

    #[error("Wrong number of parameter bindings for SQL query.")]
    SqlWrongBindings { expected: usize, got: usize },

    #[error("SQL code did not contain a statement.")]
    SqlNoStatement,

    #[error("Expected exactly one result from SQL query, but got no results.")]
    SqlOneGotNone,

    #[error("Expected exactly one result from SQL query, but got multiple results.")]
    SqlOneGotMany,

    /// Any other SQLite failure, worded `<SQLite message>: <SQLITE_CODE>` as
    /// Cloudflare reports it (e.g. `no such table: t: SQLITE_ERROR`).
    #[error("{message}")]
    Sql { message: String },

    // ---- migrations ----
    #[error(
        "Cannot apply migration {tag}: renamed class {from} to {to}, but {to} already has stored objects"
    )]
    RenameTargetExists {
        tag: String,
        from: String,
        to: String,
    },

    #[error(
        "Cannot apply migration {tag}: transferred_classes (moving {from} from script {from_script}) is not supported by Hearth"
    )]
    TransferUnsupported {
        tag: String,
        from: String,
        from_script: String,
    },

    // ---- the embedded backend ----
    #[error(transparent)]
    Open(#[from] hearth_core::sqlite::OpenError),

    #[error("Durable Object storage error: {0}")]
    Storage(#[from] rusqlite::Error),

    #[error("Durable Object storage I/O error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot read random bytes from the operating system: {0}")]
    Random(String),

    #[error("Durable Object id secret at {path} is corrupt (expected 64 hex digits)")]
    CorruptSecret { path: String },

    /// The writes since the last commit passed a limit; the whole unit is
    /// discarded (never committed in part), as a broken output gate resets
    /// an object on Cloudflare.
    #[error(
        "Durable Object storage: {count} {what} written since the last commit passed the limit of {limit} ({field}); every write since the last commit is discarded. Await writes so that they commit in smaller units."
    )]
    UncommittedLimit {
        what: &'static str,
        count: u64,
        limit: u64,
        field: &'static str,
    },

    #[error(
        "Durable Object id secret {path} is missing, but objects exist under {root}: \
         every object's id derives from it, so a new secret would make them all unreachable. \
         Restore the file from a backup, or delete {root} to start with no Durable Object data"
    )]
    MissingSecret { path: String, root: String },
}

/// The exception class Cloudflare's runtime raises for each error.
impl ContractError for DoError {
    fn class(&self) -> ErrorClass {
        match self {
            DoError::InvalidId { .. }
            | DoError::ForeignId { .. }
            | DoError::StartAndStartAfter
            | DoError::ListLimitNotPositive
            | DoError::AlarmTimeNotPositive => ErrorClass::TypeError,
            DoError::KeyTooLarge { .. }
            | DoError::ValueTooLarge { .. }
            | DoError::TooManyKeys { .. } => ErrorClass::RangeError,
            _ => ErrorClass::Error,
        }
    }
}

impl DoError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        DoError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = DoError> = std::result::Result<T, E>;
