//! Outgoing `fetch()`: HTTP/1.1 and HTTPS (rustls with the `ring` provider
//! and Mozilla's root store) over a pooled hyper client, so repeated
//! fetches to one origin reuse a kept-alive connection. Redirects follow the
//! Fetch standard's modes. The response head resolves `fetch()`; the body
//! is read chunk by chunk afterwards ([`read_chunk`]) so JS sees it as a
//! stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc;

/// How long an idle pooled connection is kept for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per origin.
const POOL_MAX_IDLE_PER_HOST: usize = 32;

/// One isolate's HTTP client. Its connection pool lives on the isolate's
/// event loop, so every isolate builds its own.
pub(crate) type Client = LegacyClient<HttpsConnector<HttpConnector>, FetchBody>;

/// What a worker's stream hands an outgoing request body.
#[derive(Debug)]
pub(crate) enum BodyPiece {
    Data(Bytes),
    End,
    Failed(String),
}

/// An outgoing request body: bytes in hand, or a worker's `ReadableStream`
/// fed through a bounded channel as the worker reads it.
#[derive(Debug)]
pub(crate) enum FetchBody {
    /// `None` once sent (or when empty).
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<BodyPiece>),
}

impl FetchBody {
    fn full(bytes: Bytes) -> Self {
        FetchBody::Full(Some(bytes).filter(|b| !b.is_empty()))
    }
}

impl hyper::body::Body for FetchBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            FetchBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            FetchBody::Stream(rx) => match rx.poll_recv(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(BodyPiece::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                Poll::Ready(Some(BodyPiece::End)) => {
                    rx.close();
                    Poll::Ready(None)
                }
                Poll::Ready(Some(BodyPiece::Failed(m))) => {
                    Poll::Ready(Some(Err(std::io::Error::other(m))))
                }
                // Never a clean end: the upstream must not take a body cut
                // short for a whole one.
                Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::other(
                    "the request body stream was abandoned before its end",
                )))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, FetchBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            FetchBody::Full(None) => SizeHint::with_exact(0),
            FetchBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            FetchBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// The TLS client settings outgoing connections use: Mozilla's roots plus
/// `extra_roots` (DER).
pub(crate) fn tls_config(extra_roots: &[Vec<u8>]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (i, der) in extra_roots.iter().enumerate() {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| format!("extra_root_certs[{i}] is not a usable DER certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tls)
}

/// Builds a client trusting Mozilla's roots plus `extra_roots` (DER).
pub(crate) fn client(extra_roots: &[Vec<u8>]) -> Result<Client, String> {
    let tls = tls_config(extra_roots)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(LegacyClient::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .build(https))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedirectMode {
    Follow,
    Manual,
    Error,
}

impl RedirectMode {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "manual" => RedirectMode::Manual,
            "error" => RedirectMode::Error,
            _ => RedirectMode::Follow,
        }
    }
}

/// The header every subrequest of a worker's `fetch()` carries, as
/// Cloudflare marks its Workers' subrequests with `CF-Worker`. A Hearth
/// server never answers its internal endpoints to a request carrying it, so
/// a worker cannot reach them through its own server (or another one).
pub const SUBREQUEST_MARKER: &str = "cf-worker";
/// Its value: Cloudflare sends the worker's zone; a local worker has none.
const SUBREQUEST_MARKER_VALUE: &str = "hearth";

pub(crate) struct FetchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Set when the body is a stream (then `body` is empty).
    pub body_stream: Option<mpsc::Receiver<BodyPiece>>,
    pub redirect: RedirectMode,
    pub max_redirects: u32,
    pub timeout: Duration,
}

/// The head of the final response; its body follows through [`read_chunk`].
#[derive(Debug)]
pub(crate) struct FetchHead {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub url: String,
    pub redirected: bool,
}

/// Sends the request, following redirects, until a final response head
/// arrives. The timeout covers connecting, TLS, redirects and the head; a
/// body that has started to flow is not cut off by it (like a stream).
pub(crate) async fn fetch(
    client: &Client,
    req: FetchRequest,
) -> Result<(FetchHead, Incoming), String> {
    let timeout = req.timeout;
    match tokio::time::timeout(timeout, fetch_head(client, req)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "fetch() timed out after {} ms (limits.subrequest_timeout_ms)",
            timeout.as_millis()
        )),
    }
}

/// Next chunk of a response body; `None` at its end. `seen` counts the
/// bytes read so far against `max`.
pub(crate) async fn read_chunk<B>(
    body: &mut B,
    seen: &mut usize,
    max: usize,
) -> Result<Option<Bytes>, String>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + 'static,
{
    loop {
        let Some(frame) = body.frame().await else {
            return Ok(None);
        };
        let frame = frame.map_err(|e| format!("Network connection lost: {}", chain(&e)))?;
        let Ok(data) = frame.into_data() else {
            // Trailers carry no body bytes.
            continue;
        };
        *seen += data.len();
        if *seen > max {
            return Err(format!(
                "fetch() response body exceeds limits.max_subrequest_response_bytes ({max} bytes)"
            ));
        }
        if !data.is_empty() {
            return Ok(Some(data));
        }
    }
}

async fn fetch_head(
    client: &Client,
    mut req: FetchRequest,
) -> Result<(FetchHead, Incoming), String> {
    let mut url = url::Url::parse(&req.url).map_err(|e| format!("Invalid URL: {e}"))?;
    let mut method = req.method.clone();
    let mut body = req.body.clone();
    // A stream is sent once; a redirect that needs it again fails.
    let mut stream = req.body_stream.take();
    let streamed = stream.is_some();
    let mut headers = req.headers.clone();
    let mut redirects = 0u32;
    loop {
        let out = match stream.take() {
            Some(rx) => FetchBody::Stream(rx),
            None => FetchBody::full(body.clone()),
        };
        let (head, incoming) = send_once(client, &url, &method, &headers, out).await?;
        let is_redirect = matches!(head.status, 301 | 302 | 303 | 307 | 308);
        let location = head
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.clone());
        let done = |head: FetchHead| FetchHead {
            url: url.to_string(),
            redirected: redirects > 0,
            ..head
        };
        let (true, Some(location)) = (is_redirect, location) else {
            return Ok((done(head), incoming));
        };
        match req.redirect {
            RedirectMode::Manual => return Ok((done(head), incoming)),
            RedirectMode::Error => {
                return Err(format!(
                    "fetch() to {url} was redirected, and the request's redirect mode is 'error'"
                ));
            }
            RedirectMode::Follow => {}
        }
        // The redirect's own body is not wanted; dropping it closes that
        // connection rather than reading an unbounded body to reuse it.
        drop(incoming);
        redirects += 1;
        if redirects > req.max_redirects {
            return Err(format!(
                "fetch() followed too many redirects (limits.max_redirects = {})",
                req.max_redirects
            ));
        }
        let next = url
            .join(&location)
            .map_err(|e| format!("Invalid redirect location {location:?}: {e}"))?;
        if next.origin() != url.origin() {
            // Credentials and the explicit Host belong to the old origin.
            headers.retain(|(k, _)| {
                !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("host")
            });
        }
        url = next;
        // 303, and 301/302 after POST, turn into a bodiless GET.
        if head.status == 303 || (matches!(head.status, 301 | 302) && method == "POST") {
            if method != "HEAD" {
                method = "GET".into();
            }
            body = Bytes::new();
            headers.retain(|(k, _)| {
                !k.eq_ignore_ascii_case("content-type") && !k.eq_ignore_ascii_case("content-length")
            });
        } else if streamed && !body_free(&method) {
            return Err(format!(
                "fetch() to {url} was redirected ({}) and must send its body again, but the body was a ReadableStream, which can be sent only once; give fetch() the body as bytes or a string to follow such redirects",
                head.status
            ));
        }
    }
}

/// Methods whose redirected request carries no body anyway.
fn body_free(method: &str) -> bool {
    method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD")
}

/// `e` and its sources, joined: hyper's own message alone rarely says why.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn send_once(
    client: &Client,
    url: &url::Url,
    method: &str,
    headers: &[(String, String)],
    body: FetchBody,
) -> Result<(FetchHead, Incoming), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "Fetch API cannot load: unsupported scheme {other}:"
            ));
        }
    }
    let host = url
        .host_str()
        .ok_or("Fetch API cannot load: URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let uri: http::Uri = url
        .as_str()
        .parse()
        .map_err(|e| format!("Invalid URL: {e}"))?;
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        if k.eq_ignore_ascii_case(SUBREQUEST_MARKER) {
            continue;
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    // Set after the worker's headers, so no worker can leave it out.
    builder = builder.header(SUBREQUEST_MARKER, SUBREQUEST_MARKER_VALUE);
    let request = builder
        .body(body)
        .map_err(|e| format!("Invalid request: {e}"))?;
    let response = client.request(request).await.map_err(|e| {
        if e.is_connect() {
            format!(
                "Network connection lost: cannot connect to {host}:{port}: {}",
                chain(&e)
            )
        } else {
            format!("Network connection lost: {}", chain(&e))
        }
    })?;
    let status = response.status();
    let out_headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok((
        FetchHead {
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("").to_string(),
            headers: out_headers,
            url: url.to_string(),
            redirected: false,
        },
        response.into_body(),
    ))
}
