//! Instance control: pause, resume, terminate, restart, status transitions
//! and shapes, list.

#[macro_use]
mod common;

use std::cell::Cell;

use common::*;
use hearth_workflows::native::{RunOutcome, StepFailure, WorkflowStep};
use hearth_workflows::{
    CreateOptions, InstanceStatusKind as S, ListOptions, StepDecision, StopReason, WorkflowError,
    WorkflowEvent,
};

fn sleepy(
    _: &str,
    _: &WorkflowEvent,
    step: &mut WorkflowStep<'_>,
) -> Result<Vec<u8>, hearth_workflows::native::Thrown> {
    step.do_default("a", |_| Ok(bytes("a")))?;
    step.sleep("nap", 10_000)?;
    step.do_default("b", |_| Ok(bytes("b")))
}

#[test]
fn status_moves_queued_running_waiting_complete() {
    let fx = fixture();
    fx.create("i", "");
    assert_eq!(fx.status("i"), S::Queued);
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    assert_eq!(fx.status("i"), S::Running);
    fx.engine.sleep(&mut t, "s", 5).unwrap();
    fx.engine.suspend(&t).unwrap();
    assert_eq!(fx.status("i"), S::Waiting);
    fx.clock.advance_ms(5);
    let t = fx.engine.claim_due().unwrap().pop().unwrap();
    assert_eq!(fx.status("i"), S::Running);
    fx.engine.finish(&t, Ok(bytes("{}"))).unwrap();
    let status = fx.engine.status(WF, "i").unwrap();
    assert_eq!(
        (status.status, status.output, status.error),
        (S::Complete, Some(bytes("{}")), None)
    );
    let got = fx.engine.get(WF, "i").unwrap();
    assert_eq!(
        (got.started_ms, got.ended_ms),
        (Some(START_MS), Some(START_MS + 5))
    );
}

#[test]
fn pausing_a_waiting_instance_freezes_its_sleep_until_resume() {
    let fx = fixture();
    fx.create("p", "");
    assert_eq!(
        fx.tick(sleepy),
        vec![RunOutcome::Suspended {
            wake_at_ms: START_MS + 10_000
        }]
    );
    fx.clock.advance_ms(4_000);
    fx.engine.pause(WF, "p").unwrap();
    assert_eq!(fx.status("p"), S::Paused);
    fx.clock.advance_ms(60_000);
    assert!(
        fx.tick(sleepy).is_empty(),
        "a paused instance is never claimed"
    );
    fx.engine.pause(WF, "p").unwrap(); // pausing again changes nothing
    fx.engine.resume(WF, "p").unwrap();
    assert_eq!(fx.status("p"), S::Waiting);
    // 6 s of the sleep were left when it paused.
    assert_eq!(
        fx.engine.next_wake_at().unwrap(),
        Some(START_MS + 64_000 + 6_000)
    );
    fx.clock.advance_ms(5_999);
    assert!(fx.tick(sleepy).is_empty());
    fx.clock.advance_ms(1);
    assert_eq!(fx.tick(sleepy), vec![RunOutcome::Complete(bytes("b"))]);
}

#[test]
fn pausing_a_running_instance_takes_effect_at_the_next_step() {
    let fx = fixture();
    fx.create("r", "");
    let b_runs = Cell::new(0);
    let engine = &fx.engine;
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.do_default("a", |_| {
            // Paused while this step runs: it still completes.
            engine.pause(WF, "r").unwrap();
            assert_eq!(engine.status(WF, "r").unwrap().status, S::WaitingForPause);
            Ok(bytes("a"))
        })?;
        step.do_default("b", |_| {
            b_runs.set(b_runs.get() + 1);
            Ok(bytes("b"))
        })
    };
    assert_eq!(fx.tick(run), vec![RunOutcome::Stopped(StopReason::Paused)]);
    assert_eq!(fx.status("r"), S::Paused);
    assert_eq!(b_runs.get(), 0);
    fx.engine.resume(WF, "r").unwrap();
    assert_eq!(fx.status("r"), S::Waiting);
    let run2 = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.do_default("a", |_| panic!("a is cached"))?;
        step.do_default("b", |_| Ok(bytes("b")))
    };
    assert_eq!(fx.tick(run2), vec![RunOutcome::Complete(bytes("b"))]);
}

#[test]
fn resume_cancels_a_pending_pause() {
    let fx = fixture();
    fx.create("c", "");
    let _t = fx.engine.claim_due().unwrap();
    fx.engine.pause(WF, "c").unwrap();
    assert_eq!(fx.status("c"), S::WaitingForPause);
    fx.engine.resume(WF, "c").unwrap();
    assert_eq!(fx.status("c"), S::Running);
}

#[test]
fn a_paused_queued_instance_resumes_to_queued() {
    let fx = fixture();
    fx.create("q", "");
    fx.engine.pause(WF, "q").unwrap();
    assert_eq!(fx.status("q"), S::Paused);
    assert!(fx.engine.claim_due().unwrap().is_empty());
    fx.engine.resume(WF, "q").unwrap();
    assert_eq!(fx.status("q"), S::Queued);
    assert_eq!(fx.engine.claim_due().unwrap().len(), 1);
}

#[test]
fn suspending_with_a_pause_pending_pauses() {
    let fx = fixture();
    fx.create("sp", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    fx.engine.sleep(&mut t, "s", 100).unwrap();
    fx.engine.pause(WF, "sp").unwrap();
    fx.engine.suspend(&t).unwrap();
    assert_eq!(fx.status("sp"), S::Paused);
}

#[test]
fn terminate_stops_a_run_and_refuses_finished_instances() {
    let fx = fixture();
    fx.create("t", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    fx.engine.terminate(WF, "t").unwrap();
    assert_eq!(fx.status("t"), S::Terminated);
    let err = fx
        .engine
        .step_begin(&mut t, "x", &Default::default())
        .unwrap_err();
    assert!(matches!(
        err,
        WorkflowError::RunStopped {
            reason: StopReason::Terminated,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "this run of instance t is no longer current: the instance was terminated"
    );
    fx.create("done", "");
    fx.create("bad", "");
    for t in fx.engine.claim_due().unwrap() {
        let result = if t.instance_id == "done" {
            Ok(Vec::new())
        } else {
            Err(hearth_workflows::ErrorInfo::error("x"))
        };
        fx.engine.finish(&t, result).unwrap();
    }
    assert_eq!(
        (fx.status("done"), fx.status("bad")),
        (S::Complete, S::Errored)
    );
    for id in ["t", "done", "bad"] {
        let err = fx.engine.terminate(WF, id).unwrap_err();
        assert_eq!(
            err.to_string(),
            "(instance.cannot_terminate) Cannot terminate instance since its on a finite state"
        );
    }
    // A terminated waiting instance is never woken.
    fx.create("w", "");
    fx.tick(sleepy);
    fx.engine.terminate(WF, "w").unwrap();
    fx.clock.advance_ms(1_000_000);
    assert!(fx.tick(sleepy).is_empty());
    let status = fx.engine.status(WF, "w").unwrap();
    assert_eq!(
        (status.status, status.output, status.error),
        (S::Terminated, None, None)
    );
}

#[test]
fn restart_clears_the_journal_and_runs_everything_again() {
    let fx = fixture();
    fx.create("rs", "params");
    let calls = Cell::new(0);
    let run = |_: &str, e: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        let v = step.do_default("count", |_| {
            calls.set(calls.get() + 1);
            Ok(calls.get().to_string().into_bytes())
        })?;
        if calls.get() == 1 {
            step.do_step(
                "fail",
                &hearth_workflows::StepConfig::default().retries(
                    0,
                    0,
                    hearth_workflows::Backoff::Constant,
                ),
                |_| Err(StepFailure::error("first time fails")),
            )?;
        }
        Ok([e.payload.clone(), v].concat())
    };
    assert!(matches!(fx.tick(run)[0], RunOutcome::Errored(_)));
    let errored = fx.engine.status(WF, "rs").unwrap();
    assert_eq!(errored.error.unwrap().message, "first time fails");
    fx.engine.send_event(WF, "rs", "e", b"x").unwrap_err();
    fx.engine.restart(WF, "rs").unwrap();
    let status = fx.engine.status(WF, "rs").unwrap();
    assert_eq!(
        (status.status, status.output, status.error),
        (S::Queued, None, None)
    );
    assert!(fx.engine.describe(WF, "rs").unwrap().steps.is_empty());
    assert_eq!(fx.tick(run), vec![RunOutcome::Complete(bytes("params2"))]);
    assert_eq!(calls.get(), 2);
}

#[test]
fn restart_cuts_off_the_run_in_progress() {
    let fx = fixture();
    fx.create("cut", "");
    let mut old = fx.engine.claim_due().unwrap().pop().unwrap();
    let StepDecision::Run { occurrence, .. } = fx
        .engine
        .step_begin(&mut old, "a", &Default::default())
        .unwrap()
    else {
        panic!()
    };
    fx.engine.restart(WF, "cut").unwrap();
    let err = fx
        .engine
        .step_success(&old, "a", occurrence, b"late")
        .unwrap_err();
    assert!(matches!(
        err,
        WorkflowError::RunStopped {
            reason: StopReason::Restarted,
            ..
        }
    ));
    assert!(fx.engine.describe(WF, "cut").unwrap().steps.is_empty());
    assert_eq!(fx.engine.claim_due().unwrap().len(), 1);
}

#[test]
fn control_calls_on_a_missing_instance_say_not_found() {
    let fx = fixture();
    let msg = "(instance.not_found) Instance not found";
    assert_eq!(fx.engine.get(WF, "nope").unwrap_err().to_string(), msg);
    assert_eq!(fx.engine.status(WF, "nope").unwrap_err().to_string(), msg);
    assert_eq!(fx.engine.pause(WF, "nope").unwrap_err().to_string(), msg);
    assert_eq!(fx.engine.resume(WF, "nope").unwrap_err().to_string(), msg);
    assert_eq!(
        fx.engine.terminate(WF, "nope").unwrap_err().to_string(),
        msg
    );
    assert_eq!(fx.engine.restart(WF, "nope").unwrap_err().to_string(), msg);
    assert_eq!(fx.engine.describe(WF, "nope").unwrap_err().to_string(), msg);
    // Instances belong to their Workflow.
    fx.create("mine", "");
    assert_eq!(
        fx.engine
            .get("other-workflow", "mine")
            .unwrap_err()
            .to_string(),
        msg
    );
}

#[test]
fn list_filters_by_status_and_pages_newest_first() {
    let fx = fixture();
    for i in 0..5 {
        fx.create(&format!("i{i}"), "");
        fx.clock.advance_ms(1);
    }
    fx.engine.terminate(WF, "i1").unwrap();
    fx.engine.terminate(WF, "i3").unwrap();
    fx.engine
        .create("other", CreateOptions::new().id("x"))
        .unwrap();

    let page = fx
        .engine
        .list(
            WF,
            &ListOptions {
                limit: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    let ids: Vec<_> = page.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["i4", "i3"]);
    let next = fx
        .engine
        .list(
            WF,
            &ListOptions {
                limit: Some(2),
                cursor: page.cursor.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let ids: Vec<_> = next.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["i2", "i1"]);
    let last = fx
        .engine
        .list(
            WF,
            &ListOptions {
                limit: Some(2),
                cursor: next.cursor,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(last.instances.len(), 1);
    assert_eq!(last.cursor, None);

    let terminated = fx
        .engine
        .list(
            WF,
            &ListOptions {
                status: Some(S::Terminated),
                ..Default::default()
            },
        )
        .unwrap();
    let ids: Vec<_> = terminated.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["i3", "i1"]);

    let err = fx
        .engine
        .list(
            WF,
            &ListOptions {
                cursor: Some("garbage".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "Invalid cursor \"garbage\"");
}

#[test]
fn status_names_are_cloudflares() {
    let names: Vec<_> = S::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "queued",
            "running",
            "paused",
            "errored",
            "terminated",
            "complete",
            "waiting",
            "waitingForPause",
            "unknown"
        ]
    );
    assert_eq!(S::parse("bogus"), S::Unknown);
}

on_postgres!(
    status_moves_queued_running_waiting_complete,
    pausing_a_waiting_instance_freezes_its_sleep_until_resume,
    pausing_a_running_instance_takes_effect_at_the_next_step,
    resume_cancels_a_pending_pause,
    a_paused_queued_instance_resumes_to_queued,
    suspending_with_a_pause_pending_pauses,
    terminate_stops_a_run_and_refuses_finished_instances,
    restart_clears_the_journal_and_runs_everything_again,
    restart_cuts_off_the_run_in_progress,
    control_calls_on_a_missing_instance_say_not_found,
    list_filters_by_status_and_pages_newest_first,
);
