//! Hundreds of slow clients at once: half-sent oversized heads and stalled
//! bodies hold bounded memory (measured from /proc), a new client is
//! answered promptly meanwhile, and the stalled ones are cut off. Its own
//! test binary, so no other test's memory is counted.

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

/// Stalled bodies and oversized heads held open at once.
const SLOW_BODIES: usize = 300;
const BIG_HEADS: usize = 200;
/// Bytes of head each oversized-head client tries to send.
const HEAD_BYTES: usize = 300 * 1024;
/// Most the server (and this test's clients) may grow while they are open.
const RSS_GROWTH_LIMIT: u64 = 24 * 1024 * 1024;

fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_hold_bounded_memory_and_others_are_answered() {
    let s = start_with(&[("index.js", WORKER)], |o| {
        o.connections.max_connections = 2000;
        o.connections.min_request_body_bytes_per_sec = 1000;
        o.connections.request_body_grace = Duration::from_secs(2);
        o.connections.header_read_timeout = Duration::from_secs(10);
    })
    .await;
    assert_eq!(get(s.addr, "/").await.body, "got 0");
    let before = proc_status_kib("VmRSS:") * 1024;

    let mut slow = Vec::with_capacity(SLOW_BODIES);
    for _ in 0..SLOW_BODIES {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nx")
            .await
            .unwrap();
        slow.push(c);
    }
    let chunk = vec![b'a'; 16 * 1024];
    let mut heads = tokio::task::JoinSet::new();
    for _ in 0..BIG_HEADS {
        let addr = s.addr;
        let chunk = chunk.clone();
        heads.spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ").await;
            let mut sent = 0;
            while sent < HEAD_BYTES {
                let write = c.write_all(&chunk);
                match tokio::time::timeout(Duration::from_secs(2), write).await {
                    Ok(Ok(())) => sent += chunk.len(),
                    _ => break,
                }
            }
            // Hold the connection: never finish the head.
            tokio::time::sleep(Duration::from_secs(1)).await;
            c
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = proc_status_kib("VmRSS:") * 1024;

    // A new client is answered promptly with all of them open.
    let began = Instant::now();
    assert_eq!(get(s.addr, "/").await.body, "got 0");
    let answered_in = began.elapsed();
    assert!(answered_in < Duration::from_secs(1), "{answered_in:?}");

    let growth = during.saturating_sub(before);
    eprintln!(
        "RSS {} MiB -> {} MiB with {SLOW_BODIES} stalled bodies and {BIG_HEADS} oversized heads; new client answered in {answered_in:?}",
        before / (1024 * 1024),
        during / (1024 * 1024)
    );
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "RSS grew {growth} bytes (limit {RSS_GROWTH_LIMIT})"
    );

    // The stalled bodies are cut off once the grace period is used up.
    let deadline = Instant::now() + Duration::from_secs(10);
    for c in &mut slow {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(left, c.read(&mut buf)).await;
        assert!(read.is_ok(), "a stalled body was still open after 10 s");
    }
    while let Some(c) = heads.join_next().await {
        drop(c.unwrap());
    }
    s.stop().await;
}
