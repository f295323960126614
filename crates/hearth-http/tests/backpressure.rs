//! Load shedding: with every isolate's queue full, the front answers 503
//! with Retry-After instead of queueing without bound.

mod common;

use common::*;

/// Each request computes for 150 ms, so one isolate falls behind a burst.
const WORKER: &str = r#"
export default {
  fetch(req) {
    const end = Date.now() + 150;
    while (Date.now() < end) {}
    return new Response("done");
  }
};
"#;

const OVERLOADED: &str = "overloaded: every isolate's request queue is full (limits.max_queued_requests = 2); retry later.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_queues_is_shed_with_503_and_retry_after() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.worker_mut().limits.cpu_ms = 5000;
        o.worker_mut().limits.max_queued_requests = 2;
    })
    .await;
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let addr = s.addr;
            tokio::spawn(async move { get(addr, "/").await })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for c in clients {
        let r = c.await.unwrap();
        match r.status {
            200 => {
                assert_eq!(r.body, "done");
                ok += 1;
            }
            503 => {
                assert_eq!(r.body, OVERLOADED);
                assert_eq!(r.headers.get("retry-after").unwrap(), "1");
                shed += 1;
            }
            other => panic!("unexpected status {other}: {}", r.body),
        }
    }
    // At most two wait at any moment (plus one running once the isolate
    // has taken it): most of a burst of twelve arriving within one 150 ms
    // request is shed, but at least the two that fit the queue are served.
    assert!(ok >= 2, "ok {ok}, shed {shed}");
    assert!(shed >= 1, "ok {ok}, shed {shed}");
    let metrics = get_internal(s.addr, "/__hearth/metrics").await.body;
    assert!(
        metrics.contains(&format!("\nhearth_overloaded_total {shed}\n")),
        "{metrics}"
    );
    // Once the burst is over, requests are served again.
    assert_eq!(get(s.addr, "/").await.status, 200);
    let health: serde_json::Value =
        serde_json::from_str(&get_internal(s.addr, "/__hearth/health").await.body).unwrap();
    assert_eq!(health["isolate_pool"]["isolates"][0]["queued"], 0);
    s.stop().await;
}
