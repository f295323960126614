//! Cluster mode's fencing: two nodes over one object file, each with the
//! lease token placement gave it. Once the newer owner has opened the
//! object, the older one can no longer commit.

mod common;

use std::sync::Arc;

use common::*;
use hearth_core::ManualClock;
use hearth_do::{DoError, FenceBook, StorageBackend};

fn node(
    dir: &std::path::Path,
    clock: &ManualClock,
    book: &Arc<FenceBook>,
) -> hearth_do::DurableObjectNamespace {
    host(dir, clock)
        .with_fences(book.clone())
        .namespace("Counter", StorageBackend::Sqlite)
        .unwrap()
}

#[test]
fn an_old_owner_cannot_commit_after_the_new_owner_opened_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let (a, b) = (Arc::new(FenceBook::new("a")), Arc::new(FenceBook::new("b")));
    let ns_a = node(dir.path(), &clock, &a);
    let id = ns_a.id_from_name("counter");
    a.grant("Counter", &id.to_string(), 1);
    let on_a = ns_a.storage(&id).unwrap();
    on_a.put("n", b"1").unwrap();
    on_a.flush().unwrap();

    // The lease moves to b with a higher token; b opens the object.
    let ns_b = node(dir.path(), &clock, &b);
    b.grant("Counter", &id.to_string(), 2);
    let on_b = ns_b.storage(&id).unwrap();
    assert_eq!(on_b.get("n").unwrap().as_deref(), Some(&b"1"[..]));

    // a, paused meanwhile, wakes up and writes: refused, nothing lands.
    on_a.put("n", b"stale").unwrap();
    let e = on_a.flush().unwrap_err();
    assert!(
        matches!(
            e,
            DoError::Fenced {
                token: 1,
                stored: 2
            }
        ),
        "{e}"
    );
    assert!(a.take_revoked("Counter", &id.to_string()));
    assert!(!a.take_revoked("Counter", &id.to_string()), "reported once");
    assert_eq!(on_b.get("n").unwrap().as_deref(), Some(&b"1"[..]));

    on_b.put("n", b"2").unwrap();
    on_b.flush().unwrap();
    assert_eq!(on_b.get("n").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn an_object_without_a_lease_is_not_opened_in_cluster_mode() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let book = Arc::new(FenceBook::new("a"));
    let ns = node(dir.path(), &clock, &book);
    let e = ns.storage(&ns.id_from_name("x")).unwrap_err();
    assert!(matches!(e, DoError::NotLeased), "{e}");
}

#[test]
fn an_old_token_cannot_even_open_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let (a, b) = (Arc::new(FenceBook::new("a")), Arc::new(FenceBook::new("b")));
    let ns_b = node(dir.path(), &clock, &b);
    let id = ns_b.id_from_name("x");
    b.grant("Counter", &id.to_string(), 5);
    drop(ns_b.storage(&id).unwrap());
    a.grant("Counter", &id.to_string(), 4);
    let e = node(dir.path(), &clock, &a).storage(&id).unwrap_err();
    assert!(
        matches!(
            e,
            DoError::Fenced {
                token: 4,
                stored: 5
            }
        ),
        "{e}"
    );
}
