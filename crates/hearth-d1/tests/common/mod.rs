#![allow(dead_code)]

use hearth_d1::{D1Database, D1Limits};

pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub db: D1Database,
}

pub fn open() -> TestDb {
    open_with(D1Limits::default())
}

pub fn open_with(limits: D1Limits) -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let db = D1Database::open_with_limits(dir.path().join("db.sqlite"), limits).unwrap();
    TestDb { dir, db }
}

pub fn err_text<T: std::fmt::Debug>(r: Result<T, hearth_d1::D1Error>) -> String {
    r.unwrap_err().to_string()
}
