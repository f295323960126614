//! Data survives reopening; the database serves many threads at once.

mod common;

use std::sync::Arc;
use std::thread;

use hearth_d1::{D1Database, D1Value};

#[test]
fn reopening_keeps_committed_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d1/app.sqlite");
    {
        let db = D1Database::open(&path).unwrap();
        db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, raw BLOB)")
            .unwrap();
        db.prepare("INSERT INTO notes (body, raw) VALUES (?, ?)")
            .bind(["kept".into(), D1Value::Blob(vec![0, 255])])
            .run()
            .unwrap();
        // A failed batch must not leave anything behind after reopening either.
        let _ = db.batch(&[
            db.prepare("INSERT INTO notes (body) VALUES ('lost')"),
            db.prepare("SELECT * FROM nope"),
        ]);
    }
    let db = D1Database::open(&path).unwrap();
    let rows = db
        .prepare("SELECT body, raw FROM notes")
        .raw(false)
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            D1Value::Text("kept".into()),
            D1Value::Blob(vec![0, 255])
        ]]
    );
}

#[test]
fn two_handles_on_one_file_see_each_others_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    let a = D1Database::open(&path).unwrap();
    let b = D1Database::open(&path).unwrap();
    a.exec("CREATE TABLE s (v)").unwrap();
    a.prepare("INSERT INTO s VALUES (1)").run().unwrap();
    let n = b
        .prepare("SELECT count(*) AS n FROM s")
        .first_column("n")
        .unwrap();
    assert_eq!(n, Some(D1Value::Integer(1)));
    b.prepare("INSERT INTO s VALUES (2)").run().unwrap();
    assert!(a.current_bookmark().unwrap() == b.current_bookmark().unwrap());
}

#[test]
fn concurrent_writers_and_readers_lose_nothing() {
    let t = common::open();
    t.db.exec("CREATE TABLE c (id INTEGER PRIMARY KEY, thread INTEGER, n INTEGER)")
        .unwrap();
    let db = Arc::new(t.db.clone());
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let db = db.clone();
            thread::spawn(move || {
                let insert = db.prepare("INSERT INTO c (thread, n) VALUES (?, ?)");
                for i in 0..50 {
                    if i % 10 == 0 {
                        db.batch(&[insert.bind([k, i]), insert.bind([k, i + 1000])])
                            .unwrap();
                    } else {
                        insert.bind([k, i]).run().unwrap();
                    }
                    let seen = db
                        .prepare("SELECT count(*) AS n FROM c WHERE thread = ?")
                        .bind([k])
                        .first_column("n")
                        .unwrap();
                    assert!(seen.and_then(|v| v.as_i64()).unwrap() > i64::from(i));
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let total =
        t.db.prepare("SELECT count(*) AS n FROM c")
            .first_column("n")
            .unwrap();
    assert_eq!(total, Some(D1Value::Integer(8 * 55)));
    let ids =
        t.db.prepare("SELECT count(DISTINCT id) AS n FROM c")
            .first_column("n")
            .unwrap();
    assert_eq!(ids, Some(D1Value::Integer(8 * 55)));
}
