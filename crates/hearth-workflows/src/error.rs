//! Every way a Workflows call can fail. Where Cloudflare (or its local
//! engine in miniflare) has a message for a rule, the `Display` text is that
//! message, because applications match on it; the few rules Cloudflare
//! documents without publishing a message use a wording in the same style and
//! say so on the variant.

use hearth_core::{ContractError, ErrorClass};

use crate::StopReason;

pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;

/// What `Workflow.get(id)` throws (a plain `Error`) when no instance has the
/// id: the binding reports the bare error code, not the API's sentence.
pub const GET_NOT_FOUND_MESSAGE: &str = "instance.not_found";

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// Longer than the limit, or not `^[a-zA-Z0-9_][a-zA-Z0-9-_]*$`.
    #[error("Workflow instance has invalid id")]
    InvalidInstanceId { id: String },

    /// Hearth's wording: the rule (64 characters, same pattern as ids) is
    /// Cloudflare's, checked there when a Workflow is deployed.
    #[error(
        "Workflow name \"{name}\" is invalid: it must be at most {max} characters matching ^[a-zA-Z0-9_][a-zA-Z0-9-_]*$"
    )]
    InvalidWorkflowName { name: String, max: usize },

    #[error("(instance.already_exists) Instance already exists")]
    InstanceAlreadyExists { id: String },

    #[error("(instance.not_found) Instance not found")]
    InstanceNotFound { id: String },

    #[error("(instance.cannot_terminate) Cannot terminate instance since its on a finite state")]
    CannotTerminate { id: String },

    #[error("WorkflowError: batchCreate should have at least 1 instance")]
    EmptyBatch,

    #[error("WorkflowError: batchCreate only supports {max} instances at a time")]
    BatchTooLarge { size: usize, max: usize },

    /// Hearth's wording for Cloudflare's documented limit.
    #[error("Workflow params of {size} bytes exceed the limit of {max} bytes")]
    ParamsTooLarge { size: usize, max: usize },

    /// Hearth's wording: Cloudflare documents the rule (up to 100 characters,
    /// the instance id pattern) but no message.
    #[error(
        "Event type \"{event_type}\" is invalid: it must be 1 to {max} characters matching ^[a-zA-Z0-9_][a-zA-Z0-9-_]*$"
    )]
    InvalidEventType { event_type: String, max: usize },

    /// Hearth's wording for Cloudflare's documented limit.
    #[error("Event payload of {size} bytes exceeds the limit of {max} bytes")]
    EventPayloadTooLarge { size: usize, max: usize },

    /// Cloudflare documents that `sendEvent` throws when the instance is
    /// finished; Hearth's wording, in the style of `cannot_terminate`.
    #[error(
        "(instance.cannot_send_event) Cannot send event to instance since its on a finite state"
    )]
    CannotSendEvent { id: String },

    #[error("Step name \"{name}\" exceeds max length ({max} chars) or invalid characters found")]
    InvalidStepName { name: String, max: usize },

    #[error(
        "Step config for \"{name}\" is in a invalid format. See https://developers.cloudflare.com/workflows/build/sleeping-and-retrying/"
    )]
    InvalidStepConfig { name: String },

    #[error(
        "The limit of {limit} steps has been reached. This limit can be changed in your worker configuration."
    )]
    StepLimitReached { limit: u32 },

    /// Hearth's wording for Cloudflare's documented 1 MiB per-step state.
    #[error("Step \"{name}\" returned {size} bytes, more than the limit of {max} bytes per step")]
    StepOutputTooLarge {
        name: String,
        size: usize,
        max: usize,
    },

    #[error("You can't sleep until a time in the past, time-traveler")]
    SleepInThePast { until_ms: u64, now_ms: u64 },

    /// Hearth's wording for Cloudflare's documented 365-day maximum.
    #[error("Sleep \"{name}\" of {duration_ms} ms exceeds the maximum of {max_ms} ms")]
    SleepTooLong {
        name: String,
        duration_ms: u64,
        max_ms: u64,
    },

    /// Hearth's wording for Cloudflare's documented 365-day maximum.
    #[error("waitForEvent \"{name}\" timeout of {timeout_ms} ms must be between 1 and {max_ms} ms")]
    InvalidEventTimeout {
        name: String,
        timeout_ms: u64,
        max_ms: u64,
    },

    /// A `cursor` no `list` call produced.
    #[error("Invalid cursor \"{cursor}\"")]
    InvalidCursor { cursor: String },

    /// The run this ticket belongs to must stop: nothing it reports is
    /// recorded any more. The runner ends the run quietly.
    #[error("this run of instance {id} is no longer current: {reason}")]
    RunStopped { id: String, reason: StopReason },

    /// A runner reported on a step that has no attempt in progress: a bug in
    /// the runner, never user input.
    #[error("step \"{name}\" (occurrence {occurrence}) has no attempt in progress")]
    StepNotRunning { name: String, occurrence: u32 },

    /// `suspend` was called while nothing (sleep, retry, event wait) was
    /// pending, so nothing would ever wake the instance.
    #[error("instance {id} cannot be suspended: it has no pending sleep, retry or event wait")]
    NothingPending { id: String },

    #[error(transparent)]
    Open(#[from] hearth_core::sqlite::OpenError),

    #[error("workflows storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// A journal backend answered without running the transaction given to
    /// it: a bug in the backend.
    #[error("workflows storage error: the journal did not run the transaction")]
    StoreSkipped,

    /// The journal's PostgreSQL (cluster mode) failed or did not answer.
    #[error("workflows storage error: {0}")]
    Postgres(#[from] hearth_cluster::PgError),

    /// A journal row held a value of a type the engine did not write: a
    /// damaged or foreign table, never user input.
    #[error("workflows storage error: column {column} holds {found}, expected {expected}")]
    BadColumn {
        column: usize,
        found: &'static str,
        expected: &'static str,
    },
}

/// The JavaScript error Cloudflare raises for each failure: a plain `Error`
/// whose `name` says whether a retry can help.
impl ContractError for WorkflowError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidInstanceId { .. }
            | Self::InstanceAlreadyExists { .. }
            | Self::InstanceNotFound { .. }
            | Self::CannotTerminate { .. }
            | Self::CannotSendEvent { .. } => ErrorClass::Named("WorkflowError"),
            Self::InvalidStepName { .. }
            | Self::InvalidStepConfig { .. }
            | Self::StepLimitReached { .. }
            | Self::StepOutputTooLarge { .. } => ErrorClass::Named("WorkflowFatalError"),
            _ => ErrorClass::Error,
        }
    }
}
