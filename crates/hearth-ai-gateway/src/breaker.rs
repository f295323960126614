//! A circuit breaker per (gateway, provider): after `failures` failures in
//! a row the provider is not called for `cooldown`; then one probe is let
//! through (half-open), whose outcome closes or reopens the circuit.

use std::collections::HashMap;
use std::sync::Mutex;

use hearth_core::SharedClock;

use crate::config::BreakerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Default, Clone, Copy)]
struct Circuit {
    failures: u32,
    /// Clock time (ms) until which the circuit is open.
    open_until: Option<u64>,
    probing: bool,
}

#[derive(Debug)]
pub struct Breakers {
    clock: SharedClock,
    circuits: Mutex<HashMap<(String, String), Circuit>>,
}

/// A call let through; report how it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Probe,
    /// Open: retry after this many ms.
    Refused(u64),
}

impl Breakers {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            circuits: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Circuit>> {
        self.circuits.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(&self, gateway: &str, provider: &str) -> Admission {
        let now = self.clock.now_ms();
        let mut map = self.lock();
        let Some(c) = map.get_mut(&(gateway.to_owned(), provider.to_owned())) else {
            return Admission::Allowed;
        };
        match c.open_until {
            None => Admission::Allowed,
            Some(until) if now < until => Admission::Refused(until - now),
            Some(_) if c.probing => Admission::Refused(1_000),
            Some(_) => {
                c.probing = true;
                Admission::Probe
            }
        }
    }

    pub fn record(&self, cfg: &BreakerConfig, gateway: &str, provider: &str, success: bool) {
        let now = self.clock.now_ms();
        let mut map = self.lock();
        // Bounded: one entry per configured gateway and provider name used.
        if map.len() > 10_000 {
            map.clear();
        }
        let c = map
            .entry((gateway.to_owned(), provider.to_owned()))
            .or_default();
        if success {
            *c = Circuit::default();
            return;
        }
        c.probing = false;
        c.failures = c.failures.saturating_add(1);
        if c.open_until.is_some() || c.failures >= cfg.failures {
            c.open_until = Some(now + cfg.cooldown * 1000);
        }
    }

    /// Lets a probe that never reached the provider (a cancelled call) go
    /// again.
    pub fn release_probe(&self, gateway: &str, provider: &str) {
        if let Some(c) = self
            .lock()
            .get_mut(&(gateway.to_owned(), provider.to_owned()))
        {
            c.probing = false;
        }
    }

    pub fn state(&self, gateway: &str, provider: &str) -> BreakerState {
        let now = self.clock.now_ms();
        match self.lock().get(&(gateway.to_owned(), provider.to_owned())) {
            Some(Circuit {
                open_until: Some(until),
                ..
            }) if now < *until => BreakerState::Open,
            Some(Circuit {
                open_until: Some(_),
                ..
            }) => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::ManualClock;

    #[test]
    fn opens_half_opens_and_closes() {
        let clock = ManualClock::new(1_000_000);
        let b = Breakers::new(clock.shared());
        let cfg = BreakerConfig {
            failures: 2,
            cooldown: 30,
        };
        b.record(&cfg, "g", "openai", false);
        assert_eq!(b.admit("g", "openai"), Admission::Allowed);
        b.record(&cfg, "g", "openai", false);
        assert_eq!(b.state("g", "openai"), BreakerState::Open);
        assert_eq!(b.admit("g", "openai"), Admission::Refused(30_000));
        assert_eq!(b.admit("g", "anthropic"), Admission::Allowed);
        clock.advance_secs(30);
        assert_eq!(b.state("g", "openai"), BreakerState::HalfOpen);
        assert_eq!(b.admit("g", "openai"), Admission::Probe);
        // One probe at a time.
        assert!(matches!(b.admit("g", "openai"), Admission::Refused(_)));
        // A failed probe reopens for a full cool-down.
        b.record(&cfg, "g", "openai", false);
        assert_eq!(b.admit("g", "openai"), Admission::Refused(30_000));
        clock.advance_secs(30);
        assert_eq!(b.admit("g", "openai"), Admission::Probe);
        b.record(&cfg, "g", "openai", true);
        assert_eq!(b.state("g", "openai"), BreakerState::Closed);
        assert_eq!(b.admit("g", "openai"), Admission::Allowed);
    }
}
