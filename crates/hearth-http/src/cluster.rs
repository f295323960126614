//! The cluster's internal listener (`advertise` / `listen` in the cluster
//! file): peers send Durable Object events here, signed with the node
//! secret; [`ClusterNode::handle_internal`] checks and runs them. Nothing
//! a worker serves is reachable on it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hearth_runtime::cluster::{ClusterNode, MAX_FORWARD_BYTES};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::ServeError;

/// Connections served at once; peers keep a few each.
const MAX_CONNECTIONS: usize = 512;

/// A bound internal listener.
pub struct InternalListener {
    listener: TcpListener,
}

impl InternalListener {
    pub async fn bind(addr: SocketAddr) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Self { listener })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves peers' calls for as long as the process runs.
    pub async fn run(self, node: Arc<ClusterNode>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, _peer) = match self.listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(target: "hearth::cluster", "internal accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Past the cap the connection is closed; the peer retries.
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let node = node.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let node = node.clone();
                    async move { Ok::<_, Infallible>(handle(&node, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(permit);
            });
        }
    }
}

async fn handle(node: &ClusterNode, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = match Limited::new(req.into_body(), MAX_FORWARD_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(413, Bytes::from(format!("body refused: {e}\n"))),
    };
    let (status, body) = node.handle_internal(&path, &headers, body).await;
    reply(status, body)
}

fn reply(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}
