mod common;

use common::*;
use hearth_core::ManualClock;
use hearth_core::{ContractError, ErrorClass};
use hearth_do::{DoError, StorageBackend};

#[test]
fn id_from_name_is_deterministic_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let first = sqlite_ns(dir.path(), &clock).id_from_name("lobby");
    // A new host over the same directory reads the same stored secret.
    let again = sqlite_ns(dir.path(), &clock).id_from_name("lobby");
    assert_eq!(first.to_string(), again.to_string());
    assert!(first.equals(&again));
}

#[test]
fn ids_are_64_lowercase_hex_digits() {
    let dir = tempfile::tempdir().unwrap();
    let ns = sqlite_ns(dir.path(), &ManualClock::new(T0));
    for id in [ns.id_from_name("x"), ns.new_unique_id().unwrap()] {
        let s = id.to_string();
        assert_eq!(s.len(), 64);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{s}"
        );
    }
}

#[test]
fn different_names_namespaces_and_data_dirs_give_different_ids() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let host = host(a.path(), &clock);
    let room = host.namespace("Room", StorageBackend::Sqlite).unwrap();
    let other = host.namespace("Other", StorageBackend::Sqlite).unwrap();
    assert!(!room.id_from_name("x").equals(&room.id_from_name("y")));
    assert!(!room.id_from_name("x").equals(&other.id_from_name("x")));
    // Another data directory has another secret.
    let elsewhere = sqlite_ns(b.path(), &clock);
    assert!(!room.id_from_name("x").equals(&elsewhere.id_from_name("x")));
}

#[test]
fn unique_ids_are_distinct_and_valid_for_their_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let ns = sqlite_ns(dir.path(), &ManualClock::new(T0));
    let a = ns.new_unique_id().unwrap();
    let b = ns.new_unique_id().unwrap();
    assert!(!a.equals(&b));
    assert!(ns.id_from_string(&a.to_string()).unwrap().equals(&a));
}

#[test]
fn name_is_kept_only_for_ids_made_from_names() {
    let dir = tempfile::tempdir().unwrap();
    let ns = sqlite_ns(dir.path(), &ManualClock::new(T0));
    let named = ns.id_from_name("alice");
    assert_eq!(named.name(), Some("alice"));
    assert_eq!(ns.new_unique_id().unwrap().name(), None);
    let parsed = ns.id_from_string(&named.to_string()).unwrap();
    assert_eq!(parsed.name(), None);
    // Equality ignores the name.
    assert!(parsed.equals(&named));
    assert_eq!(parsed, named);
}

#[test]
fn id_from_string_accepts_upper_case_and_shows_lower_case() {
    let dir = tempfile::tempdir().unwrap();
    let ns = sqlite_ns(dir.path(), &ManualClock::new(T0));
    let id = ns.id_from_name("x");
    let parsed = ns.id_from_string(&id.to_string().to_uppercase()).unwrap();
    assert_eq!(parsed.to_string(), id.to_string());
}

#[test]
fn malformed_ids_are_refused_with_cloudflares_message() {
    let dir = tempfile::tempdir().unwrap();
    let ns = sqlite_ns(dir.path(), &ManualClock::new(T0));
    let good = ns.id_from_name("x").to_string();
    let cases = [
        String::new(),
        "abc".to_owned(),
        good[..63].to_owned(),
        format!("{good}0"),
        format!("{}g", &good[..63]),
        format!("{}é", &good[..62]),
    ];
    for bad in cases {
        let e = ns.id_from_string(&bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid Durable Object ID: must be 64 hex digits",
            "{bad:?}"
        );
        assert_eq!(e.class(), ErrorClass::TypeError);
    }
}

#[test]
fn ids_of_another_namespace_are_refused_with_cloudflares_message() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let host = host(dir.path(), &clock);
    let room = host.namespace("Room", StorageBackend::Sqlite).unwrap();
    let other = host.namespace("Other", StorageBackend::Sqlite).unwrap();
    let foreign = other.id_from_name("x");
    let e = room.id_from_string(&foreign.to_string()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Durable Object ID is not valid for this namespace."
    );
    assert_eq!(e.class(), ErrorClass::TypeError);
    // A well-formed string nobody made is foreign too.
    assert!(matches!(
        room.id_from_string(&"0".repeat(64)),
        Err(DoError::ForeignId { .. })
    ));
    // Opening storage checks the id as well.
    assert_eq!(
        err(room.storage(&foreign)),
        "Durable Object ID is not valid for this namespace."
    );
}

#[test]
fn the_secret_is_stored_under_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    sqlite_ns(dir.path(), &ManualClock::new(T0));
    let secret = std::fs::read_to_string(dir.path().join("do/secret")).unwrap();
    assert_eq!(secret.len(), 64);
}
