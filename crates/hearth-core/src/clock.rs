//! Time is injected: bindings never call `SystemTime::now()` directly, so tests
//! can move time forward without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> u64;

    /// Whole seconds since the Unix epoch (KV expirations are in seconds).
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// A cheap reading that may trail [`now_ms`](Self::now_ms) by a few
    /// milliseconds (the kernel's coarse clock, the time of its last timer
    /// tick: 3 to 7 ms behind on a 250 Hz kernel). For hot paths that only
    /// need which period of seconds the time falls in.
    fn now_ms_coarse(&self) -> u64 {
        self.now_ms()
    }

    /// Asks to have `waker` called whenever this clock jumps forward (a
    /// test clock being advanced), so a loop sleeping in real time until
    /// a clock time looks again. The waker returns `false` once whoever
    /// registered it is gone, and is then forgotten. Clocks that only
    /// follow real time never jump and drop it.
    fn on_jump(&self, waker: ClockWaker) {
        drop(waker);
    }

    /// Whether this clock can be moved by hand (`hearth serve
    /// --test-clock`): the runtime then makes workers' `Date` follow it.
    fn is_adjustable(&self) -> bool {
        false
    }
}

/// Called after a clock jumps; `false` unregisters it.
pub type ClockWaker = Box<dyn Fn() -> bool + Send + Sync>;

/// The clock handed to every binding.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // Seconds and milliseconds apart: `as_millis` divides a u128.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() * 1000 + u64::from(d.subsec_millis()))
            .unwrap_or(0)
    }

    fn now_ms_coarse(&self) -> u64 {
        coarse::now_ms().unwrap_or_else(|| self.now_ms())
    }
}

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// The kernel's coarse wall clock, read without a hardware counter: a few
/// ns where `clock_gettime(CLOCK_REALTIME)` costs about 70 ns on a
/// virtual machine.
#[cfg(target_os = "linux")]
mod coarse {
    pub(super) fn now_ms() -> Option<u64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call's duration.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
        if rc != 0 {
            return None;
        }
        let secs = u64::try_from(ts.tv_sec).ok()?;
        let nanos = u64::try_from(ts.tv_nsec).ok()?;
        Some(secs * 1000 + nanos / 1_000_000)
    }
}

#[cfg(not(target_os = "linux"))]
mod coarse {
    pub(super) fn now_ms() -> Option<u64> {
        None
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    ms: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        Self {
            ms: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    pub fn set_ms(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, ms: u64) {
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn advance_secs(&self, secs: u64) {
        self.advance_ms(secs * 1000);
    }

    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// The clock of `hearth serve --test-clock`: the system clock plus an
/// offset that only grows, so tests jump over minutes or days without
/// sleeping, and time still runs between jumps. Every jump calls the
/// registered wakers, so schedulers waiting in real time look again.
#[derive(Default)]
pub struct AdjustableClock {
    offset_ms: AtomicU64,
    wakers: Mutex<Vec<ClockWaker>>,
}

/// Why the test clock was not moved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClockError {
    #[error("the clock only moves forward: {asked_ms} is before its current time {now_ms}")]
    Backwards { asked_ms: u64, now_ms: u64 },
    #[error("moving the clock by {0} ms overflows it")]
    Overflow(u64),
}

impl std::fmt::Debug for AdjustableClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdjustableClock")
            .field("offset_ms", &self.offset_ms())
            .finish_non_exhaustive()
    }
}

impl AdjustableClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// How far ahead of the system clock it runs.
    pub fn offset_ms(&self) -> u64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    /// Moves the clock `ms` forward; returns its new time.
    pub fn advance_ms(&self, ms: u64) -> Result<u64, ClockError> {
        self.offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| o.checked_add(ms))
            .map_err(|_| ClockError::Overflow(ms))?;
        self.jumped();
        Ok(self.now_ms())
    }

    /// Moves the clock forward to `at_ms` (ms since the epoch); a time
    /// before the current one is refused. Returns its new time.
    pub fn set_ms(&self, at_ms: u64) -> Result<u64, ClockError> {
        let now = self.now_ms();
        if at_ms < now {
            return Err(ClockError::Backwards {
                asked_ms: at_ms,
                now_ms: now,
            });
        }
        self.advance_ms(at_ms - now)
    }

    fn jumped(&self) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        wakers.retain(|w| w());
    }
}

impl Clock for AdjustableClock {
    fn now_ms(&self) -> u64 {
        SystemClock
            .now_ms()
            .saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }

    fn now_ms_coarse(&self) -> u64 {
        SystemClock
            .now_ms_coarse()
            .saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }

    fn on_jump(&self, waker: ClockWaker) {
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(waker);
    }

    fn is_adjustable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_reading_is_the_time_to_within_a_second() {
        let adjustable = AdjustableClock::new();
        adjustable.advance_ms(3_600_000).unwrap();
        let clocks: [&dyn Clock; 3] = [&SystemClock, &*adjustable, &ManualClock::new(42)];
        for clock in clocks {
            for _ in 0..1_000 {
                let coarse = clock.now_ms_coarse();
                let precise = clock.now_ms();
                assert!(coarse.abs_diff(precise) < 1000, "{coarse} vs {precise}");
            }
        }
        assert_eq!(ManualClock::new(42).now_ms_coarse(), 42);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        let shared = clock.shared();
        assert_eq!(shared.now_ms(), 1_000);
        clock.advance_secs(60);
        assert_eq!(shared.now_ms(), 61_000);
        assert_eq!(shared.now_secs(), 61);
        clock.set_ms(5);
        assert_eq!(shared.now_ms(), 5);
    }

    #[test]
    fn adjustable_clock_only_moves_forward_and_wakes() {
        let clock = AdjustableClock::new();
        let woken = Arc::new(AtomicU64::new(0));
        let w = woken.clone();
        clock.on_jump(Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
            true
        }));
        clock.on_jump(Box::new(|| false));
        let before = clock.now_ms();
        let after = clock.advance_ms(3_600_000).unwrap();
        assert!(after >= before + 3_600_000);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        assert_eq!(clock.wakers.lock().unwrap().len(), 1);
        let target = after + 86_400_000;
        assert!(clock.set_ms(target).unwrap() >= target);
        assert_eq!(woken.load(Ordering::SeqCst), 2);
        assert!(matches!(
            clock.set_ms(before),
            Err(ClockError::Backwards { .. })
        ));
        assert!(clock.is_adjustable());
        assert!(!SystemClock.is_adjustable());
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_secs() > 1_577_836_800);
    }
}
