//! Compiled modules, shared by every isolate of the process.
//!
//! Compiling a module is most of an isolate's start-up for a large bundle
//! (QuickJS's parser and scope resolution), and every isolate of a pool,
//! every restart after a CPU or memory limit, and every Durable Object
//! isolate compiles the same sources. The first isolate to compile a
//! module stores its bytecode here; the others load the bytecode instead.
//!
//! Invariants:
//! - An entry is used only for the exact (name, source) it was compiled
//!   from: the hash finds candidates, the full text is compared. Sources
//!   are the loader's output (after TypeScript, CommonJS and async-context
//!   rewriting), so anything that changes what a module compiles to is in
//!   the key.
//! - Only bytecode this process wrote is ever loaded (loading bytecode is
//!   unsafe for arbitrary bytes); nothing is read from disk.
//! - Bounded: at most [`MAX_BYTES`] of sources and bytecode; the oldest
//!   entries go first.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use rquickjs::module::Declared;
use rquickjs::{Ctx, Module, WriteOptions};

/// Most bytes (sources plus bytecode) the cache holds.
pub const MAX_BYTES: usize = 256 * 1024 * 1024;
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
    if size > MAX_BYTES / 4 {
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
/// this process has compiled the same source under the same name before.
pub fn declare<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    source: &str,
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
    let module = Module::declare(ctx.clone(), name, source)?;
    // Debug information is kept, so stacks still name file:line:column.
    if let Ok(bytecode) = module.write(WriteOptions::default()) {
        store(key, name, source, bytecode);
    }
    Ok(module)
}

/// Entries and bytes held, for tests and the health report.
pub fn stats() -> (usize, usize) {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    (cache.entries.values().map(Vec::len).sum(), cache.bytes)
}
