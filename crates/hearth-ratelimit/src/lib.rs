//! The Rate Limiting binding's engine: `limit(key)` counts one request
//! against a key's budget for the current period and says whether it fits.
//!
//! Semantics, as Cloudflare documents the binding: a namespace (its
//! `namespace_id`, account-wide) holds the counters, and every binding with
//! that id shares them; a binding sets `limit` requests per `period`
//! seconds, where the period is 10 or 60; a call may override both. Counts
//! live in memory and restart empty, as they do per Cloudflare location.
//! Windows are fixed and aligned to the clock (`now / period`), so a client
//! can at most double its limit across one window boundary.
//!
//! Memory is bounded: a namespace tracks at most `max_keys` keys per
//! window. Keys past that share one overflow budget, so a flood of unique
//! keys is still limited, together, instead of growing the table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hearth_core::{ContractError, ErrorClass, SharedClock};

/// The periods Cloudflare accepts, in seconds.
pub const PERIODS: [u64; 2] = [10, 60];
/// Keys tracked per namespace and window before the overflow budget.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Longest key counted; longer keys are refused (Cloudflare's keys are
/// identifiers such as an IP, a user id or a path).
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RateLimitError {
    #[error("unsupported period: {0}")]
    UnsupportedPeriod(u64),
    #[error("limit must be a number: {0}")]
    BadLimit(String),
    #[error("rate limit key is {0} bytes, above the {MAX_KEY_BYTES}-byte limit")]
    KeyTooLong(usize),
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
    windows: Mutex<HashMap<u64, Window>>,
}

/// The counts of one period length in its current window.
#[derive(Debug, Default)]
struct Window {
    index: u64,
    counts: HashMap<String, u64>,
    overflow: u64,
}

impl RateLimitNamespace {
    pub fn new(clock: SharedClock) -> Self {
        Self::with_max_keys(clock, DEFAULT_MAX_KEYS)
    }

    pub fn with_max_keys(clock: SharedClock, max_keys: usize) -> Self {
        Self {
            clock,
            max_keys: max_keys.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key` when it fits `limit` per `period`
    /// seconds; `true` when it did.
    pub fn limit(&self, key: &str, limit: u64, period: u64) -> Result<bool, RateLimitError> {
        if !PERIODS.contains(&period) {
            return Err(RateLimitError::UnsupportedPeriod(period));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(RateLimitError::KeyTooLong(key.len()));
        }
        let index = self.clock.now_ms() / (period * 1000);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.get(&period).is_none_or(|w| w.index != index) {
            // A new window: the keys of every window that has ended are
            // dropped with it, so memory holds only keys active now.
            let now_ms = self.clock.now_ms();
            windows.retain(|p, w| w.index == now_ms / (p * 1000));
            windows.insert(
                period,
                Window {
                    index,
                    ..Window::default()
                },
            );
        }
        let Some(window) = windows.get_mut(&period) else {
            return Ok(false);
        };
        let tracked = window.counts.len();
        let count = match window.counts.get_mut(key) {
            Some(c) => c,
            None if tracked < self.max_keys => window.counts.entry(key.to_owned()).or_insert(0),
            None => &mut window.overflow,
        };
        if *count >= limit {
            return Ok(false);
        }
        *count += 1;
        Ok(true)
    }

    /// Keys counted in the current windows (for the health report and tests).
    pub fn tracked_keys(&self) -> usize {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.values().map(|w| w.counts.len()).sum()
    }
}

/// Every namespace of a process, by `namespace_id`, so bindings of
/// several workers naming one id share its counters.
#[derive(Debug, Clone)]
pub struct RateLimits {
    clock: SharedClock,
    namespaces: Arc<Mutex<HashMap<String, Arc<RateLimitNamespace>>>>,
}

impl RateLimits {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            namespaces: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn namespace(&self, id: &str) -> Arc<RateLimitNamespace> {
        let mut all = self.namespaces.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(id.to_owned())
            .or_insert_with(|| Arc::new(RateLimitNamespace::new(self.clock.clone())))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::ManualClock;

    fn at(ms: u64) -> (Arc<ManualClock>, RateLimitNamespace) {
        let clock = Arc::new(ManualClock::new(ms));
        let ns = RateLimitNamespace::new(clock.clone());
        (clock, ns)
    }

    #[test]
    fn counts_up_to_the_limit_then_refuses_until_the_next_window() {
        let (clock, ns) = at(1_000_000);
        for _ in 0..3 {
            assert_eq!(ns.limit("a", 3, 10), Ok(true));
        }
        assert_eq!(ns.limit("a", 3, 10), Ok(false));
        assert_eq!(ns.limit("b", 3, 10), Ok(true), "keys have their own budget");
        clock.advance_ms(9_999);
        assert_eq!(ns.limit("a", 3, 10), Ok(false), "still the same window");
        clock.advance_ms(1);
        assert_eq!(ns.limit("a", 3, 10), Ok(true), "a new window starts empty");
    }

    #[test]
    fn idle_keys_leave_with_their_window() {
        let (clock, ns) = at(0);
        for i in 0..100 {
            ns.limit(&format!("k{i}"), 5, 10).unwrap();
            ns.limit(&format!("m{i}"), 5, 60).unwrap();
        }
        assert_eq!(ns.tracked_keys(), 200);
        clock.advance_secs(10);
        ns.limit("fresh", 5, 10).unwrap();
        assert_eq!(ns.tracked_keys(), 101, "the ten-second window ended");
        clock.advance_secs(60);
        ns.limit("fresh", 5, 10).unwrap();
        assert_eq!(
            ns.tracked_keys(),
            1,
            "a call of either period drops every window that has ended"
        );
    }

    #[test]
    fn periods_count_apart() {
        let (_clock, ns) = at(0);
        assert_eq!(ns.limit("k", 1, 10), Ok(true));
        assert_eq!(ns.limit("k", 1, 60), Ok(true));
        assert_eq!(ns.limit("k", 1, 60), Ok(false));
    }

    #[test]
    fn only_cloudflare_periods() {
        let (_clock, ns) = at(0);
        assert_eq!(
            ns.limit("k", 1, 30),
            Err(RateLimitError::UnsupportedPeriod(30))
        );
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(
            ns.limit(&long, 1, 10),
            Err(RateLimitError::KeyTooLong(MAX_KEY_BYTES + 1))
        );
    }

    #[test]
    fn a_flood_of_keys_shares_one_overflow_budget() {
        let clock = Arc::new(ManualClock::new(0));
        let ns = RateLimitNamespace::with_max_keys(clock, 4);
        for i in 0..4 {
            assert_eq!(ns.limit(&format!("k{i}"), 2, 10), Ok(true));
        }
        assert_eq!(ns.limit("new1", 2, 10), Ok(true));
        assert_eq!(ns.limit("new2", 2, 10), Ok(true));
        assert_eq!(
            ns.limit("new3", 2, 10),
            Ok(false),
            "overflow keys share a budget"
        );
        assert_eq!(ns.tracked_keys(), 4);
        assert_eq!(ns.limit("k0", 2, 10), Ok(true), "tracked keys keep theirs");
    }

    #[test]
    fn one_namespace_id_is_one_set_of_counters() {
        let limits = RateLimits::new(Arc::new(ManualClock::new(0)));
        assert_eq!(limits.namespace("1001").limit("k", 1, 60), Ok(true));
        assert_eq!(limits.namespace("1001").limit("k", 1, 60), Ok(false));
        assert_eq!(limits.namespace("1002").limit("k", 1, 60), Ok(true));
    }
}
