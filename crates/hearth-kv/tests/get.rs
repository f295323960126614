//! get() and getWithMetadata(): types, cacheTtl, missing keys.

#[macro_use]
mod common;

use hearth_core::{ContractError, ErrorClass};
use std::io::Read;

use common::*;
use hearth_kv::{GetOptions, KvError, KvValue, KvValueType, PutOptions};
use serde_json::json;

#[test]
fn missing_key_reads_as_none() {
    let f = fixture();
    assert_eq!(f.kv.get("nope", &GetOptions::text()).unwrap(), None);
    assert_eq!(f.kv.get("nope", &GetOptions::json()).unwrap(), None);
    let r = f.kv.get_with_metadata("nope", &GetOptions::text()).unwrap();
    assert_eq!((r.value, r.metadata, r.cache_status), (None, None, None));
}

#[test]
fn value_is_returned_as_each_type() {
    let f = fixture();
    f.kv.put("k", r#"{"a":[1,2]}"#, &PutOptions::new()).unwrap();
    assert_eq!(
        f.kv.get("k", &GetOptions::text()).unwrap(),
        Some(KvValue::Text(r#"{"a":[1,2]}"#.to_owned()))
    );
    assert_eq!(
        f.kv.get("k", &GetOptions::json()).unwrap(),
        Some(KvValue::Json(json!({"a": [1, 2]})))
    );
    assert_eq!(
        f.kv.get("k", &GetOptions::array_buffer()).unwrap(),
        Some(KvValue::ArrayBuffer(br#"{"a":[1,2]}"#.to_vec()))
    );
    let mut stream =
        f.kv.get("k", &GetOptions::stream())
            .unwrap()
            .unwrap()
            .into_stream()
            .unwrap();
    assert_eq!(stream.len(), 11);
    let mut first = [0u8; 4];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, br#"{"a""#);
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, br#":[1,2]}"#);
}

#[test]
fn default_type_is_text() {
    assert_eq!(GetOptions::default().value_type, KvValueType::Text);
}

#[test]
fn binary_values_survive_and_text_replaces_invalid_utf8() {
    let f = fixture();
    let bytes = vec![0u8, 0xFF, 0xFE, b'a'];
    f.kv.put("bin", &bytes, &PutOptions::new()).unwrap();
    assert_eq!(
        f.kv.get("bin", &GetOptions::array_buffer()).unwrap(),
        Some(KvValue::ArrayBuffer(bytes))
    );
    assert_eq!(text(&f, "bin").as_deref(), Some("\0\u{FFFD}\u{FFFD}a"));
}

#[test]
fn json_type_on_a_non_json_value_is_a_syntax_error() {
    let f = fixture();
    f.kv.put("k", "not json", &PutOptions::new()).unwrap();
    let e = f.kv.get("k", &GetOptions::json()).unwrap_err();
    assert!(matches!(e, KvError::InvalidJson(_)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::SyntaxError);
}

#[test]
fn unknown_type_name_is_refused_with_cloudflares_message() {
    let e = KvValueType::parse("blob").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unknown response type. Possible types are \"text\", \"arrayBuffer\", \"json\", and \"stream\"."
    );
    assert_eq!(e.class(), ErrorClass::TypeError);
    // Names are case-sensitive, as on Cloudflare.
    assert!(KvValueType::parse("arraybuffer").is_err());
    for t in ["text", "json", "arrayBuffer", "stream"] {
        assert_eq!(KvValueType::parse(t).unwrap().as_str(), t);
    }
}

#[test]
fn cache_ttl_must_be_at_least_30() {
    let f = fixture();
    f.kv.put("k", "v", &PutOptions::new()).unwrap();
    assert_eq!(
        err(f.kv.get("k", &GetOptions::text().with_cache_ttl(29.0))),
        "KV GET failed: 400 Invalid cache_ttl of 29. Cache TTL must be at least 30."
    );
    assert_eq!(
        err(f
            .kv
            .get_with_metadata("k", &GetOptions::text().with_cache_ttl(f64::NAN))),
        "KV GET failed: 400 Invalid cache_ttl of NaN. Cache TTL must be at least 30."
    );
    assert_eq!(
        err(f.kv.get("k", &GetOptions::text().with_cache_ttl(-60.0))),
        "KV GET failed: 400 Invalid cache_ttl of -60. Cache TTL must be at least 30."
    );
    // Checked even when the key is missing.
    assert_eq!(
        err(f.kv.get("missing", &GetOptions::text().with_cache_ttl(0.0))),
        "KV GET failed: 400 Invalid cache_ttl of 0. Cache TTL must be at least 30."
    );
    for ok in [30.0, 60.0, 86_400.0] {
        assert_eq!(text_with_ttl(&f, ok).as_deref(), Some("v"), "cacheTtl {ok}");
    }
}

fn text_with_ttl(f: &Fixture, ttl: f64) -> Option<String> {
    f.kv.get("k", &GetOptions::text().with_cache_ttl(ttl))
        .unwrap()
        .and_then(|v| v.as_text().map(str::to_owned))
}

#[test]
fn cache_ttl_does_not_hide_writes() {
    let f = fixture();
    f.kv.put("k", "one", &PutOptions::new()).unwrap();
    assert_eq!(text_with_ttl(&f, 3600.0).as_deref(), Some("one"));
    f.kv.put("k", "two", &PutOptions::new()).unwrap();
    assert_eq!(text_with_ttl(&f, 3600.0).as_deref(), Some("two"));
}

#[test]
fn get_with_metadata_decodes_the_value_and_returns_metadata() {
    let f = fixture();
    f.kv.put("k", "[1]", &PutOptions::new().metadata(json!({"m": 1})))
        .unwrap();
    let r = f.kv.get_with_metadata("k", &GetOptions::json()).unwrap();
    assert_eq!(r.value, Some(KvValue::Json(json!([1]))));
    assert_eq!(r.metadata, Some(json!({"m": 1})));
    assert_eq!(r.cache_status, None);
    // Without metadata, metadata is None.
    f.kv.put("plain", "x", &PutOptions::new()).unwrap();
    let r =
        f.kv.get_with_metadata("plain", &GetOptions::text())
            .unwrap();
    assert_eq!(r.metadata, None);
    assert_eq!(r.value, Some(KvValue::Text("x".into())));
}

#[test]
fn delete_removes_and_is_idempotent() {
    let f = fixture();
    f.kv.put("k", "v", &PutOptions::new()).unwrap();
    f.kv.delete("k").unwrap();
    assert_eq!(text(&f, "k"), None);
    f.kv.delete("k").unwrap();
    f.kv.delete("never-existed").unwrap();
    assert_eq!(f.stored_rows(), 0);
}

on_postgres!(
    missing_key_reads_as_none,
    value_is_returned_as_each_type,
    default_type_is_text,
    binary_values_survive_and_text_replaces_invalid_utf8,
    json_type_on_a_non_json_value_is_a_syntax_error,
    unknown_type_name_is_refused_with_cloudflares_message,
    cache_ttl_must_be_at_least_30,
    cache_ttl_does_not_hide_writes,
    get_with_metadata_decodes_the_value_and_returns_metadata,
    delete_removes_and_is_idempotent,
);
