//! Response framing comes from the real body, never from a worker's
//! Content-Length or Transfer-Encoding: over raw TCP, a worker cannot
//! inject a response into a pipelined connection nor leave a client
//! waiting for bytes that never come.

mod common;

use std::time::{Duration, Instant};

use common::*;

const WORKER: &str = r#"
const INJECTED = "HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ninjected";
export default {
  async fetch(req) {
    const path = new URL(req.url).pathname;
    if (path === "/inject") {
      return new Response(INJECTED, { headers: { "content-length": "0" } });
    }
    if (path === "/short") {
      return new Response("abc", { headers: { "content-length": "100" } });
    }
    if (path === "/stream-short" || path === "/stream-long") {
      const body = new ReadableStream({
        start(c) { c.enqueue(new TextEncoder().encode("abcdef")); c.close(); },
      });
      const declared = path === "/stream-short" ? "100" : "2";
      return new Response(body, { headers: { "content-length": declared } });
    }
    if (path === "/stream-exact") {
      const body = new ReadableStream({
        start(c) { c.enqueue(new TextEncoder().encode("abc")); c.close(); },
      });
      return new Response(body, { headers: { "content-length": "3" } });
    }
    if (path === "/hop") {
      return new Response("hello", { headers: {
        "transfer-encoding": "chunked", "connection": "close",
        "keep-alive": "timeout=1", "upgrade": "h2c", "x-kept": "yes",
      } });
    }
    if (path === "/head") {
      return new Response(null, { headers: { "content-length": "1234" } });
    }
    return new Response("second");
  }
};
"#;

fn get_req(path: &str, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n{connection}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_content_length_cannot_inject_a_pipelined_response() {
    let s = start(&[("index.js", WORKER)]).await;
    let pipelined = get_req("/inject", false) + &get_req("/second", true);
    let (got, closed) = raw_exchange(s.addr, pipelined.as_bytes(), Duration::from_secs(10)).await;
    assert!(closed, "the server kept the connection open");
    let responses = parse_responses(&got);
    assert_eq!(responses.len(), 2, "{}", String::from_utf8_lossy(&got));
    // The worker's bytes are the first response's body, whole.
    assert_eq!(
        responses[0].body,
        b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ninjected"
    );
    assert_eq!(responses[0].header("content-length"), Some("46"));
    assert_eq!(responses[1].body, b"second");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_longer_than_the_body_does_not_hang_the_client() {
    let s = start(&[("index.js", WORKER)]).await;
    // Keep-alive: a client trusting content-length: 100 would wait forever.
    let began = Instant::now();
    let req = get_req("/short", false) + &get_req("/second", true);
    let (got, _) = raw_exchange(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    let responses = parse_responses(&got);
    assert_eq!(responses.len(), 2, "{}", String::from_utf8_lossy(&got));
    assert_eq!(responses[0].header("content-length"), Some("3"));
    assert_eq!(responses[0].body, b"abc");
    assert_eq!(responses[1].body, b"second");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_breaks_its_declared_length_aborts_the_connection() {
    let s = start(&[("index.js", WORKER)]).await;
    // Ends short: the connection closes at once instead of leaving the
    // client waiting for 97 more bytes.
    let began = Instant::now();
    let req = get_req("/stream-short", false);
    let (got, closed) = raw_exchange(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
    assert!(closed, "the client was left waiting");
    assert!(began.elapsed() < Duration::from_secs(4));
    // hyper may not have flushed the head before the abort; whatever
    // arrived is at most one response, and never a whole body.
    let responses = parse_responses(&got);
    assert!(responses.len() <= 1, "{}", String::from_utf8_lossy(&got));
    if let Some(r) = responses.first() {
        assert_eq!(r.header("content-length"), Some("100"));
        assert!(r.body.len() < 100);
    }

    // Runs long: never more than the declared bytes, and nothing after
    // them is read as a next response.
    let req = get_req("/stream-long", false) + &get_req("/second", true);
    let (got, closed) = raw_exchange(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
    assert!(closed);
    let responses = parse_responses(&got);
    assert!(responses.len() <= 1, "{}", String::from_utf8_lossy(&got));
    if let Some(r) = responses.first() {
        assert_eq!(r.header("content-length"), Some("2"));
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(
            got.len() - head_end <= 2,
            "{}",
            String::from_utf8_lossy(&got)
        );
    }

    // Keeps it: the connection stays usable.
    let req = get_req("/stream-exact", false) + &get_req("/second", true);
    let (got, _) = raw_exchange(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
    let responses = parse_responses(&got);
    assert_eq!(responses.len(), 2, "{}", String::from_utf8_lossy(&got));
    assert_eq!(responses[0].body, b"abc");
    assert_eq!(responses[1].body, b"second");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_of_a_worker_are_not_sent() {
    let s = start(&[("index.js", WORKER)]).await;
    let req = get_req("/hop", false) + &get_req("/second", true);
    let (got, _) = raw_exchange(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
    let responses = parse_responses(&got);
    assert_eq!(responses.len(), 2, "{}", String::from_utf8_lossy(&got));
    let r = &responses[0];
    assert_eq!(r.body, b"hello");
    assert_eq!(r.header("content-length"), Some("5"));
    for dropped in ["transfer-encoding", "connection", "keep-alive", "upgrade"] {
        assert_eq!(r.header(dropped), None, "{dropped}");
    }
    assert_eq!(r.header("x-kept"), Some("yes"));
    assert_eq!(responses[1].body, b"second");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_response_keeps_the_declared_length_and_no_body() {
    let s = start(&[("index.js", WORKER)]).await;
    let req =
        "HEAD /head HTTP/1.1\r\nHost: test.local\r\n\r\n".to_string() + &get_req("/second", true);
    let (got, _) = raw_exchange(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let (first, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        first.to_ascii_lowercase().contains("content-length: 1234"),
        "{first}"
    );
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    assert!(rest.ends_with("second"), "{rest}");
    s.stop().await;
}
