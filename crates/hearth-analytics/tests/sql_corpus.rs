//! Query corpus: the shapes Cloudflare's SQL API reference and its
//! examples use (weighted sums over `_sample_interval`, time buckets, the
//! ClickHouse aggregates, date-string comparisons), each run against a
//! small dataset with a known answer, and the constructs outside the
//! dialect refused by name.

use std::sync::Arc;

use hearth_analytics::{AnalyticsEngine, AnalyticsError, DataPoint};
use hearth_core::ManualClock;
use serde_json::{Value, json};

/// 2024-03-15 10:20:30 UTC, a Friday.
const T0: u64 = 1_710_498_030_000;

fn weather() -> (tempfile::TempDir, Arc<ManualClock>, AnalyticsEngine) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = AnalyticsEngine::open(&dir.path().join("ae.sqlite"), clock.clone()).unwrap();
    // (city, country, temperature, rain, minutes after T0)
    let rows = [
        ("Paris", "FR", 12.0, 0.0, 0),
        ("Paris", "FR", 14.0, 2.0, 1),
        ("Lyon", "FR", 16.0, 0.0, 2),
        ("London", "UK", 9.0, 5.0, 3),
        ("London", "UK", 11.0, 1.0, 70),
        ("London", "UK", 10.0, 0.0, 71),
    ];
    for (city, country, temp, rain, minutes) in rows {
        clock.set_ms(T0 + minutes * 60_000);
        engine
            .write(
                "weather",
                DataPoint {
                    blobs: vec![Some(city.into()), Some(country.into())],
                    doubles: vec![temp, rain],
                    indexes: vec![Some(city.into())],
                },
            )
            .unwrap();
    }
    clock.set_ms(T0 + 2 * 3600 * 1000);
    (dir, clock, engine)
}

fn data(engine: &AnalyticsEngine, sql: &str) -> Value {
    let out = engine.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let v: Value = serde_json::from_str(&out.body).unwrap();
    v["data"].clone()
}

fn refused(engine: &AnalyticsEngine, sql: &str) -> String {
    match engine.query(sql) {
        Err(AnalyticsError::Query(m)) => m,
        other => panic!("{sql}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn weighted_counts_and_averages() {
    let (_dir, _clock, engine) = weather();
    assert_eq!(
        data(
            &engine,
            "SELECT blob1 AS city, SUM(_sample_interval * double1) / SUM(_sample_interval) AS avg_temp \
             FROM weather WHERE blob2 = 'FR' GROUP BY city ORDER BY avg_temp DESC"
        ),
        json!([{ "city": "Lyon", "avg_temp": 16.0 }, { "city": "Paris", "avg_temp": 13.0 }])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT blob2 AS country, SUM(_sample_interval) AS n FROM weather \
             GROUP BY country HAVING n > 2 ORDER BY n DESC, country LIMIT 5"
        ),
        json!([{ "country": "FR", "n": 3 }, { "country": "UK", "n": 3 }])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT count() AS rows, count(DISTINCT blob1) AS cities FROM weather WHERE blob1 LIKE 'L%'"
        ),
        json!([{ "rows": 4, "cities": 2 }])
    );
}

#[test]
fn conditional_aggregates() {
    let (_dir, _clock, engine) = weather();
    assert_eq!(
        data(
            &engine,
            "SELECT blob2 AS country, countIf(double2 > 0) AS rainy, sumIf(double2, double1 > 10) AS rain_warm, \
             avgIf(double1, blob1 = 'London') AS london FROM weather GROUP BY country ORDER BY country"
        ),
        json!([
            { "country": "FR", "rainy": 1, "rain_warm": 2.0, "london": null },
            { "country": "UK", "rainy": 2, "rain_warm": 1.0, "london": 10.0 },
        ])
    );
}

#[test]
fn quantiles_top_k_and_arg_extremes() {
    let (_dir, _clock, engine) = weather();
    // ClickHouse's own example: values 0,1,2,5 weighted 3,2,1,4 have the
    // weighted median 1.
    let (_d2, _c2, small) = weather();
    for (v, w) in [(0.0, 3.0), (1.0, 2.0), (2.0, 1.0), (5.0, 4.0)] {
        small
            .write(
                "q",
                DataPoint {
                    doubles: vec![v, w],
                    ..DataPoint::default()
                },
            )
            .unwrap();
    }
    assert_eq!(
        data(
            &small,
            "SELECT quantileWeighted(0.5)(double1, double2) AS m FROM q"
        ),
        json!([{ "m": 1.0 }])
    );
    assert_eq!(
        data(
            &small,
            "SELECT quantileWeighted(0.9, double1, double2) AS p90, quantileExactWeighted(0.1)(double1, double2) AS p10 FROM q"
        ),
        json!([{ "p90": 5.0, "p10": 0.0 }])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT quantileWeighted(0.5)(double1, _sample_interval) AS median_temp FROM weather"
        ),
        json!([{ "median_temp": 11.0 }])
    );
    let out = engine
        .query("SELECT topK(2)(blob1) AS top, topK(blob2) AS countries FROM weather")
        .unwrap();
    let v: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(
        v["data"],
        json!([{ "top": ["London", "Paris"], "countries": ["FR", "UK"] }])
    );
    assert_eq!(v["meta"][0]["type"], "Array(String)");
    assert_eq!(
        data(
            &engine,
            "SELECT topKWeighted(1)(blob1, double1) AS warmest FROM weather"
        ),
        json!([{ "warmest": ["London"] }]),
        "London weighs 30 against Paris's 26"
    );
    assert_eq!(
        data(
            &engine,
            "SELECT blob2 AS country, argMax(blob1, double1) AS hottest, argMin(blob1, double1) AS coldest \
             FROM weather GROUP BY country ORDER BY country"
        ),
        json!([
            { "country": "FR", "hottest": "Lyon", "coldest": "Paris" },
            { "country": "UK", "hottest": "London", "coldest": "London" },
        ])
    );
}

#[test]
fn time_buckets_are_date_times() {
    let (_dir, _clock, engine) = weather();
    assert_eq!(
        data(
            &engine,
            "SELECT toStartOfInterval(timestamp, INTERVAL '1' HOUR) AS t, SUM(_sample_interval) AS n \
             FROM weather GROUP BY t ORDER BY t"
        ),
        json!([
            { "t": "2024-03-15 10:00:00", "n": 4 },
            { "t": "2024-03-15 11:00:00", "n": 2 },
        ])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT toStartOfMinute(timestamp) AS a, toStartOfFiveMinutes(timestamp) AS b, \
             toStartOfFifteenMinutes(timestamp) AS c, toStartOfHour(timestamp) AS d, \
             toStartOfDay(timestamp) AS e, toStartOfWeek(timestamp) AS f, toStartOfWeek(timestamp, 1) AS g, \
             toStartOfMonth(timestamp) AS h, toStartOfQuarter(timestamp) AS i, toStartOfYear(timestamp) AS j \
             FROM weather WHERE double2 = 5"
        ),
        json!([{
            "a": "2024-03-15 10:23:00", "b": "2024-03-15 10:20:00", "c": "2024-03-15 10:15:00",
            "d": "2024-03-15 10:00:00", "e": "2024-03-15 00:00:00", "f": "2024-03-10",
            "g": "2024-03-11", "h": "2024-03-01", "i": "2024-01-01", "j": "2024-01-01",
        }])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT toYear(timestamp) AS y, toMonth(timestamp) AS m, toDayOfMonth(timestamp) AS d, \
             toDayOfWeek(timestamp) AS wd, toHour(timestamp) AS h, toMinute(timestamp) AS mi, \
             toSecond(timestamp) AS s, toYYYYMM(timestamp) AS ym, toUnixTimestamp(timestamp) AS u \
             FROM weather WHERE double2 = 5"
        ),
        json!([{ "y": 2024, "m": 3, "d": 15, "wd": 5, "h": 10, "mi": 23, "s": 30, "ym": 202403, "u": 1_710_498_210 }])
    );
    assert_eq!(
        data(&engine, "SELECT now() AS n, today() AS d"),
        json!([{ "n": "2024-03-15 12:20:30", "d": "2024-03-15" }])
    );
}

#[test]
fn timestamps_compare_with_date_strings_and_intervals() {
    let (_dir, _clock, engine) = weather();
    let n = |sql: &str| data(&engine, sql)[0]["n"].clone();
    assert_eq!(
        n("SELECT count() AS n FROM weather WHERE timestamp >= '2024-03-15 11:00:00'"),
        2
    );
    assert_eq!(
        n("SELECT count() AS n FROM weather WHERE '2024-03-15 10:22:00' > timestamp"),
        2
    );
    assert_eq!(
        n(
            "SELECT count() AS n FROM weather WHERE timestamp BETWEEN '2024-03-15 10:21:00' AND '2024-03-15 10:23:30'"
        ),
        3
    );
    assert_eq!(
        n("SELECT count() AS n FROM weather WHERE timestamp > toDateTime('2024-03-15 10:22:30')"),
        3
    );
    assert_eq!(
        n("SELECT count() AS n FROM weather WHERE timestamp < '2024-03-15'"),
        0
    );
    assert_eq!(
        n("SELECT count() AS n FROM weather WHERE timestamp > NOW() - INTERVAL '1' HOUR"),
        2
    );
    assert_eq!(
        n(
            "SELECT count() AS n FROM weather WHERE timestamp > now() - INTERVAL 90 MINUTE AND blob1 = '2024-03-15'"
        ),
        0,
        "a date-like string compared with a blob stays a string"
    );
    let m = refused(
        &engine,
        "SELECT count() FROM weather WHERE timestamp > '15/03/2024'",
    );
    assert!(m.contains("'15/03/2024'"), "{m}");
}

#[test]
fn datasets_take_aliases() {
    let (_dir, _clock, engine) = weather();
    for sql in [
        "SELECT w.blob1 AS city FROM weather AS w WHERE w.double1 > 15",
        "SELECT w.blob1 AS city FROM weather w WHERE w.double1 > 15",
        "SELECT weather.blob1 AS city FROM weather WHERE weather.double1 > 15",
    ] {
        assert_eq!(data(&engine, sql), json!([{ "city": "Lyon" }]), "{sql}");
    }
}

#[test]
fn with_and_subqueries() {
    let (_dir, _clock, engine) = weather();
    assert_eq!(
        data(
            &engine,
            "WITH hot AS (SELECT blob1 AS city, max(double1) AS t FROM weather GROUP BY city) \
             SELECT city FROM hot WHERE t > 12 ORDER BY city"
        ),
        json!([{ "city": "Lyon" }, { "city": "Paris" }])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT count() AS n FROM (SELECT blob1 FROM weather WHERE double2 > 0)"
        ),
        json!([{ "n": 3 }])
    );
}

#[test]
fn constructs_outside_the_dialect_are_refused_by_name() {
    let (_dir, _clock, engine) = weather();
    for (sql, named) in [
        ("SELECT sqlite_version()", "sqlite_version"),
        ("SELECT randomblob(4) FROM weather", "randomblob"),
        (
            "SELECT json_extract(blob1, '$') FROM weather",
            "json_extract",
        ),
        (
            "SELECT hearth_topk(blob1, 1, 1) FROM weather",
            "hearth_topk",
        ),
        (
            "SELECT a.blob1 FROM weather a JOIN weather b ON a.blob1 = b.blob1",
            "JOIN",
        ),
        (
            "SELECT blob1 FROM weather UNION SELECT blob2 FROM weather",
            "UNION",
        ),
        ("SELECT sum(double1) OVER () FROM weather", "OVER"),
        ("SELECT blob1 FROM weather WHERE blob1 GLOB 'P*'", "GLOB"),
        ("SELECT count(1)(blob1) FROM weather", "count"),
        ("SELECT countIf(double1, double2) FROM weather", "countIf"),
        ("SELECT blob1 FROM weather FORMAT Parquet", "Parquet"),
        (
            "SELECT timestamp FROM weather WHERE timestamp > NOW() - INTERVAL '1' FORTNIGHT",
            "FORTNIGHT",
        ),
    ] {
        let m = refused(&engine, sql);
        assert!(m.contains(named), "{sql}: {m}");
    }
}

#[test]
fn bit_functions() {
    let (_dir, _clock, engine) = weather();
    assert_eq!(
        data(
            &engine,
            "SELECT bitAnd(12, 10) AS a, bitOr(12, 10) AS o, bitXor(12, 10) AS x, bitNot(0) AS n, \
             bitCount(255) AS c, bitHammingDistance(111, 121) AS h, bitShiftLeft(1, 10) AS l, \
             bitShiftRight(1024, 3) AS r, bitRotateLeft(1, 63) AS rl, bitRotateRight(1, 1) AS rr, \
             bitTest(43, 1) AS t1, bitTest(43, 2) AS t2"
        ),
        json!([{
            "a": 8, "o": 14, "x": 6, "n": -1, "c": 8, "h": 3, "l": 1024, "r": 128,
            "rl": i64::MIN, "rr": i64::MIN, "t1": 1, "t2": 0
        }])
    );
    // Doubles are cast to Int64, as ClickHouse does.
    assert_eq!(
        data(
            &engine,
            "SELECT blob1, bitAnd(double1, 1) AS odd FROM weather WHERE blob1 = 'London' ORDER BY double1"
        ),
        json!([
            { "blob1": "London", "odd": 1 },
            { "blob1": "London", "odd": 0 },
            { "blob1": "London", "odd": 1 },
        ])
    );
    let m = refused(&engine, "SELECT bitShiftLeft(1, 64)");
    assert!(m.contains("bitShiftLeft") && m.contains("64"), "{m}");
    let m = refused(&engine, "SELECT bitAnd(blob1, 1) FROM weather");
    assert!(m.contains("bitAnd"), "{m}");
}

#[test]
fn conditionals_and_string_functions() {
    let (_dir, _clock, engine) = weather();
    assert_eq!(
        data(
            &engine,
            "SELECT blob1 AS city, if(double1 > 11, 'warm', 'cold') AS feel, startsWith(blob1, 'Lo') AS lo, \
             endsWith(blob1, 'is') AS ends, position(blob1, 'on') AS on_at, concat(blob1, ', ', blob2) AS place \
             FROM weather WHERE double2 = 0 ORDER BY double1"
        ),
        json!([
            { "city": "London", "feel": "cold", "lo": 1, "ends": 0, "on_at": 2, "place": "London, UK" },
            { "city": "Paris", "feel": "warm", "lo": 0, "ends": 1, "on_at": 0, "place": "Paris, FR" },
            { "city": "Lyon", "feel": "warm", "lo": 0, "ends": 0, "on_at": 3, "place": "Lyon, FR" },
        ])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT sum(if(blob2 = 'UK', _sample_interval, 0)) AS uk FROM weather"
        ),
        json!([{ "uk": 3 }])
    );
    let m = refused(&engine, "SELECT if(double1 > 1, 'a') FROM weather");
    assert!(m.contains("if"), "{m}");
}

/// The SQL API's LIKE is case-sensitive (NOT LIKE too).
#[test]
fn like_is_case_sensitive() {
    let (_dir, _clock, engine) = weather();
    assert_eq!(
        data(
            &engine,
            "SELECT count() AS n FROM weather WHERE blob1 LIKE 'l%'"
        ),
        json!([{ "n": 0 }])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT count() AS n FROM weather WHERE blob1 LIKE 'Lo%'"
        ),
        json!([{ "n": 3 }])
    );
    assert_eq!(
        data(
            &engine,
            "SELECT count() AS n FROM weather WHERE blob1 NOT LIKE 'p%'"
        ),
        json!([{ "n": 6 }])
    );
}
