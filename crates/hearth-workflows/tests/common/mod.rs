//! Shared set-up: an engine on a manual clock, in a temporary SQLite file
//! or, for the tests a file also runs through `on_postgres!`, in PostgreSQL
//! under a schema of its own (dropped afterwards); and a driver that replays
//! native run closures the way a runtime would.

#![allow(dead_code)]

use std::cell::Cell;
use std::path::PathBuf;

use hearth_cluster::Pg;
use hearth_core::ManualClock;
use hearth_workflows::native::{self, RunOutcome, Thrown, WorkflowStep};
use hearth_workflows::{CreateOptions, PgJournal, WorkflowEngine, WorkflowEvent, WorkflowLimits};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
}

pub fn backend() -> Backend {
    BACKEND.with(Cell::get)
}

pub fn postgres_url() -> String {
    std::env::var("HEARTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Runs a test's body against PostgreSQL. Without a reachable server the
/// test is skipped with a reason, unless `HEARTH_TEST_REQUIRE_CLUSTER=1`
/// (CI sets it), which makes it fail.
pub fn on_postgres(test: fn()) {
    if let Err(e) = Pg::connect(&postgres_url(), "hearth_probe") {
        if std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1") {
            panic!("PostgreSQL is required (HEARTH_TEST_REQUIRE_CLUSTER=1): {e}");
        }
        eprintln!(
            "skipped: PostgreSQL unreachable ({e}); set HEARTH_TEST_REQUIRE_CLUSTER=1 to fail instead"
        );
        return;
    }
    BACKEND.with(|b| b.set(Backend::Postgres));
    test();
    BACKEND.with(|b| b.set(Backend::Sqlite));
}

/// Declares a `postgres` module running each named test on PostgreSQL too.
#[allow(unused_macros)]
macro_rules! on_postgres {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(#[test] fn $test() { crate::common::on_postgres(super::$test); })*
        }
    };
}

/// 2026-01-01T00:00:00Z, in milliseconds.
pub const START_MS: u64 = 1_767_225_600_000;
pub const WF: &str = "my-workflow";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub engine: WorkflowEngine,
    /// The PostgreSQL schema, when on PostgreSQL.
    schema: Option<Schema>,
}

/// A test's own PostgreSQL schema, dropped with the fixture.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(pg) = Pg::connect(&postgres_url(), "hearth_probe") {
            let (p, sql) = (
                pg.clone(),
                format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0),
            );
            let _ = pg.block(async move { Ok(p.client().await?.batch_execute(&sql).await?) });
        }
    }
}

fn postgres_engine(schema: &str, clock: &ManualClock, limits: WorkflowLimits) -> WorkflowEngine {
    let pg = Pg::connect(&postgres_url(), schema).unwrap();
    let journal = PgJournal::open(pg).unwrap();
    WorkflowEngine::with_store(Box::new(journal), clock.shared(), limits)
}

pub fn fixture() -> Fixture {
    fixture_with(WorkflowLimits::default())
}

pub fn fixture_with(limits: WorkflowLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let (engine, schema) = match backend() {
        Backend::Sqlite => (
            WorkflowEngine::open(dir.path().join("workflows.sqlite"), clock.shared(), limits)
                .unwrap(),
            None,
        ),
        Backend::Postgres => {
            let schema = format!("hearth_tw_{}", uuid::Uuid::new_v4().simple());
            (
                postgres_engine(&schema, &clock, limits),
                Some(Schema(schema)),
            )
        }
    };
    Fixture {
        dir,
        clock,
        engine,
        schema,
    }
}

impl Fixture {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("workflows.sqlite")
    }

    /// The same journal opened again, as after a restart (or, on
    /// PostgreSQL, by another node).
    pub fn reopen(&self) -> WorkflowEngine {
        self.reopen_with(WorkflowLimits::default())
    }

    /// [`reopen`](Self::reopen) with other limits.
    pub fn reopen_with(&self, limits: WorkflowLimits) -> WorkflowEngine {
        match &self.schema {
            Some(schema) => postgres_engine(&schema.0, &self.clock, limits),
            None => WorkflowEngine::open(self.path(), self.clock.shared(), limits).unwrap(),
        }
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
