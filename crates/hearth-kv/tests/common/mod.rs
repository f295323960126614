//! Shared set-up: a namespace on a manual clock, in a temporary SQLite file
//! or, for the tests a file also runs through `on_postgres!`, in PostgreSQL
//! under a namespace of its own (so parallel tests never share rows).

#![allow(dead_code)]

use std::cell::Cell;
use std::path::PathBuf;

use hearth_cluster::Pg;
use hearth_core::ManualClock;
use hearth_kv::{KvLimits, KvNamespace, PostgresStore};

/// 2026-01-01T00:00:00Z, in milliseconds.
pub const START_MS: u64 = 1_767_225_600_000;
pub const START_SECS: u64 = START_MS / 1000;

/// The schema the contract tests' rows live in.
const SCHEMA: &str = "hearth_test_kv";

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
    if let Err(e) = Pg::connect(&postgres_url(), SCHEMA) {
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

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub kv: KvNamespace,
    limits: KvLimits,
    /// The PostgreSQL namespace, when on PostgreSQL.
    namespace: Option<String>,
}

fn postgres_store(namespace: &str) -> PostgresStore {
    let pg = Pg::connect(&postgres_url(), SCHEMA).unwrap();
    PostgresStore::open(pg, namespace).unwrap()
}

impl Fixture {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("kv/ns.sqlite")
    }

    /// A second namespace over the same data, as another process would open it.
    pub fn reopen(&self) -> KvNamespace {
        match &self.namespace {
            Some(ns) => KvNamespace::with_store(
                Box::new(postgres_store(ns)),
                self.clock.shared(),
                self.limits.clone(),
            ),
            None => {
                KvNamespace::open(&self.path(), self.clock.shared(), KvLimits::default()).unwrap()
            }
        }
    }

    /// Rows physically present, expired or not.
    pub fn stored_rows(&self) -> i64 {
        match &self.namespace {
            Some(ns) => postgres_store(ns).stored_rows().unwrap(),
            None => {
                let conn = rusqlite::Connection::open(self.path()).unwrap();
                conn.query_row("SELECT count(*) FROM kv_entries", [], |r| r.get(0))
                    .unwrap()
            }
        }
    }
}

pub fn fixture() -> Fixture {
    fixture_with(KvLimits::default())
}

pub fn fixture_with(limits: KvLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let (kv, namespace) = match backend() {
        Backend::Sqlite => (
            KvNamespace::open(
                &dir.path().join("kv/ns.sqlite"),
                clock.shared(),
                limits.clone(),
            )
            .unwrap(),
            None,
        ),
        Backend::Postgres => {
            let ns = format!("test-{}", uuid::Uuid::new_v4());
            (
                KvNamespace::with_store(
                    Box::new(postgres_store(&ns)),
                    clock.shared(),
                    limits.clone(),
                ),
                Some(ns),
            )
        }
    };
    Fixture {
        dir,
        clock,
        kv,
        limits,
        namespace,
    }
}

pub fn text(f: &Fixture, key: &str) -> Option<String> {
    f.kv.get(key, &hearth_kv::GetOptions::text())
        .unwrap()
        .map(|v| v.as_text().unwrap().to_owned())
}

/// The `Display` of an error result, for exact-message assertions.
pub fn err<T: std::fmt::Debug>(r: hearth_kv::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}
