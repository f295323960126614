//! The engine's rules over a [`JournalStore`]: every call is one
//! transaction of the store, which no other runner (in this process or any
//! other sharing the journal) interleaves with, so two runners never both
//! claim an instance or slip a write between a check and the write it guards.

use std::path::Path;

use hearth_core::SharedClock;

use crate::error::{Result, WorkflowError};
use crate::sqlite::SqliteJournal;
use crate::store::{Dialect, JournalStore, Tx, Value};
use crate::validate::{self, WorkflowLimits};
use crate::vals;
use crate::{
    AttemptRecord, Backoff, CreateOptions, ErrorInfo, EventOutcome, FailureOutcome,
    InstanceDetails, InstanceStatus, InstanceStatusKind, InstanceSummary, ListOptions, ListResult,
    ReceivedEvent, RetryConfig, RunTicket, SleepOutcome, StepConfig, StepDecision, StepKind,
    StepRecord, StepState, StopReason, WorkflowEvent,
};

/// Steps whose state holds a wake time the instance must wake for.
const PENDING_STATES: &str = "('retrying', 'sleeping', 'waiting')";

/// The Workflows engine over one journal. `Send + Sync`: share it behind an
/// `Arc`. Several processes may open the same journal at once.
#[derive(Debug)]
pub struct WorkflowEngine {
    store: Box<dyn JournalStore>,
    clock: SharedClock,
    limits: WorkflowLimits,
    /// Recorded on the instances this engine claims (cluster mode: the node).
    runner: Option<String>,
    /// A heartbeat renews this engine's leases ([`WorkflowEngine::renew`]),
    /// so a running attempt does not stretch its lease over the step's
    /// timeout: a dead runner's instances move on within a lease.
    heartbeat: bool,
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
    /// Opens (creating if needed) the engine's SQLite file, usually
    /// `DataDir::workflows()`.
    pub fn open(
        path: impl AsRef<Path>,
        clock: SharedClock,
        limits: WorkflowLimits,
    ) -> Result<Self> {
        let store = SqliteJournal::open(path.as_ref())?;
        Ok(Self::with_store(Box::new(store), clock, limits))
    }

    /// The engine over any journal backend.
    pub fn with_store(
        store: Box<dyn JournalStore>,
        clock: SharedClock,
        limits: WorkflowLimits,
    ) -> Self {
        Self {
            store,
            clock,
            limits,
            runner: None,
            heartbeat: false,
        }
    }

    /// Names this engine's claims `runner` and keeps its leases short: the
    /// caller promises to call [`renew`](Self::renew) with its runs in
    /// progress more often than `limits.lease_ms`. Cluster mode.
    pub fn with_heartbeat(mut self, runner: &str) -> Self {
        self.runner = Some(runner.to_owned());
        self.heartbeat = true;
        self
    }

    /// How often [`renew`](Self::renew) must run when the engine's leases
    /// hang on a heartbeat: three times a lease.
    pub fn heartbeat_every(&self) -> Option<std::time::Duration> {
        self.heartbeat
            .then(|| std::time::Duration::from_millis((self.limits.lease_ms / 3).max(1)))
    }

    /// Where the journal lives (`sqlite:<path>`, `postgres:<schema>`).
    pub fn describe_store(&self) -> String {
        self.store.describe()
    }

    pub fn limits(&self) -> &WorkflowLimits {
        &self.limits
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    fn dialect(&self) -> Dialect {
        self.store.dialect()
    }

    /// Runs `f` in one write transaction with the clock read once.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Tx, u64) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.store.write(&mut |tx| {
            if let Some(f) = f.take() {
                out = Some(f(tx, self.clock.now_ms())?);
            }
            Ok(())
        })?;
        out.ok_or(WorkflowError::StoreSkipped)
    }

    /// Runs `f` over one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.store.read(&mut |tx| {
            if let Some(f) = f.take() {
                out = Some(f(tx)?);
            }
            Ok(())
        })?;
        out.ok_or(WorkflowError::StoreSkipped)
    }

    /// Extends the lease of each run in progress that `tickets` names and
    /// still holds its instance: the heartbeat of [`with_heartbeat`](Self::with_heartbeat).
    /// A ticket whose instance moved on is skipped; its run learns at its
    /// next call.
    pub fn renew(&self, tickets: &[(String, String, i64)]) -> Result<()> {
        if tickets.is_empty() {
            return Ok(());
        }
        let lease_ms = self.limits.lease_ms;
        self.write(|tx, now| {
            let until = ms(now.saturating_add(lease_ms));
            for (workflow, id, lease) in tickets {
                tx.execute(
                    "UPDATE wf_instances SET lease_expires_ms = ?4
                     WHERE workflow = ?1 AND id = ?2 AND lease = ?3
                       AND status IN ('running', 'waitingForPause')
                       AND lease_expires_ms < ?4",
                    vals![workflow, id, *lease, until],
                )?;
            }
            Ok(())
        })
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
        let row = self.read(|tx| {
            tx.query_opt(
                "SELECT status, created_ms, started_ms, ended_ms FROM wf_instances
                 WHERE workflow = ?1 AND id = ?2",
                vals![workflow, id],
            )
        })?;
        let r = row.ok_or_else(|| not_found(id))?;
        Ok(InstanceSummary {
            workflow: workflow.to_owned(),
            id: id.to_owned(),
            status: InstanceStatusKind::parse(&r.text(0)?),
            created_ms: from_ms(r.int(1)?),
            started_ms: opt_ms(r.opt_int(2)?),
            ended_ms: opt_ms(r.opt_int(3)?),
        })
    }

    /// `status()`: `{status, output?, error?}`.
    pub fn status(&self, workflow: &str, id: &str) -> Result<InstanceStatus> {
        self.read(|tx| read_status(tx, workflow, id))
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
                vals![workflow, id, next.as_str(), ms(now)],
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
                        vals![workflow, id],
                    )?;
                }
                InstanceStatusKind::Paused => {
                    let r = tx.query_one(
                        "SELECT paused_at_ms, started_ms FROM wf_instances
                         WHERE workflow = ?1 AND id = ?2",
                        vals![workflow, id],
                    )?;
                    let (paused_at, started) = (r.opt_int(0)?, r.opt_int(1)?);
                    let offset = paused_at.map_or(0, |p| ms(now).saturating_sub(p).max(0));
                    tx.execute(
                        &format!(
                            "UPDATE wf_steps SET wake_at_ms = wake_at_ms + ?3
                             WHERE workflow = ?1 AND instance = ?2
                               AND state IN {PENDING_STATES}"
                        ),
                        vals![workflow, id, offset],
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
                        vals![workflow, id, next.as_str(), ms(wake)],
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
                vals![workflow, id, ms(now)],
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
                    vals![workflow, id],
                )?;
            }
            tx.execute(
                "UPDATE wf_instances SET status = 'queued', started_ms = NULL, ended_ms = NULL,
                     output = NULL, error_name = NULL, error_message = NULL,
                     wake_at_ms = ?3, lease = lease + 1, lease_expires_ms = NULL,
                     paused_at_ms = NULL
                 WHERE workflow = ?1 AND id = ?2",
                vals![workflow, id, ms(now)],
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
                vals![workflow, id, event_type, payload, ms(now)],
            )?;
            tx.execute(
                "UPDATE wf_instances
                 SET wake_at_ms = CASE WHEN wake_at_ms IS NULL OR wake_at_ms > ?3
                                       THEN ?3 ELSE wake_at_ms END
                 WHERE workflow = ?1 AND id = ?2 AND status = 'waiting'
                   AND EXISTS (SELECT 1 FROM wf_steps s
                               WHERE s.workflow = ?1 AND s.instance = ?2
                                 AND s.kind = 'waitForEvent' AND s.state = 'waiting'
                                 AND s.event_type = ?4)",
                vals![workflow, id, ms(now), event_type],
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
        let rows = self.read(|tx| {
            tx.query(
                "SELECT id, status, created_ms, started_ms, ended_ms FROM wf_instances
                 WHERE workflow = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2)
                   AND (created_ms < ?3 OR (created_ms = ?3 AND ?4 <> '' AND id < ?4))
                 ORDER BY created_ms DESC, id DESC LIMIT ?5",
                vals![workflow, status, after_ms, after_id, (limit + 1) as i64],
            )
        })?;
        let mut instances = rows
            .iter()
            .map(|r| {
                Ok(InstanceSummary {
                    workflow: workflow.to_owned(),
                    id: r.text(0)?,
                    status: InstanceStatusKind::parse(&r.text(1)?),
                    created_ms: from_ms(r.int(2)?),
                    started_ms: opt_ms(r.opt_int(3)?),
                    ended_ms: opt_ms(r.opt_int(4)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
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
        let order = self.dialect().step_order();
        self.read(|tx| describe(tx, workflow, id, order))
    }
}

fn describe(tx: &mut dyn Tx, workflow: &str, id: &str, order: &str) -> Result<InstanceDetails> {
    {
        let status = read_status(tx, workflow, id)?;
        let r = tx.query_one(
            "SELECT params, created_ms, started_ms, ended_ms, wake_at_ms FROM wf_instances
             WHERE workflow = ?1 AND id = ?2",
            vals![workflow, id],
        )?;
        let (params, created, started, ended, wake) = (
            r.blob(0)?,
            r.int(1)?,
            r.opt_int(2)?,
            r.opt_int(3)?,
            r.opt_int(4)?,
        );
        let mut steps = read_steps(tx, workflow, id, order)?;
        for step in steps.iter_mut().filter(|s| s.kind == StepKind::Do) {
            let rows = tx.query(
                "SELECT attempt, started_ms, ended_ms, success, error_name, error_message
                 FROM wf_attempts WHERE workflow = ?1 AND instance = ?2 AND name = ?3
                   AND occurrence = ?4 ORDER BY attempt",
                vals![workflow, id, step.name.as_str(), step.occurrence],
            )?;
            step.attempts = rows
                .iter()
                .map(|r| {
                    Ok(AttemptRecord {
                        attempt: r.u32(0)?,
                        started_ms: from_ms(r.int(1)?),
                        ended_ms: opt_ms(r.opt_int(2)?),
                        success: r.opt_bool(3)?,
                        error: error_info(r.opt_text(4)?, r.opt_text(5)?),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        }
        let rows = tx.query(
            "SELECT event_type, payload, timestamp_ms FROM wf_events
             WHERE workflow = ?1 AND instance = ?2 AND consumed = 0 ORDER BY seq",
            vals![workflow, id],
        )?;
        let pending_events = rows
            .iter()
            .map(|r| {
                Ok(ReceivedEvent {
                    event_type: r.text(0)?,
                    payload: r.blob(1)?,
                    timestamp_ms: from_ms(r.int(2)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
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
}

impl WorkflowEngine {
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
        let member = self.dialect().name_in_set("?3");
        let runner = self.runner.clone();
        self.write(|tx, now| {
            let now_sql = ms(now);
            tx.execute(
                "UPDATE wf_instances SET status = 'paused', lease_expires_ms = NULL
                 WHERE status = 'waitingForPause' AND lease_expires_ms <= ?1",
                vals![now_sql],
            )?;
            let rows = tx.query(
                &format!(
                    "SELECT workflow, id, params, created_ms, lease FROM wf_instances
                     WHERE ((status IN ('queued', 'waiting') AND wake_at_ms <= ?1)
                        OR (status = 'running' AND lease_expires_ms <= ?1))
                       AND (CAST(?3 AS TEXT) IS NULL OR {member})
                     ORDER BY COALESCE(wake_at_ms, lease_expires_ms), created_ms LIMIT ?2"
                ),
                vals![now_sql, batch as i64, only],
            )?;
            let mut tickets = Vec::with_capacity(rows.len());
            for r in rows {
                let (workflow, id, payload, created, lease) =
                    (r.text(0)?, r.text(1)?, r.blob(2)?, r.int(3)?, r.int(4)?);
                let lease = lease.saturating_add(1);
                tx.execute(
                    "UPDATE wf_instances SET status = 'running', lease = ?3,
                         lease_expires_ms = ?4, wake_at_ms = NULL,
                         started_ms = COALESCE(started_ms, ?5), runner = ?6
                     WHERE workflow = ?1 AND id = ?2",
                    vals![
                        &workflow,
                        &id,
                        lease,
                        ms(now.saturating_add(lease_ms)),
                        now_sql,
                        runner.as_deref()
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
        let member = self.dialect().name_in_set("?1");
        let next = self.read(|tx| {
            tx.query_one(
                &format!(
                    "SELECT MIN(t) FROM (
                         SELECT MIN(wake_at_ms) AS t FROM wf_instances
                             WHERE status IN ('queued', 'waiting')
                               AND (CAST(?1 AS TEXT) IS NULL OR {member})
                         UNION ALL
                         SELECT MIN(lease_expires_ms) FROM wf_instances
                             WHERE status IN ('running', 'waitingForPause')
                               AND (CAST(?1 AS TEXT) IS NULL OR {member})) AS due"
                ),
                vals![only],
            )?
            .opt_int(0)
        })?;
        Ok(opt_ms(next))
    }

    /// Runs `f` for a current run: in one transaction, after checking the
    /// ticket still owns the instance and extending its lease. At a step
    /// boundary a pending pause takes effect here.
    fn with_run<T>(
        &self,
        ticket: &RunTicket,
        boundary: bool,
        f: impl FnOnce(&mut dyn Tx, u64) -> Result<T>,
    ) -> Result<T> {
        let lease_ms = self.limits.lease_ms;
        // A stop is committed (a pending pause takes effect), then reported.
        let out = self.write(|tx, now| {
            if let Some(reason) = check_run(tx, ticket, now, boundary, lease_ms)? {
                return Ok(Err(reason));
            }
            f(tx, now).map(Ok)
        })?;
        out.map_err(|reason| WorkflowError::RunStopped {
            id: ticket.instance_id.clone(),
            reason,
        })
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
        let (lease_ms, heartbeat) = (self.limits.lease_ms, self.heartbeat);
        self.with_run(ticket, true, |tx, now| {
            let key = StepKey::new(ticket, StepKind::Do, name, occurrence);
            let Some(row) = read_do_row(tx, &key)? else {
                tx.execute(
                    "INSERT INTO wf_steps (workflow, instance, kind, name, occurrence, state,
                         retry_limit, retry_delay_ms, backoff, timeout_ms, attempts, started_ms)
                     VALUES (?1, ?2, 'do', ?3, ?4, 'running', ?5, ?6, ?7, ?8, 0, ?9)",
                    vals![
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
                return start_attempt(tx, &key, 1, config.timeout_ms, now, lease_ms, heartbeat);
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
                        heartbeat,
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
                        heartbeat,
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
                vals![output, ms(now)],
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
                vals![ms(at), &error.name, &error.message],
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
                        vals![
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
                        vals![
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
                    vals![seq],
                )?;
                update_step(
                    tx,
                    &key,
                    "state = 'received', output = ?6, event_ms = ?7, ended_ms = ?8",
                    vals![&payload, at, ms(now)],
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
                vals![&error.name, &error.message, ms(now)],
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
                vals![
                    &ticket.workflow,
                    &ticket.instance_id,
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
                     paused_at_ms = ?5
                 WHERE workflow = ?1 AND id = ?2",
                vals![
                    workflow,
                    id,
                    status.as_str(),
                    ms(wake),
                    pausing.then(|| ms(now))
                ],
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
    tx: &mut dyn Tx,
    workflow: &str,
    id: &str,
    params: &[u8],
    now: u64,
) -> Result<bool> {
    let inserted = tx.execute(
        "INSERT INTO wf_instances (workflow, id, status, params, created_ms, wake_at_ms)
         VALUES (?1, ?2, 'queued', ?3, ?4, ?4)
         ON CONFLICT (workflow, id) DO NOTHING",
        vals![workflow, id, params, ms(now)],
    )?;
    Ok(inserted == 1)
}

fn instance_status(tx: &mut dyn Tx, workflow: &str, id: &str) -> Result<InstanceStatusKind> {
    let row = tx.query_opt(
        "SELECT status FROM wf_instances WHERE workflow = ?1 AND id = ?2",
        vals![workflow, id],
    )?;
    Ok(InstanceStatusKind::parse(
        &row.ok_or_else(|| not_found(id))?.text(0)?,
    ))
}

fn read_status(tx: &mut dyn Tx, workflow: &str, id: &str) -> Result<InstanceStatus> {
    let row = tx.query_opt(
        "SELECT status, output, error_name, error_message FROM wf_instances
         WHERE workflow = ?1 AND id = ?2",
        vals![workflow, id],
    )?;
    let r = row.ok_or_else(|| not_found(id))?;
    Ok(InstanceStatus {
        status: InstanceStatusKind::parse(&r.text(0)?),
        output: r.opt_blob(1)?,
        error: error_info(r.opt_text(2)?, r.opt_text(3)?),
    })
}

/// Whether `ticket` still owns its instance. On success the lease is
/// extended; at a step boundary a pending pause takes effect and stops the run.
fn check_run(
    tx: &mut dyn Tx,
    ticket: &RunTicket,
    now: u64,
    boundary: bool,
    lease_ms: u64,
) -> Result<Option<StopReason>> {
    let row = tx.query_opt(
        "SELECT status, lease FROM wf_instances WHERE workflow = ?1 AND id = ?2",
        vals![&ticket.workflow, &ticket.instance_id],
    )?;
    let Some(row) = row else {
        return Ok(Some(StopReason::Superseded));
    };
    let (status, lease) = (row.text(0)?, row.int(1)?);
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
                vals![&ticket.workflow, &ticket.instance_id, ms(now)],
            )?;
            return Ok(Some(StopReason::Paused));
        }
        InstanceStatusKind::WaitingForPause => {}
        InstanceStatusKind::Terminated => return Ok(Some(StopReason::Terminated)),
        InstanceStatusKind::Paused => return Ok(Some(StopReason::Paused)),
        _ => return Ok(Some(StopReason::Superseded)),
    }
    extend_lease(
        tx,
        &ticket.workflow,
        &ticket.instance_id,
        now.saturating_add(lease_ms),
    )?;
    Ok(None)
}

/// The earliest time a pending sleep, retry or event wait of the instance
/// wants it back; `now` if an awaited event is already here.
fn pending_wake(tx: &mut dyn Tx, workflow: &str, id: &str, now: u64) -> Result<Option<u64>> {
    let event_ready = tx.query_opt(
        "SELECT 1 FROM wf_steps s JOIN wf_events e
             ON e.workflow = s.workflow AND e.instance = s.instance
            AND e.event_type = s.event_type AND e.consumed = 0
          WHERE s.workflow = ?1 AND s.instance = ?2 AND s.kind = 'waitForEvent'
            AND s.state = 'waiting'
          LIMIT 1",
        vals![workflow, id],
    )?;
    if event_ready.is_some() {
        return Ok(Some(now));
    }
    let wake = tx
        .query_one(
            &format!(
                "SELECT MIN(wake_at_ms) FROM wf_steps
                 WHERE workflow = ?1 AND instance = ?2 AND state IN {PENDING_STATES}"
            ),
            vals![workflow, id],
        )?
        .opt_int(0)?;
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

fn read_do_row(tx: &mut dyn Tx, key: &StepKey<'_>) -> Result<Option<DoRow>> {
    let row = tx.query_opt(
        "SELECT state, attempts, wake_at_ms, output, error_name, error_message,
                retry_limit, retry_delay_ms, backoff, timeout_ms
         FROM wf_steps WHERE workflow = ?1 AND instance = ?2 AND kind = 'do'
           AND name = ?3 AND occurrence = ?4",
        vals![key.workflow, key.instance, key.name, key.occurrence],
    )?;
    let Some(r) = row else { return Ok(None) };
    let defaults = StepConfig::default();
    Ok(Some(DoRow {
        state: StepState::parse(&r.text(0)?),
        attempts: r.u32(1)?,
        wake_at_ms: opt_ms(r.opt_int(2)?),
        output: r.opt_blob(3)?,
        error: error_info(r.opt_text(4)?, r.opt_text(5)?),
        config: StepConfig {
            retries: RetryConfig {
                limit: r.opt_u32(6)?.unwrap_or(defaults.retries.limit),
                delay_ms: opt_ms(r.opt_int(7)?).unwrap_or(defaults.retries.delay_ms),
                backoff: r
                    .opt_text(8)?
                    .and_then(|b| Backoff::parse(&b))
                    .unwrap_or_default(),
            },
            timeout_ms: opt_ms(r.opt_int(9)?).unwrap_or(defaults.timeout_ms),
        },
    }))
}

fn running_row(tx: &mut dyn Tx, key: &StepKey<'_>) -> Result<DoRow> {
    match read_do_row(tx, key)? {
        Some(row) if row.state == StepState::Running && row.attempts > 0 => Ok(row),
        _ => Err(WorkflowError::StepNotRunning {
            name: key.name.to_owned(),
            occurrence: key.occurrence,
        }),
    }
}

fn read_wait_row(tx: &mut dyn Tx, key: &StepKey<'_>) -> Result<Option<WaitRow>> {
    let row = tx.query_opt(
        "SELECT state, wake_at_ms, timeout_ms, event_type, event_ms, output,
                error_name, error_message
         FROM wf_steps WHERE workflow = ?1 AND instance = ?2 AND kind = ?3
           AND name = ?4 AND occurrence = ?5",
        vals![
            key.workflow,
            key.instance,
            key.kind.as_str(),
            key.name,
            key.occurrence
        ],
    )?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(WaitRow {
        state: StepState::parse(&r.text(0)?),
        wake_at_ms: opt_ms(r.opt_int(1)?),
        timeout_ms: opt_ms(r.opt_int(2)?),
        event_type: r.opt_text(3)?,
        event_ms: opt_ms(r.opt_int(4)?),
        output: r.opt_blob(5)?,
        error: error_info(r.opt_text(6)?, r.opt_text(7)?),
    }))
}

/// Starts attempt `attempt` and stretches the lease over its timeout.
fn start_attempt(
    tx: &mut dyn Tx,
    key: &StepKey<'_>,
    attempt: u32,
    timeout_ms: u64,
    now: u64,
    lease_ms: u64,
    heartbeat: bool,
) -> Result<StepDecision> {
    tx.execute(
        "INSERT INTO wf_attempts (workflow, instance, name, occurrence, attempt, started_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (workflow, instance, name, occurrence, attempt) DO UPDATE SET
             started_ms = excluded.started_ms, ended_ms = NULL, success = NULL,
             error_name = NULL, error_message = NULL",
        vals![
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
        vals![attempt],
    )?;
    // Under a heartbeat the lease is renewed while the attempt runs, so it
    // need not cover the step's timeout.
    let until = match heartbeat {
        true => now.saturating_add(lease_ms),
        false => now.saturating_add(timeout_ms).saturating_add(lease_ms),
    };
    extend_lease(tx, key.workflow, key.instance, until)?;
    Ok(StepDecision::Run {
        occurrence: key.occurrence,
        attempt,
        timeout_ms,
    })
}

/// The attempt is over, so the lease no longer needs to cover its timeout.
fn end_attempt_lease(tx: &mut dyn Tx, key: &StepKey<'_>, now: u64, lease_ms: u64) -> Result<()> {
    tx.execute(
        "UPDATE wf_instances SET lease_expires_ms = ?3 WHERE workflow = ?1 AND id = ?2",
        vals![key.workflow, key.instance, ms(now.saturating_add(lease_ms))],
    )?;
    Ok(())
}

fn close_attempt(
    tx: &mut dyn Tx,
    key: &StepKey<'_>,
    attempt: u32,
    now: u64,
    error: Option<&ErrorInfo>,
) -> Result<()> {
    tx.execute(
        "UPDATE wf_attempts SET ended_ms = ?6, success = ?7, error_name = ?8, error_message = ?9
         WHERE workflow = ?1 AND instance = ?2 AND name = ?3 AND occurrence = ?4
           AND attempt = ?5",
        vals![
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

fn fail_step(tx: &mut dyn Tx, key: &StepKey<'_>, error: &ErrorInfo, now: u64) -> Result<()> {
    update_step(
        tx,
        key,
        "state = 'failed', error_name = ?6, error_message = ?7, ended_ms = ?8, wake_at_ms = NULL",
        vals![&error.name, &error.message, ms(now)],
    )?;
    Ok(())
}

fn set_step_state(tx: &mut dyn Tx, key: &StepKey<'_>, state: StepState, now: u64) -> Result<()> {
    update_step(
        tx,
        key,
        "state = ?6, ended_ms = ?7",
        vals![state.as_str(), ms(now)],
    )?;
    Ok(())
}

/// `UPDATE wf_steps SET <set>` for the one step `key` names. The key binds
/// ?1 to ?5, so `set` numbers its own parameters from ?6.
fn update_step(tx: &mut dyn Tx, key: &StepKey<'_>, set: &str, values: &[Value]) -> Result<()> {
    let sql = format!(
        "UPDATE wf_steps SET {set}
         WHERE workflow = ?1 AND instance = ?2 AND kind = ?3 AND name = ?4 AND occurrence = ?5"
    );
    let mut all = vals![
        key.workflow,
        key.instance,
        key.kind.as_str(),
        key.name,
        key.occurrence
    ]
    .to_vec();
    all.extend_from_slice(values);
    tx.execute(&sql, &all)?;
    Ok(())
}

/// Pushes the instance's lease end out to `until` (never pulls it in).
fn extend_lease(tx: &mut dyn Tx, workflow: &str, id: &str, until: u64) -> Result<()> {
    tx.execute(
        "UPDATE wf_instances
         SET lease_expires_ms = CASE WHEN lease_expires_ms IS NULL OR lease_expires_ms < ?3
                                     THEN ?3 ELSE lease_expires_ms END
         WHERE workflow = ?1 AND id = ?2",
        vals![workflow, id, ms(until)],
    )?;
    Ok(())
}

fn oldest_event(
    tx: &mut dyn Tx,
    key: &StepKey<'_>,
    event_type: &str,
) -> Result<Option<(i64, Vec<u8>, i64)>> {
    let row = tx.query_opt(
        "SELECT seq, payload, timestamp_ms FROM wf_events
         WHERE workflow = ?1 AND instance = ?2 AND event_type = ?3 AND consumed = 0
         ORDER BY seq LIMIT 1",
        vals![key.workflow, key.instance, event_type],
    )?;
    row.map(|r| Ok((r.int(0)?, r.blob(1)?, r.int(2)?)))
        .transpose()
}

fn read_steps(tx: &mut dyn Tx, workflow: &str, id: &str, order: &str) -> Result<Vec<StepRecord>> {
    let rows = tx.query(
        &format!(
            "SELECT kind, name, occurrence, state, retry_limit, retry_delay_ms, backoff, timeout_ms,
                    started_ms, ended_ms, wake_at_ms, event_type, output, error_name, error_message
             FROM wf_steps WHERE workflow = ?1 AND instance = ?2 ORDER BY {order}"
        ),
        vals![workflow, id],
    )?;
    rows.iter()
        .map(|r| {
            let kind = StepKind::parse(&r.text(0)?);
            let config = match kind {
                StepKind::Do => Some(StepConfig {
                    retries: RetryConfig {
                        limit: r.opt_u32(4)?.unwrap_or_default(),
                        delay_ms: opt_ms(r.opt_int(5)?).unwrap_or_default(),
                        backoff: r
                            .opt_text(6)?
                            .and_then(|b| Backoff::parse(&b))
                            .unwrap_or_default(),
                    },
                    timeout_ms: opt_ms(r.opt_int(7)?).unwrap_or_default(),
                }),
                _ => None,
            };
            Ok(StepRecord {
                kind,
                name: r.text(1)?,
                occurrence: r.u32(2)?,
                state: StepState::parse(&r.text(3)?),
                config,
                started_ms: from_ms(r.int(8)?),
                ended_ms: opt_ms(r.opt_int(9)?),
                wake_at_ms: opt_ms(r.opt_int(10)?),
                event_type: r.opt_text(11)?,
                output: r.opt_blob(12)?,
                error: error_info(r.opt_text(13)?, r.opt_text(14)?),
                attempts: Vec::new(),
            })
        })
        .collect()
}
