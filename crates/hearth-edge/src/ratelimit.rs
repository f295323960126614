//! Rate-limiting rules count with the Rate Limiting binding's engine,
//! [`hearth_ratelimit`]: fixed windows aligned to the clock, a request
//! counted only when it fits (check-and-count), bounded keys with a shared
//! overflow budget, memory or Redis. What the edge adds is the mitigation
//! timeout: a key over its limit stays blocked for a time of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hearth_core::SharedClock;
pub use hearth_ratelimit::RateLimitNamespace;

/// Keys one edge counts per period window before the overflow budget.
pub const MAX_KEYS: usize = 1_000_000;

/// The edge's counters in memory, on `clock` (the edge's own clock).
pub fn memory(clock: SharedClock) -> Arc<RateLimitNamespace> {
    Arc::new(RateLimitNamespace::with_max_keys(clock, MAX_KEYS))
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
