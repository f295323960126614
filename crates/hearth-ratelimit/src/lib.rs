//! The Rate Limiting binding's engine: `limit(key)` counts one request
//! against a key's budget for the current period and says whether it fits.
//!
//! Semantics, as Cloudflare documents the binding: a namespace (its
//! `namespace_id`, account-wide) holds the counters, and every binding with
//! that id shares them; a binding sets `limit` requests per `period`
//! seconds, where the period is 10 or 60; a call may override both. Counts
//! live in memory and restart empty, as they do per Cloudflare location.
//! Windows are fixed and aligned to the clock (`now / period`), so a client
//! can at most double its limit across one window boundary. The clock read
//! is the coarse one (`Clock::now_ms_coarse`), so every edge falls a few
//! milliseconds after the precise second.
//!
//! Memory is bounded: a namespace tracks at most `max_keys` keys per
//! window. Keys past that share one overflow budget, so a flood of unique
//! keys is still limited, together, instead of growing the table.
//!
//! The edge's rate-limiting rules count here too ([`RateLimitNamespace::count`]),
//! with the same windows and check-and-count, over the longer periods
//! Cloudflare offers for those rules (up to [`MAX_PERIOD`] seconds).
//!
//! Two backends count: memory (one node, the default) and Redis (cluster
//! mode, see [`redis`]): the same rules, with check-and-count one atomic
//! script, so the limit is exact across every node sharing the server.

pub mod redis;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use hearth_core::{ContractError, ErrorClass, SharedClock};

/// The periods Cloudflare accepts for the binding, in seconds.
pub const PERIODS: [u64; 2] = [10, 60];
/// The longest period [`RateLimitNamespace::count`] accepts (a day).
pub const MAX_PERIOD: u64 = 86_400;
/// Distinct periods one namespace counts at once; a namespace asked for
/// more is refused rather than grown.
pub const MAX_PERIODS_PER_NAMESPACE: usize = 64;
/// Keys tracked per namespace and window before the overflow budget.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Longest key counted; longer keys are refused (Cloudflare's keys are
/// identifiers such as an IP, a user id or a path).
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RateLimitError {
    #[error("unsupported period: {0}")]
    UnsupportedPeriod(u64),
    #[error("a namespace counts at most {MAX_PERIODS_PER_NAMESPACE} distinct periods")]
    TooManyPeriods,
    #[error("limit must be a number: {0}")]
    BadLimit(String),
    #[error("rate limit key is {0} bytes, above the {MAX_KEY_BYTES}-byte limit")]
    KeyTooLong(usize),
    #[error("rate limiting backend unavailable: {0}")]
    Backend(String),
}

impl ContractError for RateLimitError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Error
    }
}

/// One namespace's counters.
#[derive(Debug)]
pub struct RateLimitNamespace {
    clock: SharedClock,
    max_keys: usize,
    /// SipHash with keys random per process: a key is counted under its
    /// 64-bit hash, not its bytes, so a check allocates nothing and touches
    /// one table slot. Two keys share a count only if their hashes collide
    /// (about 1 in 2^64 per pair), and a client cannot aim for that without
    /// the process's secret hash keys. Hashed before the lock is taken.
    hasher: RandomState,
    counter: Counter,
}

#[derive(Debug)]
enum Counter {
    Memory(Mutex<Windows>),
    Redis(redis::RedisCounter),
}

/// The current window of each period counted.
#[derive(Debug, Default)]
struct Windows {
    /// (period in seconds, its current window).
    by_period: Vec<(u64, Window)>,
}

/// The counts of one period length in its current window.
#[derive(Debug, Default)]
struct Window {
    index: u64,
    counts: Slots,
    overflow: u64,
}

/// The keys' counts in one open-addressed array of (hash, count) pairs,
/// probed linearly from the hash: a check touches one cache line (a
/// general map reads a control array and then an entry array, two misses
/// once the table outgrows the cache). Keys are never removed, only the
/// whole table when its window ends, so no tombstones are needed. Hash 0
/// marks an empty slot; a key hashing to 0 is counted under 1.
#[derive(Debug, Default)]
struct Slots {
    slots: Vec<(u64, u64)>,
    len: usize,
}

impl Slots {
    fn with_capacity(keys: usize) -> Self {
        let mut table = Self::default();
        if keys > 0 {
            table.slots = vec![(0, 0); Self::slots_for(keys)];
        }
        table
    }

    /// A power of two holding `keys` at most 3/4 full, so probes stay short.
    fn slots_for(keys: usize) -> usize {
        (keys.saturating_mul(4) / 3 + 1).next_power_of_two().max(8)
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The count of `hash`, added at 0 when `insert` allows; `None` when
    /// the key is new and `insert` is false.
    fn count(&mut self, hash: u64, insert: bool) -> Option<&mut u64> {
        let hash = hash.max(1);
        if insert && (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let (h, _) = self.slots[i];
            if h == hash {
                return Some(&mut self.slots[i].1);
            }
            if h == 0 {
                if !insert {
                    return None;
                }
                self.len += 1;
                self.slots[i].0 = hash;
                return Some(&mut self.slots[i].1);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = Self::slots_for(self.len + 1).max(self.slots.len() * 2);
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); size]);
        let mask = size - 1;
        for (hash, count) in old.into_iter().filter(|(h, _)| *h != 0) {
            let mut i = hash as usize & mask;
            while self.slots[i].0 != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (hash, count);
        }
    }
}

impl RateLimitNamespace {
    pub fn new(clock: SharedClock) -> Self {
        Self::with_max_keys(clock, DEFAULT_MAX_KEYS)
    }

    pub fn with_max_keys(clock: SharedClock, max_keys: usize) -> Self {
        Self {
            clock,
            max_keys: max_keys.max(1),
            hasher: RandomState::new(),
            counter: Counter::Memory(Mutex::new(Windows::default())),
        }
    }

    /// A namespace counted in Redis, shared by every node that opens the
    /// same namespace on the same server and prefix.
    pub fn on_redis(clock: SharedClock, counter: redis::RedisCounter, max_keys: usize) -> Self {
        Self {
            clock,
            max_keys: max_keys.max(1),
            hasher: RandomState::new(),
            counter: Counter::Redis(counter),
        }
    }

    /// Where the counts live, for the health report.
    pub fn backend(&self) -> &'static str {
        match self.counter {
            Counter::Memory(_) => "memory",
            Counter::Redis(_) => "redis",
        }
    }

    /// Counts one request for `key` when it fits `limit` per `period`
    /// seconds; `true` when it did. `period` is one of [`PERIODS`], as the
    /// binding has it.
    pub fn limit(&self, key: &str, limit: u64, period: u64) -> Result<bool, RateLimitError> {
        if !PERIODS.contains(&period) {
            return Err(RateLimitError::UnsupportedPeriod(period));
        }
        self.count(key, limit, period)
    }

    /// [`limit`](Self::limit) for any period from 1 to [`MAX_PERIOD`]
    /// seconds (the edge's rate-limiting rules).
    pub fn count(&self, key: &str, limit: u64, period: u64) -> Result<bool, RateLimitError> {
        if !(1..=MAX_PERIOD).contains(&period) {
            return Err(RateLimitError::UnsupportedPeriod(period));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(RateLimitError::KeyTooLong(key.len()));
        }
        // Which window: the coarse clock (a few ms behind, at a fraction
        // of the precise clock's cost) moves every period's edge alike.
        let now_ms = self.clock.now_ms_coarse();
        let index = now_ms / (period * 1000);
        let windows = match &self.counter {
            Counter::Memory(windows) => windows,
            Counter::Redis(redis) => {
                return redis.count(key, limit, period, index, self.max_keys);
            }
        };
        let hash = self.hasher.hash_one(key);
        let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match windows.by_period.iter().position(|(p, _)| *p == period) {
            Some(slot) => slot,
            None if windows.by_period.len() < MAX_PERIODS_PER_NAMESPACE => {
                windows.by_period.push((
                    period,
                    Window {
                        index,
                        ..Window::default()
                    },
                ));
                windows.by_period.len() - 1
            }
            None => return Err(RateLimitError::TooManyPeriods),
        };
        if windows.by_period[slot].1.index != index {
            // A new window: the keys of every window that has ended go
            // with it, so memory holds only keys active now. The table
            // starts at the size the ended window reached, so a steady
            // load does not grow it again key by key.
            for (p, w) in windows.by_period.iter_mut() {
                let current = now_ms / (*p * 1000);
                if w.index != current {
                    let size = w.counts.len();
                    *w = Window {
                        index: current,
                        counts: Slots::with_capacity(size),
                        overflow: 0,
                    };
                }
            }
        }
        let max_keys = self.max_keys;
        let window = &mut windows.by_period[slot].1;
        // One probe whether the key is known or new.
        let insert = window.counts.len() < max_keys;
        let count = match window.counts.count(hash, insert) {
            Some(c) => c,
            None => &mut window.overflow,
        };
        if *count >= limit {
            return Ok(false);
        }
        *count += 1;
        Ok(true)
    }

    /// Keys counted in the current windows (for the health report and tests).
    pub fn tracked_keys(&self) -> Result<usize, RateLimitError> {
        match &self.counter {
            Counter::Memory(windows) => {
                let windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                // Every key held, so a test sees ended windows leave.
                Ok(windows.by_period.iter().map(|(_, w)| w.counts.len()).sum())
            }
            Counter::Redis(redis) => {
                let now_ms = self.clock.now_ms();
                let mut total = 0;
                for period in PERIODS {
                    total += redis.tracked(period, now_ms / (period * 1000))?;
                }
                Ok(total)
            }
        }
    }
}

/// Every namespace of a process, by `namespace_id`, so bindings of
/// several workers naming one id share its counters.
#[derive(Debug, Clone)]
pub struct RateLimits {
    clock: SharedClock,
    redis: Option<redis::RedisPool>,
    namespaces: Arc<Mutex<HashMap<String, Arc<RateLimitNamespace>>>>,
}

impl RateLimits {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            redis: None,
            namespaces: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Every namespace counted in Redis through `pool`.
    pub fn on_redis(clock: SharedClock, pool: redis::RedisPool) -> Self {
        Self {
            redis: Some(pool),
            ..Self::new(clock)
        }
    }

    pub fn namespace(&self, id: &str) -> Arc<RateLimitNamespace> {
        let mut all = self.namespaces.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(id.to_owned())
            .or_insert_with(|| {
                Arc::new(match &self.redis {
                    Some(pool) => RateLimitNamespace::on_redis(
                        self.clock.clone(),
                        pool.counter(id),
                        DEFAULT_MAX_KEYS,
                    ),
                    None => RateLimitNamespace::new(self.clock.clone()),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    /// Every key keeps its own count across the table's growth, 0 and 1
    /// share a slot (0 marks empty), and a lookup that may not insert
    /// finds known keys only.
    #[test]
    fn slots_keep_each_count_across_growth() {
        let mut slots = Slots::default();
        // Keys that all start probing at the same slot, and spread ones.
        let keys: Vec<u64> = (2..5000u64)
            .map(|i| i << 40)
            .chain((2..5000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        for (n, &k) in keys.iter().enumerate() {
            for _ in 0..=(n % 3) {
                *slots.count(k, true).unwrap() += 1;
            }
        }
        assert_eq!(slots.len(), keys.len());
        assert!(slots.slots.len() * 3 >= slots.len() * 4);
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(*slots.count(k, false).unwrap(), (n % 3) as u64 + 1);
        }
        assert!(slots.count(7, false).is_none());
        assert_eq!(slots.len(), keys.len());
        *slots.count(0, true).unwrap() += 1;
        assert_eq!(*slots.count(1, false).unwrap(), 1);
    }
}
