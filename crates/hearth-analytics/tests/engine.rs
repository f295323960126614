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

#[test]
fn points_survive_a_clean_close_and_a_full_buffer_drops_not_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let path = dir.path().join("ae.sqlite");
    {
        let engine = AnalyticsEngine::open_with_buffer(&path, clock.clone(), 1).unwrap();
        // A buffer of one: a burst outruns the writer; some points drop,
        // none blocks the caller, and every write is accounted for.
        for i in 0..2000 {
            engine
                .write("burst", point(&[&i.to_string()], &[], ""))
                .unwrap();
        }
        engine.flush().unwrap();
        let stored = json_query(&engine, "SELECT count() AS n FROM burst")["data"][0]["n"]
            .as_u64()
            .unwrap();
        assert_eq!(stored + engine.dropped(), 2000);
        assert!(stored >= 1);
        engine.write("kept", point(&["x"], &[], "")).unwrap();
    }
    let engine = AnalyticsEngine::open(&path, clock).unwrap();
    let v = json_query(&engine, "SELECT count() AS n FROM kept");
    assert_eq!(
        v["data"][0]["n"], 1,
        "the writer commits what it holds on close"
    );
}
