//! Key rules: not empty, not "." or "..", at most 512 UTF-8 bytes.

#[macro_use]
mod common;

use common::*;
use hearth_core::{ContractError, ErrorClass};
use hearth_kv::{GetOptions, PutOptions};

#[test]
fn empty_key_is_refused_by_every_single_key_call() {
    let f = fixture();
    let msg = "Key name cannot be empty.";
    assert_eq!(err(f.kv.get("", &GetOptions::text())), msg);
    assert_eq!(err(f.kv.get_with_metadata("", &GetOptions::text())), msg);
    assert_eq!(err(f.kv.put("", "v", &PutOptions::new())), msg);
    assert_eq!(err(f.kv.delete("")), msg);
    let e = f.kv.delete("").unwrap_err();
    assert_eq!(e.class(), ErrorClass::TypeError);
    assert_eq!(e.status(), None);
}

#[test]
fn dot_and_dot_dot_are_refused() {
    let f = fixture();
    assert_eq!(
        err(f.kv.put(".", "v", &PutOptions::new())),
        "\".\" is not allowed as a key name."
    );
    assert_eq!(
        err(f.kv.get("..", &GetOptions::text())),
        "\"..\" is not allowed as a key name."
    );
    assert_eq!(
        err(f.kv.delete("..")),
        "\"..\" is not allowed as a key name."
    );
    // Only the exact names are special.
    f.kv.put("...", "three", &PutOptions::new()).unwrap();
    f.kv.put("./a", "path", &PutOptions::new()).unwrap();
    assert_eq!(text(&f, "...").as_deref(), Some("three"));
    assert_eq!(text(&f, "./a").as_deref(), Some("path"));
}

#[test]
fn key_of_512_bytes_is_accepted_513_is_not() {
    let f = fixture();
    let ok = "k".repeat(512);
    f.kv.put(&ok, "v", &PutOptions::new()).unwrap();
    assert_eq!(text(&f, &ok).as_deref(), Some("v"));

    let long = "k".repeat(513);
    assert_eq!(
        err(f.kv.put(&long, "v", &PutOptions::new())),
        "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
    assert_eq!(
        err(f.kv.get(&long, &GetOptions::text())),
        "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
    assert_eq!(
        err(f.kv.delete(&long)),
        "KV DELETE failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
    assert_eq!(f.kv.delete(&long).unwrap_err().status(), Some(414));
}

#[test]
fn key_length_counts_utf8_bytes_not_characters() {
    let f = fixture();
    // 171 three-byte characters = 513 bytes.
    let key = "€".repeat(171);
    assert_eq!(
        err(f.kv.put(&key, "v", &PutOptions::new())),
        "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
    let key = "€".repeat(170);
    f.kv.put(&key, "v", &PutOptions::new()).unwrap();
}

#[test]
fn any_other_key_is_valid_including_unicode_spaces_and_nul() {
    let f = fixture();
    for key in ["héllo wörld", "🙂/emoji", " ", "a\0b", "\n", "/", "%2F"] {
        f.kv.put(key, key, &PutOptions::new()).unwrap();
        assert_eq!(text(&f, key).as_deref(), Some(key), "{key:?}");
    }
}

on_postgres!(
    empty_key_is_refused_by_every_single_key_call,
    dot_and_dot_dot_are_refused,
    key_of_512_bytes_is_accepted_513_is_not,
    key_length_counts_utf8_bytes_not_characters,
    any_other_key_is_valid_including_unicode_spaces_and_nul,
);
