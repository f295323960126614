//! Errors of the runtime: failing to start a worker, and failing a request.

/// Why a worker could not be started. Printed to the user at start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("worker main module {path} not found")]
    MainNotFound { path: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A syntax error or an exception while evaluating the module graph.
    #[error("{location}: {message}")]
    Script {
        /// `file:line[:column]` of the fault, or the module name.
        location: String,
        message: String,
        stack: String,
    },
    #[error("the JavaScript engine failed to start: {0}")]
    Engine(String),
    #[error("cannot start isolate thread: {0}")]
    Thread(std::io::Error),
    #[error("binding {name}: {message}")]
    Binding { name: String, message: String },
}

/// Why a request got no response from the worker. Each variant's message is
/// what the client sees (the stack of an exception only goes to the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error(
        "Error 1102: Worker exceeded resource limits: CPU time limit exceeded (limits.cpu_ms = {limit_ms})."
    )]
    CpuLimit { limit_ms: u64 },
    #[error(
        "Error 1102: Worker exceeded resource limits: memory limit exceeded (limits.memory = {limit_bytes} bytes)."
    )]
    MemoryLimit { limit_bytes: usize },
    #[error("Error 1101: Worker threw exception")]
    Exception {
        message: String,
        stack: String,
        /// The worker called `ctx.passThroughOnException()` before failing.
        pass_through: bool,
    },
    #[error("The worker's isolate was restarted while handling this request.")]
    IsolateRestarted,
    #[error("The worker is shutting down.")]
    ShuttingDown,
    /// Every isolate's queue of requests waiting to start is full.
    #[error(
        "overloaded: every isolate's request queue is full (limits.max_queued_requests = {limit}); retry later."
    )]
    Overloaded { limit: usize },
}

impl DispatchError {
    /// A request body that could not be read whole (the client went away,
    /// or sent more than the limit) fails the request as an exception.
    pub(crate) fn unreadable_body(message: String) -> Self {
        DispatchError::Exception {
            stack: message.clone(),
            message,
            pass_through: false,
        }
    }

    /// HTTP status a front should answer with.
    pub fn status(&self) -> u16 {
        match self {
            DispatchError::Exception { .. } => 500,
            _ => 503,
        }
    }
}
