//! The cluster backend: counters in Redis, checked and counted by one Lua
//! script, which Redis runs atomically, so concurrent callers on every
//! node are admitted exactly `limit` times per window.
//!
//! Keys: `<prefix>:rl:{<namespace>:<period>:<window>}:k:<key>` for a key's
//! count, `...:n` for how many keys the window tracks and `...:o` for the
//! shared overflow budget past `max_keys`. The braces are a hash tag, so a
//! window's keys stay in one slot of a Redis Cluster. Every key expires
//! one period after its window ends: Redis holds only the windows in use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::{Connection, Script};

use crate::RateLimitError;

/// Idle connections kept per pool; more callers at once open more and
/// close the extra ones after use.
const MAX_IDLE: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(2);

const COUNT: &str = r"
local key = KEYS[1]
local n = redis.call('GET', key)
if not n then
  local tracked = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tracked >= tonumber(ARGV[3]) then
    key = KEYS[3]
    n = redis.call('GET', key)
  else
    redis.call('INCR', KEYS[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
end
n = tonumber(n or '0')
if n >= tonumber(ARGV[1]) then
  return 0
end
redis.call('INCR', key)
if n == 0 then
  redis.call('PEXPIRE', key, ARGV[2])
end
return 1
";

/// Connections to one Redis server. Cheap to clone.
#[derive(Clone)]
pub struct RedisPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    client: redis::Client,
    prefix: String,
    idle: Mutex<Vec<Connection>>,
    script: Script,
    /// Calls Redis did not answer (for metrics).
    errors: AtomicU64,
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPool")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

fn backend(e: redis::RedisError) -> RateLimitError {
    RateLimitError::Backend(format!("Redis: {e}"))
}

impl RedisPool {
    /// Connects to `url` once, so a wrong address fails at start.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let pool = Self {
            inner: Arc::new(PoolInner {
                client,
                prefix: prefix.to_owned(),
                idle: Mutex::new(Vec::new()),
                script: Script::new(COUNT),
                errors: AtomicU64::new(0),
            }),
        };
        pool.with(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(pool)
    }

    /// The counters of one namespace.
    pub fn counter(&self, namespace_id: &str) -> RedisCounter {
        RedisCounter {
            pool: self.clone(),
            namespace: namespace_id.to_owned(),
        }
    }

    /// Calls Redis failed since the pool was made.
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }

    /// Runs `f` on a pooled connection (the key prefix is the caller's to
    /// apply, [`prefix`](Self::prefix)).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, RateLimitError> {
        let out = self.with_connection(f);
        if out.is_err() {
            self.inner.errors.fetch_add(1, Ordering::Relaxed);
        }
        out
    }

    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, RateLimitError> {
        let pooled = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let c = self
                    .inner
                    .client
                    .get_connection_with_timeout(TIMEOUT)
                    .map_err(backend)?;
                c.set_read_timeout(Some(TIMEOUT)).map_err(backend)?;
                c.set_write_timeout(Some(TIMEOUT)).map_err(backend)?;
                c
            }
        };
        // A connection that failed is dropped, not returned: its state
        // (a half-read reply) is unknown.
        let out = f(&mut conn).map_err(backend)?;
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(out)
    }
}

/// One namespace's counters in Redis.
#[derive(Debug, Clone)]
pub struct RedisCounter {
    pool: RedisPool,
    namespace: String,
}

impl RedisCounter {
    fn window(&self, period: u64, index: u64) -> String {
        format!(
            "{}:rl:{{{}:{period}:{index}}}",
            self.pool.inner.prefix, self.namespace
        )
    }

    pub(crate) fn count(
        &self,
        key: &str,
        limit: u64,
        period: u64,
        index: u64,
        max_keys: usize,
    ) -> Result<bool, RateLimitError> {
        let window = self.window(period, index);
        // Kept one period past the window's end; the window's own index
        // says which counts apply, so a late expiry is harmless.
        let ttl_ms = period * 2000;
        let admitted: i64 = self.pool.with(|c| {
            self.pool
                .inner
                .script
                .key(format!("{window}:k:{key}"))
                .key(format!("{window}:n"))
                .key(format!("{window}:o"))
                .arg(limit)
                .arg(ttl_ms)
                .arg(max_keys)
                .invoke(c)
        })?;
        Ok(admitted == 1)
    }

    pub(crate) fn tracked(&self, period: u64, index: u64) -> Result<usize, RateLimitError> {
        let key = format!("{}:n", self.window(period, index));
        let n: Option<usize> = self.pool.with(|c| redis::cmd("GET").arg(key).query(c))?;
        Ok(n.unwrap_or(0))
    }
}
