//! Sessions and bookmarks.

mod common;

use hearth_d1::{D1Error, SessionConstraint, is_bookmark};

#[test]
fn constraints_and_bookmarks_are_accepted_and_garbage_is_not() {
    let t = common::open();
    assert_eq!(
        t.db.with_session(None).unwrap().constraint(),
        &SessionConstraint::FirstUnconstrained
    );
    assert_eq!(
        t.db.with_session(Some("  ")).unwrap().constraint(),
        &SessionConstraint::FirstUnconstrained
    );
    assert_eq!(
        t.db.with_session(Some("first-primary"))
            .unwrap()
            .constraint(),
        &SessionConstraint::FirstPrimary
    );
    assert_eq!(
        t.db.with_session(Some("first-unconstrained"))
            .unwrap()
            .constraint(),
        &SessionConstraint::FirstUnconstrained
    );
    let err = t.db.with_session(Some("latest")).unwrap_err();
    assert_eq!(err, D1Error::InvalidBookmark("latest".into()));
    assert_eq!(
        err.to_string(),
        "D1_SESSION_ERROR: invalid bookmark or constraint"
    );
}

#[test]
fn a_session_has_no_bookmark_until_it_runs_a_query() {
    let t = common::open();
    let s = t.db.with_session(Some("first-primary")).unwrap();
    assert_eq!(s.get_bookmark(), None);
    s.prepare("SELECT 1").all().unwrap();
    let b = s.get_bookmark().unwrap();
    assert!(is_bookmark(&b), "{b}");
}

#[test]
fn later_writes_give_later_bookmarks_and_reads_do_not_move_them() {
    let t = common::open();
    let s = t.db.with_session(None).unwrap();
    s.prepare("CREATE TABLE s (a)").run().unwrap();
    let b1 = s.get_bookmark().unwrap();
    s.prepare("SELECT * FROM s").all().unwrap();
    assert_eq!(
        s.get_bookmark().unwrap(),
        b1,
        "a read does not advance the commit position"
    );
    s.prepare("INSERT INTO s VALUES (1)").run().unwrap();
    let b2 = s.get_bookmark().unwrap();
    s.batch(&[
        s.prepare("INSERT INTO s VALUES (2)"),
        s.prepare("INSERT INTO s VALUES (3)"),
    ])
    .unwrap();
    let b3 = s.get_bookmark().unwrap();
    assert!(b1 < b2 && b2 < b3, "{b1} {b2} {b3}");
    // Writes through the database or another session move the position too.
    t.db.prepare("INSERT INTO s VALUES (4)").run().unwrap();
    let current = t.db.current_bookmark().unwrap();
    assert!(current > b3);
    let other = t.db.with_session(Some(&b1)).unwrap();
    assert_eq!(
        other.get_bookmark().unwrap(),
        b1,
        "a session started from a bookmark reports it"
    );
    let rows = other
        .prepare("SELECT count(*) AS n FROM s")
        .first_column("n")
        .unwrap();
    assert_eq!(
        rows.and_then(|v| v.as_i64()),
        Some(4),
        "one node always serves the latest state"
    );
    assert_eq!(other.get_bookmark().unwrap(), current);
}

#[test]
fn a_failed_query_does_not_advance_the_bookmark() {
    let t = common::open();
    let s = t.db.with_session(None).unwrap();
    s.prepare("CREATE TABLE f (a UNIQUE)").run().unwrap();
    s.prepare("INSERT INTO f VALUES (1)").run().unwrap();
    let before = s.get_bookmark().unwrap();
    assert!(s.prepare("INSERT INTO f VALUES (1)").run().is_err());
    assert_eq!(s.get_bookmark().unwrap(), before);
    assert_eq!(t.db.current_bookmark().unwrap(), before);
}

#[test]
fn bookmarks_survive_reopening_and_keep_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let first = {
        let db = hearth_d1::D1Database::open(&path).unwrap();
        db.exec("CREATE TABLE r (a)").unwrap();
        db.current_bookmark().unwrap()
    };
    let db = hearth_d1::D1Database::open(&path).unwrap();
    assert_eq!(db.current_bookmark().unwrap(), first);
    db.prepare("INSERT INTO r VALUES (1)").run().unwrap();
    assert!(db.current_bookmark().unwrap() > first);
    // The database id part stays the same across opens.
    assert_eq!(db.current_bookmark().unwrap()[27..], first[27..]);
}
