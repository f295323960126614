//! Workflows in the runtime: `class X extends WorkflowEntrypoint { run(event,
//! step) }` executed over the [`hearth_workflows`] engine.
//!
//! - **Runs are events.** The runner task ([`spawn_workflow_runner`]) claims
//!   due runs from the engine and hands each to the isolate pool as a
//!   `workflow` event (`js/events.js`): the class is instantiated with
//!   `(ctx, env)` and `run(event, step)` is called.
//! - **Steps are engine calls.** Each `step.*` call reaches the engine
//!   synchronously through natives keyed by a run id; the run's
//!   [`RunTicket`] stays on the Rust side, in [`Workflows`].
//! - **Suspension holds no thread.** When the engine says a sleep, retry
//!   delay or event wait is pending, the step call returns a promise that
//!   never settles (so no `try`/`catch` in `run` can swallow it) and the
//!   event ends as soon as no step callback is still running. The runner
//!   then calls [`WorkflowEngine::suspend`]; the instance replays from the
//!   top when it is due again, fast-forwarding through the journal.
//! - **Wake-ups.** The binding wakes the runner after `create`, `resume`,
//!   `restart` and `sendEvent`; otherwise it sleeps until
//!   [`WorkflowEngine::next_wake_at`] by the injected clock, bounded by a
//!   poll interval (a clock that jumps, another process's writes).
//!
//! Params, step results, outputs and event payloads cross as bytes in the
//! versioned structured-clone format ([`crate::structured_clone`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_core::{ContractError, ErrorClass, SharedClock};
use hearth_workflows::{
    Backoff, ErrorInfo, EventOutcome, FailureOutcome, RetryConfig, RunTicket, SleepOutcome,
    StepConfig, StepDecision, WorkflowEngine, WorkflowError,
};
use rquickjs::class::Trace;
use rquickjs::{ArrayBuffer, Class, Ctx, JsLifetime, Object, Value};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::bindings::registry::TaskHandle;

use crate::bindings::WorkflowAdapter;
use crate::bindings::support::throw;
use crate::events::WorkerEvent;
use crate::pool::IsolatePool;

/// Longest sleep between looks at the engine when nothing is due.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest sleep, so a wake time the clock has not quite reached never
/// makes the loop spin.
const MIN_WAIT: Duration = Duration::from_millis(10);

/// The worker's Workflows: the engine, which class runs which workflow, and
/// the tickets of the runs in progress. Shared by every isolate.
pub struct Workflows {
    engine: Arc<WorkflowEngine>,
    /// Workflow name → exported class name.
    classes: HashMap<String, String>,
    runs: Mutex<HashMap<u64, RunTicket>>,
    next_run: AtomicU64,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Workflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflows")
            .field("engine", &self.engine.describe_store())
            .field("classes", &self.classes)
            .finish()
    }
}

impl Workflows {
    /// `workflows` pairs each workflow name with the class that runs it.
    pub fn new(
        engine: Arc<WorkflowEngine>,
        workflows: impl IntoIterator<Item = (String, String)>,
    ) -> Arc<Self> {
        Arc::new(Self {
            engine,
            classes: workflows.into_iter().collect(),
            runs: Mutex::new(HashMap::new()),
            next_run: AtomicU64::new(1),
            wake: Arc::new(Notify::new()),
        })
    }

    pub fn engine(&self) -> &Arc<WorkflowEngine> {
        &self.engine
    }

    /// The `env` binding for `workflow`, or `None` if it was not declared.
    pub fn adapter(self: &Arc<Self>, binding: &str, workflow: &str) -> Option<WorkflowAdapter> {
        self.classes
            .contains_key(workflow)
            .then(|| WorkflowAdapter::new(binding, workflow, self.clone()))
    }

    /// Makes the runner look for due runs now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<u64, RunTicket>> {
        // A panic in an engine call cannot leave the map half-updated.
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the ticket of run `id`; `None` once the run is over.
    fn with_ticket<T>(&self, id: u64, f: impl FnOnce(&mut RunTicket) -> T) -> Option<T> {
        self.runs().get_mut(&id).map(f)
    }
}

pub(crate) use crate::bindings::support::raise;

fn answer<'js>(ctx: &Ctx<'js>, kind: &str) -> rquickjs::Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set("k", kind)?;
    Ok(o)
}

fn answer_error<'js>(ctx: &Ctx<'js>, kind: &str, e: &ErrorInfo) -> rquickjs::Result<Object<'js>> {
    let o = answer(ctx, kind)?;
    o.set("name", e.name.as_str())?;
    o.set("message", e.message.as_str())?;
    Ok(o)
}

/// `{k: "stopped"}` for a run that must end, else the error raised in JS.
fn engine_error<'js>(ctx: &Ctx<'js>, e: WorkflowError) -> rquickjs::Result<Object<'js>> {
    match e {
        WorkflowError::RunStopped { .. } => answer(ctx, "stopped"),
        other => Err(raise(ctx, &other)),
    }
}

fn ms_of(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0).then_some(v as u64)
}

fn bytes_arg(v: &Value<'_>) -> rquickjs::Result<Vec<u8>> {
    Ok(crate::bindings::bytes_of(v)?.unwrap_or_default())
}

/// The natives `js/events.js` drives a run's `step` with.
pub(crate) fn natives<'js>(ctx: &Ctx<'js>, wf: &Arc<Workflows>) -> rquickjs::Result<Object<'js>> {
    let natives = Class::instance(ctx.clone(), StepNatives { wf: wf.clone() })?;
    Ok(natives.into_inner())
}

/// One method per kind of `step` call. Every call takes the run id the
/// runner put in the event and answers `{k: ...}` saying what the JS half
/// does next.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "WorkflowStepNatives")]
pub(crate) struct StepNatives {
    #[qjs(skip_trace)]
    wf: Arc<Workflows>,
}

#[rquickjs::methods]
impl StepNatives {
    /// stepBegin(run, name, retryLimit, retryDelayMs, backoff, timeoutMs)
    #[qjs(rename = "stepBegin")]
    #[allow(clippy::too_many_arguments)] // the positional arguments of the JS call
    fn step_begin<'js>(
        &self,
        ctx: Ctx<'js>,
        run: f64,
        name: String,
        limit: f64,
        delay: f64,
        backoff: String,
        timeout: f64,
    ) -> rquickjs::Result<Object<'js>> {
        let (Some(limit), Some(delay_ms), Some(backoff), Some(timeout_ms)) = (
            ms_of(limit).and_then(|l| u32::try_from(l).ok()),
            ms_of(delay),
            Backoff::parse(&backoff),
            ms_of(timeout),
        ) else {
            return Err(raise(&ctx, &WorkflowError::InvalidStepConfig { name }));
        };
        let config = StepConfig {
            retries: RetryConfig {
                limit,
                delay_ms,
                backoff,
            },
            timeout_ms,
        };
        let w = &self.wf;
        let decided = w.with_ticket(run as u64, |t| w.engine.step_begin(t, &name, &config));
        match decided {
            None => answer(&ctx, "stopped"),
            Some(Err(e)) => engine_error(&ctx, e),
            Some(Ok(StepDecision::Cached(bytes))) => {
                let o = answer(&ctx, "cached")?;
                o.set("value", ArrayBuffer::new(ctx.clone(), bytes)?)?;
                Ok(o)
            }
            Some(Ok(StepDecision::Failed(e))) => answer_error(&ctx, "failed", &e),
            Some(Ok(StepDecision::Wait { .. })) => answer(&ctx, "suspend"),
            Some(Ok(StepDecision::Run {
                occurrence,
                attempt,
                timeout_ms,
            })) => {
                let o = answer(&ctx, "run")?;
                o.set("occurrence", occurrence)?;
                o.set("attempt", attempt)?;
                o.set("timeout", timeout_ms as f64)?;
                Ok(o)
            }
        }
    }

    /// stepSuccess(run, name, occurrence, bytes)
    #[qjs(rename = "stepSuccess")]
    fn step_success<'js>(
        &self,
        ctx: Ctx<'js>,
        run: f64,
        name: String,
        occurrence: u32,
        output: Value<'js>,
    ) -> rquickjs::Result<Object<'js>> {
        let output = bytes_arg(&output)?;
        let w = &self.wf;
        let r = w.with_ticket(run as u64, |t| {
            w.engine.step_success(t, &name, occurrence, &output)
        });
        match r {
            None => answer(&ctx, "stopped"),
            Some(Ok(())) => answer(&ctx, "ok"),
            // Too large to keep: the step fails without retries.
            Some(Err(e @ WorkflowError::StepOutputTooLarge { .. })) => answer_error(
                &ctx,
                "tooLarge",
                &ErrorInfo::new(e.class().name(), e.to_string()),
            ),
            Some(Err(e)) => engine_error(&ctx, e),
        }
    }

    /// stepFailure(run, name, occurrence, {name, message, nonRetryable, timedOut})
    #[qjs(rename = "stepFailure")]
    fn step_failure<'js>(
        &self,
        ctx: Ctx<'js>,
        run: f64,
        name: String,
        occurrence: u32,
        failure: Object<'js>,
    ) -> rquickjs::Result<Object<'js>> {
        let non_retryable: bool = failure.get("nonRetryable")?;
        let timed_out: Option<f64> = failure.get("timedOut")?;
        let error = match timed_out.and_then(ms_of) {
            Some(ms) => ErrorInfo::timed_out(ms),
            None => ErrorInfo::new(
                failure.get::<_, String>("name")?,
                failure.get::<_, String>("message")?,
            ),
        };
        let w = &self.wf;
        let r = w.with_ticket(run as u64, |t| {
            w.engine
                .step_failure(t, &name, occurrence, &error, non_retryable)
        });
        match r {
            None => answer(&ctx, "stopped"),
            Some(Ok(FailureOutcome::Failed)) => answer_error(&ctx, "failed", &error),
            // Even a retry due now replays: asking again in this run would
            // count a second occurrence of the name.
            Some(Ok(FailureOutcome::Retry { .. })) => answer(&ctx, "suspend"),
            Some(Err(e)) => engine_error(&ctx, e),
        }
    }

    /// sleep(run, name, durationMs)
    fn sleep<'js>(
        &self,
        ctx: Ctx<'js>,
        run: f64,
        name: String,
        duration: f64,
    ) -> rquickjs::Result<Object<'js>> {
        self.sleep_step(&ctx, false, run, name, duration)
    }

    /// sleepUntil(run, name, timestampMs)
    #[qjs(rename = "sleepUntil")]
    fn sleep_until<'js>(
        &self,
        ctx: Ctx<'js>,
        run: f64,
        name: String,
        at: f64,
    ) -> rquickjs::Result<Object<'js>> {
        self.sleep_step(&ctx, true, run, name, at)
    }

    /// waitForEvent(run, name, type, timeoutMs?)
    #[qjs(rename = "waitForEvent")]
    fn wait_for_event<'js>(
        &self,
        ctx: Ctx<'js>,
        run: f64,
        name: String,
        event_type: String,
        timeout: Option<f64>,
    ) -> rquickjs::Result<Object<'js>> {
        // NaN (an unreadable duration) reaches the engine as 0, which it
        // refuses with its timeout message.
        let timeout = timeout.map(|t| ms_of(t).unwrap_or(0));
        let w = &self.wf;
        let r = w.with_ticket(run as u64, |t| {
            w.engine.wait_for_event(t, &name, &event_type, timeout)
        });
        match r {
            None => answer(&ctx, "stopped"),
            Some(Ok(EventOutcome::Event(ev))) => {
                let o = answer(&ctx, "event")?;
                o.set("type", ev.event_type)?;
                o.set("payload", ArrayBuffer::new(ctx.clone(), ev.payload)?)?;
                o.set("timestamp", ev.timestamp_ms as f64)?;
                Ok(o)
            }
            Some(Ok(EventOutcome::SuspendUntil(_))) => answer(&ctx, "suspend"),
            Some(Ok(EventOutcome::TimedOut(e))) => answer_error(&ctx, "timedOut", &e),
            Some(Err(e)) => engine_error(&ctx, e),
        }
    }
}

impl StepNatives {
    /// `sleep` (`at` a duration) or `sleepUntil` (`at` a timestamp), both ms.
    fn sleep_step<'js>(
        &self,
        ctx: &Ctx<'js>,
        until: bool,
        run: f64,
        name: String,
        at: f64,
    ) -> rquickjs::Result<Object<'js>> {
        let js = if until { "sleepUntil" } else { "sleep" };
        let Some(at) = ms_of(at) else {
            return Err(throw(
                ctx,
                ErrorClass::TypeError,
                &format!(
                    "step.{js}(\"{name}\"): the duration must be a non-negative number of milliseconds or a string like \"10 seconds\""
                ),
            ));
        };
        let w = &self.wf;
        let r = w.with_ticket(run as u64, |t| {
            if until {
                w.engine.sleep_until(t, &name, at)
            } else {
                w.engine.sleep(t, &name, at)
            }
        });
        match r {
            None => answer(ctx, "stopped"),
            Some(Ok(SleepOutcome::Elapsed)) => answer(ctx, "elapsed"),
            Some(Ok(SleepOutcome::SuspendUntil(_))) => answer(ctx, "suspend"),
            Some(Err(e)) => engine_error(ctx, e),
        }
    }
}

/// How one run ended, as the JS half reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// `run` returned; the structured-clone bytes of its value.
    Complete(Vec<u8>),
    /// `run` threw (or the event failed: a limit, a lost isolate).
    Errored(ErrorInfo),
    /// A sleep, retry delay or event wait is pending.
    Suspend,
    /// The engine said the run is no longer current (paused, terminated,
    /// restarted, superseded): nothing more is reported.
    Stopped,
}

impl IsolatePool {
    /// Runs `run(event, step)` of `class_name` for the run registered as
    /// `run_id` and reports how it ended. Never fails: a dispatch error is
    /// an errored run.
    pub(crate) async fn workflow_run(
        &self,
        id: String,
        run_id: u64,
        class_name: &str,
        ticket: &RunTicket,
    ) -> RunEnd {
        let event = WorkerEvent {
            id,
            kind: "workflow".into(),
            payload: serde_json::json!({
                "runId": run_id,
                "className": class_name,
                "workflow": ticket.workflow,
                "instanceId": ticket.instance_id,
                "timestamp": ticket.event.timestamp_ms,
            }),
            buffers: vec![ticket.event.payload.clone()],
        };
        let raw = match self.run_event(event).await {
            Ok(raw) => raw,
            Err(e) => return RunEnd::Errored(ErrorInfo::error(e.to_string())),
        };
        let outcome = raw.rest.get("workflow").cloned().unwrap_or_default();
        let text = |k: &str| {
            outcome
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        match outcome.get("kind").and_then(|k| k.as_str()) {
            Some("complete") => RunEnd::Complete(text("output").into_bytes()),
            Some("errored") => RunEnd::Errored(ErrorInfo::new(text("name"), text("message"))),
            Some("suspend") => RunEnd::Suspend,
            Some("stopped") => RunEnd::Stopped,
            // The event failed before `run` started (the class is missing,
            // its constructor threw).
            _ => RunEnd::Errored(match raw.error {
                Some(e) => {
                    let name = e.stack.split(':').next().unwrap_or("Error").trim();
                    let name = if name.is_empty() || name.contains(' ') {
                        "Error"
                    } else {
                        name
                    };
                    ErrorInfo::new(name, e.message)
                }
                None => ErrorInfo::error("the workflow run ended without an outcome"),
            }),
        }
    }
}

/// Tunables of the runner task.
#[derive(Debug, Clone)]
pub struct WorkflowRunnerOptions {
    pub poll_interval: Duration,
}

impl Default for WorkflowRunnerOptions {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// Starts the runner loop on the current tokio runtime.
pub fn spawn_workflow_runner(
    pool: IsolatePool,
    workflows: Arc<Workflows>,
    clock: SharedClock,
    options: WorkflowRunnerOptions,
) -> TaskHandle {
    let wake = workflows.wake.clone();
    crate::bindings::registry::wake_on_jump(&clock, &wake);
    TaskHandle::spawn(wake, |stop| run_loop(pool, workflows, clock, options, stop))
}

/// Cluster mode: renews the leases of the runs in progress here, so they
/// stay this node's however long a step takes, and lapse within a lease
/// once the node dies.
async fn heartbeat(wf: Arc<Workflows>, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        let held: Vec<(String, String, i64)> = wf
            .runs()
            .values()
            .map(|t| (t.workflow.clone(), t.instance_id.clone(), t.lease))
            .collect();
        let engine = wf.engine.clone();
        match tokio::task::spawn_blocking(move || engine.renew(&held)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(target: "hearth::workflows", "renewing leases: {e}"),
            Err(e) => tracing::warn!(target: "hearth::workflows", "lease task failed: {e}"),
        }
    }
}

async fn run_loop(
    pool: IsolatePool,
    wf: Arc<Workflows>,
    clock: SharedClock,
    options: WorkflowRunnerOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    if let Some(every) = wf.engine.heartbeat_every() {
        tokio::spawn(heartbeat(wf.clone(), every, stop.clone()));
    }
    // Only this worker's workflows: another worker may share the data
    // directory, and its runs are its own runner's.
    let names: Arc<[String]> = wf.classes.keys().cloned().collect();
    loop {
        if *stop.borrow() {
            break;
        }
        let engine = wf.engine.clone();
        let only = names.clone();
        let claimed =
            match tokio::task::spawn_blocking(move || engine.claim_due_of(Some(&only))).await {
                Ok(Ok(tickets)) => tickets,
                Ok(Err(e)) => {
                    tracing::error!(target: "hearth::workflows", "cannot claim due runs: {e}");
                    Vec::new()
                }
                Err(e) => {
                    tracing::error!(target: "hearth::workflows", "claim task failed: {e}");
                    Vec::new()
                }
            };
        let any = !claimed.is_empty();
        for ticket in claimed {
            let Some(class) = wf.classes.get(&ticket.workflow).cloned() else {
                // Not claimed by name, so not expected; its lease lapses
                // and its own runner claims it again.
                tracing::warn!(target: "hearth::workflows", workflow = %ticket.workflow, instance = %ticket.instance_id, "no class runs this workflow here; leaving the instance to its lease");
                continue;
            };
            let pool = pool.clone();
            let wf = wf.clone();
            in_flight.spawn(async move {
                execute(&pool, &wf, &class, ticket).await;
                wf.wake.notify_one();
            });
        }
        while in_flight.try_join_next().is_some() {}
        if any {
            continue;
        }
        let wait = {
            let engine = wf.engine.clone();
            let only = names.clone();
            let next = tokio::task::spawn_blocking(move || engine.next_wake_at_of(Some(&only)))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            match next {
                Some(at) => Duration::from_millis(at.saturating_sub(clock.now_ms())).max(MIN_WAIT),
                None => options.poll_interval,
            }
            .min(options.poll_interval)
        };
        tokio::select! {
            _ = wf.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Runs one claimed run in the pool and records how it ended.
async fn execute(pool: &IsolatePool, wf: &Arc<Workflows>, class: &str, ticket: RunTicket) {
    let run_id = wf.next_run.fetch_add(1, Ordering::Relaxed);
    let tag = format!("workflow-{}-{}", ticket.workflow, ticket.instance_id);
    let snapshot = ticket.clone();
    wf.runs().insert(run_id, ticket);
    let end = pool
        .workflow_run(tag.clone(), run_id, class, &snapshot)
        .await;
    let Some(ticket) = wf.runs().remove(&run_id) else {
        return;
    };
    let engine = wf.engine.clone();
    let recorded = tokio::task::spawn_blocking(move || match end {
        RunEnd::Complete(output) => engine.finish(&ticket, Ok(output)).map(|()| "complete"),
        RunEnd::Errored(error) => engine.finish(&ticket, Err(error)).map(|()| "errored"),
        RunEnd::Suspend => engine.suspend(&ticket).map(|_| "waiting"),
        RunEnd::Stopped => Ok("stopped"),
    })
    .await;
    match recorded {
        Ok(Ok(state)) => {
            tracing::debug!(target: "hearth::workflows", request_id = %tag, "run ended: {state}")
        }
        Ok(Err(WorkflowError::RunStopped { reason, .. })) => {
            tracing::debug!(target: "hearth::workflows", request_id = %tag, "run ended: {reason}")
        }
        Ok(Err(e)) => {
            tracing::error!(target: "hearth::workflows", request_id = %tag, "cannot record the run's end: {e}; it replays when its lease lapses")
        }
        Err(e) => {
            tracing::error!(target: "hearth::workflows", request_id = %tag, "record task failed: {e}")
        }
    }
}
