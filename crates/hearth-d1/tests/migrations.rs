//! wrangler-style migrations: create, list, apply.

mod common;

use std::fs;

use hearth_core::ManualClock;
use hearth_d1::migrations::{self, DEFAULT_MIGRATIONS_TABLE};
use hearth_d1::{D1Error, D1Value, MigrationError};

const T: &str = DEFAULT_MIGRATIONS_TABLE;

fn clock() -> ManualClock {
    ManualClock::new(1_709_210_096_789) // 2024-02-29T12:34:56.789Z
}

#[test]
fn create_numbers_files_from_0000_and_sanitizes_names() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("migrations");
    let c = clock().shared();
    let p0 = migrations::create(&mdir, "create users table", &c).unwrap();
    assert_eq!(p0.file_name().unwrap(), "0000_create_users_table.sql");
    assert_eq!(
        fs::read_to_string(&p0).unwrap(),
        "-- Migration number: 0000 \t 2024-02-29T12:34:56.789Z\n"
    );
    let p1 = migrations::create(&mdir, "add/index", &c).unwrap();
    assert_eq!(p1.file_name().unwrap(), "0001_add_index.sql");
    fs::write(mdir.join("0041_manual.sql"), "").unwrap();
    let p2 = migrations::create(&mdir, "next", &c).unwrap();
    assert_eq!(p2.file_name().unwrap(), "0042_next.sql");
    assert_eq!(
        migrations::create(&mdir, "  ", &c).unwrap_err(),
        D1Error::Migration(MigrationError::EmptyName)
    );
}

#[test]
fn list_shows_unapplied_files_in_number_order() {
    let t = common::open();
    let mdir = t.dir.path().join("migrations");
    fs::create_dir_all(&mdir).unwrap();
    fs::write(mdir.join("0010_c.sql"), "CREATE TABLE c (a);").unwrap();
    fs::write(mdir.join("0002_b.sql"), "CREATE TABLE b (a);").unwrap();
    fs::write(mdir.join("0001_a.sql"), "CREATE TABLE a (a);").unwrap();
    fs::write(mdir.join("notes.txt"), "not a migration").unwrap();
    let names: Vec<_> = migrations::list(&t.db, &mdir, T)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["0001_a.sql", "0002_b.sql", "0010_c.sql"]);
    migrations::apply(&t.db, &mdir, T, &clock().shared()).unwrap();
    assert!(migrations::list(&t.db, &mdir, T).unwrap().is_empty());
}

#[test]
fn a_missing_directory_is_reported_like_wrangler() {
    let t = common::open();
    let missing = t.dir.path().join("nope");
    let err = migrations::list(&t.db, &missing, T).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("No migrations present at {}.", missing.display())
    );
}

#[test]
fn apply_runs_pending_files_in_order_records_them_and_skips_applied_ones() {
    let t = common::open();
    let mdir = t.dir.path().join("migrations");
    let c = clock();
    fs::create_dir_all(&mdir).unwrap();
    fs::write(mdir.join("0000_users.sql"), "-- Migration number: 0000\nCREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO users (name) VALUES ('root');\n").unwrap();
    fs::write(
        mdir.join("0001_email.sql"),
        "ALTER TABLE users ADD COLUMN email TEXT;",
    )
    .unwrap();
    let applied = migrations::apply(&t.db, &mdir, T, &c.shared()).unwrap();
    assert_eq!(applied.len(), 2);

    let rows = migrations::applied(&t.db, T).unwrap();
    let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["0000_users.sql", "0001_email.sql"]);
    assert_eq!(rows[0].id, 1);
    assert_eq!(rows[0].applied_at, "2024-02-29 12:34:56");

    // A second run applies only what is new.
    c.advance_secs(60);
    fs::write(
        mdir.join("0002_more.sql"),
        "INSERT INTO users (name, email) VALUES ('two', 'x@y');",
    )
    .unwrap();
    let applied = migrations::apply(&t.db, &mdir, T, &c.shared()).unwrap();
    assert_eq!(
        applied.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["0002_more.sql"]
    );
    assert_eq!(
        migrations::applied(&t.db, T).unwrap()[2].applied_at,
        "2024-02-29 12:35:56"
    );
    let n =
        t.db.prepare("SELECT count(*) AS n FROM users")
            .first_column("n")
            .unwrap();
    assert_eq!(n, Some(D1Value::Integer(2)));
    assert!(
        migrations::apply(&t.db, &mdir, T, &c.shared())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_failing_migration_stops_the_run_and_leaves_earlier_ones_applied() {
    let t = common::open();
    let mdir = t.dir.path().join("migrations");
    fs::create_dir_all(&mdir).unwrap();
    fs::write(mdir.join("0000_ok.sql"), "CREATE TABLE ok (a);").unwrap();
    fs::write(
        mdir.join("0001_bad.sql"),
        "CREATE TABLE half (a);\nINSERT INTO missing VALUES (1);",
    )
    .unwrap();
    fs::write(mdir.join("0002_later.sql"), "CREATE TABLE later (a);").unwrap();
    let err = migrations::apply(&t.db, &mdir, T, &clock().shared()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Migration 0001_bad.sql failed with the following errors:\nD1_ERROR: no such table: missing: SQLITE_ERROR"
    );
    let names: Vec<_> = migrations::applied(&t.db, T)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["0000_ok.sql"]);
    t.db.prepare("SELECT * FROM ok").all().unwrap();
    assert!(
        t.db.prepare("SELECT * FROM half").all().is_err(),
        "the failed file was rolled back whole"
    );
    assert!(
        t.db.prepare("SELECT * FROM later").all().is_err(),
        "nothing after the failure ran"
    );
    let pending: Vec<_> = migrations::list(&t.db, &mdir, T)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(pending, ["0001_bad.sql", "0002_later.sql"]);
}

#[test]
fn migration_files_may_hold_triggers_and_dump_wrappers() {
    let t = common::open();
    let mdir = t.dir.path().join("migrations");
    fs::create_dir_all(&mdir).unwrap();
    fs::write(
        mdir.join("0000_dump.sql"),
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE n (a);\nCREATE TRIGGER n_t AFTER INSERT ON n BEGIN\n  UPDATE n SET a = a * 2;\nEND;\nINSERT INTO n VALUES (21);\nCOMMIT;\n",
    )
    .unwrap();
    migrations::apply(&t.db, &mdir, T, &clock().shared()).unwrap();
    assert_eq!(
        t.db.prepare("SELECT a FROM n").first_column("a").unwrap(),
        Some(D1Value::Integer(42))
    );
}

#[test]
fn the_table_name_is_configurable_and_checked() {
    let t = common::open();
    let mdir = t.dir.path().join("migrations");
    fs::create_dir_all(&mdir).unwrap();
    fs::write(mdir.join("0000_a.sql"), "CREATE TABLE a (x);").unwrap();
    migrations::apply(&t.db, &mdir, "schema_history", &clock().shared()).unwrap();
    assert_eq!(
        migrations::applied(&t.db, "schema_history").unwrap().len(),
        1
    );
    assert!(migrations::applied(&t.db, T).unwrap().is_empty());
    for bad in ["x; DROP TABLE a", "", "_cf_KV"] {
        assert_eq!(
            migrations::list(&t.db, &mdir, bad).unwrap_err(),
            D1Error::Migration(MigrationError::InvalidTableName(bad.into()))
        );
    }
}

#[test]
fn a_stray_transaction_statement_in_a_migration_is_refused() {
    let t = common::open();
    let mdir = t.dir.path().join("migrations");
    fs::create_dir_all(&mdir).unwrap();
    fs::write(
        mdir.join("0000_tx.sql"),
        "CREATE TABLE a (x);\nSAVEPOINT s;",
    )
    .unwrap();
    let err = migrations::apply(&t.db, &mdir, T, &clock().shared()).unwrap_err();
    assert!(
        err.to_string().starts_with("Migration 0000_tx.sql failed with the following errors:\nD1_ERROR: To execute a transaction"),
        "{err}"
    );
    assert!(migrations::applied(&t.db, T).unwrap().is_empty());
}
