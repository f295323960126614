//! The Workers Cache API (`caches.default`, `caches.open(name)`) as a Rust
//! contract over embedded storage: one `cache.sqlite` holding every entry's
//! key, headers and expiry, and one file per non-empty body under `bodies/`,
//! written atomically through hearth-core before its row is committed.
//!
//! Rules (Cloudflare's, see [`policy`] for which responses are stored):
//! - only `GET` requests are keys; `put()` of another method, of a 206, or
//!   of a response with `Vary: *` is refused with workerd's `TypeError`s; a
//!   304 is silently discarded;
//! - an entry is keyed by cache and URL; `Vary` other than `*` is kept but
//!   does not split entries, as on Cloudflare without a Cache Rule;
//! - a match answers `cf-cache-status: HIT`, honours `If-None-Match` /
//!   `If-Modified-Since` (304) and, for a response stored with a
//!   `Content-Length`, `Range` (206, 416);
//! - expiry is read through the injected clock, so an expired entry is
//!   never served;
//! - the store is bounded: an entry over `max_entry_bytes` is not stored,
//!   and a put that would pass `max_total_bytes` first evicts expired
//!   entries, then the least recently used ones.

mod error;
pub mod policy;
mod redis_store;
pub mod serve;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hearth_core::SharedClock;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub use error::CacheError;
pub use policy::{Decision, NotStored};
pub use redis_store::RedisCache;
use serve::RangeAsk;

/// Longest cache name `caches.open()` takes, in bytes (workerd's limit).
pub const MAX_CACHE_NAME_BYTES: usize = 1023;

/// A hit refreshes an entry's recency at most this often, so reads rarely
/// write.
const RECENCY_GRANULARITY_MS: u64 = 60_000;

/// A body file without a row, older than this on the store's clock, was
/// left by a crash between the file and its commit and is removed at open.
const ORPHAN_AGE_MS: u64 = 10 * 60_000;

const SCHEMA: &[&str] = &["CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        cache TEXT NOT NULL,
        url TEXT NOT NULL,
        status INTEGER NOT NULL,
        status_text TEXT NOT NULL,
        headers TEXT NOT NULL,
        body_file TEXT,
        body_len INTEGER NOT NULL,
        size INTEGER NOT NULL,
        stored_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        last_used INTEGER NOT NULL,
        UNIQUE (cache, url)
    );
    CREATE INDEX entries_recency ON entries (last_used);"];

/// The store's bounds.
#[derive(Debug, Clone)]
pub struct CacheLimits {
    /// Bodies and headers of every entry together; default 1 GiB.
    pub max_total_bytes: u64,
    /// One entry's body; default 512 MiB, Cloudflare's per-file limit on
    /// its Free, Pro and Business plans.
    pub max_entry_bytes: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: 1 << 30,
            max_entry_bytes: 512 << 20,
        }
    }
}

/// Which cache: `caches.default` or `await caches.open(name)` (a named
/// cache never shares entries with the default one, even when called
/// "default").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheName<'a> {
    Default,
    Named(&'a str),
}

impl CacheName<'_> {
    fn key(self) -> Result<String, CacheError> {
        match self {
            CacheName::Default => Ok("d".into()),
            CacheName::Named(n) if n.len() > MAX_CACHE_NAME_BYTES => Err(CacheError::NameTooLong),
            CacheName::Named(n) => Ok(format!("n:{n}")),
        }
    }
}

/// The request side of a call: method, absolute URL, header pairs (names
/// in any case).
#[derive(Debug, Clone, Copy)]
pub struct RequestKey<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
}

/// A response as stored and as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedResponse {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What `put()` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Stored { expires_at_ms: u64 },
    NotStored(NotStored),
}

/// Entry count and bytes, for health reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUsage {
    pub entries: u64,
    pub bytes: u64,
}

/// The Cache API's calls, whichever store holds the entries: the data
/// directory's ([`CacheStore`]) or, in cluster mode, Redis
/// ([`RedisCache`], shared by every node).
pub trait Cache: Send + Sync + std::fmt::Debug {
    /// `cache.put(request, response)`.
    fn put(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        response: CachedResponse,
    ) -> Result<PutOutcome, CacheError>;

    /// `cache.match(request, {ignoreMethod})`.
    fn lookup(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<Option<CachedResponse>, CacheError>;

    /// `cache.delete(request, {ignoreMethod})`.
    fn delete(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<bool, CacheError>;
}

impl Cache for CacheStore {
    fn put(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        response: CachedResponse,
    ) -> Result<PutOutcome, CacheError> {
        CacheStore::put(self, cache, request, response)
    }

    fn lookup(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<Option<CachedResponse>, CacheError> {
        CacheStore::lookup(self, cache, request, ignore_method)
    }

    fn delete(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<bool, CacheError> {
        CacheStore::delete(self, cache, request, ignore_method)
    }
}

/// Every cache of one data directory.
pub struct CacheStore {
    dir: PathBuf,
    conn: Mutex<Connection>,
    clock: SharedClock,
    limits: CacheLimits,
    next_file: AtomicU64,
}

impl std::fmt::Debug for CacheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheStore")
            .field("dir", &self.dir)
            .field("limits", &self.limits)
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn check_url(url: &str) -> Result<(), CacheError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(CacheError::InvalidUrl),
    }
}

/// `Vary: *` (alone or in a list) cannot be stored. Other `Vary` values are
/// kept with the response but do not split the entry: Cloudflare's cache
/// varies on a response's `Vary` only for headers a Cache Rule names, and
/// a worker's Cache API calls have none.
fn check_vary(headers: &[(String, String)]) -> Result<(), CacheError> {
    let star = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("vary") && v.contains('*'));
    if star {
        Err(CacheError::VaryStar)
    } else {
        Ok(())
    }
}

/// A put that passed the checks and the storage rules.
struct Prepared {
    cache_key: String,
    /// The headers as stored (lower-case names, Date added, hop and
    /// strip-listed ones dropped).
    headers_json: String,
    /// Accounted bytes: body, headers and URL.
    size: u64,
    ttl_ms: u64,
    body_len: u64,
    /// Status, status text and body (its headers moved to `headers_json`).
    response: CachedResponse,
}

impl Prepared {
    /// Checks a put as workerd does and decides, by Cloudflare's rules,
    /// whether and how long the response is stored: `Ok(Err(why))` when
    /// it is not.
    fn of(
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        mut response: CachedResponse,
        now: u64,
        limits: &CacheLimits,
    ) -> Result<Result<Self, NotStored>, CacheError> {
        let cache_key = cache.key()?;
        check_url(request.url)?;
        if !request.method.eq_ignore_ascii_case("GET") {
            return Err(CacheError::NonGetRequest);
        }
        if response.status == 206 {
            return Err(CacheError::PartialContent);
        }
        check_vary(&response.headers)?;
        let (ttl_ms, strip) = match policy::decide(response.status, &response.headers, now) {
            Decision::Store { ttl_ms, strip } => (ttl_ms, strip),
            Decision::Skip(why) => return Ok(Err(why)),
        };
        let body_len = response.body.len() as u64;
        let limit = limits.max_entry_bytes.min(limits.max_total_bytes);
        if body_len > limit {
            return Ok(Err(NotStored::TooLarge {
                size: body_len,
                limit,
            }));
        }
        // A response given with a Content-Length is stored with the real
        // one; one without (a stream of unknown length) is stored without,
        // and then answers range requests with the whole body.
        let known_length = policy::header(&response.headers, "content-length").is_some();
        let mut headers: Vec<(String, String)> = std::mem::take(&mut response.headers)
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .filter(|(n, _)| !strip.contains(n) && n != "content-length" && n != "cf-cache-status")
            .collect();
        if known_length {
            headers.push(("content-length".into(), body_len.to_string()));
        }
        // A cache adds the Date an origin left out (RFC 9110 6.6.1), so
        // Age and Expires have a base.
        if !headers.iter().any(|(n, _)| n == "date") {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(now);
            headers.push(("date".into(), httpdate::fmt_http_date(at)));
        }
        let headers_json = serde_json::to_string(&headers).unwrap_or_else(|_| "[]".into());
        let size = body_len + headers_json.len() as u64 + request.url.len() as u64;
        // The body fits, but with its key and headers the entry would not
        // fit in the whole cache.
        if size > limits.max_total_bytes {
            return Ok(Err(NotStored::TooLarge {
                size,
                limit: limits.max_total_bytes,
            }));
        }
        Ok(Ok(Self {
            cache_key,
            headers_json,
            size,
            ttl_ms,
            body_len,
            response,
        }))
    }
}

struct Row {
    id: i64,
    status: u16,
    status_text: String,
    headers: String,
    body_file: Option<String>,
    stored_at: u64,
    expires_at: u64,
    last_used: u64,
}

impl CacheStore {
    /// Opens (creating) the store in `dir` (`DataDir::cache()`), and removes
    /// body files a crash left without a row.
    pub fn open(dir: &Path, clock: SharedClock, limits: CacheLimits) -> Result<Self, CacheError> {
        let path = dir.join("cache.sqlite");
        let mut conn = hearth_core::sqlite::open(&path)?;
        hearth_core::sqlite::migrate(&mut conn, &path, SCHEMA)?;
        let bodies = dir.join("bodies");
        std::fs::create_dir_all(&bodies).map_err(io_err(&bodies))?;
        let store = Self {
            dir: dir.to_path_buf(),
            conn: Mutex::new(conn),
            clock,
            limits,
            next_file: AtomicU64::new(0),
        };
        store.sweep_orphans()?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn bodies(&self) -> PathBuf {
        self.dir.join("bodies")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so the poison carries no meaning.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sweep_orphans(&self) -> Result<(), CacheError> {
        let bodies = self.bodies();
        let now = self.clock.now_ms();
        let conn = self.lock();
        let mut known = conn.prepare("SELECT 1 FROM entries WHERE body_file = ?1")?;
        for entry in std::fs::read_dir(&bodies).map_err(io_err(&bodies))? {
            let entry = entry.map_err(io_err(&bodies))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let written_at = name
                .split('-')
                .next()
                .and_then(|t| u64::from_str_radix(t, 16).ok());
            let old = hearth_core::fs::is_temporary(&name)
                || written_at.is_none_or(|t| now.saturating_sub(t) > ORPHAN_AGE_MS);
            if old && !known.exists([&name])? {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn remove_files(&self, files: &[String]) {
        for f in files {
            if let Err(e) = std::fs::remove_file(self.bodies().join(f))
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %f, "cache: could not remove a replaced body: {e}");
            }
        }
    }

    /// `cache.put(request, response)`.
    pub fn put(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        response: CachedResponse,
    ) -> Result<PutOutcome, CacheError> {
        let now = self.clock.now_ms();
        let p = match Prepared::of(cache, request, response, now, &self.limits)? {
            Ok(p) => p,
            Err(why) => return Ok(PutOutcome::NotStored(why)),
        };
        let (cache_key, headers_json, size, ttl_ms, body_len) =
            (p.cache_key, p.headers_json, p.size, p.ttl_ms, p.body_len);
        let response = p.response;
        let body_file = if response.body.is_empty() {
            None
        } else {
            let name = format!(
                "{now:016x}-{}-{}",
                std::process::id(),
                self.next_file.fetch_add(1, Ordering::Relaxed)
            );
            let path = self.bodies().join(&name);
            hearth_core::fs::write_atomic(&path, &response.body).map_err(io_err(&path))?;
            Some(name)
        };
        let expires_at_ms = now.saturating_add(ttl_ms);
        let committed = self.commit_put(
            &cache_key,
            request.url,
            (response.status, &response.status_text, &headers_json),
            body_file.as_deref(),
            (body_len, size, now, expires_at_ms),
        );
        match committed {
            Ok(replaced) => {
                self.remove_files(&replaced);
                Ok(PutOutcome::Stored { expires_at_ms })
            }
            Err(e) => {
                self.remove_files(body_file.as_slice());
                Err(e)
            }
        }
    }

    /// Replaces the entry's row and evicts what no longer fits, in one
    /// transaction; returns the body files no row points to any more.
    #[allow(clippy::too_many_arguments)]
    fn commit_put(
        &self,
        cache: &str,
        url: &str,
        (status, status_text, headers): (u16, &str, &str),
        body_file: Option<&str>,
        (body_len, size, now, expires_at): (u64, u64, u64, u64),
    ) -> Result<Vec<String>, CacheError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut unreferenced = Vec::new();
        let old: Option<(i64, Option<String>)> = tx
            .query_row(
                "SELECT id, body_file FROM entries WHERE cache = ?1 AND url = ?2",
                params![cache, url],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, file)) = old {
            tx.execute("DELETE FROM entries WHERE id = ?1", [id])?;
            unreferenced.extend(file);
        }
        let mut total: u64 =
            tx.query_row("SELECT COALESCE(SUM(size), 0) FROM entries", [], |r| {
                r.get::<_, i64>(0)
            })? as u64;
        while total + size > self.limits.max_total_bytes {
            let victims: Vec<(i64, u64, Option<String>)> = {
                let mut stmt = tx.prepare(
                    "SELECT id, size, body_file FROM entries
                     ORDER BY (expires_at > ?1), last_used LIMIT 32",
                )?;
                stmt.query_map([now as i64], |r| {
                    Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?
            };
            if victims.is_empty() {
                break;
            }
            for (id, victim_size, file) in victims {
                if total + size <= self.limits.max_total_bytes {
                    break;
                }
                tx.execute("DELETE FROM entries WHERE id = ?1", [id])?;
                total = total.saturating_sub(victim_size);
                unreferenced.extend(file);
            }
        }
        tx.execute(
            "INSERT INTO entries (cache, url, status, status_text, headers,
                body_file, body_len, size, stored_at, expires_at, last_used)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9)",
            params![
                cache,
                url,
                status,
                status_text,
                headers,
                body_file,
                body_len as i64,
                size as i64,
                now as i64,
                expires_at as i64
            ],
        )?;
        tx.commit()?;
        Ok(unreferenced)
    }

    /// The live entry of `cache` that `request` selects, if any.
    fn find(
        &self,
        cache: &str,
        request: &RequestKey<'_>,
        now: u64,
    ) -> Result<Option<Row>, CacheError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, status, status_text, headers, body_file, stored_at, expires_at, last_used
             FROM entries WHERE cache = ?1 AND url = ?2",
        )?;
        let rows = stmt
            .query_map(params![cache, request.url], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    status: r.get(1)?,
                    status_text: r.get(2)?,
                    headers: r.get(3)?,
                    body_file: r.get(4)?,
                    stored_at: r.get::<_, i64>(5)? as u64,
                    expires_at: r.get::<_, i64>(6)? as u64,
                    last_used: r.get::<_, i64>(7)? as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let found = rows.into_iter().next().filter(|row| row.expires_at > now);
        if let Some(row) = &found
            && now.saturating_sub(row.last_used) >= RECENCY_GRANULARITY_MS
        {
            conn.execute(
                "UPDATE entries SET last_used = ?1 WHERE id = ?2",
                params![now as i64, row.id],
            )?;
        }
        Ok(found)
    }

    /// `cache.match(request, {ignoreMethod})`: the stored response as it
    /// answers this request (200, 206, 304 or 416), or `None`.
    pub fn lookup(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<Option<CachedResponse>, CacheError> {
        let cache_key = cache.key()?;
        if !ignore_method && !request.method.eq_ignore_ascii_case("GET") {
            return Ok(None);
        }
        check_url(request.url)?;
        let now = self.clock.now_ms();
        let Some(row) = self.find(&cache_key, request, now)? else {
            return Ok(None);
        };
        let body = match &row.body_file {
            None => Vec::new(),
            Some(f) => match std::fs::read(self.bodies().join(f)) {
                Ok(b) => b,
                // Its file was swept by a process that took it for an
                // orphan: the entry is gone.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.lock()
                        .execute("DELETE FROM entries WHERE id = ?1", [row.id])?;
                    return Ok(None);
                }
                Err(e) => return Err(io_err(&self.bodies().join(f))(e)),
            },
        };
        Ok(Some(hit(
            (row.status, row.status_text, &row.headers, body),
            row.stored_at,
            now,
            request.headers,
            row.id,
        )))
    }

    /// `cache.delete(request, {ignoreMethod})`: removes the URL's entry;
    /// `true` when a live one was there.
    pub fn delete(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<bool, CacheError> {
        let cache_key = cache.key()?;
        if !ignore_method && !request.method.eq_ignore_ascii_case("GET") {
            return Ok(false);
        }
        check_url(request.url)?;
        let now = self.clock.now_ms();
        let removed: Vec<(Option<String>, u64)> = {
            let conn = self.lock();
            let mut stmt = conn.prepare_cached(
                "DELETE FROM entries WHERE cache = ?1 AND url = ?2 RETURNING body_file, expires_at",
            )?;
            stmt.query_map(params![cache_key, request.url], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<_, _>>()?
        };
        let live = removed.iter().any(|(_, exp)| *exp > now);
        let files: Vec<String> = removed.into_iter().filter_map(|(f, _)| f).collect();
        self.remove_files(&files);
        Ok(live)
    }

    /// How many entries the store holds and their accounted bytes.
    pub fn usage(&self) -> Result<CacheUsage, CacheError> {
        let conn = self.lock();
        let (entries, bytes): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(CacheUsage {
            entries: entries as u64,
            bytes: bytes as u64,
        })
    }
}

/// A stored entry as it answers `request`: marked a hit, with its age.
fn hit(
    (status, status_text, headers, body): (u16, String, &str, Vec<u8>),
    stored_at: u64,
    now: u64,
    request: &[(String, String)],
    id: i64,
) -> CachedResponse {
    let mut headers: Vec<(String, String)> = serde_json::from_str(headers).unwrap_or_default();
    headers.push(("cf-cache-status".into(), "HIT".into()));
    let age = now.saturating_sub(stored_at) / 1000;
    headers.push(("age".into(), age.to_string()));
    answer(
        CachedResponse {
            status,
            status_text,
            headers,
            body,
        },
        request,
        id,
    )
}

/// Applies the request's conditional and range headers to a stored 200.
fn answer(mut stored: CachedResponse, request: &[(String, String)], id: i64) -> CachedResponse {
    if serve::not_modified(request, &stored.headers) {
        stored.headers.retain(|(n, _)| n != "content-length");
        return CachedResponse {
            status: 304,
            status_text: "Not Modified".into(),
            headers: stored.headers,
            body: Vec::new(),
        };
    }
    let Some(range) = policy::header(request, "range") else {
        return stored;
    };
    // Cloudflare answers a range from a cached response with a length.
    if stored.status != 200 || policy::header(&stored.headers, "content-length").is_none() {
        return stored;
    }
    let len = stored.body.len() as u64;
    let set = |headers: &mut Vec<(String, String)>, name: &str, value: String| {
        headers.retain(|(n, _)| n != name);
        headers.push((name.to_string(), value));
    };
    match serve::parse_range(range, len) {
        RangeAsk::Whole => stored,
        RangeAsk::Unsatisfiable => {
            set(
                &mut stored.headers,
                "content-range",
                format!("bytes */{len}"),
            );
            stored.headers.retain(|(n, _)| n != "content-length");
            CachedResponse {
                status: 416,
                status_text: "Range Not Satisfiable".into(),
                headers: stored.headers,
                body: Vec::new(),
            }
        }
        RangeAsk::Ranges(ranges) => {
            let body = if let [(start, end)] = ranges[..] {
                set(
                    &mut stored.headers,
                    "content-range",
                    format!("bytes {start}-{end}/{len}"),
                );
                stored.body[start as usize..=end as usize].to_vec()
            } else {
                let boundary = format!("hearth-range-{id:x}-{len:x}");
                let content_type =
                    policy::header(&stored.headers, "content-type").map(str::to_string);
                let body =
                    serve::multipart(&stored.body, &ranges, content_type.as_deref(), &boundary);
                set(
                    &mut stored.headers,
                    "content-type",
                    format!("multipart/byteranges; boundary={boundary}"),
                );
                body
            };
            set(
                &mut stored.headers,
                "content-length",
                body.len().to_string(),
            );
            CachedResponse {
                status: 206,
                status_text: "Partial Content".into(),
                headers: stored.headers,
                body,
            }
        }
    }
}
