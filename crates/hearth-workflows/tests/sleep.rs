//! `step.sleep` / `step.sleepUntil`: the instance hibernates and wakes at the
//! journaled time, not a moment earlier.

#[macro_use]
mod common;

use common::*;
use hearth_workflows::native::{RunOutcome, WorkflowStep};
use hearth_workflows::{InstanceStatusKind, SleepOutcome, StepKind, StepState, WorkflowEvent};

#[test]
fn sleep_suspends_and_wakes_at_the_right_time() {
    let fx = fixture();
    fx.create("napper", "");
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.sleep("nap", 3_600_000)?;
        Ok(bytes("rested"))
    };
    assert_eq!(
        fx.tick(run),
        vec![RunOutcome::Suspended {
            wake_at_ms: START_MS + 3_600_000
        }]
    );
    assert_eq!(fx.status("napper"), InstanceStatusKind::Waiting);
    assert_eq!(
        fx.engine.next_wake_at().unwrap(),
        Some(START_MS + 3_600_000)
    );
    fx.clock.advance_ms(3_599_999);
    assert!(fx.tick(run).is_empty());
    fx.clock.advance_ms(1);
    assert_eq!(fx.tick(run), vec![RunOutcome::Complete(bytes("rested"))]);
    let step = &fx.engine.describe(WF, "napper").unwrap().steps[0];
    assert_eq!(
        (
            step.kind,
            step.state,
            step.started_ms,
            step.ended_ms,
            step.wake_at_ms
        ),
        (
            StepKind::Sleep,
            StepState::Elapsed,
            START_MS,
            Some(START_MS + 3_600_000),
            Some(START_MS + 3_600_000)
        )
    );
}

#[test]
fn a_replay_keeps_the_first_wake_time() {
    let fx = fixture();
    fx.create("raw", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    assert_eq!(
        fx.engine.sleep(&mut t, "s", 1_000).unwrap(),
        SleepOutcome::SuspendUntil(START_MS + 1_000)
    );
    fx.engine.suspend(&t).unwrap();
    // A replay that reaches the same sleep later does not start a new second.
    fx.clock.advance_ms(400);
    let mut lease = fx.engine.claim_due().unwrap();
    assert!(lease.is_empty(), "not due yet");
    fx.clock.advance_ms(600);
    lease = fx.engine.claim_due().unwrap();
    let mut t = lease.pop().unwrap();
    assert_eq!(
        fx.engine.sleep(&mut t, "s", 1_000).unwrap(),
        SleepOutcome::Elapsed
    );
}

#[test]
fn zero_sleep_elapses_at_once() {
    let fx = fixture();
    fx.create("z", "");
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.sleep("none", 0)?;
        Ok(Vec::new())
    };
    assert_eq!(fx.tick(run), vec![RunOutcome::Complete(Vec::new())]);
}

#[test]
fn sleep_until_wakes_at_the_given_time() {
    let fx = fixture();
    fx.create("until", "");
    let at = START_MS + 86_400_000;
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.sleep_until("tomorrow", at)?;
        Ok(bytes("morning"))
    };
    assert_eq!(fx.tick(run), vec![RunOutcome::Suspended { wake_at_ms: at }]);
    fx.clock.set_ms(at - 1);
    assert!(fx.tick(run).is_empty());
    fx.clock.set_ms(at + 5_000);
    assert_eq!(fx.tick(run), vec![RunOutcome::Complete(bytes("morning"))]);
}

#[test]
fn sleep_until_the_past_is_refused_with_cloudflares_message() {
    let fx = fixture();
    fx.create("past", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let err = fx
        .engine
        .sleep_until(&mut t, "yesterday", START_MS - 1)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "You can't sleep until a time in the past, time-traveler"
    );
}

#[test]
fn sleep_longer_than_a_year_is_refused() {
    let fx = fixture();
    fx.create("long", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let year = 365 * 24 * 3_600_000u64;
    let err = fx.engine.sleep(&mut t, "forever", year + 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Sleep \"forever\" of {} ms exceeds the maximum of {year} ms",
            year + 1
        )
    );
    assert_eq!(
        fx.engine.sleep(&mut t, "a year", year).unwrap(),
        SleepOutcome::SuspendUntil(START_MS + year)
    );
}

#[test]
fn sleeps_do_not_count_as_steps_towards_the_step_limit() {
    let fx = fixture_with(hearth_workflows::WorkflowLimits {
        max_steps: 1,
        ..Default::default()
    });
    fx.create("lim", "");
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.sleep("a", 0)?;
        step.sleep("b", 0)?;
        step.do_default("one", |_| Ok(bytes("1")))?;
        step.do_default("two", |_| Ok(bytes("2")))
    };
    assert_eq!(
        fx.tick(run),
        vec![RunOutcome::Errored(hearth_workflows::ErrorInfo::new(
            "WorkflowFatalError",
            "The limit of 1 steps has been reached. This limit can be changed in your worker configuration."
        ))]
    );
}

on_postgres!(
    sleep_suspends_and_wakes_at_the_right_time,
    a_replay_keeps_the_first_wake_time,
    zero_sleep_elapses_at_once,
    sleep_until_wakes_at_the_given_time,
    sleep_until_the_past_is_refused_with_cloudflares_message,
    sleep_longer_than_a_year_is_refused,
    sleeps_do_not_count_as_steps_towards_the_step_limit,
);
