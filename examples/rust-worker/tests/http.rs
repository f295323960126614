//! The Rust worker through real HTTP: served alone, and called from a
//! JavaScript worker through a service binding.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use hearth_core::SystemClock;
use hearth_http::{MountedWorker, ServeOptions, Server, WorkerConfig};
use hearth_kv::{KvLimits, KvNamespace};
use hearth_runtime::ServiceBinding;

fn counters(dir: &std::path::Path) -> Arc<KvNamespace> {
    Arc::new(
        KvNamespace::open(
            &dir.join("counters.sqlite"),
            SystemClock::shared(),
            KvLimits::default(),
        )
        .unwrap(),
    )
}

/// One HTTP/1.1 request; returns (status, body).
fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn serve(
    options: ServeOptions,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let mut options = options;
    options.listen = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(options).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop, task)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_alone_counts_in_kv() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, stop, task) = serve(ServeOptions::new(hearth_example_rust_worker::config(
        counters(dir.path()),
    )))
    .await;

    let (status, body) = blocking(move || request(addr, "POST", "/count/a")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, r#"{"name":"a","count":1,"from":"rust"}"#);
    blocking(move || request(addr, "POST", "/count/a")).await;
    let (_, body) = blocking(move || request(addr, "GET", "/count/a?x=1")).await;
    assert_eq!(body, r#"{"name":"a","count":2,"from":"rust"}"#);
    assert_eq!(blocking(move || request(addr, "GET", "/nope")).await.0, 404);
    // A key over KV's 512-byte limit: the binding's error is an uncaught
    // exception of the worker.
    let long = format!("/count/{}", "k".repeat(600));
    let (status, body) = blocking(move || request(addr, "POST", &long)).await;
    assert_eq!(status, 500);
    assert_eq!(body, "Error 1101: Worker threw exception\n");

    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_worker_calls_it_through_a_service_binding() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.js"),
        r#"export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/rpc") {
      try { await env.COUNTER.increment(); return new Response("unreachable"); }
      catch (e) { return new Response(e.name + ": " + e.message, { status: 500 }); }
    }
    const r = await env.COUNTER.fetch("http://counter" + url.pathname.replace("/js", ""), { method: request.method });
    const data = await r.json();
    return Response.json({ viaJs: true, status: r.status, ...data });
  },
};"#,
    )
    .unwrap();
    let services = hearth_runtime::ServiceRegistry::new();
    let mut js = WorkerConfig::new(dir.path().join("index.js"));
    js.isolates = 1;
    js.services.push(ServiceBinding {
        binding: "COUNTER".into(),
        service: "counter".into(),
        entrypoint: None,
        registry: services.clone(),
    });
    let mut options = ServeOptions::new(js);
    options.first_mut().name = Some("front".into());
    options.services = services;
    let mut counter = MountedWorker::new(hearth_example_rust_worker::config(counters(dir.path())));
    counter.name = Some("counter".into());
    counter.routes = vec!["counter.example.test/*".into()];
    options.workers.push(counter);
    let (addr, stop, task) = serve(options).await;

    let (status, body) = blocking(move || request(addr, "POST", "/js/count/b")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"viaJs":true,"status":200,"name":"b","count":1,"from":"rust"}"#
    );
    let (_, body) = blocking(move || request(addr, "GET", "/js/count/b")).await;
    assert_eq!(
        body,
        r#"{"viaJs":true,"status":200,"name":"b","count":1,"from":"rust"}"#
    );
    let (status, body) = blocking(move || request(addr, "GET", "/rpc")).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "TypeError: The RPC receiver does not implement the method \"increment\"."
    );

    let _ = stop.send(());
    task.await.unwrap();
}
