//! Every way a KV call can fail. The `Display` text of each input error is the
//! message Workers code sees on Cloudflare (workerd's client-side checks, or
//! `KV <OP> failed: <status> <reason>` for checks the KV service makes), because
//! applications match on those strings.

use std::fmt;

use hearth_core::{ContractError, ErrorClass};

/// The KV operation named in a `KV <OP> failed: ...` message. `list()` reports
/// as `GET`, as on Cloudflare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    Get,
    GetBulk,
    Put,
    Delete,
}

impl KvOp {
    pub fn as_str(self) -> &'static str {
        match self {
            KvOp::Get => "GET",
            KvOp::GetBulk => "GET_BULK",
            KvOp::Put => "PUT",
            KvOp::Delete => "DELETE",
        }
    }
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("Key name cannot be empty.")]
    EmptyKey,

    #[error("\"{key}\" is not allowed as a key name.")]
    IllegalKey { key: String },

    #[error(
        "KV {op} failed: 414 UTF-8 encoded length of {length} exceeds key length limit of {limit}."
    )]
    KeyTooLong {
        op: KvOp,
        length: usize,
        limit: usize,
    },

    /// Bulk reads check keys on the service side, whose wording differs from
    /// the runtime's single-key checks.
    #[error("KV GET_BULK failed: 400 Key names must not be empty")]
    BulkEmptyKey,

    #[error("KV GET_BULK failed: 400 Illegal key name \"{key}\". Please use a different name.")]
    BulkIllegalKey { key: String },

    #[error("KV {op} failed: 400 Invalid cache_ttl of {value}. Cache TTL must be at least {min}.")]
    InvalidCacheTtl { op: KvOp, value: String, min: u64 },

    #[error(
        "KV PUT failed: 400 Invalid expiration_ttl of {value}. Please specify integer greater than 0."
    )]
    InvalidExpirationTtl { value: String },

    #[error(
        "KV PUT failed: 400 Invalid expiration_ttl of {value}. Expiration TTL must be at least {min}."
    )]
    ExpirationTtlTooSmall { value: String, min: u64 },

    #[error(
        "KV PUT failed: 400 Invalid expiration of {value}. Please specify integer greater than the current number of seconds since the UNIX epoch."
    )]
    InvalidExpiration { value: String },

    #[error(
        "KV PUT failed: 400 Invalid expiration of {value}. Expiration times must be at least {min} seconds in the future."
    )]
    ExpirationTooSoon { value: String, min: u64 },

    #[error("KV PUT failed: 413 Metadata length of {length} exceeds limit of {limit}.")]
    MetadataTooLarge { length: usize, limit: usize },

    #[error("KV PUT failed: 413 Value length of {length} exceeds limit of {limit}.")]
    ValueTooLarge { length: u64, limit: usize },

    #[error(
        "KV GET failed: 400 Invalid key_count_limit of {value}. Please specify an integer greater than 0."
    )]
    InvalidListLimit { value: String },

    /// Cloudflare's wording says "less than" although the maximum itself is
    /// accepted; kept as is because callers match on it.
    #[error(
        "KV GET failed: 400 Invalid key_count_limit of {value}. Please specify an integer less than {max}."
    )]
    ListLimitTooLarge { value: String, max: u32 },

    /// A cursor that no `list()` call produced. Neither Cloudflare's docs nor
    /// miniflare give a wording for this; this one follows their pattern.
    #[error("KV GET failed: 400 Invalid cursor.")]
    InvalidCursor { cursor: String },

    #[error(
        "Unknown response type. Possible types are \"text\", \"arrayBuffer\", \"json\", and \"stream\"."
    )]
    UnknownType { value_type: String },

    #[error(
        "KV GET_BULK failed: 400 \"{value_type}\" is not a valid type. Use \"json\" or \"text\""
    )]
    BulkInvalidType { value_type: String },

    #[error("KV GET_BULK failed: 400 You can request a maximum of {max} keys")]
    BulkTooManyKeys { count: usize, max: usize },

    #[error("KV GET_BULK failed: 400 You must request a minimum of 1 key")]
    BulkNoKeys,

    #[error(
        "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-{value_type} value"
    )]
    BulkValueNotOfType { value_type: String },

    /// `limit_mb` is the limit in MiB written as a JavaScript number would be.
    #[error("KV GET_BULK failed: 413 Total size of request exceeds the limit of {limit_mb}MB")]
    BulkTooLarge {
        size: usize,
        limit: usize,
        limit_mb: String,
    },

    /// A value read with type `json` that does not parse. On Cloudflare this is
    /// `JSON.parse`'s SyntaxError; the wording here is serde_json's.
    #[error("Unexpected value for type \"json\": {0}")]
    InvalidJson(#[source] serde_json::Error),

    #[error("KV PUT failed: cannot read the value: {0}")]
    ReadValue(#[source] std::io::Error),

    #[error("cannot start the KV expiry purger thread: {0}")]
    SpawnPurger(#[source] std::io::Error),

    #[error(transparent)]
    Open(#[from] hearth_core::sqlite::OpenError),

    #[error("KV storage error: {0}")]
    Storage(#[from] rusqlite::Error),

    #[error("KV storage error: {0}")]
    Postgres(#[from] hearth_cluster::PgError),

    #[error("KV storage holds corrupt metadata for key \"{key}\": {source}")]
    CorruptMetadata {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The exception class Cloudflare's runtime raises for each error.
impl ContractError for KvError {
    fn class(&self) -> ErrorClass {
        match self {
            KvError::EmptyKey | KvError::IllegalKey { .. } | KvError::UnknownType { .. } => {
                ErrorClass::TypeError
            }
            KvError::InvalidJson(_) => ErrorClass::SyntaxError,
            _ => ErrorClass::Error,
        }
    }
}

impl KvError {
    /// The HTTP status the KV service answers with for this error, when it is
    /// one the service (rather than the runtime) reports.
    pub fn status(&self) -> Option<u16> {
        match self {
            KvError::KeyTooLong { .. } => Some(414),
            KvError::MetadataTooLarge { .. }
            | KvError::ValueTooLarge { .. }
            | KvError::BulkTooLarge { .. } => Some(413),
            KvError::BulkEmptyKey
            | KvError::BulkIllegalKey { .. }
            | KvError::InvalidCacheTtl { .. }
            | KvError::InvalidExpirationTtl { .. }
            | KvError::ExpirationTtlTooSmall { .. }
            | KvError::InvalidExpiration { .. }
            | KvError::ExpirationTooSoon { .. }
            | KvError::InvalidListLimit { .. }
            | KvError::ListLimitTooLarge { .. }
            | KvError::InvalidCursor { .. }
            | KvError::BulkInvalidType { .. }
            | KvError::BulkTooManyKeys { .. }
            | KvError::BulkNoKeys
            | KvError::BulkValueNotOfType { .. } => Some(400),
            _ => None,
        }
    }

    /// Whether the caller's input was at fault (as opposed to storage or I/O).
    pub fn is_user_error(&self) -> bool {
        self.status().is_some()
            || matches!(
                self,
                KvError::EmptyKey
                    | KvError::IllegalKey { .. }
                    | KvError::UnknownType { .. }
                    | KvError::InvalidJson(_)
            )
    }
}

pub type Result<T, E = KvError> = std::result::Result<T, E>;
