//! Replay: `run` re-executes from the top on every claim; a completed step's
//! result comes from the journal and its callback never runs again.

#[macro_use]
mod common;

use std::cell::Cell;

use common::*;
use hearth_workflows::native::{RunOutcome, StepFailure};
use hearth_workflows::{InstanceStatusKind, StepDecision, StepKind, StepState};

#[test]
fn completed_steps_are_cached_across_replays() {
    let fx = fixture();
    fx.create("order-1", "{\"n\":2}");
    let (first_runs, second_runs, top_runs) = (Cell::new(0), Cell::new(0), Cell::new(0));
    let run = |_: &str,
               event: &hearth_workflows::WorkflowEvent,
               step: &mut hearth_workflows::native::WorkflowStep<'_>| {
        top_runs.set(top_runs.get() + 1);
        let a = step.do_default("fetch", |_| {
            first_runs.set(first_runs.get() + 1);
            Ok::<_, StepFailure>(event.payload.clone())
        })?;
        step.sleep("pause", 60_000)?;
        let b = step.do_default("transform", |_| {
            second_runs.set(second_runs.get() + 1);
            Ok::<_, StepFailure>(bytes("done"))
        })?;
        Ok([a, b].concat())
    };

    let outcomes = fx.tick(run);
    assert_eq!(
        outcomes,
        vec![RunOutcome::Suspended {
            wake_at_ms: START_MS + 60_000
        }]
    );
    assert_eq!(fx.status("order-1"), InstanceStatusKind::Waiting);
    assert_eq!((first_runs.get(), second_runs.get()), (1, 0));

    // Not due yet: nothing is claimed.
    fx.clock.advance_ms(59_999);
    assert!(fx.tick(run).is_empty());

    fx.clock.advance_ms(1);
    let outcomes = fx.tick(run);
    assert_eq!(outcomes, vec![RunOutcome::Complete(bytes("{\"n\":2}done"))]);
    assert_eq!(first_runs.get(), 1, "a completed step never runs again");
    assert_eq!(second_runs.get(), 1);
    assert_eq!(top_runs.get(), 2, "code outside steps runs on every replay");

    let status = fx.engine.status(WF, "order-1").unwrap();
    assert_eq!(status.status, InstanceStatusKind::Complete);
    assert_eq!(status.output, Some(bytes("{\"n\":2}done")));
    assert_eq!(status.error, None);
}

#[test]
fn steps_are_identified_by_name_and_occurrence() {
    let fx = fixture();
    fx.create("loop", "");
    let calls = Cell::new(0);
    let run = |_: &str,
               _: &hearth_workflows::WorkflowEvent,
               step: &mut hearth_workflows::native::WorkflowStep<'_>| {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.extend(step.do_default("same name", |_| {
                calls.set(calls.get() + 1);
                Ok::<_, StepFailure>(calls.get().to_string().into_bytes())
            })?);
            step.sleep("tick", 1000)?;
        }
        Ok(out)
    };
    for _ in 0..3 {
        fx.tick(run);
        fx.clock.advance_ms(1000);
    }
    assert_eq!(fx.tick(run), vec![RunOutcome::Complete(bytes("123"))]);
    assert_eq!(calls.get(), 3);
    let details = fx.engine.describe(WF, "loop").unwrap();
    let dos: Vec<_> = details
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Do)
        .map(|s| (s.name.as_str(), s.occurrence, s.output.clone()))
        .collect();
    assert_eq!(
        dos,
        vec![
            ("same name", 1, Some(bytes("1"))),
            ("same name", 2, Some(bytes("2"))),
            ("same name", 3, Some(bytes("3"))),
        ]
    );
    assert!(
        details
            .steps
            .iter()
            .all(|s| s.state == StepState::Succeeded || s.state == StepState::Elapsed)
    );
}

#[test]
fn the_engine_answers_cached_for_a_completed_step_on_a_new_ticket() {
    let fx = fixture();
    fx.create("raw", "p");
    let mut ticket = fx.engine.claim_due().unwrap().pop().unwrap();
    assert_eq!(ticket.event.payload, bytes("p"));
    assert_eq!(ticket.event.instance_id, "raw");
    assert_eq!(ticket.event.timestamp_ms, START_MS);
    let cfg = Default::default();
    let StepDecision::Run {
        occurrence,
        attempt,
        timeout_ms,
    } = fx.engine.step_begin(&mut ticket, "a", &cfg).unwrap()
    else {
        panic!("expected Run");
    };
    assert_eq!((occurrence, attempt, timeout_ms), (1, 1, 600_000));
    fx.engine.step_success(&ticket, "a", 1, b"result").unwrap();
    fx.engine.sleep(&mut ticket, "s", 5).unwrap();
    fx.engine.suspend(&ticket).unwrap();

    fx.clock.advance_ms(5);
    let mut ticket = fx.engine.claim_due().unwrap().pop().unwrap();
    assert_eq!(
        fx.engine.step_begin(&mut ticket, "a", &cfg).unwrap(),
        StepDecision::Cached(bytes("result"))
    );
    // Reporting on the completed step again is a runner bug, refused.
    let err = fx.engine.step_success(&ticket, "a", 1, b"x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "step \"a\" (occurrence 1) has no attempt in progress"
    );
}

on_postgres!(
    completed_steps_are_cached_across_replays,
    steps_are_identified_by_name_and_occurrence,
    the_engine_answers_cached_for_a_completed_step_on_a_new_ticket,
);
