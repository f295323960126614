//! put / get / head / delete: the object contract, its limits and messages.

#[macro_use]
mod common;

use common::*;
use hearth_r2::*;

#[test]
fn put_returns_the_stored_object_and_get_streams_it_back() {
    let f = open();
    let obj = f.put("a/b.txt", b"hello world");
    assert_eq!(obj.key, "a/b.txt");
    assert_eq!(obj.size, 11);
    assert_eq!(obj.etag, md5_hex(b"hello world"));
    assert_eq!(obj.http_etag(), format!("\"{}\"", obj.etag));
    assert_eq!(obj.uploaded, T0);
    assert_eq!(obj.storage_class, "Standard");
    assert_eq!(obj.version.len(), 32);
    assert_eq!(obj.checksums.md5.as_deref(), Some(obj.etag.as_str()));
    assert_eq!(obj.checksums.sha256, None);
    assert_eq!(obj.http_metadata, Some(R2HttpMetadata::default()));
    assert_eq!(obj.custom_metadata, Some(Default::default()));

    let got = f
        .bucket
        .get("a/b.txt", &R2GetOptions::default())
        .unwrap()
        .unwrap()
        .into_body()
        .unwrap();
    assert_eq!(got.object.version, obj.version);
    assert_eq!(
        got.object.range,
        Some(R2ObjectRange {
            offset: 0,
            length: 11
        })
    );
    assert_eq!(got.body.remaining(), 11);
    assert_eq!(got.body.bytes().unwrap(), b"hello world");
}

#[test]
fn missing_keys_are_none_for_head_and_get() {
    let f = open();
    assert!(f.bucket.head("nope").unwrap().is_none());
    assert!(
        f.bucket
            .get("nope", &R2GetOptions::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn metadata_round_trips_through_head() {
    let f = open();
    let http = R2HttpMetadata {
        content_type: Some("text/plain".into()),
        content_language: Some("en".into()),
        content_disposition: Some("inline".into()),
        content_encoding: Some("identity".into()),
        cache_control: Some("max-age=60".into()),
        cache_expiry: Some(784_111_777_000),
    };
    let opts = R2PutOptions {
        http_metadata: Some(http.clone()),
        custom_metadata: Some(meta(&[("owner", "ann"), ("n", "1")])),
        ..Default::default()
    };
    f.bucket.put("k", &b"v"[..], &opts).unwrap().unwrap();
    let head = f.bucket.head("k").unwrap().unwrap();
    assert_eq!(head.http_metadata, Some(http.clone()));
    assert_eq!(
        head.custom_metadata,
        Some(meta(&[("owner", "ann"), ("n", "1")]))
    );
    assert_eq!(
        head.range,
        Some(R2ObjectRange {
            offset: 0,
            length: 1
        })
    );
    let headers = http.to_headers();
    assert!(headers.contains(&("expires", "Sun, 06 Nov 1994 08:49:37 GMT".to_string())));
    assert!(headers.contains(&("content-type", "text/plain".to_string())));
    let back = R2HttpMetadata::from_headers(headers.iter().map(|(k, v)| (*k, v.as_str())));
    assert_eq!(back, http);
}

#[test]
fn put_replaces_the_previous_version_and_removes_its_blob() {
    let f = open();
    let first = f.put("k", b"one");
    f.clock.advance_secs(5);
    let second = f.put("k", b"two!");
    assert_ne!(first.version, second.version);
    assert_eq!(second.uploaded, T0 + 5000);
    assert_eq!(f.get_text("k").as_deref(), Some("two!"));
    assert_eq!(files_in(f.path(), "blobs"), vec![second.version.clone()]);
}

#[test]
fn empty_objects_are_fine() {
    let f = open();
    let o = f.put("empty", b"");
    assert_eq!(o.size, 0);
    assert_eq!(o.etag, "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(f.get_text("empty").as_deref(), Some(""));
}

#[test]
fn key_longer_than_1024_bytes_is_refused_everywhere() {
    let f = open();
    let ok = "k".repeat(MAX_KEY_BYTES);
    f.put(&ok, b"x");
    // Multi-byte characters count by bytes: 342 * 3 = 1026.
    let long = "€".repeat(342);
    let err = f
        .bucket
        .put(&long, &b"x"[..], &R2PutOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "put: The specified object name is not valid. (10020)"
    );
    assert_eq!(err.code(), Some(10020));
    assert_eq!(
        f.bucket.head(&long).unwrap_err().to_string(),
        "head: The specified object name is not valid. (10020)"
    );
    assert_eq!(
        f.bucket
            .get(&long, &R2GetOptions::default())
            .unwrap_err()
            .to_string(),
        "get: The specified object name is not valid. (10020)"
    );
    assert_eq!(
        f.bucket.delete(&long).unwrap_err().to_string(),
        "delete: The specified object name is not valid. (10020)"
    );
    assert_eq!(files_in(f.path(), "blobs").len(), 1);
}

#[test]
fn custom_metadata_over_2048_bytes_is_refused() {
    let f = open();
    let fits = meta(&[("k", &"v".repeat(MAX_CUSTOM_METADATA_BYTES - 1))]);
    let opts = R2PutOptions {
        custom_metadata: Some(fits),
        ..Default::default()
    };
    assert!(f.bucket.put("a", &b"x"[..], &opts).unwrap().is_some());

    let too_big = meta(&[("k", &"v".repeat(MAX_CUSTOM_METADATA_BYTES))]);
    let opts = R2PutOptions {
        custom_metadata: Some(too_big),
        ..Default::default()
    };
    let err = f.bucket.put("b", &b"x"[..], &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "put: Your metadata headers exceed the maximum allowed metadata size. (10012)"
    );
    assert!(f.bucket.head("b").unwrap().is_none());

    // Characters above U+00FF count double: 1024 of them reach the limit.
    let wide = meta(&[("", &"€".repeat(1025))]);
    let opts = R2PutOptions {
        custom_metadata: Some(wide),
        ..Default::default()
    };
    assert!(matches!(
        f.bucket.put("c", &b"x"[..], &opts),
        Err(R2Error::MetadataTooLarge { .. })
    ));
}

#[test]
fn body_over_the_upload_limit_is_refused_and_leaves_nothing() {
    let f = open_with(R2Limits {
        max_upload_bytes: 10,
        ..R2Limits::default()
    });
    f.put("fits", &[7u8; 10]);
    let err = f
        .bucket
        .put("big", &[7u8; 11][..], &R2PutOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "put: Your proposed upload exceeds the maximum allowed object size. (100100)"
    );
    assert!(f.bucket.head("big").unwrap().is_none());
    assert_eq!(files_in(f.path(), "blobs").len(), 1);
}

#[test]
fn default_upload_limit_is_5_gib_less_5_mib() {
    assert_eq!(MAX_UPLOAD_BYTES, 5_368_709_120 - 5_242_880);
    assert_eq!(R2Limits::default().max_upload_bytes, MAX_UPLOAD_BYTES);
    assert_eq!(R2Limits::default().min_part_bytes, 5 * 1024 * 1024);
}

fn put_with(
    f: &Fixture,
    key: &str,
    body: &[u8],
    c: R2ExpectedChecksum,
) -> Result<Option<R2Object>, R2Error> {
    f.bucket.put(
        key,
        body,
        &R2PutOptions {
            checksum: Some(c),
            ..Default::default()
        },
    )
}

#[test]
fn matching_checksums_are_stored() {
    use sha2::Digest;
    let f = open();
    let sha = hex::encode(sha2::Sha256::digest(b"data"));
    let o = put_with(
        &f,
        "k",
        b"data",
        R2ExpectedChecksum::from_hex(R2HashAlgorithm::Sha256, &sha).unwrap(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(o.checksums.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(o.checksums.md5, Some(md5_hex(b"data")));
    assert_eq!(f.bucket.head("k").unwrap().unwrap().checksums, o.checksums);

    for (alg, digest) in [
        (R2HashAlgorithm::Sha1, sha1::Sha1::digest(b"data").to_vec()),
        (
            R2HashAlgorithm::Sha384,
            sha2::Sha384::digest(b"data").to_vec(),
        ),
        (
            R2HashAlgorithm::Sha512,
            sha2::Sha512::digest(b"data").to_vec(),
        ),
        (R2HashAlgorithm::Md5, md5::Md5::digest(b"data").to_vec()),
    ] {
        let c = R2ExpectedChecksum::from_bytes(alg, &digest).unwrap();
        let o = put_with(&f, "k", b"data", c).unwrap().unwrap();
        let stored = match alg {
            R2HashAlgorithm::Sha1 => o.checksums.sha1,
            R2HashAlgorithm::Sha384 => o.checksums.sha384,
            R2HashAlgorithm::Sha512 => o.checksums.sha512,
            _ => o.checksums.md5,
        };
        assert_eq!(stored, Some(hex::encode(&digest)));
    }
}

#[test]
fn checksum_mismatch_is_refused_and_writes_nothing() {
    let f = open();
    let old = f.put("k", b"old");
    let wrong = md5_hex(b"something else");
    let err = put_with(
        &f,
        "k",
        b"new",
        R2ExpectedChecksum::from_hex(R2HashAlgorithm::Md5, &wrong).unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "put: The MD5 checksum you specified did not match what we received.\n\
             You provided a MD5 checksum with value: {wrong}\n\
             Actual MD5 was: {} (10037)",
            md5_hex(b"new")
        )
    );
    assert_eq!(err.code(), Some(10037));
    // The old object is untouched and no stray file remains.
    assert_eq!(f.get_text("k").as_deref(), Some("old"));
    assert_eq!(files_in(f.path(), "blobs"), vec![old.version]);

    let zeros = "0".repeat(64);
    let err = put_with(
        &f,
        "new",
        b"x",
        R2ExpectedChecksum::from_hex(R2HashAlgorithm::Sha256, &zeros).unwrap(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("put: The SHA-256 checksum you specified did not match what we received.")
    );
    assert!(f.bucket.head("new").unwrap().is_none());
}

#[test]
fn malformed_expected_checksums_get_the_runtime_messages() {
    let e = R2ExpectedChecksum::from_hex(R2HashAlgorithm::Md5, "abc").unwrap_err();
    assert_eq!(e.to_string(), "MD5 is 32 hex characters, not 3");
    let e = R2ExpectedChecksum::from_hex(R2HashAlgorithm::Sha1, &"z".repeat(40)).unwrap_err();
    assert_eq!(e.to_string(), "Provided SHA-1 wasn't a valid hex string");
    let e = R2ExpectedChecksum::from_bytes(R2HashAlgorithm::Sha512, &[0; 3]).unwrap_err();
    assert_eq!(e.to_string(), "SHA-512 is 64 bytes, not 3");
    assert_eq!(e.code(), None);
}

fn get_range(f: &Fixture, key: &str, range: R2Range) -> Result<(R2ObjectRange, String), R2Error> {
    let r = f
        .bucket
        .get(
            key,
            &R2GetOptions {
                range: Some(range),
                ..Default::default()
            },
        )?
        .unwrap()
        .into_body()
        .unwrap();
    Ok((r.object.range.unwrap(), r.body.text().unwrap()))
}

#[test]
fn every_range_form_returns_the_right_bytes() {
    let f = open();
    f.put("k", b"0123456789");
    let r = |offset, length| R2ObjectRange { offset, length };
    assert_eq!(
        get_range(
            &f,
            "k",
            R2Range::Offset {
                offset: 2,
                length: Some(3)
            }
        )
        .unwrap(),
        (r(2, 3), "234".into())
    );
    assert_eq!(
        get_range(
            &f,
            "k",
            R2Range::Offset {
                offset: 7,
                length: None
            }
        )
        .unwrap(),
        (r(7, 3), "789".into())
    );
    assert_eq!(
        get_range(&f, "k", R2Range::Length { length: 4 }).unwrap(),
        (r(0, 4), "0123".into())
    );
    assert_eq!(
        get_range(&f, "k", R2Range::Suffix { suffix: 3 }).unwrap(),
        (r(7, 3), "789".into())
    );
    // Lengths past the end are clamped, not refused.
    assert_eq!(
        get_range(
            &f,
            "k",
            R2Range::Offset {
                offset: 8,
                length: Some(100)
            }
        )
        .unwrap(),
        (r(8, 2), "89".into())
    );
    assert_eq!(
        get_range(&f, "k", R2Range::Suffix { suffix: 100 }).unwrap(),
        (r(0, 10), "0123456789".into())
    );
}

#[test]
fn unsatisfiable_ranges_get_r2s_416_error() {
    let f = open();
    f.put("k", b"0123456789");
    for range in [
        R2Range::Offset {
            offset: 11,
            length: None,
        },
        R2Range::Offset {
            offset: 10,
            length: None,
        },
        R2Range::Offset {
            offset: 0,
            length: Some(0),
        },
        R2Range::Length { length: 0 },
        R2Range::Suffix { suffix: 0 },
    ] {
        let err = get_range(&f, "k", range).unwrap_err();
        assert_eq!(
            err.to_string(),
            "get: The requested range is not satisfiable (10039)",
            "{range:?}"
        );
        assert_eq!(err.status(), 416);
    }
}

#[test]
fn delete_is_idempotent_and_removes_the_blob() {
    let f = open();
    f.put("k", b"v");
    f.bucket.delete("k").unwrap();
    f.bucket.delete("k").unwrap();
    assert!(f.bucket.head("k").unwrap().is_none());
    assert!(files_in(f.path(), "blobs").is_empty());
}

#[test]
fn delete_many_takes_1_to_1000_keys() {
    let f = open();
    for k in ["a", "b", "c"] {
        f.put(k, b"v");
    }
    f.bucket.delete_keys(&["a", "c", "missing"]).unwrap();
    assert!(f.bucket.head("a").unwrap().is_none());
    assert!(f.bucket.head("b").unwrap().is_some());
    assert!(f.bucket.head("c").unwrap().is_none());

    let many: Vec<String> = (0..=MAX_DELETE_KEYS).map(|i| format!("k{i}")).collect();
    let expected =
        "delete: The number of keys in the request must be between 1 and 1000 inclusive. (10027)";
    assert_eq!(
        f.bucket.delete_keys(&many).unwrap_err().to_string(),
        expected
    );
    let none: [&str; 0] = [];
    assert_eq!(
        f.bucket.delete_keys(&none).unwrap_err().to_string(),
        expected
    );
    f.bucket.delete_keys(&many[..MAX_DELETE_KEYS]).unwrap();
    assert!(f.bucket.head("b").unwrap().is_some());
}

#[test]
fn reopening_keeps_objects_and_metadata() {
    let f = open();
    let opts = R2PutOptions {
        custom_metadata: Some(meta(&[("a", "b")])),
        ..Default::default()
    };
    let o = f.bucket.put("k", &b"persist"[..], &opts).unwrap().unwrap();
    let f = f.reopen();
    let head = f.bucket.head("k").unwrap().unwrap();
    assert_eq!(head.version, o.version);
    assert_eq!(head.etag, o.etag);
    assert_eq!(head.custom_metadata, Some(meta(&[("a", "b")])));
    assert_eq!(f.get_text("k").as_deref(), Some("persist"));
}

#[test]
fn a_body_stays_readable_while_its_object_is_replaced_and_deleted() {
    let f = open();
    let big = vec![b'x'; 200_000];
    f.put("k", &big);
    let mut body = f
        .bucket
        .get("k", &R2GetOptions::default())
        .unwrap()
        .unwrap()
        .into_body()
        .unwrap()
        .body;
    let mut first = [0u8; 10];
    std::io::Read::read_exact(&mut body, &mut first).unwrap();
    f.put("k", b"new");
    f.bucket.delete("k").unwrap();
    let rest = body.bytes().unwrap();
    assert_eq!(rest.len(), big.len() - 10);
    assert!(files_in(f.path(), "blobs").is_empty());
}

// The same rules on an S3-compatible store (the moto double).
on_s3!(
    put_returns_the_stored_object_and_get_streams_it_back,
    missing_keys_are_none_for_head_and_get,
    metadata_round_trips_through_head,
    empty_objects_are_fine,
    custom_metadata_over_2048_bytes_is_refused,
    default_upload_limit_is_5_gib_less_5_mib,
    matching_checksums_are_stored,
    malformed_expected_checksums_get_the_runtime_messages,
    every_range_form_returns_the_right_bytes,
    unsatisfiable_ranges_get_r2s_416_error,
    delete_many_takes_1_to_1000_keys,
);
