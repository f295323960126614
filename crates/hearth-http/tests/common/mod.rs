#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use hearth_http::{ServeOptions, Server, WorkerConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

pub struct TestServer {
    pub addr: SocketAddr,
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
    tweak(&mut opts);
    let server = Server::bind(opts).await.unwrap();
    let addr = server.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
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
