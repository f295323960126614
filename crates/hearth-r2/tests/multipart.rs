//! Multipart uploads: parts, completion rules, etags, abort, resume.

#[macro_use]
mod common;

use common::*;
use hearth_r2::*;

fn upload(f: &Fixture, key: &str) -> R2MultipartUpload {
    f.bucket
        .create_multipart_upload(key, &R2MultipartOptions::default())
        .unwrap()
}

fn multipart_etag(parts: &[&[u8]]) -> String {
    use md5::Digest;
    let mut h = md5::Md5::new();
    for p in parts {
        h.update(md5::Md5::digest(p));
    }
    format!("{}-{}", hex::encode(h.finalize()), parts.len())
}

#[test]
fn parts_complete_into_one_object_with_r2s_etag() {
    let f = open_with(small_parts());
    let opts = R2MultipartOptions {
        http_metadata: Some(R2HttpMetadata {
            content_type: Some("text/plain".into()),
            ..Default::default()
        }),
        custom_metadata: Some(meta(&[("m", "1")])),
    };
    let up = f.bucket.create_multipart_upload("big", &opts).unwrap();
    assert_eq!(up.key(), "big");
    let p1 = up.upload_part(1, &b"aaaaa"[..]).unwrap();
    let p2 = up.upload_part(2, &b"bbbbb"[..]).unwrap();
    let p3 = up.upload_part(3, &b"cc"[..]).unwrap();
    assert_eq!(
        p1,
        R2UploadedPart {
            part_number: 1,
            etag: md5_hex(b"aaaaa")
        }
    );
    // Nothing is visible before completion.
    assert!(f.bucket.head("big").unwrap().is_none());

    let obj = up.complete(&[p1, p2, p3]).unwrap();
    assert_eq!(obj.size, 12);
    assert_eq!(obj.etag, multipart_etag(&[b"aaaaa", b"bbbbb", b"cc"]));
    assert!(obj.etag.ends_with("-3"));
    assert_eq!(obj.checksums, R2Checksums::default());
    assert_eq!(obj.custom_metadata, Some(meta(&[("m", "1")])));
    assert_eq!(f.get_text("big").as_deref(), Some("aaaaabbbbbcc"));
    let head = f.bucket.head("big").unwrap().unwrap();
    assert_eq!(
        head.http_metadata.unwrap().content_type.as_deref(),
        Some("text/plain")
    );
}

#[test]
fn the_documented_example_etag() {
    // Two parts with these MD5s complete to f77dc0eecdebcd774a2a22cb393ad2ff-2.
    use md5::Digest;
    let mut h = md5::Md5::new();
    h.update(hex::decode("bce6bf66aeb76c7040fdd5f4eccb78e6").unwrap());
    h.update(hex::decode("8165449fc15bbf43d3b674595cbcc406").unwrap());
    assert_eq!(
        format!("{}-2", hex::encode(h.finalize())),
        "f77dc0eecdebcd774a2a22cb393ad2ff-2"
    );
}

#[test]
fn ranges_read_across_part_boundaries() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let parts = vec![
        up.upload_part(1, &b"01234"[..]).unwrap(),
        up.upload_part(2, &b"56789"[..]).unwrap(),
        up.upload_part(3, &b"ab"[..]).unwrap(),
    ];
    up.complete(&parts).unwrap();
    let read = |range| {
        f.bucket
            .get(
                "k",
                &R2GetOptions {
                    range: Some(range),
                    ..Default::default()
                },
            )
            .unwrap()
            .unwrap()
            .into_body()
            .unwrap()
            .body
            .text()
            .unwrap()
    };
    assert_eq!(
        read(R2Range::Offset {
            offset: 3,
            length: Some(5)
        }),
        "34567"
    );
    assert_eq!(read(R2Range::Suffix { suffix: 4 }), "89ab");
    assert_eq!(
        read(R2Range::Offset {
            offset: 5,
            length: Some(5)
        }),
        "56789"
    );
    assert_eq!(read(R2Range::Length { length: 1 }), "0");
}

#[test]
fn a_non_final_part_below_the_minimum_is_entity_too_small() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let p1 = up.upload_part(1, &b"abcd"[..]).unwrap();
    let p2 = up.upload_part(2, &b"ef"[..]).unwrap();
    let err = up.complete(&[p1.clone(), p2.clone()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "completeMultipartUpload: Your proposed upload is smaller than the minimum allowed object size. (10011)"
    );
    // A single small part is fine: it is the last one.
    let up2 = upload(&f, "single");
    let only = up2.upload_part(1, &b"x"[..]).unwrap();
    assert_eq!(up2.complete(&[only]).unwrap().size, 1);
    // The failed upload is still in progress and can be fixed.
    let p1 = up.upload_part(1, &b"abcde"[..]).unwrap();
    up.complete(&[p1, p2]).unwrap();
    assert_eq!(f.get_text("k").as_deref(), Some("abcdeef"));
}

#[test]
fn the_real_default_minimum_is_5_mib() {
    let f = open();
    let up = upload(&f, "k");
    let five_mib = vec![1u8; 5 * 1024 * 1024];
    let p1 = up.upload_part(1, &five_mib[..]).unwrap();
    let small = up.upload_part(2, &five_mib[1..]).unwrap();
    let last = up.upload_part(3, &b"tail"[..]).unwrap();
    assert!(matches!(
        up.complete(&[p1.clone(), small, last.clone()]),
        Err(R2Error::EntityTooSmall { .. })
    ));
    let p2 = up.upload_part(2, &five_mib[..]).unwrap();
    let obj = up.complete(&[p1, p2, last]).unwrap();
    assert_eq!(obj.size, 2 * 5 * 1024 * 1024 + 4);
}

#[test]
fn non_final_parts_must_be_the_same_size_and_the_last_no_larger() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let p1 = up.upload_part(1, &b"aaaaaa"[..]).unwrap(); // 6
    let p2 = up.upload_part(2, &b"bbbbb"[..]).unwrap(); // 5
    let p3 = up.upload_part(3, &b"c"[..]).unwrap();
    let err = up.complete(&[p1.clone(), p2, p3.clone()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "completeMultipartUpload: There was a problem with the multipart upload. (10048)"
    );
    let big_last = up.upload_part(4, &b"ddddddd"[..]).unwrap(); // 7 > 6
    assert!(matches!(
        up.complete(&[p1.clone(), big_last]),
        Err(R2Error::BadUpload { .. })
    ));
    let same = up.upload_part(2, &b"bbbbbb"[..]).unwrap();
    assert_eq!(up.complete(&[p1, same, p3]).unwrap().size, 13);
}

#[test]
fn parts_listed_out_of_order_are_assembled_by_part_number() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let p1 = up.upload_part(1, &b"11111"[..]).unwrap();
    let p2 = up.upload_part(2, &b"22222"[..]).unwrap();
    let p3 = up.upload_part(3, &b"3"[..]).unwrap();
    // The minimum-size check runs in the order given, so a short part
    // listed before others fails even though it is last by number...
    assert!(matches!(
        up.complete(&[p3.clone(), p1.clone(), p2.clone()]),
        Err(R2Error::EntityTooSmall { .. })
    ));
    // ...otherwise the order of the list does not matter.
    let obj = up.complete(&[p2, p1, p3]).unwrap();
    assert_eq!(f.get_text("k").as_deref(), Some("11111222223"));
    assert_eq!(obj.etag, multipart_etag(&[b"11111", b"22222", b"3"]));
}

#[test]
fn a_part_listed_twice_is_refused() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let p1 = up.upload_part(1, &b"11111"[..]).unwrap();
    let err = up.complete(&[p1.clone(), p1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "completeMultipartUpload: We encountered an internal error. Please try again. (10001)"
    );
    assert!(f.bucket.head("k").unwrap().is_none());
}

#[test]
fn unknown_parts_or_stale_etags_are_invalid_part() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let old = up.upload_part(1, &b"first"[..]).unwrap();
    let new = up.upload_part(1, &b"again"[..]).unwrap();
    assert_ne!(old.etag, new.etag);
    let msg =
        "completeMultipartUpload: One or more of the specified parts could not be found. (10025)";
    assert_eq!(up.complete(&[old]).unwrap_err().to_string(), msg);
    let missing = R2UploadedPart {
        part_number: 9,
        etag: new.etag.clone(),
    };
    assert_eq!(up.complete(&[missing]).unwrap_err().to_string(), msg);
    up.complete(&[new]).unwrap();
    assert_eq!(f.get_text("k").as_deref(), Some("again"));
}

#[test]
fn part_numbers_must_be_1_to_10000() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    for bad in [0, 10_001] {
        assert_eq!(
            up.upload_part(bad, &b"x"[..]).unwrap_err().to_string(),
            format!("Part number must be between 1 and 10000 (inclusive). Actual value was: {bad}")
        );
    }
    let p = up.upload_part(10_000, &b"x"[..]).unwrap();
    let bad = R2UploadedPart {
        part_number: 0,
        etag: p.etag.clone(),
    };
    assert!(matches!(
        up.complete(&[bad]),
        Err(R2Error::InvalidArgument { .. })
    ));
    up.complete(&[p]).unwrap();
}

#[test]
fn a_part_over_the_upload_limit_is_entity_too_large() {
    let f = open_with(R2Limits {
        max_upload_bytes: 4,
        ..small_parts()
    });
    let up = upload(&f, "k");
    assert_eq!(
        up.upload_part(1, &b"12345"[..]).unwrap_err().to_string(),
        "uploadPart: Your proposed upload exceeds the maximum allowed object size. (100100)"
    );
}

#[test]
fn abort_discards_parts_and_later_calls_get_no_such_upload() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let p = up.upload_part(1, &b"xxxxx"[..]).unwrap();
    assert_eq!(files_in(f.path(), "multipart").len(), 1);
    up.abort().unwrap();
    up.abort().unwrap(); // aborting again is fine
    assert!(files_in(f.path(), "multipart").is_empty());
    assert_eq!(
        up.upload_part(2, &b"y"[..]).unwrap_err().to_string(),
        "uploadPart: The specified multipart upload does not exist. (10024)"
    );
    assert_eq!(
        up.complete(&[p]).unwrap_err().to_string(),
        "completeMultipartUpload: The specified multipart upload does not exist. (10024)"
    );
    assert!(f.bucket.head("k").unwrap().is_none());
}

#[test]
fn completing_twice_is_no_such_upload_and_abort_after_complete_keeps_the_object() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let p = up.upload_part(1, &b"data"[..]).unwrap();
    up.complete(std::slice::from_ref(&p)).unwrap();
    assert_eq!(
        up.complete(&[p]).unwrap_err().to_string(),
        "completeMultipartUpload: The specified multipart upload does not exist. (10024)"
    );
    up.abort().unwrap();
    assert_eq!(f.get_text("k").as_deref(), Some("data"));
}

#[test]
fn unknown_upload_ids_and_wrong_keys_are_no_such_upload() {
    let f = open_with(small_parts());
    let real = upload(&f, "k");
    for up in [
        f.bucket
            .resume_multipart_upload("k", "0123456789abcdef0123456789abcdef"),
        f.bucket.resume_multipart_upload("k", "../../etc"),
        f.bucket.resume_multipart_upload("other", real.upload_id()),
    ] {
        assert!(matches!(
            up.upload_part(1, &b"x"[..]),
            Err(R2Error::NoSuchUpload { .. })
        ));
        assert!(matches!(
            up.complete(&[]),
            Err(R2Error::NoSuchUpload { .. })
        ));
        assert_eq!(
            up.abort().unwrap_err().to_string(),
            "abortMultipartUpload: The specified multipart upload does not exist. (10024)"
        );
    }
}

#[test]
fn resume_continues_an_upload_across_handles_and_reopens() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let id = up.upload_id().to_string();
    let p1 = up.upload_part(1, &b"hello"[..]).unwrap();
    drop(up);
    let f = f.reopen();
    let up = f.bucket.resume_multipart_upload("k", &id);
    let p2 = up.upload_part(2, &b" you"[..]).unwrap();
    up.complete(&[p1, p2]).unwrap();
    assert_eq!(f.get_text("k").as_deref(), Some("hello you"));
    let f = f.reopen();
    assert_eq!(f.get_text("k").as_deref(), Some("hello you"));
}

#[test]
fn unlisted_parts_are_dropped_and_overwriting_frees_the_parts() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    let p1 = up.upload_part(1, &b"keep"[..]).unwrap();
    up.upload_part(2, &b"drop"[..]).unwrap();
    up.complete(&[p1]).unwrap();
    let dir = format!("multipart/{}", up.upload_id());
    assert_eq!(files_in(f.path(), &dir).len(), 1);
    f.put("k", b"single");
    assert!(files_in(f.path(), "multipart").is_empty());
    assert_eq!(f.get_text("k").as_deref(), Some("single"));

    // And a multipart object replaces a single-part one, freeing its blob.
    let up = upload(&f, "k");
    let p = up.upload_part(1, &b"multi"[..]).unwrap();
    up.complete(&[p]).unwrap();
    assert!(files_in(f.path(), "blobs").is_empty());
    f.bucket.delete("k").unwrap();
    assert!(files_in(f.path(), "multipart").is_empty());
}

#[test]
fn create_checks_key_and_metadata_limits() {
    let f = open();
    let err = f
        .bucket
        .create_multipart_upload(&"k".repeat(1025), &R2MultipartOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "createMultipartUpload: The specified object name is not valid. (10020)"
    );
    let opts = R2MultipartOptions {
        custom_metadata: Some(meta(&[("k", &"v".repeat(3000))])),
        ..Default::default()
    };
    assert_eq!(
        f.bucket
            .create_multipart_upload("k", &opts)
            .unwrap_err()
            .to_string(),
        "createMultipartUpload: Your metadata headers exceed the maximum allowed metadata size. (10012)"
    );
}

const SEVEN_DAYS_MS: u64 = 7 * 24 * 60 * 60 * 1000;

#[test]
fn abandoned_uploads_are_aborted_after_seven_days_and_their_parts_removed() {
    let f = open_with(small_parts());
    assert_eq!(
        f.bucket.limits().abort_multipart_uploads_after,
        std::time::Duration::from_millis(SEVEN_DAYS_MS)
    );
    let old = upload(&f, "old");
    old.upload_part(1, &b"aaaaa"[..]).unwrap();
    old.upload_part(2, &b"bb"[..]).unwrap();
    f.clock.advance_ms(1000);
    let young = upload(&f, "young");
    young.upload_part(1, &b"ccccc"[..]).unwrap();
    let old_dir = format!("multipart/{}", old.upload_id());
    let young_dir = format!("multipart/{}", young.upload_id());
    assert_eq!(files_in(f.path(), &old_dir).len(), 2);

    // One millisecond short of seven days: nothing expires.
    f.clock.advance_ms(SEVEN_DAYS_MS - 1001);
    assert_eq!(f.bucket.abort_expired_uploads().unwrap(), 0);
    assert_eq!(files_in(f.path(), &old_dir).len(), 2);

    f.clock.advance_ms(1);
    assert_eq!(f.bucket.abort_expired_uploads().unwrap(), 1);
    assert!(files_in(f.path(), &old_dir).is_empty());
    assert_eq!(files_in(f.path(), &young_dir).len(), 1);
    // As on R2, an aborted upload is gone for every later call.
    assert!(matches!(
        old.upload_part(3, &b"x"[..]),
        Err(R2Error::NoSuchUpload { .. })
    ));
    assert!(matches!(
        old.complete(&[]),
        Err(R2Error::NoSuchUpload { .. })
    ));
    // A second pass finds nothing more to do.
    assert_eq!(f.bucket.abort_expired_uploads().unwrap(), 0);

    // The young one can still finish.
    let p1 = young.upload_part(1, &b"ccccc"[..]).unwrap();
    young.complete(&[p1]).unwrap();
    f.clock.advance_ms(SEVEN_DAYS_MS * 2);
    assert_eq!(f.bucket.abort_expired_uploads().unwrap(), 0);
    assert_eq!(f.get_text("young").as_deref(), Some("ccccc"));
}

#[test]
fn opening_a_bucket_aborts_expired_uploads() {
    let f = open_with(small_parts());
    let up = upload(&f, "k");
    up.upload_part(1, &b"aaaaa"[..]).unwrap();
    let dir = format!("multipart/{}", up.upload_id());
    let id = up.upload_id().to_string();
    f.clock.advance_ms(SEVEN_DAYS_MS);
    let f = f.reopen();
    assert!(files_in(f.path(), &dir).is_empty());
    let up = f.bucket.resume_multipart_upload("k", &id);
    assert!(matches!(
        up.upload_part(2, &b"x"[..]),
        Err(R2Error::NoSuchUpload { .. })
    ));
}

#[test]
fn the_expirer_thread_aborts_by_the_buckets_clock_and_the_age_is_configurable() {
    let f = open_with(R2Limits {
        abort_multipart_uploads_after: std::time::Duration::from_secs(60),
        ..small_parts()
    });
    let up = upload(&f, "k");
    up.upload_part(1, &b"aaaaa"[..]).unwrap();
    let dir = format!("multipart/{}", up.upload_id());
    // A period so long the thread only runs when asked: the outcome is
    // decided by the injected clock, not by the thread's timing.
    let expirer = f
        .bucket
        .spawn_upload_expirer(std::time::Duration::from_secs(3600))
        .unwrap();
    f.clock.advance_secs(59);
    assert_eq!(expirer.expire_now().unwrap().unwrap(), 0);
    assert_eq!(files_in(f.path(), &dir).len(), 1);
    f.clock.advance_secs(1);
    assert_eq!(expirer.expire_now().unwrap().unwrap(), 1);
    assert!(files_in(f.path(), &dir).is_empty());
    drop(expirer);
}

#[test]
fn uploads_and_parts_are_listed_until_finished() {
    let f = open_with(small_parts());
    let a = upload(&f, "b/one");
    let b = upload(&f, "a/two");
    let c = upload(&f, "b/one");
    f.clock.advance_secs(1);
    a.upload_part(2, &b"22222"[..]).unwrap();
    a.upload_part(1, &b"11111"[..]).unwrap();
    a.upload_part(2, &b"222"[..]).unwrap(); // replaces part 2
    let (parts, created) = a.list_parts().unwrap();
    match backend() {
        Backend::Embedded => assert_eq!(created, T0),
        // An S3 store keeps its own record of when an upload began.
        Backend::S3 => assert!(created > 0, "the store's start time"),
    }
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.part_number, p.size))
            .collect::<Vec<_>>(),
        [(1, 5), (2, 3)]
    );
    assert_eq!(
        parts[1].etag,
        hex::encode(<md5::Md5 as md5::Digest>::digest(b"222"))
    );

    let all = f.bucket.list_multipart_uploads("", None, 10).unwrap();
    let mut want = vec![
        ("a/two", b.upload_id().to_string()),
        ("b/one", a.upload_id().to_string()),
        ("b/one", c.upload_id().to_string()),
    ];
    want[1..].sort_by(|x, y| x.1.cmp(&y.1));
    let got: Vec<_> = all
        .iter()
        .map(|u| (u.key.as_str(), u.upload_id.clone()))
        .collect();
    assert_eq!(got, want);
    // Prefix, paging after a (key, id) position, and after a whole key.
    assert_eq!(
        f.bucket
            .list_multipart_uploads("b/", None, 10)
            .unwrap()
            .len(),
        2
    );
    let page = f.bucket.list_multipart_uploads("", None, 2).unwrap();
    let rest = f
        .bucket
        .list_multipart_uploads("", Some((&page[1].key, &page[1].upload_id)), 10)
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].upload_id, want[2].1);
    assert!(
        f.bucket
            .list_multipart_uploads("", Some(("b/one", "")), 10)
            .unwrap()
            .is_empty()
    );

    a.complete(&[
        R2UploadedPart {
            part_number: 1,
            etag: parts[0].etag.clone(),
        },
        R2UploadedPart {
            part_number: 2,
            etag: parts[1].etag.clone(),
        },
    ])
    .unwrap();
    b.abort().unwrap();
    assert!(matches!(a.list_parts(), Err(R2Error::NoSuchUpload { .. })));
    assert!(matches!(b.list_parts(), Err(R2Error::NoSuchUpload { .. })));
    let left = f.bucket.list_multipart_uploads("", None, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].upload_id, c.upload_id());
}

#[test]
fn shared_handles_see_each_others_writes_and_pins() {
    let dir = tempfile::tempdir().unwrap();
    let clock = hearth_core::ManualClock::new(T0);
    let one = R2Bucket::open_shared(dir.path(), clock.shared(), R2Limits::default()).unwrap();
    let two =
        R2Bucket::open_shared(dir.path().join("."), clock.shared(), R2Limits::default()).unwrap();
    assert!(one.same_handle(&two));
    let separate = R2Bucket::open(dir.path(), clock.shared(), R2Limits::default()).unwrap();
    assert!(!one.same_handle(&separate));
    drop(separate);
    one.put("k", &b"from one"[..], &R2PutOptions::default())
        .unwrap();
    // A reader through one handle keeps its file while the other replaces it.
    let reading = two
        .get("k", &R2GetOptions::default())
        .unwrap()
        .unwrap()
        .into_body()
        .unwrap();
    one.put("k", &b"replaced"[..], &R2PutOptions::default())
        .unwrap();
    assert_eq!(reading.body.text().unwrap(), "from one");
    let now = two.get("k", &R2GetOptions::default()).unwrap().unwrap();
    assert_eq!(now.into_body().unwrap().body.text().unwrap(), "replaced");
    // Once every handle is gone, opening again makes a fresh one.
    drop((one, two));
    let three = R2Bucket::open_shared(dir.path(), clock.shared(), R2Limits::default()).unwrap();
    let four = R2Bucket::open_shared(dir.path(), clock.shared(), R2Limits::default()).unwrap();
    assert!(three.same_handle(&four));
    assert!(three.head("k").unwrap().is_some());
}

// The same rules on an S3-compatible store (the moto double).
on_s3!(
    parts_complete_into_one_object_with_r2s_etag,
    the_documented_example_etag,
    ranges_read_across_part_boundaries,
    a_non_final_part_below_the_minimum_is_entity_too_small,
    the_real_default_minimum_is_5_mib,
    non_final_parts_must_be_the_same_size_and_the_last_no_larger,
    parts_listed_out_of_order_are_assembled_by_part_number,
    a_part_listed_twice_is_refused,
    unknown_parts_or_stale_etags_are_invalid_part,
    part_numbers_must_be_1_to_10000,
    a_part_over_the_upload_limit_is_entity_too_large,
    completing_twice_is_no_such_upload_and_abort_after_complete_keeps_the_object,
    unknown_upload_ids_and_wrong_keys_are_no_such_upload,
    create_checks_key_and_metadata_limits,
    uploads_and_parts_are_listed_until_finished,
);
