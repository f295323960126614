//! The embedded backend: one SQLite file, one row per message in any queue.
//!
//! A row is in one of three states, derived from its columns:
//! - waiting: `lease_id IS NULL`; visible once `visible_at <= now`, delayed
//!   before that;
//! - in flight: `lease_id` set and `lease_expires_at > now`;
//! - lapsed: `lease_id` set and `lease_expires_at <= now`. Lapsed rows are
//!   turned back into waiting ones (or dead-lettered) by `reap`, which every
//!   operation runs first inside its own transaction, so no caller ever sees
//!   a lapsed lease as in flight.
//!
//! `deliveries` counts deliveries so far; a delivery's `attempts` is its new
//! value. `seq` (AUTOINCREMENT, never reused) orders a queue and is the
//! handle inside lease ids.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{QueueError, Result};
use crate::outcome::{BatchOutcome, MessageDecision};
use crate::validate::{DEFAULT_MAX_RETRIES, QueueLimits};
use crate::{
    AckResponse, ConsumerConfig, LeasedBatch, Message, PullResponse, PulledMessage,
    QueueContentType, QueueStats, SettleReport,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_messages (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT NOT NULL,
    id               TEXT NOT NULL,
    timestamp_ms     INTEGER NOT NULL,
    content_type     TEXT NOT NULL,
    body             BLOB NOT NULL,
    visible_at       INTEGER NOT NULL,
    deliveries       INTEGER NOT NULL DEFAULT 0,
    lease_id         TEXT,
    lease_kind       TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS queue_messages_waiting
    ON queue_messages (queue, visible_at) WHERE lease_id IS NULL;
CREATE INDEX IF NOT EXISTS queue_messages_leased
    ON queue_messages (lease_expires_at) WHERE lease_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS queue_messages_lease_queue
    ON queue_messages (queue, lease_id) WHERE lease_id IS NOT NULL;
-- Retention runs with every operation; this keeps it from scanning the table.
CREATE INDEX IF NOT EXISTS queue_messages_age
    ON queue_messages (timestamp_ms) WHERE lease_id IS NULL;
";

/// Each entry moves the schema one version forward (see
/// `hearth_core::sqlite::migrate`); a file from a newer build is refused
/// rather than misread.
const SCHEMA_STEPS: &[&str] = &[SCHEMA];

const LEASE_PUSH: &str = "push";
const LEASE_PULL: &str = "pull";

/// Hex digits of the `seq` at the front of a pull lease id.
const LEASE_SEQ_HEX: usize = 16;

/// What every operation needs besides its arguments.
pub(crate) struct Ctx<'a> {
    pub now: u64,
    pub limits: &'a QueueLimits,
    pub consumers: &'a BTreeMap<String, ConsumerConfig>,
}

pub(crate) struct NewMessage {
    pub id: String,
    pub timestamp_ms: u64,
    pub content_type: QueueContentType,
    pub body: Vec<u8>,
    pub visible_at: u64,
}

/// A leased row, as `fail` needs it.
struct LeasedRow {
    seq: i64,
    queue: String,
    id: String,
    deliveries: i64,
}

enum Fate {
    Retried,
    DeadLettered,
    Dropped,
}

/// 16 random bytes as 32 lowercase hex characters: the shape of a
/// Cloudflare message id.
pub(crate) fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| QueueError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

fn sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn from_sql_ms(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

fn parse_content_type(id: &str, value: String) -> Result<QueueContentType> {
    QueueContentType::parse(&value).map_err(|_| QueueError::CorruptContentType {
        id: id.to_owned(),
        value,
    })
}

#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = hearth_core::sqlite::open(path)?;
        hearth_core::sqlite::migrate(&mut conn, path, SCHEMA_STEPS)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // An open transaction rolls back when dropped, so a panic while the
        // lock was held leaves the connection usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one IMMEDIATE transaction and commits it: with
    /// `synchronous=FULL`, returning Ok means durable.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    pub fn insert(&self, queue: &str, messages: &[NewMessage]) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO queue_messages (queue, id, timestamp_ms, content_type, body, visible_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for m in messages {
                stmt.execute(params![
                    queue,
                    m.id,
                    sql_ms(m.timestamp_ms),
                    m.content_type.as_str(),
                    m.body,
                    sql_ms(m.visible_at),
                ])?;
            }
            Ok(())
        })
    }

    pub fn lease_push(
        &self,
        ctx: &Ctx<'_>,
        consumer: &ConsumerConfig,
        owner: &str,
    ) -> Result<Option<LeasedBatch>> {
        self.write(|tx| {
            reap(tx, ctx)?;
            let queue = consumer.queue.as_str();
            let now = sql_ms(ctx.now);
            let concurrency = consumer
                .max_concurrency
                .unwrap_or(ctx.limits.max_concurrency);
            if in_flight_batches(tx, queue)? >= u64::from(concurrency) {
                return Ok(None);
            }
            let (ready, oldest): (i64, Option<i64>) = tx.query_row(
                "SELECT count(*), min(visible_at) FROM queue_messages
                 WHERE queue = ?1 AND lease_id IS NULL AND visible_at <= ?2",
                params![queue, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let Some(oldest) = oldest else {
                return Ok(None);
            };
            let timeout_ms = i64::from(consumer.max_batch_timeout_secs) * 1000;
            if ready < i64::from(consumer.max_batch_size) && oldest.saturating_add(timeout_ms) > now
            {
                return Ok(None);
            }
            let lease_id = random_hex()?;
            let expires = ctx.now.saturating_add(ctx.limits.push_lease_ms);
            let rows = take_ready(tx, queue, consumer.max_batch_size, now)?;
            let mut update = tx.prepare_cached(
                "UPDATE queue_messages SET lease_id = ?1, lease_kind = ?2, lease_owner = ?3,
                     lease_expires_at = ?4, deliveries = deliveries + 1
                 WHERE seq = ?5",
            )?;
            let mut seqs = Vec::with_capacity(rows.len());
            let mut messages = Vec::with_capacity(rows.len());
            for (seq, message) in rows {
                update.execute(params![lease_id, LEASE_PUSH, owner, sql_ms(expires), seq])?;
                seqs.push(seq);
                messages.push(message);
            }
            Ok(Some(LeasedBatch {
                queue: queue.to_owned(),
                messages,
                lease_expires_at_ms: expires,
                lease_id,
                seqs,
                acks: Vec::new(),
                max_delay_secs: ctx.limits.max_delay_secs,
            }))
        })
    }

    pub fn settle(
        &self,
        ctx: &Ctx<'_>,
        batch: &LeasedBatch,
        outcome: &BatchOutcome,
    ) -> Result<SettleReport> {
        self.write(|tx| {
            let mut report = SettleReport::default();
            for (seq, message) in batch.seqs.iter().zip(&batch.messages) {
                let row = leased_row(tx, *seq, &batch.queue)?;
                let Some((row, lease)) = row else {
                    // Acked elsewhere, dead-lettered or dropped after a lapse.
                    report.stale += 1;
                    continue;
                };
                match outcome.decision(&message.id) {
                    MessageDecision::Ack => {
                        delete(tx, row.seq)?;
                        report.acked += 1;
                    }
                    MessageDecision::Retry { delay_seconds } => {
                        if lease.as_deref() != Some(batch.lease_id.as_str()) {
                            report.stale += 1;
                            continue;
                        }
                        let delay = retry_delay(ctx, &row.queue, delay_seconds);
                        match fail(tx, ctx, &row, delay, ctx.now)? {
                            Fate::Retried => report.retried += 1,
                            Fate::DeadLettered => report.dead_lettered += 1,
                            Fate::Dropped => report.dropped += 1,
                        }
                    }
                }
            }
            Ok(report)
        })
    }

    pub fn pull(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        batch_size: u32,
        visibility_ms: u64,
    ) -> Result<PullResponse> {
        self.write(|tx| {
            reap(tx, ctx)?;
            let now = sql_ms(ctx.now);
            let expires = sql_ms(ctx.now.saturating_add(visibility_ms));
            let rows = take_ready(tx, queue, batch_size, now)?;
            let mut update = tx.prepare_cached(
                "UPDATE queue_messages SET lease_id = ?1, lease_kind = ?2, lease_owner = NULL,
                     lease_expires_at = ?3, deliveries = deliveries + 1
                 WHERE seq = ?4",
            )?;
            let mut messages = Vec::with_capacity(rows.len());
            for (seq, m) in rows {
                let lease_id = format!("{:0width$x}{}", seq, random_hex()?, width = LEASE_SEQ_HEX);
                update.execute(params![lease_id, LEASE_PULL, expires, seq])?;
                messages.push(PulledMessage {
                    lease_id,
                    id: m.id,
                    timestamp_ms: m.timestamp_ms,
                    body: m.body,
                    content_type: m.content_type,
                    attempts: m.attempts,
                });
            }
            let backlog: i64 = tx.query_row(
                "SELECT count(*) FROM queue_messages WHERE queue = ?1 AND lease_id IS NULL",
                params![queue],
                |r| r.get(0),
            )?;
            Ok(PullResponse {
                messages,
                message_backlog_count: u64::try_from(backlog).unwrap_or(0),
            })
        })
    }

    pub fn ack(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        acks: &[String],
        retries: &[(String, Option<u64>)],
    ) -> Result<AckResponse> {
        self.write(|tx| {
            let mut out = AckResponse::default();
            for lease in acks {
                let Some(seq) = lease_seq(lease) else {
                    out.warnings.push(unknown_lease(lease));
                    continue;
                };
                match leased_row(tx, seq, queue)? {
                    Some((row, _)) => {
                        delete(tx, row.seq)?;
                        out.ack_count += 1;
                    }
                    None => out.warnings.push(gone(lease)),
                }
            }
            for (lease, delay) in retries {
                let Some(seq) = lease_seq(lease) else {
                    out.warnings.push(unknown_lease(lease));
                    continue;
                };
                match leased_row(tx, seq, queue)? {
                    Some((row, current)) if current.as_deref() == Some(lease.as_str()) => {
                        let delay = retry_delay(ctx, queue, *delay);
                        fail(tx, ctx, &row, delay, ctx.now)?;
                        out.retry_count += 1;
                    }
                    Some(_) => out.warnings.push(format!(
                        "lease {lease} has lapsed and its message was already returned to the queue; retry ignored"
                    )),
                    None => out.warnings.push(gone(lease)),
                }
            }
            Ok(out)
        })
    }

    pub fn stats(&self, ctx: &Ctx<'_>, queue: &str, dlq: Option<&str>) -> Result<QueueStats> {
        self.write(|tx| {
            reap(tx, ctx)?;
            let now = sql_ms(ctx.now);
            let (visible, delayed, in_flight, oldest): (i64, i64, i64, Option<i64>) = tx
                .query_row(
                    "SELECT
                        coalesce(sum(lease_id IS NULL AND visible_at <= ?2), 0),
                        coalesce(sum(lease_id IS NULL AND visible_at > ?2), 0),
                        coalesce(sum(lease_id IS NOT NULL), 0),
                        min(timestamp_ms)
                     FROM queue_messages WHERE queue = ?1",
                    params![queue, now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
            let dlq_depth = match dlq {
                Some(dlq) => Some(tx.query_row(
                    "SELECT count(*) FROM queue_messages WHERE queue = ?1",
                    params![dlq],
                    |r| r.get::<_, i64>(0),
                )?),
                None => None,
            };
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            Ok(QueueStats {
                depth: n(visible) + n(delayed),
                visible: n(visible),
                delayed: n(delayed),
                in_flight: n(in_flight),
                oldest_age_ms: oldest.map(|t| ctx.now.saturating_sub(from_sql_ms(t))),
                dlq_depth: dlq_depth.map(n),
            })
        })
    }

    pub fn next_due(&self, ctx: &Ctx<'_>, push: &[&ConsumerConfig]) -> Result<Option<u64>> {
        let conn = self.conn();
        let now = sql_ms(ctx.now);
        let mut due: Option<i64> = conn.query_row(
            "SELECT min(lease_expires_at) FROM queue_messages WHERE lease_id IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        let mut consider = |t: Option<i64>| {
            if let Some(t) = t {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
        };
        for c in push {
            let delayed: Option<i64> = conn.query_row(
                "SELECT min(visible_at) FROM queue_messages
                 WHERE queue = ?1 AND lease_id IS NULL AND visible_at > ?2",
                params![c.queue, now],
                |r| r.get(0),
            )?;
            consider(delayed);
            let concurrency = c.max_concurrency.unwrap_or(ctx.limits.max_concurrency);
            let batches: i64 = conn.query_row(
                "SELECT count(DISTINCT lease_id) FROM queue_messages
                 WHERE queue = ?1 AND lease_kind = ?2 AND lease_expires_at > ?3",
                params![c.queue, LEASE_PUSH, now],
                |r| r.get(0),
            )?;
            if u64::try_from(batches).unwrap_or(0) >= u64::from(concurrency) {
                // A settle or a lease lapse frees a slot; the lapse is counted above.
                continue;
            }
            let (ready, oldest): (i64, Option<i64>) = conn.query_row(
                "SELECT count(*), min(visible_at) FROM queue_messages
                 WHERE queue = ?1 AND lease_id IS NULL AND visible_at <= ?2",
                params![c.queue, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if ready >= i64::from(c.max_batch_size) {
                consider(Some(now));
            } else if let Some(oldest) = oldest {
                consider(Some(
                    oldest.saturating_add(i64::from(c.max_batch_timeout_secs) * 1000),
                ));
            }
        }
        Ok(due.map(from_sql_ms))
    }

    pub fn queues_with_messages(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT DISTINCT queue FROM queue_messages ORDER BY queue")?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(names)
    }

    pub fn recover_push_leases(&self, ctx: &Ctx<'_>, owner: &str) -> Result<usize> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE queue_messages SET lease_expires_at = ?1
                 WHERE lease_kind = ?2 AND lease_owner IS NOT ?3 AND lease_expires_at > ?1",
                params![sql_ms(ctx.now), LEASE_PUSH, owner],
            )?;
            reap(tx, ctx)?;
            Ok(n)
        })
    }
}

/// The oldest ready messages of a queue, up to `limit`, as they will be
/// delivered (attempts already counting this delivery).
fn take_ready(
    tx: &Transaction<'_>,
    queue: &str,
    limit: u32,
    now: i64,
) -> Result<Vec<(i64, Message)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT seq, id, timestamp_ms, content_type, body, deliveries FROM queue_messages
         WHERE queue = ?1 AND lease_id IS NULL AND visible_at <= ?2
         ORDER BY seq LIMIT ?3",
    )?;
    let raw = stmt
        .query_map(params![queue, now, i64::from(limit)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(raw.len());
    for (seq, id, ts, ct, body, deliveries) in raw {
        let content_type = parse_content_type(&id, ct)?;
        out.push((
            seq,
            Message {
                id,
                timestamp_ms: from_sql_ms(ts),
                body,
                content_type,
                attempts: u32::try_from(deliveries.saturating_add(1)).unwrap_or(u32::MAX),
            },
        ));
    }
    Ok(out)
}

fn in_flight_batches(tx: &Transaction<'_>, queue: &str) -> Result<u64> {
    let n: i64 = tx.query_row(
        "SELECT count(DISTINCT lease_id) FROM queue_messages
         WHERE queue = ?1 AND lease_kind = ?2",
        params![queue, LEASE_PUSH],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The row `seq` of `queue` with its current lease, if it is still there.
fn leased_row(
    tx: &Transaction<'_>,
    seq: i64,
    queue: &str,
) -> Result<Option<(LeasedRow, Option<String>)>> {
    Ok(tx
        .query_row(
            "SELECT id, deliveries, lease_id FROM queue_messages WHERE seq = ?1 AND queue = ?2",
            params![seq, queue],
            |r| {
                Ok((
                    LeasedRow {
                        seq,
                        queue: queue.to_owned(),
                        id: r.get(0)?,
                        deliveries: r.get(1)?,
                    },
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?)
}

fn delete(tx: &Transaction<'_>, seq: i64) -> Result<()> {
    tx.execute("DELETE FROM queue_messages WHERE seq = ?1", params![seq])?;
    Ok(())
}

/// The delay of a retry: its own, else the consumer's `retry_delay`, else 0.
fn retry_delay(ctx: &Ctx<'_>, queue: &str, own: Option<u64>) -> u64 {
    own.or_else(|| ctx.consumers.get(queue).and_then(|c| c.retry_delay_secs))
        .unwrap_or(0)
}

/// A delivery of `row` failed (retry, throw, or lapsed lease): deliver it
/// again after `delay_secs` from `base_ms`, or, with its retries used up,
/// move it to the dead-letter queue or drop it.
fn fail(
    tx: &Transaction<'_>,
    ctx: &Ctx<'_>,
    row: &LeasedRow,
    delay_secs: u64,
    base_ms: u64,
) -> Result<Fate> {
    let consumer = ctx.consumers.get(&row.queue);
    let max_retries = consumer.map_or(DEFAULT_MAX_RETRIES, |c| c.max_retries);
    if row.deliveries <= i64::from(max_retries) {
        let visible_at = base_ms.saturating_add(delay_secs.saturating_mul(1000));
        tx.execute(
            "UPDATE queue_messages SET lease_id = NULL, lease_kind = NULL, lease_owner = NULL,
                 lease_expires_at = NULL, visible_at = ?1
             WHERE seq = ?2",
            params![sql_ms(visible_at), row.seq],
        )?;
        return Ok(Fate::Retried);
    }
    match consumer.and_then(|c| c.dead_letter_queue.as_deref()) {
        Some(dlq) => {
            // Same id and timestamp, attempts from scratch, deliverable now.
            tx.execute(
                "INSERT INTO queue_messages (queue, id, timestamp_ms, content_type, body, visible_at)
                 SELECT ?1, id, timestamp_ms, content_type, body, ?2
                 FROM queue_messages WHERE seq = ?3",
                params![dlq, sql_ms(ctx.now), row.seq],
            )?;
            delete(tx, row.seq)?;
            tracing::warn!(
                queue = %row.queue,
                message_id = %row.id,
                attempts = row.deliveries,
                dead_letter_queue = %dlq,
                "queue message failed on every attempt; moved to its dead-letter queue"
            );
            Ok(Fate::DeadLettered)
        }
        None => {
            delete(tx, row.seq)?;
            tracing::warn!(
                queue = %row.queue,
                message_id = %row.id,
                attempts = row.deliveries,
                "queue message failed on every attempt and has no dead-letter queue; dropped"
            );
            Ok(Fate::Dropped)
        }
    }
}

/// Gives back every lapsed lease as a failed attempt (delayed by the
/// consumer's `retry_delay` from the moment it lapsed), and deletes waiting
/// messages older than the retention period.
fn reap(tx: &Transaction<'_>, ctx: &Ctx<'_>) -> Result<()> {
    let now = sql_ms(ctx.now);
    let lapsed = {
        let mut stmt = tx.prepare_cached(
            "SELECT seq, queue, id, deliveries, lease_expires_at FROM queue_messages
             WHERE lease_id IS NOT NULL AND lease_expires_at <= ?1 ORDER BY seq",
        )?;
        stmt.query_map(params![now], |r| {
            Ok((
                LeasedRow {
                    seq: r.get(0)?,
                    queue: r.get(1)?,
                    id: r.get(2)?,
                    deliveries: r.get(3)?,
                },
                r.get::<_, i64>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    for (row, expired_at) in lapsed {
        let delay = retry_delay(ctx, &row.queue, None);
        fail(tx, ctx, &row, delay, from_sql_ms(expired_at))?;
    }
    let retention_ms = sql_ms(ctx.limits.message_retention_secs.saturating_mul(1000));
    let expired = tx.execute(
        "DELETE FROM queue_messages
         WHERE lease_id IS NULL AND timestamp_ms <= ?1 - ?2",
        params![now, retention_ms],
    )?;
    if expired > 0 {
        tracing::warn!(
            messages = expired,
            retention_secs = ctx.limits.message_retention_secs,
            "queue messages reached the retention period unacknowledged; deleted"
        );
    }
    Ok(())
}

/// The `seq` a pull lease id was made for; `None` for anything this broker
/// could not have issued.
fn lease_seq(lease: &str) -> Option<i64> {
    if lease.len() != LEASE_SEQ_HEX + 32 || !lease.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(&lease[..LEASE_SEQ_HEX], 16).ok()
}

fn unknown_lease(lease: &str) -> String {
    format!("lease {lease} is not a lease id of this queue; ignored")
}

fn gone(lease: &str) -> String {
    format!("lease {lease}: its message is no longer in the queue; ignored")
}
