//! `env.LIMITER` as a worker sees it: the Rate Limiting binding's
//! `limit()` with its option checks, and namespaces shared by id.

mod bindings_common;

use std::sync::Arc;

use bindings_common::{err, ok};
use hearth_core::clock::ManualClock;
use hearth_ratelimit::RateLimits;
use hearth_runtime::BindingAdapter;
use hearth_runtime::bindings::RateLimitAdapter;
use serde_json::{Value, json};

/// Runs `body` with `LIMITER` (3 per 10 s, namespace 1001), `SAME` (10 per
/// 60 s, also namespace 1001) and `OTHER` (3 per 10 s, namespace 1002).
fn transcript(body: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let limits = RateLimits::new(ManualClock::new(1_700_000_000_000).shared());
    let adapter = |name: &str, id: &str, limit, period| -> Arc<dyn BindingAdapter> {
        Arc::new(RateLimitAdapter::new(
            name,
            id,
            limits.namespace(id),
            limit,
            period,
        ))
    };
    bindings_common::transcript(
        dir.path(),
        vec![
            adapter("LIMITER", "1001", 3, 10),
            adapter("SAME", "1001", 10, 60),
            adapter("OTHER", "1002", 3, 10),
        ],
        &format!("    const {{ LIMITER, SAME, OTHER }} = env;\n{body}"),
    )
}

#[test]
fn a_key_gets_its_limit_per_period() {
    let t = transcript(
        r#"
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push((await LIMITER.limit({ key: "alice" })).success);
    await attempt(out, "alice", () => runs);
    await attempt(out, "bob", async () => (await LIMITER.limit({ key: "bob" })).success);
    await attempt(out, "otherNamespace", async () => (await OTHER.limit({ key: "alice" })).success);
    await attempt(out, "shape", async () => Object.keys(await LIMITER.limit({ key: "carol" })));
    await attempt(out, "isPromise", () => LIMITER.limit({ key: "dave" }) instanceof Promise);
    "#,
    );
    assert_eq!(ok(&t, "alice"), json!([true, true, true, false]));
    assert_eq!(ok(&t, "bob"), json!(true));
    assert_eq!(ok(&t, "otherNamespace"), json!(true));
    assert_eq!(ok(&t, "shape"), json!(["success"]));
    assert_eq!(ok(&t, "isPromise"), json!(true));
}

#[test]
fn bindings_naming_one_namespace_share_its_counters() {
    let t = transcript(
        r#"
    // SAME counts 60 s windows, LIMITER 10 s ones: their counts are apart
    // even in one namespace, but an override of the period joins them.
    for (let i = 0; i < 3; i++) await LIMITER.limit({ key: "k" });
    await attempt(out, "limiterSpent", async () => (await LIMITER.limit({ key: "k" })).success);
    await attempt(out, "samePeriodOverride", async () => (await SAME.limit({ key: "k", period: 10, limit: 3 })).success);
    await attempt(out, "sameOwnPeriod", async () => (await SAME.limit({ key: "k" })).success);
    await attempt(out, "raisedLimit", async () => (await LIMITER.limit({ key: "k", limit: 4 })).success);
    await attempt(out, "emptyKey", async () => (await LIMITER.limit({})).success);
    "#,
    );
    assert_eq!(ok(&t, "limiterSpent"), json!(false));
    assert_eq!(ok(&t, "samePeriodOverride"), json!(false));
    assert_eq!(ok(&t, "sameOwnPeriod"), json!(true));
    assert_eq!(ok(&t, "raisedLimit"), json!(true));
    assert_eq!(ok(&t, "emptyKey"), json!(true));
}

#[test]
fn bad_options_are_named() {
    let t = transcript(
        r#"
    await attempt(out, "none", () => LIMITER.limit());
    await attempt(out, "unknown", () => LIMITER.limit({ key: "a", burst: 2, window: 1 }));
    await attempt(out, "numberKey", () => LIMITER.limit({ key: 42 }));
    await attempt(out, "period", () => LIMITER.limit({ key: "a", period: 30 }));
    await attempt(out, "limit", () => LIMITER.limit({ key: "a", limit: "5" }));
    await attempt(out, "longKey", () => LIMITER.limit({ key: "x".repeat(2000) }));
    await attempt(out, "null", () => LIMITER.limit(null));
    await attempt(out, "function", () => LIMITER.limit(() => ({ key: "a" })));
    await attempt(out, "negative", () => LIMITER.limit({ key: "a", limit: -1 }));
    await attempt(out, "infinite", () => LIMITER.limit({ key: "a", limit: Infinity }));
    await attempt(out, "notANumber", () => LIMITER.limit({ key: "a", limit: NaN }));
    await attempt(out, "objectKey", () => LIMITER.limit({ key: {} }));
    await attempt(out, "symbolPeriod", () => LIMITER.limit({ key: "a", period: Symbol("p") }));
    // A bad call still returns a promise, rejected, as an async method does.
    let sync = false, p;
    try { p = LIMITER.limit(7); } catch { sync = true; }
    await attempt(out, "rejects", async () => [sync, p instanceof Promise, await p.then(() => "kept", (e) => e.message)]);
    // Getters run once each, in the order key, limit, period.
    const reads = [];
    const watched = {};
    for (const name of ["period", "limit", "key"]) {
      Object.defineProperty(watched, name, { enumerable: true, get() { reads.push(name); return name === "key" ? "w" : undefined; } });
    }
    await attempt(out, "getters", async () => [(await LIMITER.limit(watched)).success, reads]);
    "#,
    );
    for (name, message) in [
        ("null", "invalid rate limit options"),
        ("function", "invalid rate limit options"),
        ("negative", "limit must be a number: -1"),
        ("infinite", "limit must be a number: Infinity"),
        ("notANumber", "limit must be a number: NaN"),
        ("objectKey", "invalid key: [object Object]"),
        ("symbolPeriod", "period must be a number: Symbol(p)"),
    ] {
        assert_eq!(err(&t, name), ("Error".into(), message.into()), "{name}");
    }
    assert_eq!(
        ok(&t, "rejects"),
        json!([false, true, "invalid rate limit options"])
    );
    assert_eq!(ok(&t, "getters"), json!([true, ["key", "limit", "period"]]));
    assert_eq!(
        err(&t, "none"),
        ("Error".into(), "invalid rate limit options".into())
    );
    assert_eq!(
        err(&t, "unknown"),
        (
            "Error".into(),
            "bad rate limit options: [burst,window]".into()
        )
    );
    assert_eq!(
        err(&t, "numberKey"),
        ("Error".into(), "invalid key: 42".into())
    );
    assert_eq!(
        err(&t, "period"),
        ("Error".into(), "unsupported period: 30".into())
    );
    assert_eq!(
        err(&t, "limit"),
        ("Error".into(), "limit must be a number: 5".into())
    );
    assert_eq!(
        err(&t, "longKey"),
        (
            "Error".into(),
            "rate limit key is 2000 bytes, above the 1024-byte limit".into()
        )
    );
}
