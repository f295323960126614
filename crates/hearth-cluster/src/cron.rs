//! Cron slots across nodes: every node schedules every worker's crons on
//! its own clock, and a row per (worker, cron) in `cron_cursors` decides
//! which node fires each slot.
//!
//! The row holds the latest slot claimed, its holder and whether it is
//! done. A claim is one compare-and-set statement: it wins when the slot is
//! newer than the row's, or when it is the row's own slot, unfinished, and
//! either held by this node (a retry, or a restart after `kill -9`) or by a
//! node whose heartbeat in `cluster_nodes` is older than the lease (its
//! holder died mid-run). So a slot fires on one node, an older slot never
//! fires after a newer one, and a node that was down, coming back with an
//! old cursor, finds its slot taken.

use std::time::Duration;

use hearth_cron::{Claim, CronError, DueRun, SlotClaims};

use crate::pg::{Pg, PgError};

const STEPS: &[&str] = &["
CREATE TABLE cron_cursors (
    worker     TEXT NOT NULL,
    cron       TEXT NOT NULL,
    slot_ms    BIGINT NOT NULL,
    node_id    TEXT NOT NULL,
    token      BIGINT NOT NULL,
    done       BOOLEAN NOT NULL DEFAULT false,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (worker, cron)
);
"];

/// One node's claims on cron slots, in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgCronClaims {
    pg: Pg,
    node_id: String,
    lease: Duration,
}

impl PgCronClaims {
    /// Migrates `cron_cursors`. `lease` is how long a silent node keeps the
    /// slots it claimed; liveness is its heartbeat in `cluster_nodes`
    /// (placement's table), so placement must be open.
    pub fn open(pg: Pg, node_id: &str, lease: Duration) -> Result<Self, PgError> {
        pg.migrate("cron", STEPS)?;
        Ok(Self {
            pg,
            node_id: node_id.to_owned(),
            lease,
        })
    }

    async fn claim_async(&self, worker: &str, cron: &str, slot: i64) -> Result<Claim, PgError> {
        let client = self.pg.client().await?;
        let lease_ms = self.lease.as_millis() as f64;
        let won = client
            .query_opt(
                "INSERT INTO cron_cursors (worker, cron, slot_ms, node_id, token)
                 VALUES ($1, $2, $3, $4, 1)
                 ON CONFLICT (worker, cron) DO UPDATE
                     SET slot_ms = excluded.slot_ms, node_id = excluded.node_id,
                         token = cron_cursors.token + 1, done = false, claimed_at = now()
                     WHERE cron_cursors.slot_ms < excluded.slot_ms
                        OR (cron_cursors.slot_ms = excluded.slot_ms
                            AND NOT cron_cursors.done
                            AND (cron_cursors.node_id = excluded.node_id
                                 OR NOT EXISTS (
                                     SELECT 1 FROM cluster_nodes n
                                     WHERE n.node_id = cron_cursors.node_id
                                       AND n.heartbeat_at > now() - $5::float8 * interval '1 millisecond')))
                 RETURNING token",
                &[&worker, &cron, &slot, &self.node_id, &lease_ms],
            )
            .await?;
        if won.is_some() {
            return Ok(Claim::Mine);
        }
        let row = client
            .query_one(
                "SELECT slot_ms, done FROM cron_cursors WHERE worker = $1 AND cron = $2",
                &[&worker, &cron],
            )
            .await?;
        let (held, done): (i64, bool) = (row.get(0), row.get(1));
        Ok(if held == slot && !done {
            Claim::Busy
        } else {
            Claim::Taken
        })
    }
}

fn slot_of(run: &DueRun) -> i64 {
    i64::try_from(run.scheduled_time_ms).unwrap_or(i64::MAX)
}

impl SlotClaims for PgCronClaims {
    fn claim(&self, worker: &str, run: &DueRun) -> hearth_cron::Result<Claim> {
        let (this, worker, cron, slot) = (
            self.clone(),
            worker.to_owned(),
            run.cron.clone(),
            slot_of(run),
        );
        self.pg
            .block(async move { this.claim_async(&worker, &cron, slot).await })
            .map_err(|e| CronError::Claim(e.to_string()))
    }

    fn done(&self, worker: &str, run: &DueRun) -> hearth_cron::Result<()> {
        let (pg, node, worker, cron, slot) = (
            self.pg.clone(),
            self.node_id.clone(),
            worker.to_owned(),
            run.cron.clone(),
            slot_of(run),
        );
        self.pg
            .block(async move {
                pg.client()
                    .await?
                    .execute(
                        "UPDATE cron_cursors SET done = true
                         WHERE worker = $1 AND cron = $2 AND slot_ms = $3 AND node_id = $4",
                        &[&worker, &cron, &slot, &node],
                    )
                    .await?;
                Ok(())
            })
            .map_err(|e| CronError::Claim(e.to_string()))
    }
}
