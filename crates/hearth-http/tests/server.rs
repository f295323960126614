//! The server around the worker: logging, internal endpoints, shutdown.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_log() -> Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let sink = Captured::default();
        let writer = sink.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .init();
        sink
    })
    .clone()
}

/// The log record containing `needle`, including continuation lines.
fn entry<'a>(text: &'a str, needle: &str) -> &'a str {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in log:\n{text}"));
    let start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let rest = &text[start..];
    let end = rest[1..].find("\n20").map(|i| i + 2).unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_output_goes_to_the_log_tagged_with_the_request_id() {
    let log = captured_log();
    let s = start(&[(
        "index.js",
        r#"export default { async fetch(req) {
            console.log("hello from", req.method, { a: [1, "two"] });
            await null;
            console.error(new Error("shown with stack"));
            console.warn("careful");
            return new Response("ok");
        } };"#,
    )])
    .await;
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200);
    let id = r.headers["cf-ray"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("hello from GET"))
        .unwrap_or_else(|| panic!("no console line in {text}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains(&format!("request_id={id}")), "{line}");
    assert!(
        line.contains(r#"hello from GET { a: [ 1, "two" ] }"#),
        "{line}"
    );
    let err = entry(&text, "Error: shown with stack");
    assert!(
        err.contains(" ERROR ") && err.contains(&format!("request_id={id}")),
        "{err}"
    );
    assert!(err.contains("at fetch (index.js:4:"), "{err}");
    let warn = entry(&text, "careful");
    assert!(
        warn.contains(" WARN ") && warn.contains(&format!("request_id={id}")),
        "{warn}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncaught_exception_stack_goes_to_the_log() {
    let log = captured_log();
    let s = start(&[(
        "index.js",
        "export default {\n  fetch() {\n    throw new RangeError('logged failure');\n  }\n};\n",
    )])
    .await;
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 500);
    let id = r.headers["cf-ray"].to_str().unwrap().to_string();
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let entry = entry(&text, "RangeError: logged failure");
    assert!(entry.contains(&format!("request_id={id}")), "{entry}");
    assert!(entry.contains("index.js:3"), "{entry}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_handled_later_in_the_same_turn_is_not_reported() {
    let log = captured_log();
    let s = start(&[(
        "index.js",
        r#"export default { async fetch() {
            const late = Promise.reject(new Error("handled-late-marker"));
            await null;
            late.catch(() => {});
            Promise.reject(new Error("never-handled-marker"));
            // A streamed body read to its end releases its reader.
            const body = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("streamed")); c.close(); } });
            return new Response(body);
        } };"#,
    )])
    .await;
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "streamed");
    // The one isolate finishes the first request's microtasks (and its
    // report) before it takes the second.
    assert_eq!(get(s.addr, "/").await.status, 200);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("never-handled-marker"), "{text}");
    assert!(!text.contains("handled-late-marker"), "{text}");
    assert!(!text.contains("This reader has been released"), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut s = start(&[(
        "index.js",
        r#"export default { async fetch() {
            await new Promise((r) => setTimeout(r, 300));
            return new Response("finished");
        } };"#,
    )])
    .await;
    let addr = s.addr;
    let slow = tokio::spawn(async move { get(addr, "/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.begin_stop();
    // New connections are refused soon after the signal.
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(refused, "listener still accepting after shutdown");
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "finished");
    tokio::time::timeout(Duration::from_secs(5), s.handle.take().unwrap())
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_answer_on_the_admin_listener() {
    let s = start_with(
        &[(
            "index.js",
            r#"export default { fetch() { return new Response("ok"); } };"#,
        )],
        |o| {
            o.internal_token = None;
            o.admin_listen = Some("127.0.0.1:0".parse().unwrap());
            o.worker_mut().vars.insert("MODE".into(), "test".into());
            o.worker_mut()
                .secrets
                .insert("TOKEN".into(), "hidden-value".into());
        },
    )
    .await;
    assert_eq!(get(s.addr, "/").await.status, 200);
    let admin = s.admin.unwrap();
    // The main listener is loopback too, and still closed.
    assert_eq!(get(s.addr, "/__hearth/health").await.status, 403);
    // The admin listener serves nothing of the worker's.
    assert_eq!(get(admin, "/").await.status, 404);
    let h = get(admin, "/__hearth/health").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.headers["content-type"], "application/json");
    assert!(!h.body.contains("hidden-value"));
    let v: serde_json::Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["isolate_pool"]["size"], 1);
    assert_eq!(v["isolate_pool"]["isolates"][0]["requests"], 1);
    let bindings = v["bindings"].as_array().unwrap();
    assert!(
        bindings.contains(
            &serde_json::json!({"name": "MODE", "type": "plain_text", "backend": "config"})
        )
    );
    assert!(bindings.contains(
        &serde_json::json!({"name": "TOKEN", "type": "secret_text", "backend": "config"})
    ));

    let m = get(admin, "/__hearth/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.body.contains("hearth_requests_total{status=\"200\"} 1\n"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("hearth_request_duration_seconds_count 1\n"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("hearth_cpu_seconds_total{isolate=\"0\"}"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("hearth_isolate_restarts_total{isolate=\"0\"} 0\n"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("hearth_worker_errors_total{kind=\"exception\"} 0\n"),
        "{}",
        m.body
    );
    assert_eq!(get(admin, "/__hearth/nope").await.status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_are_refused_on_the_main_listener_without_token() {
    // Loopback is no credential: a reverse proxy on the same machine is
    // loopback too.
    for listen in ["127.0.0.1:0", "0.0.0.0:0"] {
        let s = start_with(
            &[(
                "index.js",
                r#"export default { fetch() { return new Response("ok"); } };"#,
            )],
            |o| {
                o.listen = listen.parse().unwrap();
                o.internal_token = None;
            },
        )
        .await;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
        let r = get(addr, "/__hearth/health").await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.body,
            "403 Forbidden: internal endpoints answer on the admin listener (--admin-listen) or with a token (--internal-token).\n"
        );
        assert_eq!(get(addr, "/__hearth/metrics").await.status, 403);
        assert_eq!(get(addr, "/cdn-cgi/handler/scheduled").await.status, 403);
        // The worker itself still answers.
        assert_eq!(get(addr, "/").await.body, "ok");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_open_with_the_token_on_non_loopback_listeners() {
    let s = start_with(
        &[(
            "index.js",
            r#"export default { fetch() { return new Response("ok"); } };"#,
        )],
        |o| {
            o.listen = "0.0.0.0:0".parse().unwrap();
            o.internal_token = Some("let-me-in".into());
            o.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        },
    )
    .await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let req = |token: &str| {
        http::Request::get("/__hearth/health")
            .header("host", "x")
            .header("authorization", format!("Bearer {token}"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    assert_eq!(send(addr, req("let-me-in")).await.status, 200);
    assert_eq!(send(addr, req("wrong")).await.status, 403);
    // With a token set, the admin listener asks for it too.
    let admin = s.admin.unwrap();
    assert_eq!(send(admin, req("let-me-in")).await.status, 200);
    assert_eq!(send(admin, req("wrong")).await.status, 403);
    s.stop().await;
}
