//! Cron Triggers: Cloudflare's cron syntax ([`CronExpr`]) and a durable
//! per-worker scheduler ([`CronScheduler`]) that decides when a worker's
//! `scheduled(controller, env, ctx)` handler runs.
//!
//! - [`CronExpr::parse`] accepts exactly the syntax Cloudflare documents (see
//!   [`validate`]): five fields, UTC, day-of-week 1 = Sunday .. 7 = Saturday,
//!   Quartz-style `L`, `W` and `#`. When both day-of-month and day-of-week
//!   are restricted (neither is a bare `*`), a day matches if either matches.
//! - [`CronExpr::next_after`] finds the next slot by skipping whole months,
//!   days and hours; an expression that can never match (`0 0 31 2 *`)
//!   answers `None` after an exact, bounded search.
//! - [`CronScheduler`] keeps, per worker and cron string, the last slot it
//!   has accounted for in `<data>/cron.sqlite`. After downtime a missed cron
//!   fires once, for its most recent slot; a new cron starts from "now";
//!   a cron removed from the config is forgotten.
//!
//! What is left to the runtime: calling the handler with
//! `controller.cron = run.cron` and `controller.scheduledTime =
//! run.scheduled_time_ms`, then [`CronScheduler::mark_done`]. Whether a
//! failed run is retried (`controller.noRetry()`) is the runtime's choice:
//! not calling `mark_done` leaves the run due, calling it drops it.
//!
//! In cluster mode several processes schedule the same worker; a
//! [`SlotClaims`] store decides which of them fires each slot.
//!
//! This crate knows nothing of JavaScript or HTTP.

mod claims;
mod error;
mod schedule;
pub mod sqlite;
pub mod validate;

use std::fmt;
use std::str::FromStr;

pub use claims::{Claim, SlotClaims};
pub use error::{CronError, CronField, Result};
pub use sqlite::CronScheduler;
pub use validate::CronLimits;

/// A parsed cron expression. Displays as the string it was parsed from,
/// which is what `controller.cron` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
    schedule: schedule::Schedule,
}

impl CronExpr {
    /// Parses Cloudflare's five-field cron syntax; times are UTC.
    pub fn parse(cron: &str) -> Result<Self> {
        Ok(Self {
            source: cron.to_owned(),
            schedule: validate::parse(cron)?,
        })
    }

    /// The string this expression was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first slot strictly after `ms` (milliseconds since the Unix
    /// epoch). Slots are whole UTC minutes. `None` if the expression never
    /// matches again.
    pub fn next_after(&self, ms: u64) -> Option<u64> {
        self.schedule.next_after(ms)
    }

    /// The last slot at or before `ms`; `None` if there was none since 1970.
    pub fn prev_at_or_before(&self, ms: u64) -> Option<u64> {
        self.schedule.prev_at_or_before(ms)
    }

    /// Whether the UTC minute containing `ms` is a slot (seconds are ignored).
    pub fn matches(&self, ms: u64) -> bool {
        self.schedule.matches(ms)
    }

    /// Whether the expression matches at least one minute, ever.
    pub fn is_satisfiable(&self) -> bool {
        self.next_after(0).is_some()
    }

    /// Whether two expressions fire at the same times however they are
    /// written (`0 * * * *` and `0 0-23 * * *`); Cloudflare refuses such a
    /// pair in one worker's list.
    pub fn same_schedule(&self, other: &CronExpr) -> bool {
        self.schedule == other.schedule
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for CronExpr {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// One run of the `scheduled` handler that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRun {
    /// The cron string as configured: `controller.cron`.
    pub cron: String,
    /// The slot being run, in milliseconds since the Unix epoch:
    /// `controller.scheduledTime`.
    pub scheduled_time_ms: u64,
}
