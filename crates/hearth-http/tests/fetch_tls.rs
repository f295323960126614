//! Outgoing fetch() over https, against a local TLS origin whose
//! self-signed certificate is trusted through `WorkerConfig::extra_root_certs`;
//! connection reuse, redirects from http to https, streamed response bodies,
//! timeouts and aborts.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

type OriginBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

struct Origin {
    addr: SocketAddr,
    /// Connections accepted so far (TLS handshakes for the https origin).
    connections: Arc<AtomicUsize>,
}

async fn respond(req: http::Request<hyper::body::Incoming>) -> http::Response<OriginBody> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let full = |s: String| Full::new(Bytes::from(s)).boxed();
    match path.as_str() {
        "/hello" => http::Response::builder()
            .header("x-origin", "tls")
            .body(full("hello over tls".into()))
            .unwrap(),
        "/echo" => {
            let method = req.method().to_string();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            http::Response::new(full(format!("{method} {}", String::from_utf8_lossy(&body))))
        }
        // Redirects to the URL in the query string.
        "/goto" => http::Response::builder()
            .status(302)
            .header("location", query)
            .body(full(String::new()))
            .unwrap(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            http::Response::new(full("slow".into()))
        }
        // A body whose second half comes 600 ms after the first.
        "/stream" => {
            let chunks = futures::stream::iter(0..2).then(|i| async move {
                if i == 1 {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                }
                Ok::<_, Infallible>(Frame::data(Bytes::from(if i == 0 {
                    "first;"
                } else {
                    "second"
                })))
            });
            http::Response::new(BodyExt::boxed(StreamBody::new(chunks)))
        }
        _ => http::Response::builder()
            .status(404)
            .body(full("not found".into()))
            .unwrap(),
    }
}

async fn serve_conn<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(|req| async move { Ok::<_, Infallible>(respond(req).await) });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A self-signed certificate for 127.0.0.1: (certificate DER, key DER).
fn self_signed() -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    (key.cert.der().to_vec(), key.signing_key.serialize_der())
}

async fn https_origin(cert: Vec<u8>, key: Vec<u8>) -> Origin {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                // A failed handshake (an untrusting client) just ends here.
                if let Ok(tls) = acceptor.accept(stream).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    serve_conn(tls).await;
                }
            });
        }
    });
    Origin { addr, connections }
}

async fn http_origin() -> Origin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_conn(stream));
        }
    });
    Origin { addr, connections }
}

const WORKER: &str = r#"
export default {
  async fetch(req, env) {
    const tls = env.TLS;
    const path = req.url.slice(req.url.indexOf("/", 8));
    try {
      switch (path) {
        case "/get": {
          const r = await fetch(tls + "/hello", { cf: { cacheTtl: 5, cacheEverything: true } });
          return Response.json({ status: r.status, text: await r.text(), h: r.headers.get("x-origin"), url: r.url });
        }
        case "/three": {
          const out = [];
          for (let i = 0; i < 3; i++) out.push(await (await fetch(tls + "/echo", { method: "POST", body: "n" + i })).text());
          return Response.json(out);
        }
        case "/upgrade": {
          const r = await fetch(env.PLAIN + "/goto?" + tls + "/hello");
          return Response.json({ text: await r.text(), redirected: r.redirected, url: r.url });
        }
        case "/stream": {
          const t0 = performance.now();
          const r = await fetch(tls + "/stream");
          const reader = r.body.getReader();
          const first = new TextDecoder().decode((await reader.read()).value);
          const firstMs = performance.now() - t0;
          let rest = "";
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            rest += new TextDecoder().decode(value);
          }
          return Response.json({ first, firstMs, rest });
        }
        case "/proxy":
          return fetch(tls + "/stream");
        case "/abort-body": {
          const c = new AbortController();
          const r = await fetch(tls + "/stream", { signal: c.signal });
          const reader = r.body.getReader();
          await reader.read();
          c.abort();
          await reader.read();
          return new Response("unreachable");
        }
        case "/abort": {
          const c = new AbortController();
          setTimeout(() => c.abort(), 20);
          await fetch(tls + "/slow", { signal: c.signal });
          return new Response("unreachable");
        }
        case "/slow": {
          await fetch(tls + "/slow");
          return new Response("unreachable");
        }
        case "/big": {
          const r = await fetch(tls + "/hello");
          await r.text();
          return new Response("unreachable");
        }
      }
    } catch (e) {
      return Response.json({ error: e.name, message: e.message });
    }
    return new Response("no route", { status: 404 });
  }
};
"#;

struct Setup {
    server: TestServer,
    tls: Origin,
    plain: Origin,
}

async fn setup(trust: bool, tweak: impl FnOnce(&mut hearth_http::ServeOptions)) -> Setup {
    let (cert, key) = self_signed();
    let tls = https_origin(cert.clone(), key).await;
    let plain = http_origin().await;
    let server = start_with(&[("index.js", WORKER)], |opts| {
        opts.worker_mut()
            .vars
            .insert("TLS".into(), format!("https://{}", tls.addr).into());
        opts.worker_mut()
            .vars
            .insert("PLAIN".into(), format!("http://{}", plain.addr).into());
        opts.worker_mut().limits.cpu_ms = 1000;
        if trust {
            opts.worker_mut().extra_root_certs.push(cert);
        }
        tweak(opts);
    })
    .await;
    Setup { server, tls, plain }
}

fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_fetch_with_a_trusted_self_signed_certificate() {
    let s = setup(true, |_| {}).await;
    let v = json(&get(s.server.addr, "/get").await);
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["text"], "hello over tls");
    assert_eq!(v["h"], "tls");
    assert_eq!(v["url"], format!("https://{}/hello", s.tls.addr));
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_fetches_reuse_one_tls_connection() {
    let s = setup(true, |_| {}).await;
    let v = json(&get(s.server.addr, "/three").await);
    assert_eq!(v, serde_json::json!(["POST n0", "POST n1", "POST n2"]));
    // And a later request of the same isolate reuses it as well.
    let v = json(&get(s.server.addr, "/three").await);
    assert_eq!(v, serde_json::json!(["POST n0", "POST n1", "POST n2"]));
    assert_eq!(s.tls.connections.load(Ordering::SeqCst), 1);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_the_fetch() {
    let s = setup(false, |_| {}).await;
    let v = json(&get(s.server.addr, "/get").await);
    assert_eq!(v["error"], "TypeError", "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.starts_with("Network connection lost: cannot connect to 127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert_eq!(s.tls.connections.load(Ordering::SeqCst), 0);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_http_to_https_is_followed() {
    let s = setup(true, |_| {}).await;
    let v = json(&get(s.server.addr, "/upgrade").await);
    assert_eq!(v["text"], "hello over tls", "{v}");
    assert_eq!(v["redirected"], true);
    assert_eq!(v["url"], format!("https://{}/hello", s.tls.addr));
    assert_eq!(s.plain.connections.load(Ordering::SeqCst), 1);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_body_streams_into_js_as_it_arrives() {
    let s = setup(true, |_| {}).await;
    let v = json(&get(s.server.addr, "/stream").await);
    assert_eq!(v["first"], "first;", "{v}");
    assert_eq!(v["rest"], "second", "{v}");
    // The first chunk is readable long before the origin sends the second.
    let first_ms = v["firstMs"].as_f64().unwrap();
    assert!(first_ms < 400.0, "first chunk after {first_ms} ms");
    // Returning the fetched Response passes the stream through.
    let r = get(s.server.addr, "/proxy").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "first;second");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_before_and_during_the_body() {
    let s = setup(true, |_| {}).await;
    let t = std::time::Instant::now();
    let v = json(&get(s.server.addr, "/abort").await);
    assert_eq!(v["error"], "AbortError", "{v}");
    let v = json(&get(s.server.addr, "/abort-body").await);
    assert_eq!(v["error"], "AbortError", "{v}");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_fetch_times_out_at_the_subrequest_limit() {
    let s = setup(true, |o| o.worker_mut().limits.subrequest_timeout_ms = 50).await;
    let v = json(&get(s.server.addr, "/slow").await);
    assert_eq!(v["error"], "TypeError", "{v}");
    assert_eq!(
        v["message"],
        "fetch() timed out after 50 ms (limits.subrequest_timeout_ms)"
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_response_limit_errors_the_stream() {
    let s = setup(true, |o| {
        o.worker_mut().limits.max_subrequest_response_bytes = 5
    })
    .await;
    let v = json(&get(s.server.addr, "/big").await);
    assert_eq!(v["error"], "TypeError", "{v}");
    assert_eq!(
        v["message"],
        "fetch() response body exceeds limits.max_subrequest_response_bytes (5 bytes)"
    );
    s.server.stop().await;
}
