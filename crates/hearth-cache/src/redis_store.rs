//! The Cache API on Redis (cluster mode with `[redis]`): one key per entry,
//! so a `put` on one node is a `match` on every other.
//!
//! The key is `<prefix>:cache:<cache key length>:<cache key>:<url>` (the
//! length keeps a named cache's name from running into the URL). The value
//! holds the stored-at and expiry times, the status, the stored headers
//! and the body. Redis expires the key after the entry's TTL (`PX`), and a
//! `match` also checks the expiry against the injected clock, so an
//! expired entry is never served. Entry size is bounded as in the embedded
//! store (`CacheLimits`); the total is Redis's `maxmemory`, with an
//! eviction policy the operator chooses.

use hearth_core::SharedClock;
use hearth_ratelimit::RateLimitError;
use hearth_ratelimit::redis::RedisPool;

use crate::{
    CacheError, CacheLimits, CacheName, CachedResponse, NotStored, Prepared, PutOutcome,
    RequestKey, check_url, hit,
};

/// Fixed part of a value: stored-at and expiry (ms), status, metadata length.
const HEAD: usize = 8 + 8 + 2 + 4;

/// Every cache of the cluster, in Redis.
pub struct RedisCache {
    pool: RedisPool,
    clock: SharedClock,
    limits: CacheLimits,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.pool.prefix())
            .field("limits", &self.limits)
            .finish()
    }
}

fn redis_error(e: RateLimitError) -> CacheError {
    match e {
        RateLimitError::Backend(m) => CacheError::Redis(m),
        other => CacheError::Redis(other.to_string()),
    }
}

/// One stored entry, as read back.
struct Entry {
    stored_at: u64,
    expires_at: u64,
    status: u16,
    status_text: String,
    headers: String,
    body: Vec<u8>,
}

fn encode(
    (stored_at, expires_at): (u64, u64),
    status: u16,
    status_text: &str,
    headers: &str,
    body: &[u8],
) -> Vec<u8> {
    let meta = serde_json::json!([status_text, headers]).to_string();
    let mut v = Vec::with_capacity(HEAD + meta.len() + body.len());
    v.extend_from_slice(&stored_at.to_be_bytes());
    v.extend_from_slice(&expires_at.to_be_bytes());
    v.extend_from_slice(&status.to_be_bytes());
    v.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    v.extend_from_slice(meta.as_bytes());
    v.extend_from_slice(body);
    v
}

/// `None` for a value this code did not write (it is then a miss).
fn decode(mut v: Vec<u8>) -> Option<Entry> {
    let head = v.get(..HEAD)?;
    let u64_at = |i: usize| head[i..i + 8].try_into().ok().map(u64::from_be_bytes);
    let stored_at = u64_at(0)?;
    let expires_at = u64_at(8)?;
    let status = u16::from_be_bytes(head[16..18].try_into().ok()?);
    let meta_len = u32::from_be_bytes(head[18..22].try_into().ok()?) as usize;
    let meta_end = HEAD.checked_add(meta_len)?;
    let (status_text, headers): (String, String) =
        serde_json::from_slice(v.get(HEAD..meta_end)?).ok()?;
    let body = v.split_off(meta_end);
    Some(Entry {
        stored_at,
        expires_at,
        status,
        status_text,
        headers,
        body,
    })
}

impl RedisCache {
    /// Caches in the Redis of `pool` (its prefix starts every key).
    pub fn new(pool: RedisPool, clock: SharedClock, limits: CacheLimits) -> Self {
        Self {
            pool,
            clock,
            limits,
        }
    }

    fn key(&self, cache_key: &str, url: &str) -> String {
        format!(
            "{}:cache:{}:{cache_key}:{url}",
            self.pool.prefix(),
            cache_key.len()
        )
    }

    /// The checks `match` and `delete` share; `None`: not a GET, so no entry.
    fn entry_key(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<Option<String>, CacheError> {
        let cache_key = cache.key()?;
        if !ignore_method && !request.method.eq_ignore_ascii_case("GET") {
            return Ok(None);
        }
        check_url(request.url)?;
        Ok(Some(self.key(&cache_key, request.url)))
    }
}

impl crate::Cache for RedisCache {
    fn put(
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
        if p.ttl_ms == 0 {
            return Ok(PutOutcome::NotStored(NotStored::Expired));
        }
        let expires_at_ms = now.saturating_add(p.ttl_ms);
        let value = encode(
            (now, expires_at_ms),
            p.response.status,
            &p.response.status_text,
            &p.headers_json,
            &p.response.body,
        );
        let key = self.key(&p.cache_key, request.url);
        self.pool
            .with(|c| {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(p.ttl_ms)
                    .query::<()>(c)
            })
            .map_err(redis_error)?;
        Ok(PutOutcome::Stored { expires_at_ms })
    }

    fn lookup(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<Option<CachedResponse>, CacheError> {
        let Some(key) = self.entry_key(cache, request, ignore_method)? else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let value: Option<Vec<u8>> = self
            .pool
            .with(|c| redis::cmd("GET").arg(&key).query(c))
            .map_err(redis_error)?;
        let Some(e) = value.and_then(decode).filter(|e| e.expires_at > now) else {
            return Ok(None);
        };
        Ok(Some(hit(
            (e.status, e.status_text, &e.headers, e.body),
            e.stored_at,
            now,
            request.headers,
            e.stored_at as i64,
        )))
    }

    fn delete(
        &self,
        cache: CacheName<'_>,
        request: &RequestKey<'_>,
        ignore_method: bool,
    ) -> Result<bool, CacheError> {
        let Some(key) = self.entry_key(cache, request, ignore_method)? else {
            return Ok(false);
        };
        let now = self.clock.now_ms();
        let value: Option<Vec<u8>> = self
            .pool
            .with(|c| redis::cmd("GETDEL").arg(&key).query(c))
            .map_err(redis_error)?;
        Ok(value.and_then(decode).is_some_and(|e| e.expires_at > now))
    }
}
