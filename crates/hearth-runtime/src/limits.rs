//! Every limit the runtime enforces, with Cloudflare's defaults. A user may
//! raise any of them; exceeding one yields an error naming the rule.

/// Default CPU time one request may use, in milliseconds (Workers' maximum
/// configurable `limits.cpu_ms`).
pub const DEFAULT_CPU_MS: u64 = 30_000;
/// Default heap size of one isolate: 128 MiB, like a Workers isolate.
pub const DEFAULT_MEMORY_BYTES: usize = 128 * 1024 * 1024;
/// Default largest request body accepted: 100 MB (the Free/Pro plan limit).
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: usize = 100 * 1024 * 1024;
/// Default JS stack size; the isolate thread gets a larger native stack.
pub const DEFAULT_MAX_STACK_BYTES: usize = 1024 * 1024;
/// Default number of outgoing `fetch()` calls per request (Workers Paid).
pub const DEFAULT_MAX_SUBREQUESTS: u32 = 1000;
/// Redirects followed by `fetch()` before it fails (as in the Fetch standard).
pub const DEFAULT_MAX_REDIRECTS: u32 = 20;
/// Largest response body `fetch()` buffers from the outside world.
pub const DEFAULT_MAX_SUBREQUEST_RESPONSE_BYTES: usize = 100 * 1024 * 1024;
/// Time an outgoing `fetch()` may take before failing, in milliseconds.
pub const DEFAULT_SUBREQUEST_TIMEOUT_MS: u64 = 100_000;
/// Requests that may wait for one isolate to start them. Not a Cloudflare
/// limit (its edge scales out instead): past it, with every isolate's queue
/// full, the front sheds load with 503 rather than queueing without bound.
pub const DEFAULT_MAX_QUEUED_REQUESTS: usize = 128;

/// Limits applied to a worker. `Default` gives Cloudflare's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CPU time per request (including its `waitUntil` work), in ms.
    pub cpu_ms: u64,
    /// Heap limit per isolate, in bytes.
    pub memory_bytes: usize,
    /// Largest request body the HTTP front accepts, in bytes.
    pub max_request_body_bytes: usize,
    /// JS stack limit, in bytes.
    pub max_stack_bytes: usize,
    /// Outgoing `fetch()` calls per request.
    pub max_subrequests: u32,
    /// Redirects `fetch()` follows.
    pub max_redirects: u32,
    /// Largest `fetch()` response body, in bytes.
    pub max_subrequest_response_bytes: usize,
    /// Timeout of one outgoing `fetch()`, in ms.
    pub subrequest_timeout_ms: u64,
    /// Requests waiting to be started, per isolate.
    pub max_queued_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_ms: DEFAULT_CPU_MS,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            max_stack_bytes: DEFAULT_MAX_STACK_BYTES,
            max_subrequests: DEFAULT_MAX_SUBREQUESTS,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_subrequest_response_bytes: DEFAULT_MAX_SUBREQUEST_RESPONSE_BYTES,
            subrequest_timeout_ms: DEFAULT_SUBREQUEST_TIMEOUT_MS,
            max_queued_requests: DEFAULT_MAX_QUEUED_REQUESTS,
        }
    }
}
