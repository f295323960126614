//! The HTTP face, on Cloudflare's URL scheme: `POST <base>/<gateway>/<provider>/<path>`
//! and the universal `POST <base>/<gateway>`. `hearth serve` mounts it
//! under `/__hearth/ai-gateway/`; `hearth gateway` serves it on a listener of
//! its own at `/` (and under the same prefix), so an OpenAI SDK can use
//! `http://host:port/<gateway>/openai` as its base URL.

use std::convert::Infallible;
use std::fmt::Display;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::engine::{GatewayBody, GatewayRequest, Gateways, error_response};

/// The prefix `hearth serve` mounts the gateway under.
pub const MOUNT: &str = "/__hearth/ai-gateway/";
/// Largest request body the gateway reads.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Connections served at once on the own listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

fn into_response(r: crate::engine::GatewayResponse) -> Response<GatewayBody> {
    let mut out = Response::new(r.body);
    *out.status_mut() = r.status;
    *out.headers_mut() = r.headers;
    out
}

/// Answers one request; `path` is what follows the mount point
/// (`<gateway>/<provider>/<path>` or `<gateway>`).
pub async fn handle<B>(gateways: &Gateways, req: Request<B>, path: &str) -> Response<GatewayBody>
where
    B: Body<Data = Bytes>,
    B::Error: Display + Send + Sync + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = path.trim_start_matches('/');
    let (gateway_id, rest) = match path.split_once('/') {
        Some((g, r)) => (g, r),
        None => (path, ""),
    };
    let Some(gateway) = gateways.get(gateway_id) else {
        return into_response(error_response(
            StatusCode::NOT_FOUND,
            2001,
            &format!(
                "no gateway {gateway_id:?} (configured: {})",
                gateways.ids().join(", ")
            ),
        ));
    };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_large = e.is::<http_body_util::LengthLimitError>();
            return into_response(error_response(
                if too_large {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                },
                2008,
                &if too_large {
                    format!("request body over {MAX_REQUEST_BYTES} bytes")
                } else {
                    format!("cannot read the request body: {e}")
                },
            ));
        }
    };
    if rest.trim_matches('/').is_empty() {
        if parts.method != http::Method::POST {
            return into_response(error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                2008,
                "the universal endpoint takes POST",
            ));
        }
        return into_response(gateway.universal(&parts.headers, &body).await);
    }
    let (provider, provider_path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut provider_path = provider_path.to_owned();
    if let Some(q) = parts.uri.query() {
        provider_path.push('?');
        provider_path.push_str(q);
    }
    into_response(
        gateway
            .run(GatewayRequest {
                provider: provider.to_owned(),
                path: provider_path,
                method: parts.method,
                headers: parts.headers,
                body,
            })
            .await,
    )
}

/// `hearth gateway`: the gateway on a listener of its own.
pub struct GatewayServer {
    listener: TcpListener,
    gateways: Gateways,
    max_connections: usize,
}

impl GatewayServer {
    pub async fn bind(listen: SocketAddr, gateways: Gateways) -> io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(listen).await?,
            gateways,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends.
    pub async fn run(self) {
        let permits = Arc::new(Semaphore::new(self.max_connections));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (stream, _) = match self.listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("AI gateway: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let gateways = self.gateways.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let gateways = gateways.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            let path = path.strip_prefix(MOUNT).unwrap_or(&path).to_owned();
                            Ok::<_, Infallible>(handle(&gateways, req, &path).await)
                        }
                    });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = conn.await;
                drop(permit);
            });
        }
    }
}
