//! R2: the `R2Bucket` contract of Cloudflare Workers, over blob files with
//! SQLite metadata.
//!
//! # On disk
//!
//! One directory per bucket, chosen by the caller:
//!
//! ```text
//! <bucket dir>/
//!   metadata.sqlite              objects, multipart uploads, parts (WAL, synchronous=FULL)
//!   blobs/<version id>           bytes of a single-part object version
//!   multipart/<upload id>/<part number>-<random>   bytes of one uploaded part
//!   .lock                        advisory lock: shared while open, exclusive to sweep
//! ```
//!
//! # Durability
//!
//! A write first streams the body into a temporary file beside its final
//! name (hashing as it goes), fsyncs it and renames it into place; only then
//! does the SQLite transaction that makes it visible commit; only after that
//! is the replaced version's file removed. A crash at any point leaves either
//! the old object or the new one. The leftovers of a crash (a temporary, a
//! blob whose row never committed, a replaced blob not yet removed) are
//! referenced by no row and are swept when the bucket is next opened by a
//! process that finds no other process holding it open.
//!
//! # Multipart objects
//!
//! Completing an upload copies no bytes: the object row points at the
//! upload, whose part files stay where they were written, and a read chains
//! them. Completion is then one SQLite transaction, atomic and independent of
//! the object's size, and never needs the object in memory.
//!
//! # Semantics worth knowing
//!
//! - A multipart upload neither completed nor aborted within
//!   [`R2Limits::abort_multipart_uploads_after`] (R2's default lifecycle
//!   rule: 7 days, by the bucket's clock) is aborted and its part files
//!   removed: when the bucket opens, and on each pass of
//!   [`R2Bucket::spawn_upload_expirer`].
//! - `list` honours `include`: without it, `http_metadata` and
//!   `custom_metadata` are `None` (Cloudflare's behaviour since compatibility
//!   date 2022-08-04, flag `r2_list_honor_include`; a runtime emulating an
//!   older date passes both includes).
//! - Delimited prefixes count toward `limit` like objects; the cursor skips
//!   the whole group, so a prefix is never returned twice.
//! - Conditionals follow RFC 7232's precedence as R2 does (see
//!   [`R2Conditional::passes`]).
//! - A multipart part's etag is the hex MD5 of its bytes; the object's etag
//!   is the MD5 of the concatenated binary part MD5s, then `-<part count>`.
//!   Parts may be listed in any order when completing; the object is
//!   assembled in part-number order. Listing a part twice is an error.
//!
//! Where Hearth chooses (the sources do not settle it):
//!
//! - An upload id this bucket never issued (or issued for another key) is
//!   `NoSuchUpload` for `uploadPart`, `complete` and `abort` alike.
//! - `list` returns up to `limit` entries even with `include`; R2 may return
//!   fewer, so callers must page on `truncated`, never on the count.
//! - A cursor that does not decode is an [`R2Error::InvalidArgument`] with
//!   Hearth's own message.
//! - In the header form of conditions, unquoted etags are accepted as strong
//!   etags, and unparseable dates are ignored (RFC 7232).
//! - Only the `Standard` storage class exists.
//!
//! Thread-safe: an [`R2Bucket`] is a cheap handle (`Clone`, `Send`, `Sync`).
//! Body readers keep the files they read alive within this process; another
//! process replacing an object mid-read can cut short a multipart read.

mod conditional;
mod error;
mod expiry;
mod fs;
mod s3;
mod sqlite;
mod validate;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use hearth_core::SharedClock;
use md5::Digest as _;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

pub use conditional::{R2Conditional, R2Etag, format_http_date, parse_etag_list, parse_http_date};
pub use error::R2Error;
pub use expiry::UploadExpirerHandle;
pub use fs::R2Body;
pub use s3::{HEAD_CONCURRENCY, IMPORT_PART_BYTES, MAX_BUFFERED_PUT, S3Config, S3Store};
pub use validate::{
    ABORT_MULTIPART_UPLOADS_AFTER, MAX_CUSTOM_METADATA_BYTES, MAX_DELETE_KEYS, MAX_KEY_BYTES,
    MAX_LIST_KEYS, MAX_OBJECT_BYTES, MAX_PART_NUMBER, MAX_UPLOAD_BYTES, MIN_PART_BYTES, R2Limits,
    custom_metadata_size,
};

use fs::{BLOBS_DIR, BlobFiles, MULTIPART_DIR, Segment};
use sqlite::{Bound, ObjectRow, PartRow};

/// The storage class of every object; Hearth has only one.
pub const STORAGE_CLASS_STANDARD: &str = "Standard";

/// HTTP headers stored with an object (`R2HTTPMetadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct R2HttpMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// Milliseconds since the Unix epoch (`Expires`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_expiry: Option<u64>,
}

impl R2HttpMetadata {
    /// Takes the metadata from request headers, as `put` does when given a
    /// `Headers` object. Names are matched case-insensitively.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut m = Self::default();
        for (name, value) in headers {
            let v = Some(value.to_string());
            match name.to_ascii_lowercase().as_str() {
                "content-type" => m.content_type = v,
                "content-language" => m.content_language = v,
                "content-disposition" => m.content_disposition = v,
                "content-encoding" => m.content_encoding = v,
                "cache-control" => m.cache_control = v,
                "expires" => m.cache_expiry = parse_http_date(value),
                _ => {}
            }
        }
        m
    }

    /// The headers `writeHttpMetadata()` sets, lower-case names.
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let fields = [
            ("content-type", &self.content_type),
            ("content-language", &self.content_language),
            ("content-disposition", &self.content_disposition),
            ("content-encoding", &self.content_encoding),
            ("cache-control", &self.cache_control),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
        if let Some(ms) = self.cache_expiry {
            out.push(("expires", format_http_date(ms)));
        }
        out
    }
}

/// Stored checksums, lower-case hex (the form `R2Checksums.toJSON()` gives).
/// MD5 is always present for single-part objects; the others only when the
/// writer supplied that checksum. Multipart objects carry none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct R2Checksums {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha384: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha512: Option<String>,
    /// CRC checksums an S3 client sent (`x-amz-checksum-crc*`), verified
    /// by the S3 endpoint; not part of the Workers API's `R2Checksums`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
}

impl R2Checksums {
    /// Fills each checksum this one lacks from `other`.
    pub fn merge_missing(&mut self, other: &R2Checksums) {
        let pairs = [
            (&mut self.md5, &other.md5),
            (&mut self.sha1, &other.sha1),
            (&mut self.sha256, &other.sha256),
            (&mut self.sha384, &other.sha384),
            (&mut self.sha512, &other.sha512),
            (&mut self.crc32, &other.crc32),
            (&mut self.crc32c, &other.crc32c),
            (&mut self.crc64nvme, &other.crc64nvme),
        ];
        for (mine, theirs) in pairs {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
    }
}

/// The hash algorithms `put` can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum R2HashAlgorithm {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl R2HashAlgorithm {
    /// The name R2 uses in messages.
    pub fn name(self) -> &'static str {
        match self {
            R2HashAlgorithm::Md5 => "MD5",
            R2HashAlgorithm::Sha1 => "SHA-1",
            R2HashAlgorithm::Sha256 => "SHA-256",
            R2HashAlgorithm::Sha384 => "SHA-384",
            R2HashAlgorithm::Sha512 => "SHA-512",
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            R2HashAlgorithm::Md5 => 16,
            R2HashAlgorithm::Sha1 => 20,
            R2HashAlgorithm::Sha256 => 32,
            R2HashAlgorithm::Sha384 => 48,
            R2HashAlgorithm::Sha512 => 64,
        }
    }
}

/// The checksum a writer expects the body to have (`put`'s `md5` ..
/// `sha512` options; R2 accepts only one per call, which this type enforces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2ExpectedChecksum {
    algorithm: R2HashAlgorithm,
    digest: Vec<u8>,
}

impl R2ExpectedChecksum {
    /// From a hex string, checked as the Workers runtime checks it.
    pub fn from_hex(algorithm: R2HashAlgorithm, hex_digest: &str) -> Result<Self, R2Error> {
        let name = algorithm.name();
        let want = algorithm.digest_len() * 2;
        if hex_digest.len() != want {
            return Err(R2Error::invalid(format!(
                "{name} is {want} hex characters, not {}",
                hex_digest.len()
            )));
        }
        let digest = hex::decode(hex_digest)
            .map_err(|_| R2Error::invalid(format!("Provided {name} wasn't a valid hex string")))?;
        Ok(Self { algorithm, digest })
    }

    /// From raw digest bytes (an `ArrayBuffer` in the Workers API).
    pub fn from_bytes(algorithm: R2HashAlgorithm, digest: &[u8]) -> Result<Self, R2Error> {
        let want = algorithm.digest_len();
        if digest.len() != want {
            return Err(R2Error::invalid(format!(
                "{} is {want} bytes, not {}",
                algorithm.name(),
                digest.len()
            )));
        }
        Ok(Self {
            algorithm,
            digest: digest.to_vec(),
        })
    }

    pub fn algorithm(&self) -> R2HashAlgorithm {
        self.algorithm
    }
}

/// The bytes of an object a result describes (`R2Range` on a result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct R2ObjectRange {
    pub offset: u64,
    pub length: u64,
}

/// A requested byte range (`R2GetOptions.range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum R2Range {
    /// From `offset`, `length` bytes or to the end.
    Offset { offset: u64, length: Option<u64> },
    /// The first `length` bytes.
    Length { length: u64 },
    /// The last `suffix` bytes.
    Suffix { suffix: u64 },
}

/// Metadata of a stored object (`R2Object`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2Object {
    pub key: String,
    /// Random, unique to this upload of the key.
    pub version: String,
    pub size: u64,
    pub etag: String,
    /// Milliseconds since the Unix epoch.
    pub uploaded: u64,
    /// `None` only in `list` results that did not ask for it.
    pub http_metadata: Option<R2HttpMetadata>,
    /// `None` only in `list` results that did not ask for it.
    pub custom_metadata: Option<BTreeMap<String, String>>,
    pub range: Option<R2ObjectRange>,
    pub checksums: R2Checksums,
    pub storage_class: String,
}

impl R2Object {
    /// The etag quoted for use as an HTTP header.
    pub fn http_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }
}

/// An object with its body (`R2ObjectBody`).
#[derive(Debug)]
pub struct R2ObjectBody {
    pub object: R2Object,
    pub body: R2Body,
}

/// What `get` found for an existing key.
#[derive(Debug)]
pub enum R2GetResult {
    Body(R2ObjectBody),
    /// A condition in `only_if` failed: the metadata, and no body.
    PreconditionFailed(R2Object),
}

impl R2GetResult {
    pub fn object(&self) -> &R2Object {
        match self {
            R2GetResult::Body(b) => &b.object,
            R2GetResult::PreconditionFailed(o) => o,
        }
    }

    pub fn into_body(self) -> Option<R2ObjectBody> {
        match self {
            R2GetResult::Body(b) => Some(b),
            R2GetResult::PreconditionFailed(_) => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct R2GetOptions {
    pub only_if: Option<R2Conditional>,
    pub range: Option<R2Range>,
}

#[derive(Debug, Clone, Default)]
pub struct R2PutOptions {
    pub only_if: Option<R2Conditional>,
    pub http_metadata: Option<R2HttpMetadata>,
    pub custom_metadata: Option<BTreeMap<String, String>>,
    pub checksum: Option<R2ExpectedChecksum>,
    /// Checksums the caller verified while `put` read the body (the S3
    /// endpoint's CRCs, known only once the body ends), stored with the
    /// object at commit.
    pub verified_checksums: Option<Arc<Mutex<R2Checksums>>>,
}

/// Optional metadata a `list` may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum R2ListInclude {
    HttpMetadata,
    CustomMetadata,
}

impl std::str::FromStr for R2ListInclude {
    type Err = R2Error;

    fn from_str(s: &str) -> Result<Self, R2Error> {
        match s {
            "httpMetadata" => Ok(R2ListInclude::HttpMetadata),
            "customMetadata" => Ok(R2ListInclude::CustomMetadata),
            other => Err(R2Error::invalid(format!(
                "Unsupported include value {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct R2ListOptions {
    /// 1 ..= `R2Limits::max_list_keys`; default that maximum.
    pub limit: Option<usize>,
    pub prefix: Option<String>,
    pub cursor: Option<String>,
    /// An empty delimiter is the same as none.
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    pub include: Vec<R2ListInclude>,
}

/// A page of `list` (`R2Objects`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2Objects {
    pub objects: Vec<R2Object>,
    pub truncated: bool,
    /// Present exactly when `truncated`.
    pub cursor: Option<String>,
    pub delimited_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct R2MultipartOptions {
    pub http_metadata: Option<R2HttpMetadata>,
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

/// A part as `uploadPart` returns it and `complete` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2UploadedPart {
    pub part_number: u32,
    pub etag: String,
}

/// An unfinished multipart upload, as `list_multipart_uploads` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2UploadInfo {
    pub key: String,
    pub upload_id: String,
    /// Milliseconds since the Unix epoch.
    pub created: u64,
}

/// An uploaded part, as `list_parts` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2PartInfo {
    pub part_number: u32,
    /// Hex MD5 of the part's bytes.
    pub etag: String,
    pub size: u64,
}

/// One R2 bucket: embedded (blob files and SQLite in a directory) or on
/// an S3-compatible store.
#[derive(Clone, Debug)]
pub struct R2Bucket {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Local(LocalBucket),
    S3(Arc<s3::S3Bucket>),
}

/// The embedded backend.
#[derive(Clone)]
struct LocalBucket {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    clock: SharedClock,
    limits: R2Limits,
    db: Mutex<Connection>,
    files: Arc<BlobFiles>,
    /// Held (shared) for the bucket's lifetime so another process's start-up
    /// sweep cannot remove a blob this one is about to commit.
    _lock: File,
}

impl std::fmt::Debug for LocalBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("R2Bucket")
            .field("root", &self.inner.root)
            .finish()
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Ids this bucket hands out are 32 lower-case hex digits; anything else
/// cannot name an upload (and must never become a path component).
fn is_our_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<String, R2Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| R2Error::invalid(format!("list: invalid cursor {cursor:?}")))
}

/// The least string greater than every string that starts with `prefix`.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        let mut n = c as u32 + 1;
        if n == 0xD800 {
            n = 0xE000;
        }
        if let Some(next) = char::from_u32(n) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn to_object(
    row: ObjectRow,
    with_http: bool,
    with_custom: bool,
    range: Option<R2ObjectRange>,
) -> R2Object {
    R2Object {
        key: row.key,
        version: row.version,
        size: row.size,
        etag: row.etag,
        uploaded: row.uploaded,
        http_metadata: with_http.then_some(row.http_metadata),
        custom_metadata: with_custom.then_some(row.custom_metadata),
        range,
        checksums: row.checksums,
        storage_class: STORAGE_CLASS_STANDARD.to_string(),
    }
}

fn full_range(size: u64) -> Option<R2ObjectRange> {
    Some(R2ObjectRange {
        offset: 0,
        length: size,
    })
}

impl LocalBucket {
    /// Opens (creating if needed) the bucket stored in `dir`.
    pub fn open(
        dir: impl AsRef<Path>,
        clock: SharedClock,
        limits: R2Limits,
    ) -> Result<Self, R2Error> {
        let root = dir.as_ref().to_path_buf();
        let fail = |reason: String| R2Error::Open {
            path: root.display().to_string(),
            reason,
        };
        for sub in [BLOBS_DIR, MULTIPART_DIR] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| fail(e.to_string()))?;
        }
        let lock = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(root.join(".lock"))
            .map_err(|e| fail(format!("lock file: {e}")))?;
        let exclusive = match lock.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => return Err(fail(format!("lock: {e}"))),
        };
        let meta = root.join("metadata.sqlite");
        let mut conn = hearth_core::sqlite::open(&meta).map_err(|e| fail(e.to_string()))?;
        hearth_core::sqlite::migrate(&mut conn, &meta, sqlite::SCHEMA_STEPS)
            .map_err(|e| fail(e.to_string()))?;
        let files = Arc::new(BlobFiles::new(root.clone()));
        if exclusive {
            // No other process has the bucket open: whatever no row
            // references is a crash leftover.
            let referenced: HashSet<String> = sqlite::referenced_blobs(&conn)
                .map_err(|e| fail(e.to_string()))?
                .into_iter()
                .collect();
            files
                .sweep(&referenced)
                .map_err(|e| fail(format!("sweeping leftovers: {e}")))?;
            lock.unlock().map_err(|e| fail(format!("lock: {e}")))?;
        }
        lock.lock_shared().map_err(|e| fail(format!("lock: {e}")))?;
        let bucket = Self {
            inner: Arc::new(Inner {
                root,
                clock,
                limits,
                db: Mutex::new(conn),
                files,
                _lock: lock,
            }),
        };
        bucket.abort_expired_uploads()?;
        Ok(bucket)
    }

    /// Aborts every unfinished multipart upload older than
    /// [`R2Limits::abort_multipart_uploads_after`] (by the bucket's clock)
    /// and removes its parts' files, as R2's default lifecycle rule does.
    /// A later call on such an upload gets `NoSuchUpload`. Runs when the
    /// bucket opens; [`R2Bucket::spawn_upload_expirer`] repeats it.
    /// Returns how many uploads were aborted.
    pub fn abort_expired_uploads(&self) -> Result<usize, R2Error> {
        const OP: &str = "abortMultipartUpload";
        let inner = &self.inner;
        let max_age = u64::try_from(inner.limits.abort_multipart_uploads_after.as_millis())
            .unwrap_or(u64::MAX);
        let Some(created_by) = inner.clock.now_ms().checked_sub(max_age) else {
            return Ok(0);
        };
        let (aborted, freed) = {
            let mut conn = self.db();
            let tx = conn.transaction().map_err(R2Error::sql(OP))?;
            let run = || -> rusqlite::Result<(usize, Vec<String>)> {
                let expired = sqlite::uploads_created_by(&tx, created_by)?;
                let mut freed = Vec::new();
                for upload_id in &expired {
                    freed.extend(sqlite::delete_parts(&tx, upload_id, &[])?);
                    sqlite::set_upload_state(&tx, upload_id, sqlite::ABORTED)?;
                }
                Ok((expired.len(), freed))
            };
            let out = run().map_err(R2Error::sql(OP))?;
            tx.commit().map_err(R2Error::sql(OP))?;
            out
        };
        inner.files.release(freed);
        Ok(aborted)
    }

    /// Starts a thread that calls [`R2Bucket::abort_expired_uploads`]
    /// every `every` until the handle is dropped.
    pub fn limits(&self) -> &R2Limits {
        &self.inner.limits
    }

    /// Like [`R2Bucket::open`], but returns the handle already open on the
    /// same directory in this process, if any, so every user in the process
    /// (a worker's binding, the S3 endpoint) shares one handle: one SQLite
    /// connection, and one set of pins keeping files alive under readers.
    /// The clock and limits of the first opener stay in force.
    pub fn open_shared(
        dir: impl AsRef<Path>,
        clock: SharedClock,
        limits: R2Limits,
    ) -> Result<Self, R2Error> {
        static OPEN: Mutex<Vec<(PathBuf, std::sync::Weak<Inner>)>> = Mutex::new(Vec::new());
        let dir = dir.as_ref();
        let fail = |reason: String| R2Error::Open {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let canonical = dir.canonicalize().map_err(|e| fail(e.to_string()))?;
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|(_, w)| w.strong_count() > 0);
        if let Some(inner) = open
            .iter()
            .find(|(p, _)| *p == canonical)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(Self { inner });
        }
        let bucket = Self::open(&canonical, clock, limits)?;
        open.push((canonical, Arc::downgrade(&bucket.inner)));
        Ok(bucket)
    }

    /// Whether both are the same handle (as [`R2Bucket::open_shared`] gives
    /// for one directory).
    pub fn same_handle(&self, other: &LocalBucket) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Unfinished multipart uploads whose key starts with `prefix`, by key
    /// then upload id, after the (key, upload id) position `after` (an
    /// empty upload id: after every upload of that key); at most `limit`.
    pub fn list_multipart_uploads(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<R2UploadInfo>, R2Error> {
        const OP: &str = "listMultipartUploads";
        let after = after.map(|(k, id)| {
            // "After every upload of k": past the largest possible id.
            if id.is_empty() {
                (k, "\u{10FFFF}")
            } else {
                (k, id)
            }
        });
        let rows = sqlite::uploads_in_progress(&self.db(), prefix, after, limit)
            .map_err(R2Error::sql(OP))?;
        Ok(rows
            .into_iter()
            .map(|(key, upload_id, created)| R2UploadInfo {
                key,
                upload_id,
                created,
            })
            .collect())
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // The connection stays consistent across a panic: transactions roll
        // back when dropped.
        self.inner.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The object's metadata, or `None` when the key does not exist.
    pub fn head(&self, key: &str) -> Result<Option<R2Object>, R2Error> {
        self.inner.limits.key("head", key)?;
        let row = sqlite::get_object(&self.db(), key).map_err(R2Error::sql("head"))?;
        Ok(row.map(|r| {
            let range = full_range(r.size);
            to_object(r, true, true, range)
        }))
    }

    /// The object with a streaming body (or only its metadata when a
    /// condition failed), or `None` when the key does not exist.
    pub fn get(&self, key: &str, options: &R2GetOptions) -> Result<Option<R2GetResult>, R2Error> {
        const OP: &str = "get";
        self.inner.limits.key(OP, key)?;
        let (object, segments) = {
            let conn = self.db();
            let Some(row) = sqlite::get_object(&conn, key).map_err(R2Error::sql(OP))? else {
                return Ok(None);
            };
            if let Some(cond) = &options.only_if
                && !cond.passes(Some((&row.etag, row.uploaded)))
            {
                let range = full_range(row.size);
                return Ok(Some(R2GetResult::PreconditionFailed(to_object(
                    row, true, true, range,
                ))));
            }
            let range = match &options.range {
                Some(r) => validate::resolve_range(r, row.size)?,
                None => R2ObjectRange {
                    offset: 0,
                    length: row.size,
                },
            };
            let segments = self.segments(&conn, &row, range)?;
            let rels: Vec<String> = segments.iter().map(|s| s.rel.clone()).collect();
            // Pinned before the lock is released, so no writer can remove them.
            self.inner.files.pin(&rels);
            (to_object(row, true, true, Some(range)), segments)
        };
        let pinned = segments.iter().map(|s| s.rel.clone()).collect();
        let mut body = R2Body::new(self.inner.files.clone(), segments, pinned);
        body.prime().map_err(R2Error::io(OP))?;
        Ok(Some(R2GetResult::Body(R2ObjectBody { object, body })))
    }

    fn segments(
        &self,
        conn: &Connection,
        row: &ObjectRow,
        range: R2ObjectRange,
    ) -> Result<Vec<Segment>, R2Error> {
        if range.length == 0 {
            return Ok(Vec::new());
        }
        if let Some(blob) = &row.blob {
            return Ok(vec![Segment {
                rel: blob.clone(),
                offset: range.offset,
                len: range.length,
            }]);
        }
        let Some(upload_id) = &row.upload_id else {
            return Err(R2Error::InternalError { op: "get" });
        };
        let parts = sqlite::parts_of(conn, upload_id).map_err(R2Error::sql("get"))?;
        let (want_start, want_end) = (range.offset, range.offset + range.length);
        let mut out = Vec::new();
        let mut start = 0u64;
        for p in parts {
            let end = start + p.size;
            if end > want_start && start < want_end {
                let from = want_start.max(start);
                let to = want_end.min(end);
                out.push(Segment {
                    rel: p.blob,
                    offset: from - start,
                    len: to - from,
                });
            }
            start = end;
        }
        Ok(out)
    }

    /// Stores `body` under `key`. Returns `None`, leaving the bucket as it
    /// was, when a condition in `only_if` failed. The body is streamed to
    /// disk and hashed on the way; it is never held in memory whole.
    pub fn put(
        &self,
        key: &str,
        mut body: impl Read,
        options: &R2PutOptions,
    ) -> Result<Option<R2Object>, R2Error> {
        const OP: &str = "put";
        let limits = &self.inner.limits;
        limits.key(OP, key)?;
        limits.custom_metadata(OP, options.custom_metadata.as_ref())?;
        // Cheap early answer; the decisive check is repeated at commit.
        if let Some(cond) = &options.only_if {
            let row = sqlite::get_object(&self.db(), key).map_err(R2Error::sql(OP))?;
            if !cond.passes(row.as_ref().map(|r| (r.etag.as_str(), r.uploaded))) {
                return Ok(None);
            }
        }
        let version = new_id();
        let rel = format!("{BLOBS_DIR}/{version}");
        let expected = options.checksum.as_ref();
        let extra = expected
            .map(|c| c.algorithm)
            .filter(|a| *a != R2HashAlgorithm::Md5);
        let pending =
            self.inner
                .files
                .write(OP, &rel, &mut body, limits.max_upload_bytes, extra)?;
        let size = pending.size;
        let digests = match pending.commit(OP) {
            Ok(d) => d,
            Err(e) => {
                self.inner.files.release(vec![rel]);
                return Err(e);
            }
        };
        let mut checksums = R2Checksums {
            md5: Some(hex::encode(&digests.md5)),
            ..R2Checksums::default()
        };
        if let Some(exp) = expected {
            let actual = match &digests.other {
                Some((_, d)) => d.clone(),
                None => digests.md5.clone(),
            };
            if actual != exp.digest {
                // Committed under a name no row refers to: just remove it.
                self.inner.files.release(vec![rel]);
                return Err(R2Error::BadDigest {
                    op: OP,
                    algorithm: exp.algorithm.name(),
                    provided: hex::encode(&exp.digest),
                    actual: hex::encode(&actual),
                });
            }
            let hex = Some(hex::encode(&actual));
            match exp.algorithm {
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
        let etag = hex::encode(&digests.md5);

        let committed = {
            let mut conn = self.db();
            let row = ObjectRow {
                key: key.to_string(),
                version,
                size,
                etag,
                uploaded: self.inner.clock.now_ms(),
                checksums,
                http_metadata: options.http_metadata.clone().unwrap_or_default(),
                custom_metadata: options.custom_metadata.clone().unwrap_or_default(),
                blob: Some(rel.clone()),
                upload_id: None,
            };
            let result = (|| -> rusqlite::Result<Option<Vec<String>>> {
                let tx = conn.transaction()?;
                let old = sqlite::get_object(&tx, key)?;
                if let Some(cond) = &options.only_if
                    && !cond.passes(old.as_ref().map(|r| (r.etag.as_str(), r.uploaded)))
                {
                    return Ok(None);
                }
                let mut freed = Vec::new();
                if let Some(old) = &old {
                    freed = sqlite::release_object_storage(&tx, old)?;
                }
                sqlite::put_object(&tx, &row)?;
                tx.commit()?;
                Ok(Some(freed))
            })();
            match result {
                Ok(Some(freed)) => Ok(Some((row, freed))),
                Ok(None) => Ok(None),
                Err(e) => Err(R2Error::Sqlite { op: OP, source: e }),
            }
        };
        match committed {
            Ok(Some((row, freed))) => {
                self.inner.files.release(freed);
                Ok(Some(to_object(row, true, true, None)))
            }
            Ok(None) => {
                self.inner.files.release(vec![rel]);
                Ok(None)
            }
            Err(e) => {
                self.inner.files.release(vec![rel]);
                Err(e)
            }
        }
    }

    /// Deletes one key; deleting a missing key succeeds.
    pub fn delete(&self, key: &str) -> Result<(), R2Error> {
        self.delete_checked(&[key])
    }

    /// Deletes up to `R2Limits::max_delete_keys` keys in one transaction.
    pub fn delete_keys<S: AsRef<str>>(&self, keys: &[S]) -> Result<(), R2Error> {
        self.inner.limits.delete_count(keys.len())?;
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.delete_checked(&keys)
    }

    fn delete_checked(&self, keys: &[&str]) -> Result<(), R2Error> {
        const OP: &str = "delete";
        for k in keys {
            self.inner.limits.key(OP, k)?;
        }
        let freed = {
            let mut conn = self.db();
            let mut run = || -> rusqlite::Result<Vec<String>> {
                let tx = conn.transaction()?;
                let mut freed = Vec::new();
                for k in keys {
                    freed.extend(sqlite::delete_object(&tx, k)?);
                }
                tx.commit()?;
                Ok(freed)
            };
            run().map_err(R2Error::sql(OP))?
        };
        self.inner.files.release(freed);
        Ok(())
    }

    /// One page of keys in lexicographic (UTF-8 byte) order.
    pub fn list(&self, options: &R2ListOptions) -> Result<R2Objects, R2Error> {
        const OP: &str = "list";
        let limit = self.inner.limits.list_limit(options.limit)?;
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
        let mut lower = match after {
            Some(a) if a.as_str() >= prefix => Bound::After(a),
            _ => Bound::From(prefix.to_string()),
        };

        enum Entry {
            Object(Box<ObjectRow>),
            Prefix(String),
        }
        let conn = self.db();
        let mut entries: Vec<Entry> = Vec::new();
        // One more than asked for tells whether the listing is truncated.
        'scan: while entries.len() <= limit {
            let want = limit + 1 - entries.len();
            let rows = sqlite::scan_objects(&conn, &lower, want).map_err(R2Error::sql(OP))?;
            if rows.is_empty() {
                break;
            }
            let mut last_key = None;
            for row in rows {
                if !row.key.starts_with(prefix) {
                    break 'scan;
                }
                if let Some(d) = delimiter
                    && let Some(i) = row.key[prefix.len()..].find(d)
                {
                    let rolled = row.key[..prefix.len() + i + d.len()].to_string();
                    // Skip the rest of the group with one seek.
                    match prefix_successor(&rolled) {
                        Some(next) => lower = Bound::From(next),
                        None => {
                            entries.push(Entry::Prefix(rolled));
                            break 'scan;
                        }
                    }
                    entries.push(Entry::Prefix(rolled));
                    continue 'scan;
                }
                last_key = Some(row.key.clone());
                entries.push(Entry::Object(Box::new(row)));
            }
            match last_key {
                Some(k) => lower = Bound::After(k),
                None => break,
            }
        }

        let truncated = entries.len() > limit;
        entries.truncate(limit);
        let cursor = if truncated {
            let resume_after = match entries.last() {
                Some(Entry::Object(row)) => Some(row.key.clone()),
                Some(Entry::Prefix(p)) => {
                    let end = prefix_successor(p);
                    sqlite::last_key_with_prefix(&conn, p, end.as_deref())
                        .map_err(R2Error::sql(OP))?
                }
                None => None,
            };
            resume_after.map(|k| encode_cursor(&k))
        } else {
            None
        };
        drop(conn);

        let mut objects = Vec::new();
        let mut delimited_prefixes = Vec::new();
        for e in entries {
            match e {
                Entry::Object(row) => objects.push(to_object(*row, with_http, with_custom, None)),
                Entry::Prefix(p) => delimited_prefixes.push(p),
            }
        }
        Ok(R2Objects {
            objects,
            truncated: cursor.is_some(),
            cursor,
            delimited_prefixes,
        })
    }

    /// Starts a multipart upload; the metadata given here is the object's.
    pub fn create_multipart_upload(
        &self,
        key: &str,
        options: &R2MultipartOptions,
    ) -> Result<R2MultipartUpload, R2Error> {
        const OP: &str = "createMultipartUpload";
        self.inner.limits.key(OP, key)?;
        self.inner
            .limits
            .custom_metadata(OP, options.custom_metadata.as_ref())?;
        let upload_id = new_id();
        sqlite::create_upload(
            &self.db(),
            &upload_id,
            key,
            &options.http_metadata.clone().unwrap_or_default(),
            &options.custom_metadata.clone().unwrap_or_default(),
            self.inner.clock.now_ms(),
        )
        .map_err(R2Error::sql(OP))?;
        Ok(R2MultipartUpload {
            bucket: R2Bucket {
                repr: Repr::Local(self.clone()),
            },
            key: key.to_string(),
            upload_id,
        })
    }
}

impl R2Bucket {
    /// Opens (creating if needed) the embedded bucket stored in `dir`.
    pub fn open(
        dir: impl AsRef<Path>,
        clock: SharedClock,
        limits: R2Limits,
    ) -> Result<Self, R2Error> {
        Ok(Self {
            repr: Repr::Local(LocalBucket::open(dir, clock, limits)?),
        })
    }

    /// Like [`R2Bucket::open`], but returns the handle already open on the
    /// same directory in this process, if any, so every user in the process
    /// (a worker's binding, the S3 endpoint) shares one handle: one SQLite
    /// connection, and one set of pins keeping files alive under readers.
    /// The clock and limits of the first opener stay in force.
    pub fn open_shared(
        dir: impl AsRef<Path>,
        clock: SharedClock,
        limits: R2Limits,
    ) -> Result<Self, R2Error> {
        Ok(Self {
            repr: Repr::Local(LocalBucket::open_shared(dir, clock, limits)?),
        })
    }

    /// The bucket `name` on an S3-compatible store: its objects are the
    /// store's objects under `<prefix>r2/<name>/` (see the `s3` module's
    /// notes on layout, races and costs).
    pub fn open_s3(
        store: Arc<S3Store>,
        name: &str,
        clock: SharedClock,
        limits: R2Limits,
    ) -> Result<Self, R2Error> {
        Ok(Self {
            repr: Repr::S3(Arc::new(s3::S3Bucket::open(store, name, clock, limits)?)),
        })
    }

    /// Where the bucket keeps its objects, for health reports.
    pub fn describe(&self) -> String {
        match &self.repr {
            Repr::Local(l) => format!("fs+sqlite:{}", l.inner.root.display()),
            Repr::S3(b) => b.describe(),
        }
    }

    /// Aborts every unfinished multipart upload older than
    /// [`R2Limits::abort_multipart_uploads_after`] (by the bucket's clock)
    /// and frees its parts, as R2's default lifecycle rule does. A later
    /// call on such an upload gets `NoSuchUpload`. Runs when an embedded
    /// bucket opens; [`R2Bucket::spawn_upload_expirer`] repeats it.
    /// Returns how many uploads were aborted.
    pub fn abort_expired_uploads(&self) -> Result<usize, R2Error> {
        match &self.repr {
            Repr::Local(l) => l.abort_expired_uploads(),
            Repr::S3(b) => b.abort_expired_uploads(),
        }
    }

    /// Starts a thread that calls [`R2Bucket::abort_expired_uploads`]
    /// every `every` until the handle is dropped.
    pub fn spawn_upload_expirer(
        &self,
        every: std::time::Duration,
    ) -> Result<UploadExpirerHandle, R2Error> {
        UploadExpirerHandle::spawn(self, every)
    }

    pub fn limits(&self) -> &R2Limits {
        match &self.repr {
            Repr::Local(l) => l.limits(),
            Repr::S3(b) => &b.limits,
        }
    }

    /// Whether both are the same handle (as [`R2Bucket::open_shared`] gives
    /// for one directory).
    pub fn same_handle(&self, other: &R2Bucket) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::Local(a), Repr::Local(b)) => a.same_handle(b),
            (Repr::S3(a), Repr::S3(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Unfinished multipart uploads whose key starts with `prefix`, by key
    /// then upload id, after the (key, upload id) position `after` (an
    /// empty upload id: after every upload of that key); at most `limit`.
    pub fn list_multipart_uploads(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<R2UploadInfo>, R2Error> {
        match &self.repr {
            Repr::Local(l) => l.list_multipart_uploads(prefix, after, limit),
            Repr::S3(b) => b.list_multipart_uploads(prefix, after, limit),
        }
    }

    /// The object's metadata, or `None` when the key does not exist.
    pub fn head(&self, key: &str) -> Result<Option<R2Object>, R2Error> {
        match &self.repr {
            Repr::Local(l) => l.head(key),
            Repr::S3(b) => b.head(key),
        }
    }

    /// The object with a streaming body (or only its metadata when a
    /// condition failed), or `None` when the key does not exist.
    pub fn get(&self, key: &str, options: &R2GetOptions) -> Result<Option<R2GetResult>, R2Error> {
        match &self.repr {
            Repr::Local(l) => l.get(key, options),
            Repr::S3(b) => b.get(key, options),
        }
    }

    /// Stores `body` under `key`. Returns `None`, leaving the bucket as it
    /// was, when a condition in `only_if` failed.
    pub fn put(
        &self,
        key: &str,
        mut body: impl Read,
        options: &R2PutOptions,
    ) -> Result<Option<R2Object>, R2Error> {
        match &self.repr {
            Repr::Local(l) => l.put(key, body, options),
            Repr::S3(b) => b.put(key, &mut body, options),
        }
    }

    /// Copies `object` and its body in from another bucket, keeping R2's
    /// fields (version, upload time, etag, checksums, metadata) as they
    /// are; replaces any object of the key. Only an S3-store bucket takes
    /// imports (`hearth migrate` copies embedded buckets into the store).
    pub fn import(&self, object: &R2Object, mut body: impl Read) -> Result<(), R2Error> {
        match &self.repr {
            Repr::Local(_) => Err(R2Error::invalid(
                "import: only a bucket on an S3-compatible store takes imports",
            )),
            Repr::S3(b) => b.import(object, &mut body),
        }
    }

    /// Deletes one key; deleting a missing key succeeds.
    pub fn delete(&self, key: &str) -> Result<(), R2Error> {
        match &self.repr {
            Repr::Local(l) => l.delete(key),
            Repr::S3(b) => b.delete_keys(&[key]),
        }
    }

    /// Deletes up to `R2Limits::max_delete_keys` keys (in one transaction
    /// when embedded; one `DeleteObjects` call on S3).
    pub fn delete_keys<S: AsRef<str>>(&self, keys: &[S]) -> Result<(), R2Error> {
        match &self.repr {
            Repr::Local(l) => l.delete_keys(keys),
            Repr::S3(b) => {
                b.limits.delete_count(keys.len())?;
                let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
                b.delete_keys(&keys)
            }
        }
    }

    /// One page of keys in lexicographic (UTF-8 byte) order.
    pub fn list(&self, options: &R2ListOptions) -> Result<R2Objects, R2Error> {
        match &self.repr {
            Repr::Local(l) => l.list(options),
            Repr::S3(b) => b.list(options),
        }
    }

    /// Starts a multipart upload; the metadata given here is the object's.
    pub fn create_multipart_upload(
        &self,
        key: &str,
        options: &R2MultipartOptions,
    ) -> Result<R2MultipartUpload, R2Error> {
        match &self.repr {
            Repr::Local(l) => l.create_multipart_upload(key, options),
            Repr::S3(b) => {
                let upload_id = b.create_multipart_upload(
                    key,
                    options.http_metadata.clone().unwrap_or_default(),
                    options.custom_metadata.clone().unwrap_or_default(),
                )?;
                Ok(R2MultipartUpload {
                    bucket: self.clone(),
                    key: key.to_string(),
                    upload_id,
                })
            }
        }
    }

    /// A handle on an existing upload. Like R2, nothing is checked until the
    /// handle is used.
    pub fn resume_multipart_upload(&self, key: &str, upload_id: &str) -> R2MultipartUpload {
        R2MultipartUpload {
            bucket: self.clone(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        }
    }
}

/// An upload in progress (`R2MultipartUpload`).
#[derive(Debug, Clone)]
pub struct R2MultipartUpload {
    bucket: R2Bucket,
    key: String,
    upload_id: String,
}

impl R2MultipartUpload {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn upload_id(&self) -> &str {
        &self.upload_id
    }

    /// The parts uploaded so far, in part-number order, and when the upload
    /// was created. `NoSuchUpload` unless the upload is in progress.
    pub fn list_parts(&self) -> Result<(Vec<R2PartInfo>, u64), R2Error> {
        const OP: &str = "listParts";
        let local = match &self.bucket.repr {
            Repr::S3(b) => {
                let parts = b.list_parts(OP, &self.key, &self.upload_id)?;
                return Ok((parts, b.upload_created(&self.key, &self.upload_id)?));
            }
            Repr::Local(l) => l,
        };
        if !is_our_id(&self.upload_id) {
            return Err(R2Error::NoSuchUpload { op: OP });
        }
        let conn = local.db();
        self.in_progress(&conn, OP)?;
        let created = sqlite::upload_created(&conn, &self.upload_id, &self.key)
            .map_err(R2Error::sql(OP))?
            .unwrap_or(0);
        let parts = sqlite::parts_of(&conn, &self.upload_id).map_err(R2Error::sql(OP))?;
        Ok((
            parts
                .into_iter()
                .map(|p| R2PartInfo {
                    part_number: p.part_number,
                    etag: p.md5,
                    size: p.size,
                })
                .collect(),
            created,
        ))
    }

    fn in_progress(&self, conn: &Connection, op: &'static str) -> Result<(), R2Error> {
        match sqlite::get_upload(conn, &self.upload_id, &self.key).map_err(R2Error::sql(op))? {
            Some(u) if u.state == sqlite::IN_PROGRESS => Ok(()),
            _ => Err(R2Error::NoSuchUpload { op }),
        }
    }

    /// Uploads (or replaces) one part. Its etag is the hex MD5 of its bytes.
    pub fn upload_part(
        &self,
        part_number: u32,
        mut body: impl Read,
    ) -> Result<R2UploadedPart, R2Error> {
        const OP: &str = "uploadPart";
        let local = match &self.bucket.repr {
            Repr::S3(b) => {
                return b.upload_part(&self.key, &self.upload_id, part_number, &mut body);
            }
            Repr::Local(l) => l,
        };
        let inner = &local.inner;
        inner.limits.part_number(part_number)?;
        inner.limits.key(OP, &self.key)?;
        if !is_our_id(&self.upload_id) {
            return Err(R2Error::NoSuchUpload { op: OP });
        }
        self.in_progress(&local.db(), OP)?;
        let rel = format!(
            "{MULTIPART_DIR}/{}/{part_number}-{}",
            self.upload_id,
            new_id()
        );
        let pending =
            inner
                .files
                .write(OP, &rel, &mut body, inner.limits.max_upload_bytes, None)?;
        let size = pending.size;
        let digests = match pending.commit(OP) {
            Ok(d) => d,
            Err(e) => {
                inner.files.release(vec![rel]);
                return Err(e);
            }
        };
        let part = PartRow {
            part_number,
            blob: rel.clone(),
            size,
            md5: hex::encode(&digests.md5),
        };
        let result = {
            let mut conn = local.db();
            let mut run = || -> Result<Option<String>, R2Error> {
                let tx = conn.transaction().map_err(R2Error::sql(OP))?;
                self.in_progress(&tx, OP)?;
                let old =
                    sqlite::put_part(&tx, &self.upload_id, &part).map_err(R2Error::sql(OP))?;
                tx.commit().map_err(R2Error::sql(OP))?;
                Ok(old)
            };
            run()
        };
        match result {
            Ok(old) => {
                inner.files.release(old.into_iter().collect());
                Ok(R2UploadedPart {
                    part_number,
                    etag: part.md5,
                })
            }
            Err(e) => {
                inner.files.release(vec![rel]);
                Err(e)
            }
        }
    }

    /// Makes the listed parts the object, in part-number order. Parts not
    /// listed are discarded. Every part but the last (by number) must be at
    /// least `R2Limits::min_part_bytes` and all of them the same size; the
    /// last may not be larger than the others.
    pub fn complete(&self, parts: &[R2UploadedPart]) -> Result<R2Object, R2Error> {
        const OP: &str = "completeMultipartUpload";
        let local = match &self.bucket.repr {
            Repr::S3(b) => return b.complete(&self.key, &self.upload_id, parts),
            Repr::Local(l) => l,
        };
        let inner = &local.inner;
        for p in parts {
            inner.limits.part_number(p.part_number)?;
        }
        inner.limits.key(OP, &self.key)?;
        if !is_our_id(&self.upload_id) {
            return Err(R2Error::NoSuchUpload { op: OP });
        }
        let (row, freed) = {
            let mut conn = local.db();
            let tx = conn.transaction().map_err(R2Error::sql(OP))?;
            let upload = match sqlite::get_upload(&tx, &self.upload_id, &self.key)
                .map_err(R2Error::sql(OP))?
            {
                Some(u) if u.state == sqlite::IN_PROGRESS => u,
                _ => return Err(R2Error::NoSuchUpload { op: OP }),
            };
            let mut seen = HashSet::new();
            if !parts.iter().all(|p| seen.insert(p.part_number)) {
                return Err(R2Error::InternalError { op: OP });
            }
            let uploaded = sqlite::parts_of(&tx, &self.upload_id).map_err(R2Error::sql(OP))?;
            let mut chosen: Vec<PartRow> = Vec::with_capacity(parts.len());
            for p in parts {
                match uploaded
                    .iter()
                    .find(|u| u.part_number == p.part_number && u.md5 == p.etag)
                {
                    Some(u) => chosen.push(u.clone()),
                    None => return Err(R2Error::InvalidPart { op: OP }),
                }
            }
            let given: Vec<(u32, u64)> = chosen.iter().map(|p| (p.part_number, p.size)).collect();
            let size = validate::completed_parts(&given, &inner.limits, OP)?;
            chosen.sort_by_key(|p| p.part_number);
            let mut md5s = md5::Md5::new();
            for p in &chosen {
                let bin = hex::decode(&p.md5).map_err(|_| R2Error::InternalError { op: OP })?;
                md5s.update(&bin);
            }
            let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
            let row = ObjectRow {
                key: self.key.clone(),
                version: new_id(),
                size,
                etag,
                uploaded: inner.clock.now_ms(),
                checksums: R2Checksums::default(),
                http_metadata: upload.http_metadata,
                custom_metadata: upload.custom_metadata,
                blob: None,
                upload_id: Some(self.upload_id.clone()),
            };
            let keep: Vec<u32> = chosen.iter().map(|p| p.part_number).collect();
            let run = || -> rusqlite::Result<Vec<String>> {
                let mut freed = Vec::new();
                if let Some(old) = sqlite::get_object(&tx, &self.key)? {
                    freed = sqlite::release_object_storage(&tx, &old)?;
                }
                freed.extend(sqlite::delete_parts(&tx, &self.upload_id, &keep)?);
                sqlite::put_object(&tx, &row)?;
                sqlite::set_upload_state(&tx, &self.upload_id, sqlite::COMPLETED)?;
                Ok(freed)
            };
            let freed = run().map_err(R2Error::sql(OP))?;
            tx.commit().map_err(R2Error::sql(OP))?;
            (row, freed)
        };
        inner.files.release(freed);
        Ok(to_object(row, true, true, None))
    }

    /// Discards the upload and its parts. Aborting a finished (completed or
    /// aborted) upload does nothing, as on R2.
    pub fn abort(&self) -> Result<(), R2Error> {
        const OP: &str = "abortMultipartUpload";
        let local = match &self.bucket.repr {
            Repr::S3(b) => return b.abort(&self.key, &self.upload_id),
            Repr::Local(l) => l,
        };
        let inner = &local.inner;
        inner.limits.key(OP, &self.key)?;
        if !is_our_id(&self.upload_id) {
            return Err(R2Error::NoSuchUpload { op: OP });
        }
        let freed = {
            let mut conn = local.db();
            let tx = conn.transaction().map_err(R2Error::sql(OP))?;
            let state = match sqlite::get_upload(&tx, &self.upload_id, &self.key)
                .map_err(R2Error::sql(OP))?
            {
                None => return Err(R2Error::NoSuchUpload { op: OP }),
                Some(u) => u.state,
            };
            if state != sqlite::IN_PROGRESS {
                return Ok(());
            }
            let run = || -> rusqlite::Result<Vec<String>> {
                let freed = sqlite::delete_parts(&tx, &self.upload_id, &[])?;
                sqlite::set_upload_state(&tx, &self.upload_id, sqlite::ABORTED)?;
                Ok(freed)
            };
            let freed = run().map_err(R2Error::sql(OP))?;
            tx.commit().map_err(R2Error::sql(OP))?;
            freed
        };
        inner.files.release(freed);
        Ok(())
    }
}
