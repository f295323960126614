//! `env.<R2 binding>`: an R2 bucket over [`hearth_r2::R2Bucket`].
//!
//! The JS half (`r2.js`) builds Workers' `R2Object`,
//! `R2ObjectBody`, `R2Objects` and `R2MultipartUpload`, checks ranges with
//! the runtime's messages, and turns `Headers`, `Date`s, `Blob`s and streams
//! into plain values for the natives here. A body read by `get` stays on
//! disk: its JS object holds an [`R2Body`] and reads it chunk by chunk as the
//! worker reads the stream; dropping the object (or cancelling the stream)
//! releases the files. A `put` of a `ReadableStream` is written to disk as
//! the worker's stream yields, by a thread per put fed through a bounded
//! channel ([`PutWriter`]); other values written (`put`, `uploadPart`) are
//! in memory first, so they count against the isolate's heap limit. Calls
//! run synchronously on the isolate thread.

mod kind;

pub use kind::{R2Kind, open_bucket};

use std::collections::BTreeMap;
use std::io::Read;

use hearth_core::ErrorClass;
use hearth_r2::{
    R2Body, R2Bucket, R2Conditional, R2Error, R2ExpectedChecksum, R2GetOptions, R2GetResult,
    R2HashAlgorithm, R2HttpMetadata, R2ListInclude, R2ListOptions, R2MultipartOptions, R2Object,
    R2PutOptions, R2Range, R2UploadedPart,
};
use rquickjs::class::Trace;
use rquickjs::{Array, Class, Ctx, JsLifetime, Object, Value};
use serde_json::json;

use super::BindingAdapter;
use super::support::{array_buffer, bytes_of, install_factory, raise, throw};

const R2_JS: &str = include_str!("r2.js");

/// Largest chunk a body stream hands to JS in one read.
pub const BODY_CHUNK_BYTES: usize = 64 * 1024;

/// Exposes one R2 bucket as `env[name]`.
pub struct R2Adapter {
    name: String,
    bucket: R2Bucket,
    backend: String,
}

impl R2Adapter {
    pub fn new(binding_name: impl Into<String>, bucket: R2Bucket) -> Self {
        Self {
            name: binding_name.into(),
            bucket,
            backend: "fs+sqlite".into(),
        }
    }

    /// Sets what the health report says about where the data lives, e.g.
    /// `fs:/data/r2/BUCKET`.
    pub fn with_backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = backend.into();
        self
    }

    pub fn bucket(&self) -> &R2Bucket {
        &self.bucket
    }
}

impl std::fmt::Debug for R2Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("R2Adapter")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .finish()
    }
}

/// An object body not yet read to its end.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "R2BodyHandle")]
pub(crate) struct BodyHandle {
    #[qjs(skip_trace)]
    body: Option<R2Body>,
}

/// How `r2.js` reads a body: chunk by chunk as its stream is pulled, or all
/// at once when the body was never touched.
#[rquickjs::methods]
impl BodyHandle {
    /// read() -> ArrayBuffer (up to BODY_CHUNK_BYTES) | null at the end
    fn read<'js>(&mut self, ctx: Ctx<'js>) -> rquickjs::Result<Value<'js>> {
        let Some(body) = self.body.as_mut() else {
            return Ok(Value::new_null(ctx));
        };
        let mut buf = vec![0u8; BODY_CHUNK_BYTES];
        let n = body.read(&mut buf).map_err(|e| io_error(&ctx, "get", e))?;
        if n == 0 {
            self.body = None;
            return Ok(Value::new_null(ctx));
        }
        buf.truncate(n);
        array_buffer(&ctx, buf)
    }

    /// readAll() -> ArrayBuffer of the rest
    #[qjs(rename = "readAll")]
    fn read_all<'js>(&mut self, ctx: Ctx<'js>) -> rquickjs::Result<Value<'js>> {
        let bytes = match self.body.take() {
            Some(b) => b.bytes().map_err(|e| io_error(&ctx, "get", e))?,
            None => Vec::new(),
        };
        array_buffer(&ctx, bytes)
    }

    /// Releases the files at once rather than when the object is collected.
    fn cancel(&mut self) {
        self.body = None;
    }
}

fn io_error(ctx: &Ctx<'_>, op: &'static str, e: std::io::Error) -> rquickjs::Error {
    raise(ctx, R2Error::Io { op, source: e })
}

/// An object as JSON for the JS half; times in ms since the epoch.
fn object_json(o: &R2Object) -> String {
    json!({
        "key": o.key,
        "version": o.version,
        "size": o.size,
        "etag": o.etag,
        "httpEtag": o.http_etag(),
        "uploaded": o.uploaded,
        "httpMetadata": o.http_metadata,
        "customMetadata": o.custom_metadata,
        "range": o.range.map(|r| json!({"offset": r.offset, "length": r.length})),
        "checksums": o.checksums,
        "storageClass": o.storage_class,
    })
    .to_string()
}

fn opt<'js, T: rquickjs::FromJs<'js>>(obj: &Object<'js>, key: &str) -> rquickjs::Result<Option<T>> {
    let v: Value<'js> = obj.get(key)?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    obj.get(key).map(Some)
}

/// A millisecond time as the JS half passes it (already a number).
fn ms(v: Option<f64>) -> Option<u64> {
    v.filter(|n| n.is_finite()).map(|n| n.max(0.0) as u64)
}

/// `onlyIf`, normalised by the JS half to `{headers: {...}}` or the object
/// form with dates as ms.
fn conditional(ctx: &Ctx<'_>, spec: Option<Object<'_>>) -> rquickjs::Result<Option<R2Conditional>> {
    let Some(spec) = spec else { return Ok(None) };
    if let Some(h) = opt::<Object>(&spec, "headers")? {
        let get = |k: &str| opt::<String>(&h, k);
        let c = R2Conditional::from_headers(
            get("if-match")?.as_deref(),
            get("if-none-match")?.as_deref(),
            get("if-modified-since")?.as_deref(),
            get("if-unmodified-since")?.as_deref(),
        )
        .map_err(|e| raise(ctx, e))?;
        return Ok(Some(c));
    }
    let mut c = R2Conditional::new();
    if let Some(e) = opt::<String>(&spec, "etagMatches")? {
        c = c.etag_matches(&e).map_err(|e| raise(ctx, e))?;
    }
    if let Some(e) = opt::<String>(&spec, "etagDoesNotMatch")? {
        c = c.etag_does_not_match(&e).map_err(|e| raise(ctx, e))?;
    }
    c.uploaded_before = ms(opt(&spec, "uploadedBefore")?);
    c.uploaded_after = ms(opt(&spec, "uploadedAfter")?);
    c.seconds_granularity = opt(&spec, "secondsGranularity")?.unwrap_or(false);
    Ok(Some(c))
}

/// A `Range` header value (`bytes=a-b`, `bytes=a-`, `bytes=-n`). Anything
/// else, including several ranges, cannot be served.
fn range_header(value: &str) -> Result<R2Range, R2Error> {
    let bad = || R2Error::InvalidRange { op: "get" };
    let v = value.trim();
    let spec = v
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("bytes="))
        .map(|_| v[6..].trim())
        .ok_or_else(bad)?;
    if spec.contains(',') {
        return Err(bad());
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => Ok(R2Range::Suffix { suffix: num(b)? }),
        (false, true) => Ok(R2Range::Offset {
            offset: num(a)?,
            length: None,
        }),
        (false, false) => {
            let (start, end) = (num(a)?, num(b)?);
            if end < start {
                return Err(bad());
            }
            Ok(R2Range::Offset {
                offset: start,
                length: Some(end - start + 1),
            })
        }
        (true, true) => Err(bad()),
    }
}

/// `range`, normalised by the JS half (which checked the numbers) to
/// `{offset, length, suffix}` or `{header}`.
fn range(ctx: &Ctx<'_>, spec: Option<Object<'_>>) -> rquickjs::Result<Option<R2Range>> {
    let Some(spec) = spec else { return Ok(None) };
    if let Some(h) = opt::<String>(&spec, "header")? {
        return range_header(&h).map(Some).map_err(|e| raise(ctx, e));
    }
    let n = |k: &str| -> rquickjs::Result<Option<u64>> {
        Ok(opt::<f64>(&spec, k)?.map(|v| v.max(0.0) as u64))
    };
    Ok(match (n("offset")?, n("length")?, n("suffix")?) {
        (_, _, Some(suffix)) => Some(R2Range::Suffix { suffix }),
        (Some(offset), length, None) => Some(R2Range::Offset { offset, length }),
        (None, Some(length), None) => Some(R2Range::Length { length }),
        (None, None, None) => None,
    })
}

/// `httpMetadata`: `{headers: [[name, value], ...]}` or the object form
/// with `cacheExpiry` in ms.
fn http_metadata(spec: Option<Object<'_>>) -> rquickjs::Result<Option<R2HttpMetadata>> {
    let Some(spec) = spec else { return Ok(None) };
    if let Some(pairs) = opt::<Vec<Vec<String>>>(&spec, "headers")? {
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .filter_map(|p| Some((p.first()?.as_str(), p.get(1)?.as_str())))
            .collect();
        return Ok(Some(R2HttpMetadata::from_headers(pairs)));
    }
    Ok(Some(R2HttpMetadata {
        content_type: opt(&spec, "contentType")?,
        content_language: opt(&spec, "contentLanguage")?,
        content_disposition: opt(&spec, "contentDisposition")?,
        content_encoding: opt(&spec, "contentEncoding")?,
        cache_control: opt(&spec, "cacheControl")?,
        cache_expiry: ms(opt(&spec, "cacheExpiry")?),
    }))
}

fn custom_metadata(spec: Option<Object<'_>>) -> rquickjs::Result<Option<BTreeMap<String, String>>> {
    let Some(spec) = spec else { return Ok(None) };
    let mut out = BTreeMap::new();
    for key in spec.keys::<String>() {
        let key = key?;
        let value: String = spec.get(key.as_str())?;
        out.insert(key, value);
    }
    Ok(Some(out))
}

/// `{algorithm: "md5" | "sha1" | ..., value: hex string | Uint8Array}`.
fn checksum(
    ctx: &Ctx<'_>,
    spec: Option<Object<'_>>,
) -> rquickjs::Result<Option<R2ExpectedChecksum>> {
    let Some(spec) = spec else { return Ok(None) };
    let algorithm: String = spec.get("algorithm")?;
    let algorithm = match algorithm.as_str() {
        "md5" => R2HashAlgorithm::Md5,
        "sha1" => R2HashAlgorithm::Sha1,
        "sha256" => R2HashAlgorithm::Sha256,
        "sha384" => R2HashAlgorithm::Sha384,
        _ => R2HashAlgorithm::Sha512,
    };
    let value: Value = spec.get("value")?;
    let expected = match value.as_string() {
        Some(hex) => R2ExpectedChecksum::from_hex(algorithm, &hex.to_string()?),
        None => {
            let bytes = bytes_of(&value)?.unwrap_or_default();
            R2ExpectedChecksum::from_bytes(algorithm, &bytes)
        }
    };
    expected.map(Some).map_err(|e| raise(ctx, e))
}

fn put_options(ctx: &Ctx<'_>, options: &Object<'_>) -> rquickjs::Result<R2PutOptions> {
    Ok(R2PutOptions {
        only_if: conditional(ctx, opt(options, "onlyIf")?)?,
        http_metadata: http_metadata(opt(options, "httpMetadata")?)?,
        custom_metadata: custom_metadata(opt(options, "customMetadata")?)?,
        checksum: checksum(ctx, opt(options, "checksum")?)?,
        verified_checksums: None,
    })
}

/// Chunks of a streamed `put` that may wait for the disk: a worker that
/// produces faster than the disk takes waits in `write`.
const PUT_STREAM_CHUNKS: usize = 4;

/// What the worker's stream hands the writing thread.
enum PutChunk {
    Bytes(Vec<u8>),
    End,
    Failed(String),
}

/// The writing thread's view of a streamed value. A channel closed without
/// [`PutChunk::End`] (the writer was dropped) fails the put, so a value cut
/// short is never stored as if whole.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<PutChunk>,
    chunk: Vec<u8>,
    at: usize,
    /// Past [`PutChunk::End`]: every later read is the end again.
    ended: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(PutChunk::Bytes(b)) => {
                    self.chunk = b;
                    self.at = 0;
                }
                Ok(PutChunk::End) => self.ended = true,
                Ok(PutChunk::Failed(m)) => return Err(std::io::Error::other(m)),
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the value's stream was abandoned before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

type PutOutcome = Result<Option<R2Object>, R2Error>;

/// A `put` whose value is a `ReadableStream`: the bucket writes it to disk
/// on its own thread as the worker feeds it chunks, so the value is never
/// whole in memory. Dropped before `finish`, the put fails and leaves the
/// bucket as it was.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "R2PutWriter")]
pub(crate) struct PutWriter {
    #[qjs(skip_trace)]
    tx: Option<std::sync::mpsc::SyncSender<PutChunk>>,
    #[qjs(skip_trace)]
    thread: Option<std::thread::JoinHandle<PutOutcome>>,
}

#[rquickjs::methods]
impl PutWriter {
    /// write(bytes) -> false once the put has ended without the rest (a
    /// failed condition or an error): stop and call `finish` for why.
    fn write<'js>(&mut self, ctx: Ctx<'js>, value: Value<'js>) -> rquickjs::Result<bool> {
        let bytes = body_bytes(&ctx, &value)?;
        let Some(tx) = &self.tx else { return Ok(false) };
        if bytes.is_empty() {
            return Ok(true);
        }
        Ok(tx.send(PutChunk::Bytes(bytes)).is_ok())
    }

    /// Fails the put with `message` (the stream's error).
    fn abort(&mut self, message: String) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(PutChunk::Failed(message));
        }
        // The thread removes its files and ends on its own.
        self.thread = None;
    }

    /// finish() -> objectJson | null (condition failed); waits for the
    /// value to be durable, as `put` does.
    fn finish<'js>(&mut self, ctx: Ctx<'js>) -> rquickjs::Result<Option<String>> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(PutChunk::End);
        }
        let Some(thread) = self.thread.take() else {
            return Err(throw(
                &ctx,
                ErrorClass::TypeError,
                "This R2 put has already ended.",
            ));
        };
        let outcome = thread.join().unwrap_or_else(|_| {
            Err(R2Error::Io {
                op: "put",
                source: std::io::Error::other("the writing thread failed"),
            })
        });
        let stored = outcome.map_err(|e| raise(&ctx, e))?;
        Ok(stored.as_ref().map(object_json))
    }
}

fn body_bytes(ctx: &Ctx<'_>, value: &Value<'_>) -> rquickjs::Result<Vec<u8>> {
    if value.is_null() || value.is_undefined() {
        return Ok(Vec::new());
    }
    bytes_of(value)?.ok_or_else(|| {
        throw(
            ctx,
            ErrorClass::TypeError,
            "R2 value must be a ReadableStream, ArrayBuffer, ArrayBufferView, string, Blob or null.",
        )
    })
}

impl BindingAdapter for R2Adapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "r2_bucket"
    }

    fn backend(&self) -> String {
        self.backend.clone()
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Class::instance(
            ctx.clone(),
            R2Natives {
                bucket: self.bucket.clone(),
            },
        )?;
        install_factory(ctx, env, &self.name, "r2.js", R2_JS, native.into_inner())
    }
}

/// The natives `r2.js` calls: the bucket's object operations, then its
/// multipart uploads. Object bodies are read through their [`BodyHandle`].
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "R2Natives")]
pub(crate) struct R2Natives {
    #[qjs(skip_trace)]
    bucket: R2Bucket,
}

#[rquickjs::methods]
impl R2Natives {
    fn head(&self, ctx: Ctx<'_>, key: String) -> rquickjs::Result<Option<String>> {
        let found = self.bucket.head(&key).map_err(|e| raise(&ctx, e))?;
        Ok(found.as_ref().map(object_json))
    }

    /// get(key, onlyIf, range) -> null | [objectJson, bodyHandle | null]
    fn get<'js>(
        &self,
        ctx: Ctx<'js>,
        key: String,
        only_if: Option<Object<'js>>,
        range_spec: Option<Object<'js>>,
    ) -> rquickjs::Result<Value<'js>> {
        let options = R2GetOptions {
            only_if: conditional(&ctx, only_if)?,
            range: range(&ctx, range_spec)?,
        };
        let found = self
            .bucket
            .get(&key, &options)
            .map_err(|e| raise(&ctx, e))?;
        let out = Array::new(ctx.clone())?;
        match found {
            None => return Ok(Value::new_null(ctx)),
            Some(R2GetResult::PreconditionFailed(object)) => {
                out.set(0, object_json(&object))?;
                out.set(1, Value::new_null(ctx.clone()))?;
            }
            Some(R2GetResult::Body(b)) => {
                out.set(0, object_json(&b.object))?;
                let handle = Class::instance(ctx.clone(), BodyHandle { body: Some(b.body) })?;
                out.set(1, handle)?;
            }
        }
        Ok(out.into_value())
    }

    /// put(key, bytes, options) -> objectJson | null (condition failed)
    fn put<'js>(
        &self,
        ctx: Ctx<'js>,
        key: String,
        value: Value<'js>,
        options: Object<'js>,
    ) -> rquickjs::Result<Option<String>> {
        let bytes = body_bytes(&ctx, &value)?;
        let options = put_options(&ctx, &options)?;
        let stored = self
            .bucket
            .put(&key, bytes.as_slice(), &options)
            .map_err(|e| raise(&ctx, e))?;
        Ok(stored.as_ref().map(object_json))
    }

    /// putStream(key, options) -> PutWriter, for a value that is a stream.
    #[qjs(rename = "putStream")]
    fn put_stream<'js>(
        &self,
        ctx: Ctx<'js>,
        key: String,
        options: Object<'js>,
    ) -> rquickjs::Result<Class<'js, PutWriter>> {
        let options = put_options(&ctx, &options)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(PUT_STREAM_CHUNKS);
        let bucket = self.bucket.clone();
        let reader = ChunkReader {
            rx,
            chunk: Vec::new(),
            at: 0,
            ended: false,
        };
        let thread = std::thread::Builder::new()
            .name("r2-put".into())
            .spawn(move || bucket.put(&key, reader, &options))
            .map_err(|e| io_error(&ctx, "put", e))?;
        Class::instance(
            ctx.clone(),
            PutWriter {
                tx: Some(tx),
                thread: Some(thread),
            },
        )
    }

    /// delete(key | [keys])
    fn delete<'js>(&self, ctx: Ctx<'js>, keys: Value<'js>) -> rquickjs::Result<()> {
        let result = match keys.as_string() {
            Some(k) => self.bucket.delete(&k.to_string()?),
            None => {
                let list: Vec<String> = rquickjs::FromJs::from_js(&ctx, keys)?;
                self.bucket.delete_keys(&list)
            }
        };
        result.map_err(|e| raise(&ctx, e))
    }

    /// list(options) -> JSON {objects: [objectJson...], truncated, cursor?, delimitedPrefixes}
    fn list<'js>(&self, ctx: Ctx<'js>, options: Object<'js>) -> rquickjs::Result<String> {
        let limit = opt::<f64>(&options, "limit")?.map(|n| {
            if n.is_finite() && n >= 1.0 {
                n.trunc() as usize
            } else {
                0
            }
        });
        let mut include = Vec::new();
        for name in opt::<Vec<String>>(&options, "include")?.unwrap_or_default() {
            include.push(name.parse::<R2ListInclude>().map_err(|e| raise(&ctx, e))?);
        }
        let list_options = R2ListOptions {
            limit,
            prefix: opt(&options, "prefix")?,
            cursor: opt(&options, "cursor")?,
            delimiter: opt(&options, "delimiter")?,
            start_after: opt(&options, "startAfter")?,
            include,
        };
        let page = self
            .bucket
            .list(&list_options)
            .map_err(|e| raise(&ctx, e))?;
        let objects: Vec<String> = page.objects.iter().map(object_json).collect();
        Ok(json!({
            "objects": objects,
            "truncated": page.truncated,
            "cursor": page.cursor,
            "delimitedPrefixes": page.delimited_prefixes,
        })
        .to_string())
    }

    /// createMultipartUpload(key, options) -> uploadId
    #[qjs(rename = "createMultipartUpload")]
    fn create_multipart_upload<'js>(
        &self,
        ctx: Ctx<'js>,
        key: String,
        options: Object<'js>,
    ) -> rquickjs::Result<String> {
        let options = R2MultipartOptions {
            http_metadata: http_metadata(opt(&options, "httpMetadata")?)?,
            custom_metadata: custom_metadata(opt(&options, "customMetadata")?)?,
        };
        let upload = self
            .bucket
            .create_multipart_upload(&key, &options)
            .map_err(|e| raise(&ctx, e))?;
        Ok(upload.upload_id().to_string())
    }

    /// uploadPart(key, uploadId, partNumber, bytes) -> etag
    #[qjs(rename = "uploadPart")]
    fn upload_part<'js>(
        &self,
        ctx: Ctx<'js>,
        key: String,
        upload_id: String,
        part_number: f64,
        value: Value<'js>,
    ) -> rquickjs::Result<String> {
        let bytes = body_bytes(&ctx, &value)?;
        let part_number = if part_number.is_finite() && part_number >= 0.0 {
            part_number.min(f64::from(u32::MAX)) as u32
        } else {
            0
        };
        let part = self
            .bucket
            .resume_multipart_upload(&key, &upload_id)
            .upload_part(part_number, bytes.as_slice())
            .map_err(|e| raise(&ctx, e))?;
        Ok(part.etag)
    }

    /// complete(key, uploadId, [[partNumber, etag], ...]) -> objectJson
    fn complete<'js>(
        &self,
        ctx: Ctx<'js>,
        key: String,
        upload_id: String,
        parts: Vec<Array<'js>>,
    ) -> rquickjs::Result<String> {
        let mut list = Vec::with_capacity(parts.len());
        for p in parts {
            let n: f64 = p.get(0)?;
            list.push(R2UploadedPart {
                part_number: if n.is_finite() && n >= 0.0 {
                    n as u32
                } else {
                    0
                },
                etag: p.get(1)?,
            });
        }
        let object = self
            .bucket
            .resume_multipart_upload(&key, &upload_id)
            .complete(&list)
            .map_err(|e| raise(&ctx, e))?;
        Ok(object_json(&object))
    }

    fn abort(&self, ctx: Ctx<'_>, key: String, upload_id: String) -> rquickjs::Result<()> {
        self.bucket
            .resume_multipart_upload(&key, &upload_id)
            .abort()
            .map_err(|e| raise(&ctx, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_parse_like_http() {
        assert_eq!(
            range_header("bytes=0-9").unwrap(),
            R2Range::Offset {
                offset: 0,
                length: Some(10)
            }
        );
        assert_eq!(
            range_header("Bytes=5-").unwrap(),
            R2Range::Offset {
                offset: 5,
                length: None
            }
        );
        assert_eq!(
            range_header("bytes=-3").unwrap(),
            R2Range::Suffix { suffix: 3 }
        );
        for bad in [
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=5-2",
            "bytes=-",
            "bytes=a-b",
            "",
        ] {
            assert!(
                matches!(range_header(bad), Err(R2Error::InvalidRange { .. })),
                "{bad}"
            );
        }
    }
}
