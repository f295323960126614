//! SQL the binding refuses, as D1 does.

mod common;

use hearth_d1::{D1Error, D1Value, TRANSACTION_STATEMENT_MESSAGE};

#[test]
fn transaction_statements_are_refused_with_d1s_message() {
    let t = common::open();
    for sql in [
        "BEGIN",
        "BEGIN TRANSACTION",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT s",
        "RELEASE s",
    ] {
        let err = t.db.prepare(sql).run().unwrap_err();
        assert_eq!(err, D1Error::TransactionStatement, "{sql}");
        assert_eq!(
            err.to_string(),
            format!("D1_ERROR: {TRANSACTION_STATEMENT_MESSAGE}")
        );
    }
    assert!(
        TRANSACTION_STATEMENT_MESSAGE
            .starts_with("To execute a transaction, please use the state.storage.transaction()")
    );
}

#[test]
fn attach_and_temporary_objects_are_refused() {
    let t = common::open();
    for sql in [
        "ATTACH DATABASE 'other.sqlite' AS other",
        "DETACH DATABASE main",
        "CREATE TEMP TABLE tt (a)",
        "CREATE TEMPORARY VIEW tv AS SELECT 1",
    ] {
        assert_eq!(
            common::err_text(t.db.prepare(sql).run()),
            "D1_ERROR: not authorized: SQLITE_AUTH",
            "{sql}"
        );
    }
}

#[test]
fn only_listed_pragmas_run() {
    let t = common::open();
    t.db.exec("CREATE TABLE p (a INTEGER, b TEXT)").unwrap();
    let info = t.db.prepare("PRAGMA table_info(p)").all().unwrap();
    assert_eq!(info.results.len(), 2);
    t.db.prepare("PRAGMA foreign_keys = OFF").run().unwrap();
    t.db.prepare("PRAGMA defer_foreign_keys = true")
        .run()
        .unwrap();
    t.db.prepare("PRAGMA table_list").all().unwrap();
    for sql in [
        "PRAGMA journal_mode = DELETE",
        "PRAGMA synchronous = OFF",
        "PRAGMA page_size = 8192",
        "PRAGMA writable_schema = 1",
        "PRAGMA table_info(_cf_KV)",
    ] {
        assert_eq!(
            common::err_text(t.db.prepare(sql).run()),
            "D1_ERROR: not authorized: SQLITE_AUTH",
            "{sql}"
        );
    }
}

#[test]
fn platform_tables_are_off_limits() {
    let t = common::open();
    assert_eq!(
        common::err_text(t.db.prepare("SELECT * FROM _cf_KV").all()),
        "D1_ERROR: access to _cf_KV.key is prohibited: SQLITE_AUTH"
    );
    for sql in [
        "DELETE FROM _cf_KV",
        "DROP TABLE _cf_KV",
        "CREATE TABLE _cf_mine (a)",
        "INSERT INTO _cf_KV VALUES ('a', 1)",
    ] {
        assert_eq!(
            common::err_text(t.db.prepare(sql).run()),
            "D1_ERROR: not authorized: SQLITE_AUTH",
            "{sql}"
        );
    }
}

#[test]
fn ordinary_schema_work_and_fts5_are_allowed() {
    let t = common::open();
    t.db.exec(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
CREATE INDEX a_v ON a (v);
CREATE VIEW av AS SELECT v FROM a;
CREATE TRIGGER a_t AFTER INSERT ON a BEGIN UPDATE a SET v = upper(v) WHERE id = new.id; END;
ALTER TABLE a ADD COLUMN w INTEGER;
CREATE VIRTUAL TABLE docs USING fts5(body);
INSERT INTO docs (body) VALUES ('hello world');",
    )
    .unwrap();
    t.db.prepare("INSERT INTO a (v) VALUES ('x')")
        .run()
        .unwrap();
    assert_eq!(
        t.db.prepare("SELECT v FROM av").first_column("v").unwrap(),
        Some(D1Value::Text("X".into()))
    );
    let hits =
        t.db.prepare("SELECT body FROM docs WHERE docs MATCH 'hello'")
            .all()
            .unwrap();
    assert_eq!(hits.results.len(), 1);
    t.db.prepare("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT x FROM c").all().unwrap();
    assert_eq!(
        common::err_text(t.db.prepare("CREATE VIRTUAL TABLE s USING dbstat").run()),
        "D1_ERROR: not authorized: SQLITE_AUTH"
    );
}

#[test]
fn foreign_keys_are_enforced_by_default() {
    let t = common::open();
    t.db.exec("CREATE TABLE parent (id INTEGER PRIMARY KEY);\nCREATE TABLE child (pid INTEGER REFERENCES parent(id));").unwrap();
    assert_eq!(
        common::err_text(t.db.prepare("INSERT INTO child VALUES (7)").run()),
        "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)"
    );
}
