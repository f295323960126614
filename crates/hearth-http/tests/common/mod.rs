#![allow(dead_code)]

pub mod mmdb;

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use hearth_http::{ServeOptions, Server, WorkerConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// The internal-endpoint token test servers get unless a test says
/// otherwise; [`get_internal`] sends it.
pub const INTERNAL_TOKEN: &str = "test-internal-token";

pub struct TestServer {
    pub addr: SocketAddr,
    /// The admin listener's address, when the options asked for one.
    pub admin: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    pub handle: Option<tokio::task::JoinHandle<Result<(), hearth_http::ServeError>>>,
}

impl TestServer {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    pub fn begin_stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// A worker config with small limits so failure tests stay quick.
pub fn small_config(dir: &Path) -> WorkerConfig {
    let mut c = WorkerConfig::new(dir.join("index.js"));
    c.limits.cpu_ms = 200;
    c.limits.memory_bytes = 32 * 1024 * 1024;
    c.isolates = 1;
    c
}

pub async fn start(files: &[(&str, &str)]) -> TestServer {
    start_with(files, |_| {}).await
}

pub async fn start_with(
    files: &[(&str, &str)],
    tweak: impl FnOnce(&mut ServeOptions),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    let mut opts = ServeOptions::new(small_config(dir.path()));
    opts.listen = "127.0.0.1:0".parse().unwrap();
    opts.internal_token = Some(INTERNAL_TOKEN.into());
    tweak(&mut opts);
    let server = Server::bind(opts).await.unwrap();
    let addr = server.local_addr();
    let admin = server.admin_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        admin,
        dir,
        stop: Some(tx),
        handle: Some(handle),
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

pub async fn send(addr: SocketAddr, req: http::Request<Full<Bytes>>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    let req = http::Request::get(path)
        .header("host", format!("{addr}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, req).await
}

/// A GET to an internal endpoint, with the test servers' token.
pub async fn get_internal(addr: SocketAddr, path: &str) -> Reply {
    let req = http::Request::get(path)
        .header("host", format!("{addr}"))
        .header("authorization", format!("Bearer {INTERNAL_TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, req).await
}

/// Writes `bytes` on a fresh connection and reads until the server closes
/// it or `timeout` passes; returns what arrived and whether it was closed.
pub async fn raw_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    timeout: std::time::Duration,
) -> (Vec<u8>, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    let closed = tokio::time::timeout(timeout, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (got, closed)
}

/// One raw HTTP/1.1 response framed by Content-Length.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `data` into the responses it holds, each framed by its
/// Content-Length as a client would read them; the last one may be cut
/// short (its body is then what arrived).
pub fn parse_responses(mut data: &[u8]) -> Vec<RawResponse> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let rest = &data[end + 4..];
        let take = len.min(rest.len());
        out.push(RawResponse {
            status,
            headers,
            body: rest[..take].to_vec(),
        });
        data = &rest[take..];
    }
    out
}
