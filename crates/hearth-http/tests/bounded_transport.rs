//! Memory between the isolate and the client stays bounded whatever the
//! client does: slow readers of streamed bodies, WebSocket floods, large
//! request bodies; and a finished request leaves no timers running.
//!
//! The server runs in this process, so its memory is this process's RSS
//! (VmRSS in /proc/self/status). The tests take a lock so one test's
//! memory or CPU does not show up in another's figures.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Growth of the server's memory the tests allow.
const RSS_BOUND: u64 = 64 * 1024 * 1024;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kb * 1024
}

/// User + system CPU time of this process, from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock
    // ticks of USER_HZ, which is 100 on Linux.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn mib(n: u64) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

/// A server with room for real workloads: the default heap and CPU limits.
async fn roomy(files: &[(&str, &str)]) -> TestServer {
    start_with(files, |o| {
        o.worker_mut().limits.cpu_ms = 30_000;
        o.worker_mut().limits.memory_bytes = hearth_http::Limits::default().memory_bytes;
    })
    .await
}

/// How long a GET takes, if it is answered 200 within `limit`.
async fn time_get(addr: std::net::SocketAddr, path: &str, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    match tokio::time::timeout(limit, get(addr, path)).await {
        Ok(r) if r.status == 200 => Some(t.elapsed()),
        _ => None,
    }
}

/// A GET that must be answered within `within`.
async fn prompt_get(addr: std::net::SocketAddr, path: &str, within: Duration) -> String {
    let t = Instant::now();
    let r = tokio::time::timeout(within, get(addr, path))
        .await
        .unwrap_or_else(|_| panic!("GET {path} not answered within {within:?}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(t.elapsed() < within);
    r.body
}

/// Reads about `per_tick` bytes every 20 ms for `total`; returns the count.
async fn read_slowly(s: &mut TcpStream, per_tick: usize, total: Duration) -> usize {
    let mut buf = vec![0u8; per_tick];
    let mut got = 0;
    let end = Instant::now() + total;
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => got += n,
            Ok(Err(e)) => panic!("read failed: {e}"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    got
}

const ENDLESS: &str = r#"
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname === "/ping") return new Response("pong");
    if (url.pathname === "/proxy") {
      const r = await fetch(url.searchParams.get("from"));
      return new Response(r.body);
    }
    const chunk = new Uint8Array(64 * 1024).fill(120);
    let sent = 0;
    return new Response(new ReadableStream({
      pull(c) { sent++; c.enqueue(chunk.slice()); },
    }));
  },
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_stream_read_slowly_keeps_memory_flat() {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", ENDLESS)]).await;
    prompt_get(s.addr, "/ping", Duration::from_secs(5)).await;
    let before = rss_bytes();
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let n = read_slowly(&mut slow, 1024, Duration::from_secs(3)).await;
        (slow, n)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The isolate is not busy feeding the slow client: others are served.
    let other = time_get(s.addr, "/ping", Duration::from_secs(1)).await;
    let (slow, read) = reader.await.unwrap();
    let after = rss_bytes();
    eprintln!(
        "endless stream: read {read} bytes in 3 s; RSS {:.1} MiB -> {:.1} MiB; other client answered in {other:?}",
        mib(before),
        mib(after)
    );
    assert!(
        other.is_some(),
        "another client was not answered within 1 s"
    );
    assert!(read > 0);
    assert!(
        after < before + RSS_BOUND,
        "RSS grew from {:.1} MiB to {:.1} MiB",
        mib(before),
        mib(after)
    );
    drop(slow);
    // The abandoned stream is cancelled and the isolate still serves.
    prompt_get(s.addr, "/ping", Duration::from_secs(2)).await;
    s.stop().await;
}

const OBJECTS: &str = r#"
export default {
  async fetch(req, env) {
    if (new URL(req.url).pathname === "/ping") return new Response("pong");
    const o = await env.BUCKET.get("big");
    return new Response(o.body);
  },
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_r2_object_read_by_slow_clients_keeps_memory_flat() {
    let _serial = SERIAL.lock().await;
    let store = tempfile::tempdir().unwrap();
    let bucket = hearth_r2::R2Bucket::open(
        store.path(),
        hearth_core::SystemClock::shared(),
        hearth_r2::R2Limits::default(),
    )
    .unwrap();
    const SIZE: u64 = 128 * 1024 * 1024;
    bucket
        .put(
            "big",
            std::io::Read::take(std::io::repeat(b'z'), SIZE),
            &Default::default(),
        )
        .unwrap();
    let s = start_with(&[("index.js", OBJECTS)], |o| {
        o.worker_mut().limits.cpu_ms = 30_000;
        o.worker_mut().limits.memory_bytes = hearth_http::Limits::default().memory_bytes;
        o.worker_mut().bindings.push(std::sync::Arc::new(
            hearth_runtime::bindings::R2Adapter::new("BUCKET", bucket),
        ));
    })
    .await;
    prompt_get(s.addr, "/ping", Duration::from_secs(5)).await;
    let before = rss_bytes();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let addr = s.addr;
            tokio::spawn(async move {
                let mut slow = TcpStream::connect(addr).await.unwrap();
                slow.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
                    .await
                    .unwrap();
                let n = read_slowly(&mut slow, 1024, Duration::from_secs(3)).await;
                (slow, n)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = time_get(s.addr, "/ping", Duration::from_secs(1)).await;
    let mut read = 0;
    let mut conns = Vec::new();
    for r in readers {
        let (c, n) = r.await.unwrap();
        read += n;
        conns.push(c);
    }
    let after = rss_bytes();
    eprintln!(
        "128 MiB R2 object, 3 slow clients: read {read} bytes in 3 s; RSS {:.1} MiB -> {:.1} MiB; other client answered in {other:?}",
        mib(before),
        mib(after)
    );
    assert!(
        other.is_some(),
        "another client was not answered within 1 s"
    );
    assert!(read > 0);
    assert!(
        after < before + RSS_BOUND,
        "RSS grew from {:.1} MiB to {:.1} MiB",
        mib(before),
        mib(after)
    );
    drop(conns);
    prompt_get(s.addr, "/ping", Duration::from_secs(2)).await;
    s.stop().await;
}

/// An upstream that sends an endless chunked body as fast as it is read.
async fn endless_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    head.push(b[0]);
                }
                let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
                chunk.extend(std::iter::repeat_n(b'y', 64 * 1024));
                chunk.extend_from_slice(b"\r\n");
                if s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                // Bounded: 10 GiB is more than any test reads.
                for _ in 0..160_000 {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetched_body_passed_through_to_a_slow_client_keeps_memory_flat() {
    let _serial = SERIAL.lock().await;
    let upstream = endless_upstream().await;
    let s = start_with(&[("index.js", ENDLESS)], |o| {
        o.worker_mut().limits.cpu_ms = 30_000;
        o.worker_mut().limits.memory_bytes = hearth_http::Limits::default().memory_bytes;
        // Only the slow client may hold the body back, not this limit.
        o.worker_mut().limits.max_subrequest_response_bytes = usize::MAX;
    })
    .await;
    prompt_get(s.addr, "/ping", Duration::from_secs(5)).await;
    let before = rss_bytes();
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(
        format!("GET /proxy?from=http://{upstream}/ HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let reader = tokio::spawn(async move {
        let n = read_slowly(&mut slow, 1024, Duration::from_secs(3)).await;
        (slow, n)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = time_get(s.addr, "/ping", Duration::from_secs(1)).await;
    let (slow, read) = reader.await.unwrap();
    let after = rss_bytes();
    eprintln!(
        "fetch pass-through: read {read} bytes in 3 s; RSS {:.1} MiB -> {:.1} MiB; other client answered in {other:?}",
        mib(before),
        mib(after)
    );
    assert!(
        other.is_some(),
        "another client was not answered within 1 s"
    );
    assert!(read > 0);
    assert!(
        after < before + RSS_BOUND,
        "RSS grew from {:.1} MiB to {:.1} MiB",
        mib(before),
        mib(after)
    );
    drop(slow);
    prompt_get(s.addr, "/ping", Duration::from_secs(2)).await;
    s.stop().await;
}

const SOCKETS: &str = r#"
const closes = [];
export default {
  fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/closes") return Response.json(closes);
    if (url.pathname === "/ping") return new Response("pong");
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (e) => {
      if (e.data instanceof ArrayBuffer) {
        // A slow consumer: 20 ms per message.
        const end = Date.now() + 20;
        while (Date.now() < end) {}
        return;
      }
      if (e.data === "flood") {
        const msg = new Uint8Array(64 * 1024);
        // Far more than a client that does not read can take.
        for (let i = 0; i < 3000; i++) server.send(msg);
      }
    });
    server.addEventListener("close", (e) => closes.push([e.code, e.reason]));
    return new Response(null, { status: 101, webSocket: client });
  },
};
"#;

async fn ws_handshake(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
          sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

/// A masked client frame of any length.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [9u8, 8, 7, 6];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The first frame the server sends: (opcode, payload).
async fn server_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut h))
        .await
        .expect("a frame in time")
        .unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await.unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).await.unwrap();
    (h[0] & 0x0f, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_over_125_bytes_closes_the_socket_with_1002() {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", SOCKETS)]).await;
    let mut ws = ws_handshake(s.addr).await;
    ws.write_all(&client_frame(0x9, &[0u8; 126])).await.unwrap();
    let (op, payload) = server_frame(&mut ws).await;
    assert_eq!(op, 0x8, "a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1002);
    s.stop().await;
}

/// Writes `frame` over and over for up to 3 s without reading anything;
/// returns the bytes the server took.
async fn flood(ws: &mut TcpStream, frame: &[u8]) -> usize {
    let mut burst = Vec::new();
    while burst.len() < 256 * 1024 {
        burst.extend_from_slice(frame);
    }
    let end = Instant::now() + Duration::from_secs(3);
    let mut sent = 0usize;
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(300), ws.write_all(&burst)).await {
            Ok(Ok(())) => sent += burst.len(),
            // Refused, or pushed back: the server stopped reading.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sent
}

async fn flood_keeps_memory_flat(what: &str, frame: Vec<u8>) {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", SOCKETS)]).await;
    prompt_get(s.addr, "/ping", Duration::from_secs(5)).await;
    let before = rss_bytes();
    let mut ws = ws_handshake(s.addr).await;
    let sent = flood(&mut ws, &frame).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_bytes();
    eprintln!(
        "{what} flood: server took {:.1} MiB; RSS {:.1} MiB -> {:.1} MiB",
        mib(sent as u64),
        mib(before),
        mib(after)
    );
    assert!(
        after < before + RSS_BOUND,
        "RSS grew from {:.1} MiB to {:.1} MiB",
        mib(before),
        mib(after)
    );
    prompt_get(s.addr, "/ping", Duration::from_secs(1)).await;
    drop(ws);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_big_pings_without_reading_keeps_memory_flat() {
    flood_keeps_memory_flat("64 KiB ping", client_frame(0x9, &vec![7u8; 64 * 1024])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_pings_without_reading_the_pongs_keeps_memory_flat() {
    flood_keeps_memory_flat("125-byte ping", client_frame(0x9, &[7u8; 125])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_faster_than_the_worker_handles_keeps_memory_flat() {
    flood_keeps_memory_flat("1 MiB message", client_frame(0x2, &vec![1u8; 1024 * 1024])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sending_to_a_client_that_never_reads_is_closed_with_1009() {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", SOCKETS)]).await;
    prompt_get(s.addr, "/ping", Duration::from_secs(5)).await;
    let before = rss_bytes();
    let mut ws = ws_handshake(s.addr).await;
    // 3,000 x 64 KiB = 188 MiB from the worker; the client reads none.
    ws.write_all(&client_frame(0x1, b"flood")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let closes = loop {
        let body = get(s.addr, "/closes").await.body;
        if body != "[]" || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let during = rss_bytes();
    assert!(closes.starts_with("[[1009,"), "{closes}");
    // The connection was dropped: the client reads what was in flight,
    // then the end of the stream.
    let mut drained = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_secs(2), ws.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => drained += n,
            Err(_) => panic!("the connection stayed open"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_bytes();
    eprintln!(
        "send flood: client drained {:.1} MiB after the close; RSS {:.1} MiB -> {:.1} MiB (during) -> {:.1} MiB (after close)",
        mib(drained as u64),
        mib(before),
        mib(during),
        mib(after)
    );
    assert!(
        during < before + RSS_BOUND,
        "RSS grew from {:.1} MiB to {:.1} MiB",
        mib(before),
        mib(during)
    );
    assert!(after < before + RSS_BOUND);
    prompt_get(s.addr, "/ping", Duration::from_secs(1)).await;
    s.stop().await;
}

const BODIES: &str = r#"
export default {
  async fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/sleep") {
      await new Promise((r) => setTimeout(r, 1500));
      return new Response("slept");
    }
    if (url.pathname === "/read") {
      const b = await req.arrayBuffer();
      const u = new Uint8Array(b);
      return new Response(`${b.byteLength} ${u[0]} ${u[b.byteLength - 1]}`);
    }
    return new Response("pong");
  },
};
"#;

async fn put(addr: std::net::SocketAddr, path: &str, body: Bytes) -> Reply {
    let req = http::Request::put(path)
        .header("host", "x")
        .body(Full::new(body))
        .unwrap();
    send(addr, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_large_bodies_do_not_restart_the_isolate() {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", BODIES)]).await;
    let body = Bytes::from(vec![5u8; 60 * 1024 * 1024]);
    // Three 60 MiB bodies at once are more than the 128 MiB heap.
    let puts: Vec<_> = (0..3)
        .map(|_| {
            let (addr, body) = (s.addr, body.clone());
            tokio::spawn(async move { put(addr, "/sleep", body).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..6 {
        let r = get(s.addr, "/other").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, "pong");
    }
    for p in puts {
        let r = p.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, "slept");
    }
    let health: serde_json::Value =
        serde_json::from_str(&get_internal(s.addr, "/__hearth/health").await.body).unwrap();
    assert_eq!(health["isolate_pool"]["isolates"][0]["restarts"], 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_near_the_limit_is_read_whole_with_array_buffer() {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", BODIES)]).await;
    let limit = hearth_http::Limits::default().max_request_body_bytes;
    let mut bytes = vec![1u8; limit - 1024];
    *bytes.last_mut().unwrap() = 2;
    let r = put(s.addr, "/read", Bytes::from(bytes)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, format!("{} 1 2", limit - 1024));
    s.stop().await;
}

const TIMERS: &str = r#"
let ticks = 0;
let late = "pending";
export default {
  fetch(req, env, ctx) {
    const url = new URL(req.url);
    if (url.pathname === "/intervals") {
      for (let i = 0; i < 1000; i++) setInterval(() => { ticks++; }, 1);
      return new Response("started");
    }
    if (url.pathname === "/wait-until") {
      // Timers the request still waits on (through waitUntil) run.
      ctx.waitUntil(new Promise((resolve) => {
        let n = 0;
        const id = setInterval(() => { if (++n === 5) { clearInterval(id); late = "ran"; resolve(); } }, 10);
      }));
      return new Response("ok");
    }
    if (url.pathname === "/late") return new Response(late);
    if (url.pathname === "/ws") {
      // A request whose WebSocket is open keeps its timers.
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      setInterval(() => server.send("tick"), 20);
      return new Response(null, { status: 101, webSocket: client });
    }
    return new Response(String(ticks));
  },
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intervals_of_a_finished_request_stop_with_it() {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", TIMERS)]).await;
    assert_eq!(
        prompt_get(s.addr, "/intervals", Duration::from_secs(5)).await,
        "started"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ticks_before: u64 = get(s.addr, "/ticks").await.body.parse().unwrap();
    let cpu_before = cpu_time();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = cpu_time() - cpu_before;
    let ticks_after: u64 = prompt_get(s.addr, "/ticks", Duration::from_millis(500))
        .await
        .parse()
        .unwrap();
    eprintln!(
        "1,000 intervals after their request ended: {cpu:?} CPU in 1 s, ticks {ticks_before} -> {ticks_after}"
    );
    assert_eq!(ticks_before, ticks_after, "the intervals still fire");
    assert!(cpu < Duration::from_millis(300), "{cpu:?} CPU in 1 s");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_run_while_waited_on_or_while_a_websocket_is_open() {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", TIMERS)]).await;
    assert_eq!(get(s.addr, "/wait-until").await.body, "ok");
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(s.addr, "/late").await.body != "ran" {
        assert!(Instant::now() < deadline, "the waitUntil timer never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ws = ws_handshake(s.addr).await;
    for _ in 0..3 {
        let (op, payload) = server_frame(&mut ws).await;
        assert_eq!((op, &payload[..]), (0x1, &b"tick"[..]));
    }
    drop(ws);
    s.stop().await;
}

const UPLOADS: &str = r#"
export default {
  async fetch(req) {
    const url = new URL(req.url);
    if (req.body === null) return new Response("pong");
    const reader = req.body.getReader();
    if (url.pathname === "/first") {
      // Answers from the first chunk, before the rest has been sent.
      const first = await reader.read();
      return new Response(`first ${first.value.byteLength > 0}`);
    }
    let n = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      n += r.value.byteLength;
    }
    return new Response(String(n));
  },
};
"#;

/// Sends a PUT's head declaring `len` bytes of body.
async fn put_head(addr: std::net::SocketAddr, path: &str, len: u64) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    s
}

/// The response's head and body as text, up to the end of the connection
/// or `within`.
async fn read_response(s: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    let end = Instant::now() + within;
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&out);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|n| n.trim().parse::<usize>().ok());
                    if len.is_some_and(|len| body.len() >= len) {
                        break;
                    }
                }
            }
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_reaches_the_worker_while_still_arriving() {
    let _serial = SERIAL.lock().await;
    let s = roomy(&[("index.js", UPLOADS)]).await;
    let mut up = put_head(s.addr, "/first", 8 * 1024 * 1024).await;
    up.write_all(&vec![3u8; 64 * 1024]).await.unwrap();
    // The rest is never sent: the worker answers from what it has.
    let response = read_response(&mut up, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("first true"), "{response}");
    drop(up);
    prompt_get(s.addr, "/first", Duration::from_secs(2)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_read_as_a_stream_keeps_memory_flat() {
    let _serial = SERIAL.lock().await;
    const SIZE: u64 = 256 * 1024 * 1024;
    let s = start_with(&[("index.js", UPLOADS)], |o| {
        o.worker_mut().limits.cpu_ms = 30_000;
        o.worker_mut().limits.memory_bytes = hearth_http::Limits::default().memory_bytes;
        o.worker_mut().limits.max_request_body_bytes = SIZE as usize;
    })
    .await;
    let before = rss_bytes();
    let mut up = put_head(s.addr, "/count", SIZE).await;
    let block = vec![9u8; 1024 * 1024];
    let mut peak = before;
    for _ in 0..SIZE / block.len() as u64 {
        up.write_all(&block).await.unwrap();
        peak = peak.max(rss_bytes());
    }
    let response = read_response(&mut up, Duration::from_secs(30)).await;
    eprintln!(
        "256 MiB upload read as a stream: RSS {:.1} MiB -> peak {:.1} MiB",
        mib(before),
        mib(peak)
    );
    assert!(response.ends_with(&format!("\r\n\r\n{SIZE}")), "{response}");
    assert!(
        peak < before + RSS_BOUND,
        "RSS grew from {:.1} MiB to {:.1} MiB",
        mib(before),
        mib(peak)
    );
    s.stop().await;
}
