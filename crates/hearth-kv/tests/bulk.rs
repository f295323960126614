//! Bulk get: up to 100 keys, text or json only, a map in request order.

#[macro_use]
mod common;

use common::*;
use hearth_kv::{GetOptions, KvBulkEntry, KvLimits, KvValue, KvValueType, PutOptions};
use serde_json::json;

#[test]
fn returns_one_entry_per_key_in_request_order_missing_as_none() {
    let f = fixture();
    f.kv.put("b", "B", &PutOptions::new()).unwrap();
    f.kv.put("a", "A", &PutOptions::new()).unwrap();
    let map =
        f.kv.get_bulk(&["b", "missing", "a"], &GetOptions::text())
            .unwrap();
    assert_eq!(map.keys().collect::<Vec<_>>(), ["b", "missing", "a"]);
    assert_eq!(map.get("a"), Some(&Some(KvValue::Text("A".into()))));
    assert_eq!(map.get("b"), Some(&Some(KvValue::Text("B".into()))));
    assert_eq!(map.get("missing"), Some(&None));
    assert_eq!(map.get("not-requested"), None);
}

#[test]
fn duplicate_keys_collapse_into_one_entry() {
    let f = fixture();
    f.kv.put("a", "A", &PutOptions::new()).unwrap();
    let map = f.kv.get_bulk(&["a", "a"], &GetOptions::text()).unwrap();
    assert_eq!(map.len(), 1);
}

#[test]
fn json_type_parses_every_value() {
    let f = fixture();
    f.kv.put("x", r#"{"n":1}"#, &PutOptions::new()).unwrap();
    f.kv.put("y", "[true]", &PutOptions::new()).unwrap();
    let map = f.kv.get_bulk(&["x", "y"], &GetOptions::json()).unwrap();
    assert_eq!(map.get("x"), Some(&Some(KvValue::Json(json!({"n": 1})))));
    assert_eq!(map.get("y"), Some(&Some(KvValue::Json(json!([true])))));
}

#[test]
fn json_type_fails_if_any_value_is_not_json() {
    let f = fixture();
    f.kv.put("x", "1", &PutOptions::new()).unwrap();
    f.kv.put("y", "not json", &PutOptions::new()).unwrap();
    assert_eq!(
        err(f.kv.get_bulk(&["x", "y"], &GetOptions::json())),
        "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value"
    );
}

#[test]
fn array_buffer_and_stream_types_are_refused() {
    let f = fixture();
    assert_eq!(
        err(f.kv.get_bulk(&["a"], &GetOptions::array_buffer())),
        "KV GET_BULK failed: 400 \"arrayBuffer\" is not a valid type. Use \"json\" or \"text\""
    );
    assert_eq!(
        err(f.kv.get_bulk_with_metadata(&["a"], &GetOptions::stream())),
        "KV GET_BULK failed: 400 \"stream\" is not a valid type. Use \"json\" or \"text\""
    );
    assert_eq!(
        KvValueType::parse_bulk("blob").unwrap_err().to_string(),
        "KV GET_BULK failed: 400 \"blob\" is not a valid type. Use \"json\" or \"text\""
    );
}

#[test]
fn at_most_100_keys_and_at_least_one() {
    let f = fixture();
    let hundred: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    assert_eq!(
        f.kv.get_bulk(&hundred, &GetOptions::text()).unwrap().len(),
        100
    );
    let many: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    let e = f.kv.get_bulk(&many, &GetOptions::text()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "KV GET_BULK failed: 400 You can request a maximum of 100 keys"
    );
    assert_eq!(e.status(), Some(400));
    let none: [&str; 0] = [];
    assert_eq!(
        err(f.kv.get_bulk(&none, &GetOptions::text())),
        "KV GET_BULK failed: 400 You must request a minimum of 1 key"
    );
}

#[test]
fn every_key_is_validated_with_the_bulk_wording() {
    let f = fixture();
    assert_eq!(
        err(f.kv.get_bulk(&["ok", ""], &GetOptions::text())),
        "KV GET_BULK failed: 400 Key names must not be empty"
    );
    assert_eq!(
        err(f.kv.get_bulk(&[".."], &GetOptions::text())),
        "KV GET_BULK failed: 400 Illegal key name \"..\". Please use a different name."
    );
    let long = "x".repeat(513);
    assert_eq!(
        err(f.kv.get_bulk(&[long.as_str()], &GetOptions::text())),
        "KV GET_BULK failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
}

#[test]
fn cache_ttl_is_validated() {
    let f = fixture();
    assert_eq!(
        err(f
            .kv
            .get_bulk(&["a"], &GetOptions::text().with_cache_ttl(10.0))),
        "KV GET_BULK failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 30."
    );
    f.kv.get_bulk(&["a"], &GetOptions::text().with_cache_ttl(30.0))
        .unwrap();
}

#[test]
fn total_size_is_limited() {
    let f = fixture_with(KvLimits {
        max_bulk_get_size: 1024,
        ..KvLimits::default()
    });
    f.kv.put("a", vec![b'a'; 600], &PutOptions::new()).unwrap();
    f.kv.put("b", vec![b'b'; 600], &PutOptions::new()).unwrap();
    f.kv.get_bulk(&["a"], &GetOptions::text()).unwrap();
    assert_eq!(
        err(f.kv.get_bulk(&["a", "b"], &GetOptions::text())),
        "KV GET_BULK failed: 413 Total size of request exceeds the limit of 0.0009765625MB"
    );
}

#[test]
fn default_total_size_limit_reads_as_25mb() {
    let f = fixture_with(KvLimits {
        max_value_size: 26 * 1024 * 1024,
        ..KvLimits::default()
    });
    f.kv.put(
        "big",
        vec![b'x'; 25 * 1024 * 1024 + 1],
        &hearth_kv::PutOptions::new(),
    )
    .unwrap();
    assert_eq!(
        err(f.kv.get_bulk(&["big"], &GetOptions::text())),
        "KV GET_BULK failed: 413 Total size of request exceeds the limit of 25MB"
    );
}

#[test]
fn with_metadata_returns_value_and_metadata_per_key() {
    let f = fixture();
    f.kv.put("a", "1", &PutOptions::new().metadata(json!({"m": "a"})))
        .unwrap();
    f.kv.put("b", "2", &PutOptions::new()).unwrap();
    let map =
        f.kv.get_bulk_with_metadata(&["a", "b", "c"], &GetOptions::json())
            .unwrap();
    assert_eq!(
        map.get("a"),
        Some(&Some(KvBulkEntry {
            value: KvValue::Json(json!(1)),
            metadata: Some(json!({"m": "a"})),
        }))
    );
    assert_eq!(
        map.get("b"),
        Some(&Some(KvBulkEntry {
            value: KvValue::Json(json!(2)),
            metadata: None,
        }))
    );
    assert_eq!(map.get("c"), Some(&None));
}

#[test]
fn expired_keys_read_as_missing() {
    let f = fixture();
    f.kv.put("a", "A", &PutOptions::new().expiration_ttl(60.0))
        .unwrap();
    f.clock.advance_secs(60);
    let map = f.kv.get_bulk(&["a"], &GetOptions::text()).unwrap();
    assert_eq!(map.get("a"), Some(&None));
}

on_postgres!(
    returns_one_entry_per_key_in_request_order_missing_as_none,
    duplicate_keys_collapse_into_one_entry,
    json_type_parses_every_value,
    json_type_fails_if_any_value_is_not_json,
    array_buffer_and_stream_types_are_refused,
    at_most_100_keys_and_at_least_one,
    every_key_is_validated_with_the_bulk_wording,
    cache_ttl_is_validated,
    total_size_is_limited,
    default_total_size_limit_reads_as_25mb,
    with_metadata_returns_value_and_metadata_per_key,
    expired_keys_read_as_missing,
);
