//! [`SlotClaims`]: which of several processes scheduling the same worker
//! fires a slot. Each still keeps its own cursor ([`crate::CronScheduler`]);
//! before it runs a due slot it claims it, and runs it only if the claim is
//! its own.

use crate::{DueRun, Result};

/// The answer to a claim of one slot of one cron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Run it: this process holds the slot until it reports it done.
    Mine,
    /// Another process ran it (or a later slot of the same cron): do not run
    /// it, and do not ask again.
    Taken,
    /// Another live process holds it and has not finished: ask again later,
    /// in case that process dies before it does.
    Busy,
}

/// A store every process of a cluster shares, which hands each slot to one
/// of them. Calls block; call them off an async executor's threads.
pub trait SlotClaims: Send + Sync + std::fmt::Debug {
    /// Claims `run` of `worker`. A slot this process claimed earlier and
    /// did not finish (a retry, or a restart after a crash) is `Mine` again.
    fn claim(&self, worker: &str, run: &DueRun) -> Result<Claim>;

    /// Records that `run` needs no more attempts, so no other process takes
    /// it over.
    fn done(&self, worker: &str, run: &DueRun) -> Result<()>;
}
