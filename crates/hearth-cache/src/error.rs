//! Every way a Cache API call can fail. The input errors carry workerd's
//! messages, which workers see as `TypeError`s.

use hearth_core::sqlite::OpenError;
use hearth_core::{ContractError, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("Cannot cache response to non-GET request.")]
    NonGetRequest,

    #[error("Cannot cache response to a range request (206 Partial Content).")]
    PartialContent,

    #[error("Cannot cache response with 'Vary: *' header.")]
    VaryStar,

    #[error("Cache name is too long.")]
    NameTooLong,

    #[error("Invalid URL. Cache API keys must be fully-qualified, valid URLs.")]
    InvalidUrl,

    #[error("cache storage: {0}")]
    Open(#[from] OpenError),

    #[error("cache storage: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("cache storage: {0}")]
    Redis(String),

    #[error("cache storage: {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ContractError for CacheError {
    fn class(&self) -> ErrorClass {
        match self {
            CacheError::NonGetRequest
            | CacheError::PartialContent
            | CacheError::VaryStar
            | CacheError::NameTooLong
            | CacheError::InvalidUrl => ErrorClass::TypeError,
            CacheError::Open(_)
            | CacheError::Sqlite(_)
            | CacheError::Redis(_)
            | CacheError::Io { .. } => ErrorClass::Error,
        }
    }
}
