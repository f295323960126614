//! The alarm index (`<data dir>/do/alarms.sqlite`) and the scheduler over it.
//!
//! Each object's alarm lives in the object's own database (the truth, part of
//! its flush) and is mirrored here, one row per object, so that start-up finds
//! every pending alarm without opening every object. The mirror is kept
//! conservative: a new alarm time is written here *before* the object commits
//! it, and a deleted alarm is removed *after*, so a crash in between leaves an
//! extra row (dropped when the object is next opened and reconciled), never a
//! missing one.
//!
//! Delivery is at least once: a row leaves the index only through
//! [`AlarmScheduler::complete`], [`AlarmScheduler::failed`] giving up, or the
//! object deleting its alarm.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use hearth_core::SharedClock;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::validate::DoLimits;

/// Each entry moves the schema one version forward (see
/// `hearth_core::sqlite::migrate`). Version 1 is the schema this file had
/// before it was versioned; being `IF NOT EXISTS`, it adopts it.
///
/// `seq` is never reused (AUTOINCREMENT), so a row rewritten by `set` is
/// told apart from the one a running alarm came from.
const ALARMS_SCHEMA_STEPS: &[&str] = &["CREATE TABLE IF NOT EXISTS alarms (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    scheduled_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    retry_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, id)
);
CREATE INDEX IF NOT EXISTS alarms_due ON alarms (due_ms);"];

/// The shared, durable index of pending alarms.
#[derive(Debug)]
pub(crate) struct AlarmIndex {
    conn: Mutex<Connection>,
}

impl AlarmIndex {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let mut conn = hearth_core::sqlite::open(path)?;
        hearth_core::sqlite::migrate(&mut conn, path, ALARMS_SCHEMA_STEPS)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // Every statement here is a single autocommit write, so a panic
        // elsewhere cannot leave the connection mid-transaction.
        match self.conn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The scheduled time the index holds for an object.
    pub(crate) fn get(&self, namespace: &str, id: &str) -> Result<Option<i64>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT scheduled_ms FROM alarms WHERE namespace = ?1 AND id = ?2",
                params![namespace, id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records a (new) alarm time; resets retries.
    pub(crate) fn set(&self, namespace: &str, id: &str, scheduled_ms: i64) -> Result<()> {
        self.lock().execute(
            "INSERT OR REPLACE INTO alarms (namespace, id, scheduled_ms, due_ms, retry_count)
             VALUES (?1, ?2, ?3, ?3, 0)",
            params![namespace, id, scheduled_ms],
        )?;
        Ok(())
    }

    pub(crate) fn remove(&self, namespace: &str, id: &str) -> Result<()> {
        self.lock().execute(
            "DELETE FROM alarms WHERE namespace = ?1 AND id = ?2",
            params![namespace, id],
        )?;
        Ok(())
    }

    /// Makes the index agree with what an object's database says.
    pub(crate) fn reconcile(&self, namespace: &str, id: &str, truth: Option<i64>) -> Result<()> {
        let held = self.get(namespace, id)?;
        match (held, truth) {
            (Some(h), Some(t)) if h == t => Ok(()),
            (_, Some(t)) => self.set(namespace, id, t),
            (Some(_), None) => self.remove(namespace, id),
            (None, None) => Ok(()),
        }
    }

    pub(crate) fn rename_namespace(&self, from: &str, to: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE alarms SET namespace = ?2 WHERE namespace = ?1",
            params![from, to],
        )?;
        Ok(())
    }

    pub(crate) fn remove_namespace(&self, namespace: &str) -> Result<()> {
        self.lock().execute(
            "DELETE FROM alarms WHERE namespace = ?1",
            params![namespace],
        )?;
        Ok(())
    }
}

/// An alarm whose time has come, handed to the runtime to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueAlarm {
    /// The namespace key of the object's class.
    pub namespace: String,
    /// The object's id, 64 hex digits (parse it with `id_from_string`).
    pub id: String,
    /// The time the alarm was set for, in ms since the Unix epoch.
    pub scheduled_ms: u64,
    /// 0 on the first attempt; `alarm({retryCount, isRetry})` reads it.
    pub retry_count: u32,
    seq: i64,
}

impl DueAlarm {
    pub fn is_retry(&self) -> bool {
        self.retry_count > 0
    }
}

/// What became of an alarm whose run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmRetry {
    /// Run it again at this time (ms since the Unix epoch).
    RetryAt(u64),
    /// The retries are used up; the alarm has been removed.
    GaveUp,
    /// The object set or deleted its alarm meanwhile; nothing to retry.
    Superseded,
}

/// Finds due alarms and tracks their retries, over the injected clock.
///
/// A runtime loops: sleep until [`next_wake`](Self::next_wake) (or until a
/// new alarm is set), take [`due`](Self::due), and for each alarm:
///
/// 1. open the object's storage (which reconciles the index with the
///    object) and skip the alarm unless [`is_current`](Self::is_current),
///    calling [`release`](Self::release);
/// 2. run `alarm({retryCount, isRetry})` from the alarm's fields;
/// 3. on success, `storage.complete_alarm(scheduled_ms)` (clears the alarm
///    unless the handler set a new one, and flushes), then
///    [`complete`](Self::complete);
/// 4. on failure, flush, then [`failed`](Self::failed): `RetryAt` is
///    scheduled here; on `GaveUp` call `storage.complete_alarm` too.
///
/// Alarms handed out are leased in memory so a second `due` does not hand
/// them out twice while they run; a restart drops the leases and delivers
/// them again (at least once). Retries have no jitter, unlike Cloudflare's,
/// so that tests can predict them.
#[derive(Debug, Clone)]
pub struct AlarmScheduler {
    index: Arc<AlarmIndex>,
    clock: SharedClock,
    limits: DoLimits,
    leased: Arc<Mutex<HashSet<(String, String)>>>,
}

impl AlarmScheduler {
    pub(crate) fn new(index: Arc<AlarmIndex>, clock: SharedClock, limits: DoLimits) -> Self {
        Self {
            index,
            clock,
            limits,
            leased: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Cluster mode: indexes an alarm this node took over from a node that
    /// died, unless the index already holds one for the object.
    pub fn adopt(&self, namespace: &str, id: &str, scheduled_ms: i64) -> Result<()> {
        if self.index.get(namespace, id)?.is_none() {
            self.index.set(namespace, id, scheduled_ms)?;
        }
        Ok(())
    }

    fn leases(&self) -> MutexGuard<'_, HashSet<(String, String)>> {
        match self.leased.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Alarms due by the clock's now, including those that came due while
    /// the server was down, oldest first; each is leased until completed,
    /// failed or released.
    pub fn due(&self) -> Result<Vec<DueAlarm>> {
        self.due_at(self.clock.now_ms())
    }

    /// [`due`](Self::due) at an explicit time.
    pub fn due_at(&self, now_ms: u64) -> Result<Vec<DueAlarm>> {
        let rows: Vec<DueAlarm> = {
            let conn = self.index.lock();
            let mut stmt = conn.prepare_cached(
                "SELECT namespace, id, scheduled_ms, retry_count, seq FROM alarms
                 WHERE due_ms <= ?1 ORDER BY due_ms, seq",
            )?;
            let rows = stmt.query_map(params![to_i64(now_ms)], |r| {
                Ok(DueAlarm {
                    namespace: r.get(0)?,
                    id: r.get(1)?,
                    scheduled_ms: to_u64(r.get(2)?),
                    retry_count: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                    seq: r.get(4)?,
                })
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut leases = self.leases();
        Ok(rows
            .into_iter()
            .filter(|a| leases.insert((a.namespace.clone(), a.id.clone())))
            .collect())
    }

    /// When the next alarm that is not already running comes due.
    pub fn next_wake(&self) -> Result<Option<u64>> {
        let conn = self.index.lock();
        let mut stmt =
            conn.prepare_cached("SELECT namespace, id, due_ms FROM alarms ORDER BY due_ms, seq")?;
        let mut rows = stmt.query([])?;
        let leases = self.leases();
        while let Some(r) = rows.next()? {
            let key: (String, String) = (r.get(0)?, r.get(1)?);
            if !leases.contains(&key) {
                return Ok(Some(to_u64(r.get(2)?)));
            }
        }
        Ok(None)
    }

    /// Whether the index still holds exactly this alarm: false once the
    /// object set a new time or deleted it (e.g. after reconciling on open).
    pub fn is_current(&self, alarm: &DueAlarm) -> Result<bool> {
        Ok(self.current_seq(alarm)? == Some(alarm.seq))
    }

    fn current_seq(&self, alarm: &DueAlarm) -> Result<Option<i64>> {
        Ok(self
            .index
            .lock()
            .query_row(
                "SELECT seq FROM alarms WHERE namespace = ?1 AND id = ?2",
                params![alarm.namespace, alarm.id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The alarm ran successfully: removes it unless the object set a new
    /// alarm meanwhile. Returns whether it was removed.
    pub fn complete(&self, alarm: &DueAlarm) -> Result<bool> {
        let n = self.index.lock().execute(
            "DELETE FROM alarms WHERE namespace = ?1 AND id = ?2 AND seq = ?3",
            params![alarm.namespace, alarm.id, alarm.seq],
        )?;
        self.release(alarm);
        Ok(n > 0)
    }

    /// The alarm's run failed: schedules retry number `retry_count + 1`
    /// after 2 s, 4 s, 8 s, ... or gives up (removing it) once the retries
    /// are used up.
    pub fn failed(&self, alarm: &DueAlarm) -> Result<AlarmRetry> {
        let outcome = self.failed_inner(alarm);
        self.release(alarm);
        outcome
    }

    fn failed_inner(&self, alarm: &DueAlarm) -> Result<AlarmRetry> {
        let conn = self.index.lock();
        let row: Option<i64> = conn
            .query_row(
                "SELECT retry_count FROM alarms WHERE namespace = ?1 AND id = ?2 AND seq = ?3",
                params![alarm.namespace, alarm.id, alarm.seq],
                |r| r.get(0),
            )
            .optional()?;
        let Some(retries) = row else {
            return Ok(AlarmRetry::Superseded);
        };
        let retries = u32::try_from(retries).unwrap_or(u32::MAX);
        if retries >= self.limits.alarm_max_retries {
            conn.execute("DELETE FROM alarms WHERE seq = ?1", params![alarm.seq])?;
            return Ok(AlarmRetry::GaveUp);
        }
        let next = retries + 1;
        let delay =
            u64::try_from(self.limits.alarm_retry_delay(next).as_millis()).unwrap_or(u64::MAX);
        let at = self.clock.now_ms().saturating_add(delay);
        conn.execute(
            "UPDATE alarms SET retry_count = ?2, due_ms = ?3 WHERE seq = ?1",
            params![alarm.seq, i64::from(next), to_i64(at)],
        )?;
        Ok(AlarmRetry::RetryAt(at))
    }

    /// Hands a leased alarm back without an outcome (e.g. it was not
    /// current any more); it stays in the index as it is.
    pub fn release(&self, alarm: &DueAlarm) {
        self.leases()
            .remove(&(alarm.namespace.clone(), alarm.id.clone()));
    }
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
