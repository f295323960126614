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
    const cf = req.cf;
    return Response.json({
      colo: cf.colo, country: cf.country, city: cf.city, continent: cf.continent,
      asn: cf.asn, timezone: cf.timezone, httpProtocol: cf.httpProtocol,
      tlsClientAuth: typeof cf.tlsClientAuth, botScore: cf.botManagement.score,
      probeCf: probe.cf.cacheTtl,
    });
  }
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_cf_has_the_local_placeholder_shape() {
    let s = start(&[("index.js", WORKER)]).await;
    let r = get(s.addr, "/mutate").await;
    assert_eq!(r.body, "ok");
    let r = get(s.addr, "/").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    // One request's edit of its cf object does not reach the next request.
    assert_eq!(
        v,
        serde_json::json!({
            "colo": "DFW", "country": "US", "city": "Austin", "continent": "NA",
            "asn": 395747, "timezone": "America/Chicago", "httpProtocol": "HTTP/1.1",
            "tlsClientAuth": "object", "botScore": 99, "probeCf": 60,
        })
    );
    s.stop().await;
}
