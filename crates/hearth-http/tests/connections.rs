//! The connection cap, the request-body minimum data rate and the header
//! timeout, over real sockets with short configured limits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WORKER: &str = r#"
export default {
  async fetch(req) {
    const body = await req.arrayBuffer();
    return new Response(`got ${body.byteLength}`);
  }
};
"#;

/// Reads until the server closes the connection or `limit` passes;
/// returns what arrived and how long the server took to close.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let began = Instant::now();
    let mut got = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (
        String::from_utf8_lossy(&got).into_owned(),
        closed.then(|| began.elapsed()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_get_a_503_and_open_ones_keep_working() {
    const CAP: usize = 20;
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.connections.max_connections = CAP;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(TcpStream::connect(s.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Past the cap: refused at once, with a reason.
    let began = Instant::now();
    let req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (got, _) = raw_exchange(s.addr, req, Duration::from_secs(5)).await;
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("max_connections"), "{text}");
    // An open connection is still served.
    let first = &mut held[0];
    first.write_all(req).await.unwrap();
    let (text, closed) = read_until_closed(first, Duration::from_secs(5)).await;
    assert!(closed.is_some());
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("got 0"),
        "{text}"
    );
    // Freed places take new clients again.
    held.truncate(10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(s.addr, "/").await.body, "got 0");
    let m = get_internal(s.addr, "/__hearth/metrics").await.body;
    assert!(m.contains("hearth_connections_refused_total 1\n"), "{m}");
    drop(held);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_under_the_minimum_rate_is_cut_off() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.connections.min_request_body_bytes_per_sec = 1000;
        o.connections.request_body_grace = Duration::from_millis(300);
    })
    .await;
    let head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";

    // Headers and a few bytes, then silence.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(format!("{head}0123456789").as_bytes())
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    let took = closed.expect("a stalled body kept its connection");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("min_request_body_bytes_per_sec"), "{text}");

    // A trickle of one byte every 100 ms is just as stalled.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(head.as_bytes()).await.unwrap();
    let began = Instant::now();
    let mut cut = false;
    for _ in 0..50 {
        if c.write_all(b"x").await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(cut, "a trickling body kept its connection for 5 s");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );

    // A body at a fair rate is read whole.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 20000\r\n\r\n",
    )
    .await
    .unwrap();
    for _ in 0..10 {
        c.write_all(&[b'y'; 2000]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (text, _) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(text.ends_with("got 20000"), "{text}");

    let m = get_internal(s.addr, "/__hearth/metrics").await.body;
    assert!(m.contains("hearth_slow_request_bodies_total 2\n"), "{m}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_are_dropped_after_the_header_timeout() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.connections.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let (_, closed) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    let took = closed.expect("half-sent headers kept their connection");
    assert!(took < Duration::from_secs(3), "{took:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_the_buffer_is_refused() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.connections.max_buf_bytes = 16 * 1024;
    })
    .await;
    let big = "a".repeat(32 * 1024);
    let req = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let (got, closed) = raw_exchange(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
    assert!(closed);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    assert_eq!(get(s.addr, "/").await.body, "got 0");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.connections.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    // Connected, never a byte.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a silent connection was kept");
    // One request answered, then idle on keep-alive.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed.is_some(), "an idle keep-alive connection was kept");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_answers_while_the_main_one_is_full() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.connections.max_connections = 5;
        o.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(TcpStream::connect(s.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (got, _) = raw_exchange(s.addr, req, Duration::from_secs(5)).await;
    assert!(got.starts_with(b"HTTP/1.1 503"));
    let m = get_internal(s.admin.unwrap(), "/__hearth/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.body.contains("hearth_connections_open 5\n"), "{}", m.body);
    drop(held);
    s.stop().await;
}
