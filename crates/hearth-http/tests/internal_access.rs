//! Internal endpoints are closed to a worker's own fetch() and to traffic a
//! reverse proxy forwards from a loopback address; wrangler's scheduled
//! route and the configured-crons rule of /__hearth/scheduled.

mod common;

use std::net::SocketAddr;

use common::*;

/// Fetches `?url=` with the token the operator uses, and reports what came
/// back: a worker holding the token is still refused.
const WORKER: &str = r#"
export default {
  async fetch(req) {
    const u = new URL(req.url);
    if (u.pathname === "/probe") {
      const r = await fetch(u.searchParams.get("url"), {
        method: u.searchParams.get("method") || "GET",
        headers: { authorization: "Bearer test-internal-token", "cf-worker": "" },
      });
      return new Response(`${r.status} ${await r.text()}`);
    }
    return new Response("ok");
  },
  async scheduled(controller, env, ctx) {},
};
"#;

async fn probe(via: SocketAddr, target: &str) -> String {
    let path = format!("/probe?url={}", url_escape(target));
    get(via, &path).await.body
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_fetch_never_reaches_the_internal_endpoints() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = s.admin.unwrap();
    // The operator's own request with the token is answered...
    assert_eq!(get_internal(s.addr, "/__hearth/health").await.status, 200);
    assert_eq!(get_internal(admin, "/__hearth/health").await.status, 200);
    // ...the worker's, with the same token, on either listener, is not.
    let refused = "403 403 Forbidden: internal endpoints never answer a worker's fetch().\n";
    for base in [s.addr, admin] {
        for path in [
            "/__hearth/health",
            "/__hearth/metrics",
            "/__hearth/scheduled",
            "/cdn-cgi/handler/scheduled",
        ] {
            let got = probe(s.addr, &format!("http://{base}{path}")).await;
            assert_eq!(got, refused, "{base}{path}");
        }
    }
    // The pull consumer endpoint too (POST; refused before the queue is
    // looked up).
    let target = format!("http://{}/__hearth/queues/exports/messages/pull", s.addr);
    let got = get(
        s.addr,
        &format!("/probe?method=POST&url={}", url_escape(&target)),
    )
    .await
    .body;
    assert_eq!(got, refused);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_opens_a_loopback_listener_to_clients_but_not_to_workers() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.internal_token = None;
        o.dev = true;
    })
    .await;
    assert_eq!(get(s.addr, "/__hearth/health").await.status, 200);
    let got = probe(s.addr, &format!("http://{}/__hearth/health", s.addr)).await;
    assert!(got.starts_with("403 "), "{got}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_requests_from_loopback_are_not_trusted() {
    // A reverse proxy on the same machine connects from 127.0.0.1.
    let s = start_with(&[("index.js", WORKER)], |o| o.internal_token = None).await;
    for path in [
        "/__hearth/queues/exports/messages/pull",
        "/__hearth/scheduled",
        "/__hearth/health",
    ] {
        let req = http::Request::post(path)
            .header("host", "public.example")
            .header("x-forwarded-for", "203.0.113.9")
            .body(http_body_util::Full::new(bytes::Bytes::from("{}")))
            .unwrap();
        assert_eq!(send(s.addr, req).await.status, 403, "{path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_listener_beyond_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("index.js", WORKER)]);
    let mut o = hearth_http::ServeOptions::new(small_config(dir.path()));
    o.listen = "127.0.0.1:0".parse().unwrap();
    o.admin_listen = Some("0.0.0.0:0".parse().unwrap());
    let Err(e) = hearth_http::Server::bind(o).await else {
        panic!("bound an open admin listener without a token");
    };
    assert!(e.to_string().contains("needs --internal-token"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hearth_scheduled_runs_configured_crons_only() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.first_mut().crons = vec!["0 0 * * *".into()];
    })
    .await;
    let r = get_internal(s.addr, "/__hearth/scheduled?cron=0+0+*+*+*&time=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    for unlisted in ["anything", "1+2+3+4+5", ""] {
        let r = get_internal(s.addr, &format!("/__hearth/scheduled?cron={unlisted}")).await;
        assert_eq!(r.status, 400, "{unlisted}");
        assert!(
            r.body
                .contains("is not one of the worker's triggers.crons [\"0 0 * * *\"]"),
            "{}",
            r.body
        );
    }
    // wrangler's test route runs any cron, as Miniflare does.
    let r = get_internal(s.addr, "/cdn-cgi/handler/scheduled?cron=1+2+3+4+5").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    s.stop().await;
}

/// A scheduled event fired without `time=` happens at the server's clock,
/// which tests (and embedders) inject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_scheduled_event_takes_the_injected_clocks_time() {
    const RECORDER: &str = r#"
let seen = null;
export default {
  async fetch() { return new Response(String(seen)); },
  async scheduled(controller) { seen = controller.scheduledTime; },
};
"#;
    let clock = hearth_core::ManualClock::new(1_234_567_000);
    let s = start_with(&[("index.js", RECORDER)], |o| {
        o.first_mut().crons = vec!["* * * * *".into()];
        o.clock = clock.shared();
        // One isolate, so the fetch below reads what scheduled() stored.
        o.worker_mut().isolates = 1;
    })
    .await;
    let r = get_internal(s.addr, "/__hearth/scheduled?cron=*+*+*+*+*").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(s.addr, "/").await.body, "1234567000");
    clock.advance_ms(60_000);
    get_internal(s.addr, "/__hearth/scheduled?cron=*+*+*+*+*").await;
    assert_eq!(get(s.addr, "/").await.body, "1234627000");
    s.stop().await;
}
