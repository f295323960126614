//! put(): value size, metadata size, expiration and expirationTtl rules.

#[macro_use]
mod common;

use common::*;
use hearth_kv::{GetOptions, KvLimits, ListOptions, PutOptions};
use serde_json::json;

#[test]
fn value_of_25_mib_is_accepted_one_byte_more_is_not() {
    let f = fixture();
    let max = 25 * 1024 * 1024;
    assert_eq!(
        err(f.kv.put("big", vec![0u8; max + 1], &PutOptions::new())),
        "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."
    );
    assert_eq!(f.kv.get("big", &GetOptions::text()).unwrap(), None);
    f.kv.put("big", vec![7u8; max], &PutOptions::new()).unwrap();
    let got = f.kv.get_entry("big", None).unwrap().unwrap();
    assert_eq!(got.value.len(), max);
}

#[test]
fn empty_value_is_allowed() {
    let f = fixture();
    f.kv.put("k", "", &PutOptions::new()).unwrap();
    assert_eq!(text(&f, "k").as_deref(), Some(""));
}

#[test]
fn put_overwrites_value_metadata_and_expiration() {
    let f = fixture();
    let opts = PutOptions::new()
        .expiration_ttl(600.0)
        .metadata(json!({"v": 1}));
    f.kv.put("k", "one", &opts).unwrap();
    f.kv.put("k", "two", &PutOptions::new()).unwrap();
    let e = f.kv.get_entry("k", None).unwrap().unwrap();
    assert_eq!(e.value, b"two");
    assert_eq!(e.metadata, None);
    assert_eq!(e.expiration, None);
}

#[test]
fn streamed_value_is_stored_and_its_size_limited() {
    let f = fixture_with(KvLimits {
        max_value_size: 10,
        ..KvLimits::default()
    });
    f.kv.put_stream("k", &b"0123456789"[..], &PutOptions::new())
        .unwrap();
    assert_eq!(text(&f, "k").as_deref(), Some("0123456789"));
    // The whole stream is measured, so the message states its real length.
    assert_eq!(
        err(f.kv.put_stream("k", &[1u8; 25][..], &PutOptions::new())),
        "KV PUT failed: 413 Value length of 25 exceeds limit of 10."
    );
    assert_eq!(text(&f, "k").as_deref(), Some("0123456789"));
}

#[test]
fn metadata_of_1024_serialized_bytes_is_accepted_1025_is_not() {
    let f = fixture();
    // {"m":"..."} is 8 bytes of punctuation plus the string.
    let ok = json!({ "m": "x".repeat(1016) });
    assert_eq!(ok.to_string().len(), 1024);
    f.kv.put("k", "v", &PutOptions::new().metadata(ok.clone()))
        .unwrap();
    let too_big = json!({ "m": "x".repeat(1017) });
    let e =
        f.kv.put("k2", "v", &PutOptions::new().metadata(too_big))
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024."
    );
    assert_eq!(e.status(), Some(413));
    assert_eq!(f.kv.get_entry("k2", None).unwrap(), None);
}

#[test]
fn metadata_round_trips_through_get_and_list() {
    let f = fixture();
    let meta = json!({"owner": "ann", "tags": ["a", "b"], "n": 3, "nested": {"ok": true}});
    f.kv.put("k", "v", &PutOptions::new().metadata(meta.clone()))
        .unwrap();
    let got = f.kv.get_with_metadata("k", &GetOptions::text()).unwrap();
    assert_eq!(got.metadata, Some(meta.clone()));
    assert_eq!(got.cache_status, None);
    let listed = f.kv.list(&ListOptions::new()).unwrap();
    assert_eq!(listed.keys[0].metadata, Some(meta));
    // Scalars are metadata too.
    f.kv.put(
        "s",
        "v",
        &PutOptions::new().metadata(json!("just a string")),
    )
    .unwrap();
    let got = f.kv.get_with_metadata("s", &GetOptions::text()).unwrap();
    assert_eq!(got.metadata, Some(json!("just a string")));
}

#[test]
fn null_metadata_means_no_metadata() {
    let f = fixture();
    f.kv.put("k", "v", &PutOptions::new().metadata(json!(null)))
        .unwrap();
    let got = f.kv.get_with_metadata("k", &GetOptions::text()).unwrap();
    assert_eq!(got.metadata, None);
    let listed = f.kv.list(&ListOptions::new()).unwrap();
    assert_eq!(listed.keys[0].metadata, None);
}

#[test]
fn expiration_ttl_must_be_at_least_60() {
    let f = fixture();
    assert_eq!(
        err(f.kv.put("k", "v", &PutOptions::new().expiration_ttl(59.0))),
        "KV PUT failed: 400 Invalid expiration_ttl of 59. Expiration TTL must be at least 60."
    );
    f.kv.put("k", "v", &PutOptions::new().expiration_ttl(60.0))
        .unwrap();
    let e = f.kv.get_entry("k", None).unwrap().unwrap();
    assert_eq!(e.expiration, Some(START_SECS + 60));
}

#[test]
fn expiration_ttl_must_be_a_positive_integer() {
    let f = fixture();
    for (ttl, shown) in [
        (0.0, "0"),
        (-5.0, "-5"),
        (f64::NAN, "NaN"),
        (90.5, "90.5"),
        (f64::INFINITY, "Infinity"),
    ] {
        assert_eq!(
            err(f.kv.put("k", "v", &PutOptions::new().expiration_ttl(ttl))),
            format!(
                "KV PUT failed: 400 Invalid expiration_ttl of {shown}. Please specify integer greater than 0."
            )
        );
    }
    assert_eq!(f.kv.get_entry("k", None).unwrap(), None);
}

#[test]
fn expiration_must_be_at_least_60_seconds_ahead() {
    let f = fixture();
    let soon = (START_SECS + 59) as f64;
    assert_eq!(
        err(f.kv.put("k", "v", &PutOptions::new().expiration(soon))),
        format!(
            "KV PUT failed: 400 Invalid expiration of {}. Expiration times must be at least 60 seconds in the future.",
            START_SECS + 59
        )
    );
    let ok = (START_SECS + 60) as f64;
    f.kv.put("k", "v", &PutOptions::new().expiration(ok))
        .unwrap();
    let e = f.kv.get_entry("k", None).unwrap().unwrap();
    assert_eq!(e.expiration, Some(START_SECS + 60));
}

#[test]
fn expiration_in_the_past_or_not_an_integer_is_refused() {
    let f = fixture();
    let now = START_SECS as f64;
    for (at, shown) in [
        (now, START_SECS.to_string()),
        (now - 100.0, (START_SECS - 100).to_string()),
        (-1.0, "-1".to_owned()),
        (f64::NAN, "NaN".to_owned()),
        (now + 120.5, format!("{}.5", START_SECS + 120)),
    ] {
        assert_eq!(
            err(f.kv.put("k", "v", &PutOptions::new().expiration(at))),
            format!(
                "KV PUT failed: 400 Invalid expiration of {shown}. Please specify integer greater than the current number of seconds since the UNIX epoch."
            )
        );
    }
}

#[test]
fn expiration_ttl_takes_precedence_over_expiration() {
    let f = fixture();
    let opts = PutOptions::new()
        .expiration((START_SECS + 10_000) as f64)
        .expiration_ttl(120.0);
    f.kv.put("k", "v", &opts).unwrap();
    let e = f.kv.get_entry("k", None).unwrap().unwrap();
    assert_eq!(e.expiration, Some(START_SECS + 120));
    // An invalid expiration beside a valid TTL is ignored, as on Cloudflare.
    let opts = PutOptions::new().expiration(1.0).expiration_ttl(120.0);
    f.kv.put("k", "v", &opts).unwrap();
}

#[test]
fn key_is_checked_before_options_and_options_before_value() {
    let f = fixture_with(KvLimits {
        max_value_size: 1,
        ..KvLimits::default()
    });
    let bad_ttl = PutOptions::new().expiration_ttl(1.0);
    assert_eq!(
        err(f.kv.put("", "too long", &bad_ttl)),
        "Key name cannot be empty."
    );
    assert_eq!(
        err(f.kv.put("k", "too long", &bad_ttl)),
        "KV PUT failed: 400 Invalid expiration_ttl of 1. Expiration TTL must be at least 60."
    );
}

#[test]
fn put_many_writes_all_entries_or_none() {
    let f = fixture();
    f.kv.put_many(&[
        ("a", "1", PutOptions::new()),
        ("b", "2", PutOptions::new().metadata(json!({"n": 2}))),
    ])
    .unwrap();
    assert_eq!(text(&f, "a").as_deref(), Some("1"));
    assert_eq!(text(&f, "b").as_deref(), Some("2"));

    // One bad entry anywhere: nothing of the call is written.
    let e = err(f.kv.put_many(&[
        ("c", "3", PutOptions::new()),
        ("d", "4", PutOptions::new().expiration_ttl(10.0)),
    ]));
    assert!(e.contains("expiration_ttl") || e.contains("60"), "{e}");
    assert_eq!(text(&f, "c"), None);
    assert_eq!(text(&f, "d"), None);
}

on_postgres!(
    value_of_25_mib_is_accepted_one_byte_more_is_not,
    empty_value_is_allowed,
    put_overwrites_value_metadata_and_expiration,
    streamed_value_is_stored_and_its_size_limited,
    metadata_of_1024_serialized_bytes_is_accepted_1025_is_not,
    metadata_round_trips_through_get_and_list,
    null_metadata_means_no_metadata,
    expiration_ttl_must_be_at_least_60,
    expiration_ttl_must_be_a_positive_integer,
    expiration_must_be_at_least_60_seconds_ahead,
    expiration_in_the_past_or_not_an_integer_is_refused,
    expiration_ttl_takes_precedence_over_expiration,
    key_is_checked_before_options_and_options_before_value,
    put_many_writes_all_entries_or_none,
);
