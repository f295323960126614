//! Rate-limiting rules counting with the Rate Limiting binding's engine
//! (`hearth-ratelimit`), on an injected clock: aligned windows,
//! check-and-count, Retry-After until the window ends or the mitigation
//! timeout, counts shared by every edge on one namespace, long keys.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hearth_core::ManualClock;
use hearth_edge::ratelimit::RateLimitNamespace;
use hearth_edge::{Edge, EdgeRequest, Verdict};

const ZONE: &str = r#"
[[rate_limits]]
id = "search"
expression = 'starts_with(http.request.uri.path, "/search")'
characteristics = ["ip.src", "http.request.uri.path"]
requests_per_period = 3
period = 300
action = "block"

[[rate_limits]]
id = "login"
expression = 'http.request.uri.path eq "/login"'
characteristics = ["ip.src"]
requests_per_period = 1
period = 60
mitigation_timeout = 600
action = "block"
"#;

/// An edge over `ZONE` counting in `ns`.
fn edge(dir: &tempfile::TempDir, clock: &ManualClock, ns: Arc<RateLimitNamespace>) -> Edge {
    let zone = dir.path().join("hearth.toml");
    std::fs::write(&zone, ZONE).unwrap();
    let config = hearth_edge::config::load(&zone).unwrap();
    Edge::from_config(&zone, config, None, clock.shared(), ns).unwrap()
}

/// The status and Retry-After the edge answers `path` from `ip` with.
fn get(edge: &Edge, ip: u8, path: &str) -> (u16, Option<String>) {
    let req = EdgeRequest {
        method: "GET",
        host: "example.com",
        path,
        query: "",
        headers: vec![("user-agent", Cow::Borrowed("test"))],
        peer: IpAddr::V4(Ipv4Addr::new(198, 51, 100, ip)),
        tls: true,
        port: 443,
        version: "HTTP/1.1",
        ray: "0000000000000002",
    };
    match edge.check(&req) {
        Verdict::Pass(_) => (200, None),
        Verdict::Reply(r) => {
            let retry = r
                .headers
                .iter()
                .find(|(k, _)| k == "retry-after")
                .map(|(_, v)| v.clone());
            (r.status, retry)
        }
    }
}

#[test]
fn rules_count_in_aligned_windows_and_refused_requests_do_not_count() {
    // 100 s into a 300 s window.
    let clock = ManualClock::new(3_600_000 * 400 + 100_000);
    let ns = hearth_edge::ratelimit::memory(clock.shared());
    let dir = tempfile::tempdir().unwrap();
    let edge = edge(&dir, &clock, ns.clone());
    for _ in 0..3 {
        assert_eq!(get(&edge, 7, "/search"), (200, None));
    }
    assert_eq!(
        get(&edge, 7, "/search"),
        (429, Some("200".into())),
        "blocked until the window ends"
    );
    assert_eq!(
        get(&edge, 8, "/search").0,
        200,
        "another address counts apart"
    );
    assert_eq!(
        get(&edge, 7, "/search/b").0,
        200,
        "another path counts apart"
    );
    // Many refused requests later, the next window admits the full 3:
    // only admitted requests are counted, as the binding counts.
    for _ in 0..20 {
        assert_eq!(get(&edge, 7, "/search").0, 429);
    }
    clock.advance_ms(199_999);
    assert_eq!(get(&edge, 7, "/search"), (429, Some("1".into())));
    clock.advance_ms(1);
    for _ in 0..3 {
        assert_eq!(get(&edge, 7, "/search").0, 200);
    }
    assert_eq!(get(&edge, 7, "/search").0, 429);
    // The keys live in the engine's namespace (7 and 8 on /search, 7 on
    // /search/b; the window that ended took its keys with it).
    assert_eq!(ns.tracked_keys(), Ok(1));
}

#[test]
fn the_mitigation_timeout_outlasts_the_window() {
    let clock = ManualClock::new(3_600_000 * 400);
    let dir = tempfile::tempdir().unwrap();
    let edge = edge(&dir, &clock, hearth_edge::ratelimit::memory(clock.shared()));
    assert_eq!(get(&edge, 9, "/login").0, 200);
    assert_eq!(get(&edge, 9, "/login"), (429, Some("600".into())));
    clock.advance_secs(120);
    assert_eq!(
        get(&edge, 9, "/login"),
        (429, Some("480".into())),
        "a new window, but the mitigation holds"
    );
    clock.advance_secs(480);
    assert_eq!(get(&edge, 9, "/login").0, 200, "mitigation over");
}

#[test]
fn edges_on_one_namespace_share_their_counts() {
    // Two edges (two servers, or a server reloaded) given one namespace
    // count together: what the cluster gets from one Redis namespace.
    let clock = ManualClock::new(3_600_000 * 400);
    let ns = hearth_edge::ratelimit::memory(clock.shared());
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (edge(&d1, &clock, ns.clone()), edge(&d2, &clock, ns.clone()));
    assert_eq!(get(&a, 7, "/search").0, 200);
    assert_eq!(get(&b, 7, "/search").0, 200);
    assert_eq!(get(&a, 7, "/search").0, 200);
    assert_eq!(get(&b, 7, "/search").0, 429);
    assert_eq!(get(&a, 7, "/search").0, 429);
    // Two edges on namespaces of their own count alone.
    let c = edge(&d1, &clock, hearth_edge::ratelimit::memory(clock.shared()));
    assert_eq!(get(&c, 7, "/search").0, 200);
}

#[test]
fn a_key_over_the_engines_byte_cap_is_still_counted() {
    let clock = ManualClock::new(3_600_000 * 400);
    let dir = tempfile::tempdir().unwrap();
    let edge = edge(&dir, &clock, hearth_edge::ratelimit::memory(clock.shared()));
    let long = format!("/search/{}", "a".repeat(3000));
    let other = format!("/search/{}b", "a".repeat(3000));
    for _ in 0..3 {
        assert_eq!(get(&edge, 7, &long).0, 200);
    }
    assert_eq!(get(&edge, 7, &long).0, 429);
    assert_eq!(get(&edge, 7, &other).0, 200, "a different long path");
}
