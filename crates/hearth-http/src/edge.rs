//! The hook to `hearth-edge`: the zone file's listeners (TLS with HTTP/2
//! and HTTP/1.1 by ALPN, PROXY protocol from trusted proxies), and the
//! per-request check that runs before assets and the worker.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::{Body, ConnPermit, ServeError, State, full};

pub use hearth_edge::Edge;

/// What the front knows of a request's connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    pub tls: bool,
    pub port: u16,
}

/// The edge's decision for a request, carried to the worker dispatch.
#[derive(Debug, Clone)]
pub(crate) struct Passed {
    pub pass: hearth_edge::Pass,
    pub ray: String,
}

/// How long a TLS handshake or PROXY header may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the zone file and certificate files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Binds the zone file's listeners.
pub(crate) async fn bind(
    edge: &Edge,
) -> Result<Vec<(TcpListener, hearth_edge::config::Listener)>, ServeError> {
    let mut out = Vec::new();
    for l in edge.listeners() {
        let listener = TcpListener::bind(l.address)
            .await
            .map_err(|source| ServeError::Bind {
                addr: l.address,
                source,
            })?;
        out.push((listener, l));
    }
    Ok(out)
}

/// Accepts on one zone listener until `stop`.
pub(crate) async fn accept_loop(
    state: Arc<State>,
    listener: TcpListener,
    cfg: hearth_edge::config::Listener,
    stop: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    let mut stop_accepting = stop.clone();
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    loop {
        let (stream, peer) = tokio::select! {
            _ = async { let _ = stop_accepting.wait_for(|s| *s).await; } => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    if let Some(folded) = state.accept_errors.check() {
                        tracing::warn!(target: "hearth::http", "accept failed: {e}{}", crate::conn::folded(folded, "accept failures"));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = state.connections.clone().try_acquire_owned() else {
            state
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let stop = stop.clone();
        let cfg = cfg.clone();
        conns.spawn(async move {
            connection(state, stream, peer, cfg, port, Arc::new(permit), stop).await;
        });
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Reads a PROXY protocol header off `stream`, returning the source it
/// names (or `peer` for `LOCAL`/`UNKNOWN`).
async fn proxy_header(stream: &mut TcpStream, peer: SocketAddr) -> Result<SocketAddr, String> {
    let mut buf = vec![0u8; hearth_edge::net::MAX_PROXY_HEADER];
    loop {
        let n = stream.peek(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the PROXY header".into());
        }
        match hearth_edge::net::parse_proxy(&buf[..n]).map_err(|e| e.to_string())? {
            hearth_edge::net::ProxyHeader::Done { len, source } => {
                let mut sink = vec![0u8; len];
                stream
                    .read_exact(&mut sink)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(source.unwrap_or(peer));
            }
            hearth_edge::net::ProxyHeader::Partial => {
                if n >= buf.len() {
                    return Err("PROXY header too long".into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

async fn connection(
    state: Arc<State>,
    mut stream: TcpStream,
    mut peer: SocketAddr,
    cfg: hearth_edge::config::Listener,
    port: u16,
    permit: ConnPermit,
    mut stop: watch::Receiver<bool>,
) {
    let Some(edge) = state.options.edge.clone() else {
        return;
    };
    if cfg.proxy_protocol {
        if !edge.is_trusted_proxy(peer.ip()) {
            tracing::debug!(target: "hearth::http", %peer, "PROXY protocol from an untrusted address: header not read");
        } else {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, proxy_header(&mut stream, peer)).await {
                Ok(Ok(source)) => peer = source,
                Ok(Err(e)) => {
                    tracing::debug!(target: "hearth::http", %peer, "{e}");
                    return;
                }
                Err(_) => return,
            }
        }
    }
    let info = ConnInfo { tls: cfg.tls, port };
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let state = state.clone();
        let permit = permit.clone();
        req.extensions_mut().insert(info);
        async move { Ok::<_, Infallible>(crate::handle(state, req, peer, false, permit).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(15))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024);
    if cfg.tls {
        let Some(tls) = edge.tls_config() else { return };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let tls_stream =
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                _ => return,
            };
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.as_mut().await;
            }
        }
    } else {
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.as_mut().await;
            }
        }
    }
}

/// Reloads the zone file on SIGHUP or when it changes, and renewed
/// certificates when their files change; an invalid zone file keeps the
/// running one and is logged.
pub(crate) async fn watch_files(edge: Arc<Edge>, mut stop: watch::Receiver<bool>) {
    let stamp = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last = stamp(edge.path());
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.tick().await;
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = hangup => true,
            _ = tick.tick() => false,
        };
        let now = stamp(edge.path());
        if forced || now != last {
            last = now;
            // A new JWKS URL is fetched during the reload: off the front.
            let reloading = edge.clone();
            let reloaded = tokio::task::spawn_blocking(move || reloading.reload()).await;
            let failure = match reloaded {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            match failure {
                None => {
                    tracing::info!(target: "hearth::edge", "{}: reloaded", edge.path().display())
                }
                Some(e) => {
                    tracing::error!(target: "hearth::edge", "{}: not reloaded, the running rules stay:\n{e}", edge.path().display())
                }
            }
        }
        let (renewed, errors) = edge.refresh_certificates();
        if renewed > 0 {
            tracing::info!(target: "hearth::edge", "{renewed} renewed certificate(s) loaded");
        }
        for e in errors {
            tracing::error!(target: "hearth::edge", "certificate not reloaded, the previous one stays: {e}");
        }
    }
}

/// The edge's check of a request's head: `Some` is the answer to send.
/// JWKS fetches it asks for run on the blocking pool, so a slow identity
/// provider holds only the requests that need its keys.
pub(crate) async fn check(
    state: &State,
    edge: &Edge,
    req: &mut Request<Incoming>,
    peer: SocketAddr,
) -> Option<Response<Body>> {
    let info = req
        .extensions()
        .get::<ConnInfo>()
        .copied()
        .unwrap_or(ConnInfo {
            tls: false,
            port: state.local_addr.port(),
        });
    let ray = format!(
        "{:016x}",
        state
            .next_id
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
    );
    let mut round = 0;
    let verdict = loop {
        let checked = {
            let er = edge_request(req, peer, info, &ray);
            edge.check_or_fetch(&er, round < hearth_edge::MAX_FETCH_ROUNDS)
        };
        match checked {
            hearth_edge::Checked::Verdict(v) => break v,
            hearth_edge::Checked::Fetch(fetch) => {
                round += 1;
                // A panicked fetch leaves the held keys; the next round sees.
                let _ = tokio::task::spawn_blocking(move || fetch.run()).await;
            }
        }
    };
    match verdict {
        hearth_edge::Verdict::Reply(r) => Some(reply(r)),
        hearth_edge::Verdict::Pass(pass) => {
            req.extensions_mut().insert(Passed { pass, ray });
            None
        }
    }
}

fn edge_request<'a, B>(
    req: &'a Request<B>,
    peer: SocketAddr,
    info: ConnInfo,
    ray: &'a str,
) -> hearth_edge::EdgeRequest<'a> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host = strip_port(host);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), header_text(v.as_bytes())))
        .collect();
    hearth_edge::EdgeRequest {
        method: req.method().as_str(),
        host,
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        headers,
        peer: peer.ip(),
        tls: info.tls,
        port: info.port,
        version: match req.version() {
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        },
        ray,
    }
}

/// A header value as text, borrowed when it is UTF-8 (nearly always):
/// `from_utf8` checks ASCII a word at a time, where the lossy decoder
/// walks byte by byte even when there is nothing to replace.
fn header_text(v: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The managed rules over a buffered body (its first
/// [`MAX_INSPECTED_BODY`] bytes).
pub(crate) fn check_body(
    state: &State,
    parts: &http::request::Parts,
    peer: SocketAddr,
    passed: &Passed,
    body: &Bytes,
) -> Option<Response<Body>> {
    // An empty body (every GET) has nothing for the managed rules: the
    // head copy below is skipped.
    if body.is_empty() || !passed.pass.inspects_body() {
        return None;
    }
    let edge = state.options.edge.as_ref()?;
    let info = parts
        .extensions
        .get::<ConnInfo>()
        .copied()
        .unwrap_or(ConnInfo {
            tls: false,
            port: state.local_addr.port(),
        });
    let req = Request::from_parts(clone_head(parts), ());
    let er = edge_request(&req, peer, info, &passed.ray);
    let inspected = &body[..body.len().min(MAX_INSPECTED_BODY)];
    edge.check_body(&er, &passed.pass, inspected).map(reply)
}

/// The managed rules read at most this much of a body, as Cloudflare's
/// WAF inspects a bounded prefix.
pub const MAX_INSPECTED_BODY: usize = 128 * 1024;

fn clone_head(parts: &http::request::Parts) -> http::request::Parts {
    let mut b = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone())
        .version(parts.version);
    if let Some(h) = b.headers_mut() {
        *h = parts.headers.clone();
    }
    let (p, ()) = b.body(()).unwrap_or_default().into_parts();
    p
}

fn reply(r: hearth_edge::Reply) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(r.body)));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// The headers the worker gets: the client's, less the edge's own names,
/// plus what the edge set.
pub(crate) fn worker_headers(passed: &Passed, headers: &mut Vec<(String, String)>) {
    let owned = passed.pass.owned_headers();
    headers.retain(|(k, _)| !owned.iter().any(|o| o.eq_ignore_ascii_case(k)));
    headers.extend(passed.pass.set_headers.iter().cloned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_borrows_utf8_and_replaces_other_bytes() {
        assert!(matches!(
            header_text(b"text/html;q=0.9"),
            Cow::Borrowed("text/html;q=0.9")
        ));
        assert!(matches!(
            header_text("café".as_bytes()),
            Cow::Borrowed("café")
        ));
        assert_eq!(header_text(b"caf\xe9 ok"), "caf\u{fffd} ok");
    }
}
