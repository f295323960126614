//! Rate Limiting through `hearth serve`, declared in the
//! `[[unsafe.bindings]]` form (`type = "ratelimit"`): under real
//! concurrent clients one key is admitted exactly `limit` times in a
//! window, never more.

mod web_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

    // The server counts in fixed minutes of its own (real) clock. A burst
    // that straddles two minutes proves nothing, so it is run again on a
    // fresh key rather than waited out: a burst takes well under a second.
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut checked = false;
    for attempt in 0..3 {
        let path = format!("/?key=shared-{attempt}");
        let minute = now().as_secs() / 60;
        let admitted = AtomicUsize::new(0);
        let refused = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..CLIENTS {
                s.spawn(|| {
                    for _ in 0..PER_CLIENT {
                        match server.get(&path).status {
                            200 => admitted.fetch_add(1, Ordering::Relaxed),
                            429 => refused.fetch_add(1, Ordering::Relaxed),
                            other => panic!("unexpected status {other}"),
                        };
                    }
                });
            }
        });
        if now().as_secs() / 60 != minute {
            continue;
        }
        assert_eq!(admitted.load(Ordering::Relaxed), LIMIT);
        assert_eq!(
            refused.load(Ordering::Relaxed),
            CLIENTS * PER_CLIENT - LIMIT
        );
        checked = true;
        break;
    }
    assert!(checked, "every burst straddled a minute");
    assert_eq!(
        server.get("/?key=other").status,
        200,
        "another key keeps its budget"
    );
}
