//! Request counters for rate-limiting rules, behind [`RateCounter`] so the
//! Rate Limiting binding can share one engine. Time is passed in (from the
//! injected clock), never read here.

use std::collections::HashMap;
use std::sync::Mutex;

/// Counts hits per key over a period.
pub trait RateCounter: Send + Sync + std::fmt::Debug {
    /// Records one hit of `key` at `now_ms` and returns how many hits the
    /// key has in the `period_ms` ending now (this one included).
    fn hit(&self, key: &str, period_ms: u64, now_ms: u64) -> u64;
}

/// The in-process counter: per key, the hits of the current fixed window
/// and of the previous one; the count over the last period is the current
/// window's plus the previous window's weighted by how much of it the
/// period still covers (the sliding-window estimate). Bounded: past
/// `max_keys`, keys idle for two periods are dropped, then the oldest.
#[derive(Debug)]
pub struct WindowCounter {
    shards: Vec<Mutex<HashMap<String, Slot>>>,
    max_keys_per_shard: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    window: u64,
    current: u64,
    previous: u64,
}

impl WindowCounter {
    pub fn new(max_keys: usize) -> Self {
        let shards = 16;
        Self {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            max_keys_per_shard: (max_keys / shards).max(16),
        }
    }
}

impl Default for WindowCounter {
    fn default() -> Self {
        Self::new(1_000_000)
    }
}

fn shard_of(key: &str, n: usize) -> usize {
    // FNV-1a: cheap and stable; the key already carries the rule id.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % n as u64) as usize
}

impl RateCounter for WindowCounter {
    fn hit(&self, key: &str, period_ms: u64, now_ms: u64) -> u64 {
        let period_ms = period_ms.max(1);
        let window = now_ms / period_ms;
        let mut map = self.shards[shard_of(key, self.shards.len())]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max_keys_per_shard && !map.contains_key(key) {
            map.retain(|_, s| s.window + 1 >= window);
            if map.len() >= self.max_keys_per_shard
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.window)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let slot = map.entry(key.to_string()).or_insert(Slot {
            window,
            current: 0,
            previous: 0,
        });
        if slot.window != window {
            slot.previous = if slot.window + 1 == window {
                slot.current
            } else {
                0
            };
            slot.current = 0;
            slot.window = window;
        }
        slot.current += 1;
        let into = now_ms % period_ms;
        let weight = (period_ms - into) as f64 / period_ms as f64;
        slot.current + (slot.previous as f64 * weight) as u64
    }
}

/// Keys under mitigation until a time (ms), bounded like the counter.
#[derive(Debug, Default)]
pub struct Mitigations {
    until: Mutex<HashMap<String, u64>>,
}

impl Mitigations {
    pub const MAX_KEYS: usize = 1_000_000;

    /// When `key` is blocked at `now_ms`, until when.
    pub fn blocked_until(&self, key: &str, now_ms: u64) -> Option<u64> {
        let map = self.until.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).copied().filter(|&t| t > now_ms)
    }

    pub fn block(&self, key: &str, until_ms: u64, now_ms: u64) {
        let mut map = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX_KEYS {
            map.retain(|_, t| *t > now_ms);
        }
        if map.len() < Self::MAX_KEYS {
            map.insert(key.to_string(), until_ms);
        }
    }
}
