//! The S3 operations, over the R2 contract.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use http::{HeaderValue, Method, Response, StatusCode};
use hyper::body::Incoming;

use hearth_r2::{
    R2Bucket, R2Checksums, R2Conditional, R2GetOptions, R2GetResult, R2HttpMetadata, R2ListOptions,
    R2MultipartOptions, R2Object, R2PutOptions, R2Range, R2UploadedPart, format_http_date,
};

use crate::body::{
    self, AwsChunkedReader, BodyChecks, ChannelReader, CheckedReader, ChecksumAlgorithm,
    ChunkSigning, ExpectedChecksum,
};
use crate::error::S3Error;
use crate::server::{Auth, Body, Payload, Req, State, empty, xml_response};
use crate::time::iso8601;
use crate::xml::{self, Writer};

type Res = Result<Response<Body>, S3Error>;

/// Largest single PUT (S3's and R2's limit is 5 GiB; R2 stores at most
/// 5 GiB less 5 MiB in one request).
const MAX_SINGLE_PUT: u64 = hearth_r2::MAX_UPLOAD_BYTES;

pub(crate) async fn dispatch(state: &State, req: &Req, auth: &Auth, body: Incoming) -> Res {
    let Some(bucket) = req.bucket.clone() else {
        return match req.method {
            Method::GET => list_buckets(state, auth),
            _ => Err(S3Error::method_not_allowed(
                "The specified method is not allowed against this resource.",
            )),
        };
    };
    let m = &req.method;
    let Some(key) = req.key.clone() else {
        return bucket_op(state, req, auth, &bucket, body).await;
    };
    let write = !matches!(*m, Method::GET | Method::HEAD);
    auth.check(Some(&bucket), write)?;
    let b = state.buckets.get(&bucket)?;
    let upload_id = req.param("uploadId").map(str::to_string);
    match (m.clone(), upload_id) {
        (Method::PUT, Some(id)) => upload_part(state, req, auth, &b, &key, &id, body).await,
        (Method::PUT, None) if req.header("x-amz-copy-source").is_some() => {
            copy_object(state, req, auth, &b, &key).await
        }
        (Method::PUT, None) => put_object(req, auth, &b, &key, body).await,
        (Method::GET, Some(id)) => list_parts(req, &bucket, &b, &key, &id),
        (Method::GET | Method::HEAD, None) => get_object(req, &b, &key).await,
        (Method::DELETE, Some(id)) => {
            blocking(move || {
                b.resume_multipart_upload(&key, &id).abort()?;
                Ok(no_content())
            })
            .await
        }
        (Method::DELETE, None) => {
            blocking(move || {
                b.delete(&key)?;
                Ok(no_content())
            })
            .await
        }
        (Method::POST, None) if req.has_param("uploads") => {
            create_multipart(req, &bucket, &b, &key).await
        }
        (Method::POST, Some(id)) => {
            complete_multipart(req, auth, &bucket, &b, &key, &id, body).await
        }
        _ => Err(S3Error::not_implemented(format!(
            "{} on an object with these parameters is not implemented",
            req.method
        ))),
    }
}

async fn bucket_op(state: &State, req: &Req, auth: &Auth, bucket: &str, body: Incoming) -> Res {
    let write = !matches!(req.method, Method::GET | Method::HEAD);
    auth.check(Some(bucket), write)?;
    match req.method {
        Method::PUT if req.has_param("cors") => {
            auth.check_admin()?;
            state.buckets.get(bucket)?;
            let bytes = small_body(req, auth, body).await?;
            let rules = crate::cors::from_xml(&xml::parse(&bytes)?)?;
            state
                .credentials
                .put_cors(bucket, &rules)
                .map_err(internal)?;
            Ok(Response::new(empty()))
        }
        Method::GET if req.has_param("cors") => {
            state.buckets.get(bucket)?;
            match state.credentials.cors(bucket).map_err(internal)? {
                Some(rules) => Ok(xml_response(crate::cors::to_xml(&rules))),
                None => Err(S3Error::no_such_cors(
                    "The CORS configuration does not exist",
                )),
            }
        }
        Method::DELETE if req.has_param("cors") => {
            auth.check_admin()?;
            state.buckets.get(bucket)?;
            state.credentials.delete_cors(bucket).map_err(internal)?;
            Ok(no_content())
        }
        Method::PUT => {
            auth.check_admin()?;
            let bytes = small_body(req, auth, body).await?;
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                // A CreateBucketConfiguration (location): checked, ignored.
                let root = xml::parse(&bytes)?;
                if root.name != "CreateBucketConfiguration" {
                    return Err(S3Error::malformed_xml(
                        "expected <CreateBucketConfiguration>",
                    ));
                }
            }
            state.buckets.create(bucket)?;
            let mut r = Response::new(empty());
            set(&mut r, "location", &format!("/{bucket}"));
            Ok(r)
        }
        Method::DELETE => {
            auth.check_admin()?;
            state.buckets.delete(bucket)?;
            state.credentials.delete_cors(bucket).map_err(internal)?;
            Ok(no_content())
        }
        Method::HEAD => {
            state.buckets.get(bucket)?;
            Ok(Response::new(empty()))
        }
        Method::GET if req.has_param("location") => {
            state.buckets.get(bucket)?;
            let mut w = Writer::new();
            w.root("LocationConstraint");
            w.close("LocationConstraint");
            Ok(xml_response(w.finish().replace(
                "></LocationConstraint>",
                ">auto</LocationConstraint>",
            )))
        }
        Method::GET if req.has_param("uploads") => {
            list_multipart_uploads(req, bucket, &state.buckets.get(bucket)?)
        }
        Method::GET => {
            let b = state.buckets.get(bucket)?;
            list_objects(req, bucket, &b, req.param("list-type") == Some("2"))
        }
        Method::POST if req.has_param("delete") => {
            let b = state.buckets.get(bucket)?;
            let bytes = small_body(req, auth, body).await?;
            delete_objects(&b, &bytes).await
        }
        _ => Err(S3Error::not_implemented(format!(
            "{} on a bucket with these parameters is not implemented",
            req.method
        ))),
    }
}

fn internal(e: impl std::fmt::Display) -> S3Error {
    tracing::error!("S3 endpoint: {e}");
    S3Error::internal("We encountered an internal error. Please try again.")
}

fn no_content() -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

fn set(r: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, S3Error> + Send + 'static,
) -> Result<T, S3Error> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

// ---------------------------------------------------------------- bodies

/// The decoded, checked body of a write, for R2 to read.
fn body_reader<R: Read + Send + 'static>(
    raw: R,
    req: &Req,
    auth: &Auth,
    verified: Option<Arc<Mutex<R2Checksums>>>,
) -> Result<Box<dyn Read + Send>, S3Error> {
    let content_length: Option<u64> = match req.header("content-length") {
        None => None,
        Some(v) => Some(v.parse().map_err(|_| {
            S3Error::invalid_argument(format!("Content-Length {v:?} is not a number"))
        })?),
    };
    let chunked = matches!(
        auth.payload,
        Payload::Streaming { .. } | Payload::UnsignedTrailer
    ) || req
        .header("content-encoding")
        .is_some_and(|e| e.split(',').any(|p| p.trim() == "aws-chunked"));
    let mut checks = BodyChecks {
        md5_base64: md5_header(req)?,
        verified,
        ..BodyChecks::default()
    };
    let trailer_slot = Arc::new(Mutex::new(None));
    let trailer_name = req
        .header("x-amz-trailer")
        .map(|t| t.trim().to_ascii_lowercase());
    checks.checksum = match &trailer_name {
        Some(t) => {
            let alg = t
                .strip_prefix("x-amz-checksum-")
                .and_then(ChecksumAlgorithm::from_name)
                .ok_or_else(|| {
                    S3Error::invalid_request(format!(
                        "x-amz-trailer {t:?} is not a supported checksum"
                    ))
                })?;
            Some((alg, ExpectedChecksum::Trailer(trailer_slot.clone())))
        }
        None => checksum_header(req)?,
    };
    if let Payload::Signed(h) = &auth.payload {
        if chunked {
            return Err(S3Error::invalid_request(
                "an aws-chunked body needs a STREAMING-* x-amz-content-sha256",
            ));
        }
        checks.sha256_hex = Some(h.clone());
    }
    if chunked {
        let decoded: u64 = req
            .header("x-amz-decoded-content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                S3Error::missing_content_length(
                    "an aws-chunked body needs x-amz-decoded-content-length",
                )
            })?;
        if decoded > MAX_SINGLE_PUT {
            return Err(too_large());
        }
        checks.length = Some(decoded);
        let signing = match &auth.payload {
            Payload::Streaming {
                key,
                amz_date,
                scope,
                seed,
            } => ChunkSigning::Signed {
                key: key.clone(),
                amz_date: amz_date.clone(),
                scope: scope.clone(),
                previous: seed.clone(),
            },
            _ => ChunkSigning::Unsigned,
        };
        let chunked = AwsChunkedReader::new(raw, signing, trailer_name, trailer_slot);
        return Ok(Box::new(CheckedReader::new(chunked, checks)));
    }
    let Some(len) = content_length else {
        return Err(S3Error::missing_content_length(
            "You must provide the Content-Length HTTP header.",
        ));
    };
    if len > MAX_SINGLE_PUT {
        return Err(too_large());
    }
    checks.length = Some(len);
    Ok(Box::new(CheckedReader::new(raw, checks)))
}

fn too_large() -> S3Error {
    S3Error::entity_too_large(format!(
        "Your proposed upload exceeds the maximum allowed object size ({MAX_SINGLE_PUT} bytes in one request; use a multipart upload)."
    ))
}

fn md5_header(req: &Req) -> Result<Option<String>, S3Error> {
    use base64::Engine as _;
    let Some(v) = req.header("content-md5") else {
        return Ok(None);
    };
    match base64::engine::general_purpose::STANDARD.decode(v.trim()) {
        Ok(b) if b.len() == 16 => Ok(Some(v.trim().to_string())),
        _ => Err(S3Error::invalid_digest(
            "The Content-MD5 you specified is not valid.",
        )),
    }
}

fn checksum_header(req: &Req) -> Result<Option<(ChecksumAlgorithm, ExpectedChecksum)>, S3Error> {
    for a in ChecksumAlgorithm::ALL {
        if let Some(v) = req.header(a.header()) {
            return Ok(Some((a, ExpectedChecksum::Header(v.trim().to_string()))));
        }
    }
    Ok(None)
}

/// Streams the request body into `f` on the blocking pool.
async fn with_body<T: Send + 'static>(
    req: &Req,
    auth: &Auth,
    body: Incoming,
    f: impl FnOnce(Box<dyn Read + Send>, Arc<Mutex<R2Checksums>>) -> Result<T, S3Error> + Send + 'static,
) -> Result<T, S3Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(body::CHANNEL_CHUNKS);
    // Filled with the checksum the body was verified against, once it ends.
    let verified = Arc::new(Mutex::new(R2Checksums::default()));
    let reader = body_reader(ChannelReader::new(rx), req, auth, Some(verified.clone()))?;
    let task = tokio::task::spawn_blocking(move || f(reader, verified));
    body::pump(body, tx).await;
    task.await.map_err(internal)?
}

/// A small body (XML), read whole under a limit and checked.
async fn small_body(req: &Req, auth: &Auth, body: Incoming) -> Result<Vec<u8>, S3Error> {
    use http_body_util::BodyExt as _;
    let limited = http_body_util::Limited::new(body, xml::MAX_XML_BYTES + 64 * 1024);
    let raw = limited
        .collect()
        .await
        .map_err(|e| {
            S3Error::malformed_xml(format!(
                "the body could not be read within {} bytes: {e}",
                xml::MAX_XML_BYTES
            ))
        })?
        .to_bytes();
    let mut reader = if req.header("content-length").is_none() && !raw.is_empty() {
        // Tolerate chunked transfer encoding for small bodies.
        let mut checks = BodyChecks {
            md5_base64: md5_header(req)?,
            checksum: checksum_header(req)?,
            ..BodyChecks::default()
        };
        if let Payload::Signed(h) = &auth.payload {
            checks.sha256_hex = Some(h.clone());
        }
        Box::new(CheckedReader::new(std::io::Cursor::new(raw), checks)) as Box<dyn Read + Send>
    } else if raw.is_empty() && req.header("content-length").is_none() {
        return Ok(Vec::new());
    } else {
        body_reader(std::io::Cursor::new(raw), req, auth, None)?
    };
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(io_to_s3)?;
    Ok(out)
}

fn io_to_s3(e: std::io::Error) -> S3Error {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<body::BodyError>())
    {
        Some(b) => b.0.clone(),
        None => S3Error::incomplete_body(format!("reading the request body: {e}")),
    }
}

// ---------------------------------------------------------------- metadata

/// Content headers and `x-amz-meta-*` of a write.
fn write_metadata(req: &Req) -> Result<(R2HttpMetadata, BTreeMap<String, String>), S3Error> {
    let pairs: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let http = R2HttpMetadata::from_headers(pairs.iter().copied());
    let mut custom = BTreeMap::new();
    for (k, v) in &pairs {
        if let Some(name) = k.strip_prefix("x-amz-meta-") {
            custom.insert(name.to_string(), v.to_string());
        }
    }
    Ok((http, custom))
}

/// `partial`: the body is a range, so the whole object's checksums (which
/// a client would check against it) are left out, as S3 does.
fn object_headers(r: &mut Response<Body>, o: &R2Object, req: &Req, partial: bool) {
    set(r, "etag", &o.http_etag());
    set(r, "last-modified", &format_http_date(o.uploaded));
    set(r, "accept-ranges", "bytes");
    if let Some(m) = &o.http_metadata {
        for (name, value) in m.to_headers() {
            set(r, name, &value);
        }
        if m.content_type.is_none() {
            set(r, "content-type", "application/octet-stream");
        }
    }
    if let Some(c) = &o.custom_metadata {
        for (k, v) in c {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()),
                HeaderValue::from_str(v),
            ) {
                r.headers_mut().insert(name, value);
            }
        }
    }
    if !partial
        && req
            .header("x-amz-checksum-mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
    {
        use base64::Engine as _;
        let b64 = |hex_digest: &str| {
            hex::decode(hex_digest)
                .ok()
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
        };
        if let Some(v) = o.checksums.sha256.as_deref().and_then(b64) {
            set(r, "x-amz-checksum-sha256", &v);
        }
        if let Some(v) = o.checksums.sha1.as_deref().and_then(b64) {
            set(r, "x-amz-checksum-sha1", &v);
        }
        for (hex_digest, header) in [
            (&o.checksums.crc32, "x-amz-checksum-crc32"),
            (&o.checksums.crc32c, "x-amz-checksum-crc32c"),
            (&o.checksums.crc64nvme, "x-amz-checksum-crc64nvme"),
        ] {
            if let Some(v) = hex_digest.as_deref().and_then(b64) {
                set(r, header, &v);
            }
        }
    }
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = req.param(param) {
            set(r, header, v);
        }
    }
}

fn conditional(
    if_match: Option<&str>,
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    if_unmodified_since: Option<&str>,
) -> Result<Option<R2Conditional>, S3Error> {
    if if_match.is_none()
        && if_none_match.is_none()
        && if_modified_since.is_none()
        && if_unmodified_since.is_none()
    {
        return Ok(None);
    }
    Ok(Some(R2Conditional::from_headers(
        if_match,
        if_none_match,
        if_modified_since,
        if_unmodified_since,
    )?))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n`; `None` for what S3 ignores (other
/// units, several ranges).
fn parse_range(v: &str) -> Result<Option<R2Range>, S3Error> {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let bad = || S3Error::invalid_range(format!("The requested range {v:?} is not satisfiable"));
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    Ok(Some(match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => R2Range::Suffix { suffix: num(b)? },
        (false, true) => R2Range::Offset {
            offset: num(a)?,
            length: None,
        },
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Ok(None);
            }
            R2Range::Offset {
                offset: a,
                length: Some(b - a + 1),
            }
        }
        (true, true) => return Err(bad()),
    }))
}

// ---------------------------------------------------------------- objects

async fn put_object(req: &Req, auth: &Auth, b: &R2Bucket, key: &str, body: Incoming) -> Res {
    let (http, custom) = write_metadata(req)?;
    let only_if = conditional(
        req.header("if-match"),
        req.header("if-none-match"),
        None,
        None,
    )?;
    let stored_checksum = stored_checksum(req)?;
    let (b, key) = (b.clone(), key.to_string());
    let object = with_body(req, auth, body, move |reader, verified| {
        let options = R2PutOptions {
            only_if,
            http_metadata: Some(http),
            custom_metadata: Some(custom),
            checksum: stored_checksum,
            verified_checksums: Some(verified),
        };
        Ok(b.put(&key, reader, &options)?)
    })
    .await?;
    let Some(o) = object else {
        return Err(S3Error::precondition_failed(
            "At least one of the pre-conditions you specified did not hold",
        ));
    };
    let mut r = Response::new(empty());
    set(&mut r, "etag", &o.http_etag());
    for a in ChecksumAlgorithm::ALL {
        if let Some(v) = req.header(a.header()) {
            set(&mut r, a.header(), v);
        }
    }
    Ok(r)
}

/// A SHA-1 or SHA-256 checksum header, handed to R2 so it is stored.
fn stored_checksum(req: &Req) -> Result<Option<hearth_r2::R2ExpectedChecksum>, S3Error> {
    use base64::Engine as _;
    for (header, alg) in [
        ("x-amz-checksum-sha256", hearth_r2::R2HashAlgorithm::Sha256),
        ("x-amz-checksum-sha1", hearth_r2::R2HashAlgorithm::Sha1),
    ] {
        if let Some(v) = req.header(header) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map_err(|_| S3Error::invalid_digest(format!("{header} is not base64")))?;
            return Ok(Some(
                hearth_r2::R2ExpectedChecksum::from_bytes(alg, &bytes)
                    .map_err(|e| S3Error::invalid_digest(format!("{header}: {e}")))?,
            ));
        }
    }
    Ok(None)
}

/// Bodies up to this size are read whole and sent in one piece; larger
/// ones stream a few chunks ahead of the client.
const WHOLE_BODY_BYTES: u64 = 1024 * 1024;

enum Out {
    Whole(Vec<u8>),
    Stream(hearth_r2::R2Body),
}

async fn get_object(req: &Req, b: &R2Bucket, key: &str) -> Res {
    let head = req.method == Method::HEAD;
    let (im, inm, ims, ius) = (
        req.header("if-match"),
        req.header("if-none-match"),
        req.header("if-modified-since"),
        req.header("if-unmodified-since"),
    );
    let only_if = conditional(im, inm, ims, ius)?;
    // Which failure is a 412 rather than a 304.
    let strict = conditional(im, None, None, ius)?;
    let range = match (head, req.header("range")) {
        (false, Some(v)) => parse_range(v)?,
        _ => None,
    };
    let part_number = req.param("partNumber");
    if part_number.is_some() {
        return Err(S3Error::not_implemented(
            "GetObject with partNumber is not implemented",
        ));
    }
    let (b2, k2) = (b.clone(), key.to_string());
    let found = blocking(move || {
        if head {
            let o = b2.head(&k2)?;
            return Ok(o.map(|o| -> (R2Object, bool, Option<Out>) {
                let passes = only_if
                    .as_ref()
                    .is_none_or(|c| c.passes(Some((&o.etag, o.uploaded))));
                (o, passes, None)
            }));
        }
        let options = R2GetOptions { only_if, range };
        let Some(got) = b2.get(&k2, &options)? else {
            return Ok(None);
        };
        Ok(Some(match got {
            // A small body is read here in one go rather than streamed.
            R2GetResult::Body(body) if body.body.remaining() <= WHOLE_BODY_BYTES => {
                let bytes = body
                    .body
                    .bytes()
                    .map_err(|e| internal(format!("reading {k2}: {e}")))?;
                (body.object, true, Some(Out::Whole(bytes)))
            }
            R2GetResult::Body(body) => (body.object, true, Some(Out::Stream(body.body))),
            R2GetResult::PreconditionFailed(o) => (o, false, None),
        }))
    })
    .await?;
    let Some((object, passes, reader)) = found else {
        if head {
            return Err(S3Error::no_such_key(""));
        }
        return Err(S3Error::no_such_key("The specified key does not exist."));
    };
    if !passes {
        let hard = strict
            .as_ref()
            .is_some_and(|c| !c.passes(Some((&object.etag, object.uploaded))));
        if hard {
            return Err(S3Error::precondition_failed(
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        set(&mut r, "etag", &object.http_etag());
        set(&mut r, "last-modified", &format_http_date(object.uploaded));
        return Ok(r);
    }
    let body = match reader {
        Some(Out::Stream(reader)) => body::stream_reader(reader),
        Some(Out::Whole(bytes)) => crate::server::full(bytes),
        None => empty(),
    };
    let mut r = Response::new(body);
    let partial = range.is_some() && object.range.is_some();
    object_headers(&mut r, &object, req, partial);
    match (range, object.range) {
        (Some(_), Some(got)) => {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let end = (got.offset + got.length).saturating_sub(1);
            set(
                &mut r,
                "content-range",
                &format!("bytes {}-{end}/{}", got.offset, object.size),
            );
            set(&mut r, "content-length", &got.length.to_string());
        }
        _ => set(&mut r, "content-length", &object.size.to_string()),
    }
    Ok(r)
}

/// `x-amz-copy-source`: `bucket/key` or `/bucket/key`, URL-encoded.
fn copy_source(req: &Req) -> Result<(String, String), S3Error> {
    let raw = req.header("x-amz-copy-source").unwrap_or_default();
    let raw = raw.split('?').next().unwrap_or_default();
    let decoded = crate::sigv4::percent_decode(raw)?;
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    match trimmed.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_string(), k.to_string())),
        _ => Err(S3Error::invalid_argument(format!(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey, not {raw:?}"
        ))),
    }
}

fn copy_conditional(req: &Req) -> Result<Option<R2Conditional>, S3Error> {
    conditional(
        req.header("x-amz-copy-source-if-match"),
        req.header("x-amz-copy-source-if-none-match"),
        req.header("x-amz-copy-source-if-modified-since"),
        req.header("x-amz-copy-source-if-unmodified-since"),
    )
}

async fn copy_object(state: &State, req: &Req, auth: &Auth, b: &R2Bucket, key: &str) -> Res {
    let (src_bucket, src_key) = copy_source(req)?;
    auth.check(Some(&src_bucket), false)?;
    let src = state.buckets.get(&src_bucket)?;
    let replace = match req.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(S3Error::invalid_argument(format!(
                "Unknown metadata directive {other:?}"
            )));
        }
    };
    let replaced = if replace {
        Some(write_metadata(req)?)
    } else {
        None
    };
    let only_if = copy_conditional(req)?;
    let (b, key) = (b.clone(), key.to_string());
    let object = blocking(move || {
        let got = src
            .get(
                &src_key,
                &R2GetOptions {
                    only_if,
                    range: None,
                },
            )?
            .ok_or_else(|| S3Error::no_such_key("The specified key does not exist."))?;
        let R2GetResult::Body(body) = got else {
            return Err(S3Error::precondition_failed(
                "At least one of the pre-conditions you specified did not hold",
            ));
        };
        let (http, custom) = match replaced {
            Some(m) => m,
            None => (
                body.object.http_metadata.clone().unwrap_or_default(),
                body.object.custom_metadata.clone().unwrap_or_default(),
            ),
        };
        let options = R2PutOptions {
            http_metadata: Some(http),
            custom_metadata: Some(custom),
            ..R2PutOptions::default()
        };
        b.put(&key, body.body, &options)?
            .ok_or_else(|| S3Error::internal("the copy was not written"))
    })
    .await?;
    let mut w = Writer::new();
    w.root("CopyObjectResult");
    w.leaf("ETag", &object.http_etag());
    w.leaf("LastModified", &iso8601(object.uploaded));
    w.close("CopyObjectResult");
    Ok(xml_response(w.finish()))
}

async fn delete_objects(b: &R2Bucket, bytes: &[u8]) -> Res {
    let root = xml::parse(bytes)?;
    if root.name != "Delete" {
        return Err(S3Error::malformed_xml("expected <Delete>"));
    }
    let quiet = root.child_text("Quiet") == Some("true");
    let mut keys = Vec::new();
    for o in root.children_named("Object") {
        let key = o
            .child("Key")
            .map(|k| k.text.clone())
            .ok_or_else(|| S3Error::malformed_xml("an <Object> has no <Key>"))?;
        keys.push(key);
    }
    if keys.is_empty() || keys.len() > hearth_r2::MAX_DELETE_KEYS {
        return Err(S3Error::malformed_xml(format!(
            "a Delete request names 1 to {} keys, not {}",
            hearth_r2::MAX_DELETE_KEYS,
            keys.len()
        )));
    }
    let b = b.clone();
    let deleted = keys.clone();
    blocking(move || Ok(b.delete_keys(&deleted)?)).await?;
    let mut w = Writer::new();
    w.root("DeleteResult");
    if !quiet {
        for k in &keys {
            w.open("Deleted");
            w.leaf("Key", k);
            w.close("Deleted");
        }
    }
    w.close("DeleteResult");
    Ok(xml_response(w.finish()))
}

// ---------------------------------------------------------------- listing

fn list_buckets(state: &State, auth: &Auth) -> Res {
    let mut w = Writer::new();
    w.root("ListAllMyBucketsResult");
    w.open("Owner");
    w.leaf("ID", &auth.info.access_key_id);
    w.leaf("DisplayName", &auth.info.name);
    w.close("Owner");
    w.open("Buckets");
    for (name, created) in state.buckets.list() {
        if !auth.info.allows_bucket(&name) {
            continue;
        }
        w.open("Bucket");
        w.leaf("Name", &name);
        w.leaf("CreationDate", &iso8601(created));
        w.close("Bucket");
    }
    w.close("Buckets");
    w.close("ListAllMyBucketsResult");
    Ok(xml_response(w.finish()))
}

fn list_objects(req: &Req, bucket: &str, b: &R2Bucket, v2: bool) -> Res {
    let url = match req.param("encoding-type") {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(S3Error::invalid_argument(format!(
                "Invalid Encoding Method specified in Request: {other:?}"
            )));
        }
    };
    let enc = |s: &str| {
        if url {
            crate::sigv4::uri_encode(s, true)
        } else {
            s.to_string()
        }
    };
    let max_keys: usize = match req.param("max-keys") {
        None => 1000,
        Some(v) => v
            .parse()
            .map_err(|_| S3Error::invalid_argument(format!("max-keys {v:?} is not a number")))?,
    };
    let prefix = req.param("prefix").unwrap_or("").to_string();
    let delimiter = req
        .param("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let token = req.param("continuation-token").map(str::to_string);
    let start_after = if v2 {
        req.param("start-after").map(str::to_string)
    } else {
        // A v1 marker that is a common prefix skips the whole group.
        req.param("marker").map(|m| match &delimiter {
            Some(d) if m.ends_with(d.as_str()) => format!("{m}{}", char::MAX),
            _ => m.to_string(),
        })
    };
    let page = if max_keys == 0 {
        None
    } else {
        Some(b.list(&R2ListOptions {
            limit: Some(max_keys.min(1000)),
            prefix: Some(prefix.clone()),
            cursor: token.clone(),
            delimiter: delimiter.clone(),
            start_after: start_after.clone(),
            include: vec![],
        })?)
    };
    let mut w = Writer::new();
    w.root("ListBucketResult");
    w.leaf("Name", bucket);
    w.leaf("Prefix", &enc(&prefix));
    if let Some(d) = &delimiter {
        w.leaf("Delimiter", &enc(d));
    }
    w.leaf("MaxKeys", &max_keys.to_string());
    if url {
        w.leaf("EncodingType", "url");
    }
    let truncated = page.as_ref().is_some_and(|p| p.truncated);
    w.leaf("IsTruncated", if truncated { "true" } else { "false" });
    if v2 {
        let count = page
            .as_ref()
            .map_or(0, |p| p.objects.len() + p.delimited_prefixes.len());
        w.leaf("KeyCount", &count.to_string());
        if let Some(t) = &token {
            w.leaf("ContinuationToken", t);
        }
        if let Some(c) = page.as_ref().and_then(|p| p.cursor.as_ref()) {
            w.leaf("NextContinuationToken", c);
        }
        if let Some(s) = req.param("start-after") {
            w.leaf("StartAfter", &enc(s));
        }
    } else {
        w.leaf("Marker", &enc(req.param("marker").unwrap_or("")));
        if truncated && delimiter.is_some() {
            let last = page.as_ref().and_then(|p| {
                let last_obj = p.objects.last().map(|o| o.key.clone());
                let last_pre = p.delimited_prefixes.last().cloned();
                last_obj.into_iter().chain(last_pre).max()
            });
            if let Some(l) = last {
                w.leaf("NextMarker", &enc(&l));
            }
        }
    }
    if let Some(p) = &page {
        for o in &p.objects {
            w.open("Contents");
            w.leaf("Key", &enc(&o.key));
            w.leaf("LastModified", &iso8601(o.uploaded));
            w.leaf("ETag", &o.http_etag());
            w.leaf("Size", &o.size.to_string());
            w.leaf("StorageClass", "STANDARD");
            w.close("Contents");
        }
        for pre in &p.delimited_prefixes {
            w.open("CommonPrefixes");
            w.leaf("Prefix", &enc(pre));
            w.close("CommonPrefixes");
        }
    }
    w.close("ListBucketResult");
    Ok(xml_response(w.finish()))
}

// ---------------------------------------------------------------- multipart

async fn create_multipart(req: &Req, bucket: &str, b: &R2Bucket, key: &str) -> Res {
    let (http, custom) = write_metadata(req)?;
    let (b, k) = (b.clone(), key.to_string());
    let upload = blocking(move || {
        Ok(b.create_multipart_upload(
            &k,
            &R2MultipartOptions {
                http_metadata: Some(http),
                custom_metadata: Some(custom),
            },
        )?)
    })
    .await?;
    let mut w = Writer::new();
    w.root("InitiateMultipartUploadResult");
    w.leaf("Bucket", bucket);
    w.leaf("Key", key);
    w.leaf("UploadId", upload.upload_id());
    w.close("InitiateMultipartUploadResult");
    Ok(xml_response(w.finish()))
}

fn part_number(req: &Req) -> Result<u32, S3Error> {
    let v = req
        .param("partNumber")
        .ok_or_else(|| S3Error::invalid_argument("partNumber is required with uploadId"))?;
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=hearth_r2::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(format!(
                "Part number must be an integer between 1 and {}, inclusive; not {v:?}",
                hearth_r2::MAX_PART_NUMBER
            ))
        })
}

async fn upload_part(
    state: &State,
    req: &Req,
    auth: &Auth,
    b: &R2Bucket,
    key: &str,
    upload_id: &str,
    body: Incoming,
) -> Res {
    let n = part_number(req)?;
    let upload = b.resume_multipart_upload(key, upload_id);
    if req.header("x-amz-copy-source").is_some() {
        let (src_bucket, src_key) = copy_source(req)?;
        auth.check(Some(&src_bucket), false)?;
        let src = state.buckets.get(&src_bucket)?;
        let range = match req.header("x-amz-copy-source-range") {
            None => None,
            Some(v) => Some(parse_range(v)?.ok_or_else(|| {
                S3Error::invalid_argument(format!(
                    "The x-amz-copy-source-range {v:?} is not bytes=first-last"
                ))
            })?),
        };
        let only_if = copy_conditional(req)?;
        let part = blocking(move || {
            let got = src
                .get(&src_key, &R2GetOptions { only_if, range })?
                .ok_or_else(|| S3Error::no_such_key("The specified key does not exist."))?;
            let R2GetResult::Body(body) = got else {
                return Err(S3Error::precondition_failed(
                    "At least one of the pre-conditions you specified did not hold",
                ));
            };
            Ok(upload.upload_part(n, body.body)?)
        })
        .await?;
        let mut w = Writer::new();
        w.root("CopyPartResult");
        w.leaf("ETag", &format!("\"{}\"", part.etag));
        w.leaf("LastModified", &iso8601(state.clock.now_ms()));
        w.close("CopyPartResult");
        return Ok(xml_response(w.finish()));
    }
    let part = with_body(req, auth, body, move |reader, _verified| {
        Ok(upload.upload_part(n, reader)?)
    })
    .await?;
    let mut r = Response::new(empty());
    set(&mut r, "etag", &format!("\"{}\"", part.etag));
    for a in ChecksumAlgorithm::ALL {
        if let Some(v) = req.header(a.header()) {
            set(&mut r, a.header(), v);
        }
    }
    Ok(r)
}

async fn complete_multipart(
    req: &Req,
    auth: &Auth,
    bucket: &str,
    b: &R2Bucket,
    key: &str,
    upload_id: &str,
    body: Incoming,
) -> Res {
    let bytes = small_body(req, auth, body).await?;
    let root = xml::parse(&bytes)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(S3Error::malformed_xml("expected <CompleteMultipartUpload>"));
    }
    let mut parts = Vec::new();
    for p in root.children_named("Part") {
        let n = p
            .child_text("PartNumber")
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| S3Error::malformed_xml("a <Part> has no valid <PartNumber>"))?;
        let etag = p
            .child_text("ETag")
            .ok_or_else(|| S3Error::malformed_xml("a <Part> has no <ETag>"))?;
        let etag = etag.trim_matches('"').to_string();
        if parts
            .last()
            .is_some_and(|last: &R2UploadedPart| last.part_number >= n)
        {
            return Err(S3Error::invalid_part_order(
                "The list of parts was not in ascending order. Parts must be ordered by part number.",
            ));
        }
        parts.push(R2UploadedPart {
            part_number: n,
            etag,
        });
    }
    if parts.is_empty() {
        return Err(S3Error::malformed_xml("You must specify at least one part"));
    }
    let upload = b.resume_multipart_upload(key, upload_id);
    let object = blocking(move || Ok(upload.complete(&parts)?)).await?;
    let mut w = Writer::new();
    w.root("CompleteMultipartUploadResult");
    w.leaf(
        "Location",
        &format!("/{bucket}/{}", crate::sigv4::uri_encode(key, true)),
    );
    w.leaf("Bucket", bucket);
    w.leaf("Key", key);
    w.leaf("ETag", &object.http_etag());
    w.close("CompleteMultipartUploadResult");
    Ok(xml_response(w.finish()))
}

fn list_parts(req: &Req, bucket: &str, b: &R2Bucket, key: &str, upload_id: &str) -> Res {
    let max_parts: usize = match req.param("max-parts") {
        None => 1000,
        Some(v) => v
            .parse()
            .map_err(|_| S3Error::invalid_argument(format!("max-parts {v:?} is not a number")))?,
    };
    let max_parts = max_parts.min(1000);
    let marker: u32 = match req.param("part-number-marker") {
        None => 0,
        Some(v) => v.parse().map_err(|_| {
            S3Error::invalid_argument(format!("part-number-marker {v:?} is not a number"))
        })?,
    };
    let (parts, created) = b.resume_multipart_upload(key, upload_id).list_parts()?;
    let after: Vec<_> = parts
        .into_iter()
        .filter(|p| p.part_number > marker)
        .collect();
    let truncated = after.len() > max_parts;
    let page = &after[..after.len().min(max_parts)];
    let mut w = Writer::new();
    w.root("ListPartsResult");
    w.leaf("Bucket", bucket);
    w.leaf("Key", key);
    w.leaf("UploadId", upload_id);
    w.leaf("StorageClass", "STANDARD");
    w.leaf("PartNumberMarker", &marker.to_string());
    if let Some(last) = page.last() {
        w.leaf("NextPartNumberMarker", &last.part_number.to_string());
    }
    w.leaf("MaxParts", &max_parts.to_string());
    w.leaf("IsTruncated", if truncated { "true" } else { "false" });
    for p in page {
        w.open("Part");
        w.leaf("PartNumber", &p.part_number.to_string());
        w.leaf("LastModified", &iso8601(created));
        w.leaf("ETag", &format!("\"{}\"", p.etag));
        w.leaf("Size", &p.size.to_string());
        w.close("Part");
    }
    w.close("ListPartsResult");
    Ok(xml_response(w.finish()))
}

fn list_multipart_uploads(req: &Req, bucket: &str, b: &R2Bucket) -> Res {
    let max: usize = match req.param("max-uploads") {
        None => 1000,
        Some(v) => v
            .parse()
            .map_err(|_| S3Error::invalid_argument(format!("max-uploads {v:?} is not a number")))?,
    };
    let max = max.clamp(1, 1000);
    let prefix = req.param("prefix").unwrap_or("");
    let key_marker = req.param("key-marker").unwrap_or("");
    let id_marker = req.param("upload-id-marker").unwrap_or("");
    let after = (!key_marker.is_empty()).then_some((key_marker, id_marker));
    let mut uploads = b.list_multipart_uploads(prefix, after, max + 1)?;
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    let mut w = Writer::new();
    w.root("ListMultipartUploadsResult");
    w.leaf("Bucket", bucket);
    w.leaf("KeyMarker", key_marker);
    w.leaf("UploadIdMarker", id_marker);
    if let Some(last) = uploads.last().filter(|_| truncated) {
        w.leaf("NextKeyMarker", &last.key);
        w.leaf("NextUploadIdMarker", &last.upload_id);
    }
    w.leaf("Prefix", prefix);
    w.leaf("MaxUploads", &max.to_string());
    w.leaf("IsTruncated", if truncated { "true" } else { "false" });
    for u in &uploads {
        w.open("Upload");
        w.leaf("Key", &u.key);
        w.leaf("UploadId", &u.upload_id);
        w.leaf("StorageClass", "STANDARD");
        w.leaf("Initiated", &iso8601(u.created));
        w.close("Upload");
    }
    w.close("ListMultipartUploadsResult");
    Ok(xml_response(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9").unwrap(),
            Some(R2Range::Offset {
                offset: 0,
                length: Some(10)
            })
        );
        assert_eq!(
            parse_range("bytes=-5").unwrap(),
            Some(R2Range::Suffix { suffix: 5 })
        );
        assert_eq!(
            parse_range("bytes=7-").unwrap(),
            Some(R2Range::Offset {
                offset: 7,
                length: None
            })
        );
        assert_eq!(parse_range("bytes=0-1,4-5").unwrap(), None);
        assert_eq!(parse_range("items=0-1").unwrap(), None);
        assert!(parse_range("bytes=x-1").is_err());
    }
}
