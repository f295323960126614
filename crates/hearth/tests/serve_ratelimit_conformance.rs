//! Rate Limiting through `hearth serve`, in the scenarios miniflare's own
//! suite checks its local binding with: `limit: 2, period: 60` admits a
//! key twice then refuses it; bad options throw an `Error` with
//! miniflare's message; bindings with one `namespace_id` share counters
//! and another namespace does not. Plus what miniflare's fixed window
//! implies and its suite cannot check without a clock: the key is
//! admitted again in the next window, and a 10 s period counts apart
//! from a 60 s one. Times come from the injected clock, set to the start
//! of a window so no scenario straddles two.

mod web_support;

use web_support::Server;

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method === "POST") {
      const options = await request.json();
      try {
        await env.TESTRATE.limit(options);
      } catch (e) {
        return new Response(String(e), { status: 200 });
      }
      return new Response("should have resulted in error", { status: 500 });
    }
    const binding = url.searchParams.get("b") ?? "TESTRATE";
    const options = { key: url.searchParams.get("key") ?? "test" };
    const period = url.searchParams.get("period");
    if (period !== null) options.period = Number(period);
    const { success } = await env[binding].limit(options);
    if (!success) return new Response("rate limited", { status: 429 });
    return new Response("success", { status: 200 });
  },
};
"#;

const CONFIG: &str = r#"name = "conformance"
main = "index.js"

[[ratelimits]]
name = "TESTRATE"
namespace_id = "1001"
simple = { limit = 2, period = 60 }

[[ratelimits]]
name = "RATE_A"
namespace_id = "2001"
simple = { limit = 2, period = 60 }

[[ratelimits]]
name = "RATE_B"
namespace_id = "2001"
simple = { limit = 2, period = 60 }

[[ratelimits]]
name = "RATE_C"
namespace_id = "2002"
simple = { limit = 2, period = 60 }
"#;

fn start() -> (tempfile::TempDir, Server) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.js"), WORKER).unwrap();
    let config = root.path().join("wrangler.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let server = Server::with_test_clock("serve", &config, &root.path().join("data"));
    // One second into a fresh minute (a multiple of 10 s too).
    let now = server.clock_ms();
    server.set_clock((now / 60_000 + 1) * 60_000 + 1_000);
    (root, server)
}

fn status(server: &Server, path: &str) -> (u16, String) {
    let r = server.get(path);
    (r.status, r.text())
}

#[test]
fn a_key_is_admitted_limit_times_per_window() {
    let (_root, server) = start();
    assert_eq!(status(&server, "/"), (200, "success".into()));
    assert_eq!(status(&server, "/"), (200, "success".into()));
    assert_eq!(status(&server, "/"), (429, "rate limited".into()));
    // Another key has its own count.
    assert_eq!(status(&server, "/?key=other").0, 200);
    // The next window admits the key again.
    server.advance_clock(60_000);
    assert_eq!(status(&server, "/"), (200, "success".into()));
    assert_eq!(status(&server, "/"), (200, "success".into()));
    assert_eq!(status(&server, "/").0, 429);
}

#[test]
fn a_ten_second_period_counts_apart() {
    let (_root, server) = start();
    assert_eq!(status(&server, "/?key=p&period=10").0, 200);
    assert_eq!(status(&server, "/?key=p&period=10").0, 200);
    assert_eq!(status(&server, "/?key=p&period=10").0, 429);
    // The 60 s count of the same key is untouched.
    assert_eq!(status(&server, "/?key=p").0, 200);
    server.advance_clock(10_000);
    assert_eq!(status(&server, "/?key=p&period=10").0, 200);
}

#[test]
fn bad_options_throw_miniflares_errors() {
    let (_root, server) = start();
    for (options, error) in [
        ("\"invalid\"", "Error: invalid rate limit options"),
        (
            "{\"invalid\": \"foo\"}",
            "Error: bad rate limit options: [invalid]",
        ),
        ("{\"limit\": \"bad\"}", "Error: limit must be a number: bad"),
        (
            "{\"period\": \"bad\"}",
            "Error: period must be a number: bad",
        ),
        ("{\"period\": 1}", "Error: unsupported period: 1"),
    ] {
        let r = server.request("POST", "/", &[], options.as_bytes());
        assert_eq!((r.status, r.text()), (200, error.to_owned()), "{options}");
    }
}

#[test]
fn one_namespace_id_is_one_counter() {
    let (_root, server) = start();
    let call = |b: &str| server.get(&format!("/?b={b}&key=k")).status;
    assert_eq!(call("RATE_A"), 200);
    assert_eq!(call("RATE_B"), 200);
    assert_eq!(call("RATE_A"), 429);
    assert_eq!(call("RATE_B"), 429);
    assert_eq!(call("RATE_C"), 200);
    assert_eq!(call("RATE_C"), 200);
    assert_eq!(call("RATE_C"), 429);
}
