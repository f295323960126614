//! Outgoing fetch() from a worker to an origin server.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A small origin: /hello, /echo, /redirect/N, /see-other, /slow.
async fn origin() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_string();
                        let method = req.method().to_string();
                        let header = req
                            .headers()
                            .get("x-test")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut resp = http::Response::builder();
                        let out = if path == "/hello" {
                            resp = resp.header("x-origin", "yes");
                            "hello from origin".to_string()
                        } else if path == "/echo" {
                            format!("{method} {header} {}", String::from_utf8_lossy(&body))
                        } else if let Some(n) = path.strip_prefix("/redirect/") {
                            let n: u32 = n.parse().unwrap();
                            let to = if n == 0 {
                                "/hello".to_string()
                            } else {
                                format!("/redirect/{}", n - 1)
                            };
                            resp = resp.status(302).header("location", to);
                            String::new()
                        } else if path == "/see-other" {
                            resp = resp.status(303).header("location", "/echo");
                            String::new()
                        } else if path == "/slow" {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            "slow".into()
                        } else {
                            resp = resp.status(404);
                            "not found".into()
                        };
                        Ok::<_, Infallible>(resp.body(Full::new(Bytes::from(out))).unwrap())
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

const WORKER: &str = r#"
export default {
  async fetch(req, env) {
    const base = env.ORIGIN;
    const path = req.url.slice(req.url.indexOf("/", 8));
    const out = {};
    try {
      switch (path) {
        case "/get": {
          const r = await fetch(base + "/hello");
          return Response.json({ status: r.status, text: await r.text(), h: r.headers.get("x-origin") });
        }
        case "/post": {
          const r = await fetch(base + "/echo", { method: "POST", body: "payload", headers: { "x-test": "t1" } });
          return new Response(await r.text());
        }
        case "/follow": {
          const r = await fetch(base + "/redirect/2");
          return Response.json({ status: r.status, text: await r.text(), redirected: r.redirected, url: r.url });
        }
        case "/see-other": {
          const r = await fetch(base + "/see-other", { method: "POST", body: "dropped" });
          return new Response(await r.text());
        }
        case "/manual": {
          const r = await fetch(base + "/redirect/0", { redirect: "manual" });
          return Response.json({ status: r.status, location: r.headers.get("location") });
        }
        case "/error-mode": {
          await fetch(base + "/redirect/0", { redirect: "error" });
          return new Response("unreachable");
        }
        case "/too-many": {
          await fetch(base + "/redirect/25");
          return new Response("unreachable");
        }
        case "/abort": {
          const c = new AbortController();
          setTimeout(() => c.abort(), 20);
          await fetch(base + "/slow", { signal: c.signal });
          return new Response("unreachable");
        }
        case "/timeout-signal": {
          await fetch(base + "/slow", { signal: AbortSignal.timeout(20) });
          return new Response("unreachable");
        }
        case "/slow": {
          await fetch(base + "/slow");
          return new Response("unreachable");
        }
        case "/refused": {
          await fetch("http://127.0.0.1:1/");
          return new Response("unreachable");
        }
        case "/bad-scheme": {
          await fetch("ftp://example.com/");
          return new Response("unreachable");
        }
      }
    } catch (e) {
      return Response.json({ error: e.name, message: e.message });
    }
    return new Response("no route", { status: 404 });
  }
};
"#;

async fn worker() -> TestServer {
    let o = origin().await;
    start_with(&[("index.js", WORKER)], |opts| {
        opts.worker_mut()
            .vars
            .insert("ORIGIN".into(), format!("http://{o}").into());
        opts.worker_mut().limits.cpu_ms = 1000;
    })
    .await
}

fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_get_and_post() {
    let s = worker().await;
    let v = json(&get(s.addr, "/get").await);
    assert_eq!(
        v,
        serde_json::json!({"status": 200, "text": "hello from origin", "h": "yes"})
    );
    assert_eq!(get(s.addr, "/post").await.body, "POST t1 payload");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_redirect_modes() {
    let s = worker().await;
    let v = json(&get(s.addr, "/follow").await);
    assert_eq!(v["status"], 200);
    assert_eq!(v["text"], "hello from origin");
    assert_eq!(v["redirected"], true);
    assert!(v["url"].as_str().unwrap().ends_with("/hello"), "{v}");
    // 303 turns a POST into a bodiless GET.
    assert_eq!(get(s.addr, "/see-other").await.body, "GET  ");
    let v = json(&get(s.addr, "/manual").await);
    assert_eq!(v, serde_json::json!({"status": 302, "location": "/hello"}));
    let v = json(&get(s.addr, "/error-mode").await);
    assert_eq!(v["error"], "TypeError");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("redirect mode is 'error'"),
        "{v}"
    );
    let v = json(&get(s.addr, "/too-many").await);
    assert_eq!(v["error"], "TypeError");
    assert_eq!(
        v["message"],
        "fetch() followed too many redirects (limits.max_redirects = 20)"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_abort_and_network_errors() {
    let s = worker().await;
    let t = std::time::Instant::now();
    let v = json(&get(s.addr, "/abort").await);
    assert_eq!(v["error"], "AbortError", "{v}");
    let v = json(&get(s.addr, "/timeout-signal").await);
    assert_eq!(v["error"], "TimeoutError", "{v}");
    assert!(t.elapsed() < Duration::from_secs(2));
    let v = json(&get(s.addr, "/refused").await);
    assert_eq!(v["error"], "TypeError");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Network connection lost"),
        "{v}"
    );
    let v = json(&get(s.addr, "/bad-scheme").await);
    assert_eq!(v["error"], "TypeError");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_times_out_at_the_subrequest_limit() {
    let o = origin().await;
    let s = start_with(&[("index.js", WORKER)], |opts| {
        opts.worker_mut()
            .vars
            .insert("ORIGIN".into(), format!("http://{o}").into());
        opts.worker_mut().limits.subrequest_timeout_ms = 50;
    })
    .await;
    let v = json(&get(s.addr, "/slow").await);
    assert_eq!(v["error"], "TypeError");
    assert_eq!(
        v["message"],
        "fetch() timed out after 50 ms (limits.subrequest_timeout_ms)"
    );
    s.stop().await;
}
