//! list(): order, prefix, limit, cursor paging and their edges.

#[macro_use]
mod common;

use common::*;
use hearth_kv::{KvKey, KvLimits, KvListResult, ListOptions, PutOptions};
use serde_json::json;

fn put(f: &Fixture, key: &str) {
    f.kv.put(key, "v", &PutOptions::new()).unwrap();
}

fn names(r: &KvListResult) -> Vec<&str> {
    r.keys.iter().map(|k| k.name.as_str()).collect()
}

/// Pages through everything with `options`, returning every name seen.
fn list_all(f: &Fixture, options: ListOptions) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut opts = options;
    loop {
        let page = f.kv.list(&opts).unwrap();
        pages += 1;
        seen.extend(page.keys.iter().map(|k| k.name.clone()));
        if page.list_complete {
            assert_eq!(page.cursor, None);
            return (seen, pages);
        }
        opts.cursor = Some(page.cursor.clone().unwrap());
    }
}

#[test]
fn empty_namespace_lists_nothing_and_is_complete() {
    let f = fixture();
    let r = f.kv.list(&ListOptions::new()).unwrap();
    assert!(r.keys.is_empty());
    assert!(r.list_complete);
    assert_eq!(r.cursor, None);
    assert_eq!(r.cache_status, None);
}

#[test]
fn keys_come_back_in_utf8_byte_order() {
    let f = fixture();
    // U+FF5E sorts before U+1F600 by UTF-8 bytes but after it by UTF-16 units.
    let keys = ["b", "a", "Z", "é", "\u{FF5E}", "😀", "a\0", "aa", "A", "€"];
    for k in keys {
        put(&f, k);
    }
    let mut expected: Vec<&str> = keys.to_vec();
    expected.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    let r = f.kv.list(&ListOptions::new()).unwrap();
    assert_eq!(names(&r), expected);
    let tilde = expected.iter().position(|k| *k == "\u{FF5E}").unwrap();
    let emoji = expected.iter().position(|k| *k == "😀").unwrap();
    assert!(tilde < emoji);
}

#[test]
fn prefix_selects_only_matching_keys() {
    let f = fixture();
    for k in [
        "user:1:a",
        "user:1:b",
        "user:10:a",
        "user:2:a",
        "user:",
        "usex",
    ] {
        put(&f, k);
    }
    let r = f.kv.list(&ListOptions::new().prefix("user:1:")).unwrap();
    assert_eq!(names(&r), ["user:1:a", "user:1:b"]);
    let r = f.kv.list(&ListOptions::new().prefix("user:")).unwrap();
    assert_eq!(
        names(&r),
        // '0' (0x30) sorts before ':' (0x3A).
        ["user:", "user:10:a", "user:1:a", "user:1:b", "user:2:a"]
    );
}

#[test]
fn prefix_with_no_match_is_empty_and_complete() {
    let f = fixture();
    put(&f, "a");
    put(&f, "c");
    let r = f.kv.list(&ListOptions::new().prefix("b")).unwrap();
    assert!(r.keys.is_empty());
    assert!(r.list_complete);
}

#[test]
fn unicode_prefix_matches_by_bytes() {
    let f = fixture();
    for k in ["日本:1", "日本:2", "日本語", "日", "日\u{10FFFF}", "旧"] {
        put(&f, k);
    }
    let r = f.kv.list(&ListOptions::new().prefix("日本")).unwrap();
    assert_eq!(names(&r), ["日本:1", "日本:2", "日本語"]);
    let r = f.kv.list(&ListOptions::new().prefix("日")).unwrap();
    assert_eq!(
        names(&r),
        ["日", "日本:1", "日本:2", "日本語", "日\u{10FFFF}"]
    );
}

#[test]
fn exactly_limit_keys_is_one_complete_page() {
    let f = fixture();
    for k in ["a", "b", "c"] {
        put(&f, k);
    }
    let r = f.kv.list(&ListOptions::new().limit(3.0)).unwrap();
    assert_eq!(names(&r), ["a", "b", "c"]);
    assert!(r.list_complete);
    assert_eq!(r.cursor, None);
}

#[test]
fn more_than_limit_gives_a_cursor_to_the_rest() {
    let f = fixture();
    for k in ["a", "b", "c", "d"] {
        put(&f, k);
    }
    let first = f.kv.list(&ListOptions::new().limit(3.0)).unwrap();
    assert_eq!(names(&first), ["a", "b", "c"]);
    assert!(!first.list_complete);
    let cursor = first.cursor.clone().unwrap();
    let second =
        f.kv.list(&ListOptions::new().limit(3.0).cursor(cursor))
            .unwrap();
    assert_eq!(names(&second), ["d"]);
    assert!(second.list_complete);
}

#[test]
fn limit_1_pages_through_everything() {
    let f = fixture();
    let keys = ["k0", "k1", "k2", "k3", "k4", "ü", "🙂"];
    for k in keys {
        put(&f, k);
    }
    let (seen, pages) = list_all(&f, ListOptions::new().limit(1.0));
    assert_eq!(seen, keys);
    assert_eq!(pages, keys.len());
}

#[test]
fn paging_with_prefix_stays_within_the_prefix() {
    let f = fixture();
    for k in ["a1", "a2", "a3", "b1", "b2", "c"] {
        put(&f, k);
    }
    let (seen, _) = list_all(&f, ListOptions::new().prefix("b").limit(1.0));
    assert_eq!(seen, ["b1", "b2"]);
}

#[test]
fn cursor_continues_after_the_last_returned_key_across_writes() {
    let f = fixture();
    for k in ["b", "d", "f"] {
        put(&f, k);
    }
    let first = f.kv.list(&ListOptions::new().limit(2.0)).unwrap();
    assert_eq!(names(&first), ["b", "d"]);
    // Written between pages: before the cursor (not seen), after it (seen),
    // and the last returned key itself deleted (no effect on the position).
    put(&f, "a");
    put(&f, "c");
    put(&f, "e");
    put(&f, "g");
    f.kv.delete("d").unwrap();
    let cursor = first.cursor.unwrap();
    let second =
        f.kv.list(&ListOptions::new().limit(2.0).cursor(cursor))
            .unwrap();
    assert_eq!(names(&second), ["e", "f"]);
    let third =
        f.kv.list(&ListOptions::new().limit(2.0).cursor(second.cursor.unwrap()))
            .unwrap();
    assert_eq!(names(&third), ["g"]);
    assert!(third.list_complete);
}

#[test]
fn default_limit_is_1000() {
    let f = fixture();
    for i in 0..1001 {
        put(&f, &format!("k{i:04}"));
    }
    let r = f.kv.list(&ListOptions::new()).unwrap();
    assert_eq!(r.keys.len(), 1000);
    assert!(!r.list_complete);
    let r =
        f.kv.list(&ListOptions::new().cursor(r.cursor.unwrap()))
            .unwrap();
    assert_eq!(names(&r), ["k1000"]);
    assert!(r.list_complete);
    let r = f.kv.list(&ListOptions::new().limit(1000.0)).unwrap();
    assert_eq!(r.keys.len(), 1000);
}

#[test]
fn limit_outside_1_to_1000_is_refused() {
    let f = fixture();
    assert_eq!(
        err(f.kv.list(&ListOptions::new().limit(1001.0))),
        "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000."
    );
    for (limit, shown) in [(0.0, "0"), (-1.0, "-1"), (f64::NAN, "NaN"), (2.5, "2.5")] {
        assert_eq!(
            err(f.kv.list(&ListOptions::new().limit(limit))),
            format!(
                "KV GET failed: 400 Invalid key_count_limit of {shown}. Please specify an integer greater than 0."
            )
        );
    }
    assert_eq!(
        f.kv.list(&ListOptions::new().limit(0.0))
            .unwrap_err()
            .status(),
        Some(400)
    );
}

#[test]
fn prefix_longer_than_a_key_is_refused() {
    let f = fixture();
    assert_eq!(
        err(f.kv.list(&ListOptions::new().prefix("p".repeat(513)))),
        "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
}

#[test]
fn a_cursor_not_made_by_list_is_refused() {
    let f = fixture();
    assert_eq!(
        err(f.kv.list(&ListOptions::new().cursor("%%% not base64"))),
        "KV GET failed: 400 Invalid cursor."
    );
    // Valid base64, but not UTF-8.
    assert_eq!(
        err(f.kv.list(&ListOptions::new().cursor("//79"))),
        "KV GET failed: 400 Invalid cursor."
    );
}

#[test]
fn keys_carry_absolute_expiration_and_metadata_only_when_set() {
    let f = fixture();
    f.kv.put(
        "a",
        "v",
        &PutOptions::new()
            .expiration_ttl(300.0)
            .metadata(json!({"x": 1})),
    )
    .unwrap();
    put(&f, "b");
    let r = f.kv.list(&ListOptions::new()).unwrap();
    assert_eq!(
        r.keys,
        [
            KvKey {
                name: "a".into(),
                expiration: Some(START_SECS + 300),
                metadata: Some(json!({"x": 1})),
            },
            KvKey {
                name: "b".into(),
                expiration: None,
                metadata: None,
            },
        ]
    );
}

#[test]
fn result_serializes_to_the_workers_shape() {
    let f = fixture_with(KvLimits {
        max_list_keys: 1,
        ..KvLimits::default()
    });
    f.kv.put("a", "v", &PutOptions::new().expiration_ttl(60.0))
        .unwrap();
    put(&f, "b");
    let first = f.kv.list(&ListOptions::new()).unwrap();
    let cursor = first.cursor.clone().unwrap();
    assert_eq!(
        serde_json::to_value(&first).unwrap(),
        json!({
            "keys": [{"name": "a", "expiration": START_SECS + 60}],
            "list_complete": false,
            "cursor": cursor,
            "cacheStatus": null,
        })
    );
    let last = f.kv.list(&ListOptions::new().cursor(cursor)).unwrap();
    assert_eq!(
        serde_json::to_value(&last).unwrap(),
        json!({"keys": [{"name": "b"}], "list_complete": true, "cacheStatus": null})
    );
}

on_postgres!(
    empty_namespace_lists_nothing_and_is_complete,
    keys_come_back_in_utf8_byte_order,
    prefix_selects_only_matching_keys,
    prefix_with_no_match_is_empty_and_complete,
    unicode_prefix_matches_by_bytes,
    exactly_limit_keys_is_one_complete_page,
    more_than_limit_gives_a_cursor_to_the_rest,
    limit_1_pages_through_everything,
    paging_with_prefix_stays_within_the_prefix,
    cursor_continues_after_the_last_returned_key_across_writes,
    default_limit_is_1000,
    limit_outside_1_to_1000_is_refused,
    prefix_longer_than_a_key_is_refused,
    a_cursor_not_made_by_list_is_refused,
    keys_carry_absolute_expiration_and_metadata_only_when_set,
    result_serializes_to_the_workers_shape,
);
