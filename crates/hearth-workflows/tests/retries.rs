//! `step.do` retries: limit (default 5), delay (default 10 s), backoff
//! constant = d, linear = d*n, exponential = d*2^(n-1); NonRetryableError;
//! timeouts recorded as failed attempts.

#[macro_use]
mod common;

use std::cell::Cell;

use common::*;
use hearth_workflows::native::{RunOutcome, StepFailure, Thrown, WorkflowStep};
use hearth_workflows::{
    Backoff, ErrorInfo, FailureOutcome, InstanceStatusKind, RetryConfig, StepConfig, StepDecision,
    StepState, WorkflowEvent,
};

/// Runs an always-failing step under `config` to exhaustion and returns the
/// wait before each retry.
fn retry_delays(config: StepConfig) -> (Vec<u64>, u32, hearth_workflows::InstanceStatus) {
    let fx = fixture();
    fx.create("flaky", "");
    let attempts = Cell::new(0);
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.do_step("call api", &config, |attempt| {
            attempts.set(attempts.get() + 1);
            assert_eq!(attempt, attempts.get());
            Err(StepFailure::error(format!("boom {attempt}")))
        })
    };
    let mut delays = Vec::new();
    loop {
        let before = fx.clock.now_ms();
        match fx.tick(run).pop().unwrap() {
            RunOutcome::Suspended { wake_at_ms } => {
                delays.push(wake_at_ms - before);
                // One millisecond early: not yet due.
                fx.clock.set_ms(wake_at_ms - 1);
                assert!(fx.tick(run).is_empty(), "claimed before its retry time");
                fx.clock.set_ms(wake_at_ms);
            }
            RunOutcome::Errored(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    (
        delays,
        attempts.get(),
        fx.engine.status(WF, "flaky").unwrap(),
    )
}

use hearth_core::Clock;

#[test]
fn default_is_five_retries_exponential_from_ten_seconds() {
    let (delays, attempts, status) = retry_delays(StepConfig::default());
    assert_eq!(delays, vec![10_000, 20_000, 40_000, 80_000, 160_000]);
    assert_eq!(attempts, 6, "the first attempt plus 5 retries");
    assert_eq!(status.status, InstanceStatusKind::Errored);
    assert_eq!(status.error, Some(ErrorInfo::new("Error", "boom 6")));
    assert_eq!(status.output, None);
}

#[test]
fn linear_backoff_multiplies_by_the_retry_number() {
    let cfg = StepConfig::default().retries(3, 1_000, Backoff::Linear);
    let (delays, attempts, _) = retry_delays(cfg);
    assert_eq!(delays, vec![1_000, 2_000, 3_000]);
    assert_eq!(attempts, 4);
}

#[test]
fn constant_backoff_waits_the_same_each_time() {
    let cfg = StepConfig::default().retries(2, 5_000, Backoff::Constant);
    let (delays, attempts, _) = retry_delays(cfg);
    assert_eq!(delays, vec![5_000, 5_000]);
    assert_eq!(attempts, 3);
}

#[test]
fn limit_zero_means_a_single_attempt() {
    let cfg = StepConfig::default().retries(0, 5_000, Backoff::Constant);
    let (delays, attempts, status) = retry_delays(cfg);
    assert!(delays.is_empty());
    assert_eq!(attempts, 1);
    assert_eq!(status.status, InstanceStatusKind::Errored);
}

#[test]
fn backoff_formulas() {
    let d = |backoff| RetryConfig {
        limit: 10,
        delay_ms: 100,
        backoff,
    };
    let series = |cfg: RetryConfig| {
        (1..=4)
            .map(|n| cfg.delay_after_attempt(n))
            .collect::<Vec<_>>()
    };
    assert_eq!(series(d(Backoff::Constant)), vec![100, 100, 100, 100]);
    assert_eq!(series(d(Backoff::Linear)), vec![100, 200, 300, 400]);
    assert_eq!(series(d(Backoff::Exponential)), vec![100, 200, 400, 800]);
    // Never overflows.
    assert_eq!(d(Backoff::Exponential).delay_after_attempt(200), u64::MAX);
}

#[test]
fn a_step_that_succeeds_on_retry_returns_its_value_and_keeps_attempt_history() {
    let fx = fixture();
    fx.create("eventually", "");
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.do_step(
            "s",
            &StepConfig::default().retries(3, 1_000, Backoff::Constant),
            |attempt| {
                if attempt < 3 {
                    Err(StepFailure::error(format!("try {attempt}")))
                } else {
                    Ok(bytes("ok"))
                }
            },
        )
    };
    for _ in 0..2 {
        assert!(matches!(fx.tick(run)[0], RunOutcome::Suspended { .. }));
        fx.clock.advance_ms(1_000);
    }
    assert_eq!(fx.tick(run), vec![RunOutcome::Complete(bytes("ok"))]);
    let step = &fx.engine.describe(WF, "eventually").unwrap().steps[0];
    assert_eq!(step.state, StepState::Succeeded);
    let summary: Vec<_> = step
        .attempts
        .iter()
        .map(|a| {
            (
                a.attempt,
                a.started_ms - START_MS,
                a.success,
                a.error.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 0, Some(false), Some(ErrorInfo::error("try 1"))),
            (2, 1_000, Some(false), Some(ErrorInfo::error("try 2"))),
            (3, 2_000, Some(true), None),
        ]
    );
    assert_eq!(step.started_ms, START_MS);
    assert_eq!(step.ended_ms, Some(START_MS + 2_000));
}

#[test]
fn non_retryable_error_fails_the_instance_at_once() {
    let fx = fixture();
    fx.create("fatal", "");
    let attempts = Cell::new(0);
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.do_default("charge", |_| {
            attempts.set(attempts.get() + 1);
            Err(StepFailure::non_retryable("card declined"))
        })
    };
    assert_eq!(
        fx.tick(run),
        vec![RunOutcome::Errored(ErrorInfo::new(
            "NonRetryableError",
            "card declined"
        ))]
    );
    assert_eq!(attempts.get(), 1);
    let status = fx.engine.status(WF, "fatal").unwrap();
    assert_eq!(status.status, InstanceStatusKind::Errored);
    assert_eq!(
        status.error,
        Some(ErrorInfo::new("NonRetryableError", "card declined"))
    );
    assert_eq!(
        fx.engine.next_wake_at().unwrap(),
        None,
        "no retry scheduled"
    );
}

#[test]
fn a_caught_step_failure_lets_run_continue_and_replays_as_the_same_error() {
    let fx = fixture();
    fx.create("caught", "");
    let fallback_runs = Cell::new(0);
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        let first = match step.do_step(
            "primary",
            &StepConfig::default().retries(0, 0, Backoff::Constant),
            |_| Err(StepFailure::error("down")),
        ) {
            Err(Thrown::Error(e)) => e.message.into_bytes(),
            other => other?,
        };
        step.sleep("later", 10)?;
        let second = step.do_default("fallback", |_| {
            fallback_runs.set(fallback_runs.get() + 1);
            Ok(bytes("+fallback"))
        })?;
        Ok([first, second].concat())
    };
    assert!(matches!(fx.tick(run)[0], RunOutcome::Suspended { .. }));
    fx.clock.advance_ms(10);
    assert_eq!(
        fx.tick(run),
        vec![RunOutcome::Complete(bytes("down+fallback"))]
    );
    assert_eq!(fallback_runs.get(), 1);
}

#[test]
fn an_attempt_over_its_timeout_is_recorded_as_a_timeout_failure() {
    let fx = fixture();
    fx.create("slow", "");
    let clock = fx.clock.clone();
    let cfg = StepConfig::default()
        .timeout_ms(1_000)
        .retries(1, 500, Backoff::Constant);
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.do_step("slow call", &cfg, |_| {
            clock.advance_ms(1_001);
            Ok(bytes("too late"))
        })
    };
    assert!(matches!(fx.tick(run)[0], RunOutcome::Suspended { .. }));
    fx.clock.advance_ms(500);
    let expected = ErrorInfo::new("WorkflowTimeoutError", "Execution timed out after 1000ms");
    assert_eq!(fx.tick(run), vec![RunOutcome::Errored(expected.clone())]);
    let step = &fx.engine.describe(WF, "slow").unwrap().steps[0];
    assert_eq!(step.state, StepState::Failed);
    assert_eq!(step.attempts.len(), 2);
    assert!(
        step.attempts
            .iter()
            .all(|a| a.error == Some(expected.clone()))
    );
    assert_eq!(step.output, None);
}

#[test]
fn retry_wait_is_answered_from_the_journal_on_early_replay() {
    let fx = fixture();
    fx.create("raw", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let cfg = StepConfig::default();
    let StepDecision::Run { occurrence, .. } = fx.engine.step_begin(&mut t, "x", &cfg).unwrap()
    else {
        panic!()
    };
    let outcome = fx
        .engine
        .step_failure(&t, "x", occurrence, &ErrorInfo::error("e"), false)
        .unwrap();
    assert_eq!(
        outcome,
        FailureOutcome::Retry {
            at_ms: START_MS + 10_000
        }
    );
    // A replay that reaches the step before the retry time is told to wait.
    let mut again = t.clone();
    again.rewind();
    assert_eq!(
        fx.engine.step_begin(&mut again, "x", &cfg).unwrap(),
        StepDecision::Wait {
            until_ms: START_MS + 10_000
        }
    );
    assert_eq!(fx.engine.suspend(&t).unwrap(), START_MS + 10_000);
    assert_eq!(fx.status("raw"), InstanceStatusKind::Waiting);
    assert_eq!(fx.engine.next_wake_at().unwrap(), Some(START_MS + 10_000));
}

on_postgres!(
    default_is_five_retries_exponential_from_ten_seconds,
    linear_backoff_multiplies_by_the_retry_number,
    constant_backoff_waits_the_same_each_time,
    limit_zero_means_a_single_attempt,
    a_step_that_succeeds_on_retry_returns_its_value_and_keeps_attempt_history,
    non_retryable_error_fails_the_instance_at_once,
    a_caught_step_failure_lets_run_continue_and_replays_as_the_same_error,
    an_attempt_over_its_timeout_is_recorded_as_a_timeout_failure,
    retry_wait_is_answered_from_the_journal_on_early_replay,
);
