//! The pool without HTTP: start a worker, dispatch requests directly.

use bytes::Bytes;
use hearth_runtime::{DispatchError, IsolatePool, WorkerConfig, WorkerRequest};

fn pool(source: &str, tweak: impl FnOnce(&mut WorkerConfig)) -> (tempfile::TempDir, IsolatePool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), source).unwrap();
    let mut config = WorkerConfig::new(dir.path().join("index.js"));
    config.isolates = 2;
    config.limits.cpu_ms = 200;
    tweak(&mut config);
    let pool = IsolatePool::start(config).unwrap();
    (dir, pool)
}

fn request(path: &str) -> WorkerRequest {
    WorkerRequest {
        id: "test".into(),
        method: "GET".into(),
        url: format!("http://example.com{path}"),
        headers: vec![("accept".into(), "*/*".into())],
        body: Bytes::new(),
        body_stream: None,
        cf: None,
    }
}

#[tokio::test]
async fn dispatches_to_every_isolate_and_keeps_module_state_per_isolate() {
    let (_dir, pool) = pool(
        r#"let n = 0; export default { fetch(req) { n++; return new Response(String(n)); } };"#,
        |_| {},
    );
    assert_eq!(pool.size(), 2);
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let r = pool.dispatch(request("/")).await.unwrap();
        assert_eq!(r.status, 200);
        bodies.push(String::from_utf8(r.body.to_vec()).unwrap());
    }
    // The module is evaluated once per isolate, not per request.
    assert!(bodies.iter().any(|b| b != "1"), "{bodies:?}");
    let total: u64 = pool.snapshot().iter().map(|s| s.requests).sum();
    assert_eq!(total, 4);
    pool.shutdown();
    pool.join();
}

#[tokio::test]
async fn response_headers_status_and_bytes_body() {
    let (_dir, pool) = pool(
        r#"export default { fetch(req) {
            return new Response(new Uint8Array([1, 2, 3]), { status: 404, statusText: "Nope",
              headers: [["x-a", "1"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]] });
        } };"#,
        |_| {},
    );
    let r = pool.dispatch(request("/")).await.unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.status_text, "Nope");
    assert_eq!(&r.body[..], &[1, 2, 3]);
    let cookies: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    pool.shutdown();
    pool.join();
}

#[tokio::test]
async fn stream_body_is_streamed() {
    let (_dir, pool) = pool(
        r#"export default { fetch(req) {
            const enc = new TextEncoder();
            const body = new ReadableStream({ async start(c) {
              c.enqueue(enc.encode("a"));
              await new Promise((r) => setTimeout(r, 2));
              c.enqueue(enc.encode("b"));
              c.close();
            } });
            return new Response(body);
        } };"#,
        |_| {},
    );
    let r = pool.dispatch(request("/")).await.unwrap();
    assert!(r.stream.is_some());
    assert_eq!(&r.collect().await.unwrap()[..], b"ab");
    pool.shutdown();
    pool.join();
}

#[tokio::test]
async fn cpu_limit_is_a_dispatch_error() {
    let (_dir, pool) = pool(r#"export default { fetch() { for (;;) {} } };"#, |_| {});
    let err = pool.dispatch(request("/")).await.unwrap_err();
    assert_eq!(err, DispatchError::CpuLimit { limit_ms: 200 });
    assert_eq!(err.status(), 503);
    let hits: u64 = pool.snapshot().iter().map(|s| s.cpu_limit_hits).sum();
    assert_eq!(hits, 1);
    pool.shutdown();
    pool.join();
}

#[tokio::test]
async fn missing_fetch_handler_answers_with_an_exception() {
    let (_dir, pool) = pool(r#"export default { scheduled() {} };"#, |_| {});
    match pool.dispatch(request("/")).await.unwrap_err() {
        DispatchError::Exception { message, .. } => {
            assert_eq!(message, "Handler does not export a fetch() function.")
        }
        other => panic!("{other:?}"),
    }
    pool.shutdown();
    pool.join();
}

#[tokio::test]
async fn after_shutdown_dispatch_reports_shutting_down() {
    let (_dir, pool) = pool(
        r#"export default { fetch() { return new Response("x"); } };"#,
        |_| {},
    );
    pool.shutdown();
    pool.join();
    assert_eq!(
        pool.dispatch(request("/")).await.unwrap_err(),
        DispatchError::ShuttingDown
    );
}

#[tokio::test]
async fn pass_through_on_exception_is_reported_with_the_failure() {
    let (_dir, pool) = pool(
        r#"export default { fetch(req, env, ctx) {
            if (req.url.endsWith("/pass")) ctx.passThroughOnException();
            throw new Error("boom");
        } };"#,
        |_| {},
    );
    match pool.dispatch(request("/pass")).await.unwrap_err() {
        DispatchError::Exception {
            message,
            stack,
            pass_through,
        } => {
            assert_eq!(message, "boom");
            assert!(stack.starts_with("Error: boom\n"), "{stack}");
            assert!(stack.contains("index.js:3"), "{stack}");
            assert!(pass_through);
        }
        other => panic!("{other:?}"),
    }
    match pool.dispatch(request("/other")).await.unwrap_err() {
        DispatchError::Exception { pass_through, .. } => assert!(!pass_through),
        other => panic!("{other:?}"),
    }
    pool.shutdown();
    pool.join();
}
