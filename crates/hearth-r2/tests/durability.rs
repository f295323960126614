//! Crash states: whatever a crash leaves behind is swept on the next open,
//! and committed objects stay intact.

mod common;

use std::fs;

use common::*;
use hearth_r2::*;

#[test]
fn orphan_blobs_and_temporaries_are_swept_on_open() {
    let f = open();
    let kept = f.put("k", b"committed");
    // A write that renamed its blob but crashed before the row committed:
    fs::write(
        f.path().join("blobs/0123456789abcdef0123456789abcdef"),
        b"orphan",
    )
    .unwrap();
    // A write that crashed mid-stream, before its rename:
    fs::write(f.path().join("blobs/.abc.tmp-1-2-3"), b"half").unwrap();
    // A replaced version whose removal was cut short looks the same as an orphan.
    fs::write(
        f.path().join("blobs/fedcba9876543210fedcba9876543210"),
        b"old",
    )
    .unwrap();
    assert_eq!(files_in(f.path(), "blobs").len(), 4);

    let f = f.reopen();
    assert_eq!(files_in(f.path(), "blobs"), vec![kept.version.clone()]);
    assert_eq!(f.get_text("k").as_deref(), Some("committed"));
    assert_eq!(f.bucket.head("k").unwrap().unwrap().etag, kept.etag);
}

#[test]
fn orphan_parts_and_empty_upload_folders_are_swept_but_live_parts_kept() {
    let f = open_with(small_parts());
    let up = f
        .bucket
        .create_multipart_upload("k", &R2MultipartOptions::default())
        .unwrap();
    let p1 = up.upload_part(1, &b"12345"[..]).unwrap();
    let dir = format!("multipart/{}", up.upload_id());
    fs::write(f.path().join(&dir).join("2-deadbeef"), b"uncommitted part").unwrap();
    fs::write(f.path().join(&dir).join(".2-x.tmp-9-9-9"), b"half part").unwrap();
    fs::create_dir_all(f.path().join("multipart/ffffffffffffffffffffffffffffffff")).unwrap();
    fs::write(
        f.path()
            .join("multipart/ffffffffffffffffffffffffffffffff/1-x"),
        b"part of an upload never recorded",
    )
    .unwrap();
    let id = up.upload_id().to_string();
    drop(up); // the upload handle keeps the bucket open

    let f = f.reopen();
    assert_eq!(files_in(f.path(), "multipart"), vec![id.clone()]);
    assert_eq!(files_in(f.path(), &dir).len(), 1);
    let up = f.bucket.resume_multipart_upload("k", &id);
    let p2 = up.upload_part(2, &b"6"[..]).unwrap();
    up.complete(&[p1, p2]).unwrap();
    assert_eq!(f.get_text("k").as_deref(), Some("123456"));
}

#[test]
fn no_sweep_while_another_handle_has_the_bucket_open() {
    let f = open();
    let orphan = f.path().join("blobs/0123456789abcdef0123456789abcdef");
    fs::write(&orphan, b"maybe another writer's blob").unwrap();
    // A second open beside a live one must not remove what may be a
    // concurrent writer's not-yet-committed blob.
    let second = R2Bucket::open(f.path(), f.clock.shared(), R2Limits::default()).unwrap();
    assert!(orphan.exists());
    drop(second);
    let f = f.reopen();
    assert!(!orphan.exists());
    drop(f);
}

#[test]
fn interrupted_reader_body_does_not_break_the_store() {
    let f = open();
    f.put("k", &vec![1u8; 100_000]);
    let body = f
        .bucket
        .get("k", &R2GetOptions::default())
        .unwrap()
        .unwrap();
    drop(body);
    f.put("k", b"new");
    assert_eq!(files_in(f.path(), "blobs").len(), 1);
    assert_eq!(f.get_text("k").as_deref(), Some("new"));
}

#[test]
fn a_failing_body_stream_leaves_the_old_object_and_no_files() {
    struct Broken(usize);
    impl std::io::Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("client went away"));
            }
            self.0 -= 1;
            buf[0] = b'x';
            Ok(1)
        }
    }
    let f = open();
    let old = f.put("k", b"old");
    let err = f
        .bucket
        .put("k", Broken(3), &R2PutOptions::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("put: I/O error: client went away")
    );
    assert_eq!(f.get_text("k").as_deref(), Some("old"));
    assert_eq!(files_in(f.path(), "blobs"), vec![old.version]);
}
