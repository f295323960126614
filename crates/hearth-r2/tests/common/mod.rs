//! Shared set-up: a bucket on a manual clock, in a temporary directory or,
//! for the tests a file also runs through `on_s3!`, on the S3 double
//! (moto's server, `hearth_testkit::s3_double`) under a bucket name of its own.

#![allow(dead_code)]

pub use hearth_testkit::s3_double as double;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

use hearth_core::ManualClock;
use hearth_r2::{R2Bucket, R2GetOptions, R2Limits, R2PutOptions};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Embedded,
    S3,
}

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Embedded) };
}

pub fn backend() -> Backend {
    BACKEND.with(Cell::get)
}

/// Runs a test's body against the S3 double. Without the double the test
/// is skipped with a reason, unless `HEARTH_TEST_REQUIRE_S3_BACKEND=1`
/// (CI sets it), which makes it fail.
pub fn on_s3(test: fn()) {
    if double::store().is_none() {
        return;
    }
    BACKEND.with(|b| b.set(Backend::S3));
    test();
    BACKEND.with(|b| b.set(Backend::Embedded));
}

/// Declares an `s3` module running each named test on the S3 backend too.
#[allow(unused_macros)]
macro_rules! on_s3 {
    ($($test:ident),* $(,)?) => {
        mod s3 {
            $(#[test] fn $test() { crate::common::on_s3(super::$test); })*
        }
    };
}

pub const T0: u64 = 1_700_000_000_000;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub bucket: R2Bucket,
}

pub fn open_with(limits: R2Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let bucket = match backend() {
        Backend::Embedded => R2Bucket::open(dir.path(), clock.shared(), limits).unwrap(),
        Backend::S3 => {
            let store = double::store().expect("on_s3 checked the double");
            R2Bucket::open_s3(store, &double::fresh_name(), clock.shared(), limits).unwrap()
        }
    };
    Fixture { dir, clock, bucket }
}

pub fn open() -> Fixture {
    open_with(R2Limits::default())
}

/// Limits with a tiny multipart minimum so tests need not write 5 MiB parts.
pub fn small_parts() -> R2Limits {
    R2Limits {
        min_part_bytes: 5,
        ..R2Limits::default()
    }
}

impl Fixture {
    pub fn reopen(self) -> Fixture {
        let Fixture { dir, clock, bucket } = self;
        let limits = bucket.limits().clone();
        drop(bucket);
        let bucket = R2Bucket::open(dir.path(), clock.shared(), limits).unwrap();
        Fixture { dir, clock, bucket }
    }

    pub fn put(&self, key: &str, value: &[u8]) -> hearth_r2::R2Object {
        self.bucket
            .put(key, value, &R2PutOptions::default())
            .unwrap()
            .unwrap()
    }

    pub fn get_text(&self, key: &str) -> Option<String> {
        self.bucket
            .get(key, &R2GetOptions::default())
            .unwrap()
            .map(|r| r.into_body().unwrap().body.text().unwrap())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Names of the files directly inside `dir` (relative to the bucket).
pub fn files_in(root: &Path, sub: &str) -> Vec<String> {
    let p = root.join(sub);
    if !p.exists() {
        return Vec::new();
    }
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}
