//! Compiled modules, shared by every isolate of the process and, with a
//! data directory, by the processes after it.
//!
//! Compiling a module is most of an isolate's start-up for a large bundle
//! (QuickJS's parser and scope resolution), and every isolate of a pool,
//! every restart after a CPU or memory limit, and every Durable Object
//! isolate compiles the same sources. The first isolate to compile a
//! module stores its bytecode here; the others load the bytecode instead.
//! With a directory configured (`<data dir>/bytecode` under `hearth
//! serve`), the bytecode is also written there, so the first isolate of
//! the next process loads it too.
//!
//! Invariants:
//! - An entry is used only for the exact (name, source) it was compiled
//!   from: in memory the hash finds candidates and the full text is
//!   compared; on disk the file is named by the SHA-256 of the engine's
//!   version, the name and the source, and holds that digest again. Sources
//!   are the loader's output (after TypeScript, CommonJS and async-context
//!   rewriting), so anything that changes what a module compiles to is in
//!   the key.
//! - Loading bytecode is unsafe for arbitrary bytes. Memory entries were
//!   written by this process. A file is loaded only if its header, key
//!   digest, length and the SHA-256 of its bytecode all match, so a torn or
//!   damaged file (or one from another engine version) is compiled afresh
//!   and rewritten; the directory itself is trusted like the project's
//!   code, as anyone who can write it can already change the worker.
//! - Files are written to a temporary name and renamed, so a reader never
//!   sees half a file; a crash leaves at worst a file that fails the check.
//! - Bounded: at most [`MAX_BYTES`] in memory and [`MAX_DISK_BYTES`] on
//!   disk; the oldest entries (files by modification time, refreshed on
//!   use) go first.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use hearth_core::clock::{Clock as _, SystemClock};

use rquickjs::module::Declared;
use rquickjs::{Ctx, Module, WriteOptions};
use sha2::{Digest, Sha256};

/// Most bytes (sources plus bytecode) the cache holds.
pub const MAX_BYTES: usize = 256 * 1024 * 1024;
/// Most bytes of bytecode files kept in a directory.
pub const MAX_DISK_BYTES: u64 = 512 * 1024 * 1024;
/// Largest single module kept, in memory or on disk.
const MAX_ENTRY_BYTES: usize = MAX_BYTES / 4;
/// Sources shorter than this compile faster than the cache's bookkeeping
/// is worth.
const MIN_SOURCE_BYTES: usize = 4 * 1024;

struct Entry {
    name: Box<str>,
    source: Box<str>,
    bytecode: Arc<[u8]>,
}

impl Entry {
    fn size(&self) -> usize {
        self.name.len() + self.source.len() + self.bytecode.len()
    }
}

#[derive(Default)]
struct Cache {
    entries: HashMap<u64, Vec<Entry>>,
    /// Insertion order, for eviction.
    order: VecDeque<u64>,
    bytes: usize,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

fn key(name: &str, source: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    source.hash(&mut h);
    h.finish()
}

fn lookup(key: u64, name: &str, source: &str) -> Option<Arc<[u8]>> {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entries
        .get(&key)?
        .iter()
        .find(|e| &*e.name == name && &*e.source == source)
        .map(|e| e.bytecode.clone())
}

fn store(key: u64, name: &str, source: &str, bytecode: Vec<u8>) {
    let entry = Entry {
        name: name.into(),
        source: source.into(),
        bytecode: bytecode.into(),
    };
    let size = entry.size();
    if size > MAX_ENTRY_BYTES {
        return;
    }
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = &mut *cache;
    if cache
        .entries
        .get(&key)
        .is_some_and(|v| v.iter().any(|e| &*e.name == name && &*e.source == source))
    {
        return;
    }
    while cache.bytes + size > MAX_BYTES {
        let Some(old) = cache.order.pop_front() else {
            break;
        };
        if let Some(list) = cache.entries.get_mut(&old)
            && !list.is_empty()
        {
            let gone = list.remove(0);
            cache.bytes -= gone.size();
            if list.is_empty() {
                cache.entries.remove(&old);
            }
        }
    }
    cache.bytes += size;
    cache.order.push_back(key);
    cache.entries.entry(key).or_default().push(entry);
}

/// Declares a module as `Module::declare` does, from cached bytecode when
/// this process (or, with `dir`, an earlier one) has compiled the same
/// source under the same name before.
pub fn declare<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    source: &str,
    dir: Option<&Path>,
) -> rquickjs::Result<Module<'js, Declared>> {
    if source.len() < MIN_SOURCE_BYTES {
        return Module::declare(ctx.clone(), name, source);
    }
    let key = key(name, source);
    if let Some(bytecode) = lookup(key, name, source) {
        // SAFETY: the bytes were written by `Module::write` in this process
        // for this exact name and source (compared in full above).
        return unsafe { Module::load(ctx.clone(), &bytecode) };
    }
    let file = dir.map(|d| file_for(d, name, source));
    if let Some((path, digest)) = &file
        && let Some(bytecode) = read_file(path, digest)
    {
        // SAFETY: the file names this engine, name and source in its key
        // digest, and its bytecode matches the SHA-256 beside it (see the
        // module's invariants).
        match unsafe { Module::load(ctx.clone(), &bytecode) } {
            Ok(module) => {
                store(key, name, source, bytecode);
                return Ok(module);
            }
            // Compiled afresh below (and the file rewritten).
            Err(_) => drop(ctx.catch()),
        }
    }
    let module = Module::declare(ctx.clone(), name, source)?;
    // Debug information is kept, so stacks still name file:line:column.
    if let Ok(bytecode) = module.write(WriteOptions::default()) {
        if let Some((path, digest)) = &file
            && let Err(e) = write_file(path, digest, &bytecode)
        {
            tracing::debug!(path = %path.display(), "keeping compiled bytecode failed: {e}");
        }
        store(key, name, source, bytecode);
    }
    Ok(module)
}

const MAGIC: &[u8; 8] = b"HRTHQBC1";
const HEADER_BYTES: usize = MAGIC.len() + 32 + 32 + 8;
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What the bytecode format depends on besides the source.
static ENGINE: LazyLock<String> = LazyLock::new(|| {
    // SAFETY: QuickJS returns a static NUL-terminated string.
    let quickjs = unsafe { std::ffi::CStr::from_ptr(rquickjs::qjs::JS_GetVersion()) };
    format!(
        "hearth {} quickjs {} {} {}",
        env!("CARGO_PKG_VERSION"),
        quickjs.to_string_lossy(),
        std::env::consts::ARCH,
        if cfg!(target_endian = "little") {
            "le"
        } else {
            "be"
        }
    )
});

/// The file for (name, source) under `dir`, and the key digest it holds.
fn file_for(dir: &Path, name: &str, source: &str) -> (PathBuf, [u8; 32]) {
    let mut h = Sha256::new();
    for part in [ENGINE.as_bytes(), name.as_bytes(), source.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&h.finalize());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (dir.join(format!("{hex}.qbc")), digest)
}

/// The bytecode in `path` if the file is whole and is the one for `digest`.
fn read_file(path: &Path, digest: &[u8; 32]) -> Option<Vec<u8>> {
    let len = std::fs::metadata(path).ok()?.len();
    if len > (HEADER_BYTES + MAX_ENTRY_BYTES) as u64 {
        return None;
    }
    let data = std::fs::read(path).ok()?;
    let (header, bytecode) = data.split_at_checked(HEADER_BYTES)?;
    let (magic, rest) = header.split_at(MAGIC.len());
    let (key, rest) = rest.split_at(32);
    let (sum, size) = rest.split_at(32);
    let whole = magic == MAGIC
        && key == digest
        && u64::from_le_bytes(size.try_into().ok()?) == bytecode.len() as u64
        && Sha256::digest(bytecode).as_slice() == sum;
    if !whole {
        tracing::debug!(path = %path.display(), "ignoring a damaged or foreign bytecode file");
        return None;
    }
    // Refreshes the file's place in the eviction order.
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let now = UNIX_EPOCH + Duration::from_millis(SystemClock.now_ms());
        let _ = f.set_modified(now);
    }
    Some(bytecode.to_vec())
}

/// Writes the file under a temporary name and renames it into place,
/// first making room under [`MAX_DISK_BYTES`].
fn write_file(path: &Path, digest: &[u8; 32], bytecode: &[u8]) -> std::io::Result<()> {
    if bytecode.len() > MAX_ENTRY_BYTES {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let size = (HEADER_BYTES + bytecode.len()) as u64;
    make_room(dir, size, MAX_DISK_BYTES)?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("module"),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(digest)?;
        f.write_all(&Sha256::digest(bytecode))?;
        f.write_all(&(bytecode.len() as u64).to_le_bytes())?;
        f.write_all(bytecode)?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Removes the least recently used files until `incoming` more bytes fit
/// under `limit`.
fn make_room(dir: &Path, incoming: u64, limit: u64) -> std::io::Result<()> {
    let mut files = Vec::new();
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("qbc") {
            continue;
        }
        let meta = entry.metadata()?;
        total += meta.len();
        let used = meta.modified().unwrap_or(UNIX_EPOCH);
        files.push((used, meta.len(), path));
    }
    files.sort();
    for (_, len, path) in files {
        if total + incoming <= limit {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
    Ok(())
}

/// Drops every in-memory entry, as a new process starts with none (the
/// files on disk stay).
pub fn forget_in_memory() {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    *cache = Cache::default();
}

/// Entries and bytes held, for tests and the health report.
pub fn stats() -> (usize, usize) {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    (cache.entries.values().map(Vec::len).sum(), cache.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn making_room_removes_the_least_recently_used_files() {
        let dir = tempfile::tempdir().unwrap();
        let base =
            UNIX_EPOCH + Duration::from_millis(SystemClock.now_ms()) - Duration::from_secs(100);
        for (name, age) in [("old", 0), ("mid", 10), ("new", 20)] {
            let path = dir.path().join(format!("{name}.qbc"));
            std::fs::write(&path, [0u8; 100]).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(base + Duration::from_secs(age)).unwrap();
        }
        std::fs::write(dir.path().join("other.txt"), [0u8; 1000]).unwrap();
        // 300 held, 150 incoming, limit 400: only the oldest goes.
        make_room(dir.path(), 150, 400).unwrap();
        let left = |n: &str| dir.path().join(n).exists();
        assert!(!left("old.qbc"));
        assert!(left("mid.qbc") && left("new.qbc"));
        assert!(
            left("other.txt"),
            "only bytecode files are counted and removed"
        );
        make_room(dir.path(), 150, 400).unwrap();
        assert!(left("mid.qbc"), "nothing goes once the file fits");
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, digest) = file_for(dir.path(), "index.js", "export default 1;");
        write_file(&path, &digest, b"bytes").unwrap();
        assert_eq!(read_file(&path, &digest).as_deref(), Some(&b"bytes"[..]));
        let (_, other) = file_for(dir.path(), "index.js", "export default 2;");
        assert_eq!(read_file(&path, &other), None, "another source's key");
        let whole = std::fs::read(&path).unwrap();
        for cut in [0, HEADER_BYTES - 1, whole.len() - 1] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert_eq!(read_file(&path, &digest), None, "torn at {cut}");
        }
        let mut flipped = whole.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(read_file(&path, &digest), None, "a changed byte");
    }
}
