//! `list()` with every combination of start / startAfter / end / prefix /
//! reverse / limit.

mod common;

use common::*;
use hearth_core::ManualClock;
use hearth_core::{ContractError, ErrorClass};
use hearth_do::{DurableObjectStorage, ListOptions};

fn object(dir: &std::path::Path) -> DurableObjectStorage {
    let ns = sqlite_ns(dir, &ManualClock::new(T0));
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    for k in ["a", "ab", "abc", "abd", "b", "ba", "c"] {
        s.put(k, k.as_bytes()).unwrap();
    }
    s
}

fn list(s: &DurableObjectStorage, o: ListOptions) -> Vec<String> {
    let entries = s.list(&o).unwrap();
    for (k, v) in &entries {
        assert_eq!(k.as_bytes(), v.as_slice());
    }
    entries.into_iter().map(|(k, _)| k).collect()
}

#[test]
fn everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    assert_eq!(
        list(&s, ListOptions::new()),
        ["a", "ab", "abc", "abd", "b", "ba", "c"]
    );
    assert_eq!(
        list(&s, ListOptions::new().reverse(true)),
        ["c", "ba", "b", "abd", "abc", "ab", "a"]
    );
}

#[test]
fn start_is_inclusive_and_start_after_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    assert_eq!(list(&s, ListOptions::new().start("b")), ["b", "ba", "c"]);
    assert_eq!(list(&s, ListOptions::new().start_after("b")), ["ba", "c"]);
    assert_eq!(list(&s, ListOptions::new().start("bb")), ["c"]);
    assert_eq!(
        list(&s, ListOptions::new().start_after("abd")),
        ["b", "ba", "c"]
    );
}

#[test]
fn end_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    assert_eq!(list(&s, ListOptions::new().end("ab")), ["a"]);
    assert_eq!(
        list(&s, ListOptions::new().start("ab").end("b")),
        ["ab", "abc", "abd"]
    );
    assert_eq!(
        list(&s, ListOptions::new().start_after("ab").end("b")),
        ["abc", "abd"]
    );
    // An empty or inverted range lists nothing.
    assert!(list(&s, ListOptions::new().start("b").end("b")).is_empty());
    assert!(list(&s, ListOptions::new().start("c").end("a")).is_empty());
}

#[test]
fn prefix_alone_and_with_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    assert_eq!(
        list(&s, ListOptions::new().prefix("ab")),
        ["ab", "abc", "abd"]
    );
    assert_eq!(list(&s, ListOptions::new().prefix("b")), ["b", "ba"]);
    assert_eq!(
        list(&s, ListOptions::new().prefix("")),
        list(&s, ListOptions::new())
    );
    assert!(list(&s, ListOptions::new().prefix("z")).is_empty());
    // start inside the prefix narrows it; before it, the prefix wins.
    assert_eq!(
        list(&s, ListOptions::new().prefix("ab").start("abc")),
        ["abc", "abd"]
    );
    assert_eq!(
        list(&s, ListOptions::new().prefix("ab").start("a")),
        ["ab", "abc", "abd"]
    );
    assert_eq!(
        list(&s, ListOptions::new().prefix("ab").start_after("ab")),
        ["abc", "abd"]
    );
    // start past the prefix: nothing.
    assert!(list(&s, ListOptions::new().prefix("ab").start("b")).is_empty());
    // end inside the prefix narrows it; past it, the prefix wins; before it, nothing.
    assert_eq!(
        list(&s, ListOptions::new().prefix("ab").end("abd")),
        ["ab", "abc"]
    );
    assert_eq!(
        list(&s, ListOptions::new().prefix("ab").end("c")),
        ["ab", "abc", "abd"]
    );
    assert!(list(&s, ListOptions::new().prefix("ab").end("ab")).is_empty());
    assert!(list(&s, ListOptions::new().prefix("ab").end("a")).is_empty());
}

#[test]
fn limit_and_reverse_take_from_the_right_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    assert_eq!(list(&s, ListOptions::new().limit(2)), ["a", "ab"]);
    assert_eq!(
        list(&s, ListOptions::new().limit(2).reverse(true)),
        ["c", "ba"]
    );
    assert_eq!(
        list(&s, ListOptions::new().prefix("ab").reverse(true).limit(2)),
        ["abd", "abc"]
    );
    assert_eq!(
        list(
            &s,
            ListOptions::new()
                .start("ab")
                .end("b")
                .reverse(true)
                .limit(1)
        ),
        ["abd"]
    );
    assert_eq!(list(&s, ListOptions::new().limit(100)).len(), 7);
}

#[test]
fn prefix_with_multibyte_and_ff_edge() {
    let dir = tempfile::tempdir().unwrap();
    let ns = sqlite_ns(dir.path(), &ManualClock::new(T0));
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    for k in ["é", "éa", "ê", "e"] {
        s.put(k, b"").unwrap();
    }
    let got: Vec<String> = s
        .list(&ListOptions::new().prefix("é"))
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(got, ["é", "éa"]);
}

#[test]
fn invalid_options_are_refused_with_cloudflares_messages() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let e = s
        .list(&ListOptions::new().start("a").start_after("b"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "list() cannot be called with both start and startAfter values."
    );
    assert_eq!(e.class(), ErrorClass::TypeError);
    let e = s.list(&ListOptions::new().limit(0)).unwrap_err();
    assert_eq!(e.to_string(), "List limit must be positive.");
    assert_eq!(e.class(), ErrorClass::TypeError);
}
