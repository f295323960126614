//! The blob half of the backend: object bytes in files under the bucket
//! directory, written atomically, read through a streaming reader, removed
//! only when no reader in this process still needs them.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use hearth_core::fs::AtomicFile;
use md5::Digest;

use crate::R2HashAlgorithm;
use crate::error::{Op, R2Error};

pub(crate) const BLOBS_DIR: &str = "blobs";
pub(crate) const MULTIPART_DIR: &str = "multipart";

/// Bytes read from an upload body per call, written, then hashed.
const CHUNK: usize = 256 * 1024;

/// Chunks that may wait for the hashing thread before the writer blocks.
const HASH_QUEUE: usize = 4;

/// Blob files of one bucket plus the in-process pins that keep a file alive
/// while a body reader streams it.
#[derive(Debug)]
pub(crate) struct BlobFiles {
    root: PathBuf,
    pins: Mutex<Pins>,
}

#[derive(Debug, Default)]
struct Pins {
    counts: HashMap<String, usize>,
    /// Files released while pinned; removed when the last pin goes.
    deferred: HashSet<String>,
}

impl BlobFiles {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            pins: Mutex::new(Pins::default()),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn pins(&self) -> MutexGuard<'_, Pins> {
        // A panic while holding the lock leaves the counts usable.
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks files as in use. Callers pin while holding the metadata lock,
    /// so a concurrent replace cannot remove a file between the row read
    /// and the pin.
    pub(crate) fn pin(&self, rels: &[String]) {
        let mut pins = self.pins();
        for r in rels {
            *pins.counts.entry(r.clone()).or_insert(0) += 1;
        }
    }

    fn unpin(&self, rels: &[String]) {
        let mut to_remove = Vec::new();
        {
            let mut pins = self.pins();
            for r in rels {
                if let Some(n) = pins.counts.get_mut(r) {
                    *n -= 1;
                    if *n == 0 {
                        pins.counts.remove(r);
                        if pins.deferred.remove(r) {
                            to_remove.push(r.clone());
                        }
                    }
                }
            }
        }
        for r in to_remove {
            self.remove_now(&r);
        }
    }

    /// Removes files no row references any more. A file still being read is
    /// removed when its reader is dropped. A crash before removal leaves an
    /// orphan, which the next open sweeps.
    pub(crate) fn release(&self, rels: Vec<String>) {
        let mut now = Vec::new();
        {
            let mut pins = self.pins();
            for r in rels {
                if pins.counts.contains_key(&r) {
                    pins.deferred.insert(r);
                } else {
                    now.push(r);
                }
            }
        }
        for r in now {
            self.remove_now(&r);
        }
    }

    fn remove_now(&self, rel: &str) {
        let path = self.path(rel);
        let _ = fs::remove_file(&path);
        // A multipart upload's folder goes with its last part.
        if rel.starts_with(MULTIPART_DIR)
            && let Some(parent) = path.parent()
        {
            let _ = fs::remove_dir(parent);
        }
    }

    /// Starts writing a blob at `rel`, hashing as it goes. Nothing is visible
    /// until [`PendingBlob::commit`]; dropping it removes the temporary.
    ///
    /// A body longer than one chunk is hashed on a thread of its own, a
    /// chunk behind the writes, so the hashing that is left when the body
    /// ends overlaps the commit's fsyncs instead of preceding them.
    pub(crate) fn write(
        &self,
        op: Op,
        rel: &str,
        body: &mut dyn Read,
        max_bytes: u64,
        extra: Option<R2HashAlgorithm>,
    ) -> Result<PendingBlob, R2Error> {
        let target = self.path(rel);
        // An upload's folder is removed with its last part; a part write
        // racing that removal simply recreates it.
        let mut attempt = 0;
        let mut file = loop {
            match AtomicFile::create(&target) {
                Ok(f) => break f,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => attempt += 1,
                Err(e) => return Err(R2Error::Io { op, source: e }),
            }
        };
        let mut size: u64 = 0;
        let mut buf = vec![0u8; CHUNK];
        let mut digests = Digests::new(extra);
        let mut worker: Option<HashWorker> = None;
        loop {
            let n = read_chunk(body, &mut buf).map_err(R2Error::io(op))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > max_bytes {
                return Err(R2Error::EntityTooLarge { op });
            }
            file.write_all(&buf[..n]).map_err(R2Error::io(op))?;
            if worker.is_none() && n < CHUNK {
                // Most likely the whole body: not worth a thread.
                digests.update(&buf[..n]);
                continue;
            }
            let w = match worker.as_mut() {
                Some(w) => w,
                None => worker.insert(
                    HashWorker::spawn(std::mem::replace(&mut digests, Digests::new(None)))
                        .map_err(R2Error::io(op))?,
                ),
            };
            buf = w.hand_over(buf, n).ok_or(R2Error::InternalError { op })?;
        }
        Ok(PendingBlob {
            file,
            size,
            hashing: match worker {
                Some(w) => Hashing::Worker(w),
                None => Hashing::Done(Box::new(digests)),
            },
        })
    }

    /// Removes what no row references: blobs of writes that crashed before
    /// their metadata committed, blobs of replaced objects whose removal was
    /// cut short, temporaries of interrupted writes, and empty upload folders.
    pub(crate) fn sweep(&self, referenced: &HashSet<String>) -> io::Result<usize> {
        let mut removed = 0;
        let blobs = self.root.join(BLOBS_DIR);
        removed += sweep_dir(&blobs, BLOBS_DIR, referenced)?;
        let multipart = self.root.join(MULTIPART_DIR);
        if multipart.is_dir() {
            for entry in fs::read_dir(&multipart)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let rel = format!("{MULTIPART_DIR}/{name}");
                if entry.file_type()?.is_dir() {
                    removed += sweep_dir(&entry.path(), &rel, referenced)?;
                    if fs::read_dir(entry.path())?.next().is_none() {
                        fs::remove_dir(entry.path())?;
                    }
                } else {
                    fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

fn sweep_dir(dir: &Path, rel_dir: &str, referenced: &HashSet<String>) -> io::Result<usize> {
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let rel = format!("{rel_dir}/{}", entry.file_name().to_string_lossy());
        if !referenced.contains(&rel) && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads until `buf` is full or the body ends, so chunks stay large even
/// when the body hands out small pieces.
fn read_chunk(body: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match body.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// MD5 (always: it is the etag) plus the one other checksum asked for.
struct Digests {
    md5: md5::Md5,
    other: Option<Hasher>,
}

impl Digests {
    fn new(extra: Option<R2HashAlgorithm>) -> Self {
        Self {
            md5: md5::Md5::new(),
            other: extra.map(Hasher::new),
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some(h) = self.other.as_mut() {
            h.update(data);
        }
    }

    fn finish(self) -> BlobDigests {
        BlobDigests {
            md5: self.md5.finalize().to_vec(),
            other: self.other.map(Hasher::finish),
        }
    }
}

/// A thread hashing chunks in the order they were written. Buffers go
/// back to the writer for reuse.
struct HashWorker {
    chunks: mpsc::SyncSender<(Vec<u8>, usize)>,
    spare: mpsc::Receiver<Vec<u8>>,
    handle: std::thread::JoinHandle<BlobDigests>,
}

impl HashWorker {
    fn spawn(mut digests: Digests) -> io::Result<Self> {
        let (chunks, todo) = mpsc::sync_channel::<(Vec<u8>, usize)>(HASH_QUEUE);
        let (done, spare) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("r2-hash".to_owned())
            .spawn(move || {
                for (buf, n) in todo {
                    digests.update(&buf[..n]);
                    // The writer may have finished and stopped taking buffers.
                    let _ = done.send(buf);
                }
                digests.finish()
            })?;
        Ok(Self {
            chunks,
            spare,
            handle,
        })
    }

    /// Queues `buf[..n]` for hashing and returns a buffer to fill next, or
    /// `None` if the thread is gone.
    fn hand_over(&mut self, buf: Vec<u8>, n: usize) -> Option<Vec<u8>> {
        self.chunks.send((buf, n)).ok()?;
        Some(self.spare.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]))
    }

    fn finish(self) -> Option<BlobDigests> {
        drop(self.chunks);
        self.handle.join().ok()
    }
}

enum Hashing {
    Done(Box<Digests>),
    Worker(HashWorker),
}

/// The checksums of a blob.
pub(crate) struct BlobDigests {
    pub md5: Vec<u8>,
    pub other: Option<(R2HashAlgorithm, Vec<u8>)>,
}

/// A fully received blob, not yet visible; its hashing may still be
/// finishing.
pub(crate) struct PendingBlob {
    file: AtomicFile,
    pub size: u64,
    hashing: Hashing,
}

impl PendingBlob {
    /// Fsyncs and renames into place (then fsyncs the directory), and
    /// returns the checksums once hashing is done. The file carries a fresh
    /// name no row refers to, so it is safe to commit before the caller has
    /// checked the checksums; on a mismatch the caller releases it.
    pub(crate) fn commit(self, op: Op) -> Result<BlobDigests, R2Error> {
        let committed = self.file.commit().map_err(R2Error::io(op));
        let digests = match self.hashing {
            Hashing::Done(d) => Some(d.finish()),
            Hashing::Worker(w) => w.finish(),
        };
        committed?;
        digests.ok_or(R2Error::InternalError { op })
    }
}

enum HasherState {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Md5(md5::Md5),
}

struct Hasher(R2HashAlgorithm, HasherState);

impl Hasher {
    fn new(alg: R2HashAlgorithm) -> Self {
        let state = match alg {
            R2HashAlgorithm::Md5 => HasherState::Md5(md5::Md5::new()),
            R2HashAlgorithm::Sha1 => HasherState::Sha1(sha1::Sha1::new()),
            R2HashAlgorithm::Sha256 => HasherState::Sha256(sha2::Sha256::new()),
            R2HashAlgorithm::Sha384 => HasherState::Sha384(sha2::Sha384::new()),
            R2HashAlgorithm::Sha512 => HasherState::Sha512(sha2::Sha512::new()),
        };
        Hasher(alg, state)
    }

    fn update(&mut self, data: &[u8]) {
        match &mut self.1 {
            HasherState::Md5(h) => h.update(data),
            HasherState::Sha1(h) => h.update(data),
            HasherState::Sha256(h) => h.update(data),
            HasherState::Sha384(h) => h.update(data),
            HasherState::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> (R2HashAlgorithm, Vec<u8>) {
        let digest = match self.1 {
            HasherState::Md5(h) => h.finalize().to_vec(),
            HasherState::Sha1(h) => h.finalize().to_vec(),
            HasherState::Sha256(h) => h.finalize().to_vec(),
            HasherState::Sha384(h) => h.finalize().to_vec(),
            HasherState::Sha512(h) => h.finalize().to_vec(),
        };
        (self.0, digest)
    }
}

/// One stretch of one blob file that a body reader returns.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub rel: String,
    pub offset: u64,
    pub len: u64,
}

/// An object's bytes (or the requested range of them), read from disk as
/// the caller reads: nothing is buffered beyond one read call.
pub struct R2Body {
    /// `None` for a body read from an S3-compatible store (`remote`).
    files: Option<Arc<BlobFiles>>,
    remote: Option<Box<dyn Read + Send>>,
    segments: Vec<Segment>,
    pinned: Vec<String>,
    next: usize,
    current: Option<io::Take<File>>,
    remaining: u64,
}

impl std::fmt::Debug for R2Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("R2Body")
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl R2Body {
    /// `pinned` must already have been pinned by the caller; the body unpins
    /// them when dropped.
    pub(crate) fn new(files: Arc<BlobFiles>, segments: Vec<Segment>, pinned: Vec<String>) -> Self {
        let remaining = segments.iter().map(|s| s.len).sum();
        Self {
            files: Some(files),
            remote: None,
            segments,
            pinned,
            next: 0,
            current: None,
            remaining,
        }
    }

    /// A body streamed from elsewhere, `length` bytes long.
    pub(crate) fn remote(reader: Box<dyn Read + Send>, length: u64) -> Self {
        Self {
            files: None,
            remote: Some(reader),
            segments: Vec::new(),
            pinned: Vec::new(),
            next: 0,
            current: None,
            remaining: length,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Reads the rest of the body into memory (`arrayBuffer()`): the
    /// length is known, so each file is read with one call into a buffer
    /// of exactly that size.
    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; self.remaining_usize()?];
        self.fill(&mut out)?;
        Ok(out)
    }

    fn remaining_usize(&self) -> io::Result<usize> {
        usize::try_from(self.remaining).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                "object is larger than this platform can hold in memory",
            )
        })
    }

    /// Fills `out` completely from the body.
    fn fill(&mut self, out: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < out.len() {
            match self.read(&mut out[filled..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob file is shorter than its metadata says",
                    ));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads the rest of the body as UTF-8 text (`text()`), replacing
    /// invalid sequences as the Workers runtime does.
    pub fn text(self) -> io::Result<String> {
        Ok(String::from_utf8_lossy(&self.bytes()?).into_owned())
    }

    /// Opens the first file now, so the bytes stay readable even if the
    /// object is replaced (an open file outlives its unlink).
    pub(crate) fn prime(&mut self) -> io::Result<()> {
        if self.current.is_none() && self.next == 0 {
            self.open_next()?;
        }
        Ok(())
    }

    fn open_next(&mut self) -> io::Result<bool> {
        let (Some(seg), Some(files)) = (self.segments.get(self.next), &self.files) else {
            return Ok(false);
        };
        self.next += 1;
        let mut f = File::open(files.path(&seg.rel))?;
        f.seek(SeekFrom::Start(seg.offset))?;
        self.current = Some(f.take(seg.len));
        Ok(true)
    }
}

impl Read for R2Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(remote) = self.remote.as_mut() {
            let want = buf
                .len()
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            if want == 0 {
                return Ok(0);
            }
            let n = remote.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the store sent fewer bytes than the object's size",
                ));
            }
            self.remaining -= n as u64;
            return Ok(n);
        }
        loop {
            if let Some(cur) = self.current.as_mut() {
                let n = cur.read(buf)?;
                if n > 0 {
                    self.remaining -= n as u64;
                    return Ok(n);
                }
                if cur.limit() > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob file is shorter than its metadata says",
                    ));
                }
                self.current = None;
            }
            if !self.open_next()? {
                return Ok(0);
            }
        }
    }

    /// The generic version grows its reads from 8 KiB; the body knows its
    /// length, so it reads the rest in as few calls as the files allow.
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let want = self.remaining_usize()?;
        let start = buf.len();
        buf.resize(start + want, 0);
        let result = self.fill(&mut buf[start..]);
        if result.is_err() {
            buf.truncate(start + want - usize::try_from(self.remaining).unwrap_or(want));
        }
        result.map(|()| want)
    }
}

impl Drop for R2Body {
    fn drop(&mut self) {
        self.current = None;
        if let Some(files) = &self.files {
            files.unpin(&self.pinned);
        }
    }
}
