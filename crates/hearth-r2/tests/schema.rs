//! The metadata database is versioned: a bucket written before versioning
//! (the fixture, made by that code) is adopted as version 1 with its
//! objects and uploads intact, and a newer one is refused.

mod common;

use std::path::Path;

use common::T0;
use hearth_core::ManualClock;
use hearth_r2::{R2Bucket, R2GetOptions, R2Limits};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/unversioned-bucket"
);
const UPLOAD_ID: &str = "4ce3a7595a0043b992fc3c65ca060ad9";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn user_version(path: &Path) -> i64 {
    hearth_core::sqlite::user_version(&hearth_core::sqlite::open(path).unwrap()).unwrap()
}

#[test]
fn an_unversioned_bucket_is_adopted_as_version_1_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    copy_dir(Path::new(FIXTURE), &root);
    assert_eq!(user_version(&root.join("metadata.sqlite")), 0);

    let clock = ManualClock::new(T0);
    let limits = R2Limits {
        min_part_bytes: 5,
        ..R2Limits::default()
    };
    let bucket = R2Bucket::open(&root, clock.shared(), limits).unwrap();
    let body = bucket
        .get("hello.txt", &R2GetOptions::default())
        .unwrap()
        .expect("the object written before versioning")
        .into_body()
        .unwrap()
        .body
        .text()
        .unwrap();
    assert_eq!(body, "hello from before versioning");
    // The in-progress upload (and its part file) survived the open's sweep.
    let upload = bucket.resume_multipart_upload("big.bin", UPLOAD_ID);
    upload.upload_part(2, &b"part-two"[..]).unwrap();
    drop(bucket);
    assert_eq!(user_version(&root.join("metadata.sqlite")), 1);
}

#[test]
fn a_bucket_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    copy_dir(Path::new(FIXTURE), &root);
    hearth_core::sqlite::open(&root.join("metadata.sqlite"))
        .unwrap()
        .pragma_update(None, "user_version", 7)
        .unwrap();
    let clock = ManualClock::new(T0);
    let e = R2Bucket::open(&root, clock.shared(), R2Limits::default()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("has schema version 7"), "{text}");
    assert!(text.contains("metadata.sqlite"), "{text}");
}
