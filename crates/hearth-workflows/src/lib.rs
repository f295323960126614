//! Workflows: the durable engine and step journal behind Cloudflare's
//! `WorkflowEntrypoint` and the `Workflow` binding.
//!
//! [`WorkflowEngine`] holds every instance of every Workflow in one journal:
//! a SQLite file (`DataDir::workflows()`, [`SqliteJournal`]) or, in cluster
//! mode, PostgreSQL tables shared by every node ([`PgJournal`]); both behind
//! [`JournalStore`]. It has two faces:
//!
//! - **The binding** (`env.MY_WORKFLOW`): [`create`](WorkflowEngine::create),
//!   [`create_batch`](WorkflowEngine::create_batch), [`get`](WorkflowEngine::get),
//!   [`status`](WorkflowEngine::status), [`pause`](WorkflowEngine::pause),
//!   [`resume`](WorkflowEngine::resume), [`terminate`](WorkflowEngine::terminate),
//!   [`restart`](WorkflowEngine::restart), [`send_event`](WorkflowEngine::send_event),
//!   plus [`list`](WorkflowEngine::list) and [`describe`](WorkflowEngine::describe)
//!   for the CLI.
//! - **The runner** (whatever executes `run(event, step)`: the JS runtime, or
//!   [`native`] for Rust closures): [`claim_due`](WorkflowEngine::claim_due),
//!   then per run [`step_begin`](WorkflowEngine::step_begin) /
//!   [`step_success`](WorkflowEngine::step_success) /
//!   [`step_failure`](WorkflowEngine::step_failure),
//!   [`sleep`](WorkflowEngine::sleep), [`wait_for_event`](WorkflowEngine::wait_for_event),
//!   and finally [`finish`](WorkflowEngine::finish) or [`suspend`](WorkflowEngine::suspend).
//!
//! # Execution model: replay
//!
//! A run executes `run(event, step)` from the top. Every step call is
//! identified by its kind (`do`, `sleep`, `waitForEvent`), its name and the
//! *occurrence* of that name in this run (1 for the first `step.do("a")`, 2
//! for the second, ...); the [`RunTicket`] counts occurrences, so the runner
//! only passes names. For each call the engine answers from the journal:
//!
//! - `step.do`: [`StepDecision::Cached`] (completed earlier: return the stored
//!   bytes, never run the callback again), [`StepDecision::Failed`] (failed for
//!   good earlier: throw the stored error), [`StepDecision::Run`] (run the
//!   callback now, then report [`step_success`](WorkflowEngine::step_success)
//!   or [`step_failure`](WorkflowEngine::step_failure)), or
//!   [`StepDecision::Wait`] (a retry is scheduled for later: suspend).
//! - `step.sleep` / `sleepUntil`: [`SleepOutcome::Elapsed`] or
//!   [`SleepOutcome::SuspendUntil`]. The wake time is journaled on the first
//!   call; replays use the journaled time, never a new "now + duration".
//! - `step.waitForEvent`: [`EventOutcome::Event`], [`EventOutcome::TimedOut`]
//!   (throw the carried error) or [`EventOutcome::SuspendUntil`]. Events sent
//!   before the wait are kept and delivered to the first wait for their type.
//!
//! When any answer says "suspend" and the run cannot make progress, the
//! runner stops executing (the JS side throws an internal marker or leaves
//! the promise pending) and calls [`suspend`](WorkflowEngine::suspend): the
//! instance becomes `waiting` with a wake time, and no thread is held. When
//! the wake time passes (or a matching event arrives)
//! [`claim_due`](WorkflowEngine::claim_due) hands out
//! a new [`RunTicket`] and the run replays from the top, fast-forwarding
//! through the journal. Code outside steps therefore runs again on every
//! replay, as on Cloudflare.
//!
//! Any runner call may answer [`WorkflowError::RunStopped`]: the instance was
//! paused at this step boundary, terminated, restarted, or the run's lease
//! passed to another runner. The runner then stops without reporting more.
//!
//! # Crash safety: leases
//!
//! [`claim_due`](WorkflowEngine::claim_due) gives each run a lease that ends
//! [`WorkflowLimits::lease_ms`] after the run's last call into the engine (plus
//! the step timeout while an attempt is running). A run whose process died
//! keeps its `running` status until its lease ends; from then on
//! [`claim_due`](WorkflowEngine::claim_due) hands it out again and it replays. Leases were chosen over
//! "every running instance is due when the file is opened" because a second
//! process (the CLI beside a server) opens the same file without owning its
//! runs. An attempt that was in progress when its run died is recorded as
//! failed (`WorkflowInternalError`) and retried under the step's retry rules;
//! completed steps are never re-run; sleeps, retries and waits are rows with
//! wake times, so they survive restarts.
//!
//! # Guarantees
//!
//! - Every call that returned `Ok` has committed (SQLite WAL commit with
//!   `synchronous=FULL`, or PostgreSQL's commit): an acknowledged step
//!   result survives `kill -9`.
//! - Time comes from the injected [`SharedClock`](hearth_core::SharedClock);
//!   tests use `ManualClock`.
//! - Payloads, params and step results are opaque bytes: the JS layer
//!   serializes them. This crate knows nothing of JavaScript or HTTP.

pub mod copy;
mod engine;
mod error;
pub mod native;
pub mod postgres;
pub mod sqlite;
pub mod store;
pub mod validate;

use std::collections::HashMap;
use std::fmt;

pub use copy::{JournalCopy, copy_journal, workflows_present, workflows_stored};
pub use engine::WorkflowEngine;
pub use error::{GET_NOT_FOUND_MESSAGE, Result, WorkflowError};
pub use postgres::PgJournal;
pub use sqlite::SqliteJournal;
pub use store::JournalStore;
pub use validate::WorkflowLimits;

/// How the delay between retries grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backoff {
    /// Every retry waits `delay`.
    Constant,
    /// Retry `n` waits `delay * n`.
    Linear,
    /// Retry `n` waits `delay * 2^(n-1)`.
    #[default]
    Exponential,
}

impl Backoff {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::Linear => "linear",
            Self::Exponential => "exponential",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "constant" => Some(Self::Constant),
            "linear" => Some(Self::Linear),
            "exponential" => Some(Self::Exponential),
            _ => None,
        }
    }
}

/// `retries` of a `WorkflowStepConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries after the first attempt; a step runs at most `limit + 1` times.
    pub limit: u32,
    pub delay_ms: u64,
    pub backoff: Backoff,
}

/// Cloudflare's defaults: 5 retries, 10 seconds, exponential.
pub const DEFAULT_RETRY_LIMIT: u32 = 5;
pub const DEFAULT_RETRY_DELAY_MS: u64 = 10_000;
/// Cloudflare's default step timeout: 10 minutes.
pub const DEFAULT_STEP_TIMEOUT_MS: u64 = 10 * 60 * 1000;

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            limit: DEFAULT_RETRY_LIMIT,
            delay_ms: DEFAULT_RETRY_DELAY_MS,
            backoff: Backoff::Exponential,
        }
    }
}

impl RetryConfig {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay_after_attempt(&self, attempt: u32) -> u64 {
        let n = u64::from(attempt.max(1));
        match self.backoff {
            Backoff::Constant => self.delay_ms,
            Backoff::Linear => self.delay_ms.saturating_mul(n),
            Backoff::Exponential => {
                let factor = 1u64.checked_shl((n - 1) as u32).unwrap_or(u64::MAX);
                self.delay_ms.saturating_mul(factor)
            }
        }
    }
}

/// `WorkflowStepConfig`: how one `step.do` is retried and timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepConfig {
    pub retries: RetryConfig,
    /// Per attempt. The runner enforces it and reports an overrun with
    /// [`ErrorInfo::timed_out`]; the engine counts it as a failed attempt.
    pub timeout_ms: u64,
}

impl Default for StepConfig {
    fn default() -> Self {
        Self {
            retries: RetryConfig::default(),
            timeout_ms: DEFAULT_STEP_TIMEOUT_MS,
        }
    }
}

impl StepConfig {
    pub fn retries(mut self, limit: u32, delay_ms: u64, backoff: Backoff) -> Self {
        self.retries = RetryConfig {
            limit,
            delay_ms,
            backoff,
        };
        self
    }

    pub fn timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }
}

/// An error as Workflows reports it: `{name, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub name: String,
    pub message: String,
}

impl ErrorInfo {
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
        }
    }

    /// A plain `Error`.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new("Error", message)
    }

    /// What an attempt that overran its timeout failed with.
    pub fn timed_out(timeout_ms: u64) -> Self {
        Self::new(
            "WorkflowTimeoutError",
            format!("Execution timed out after {timeout_ms}ms"),
        )
    }

    /// What an attempt that was in progress when its run died failed with.
    pub fn interrupted() -> Self {
        Self::new(
            "WorkflowInternalError",
            "Attempt failed due to internal workflows error",
        )
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// The `status` field of `InstanceStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatusKind {
    /// Created, never run yet (or restarted).
    Queued,
    /// A runner holds a lease and is executing `run`.
    Running,
    Paused,
    /// `run` threw, or a step failed for good and `run` did not catch it.
    Errored,
    Terminated,
    Complete,
    /// Hibernating until a sleep, retry delay or event wait ends.
    Waiting,
    /// Pause requested while running: takes effect at the next step boundary.
    WaitingForPause,
    Unknown,
}

impl InstanceStatusKind {
    pub const ALL: [Self; 9] = [
        Self::Queued,
        Self::Running,
        Self::Paused,
        Self::Errored,
        Self::Terminated,
        Self::Complete,
        Self::Waiting,
        Self::WaitingForPause,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Errored => "errored",
            Self::Terminated => "terminated",
            Self::Complete => "complete",
            Self::Waiting => "waiting",
            Self::WaitingForPause => "waitingForPause",
            Self::Unknown => "unknown",
        }
    }

    /// Any stored text this build does not know reads as `unknown`.
    pub fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(Self::Unknown)
    }

    /// Errored, terminated and complete never change again (except by restart).
    pub fn is_finite(self) -> bool {
        matches!(self, Self::Errored | Self::Terminated | Self::Complete)
    }
}

impl fmt::Display for InstanceStatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `InstanceStatus`: what `instance.status()` resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub status: InstanceStatusKind,
    /// What `run` returned, once complete.
    pub output: Option<Vec<u8>>,
    /// Why the instance errored.
    pub error: Option<ErrorInfo>,
}

/// One instance to create: `WorkflowInstanceCreateOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// A random UUID when `None`.
    pub id: Option<String>,
    /// Serialized `params`; empty means none.
    pub params: Vec<u8>,
}

impl CreateOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    pub fn params(mut self, params: impl Into<Vec<u8>>) -> Self {
        self.params = params.into();
        self
    }
}

/// The first argument of `run`: `WorkflowEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowEvent {
    pub payload: Vec<u8>,
    /// When the instance was created, ms since the epoch.
    pub timestamp_ms: u64,
    pub instance_id: String,
}

/// The kind of a journaled step call; occurrences are counted per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    Do,
    Sleep,
    WaitForEvent,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Do => "do",
            Self::Sleep => "sleep",
            Self::WaitForEvent => "waitForEvent",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "sleep" => Self::Sleep,
            "waitForEvent" => Self::WaitForEvent,
            _ => Self::Do,
        }
    }
}

/// One run of one instance, handed out by [`WorkflowEngine::claim_due`]. It
/// carries the run's lease and counts step occurrences as `run` replays.
#[derive(Debug, Clone)]
pub struct RunTicket {
    pub workflow: String,
    pub instance_id: String,
    pub event: WorkflowEvent,
    /// Which claim this is; a newer claim (or terminate/restart) makes the
    /// ticket stale.
    pub lease: i64,
    occurrences: HashMap<(StepKind, String), u32>,
    steps_begun: u32,
}

impl RunTicket {
    /// Starts counting occurrences from zero again, for a runner that
    /// replays `run` from the top under the same lease (for example when a
    /// retry is due at once) instead of suspending.
    pub fn rewind(&mut self) {
        self.occurrences.clear();
        self.steps_begun = 0;
    }

    fn next_occurrence(&mut self, kind: StepKind, name: &str) -> u32 {
        let n = self.occurrences.entry((kind, name.to_owned())).or_insert(0);
        *n += 1;
        *n
    }
}

/// What the runner does with a `step.do` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDecision {
    /// Completed in an earlier run: return these bytes, skip the callback.
    Cached(Vec<u8>),
    /// Failed for good in an earlier run: throw this error into `run`.
    Failed(ErrorInfo),
    /// Run the callback now as attempt `attempt`, then report the outcome
    /// with this `occurrence`.
    Run {
        occurrence: u32,
        attempt: u32,
        timeout_ms: u64,
    },
    /// A retry is scheduled: suspend the run; it replays after `until_ms`.
    Wait { until_ms: u64 },
}

/// What [`WorkflowEngine::step_failure`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Another attempt will run at `at_ms`: suspend (or, if `at_ms` is now,
    /// ask [`WorkflowEngine::step_begin`] again).
    Retry { at_ms: u64 },
    /// No more attempts: throw the error into `run`.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepOutcome {
    Elapsed,
    SuspendUntil(u64),
}

/// An event delivered to `waitForEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    pub event_type: String,
    pub payload: Vec<u8>,
    pub timestamp_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    Event(ReceivedEvent),
    /// Nothing yet: suspend; the run replays when an event of the type
    /// arrives or at the timeout, whichever comes first.
    SuspendUntil(u64),
    /// The wait timed out: throw this error into `run`.
    TimedOut(ErrorInfo),
}

/// Why a run must stop (see [`WorkflowError::RunStopped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Paused at this step boundary.
    Paused,
    Terminated,
    Restarted,
    /// The lease ended and another runner claimed the instance, or the
    /// instance already finished.
    Superseded,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Paused => "the instance was paused",
            Self::Terminated => "the instance was terminated",
            Self::Restarted => "the instance was restarted",
            Self::Superseded => "another run holds the instance",
        })
    }
}

/// One row of [`WorkflowEngine::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSummary {
    pub workflow: String,
    pub id: String,
    pub status: InstanceStatusKind,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
}

/// Filters of [`WorkflowEngine::list`]; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub status: Option<InstanceStatusKind>,
    /// 1..=1000, default 50.
    pub limit: Option<usize>,
    /// The `cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    pub instances: Vec<InstanceSummary>,
    /// Present when more instances follow.
    pub cursor: Option<String>,
}

/// The state of one journaled step call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// An attempt is in progress.
    Running,
    /// Failed; the next attempt waits until `wake_at_ms`.
    Retrying,
    Succeeded,
    Failed,
    Sleeping,
    Elapsed,
    WaitingForEvent,
    Received,
    TimedOut,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Sleeping => "sleeping",
            Self::Elapsed => "elapsed",
            Self::WaitingForEvent => "waiting",
            Self::Received => "received",
            Self::TimedOut => "timedOut",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "retrying" => Self::Retrying,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "sleeping" => Self::Sleeping,
            "elapsed" => Self::Elapsed,
            "waiting" => Self::WaitingForEvent,
            "received" => Self::Received,
            "timedOut" => Self::TimedOut,
            _ => Self::Running,
        }
    }
}

/// One attempt of a `step.do`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// `None` while in progress.
    pub success: Option<bool>,
    pub error: Option<ErrorInfo>,
}

/// One journaled step call, for `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub kind: StepKind,
    pub name: String,
    pub occurrence: u32,
    pub state: StepState,
    /// `step.do` only.
    pub config: Option<StepConfig>,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// Retry time, sleep end or event timeout.
    pub wake_at_ms: Option<u64>,
    /// `waitForEvent` only.
    pub event_type: Option<String>,
    /// Step result, or the received event's payload.
    pub output: Option<Vec<u8>>,
    pub error: Option<ErrorInfo>,
    pub attempts: Vec<AttemptRecord>,
}

/// Everything known about one instance, for the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceDetails {
    pub workflow: String,
    pub id: String,
    pub status: InstanceStatus,
    pub params: Vec<u8>,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    /// When a waiting instance becomes due again.
    pub wake_at_ms: Option<u64>,
    /// Steps in the order they were first reached.
    pub steps: Vec<StepRecord>,
    /// Events sent but not yet taken by a `waitForEvent`.
    pub pending_events: Vec<ReceivedEvent>,
}
