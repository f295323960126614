//! The listener, authentication, and routing of requests to operations.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hearth_core::SharedClock;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::buckets::Buckets;
use crate::credentials::{Access, CredentialInfo, CredentialStore};
use crate::error::S3Error;
use crate::sigv4::{self, AuthHeader, CanonicalRequest, Presigned, SigningKey};

pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, io::Error>;

/// Connections served at once; past it new ones wait in the listen queue.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Time a client has to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head (request line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

pub struct S3Options {
    pub listen: SocketAddr,
    pub buckets: Arc<Buckets>,
    pub credentials: Arc<CredentialStore>,
    pub clock: SharedClock,
    pub max_connections: usize,
}

pub(crate) struct State {
    pub buckets: Arc<Buckets>,
    pub credentials: Arc<CredentialStore>,
    pub clock: SharedClock,
    request_ids: AtomicU64,
}

pub struct S3Server {
    listener: TcpListener,
    state: Arc<State>,
    max_connections: usize,
}

impl S3Server {
    pub async fn bind(options: S3Options) -> io::Result<Self> {
        let listener = TcpListener::bind(options.listen).await?;
        Ok(Self {
            listener,
            max_connections: options.max_connections.max(1),
            state: Arc::new(State {
                buckets: options.buckets,
                credentials: options.credentials,
                request_ids: AtomicU64::new(options.clock.now_ms() << 16),
                clock: options.clock,
            }),
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
                    tracing::warn!("S3 endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let state = self.state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(state, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = conn.await;
                drop(permit);
            });
        }
    }
}

/// The parsed request line, shared by every operation.
pub(crate) struct Req {
    pub method: Method,
    pub headers: HeaderMap,
    pub raw_path: String,
    pub query: Vec<(String, String)>,
    pub bucket: Option<String>,
    pub key: Option<String>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".into(),
        }
    }
}

/// Who signed the request, and how its body is authenticated.
pub(crate) struct Auth {
    pub info: CredentialInfo,
    pub payload: Payload,
}

pub(crate) enum Payload {
    /// Hex SHA-256 the body must have.
    Signed(String),
    Unsigned,
    /// `aws-chunked`, each chunk signed.
    Streaming {
        key: SigningKey,
        amz_date: String,
        scope: String,
        seed: String,
    },
    /// `aws-chunked`, unsigned, with an optional checksum trailer.
    UnsignedTrailer,
}

impl Auth {
    pub fn check(&self, bucket: Option<&str>, write: bool) -> Result<(), S3Error> {
        if let Some(b) = bucket
            && !self.info.allows_bucket(b)
        {
            return Err(S3Error::access_denied(format!(
                "The access key {} is not allowed to use the bucket {b:?}.",
                self.info.access_key_id
            )));
        }
        if write && self.info.access == Access::Read {
            return Err(S3Error::access_denied(format!(
                "The access key {} is read-only.",
                self.info.access_key_id
            )));
        }
        Ok(())
    }

    /// Bucket administration: a read-write key for every bucket.
    pub fn check_admin(&self) -> Result<(), S3Error> {
        self.check(None, true)?;
        if !self.info.buckets.is_empty() {
            return Err(S3Error::access_denied(format!(
                "The access key {} is scoped to some buckets; creating and deleting buckets needs a key for every bucket.",
                self.info.access_key_id
            )));
        }
        Ok(())
    }
}

fn parse_request(req: &http::request::Parts) -> Result<Req, S3Error> {
    let raw_path = req.uri.path().to_string();
    let query = sigv4::parse_query(req.uri.query().unwrap_or(""))?;
    let path = raw_path.strip_prefix('/').unwrap_or(&raw_path);
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (Some(b), Some(k)),
        Some((b, _)) => (Some(b), None),
        None if path.is_empty() => (None, None),
        None => (Some(path), None),
    };
    let bucket = bucket.map(sigv4::percent_decode).transpose()?;
    let key = key.map(sigv4::percent_decode).transpose()?;
    Ok(Req {
        method: req.method.clone(),
        headers: req.headers.clone(),
        raw_path,
        query,
        bucket,
        key,
    })
}

async fn handle(state: Arc<State>, req: http::Request<Incoming>) -> Response<Body> {
    let id = format!("{:016X}", state.request_ids.fetch_add(1, Ordering::Relaxed));
    let (parts, body) = req.into_parts();
    let head = parts.method == Method::HEAD;
    let parsed = match parse_request(&parts) {
        Ok(r) => r,
        Err(e) => return error_response(&e, "/", &id, head),
    };
    let origin = parsed.header("origin").map(str::to_string);
    let mut response = if parsed.method == Method::OPTIONS {
        crate::cors::preflight(&state, &parsed)
    } else {
        match authenticate(&state, &parsed) {
            Err(e) => error_response(&e, &parsed.resource(), &id, head),
            Ok(auth) => match crate::ops::dispatch(&state, &parsed, &auth, body).await {
                Ok(r) => r,
                Err(e) => error_response(&e, &parsed.resource(), &id, head),
            },
        }
    };
    if let (Some(origin), Some(bucket), false) =
        (origin, &parsed.bucket, parsed.method == Method::OPTIONS)
    {
        crate::cors::decorate(&state, bucket, &origin, &mut response);
    }
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amz-request-id", v);
    }
    response
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

pub(crate) fn error_response(e: &S3Error, resource: &str, id: &str, head: bool) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if head {
        empty()
    } else {
        full(e.to_xml(resource, id))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    r
}

pub(crate) fn xml_response(xml: String) -> Response<Body> {
    let mut r = Response::new(full(xml));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    r
}

fn authenticate(state: &State, req: &Req) -> Result<Auth, S3Error> {
    let now = state.clock.now_ms();
    if let Some(h) = req.header("authorization") {
        let auth = AuthHeader::parse(h)?;
        let amz_date = req.header("x-amz-date").ok_or_else(|| {
            S3Error::access_denied("AWS authentication requires a valid x-amz-date header")
        })?;
        let signed_ms = sigv4::parse_amz_date(amz_date)?;
        if !amz_date.starts_with(&auth.credential.date) {
            return Err(S3Error::authorization_header_malformed(format!(
                "the Credential date {} is not the day of x-amz-date {amz_date}",
                auth.credential.date
            )));
        }
        if now.abs_diff(signed_ms) > sigv4::MAX_SKEW_MS {
            return Err(S3Error::request_time_too_skewed(
                "The difference between the request time and the server's time is too large (more than 15 minutes).",
            ));
        }
        let payload_hash = req.header("x-amz-content-sha256").ok_or_else(|| {
            S3Error::invalid_request(
                "Missing required header for this request: x-amz-content-sha256",
            )
        })?;
        let (info, secret) = credential(state, &auth.credential.access_key_id)?;
        let key = SigningKey::derive(&secret, &auth.credential);
        let cr = CanonicalRequest {
            method: req.method.as_str(),
            raw_path: &req.raw_path,
            canonical_query: sigv4::canonical_query(&req.query),
            canonical_headers: canonical_headers(req, &auth.signed_headers)?,
            signed_headers: &auth.signed_headers,
            payload_hash,
        };
        let scope = auth.credential.scope();
        let sts = sigv4::string_to_sign(amz_date, &scope, &cr.render());
        if !key.verify(&sts, &auth.signature) {
            return Err(S3Error::signature_does_not_match(
                "The request signature we calculated does not match the signature you provided. Check your secret access key and signing method.",
            ));
        }
        let payload = match payload_hash {
            sigv4::UNSIGNED_PAYLOAD => Payload::Unsigned,
            sigv4::STREAMING_PAYLOAD | sigv4::STREAMING_PAYLOAD_TRAILER => Payload::Streaming {
                key,
                amz_date: amz_date.to_string(),
                scope,
                seed: auth.signature,
            },
            sigv4::STREAMING_UNSIGNED_TRAILER => Payload::UnsignedTrailer,
            h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Payload::Signed(h.to_ascii_lowercase())
            }
            other => {
                return Err(S3Error::not_implemented(format!(
                    "x-amz-content-sha256 {other:?} is not supported"
                )));
            }
        };
        return Ok(Auth { info, payload });
    }
    if let Some(p) = Presigned::parse(&req.query)? {
        let signed_ms = sigv4::parse_amz_date(&p.amz_date)?;
        if signed_ms > now + sigv4::MAX_SKEW_MS {
            return Err(S3Error::access_denied("Request is not valid yet"));
        }
        if now > signed_ms + p.expires_secs * 1000 {
            return Err(S3Error::access_denied("Request has expired"));
        }
        let (info, secret) = credential(state, &p.credential.access_key_id)?;
        let key = SigningKey::derive(&secret, &p.credential);
        let payload_hash = req
            .param("X-Amz-Content-Sha256")
            .unwrap_or(sigv4::UNSIGNED_PAYLOAD);
        let cr = CanonicalRequest {
            method: req.method.as_str(),
            raw_path: &req.raw_path,
            canonical_query: sigv4::canonical_query(&req.query),
            canonical_headers: canonical_headers(req, &p.signed_headers)?,
            signed_headers: &p.signed_headers,
            payload_hash,
        };
        let sts = sigv4::string_to_sign(&p.amz_date, &p.credential.scope(), &cr.render());
        if !key.verify(&sts, &p.signature) {
            return Err(S3Error::signature_does_not_match(
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ));
        }
        return Ok(Auth {
            info,
            payload: Payload::Unsigned,
        });
    }
    Err(S3Error::access_denied(
        "Anonymous access is not allowed: sign the request with an access key from `hearth r2 credentials create`.",
    ))
}

fn credential(state: &State, id: &str) -> Result<(CredentialInfo, String), S3Error> {
    let found = state.credentials.lookup(id).map_err(|e| {
        tracing::error!("S3 endpoint: {e}");
        S3Error::internal("We encountered an internal error. Please try again.")
    })?;
    match found {
        Some((info, _)) if info.revoked_ms.is_some() => Err(S3Error::invalid_access_key_id(
            format!("The access key {id} has been revoked."),
        )),
        Some(found) => Ok(found),
        None => Err(S3Error::invalid_access_key_id(
            "The AWS Access Key Id you provided does not exist in our records.",
        )),
    }
}

fn canonical_headers(req: &Req, signed: &[String]) -> Result<String, S3Error> {
    sigv4::canonical_headers(signed, |name| {
        req.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    })
}
