//! ReadableStream response bodies are streamed to the client.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const WORKER: &str = r#"
export default {
  fetch(req) {
    const enc = new TextEncoder();
    const fail = req.url.endsWith("/fail");
    const body = new ReadableStream({
      async start(c) {
        c.enqueue(enc.encode("first;"));
        await new Promise((r) => setTimeout(r, 300));
        if (fail) { c.error(new Error("stream broke")); return; }
        c.enqueue("second;");
        c.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  },
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_chunk_arrives_before_the_stream_ends() {
    let s = start(&[("index.js", WORKER)]).await;
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let t = Instant::now();
    let req = http::Request::get("/")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first;");
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "first chunk after {:?}",
        t.elapsed()
    );
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second;");
    assert!(t.elapsed() >= Duration::from_millis(300));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stream_aborts_the_body_and_the_server_keeps_serving() {
    let s = start(&[("index.js", WORKER)]).await;
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/fail")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.into_body().collect().await.is_err(),
        "truncated body must be an error"
    );
    let r = get(s.addr, "/").await;
    assert_eq!(r.body, "first;second;");
    s.stop().await;
}
