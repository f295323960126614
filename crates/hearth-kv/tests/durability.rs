//! Data outlives the handle; several threads and several handles (as separate
//! processes would hold) share one namespace file safely.

#[macro_use]
mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use hearth_kv::{KvLimits, KvNamespace, ListOptions, PutOptions};
use serde_json::json;

#[test]
fn namespace_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KvNamespace>();
    assert_send_sync::<hearth_kv::PurgerHandle>();
}

#[test]
fn reopen_after_drop_keeps_values_metadata_and_expiry() {
    let f = fixture();
    f.kv.put(
        "k",
        "v",
        &PutOptions::new()
            .expiration_ttl(120.0)
            .metadata(json!({"m": true})),
    )
    .unwrap();
    f.kv.put("gone", "v", &PutOptions::new()).unwrap();
    f.kv.delete("gone").unwrap();
    let Fixture { dir, clock, kv, .. } = f;
    drop(kv);

    let kv = KvNamespace::open(
        &dir.path().join("kv/ns.sqlite"),
        clock.shared(),
        KvLimits::default(),
    )
    .unwrap();
    let e = kv.get_entry("k", None).unwrap().unwrap();
    assert_eq!(e.value, b"v");
    assert_eq!(e.metadata, Some(json!({"m": true})));
    assert_eq!(e.expiration, Some(START_SECS + 120));
    assert_eq!(kv.get_entry("gone", None).unwrap(), None);
    clock.advance_secs(120);
    assert_eq!(kv.get_entry("k", None).unwrap(), None);
}

#[test]
fn a_second_handle_on_the_same_file_sees_writes_at_once() {
    let f = fixture();
    let other = f.reopen();
    f.kv.put("from-server", "1", &PutOptions::new()).unwrap();
    other.put("from-cli", "2", &PutOptions::new()).unwrap();
    assert_eq!(text(&f, "from-cli").as_deref(), Some("2"));
    let listed = other.list(&ListOptions::new()).unwrap();
    assert_eq!(listed.keys.len(), 2);
    other.delete("from-server").unwrap();
    assert_eq!(text(&f, "from-server"), None);
}

#[test]
fn concurrent_puts_from_many_threads_all_land() {
    let f = fixture();
    let kv = Arc::new(f.reopen());
    let threads = 8;
    let per_thread = 50;
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let kv = Arc::clone(&kv);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for i in 0..per_thread {
                    let key = format!("t{t}-{i:03}");
                    kv.put(&key, key.as_bytes(), &PutOptions::new()).unwrap();
                    // Read-your-writes from the writing thread.
                    let e = kv.get_entry(&key, None).unwrap().unwrap();
                    assert_eq!(e.value, key.as_bytes());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(f.stored_rows(), (threads * per_thread) as i64);
    let listed = kv.list(&ListOptions::new()).unwrap();
    assert_eq!(listed.keys.len(), threads * per_thread);
    for k in &listed.keys {
        let e = kv.get_entry(&k.name, None).unwrap().unwrap();
        assert_eq!(e.value, k.name.as_bytes());
    }
}

#[test]
fn concurrent_writers_through_separate_handles_all_land() {
    // Each thread opens its own connection, as separate processes would, so
    // SQLite's file locking and busy timeout are what keep the writes safe.
    let f = fixture();
    let threads = 4;
    let per_thread = 25;
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let kv = f.reopen();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for i in 0..per_thread {
                    kv.put(&format!("p{t}-{i}"), "v", &PutOptions::new())
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(f.stored_rows(), (threads * per_thread) as i64);
}

#[test]
fn last_write_to_a_key_wins() {
    let f = fixture();
    let kv = Arc::new(f.reopen());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let kv = Arc::clone(&kv);
            thread::spawn(move || {
                for i in 0..20 {
                    kv.put("shared", format!("{t}-{i}"), &PutOptions::new())
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let v = text(&f, "shared").unwrap();
    assert!(v.ends_with("-19"), "{v}");
    assert_eq!(f.stored_rows(), 1);
}

#[test]
fn data_lives_in_the_file_given_in_wal_mode() {
    let f = fixture();
    f.kv.put("k", "v", &PutOptions::new()).unwrap();
    assert!(f.path().exists());
    let conn = rusqlite::Connection::open(f.path()).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_file_from_a_newer_schema_is_refused() {
    let f = fixture();
    {
        let conn = rusqlite::Connection::open(f.path()).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = KvNamespace::open(&f.path(), f.clock.shared(), KvLimits::default()).unwrap_err();
    assert!(e.to_string().contains("has schema version 99"), "{e}");
}

on_postgres!(
    a_second_handle_on_the_same_file_sees_writes_at_once,
    concurrent_puts_from_many_threads_all_land,
    concurrent_writers_through_separate_handles_all_land,
    last_write_to_a_key_wins,
);
