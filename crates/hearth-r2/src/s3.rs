//! R2 on an S3-compatible store (cluster mode's `[backends] r2 = "s3"`).
//!
//! # Layout
//!
//! An R2 bucket `name` lives under `<prefix>r2/<name>/` in one S3 bucket;
//! the object `key` is the S3 object `<prefix>r2/<name>/<key>`, so any S3
//! tool sees the objects as they are. Standard HTTP metadata goes into the
//! S3 object's own headers; what R2 has beyond S3 (version, upload time by
//! the bucket's clock, etag, checksums, custom metadata with its exact key
//! case) travels in one user-metadata field, `x-amz-meta-hearth-r2`, as
//! base64url JSON. An object written by another S3 client has no such
//! field and is read from its S3 headers (etag, last-modified).
//!
//! # Races
//!
//! A conditional `put` reads the current object, evaluates `onlyIf` on it,
//! and writes with `If-Match: <its S3 etag>` (or `If-None-Match: *` when
//! absent); if another writer got there first the store answers 412 and the
//! put starts over, so the condition always held for the version replaced.
//! Two versions with identical bytes share an S3 etag, so a condition on
//! the upload time can be judged on the older of two such versions.
//!
//! # Costs
//!
//! A `list` page is one `ListObjectsV2` plus one `HEAD` per object (R2's
//! version and upload time are not in S3 listings), at most
//! [`HEAD_CONCURRENCY`] at a time. A single `put` holds its body in memory
//! (up to [`MAX_BUFFERED_PUT`]); larger bodies go through multipart.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use base64::Engine as _;
use hearth_core::SharedClock;
use md5::Digest as _;
use serde::{Deserialize, Serialize};

use crate::error::{Op, R2Error};
use crate::{
    R2Checksums, R2GetOptions, R2GetResult, R2HashAlgorithm, R2HttpMetadata, R2Limits,
    R2ListInclude, R2ListOptions, R2Object, R2ObjectBody, R2ObjectRange, R2Objects, R2PartInfo,
    R2PutOptions, R2UploadInfo, R2UploadedPart, STORAGE_CLASS_STANDARD, validate,
};

/// Sets the store's own headers from R2's HTTP metadata on a put or a
/// multipart upload's start (two builder types with the same setters).
macro_rules! with_http {
    ($req:expr, $http:expr) => {{
        let (mut req, http) = ($req, $http);
        if let Some(v) = &http.content_type {
            req = req.content_type(v);
        }
        if let Some(v) = &http.content_language {
            req = req.content_language(v);
        }
        if let Some(v) = &http.content_disposition {
            req = req.content_disposition(v);
        }
        if let Some(v) = &http.content_encoding {
            req = req.content_encoding(v);
        }
        if let Some(v) = &http.cache_control {
            req = req.cache_control(v);
        }
        req
    }};
}

/// Part size of [`S3Bucket::import`]'s multipart uploads, and the largest
/// body it writes with one `PutObject`.
pub const IMPORT_PART_BYTES: u64 = 16 * 1024 * 1024;

/// HEAD requests one `list` page keeps in flight.
pub const HEAD_CONCURRENCY: usize = 16;
/// Largest body a single `put` sends: S3's single PUT needs its length up
/// front, and a body read from a stream is buffered to learn it.
pub const MAX_BUFFERED_PUT: u64 = 64 * 1024 * 1024;
/// Most unfinished uploads one listing of them reads from the store.
pub const MAX_UPLOADS_SCANNED: usize = 10_000;
/// Chunks of a body being read that wait for the reader.
const BODY_CHUNKS_IN_FLIGHT: usize = 4;
/// Times a conditional put starts over after losing a race.
const MAX_CONDITIONAL_ATTEMPTS: usize = 16;
/// The user-metadata field (after `x-amz-meta-`) holding R2's own fields.
const META_FIELD: &str = "hearth-r2";

/// Where the store is and how to sign for it (`[s3]` of the cluster file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host:port`; `None` means AWS's endpoint for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Prepended to every object name, so several clusters can share a bucket.
    pub prefix: String,
}

/// A connection to one S3 bucket: the client and the runtime it runs on.
/// Share one per process; each R2 bucket is a prefix in it.
pub struct S3Store {
    /// Taken only to shut it down without blocking (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl S3Store {
    /// Builds the client; nothing is sent until the first call.
    pub fn connect(config: &S3Config) -> Result<Arc<Self>, R2Error> {
        let fail = |reason: String| R2Error::Open {
            path: format!("s3://{}/{}", config.bucket, config.prefix),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hearth-r2-s3")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("starting the S3 client's runtime: {e}")))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .build();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(Credentials::new(
                config.access_key_id.clone(),
                config.secret_access_key.clone(),
                None,
                None,
                "hearth-cluster-file",
            ))
            .http_client(http)
            .timeout_config(timeouts)
            // Many S3-compatible stores reject the newer default checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint).force_path_style(true);
        }
        let client = Client::from_conf(builder.build());
        Ok(Arc::new(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            client,
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            endpoint: config
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("aws:{}", config.region)),
        }))
    }

    /// `s3://bucket/prefix` at the endpoint, for health reports.
    pub fn describe(&self) -> String {
        format!("s3:{}/{}/{}", self.endpoint, self.bucket, self.prefix)
    }

    /// Runs `fut` on the store's runtime and waits for it. Callable from
    /// any thread, including another runtime's.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| "the S3 client's runtime stopped".to_owned())
    }

    fn blob_error<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        store_error("blob", e).to_string()
    }

    /// Stores `data` as the object `<prefix><name>` (for data other than
    /// R2's, such as Durable Object snapshots).
    pub fn put_blob(&self, name: &str, data: Vec<u8>) -> Result<(), String> {
        let md5 = md5::Md5::digest(&data);
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{}{name}", self.prefix))
            .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
            .body(ByteStream::from(data));
        self.block(req.send())?
            .map(|_| ())
            .map_err(|e| Self::blob_error(&e))
    }

    /// The bytes of `<prefix><name>`, `None` when there is no such object.
    pub fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{}{name}", self.prefix));
        self.block(async move {
            match req.send().await {
                Ok(out) => out
                    .body
                    .collect()
                    .await
                    .map(|b| Some(b.to_vec()))
                    .map_err(|e| format!("reading {e}")),
                Err(e) if status_of(&e) == Some(404) => Ok(None),
                Err(e) => Err(Self::blob_error(&e)),
            }
        })?
    }

    /// Names (without the store's prefix) of the objects under
    /// `<prefix><under>`, at most `limit`.
    pub fn list_blobs(&self, under: &str, limit: usize) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        while names.len() < limit {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(format!("{}{under}", self.prefix));
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            let out = self.block(req.send())?.map_err(|e| Self::blob_error(&e))?;
            names.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key()?.strip_prefix(&self.prefix).map(str::to_owned)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        names.truncate(limit);
        Ok(names)
    }

    /// Deletes `<prefix><name>` for each name; missing ones are fine.
    pub fn delete_blobs(&self, names: &[String]) -> Result<(), String> {
        for name in names {
            let req = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(format!("{}{name}", self.prefix));
            match self.block(req.send())? {
                Ok(_) => {}
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => return Err(Self::blob_error(&e)),
            }
        }
        Ok(())
    }

    /// Checks that the bucket answers (for start-up and `cluster status`).
    pub fn check(&self) -> Result<(), R2Error> {
        let (client, bucket) = (self.client.clone(), self.bucket.clone());
        self.block(async move { client.head_bucket().bucket(bucket).send().await })
            .map_err(|message| R2Error::Store {
                op: "open",
                message,
            })?
            .map_err(|e| store_error("open", &e))?;
        Ok(())
    }
}

impl Drop for S3Store {
    /// The last handle may go on an async thread, where dropping a runtime
    /// the usual way (waiting for its tasks) is refused.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// R2's own fields, stored with each object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "v")]
    version: String,
    #[serde(rename = "u")]
    uploaded: u64,
    /// Absent on a multipart object: its etag is the store's.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(rename = "h", default)]
    http: R2HttpMetadata,
    #[serde(rename = "m", default)]
    custom: BTreeMap<String, String>,
    #[serde(rename = "c", default)]
    checksums: R2Checksums,
}

impl Stored {
    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(text: &str) -> Option<Self> {
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// What a HEAD or GET of one S3 object says.
struct Head {
    /// The store's etag, quoted as it sent it (for `If-Match`).
    s3_etag: String,
    size: u64,
    object: R2Object,
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

fn millis(t: Option<&DateTime>) -> u64 {
    t.and_then(|t| u64::try_from(t.to_millis().ok()?).ok())
        .unwrap_or(0)
}

/// Fields shared by `HeadObjectOutput` and `GetObjectOutput`.
struct RawHead<'a> {
    etag: Option<&'a str>,
    length: Option<i64>,
    last_modified: Option<&'a DateTime>,
    metadata: Option<&'a std::collections::HashMap<String, String>>,
    version_id: Option<&'a str>,
    http: R2HttpMetadata,
}

fn to_head(key: &str, raw: RawHead<'_>) -> Head {
    let s3_etag = raw.etag.unwrap_or_default().to_owned();
    let size = u64::try_from(raw.length.unwrap_or(0)).unwrap_or(0);
    let stored = raw
        .metadata
        .and_then(|m| m.get(META_FIELD))
        .and_then(|v| Stored::decode(v));
    let object = match stored {
        Some(s) => R2Object {
            key: key.to_owned(),
            version: s.version,
            size,
            etag: s.etag.unwrap_or_else(|| unquote(&s3_etag)),
            uploaded: s.uploaded,
            http_metadata: Some(s.http),
            custom_metadata: Some(s.custom),
            range: None,
            checksums: s.checksums,
            storage_class: STORAGE_CLASS_STANDARD.to_owned(),
        },
        // Written by another S3 client: what S3 itself knows.
        None => R2Object {
            key: key.to_owned(),
            version: raw
                .version_id
                .filter(|v| *v != "null")
                .map(str::to_owned)
                .unwrap_or_else(|| unquote(&s3_etag)),
            size,
            etag: unquote(&s3_etag),
            uploaded: millis(raw.last_modified),
            http_metadata: Some(raw.http),
            custom_metadata: Some(
                raw.metadata
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            ),
            range: None,
            checksums: R2Checksums::default(),
            storage_class: STORAGE_CLASS_STANDARD.to_owned(),
        },
    };
    Head {
        s3_etag,
        size,
        object,
    }
}

fn status_of<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HasStatus,
{
    e.raw_response().map(HasStatus::status)
}

trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

fn store_error<E>(op: Op, e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> R2Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            format!(
                "{} ({}): {}",
                err.code().unwrap_or("error"),
                s.raw().status().as_u16(),
                err.message().unwrap_or("no message")
            )
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    R2Error::Store { op, message }
}

fn code_of<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<String> {
    match e {
        SdkError::ServiceError(s) => s.err().code().map(str::to_owned),
        _ => None,
    }
}

/// One R2 bucket on an [`S3Store`].
pub(crate) struct S3Bucket {
    store: Arc<S3Store>,
    /// `<prefix>r2/<name>/`.
    base: String,
    /// `<prefix>r2-uploads/<name>/`: a marker per finished upload, since
    /// the store forgets them and R2 lets a finished upload be aborted.
    finished: String,
    pub(crate) clock: SharedClock,
    pub(crate) limits: R2Limits,
}

impl std::fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Bucket")
            .field("store", &self.store)
            .field("base", &self.base)
            .finish()
    }
}

/// Body bytes read from the store through a bounded channel.
pub(crate) struct S3BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    chunk: bytes::Bytes,
}

impl Read for S3BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match futures::executor::block_on(self.rx.recv()) {
                None => return Ok(0),
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

fn http_from_parts(
    content_type: Option<&str>,
    content_language: Option<&str>,
    content_disposition: Option<&str>,
    content_encoding: Option<&str>,
    cache_control: Option<&str>,
    expires: Option<&str>,
) -> R2HttpMetadata {
    R2HttpMetadata {
        content_type: content_type.map(str::to_owned),
        content_language: content_language.map(str::to_owned),
        content_disposition: content_disposition.map(str::to_owned),
        content_encoding: content_encoding.map(str::to_owned),
        cache_control: cache_control.map(str::to_owned),
        cache_expiry: expires.and_then(crate::parse_http_date),
    }
}

/// A body read into memory with its MD5 and, if asked, one more digest.
struct ReadBody {
    data: Vec<u8>,
    md5: Vec<u8>,
    other: Option<Vec<u8>>,
}

/// Reads `body` into memory, at most `max` bytes, and hashes it.
fn read_body(
    op: Op,
    body: &mut dyn Read,
    max: u64,
    extra: Option<R2HashAlgorithm>,
) -> Result<ReadBody, R2Error> {
    let mut data = Vec::new();
    let mut limited = body.take(max.saturating_add(1));
    limited.read_to_end(&mut data).map_err(R2Error::io(op))?;
    if data.len() as u64 > max {
        return Err(R2Error::EntityTooLarge { op });
    }
    let md5 = md5::Md5::digest(&data).to_vec();
    let other = extra.map(|a| digest(a, &data));
    Ok(ReadBody { data, md5, other })
}

fn digest(algorithm: R2HashAlgorithm, data: &[u8]) -> Vec<u8> {
    match algorithm {
        R2HashAlgorithm::Md5 => md5::Md5::digest(data).to_vec(),
        R2HashAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        R2HashAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
        R2HashAlgorithm::Sha384 => sha2::Sha384::digest(data).to_vec(),
        R2HashAlgorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
    }
}

impl S3Bucket {
    pub(crate) fn open(
        store: Arc<S3Store>,
        name: &str,
        clock: SharedClock,
        limits: R2Limits,
    ) -> Result<Self, R2Error> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(R2Error::Open {
                path: format!("s3://{}/{}r2/{name}", store.bucket, store.prefix),
                reason: "a bucket name must be one path segment".into(),
            });
        }
        let base = format!("{}r2/{name}/", store.prefix);
        let finished = format!("{}r2-uploads/{name}/", store.prefix);
        Ok(Self {
            store,
            base,
            finished,
            clock,
            limits,
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "s3:{}/{}/{}",
            self.store.endpoint, self.store.bucket, self.base
        )
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.base)
    }

    fn run<T: Send + 'static>(
        &self,
        op: Op,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, R2Error> {
        self.store
            .block(fut)
            .map_err(|message| R2Error::Store { op, message })
    }

    fn head_raw(&self, op: Op, key: &str) -> Result<Option<Head>, R2Error> {
        let req = self
            .store
            .client
            .head_object()
            .bucket(&self.store.bucket)
            .key(self.name(key));
        match self.run(op, req.send())? {
            Ok(out) => Ok(Some(to_head(
                key,
                RawHead {
                    etag: out.e_tag(),
                    length: out.content_length(),
                    last_modified: out.last_modified(),
                    metadata: out.metadata(),
                    version_id: out.version_id(),
                    http: http_from_parts(
                        out.content_type(),
                        out.content_language(),
                        out.content_disposition(),
                        out.content_encoding(),
                        out.cache_control(),
                        out.expires_string(),
                    ),
                },
            ))),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(store_error(op, &e)),
        }
    }

    pub(crate) fn head(&self, key: &str) -> Result<Option<R2Object>, R2Error> {
        self.limits.key("head", key)?;
        Ok(self.head_raw("head", key)?.map(|h| {
            let mut o = h.object;
            o.range = Some(R2ObjectRange {
                offset: 0,
                length: h.size,
            });
            o
        }))
    }

    pub(crate) fn get(
        &self,
        key: &str,
        options: &R2GetOptions,
    ) -> Result<Option<R2GetResult>, R2Error> {
        const OP: &str = "get";
        self.limits.key(OP, key)?;
        // The body must be of the version the conditions were judged on:
        // read with If-Match on its S3 etag, and start over if it changed.
        for _ in 0..MAX_CONDITIONAL_ATTEMPTS {
            let Some(head) = self.head_raw(OP, key)? else {
                return Ok(None);
            };
            let full = R2ObjectRange {
                offset: 0,
                length: head.size,
            };
            if let Some(cond) = &options.only_if
                && !cond.passes(Some((&head.object.etag, head.object.uploaded)))
            {
                let mut o = head.object;
                o.range = Some(full);
                return Ok(Some(R2GetResult::PreconditionFailed(o)));
            }
            let range = match &options.range {
                Some(r) => validate::resolve_range(r, head.size)?,
                None => full,
            };
            let mut object = head.object;
            object.range = Some(range);
            if range.length == 0 {
                let body = crate::R2Body::remote(Box::new(std::io::empty()), 0);
                return Ok(Some(R2GetResult::Body(R2ObjectBody { object, body })));
            }
            let req = self
                .store
                .client
                .get_object()
                .bucket(&self.store.bucket)
                .key(self.name(key))
                .if_match(&head.s3_etag)
                .range(format!(
                    "bytes={}-{}",
                    range.offset,
                    range.offset + range.length - 1
                ));
            let out = match self.run(OP, req.send())? {
                Ok(out) => out,
                Err(e) if matches!(status_of(&e), Some(404 | 412)) => continue,
                Err(e) => return Err(store_error(OP, &e)),
            };
            let (tx, rx) = tokio::sync::mpsc::channel(BODY_CHUNKS_IN_FLIGHT);
            let mut stream: ByteStream = out.body;
            self.store.handle.spawn(async move {
                loop {
                    let next = stream.try_next().await;
                    let item = match next {
                        Ok(None) => break,
                        Ok(Some(chunk)) => Ok(chunk),
                        Err(e) => Err(format!("reading the object from S3: {e}")),
                    };
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        break;
                    }
                }
            });
            let reader = S3BodyReader {
                rx,
                chunk: bytes::Bytes::new(),
            };
            let body = crate::R2Body::remote(Box::new(reader), range.length);
            return Ok(Some(R2GetResult::Body(R2ObjectBody { object, body })));
        }
        Err(R2Error::Store {
            op: OP,
            message: "the object kept changing while being read".into(),
        })
    }

    pub(crate) fn put(
        &self,
        key: &str,
        body: &mut dyn Read,
        options: &R2PutOptions,
    ) -> Result<Option<R2Object>, R2Error> {
        const OP: &str = "put";
        self.limits.key(OP, key)?;
        self.limits
            .custom_metadata(OP, options.custom_metadata.as_ref())?;
        let expected = options.checksum.as_ref();
        let extra = expected
            .map(|c| c.algorithm())
            .filter(|a| *a != R2HashAlgorithm::Md5);
        let max = self.limits.max_upload_bytes.min(MAX_BUFFERED_PUT);
        let ReadBody { data, md5, other } = match read_body(OP, body, max, extra) {
            Err(R2Error::EntityTooLarge { .. }) if max < self.limits.max_upload_bytes => {
                return Err(R2Error::invalid(format!(
                    "put: bodies over {MAX_BUFFERED_PUT} bytes must use a multipart upload on the S3 backend"
                )));
            }
            r => r?,
        };
        let mut checksums = R2Checksums {
            md5: Some(hex::encode(&md5)),
            ..R2Checksums::default()
        };
        if let Some(exp) = expected {
            let actual = other.clone().unwrap_or_else(|| md5.clone());
            let want = expected_digest(exp);
            if actual != want {
                return Err(R2Error::BadDigest {
                    op: OP,
                    algorithm: exp.algorithm().name(),
                    provided: hex::encode(&want),
                    actual: hex::encode(&actual),
                });
            }
            let hex = Some(hex::encode(&actual));
            match exp.algorithm() {
                R2HashAlgorithm::Md5 => {}
                R2HashAlgorithm::Sha1 => checksums.sha1 = hex,
                R2HashAlgorithm::Sha256 => checksums.sha256 = hex,
                R2HashAlgorithm::Sha384 => checksums.sha384 = hex,
                R2HashAlgorithm::Sha512 => checksums.sha512 = hex,
            }
        }
        if let Some(verified) = &options.verified_checksums {
            checksums.merge_missing(&verified.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let http = options.http_metadata.clone().unwrap_or_default();
        let data = bytes::Bytes::from(data);
        for _ in 0..MAX_CONDITIONAL_ATTEMPTS {
            // Decided on the version the write replaces: see the module notes.
            let mut precondition = None;
            if let Some(cond) = &options.only_if {
                let current = self.head_raw(OP, key)?;
                let judged = current
                    .as_ref()
                    .map(|h| (h.object.etag.as_str(), h.object.uploaded));
                if !cond.passes(judged) {
                    return Ok(None);
                }
                precondition = Some(current.map(|h| h.s3_etag));
            }
            let stored = Stored {
                version: crate::new_id(),
                uploaded: self.clock.now_ms(),
                etag: Some(hex::encode(&md5)),
                http: http.clone(),
                custom: options.custom_metadata.clone().unwrap_or_default(),
                checksums: checksums.clone(),
            };
            let mut req = self
                .store
                .client
                .put_object()
                .bucket(&self.store.bucket)
                .key(self.name(key))
                .content_md5(base64::engine::general_purpose::STANDARD.encode(&md5))
                .metadata(META_FIELD, stored.encode())
                .body(ByteStream::from(data.clone()));
            req = with_http!(req, &http);
            match precondition {
                Some(Some(etag)) => req = req.if_match(etag),
                Some(None) => req = req.if_none_match("*"),
                None => {}
            }
            match self.run(OP, req.send())? {
                Ok(_) => {
                    return Ok(Some(R2Object {
                        key: key.to_owned(),
                        version: stored.version,
                        size: data.len() as u64,
                        etag: hex::encode(&md5),
                        uploaded: stored.uploaded,
                        http_metadata: Some(stored.http),
                        custom_metadata: Some(stored.custom),
                        range: None,
                        checksums: stored.checksums,
                        storage_class: STORAGE_CLASS_STANDARD.to_owned(),
                    }));
                }
                // Lost a race (412), or the object vanished under If-Match (404),
                // or the store saw two conditional writes at once (409).
                Err(e) if matches!(status_of(&e), Some(404 | 409 | 412)) => continue,
                Err(e) => return Err(store_error(OP, &e)),
            }
        }
        Err(R2Error::Store {
            op: OP,
            message: "the object kept changing under a conditional put".into(),
        })
    }

    pub(crate) fn delete_keys(&self, keys: &[&str]) -> Result<(), R2Error> {
        const OP: &str = "delete";
        for k in keys {
            self.limits.key(OP, k)?;
        }
        let unique: Vec<&str> = {
            let mut seen = HashSet::new();
            keys.iter().copied().filter(|k| seen.insert(*k)).collect()
        };
        if let [one] = unique.as_slice() {
            let req = self
                .store
                .client
                .delete_object()
                .bucket(&self.store.bucket)
                .key(self.name(one));
            return match self.run(OP, req.send())? {
                Ok(_) => Ok(()),
                Err(e) if status_of(&e) == Some(404) => Ok(()),
                Err(e) => Err(store_error(OP, &e)),
            };
        }
        let mut ids = Vec::with_capacity(unique.len());
        for k in unique {
            ids.push(
                ObjectIdentifier::builder()
                    .key(self.name(k))
                    .build()
                    .map_err(|e| R2Error::Store {
                        op: OP,
                        message: e.to_string(),
                    })?,
            );
        }
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| R2Error::Store {
                op: OP,
                message: e.to_string(),
            })?;
        let req = self
            .store
            .client
            .delete_objects()
            .bucket(&self.store.bucket)
            .delete(delete);
        let out = self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
        if let Some(err) = out.errors().first() {
            return Err(R2Error::Store {
                op: OP,
                message: format!(
                    "{}: {}",
                    err.key().unwrap_or_default(),
                    err.message().unwrap_or("not deleted")
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn list(&self, options: &R2ListOptions) -> Result<R2Objects, R2Error> {
        const OP: &str = "list";
        let limit = self.limits.list_limit(options.limit)?;
        let prefix = options.prefix.as_deref().unwrap_or("");
        let delimiter = options.delimiter.as_deref().filter(|d| !d.is_empty());
        let with_http = options.include.contains(&R2ListInclude::HttpMetadata);
        let with_custom = options.include.contains(&R2ListInclude::CustomMetadata);
        // Start after whichever of startAfter and the cursor is further on.
        let mut after = options.start_after.clone();
        if let Some(c) = &options.cursor {
            let c = decode_cursor(c)?;
            if after.as_ref().is_none_or(|a| c > *a) {
                after = Some(c);
            }
        }
        let mut req = self
            .store
            .client
            .list_objects_v2()
            .bucket(&self.store.bucket)
            .prefix(self.name(prefix))
            .max_keys(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(d) = delimiter {
            req = req.delimiter(d);
        }
        if let Some(a) = after.filter(|a| a.as_str() >= prefix) {
            req = req.start_after(self.name(&a));
        }
        let out = self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
        let strip = |name: &str| name.strip_prefix(&self.base).map(str::to_owned);
        let keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().and_then(strip))
            .collect();
        let delimited_prefixes: Vec<String> = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().and_then(strip))
            .collect();
        // Resume after the last entry; after a delimited prefix, past every
        // key in its group (no key sorts after U+10FFFF at that position).
        let cursor = if out.is_truncated() == Some(true) {
            let last_key = keys.last().cloned();
            let last_prefix = delimited_prefixes.last().map(|p| format!("{p}\u{10FFFF}"));
            last_key.max(last_prefix).map(|k| encode_cursor(&k))
        } else {
            None
        };
        let heads = self.head_many(OP, keys)?;
        let objects = heads
            .into_iter()
            .flatten()
            .map(|mut o| {
                if !with_http {
                    o.http_metadata = None;
                }
                if !with_custom {
                    o.custom_metadata = None;
                }
                o
            })
            .collect();
        Ok(R2Objects {
            objects,
            truncated: cursor.is_some(),
            cursor,
            delimited_prefixes,
        })
    }

    /// HEADs `keys`, [`HEAD_CONCURRENCY`] at a time, in order; a key
    /// deleted since it was listed is `None`.
    fn head_many(&self, op: Op, keys: Vec<String>) -> Result<Vec<Option<R2Object>>, R2Error> {
        use futures::StreamExt as _;
        let client = self.store.client.clone();
        let bucket = self.store.bucket.clone();
        let base = self.base.clone();
        let results = self.run(op, async move {
            futures::stream::iter(keys.into_iter().map(|key| {
                let req = client
                    .head_object()
                    .bucket(&bucket)
                    .key(format!("{base}{key}"));
                async move { (key, req.send().await) }
            }))
            .buffered(HEAD_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
        })?;
        let mut out = Vec::with_capacity(results.len());
        for (key, result) in results {
            match result {
                Ok(o) => out.push(Some(
                    to_head(
                        &key,
                        RawHead {
                            etag: o.e_tag(),
                            length: o.content_length(),
                            last_modified: o.last_modified(),
                            metadata: o.metadata(),
                            version_id: o.version_id(),
                            http: http_from_parts(
                                o.content_type(),
                                o.content_language(),
                                o.content_disposition(),
                                o.content_encoding(),
                                o.cache_control(),
                                o.expires_string(),
                            ),
                        },
                    )
                    .object,
                )),
                Err(e) if status_of(&e) == Some(404) => out.push(None),
                Err(e) => return Err(store_error(op, &e)),
            }
        }
        Ok(out)
    }

    pub(crate) fn create_multipart_upload(
        &self,
        key: &str,
        http: R2HttpMetadata,
        custom: BTreeMap<String, String>,
    ) -> Result<String, R2Error> {
        const OP: &str = "createMultipartUpload";
        self.limits.key(OP, key)?;
        self.limits.custom_metadata(OP, Some(&custom))?;
        let stored = Stored {
            version: crate::new_id(),
            // A multipart object's time is its upload's start, as on S3.
            uploaded: self.clock.now_ms(),
            etag: None,
            http: http.clone(),
            custom,
            checksums: R2Checksums::default(),
        };
        let mut req = self
            .store
            .client
            .create_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.name(key))
            .metadata(META_FIELD, stored.encode());
        req = with_http!(req, &http);
        let out = self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
        let s3_id = out.upload_id().ok_or_else(|| R2Error::Store {
            op: OP,
            message: "the store returned no upload id".into(),
        })?;
        Ok(self.upload_id_for(key, s3_id))
    }

    /// The upload id handed out: the store's, bound to the key by a hash,
    /// so an id used with another key is `NoSuchUpload` on every store
    /// (some S3 doubles do not tie uploads to keys).
    fn upload_id_for(&self, key: &str, s3_id: &str) -> String {
        let mut h = sha2::Sha256::new();
        for part in [self.base.as_str(), key, s3_id] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        format!("{s3_id}~{}", &hex::encode(h.finalize())[..16])
    }

    /// The store's id inside an upload id this bucket gave out for `key`.
    fn s3_upload_id<'a>(&self, op: Op, key: &str, upload_id: &'a str) -> Result<&'a str, R2Error> {
        match upload_id.rsplit_once('~') {
            Some((s3_id, _))
                if !s3_id.is_empty() && self.upload_id_for(key, s3_id) == upload_id =>
            {
                Ok(s3_id)
            }
            _ => Err(R2Error::NoSuchUpload { op }),
        }
    }

    fn upload_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        op: Op,
        e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> R2Error {
        match code_of(e).as_deref() {
            Some("NoSuchUpload") => R2Error::NoSuchUpload { op },
            Some("InvalidPart") => R2Error::InvalidPart { op },
            Some("EntityTooSmall") => R2Error::EntityTooSmall { op },
            _ if status_of(e) == Some(404) => R2Error::NoSuchUpload { op },
            _ => store_error(op, e),
        }
    }

    pub(crate) fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: &mut dyn Read,
    ) -> Result<R2UploadedPart, R2Error> {
        const OP: &str = "uploadPart";
        self.limits.part_number(part_number)?;
        self.limits.key(OP, key)?;
        let s3_id = self.s3_upload_id(OP, key, upload_id)?;
        let max = self.limits.max_upload_bytes.min(MAX_BUFFERED_PUT);
        let ReadBody { data, md5, .. } = read_body(OP, body, max, None)?;
        let req = self
            .store
            .client
            .upload_part()
            .bucket(&self.store.bucket)
            .key(self.name(key))
            .upload_id(s3_id)
            .part_number(i32::try_from(part_number).unwrap_or(i32::MAX))
            .content_md5(base64::engine::general_purpose::STANDARD.encode(&md5))
            .body(ByteStream::from(data));
        self.run(OP, req.send())?
            .map_err(|e| Self::upload_error(OP, &e))?;
        Ok(R2UploadedPart {
            part_number,
            etag: hex::encode(&md5),
        })
    }

    /// Every part of an upload, in part-number order.
    pub(crate) fn list_parts(
        &self,
        op: Op,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<R2PartInfo>, R2Error> {
        let s3_id = self.s3_upload_id(op, key, upload_id)?;
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut req = self
                .store
                .client
                .list_parts()
                .bucket(&self.store.bucket)
                .key(self.name(key))
                .upload_id(s3_id);
            if let Some(m) = &marker {
                req = req.part_number_marker(m);
            }
            let out = self
                .run(op, req.send())?
                .map_err(|e| Self::upload_error(op, &e))?;
            for p in out.parts() {
                parts.push(R2PartInfo {
                    part_number: u32::try_from(p.part_number().unwrap_or(0)).unwrap_or(0),
                    etag: unquote(p.e_tag().unwrap_or_default()),
                    size: u64::try_from(p.size().unwrap_or(0)).unwrap_or(0),
                });
            }
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(m)) if parts.len() <= self.limits.max_part_number as usize => {
                    marker = Some(m.to_owned());
                }
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// When the upload started (ms), from the store's listing of uploads.
    pub(crate) fn upload_created(&self, key: &str, upload_id: &str) -> Result<u64, R2Error> {
        let uploads = self.list_multipart_uploads(key, None, 1000)?;
        Ok(uploads
            .into_iter()
            .find(|u| u.key == key && u.upload_id == upload_id)
            .map(|u| u.created)
            .unwrap_or(0))
    }

    pub(crate) fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[R2UploadedPart],
    ) -> Result<R2Object, R2Error> {
        const OP: &str = "completeMultipartUpload";
        for p in parts {
            self.limits.part_number(p.part_number)?;
        }
        self.limits.key(OP, key)?;
        let uploaded = self.list_parts(OP, key, upload_id)?;
        let mut seen = HashSet::new();
        if !parts.iter().all(|p| seen.insert(p.part_number)) {
            return Err(R2Error::InternalError { op: OP });
        }
        let mut chosen: Vec<R2PartInfo> = Vec::with_capacity(parts.len());
        for p in parts {
            match uploaded
                .iter()
                .find(|u| u.part_number == p.part_number && u.etag == p.etag)
            {
                Some(u) => chosen.push(u.clone()),
                None => return Err(R2Error::InvalidPart { op: OP }),
            }
        }
        let given: Vec<(u32, u64)> = chosen.iter().map(|p| (p.part_number, p.size)).collect();
        validate::completed_parts(&given, &self.limits, OP)?;
        chosen.sort_by_key(|p| p.part_number);
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                chosen
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(i32::try_from(p.part_number).unwrap_or(i32::MAX))
                            .e_tag(format!("\"{}\"", p.etag))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let req = self
            .store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.name(key))
            .upload_id(self.s3_upload_id(OP, key, upload_id)?)
            .multipart_upload(completed);
        self.run(OP, req.send())?
            .map_err(|e| Self::upload_error(OP, &e))?;
        self.mark_finished(OP, upload_id);
        let head = self
            .head_raw(OP, key)?
            .ok_or(R2Error::InternalError { op: OP })?;
        Ok(head.object)
    }

    /// Writes `object` (read from another backend) with its R2 fields as
    /// they are: version, upload time, etag, checksums, HTTP and custom
    /// metadata. Bodies up to [`IMPORT_PART_BYTES`] are one `PutObject`,
    /// larger ones a multipart upload of parts that size, so at most one
    /// part is in memory. Unconditional: it replaces any object of the key.
    pub(crate) fn import(&self, object: &R2Object, body: &mut dyn Read) -> Result<(), R2Error> {
        const OP: &str = "import";
        self.limits.key(OP, &object.key)?;
        let http = object.http_metadata.clone().unwrap_or_default();
        let stored = Stored {
            version: object.version.clone(),
            uploaded: object.uploaded,
            etag: Some(object.etag.clone()),
            http: http.clone(),
            custom: object.custom_metadata.clone().unwrap_or_default(),
            checksums: object.checksums.clone(),
        };
        let short = |n: u64| R2Error::Store {
            op: OP,
            message: format!(
                "{}: the body had {n} bytes, its metadata says {}",
                object.key, object.size
            ),
        };
        if object.size <= IMPORT_PART_BYTES {
            let ReadBody { data, md5, .. } = read_body(OP, body, IMPORT_PART_BYTES, None)?;
            if data.len() as u64 != object.size {
                return Err(short(data.len() as u64));
            }
            let mut req = self
                .store
                .client
                .put_object()
                .bucket(&self.store.bucket)
                .key(self.name(&object.key))
                .content_md5(base64::engine::general_purpose::STANDARD.encode(&md5))
                .metadata(META_FIELD, stored.encode())
                .body(ByteStream::from(data));
            req = with_http!(req, &http);
            self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
            return Ok(());
        }
        let mut req = self
            .store
            .client
            .create_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.name(&object.key))
            .metadata(META_FIELD, stored.encode());
        req = with_http!(req, &http);
        let out = self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
        let s3_id = out
            .upload_id()
            .ok_or_else(|| R2Error::Store {
                op: OP,
                message: "the store returned no upload id".into(),
            })?
            .to_owned();
        let result = self.import_parts(object, &s3_id, body).and_then(|total| {
            if total == object.size {
                Ok(())
            } else {
                Err(short(total))
            }
        });
        if result.is_err() {
            // Best effort: an upload left behind costs space, not data.
            let req = self
                .store
                .client
                .abort_multipart_upload()
                .bucket(&self.store.bucket)
                .key(self.name(&object.key))
                .upload_id(&s3_id);
            let _ = self.run(OP, req.send());
            return result;
        }
        Ok(())
    }

    /// The parts of [`import`](Self::import)'s upload, then its completion;
    /// returns the bytes read.
    fn import_parts(
        &self,
        object: &R2Object,
        s3_id: &str,
        body: &mut dyn Read,
    ) -> Result<u64, R2Error> {
        const OP: &str = "import";
        let mut parts = Vec::new();
        let mut total = 0u64;
        loop {
            let mut data = Vec::new();
            (&mut *body)
                .take(IMPORT_PART_BYTES)
                .read_to_end(&mut data)
                .map_err(R2Error::io(OP))?;
            if data.is_empty() && !parts.is_empty() {
                break;
            }
            total += data.len() as u64;
            let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
            let md5 = md5::Md5::digest(&data);
            let last = (data.len() as u64) < IMPORT_PART_BYTES;
            let req = self
                .store
                .client
                .upload_part()
                .bucket(&self.store.bucket)
                .key(self.name(&object.key))
                .upload_id(s3_id)
                .part_number(number)
                .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
                .body(ByteStream::from(data));
            self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .e_tag(format!("\"{}\"", hex::encode(md5)))
                    .build(),
            );
            if last {
                break;
            }
        }
        let req = self
            .store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.name(&object.key))
            .upload_id(s3_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
        Ok(total)
    }

    fn marker(&self, upload_id: &str) -> String {
        format!(
            "{}{}",
            self.finished,
            hex::encode(sha2::Sha256::digest(upload_id.as_bytes()))
        )
    }

    /// Records that `upload_id` finished. Best effort: without the marker
    /// a later abort of it answers `NoSuchUpload`.
    fn mark_finished(&self, op: Op, upload_id: &str) {
        let req = self
            .store
            .client
            .put_object()
            .bucket(&self.store.bucket)
            .key(self.marker(upload_id))
            .body(ByteStream::from_static(b""));
        match self.run(op, req.send()) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %store_error(op, &e), "recording a finished upload")
            }
            Err(e) => tracing::warn!(error = %e, "recording a finished upload"),
        }
    }

    fn was_finished(&self, op: Op, upload_id: &str) -> Result<bool, R2Error> {
        let req = self
            .store
            .client
            .head_object()
            .bucket(&self.store.bucket)
            .key(self.marker(upload_id));
        match self.run(op, req.send())? {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(store_error(op, &e)),
        }
    }

    pub(crate) fn abort(&self, key: &str, upload_id: &str) -> Result<(), R2Error> {
        const OP: &str = "abortMultipartUpload";
        self.limits.key(OP, key)?;
        let s3_id = self.s3_upload_id(OP, key, upload_id)?;
        let req = self
            .store
            .client
            .abort_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.name(key))
            .upload_id(s3_id);
        match self.run(OP, req.send())? {
            Ok(_) => {
                self.mark_finished(OP, upload_id);
                Ok(())
            }
            Err(e) => match Self::upload_error(OP, &e) {
                // Aborting a finished upload does nothing, as on R2.
                R2Error::NoSuchUpload { .. } if self.was_finished(OP, upload_id)? => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Unfinished uploads under `prefix`, ordered by key then upload id,
    /// after `after`. Stores order uploads of one key differently (AWS by
    /// start time) and some doubles ignore the markers, so the store's
    /// pages are gathered (at most [`MAX_UPLOADS_SCANNED`]) and ordered
    /// here.
    pub(crate) fn list_multipart_uploads(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<R2UploadInfo>, R2Error> {
        const OP: &str = "listMultipartUploads";
        let mut all = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut req = self
                .store
                .client
                .list_multipart_uploads()
                .bucket(&self.store.bucket)
                .prefix(self.name(prefix));
            if let Some((k, id)) = &markers {
                req = req.key_marker(k).upload_id_marker(id);
            }
            let out = self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
            for u in out.uploads() {
                let (Some(key), Some(s3_id)) = (
                    u.key().and_then(|k| k.strip_prefix(&self.base)),
                    u.upload_id(),
                ) else {
                    continue;
                };
                if key.starts_with(prefix) {
                    all.push(R2UploadInfo {
                        upload_id: self.upload_id_for(key, s3_id),
                        key: key.to_owned(),
                        created: millis(u.initiated()),
                    });
                }
            }
            match (
                out.is_truncated(),
                out.next_key_marker(),
                out.next_upload_id_marker(),
            ) {
                (Some(true), Some(k), Some(id)) if all.len() < MAX_UPLOADS_SCANNED => {
                    markers = Some((k.to_owned(), id.to_owned()));
                }
                _ => break,
            }
        }
        all.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        all.dedup_by(|a, b| a.key == b.key && a.upload_id == b.upload_id);
        if let Some((k, id)) = after {
            all.retain(|u| {
                if id.is_empty() {
                    u.key.as_str() > k
                } else {
                    (u.key.as_str(), u.upload_id.as_str()) > (k, id)
                }
            });
        }
        all.truncate(limit);
        Ok(all)
    }

    /// Aborts uploads started longer ago than the limit, by the store's
    /// record of when they started.
    pub(crate) fn abort_expired_uploads(&self) -> Result<usize, R2Error> {
        let max_age = u64::try_from(self.limits.abort_multipart_uploads_after.as_millis())
            .unwrap_or(u64::MAX);
        let Some(created_by) = self.clock.now_ms().checked_sub(max_age) else {
            return Ok(0);
        };
        let mut aborted = 0;
        let mut after: Option<(String, String)> = None;
        loop {
            let page = self.list_multipart_uploads(
                "",
                after.as_ref().map(|(k, i)| (k.as_str(), i.as_str())),
                1000,
            )?;
            let Some(last) = page.last() else { break };
            after = Some((last.key.clone(), last.upload_id.clone()));
            let full = page.len() == 1000;
            for u in page.iter().filter(|u| u.created <= created_by) {
                match self.abort(&u.key, &u.upload_id) {
                    Ok(()) | Err(R2Error::NoSuchUpload { .. }) => aborted += 1,
                    Err(e) => return Err(e),
                }
            }
            if !full {
                break;
            }
        }
        self.forget_finished_before(created_by)?;
        Ok(aborted)
    }

    /// Drops the markers of uploads that finished before `ms`, so they
    /// do not pile up: R2 keeps a finished upload no longer than that.
    fn forget_finished_before(&self, ms: u64) -> Result<(), R2Error> {
        const OP: &str = "abortMultipartUpload";
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .store
                .client
                .list_objects_v2()
                .bucket(&self.store.bucket)
                .prefix(&self.finished);
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            let out = self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
            let old: Vec<String> = out
                .contents()
                .iter()
                .filter(|o| millis(o.last_modified()) < ms)
                .filter_map(|o| o.key().map(str::to_owned))
                .collect();
            for key in old {
                let req = self
                    .store
                    .client
                    .delete_object()
                    .bucket(&self.store.bucket)
                    .key(key);
                self.run(OP, req.send())?.map_err(|e| store_error(OP, &e))?;
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => return Ok(()),
            }
        }
    }
}

fn expected_digest(exp: &crate::R2ExpectedChecksum) -> Vec<u8> {
    exp.digest.clone()
}

fn encode_cursor(token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<String, R2Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| R2Error::invalid(format!("list: invalid cursor {cursor:?}")))
}
