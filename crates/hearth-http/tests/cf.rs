//! `request.cf` on requests served locally, and `cf` on outgoing fetch init.

mod common;

use common::*;

const WORKER: &str = r#"
export default {
  async fetch(req) {
    const path = new URL(req.url).pathname;
    if (path === "/mutate") { req.cf.colo = "XXX"; return new Response("ok"); }
    // Outgoing `cf` options are accepted (and have no effect locally).
    const probe = new Request("http://example.com/", { cf: { cacheTtl: 60, cacheEverything: true } });
    return Response.json({ cf: req.cf, probeCf: probe.cf.cacheTtl });
  }
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_cf_holds_only_what_the_server_knows() {
    let s = start(&[("index.js", WORKER)]).await;
    let r = get(s.addr, "/mutate").await;
    assert_eq!(r.body, "ok");
    let req = http::Request::get("/")
        .header("host", "example.test")
        .header("accept-encoding", "gzip, br")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&send(s.addr, req).await.body).unwrap();
    // No made-up place, network or bot score (a geo or bot check must not
    // pass by accident), no TLS fields on plain HTTP, and one request's
    // edit of its cf object does not reach the next request.
    assert_eq!(
        v,
        serde_json::json!({
            "cf": { "httpProtocol": "HTTP/1.1", "clientAcceptEncoding": "gzip, br" },
            "probeCf": 60,
        })
    );
    s.stop().await;
}
