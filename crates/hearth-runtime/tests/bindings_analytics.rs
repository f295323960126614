//! `env.AE` as a worker sees it: `writeDataPoint()` returns nothing,
//! accepts strings, buffers and nulls, and names what is wrong.

mod bindings_common;

use std::sync::Arc;

use bindings_common::{err, ok};
use hearth_analytics::AnalyticsEngine;
use hearth_core::clock::ManualClock;
use hearth_runtime::bindings::AnalyticsAdapter;
use serde_json::json;

#[test]
fn data_points_are_written_and_bad_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        AnalyticsEngine::open(
            &dir.path().join("ae.sqlite"),
            ManualClock::new(1_700_000_000_000).shared(),
        )
        .unwrap(),
    );
    let t = bindings_common::transcript(
        dir.path(),
        vec![Arc::new(AnalyticsAdapter::new(
            "AE",
            "events",
            engine.clone(),
        ))],
        r#"
    const AE = env.AE;
    await attempt(out, "returns", () => AE.writeDataPoint({
      blobs: ["/home", new TextEncoder().encode("bytes"), null],
      doubles: [1.5, 2],
      indexes: ["tenant-1"],
    }));
    await attempt(out, "empty", () => AE.writeDataPoint());
    await attempt(out, "views", () => AE.writeDataPoint({
      blobs: ["views", new Uint16Array([0x6968]), new DataView(new TextEncoder().encode("dv").buffer),
        new TextEncoder().encode("ab").buffer, undefined, "after"],
    }));
    await attempt(out, "blobTypeLater", () => AE.writeDataPoint({ blobs: ["a", null, {}] }));
    await attempt(out, "notObject", () => AE.writeDataPoint("x"));
    await attempt(out, "blobType", () => AE.writeDataPoint({ blobs: [1] }));
    await attempt(out, "doubleType", () => AE.writeDataPoint({ doubles: ["1"] }));
    await attempt(out, "notArray", () => AE.writeDataPoint({ blobs: "a" }));
    await attempt(out, "tooMany", () => AE.writeDataPoint({ blobs: new Array(21).fill("b") }));
    "#,
    );
    assert_eq!(ok(&t, "returns"), serde_json::Value::Null);
    assert_eq!(ok(&t, "empty"), serde_json::Value::Null);
    assert_eq!(ok(&t, "views"), serde_json::Value::Null);
    assert_eq!(
        err(&t, "blobTypeLater"),
        (
            "TypeError".into(),
            "writeDataPoint(): blobs[2] must be a string, an ArrayBuffer or null".into()
        )
    );
    assert_eq!(
        err(&t, "notObject"),
        (
            "TypeError".into(),
            "writeDataPoint(): the data point must be an object".into()
        )
    );
    assert_eq!(
        err(&t, "blobType"),
        (
            "TypeError".into(),
            "writeDataPoint(): blobs[0] must be a string, an ArrayBuffer or null".into()
        )
    );
    assert_eq!(
        err(&t, "doubleType"),
        (
            "TypeError".into(),
            "writeDataPoint(): doubles[0] must be a number".into()
        )
    );
    assert_eq!(
        err(&t, "notArray"),
        (
            "TypeError".into(),
            "writeDataPoint(): blobs must be an array".into()
        )
    );
    assert_eq!(
        err(&t, "tooMany"),
        (
            "TypeError".into(),
            "writeDataPoint(): Maximum of 20 blobs supported, got 21".into()
        )
    );
    let out = engine
        .query(
            "SELECT blob1, blob2, blob3, double1, double2, index1 FROM events WHERE blob1 != 'views' ORDER BY blob1 DESC",
        )
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(
        v["data"],
        json!([
            { "blob1": "/home", "blob2": "bytes", "blob3": "", "double1": 1.5, "double2": 2.0, "index1": "tenant-1" },
            { "blob1": "", "blob2": "", "blob3": "", "double1": 0.0, "double2": 0.0, "index1": "" },
        ])
    );
    let out = engine
        .query("SELECT blob2, blob3, blob4, blob5, blob6 FROM events WHERE blob1 = 'views'")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(
        v["data"],
        json!([{ "blob2": "hi", "blob3": "dv", "blob4": "ab", "blob5": "", "blob6": "after" }]),
        "views are read as their bytes, an undefined blob as null"
    );
}

#[test]
fn an_invocation_writes_at_most_250_points_across_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        AnalyticsEngine::open(
            &dir.path().join("ae.sqlite"),
            ManualClock::new(1_700_000_000_000).shared(),
        )
        .unwrap(),
    );
    let t = bindings_common::transcript(
        dir.path(),
        vec![
            Arc::new(AnalyticsAdapter::new("A", "one", engine.clone())),
            Arc::new(AnalyticsAdapter::new("B", "two", engine.clone())),
        ],
        r#"
    await attempt(out, "first250", () => {
      for (let i = 0; i < 200; i++) env.A.writeDataPoint({ doubles: [i] });
      for (let i = 0; i < 50; i++) env.B.writeDataPoint({ doubles: [i] });
      return "written";
    });
    await attempt(out, "the251st", () => env.A.writeDataPoint({ doubles: [1] }));
    "#,
    );
    assert_eq!(ok(&t, "first250"), json!("written"));
    assert_eq!(
        err(&t, "the251st"),
        (
            "Error".into(),
            "writeDataPoint(): Maximum of 250 data points per invocation exceeded".into()
        )
    );
    let out = engine
        .query("SELECT count() AS n FROM one FORMAT JSONEachRow")
        .unwrap();
    assert_eq!(out.body, "{\"n\":200}\n");
}
