//! The embedded backend: one SQLite file holding every instance of every
//! Workflow, their step journal, attempts and events.
//!
//! Every call runs in one `BEGIN IMMEDIATE` transaction, so two runners (or a
//! runner and the CLI in another process) never both claim an instance or
//! interleave a check with a write.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use hearth_core::SharedClock;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{Result, WorkflowError};
use crate::validate::{self, WorkflowLimits};
use crate::{
    AttemptRecord, Backoff, CreateOptions, ErrorInfo, EventOutcome, FailureOutcome,
    InstanceDetails, InstanceStatus, InstanceStatusKind, InstanceSummary, ListOptions, ListResult,
    ReceivedEvent, RetryConfig, RunTicket, SleepOutcome, StepConfig, StepDecision, StepKind,
    StepRecord, StepState, StopReason, WorkflowEvent,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wf_instances (
    workflow         TEXT NOT NULL,
    id               TEXT NOT NULL,
    status           TEXT NOT NULL,
    params           BLOB NOT NULL,
    created_ms       INTEGER NOT NULL,
    started_ms       INTEGER,
    ended_ms         INTEGER,
    output           BLOB,
    error_name       TEXT,
    error_message    TEXT,
    wake_at_ms       INTEGER,
    lease            INTEGER NOT NULL DEFAULT 0,
    lease_expires_ms INTEGER,
    paused_at_ms     INTEGER,
    PRIMARY KEY (workflow, id)
);
CREATE INDEX IF NOT EXISTS wf_instances_due
    ON wf_instances (wake_at_ms) WHERE status IN ('queued', 'waiting');
CREATE INDEX IF NOT EXISTS wf_instances_leased
    ON wf_instances (lease_expires_ms) WHERE status IN ('running', 'waitingForPause');
CREATE INDEX IF NOT EXISTS wf_instances_created
    ON wf_instances (workflow, created_ms, id);

CREATE TABLE IF NOT EXISTS wf_steps (
    workflow       TEXT NOT NULL,
    instance       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    occurrence     INTEGER NOT NULL,
    state          TEXT NOT NULL,
    retry_limit    INTEGER,
    retry_delay_ms INTEGER,
    backoff        TEXT,
    timeout_ms     INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    started_ms     INTEGER NOT NULL,
    ended_ms       INTEGER,
    wake_at_ms     INTEGER,
    event_type     TEXT,
    event_ms       INTEGER,
    output         BLOB,
    error_name     TEXT,
    error_message  TEXT,
    PRIMARY KEY (workflow, instance, kind, name, occurrence)
);

CREATE TABLE IF NOT EXISTS wf_attempts (
    workflow      TEXT NOT NULL,
    instance      TEXT NOT NULL,
    name          TEXT NOT NULL,
    occurrence    INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    started_ms    INTEGER NOT NULL,
    ended_ms      INTEGER,
    success       INTEGER,
    error_name    TEXT,
    error_message TEXT,
    PRIMARY KEY (workflow, instance, name, occurrence, attempt)
);

CREATE TABLE IF NOT EXISTS wf_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow     TEXT NOT NULL,
    instance     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    consumed     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS wf_events_pending
    ON wf_events (workflow, instance, event_type, seq) WHERE consumed = 0;
";

/// Each entry moves the schema one version forward (see
/// `hearth_core::sqlite::migrate`); a file from a newer build is refused
/// rather than misread.
const SCHEMA_STEPS: &[&str] = &[SCHEMA];

/// Steps whose state holds a wake time the instance must wake for.
const PENDING_STATES: &str = "('retrying', 'sleeping', 'waiting')";

/// The Workflows engine over one SQLite file. `Send + Sync`: share it behind
/// an `Arc`. Several processes may open the same file at once.
#[derive(Debug)]
pub struct WorkflowEngine {
    path: PathBuf,
    conn: Mutex<Connection>,
    clock: SharedClock,
    limits: WorkflowLimits,
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_ms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Workflow names as one newline-delimited string (`\na\nb\n`) for an
/// `instr` membership test in SQL; names never hold a newline (validated).
fn name_set(workflows: Option<&[String]>) -> Option<String> {
    workflows.map(|names| {
        let mut set = String::from("\n");
        for n in names {
            set.push_str(n);
            set.push('\n');
        }
        set
    })
}

fn opt_ms(v: Option<i64>) -> Option<u64> {
    v.map(from_ms)
}

fn error_info(name: Option<String>, message: Option<String>) -> Option<ErrorInfo> {
    match (name, message) {
        (None, None) => None,
        (name, message) => Some(ErrorInfo {
            name: name.unwrap_or_default(),
            message: message.unwrap_or_default(),
        }),
    }
}

/// A `step.do` row as the runner calls need it.
struct DoRow {
    state: StepState,
    attempts: u32,
    wake_at_ms: Option<u64>,
    output: Option<Vec<u8>>,
    error: Option<ErrorInfo>,
    config: StepConfig,
}

/// A sleep or wait row.
struct WaitRow {
    state: StepState,
    wake_at_ms: Option<u64>,
    timeout_ms: Option<u64>,
    event_type: Option<String>,
    event_ms: Option<u64>,
    output: Option<Vec<u8>>,
    error: Option<ErrorInfo>,
}

impl WorkflowEngine {
    /// Opens (creating if needed) the engine's file, usually
    /// `DataDir::workflows()`.
    pub fn open(
        path: impl AsRef<Path>,
        clock: SharedClock,
        limits: WorkflowLimits,
    ) -> Result<Self> {
        let path = path.as_ref();
        let mut conn = hearth_core::sqlite::open(path)?;
        hearth_core::sqlite::migrate(&mut conn, path, SCHEMA_STEPS)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            clock,
            limits,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn limits(&self) -> &WorkflowLimits {
        &self.limits
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (an
        // open transaction rolls back when dropped), so the connection stays usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one IMMEDIATE transaction with the clock read once.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>, u64) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = self.clock.now_ms();
        let out = f(&tx, now)?;
        tx.commit()?;
        Ok(out)
    }

    // ----------------------------------------------------------------------
    // The binding: create, get, status, pause, resume, terminate, restart,
    // sendEvent.
    // ----------------------------------------------------------------------

    /// `create({id, params})`: a new `queued` instance. Returns its id.
    pub fn create(&self, workflow: &str, options: CreateOptions) -> Result<String> {
        validate::workflow_name(workflow, &self.limits)?;
        let id = self.checked_id(options.id)?;
        validate::params(&options.params, &self.limits)?;
        self.write(|tx, now| {
            if !insert_instance(tx, workflow, &id, &options.params, now)? {
                return Err(WorkflowError::InstanceAlreadyExists { id: id.clone() });
            }
            Ok(id.clone())
        })
    }

    /// `createBatch([...])`: every entry is checked before any is created;
    /// ids that already exist are skipped (and left out of the result), as
    /// on Cloudflare. One transaction: all created or none.
    pub fn create_batch(&self, workflow: &str, batch: Vec<CreateOptions>) -> Result<Vec<String>> {
        validate::workflow_name(workflow, &self.limits)?;
        if batch.is_empty() {
            return Err(WorkflowError::EmptyBatch);
        }
        if batch.len() > self.limits.max_batch_size {
            return Err(WorkflowError::BatchTooLarge {
                size: batch.len(),
                max: self.limits.max_batch_size,
            });
        }
        let mut checked = Vec::with_capacity(batch.len());
        for options in batch {
            let id = self.checked_id(options.id)?;
            validate::params(&options.params, &self.limits)?;
            checked.push((id, options.params));
        }
        self.write(|tx, now| {
            let mut created = Vec::new();
            for (id, params) in &checked {
                if insert_instance(tx, workflow, id, params, now)? {
                    created.push(id.clone());
                }
            }
            Ok(created)
        })
    }

    fn checked_id(&self, id: Option<String>) -> Result<String> {
        match id {
            Some(id) => {
                validate::instance_id(&id, &self.limits)?;
                Ok(id)
            }
            None => Ok(uuid::Uuid::new_v4().to_string()),
        }
    }

    /// `get(id)`: the instance, or `(instance.not_found)`.
    pub fn get(&self, workflow: &str, id: &str) -> Result<InstanceSummary> {
        let conn = self.conn();
        conn.query_row(
            "SELECT status, created_ms, started_ms, ended_ms FROM wf_instances
             WHERE workflow = ?1 AND id = ?2",
            params![workflow, id],
            |r| {
                Ok(InstanceSummary {
                    workflow: workflow.to_owned(),
                    id: id.to_owned(),
                    status: InstanceStatusKind::parse(&r.get::<_, String>(0)?),
                    created_ms: from_ms(r.get(1)?),
                    started_ms: opt_ms(r.get(2)?),
                    ended_ms: opt_ms(r.get(3)?),
                })
            },
        )
        .optional()?
        .ok_or_else(|| not_found(id))
    }

    /// `status()`: `{status, output?, error?}`.
    pub fn status(&self, workflow: &str, id: &str) -> Result<InstanceStatus> {
        let conn = self.conn();
        read_status(&conn, workflow, id)
    }

    /// `pause()`. A queued or waiting instance pauses at once; a running one
    /// becomes `waitingForPause` and pauses at its next step boundary (or when
    /// it suspends). Pausing a paused or finished instance changes nothing.
    pub fn pause(&self, workflow: &str, id: &str) -> Result<()> {
        self.write(|tx, now| {
            let status = instance_status(tx, workflow, id)?;
            let next = match status {
                InstanceStatusKind::Queued | InstanceStatusKind::Waiting => {
                    InstanceStatusKind::Paused
                }
                InstanceStatusKind::Running => InstanceStatusKind::WaitingForPause,
                _ => return Ok(()),
            };
            tx.execute(
                "UPDATE wf_instances SET status = ?3, paused_at_ms = ?4
                 WHERE workflow = ?1 AND id = ?2",
                params![workflow, id, next.as_str(), ms(now)],
            )?;
            Ok(())
        })
    }

    /// `resume()`. A paused instance continues where it stopped; sleeps,
    /// retry delays and event timeouts are pushed back by the time spent
    /// paused, so a pause never eats into them. A pending pause is
    /// cancelled. Resuming anything else changes nothing.
    pub fn resume(&self, workflow: &str, id: &str) -> Result<()> {
        self.write(|tx, now| {
            let status = instance_status(tx, workflow, id)?;
            match status {
                InstanceStatusKind::WaitingForPause => {
                    tx.execute(
                        "UPDATE wf_instances SET status = 'running', paused_at_ms = NULL
                         WHERE workflow = ?1 AND id = ?2",
                        params![workflow, id],
                    )?;
                }
                InstanceStatusKind::Paused => {
                    let (paused_at, started): (Option<i64>, Option<i64>) = tx.query_row(
                        "SELECT paused_at_ms, started_ms FROM wf_instances
                         WHERE workflow = ?1 AND id = ?2",
                        params![workflow, id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                    let offset = paused_at.map_or(0, |p| ms(now).saturating_sub(p).max(0));
                    tx.execute(
                        &format!(
                            "UPDATE wf_steps SET wake_at_ms = wake_at_ms + ?3
                             WHERE workflow = ?1 AND instance = ?2
                               AND state IN {PENDING_STATES}"
                        ),
                        params![workflow, id, offset],
                    )?;
                    // Never started: back in the queue. Otherwise wake when the
                    // earliest pending item is due, or now if it paused at a
                    // step boundary with nothing pending.
                    let (next, wake) = if started.is_none() {
                        (InstanceStatusKind::Queued, now)
                    } else {
                        let wake = pending_wake(tx, workflow, id, now)?.unwrap_or(now);
                        (InstanceStatusKind::Waiting, wake)
                    };
                    tx.execute(
                        "UPDATE wf_instances SET status = ?3, wake_at_ms = ?4, paused_at_ms = NULL
                         WHERE workflow = ?1 AND id = ?2",
                        params![workflow, id, next.as_str(), ms(wake)],
                    )?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    /// `terminate()`. Refused for an errored, terminated or complete
    /// instance. A run in progress learns at its next call into the engine.
    pub fn terminate(&self, workflow: &str, id: &str) -> Result<()> {
        self.write(|tx, now| {
            if instance_status(tx, workflow, id)?.is_finite() {
                return Err(WorkflowError::CannotTerminate { id: id.to_owned() });
            }
            tx.execute(
                "UPDATE wf_instances SET status = 'terminated', ended_ms = ?3,
                     wake_at_ms = NULL, lease_expires_ms = NULL, paused_at_ms = NULL
                 WHERE workflow = ?1 AND id = ?2",
                params![workflow, id, ms(now)],
            )?;
            Ok(())
        })
    }

    /// `restart()`: clears the journal (steps, attempts, undelivered events),
    /// output and error, and queues the instance again with its original
    /// params. Allowed in any state; a run in progress is cut off.
    pub fn restart(&self, workflow: &str, id: &str) -> Result<()> {
        self.write(|tx, now| {
            instance_status(tx, workflow, id)?;
            for table in ["wf_steps", "wf_attempts", "wf_events"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE workflow = ?1 AND instance = ?2"),
                    params![workflow, id],
                )?;
            }
            tx.execute(
                "UPDATE wf_instances SET status = 'queued', started_ms = NULL, ended_ms = NULL,
                     output = NULL, error_name = NULL, error_message = NULL,
                     wake_at_ms = ?3, lease = lease + 1, lease_expires_ms = NULL,
                     paused_at_ms = NULL
                 WHERE workflow = ?1 AND id = ?2",
                params![workflow, id, ms(now)],
            )?;
            Ok(())
        })
    }

    /// `sendEvent({type, payload})`. The event is kept until a
    /// `waitForEvent` for its type takes it (events sent before the wait are
    /// not lost); a waiting instance with such a wait becomes due at once.
    pub fn send_event(
        &self,
        workflow: &str,
        id: &str,
        event_type: &str,
        payload: &[u8],
    ) -> Result<()> {
        validate::event_type(event_type, &self.limits)?;
        validate::event_payload(payload, &self.limits)?;
        self.write(|tx, now| {
            if instance_status(tx, workflow, id)?.is_finite() {
                return Err(WorkflowError::CannotSendEvent { id: id.to_owned() });
            }
            tx.execute(
                "INSERT INTO wf_events (workflow, instance, event_type, payload, timestamp_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![workflow, id, event_type, payload, ms(now)],
            )?;
            tx.execute(
                "UPDATE wf_instances SET wake_at_ms = MIN(COALESCE(wake_at_ms, ?3), ?3)
                 WHERE workflow = ?1 AND id = ?2 AND status = 'waiting'
                   AND EXISTS (SELECT 1 FROM wf_steps s
                               WHERE s.workflow = ?1 AND s.instance = ?2
                                 AND s.kind = 'waitForEvent' AND s.state = 'waiting'
                                 AND s.event_type = ?4)",
                params![workflow, id, ms(now), event_type],
            )?;
            Ok(())
        })
    }

    /// Instances of one Workflow, newest first.
    pub fn list(&self, workflow: &str, options: &ListOptions) -> Result<ListResult> {
        let limit = options.limit.unwrap_or(50).clamp(1, 1000);
        let (after_ms, after_id) = match &options.cursor {
            None => (i64::MAX, String::new()),
            Some(cursor) => parse_cursor(cursor)?,
        };
        let status = options.status.map(|s| s.as_str());
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, status, created_ms, started_ms, ended_ms FROM wf_instances
             WHERE workflow = ?1 AND (?2 IS NULL OR status = ?2)
               AND (created_ms < ?3 OR (created_ms = ?3 AND ?4 <> '' AND id < ?4))
             ORDER BY created_ms DESC, id DESC LIMIT ?5",
        )?;
        let mut instances = stmt
            .query_map(
                params![workflow, status, after_ms, after_id, (limit + 1) as i64],
                |r| {
                    Ok(InstanceSummary {
                        workflow: workflow.to_owned(),
                        id: r.get(0)?,
                        status: InstanceStatusKind::parse(&r.get::<_, String>(1)?),
                        created_ms: from_ms(r.get(2)?),
                        started_ms: opt_ms(r.get(3)?),
                        ended_ms: opt_ms(r.get(4)?),
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let cursor = if instances.len() > limit {
            instances.truncate(limit);
            instances
                .last()
                .map(|last| format!("{}:{}", last.created_ms, last.id))
        } else {
            None
        };
        Ok(ListResult { instances, cursor })
    }

    /// Everything about one instance: status, params, each step with its
    /// attempts, timings, output and error, and undelivered events.
    pub fn describe(&self, workflow: &str, id: &str) -> Result<InstanceDetails> {
        let conn = self.conn();
        let status = read_status(&conn, workflow, id)?;
        let (params, created, started, ended, wake): (
            Vec<u8>,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        ) = conn.query_row(
            "SELECT params, created_ms, started_ms, ended_ms, wake_at_ms FROM wf_instances
             WHERE workflow = ?1 AND id = ?2",
            params![workflow, id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let mut steps = read_steps(&conn, workflow, id)?;
        let mut attempts = conn.prepare_cached(
            "SELECT attempt, started_ms, ended_ms, success, error_name, error_message
             FROM wf_attempts WHERE workflow = ?1 AND instance = ?2 AND name = ?3
               AND occurrence = ?4 ORDER BY attempt",
        )?;
        for step in steps.iter_mut().filter(|s| s.kind == StepKind::Do) {
            step.attempts = attempts
                .query_map(params![workflow, id, step.name, step.occurrence], |r| {
                    Ok(AttemptRecord {
                        attempt: r.get(0)?,
                        started_ms: from_ms(r.get(1)?),
                        ended_ms: opt_ms(r.get(2)?),
                        success: r.get::<_, Option<bool>>(3)?,
                        error: error_info(r.get(4)?, r.get(5)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
        }
        let mut events = conn.prepare_cached(
            "SELECT event_type, payload, timestamp_ms FROM wf_events
             WHERE workflow = ?1 AND instance = ?2 AND consumed = 0 ORDER BY seq",
        )?;
        let pending_events = events
            .query_map(params![workflow, id], |r| {
                Ok(ReceivedEvent {
                    event_type: r.get(0)?,
                    payload: r.get(1)?,
                    timestamp_ms: from_ms(r.get(2)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(InstanceDetails {
            workflow: workflow.to_owned(),
            id: id.to_owned(),
            status,
            params,
            created_ms: from_ms(created),
            started_ms: opt_ms(started),
            ended_ms: opt_ms(ended),
            wake_at_ms: opt_ms(wake),
            steps,
            pending_events,
        })
    }

    // ----------------------------------------------------------------------
    // The runner.
    // ----------------------------------------------------------------------

    /// Claims the runs that are due now: queued instances, waiting ones whose
    /// wake time has come, and running ones whose lease has ended (their
    /// runner died). Each gets a fresh lease. A run whose pause was pending
    /// when its lease ended is paused instead of claimed.
    pub fn claim_due(&self) -> Result<Vec<RunTicket>> {
        self.claim_due_of(None)
    }

    /// [`Self::claim_due`] limited to the instances of `workflows` (all when
    /// `None`): the runner of one worker claims only its own workflows, so
    /// workers sharing a data directory never take each other's runs.
    pub fn claim_due_of(&self, workflows: Option<&[String]>) -> Result<Vec<RunTicket>> {
        let only = name_set(workflows);
        let lease_ms = self.limits.lease_ms;
        let batch = self.limits.claim_batch;
        self.write(|tx, now| {
            let now_sql = ms(now);
            tx.execute(
                "UPDATE wf_instances SET status = 'paused', lease_expires_ms = NULL
                 WHERE status = 'waitingForPause' AND lease_expires_ms <= ?1",
                params![now_sql],
            )?;
            let mut stmt = tx.prepare_cached(
                "SELECT workflow, id, params, created_ms, lease FROM wf_instances
                 WHERE ((status IN ('queued', 'waiting') AND wake_at_ms <= ?1)
                    OR (status = 'running' AND lease_expires_ms <= ?1))
                   AND (?3 IS NULL OR instr(?3, char(10) || workflow || char(10)) > 0)
                 ORDER BY COALESCE(wake_at_ms, lease_expires_ms), created_ms LIMIT ?2",
            )?;
            let due = stmt
                .query_map(params![now_sql, batch as i64, only], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut tickets = Vec::with_capacity(due.len());
            for (workflow, id, payload, created, lease) in due {
                let lease = lease.saturating_add(1);
                tx.execute(
                    "UPDATE wf_instances SET status = 'running', lease = ?3,
                         lease_expires_ms = ?4, wake_at_ms = NULL,
                         started_ms = COALESCE(started_ms, ?5)
                     WHERE workflow = ?1 AND id = ?2",
                    params![
                        workflow,
                        id,
                        lease,
                        ms(now.saturating_add(lease_ms)),
                        now_sql
                    ],
                )?;
                tickets.push(RunTicket {
                    event: WorkflowEvent {
                        payload,
                        timestamp_ms: from_ms(created),
                        instance_id: id.clone(),
                    },
                    workflow,
                    instance_id: id,
                    lease,
                    occurrences: Default::default(),
                    steps_begun: 0,
                });
            }
            Ok(tickets)
        })
    }

    /// When the next instance becomes due (a wake time or a lease end), so a
    /// scheduler can sleep until then instead of polling.
    pub fn next_wake_at(&self) -> Result<Option<u64>> {
        self.next_wake_at_of(None)
    }

    /// [`Self::next_wake_at`] among the instances of `workflows` (all when
    /// `None`), as [`Self::claim_due_of`] claims them.
    pub fn next_wake_at_of(&self, workflows: Option<&[String]>) -> Result<Option<u64>> {
        let only = name_set(workflows);
        let conn = self.conn();
        let next: Option<i64> = conn.query_row(
            "SELECT MIN(t) FROM (
                 SELECT MIN(wake_at_ms) AS t FROM wf_instances
                     WHERE status IN ('queued', 'waiting')
                       AND (?1 IS NULL OR instr(?1, char(10) || workflow || char(10)) > 0)
                 UNION ALL
                 SELECT MIN(lease_expires_ms) FROM wf_instances
                     WHERE status IN ('running', 'waitingForPause')
                       AND (?1 IS NULL OR instr(?1, char(10) || workflow || char(10)) > 0))",
            params![only],
            |r| r.get(0),
        )?;
        Ok(opt_ms(next))
    }

    /// Runs `f` for a current run: in one transaction, after checking the
    /// ticket still owns the instance and extending its lease. At a step
    /// boundary a pending pause takes effect here.
    fn with_run<T>(
        &self,
        ticket: &RunTicket,
        boundary: bool,
        f: impl FnOnce(&Transaction<'_>, u64) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = self.clock.now_ms();
        if let Some(reason) = check_run(&tx, ticket, now, boundary, self.limits.lease_ms)? {
            tx.commit()?;
            return Err(WorkflowError::RunStopped {
                id: ticket.instance_id.clone(),
                reason,
            });
        }
        let out = f(&tx, now)?;
        tx.commit()?;
        Ok(out)
    }

    /// `step.do(name, config, cb)` reached: what to do with it. The config
    /// given the first time a step is reached is the one its retries follow.
    pub fn step_begin(
        &self,
        ticket: &mut RunTicket,
        name: &str,
        config: &StepConfig,
    ) -> Result<StepDecision> {
        ticket.steps_begun = ticket.steps_begun.saturating_add(1);
        if ticket.steps_begun > self.limits.max_steps {
            return Err(WorkflowError::StepLimitReached {
                limit: self.limits.max_steps,
            });
        }
        validate::step_name(name, &self.limits)?;
        validate::step_config(name, config)?;
        let occurrence = ticket.next_occurrence(StepKind::Do, name);
        let lease_ms = self.limits.lease_ms;
        self.with_run(ticket, true, |tx, now| {
            let key = StepKey::new(ticket, StepKind::Do, name, occurrence);
            let Some(row) = read_do_row(tx, &key)? else {
                tx.execute(
                    "INSERT INTO wf_steps (workflow, instance, kind, name, occurrence, state,
                         retry_limit, retry_delay_ms, backoff, timeout_ms, attempts, started_ms)
                     VALUES (?1, ?2, 'do', ?3, ?4, 'running', ?5, ?6, ?7, ?8, 0, ?9)",
                    params![
                        key.workflow,
                        key.instance,
                        name,
                        occurrence,
                        config.retries.limit,
                        ms(config.retries.delay_ms),
                        config.retries.backoff.as_str(),
                        ms(config.timeout_ms),
                        ms(now)
                    ],
                )?;
                return start_attempt(tx, &key, 1, config.timeout_ms, now, lease_ms);
            };
            match row.state {
                StepState::Succeeded => Ok(StepDecision::Cached(row.output.unwrap_or_default())),
                StepState::Failed => Ok(StepDecision::Failed(
                    row.error.unwrap_or_else(ErrorInfo::interrupted),
                )),
                StepState::Retrying => match row.wake_at_ms {
                    Some(at) if at > now => Ok(StepDecision::Wait { until_ms: at }),
                    _ => start_attempt(
                        tx,
                        &key,
                        row.attempts + 1,
                        row.config.timeout_ms,
                        now,
                        lease_ms,
                    ),
                },
                // The run that started this attempt died (or lost its lease)
                // before reporting: the attempt failed.
                _ => {
                    let error = ErrorInfo::interrupted();
                    close_attempt(tx, &key, row.attempts, now, Some(&error))?;
                    if row.attempts > row.config.retries.limit {
                        fail_step(tx, &key, &error, now)?;
                        return Ok(StepDecision::Failed(error));
                    }
                    start_attempt(
                        tx,
                        &key,
                        row.attempts + 1,
                        row.config.timeout_ms,
                        now,
                        lease_ms,
                    )
                }
            }
        })
    }

    /// The attempt of `step.do(name)` (this `occurrence`) returned `output`.
    /// Output larger than the per-step limit is refused and nothing is
    /// recorded; the runner then reports it as a non-retryable failure.
    pub fn step_success(
        &self,
        ticket: &RunTicket,
        name: &str,
        occurrence: u32,
        output: &[u8],
    ) -> Result<()> {
        if output.len() > self.limits.max_step_output_bytes {
            return Err(WorkflowError::StepOutputTooLarge {
                name: name.to_owned(),
                size: output.len(),
                max: self.limits.max_step_output_bytes,
            });
        }
        let lease_ms = self.limits.lease_ms;
        self.with_run(ticket, false, |tx, now| {
            let key = StepKey::new(ticket, StepKind::Do, name, occurrence);
            let row = running_row(tx, &key)?;
            close_attempt(tx, &key, row.attempts, now, None)?;
            end_attempt_lease(tx, &key, now, lease_ms)?;
            update_step(
                tx,
                &key,
                "state = 'succeeded', output = ?6, ended_ms = ?7, wake_at_ms = NULL",
                &[&output, &ms(now)],
            )?;
            Ok(())
        })
    }

    /// The attempt of `step.do(name)` threw `error` (or overran its timeout:
    /// pass [`ErrorInfo::timed_out`]). With retries left and
    /// `non_retryable` false, the next attempt is scheduled after the
    /// backoff delay; otherwise the step fails for good.
    pub fn step_failure(
        &self,
        ticket: &RunTicket,
        name: &str,
        occurrence: u32,
        error: &ErrorInfo,
        non_retryable: bool,
    ) -> Result<FailureOutcome> {
        let lease_ms = self.limits.lease_ms;
        self.with_run(ticket, false, |tx, now| {
            let key = StepKey::new(ticket, StepKind::Do, name, occurrence);
            let row = running_row(tx, &key)?;
            close_attempt(tx, &key, row.attempts, now, Some(error))?;
            end_attempt_lease(tx, &key, now, lease_ms)?;
            if non_retryable || row.attempts > row.config.retries.limit {
                fail_step(tx, &key, error, now)?;
                return Ok(FailureOutcome::Failed);
            }
            let at = now.saturating_add(row.config.retries.delay_after_attempt(row.attempts));
            update_step(
                tx,
                &key,
                "state = 'retrying', wake_at_ms = ?6, error_name = ?7, error_message = ?8",
                &[&ms(at), &error.name, &error.message],
            )?;
            Ok(FailureOutcome::Retry { at_ms: at })
        })
    }

    /// `step.sleep(name, duration)`. The end time is journaled on the first
    /// call; a replay waits for that same end time.
    pub fn sleep(
        &self,
        ticket: &mut RunTicket,
        name: &str,
        duration_ms: u64,
    ) -> Result<SleepOutcome> {
        self.sleep_impl(ticket, name, SleepTarget::Duration(duration_ms))
    }

    /// `step.sleepUntil(name, timestamp)`. A time in the past is refused the
    /// first time the sleep is reached, as on Cloudflare.
    pub fn sleep_until(
        &self,
        ticket: &mut RunTicket,
        name: &str,
        until_ms: u64,
    ) -> Result<SleepOutcome> {
        self.sleep_impl(ticket, name, SleepTarget::Until(until_ms))
    }

    fn sleep_impl(
        &self,
        ticket: &mut RunTicket,
        name: &str,
        target: SleepTarget,
    ) -> Result<SleepOutcome> {
        validate::step_name(name, &self.limits)?;
        let occurrence = ticket.next_occurrence(StepKind::Sleep, name);
        let max_ms = self.limits.max_sleep_ms;
        self.with_run(ticket, true, |tx, now| {
            let key = StepKey::new(ticket, StepKind::Sleep, name, occurrence);
            let wake_at = match read_wait_row(tx, &key)? {
                Some(row) if row.state == StepState::Elapsed => return Ok(SleepOutcome::Elapsed),
                Some(row) => row.wake_at_ms.unwrap_or(now),
                None => {
                    let until = match target {
                        SleepTarget::Duration(d) => {
                            if d > max_ms {
                                return Err(sleep_too_long(name, d, max_ms));
                            }
                            now.saturating_add(d)
                        }
                        SleepTarget::Until(until) => {
                            if until < now {
                                return Err(WorkflowError::SleepInThePast {
                                    until_ms: until,
                                    now_ms: now,
                                });
                            }
                            if until - now > max_ms {
                                return Err(sleep_too_long(name, until - now, max_ms));
                            }
                            until
                        }
                    };
                    tx.execute(
                        "INSERT INTO wf_steps (workflow, instance, kind, name, occurrence, state,
                             started_ms, wake_at_ms)
                         VALUES (?1, ?2, 'sleep', ?3, ?4, 'sleeping', ?5, ?6)",
                        params![
                            key.workflow,
                            key.instance,
                            name,
                            occurrence,
                            ms(now),
                            ms(until)
                        ],
                    )?;
                    until
                }
            };
            if wake_at > now {
                return Ok(SleepOutcome::SuspendUntil(wake_at));
            }
            set_step_state(tx, &key, StepState::Elapsed, now)?;
            Ok(SleepOutcome::Elapsed)
        })
    }

    /// `step.waitForEvent(name, {type, timeout})`; `timeout_ms` defaults to
    /// [`WorkflowLimits::default_event_timeout_ms`] (24 hours). The oldest
    /// undelivered event of the type is taken, even if it was sent before
    /// the wait began.
    pub fn wait_for_event(
        &self,
        ticket: &mut RunTicket,
        name: &str,
        event_type: &str,
        timeout_ms: Option<u64>,
    ) -> Result<EventOutcome> {
        validate::step_name(name, &self.limits)?;
        validate::event_type(event_type, &self.limits)?;
        let timeout = timeout_ms.unwrap_or(self.limits.default_event_timeout_ms);
        if timeout == 0 || timeout > self.limits.max_sleep_ms {
            return Err(WorkflowError::InvalidEventTimeout {
                name: name.to_owned(),
                timeout_ms: timeout,
                max_ms: self.limits.max_sleep_ms,
            });
        }
        let occurrence = ticket.next_occurrence(StepKind::WaitForEvent, name);
        self.with_run(ticket, true, |tx, now| {
            let key = StepKey::new(ticket, StepKind::WaitForEvent, name, occurrence);
            let row = match read_wait_row(tx, &key)? {
                Some(row) => row,
                None => {
                    let wake = now.saturating_add(timeout);
                    tx.execute(
                        "INSERT INTO wf_steps (workflow, instance, kind, name, occurrence, state,
                             started_ms, wake_at_ms, timeout_ms, event_type)
                         VALUES (?1, ?2, 'waitForEvent', ?3, ?4, 'waiting', ?5, ?6, ?7, ?8)",
                        params![
                            key.workflow,
                            key.instance,
                            name,
                            occurrence,
                            ms(now),
                            ms(wake),
                            ms(timeout),
                            event_type
                        ],
                    )?;
                    WaitRow {
                        state: StepState::WaitingForEvent,
                        wake_at_ms: Some(wake),
                        timeout_ms: Some(timeout),
                        event_type: Some(event_type.to_owned()),
                        event_ms: None,
                        output: None,
                        error: None,
                    }
                }
            };
            let stored_type = row.event_type.clone().unwrap_or_default();
            match row.state {
                StepState::Received => {
                    return Ok(EventOutcome::Event(ReceivedEvent {
                        event_type: stored_type,
                        payload: row.output.unwrap_or_default(),
                        timestamp_ms: row.event_ms.unwrap_or(0),
                    }));
                }
                StepState::TimedOut => {
                    return Ok(EventOutcome::TimedOut(row.error.unwrap_or_else(|| {
                        ErrorInfo::timed_out(row.timeout_ms.unwrap_or(timeout))
                    })));
                }
                _ => {}
            }
            if let Some((seq, payload, at)) = oldest_event(tx, &key, &stored_type)? {
                tx.execute(
                    "UPDATE wf_events SET consumed = 1 WHERE seq = ?1",
                    params![seq],
                )?;
                update_step(
                    tx,
                    &key,
                    "state = 'received', output = ?6, event_ms = ?7, ended_ms = ?8",
                    &[&payload, &at, &ms(now)],
                )?;
                return Ok(EventOutcome::Event(ReceivedEvent {
                    event_type: stored_type,
                    payload,
                    timestamp_ms: from_ms(at),
                }));
            }
            let wake = row.wake_at_ms.unwrap_or(now);
            if wake > now {
                return Ok(EventOutcome::SuspendUntil(wake));
            }
            let error = ErrorInfo::timed_out(row.timeout_ms.unwrap_or(timeout));
            update_step(
                tx,
                &key,
                "state = 'timedOut', error_name = ?6, error_message = ?7, ended_ms = ?8",
                &[&error.name, &error.message, &ms(now)],
            )?;
            Ok(EventOutcome::TimedOut(error))
        })
    }

    /// `run` returned (`Ok(output)`) or threw (`Err(error)`): the instance
    /// is `complete` or `errored`. Recorded even while a pause is pending.
    pub fn finish(&self, ticket: &RunTicket, result: Result<Vec<u8>, ErrorInfo>) -> Result<()> {
        self.with_run(ticket, false, |tx, now| {
            let (status, output, error) = match result {
                Ok(output) => (InstanceStatusKind::Complete, Some(output), None),
                Err(error) => (InstanceStatusKind::Errored, None, Some(error)),
            };
            tx.execute(
                "UPDATE wf_instances SET status = ?3, output = ?4, error_name = ?5,
                     error_message = ?6, ended_ms = ?7, wake_at_ms = NULL,
                     lease_expires_ms = NULL, paused_at_ms = NULL
                 WHERE workflow = ?1 AND id = ?2",
                params![
                    ticket.workflow,
                    ticket.instance_id,
                    status.as_str(),
                    output,
                    error.as_ref().map(|e| &e.name),
                    error.as_ref().map(|e| &e.message),
                    ms(now)
                ],
            )?;
            Ok(())
        })
    }

    /// The run cannot go on until a sleep, retry delay or event wait ends:
    /// the instance hibernates (`waiting`, or `paused` if a pause is
    /// pending) and becomes due at the earliest pending wake time, or at
    /// once if an event it waits for is already here. Returns that time.
    pub fn suspend(&self, ticket: &RunTicket) -> Result<u64> {
        self.with_run(ticket, false, |tx, now| {
            let workflow = ticket.workflow.as_str();
            let id = ticket.instance_id.as_str();
            let Some(wake) = pending_wake(tx, workflow, id, now)? else {
                return Err(WorkflowError::NothingPending { id: id.to_owned() });
            };
            let pausing = instance_status(tx, workflow, id)? == InstanceStatusKind::WaitingForPause;
            let status = if pausing {
                InstanceStatusKind::Paused
            } else {
                InstanceStatusKind::Waiting
            };
            tx.execute(
                "UPDATE wf_instances SET status = ?3, wake_at_ms = ?4, lease_expires_ms = NULL,
                     paused_at_ms = CASE WHEN ?5 THEN ?6 ELSE NULL END
                 WHERE workflow = ?1 AND id = ?2",
                params![workflow, id, status.as_str(), ms(wake), pausing, ms(now)],
            )?;
            Ok(wake)
        })
    }
}

enum SleepTarget {
    Duration(u64),
    Until(u64),
}

fn sleep_too_long(name: &str, duration_ms: u64, max_ms: u64) -> WorkflowError {
    WorkflowError::SleepTooLong {
        name: name.to_owned(),
        duration_ms,
        max_ms,
    }
}

fn not_found(id: &str) -> WorkflowError {
    WorkflowError::InstanceNotFound { id: id.to_owned() }
}

fn parse_cursor(cursor: &str) -> Result<(i64, String)> {
    // Ids never contain ':', so the first one separates the two parts.
    cursor
        .split_once(':')
        .and_then(|(created, id)| Some((created.parse::<i64>().ok()?, id.to_owned())))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| WorkflowError::InvalidCursor {
            cursor: cursor.to_owned(),
        })
}

/// Inserts a queued instance; false when the id is taken.
fn insert_instance(
    tx: &Transaction<'_>,
    workflow: &str,
    id: &str,
    params: &[u8],
    now: u64,
) -> Result<bool> {
    let inserted = tx.execute(
        "INSERT INTO wf_instances (workflow, id, status, params, created_ms, wake_at_ms)
         VALUES (?1, ?2, 'queued', ?3, ?4, ?4)
         ON CONFLICT (workflow, id) DO NOTHING",
        params![workflow, id, params, ms(now)],
    )?;
    Ok(inserted == 1)
}

fn instance_status(conn: &Connection, workflow: &str, id: &str) -> Result<InstanceStatusKind> {
    conn.query_row(
        "SELECT status FROM wf_instances WHERE workflow = ?1 AND id = ?2",
        params![workflow, id],
        |r| r.get::<_, String>(0),
    )
    .optional()?
    .map(|s| InstanceStatusKind::parse(&s))
    .ok_or_else(|| not_found(id))
}

fn read_status(conn: &Connection, workflow: &str, id: &str) -> Result<InstanceStatus> {
    conn.query_row(
        "SELECT status, output, error_name, error_message FROM wf_instances
         WHERE workflow = ?1 AND id = ?2",
        params![workflow, id],
        |r| {
            Ok(InstanceStatus {
                status: InstanceStatusKind::parse(&r.get::<_, String>(0)?),
                output: r.get(1)?,
                error: error_info(r.get(2)?, r.get(3)?),
            })
        },
    )
    .optional()?
    .ok_or_else(|| not_found(id))
}

/// Whether `ticket` still owns its instance. On success the lease is
/// extended; at a step boundary a pending pause takes effect and stops the run.
fn check_run(
    tx: &Transaction<'_>,
    ticket: &RunTicket,
    now: u64,
    boundary: bool,
    lease_ms: u64,
) -> Result<Option<StopReason>> {
    let row: Option<(String, i64)> = tx
        .query_row(
            "SELECT status, lease FROM wf_instances WHERE workflow = ?1 AND id = ?2",
            params![ticket.workflow, ticket.instance_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((status, lease)) = row else {
        return Ok(Some(StopReason::Superseded));
    };
    let status = InstanceStatusKind::parse(&status);
    if lease != ticket.lease {
        // Restart bumps the lease and queues the instance.
        return Ok(Some(if status == InstanceStatusKind::Queued {
            StopReason::Restarted
        } else {
            StopReason::Superseded
        }));
    }
    match status {
        InstanceStatusKind::Running => {}
        InstanceStatusKind::WaitingForPause if boundary => {
            tx.execute(
                "UPDATE wf_instances SET status = 'paused', lease_expires_ms = NULL,
                     paused_at_ms = ?3
                 WHERE workflow = ?1 AND id = ?2",
                params![ticket.workflow, ticket.instance_id, ms(now)],
            )?;
            return Ok(Some(StopReason::Paused));
        }
        InstanceStatusKind::WaitingForPause => {}
        InstanceStatusKind::Terminated => return Ok(Some(StopReason::Terminated)),
        InstanceStatusKind::Paused => return Ok(Some(StopReason::Paused)),
        _ => return Ok(Some(StopReason::Superseded)),
    }
    tx.execute(
        "UPDATE wf_instances SET lease_expires_ms = MAX(COALESCE(lease_expires_ms, 0), ?3)
         WHERE workflow = ?1 AND id = ?2",
        params![
            ticket.workflow,
            ticket.instance_id,
            ms(now.saturating_add(lease_ms))
        ],
    )?;
    Ok(None)
}

/// The earliest time a pending sleep, retry or event wait of the instance
/// wants it back; `now` if an awaited event is already here.
fn pending_wake(tx: &Transaction<'_>, workflow: &str, id: &str, now: u64) -> Result<Option<u64>> {
    let event_ready: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM wf_steps s JOIN wf_events e
             ON e.workflow = s.workflow AND e.instance = s.instance
            AND e.event_type = s.event_type AND e.consumed = 0
          WHERE s.workflow = ?1 AND s.instance = ?2 AND s.kind = 'waitForEvent'
            AND s.state = 'waiting')",
        params![workflow, id],
        |r| r.get(0),
    )?;
    if event_ready {
        return Ok(Some(now));
    }
    let wake: Option<i64> = tx.query_row(
        &format!(
            "SELECT MIN(wake_at_ms) FROM wf_steps
             WHERE workflow = ?1 AND instance = ?2 AND state IN {PENDING_STATES}"
        ),
        params![workflow, id],
        |r| r.get(0),
    )?;
    Ok(opt_ms(wake))
}

struct StepKey<'a> {
    workflow: &'a str,
    instance: &'a str,
    kind: StepKind,
    name: &'a str,
    occurrence: u32,
}

impl<'a> StepKey<'a> {
    fn new(ticket: &'a RunTicket, kind: StepKind, name: &'a str, occurrence: u32) -> Self {
        Self {
            workflow: &ticket.workflow,
            instance: &ticket.instance_id,
            kind,
            name,
            occurrence,
        }
    }
}

fn read_do_row(tx: &Transaction<'_>, key: &StepKey<'_>) -> Result<Option<DoRow>> {
    Ok(tx
        .query_row(
            "SELECT state, attempts, wake_at_ms, output, error_name, error_message,
                    retry_limit, retry_delay_ms, backoff, timeout_ms
             FROM wf_steps WHERE workflow = ?1 AND instance = ?2 AND kind = 'do'
               AND name = ?3 AND occurrence = ?4",
            params![key.workflow, key.instance, key.name, key.occurrence],
            |r| {
                let defaults = StepConfig::default();
                Ok(DoRow {
                    state: StepState::parse(&r.get::<_, String>(0)?),
                    attempts: r.get(1)?,
                    wake_at_ms: opt_ms(r.get(2)?),
                    output: r.get(3)?,
                    error: error_info(r.get(4)?, r.get(5)?),
                    config: StepConfig {
                        retries: RetryConfig {
                            limit: r
                                .get::<_, Option<u32>>(6)?
                                .unwrap_or(defaults.retries.limit),
                            delay_ms: opt_ms(r.get(7)?).unwrap_or(defaults.retries.delay_ms),
                            backoff: r
                                .get::<_, Option<String>>(8)?
                                .and_then(|b| Backoff::parse(&b))
                                .unwrap_or_default(),
                        },
                        timeout_ms: opt_ms(r.get(9)?).unwrap_or(defaults.timeout_ms),
                    },
                })
            },
        )
        .optional()?)
}

fn running_row(tx: &Transaction<'_>, key: &StepKey<'_>) -> Result<DoRow> {
    match read_do_row(tx, key)? {
        Some(row) if row.state == StepState::Running && row.attempts > 0 => Ok(row),
        _ => Err(WorkflowError::StepNotRunning {
            name: key.name.to_owned(),
            occurrence: key.occurrence,
        }),
    }
}

fn read_wait_row(tx: &Transaction<'_>, key: &StepKey<'_>) -> Result<Option<WaitRow>> {
    Ok(tx
        .query_row(
            "SELECT state, wake_at_ms, timeout_ms, event_type, event_ms, output,
                    error_name, error_message
             FROM wf_steps WHERE workflow = ?1 AND instance = ?2 AND kind = ?3
               AND name = ?4 AND occurrence = ?5",
            params![
                key.workflow,
                key.instance,
                key.kind.as_str(),
                key.name,
                key.occurrence
            ],
            |r| {
                Ok(WaitRow {
                    state: StepState::parse(&r.get::<_, String>(0)?),
                    wake_at_ms: opt_ms(r.get(1)?),
                    timeout_ms: opt_ms(r.get(2)?),
                    event_type: r.get(3)?,
                    event_ms: opt_ms(r.get(4)?),
                    output: r.get(5)?,
                    error: error_info(r.get(6)?, r.get(7)?),
                })
            },
        )
        .optional()?)
}

/// Starts attempt `attempt` and stretches the lease over its timeout.
fn start_attempt(
    tx: &Transaction<'_>,
    key: &StepKey<'_>,
    attempt: u32,
    timeout_ms: u64,
    now: u64,
    lease_ms: u64,
) -> Result<StepDecision> {
    tx.execute(
        "INSERT OR REPLACE INTO wf_attempts (workflow, instance, name, occurrence, attempt,
             started_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.workflow,
            key.instance,
            key.name,
            key.occurrence,
            attempt,
            ms(now)
        ],
    )?;
    update_step(
        tx,
        key,
        "state = 'running', attempts = ?6, wake_at_ms = NULL",
        &[&attempt],
    )?;
    let until = now.saturating_add(timeout_ms).saturating_add(lease_ms);
    tx.execute(
        "UPDATE wf_instances SET lease_expires_ms = MAX(COALESCE(lease_expires_ms, 0), ?3)
         WHERE workflow = ?1 AND id = ?2",
        params![key.workflow, key.instance, ms(until)],
    )?;
    Ok(StepDecision::Run {
        occurrence: key.occurrence,
        attempt,
        timeout_ms,
    })
}

/// The attempt is over, so the lease no longer needs to cover its timeout.
fn end_attempt_lease(
    tx: &Transaction<'_>,
    key: &StepKey<'_>,
    now: u64,
    lease_ms: u64,
) -> Result<()> {
    tx.execute(
        "UPDATE wf_instances SET lease_expires_ms = ?3 WHERE workflow = ?1 AND id = ?2",
        params![key.workflow, key.instance, ms(now.saturating_add(lease_ms))],
    )?;
    Ok(())
}

fn close_attempt(
    tx: &Transaction<'_>,
    key: &StepKey<'_>,
    attempt: u32,
    now: u64,
    error: Option<&ErrorInfo>,
) -> Result<()> {
    tx.execute(
        "UPDATE wf_attempts SET ended_ms = ?6, success = ?7, error_name = ?8, error_message = ?9
         WHERE workflow = ?1 AND instance = ?2 AND name = ?3 AND occurrence = ?4
           AND attempt = ?5",
        params![
            key.workflow,
            key.instance,
            key.name,
            key.occurrence,
            attempt,
            ms(now),
            error.is_none(),
            error.map(|e| &e.name),
            error.map(|e| &e.message)
        ],
    )?;
    Ok(())
}

fn fail_step(tx: &Transaction<'_>, key: &StepKey<'_>, error: &ErrorInfo, now: u64) -> Result<()> {
    update_step(
        tx,
        key,
        "state = 'failed', error_name = ?6, error_message = ?7, ended_ms = ?8, wake_at_ms = NULL",
        &[&error.name, &error.message, &ms(now)],
    )?;
    Ok(())
}

fn set_step_state(
    tx: &Transaction<'_>,
    key: &StepKey<'_>,
    state: StepState,
    now: u64,
) -> Result<()> {
    update_step(
        tx,
        key,
        "state = ?6, ended_ms = ?7",
        &[&state.as_str(), &ms(now)],
    )?;
    Ok(())
}

/// `UPDATE wf_steps SET <set>` for the one step `key` names. The key binds
/// ?1 to ?5, so `set` numbers its own parameters from ?6.
fn update_step(
    tx: &Transaction<'_>,
    key: &StepKey<'_>,
    set: &str,
    values: &[&dyn rusqlite::ToSql],
) -> Result<()> {
    let sql = format!(
        "UPDATE wf_steps SET {set}
         WHERE workflow = ?1 AND instance = ?2 AND kind = ?3 AND name = ?4 AND occurrence = ?5"
    );
    let kind = key.kind.as_str();
    let mut all: Vec<&dyn rusqlite::ToSql> = vec![
        &key.workflow,
        &key.instance,
        &kind,
        &key.name,
        &key.occurrence,
    ];
    all.extend_from_slice(values);
    tx.execute(&sql, rusqlite::params_from_iter(all))?;
    Ok(())
}

fn oldest_event(
    tx: &Transaction<'_>,
    key: &StepKey<'_>,
    event_type: &str,
) -> Result<Option<(i64, Vec<u8>, i64)>> {
    Ok(tx
        .query_row(
            "SELECT seq, payload, timestamp_ms FROM wf_events
             WHERE workflow = ?1 AND instance = ?2 AND event_type = ?3 AND consumed = 0
             ORDER BY seq LIMIT 1",
            params![key.workflow, key.instance, event_type],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

fn read_steps(conn: &Connection, workflow: &str, id: &str) -> Result<Vec<StepRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, name, occurrence, state, retry_limit, retry_delay_ms, backoff, timeout_ms,
                started_ms, ended_ms, wake_at_ms, event_type, output, error_name, error_message
         FROM wf_steps WHERE workflow = ?1 AND instance = ?2 ORDER BY rowid",
    )?;
    let steps = stmt
        .query_map(params![workflow, id], |r| {
            let kind = StepKind::parse(&r.get::<_, String>(0)?);
            let config = match kind {
                StepKind::Do => Some(StepConfig {
                    retries: RetryConfig {
                        limit: r.get::<_, Option<u32>>(4)?.unwrap_or_default(),
                        delay_ms: opt_ms(r.get(5)?).unwrap_or_default(),
                        backoff: r
                            .get::<_, Option<String>>(6)?
                            .and_then(|b| Backoff::parse(&b))
                            .unwrap_or_default(),
                    },
                    timeout_ms: opt_ms(r.get(7)?).unwrap_or_default(),
                }),
                _ => None,
            };
            Ok(StepRecord {
                kind,
                name: r.get(1)?,
                occurrence: r.get(2)?,
                state: StepState::parse(&r.get::<_, String>(3)?),
                config,
                started_ms: from_ms(r.get(8)?),
                ended_ms: opt_ms(r.get(9)?),
                wake_at_ms: opt_ms(r.get(10)?),
                event_type: r.get(11)?,
                output: r.get(12)?,
                error: error_info(r.get(13)?, r.get(14)?),
                attempts: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(steps)
}
