//! D1's SQLite: `DELETE/UPDATE ... LIMIT` (D1 builds with
//! SQLITE_ENABLE_UPDATE_DELETE_LIMIT), FTS5, JSON and math functions, and
//! the build-describing functions D1 refuses.

mod common;

use hearth_d1::{D1Error, D1Value};

fn tasks() -> common::TestDb {
    let t = common::open();
    t.db.exec("CREATE TABLE tasks (id INTEGER PRIMARY KEY, name TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);")
        .unwrap();
    for name in ["a", "b", "c", "d"] {
        t.db.prepare("INSERT INTO tasks (name) VALUES (?)")
            .bind([D1Value::from(name)])
            .run()
            .unwrap();
    }
    t
}

fn names(t: &common::TestDb) -> Vec<String> {
    t.db.prepare("SELECT name FROM tasks ORDER BY id")
        .raw(false)
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn delete_returning_limit_as_chanfana_sends_it() {
    let t = tasks();
    let r =
        t.db.prepare("DELETE FROM tasks WHERE name > ? RETURNING * LIMIT 1")
            .bind([D1Value::from("a")])
            .all()
            .unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].get("name"), Some(&D1Value::from("b")));
    assert_eq!(r.meta.changes, 1);
    assert_eq!(names(&t), ["a", "c", "d"]);
}

#[test]
fn delete_with_order_by_limit_and_offset() {
    let t = tasks();
    let r =
        t.db.prepare("DELETE FROM tasks ORDER BY id DESC LIMIT ? OFFSET 1")
            .bind([D1Value::Integer(2)])
            .run()
            .unwrap();
    assert_eq!(r.meta.changes, 2);
    assert_eq!(names(&t), ["a", "d"]);
}

#[test]
fn update_limit_with_returning_keeps_parameter_order() {
    let t = tasks();
    let r = t
        .db
        .prepare("UPDATE tasks SET done = ? WHERE done = ? RETURNING name || ? AS tag ORDER BY id DESC LIMIT ?")
        .bind([
            D1Value::Integer(1),
            D1Value::Integer(0),
            D1Value::from("!"),
            D1Value::Integer(2),
        ])
        .all()
        .unwrap();
    let mut tags: Vec<_> = r
        .results
        .iter()
        .map(|row| row.get("tag").unwrap().as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, ["c!", "d!"]);
    let done =
        t.db.prepare("SELECT group_concat(name, '') AS n FROM tasks WHERE done = 1 ORDER BY id")
            .first()
            .unwrap()
            .unwrap();
    assert_eq!(done.get("n"), Some(&D1Value::from("cd")));
}

#[test]
fn limit_in_a_batch_and_in_exec() {
    let t = tasks();
    t.db.batch(&[
        t.db.prepare("DELETE FROM tasks WHERE name = 'a' LIMIT 1"),
        t.db.prepare("UPDATE tasks SET name = 'z' LIMIT 1"),
    ])
    .unwrap();
    t.db.exec("DELETE FROM tasks ORDER BY id DESC LIMIT 1;")
        .unwrap();
    assert_eq!(names(&t), ["z", "c"]);
}

#[test]
fn without_rowid_tables_and_update_from_get_a_clear_error() {
    let t = common::open();
    t.db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;")
        .unwrap();
    let err = t.db.prepare("DELETE FROM kv LIMIT 1").run().unwrap_err();
    assert_eq!(err, D1Error::LimitWithoutRowid { table: "kv".into() });
    assert!(err.to_string().contains("WITHOUT ROWID"), "{err}");
    let t = tasks();
    t.db.exec("CREATE TABLE other (id INTEGER, name TEXT);")
        .unwrap();
    let err = t
        .db
        .prepare("UPDATE tasks SET name = other.name FROM other WHERE tasks.id = other.id LIMIT 1")
        .run()
        .unwrap_err();
    assert_eq!(err, D1Error::UpdateFromLimit);
}

#[test]
fn fts5_json_and_math_functions_are_there() {
    let t = common::open();
    t.db.exec("CREATE VIRTUAL TABLE docs USING fts5(body);")
        .unwrap();
    t.db.exec("INSERT INTO docs (body) VALUES ('the quick brown fox'), ('lazy dogs');")
        .unwrap();
    let hit =
        t.db.prepare("SELECT body FROM docs WHERE docs MATCH 'quick'")
            .first()
            .unwrap()
            .unwrap();
    assert_eq!(hit.get("body"), Some(&D1Value::from("the quick brown fox")));
    let row = t
        .db
        .prepare("SELECT json_extract('{\"a\":{\"b\":[1,2]}}', '$.a.b[1]') AS j, sqrt(16) AS s, pow(2, 10) AS p, floor(ln(exp(2))) AS l")
        .first()
        .unwrap()
        .unwrap();
    assert_eq!(row.get("j"), Some(&D1Value::Integer(2)));
    assert_eq!(row.get("s"), Some(&D1Value::Real(4.0)));
    assert_eq!(row.get("p"), Some(&D1Value::Real(1024.0)));
    assert_eq!(row.get("l"), Some(&D1Value::Real(2.0)));
}

#[test]
fn compile_option_functions_are_refused() {
    let t = common::open();
    // SQLite's own wording for a function its authorizer denies.
    for (sql, name) in [
        (
            "SELECT sqlite_compileoption_used('ENABLE_FTS5')",
            "sqlite_compileoption_used",
        ),
        (
            "SELECT sqlite_compileoption_get(0)",
            "sqlite_compileoption_get",
        ),
    ] {
        let err = common::err_text(t.db.prepare(sql).all());
        assert_eq!(
            err,
            format!("D1_ERROR: not authorized to use function: {name} at offset 7: SQLITE_ERROR"),
            "{sql}"
        );
    }
    let err = common::err_text(
        t.db.prepare("SELECT * FROM (SELECT SQLITE_COMPILEOPTION_USED('THREADSAFE'))")
            .all(),
    );
    assert!(err.contains("not authorized to use function"), "{err}");
    // Other functions of the same kind stay available.
    assert!(t.db.prepare("SELECT sqlite_version()").all().is_ok());
}
