//! [`CronScheduler`]: when each of a worker's cron triggers is due, with the
//! last accounted-for slot of each kept in SQLite (`<data>/cron.sqlite`, one
//! file for every worker).
//!
//! Each (worker, cron string) row holds a cursor: every slot at or before it
//! has either run or been deliberately skipped. A cron is due when its first
//! slot after the cursor has arrived, and the run it owes is for the most
//! recent slot at or before now, so a long downtime costs one run, not one
//! per missed slot. A cron string seen for the first time gets "now" as its
//! cursor: history before it was configured is never owed.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use hearth_core::SharedClock;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{CronError, Result};
use crate::validate::{self, CronLimits};
use crate::{CronExpr, DueRun};

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS cron_triggers (
    worker        TEXT    NOT NULL,
    cron          TEXT    NOT NULL,
    -- every slot at or before this instant has run or was skipped
    cursor_ms     INTEGER NOT NULL,
    -- the scheduledTime of the last run marked done
    last_fired_ms INTEGER,
    added_ms      INTEGER NOT NULL,
    PRIMARY KEY (worker, cron)
) WITHOUT ROWID;
";

/// Each entry moves the schema one version forward (see
/// `hearth_core::sqlite::migrate`). Version 1 is the schema `cron.sqlite`
/// had before it was versioned; being `IF NOT EXISTS`, it adopts it.
const SCHEMA_STEPS: &[&str] = &[SCHEMA_V1];

/// The cron triggers of one worker.
///
/// A host loop: run every [`due`](Self::due) run's handler, call
/// [`mark_done`](Self::mark_done) for it, then sleep until
/// [`next_wake`](Self::next_wake). `mark_done` commits durably before it
/// returns, so a crash afterwards never repeats the run; a crash before it
/// repeats the run once on start.
///
/// One scheduler per worker per data directory: two processes scheduling
/// the same worker would both fire it.
#[derive(Debug)]
pub struct CronScheduler {
    worker: String,
    clock: SharedClock,
    triggers: Vec<CronExpr>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    conn: Connection,
    /// Cursor of `triggers[i]`, as committed.
    cursors: Vec<u64>,
}

impl CronScheduler {
    /// Opens (creating if needed) the state file at `path` for `worker`,
    /// whose configured crons are `crons`, with Cloudflare's limits.
    pub fn open<S: AsRef<str>>(
        path: &Path,
        worker: &str,
        crons: &[S],
        clock: SharedClock,
    ) -> Result<Self> {
        Self::open_with_limits(path, worker, crons, clock, CronLimits::default())
    }

    /// As [`open`](Self::open), with chosen limits. Every cron is checked
    /// first; nothing is written if any is refused. Then, in one
    /// transaction, crons no longer configured are forgotten and new ones
    /// start from now.
    pub fn open_with_limits<S: AsRef<str>>(
        path: &Path,
        worker: &str,
        crons: &[S],
        clock: SharedClock,
        limits: CronLimits,
    ) -> Result<Self> {
        let triggers = validate::trigger_list(crons, &limits)?;
        let mut conn = hearth_core::sqlite::open(path)?;
        hearth_core::sqlite::migrate(&mut conn, path, SCHEMA_STEPS)?;
        let cursors = sync_triggers(&mut conn, worker, &triggers, &clock).map_err(|source| {
            CronError::StateFile {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(Self {
            worker: worker.to_owned(),
            clock,
            triggers,
            state: Mutex::new(State { conn, cursors }),
        })
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The configured crons, in config order.
    pub fn triggers(&self) -> &[CronExpr] {
        &self.triggers
    }

    /// The runs due at `now_ms`, at most one per cron, in config order. Asking
    /// again before [`mark_done`](Self::mark_done) returns the same runs.
    pub fn due(&self, now_ms: u64) -> Vec<DueRun> {
        let state = self.lock();
        self.triggers
            .iter()
            .zip(&state.cursors)
            .filter(|(trigger, cursor)| is_due(trigger, **cursor, now_ms))
            .filter_map(|(trigger, _)| {
                trigger.prev_at_or_before(now_ms).map(|slot| DueRun {
                    cron: trigger.as_str().to_owned(),
                    scheduled_time_ms: slot,
                })
            })
            .collect()
    }

    /// [`due`](Self::due) at the clock's now.
    pub fn due_now(&self) -> Vec<DueRun> {
        self.due(self.clock.now_ms())
    }

    /// Records that `run` has been handled: its slot, and every earlier one,
    /// is not owed again. Durable when it returns.
    pub fn mark_done(&self, run: &DueRun) -> Result<()> {
        let index = self
            .triggers
            .iter()
            .position(|t| t.as_str() == run.cron)
            .ok_or_else(|| CronError::UnknownTrigger {
                cron: run.cron.clone(),
                worker: self.worker.clone(),
            })?;
        let mut state = self.lock();
        let slot = to_db(run.scheduled_time_ms);
        // An upsert, so a row removed behind our back is recreated rather
        // than the run silently repeating.
        state.conn.execute(
            "INSERT INTO cron_triggers (worker, cron, cursor_ms, last_fired_ms, added_ms)
             VALUES (?1, ?2, ?3, ?3, ?4)
             ON CONFLICT (worker, cron) DO UPDATE SET
                 cursor_ms = MAX(cursor_ms, excluded.cursor_ms),
                 last_fired_ms = MAX(COALESCE(last_fired_ms, excluded.last_fired_ms),
                                     excluded.last_fired_ms)",
            params![self.worker, run.cron, slot, to_db(self.clock.now_ms())],
        )?;
        let cursor = &mut state.cursors[index];
        *cursor = (*cursor).max(run.scheduled_time_ms);
        Ok(())
    }

    /// When [`due`](Self::due) will next have something to return: `now_ms`
    /// itself if a run is already due, `None` if no cron will ever fire.
    pub fn next_wake(&self, now_ms: u64) -> Option<u64> {
        let state = self.lock();
        self.triggers
            .iter()
            .zip(&state.cursors)
            .filter_map(|(trigger, &cursor)| {
                if is_due(trigger, cursor, now_ms) {
                    Some(now_ms)
                } else {
                    trigger.next_after(cursor.max(now_ms))
                }
            })
            .min()
    }

    /// [`next_wake`](Self::next_wake) at the clock's now.
    pub fn next_wake_now(&self) -> Option<u64> {
        self.next_wake(self.clock.now_ms())
    }

    /// The `scheduledTime` of the last run of `cron` marked done, as stored.
    pub fn last_fired(&self, cron: &str) -> Result<Option<u64>> {
        let state = self.lock();
        let value: Option<Option<i64>> = state
            .conn
            .query_row(
                "SELECT last_fired_ms FROM cron_triggers WHERE worker = ?1 AND cron = ?2",
                params![self.worker, cron],
                |row| row.get(0),
            )
            .optional()?;
        Ok(value.flatten().map(from_db))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Cursors change only after a commit, so a panic elsewhere cannot
        // have left the state half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// In one transaction: forgets crons no longer configured, starts new ones
/// from now, and returns each configured cron's committed cursor.
fn sync_triggers(
    conn: &mut Connection,
    worker: &str,
    triggers: &[CronExpr],
    clock: &SharedClock,
) -> rusqlite::Result<Vec<u64>> {
    let now = to_db(clock.now_ms());
    // Immediate: take the write lock up front rather than upgrading a
    // read lock, which can fail with SQLITE_BUSY against another writer.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Vec<String> = {
        let mut stmt = tx.prepare("SELECT cron FROM cron_triggers WHERE worker = ?1")?;
        stmt.query_map([worker], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for cron in stored {
        if !triggers.iter().any(|t| t.as_str() == cron) {
            tx.execute(
                "DELETE FROM cron_triggers WHERE worker = ?1 AND cron = ?2",
                params![worker, cron],
            )?;
        }
    }
    let mut cursors = Vec::with_capacity(triggers.len());
    for trigger in triggers {
        tx.execute(
            "INSERT OR IGNORE INTO cron_triggers (worker, cron, cursor_ms, added_ms)
             VALUES (?1, ?2, ?3, ?3)",
            params![worker, trigger.as_str(), now],
        )?;
        let cursor: i64 = tx.query_row(
            "SELECT cursor_ms FROM cron_triggers WHERE worker = ?1 AND cron = ?2",
            params![worker, trigger.as_str()],
            |row| row.get(0),
        )?;
        cursors.push(from_db(cursor));
    }
    tx.commit()?;
    Ok(cursors)
}

fn is_due(trigger: &CronExpr, cursor: u64, now_ms: u64) -> bool {
    trigger
        .next_after(cursor)
        .is_some_and(|next| next <= now_ms)
}

fn to_db(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn from_db(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}
