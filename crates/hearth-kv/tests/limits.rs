//! Every limit is configurable; raised limits admit what Cloudflare refuses.

#[macro_use]
mod common;

use common::*;
use hearth_kv::validate::{
    MAX_BULK_GET_KEYS, MAX_BULK_GET_SIZE, MAX_KEY_SIZE, MAX_LIST_KEYS, MAX_METADATA_SIZE,
    MAX_VALUE_SIZE, MIN_CACHE_TTL, MIN_EXPIRATION_TTL,
};
use hearth_kv::{GetOptions, KvLimits, ListOptions, PutOptions};
use serde_json::json;

#[test]
fn defaults_are_cloudflares_values() {
    let l = KvLimits::default();
    assert_eq!(l.max_key_size, 512);
    assert_eq!(l.max_value_size, 25 * 1024 * 1024);
    assert_eq!(l.max_metadata_size, 1024);
    assert_eq!(l.min_expiration_ttl, 60);
    assert_eq!(l.min_cache_ttl, 30);
    assert_eq!(l.max_list_keys, 1000);
    assert_eq!(l.max_bulk_get_keys, 100);
    assert_eq!(l.max_bulk_get_size, 25 * 1024 * 1024);
    assert_eq!(
        (
            MAX_KEY_SIZE,
            MAX_VALUE_SIZE,
            MAX_METADATA_SIZE,
            MIN_EXPIRATION_TTL,
            MIN_CACHE_TTL,
            MAX_LIST_KEYS,
            MAX_BULK_GET_KEYS,
            MAX_BULK_GET_SIZE
        ),
        (
            l.max_key_size,
            l.max_value_size,
            l.max_metadata_size,
            l.min_expiration_ttl,
            l.min_cache_ttl,
            l.max_list_keys,
            l.max_bulk_get_keys,
            l.max_bulk_get_size
        )
    );
}

#[test]
fn raised_limits_are_honoured_and_named_in_messages() {
    let f = fixture_with(KvLimits {
        max_key_size: 1024,
        max_metadata_size: 4096,
        min_expiration_ttl: 1,
        min_cache_ttl: 0,
        max_list_keys: 5000,
        max_bulk_get_keys: 200,
        ..KvLimits::default()
    });
    let key = "k".repeat(1000);
    f.kv.put(&key, "v", &PutOptions::new().expiration_ttl(1.0))
        .unwrap();
    assert_eq!(
        err(f.kv.put(&"k".repeat(1025), "v", &PutOptions::new())),
        "KV PUT failed: 414 UTF-8 encoded length of 1025 exceeds key length limit of 1024."
    );
    f.kv.put(
        "m",
        "v",
        &PutOptions::new().metadata(json!("x".repeat(3000))),
    )
    .unwrap();
    f.kv.get("m", &GetOptions::text().with_cache_ttl(1.0))
        .unwrap();
    f.kv.list(&ListOptions::new().limit(5000.0)).unwrap();
    assert_eq!(
        err(f.kv.list(&ListOptions::new().limit(5001.0))),
        "KV GET failed: 400 Invalid key_count_limit of 5001. Please specify an integer less than 5000."
    );
    let keys: Vec<String> = (0..200).map(|i| format!("b{i}")).collect();
    f.kv.get_bulk(&keys, &GetOptions::text()).unwrap();
}

#[test]
fn lowered_limits_are_enforced() {
    let f = fixture_with(KvLimits {
        max_key_size: 4,
        max_metadata_size: 2,
        min_expiration_ttl: 3600,
        min_cache_ttl: 300,
        max_bulk_get_keys: 2,
        ..KvLimits::default()
    });
    assert_eq!(
        err(f.kv.delete("12345")),
        "KV DELETE failed: 414 UTF-8 encoded length of 5 exceeds key length limit of 4."
    );
    assert_eq!(
        err(f.kv.put("k", "v", &PutOptions::new().metadata(json!("ab")))),
        "KV PUT failed: 413 Metadata length of 4 exceeds limit of 2."
    );
    assert_eq!(
        err(f.kv.put("k", "v", &PutOptions::new().expiration_ttl(60.0))),
        "KV PUT failed: 400 Invalid expiration_ttl of 60. Expiration TTL must be at least 3600."
    );
    assert_eq!(
        err(f.kv.put(
            "k",
            "v",
            &PutOptions::new().expiration((START_SECS + 60) as f64)
        )),
        format!(
            "KV PUT failed: 400 Invalid expiration of {}. Expiration times must be at least 3600 seconds in the future.",
            START_SECS + 60
        )
    );
    assert_eq!(
        err(f.kv.get("k", &GetOptions::text().with_cache_ttl(60.0))),
        "KV GET failed: 400 Invalid cache_ttl of 60. Cache TTL must be at least 300."
    );
    assert_eq!(
        err(f.kv.get_bulk(&["a", "b", "c"], &GetOptions::text())),
        "KV GET_BULK failed: 400 You can request a maximum of 2 keys"
    );
}

on_postgres!(
    defaults_are_cloudflares_values,
    raised_limits_are_honoured_and_named_in_messages,
    lowered_limits_are_enforced,
);
