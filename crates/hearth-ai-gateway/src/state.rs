//! What the gateways remember across a restart besides their logs:
//!
//! - `state.sqlite`: spend per key and budget window, committed before the
//!   answer that caused it is released (so acknowledged spend survives
//!   kill -9), and the rate-limit windows, written behind once a second
//!   (a kill loses at most the last second's counts).
//! - `cache.sqlite`: the exact cache, written behind through a queue
//!   bounded in bytes (past it an entry is just not persisted) and pruned
//!   to the cache's byte cap, expired entries first, then the oldest.
//!
//! Both files use WAL with `synchronous = NORMAL`: a commit is in the OS
//! once it returns, which a killed process cannot undo; only a power loss
//! may drop the last commits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use hearth_core::SharedClock;

use crate::cache::{CacheKey, CachedResponse};

const STATE_SCHEMA: &[&str] = &["CREATE TABLE spend (
        gateway TEXT NOT NULL,
        key TEXT NOT NULL,
        window INTEGER NOT NULL,
        spent REAL NOT NULL,
        PRIMARY KEY (gateway, key)
    ) WITHOUT ROWID;
    CREATE TABLE rates (
        gateway TEXT NOT NULL,
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        window INTEGER NOT NULL,
        current INTEGER NOT NULL,
        previous INTEGER NOT NULL,
        PRIMARY KEY (gateway, scope, key)
    ) WITHOUT ROWID;"];

const CACHE_SCHEMA: &[&str] = &["CREATE TABLE cache (
        key BLOB PRIMARY KEY,
        written INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        size INTEGER NOT NULL,
        status INTEGER NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        streamed INTEGER NOT NULL,
        model TEXT,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL
    );
    CREATE INDEX cache_written ON cache (written);"];

/// Bytes of cache entries waiting for the writer; past it entries are not
/// persisted (they stay in memory).
pub const CACHE_QUEUE_BYTES: usize = 8 * 1024 * 1024;
const CACHE_QUEUE_ENTRIES: usize = 4_096;
const BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Open(#[from] hearth_core::sqlite::OpenError),
    #[error("gateway state: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("gateway state: the cache writer could not start")]
    Thread,
}

/// One rate-limit window as it is saved: `scope` is `"gateway"` (the
/// gateway-wide limit) or `"key"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRow {
    pub gateway: String,
    pub scope: &'static str,
    pub key: String,
    pub window: u64,
    pub current: u64,
    pub previous: u64,
}

struct CachePut {
    key: CacheKey,
    expires_ms: u64,
    response: CachedResponse,
    size: usize,
}

enum CacheMsg {
    Put(Box<CachePut>),
    Flush(SyncSender<()>),
}

#[derive(Debug)]
pub struct StateStore {
    conn: Mutex<Connection>,
    cache_tx: SyncSender<CacheMsg>,
    cache_queued: Arc<AtomicUsize>,
    cache_dropped: AtomicU64,
    cache_path: PathBuf,
}

fn open(path: &Path, schema: &[&str]) -> Result<Connection, StateError> {
    let mut conn = hearth_core::sqlite::open(path)?;
    hearth_core::sqlite::migrate(&mut conn, path, schema)?;
    // Durable against a killed process (the commit is in the OS), not
    // against power loss: an fsync per charged request would bound the
    // gateway to the disk's sync rate.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// `<dir>/state.sqlite` and `<dir>/cache.sqlite`.
pub fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("state.sqlite"), dir.join("cache.sqlite"))
}

impl StateStore {
    /// Opens (or creates) both files; `cache_max_bytes` is what the cache
    /// file is pruned to.
    pub fn open(
        state_path: &Path,
        cache_path: &Path,
        cache_max_bytes: usize,
        clock: SharedClock,
    ) -> Result<Self, StateError> {
        let conn = open(state_path, STATE_SCHEMA)?;
        let cache_conn = open(cache_path, CACHE_SCHEMA)?;
        let (cache_tx, rx) = sync_channel(CACHE_QUEUE_ENTRIES);
        let cache_queued = Arc::new(AtomicUsize::new(0));
        let queued = cache_queued.clone();
        std::thread::Builder::new()
            .name("ai-gateway-cache".into())
            .spawn(move || cache_loop(cache_conn, rx, queued, cache_max_bytes, clock))
            .map_err(|_| StateError::Thread)?;
        Ok(Self {
            conn: Mutex::new(conn),
            cache_tx,
            cache_queued,
            cache_dropped: AtomicU64::new(0),
            cache_path: cache_path.to_owned(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `cost` to `key`'s spend in budget window `window`, committed
    /// when this returns.
    pub fn charge(
        &self,
        gateway: &str,
        key: &str,
        window: u64,
        cost: f64,
    ) -> Result<(), StateError> {
        self.lock().execute(
            "INSERT INTO spend (gateway, key, window, spent) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (gateway, key) DO UPDATE SET
               spent = CASE WHEN window = excluded.window THEN spent + excluded.spent
                            WHEN window < excluded.window THEN excluded.spent
                            ELSE spent END,
               window = MAX(window, excluded.window)",
            params![gateway, key, window as i64, cost],
        )?;
        Ok(())
    }

    /// Every key's spend in `gateway`'s budget window `window`.
    pub fn spends(&self, gateway: &str, window: u64) -> Result<Vec<(String, f64)>, StateError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT key, spent FROM spend WHERE gateway = ?1 AND window = ?2")?;
        let rows = stmt.query_map(params![gateway, window as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves rate windows, each replacing the key's saved one.
    pub fn save_rates(&self, rows: &[RateRow]) -> Result<(), StateError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO rates (gateway, scope, key, window, current, previous)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in rows {
                stmt.execute(params![
                    r.gateway,
                    r.scope,
                    r.key,
                    r.window as i64,
                    r.current as i64,
                    r.previous as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// `gateway`'s saved windows of `scope` at or after window `since`
    /// (older ones no longer count), dropping the rest from the file.
    pub fn rates(
        &self,
        gateway: &str,
        scope: &str,
        since: u64,
    ) -> Result<Vec<RateRow>, StateError> {
        let conn = self.lock();
        conn.execute(
            "DELETE FROM rates WHERE gateway = ?1 AND scope = ?2 AND window < ?3",
            params![gateway, scope, since as i64],
        )?;
        let mut stmt = conn.prepare(
            "SELECT key, window, current, previous FROM rates WHERE gateway = ?1 AND scope = ?2",
        )?;
        let scope: &'static str = if scope == "gateway" { "gateway" } else { "key" };
        let rows = stmt.query_map(params![gateway, scope], |r| {
            Ok(RateRow {
                gateway: gateway.to_owned(),
                scope,
                key: r.get(0)?,
                window: r.get::<_, i64>(1)? as u64,
                current: r.get::<_, i64>(2)? as u64,
                previous: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Queues a cache entry for the cache file; never waits.
    pub fn cache_put(&self, key: CacheKey, response: &CachedResponse, expires_ms: u64) {
        let size = response.body.len()
            + response
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + 128;
        if self.cache_queued.fetch_add(size, Ordering::Relaxed) + size > CACHE_QUEUE_BYTES {
            self.cache_queued.fetch_sub(size, Ordering::Relaxed);
            self.cache_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let msg = CacheMsg::Put(Box::new(CachePut {
            key,
            expires_ms,
            response: response.clone(),
            size,
        }));
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.cache_tx.try_send(msg)
        {
            self.cache_queued.fetch_sub(size, Ordering::Relaxed);
            self.cache_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Cache entries not persisted because the queue was full.
    pub fn cache_dropped(&self) -> u64 {
        self.cache_dropped.load(Ordering::Relaxed)
    }

    /// Waits until every cache entry queued so far is written.
    pub fn flush_cache(&self) {
        let (tx, rx) = sync_channel(1);
        if self.cache_tx.send(CacheMsg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// The saved cache entries not expired at `now_ms`, newest first, up
    /// to `max_bytes` in all: what a restarted gateway answers from.
    pub fn load_cache(
        &self,
        now_ms: u64,
        max_bytes: usize,
    ) -> Result<Vec<(CacheKey, CachedResponse, u64)>, StateError> {
        let conn = open(&self.cache_path, CACHE_SCHEMA)?;
        let mut stmt = conn.prepare(
            "SELECT key, expires_ms, size, status, headers, body, streamed, model, tokens_in, tokens_out
             FROM cache WHERE expires_ms > ?1 ORDER BY written DESC",
        )?;
        let mut rows = stmt.query(params![now_ms as i64])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(r) = rows.next()? {
            let size = r.get::<_, i64>(2)? as usize;
            if bytes + size > max_bytes {
                break;
            }
            let key: Vec<u8> = r.get(0)?;
            let Ok(key) = CacheKey::try_from(key.as_slice()) else {
                continue;
            };
            let headers: String = r.get(4)?;
            let Ok(headers) = serde_json::from_str::<Vec<(String, String)>>(&headers) else {
                continue;
            };
            bytes += size;
            out.push((
                key,
                CachedResponse {
                    status: r.get::<_, i64>(3)? as u16,
                    headers,
                    body: Bytes::from(r.get::<_, Vec<u8>>(5)?),
                    streamed: r.get::<_, i64>(6)? != 0,
                    model: r.get(7)?,
                    tokens_in: r.get::<_, i64>(8)? as u64,
                    tokens_out: r.get::<_, i64>(9)? as u64,
                },
                r.get::<_, i64>(1)? as u64,
            ));
        }
        Ok(out)
    }
}

fn cache_loop(
    mut conn: Connection,
    rx: Receiver<CacheMsg>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
    clock: SharedClock,
) {
    let mut bytes: usize = conn
        .query_row("SELECT COALESCE(SUM(size), 0) FROM cache", [], |r| {
            r.get::<_, i64>(0)
        })
        .optional()
        .ok()
        .flatten()
        .unwrap_or(0) as usize;
    let mut written: i64 = conn
        .query_row("SELECT COALESCE(MAX(written), 0) FROM cache", [], |r| {
            r.get(0)
        })
        .unwrap_or(0);
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO cache (key, written, expires_ms, size, status, headers,
                       body, streamed, model, tokens_in, tokens_out)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                let mut old = tx.prepare_cached("SELECT size FROM cache WHERE key = ?1")?;
                for m in batch {
                    match m {
                        CacheMsg::Put(p) => {
                            queued.fetch_sub(p.size, Ordering::Relaxed);
                            let replaced: Option<i64> = old
                                .query_row(params![&p.key[..]], |r| r.get(0))
                                .optional()?;
                            bytes = bytes.saturating_sub(replaced.unwrap_or(0) as usize);
                            written += 1;
                            let headers = serde_json::to_string(&p.response.headers)
                                .unwrap_or_else(|_| "[]".into());
                            put.execute(params![
                                &p.key[..],
                                written,
                                p.expires_ms as i64,
                                p.size as i64,
                                i64::from(p.response.status),
                                headers,
                                &p.response.body[..],
                                i64::from(p.response.streamed),
                                p.response.model,
                                p.response.tokens_in as i64,
                                p.response.tokens_out as i64,
                            ])?;
                            bytes += p.size;
                        }
                        CacheMsg::Flush(ack) => acks.push(ack),
                    }
                }
            }
            if bytes > max_bytes {
                // Down to nine tenths, so pruning runs once per tenth of
                // the cap written rather than on every batch.
                bytes = prune(&tx, max_bytes / 10 * 9, clock.now_ms())?;
            }
            tx.commit()
        })();
        if let Err(e) = result {
            tracing::warn!("AI Gateway cache file: {e}");
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Drops expired entries, then the oldest, until the file holds at most
/// `max_bytes`; answers what it holds then.
fn prune(tx: &rusqlite::Transaction<'_>, max_bytes: usize, now: u64) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM cache WHERE expires_ms <= ?1",
        params![now as i64],
    )?;
    let mut bytes = tx.query_row("SELECT COALESCE(SUM(size), 0) FROM cache", [], |r| {
        r.get::<_, i64>(0)
    })? as usize;
    if bytes <= max_bytes {
        return Ok(bytes);
    }
    // Oldest first until under the cap; ordered by `written`, indexed.
    let mut cut = None;
    {
        let mut stmt = tx.prepare("SELECT written, size FROM cache ORDER BY written")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (written, size): (i64, i64) = (r.get(0)?, r.get(1)?);
            bytes -= size as usize;
            cut = Some(written);
            if bytes <= max_bytes {
                break;
            }
        }
    }
    if let Some(w) = cut {
        tx.execute("DELETE FROM cache WHERE written <= ?1", params![w])?;
    }
    Ok(bytes)
}
