//! Rate Limiting through `hearth serve`, declared in the
//! `[[unsafe.bindings]]` form (`type = "ratelimit"`): under real
//! concurrent clients one key is admitted exactly `limit` times in a
//! window, never more.

mod web_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use web_support::Server;

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const key = new URL(request.url).searchParams.get("key") ?? "";
    const { success } = await env.LIMITER.limit({ key });
    return new Response(success ? "ok" : "slow down", { status: success ? 200 : 429 });
  },
};
"#;

const LIMIT: usize = 50;
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 25;

#[test]
fn concurrent_clients_get_exactly_the_limit() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.js"), WORKER).unwrap();
    let config = root.path().join("wrangler.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"rl\"\nmain = \"index.js\"\n\n[[unsafe.bindings]]\nname = \"LIMITER\"\ntype = \"ratelimit\"\nnamespace_id = \"7\"\nsimple = {{ limit = {LIMIT}, period = 60 }}\n"
        ),
    )
    .unwrap();
    let server = Server::start("serve", &config, &root.path().join("data"));
    assert_eq!(server.get("/?key=warm-up").status, 200);

    // The server counts in fixed minutes of its own (real) clock; start
    // the burst early in one so it cannot straddle two.
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into_minute = now().as_secs() % 60;
    if into_minute > 30 {
        std::thread::sleep(Duration::from_secs(60 - into_minute) + Duration::from_millis(100));
    }
    let minute = now().as_secs() / 60;
    let admitted = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                for _ in 0..PER_CLIENT {
                    match server.get("/?key=shared").status {
                        200 => admitted.fetch_add(1, Ordering::Relaxed),
                        429 => refused.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected status {other}"),
                    };
                }
            });
        }
    });
    assert_eq!(
        now().as_secs() / 60,
        minute,
        "the burst stayed in one window"
    );
    assert_eq!(admitted.load(Ordering::Relaxed), LIMIT);
    assert_eq!(
        refused.load(Ordering::Relaxed),
        CLIENTS * PER_CLIENT - LIMIT
    );
    assert_eq!(
        server.get("/?key=other").status,
        200,
        "another key keeps its budget"
    );
}
