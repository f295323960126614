//! A misbehaving worker fails its own request, never the server.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUTER: &str = r#"
let leak = [];
export default {
  async fetch(req, env, ctx) {
    const path = req.url.slice(req.url.indexOf("/", 8));
    switch (path) {
      case "/loop": for (;;) {}
      case "/loop-catch":
        try { for (;;) {} } catch (e) { return new Response("caught " + e); }
      case "/async-loop": await null; for (;;) {}
      case "/timer-loop":
        await new Promise((r) => setTimeout(r, 1));
        for (;;) {}
      case "/bomb": { const a = []; for (;;) a.push(new Array(100000).fill(1.5)); }
      case "/leak": for (;;) leak.push("x".repeat(100000) + Math.random());
      case "/throw": throw new Error("kaput");
      case "/reject": return Promise.reject(new TypeError("nope"));
      case "/not-a-response": return "plain string";
      case "/wait-until-reject":
        ctx.waitUntil(new Promise((_, rej) => setTimeout(() => rej(new Error("late failure")), 5)));
        ctx.waitUntil(Promise.reject(new Error("early failure")));
        return new Response("answered");
      case "/hang": return new Promise(() => {});
      case "/hang-body": return new Response(new ReadableStream({ pull() { return new Promise(() => {}); } }));
      case "/recursion": { const f = () => f(); f(); }
      default: return new Response("ok");
    }
  }
};
"#;

async fn router() -> TestServer {
    start(&[("index.js", ROUTER)]).await
}

/// The tests here run one at a time: `process_cpu_time` counts every thread
/// of this process, so another test's runaway worker must not be running.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// CPU time this process has used (all threads), from getrusage: unlike wall
/// time it does not grow when other processes share the cores.
fn process_cpu_time() -> Duration {
    // SAFETY: rusage is plain integers, so all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The next ordinary request is answered, costs little CPU (no leftover
/// runaway work, no expensive recovery on the request path) and is not stuck.
async fn assert_ok_and_fast(s: &TestServer) {
    let (t, cpu) = (Instant::now(), process_cpu_time());
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "ok");
    let used = process_cpu_time() - cpu;
    assert!(
        used < Duration::from_millis(150),
        "next request used {used:?} of CPU"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "next request took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_gets_503_naming_the_cpu_limit_then_next_request_is_ok() {
    let _serial = SERIAL.lock().await;
    let s = router().await;
    for path in ["/loop", "/loop-catch", "/async-loop", "/timer-loop"] {
        let t = Instant::now();
        let r = get(s.addr, path).await;
        assert_eq!(r.status, 503, "{path}: {}", r.body);
        assert_eq!(
            r.body,
            "Error 1102: Worker exceeded resource limits: CPU time limit exceeded (limits.cpu_ms = 200).\n",
            "{path}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{path} took {:?}",
            t.elapsed()
        );
        assert_ok_and_fast(&s).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_fails_its_request_then_next_request_is_ok() {
    let _serial = SERIAL.lock().await;
    let s = router().await;
    for path in ["/bomb", "/leak"] {
        let r = get(s.addr, path).await;
        assert_eq!(r.status, 503, "{path}: {}", r.body);
        assert_eq!(
            r.body,
            "Error 1102: Worker exceeded resource limits: memory limit exceeded (limits.memory = 33554432 bytes).\n",
            "{path}"
        );
        assert_ok_and_fast(&s).await;
    }
    let health = get_internal(s.addr, "/__hearth/health").await;
    let v: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert!(
        v["isolate_pool"]["isolates"][0]["restarts"]
            .as_u64()
            .unwrap()
            >= 1
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_give_500_without_the_stack_and_the_server_keeps_serving() {
    let _serial = SERIAL.lock().await;
    let s = router().await;
    for path in ["/throw", "/reject", "/not-a-response"] {
        let r = get(s.addr, path).await;
        assert_eq!(r.status, 500, "{path}");
        assert_eq!(r.body, "Error 1101: Worker threw exception\n", "{path}");
        assert_ok_and_fast(&s).await;
    }
    let r = get(s.addr, "/recursion").await;
    assert_eq!(r.status, 500);
    assert_ok_and_fast(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_shows_the_stack_with_file_and_line() {
    let _serial = SERIAL.lock().await;
    let s = start_with(&[("index.js", ROUTER)], |o| o.dev = true).await;
    let r = get(s.addr, "/throw").await;
    assert_eq!(r.status, 500);
    assert!(!r.body.contains("hearth:internal"), "{}", r.body);
    assert!(
        r.body
            .starts_with("Error 1101: Worker threw exception\n\nError: kaput\n"),
        "{}",
        r.body
    );
    assert!(r.body.contains("at fetch (index.js:16:"), "{}", r.body);
    assert!(!r.body.contains("hearth:internal"), "{}", r.body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_wait_until_after_the_response_leaves_the_server_serving() {
    let _serial = SERIAL.lock().await;
    let s = router().await;
    let r = get(s.addr, "/wait-until-reject").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "answered");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_ok_and_fast(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_gets_413() {
    let _serial = SERIAL.lock().await;
    let s = start_with(&[("index.js", ROUTER)], |o| {
        o.worker_mut().limits.max_request_body_bytes = 1000
    })
    .await;
    // Declared too large.
    let req = http::Request::post("/")
        .header("host", "x")
        .body(Full::new(Bytes::from(vec![b'a'; 1001])))
        .unwrap();
    let r = send(s.addr, req).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.body,
        "413 Payload Too Large: the request body exceeds 1000 bytes (limits.max_request_body_bytes)."
    );
    // Chunked, no declared length.
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let chunk = "a".repeat(600);
    let raw = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // At the limit is fine.
    let req = http::Request::post("/")
        .header("host", "x")
        .body(Full::new(Bytes::from(vec![b'a'; 1000])))
        .unwrap();
    assert_eq!(send(s.addr, req).await.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_gets_400_and_the_server_keeps_serving() {
    let _serial = SERIAL.lock().await;
    let s = router().await;
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(b"THIS IS NOT HTTP\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut buf)).await;
    let head = String::from_utf8_lossy(&buf);
    assert!(head.starts_with("HTTP/1.1 400"), "{head:?}");
    assert_ok_and_fast(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promise_that_can_never_settle_is_answered_at_once() {
    let _serial = SERIAL.lock().await;
    let s = start_with(&[("index.js", ROUTER)], |o| o.dev = true).await;
    let t = Instant::now();
    let r = get(s.addr, "/hang").await;
    assert_eq!(r.status, 500);
    assert!(
        r.body
            .contains("The script will never generate a response."),
        "{}",
        r.body
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    let req = http::Request::get("/hang-body")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    // The head may or may not be flushed before the cut; either way the
    // client sees an incomplete response, promptly.
    let outcome = tokio::time::timeout(Duration::from_secs(2), async {
        let resp = sender.send_request(req).await?;
        use http_body_util::BodyExt;
        resp.into_body().collect().await.map(|_| ())
    })
    .await
    .unwrap();
    assert!(outcome.is_err(), "a body that can never finish is cut off");
    assert_ok_and_fast(&s).await;
    s.stop().await;
}
