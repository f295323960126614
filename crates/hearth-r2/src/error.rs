//! R2's errors. Display strings follow what a Worker sees on Cloudflare:
//! `"<operation>: <R2 message> (<v4 code>)"`, so code that matches on the
//! message behaves the same here. Argument errors that the Workers runtime
//! raises before calling R2 (TypeError / RangeError) carry the runtime's text.

use hearth_core::{ContractError, ErrorClass};

/// Which bucket operation failed; the prefix of every R2 error message.
pub type Op = &'static str;

#[derive(Debug, thiserror::Error)]
pub enum R2Error {
    #[error("{op}: The specified object name is not valid. (10020)")]
    InvalidObjectName { op: Op },

    #[error("{op}: Your metadata headers exceed the maximum allowed metadata size. (10012)")]
    MetadataTooLarge { op: Op },

    #[error("{op}: Your proposed upload exceeds the maximum allowed object size. (100100)")]
    EntityTooLarge { op: Op },

    #[error("{op}: Your proposed upload is smaller than the minimum allowed object size. (10011)")]
    EntityTooSmall { op: Op },

    #[error("{op}: MaxKeys params must be positive integer <= {max}. (10022)")]
    InvalidMaxKeys { op: Op, max: usize },

    #[error(
        "delete: The number of keys in the request must be between 1 and {max} inclusive. (10027)"
    )]
    InvalidDeleteKeyCount { max: usize },

    #[error("{op}: The specified multipart upload does not exist. (10024)")]
    NoSuchUpload { op: Op },

    #[error("{op}: One or more of the specified parts could not be found. (10025)")]
    InvalidPart { op: Op },

    #[error("{op}: There was a problem with the multipart upload. (10048)")]
    BadUpload { op: Op },

    #[error("{op}: The requested range is not satisfiable (10039)")]
    InvalidRange { op: Op },

    #[error(
        "{op}: The {algorithm} checksum you specified did not match what we received.\n\
         You provided a {algorithm} checksum with value: {provided}\n\
         Actual {algorithm} was: {actual} (10037)"
    )]
    BadDigest {
        op: Op,
        algorithm: &'static str,
        provided: String,
        actual: String,
    },

    /// R2 answers some malformed requests (a part listed twice when
    /// completing an upload) with its generic internal error.
    #[error("{op}: We encountered an internal error. Please try again. (10001)")]
    InternalError { op: Op },

    /// Rejected before reaching storage, with the Workers runtime's message
    /// (e.g. a part number out of range, a quoted conditional etag).
    #[error("{message}")]
    InvalidArgument { message: String },

    #[error("{op}: I/O error: {source}")]
    Io {
        op: Op,
        #[source]
        source: std::io::Error,
    },

    #[error("{op}: metadata store error: {source}")]
    Sqlite {
        op: Op,
        #[source]
        source: rusqlite::Error,
    },

    /// The S3-compatible store refused or failed a call.
    #[error("{op}: object store error: {message}")]
    Store { op: Op, message: String },

    #[error("cannot open R2 bucket at {path}: {reason}")]
    Open { path: String, reason: String },
}

/// Arguments the Workers runtime refuses before the call are a `TypeError`;
/// everything R2 itself answers is a plain `Error`.
impl ContractError for R2Error {
    fn class(&self) -> ErrorClass {
        match self {
            R2Error::InvalidArgument { .. } => ErrorClass::TypeError,
            _ => ErrorClass::Error,
        }
    }
}

impl R2Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        R2Error::InvalidArgument {
            message: message.into(),
        }
    }

    pub(crate) fn io(op: Op) -> impl FnOnce(std::io::Error) -> Self {
        move |source| R2Error::Io { op, source }
    }

    pub(crate) fn sql(op: Op) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| R2Error::Sqlite { op, source }
    }

    /// R2's numeric error code (`v4code`), when the error came from R2 itself.
    pub fn code(&self) -> Option<u32> {
        Some(match self {
            R2Error::InvalidObjectName { .. } => 10020,
            R2Error::MetadataTooLarge { .. } => 10012,
            R2Error::EntityTooLarge { .. } => 100100,
            R2Error::EntityTooSmall { .. } => 10011,
            R2Error::InvalidMaxKeys { .. } => 10022,
            R2Error::InvalidDeleteKeyCount { .. } => 10027,
            R2Error::NoSuchUpload { .. } => 10024,
            R2Error::InvalidPart { .. } => 10025,
            R2Error::BadUpload { .. } => 10048,
            R2Error::InvalidRange { .. } => 10039,
            R2Error::BadDigest { .. } => 10037,
            R2Error::InternalError { .. }
            | R2Error::Io { .. }
            | R2Error::Sqlite { .. }
            | R2Error::Store { .. } => 10001,
            R2Error::InvalidArgument { .. } | R2Error::Open { .. } => return None,
        })
    }

    /// The HTTP status R2 pairs with this error (for the S3-style front).
    pub fn status(&self) -> u16 {
        match self {
            R2Error::InvalidRange { .. } => 416,
            R2Error::InternalError { .. }
            | R2Error::BadUpload { .. }
            | R2Error::Io { .. }
            | R2Error::Sqlite { .. }
            | R2Error::Store { .. }
            | R2Error::Open { .. } => 500,
            _ => 400,
        }
    }
}
