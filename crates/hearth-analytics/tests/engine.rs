//! The Analytics Engine store: limits, the writer, retention, and the SQL
//! API's dialect and shapes, on a manual clock.

use std::sync::Arc;

use hearth_analytics::{AnalyticsEngine, AnalyticsError, DataPoint, MAX_BLOB_BYTES, RETENTION_MS};
use hearth_core::ManualClock;
use serde_json::{Value, json};

const T0: u64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

fn point(blobs: &[&str], doubles: &[f64], index: &str) -> DataPoint {
    DataPoint {
        blobs: blobs.iter().map(|b| Some(b.as_bytes().to_vec())).collect(),
        doubles: doubles.to_vec(),
        indexes: vec![Some(index.as_bytes().to_vec())],
    }
}

fn open() -> (tempfile::TempDir, Arc<ManualClock>, AnalyticsEngine) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = AnalyticsEngine::open(&dir.path().join("ae.sqlite"), clock.clone()).unwrap();
    (dir, clock, engine)
}

fn json_query(engine: &AnalyticsEngine, sql: &str) -> Value {
    let out = engine.query(sql).unwrap();
    assert_eq!(out.content_type, "application/json");
    serde_json::from_str(&out.body).unwrap()
}

#[test]
fn points_are_queried_by_dataset_with_the_api_shape() {
    let (_dir, clock, engine) = open();
    engine
        .write("pages", point(&["/a", "US"], &[12.5], "host1"))
        .unwrap();
    engine
        .write("pages", point(&["/a", "FR"], &[7.5], "host1"))
        .unwrap();
    engine
        .write("pages", point(&["/b", "US"], &[1.0], "host2"))
        .unwrap();
    engine
        .write("other", point(&["/a"], &[100.0], "x"))
        .unwrap();
    clock.advance_secs(5);
    let v = json_query(
        &engine,
        "SELECT blob1 AS path, SUM(_sample_interval) AS hits, SUM(double1) AS total FROM pages GROUP BY blob1 ORDER BY blob1",
    );
    assert_eq!(
        v["data"],
        json!([
            { "path": "/a", "hits": 2, "total": 20.0 },
            { "path": "/b", "hits": 1, "total": 1.0 },
        ])
    );
    assert_eq!(
        v["meta"],
        json!([
            { "name": "path", "type": "String" },
            { "name": "hits", "type": "Int64" },
            { "name": "total", "type": "Float64" },
        ])
    );
    assert_eq!(v["rows"], 2);

    let v = json_query(
        &engine,
        "SELECT timestamp, index1, blob3, double2 FROM pages LIMIT 1",
    );
    assert_eq!(
        v["data"][0],
        json!({ "timestamp": "2023-11-14 22:13:20", "index1": "host1", "blob3": "", "double2": 0.0 }),
        "unset blobs read '' and unset doubles 0, timestamps as DateTime"
    );
    assert_eq!(v["meta"][0]["type"], "DateTime");
}

#[test]
fn now_intervals_and_time_buckets_follow_the_clock() {
    let (_dir, clock, engine) = open();
    engine.write("ev", point(&["old"], &[], "")).unwrap();
    engine.flush().unwrap();
    clock.advance_secs(2 * 86_400);
    engine.write("ev", point(&["new"], &[], "")).unwrap();
    let v = json_query(
        &engine,
        "SELECT blob1 FROM ev WHERE timestamp > NOW() - INTERVAL '1' DAY",
    );
    assert_eq!(v["data"], json!([{ "blob1": "new" }]));
    let v = json_query(
        &engine,
        "SELECT toStartOfInterval(timestamp, INTERVAL 1 DAY) AS day, count() AS n FROM ev GROUP BY day ORDER BY day",
    );
    let days: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["day"].as_str().unwrap())
        .collect();
    assert_eq!(
        days,
        vec!["2023-11-14 00:00:00", "2023-11-16 00:00:00"],
        "{v}"
    );
}

#[test]
fn formats() {
    let (_dir, _clock, engine) = open();
    engine.write("f", point(&["a\tb"], &[1.0], "i")).unwrap();
    engine.write("f", point(&["c"], &[2.0], "i")).unwrap();
    let out = engine
        .query("SELECT blob1, double1 FROM f ORDER BY double1 FORMAT JSONEachRow")
        .unwrap();
    assert_eq!(
        out.body,
        "{\"blob1\":\"a\\tb\",\"double1\":1.0}\n{\"blob1\":\"c\",\"double1\":2.0}\n"
    );
    let out = engine
        .query("SELECT blob1, double1 FROM f ORDER BY double1 FORMAT TabSeparated;")
        .unwrap();
    assert_eq!(out.body, "a\\tb\t1.0\nc\t2.0\n");
}

#[test]
fn limits_are_named() {
    let (_dir, _clock, engine) = open();
    let many = |n: usize| vec![Some(b"x".to_vec()); n];
    let err = |p: DataPoint| engine.write("d", p).unwrap_err().to_string();
    assert_eq!(
        err(DataPoint {
            blobs: many(21),
            ..Default::default()
        }),
        "writeDataPoint(): Maximum of 20 blobs supported, got 21"
    );
    assert_eq!(
        err(DataPoint {
            doubles: vec![1.0; 21],
            ..Default::default()
        }),
        "writeDataPoint(): Maximum of 20 doubles supported, got 21"
    );
    assert_eq!(
        err(DataPoint {
            indexes: many(2),
            ..Default::default()
        }),
        "writeDataPoint(): Maximum of 1 indexes supported, got 2"
    );
    assert_eq!(
        err(DataPoint {
            indexes: vec![Some(vec![b'i'; 97])],
            ..Default::default()
        }),
        "writeDataPoint(): index is 97 bytes, above the 96-byte limit"
    );
    let big = vec![
        Some(vec![b'b'; MAX_BLOB_BYTES / 2]),
        Some(vec![b'b'; MAX_BLOB_BYTES / 2 + 1]),
    ];
    assert_eq!(
        err(DataPoint {
            blobs: big,
            ..Default::default()
        }),
        "writeDataPoint(): blobs total 16385 bytes, above the 16384-byte limit"
    );
    let v = json_query(&engine, "SELECT count() AS n FROM d");
    assert_eq!(v["data"][0]["n"], 0, "nothing over a limit is stored");
}

#[test]
fn queries_read_and_do_nothing_else() {
    let (_dir, _clock, engine) = open();
    engine.write("d", point(&["a"], &[], "")).unwrap();
    for q in [
        "DELETE FROM d",
        "SELECT 1; DELETE FROM points",
        "SELECT name FROM sqlite_master",
        "SELECT * FROM pragma_table_info('points')",
        "SELECT blob1 FROM d FORMAT Parquet",
    ] {
        match engine.query(q) {
            Err(AnalyticsError::Query(_)) => {}
            other => panic!("{q}: {other:?}"),
        }
    }
    let v = json_query(&engine, "SELECT count() AS n FROM d");
    assert_eq!(v["data"][0]["n"], 1);
}

#[test]
fn points_past_the_retention_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let path = dir.path().join("ae.sqlite");
    {
        let engine = AnalyticsEngine::open(&path, clock.clone()).unwrap();
        engine.write("d", point(&["old"], &[], "")).unwrap();
    }
    clock.advance_ms(RETENTION_MS + 1000);
    let engine = AnalyticsEngine::open(&path, clock.clone()).unwrap();
    engine.write("d", point(&["new"], &[], "")).unwrap();
    let v = json_query(&engine, "SELECT blob1 FROM d");
    assert_eq!(v["data"], json!([{ "blob1": "new" }]));
}

/// A buffer of eight points against four threads writing 1,000 each:
/// the writes outrun the writer, wait for room instead of dropping, and
/// every accepted point is stored; the writer commits what it holds on a
/// clean close.
#[test]
fn points_survive_a_clean_close_and_a_full_buffer_waits_not_drops() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let path = dir.path().join("ae.sqlite");
    {
        let engine = Arc::new(AnalyticsEngine::open_with_buffer(&path, clock.clone(), 8).unwrap());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let engine = engine.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        engine
                            .write("burst", point(&[&format!("{t}-{i}")], &[], ""))
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let v = json_query(
            &engine,
            "SELECT count() AS n, count(DISTINCT blob1) AS d FROM burst",
        );
        assert_eq!(v["data"][0]["n"], 4000);
        assert_eq!(v["data"][0]["d"], 4000);
        engine.write("kept", point(&["x"], &[], "")).unwrap();
    }
    let engine = AnalyticsEngine::open(&path, clock).unwrap();
    let v = json_query(&engine, "SELECT count() AS n FROM kept");
    assert_eq!(
        v["data"][0]["n"], 1,
        "the writer commits what it holds on close"
    );
}

/// A writer that cannot commit (here another connection holds SQLite's
/// write lock) fills the buffer: a write then waits `full_wait` and fails
/// naming the problem, and every write acknowledged before it is stored
/// once the writer can commit again.
#[test]
fn a_write_the_writer_makes_no_room_for_fails_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let path = dir.path().join("ae.sqlite");
    let wait = std::time::Duration::from_millis(300);
    let options = hearth_analytics::AnalyticsOptions {
        buffer_points: 2,
        full_wait: wait,
        ..Default::default()
    };
    let engine = AnalyticsEngine::open_with(&path, clock.clone(), options).unwrap();
    let blocker = hearth_core::sqlite::open(&path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut acknowledged = 0;
    let refused = loop {
        let started = std::time::Instant::now();
        match engine.write("stalled", point(&[&acknowledged.to_string()], &[], "")) {
            Ok(()) => acknowledged += 1,
            Err(e) => break (e, started.elapsed()),
        }
        assert!(acknowledged < 100, "the buffer never filled");
    };
    let (e, waited) = refused;
    assert!(matches!(e, AnalyticsError::BufferFull(2, _)), "{e}");
    assert!(
        e.to_string()
            .contains("the write buffer is full (2 points waiting)")
            && e.to_string().contains("the point was not recorded"),
        "{e}"
    );
    assert!(
        waited >= wait,
        "failed after {waited:?}, before waiting {wait:?}"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    let v = json_query(
        &engine,
        "SELECT count() AS n, count(DISTINCT blob1) AS d FROM stalled",
    );
    assert_eq!(v["data"][0]["n"], acknowledged);
    assert_eq!(v["data"][0]["d"], acknowledged);
}

/// Large points fill the buffer by bytes before its point count: 2,000
/// points of nearly 16 KB (32 MB, four times the byte bound) all arrive.
#[test]
fn a_buffer_full_of_bytes_waits_too() {
    let (_dir, _clock, engine) = open();
    let big = "b".repeat(MAX_BLOB_BYTES - 8);
    for i in 0..2000 {
        engine
            .write("big", point(&[&big, &i.to_string()], &[], ""))
            .unwrap();
    }
    let v = json_query(
        &engine,
        "SELECT count() AS n, count(DISTINCT blob2) AS d, count(DISTINCT blob1) AS b FROM big",
    );
    assert_eq!(v["data"][0]["n"], 2000);
    assert_eq!(v["data"][0]["d"], 2000);
    assert_eq!(v["data"][0]["b"], 1);
}

/// Points over several seconds, several `blob1` values and two datasets.
fn spread(engine: &AnalyticsEngine, clock: &ManualClock) {
    for i in 0..600u64 {
        clock.set_ms(T0 + (i % 7) * 1000 + (i % 3) * 60_000);
        let path = format!("/p{}", i % 5);
        let country = ["US", "FR", "DE"][(i % 3) as usize];
        let dataset = if i % 11 == 0 { "other" } else { "pages" };
        engine
            .write(
                dataset,
                point(&[&path, country], &[i as f64, (i % 4) as f64], "host"),
            )
            .unwrap();
    }
    clock.set_ms(T0 + 3600 * 1000);
}

/// Queries of the rollup's shape (timestamp, blob1, count(),
/// SUM(_sample_interval)) read the per-second rollup and answer exactly
/// what the points answer; others read the points.
#[test]
fn the_per_second_rollup_answers_as_the_points_do() {
    let (_dir, clock, engine) = open();
    spread(&engine, &clock);
    let t1 = hearth_analytics::sql::format_datetime((T0 / 1000 + 3) as i64);
    let t2 = hearth_analytics::sql::format_datetime((T0 / 1000 + 62) as i64);
    let rollup_queries = [
        "SELECT blob1, SUM(_sample_interval) AS n FROM pages GROUP BY blob1 ORDER BY blob1".to_owned(),
        "SELECT count() AS n FROM pages".to_owned(),
        "SELECT count(*) AS n, SUM(_sample_interval) FROM pages WHERE blob1 LIKE '/p1%'".to_owned(),
        format!("SELECT blob1, count() AS n FROM pages WHERE timestamp >= '{t1}' AND timestamp < '{t2}' GROUP BY blob1 ORDER BY n DESC, blob1"),
        "SELECT toStartOfInterval(timestamp, INTERVAL '1' MINUTE) AS t, blob1, SUM(_sample_interval) AS n FROM pages GROUP BY t, blob1 ORDER BY t, blob1".to_owned(),
        "SELECT blob1, countIf(timestamp > toDateTime('2023-11-14 22:13:22')) AS late, sumIf(_sample_interval, blob1 != '/p0') AS s FROM pages GROUP BY blob1 ORDER BY blob1".to_owned(),
        "SELECT blob1 AS path, count() AS n FROM pages GROUP BY path HAVING n > 100 ORDER BY n DESC, path LIMIT 2 FORMAT JSONEachRow".to_owned(),
        "SELECT min(timestamp) AS first, max(timestamp) AS last, count(DISTINCT blob1) AS paths FROM pages".to_owned(),
        "SELECT dataset, count() FROM other GROUP BY dataset".to_owned(),
        "SELECT count() AS n FROM pages WHERE blob1 = 'nothing'".to_owned(),
        "SELECT SUM(_sample_interval) AS n FROM pages WHERE blob1 = 'nothing'".to_owned(),
    ];
    for q in &rollup_queries {
        assert!(
            hearth_analytics::sql::translate_rollup(q)
                .unwrap()
                .is_some(),
            "{q} should read the rollup"
        );
        let (a, b) = (engine.query(q).unwrap(), engine.query_points(q).unwrap());
        assert_eq!(a, b, "{q}");
    }
    // Totals checked by hand, not just by agreement.
    let v = json_query(&engine, &rollup_queries[1]);
    assert_eq!(v["data"], json!([{ "n": 545 }]));
    let v = json_query(&engine, &rollup_queries[9]);
    assert_eq!(v["data"], json!([{ "n": 0 }]));
    for q in [
        "SELECT blob1 FROM pages",
        "SELECT * FROM pages",
        "SELECT blob2, count() FROM pages GROUP BY blob2",
        "SELECT blob1, avg(double1) FROM pages GROUP BY blob1",
        "SELECT blob1, SUM(_sample_interval * double1) FROM pages GROUP BY blob1",
        "SELECT blob1, count() FROM pages WHERE index1 = 'host' GROUP BY blob1",
        "SELECT blob1, topK(3)(blob1) FROM pages GROUP BY blob1",
        "SELECT count() FROM (SELECT blob1 FROM pages)",
        "SELECT count(blob1) FROM pages",
        "SELECT pages.* , count() FROM pages GROUP BY blob1",
    ] {
        assert!(
            hearth_analytics::sql::translate_rollup(q)
                .unwrap()
                .is_none(),
            "{q} must read the points"
        );
    }
}

/// Points stored by something other than the writer (an older version, a
/// bulk load) are added to the rollup when the store is next opened.
#[test]
fn points_stored_outside_the_writer_join_the_rollup_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let path = dir.path().join("ae.sqlite");
    {
        let engine = AnalyticsEngine::open(&path, clock.clone()).unwrap();
        engine.write("d", point(&["a"], &[], "")).unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO points (dataset, timestamp, blob1) VALUES ('d', ?1, 'a'), ('d', ?1, 'b'), ('d', ?1, NULL)",
            [(T0 / 1000) as i64],
        )
        .unwrap();
    }
    let engine = AnalyticsEngine::open(&path, clock.clone()).unwrap();
    engine.write("d", point(&["b"], &[], "")).unwrap();
    let q = "SELECT blob1, count() AS n FROM d GROUP BY blob1 ORDER BY blob1";
    let v = json_query(&engine, q);
    assert_eq!(
        v["data"],
        json!([{ "blob1": "", "n": 1 }, { "blob1": "a", "n": 2 }, { "blob1": "b", "n": 2 }])
    );
    drop(engine);
    // Opening again adds nothing twice.
    let engine = AnalyticsEngine::open(&path, clock).unwrap();
    assert_eq!(json_query(&engine, q)["data"][1]["n"], 2);
    assert_eq!(
        json_query(&engine, "SELECT count() AS n FROM d")["data"][0]["n"],
        5
    );
}

/// Expired points leave the rollup with the points, without waiting for
/// ten thousand more writes: a query after the clock passes the retention
/// sees neither.
#[test]
fn the_retention_applies_to_the_rollup_on_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let options = hearth_analytics::AnalyticsOptions {
        retention_ms: 2 * 86_400_000,
        ..Default::default()
    };
    let engine =
        AnalyticsEngine::open_with(&dir.path().join("ae.sqlite"), clock.clone(), options).unwrap();
    engine.write("d", point(&["old"], &[], "")).unwrap();
    clock.advance_ms(86_400_000);
    engine.write("d", point(&["new"], &[], "")).unwrap();
    let q = "SELECT blob1, count() AS n FROM d GROUP BY blob1 ORDER BY blob1";
    assert_eq!(
        json_query(&engine, q)["data"],
        json!([{ "blob1": "new", "n": 1 }, { "blob1": "old", "n": 1 }])
    );
    clock.advance_ms(86_400_000 + 1000);
    assert_eq!(
        json_query(&engine, q)["data"],
        json!([{ "blob1": "new", "n": 1 }])
    );
    assert_eq!(engine.query_points(q).unwrap(), engine.query(q).unwrap());
    clock.advance_ms(86_400_000);
    assert_eq!(json_query(&engine, q)["data"], json!([]));
    assert_eq!(
        json_query(&engine, "SELECT blob1 FROM d")["data"],
        json!([])
    );
}

#[test]
fn each_point_keeps_its_own_shape_in_a_batch() {
    let (_dir, clock, engine) = open();
    // Written before the writer wakes, so they share one transaction:
    // a narrower point after a wider one must not inherit its values.
    // Bytes that are not UTF-8 read with U+FFFD in their place.
    let blobs: Vec<String> = (1..=20).map(|i| format!("b{i}")).collect();
    let doubles: Vec<f64> = (1..=20).map(f64::from).collect();
    let wide = DataPoint {
        blobs: blobs.iter().map(|b| Some(b.as_bytes().to_vec())).collect(),
        doubles: doubles.clone(),
        indexes: vec![Some(b"wide".to_vec())],
    };
    let shapes = [
        wide.clone(),
        point(&["n1"], &[], "narrow"),
        DataPoint::default(),
        DataPoint {
            blobs: vec![None, Some(b"second".to_vec())],
            doubles: vec![0.5],
            indexes: vec![None],
        },
        wide,
        point(&["last"], &[9.0, 8.0], "last"),
        DataPoint {
            blobs: vec![Some(b"bytes".to_vec()), Some(vec![b'f', 0xff, b'g'])],
            ..DataPoint::default()
        },
    ];
    for p in shapes {
        // A second apart, so the timestamp orders the rows as written.
        engine.write("shapes", p).unwrap();
        clock.advance_secs(1);
    }
    let v = json_query(
        &engine,
        "SELECT index1, blob1, blob2, blob3, blob20, double1, double2, double3, double19 FROM shapes ORDER BY timestamp",
    );
    assert_eq!(
        v["data"],
        json!([
            { "index1": "wide", "blob1": "b1", "blob2": "b2", "blob3": "b3", "blob20": "b20", "double1": 1.0, "double2": 2.0, "double3": 3.0, "double19": 19.0 },
            { "index1": "narrow", "blob1": "n1", "blob2": "", "blob3": "", "blob20": "", "double1": 0.0, "double2": 0.0, "double3": 0.0, "double19": 0.0 },
            { "index1": "", "blob1": "", "blob2": "", "blob3": "", "blob20": "", "double1": 0.0, "double2": 0.0, "double3": 0.0, "double19": 0.0 },
            { "index1": "", "blob1": "", "blob2": "second", "blob3": "", "blob20": "", "double1": 0.5, "double2": 0.0, "double3": 0.0, "double19": 0.0 },
            { "index1": "wide", "blob1": "b1", "blob2": "b2", "blob3": "b3", "blob20": "b20", "double1": 1.0, "double2": 2.0, "double3": 3.0, "double19": 19.0 },
            { "index1": "last", "blob1": "last", "blob2": "", "blob3": "", "blob20": "", "double1": 9.0, "double2": 8.0, "double3": 0.0, "double19": 0.0 },
            { "index1": "", "blob1": "bytes", "blob2": "f\u{fffd}g", "blob3": "", "blob20": "", "double1": 0.0, "double2": 0.0, "double3": 0.0, "double19": 0.0 },
        ])
    );
    let v = json_query(
        &engine,
        "SELECT blob1, count() AS n FROM shapes GROUP BY blob1 ORDER BY blob1",
    );
    assert_eq!(
        v["data"],
        json!([
            { "blob1": "", "n": 2 },
            { "blob1": "b1", "n": 2 },
            { "blob1": "bytes", "n": 1 },
            { "blob1": "last", "n": 1 },
            { "blob1": "n1", "n": 1 },
        ])
    );
}
