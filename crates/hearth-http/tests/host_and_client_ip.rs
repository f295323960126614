//! The Host header never moves request.url, and the client-identity headers
//! a worker sees are the server's, not the client's.

mod common;

use std::time::Duration;

use common::*;

const WORKER: &str = r#"
export default {
  async fetch(req) {
    const headers = {};
    for (const [k, v] of req.headers) headers[k] = v;
    return Response.json({ url: req.url, headers });
  }
};
"#;

async fn raw_get(addr: std::net::SocketAddr, host_line: &str) -> RawResponse {
    let req = format!("GET /kv/public HTTP/1.1\r\n{host_line}Connection: close\r\n\r\n");
    let (got, _) = raw_exchange(addr, req.as_bytes(), Duration::from_secs(5)).await;
    let mut r = parse_responses(&got);
    assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(&got));
    r.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_host_is_a_400_and_never_reaches_request_url() {
    let s = start(&[("index.js", WORKER)]).await;
    for bad in [
        "evil.com/kv/secret?",
        "evil.com/kv/secret#",
        "evil.com#frag",
        "evil.com\\kv\\secret",
        "user@evil.com",
        "x:1:2",
        "[::1",
        "[::1]x",
        "host:99999",
        "host:",
    ] {
        let r = raw_get(s.addr, &format!("Host: {bad}\r\n")).await;
        assert_eq!(r.status, 400, "{bad}: {}", String::from_utf8_lossy(&r.body));
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            body.starts_with("400 Bad Request: the Host header"),
            "{body}"
        );
    }
    let r = raw_get(s.addr, "Host: a.example\r\nHost: b.example\r\n").await;
    assert_eq!(r.status, 400);
    for (good, url) in [
        ("example.com:8080", "http://example.com:8080/kv/public"),
        ("[::1]:8787", "http://[::1]:8787/kv/public"),
        ("127.0.0.1", "http://127.0.0.1/kv/public"),
    ] {
        let r = raw_get(s.addr, &format!("Host: {good}\r\n")).await;
        assert_eq!(r.status, 200, "{good}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["url"], url);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_copies_of_edge_headers_are_dropped_and_the_peer_is_set() {
    let s = start(&[("index.js", WORKER)]).await;
    let forged = "CF-Connecting-IP: 198.51.100.1\r\nCF-Connecting-IP: 198.51.100.2\r\n\
X-Real-IP: 198.51.100.3\r\nTrue-Client-IP: 198.51.100.4\r\nCF-Ray: forged\r\n\
CF-IPCountry: ZZ\r\nCF-Visitor: {\"scheme\":\"https\"}\r\nCF-Worker: forged.example\r\n\
X-Forwarded-For: 203.0.113.9\r\n";
    let r = raw_get(s.addr, &format!("Host: example.com\r\n{forged}")).await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let h = &v["headers"];
    assert_eq!(h["cf-connecting-ip"], "127.0.0.1");
    for dropped in [
        "x-real-ip",
        "true-client-ip",
        "cf-ray",
        "cf-ipcountry",
        "cf-visitor",
        "cf-worker",
    ] {
        assert!(h.get(dropped).is_none(), "{dropped}: {h}");
    }
    // Kept as given, and never trusted by the server.
    assert_eq!(h["x-forwarded-for"], "203.0.113.9");
    s.stop().await;
}
