//! The binding's rules, each run on the memory counters and on Redis (each
//! Redis run under a key prefix of its own, so parallel tests never share
//! counters). Without a reachable Redis the Redis runs are skipped with a
//! reason, unless `HEARTH_TEST_REQUIRE_CLUSTER=1` (CI sets it).

use std::sync::{Arc, Barrier};

use hearth_core::{ManualClock, SharedClock};
use hearth_ratelimit::redis::RedisPool;
use hearth_ratelimit::{MAX_KEY_BYTES, RateLimitError, RateLimitNamespace, RateLimits};

/// Makes a namespace with `max_keys` on a clock; the same store each time
/// it is called within one test (a second node, for Redis).
type Make = dyn Fn(SharedClock, usize) -> RateLimitNamespace;

fn redis_url() -> String {
    std::env::var("HEARTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn run_on_memory(test: fn(&Make)) {
    test(&|clock, max| RateLimitNamespace::with_max_keys(clock, max));
}

fn run_on_redis(test: fn(&Make)) {
    let prefix = format!("hearth-test-{}", uuid::Uuid::new_v4());
    let pool = match RedisPool::connect(&redis_url(), &prefix) {
        Ok(pool) => pool,
        Err(e) if std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1") => {
            panic!("Redis is required (HEARTH_TEST_REQUIRE_CLUSTER=1): {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}; set HEARTH_TEST_REQUIRE_CLUSTER=1 to fail instead");
            return;
        }
    };
    test(&move |clock, max| {
        // A fresh pool per namespace: each stands for a node of its own.
        let pool = RedisPool::connect(&redis_url(), &prefix).unwrap();
        RateLimitNamespace::on_redis(clock, pool.counter("ns"), max)
    });
    drop(pool);
}

macro_rules! on_both {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $test() { super::run_on_memory(super::$test); })*
        }
        mod redis {
            $(#[test] fn $test() { super::run_on_redis(super::$test); })*
        }
    };
}

fn at(make: &Make, ms: u64) -> (Arc<ManualClock>, RateLimitNamespace) {
    let clock = Arc::new(ManualClock::new(ms));
    let ns = make(clock.clone(), hearth_ratelimit::DEFAULT_MAX_KEYS);
    (clock, ns)
}

fn counts_up_to_the_limit_then_refuses_until_the_next_window(make: &Make) {
    let (clock, ns) = at(make, 1_000_000);
    for _ in 0..3 {
        assert_eq!(ns.limit("a", 3, 10), Ok(true));
    }
    assert_eq!(ns.limit("a", 3, 10), Ok(false));
    assert_eq!(ns.limit("b", 3, 10), Ok(true), "keys have their own budget");
    clock.advance_ms(9_999);
    assert_eq!(ns.limit("a", 3, 10), Ok(false), "still the same window");
    clock.advance_ms(1);
    assert_eq!(ns.limit("a", 3, 10), Ok(true), "a new window starts empty");
}

fn idle_keys_leave_with_their_window(make: &Make) {
    let (clock, ns) = at(make, 0);
    for i in 0..100 {
        ns.limit(&format!("k{i}"), 5, 10).unwrap();
        ns.limit(&format!("m{i}"), 5, 60).unwrap();
    }
    assert_eq!(ns.tracked_keys(), Ok(200));
    clock.advance_secs(10);
    ns.limit("fresh", 5, 10).unwrap();
    assert_eq!(ns.tracked_keys(), Ok(101), "the ten-second window ended");
    clock.advance_secs(60);
    ns.limit("fresh", 5, 10).unwrap();
    assert_eq!(
        ns.tracked_keys(),
        Ok(1),
        "a call of either period drops every window that has ended"
    );
}

fn periods_count_apart(make: &Make) {
    let (_clock, ns) = at(make, 0);
    assert_eq!(ns.limit("k", 1, 10), Ok(true));
    assert_eq!(ns.limit("k", 1, 60), Ok(true));
    assert_eq!(ns.limit("k", 1, 60), Ok(false));
}

fn only_cloudflare_periods(make: &Make) {
    let (_clock, ns) = at(make, 0);
    assert_eq!(
        ns.limit("k", 1, 30),
        Err(RateLimitError::UnsupportedPeriod(30))
    );
    let long = "x".repeat(MAX_KEY_BYTES + 1);
    assert_eq!(
        ns.limit(&long, 1, 10),
        Err(RateLimitError::KeyTooLong(MAX_KEY_BYTES + 1))
    );
}

fn a_flood_of_keys_shares_one_overflow_budget(make: &Make) {
    let clock = Arc::new(ManualClock::new(0));
    let ns = make(clock, 4);
    for i in 0..4 {
        assert_eq!(ns.limit(&format!("k{i}"), 2, 10), Ok(true));
    }
    assert_eq!(ns.limit("new1", 2, 10), Ok(true));
    assert_eq!(ns.limit("new2", 2, 10), Ok(true));
    assert_eq!(
        ns.limit("new3", 2, 10),
        Ok(false),
        "overflow keys share a budget"
    );
    assert_eq!(ns.tracked_keys(), Ok(4));
    assert_eq!(ns.limit("k0", 2, 10), Ok(true), "tracked keys keep theirs");
}

/// The edge's rules count with the same windows over longer periods; the
/// binding's `limit` still takes only Cloudflare's binding periods.
fn rule_periods_count_in_aligned_windows(make: &Make) {
    let (clock, ns) = at(make, 3_600_000 * 500 + 1_000);
    assert_eq!(
        ns.limit("k", 1, 300),
        Err(RateLimitError::UnsupportedPeriod(300))
    );
    for _ in 0..2 {
        assert_eq!(ns.count("k", 2, 300), Ok(true));
        assert_eq!(ns.count("k", 2, 3600), Ok(true));
    }
    assert_eq!(ns.count("k", 2, 300), Ok(false));
    assert_eq!(ns.count("k", 2, 3600), Ok(false));
    // Refused requests are not counted: the next window admits 2 again.
    clock.advance_ms(299_000);
    assert_eq!(ns.count("k", 2, 300), Ok(true));
    assert_eq!(ns.count("k", 2, 300), Ok(true));
    assert_eq!(ns.count("k", 2, 300), Ok(false));
    assert_eq!(ns.count("k", 2, 3600), Ok(false), "the hour is not over");
    assert_eq!(
        ns.count("k", 2, 0),
        Err(RateLimitError::UnsupportedPeriod(0))
    );
    assert_eq!(
        ns.count("k", 2, hearth_ratelimit::MAX_PERIOD + 1),
        Err(RateLimitError::UnsupportedPeriod(
            hearth_ratelimit::MAX_PERIOD + 1
        ))
    );
}

/// Callers on many threads of one node are admitted exactly `limit` times
/// in one window.
fn concurrent_callers_are_admitted_exactly_limit_times(make: &Make) {
    let clock = Arc::new(ManualClock::new(5_000));
    let ns = Arc::new(make(clock, 1000));
    assert_eq!(admitted_by(vec![ns; 8]), 100);
}

/// Callers on eight nodes (a namespace each, with its own connections)
/// sharing one Redis are admitted exactly `limit` times in one window.
/// Memory counters cannot do this: each node counts alone.
fn callers_on_many_nodes_are_admitted_exactly_limit_times(make: &Make) {
    let clock = Arc::new(ManualClock::new(5_000));
    let nodes = (0..8)
        .map(|_| Arc::new(make(clock.clone(), 1000)))
        .collect();
    assert_eq!(admitted_by(nodes), 100);
}

/// 40 calls per namespace handle, each on its own thread, at a limit of 100.
fn admitted_by(namespaces: Vec<Arc<RateLimitNamespace>>) -> usize {
    let threads = namespaces.len();
    let per_thread = 40;
    let limit = 100u64;
    let start = Arc::new(Barrier::new(threads));
    namespaces
        .into_iter()
        .map(|ns| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                (0..per_thread)
                    .filter(|_| ns.limit("hot", limit, 60).unwrap())
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum()
}

on_both!(
    counts_up_to_the_limit_then_refuses_until_the_next_window,
    idle_keys_leave_with_their_window,
    periods_count_apart,
    only_cloudflare_periods,
    a_flood_of_keys_shares_one_overflow_budget,
    concurrent_callers_are_admitted_exactly_limit_times,
    rule_periods_count_in_aligned_windows,
);

#[test]
fn a_namespace_counts_a_bounded_number_of_periods() {
    let ns = RateLimitNamespace::new(Arc::new(ManualClock::new(0)));
    for p in 1..=hearth_ratelimit::MAX_PERIODS_PER_NAMESPACE as u64 {
        assert_eq!(ns.count("k", 1, p), Ok(true));
    }
    assert_eq!(
        ns.count("k", 1, 10_000),
        Err(RateLimitError::TooManyPeriods)
    );
    assert_eq!(ns.count("k", 1, 1), Ok(false), "known periods still count");
}

#[test]
fn redis_is_exact_across_nodes() {
    run_on_redis(callers_on_many_nodes_are_admitted_exactly_limit_times);
}

#[test]
fn memory_counts_each_node_alone() {
    let clock = Arc::new(ManualClock::new(5_000));
    let nodes = (0..8)
        .map(|_| Arc::new(RateLimitNamespace::new(clock.clone())))
        .collect();
    assert_eq!(
        admitted_by(nodes),
        320,
        "8 nodes x 40 calls, each under its own limit"
    );
}

#[test]
fn one_namespace_id_is_one_set_of_counters() {
    let limits = RateLimits::new(Arc::new(ManualClock::new(0)));
    assert_eq!(limits.namespace("1001").limit("k", 1, 60), Ok(true));
    assert_eq!(limits.namespace("1001").limit("k", 1, 60), Ok(false));
    assert_eq!(limits.namespace("1002").limit("k", 1, 60), Ok(true));
}

#[test]
fn an_unreachable_redis_is_named_at_connect() {
    let e = RedisPool::connect("redis://127.0.0.1:1", "x").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("rate limiting backend unavailable: Redis:"),
        "{e}"
    );
}
