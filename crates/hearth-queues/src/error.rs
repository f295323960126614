//! Every way a Queues call can fail. Producer errors read as Workers code sees
//! them on Cloudflare: the runtime's own checks (`TypeError`s) verbatim, and the
//! broker's refusals as `Queue send failed: <reason>` /
//! `Queue sendBatch failed: <reason>`, where the reason is the broker's text.

use std::fmt;

use hearth_core::{ContractError, ErrorClass};

/// The producer call named in a `Queue <op> failed: ...` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOp {
    Send,
    SendBatch,
}

impl SendOp {
    pub fn as_str(self) -> &'static str {
        match self {
            SendOp::Send => "send",
            SendOp::SendBatch => "sendBatch",
        }
    }
}

impl fmt::Display for SendOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("Unsupported queue message content type: {value}")]
    UnsupportedContentType { value: String },

    #[error("sendBatch() requires at least one message")]
    EmptyBatch,

    #[error("Queue send failed: message length of {size} bytes exceeds limit of {limit}")]
    MessageTooLarge { size: usize, limit: usize },

    #[error("Queue sendBatch failed: batch message count of {count} exceeds limit of {limit}")]
    BatchTooManyMessages { count: usize, limit: usize },

    #[error(
        "Queue sendBatch failed: message in batch has length {size} bytes which exceeds single message size limit of {limit}"
    )]
    BatchMessageTooLarge { size: usize, limit: usize },

    #[error("Queue sendBatch failed: batch size of {size} bytes exceeds limit of {limit}")]
    BatchTooLarge { size: usize, limit: usize },

    /// The broker's prefix is Cloudflare's; the reason after it is ours, since
    /// the reference broker reports a schema dump there.
    #[error(
        "Queue {op} failed: message delay {value} is invalid: delaySeconds must be an integer from 0 to {max}"
    )]
    InvalidDelay { op: SendOp, value: String, max: u64 },

    #[error("retry delay {value} is invalid: delaySeconds must be an integer from 0 to {max}")]
    InvalidRetryDelay { value: String, max: u64 },

    #[error("Queue name must not be empty")]
    EmptyQueueName,

    #[error("invalid consumer for queue \"{queue}\": {field} must be {rule}, got {value}")]
    InvalidConsumer {
        queue: String,
        field: &'static str,
        rule: String,
        value: String,
    },

    #[error(
        "invalid consumer for queue \"{queue}\": dead_letter_queue must not be the queue it consumes"
    )]
    DeadLetterQueueIsSelf { queue: String },

    #[error(
        "invalid producer for queue \"{queue}\": delivery_delay must be an integer from 0 to {max}, got {value}"
    )]
    InvalidDeliveryDelay { queue: String, value: u64, max: u64 },

    #[error("queue \"{queue}\" has no HTTP pull consumer")]
    NotPullConsumer { queue: String },

    #[error("queue \"{queue}\" has no Worker (push) consumer")]
    NotPushConsumer { queue: String },

    #[error("batch_size {value} is invalid: it must be an integer from 1 to {max}")]
    InvalidPullBatchSize { value: String, max: u32 },

    #[error("visibility_timeout_ms {value} is invalid: it must be an integer from 0 to {max}")]
    InvalidVisibilityTimeout { value: String, max: u64 },

    #[error("cannot draw random bytes for a message or lease id: {0}")]
    Random(String),

    #[error(transparent)]
    Open(#[from] hearth_core::sqlite::OpenError),

    #[error("Queues storage error: {0}")]
    Storage(#[from] rusqlite::Error),

    #[error("Queues storage holds message {id} with unknown content type \"{value}\"")]
    CorruptContentType { id: String, value: String },

    #[error(transparent)]
    JetStream(#[from] hearth_cluster::NatsError),

    #[error("Queues on JetStream: message {stream} #{seq} lacks header {header}")]
    CorruptMessage {
        stream: String,
        seq: u64,
        header: &'static str,
    },
}

/// The exception class Cloudflare's runtime raises for each error.
impl ContractError for QueueError {
    fn class(&self) -> ErrorClass {
        match self {
            QueueError::UnsupportedContentType { .. } | QueueError::EmptyBatch => {
                ErrorClass::TypeError
            }
            _ => ErrorClass::Error,
        }
    }
}

impl QueueError {
    /// The HTTP status the broker answers with, for errors it (rather than
    /// the runtime or the storage) reports.
    pub fn status(&self) -> Option<u16> {
        match self {
            QueueError::MessageTooLarge { .. }
            | QueueError::BatchTooManyMessages { .. }
            | QueueError::BatchMessageTooLarge { .. }
            | QueueError::BatchTooLarge { .. } => Some(413),
            QueueError::InvalidDelay { .. }
            | QueueError::InvalidRetryDelay { .. }
            | QueueError::InvalidPullBatchSize { .. }
            | QueueError::InvalidVisibilityTimeout { .. }
            | QueueError::NotPullConsumer { .. }
            | QueueError::NotPushConsumer { .. } => Some(400),
            _ => None,
        }
    }

    /// Whether the caller's input was at fault (as opposed to storage or I/O).
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            QueueError::Random(_)
                | QueueError::Open(_)
                | QueueError::Storage(_)
                | QueueError::CorruptContentType { .. }
                | QueueError::JetStream(_)
                | QueueError::CorruptMessage { .. }
        )
    }
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;
