//! Request and response bodies, streamed in bounded chunks between hyper's
//! async side and R2's blocking `Read`/`Write` side, with the checks S3
//! makes on the way: signed payload hash, `aws-chunked` chunk signatures,
//! Content-MD5, `x-amz-checksum-*`, and the declared length.

use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use md5::Digest as _;
use tokio::sync::mpsc;

use crate::error::S3Error;
use crate::sigv4::{self, SigningKey};

/// Chunks in flight between the network and the disk, each direction.
pub const CHANNEL_CHUNKS: usize = 4;
/// Bytes read from an object per chunk sent to the client.
pub const READ_CHUNK: usize = 256 * 1024;
/// Longest wait for the next piece of a request body, or for a client to
/// take the next chunk of a response, before the transfer is abandoned: a
/// stalled client holds neither a connection nor a blocking thread forever.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest `aws-chunked` chunk header or trailer line.
const MAX_CHUNK_LINE: usize = 4096;

/// An S3 error carried through `std::io` so R2's writer aborts with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub S3Error);

pub fn io_err(e: S3Error) -> io::Error {
    io::Error::other(BodyError(e))
}

/// Moves a hyper body into a bounded channel; returns when the body ends,
/// fails, or the reader went away.
pub async fn pump<B>(mut body: B, tx: mpsc::Sender<io::Result<Bytes>>)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    loop {
        let Ok(frame) = tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await else {
            let _ = tx
                .send(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no request body data for {} s", IDLE_TIMEOUT.as_secs()),
                )))
                .await;
            return;
        };
        match frame {
            None => return,
            Some(Err(e)) => {
                let _ = tx
                    .send(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("reading the request body: {e}"),
                    )))
                    .await;
                return;
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                    && tx.send(Ok(data)).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// The blocking end of [`pump`]'s channel.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(b)) => self.current = b,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A checksum algorithm of `x-amz-checksum-*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "crc32" => Self::Crc32,
            "crc32c" => Self::Crc32c,
            "crc64nvme" => Self::Crc64Nvme,
            "sha1" => Self::Sha1,
            "sha256" => Self::Sha256,
            _ => return None,
        })
    }

    pub fn header(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];
}

const CRC32: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);
const CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);
const CRC64NVME: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_NVME);

enum ChecksumState {
    Crc32(crc::Digest<'static, u32, crc::Table<16>>),
    Crc32c(crc::Digest<'static, u32, crc::Table<16>>),
    Crc64(crc::Digest<'static, u64, crc::Table<16>>),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChecksumState {
    fn new(a: ChecksumAlgorithm) -> Self {
        match a {
            ChecksumAlgorithm::Crc32 => Self::Crc32(CRC32.digest()),
            ChecksumAlgorithm::Crc32c => Self::Crc32c(CRC32C.digest()),
            ChecksumAlgorithm::Crc64Nvme => Self::Crc64(CRC64NVME.digest()),
            ChecksumAlgorithm::Sha1 => Self::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32(d) | Self::Crc32c(d) => d.update(data),
            Self::Crc64(d) => d.update(data),
            Self::Sha1(d) => d.update(data),
            Self::Sha256(d) => d.update(data),
        }
    }

    /// The big-endian digest.
    fn finish_bytes(self) -> Vec<u8> {
        match self {
            Self::Crc32(d) | Self::Crc32c(d) => d.finalize().to_be_bytes().to_vec(),
            Self::Crc64(d) => d.finalize().to_be_bytes().to_vec(),
            Self::Sha1(d) => d.finalize().to_vec(),
            Self::Sha256(d) => d.finalize().to_vec(),
        }
    }

    /// Base64 of the big-endian digest, as S3 sends it.
    fn finish(self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.finish_bytes())
    }
}

/// The base64 checksum of `data` (for tests and copies).
pub fn checksum_of(a: ChecksumAlgorithm, data: &[u8]) -> String {
    let mut s = ChecksumState::new(a);
    s.update(data);
    s.finish()
}

/// Where the expected `x-amz-checksum-*` value comes from.
#[derive(Clone)]
pub enum ExpectedChecksum {
    /// A request header.
    Header(String),
    /// An `aws-chunked` trailer, filled in when the body ends.
    Trailer(Arc<Mutex<Option<String>>>),
}

/// What the body must turn out to be; checked when it ends, before R2
/// commits anything.
#[derive(Default)]
pub struct BodyChecks {
    /// Exact decoded length, when the request declares it.
    pub length: Option<u64>,
    /// Hex SHA-256 the signature covered (`x-amz-content-sha256`).
    pub sha256_hex: Option<String>,
    /// Content-MD5, base64.
    pub md5_base64: Option<String>,
    pub checksum: Option<(ChecksumAlgorithm, ExpectedChecksum)>,
    /// Where a matching `checksum` is recorded (hex), for R2 to store.
    pub verified: Option<Arc<Mutex<hearth_r2::R2Checksums>>>,
}

/// Records a verified checksum (hex) in the field R2 stores it under.
fn record(into: &Mutex<hearth_r2::R2Checksums>, a: ChecksumAlgorithm, digest: &[u8]) {
    let mut c = into.lock().unwrap_or_else(|e| e.into_inner());
    let field = match a {
        ChecksumAlgorithm::Crc32 => &mut c.crc32,
        ChecksumAlgorithm::Crc32c => &mut c.crc32c,
        ChecksumAlgorithm::Crc64Nvme => &mut c.crc64nvme,
        ChecksumAlgorithm::Sha1 => &mut c.sha1,
        ChecksumAlgorithm::Sha256 => &mut c.sha256,
    };
    *field = Some(hex::encode(digest));
}

/// Checks a body as it is read: the declared length, and at the end the
/// digests. Any failure is an `io::Error` holding a [`BodyError`].
pub struct CheckedReader<R> {
    inner: R,
    checks: BodyChecks,
    read: u64,
    sha256: Option<sha2::Sha256>,
    md5: Option<md5::Md5>,
    checksum: Option<ChecksumState>,
    done: bool,
}

impl<R: Read> CheckedReader<R> {
    pub fn new(inner: R, checks: BodyChecks) -> Self {
        Self {
            inner,
            sha256: checks.sha256_hex.as_ref().map(|_| sha2::Sha256::new()),
            md5: checks.md5_base64.as_ref().map(|_| md5::Md5::new()),
            checksum: checks
                .checksum
                .as_ref()
                .map(|(a, _)| ChecksumState::new(*a)),
            checks,
            read: 0,
            done: false,
        }
    }

    fn finish(&mut self) -> Result<(), S3Error> {
        if let Some(want) = self.checks.length
            && self.read != want
        {
            return Err(S3Error::incomplete_body(format!(
                "You did not provide the number of bytes specified by the Content-Length HTTP header: {} of {want}",
                self.read
            )));
        }
        if let (Some(h), Some(want)) = (self.sha256.take(), &self.checks.sha256_hex) {
            let got = hex::encode(h.finalize());
            if !got.eq_ignore_ascii_case(want) {
                return Err(S3Error::content_sha256_mismatch(format!(
                    "The provided 'x-amz-content-sha256' header does not match what was computed: {got}"
                )));
            }
        }
        if let (Some(h), Some(want)) = (self.md5.take(), &self.checks.md5_base64) {
            let got = base64::engine::general_purpose::STANDARD.encode(h.finalize());
            if got != *want {
                return Err(S3Error::bad_digest(
                    "The Content-MD5 you specified did not match what we received.",
                ));
            }
        }
        if let (Some(state), Some((a, expected))) = (self.checksum.take(), &self.checks.checksum) {
            let digest = state.finish_bytes();
            let got = base64::engine::general_purpose::STANDARD.encode(&digest);
            let want = match expected {
                ExpectedChecksum::Header(v) => Some(v.clone()),
                ExpectedChecksum::Trailer(slot) => {
                    slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
                }
            };
            let Some(want) = want else {
                return Err(S3Error::invalid_request(format!(
                    "the trailer {} announced by x-amz-trailer was not sent",
                    a.header()
                )));
            };
            if got != want {
                return Err(S3Error::bad_digest(format!(
                    "The {} you specified did not match the calculated checksum.",
                    a.header()
                )));
            }
            if let Some(into) = &self.checks.verified {
                record(into, *a, &digest);
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.done = true;
            self.finish().map_err(io_err)?;
            return Ok(0);
        }
        self.read += n as u64;
        if let Some(want) = self.checks.length
            && self.read > want
        {
            return Err(io_err(S3Error::invalid_request(format!(
                "the body is longer than the {want} bytes declared"
            ))));
        }
        let data = &buf[..n];
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.checksum {
            h.update(data);
        }
        Ok(n)
    }
}

/// How each chunk of an `aws-chunked` body is authenticated.
pub enum ChunkSigning {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: each chunk signed, chained on
    /// the request's signature.
    Signed {
        key: SigningKey,
        amz_date: String,
        scope: String,
        previous: String,
    },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: no chunk signatures; a trailer
    /// may carry a checksum.
    Unsigned,
}

/// Decodes an `aws-chunked` body.
pub struct AwsChunkedReader<R> {
    inner: io::BufReader<R>,
    signing: ChunkSigning,
    /// Bytes left in the current chunk, and its hash so far.
    left: u64,
    chunk_hash: Option<sha2::Sha256>,
    chunk_signature: Option<String>,
    trailer_name: Option<String>,
    trailer: Arc<Mutex<Option<String>>>,
    ended: bool,
}

impl<R: Read> AwsChunkedReader<R> {
    /// `trailer_name`: the lower-case header `x-amz-trailer` announced.
    pub fn new(
        inner: R,
        signing: ChunkSigning,
        trailer_name: Option<String>,
        trailer: Arc<Mutex<Option<String>>>,
    ) -> Self {
        Self {
            inner: io::BufReader::with_capacity(64 * 1024, inner),
            signing,
            left: 0,
            chunk_hash: None,
            chunk_signature: None,
            trailer_name,
            trailer,
            ended: false,
        }
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        loop {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                return Err(io_err(S3Error::incomplete_body(
                    "the aws-chunked body ends in the middle of a chunk header",
                )));
            }
            let (take, found) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            line.extend_from_slice(&available[..take]);
            self.inner.consume(take);
            if line.len() > MAX_CHUNK_LINE {
                return Err(io_err(S3Error::invalid_request(
                    "an aws-chunked header line is too long",
                )));
            }
            if found {
                break;
            }
        }
        let s = String::from_utf8(line).map_err(|_| {
            io_err(S3Error::invalid_request(
                "an aws-chunked header line is not UTF-8",
            ))
        })?;
        Ok(s.trim_end_matches(['\r', '\n']).to_string())
    }

    fn start_chunk(&mut self) -> io::Result<()> {
        let line = self.line()?;
        let (size, ext) = match line.split_once(';') {
            Some((s, e)) => (s, Some(e)),
            None => (line.as_str(), None),
        };
        let bad = || {
            io_err(S3Error::invalid_request(format!(
                "{line:?} is not an aws-chunked chunk header"
            )))
        };
        if size.is_empty() || size.len() > 15 {
            return Err(bad());
        }
        self.left = u64::from_str_radix(size, 16).map_err(|_| bad())?;
        self.chunk_signature = None;
        if let ChunkSigning::Signed { .. } = self.signing {
            let sig = ext
                .and_then(|e| e.strip_prefix("chunk-signature="))
                .ok_or_else(bad)?;
            if sig.len() != 64 {
                return Err(bad());
            }
            self.chunk_signature = Some(sig.to_string());
            self.chunk_hash = Some(sha2::Sha256::new());
        }
        Ok(())
    }

    fn end_chunk(&mut self) -> io::Result<()> {
        if let ChunkSigning::Signed {
            key,
            amz_date,
            scope,
            previous,
        } = &mut self.signing
        {
            let hash = self.chunk_hash.take().unwrap_or_default().finalize();
            let sts = sigv4::chunk_string_to_sign(amz_date, scope, previous, &hex::encode(hash));
            let sig = self.chunk_signature.take().unwrap_or_default();
            if !key.verify(&sts, &sig) {
                return Err(io_err(S3Error::signature_does_not_match(
                    "The chunk signature we calculated does not match the one you provided.",
                )));
            }
            *previous = sig;
        }
        Ok(())
    }

    fn read_trailers(&mut self) -> io::Result<()> {
        // What a signed trailer's signature covers: each trailer but the
        // signature, as `name:value\n`, in the order sent.
        let mut canonical = String::new();
        let mut signature = None;
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(io_err(S3Error::invalid_request(format!(
                    "{line:?} is not a trailer"
                ))));
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "x-amz-trailer-signature" {
                signature = Some(value.to_string());
                continue;
            }
            if canonical.len() + line.len() > MAX_CHUNK_LINE {
                return Err(io_err(S3Error::invalid_request(
                    "the aws-chunked trailers are too long",
                )));
            }
            canonical.push_str(&format!("{name}:{value}\n"));
            if self.trailer_name.as_deref() == Some(name.as_str()) {
                *self.trailer.lock().unwrap_or_else(|e| e.into_inner()) = Some(value.to_string());
            }
        }
        if let ChunkSigning::Signed {
            key,
            amz_date,
            scope,
            previous,
        } = &self.signing
        {
            let Some(signature) = signature else {
                return Err(io_err(S3Error::signature_does_not_match(
                    "The trailer of a signed aws-chunked body has no x-amz-trailer-signature.",
                )));
            };
            let hash = hex::encode(sha2::Sha256::digest(canonical.as_bytes()));
            let sts = sigv4::trailer_string_to_sign(amz_date, scope, previous, &hash);
            if !key.verify(&sts, &signature) {
                return Err(io_err(S3Error::signature_does_not_match(
                    "The trailer signature we calculated does not match the one you provided.",
                )));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for AwsChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            if self.left > 0 {
                let want = buf
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io_err(S3Error::incomplete_body(
                        "the aws-chunked body ends in the middle of a chunk",
                    )));
                }
                self.left -= n as u64;
                if let Some(h) = &mut self.chunk_hash {
                    h.update(&buf[..n]);
                }
                if self.left == 0 {
                    let crlf = self.line()?;
                    if !crlf.is_empty() {
                        return Err(io_err(S3Error::invalid_request(
                            "an aws-chunked chunk is longer than its header says",
                        )));
                    }
                    self.end_chunk()?;
                }
                return Ok(n);
            }
            self.start_chunk()?;
            if self.left == 0 {
                // The final, empty chunk.
                self.end_chunk()?;
                if matches!(self.signing, ChunkSigning::Unsigned) || self.trailer_name.is_some() {
                    self.read_trailers()?;
                } else {
                    let _ = self.line();
                }
                self.ended = true;
                return Ok(0);
            }
        }
    }
}

/// A response body fed by a blocking reader on the blocking pool, a few
/// chunks ahead of the client at most.
pub fn stream_reader<R: Read + Send + 'static>(mut reader: R) -> crate::server::Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0u8; READ_CHUNK];
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    let sent = runtime.block_on(tokio::time::timeout(
                        IDLE_TIMEOUT,
                        tx.send(Ok(Bytes::from(buf))),
                    ));
                    // Gone, or not reading: stop, and free this thread.
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("reading an object for a response: {e}");
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map(hyper::body::Frame::data), rx))
    });
    http_body_util::StreamBody::new(stream).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example of a signed streaming upload: 65 KiB of
    /// 'a' in chunks of 64 KiB, 1 KiB and 0.
    #[test]
    fn aws_documented_streaming_example() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let cred =
            sigv4::Credential::parse("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request")
                .unwrap();
        let key = SigningKey::derive(secret, &cred);
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let sigs = [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ];
        let mut body = Vec::new();
        for (size, sig) in [(65536usize, sigs[0]), (1024, sigs[1]), (0, sigs[2])] {
            body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
        let decode = |body: &[u8]| {
            let mut r = AwsChunkedReader::new(
                body,
                ChunkSigning::Signed {
                    key: key.clone(),
                    amz_date: "20130524T000000Z".into(),
                    scope: cred.scope(),
                    previous: seed.into(),
                },
                None,
                Arc::default(),
            );
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        };
        let out = decode(&body).unwrap();
        assert_eq!(out.len(), 66560);
        assert!(out.iter().all(|&b| b == b'a'));
        // One changed byte of data fails its chunk's signature.
        let mut tampered = body.clone();
        tampered[100] = b'b';
        let e = decode(&tampered).unwrap_err();
        let inner = e.get_ref().unwrap().downcast_ref::<BodyError>().unwrap();
        assert_eq!(inner.0.code, "SignatureDoesNotMatch");
        // Cut short: incomplete.
        let e = decode(&body[..1000]).unwrap_err();
        let inner = e.get_ref().unwrap().downcast_ref::<BodyError>().unwrap();
        assert_eq!(inner.0.code, "IncompleteBody");
    }

    /// A signed body with a checksum trailer: the trailer's signature is
    /// chained on the final chunk's and covers the trailer lines, so a
    /// changed checksum or a dropped signature is refused.
    #[test]
    fn signed_trailer_signature_is_checked() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let cred =
            sigv4::Credential::parse("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request")
                .unwrap();
        let key = SigningKey::derive(secret, &cred);
        let (date, scope) = ("20130524T000000Z", cred.scope());
        let seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
        let data = b"hello trailer";
        let sign = |previous: &str, chunk: &[u8]| {
            let sts = sigv4::chunk_string_to_sign(
                date,
                &scope,
                previous,
                &hex::encode(sha2::Sha256::digest(chunk)),
            );
            key.sign(&sts)
        };
        let s1 = sign(seed, data);
        let s2 = sign(&s1, b"");
        let crc = checksum_of(ChecksumAlgorithm::Crc32, data);
        let trailer_sig = |value: &str| {
            let canonical = format!("x-amz-checksum-crc32:{value}\n");
            let hash = hex::encode(sha2::Sha256::digest(canonical.as_bytes()));
            key.sign(&sigv4::trailer_string_to_sign(date, &scope, &s2, &hash))
        };
        let body = |value: &str, sig: Option<&str>| {
            let mut b = format!(
                "{:x};chunk-signature={s1}\r\nhello trailer\r\n0;chunk-signature={s2}\r\nx-amz-checksum-crc32:{value}\r\n",
                data.len()
            );
            if let Some(sig) = sig {
                b.push_str(&format!("x-amz-trailer-signature:{sig}\r\n"));
            }
            b.push_str("\r\n");
            b
        };
        let decode = |body: String| {
            let slot = Arc::new(Mutex::new(None));
            let chunked = AwsChunkedReader::new(
                std::io::Cursor::new(body.into_bytes()),
                ChunkSigning::Signed {
                    key: key.clone(),
                    amz_date: date.into(),
                    scope: scope.clone(),
                    previous: seed.into(),
                },
                Some("x-amz-checksum-crc32".into()),
                slot.clone(),
            );
            let mut r = CheckedReader::new(
                chunked,
                BodyChecks {
                    length: Some(data.len() as u64),
                    checksum: Some((ChecksumAlgorithm::Crc32, ExpectedChecksum::Trailer(slot))),
                    ..BodyChecks::default()
                },
            );
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out).map_err(|e| {
                e.get_ref()
                    .unwrap()
                    .downcast_ref::<BodyError>()
                    .unwrap()
                    .0
                    .code
            })
        };
        let good = trailer_sig(&crc);
        assert_eq!(decode(body(&crc, Some(&good))).unwrap(), data);
        // The signature is missing, or signs another checksum.
        assert_eq!(
            decode(body(&crc, None)).unwrap_err(),
            "SignatureDoesNotMatch"
        );
        let other = checksum_of(ChecksumAlgorithm::Crc32, b"other");
        assert_eq!(
            decode(body(&other, Some(&good))).unwrap_err(),
            "SignatureDoesNotMatch"
        );
        // Signed consistently but wrong for the data: the checksum catches it.
        assert_eq!(
            decode(body(&other, Some(&trailer_sig(&other)))).unwrap_err(),
            "BadDigest"
        );
    }

    #[test]
    fn unsigned_trailer_checksum_is_checked() {
        let data = b"hello world";
        let crc = checksum_of(ChecksumAlgorithm::Crc32, data);
        let run = |value: &str| {
            let body = format!("b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:{value}\r\n\r\n");
            let slot = Arc::new(Mutex::new(None));
            let chunked = AwsChunkedReader::new(
                body.as_bytes(),
                ChunkSigning::Unsigned,
                Some("x-amz-checksum-crc32".into()),
                slot.clone(),
            );
            let mut r = CheckedReader::new(
                chunked,
                BodyChecks {
                    length: Some(11),
                    checksum: Some((ChecksumAlgorithm::Crc32, ExpectedChecksum::Trailer(slot))),
                    ..BodyChecks::default()
                },
            );
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        };
        assert_eq!(run(&crc).unwrap(), data);
        assert!(run("AAAAAA==").is_err());
    }

    #[test]
    fn checked_reader_catches_each_mismatch() {
        let data = b"0123456789";
        let read = |checks: BodyChecks| {
            let mut out = Vec::new();
            CheckedReader::new(&data[..], checks)
                .read_to_end(&mut out)
                .map_err(|e| {
                    e.get_ref()
                        .unwrap()
                        .downcast_ref::<BodyError>()
                        .unwrap()
                        .0
                        .code
                })
        };
        assert!(read(BodyChecks::default()).is_ok());
        let sha = hex::encode(sha2::Sha256::digest(data));
        let ok = BodyChecks {
            length: Some(10),
            sha256_hex: Some(sha.clone()),
            md5_base64: Some(
                base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data)),
            ),
            checksum: Some((
                ChecksumAlgorithm::Crc32c,
                ExpectedChecksum::Header(checksum_of(ChecksumAlgorithm::Crc32c, data)),
            )),
            verified: Some(Arc::default()),
        };
        let verified = ok.verified.clone().unwrap();
        assert!(read(ok).is_ok());
        // The matching CRC is recorded (hex) for R2 to store.
        let crc32c = base64::engine::general_purpose::STANDARD
            .decode(checksum_of(ChecksumAlgorithm::Crc32c, data))
            .unwrap();
        assert_eq!(verified.lock().unwrap().crc32c, Some(hex::encode(crc32c)));
        let short = BodyChecks {
            length: Some(11),
            ..BodyChecks::default()
        };
        assert_eq!(read(short).unwrap_err(), "IncompleteBody");
        let long = BodyChecks {
            length: Some(9),
            ..BodyChecks::default()
        };
        assert_eq!(read(long).unwrap_err(), "InvalidRequest");
        let sha_bad = BodyChecks {
            sha256_hex: Some(sigv4::EMPTY_SHA256.into()),
            ..BodyChecks::default()
        };
        assert_eq!(read(sha_bad).unwrap_err(), "XAmzContentSHA256Mismatch");
        let md5_bad = BodyChecks {
            md5_base64: Some("1B2M2Y8AsgTpgAmY7PhCfg==".into()),
            ..BodyChecks::default()
        };
        assert_eq!(read(md5_bad).unwrap_err(), "BadDigest");
        // Known values: CRC32 of "123456789" is cbf43926.
        assert_eq!(
            checksum_of(ChecksumAlgorithm::Crc32, b"123456789"),
            base64::engine::general_purpose::STANDARD.encode(0xcbf4_3926u32.to_be_bytes())
        );
        assert_eq!(
            checksum_of(ChecksumAlgorithm::Crc32c, b"123456789"),
            base64::engine::general_purpose::STANDARD.encode(0xe306_9283u32.to_be_bytes())
        );
    }
}
