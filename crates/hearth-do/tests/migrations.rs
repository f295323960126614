//! `[[migrations]]`: renamed classes keep their data and ids, deleted
//! classes lose theirs, tags apply once and in order.

mod common;

use common::*;
use hearth_config::{DurableObjectMigration, RenamedClass, TransferredClass};
use hearth_core::ManualClock;
use hearth_do::{DoError, StorageBackend};

fn migration(tag: &str) -> DurableObjectMigration {
    DurableObjectMigration {
        tag: tag.to_owned(),
        new_classes: Vec::new(),
        new_sqlite_classes: Vec::new(),
        renamed_classes: Vec::new(),
        deleted_classes: Vec::new(),
        transferred_classes: Vec::new(),
    }
}

fn v1() -> DurableObjectMigration {
    DurableObjectMigration {
        new_sqlite_classes: vec!["Old".to_owned(), "Doomed".to_owned()],
        ..migration("v1")
    }
}

fn v2() -> DurableObjectMigration {
    DurableObjectMigration {
        renamed_classes: vec![RenamedClass {
            from: "Old".to_owned(),
            to: "New".to_owned(),
        }],
        deleted_classes: vec!["Doomed".to_owned()],
        ..migration("v2")
    }
}

#[test]
fn renamed_classes_keep_data_ids_and_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let h = host(dir.path(), &clock);
    assert_eq!(h.apply_migrations(&[v1()]).unwrap(), ["v1"]);
    let old = h.namespace("Old", StorageBackend::Sqlite).unwrap();
    let named = old.id_from_name("alice");
    let unique = old.new_unique_id().unwrap();
    {
        let s = old.storage(&named).unwrap();
        s.put("k", b"v").unwrap();
        s.set_alarm((T0 + 1_000) as i64).unwrap();
        s.flush().unwrap();
        let u = old.storage(&unique).unwrap();
        u.sql_exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)", &[])
            .unwrap();
        u.flush().unwrap();
    }

    assert_eq!(h.apply_migrations(&[v1(), v2()]).unwrap(), ["v2"]);
    assert_eq!(h.applied_migrations().unwrap(), ["v1", "v2"]);
    assert!(!dir.path().join("do/Old").exists());
    assert!(dir.path().join("do/New").exists());

    let new = h.namespace("New", StorageBackend::Sqlite).unwrap();
    // The same name reaches the same object; old id strings stay valid.
    assert!(new.id_from_name("alice").equals(&named));
    let s = new.storage(&new.id_from_name("alice")).unwrap();
    assert_eq!(s.get("k").unwrap(), Some(b"v".to_vec()));
    let u = new
        .storage(&new.id_from_string(&unique.to_string()).unwrap())
        .unwrap();
    assert_eq!(
        u.sql_exec("SELECT x FROM t", &[]).unwrap().to_array().len(),
        1
    );
    // The pending alarm moved with the class.
    clock.advance_secs(1);
    let due = h.alarm_scheduler().due().unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].namespace, "New");
    assert_eq!(due[0].id, named.to_string());
}

#[test]
fn deleted_classes_lose_their_storage_and_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let h = host(dir.path(), &clock);
    h.apply_migrations(&[v1()]).unwrap();
    let doomed = h.namespace("Doomed", StorageBackend::Sqlite).unwrap();
    {
        let s = doomed.storage(&doomed.id_from_name("x")).unwrap();
        s.put("k", b"v").unwrap();
        s.set_alarm((T0 + 1_000) as i64).unwrap();
        s.flush().unwrap();
    }
    assert!(dir.path().join("do/Doomed").exists());
    h.apply_migrations(&[v1(), v2()]).unwrap();
    assert!(!dir.path().join("do/Doomed").exists());
    assert_eq!(h.alarm_scheduler().next_wake().unwrap(), None);
    let again = h.namespace("Doomed", StorageBackend::Sqlite).unwrap();
    let s = again.storage(&again.id_from_name("x")).unwrap();
    assert_eq!(s.get("k").unwrap(), None);
}

#[test]
fn migrations_apply_once_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let list = [v1(), v2()];
    assert_eq!(
        host(dir.path(), &clock).apply_migrations(&list).unwrap(),
        ["v1", "v2"]
    );
    // Another start with the same config applies nothing.
    let h = host(dir.path(), &clock);
    assert!(h.apply_migrations(&list).unwrap().is_empty());
    assert_eq!(h.applied_migrations().unwrap(), ["v1", "v2"]);
    // Data written after the rename is not moved again.
    let new = h.namespace("New", StorageBackend::Sqlite).unwrap();
    let s = new.storage(&new.id_from_name("a")).unwrap();
    s.put("k", b"v").unwrap();
    s.flush().unwrap();
    drop(s);
    assert!(h.apply_migrations(&list).unwrap().is_empty());
    let s = new.storage(&new.id_from_name("a")).unwrap();
    assert_eq!(s.get("k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn chained_renames_keep_the_original_ids() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let h = host(dir.path(), &clock);
    let a = h.namespace("A", StorageBackend::KeyValue).unwrap();
    let id = a.id_from_name("n");
    let s = a.storage(&id).unwrap();
    s.put("k", b"1").unwrap();
    s.flush().unwrap();
    drop(s);
    let rename = |tag: &str, from: &str, to: &str| DurableObjectMigration {
        renamed_classes: vec![RenamedClass {
            from: from.to_owned(),
            to: to.to_owned(),
        }],
        ..migration(tag)
    };
    h.apply_migrations(&[rename("r1", "A", "B"), rename("r2", "B", "C")])
        .unwrap();
    let c = h.namespace("C", StorageBackend::KeyValue).unwrap();
    assert!(c.id_from_name("n").equals(&id));
    assert_eq!(
        c.storage(&id).unwrap().get("k").unwrap(),
        Some(b"1".to_vec())
    );
}

#[test]
fn a_rename_onto_a_class_with_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let h = host(dir.path(), &clock);
    for class in ["Old", "New"] {
        let ns = h.namespace(class, StorageBackend::Sqlite).unwrap();
        let s = ns.storage(&ns.id_from_name("x")).unwrap();
        s.put("k", b"v").unwrap();
        s.flush().unwrap();
    }
    let e = h.apply_migrations(&[v2()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot apply migration v2: renamed class Old to New, but New already has stored objects"
    );
    assert!(h.applied_migrations().unwrap().is_empty());
}

#[test]
fn transferred_classes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), &ManualClock::new(T0));
    let m = DurableObjectMigration {
        transferred_classes: vec![TransferredClass {
            from: "X".to_owned(),
            from_script: "other".to_owned(),
            to: "Y".to_owned(),
        }],
        ..migration("t1")
    };
    let e = h.apply_migrations(&[m]).unwrap_err();
    assert!(matches!(e, DoError::TransferUnsupported { .. }));
    assert_eq!(
        e.to_string(),
        "Cannot apply migration t1: transferred_classes (moving X from script other) is not supported by Hearth"
    );
}
