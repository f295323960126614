//! Request-rate limits (fixed and sliding windows) and spend budgets, per
//! gateway and per key. Counted in memory and saved through
//! [`crate::state`]; keys are bounded per table, and keys past the bound
//! share one overflow counter so a flood of new keys is limited together
//! instead of growing the table.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::config::{BudgetConfig, RateLimitConfig, Technique};

/// Keys one table tracks before new keys share the overflow counter.
pub const MAX_KEYS: usize = 100_000;
const OVERFLOW_KEY: &str = "\u{0}overflow";

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    /// Index of the current window (time / period).
    index: u64,
    current: u64,
    previous: u64,
}

#[derive(Debug, Default)]
struct Windows {
    windows: HashMap<String, Window>,
    /// Keys counted since the last [`RateTable::take_dirty`], when saved.
    dirty: Option<HashSet<String>>,
}

#[derive(Debug, Default)]
pub struct RateTable {
    windows: Mutex<Windows>,
}

/// One key's window as it is saved and restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedWindow {
    pub index: u64,
    pub current: u64,
    pub previous: u64,
}

impl RateTable {
    /// A table that remembers which keys changed, for saving.
    pub fn saved() -> Self {
        Self {
            windows: Mutex::new(Windows {
                windows: HashMap::new(),
                dirty: Some(HashSet::new()),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The windows of the keys counted since the last call.
    pub fn take_dirty(&self) -> Vec<(String, SavedWindow)> {
        let mut inner = self.lock();
        let Windows { windows, dirty } = &mut *inner;
        let Some(dirty) = dirty else {
            return Vec::new();
        };
        dirty
            .drain()
            .filter_map(|k| {
                let w = windows.get(&k)?;
                Some((
                    k,
                    SavedWindow {
                        index: w.index,
                        current: w.current,
                        previous: w.previous,
                    },
                ))
            })
            .collect()
    }

    /// Puts back a saved window (at start-up), within the key bound.
    pub fn restore(&self, key: &str, w: SavedWindow) {
        let mut inner = self.lock();
        if inner.windows.len() >= MAX_KEYS && !inner.windows.contains_key(key) {
            return;
        }
        inner.windows.insert(
            key.to_owned(),
            Window {
                index: w.index,
                current: w.current,
                previous: w.previous,
            },
        );
    }

    /// Counts one request for `key` at `now_ms` when allowed; when refused,
    /// answers the seconds to wait (Retry-After).
    pub fn check(&self, cfg: &RateLimitConfig, key: &str, now_ms: u64) -> Result<(), u64> {
        let period_ms = cfg.period * 1000;
        let index = now_ms / period_ms;
        let mut inner = self.lock();
        let Windows {
            windows: map,
            dirty,
        } = &mut *inner;
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            // Forget keys whose windows are over before sharing overflow.
            map.retain(|_, w| w.index + 1 >= index);
        }
        let key = if map.len() >= MAX_KEYS && !map.contains_key(key) {
            OVERFLOW_KEY
        } else {
            key
        };
        let w = map.entry(key.to_owned()).or_default();
        if w.index != index {
            w.previous = if w.index + 1 == index { w.current } else { 0 };
            w.current = 0;
            w.index = index;
        }
        let into = now_ms - index * period_ms;
        let count = match cfg.technique {
            Technique::Fixed => w.current as f64,
            // Cloudflare's sliding window: the previous window weighted by
            // how much of it still overlaps the last `period`.
            Technique::Sliding => {
                w.current as f64 + w.previous as f64 * (period_ms - into) as f64 / period_ms as f64
            }
        };
        if count + 1.0 > cfg.limit as f64 {
            let wait_ms = period_ms - into;
            return Err(wait_ms.div_ceil(1000).max(1));
        }
        w.current += 1;
        if let Some(d) = dirty
            && !d.contains(key)
        {
            d.insert(key.to_owned());
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Spend {
    index: u64,
    spent: f64,
}

#[derive(Debug, Default)]
pub struct Budgets {
    spends: Mutex<HashMap<String, Spend>>,
}

impl Budgets {
    /// Whether `key` may spend more in this window; when not, the seconds
    /// until the window ends.
    pub fn check(&self, cfg: &BudgetConfig, key: &str, now_ms: u64) -> Result<(), (u64, f64)> {
        let period_ms = cfg.period * 1000;
        let index = now_ms / period_ms;
        let map = self.spends.lock().unwrap_or_else(|p| p.into_inner());
        let spent = map
            .get(key)
            .filter(|s| s.index == index)
            .map_or(0.0, |s| s.spent);
        if spent >= cfg.limit {
            let wait_ms = (index + 1) * period_ms - now_ms;
            return Err((wait_ms.div_ceil(1000).max(1), spent));
        }
        Ok(())
    }

    /// Adds a finished request's cost to `key`'s window; answers the key
    /// it was counted under (the overflow key past the bound) and the
    /// window, for saving.
    pub fn charge(
        &self,
        cfg: &BudgetConfig,
        key: &str,
        now_ms: u64,
        cost: f64,
    ) -> Option<(String, u64)> {
        if !(cost.is_finite() && cost > 0.0) {
            return None;
        }
        let index = now_ms / (cfg.period * 1000);
        let mut map = self.spends.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, s| s.index == index);
        }
        let key = if map.len() >= MAX_KEYS && !map.contains_key(key) {
            OVERFLOW_KEY
        } else {
            key
        };
        let s = map.entry(key.to_owned()).or_default();
        if s.index != index {
            *s = Spend { index, spent: 0.0 };
        }
        s.spent += cost;
        Some((key.to_owned(), index))
    }

    pub fn spent(&self, cfg: &BudgetConfig, key: &str, now_ms: u64) -> f64 {
        let index = now_ms / (cfg.period * 1000);
        self.spends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .filter(|s| s.index == index)
            .map_or(0.0, |s| s.spent)
    }

    /// Seeds a key's window from what the logs say it spent (at start-up).
    pub fn seed(&self, cfg: &BudgetConfig, key: &str, now_ms: u64, spent: f64) {
        let _ = self.charge(cfg, key, now_ms, spent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl(limit: u64, technique: Technique) -> RateLimitConfig {
        RateLimitConfig {
            limit,
            period: 60,
            technique,
        }
    }

    #[test]
    fn fixed_window_resets_at_the_boundary() {
        let t = RateTable::default();
        let cfg = rl(2, Technique::Fixed);
        let start = 600_000; // a window boundary
        assert!(t.check(&cfg, "k", start).is_ok());
        assert!(t.check(&cfg, "k", start + 1_000).is_ok());
        assert_eq!(t.check(&cfg, "k", start + 50_000), Err(10));
        assert!(t.check(&cfg, "other", start + 50_000).is_ok());
        assert!(t.check(&cfg, "k", start + 60_000).is_ok());
    }

    #[test]
    fn sliding_window_weighs_the_previous_one() {
        let t = RateTable::default();
        let cfg = rl(4, Technique::Sliding);
        let start = 600_000;
        for i in 0..4 {
            assert!(t.check(&cfg, "k", start + 50_000 + i).is_ok());
        }
        // 15 s into the next window, 3/4 of the previous 4 still count: 3 + 1 = 4.
        assert!(t.check(&cfg, "k", start + 75_000).is_ok());
        assert!(t.check(&cfg, "k", start + 75_000).is_err());
        // 45 s in, 1/4 of 4 = 1, plus 1 current: room for two more.
        assert!(t.check(&cfg, "k", start + 105_000).is_ok());
        assert!(t.check(&cfg, "k", start + 105_000).is_ok());
        assert!(t.check(&cfg, "k", start + 105_000).is_err());
    }

    #[test]
    fn budgets_stop_spending_until_the_window_ends() {
        let b = Budgets::default();
        let cfg = BudgetConfig {
            limit: 1.0,
            period: 3600,
        };
        let now = 3_600_000 * 10;
        assert!(b.check(&cfg, "t", now).is_ok());
        b.charge(&cfg, "t", now, 0.6);
        assert!(b.check(&cfg, "t", now).is_ok());
        b.charge(&cfg, "t", now, 0.6);
        assert_eq!(b.check(&cfg, "t", now + 600_000), Err((3000, 1.2)));
        assert!(b.check(&cfg, "u", now).is_ok());
        assert!(b.check(&cfg, "t", now + 3_600_000).is_ok());
    }
}
