//! Rust-native Workflows: `run(event, step)` as a Rust closure, driven
//! through the same engine calls the JavaScript runtime makes.
//!
//! A run closure returns `Result<Vec<u8>, Thrown>` and uses `?` on step
//! calls. [`Thrown::Error`] is what JavaScript would see as an exception (a
//! step that failed for good, a timed-out wait): the closure may match on it
//! and carry on, like a `try`/`catch`. The other variants mean "stop now"
//! (suspension, pause, terminate) and must be passed up unchanged.
//!
//! ```no_run
//! # use hearth_workflows::{WorkflowEngine, StepConfig, native::{self, StepFailure}};
//! # fn demo(engine: &WorkflowEngine) -> hearth_workflows::Result<()> {
//! native::run_due(engine, |_workflow, event, step| {
//!     let fetched = step.do_step("fetch", &StepConfig::default(), |_attempt| {
//!         Ok::<_, StepFailure>(event.payload.clone())
//!     })?;
//!     step.sleep("cool down", 60_000)?;
//!     Ok(fetched)
//! })?;
//! # Ok(()) }
//! ```

use hearth_core::ContractError;

use crate::{
    ErrorInfo, EventOutcome, FailureOutcome, ReceivedEvent, RunTicket, SleepOutcome, StepConfig,
    StepDecision, StopReason, WorkflowEngine, WorkflowError, WorkflowEvent,
};

/// Why a step call did not return a value.
#[derive(Debug)]
pub enum Thrown {
    /// An exception `run` may catch.
    Error(ErrorInfo),
    /// The run must stop and replay later (a sleep, retry delay or event
    /// wait is pending).
    Suspend,
    /// The run must stop for good: paused, terminated, restarted, or taken
    /// over by another runner.
    Stopped(StopReason),
    /// Storage failed.
    Engine(WorkflowError),
}

impl From<WorkflowError> for Thrown {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::RunStopped { reason, .. } => Thrown::Stopped(reason),
            WorkflowError::Sqlite(_)
            | WorkflowError::Open(_)
            | WorkflowError::StepNotRunning { .. }
            | WorkflowError::NothingPending { .. } => Thrown::Engine(e),
            other => Thrown::Error(ErrorInfo::new(other.class().name(), other.to_string())),
        }
    }
}

/// What a step callback throws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub error: ErrorInfo,
    /// `NonRetryableError`: no further attempts.
    pub non_retryable: bool,
}

impl StepFailure {
    /// A plain `Error`, retried under the step's config.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            error: ErrorInfo::error(message),
            non_retryable: false,
        }
    }

    /// `new NonRetryableError(message)`.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        Self {
            error: ErrorInfo::new("NonRetryableError", message),
            non_retryable: true,
        }
    }
}

/// The `step` argument of a native run.
#[derive(Debug)]
pub struct WorkflowStep<'a> {
    engine: &'a WorkflowEngine,
    ticket: RunTicket,
}

impl<'a> WorkflowStep<'a> {
    pub fn new(engine: &'a WorkflowEngine, ticket: RunTicket) -> Self {
        Self { engine, ticket }
    }

    pub fn ticket(&self) -> &RunTicket {
        &self.ticket
    }

    /// `step.do(name, config, callback)`. The callback gets the attempt
    /// number. A callback cannot be interrupted, so an attempt that took
    /// longer than the timeout (by the engine's clock) is recorded as timed
    /// out whatever it returned.
    pub fn do_step<F>(
        &mut self,
        name: &str,
        config: &StepConfig,
        mut callback: F,
    ) -> Result<Vec<u8>, Thrown>
    where
        F: FnMut(u32) -> Result<Vec<u8>, StepFailure>,
    {
        let (occurrence, attempt, timeout_ms) =
            match self.engine.step_begin(&mut self.ticket, name, config)? {
                StepDecision::Cached(output) => return Ok(output),
                StepDecision::Failed(error) => return Err(Thrown::Error(error)),
                StepDecision::Wait { .. } => return Err(Thrown::Suspend),
                StepDecision::Run {
                    occurrence,
                    attempt,
                    timeout_ms,
                } => (occurrence, attempt, timeout_ms),
            };
        let clock = self.engine.clock();
        let started = clock.now_ms();
        let result = callback(attempt);
        let took = clock.now_ms().saturating_sub(started);
        let failure = match result {
            _ if took > timeout_ms => StepFailure {
                error: ErrorInfo::timed_out(timeout_ms),
                non_retryable: false,
            },
            Ok(output) => match self
                .engine
                .step_success(&self.ticket, name, occurrence, &output)
            {
                Ok(()) => return Ok(output),
                Err(e @ WorkflowError::StepOutputTooLarge { .. }) => StepFailure {
                    error: ErrorInfo::new(e.class().name(), e.to_string()),
                    non_retryable: true,
                },
                Err(e) => return Err(e.into()),
            },
            Err(failure) => failure,
        };
        match self.engine.step_failure(
            &self.ticket,
            name,
            occurrence,
            &failure.error,
            failure.non_retryable,
        )? {
            // Even a retry due now goes through a replay: asking again in
            // this run would count a second occurrence of the name.
            FailureOutcome::Retry { .. } => Err(Thrown::Suspend),
            FailureOutcome::Failed => Err(Thrown::Error(failure.error)),
        }
    }

    /// `step.do(name, callback)` with the default config.
    pub fn do_default<F>(&mut self, name: &str, callback: F) -> Result<Vec<u8>, Thrown>
    where
        F: FnMut(u32) -> Result<Vec<u8>, StepFailure>,
    {
        self.do_step(name, &StepConfig::default(), callback)
    }

    /// `step.sleep(name, duration)`.
    pub fn sleep(&mut self, name: &str, duration_ms: u64) -> Result<(), Thrown> {
        match self.engine.sleep(&mut self.ticket, name, duration_ms)? {
            SleepOutcome::Elapsed => Ok(()),
            SleepOutcome::SuspendUntil(_) => Err(Thrown::Suspend),
        }
    }

    /// `step.sleepUntil(name, timestamp)`.
    pub fn sleep_until(&mut self, name: &str, until_ms: u64) -> Result<(), Thrown> {
        match self.engine.sleep_until(&mut self.ticket, name, until_ms)? {
            SleepOutcome::Elapsed => Ok(()),
            SleepOutcome::SuspendUntil(_) => Err(Thrown::Suspend),
        }
    }

    /// `step.waitForEvent(name, {type, timeout})`.
    pub fn wait_for_event(
        &mut self,
        name: &str,
        event_type: &str,
        timeout_ms: Option<u64>,
    ) -> Result<ReceivedEvent, Thrown> {
        match self
            .engine
            .wait_for_event(&mut self.ticket, name, event_type, timeout_ms)?
        {
            EventOutcome::Event(event) => Ok(event),
            EventOutcome::SuspendUntil(_) => Err(Thrown::Suspend),
            EventOutcome::TimedOut(error) => Err(Thrown::Error(error)),
        }
    }
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Complete(Vec<u8>),
    Errored(ErrorInfo),
    /// Hibernating; due again at `wake_at_ms`.
    Suspended {
        wake_at_ms: u64,
    },
    Stopped(StopReason),
}

/// Executes one claimed run and records how it ended.
pub fn run_ticket<F>(
    engine: &WorkflowEngine,
    ticket: RunTicket,
    run: F,
) -> crate::Result<RunOutcome>
where
    F: FnOnce(&WorkflowEvent, &mut WorkflowStep<'_>) -> Result<Vec<u8>, Thrown>,
{
    let event = ticket.event.clone();
    let mut step = WorkflowStep::new(engine, ticket);
    let result = run(&event, &mut step);
    let ticket = step.ticket;
    let recorded = match result {
        Ok(output) => engine
            .finish(&ticket, Ok(output.clone()))
            .map(|()| RunOutcome::Complete(output)),
        Err(Thrown::Error(error)) => engine
            .finish(&ticket, Err(error.clone()))
            .map(|()| RunOutcome::Errored(error)),
        Err(Thrown::Suspend) => engine
            .suspend(&ticket)
            .map(|wake_at_ms| RunOutcome::Suspended { wake_at_ms }),
        Err(Thrown::Stopped(reason)) => return Ok(RunOutcome::Stopped(reason)),
        Err(Thrown::Engine(e)) => return Err(e),
    };
    match recorded {
        Err(WorkflowError::RunStopped { reason, .. }) => Ok(RunOutcome::Stopped(reason)),
        other => other,
    }
}

/// Claims every due run and executes each with `run(workflow, event, step)`.
/// Returns `(workflow, instance id, outcome)` per run, in claim order.
pub fn run_due<F>(
    engine: &WorkflowEngine,
    mut run: F,
) -> crate::Result<Vec<(String, String, RunOutcome)>>
where
    F: FnMut(&str, &WorkflowEvent, &mut WorkflowStep<'_>) -> Result<Vec<u8>, Thrown>,
{
    let mut outcomes = Vec::new();
    for ticket in engine.claim_due()? {
        let workflow = ticket.workflow.clone();
        let id = ticket.instance_id.clone();
        let outcome = run_ticket(engine, ticket, |event, step| run(&workflow, event, step))?;
        outcomes.push((workflow, id, outcome));
    }
    Ok(outcomes)
}
