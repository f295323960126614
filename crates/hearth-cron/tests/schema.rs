//! `cron.sqlite` is versioned: a file written before versioning (the
//! fixture, made by that code) is adopted as version 1 with its cursors
//! intact; a newer one is refused; a broken one is a storage error naming
//! the file.

use std::path::Path;

use hearth_core::ManualClock;
use hearth_core::sqlite::{open, user_version};
use hearth_cron::CronScheduler;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/unversioned-cron.sqlite"
);
/// The fixture's clock: 2023-11-14T22:13:20Z, then ten minutes later the
/// 22:20 slot of `*/5 * * * *` was marked done.
const T0: u64 = 1_700_000_000_000;
const FIRED: u64 = 1_700_000_400_000;

fn fixture(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("cron.sqlite");
    std::fs::copy(FIXTURE, &path).unwrap();
    path
}

#[test]
fn an_unversioned_file_is_adopted_as_version_1_with_its_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path());
    assert_eq!(user_version(&open(&path).unwrap()).unwrap(), 0);
    let clock = ManualClock::new(T0 + 600_000);
    let s = CronScheduler::open(&path, "fixture-worker", &["*/5 * * * *"], clock.shared()).unwrap();
    assert_eq!(s.last_fired("*/5 * * * *").unwrap(), Some(FIRED));
    // The 22:20 slot ran before; nothing is owed at 22:23:20.
    assert!(s.due_now().is_empty());
    assert_eq!(s.next_wake_now(), Some(FIRED + 300_000));
    drop(s);
    assert_eq!(user_version(&open(&path).unwrap()).unwrap(), 1);
}

#[test]
fn a_file_from_a_newer_schema_is_refused_as_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path());
    open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 3)
        .unwrap();
    let clock = ManualClock::new(T0);
    let e = CronScheduler::open(&path, "w", &["* * * * *"], clock.shared()).unwrap_err();
    assert!(e.is_storage(), "{e}");
    assert!(e.to_string().contains("has schema version 3"), "{e}");
}

#[test]
fn a_corrupt_file_is_a_storage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cron.sqlite");
    std::fs::write(&path, vec![0xAB; 4096]).unwrap();
    let clock = ManualClock::new(T0);
    let e = CronScheduler::open(&path, "w", &["* * * * *"], clock.shared()).unwrap_err();
    assert!(e.is_storage(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("cron.sqlite") && text.contains("not a SQLite database"),
        "{text}"
    );
    // Not the config's fault: nothing about cron strings.
    assert!(!text.contains("invalid cron"), "{text}");

    std::fs::write(&path, b"").unwrap();
    let e = CronScheduler::open(&path, "w", &["* * * * *"], clock.shared()).unwrap_err();
    assert!(e.is_storage() && e.to_string().contains("is empty"), "{e}");
}
