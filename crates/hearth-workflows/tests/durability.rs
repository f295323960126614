//! Crash safety: journal writes are durable when acknowledged, runs whose
//! process died are claimed again once their lease ends, completed steps are
//! never re-run, and sleeps survive restarts. Includes a real SIGKILL.

#[macro_use]
mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use hearth_core::{Clock, ManualClock, SystemClock};
use hearth_workflows::native::{self, RunOutcome, Thrown, WorkflowStep};
use hearth_workflows::{
    CreateOptions, ErrorInfo, InstanceStatusKind as S, StepDecision, StepState, WorkflowEngine,
    WorkflowEvent, WorkflowLimits,
};

#[test]
fn a_sleeping_instance_survives_reopen_and_wakes_on_time() {
    let fx = fixture();
    fx.create("nap", "");
    let run = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.do_default("before", |_| Ok(bytes("x")))?;
        step.sleep("nap", 60_000)?;
        Ok(bytes("woke"))
    };
    fx.tick(run);
    drop(fx.engine);
    let engine = WorkflowEngine::open(
        fx.dir.path().join("workflows.sqlite"),
        fx.clock.shared(),
        WorkflowLimits::default(),
    )
    .unwrap();
    assert_eq!(engine.status(WF, "nap").unwrap().status, S::Waiting);
    assert_eq!(engine.next_wake_at().unwrap(), Some(START_MS + 60_000));
    fx.clock.advance_ms(60_000);
    let run2 = |_: &str, _: &WorkflowEvent, step: &mut WorkflowStep<'_>| {
        step.do_default("before", |_| panic!("completed before the restart"))?;
        step.sleep("nap", 60_000)?;
        Ok(bytes("woke"))
    };
    let out = native::run_due(&engine, run2).unwrap();
    assert_eq!(out[0].2, RunOutcome::Complete(bytes("woke")));
}

#[test]
fn a_run_whose_runner_died_is_claimed_again_when_its_lease_ends() {
    let fx = fixture();
    fx.create("orphan", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let StepDecision::Run { occurrence, .. } = fx
        .engine
        .step_begin(&mut t, "done", &Default::default())
        .unwrap()
    else {
        panic!()
    };
    fx.engine
        .step_success(&t, "done", occurrence, b"kept")
        .unwrap();
    // The runner "dies" here: no finish, no suspend.
    drop(t);
    let engine = fx.reopen();
    assert_eq!(engine.status(WF, "orphan").unwrap().status, S::Running);
    assert!(engine.claim_due().unwrap().is_empty(), "lease still held");
    assert_eq!(engine.next_wake_at().unwrap(), Some(START_MS + 120_000));
    fx.clock.advance_ms(120_000);
    let out = native::run_due(&engine, |_, _, step| {
        let kept = step.do_default("done", |_| panic!("never re-run"))?;
        let more = step.do_default("next", |_| Ok(bytes("+next")))?;
        Ok([kept, more].concat())
    })
    .unwrap();
    assert_eq!(out[0].2, RunOutcome::Complete(bytes("kept+next")));
}

#[test]
fn an_attempt_cut_off_by_a_crash_counts_as_failed_and_is_retried() {
    let fx = fixture();
    fx.create("cut", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let cfg = hearth_workflows::StepConfig::default().timeout_ms(1_000);
    assert!(matches!(
        fx.engine.step_begin(&mut t, "work", &cfg).unwrap(),
        StepDecision::Run { attempt: 1, .. }
    ));
    // Dies mid-attempt; the lease covers the step timeout plus the lease.
    let engine = fx.reopen();
    fx.clock.advance_ms(1_000 + 120_000 - 1);
    assert!(engine.claim_due().unwrap().is_empty());
    fx.clock.advance_ms(1);
    let mut t = engine.claim_due().unwrap().pop().unwrap();
    assert!(matches!(
        engine.step_begin(&mut t, "work", &cfg).unwrap(),
        StepDecision::Run { attempt: 2, .. }
    ));
    let step = &engine.describe(WF, "cut").unwrap().steps[0];
    assert_eq!(step.state, StepState::Running);
    assert_eq!(step.attempts[0].success, Some(false));
    assert_eq!(step.attempts[0].error, Some(ErrorInfo::interrupted()));
    assert_eq!(
        ErrorInfo::interrupted().to_string(),
        "WorkflowInternalError: Attempt failed due to internal workflows error"
    );
    // The first runner, if it were alive after all, has lost the instance.
    let mut stale = t.clone();
    stale.lease -= 1;
    let err = engine.step_success(&stale, "work", 1, b"late").unwrap_err();
    assert_eq!(
        err.to_string(),
        "this run of instance cut is no longer current: another run holds the instance"
    );
}

#[test]
fn a_pending_pause_whose_runner_died_ends_paused() {
    let fx = fixture();
    fx.create("pp", "");
    let _t = fx.engine.claim_due().unwrap();
    fx.engine.pause(WF, "pp").unwrap();
    fx.clock.advance_ms(120_000);
    assert!(fx.engine.claim_due().unwrap().is_empty());
    assert_eq!(fx.status("pp"), S::Paused);
}

#[test]
fn two_engines_on_one_file_never_claim_the_same_run() {
    let fx = fixture();
    for i in 0..20 {
        fx.create(&format!("c{i}"), "");
    }
    let other = fx.reopen();
    let a = fx.engine.claim_due().unwrap();
    let b = other.claim_due().unwrap();
    assert_eq!(a.len() + b.len(), 20);
    assert!(b.is_empty(), "the first claim took every due run");
}

// ---------------------------------------------------------------------------
// A real SIGKILL: a child process creates instances and runs them through
// five steps, printing each acknowledged step; the parent kills it, reopens
// the file and finishes every instance, proving no acknowledged step runs
// again and nothing acknowledged is lost.
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "HEARTH_WORKFLOWS_KILL9_DIR";
const ROUND_ENV: &str = "HEARTH_WORKFLOWS_KILL9_ROUND";
const STEPS: [&str; 5] = ["s1", "s2", "s3", "s4", "s5"];

fn five_steps(
    on_ran: &dyn Fn(&str, &str),
    on_ack: &dyn Fn(&str, &str),
    event: &WorkflowEvent,
    step: &mut WorkflowStep<'_>,
) -> Result<Vec<u8>, Thrown> {
    let id = event.instance_id.clone();
    let mut out = Vec::new();
    for name in STEPS {
        let value = step.do_default(name, |_| {
            on_ran(&id, name);
            Ok(format!("{id}:{name};").into_bytes())
        })?;
        on_ack(&id, name);
        out.extend(value);
    }
    Ok(out)
}

/// Runs only when re-executed by `acknowledged_steps_survive_sigkill`.
#[test]
fn kill9_child_runner() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u32 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let engine = WorkflowEngine::open(
        Path::new(&dir).join("workflows.sqlite"),
        SystemClock::shared(),
        WorkflowLimits::default(),
    )
    .unwrap();
    let ran = |_: &str, _: &str| {};
    let ack = |id: &str, name: &str| println!("ack step {id} {name}");
    for i in 0u64.. {
        let id = format!("r{round}-{i}");
        engine
            .create("crash", CreateOptions::new().id(&id).params(id.clone()))
            .unwrap();
        println!("ack created {id}");
        native::run_due(&engine, |_, event, step| {
            five_steps(&ran, &ack, event, step)
        })
        .unwrap();
    }
}

#[test]
fn acknowledged_steps_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut created: Vec<String> = Vec::new();
    for round in 0..2u32 {
        let acks = run_child_until_killed(tmp.path(), round, 40 + 30 * round as usize);
        let mut acked_steps = HashSet::new();
        for (kind, id, name) in acks {
            if kind == "created" {
                created.push(id);
            } else {
                acked_steps.insert((id, name));
            }
        }
        recover_and_verify(tmp.path(), &created, &acked_steps);
    }
}

fn run_child_until_killed(
    dir: &Path,
    round: u32,
    min_acks: usize,
) -> Vec<(String, String, String)> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "kill9_child_runner",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acks = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let mut parts = line.split(' ');
        if parts.next() != Some("ack") {
            continue;
        }
        let kind = parts.next().unwrap().to_string();
        let id = parts.next().unwrap().to_string();
        let name = parts.next().unwrap_or("").to_string();
        acks.push((kind, id, name));
        if acks.len() >= min_acks {
            break;
        }
    }
    // Child::kill sends SIGKILL on Unix: no destructors, no flush.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acks.len() >= min_acks, "child stopped early: {acks:?}");
    acks
}

fn recover_and_verify(dir: &Path, created: &[String], acked_steps: &HashSet<(String, String)>) {
    // Far enough ahead that every lease the dead child held has ended.
    let clock = ManualClock::new(SystemClock.now_ms() + 3_600_000);
    let engine = WorkflowEngine::open(
        dir.join("workflows.sqlite"),
        clock.shared(),
        WorkflowLimits::default(),
    )
    .unwrap();
    let rerun = RefCell::new(Vec::new());
    let ran = |id: &str, name: &str| rerun.borrow_mut().push((id.to_string(), name.to_string()));
    let ack = |_: &str, _: &str| {};
    loop {
        let out = native::run_due(&engine, |_, event, step| {
            five_steps(&ran, &ack, event, step)
        })
        .unwrap();
        if out.is_empty() {
            break;
        }
        for (_, _, outcome) in out {
            assert!(matches!(outcome, RunOutcome::Complete(_)), "{outcome:?}");
        }
    }
    for step in rerun.borrow().iter() {
        assert!(
            !acked_steps.contains(step),
            "acknowledged step {step:?} ran again"
        );
    }
    for id in created {
        let status = engine.status("crash", id).unwrap();
        let expected: String = STEPS.iter().map(|s| format!("{id}:{s};")).collect();
        assert_eq!(status.status, S::Complete, "{id}");
        assert_eq!(status.output, Some(expected.into_bytes()), "{id}");
    }
}

#[test]
fn a_runner_claims_only_the_workflows_it_names() {
    // Two workers sharing a data directory: each runner names its own.
    let fx = fixture();
    fx.create("mine", "");
    fx.engine
        .create("theirs-wf", CreateOptions::new().id("theirs"))
        .unwrap();
    let only = [WF.to_string()];
    assert_eq!(
        fx.engine.next_wake_at_of(Some(&only)).unwrap(),
        Some(START_MS)
    );
    let claimed = fx.engine.claim_due_of(Some(&only)).unwrap();
    let ids: Vec<&str> = claimed.iter().map(|t| t.instance_id.as_str()).collect();
    assert_eq!(ids, ["mine"]);
    assert_eq!(
        fx.engine.status("theirs-wf", "theirs").unwrap().status,
        S::Queued
    );
    // Mine now waits on its lease; theirs, due at once, is not mine to wake for.
    let next = fx.engine.next_wake_at_of(Some(&only)).unwrap();
    assert!(next.is_some_and(|at| at > START_MS), "{next:?}");
    // Nothing of `WF` is due now; the other workflow's run does not count.
    let theirs_only = ["theirs-wf".to_string()];
    assert_eq!(fx.engine.claim_due_of(Some(&[])).unwrap().len(), 0);
    let claimed = fx.engine.claim_due_of(Some(&theirs_only)).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].workflow, "theirs-wf");
}

/// Cluster mode: two nodes' engines on one journal, each renewing the leases
/// of its runs in progress. A running attempt no longer stretches the lease
/// over the step's timeout, so a dead node's instance moves within a lease,
/// and the dead node's late report is fenced off.
#[test]
fn under_a_heartbeat_a_dead_runners_attempt_moves_on_within_a_lease() {
    let fx = fixture();
    let limits = WorkflowLimits {
        lease_ms: 1_000,
        ..WorkflowLimits::default()
    };
    let a = fx.reopen_with(limits.clone()).with_heartbeat("node-a");
    let b = fx.reopen_with(limits).with_heartbeat("node-b");
    assert_eq!(
        a.heartbeat_every(),
        Some(std::time::Duration::from_millis(333))
    );
    a.create(WF, CreateOptions::new().id("long")).unwrap();
    let mut t = a.claim_due().unwrap().pop().unwrap();
    let cfg = hearth_workflows::StepConfig::default().timeout_ms(600_000);
    assert!(matches!(
        a.step_begin(&mut t, "slow", &cfg).unwrap(),
        StepDecision::Run { attempt: 1, .. }
    ));
    let held = [(t.workflow.clone(), t.instance_id.clone(), t.lease)];
    // a is alive and renews: b finds nothing to take, however long the step.
    for _ in 0..5 {
        fx.clock.advance_ms(800);
        a.renew(&held).unwrap();
        assert!(b.claim_due().unwrap().is_empty(), "a renews its lease");
    }
    // a dies: one lease later b takes the instance over.
    fx.clock.advance_ms(999);
    assert!(b.claim_due().unwrap().is_empty());
    fx.clock.advance_ms(1);
    let mut tb = b.claim_due().unwrap().pop().unwrap();
    assert!(tb.lease > t.lease, "a higher fencing token");
    assert!(matches!(
        b.step_begin(&mut tb, "slow", &cfg).unwrap(),
        StepDecision::Run { attempt: 2, .. }
    ));
    // a's report from beyond the grave is refused, and so is its renewal.
    assert!(matches!(
        a.step_success(&t, "slow", 1, b"late").unwrap_err(),
        hearth_workflows::WorkflowError::RunStopped { .. }
    ));
    a.renew(&held).unwrap();
    fx.clock.advance_ms(999);
    assert!(a.claim_due().unwrap().is_empty(), "b's lease stands");
    b.step_success(&tb, "slow", 1, b"done").unwrap();
    b.finish(&tb, Ok(bytes("ok"))).unwrap();
    assert_eq!(a.status(WF, "long").unwrap().status, S::Complete);
}

on_postgres!(
    under_a_heartbeat_a_dead_runners_attempt_moves_on_within_a_lease,
    a_run_whose_runner_died_is_claimed_again_when_its_lease_ends,
    an_attempt_cut_off_by_a_crash_counts_as_failed_and_is_retried,
    a_pending_pause_whose_runner_died_ends_paused,
    two_engines_on_one_file_never_claim_the_same_run,
    a_runner_claims_only_the_workflows_it_names,
);
