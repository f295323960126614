//! The data directory's own databases (`alarms.sqlite`, `migrations.sqlite`)
//! are versioned: ones written before versioning (the fixture, made by that
//! code) are adopted as version 1 with their rows intact. The id secret is
//! never silently replaced while objects exist.

mod common;

use std::path::Path;

use common::*;
use hearth_config::DurableObjectMigration;
use hearth_core::sqlite::{open, user_version};
use hearth_core::{DataDir, ManualClock};
use hearth_do::{DoError, DoLimits, DurableObjectHost, StorageBackend};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/unversioned-data"
);
/// What the fixture holds: class `Counter` (tag `v1`), the object named
/// "fixture" with `count` = "42" and an alarm a minute after T0.
const OBJECT_ID: &str = "3aed962a6ec82bfb78f7f19388c8d040f98ec6eb9d520fc036bed28acada9f3e";
const ALARM_AT: u64 = T0 + 60_000;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new(FIXTURE), dir.path());
    dir
}

fn version(path: &Path) -> i64 {
    user_version(&open(path).unwrap()).unwrap()
}

fn v1() -> DurableObjectMigration {
    DurableObjectMigration {
        tag: "v1".to_owned(),
        new_classes: vec!["Counter".to_owned()],
        new_sqlite_classes: Vec::new(),
        renamed_classes: Vec::new(),
        deleted_classes: Vec::new(),
        transferred_classes: Vec::new(),
    }
}

#[test]
fn unversioned_indexes_are_adopted_as_version_1_with_their_rows() {
    let dir = fixture();
    let do_dir = dir.path().join("do");
    assert_eq!(version(&do_dir.join("alarms.sqlite")), 0);
    assert_eq!(version(&do_dir.join("migrations.sqlite")), 0);

    let clock = ManualClock::new(T0);
    let h = host(dir.path(), &clock);
    assert_eq!(h.applied_migrations().unwrap(), ["v1"]);
    assert!(
        h.apply_migrations(&[v1()]).unwrap().is_empty(),
        "v1 already applied"
    );
    let ns = h.namespace("Counter", StorageBackend::KeyValue).unwrap();
    // Same secret, same id: the object is reachable by name.
    assert_eq!(ns.id_from_name("fixture").to_string(), OBJECT_ID);
    let s = ns.storage(&ns.id_from_name("fixture")).unwrap();
    assert_eq!(s.get("count").unwrap().as_deref(), Some(&b"42"[..]));
    assert_eq!(s.get_alarm().unwrap(), Some(ALARM_AT));
    let due = h.alarm_scheduler().due_at(ALARM_AT).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id.as_str(), due[0].scheduled_ms),
        (OBJECT_ID, ALARM_AT)
    );
    drop((s, ns, h));

    assert_eq!(version(&do_dir.join("alarms.sqlite")), 1);
    assert_eq!(version(&do_dir.join("migrations.sqlite")), 1);
}

#[test]
fn a_missing_secret_with_objects_on_disk_refuses_to_open() {
    let dir = fixture();
    let secret = dir.path().join("do/secret");
    std::fs::remove_file(&secret).unwrap();
    let clock = ManualClock::new(T0);
    let e = DurableObjectHost::open(
        &DataDir::new(dir.path()),
        clock.shared(),
        DoLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, DoError::MissingSecret { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("do/secret") && text.contains("Restore"),
        "{text}"
    );
    // Nothing was recreated behind the error.
    assert!(!secret.exists());
}

#[test]
fn a_missing_secret_without_objects_is_made_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let h = host(dir.path(), &clock);
    // Class directories without objects (a namespace never used) are fine.
    h.namespace("Counter", StorageBackend::KeyValue).unwrap();
    std::fs::create_dir_all(dir.path().join("do/Counter")).unwrap();
    drop(h);
    std::fs::remove_file(dir.path().join("do/secret")).unwrap();
    host(dir.path(), &clock);
    assert!(dir.path().join("do/secret").exists());
}
