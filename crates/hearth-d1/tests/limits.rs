//! Every limit: Cloudflare's default value, enforced with an error naming it.

mod common;

use std::time::Duration;

use hearth_d1::{D1Error, D1Limits, D1Value};

#[test]
fn defaults_are_cloudflare_values() {
    let l = D1Limits::default();
    assert_eq!(l.max_bound_parameters, 100);
    assert_eq!(l.max_sql_statement_bytes, 100_000);
    assert_eq!(l.max_value_bytes, 2_000_000);
    assert_eq!(l.max_columns_per_table, 100);
    assert_eq!(l.max_query_duration, Duration::from_secs(30));
    assert_eq!(l.max_database_bytes, 10_000_000_000);
    assert_eq!(l.max_function_args, 32);
    assert_eq!(l.max_like_pattern_bytes, 50);
}

fn placeholders(n: usize) -> String {
    format!("SELECT {}", vec!["?"; n].join(", "))
}

#[test]
fn bound_parameters_are_limited_to_100() {
    let t = common::open();
    let ok =
        t.db.prepare(placeholders(100))
            .bind(vec![1; 100])
            .raw(false)
            .unwrap();
    assert_eq!(ok[0].len(), 100);
    let err =
        t.db.prepare(placeholders(101))
            .bind(vec![1; 101])
            .raw(false)
            .unwrap_err();
    assert_eq!(
        err,
        D1Error::TooManyParameters {
            got: 101,
            limit: 100
        }
    );
    assert_eq!(
        err.to_string(),
        "D1_ERROR: too many SQL variables: SQLITE_ERROR (101 bound parameters; the limit is 100 per query)"
    );
    // SQLite itself refuses a parameter number past the limit.
    assert_eq!(
        common::err_text(t.db.prepare("SELECT ?101").bind([1]).all()),
        "D1_ERROR: variable number must be between ?1 and ?100 at offset 7: SQLITE_ERROR"
    );
}

#[test]
fn the_parameter_limit_can_be_raised() {
    let t = common::open_with(D1Limits {
        max_bound_parameters: 200,
        ..D1Limits::default()
    });
    let sql = format!(
        "SELECT count(*) AS n FROM (VALUES {})",
        vec!["(?)"; 150].join(", ")
    );
    let n =
        t.db.prepare(sql)
            .bind(vec![7; 150])
            .first_column("n")
            .unwrap();
    assert_eq!(n, Some(D1Value::Integer(150)));
}

#[test]
fn statements_are_limited_to_100_000_bytes() {
    let t = common::open();
    let pad = |n: usize| format!("SELECT '{}'", "a".repeat(n - 9));
    assert_eq!(pad(100_000).len(), 100_000);
    t.db.prepare(pad(100_000)).all().unwrap();
    let err = t.db.prepare(pad(100_001)).all().unwrap_err();
    assert_eq!(
        err,
        D1Error::StatementTooLong {
            len: 100_001,
            limit: 100_000
        }
    );
    assert_eq!(
        err.to_string(),
        "D1_ERROR: statement too long: SQLITE_TOOBIG (the SQL statement is 100001 bytes; the limit is 100000 bytes)"
    );
}

#[test]
fn the_statement_limit_applies_to_each_batch_statement() {
    let t = common::open();
    let long = format!("SELECT '{}'", "a".repeat(100_000));
    let err =
        t.db.batch(&[t.db.prepare("SELECT 1"), t.db.prepare(long)])
            .unwrap_err();
    match &err {
        D1Error::Batch {
            index,
            error: source,
        } => {
            assert_eq!(*index, 1);
            assert!(matches!(**source, D1Error::StatementTooLong { .. }));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn bound_strings_and_blobs_are_limited_to_2_mb() {
    let t = common::open();
    t.db.exec("CREATE TABLE b (v)").unwrap();
    let insert = t.db.prepare("INSERT INTO b VALUES (?)");
    insert.bind([vec![0u8; 2_000_000]]).run().unwrap();
    let err = insert.bind([vec![0u8; 2_000_001]]).run().unwrap_err();
    assert_eq!(
        err,
        D1Error::ValueTooLarge {
            index: 1,
            len: 2_000_001,
            limit: 2_000_000
        }
    );
    assert_eq!(
        err.to_string(),
        "D1_ERROR: string or blob too big: SQLITE_TOOBIG (bound parameter 1 is 2000001 bytes; strings, BLOBs and rows are limited to 2000000 bytes)"
    );
    let err = insert.bind(["é".repeat(1_000_001)]).run().unwrap_err();
    assert!(
        matches!(err, D1Error::ValueTooLarge { len: 2_000_002, .. }),
        "{err:?}"
    );
}

#[test]
fn rows_and_computed_values_are_limited_too() {
    let t = common::open_with(D1Limits {
        max_value_bytes: 1_000,
        ..D1Limits::default()
    });
    t.db.exec("CREATE TABLE r (a, b)").unwrap();
    let half = "x".repeat(600);
    let err =
        t.db.prepare("INSERT INTO r VALUES (?, ?)")
            .bind([half.clone(), half])
            .run()
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "D1_ERROR: string or blob too big: SQLITE_TOOBIG (strings, BLOBs and rows are limited to 1000 bytes)"
    );
    let err = t.db.prepare("SELECT zeroblob(2000)").all().unwrap_err();
    assert!(
        matches!(err, D1Error::TooBig { limit: 1000, .. }),
        "{err:?}"
    );
    assert_eq!(
        t.db.prepare("SELECT count(*) AS n FROM r")
            .first_column("n")
            .unwrap(),
        Some(D1Value::Integer(0))
    );
}

#[test]
fn tables_are_limited_to_100_columns() {
    let t = common::open();
    let cols = |n: usize| {
        (0..n)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    t.db.prepare(format!("CREATE TABLE ok ({})", cols(100)))
        .run()
        .unwrap();
    let err =
        t.db.prepare(format!("CREATE TABLE wide ({})", cols(101)))
            .run()
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "D1_ERROR: too many columns on wide: SQLITE_ERROR (the limit is 100 columns per table)"
    );
    assert!(matches!(err, D1Error::TooManyColumns { limit: 100, .. }));
}

const RUNAWAY: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

#[test]
fn a_runaway_query_is_stopped_at_the_time_limit() {
    let t = common::open_with(D1Limits {
        max_query_duration: Duration::from_millis(50),
        ..D1Limits::default()
    });
    let err = t.db.prepare(RUNAWAY).all().unwrap_err();
    assert_eq!(err, D1Error::TimeLimit { limit_ms: 50 });
    assert_eq!(
        err.to_string(),
        "D1_ERROR: D1 DB exceeded its CPU time limit and was reset. (the query or batch ran longer than the 50 ms limit)"
    );
    // The database keeps serving afterwards.
    assert_eq!(
        t.db.prepare("SELECT 1 AS one").first_column("one").unwrap(),
        Some(D1Value::Integer(1))
    );
}

#[test]
fn the_time_limit_covers_a_whole_batch_and_rolls_it_back() {
    let t = common::open_with(D1Limits {
        max_query_duration: Duration::from_millis(50),
        ..D1Limits::default()
    });
    t.db.exec("CREATE TABLE k (v)").unwrap();
    let err =
        t.db.batch(&[
            t.db.prepare("INSERT INTO k VALUES (1)"),
            t.db.prepare(RUNAWAY),
        ])
        .unwrap_err();
    assert!(
        matches!(err, D1Error::Batch { index: 1, error: ref source } if matches!(**source, D1Error::TimeLimit { .. })),
        "{err:?}"
    );
    assert_eq!(
        t.db.prepare("SELECT count(*) AS n FROM k")
            .first_column("n")
            .unwrap(),
        Some(D1Value::Integer(0))
    );
}

#[test]
fn the_database_size_is_limited() {
    let limit = 128 * 1024;
    let t = common::open_with(D1Limits {
        max_database_bytes: limit,
        ..D1Limits::default()
    });
    t.db.exec("CREATE TABLE big (v BLOB)").unwrap();
    let insert = t.db.prepare("INSERT INTO big VALUES (?)");
    let mut err = None;
    for _ in 0..20 {
        if let Err(e) = insert.bind([vec![7u8; 16 * 1024]]).run() {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("the size limit was never hit");
    assert_eq!(err, D1Error::DatabaseFull { limit });
    assert_eq!(
        err.to_string(),
        "D1_ERROR: database or disk is full: SQLITE_FULL (the database may not grow past 131072 bytes)"
    );
    // Reads and deletes still work, and free room for new writes.
    t.db.prepare("DELETE FROM big").run().unwrap();
    insert.bind([vec![7u8; 16 * 1024]]).run().unwrap();
}

#[test]
fn function_arguments_and_like_patterns_are_limited() {
    let t = common::open();
    let args = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    t.db.prepare(format!("SELECT max({})", args(32)))
        .all()
        .unwrap();
    assert_eq!(
        common::err_text(t.db.prepare(format!("SELECT max({})", args(33))).all()),
        "D1_ERROR: too many arguments on function max at offset 7: SQLITE_ERROR (SQL functions take at most 32 arguments)"
    );
    t.db.prepare("SELECT 'a' LIKE ?")
        .bind(["a".repeat(50)])
        .all()
        .unwrap();
    let pattern = "a".repeat(51);
    assert_eq!(
        common::err_text(t.db.prepare("SELECT 'a' LIKE ?").bind([pattern]).all()),
        "D1_ERROR: LIKE or GLOB pattern too complex: SQLITE_ERROR (LIKE and GLOB patterns are limited to 50 bytes)"
    );
}
