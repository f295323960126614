//! The key-value storage API: every rule and limit.

mod common;

use common::*;
use hearth_core::ManualClock;
use hearth_core::{ContractError, ErrorClass};
use hearth_do::{DoLimits, DurableObjectStorage, ListOptions, StorageBackend};

fn kv_object(dir: &std::path::Path) -> DurableObjectStorage {
    let ns = kv_ns(dir, &ManualClock::new(T0));
    ns.storage(&ns.id_from_name("o")).unwrap()
}

fn sqlite_object(dir: &std::path::Path) -> DurableObjectStorage {
    let ns = sqlite_ns(dir, &ManualClock::new(T0));
    ns.storage(&ns.id_from_name("o")).unwrap()
}

fn keys(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
    entries.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn put_get_delete_one_key() {
    let dir = tempfile::tempdir().unwrap();
    for s in [kv_object(dir.path()), sqlite_object(dir.path())] {
        assert_eq!(s.get("k").unwrap(), None);
        s.put("k", b"v1").unwrap();
        assert_eq!(s.get("k").unwrap(), Some(b"v1".to_vec()));
        s.put("k", b"v2").unwrap();
        assert_eq!(s.get("k").unwrap(), Some(b"v2".to_vec()));
        assert!(s.delete("k").unwrap());
        assert!(!s.delete("k").unwrap());
        assert_eq!(s.get("k").unwrap(), None);
        // The empty string is a key like any other; values may be empty.
        s.put("", b"").unwrap();
        assert_eq!(s.get("").unwrap(), Some(Vec::new()));
    }
}

#[test]
fn objects_do_not_share_storage() {
    let dir = tempfile::tempdir().unwrap();
    let ns = kv_ns(dir.path(), &ManualClock::new(T0));
    let a = ns.storage(&ns.id_from_name("a")).unwrap();
    let b = ns.storage(&ns.id_from_name("b")).unwrap();
    a.put("k", b"a").unwrap();
    assert_eq!(b.get("k").unwrap(), None);
}

#[test]
fn get_many_returns_found_keys_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = kv_object(dir.path());
    s.put_many(&[("b", b"2".as_slice()), ("a", b"1".as_slice())])
        .unwrap();
    let got = s.get_many(&["b", "missing", "a", "b"]).unwrap();
    assert_eq!(
        got,
        vec![
            ("a".to_owned(), b"1".to_vec()),
            ("b".to_owned(), b"2".to_vec())
        ]
    );
    assert!(s.get_many::<&str>(&[]).unwrap().is_empty());
}

#[test]
fn delete_many_counts_keys_that_existed() {
    let dir = tempfile::tempdir().unwrap();
    let s = kv_object(dir.path());
    s.put_many(&[("a", b"1"), ("b", b"2"), ("c", b"3")])
        .unwrap();
    assert_eq!(s.delete_many(&["a", "c", "x", "a"]).unwrap(), 2);
    assert_eq!(keys(&s.list(&ListOptions::new()).unwrap()), ["b"]);
}

#[test]
fn keys_are_ordered_by_utf8_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite_object(dir.path());
    // UTF-16 order would put the emoji (a surrogate pair) before U+FFFF.
    for k in ["\u{1F600}", "\u{FFFF}", "é", "b", "a", "B"] {
        s.put(k, b"").unwrap();
    }
    assert_eq!(
        keys(&s.list(&ListOptions::new()).unwrap()),
        ["B", "a", "b", "é", "\u{FFFF}", "\u{1F600}"]
    );
}

#[test]
fn key_limit_of_key_value_backed_objects() {
    let dir = tempfile::tempdir().unwrap();
    let s = kv_object(dir.path());
    let ok = "k".repeat(2048);
    s.put(&ok, b"v").unwrap();
    assert_eq!(s.get(&ok).unwrap(), Some(b"v".to_vec()));
    let long = "k".repeat(2049);
    let msg = "Keys cannot be larger than 2048 bytes. A key of size 2049 was provided.";
    assert_eq!(err(s.put(&long, b"v")), msg);
    assert_eq!(err(s.get(&long)), msg);
    assert_eq!(err(s.delete(&long)), msg);
    assert_eq!(err(s.get_many(&[long.as_str()])), msg);
    let e = s.put(&long, b"v").unwrap_err();
    assert_eq!(e.class(), ErrorClass::RangeError);
    // Bytes, not characters: 1025 two-byte characters are 2050 bytes.
    assert_eq!(
        err(s.put(&"é".repeat(1025), b"v")),
        "Keys cannot be larger than 2048 bytes. A key of size 2050 was provided."
    );
}

#[test]
fn value_limit_of_key_value_backed_objects() {
    let dir = tempfile::tempdir().unwrap();
    let s = kv_object(dir.path());
    // 128 KiB plus the serialization header's allowance is accepted.
    s.put("k", &vec![0u8; 128 * 1024 + 34]).unwrap();
    assert_eq!(
        err(s.put("k", &vec![0u8; 128 * 1024 + 35])),
        "Values cannot be larger than 131072 bytes. A value of size 131107 was provided."
    );
}

#[test]
fn value_limit_applies_to_the_measured_size_not_the_stored_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let s = kv_object(dir.path());
    // A full 128 KiB byte array fits even when its stored encoding is larger.
    let stored = vec![b'x'; 180_000];
    s.put_many_measured(&[("bytes", &stored)], &[131_085])
        .unwrap();
    assert_eq!(s.get("bytes").unwrap().map(|v| v.len()), Some(180_000));
    assert_eq!(
        err(s.put_many_measured(&[("bytes", &stored)], &[131_185])),
        "Values cannot be larger than 131072 bytes. A value of size 131185 was provided."
    );
}

#[test]
fn sqlite_backed_objects_limit_key_plus_value_to_2_mb() {
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite_object(dir.path());
    let key = "k".repeat(4096);
    // Keys longer than 2048 bytes and values over 128 KiB are fine here.
    s.put(&key, &vec![1u8; 2 * 1024 * 1024 - 4096]).unwrap();
    assert_eq!(
        err(s.put(&key, &vec![1u8; 2 * 1024 * 1024 - 4095])),
        "string or blob too big: SQLITE_TOOBIG"
    );
}

#[test]
fn batches_are_limited_to_128_keys() {
    let dir = tempfile::tempdir().unwrap();
    for s in [kv_object(dir.path()), sqlite_object(dir.path())] {
        let ok: Vec<String> = (0..128).map(|i| format!("k{i:03}")).collect();
        let entries: Vec<(String, Vec<u8>)> = ok.iter().map(|k| (k.clone(), vec![1])).collect();
        s.put_many(&entries).unwrap();
        assert_eq!(s.get_many(&ok).unwrap().len(), 128);
        let too_many: Vec<String> = (0..129).map(|i| format!("k{i:03}")).collect();
        let msg = "Maximum number of key value pairs is 128. 129 pairs were provided.";
        assert_eq!(err(s.get_many(&too_many)), msg);
        let entries: Vec<(String, Vec<u8>)> =
            too_many.iter().map(|k| (k.clone(), vec![2])).collect();
        assert_eq!(err(s.put_many(&entries)), msg);
        assert_eq!(err(s.delete_many(&too_many)), msg);
        // Nothing of a refused batch was written or deleted.
        assert_eq!(s.get("k000").unwrap(), Some(vec![1]));
        assert_eq!(s.delete_many(&ok).unwrap(), 128);
    }
}

#[test]
fn a_batch_with_one_bad_entry_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = kv_object(dir.path());
    let long = "x".repeat(3000);
    let r = s.put_many(&[("good", b"1".as_slice()), (long.as_str(), b"2".as_slice())]);
    assert!(r.is_err());
    assert_eq!(s.get("good").unwrap(), None);
}

#[test]
fn limits_can_be_raised() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let limits = DoLimits {
        max_key_size: 4096,
        max_batch_keys: 200,
        ..DoLimits::default()
    };
    let ns = host_with(dir.path(), &clock, limits)
        .namespace("Counter", StorageBackend::KeyValue)
        .unwrap();
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    s.put(&"k".repeat(4096), b"v").unwrap();
    let many: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    assert_eq!(s.get_many(&many).unwrap().len(), 0);
}

#[test]
fn delete_all_removes_every_key() {
    let dir = tempfile::tempdir().unwrap();
    for s in [kv_object(dir.path()), sqlite_object(dir.path())] {
        s.put_many(&[("a", b"1"), ("b", b"2")]).unwrap();
        s.delete_all(true).unwrap();
        assert!(s.list(&ListOptions::new()).unwrap().is_empty());
        s.put("c", b"3").unwrap();
        assert_eq!(s.get("c").unwrap(), Some(b"3".to_vec()));
    }
}

#[test]
fn delete_all_on_sqlite_objects_drops_the_applications_tables() {
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite_object(dir.path());
    s.sql_exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (p INTEGER REFERENCES parent(id));
         CREATE VIEW v AS SELECT * FROM parent;
         INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1);",
        &[],
    )
    .unwrap();
    s.put("k", b"v").unwrap();
    s.delete_all(true).unwrap();
    let tables: Vec<_> = s
        .sql_exec(
            "SELECT name FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'",
            &[],
        )
        .unwrap()
        .to_array();
    assert!(tables.is_empty(), "{tables:?}");
    assert_eq!(s.get("k").unwrap(), None);
    s.flush().unwrap();
}

#[test]
fn delete_all_keeps_or_deletes_the_alarm_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let s = kv_object(dir.path());
    s.set_alarm((T0 + 60_000) as i64).unwrap();
    s.delete_all(false).unwrap();
    assert_eq!(s.get_alarm().unwrap(), Some(T0 + 60_000));
    s.delete_all(true).unwrap();
    assert_eq!(s.get_alarm().unwrap(), None);
}
