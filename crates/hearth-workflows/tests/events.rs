//! `step.waitForEvent` and `instance.sendEvent`: events sent before or after
//! the wait, timeouts, type rules.

#[macro_use]
mod common;

use std::cell::RefCell;

use common::*;
use hearth_workflows::native::{RunOutcome, WorkflowStep};
use hearth_workflows::{
    ErrorInfo, EventOutcome, InstanceStatusKind, ReceivedEvent, StepState, WorkflowEvent,
};

fn approval_run(
    seen: &RefCell<Vec<ReceivedEvent>>,
) -> impl FnMut(
    &str,
    &WorkflowEvent,
    &mut WorkflowStep<'_>,
) -> Result<Vec<u8>, hearth_workflows::native::Thrown>
+ '_ {
    move |_, _, step| {
        let event = step.wait_for_event("await approval", "approval", Some(3_600_000))?;
        seen.borrow_mut().push(event.clone());
        Ok(event.payload)
    }
}

#[test]
fn an_event_sent_after_the_wait_wakes_the_instance_at_once() {
    let fx = fixture();
    fx.create("req", "");
    let seen = RefCell::new(Vec::new());
    assert_eq!(
        fx.tick(approval_run(&seen)),
        vec![RunOutcome::Suspended {
            wake_at_ms: START_MS + 3_600_000
        }]
    );
    assert_eq!(fx.status("req"), InstanceStatusKind::Waiting);
    fx.clock.advance_ms(1_000);
    // An event of another type does not wake it.
    fx.engine.send_event(WF, "req", "other", b"x").unwrap();
    assert!(fx.tick(approval_run(&seen)).is_empty());
    fx.engine.send_event(WF, "req", "approval", b"yes").unwrap();
    assert_eq!(fx.engine.next_wake_at().unwrap(), Some(START_MS + 1_000));
    assert_eq!(
        fx.tick(approval_run(&seen)),
        vec![RunOutcome::Complete(bytes("yes"))]
    );
    assert_eq!(
        seen.borrow().as_slice(),
        &[ReceivedEvent {
            event_type: "approval".into(),
            payload: bytes("yes"),
            timestamp_ms: START_MS + 1_000
        }]
    );
    let details = fx.engine.describe(WF, "req").unwrap();
    assert_eq!(details.steps[0].state, StepState::Received);
    assert_eq!(details.steps[0].event_type.as_deref(), Some("approval"));
    assert_eq!(details.pending_events.len(), 1, "the 'other' event is kept");
}

#[test]
fn an_event_sent_before_the_wait_is_kept_for_it() {
    let fx = fixture();
    fx.create("early", "");
    fx.engine
        .send_event(WF, "early", "approval", b"already")
        .unwrap();
    let seen = RefCell::new(Vec::new());
    assert_eq!(
        fx.tick(approval_run(&seen)),
        vec![RunOutcome::Complete(bytes("already"))]
    );
    assert_eq!(seen.borrow()[0].timestamp_ms, START_MS);
    assert!(
        fx.engine
            .describe(WF, "early")
            .unwrap()
            .pending_events
            .is_empty()
    );
}

#[test]
fn an_event_that_arrives_while_running_is_seen_at_suspend() {
    let fx = fixture();
    fx.create("race", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    assert_eq!(
        fx.engine
            .wait_for_event(&mut t, "w", "approval", None)
            .unwrap(),
        EventOutcome::SuspendUntil(START_MS + 24 * 3_600_000),
        "default timeout is 24 hours"
    );
    fx.engine
        .send_event(WF, "race", "approval", b"now")
        .unwrap();
    assert_eq!(fx.engine.suspend(&t).unwrap(), START_MS, "due at once");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let EventOutcome::Event(e) = fx
        .engine
        .wait_for_event(&mut t, "w", "approval", None)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(e.payload, bytes("now"));
}

#[test]
fn waits_for_the_same_type_take_events_in_order() {
    let fx = fixture();
    fx.create("two", "");
    fx.engine.send_event(WF, "two", "vote", b"1").unwrap();
    fx.engine.send_event(WF, "two", "vote", b"2").unwrap();
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        let a = step.wait_for_event("first", "vote", None)?;
        let b = step.wait_for_event("second", "vote", None)?;
        Ok([a.payload, b.payload].concat())
    };
    assert_eq!(fx.tick(run), vec![RunOutcome::Complete(bytes("12"))]);
}

#[test]
fn a_wait_times_out_with_a_timeout_error() {
    let fx = fixture();
    fx.create("late", "");
    let seen = RefCell::new(Vec::new());
    fx.tick(approval_run(&seen));
    fx.clock.advance_ms(3_599_999);
    assert!(fx.tick(approval_run(&seen)).is_empty());
    fx.clock.advance_ms(1);
    let expected = ErrorInfo::new(
        "WorkflowTimeoutError",
        "Execution timed out after 3600000ms",
    );
    assert_eq!(
        fx.tick(approval_run(&seen)),
        vec![RunOutcome::Errored(expected.clone())]
    );
    let step = &fx.engine.describe(WF, "late").unwrap().steps[0];
    assert_eq!(step.state, StepState::TimedOut);
    assert_eq!(step.error, Some(expected));
    // The instance is finished: events are refused.
    let err = fx
        .engine
        .send_event(WF, "late", "approval", b"")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "(instance.cannot_send_event) Cannot send event to instance since its on a finite state"
    );
}

#[test]
fn a_timed_out_wait_replays_as_timed_out_even_if_an_event_arrives_later() {
    let fx = fixture();
    fx.create("t", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    fx.engine
        .wait_for_event(&mut t, "w", "e", Some(10))
        .unwrap();
    fx.engine.suspend(&t).unwrap();
    fx.clock.advance_ms(10);
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let timed_out = EventOutcome::TimedOut(ErrorInfo::timed_out(10));
    assert_eq!(
        fx.engine
            .wait_for_event(&mut t, "w", "e", Some(10))
            .unwrap(),
        timed_out
    );
    fx.engine.send_event(WF, "t", "e", b"late").unwrap();
    t.rewind();
    assert_eq!(
        fx.engine
            .wait_for_event(&mut t, "w", "e", Some(10))
            .unwrap(),
        timed_out
    );
}

#[test]
fn event_types_follow_the_id_rules() {
    let fx = fixture();
    fx.create("types", "");
    for bad in ["", "has space", "-lead", "a.b", &"x".repeat(101)] {
        let err = fx.engine.send_event(WF, "types", bad, b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Event type \"{bad}\" is invalid: it must be 1 to 100 characters matching ^[a-zA-Z0-9_][a-zA-Z0-9-_]*$"
            )
        );
    }
    fx.engine
        .send_event(WF, "types", &"x".repeat(100), b"")
        .unwrap();
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let err = fx
        .engine
        .wait_for_event(&mut t, "w", "bad type", None)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Event type \"bad type\" is invalid")
    );
}

#[test]
fn event_payload_and_timeout_limits() {
    let fx = fixture();
    fx.create("big", "");
    let err = fx
        .engine
        .send_event(WF, "big", "e", &vec![0; (1 << 20) + 1])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Event payload of 1048577 bytes exceeds the limit of 1048576 bytes"
    );
    let err = fx.engine.send_event(WF, "missing", "e", b"").unwrap_err();
    assert_eq!(err.to_string(), "(instance.not_found) Instance not found");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let err = fx
        .engine
        .wait_for_event(&mut t, "w", "e", Some(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "waitForEvent \"w\" timeout of 0 ms must be between 1 and 31536000000 ms"
    );
}

on_postgres!(
    an_event_sent_after_the_wait_wakes_the_instance_at_once,
    an_event_sent_before_the_wait_is_kept_for_it,
    an_event_that_arrives_while_running_is_seen_at_suspend,
    waits_for_the_same_type_take_events_in_order,
    a_wait_times_out_with_a_timeout_error,
    a_timed_out_wait_replays_as_timed_out_even_if_an_event_arrives_later,
    event_types_follow_the_id_rules,
    event_payload_and_timeout_limits,
);
