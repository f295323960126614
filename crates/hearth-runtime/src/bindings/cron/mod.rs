//! The cron task: runs the worker's `scheduled()` handler when
//! [`CronScheduler`] says a trigger is due.
//!
//! Retries: Cloudflare may retry a failed cron invocation unless the handler
//! called `controller.noRetry()`, and records the first failing `waitUntil`
//! promise as the run's status. Here a failed run (an exception, a rejected
//! `waitUntil` promise, a limit hit) is retried up to [`CronOptions::max_retries`]
//! times with a doubling delay from [`CronOptions::retry_base`]; it is marked
//! done after success, after `noRetry()`, after the last retry, or when a
//! newer slot of the same cron becomes due (a run is owed once). A crash
//! before `mark_done` repeats the run once on start.
//!
//! Cluster mode: every node runs this loop for every worker; before a slot
//! runs, [`CronOptions::claims`] is asked for it, and only the node that
//! holds the claim runs it (the others record it as handled). A slot held
//! by a live node that has not finished is asked about again each poll, so
//! it is taken over if that node dies.
//!
//! Runs happen one at a time, in config order. Every deadline reads the
//! injected clock; the poll interval bounds how late a clock jump (a test
//! clock) is noticed, and [`TaskHandle::wake`] makes the loop look at once.

mod kind;

pub use kind::CronKind;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::bindings::registry::TaskHandle;
use hearth_core::SharedClock;
use hearth_cron::{Claim, CronScheduler, DueRun, SlotClaims};
use tokio::sync::{Notify, watch};

use crate::pool::IsolatePool;

/// Retries of a failed run before it is given up.
pub const DEFAULT_CRON_RETRIES: u32 = 3;
/// Delay before the first retry; doubled for each next one.
pub const DEFAULT_CRON_RETRY_BASE: Duration = Duration::from_secs(10);
/// Longest sleep between looks at the clock.
pub const DEFAULT_CRON_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct CronOptions {
    pub max_retries: u32,
    pub retry_base: Duration,
    pub poll_interval: Duration,
    /// Cluster mode: the store that hands each slot to one node.
    pub claims: Option<Arc<dyn SlotClaims>>,
}

impl Default for CronOptions {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_CRON_RETRIES,
            retry_base: DEFAULT_CRON_RETRY_BASE,
            poll_interval: DEFAULT_CRON_POLL,
            claims: None,
        }
    }
}

/// Starts the cron loop on the current tokio runtime. A run missed while
/// the server was down is due at once, so it fires on start.
pub fn spawn_cron(
    pool: IsolatePool,
    scheduler: Arc<CronScheduler>,
    clock: SharedClock,
    options: CronOptions,
) -> TaskHandle {
    let wake = Arc::new(Notify::new());
    crate::bindings::registry::wake_on_jump(&clock, &wake);
    let notified = wake.clone();
    TaskHandle::spawn(wake, move |stop| {
        run(pool, scheduler, clock, options, notified, stop)
    })
}

struct Retry {
    failures: u32,
    at_ms: u64,
}

async fn run(
    pool: IsolatePool,
    scheduler: Arc<CronScheduler>,
    clock: SharedClock,
    options: CronOptions,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    // Failed runs waiting for their retry, by cron; in memory only, so a
    // restart retries at once.
    let mut retries: HashMap<String, (u64, Retry)> = HashMap::new();
    let mut seq: u64 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let now = clock.now_ms();
        for run in scheduler.due(now) {
            if *stop.borrow() {
                return;
            }
            let pending = retries
                .get(&run.cron)
                .filter(|(slot, _)| *slot == run.scheduled_time_ms);
            if pending.is_some_and(|(_, r)| r.at_ms > now) {
                continue;
            }
            let failures = pending.map(|(_, r)| r.failures).unwrap_or(0);
            if let Some(claims) = &options.claims {
                match claim(claims, scheduler.worker(), &run).await {
                    Claim::Mine => {}
                    Claim::Taken => {
                        retries.remove(&run.cron);
                        mark_done(&scheduler, None, run).await;
                        continue;
                    }
                    Claim::Busy => {
                        let at_ms = now.saturating_add(options.poll_interval.as_millis() as u64);
                        retries.insert(
                            run.cron.clone(),
                            (run.scheduled_time_ms, Retry { failures, at_ms }),
                        );
                        continue;
                    }
                }
            }
            seq += 1;
            let id = format!("cron-{}-{seq}", run.scheduled_time_ms);
            let outcome = pool
                .scheduled(id.clone(), &run.cron, run.scheduled_time_ms)
                .await;
            let give_up = match &outcome.error {
                None => {
                    tracing::info!(target: "hearth::cron", request_id = %id, cron = %run.cron, scheduled_time = run.scheduled_time_ms, "scheduled() ran");
                    true
                }
                Some(e) if outcome.no_retry => {
                    tracing::warn!(target: "hearth::cron", request_id = %id, cron = %run.cron, "scheduled() failed and called noRetry(): {e}");
                    true
                }
                Some(e) if failures >= options.max_retries => {
                    tracing::error!(target: "hearth::cron", request_id = %id, cron = %run.cron, "scheduled() failed after {failures} retries; giving up this run: {e}");
                    true
                }
                Some(e) => {
                    let delay = options.retry_base.saturating_mul(1 << failures.min(16));
                    tracing::warn!(target: "hearth::cron", request_id = %id, cron = %run.cron, "scheduled() failed; retrying in {}s: {e}", delay.as_secs());
                    retries.insert(
                        run.cron.clone(),
                        (
                            run.scheduled_time_ms,
                            Retry {
                                failures: failures + 1,
                                at_ms: clock.now_ms().saturating_add(delay.as_millis() as u64),
                            },
                        ),
                    );
                    false
                }
            };
            if give_up {
                retries.remove(&run.cron);
                mark_done(&scheduler, options.claims.as_ref(), run).await;
            }
        }
        let now = clock.now_ms();
        // Anything still due now is waiting for its retry; wake for the
        // next slot or the next retry, whichever is first.
        let slot = scheduler.next_wake(now).filter(|&t| t > now);
        let retry = retries.values().map(|(_, r)| r.at_ms).min();
        let next = match (slot, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = match next {
            Some(t) => Duration::from_millis(t.saturating_sub(now)),
            None => options.poll_interval,
        }
        .min(options.poll_interval)
        .max(Duration::from_millis(5));
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Asks the cluster for `run`; a store that does not answer counts as
/// `Busy`, so the slot is asked about again rather than run twice or lost.
async fn claim(claims: &Arc<dyn SlotClaims>, worker: &str, run: &DueRun) -> Claim {
    let (c, w, r) = (claims.clone(), worker.to_owned(), run.clone());
    match tokio::task::spawn_blocking(move || c.claim(&w, &r)).await {
        Ok(Ok(claim)) => {
            if claim != Claim::Mine {
                tracing::debug!(target: "hearth::cron", cron = %run.cron, scheduled_time = run.scheduled_time_ms, "slot {claim:?} on another node");
            }
            claim
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "hearth::cron", cron = %run.cron, "{e}; asking again");
            Claim::Busy
        }
        Err(e) => {
            tracing::error!(target: "hearth::cron", "claim task failed: {e}");
            Claim::Busy
        }
    }
}

/// Records `run` as handled: in the cluster first (so no node takes it
/// over), then in this node's cursor.
async fn mark_done(
    scheduler: &Arc<CronScheduler>,
    claims: Option<&Arc<dyn SlotClaims>>,
    run: DueRun,
) {
    let s = scheduler.clone();
    let claims = claims.cloned();
    let cron = run.cron.clone();
    let record = move || {
        if let Some(c) = &claims {
            c.done(s.worker(), &run)?;
        }
        s.mark_done(&run)
    };
    match tokio::task::spawn_blocking(record).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(target: "hearth::cron", cron = %cron, "cannot record the run: {e}; it will run again")
        }
        Err(e) => tracing::error!(target: "hearth::cron", "record task failed: {e}"),
    }
}
