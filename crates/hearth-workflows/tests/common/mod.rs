//! Shared set-up: an engine in a temporary directory on a manual clock, and a
//! driver that replays native run closures the way a runtime would.

#![allow(dead_code)]

use std::path::PathBuf;

use hearth_core::ManualClock;
use hearth_workflows::native::{self, RunOutcome, Thrown, WorkflowStep};
use hearth_workflows::{CreateOptions, WorkflowEngine, WorkflowEvent, WorkflowLimits};

/// 2026-01-01T00:00:00Z, in milliseconds.
pub const START_MS: u64 = 1_767_225_600_000;
pub const WF: &str = "my-workflow";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub engine: WorkflowEngine,
}

pub fn fixture() -> Fixture {
    fixture_with(WorkflowLimits::default())
}

pub fn fixture_with(limits: WorkflowLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let engine =
        WorkflowEngine::open(dir.path().join("workflows.sqlite"), clock.shared(), limits).unwrap();
    Fixture { dir, clock, engine }
}

impl Fixture {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("workflows.sqlite")
    }

    /// The same file opened again, as after a restart.
    pub fn reopen(&self) -> WorkflowEngine {
        WorkflowEngine::open(self.path(), self.clock.shared(), WorkflowLimits::default()).unwrap()
    }

    pub fn create(&self, id: &str, params: &str) -> String {
        self.engine
            .create(WF, CreateOptions::new().id(id).params(params))
            .unwrap()
    }

    /// One scheduler tick: claims what is due and runs it.
    pub fn tick<F>(&self, run: F) -> Vec<RunOutcome>
    where
        F: FnMut(&str, &WorkflowEvent, &mut WorkflowStep<'_>) -> Result<Vec<u8>, Thrown>,
    {
        native::run_due(&self.engine, run)
            .unwrap()
            .into_iter()
            .map(|(_, _, outcome)| outcome)
            .collect()
    }

    pub fn status(&self, id: &str) -> hearth_workflows::InstanceStatusKind {
        self.engine.status(WF, id).unwrap().status
    }
}

pub fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}
