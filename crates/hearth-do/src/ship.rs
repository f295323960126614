//! Cluster mode: an object's (or a D1 database's) committed changes leave
//! the node before they are acknowledged.
//!
//! Each node keeps an object's SQLite file in its own data directory; the
//! file is a cache. What is durable is the object's log in the cluster
//! (a [`ChangeLog`], PostgreSQL in Hearth): a snapshot of the database
//! file plus every change since, numbered from the snapshot on. A change is
//! the write-ahead-log frames (whole pages) one commit appended, read back
//! from the `-wal` file after SQLite committed them locally; it is appended
//! under the node's lease token, checked by the log in the same statement,
//! and only then is the output gate opened. A new owner rebuilds the file
//! from snapshot + changes before it serves the object.
//!
//! Automatic checkpoints are off on these connections (the WAL hook
//! replaces them), so frames stay in the `-wal` file until they were
//! shipped; a snapshot checkpoints and truncates the WAL, uploads the file
//! and lets the log drop the changes it covers.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{DoError, Result};

/// Bytes of the WAL file's header.
const WAL_HEADER: u64 = 32;
/// Bytes of each frame's header, before its page.
const FRAME_HEADER: usize = 24;
/// A snapshot is uploaded in pieces of this size, so no node holds a
/// whole database in memory.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;
/// Changes fetched per round trip while restoring.
const CHANGES_PER_FETCH: u32 = 32;

/// The lease a write is made under.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub namespace: &'a str,
    pub id: &'a str,
    pub node: &'a str,
    pub token: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The lease named in the write is no longer the object's lease.
    #[error("the object's lease was taken over by another node")]
    Fenced,
    #[error("{0}")]
    Backend(String),
}

/// The newest snapshot of an object: it holds every change up to `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHead {
    pub seq: i64,
    pub chunks: u32,
}

/// Where objects' changes are made durable outside the node.
pub trait ChangeLog: Send + Sync + std::fmt::Debug {
    fn snapshot_head(&self, namespace: &str, id: &str) -> Result<Option<SnapshotHead>, LogError>;
    fn snapshot_chunk(
        &self,
        namespace: &str,
        id: &str,
        seq: i64,
        chunk: u32,
    ) -> Result<Vec<u8>, LogError>;
    /// Up to `limit` changes numbered above `after`, oldest first.
    fn changes(
        &self,
        namespace: &str,
        id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Vec<u8>)>, LogError>;
    /// Appends change `seq`, only while `lease` is the object's lease
    /// ([`LogError::Fenced`] otherwise, and when `seq` exists already).
    /// `alarm` is `Some` when the change sets (`Some(ms)`) or clears
    /// (`None`) the object's alarm, recorded with the change so that
    /// another node can deliver it if this one dies.
    fn append(
        &self,
        lease: &Lease<'_>,
        seq: i64,
        change: Vec<u8>,
        alarm: Option<Option<i64>>,
    ) -> Result<(), LogError>;
    /// Stores one piece of a snapshot not yet in use.
    fn put_snapshot_chunk(
        &self,
        namespace: &str,
        id: &str,
        seq: i64,
        chunk: u32,
        data: Vec<u8>,
    ) -> Result<(), LogError>;
    /// Makes the snapshot at `seq` (of `chunks` pieces) the object's, and
    /// drops the changes it covers, only while `lease` holds.
    fn finish_snapshot(&self, lease: &Lease<'_>, seq: i64, chunks: u32) -> Result<(), LogError>;
    /// Log bytes after which an owner takes a snapshot (it waits at least
    /// for as many bytes as the file holds, so snapshots stay amortised).
    fn snapshot_after_bytes(&self) -> u64;
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

pub fn wal_path(path: &Path) -> PathBuf {
    with_suffix(path, "-wal")
}

/// A file name of its own for each copy of an object a node loads
/// (`<id>.t<token>-<pid>-<n>.sqlite` beside `<id>.sqlite`): a connection
/// to an older copy that is still open (an instance being dropped) never
/// shares, or removes, the new copy's files.
pub fn generation_path(base: &Path, token: i64) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    base.with_file_name(format!("{stem}.t{token}-{}-{n}.sqlite", std::process::id()))
}

/// Removes the older copies of the object whose current copy is `current`.
fn remove_other_generations(current: &Path) {
    let (Some(dir), Some(name)) = (current.parent(), current.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let Some((id, _)) = name.split_once(".t") else {
        return;
    };
    let prefix = format!("{id}.t");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let other = e.file_name().to_string_lossy().into_owned();
        if other.starts_with(&prefix) && !other.starts_with(name.as_ref()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn restore_error(e: LogError) -> DoError {
    DoError::Restore {
        message: e.to_string(),
    }
}

/// Rebuilds the object's file at `path` from the log: the snapshot, then
/// every change after it, in order. Returns the number of the last change,
/// `None` (and no file) when the log holds nothing of the object.
pub fn restore(log: &dyn ChangeLog, namespace: &str, id: &str, path: &Path) -> Result<Option<i64>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DoError::io(parent, e))?;
    }
    let tmp = with_suffix(path, ".restore");
    let io = |e| DoError::io(&tmp, e);
    let file = File::create(&tmp).map_err(io)?;
    let mut seq = 0;
    let mut size: Option<u64> = None;
    if let Some(head) = log.snapshot_head(namespace, id).map_err(restore_error)? {
        let mut writer = &file;
        let mut written = 0u64;
        for chunk in 0..head.chunks {
            let data = log
                .snapshot_chunk(namespace, id, head.seq, chunk)
                .map_err(restore_error)?;
            writer.write_all(&data).map_err(io)?;
            written += data.len() as u64;
        }
        seq = head.seq;
        size = Some(written);
    }
    loop {
        let batch = log
            .changes(namespace, id, seq, CHANGES_PER_FETCH)
            .map_err(restore_error)?;
        if batch.is_empty() {
            break;
        }
        for (n, change) in batch {
            if n != seq + 1 {
                return Err(DoError::Restore {
                    message: format!("change {} is missing from the log (found {n})", seq + 1),
                });
            }
            size = Some(apply(&file, &change).map_err(|message| DoError::Restore {
                message: format!("change {n}: {message}"),
            })?);
            seq = n;
        }
    }
    // A stale WAL beside the rebuilt file would be replayed into it.
    for stale in [wal_path(path), with_suffix(path, "-shm")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DoError::io(&stale, e)),
        }
    }
    let Some(size) = size else {
        drop(file);
        let _ = std::fs::remove_file(&tmp);
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DoError::io(path, e)),
        }
        remove_other_generations(path);
        return Ok(None);
    };
    file.set_len(size).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| DoError::io(path, e))?;
    remove_other_generations(path);
    Ok(Some(seq))
}

/// Writes one change's pages into `file`; returns the database's size
/// after its last commit frame.
fn apply(file: &File, change: &[u8]) -> std::result::Result<u64, String> {
    let page_size = change
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("shorter than its header")?;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("bad page size {page_size}"));
    }
    let frames = &change[4..];
    let frame = FRAME_HEADER + page_size;
    if frames.is_empty() || !frames.len().is_multiple_of(frame) {
        return Err(format!(
            "{} bytes of frames is not a whole number of {frame}-byte frames",
            frames.len()
        ));
    }
    let mut committed = None;
    for f in frames.chunks_exact(frame) {
        let pgno = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
        let db_pages = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
        if pgno == 0 {
            return Err("a frame for page 0".into());
        }
        file.write_all_at(&f[FRAME_HEADER..], u64::from(pgno - 1) * page_size as u64)
            .map_err(|e| e.to_string())?;
        if db_pages != 0 {
            committed = Some(u64::from(db_pages) * page_size as u64);
        }
    }
    committed.ok_or_else(|| "no commit frame".to_owned())
}

/// What one shipment carries: `[page size, big-endian u32][frames]`, and
/// the salt of the WAL they were read from.
pub struct Frames {
    pub change: Vec<u8>,
    pub salt: [u8; 8],
}

/// The frames after the first `shipped` in the WAL, up to frame `upto`;
/// `None` when there are none. A WAL whose salt is not `salt` was started
/// over since the last shipment (a checkpoint by another connection lets
/// SQLite restart it), so its frames are all new.
pub fn read_frames(
    path: &Path,
    shipped: u32,
    upto: u32,
    salt: Option<[u8; 8]>,
) -> Result<Option<Frames>> {
    if upto == 0 {
        return Ok(None);
    }
    let wal = wal_path(path);
    let io = |e| DoError::io(&wal, e);
    let file = match File::open(&wal) {
        Ok(f) => f,
        // Frames were committed, so the WAL was there: a file replaced
        // under this connection (a newer copy of the object) must not pass
        // for "nothing to ship".
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DoError::Shipping {
                message: format!("{} is gone; the object was reloaded", wal.display()),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let mut header = [0u8; WAL_HEADER as usize];
    file.read_exact_at(&mut header, 0).map_err(io)?;
    let page_size = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    let mut now = [0u8; 8];
    now.copy_from_slice(&header[16..24]);
    let from = if salt == Some(now) { shipped } else { 0 };
    if upto <= from {
        return Ok(None);
    }
    let frame = FRAME_HEADER as u64 + u64::from(page_size);
    let start = WAL_HEADER + u64::from(from) * frame;
    let len = usize::try_from(u64::from(upto - from) * frame).map_err(|_| DoError::Shipping {
        message: "the change is larger than this platform can address".into(),
    })?;
    let mut change = vec![0u8; 4 + len];
    change[..4].copy_from_slice(&page_size.to_be_bytes());
    file.read_exact_at(&mut change[4..], start).map_err(io)?;
    Ok(Some(Frames { change, salt: now }))
}

/// A database file of a stopped data directory, ready to be copied into a
/// log as its first snapshot (`hearth migrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Export {
    /// The object's alarm (ms since the epoch), if one is set.
    pub alarm_ms: Option<i64>,
    /// Bytes of the file.
    pub bytes: u64,
}

/// Checkpoints the WAL of the database at `path` into it (so the file
/// alone holds every commit) and reads the Durable Object alarm it holds.
/// Nothing else may have the file open.
pub fn prepare_export(path: &Path) -> Result<Export> {
    let conn = hearth_core::sqlite::open(path)?;
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        return Err(DoError::Shipping {
            message: format!(
                "{}: the checkpoint was blocked; is a server still using it?",
                path.display()
            ),
        });
    }
    let has_metadata: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_cf_METADATA'",
        [],
        |r| r.get(0),
    )?;
    let alarm_ms = if has_metadata {
        crate::sqlite::read_alarm(&conn)?
    } else {
        None
    };
    drop(conn);
    let bytes = std::fs::metadata(path)
        .map_err(|e| DoError::io(path, e))?
        .len();
    Ok(Export { alarm_ms, bytes })
}

/// Uploads the file at `path` as snapshot `seq` of the object, in chunks of
/// [`SNAPSHOT_CHUNK`] (one in memory at a time); returns how many. The
/// snapshot is not the object's until the log makes it current.
pub fn upload_snapshot(
    log: &dyn ChangeLog,
    namespace: &str,
    id: &str,
    seq: i64,
    path: &Path,
) -> Result<u32> {
    let io = |e| DoError::io(path, e);
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let (mut offset, mut chunk) = (0u64, 0u32);
    while offset < len {
        let n = (len - offset).min(SNAPSHOT_CHUNK as u64) as usize;
        let mut data = vec![0u8; n];
        file.read_exact_at(&mut data, offset).map_err(io)?;
        log.put_snapshot_chunk(namespace, id, seq, chunk, data)
            .map_err(|e| DoError::Shipping {
                message: e.to_string(),
            })?;
        offset += n as u64;
        chunk += 1;
    }
    Ok(chunk)
}
