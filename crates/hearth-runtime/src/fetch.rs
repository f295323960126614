//! Outgoing `fetch()`: HTTP/1.1 over hyper's client, one connection per
//! request, with the Fetch standard's redirect modes and a timeout.
//! TLS is not built in yet, so `https:` URLs fail with a clear message.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;

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

pub(crate) struct FetchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub redirect: RedirectMode,
    pub max_redirects: u32,
    pub timeout: Duration,
    pub max_body_bytes: usize,
}

#[derive(Debug)]
pub(crate) struct FetchResponse {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub url: String,
    pub redirected: bool,
}

pub(crate) async fn fetch(req: FetchRequest) -> Result<FetchResponse, String> {
    let timeout = req.timeout;
    match tokio::time::timeout(timeout, fetch_inner(req)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "fetch() timed out after {} ms (limits.subrequest_timeout_ms)",
            timeout.as_millis()
        )),
    }
}

async fn fetch_inner(req: FetchRequest) -> Result<FetchResponse, String> {
    let mut url = url::Url::parse(&req.url).map_err(|e| format!("Invalid URL: {e}"))?;
    let mut method = req.method.clone();
    let mut body = req.body.clone();
    let mut headers = req.headers.clone();
    let mut redirects = 0u32;
    loop {
        let resp = send_once(&url, &method, &headers, body.clone(), req.max_body_bytes).await?;
        let is_redirect = matches!(resp.status, 301 | 302 | 303 | 307 | 308);
        let location = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.clone());
        let (true, Some(location)) = (is_redirect, location) else {
            return Ok(FetchResponse {
                url: url.to_string(),
                redirected: redirects > 0,
                ..resp
            });
        };
        match req.redirect {
            RedirectMode::Manual => {
                return Ok(FetchResponse {
                    url: url.to_string(),
                    redirected: redirects > 0,
                    ..resp
                });
            }
            RedirectMode::Error => {
                return Err(format!(
                    "fetch() to {url} was redirected, and the request's redirect mode is 'error'"
                ));
            }
            RedirectMode::Follow => {}
        }
        redirects += 1;
        if redirects > req.max_redirects {
            return Err(format!(
                "fetch() followed too many redirects (limits.max_redirects = {})",
                req.max_redirects
            ));
        }
        url = url
            .join(&location)
            .map_err(|e| format!("Invalid redirect location {location:?}: {e}"))?;
        // 303, and 301/302 after POST, turn into a bodiless GET.
        if resp.status == 303 || (matches!(resp.status, 301 | 302) && method == "POST") {
            if method != "HEAD" {
                method = "GET".into();
            }
            body = Bytes::new();
            headers.retain(|(k, _)| {
                !k.eq_ignore_ascii_case("content-type") && !k.eq_ignore_ascii_case("content-length")
            });
        }
    }
}

async fn send_once(
    url: &url::Url,
    method: &str,
    headers: &[(String, String)],
    body: Bytes,
    max_body_bytes: usize,
) -> Result<FetchResponse, String> {
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(
                "fetch() to https:// URLs is not supported by this build (no TLS client); use http://"
                    .into(),
            );
        }
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
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("Network connection lost: cannot connect to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("Network connection lost: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });

    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut builder = http::Request::builder().method(method).uri(path);
    let mut has_host = false;
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("host") {
            has_host = true;
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    if !has_host {
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        builder = builder.header("host", authority);
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| format!("Invalid request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("Network connection lost: {e}"))?;
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
    let body = Limited::new(response.into_body(), max_body_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                format!(
                    "fetch() response body exceeds limits.max_subrequest_response_bytes ({max_body_bytes} bytes)"
                )
            } else {
                format!("Network connection lost: {e}")
            }
        })?
        .to_bytes();
    Ok(FetchResponse {
        status: status.as_u16(),
        status_text: status.canonical_reason().unwrap_or("").to_string(),
        headers: out_headers,
        body,
        url: url.to_string(),
        redirected: false,
    })
}
