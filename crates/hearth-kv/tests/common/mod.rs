//! Shared set-up: a namespace in a temporary directory on a manual clock.

#![allow(dead_code)]

use std::path::PathBuf;

use hearth_core::ManualClock;
use hearth_kv::{KvLimits, KvNamespace};

/// 2026-01-01T00:00:00Z, in milliseconds.
pub const START_MS: u64 = 1_767_225_600_000;
pub const START_SECS: u64 = START_MS / 1000;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub kv: KvNamespace,
}

impl Fixture {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("kv/ns.sqlite")
    }

    /// A second namespace over the same file, as another process would open it.
    pub fn reopen(&self) -> KvNamespace {
        KvNamespace::open(&self.path(), self.clock.shared(), KvLimits::default()).unwrap()
    }

    /// Rows physically present, expired or not.
    pub fn stored_rows(&self) -> i64 {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.query_row("SELECT count(*) FROM kv_entries", [], |r| r.get(0))
            .unwrap()
    }
}

pub fn fixture() -> Fixture {
    fixture_with(KvLimits::default())
}

pub fn fixture_with(limits: KvLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let kv = KvNamespace::open(&dir.path().join("kv/ns.sqlite"), clock.shared(), limits).unwrap();
    Fixture { dir, clock, kv }
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
