//! Expiry: keys vanish from every read the moment the clock reaches their
//! expiration; purging removes the rows later.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use hearth_kv::{GetOptions, ListOptions, PutOptions};

fn put_ttl(f: &Fixture, key: &str, ttl: f64) {
    f.kv.put(key, "v", &PutOptions::new().expiration_ttl(ttl))
        .unwrap();
}

#[test]
fn key_is_visible_until_its_expiration_and_invisible_from_then_on() {
    let f = fixture();
    put_ttl(&f, "k", 60.0);
    f.clock.advance_ms(59_999);
    assert_eq!(text(&f, "k").as_deref(), Some("v"));
    assert_eq!(f.kv.list(&ListOptions::new()).unwrap().keys.len(), 1);
    f.clock.advance_ms(1);
    assert_eq!(text(&f, "k"), None);
    let r = f.kv.get_with_metadata("k", &GetOptions::text()).unwrap();
    assert_eq!(r.value, None);
    assert_eq!(f.kv.get_entry("k", None).unwrap(), None);
    let listed = f.kv.list(&ListOptions::new()).unwrap();
    assert!(listed.keys.is_empty());
    assert!(listed.list_complete);
    // Still on disk until purged.
    assert_eq!(f.stored_rows(), 1);
}

#[test]
fn absolute_expiration_behaves_the_same() {
    let f = fixture();
    let at = START_SECS + 3600;
    f.kv.put("k", "v", &PutOptions::new().expiration(at as f64))
        .unwrap();
    f.clock.set_ms(at * 1000 - 1);
    assert_eq!(text(&f, "k").as_deref(), Some("v"));
    f.clock.set_ms(at * 1000);
    assert_eq!(text(&f, "k"), None);
}

#[test]
fn expired_keys_do_not_take_list_slots() {
    let f = fixture();
    put_ttl(&f, "a", 60.0);
    put_ttl(&f, "b", 60.0);
    f.kv.put("c", "v", &PutOptions::new()).unwrap();
    f.kv.put("d", "v", &PutOptions::new()).unwrap();
    f.clock.advance_secs(60);
    let r = f.kv.list(&ListOptions::new().limit(2.0)).unwrap();
    let names: Vec<_> = r.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["c", "d"]);
    assert!(r.list_complete);
}

#[test]
fn rewriting_an_expired_key_brings_it_back_without_the_old_expiry() {
    let f = fixture();
    put_ttl(&f, "k", 60.0);
    f.clock.advance_secs(61);
    f.kv.put("k", "new", &PutOptions::new()).unwrap();
    assert_eq!(text(&f, "k").as_deref(), Some("new"));
    assert_eq!(f.kv.purge_expired().unwrap(), 0);
    assert_eq!(text(&f, "k").as_deref(), Some("new"));
}

#[test]
fn purge_removes_only_expired_rows() {
    let f = fixture();
    put_ttl(&f, "short", 60.0);
    put_ttl(&f, "long", 600.0);
    f.kv.put("forever", "v", &PutOptions::new()).unwrap();
    assert_eq!(f.kv.purge_expired().unwrap(), 0);
    f.clock.advance_secs(60);
    assert_eq!(f.kv.purge_expired().unwrap(), 1);
    assert_eq!(f.stored_rows(), 2);
    assert_eq!(f.kv.purge_expired().unwrap(), 0);
    f.clock.advance_secs(540);
    assert_eq!(f.kv.purge_expired().unwrap(), 1);
    assert_eq!(f.stored_rows(), 1);
    assert_eq!(text(&f, "forever").as_deref(), Some("v"));
}

#[test]
fn purge_handles_more_rows_than_one_batch() {
    let f = fixture();
    for i in 0..2500 {
        put_ttl(&f, &format!("k{i}"), 60.0);
    }
    f.kv.put("keep", "v", &PutOptions::new()).unwrap();
    f.clock.advance_secs(60);
    assert_eq!(f.kv.purge_expired().unwrap(), 2500);
    assert_eq!(f.stored_rows(), 1);
}

#[test]
fn purger_thread_purges_on_request_and_stops_on_drop() {
    let f = fixture();
    put_ttl(&f, "k", 60.0);
    let kv = Arc::new(f.reopen());
    // A long interval: only explicit requests run a purge during the test.
    let handle = kv.spawn_purger(Duration::from_secs(3600)).unwrap();
    assert!(handle.is_running());
    assert_eq!(handle.purge_now().unwrap().unwrap(), 0);
    f.clock.advance_secs(60);
    assert_eq!(handle.purge_now().unwrap().unwrap(), 1);
    assert_eq!(f.stored_rows(), 0);
    drop(handle);
    // The namespace outlives its purger.
    kv.put("x", "v", &PutOptions::new()).unwrap();
}

#[test]
fn purger_thread_ends_when_the_namespace_is_dropped() {
    let f = fixture();
    let kv = Arc::new(f.reopen());
    let handle = kv.spawn_purger(Duration::from_secs(3600)).unwrap();
    drop(kv);
    assert!(handle.purge_now().is_none());
    // The thread is gone once it has noticed; the handle still drops cleanly.
    for _ in 0..1000 {
        if !handle.is_running() {
            break;
        }
        std::thread::yield_now();
    }
    assert!(!handle.is_running());
}

#[test]
fn purger_thread_runs_on_its_interval() {
    let f = fixture();
    put_ttl(&f, "k", 60.0);
    f.clock.advance_secs(60);
    let kv = Arc::new(f.reopen());
    let _handle = kv.spawn_purger(Duration::from_millis(5)).unwrap();
    // Wall time is only needed for the thread's own interval; bounded wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.stored_rows() != 0 {
        assert!(std::time::Instant::now() < deadline, "purger never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
}

on_postgres!(
    key_is_visible_until_its_expiration_and_invisible_from_then_on,
    absolute_expiration_behaves_the_same,
    expired_keys_do_not_take_list_slots,
    rewriting_an_expired_key_brings_it_back_without_the_old_expiry,
    purge_removes_only_expired_rows,
    purge_handles_more_rows_than_one_batch,
    purger_thread_purges_on_request_and_stops_on_drop,
    purger_thread_ends_when_the_namespace_is_dropped,
    purger_thread_runs_on_its_interval,
);
