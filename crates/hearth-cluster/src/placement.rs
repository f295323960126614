//! Durable Object placement: which node runs an object, decided by a lease
//! in PostgreSQL.
//!
//! A node heartbeats its row in `cluster_nodes`; its leases in `do_leases`
//! are live while that heartbeat is younger than `lease_ms` (PostgreSQL's
//! clock, so nodes' clocks never disagree about it). Taking an object
//! whose holder went silent moves the lease and raises its fencing token
//! in one statement, so two nodes can never both be handed the same token.
//! The token travels with the object's commits: storage refuses a commit
//! whose token is lower than one already recorded, so a paused or
//! partitioned old owner cannot write after its lease was taken.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pg::{Pg, PgError};

const STEPS: &[&str] = &["
CREATE TABLE cluster_nodes (
    node_id      TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE do_leases (
    namespace   TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    token       BIGINT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, object_id)
);
CREATE INDEX do_leases_node ON do_leases (node_id);
"];

/// Where an object runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node holds the lease, with this fencing token.
    Local { token: i64 },
    /// Another live node holds it.
    Remote { node: String, address: SocketAddr },
}

/// One node's view of placement.
pub struct Placement {
    pg: Pg,
    node_id: String,
    address: SocketAddr,
    lease: Duration,
    /// Leases this node holds, with their tokens: trusted without a round
    /// trip only while the node's own heartbeat is fresh.
    owned: Mutex<HashMap<(String, String), i64>>,
    last_heartbeat: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("node_id", &self.node_id)
            .field("address", &self.address)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// A row of `hearth cluster status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: String,
    pub address: String,
    pub live: bool,
    pub heartbeat_age_ms: i64,
    pub objects: i64,
}

impl Placement {
    /// Migrates the placement tables and records this node's first heartbeat.
    pub fn open(
        pg: Pg,
        node_id: &str,
        address: SocketAddr,
        lease: Duration,
    ) -> Result<Arc<Self>, PgError> {
        pg.migrate("placement", STEPS)?;
        let placement = Arc::new(Self {
            pg,
            node_id: node_id.to_owned(),
            address,
            lease,
            owned: Mutex::new(HashMap::new()),
            last_heartbeat: Mutex::new(None),
        });
        let p = placement.clone();
        placement.pg.block(async move {
            p.wait_for_namesake().await?;
            p.heartbeat().await
        })?;
        Ok(placement)
    }

    /// A node id whose heartbeat is still fresh is either this node's
    /// previous process (killed moments ago) or a second node misconfigured
    /// with the same id, which would run objects twice. Waits for the old
    /// heartbeat to lapse, up to two leases; past that, refuses.
    async fn wait_for_namesake(&self) -> Result<(), PgError> {
        let lease_ms = self.lease.as_millis() as f64;
        let started = Instant::now();
        loop {
            let client = self.pg.client().await?;
            let fresh = client
                .query_opt(
                    "SELECT address FROM cluster_nodes
                     WHERE node_id = $1 AND heartbeat_at > now() - $2::float8 * interval '1 millisecond'",
                    &[&self.node_id, &lease_ms],
                )
                .await?;
            let Some(row) = fresh else {
                return Ok(());
            };
            if started.elapsed() > self.lease * 2 {
                let address: String = row.get(0);
                return Err(PgError::Query(format!(
                    "node id {:?} is live already (heartbeating from {address}); every node needs a node_id of its own",
                    self.node_id
                )));
            }
            tokio::time::sleep(self.lease / 10).await;
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    pub fn pg(&self) -> &Pg {
        &self.pg
    }

    /// Renews every lease this node holds (they hang on its heartbeat).
    pub async fn heartbeat(&self) -> Result<(), PgError> {
        let started = Instant::now();
        let client = self.pg.client().await?;
        client
            .execute(
                "INSERT INTO cluster_nodes (node_id, address) VALUES ($1, $2)
                 ON CONFLICT (node_id) DO UPDATE
                     SET address = excluded.address, heartbeat_at = now()",
                &[&self.node_id, &self.address.to_string()],
            )
            .await?;
        // Counted from before the round trip: the lease may have been
        // renewed as early as that.
        *lock(&self.last_heartbeat) = Some(started);
        Ok(())
    }

    /// Heartbeats every third of the lease until the runtime stops.
    pub fn spawn_heartbeat(self: &Arc<Self>) {
        let this = self.clone();
        let every = self.lease / 3;
        self.pg.handle().spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = this.heartbeat().await {
                    tracing::warn!(target: "hearth::cluster", "heartbeat failed: {e}");
                }
            }
        });
    }

    /// Whether this node's own leases are certainly still live: its last
    /// heartbeat is younger than half the lease.
    fn fresh(&self) -> bool {
        lock(&self.last_heartbeat).is_some_and(|at| at.elapsed() < self.lease / 2)
    }

    /// Where `object_id` of `namespace` runs, taking its lease when no live
    /// node holds it.
    pub async fn resolve(&self, namespace: &str, object_id: &str) -> Result<Owner, PgError> {
        let key = (namespace.to_owned(), object_id.to_owned());
        if self.fresh() {
            if let Some(&token) = lock(&self.owned).get(&key) {
                return Ok(Owner::Local { token });
            }
        } else {
            // Our heartbeat may have lapsed: what we held may be another's.
            lock(&self.owned).clear();
        }
        let client = self.pg.client().await?;
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let taken = client
            .query_opt(
                "INSERT INTO do_leases (namespace, object_id, node_id, token)
                 VALUES ($1, $2, $3, 1)
                 ON CONFLICT (namespace, object_id) DO UPDATE
                     SET node_id = excluded.node_id,
                         token = do_leases.token + 1,
                         acquired_at = now()
                     WHERE do_leases.node_id <> excluded.node_id
                       AND NOT EXISTS (
                           SELECT 1 FROM cluster_nodes n
                           WHERE n.node_id = do_leases.node_id
                             AND n.heartbeat_at > now() - $4::float8 * interval '1 millisecond')
                 RETURNING token",
                &[&namespace, &object_id, &self.node_id, &(lease_ms as f64)],
            )
            .await?;
        if let Some(row) = taken {
            let token: i64 = row.get(0);
            lock(&self.owned).insert(key, token);
            return Ok(Owner::Local { token });
        }
        let row = client
            .query_one(
                "SELECT l.node_id, l.token, n.address FROM do_leases l
                 JOIN cluster_nodes n ON n.node_id = l.node_id
                 WHERE l.namespace = $1 AND l.object_id = $2",
                &[&namespace, &object_id],
            )
            .await?;
        let node: String = row.get(0);
        let token: i64 = row.get(1);
        if node == self.node_id {
            lock(&self.owned).insert(key, token);
            return Ok(Owner::Local { token });
        }
        let address: String = row.get(2);
        let address = address
            .parse()
            .map_err(|_| PgError::Query(format!("node {node} has a bad address {address:?}")))?;
        Ok(Owner::Remote { node, address })
    }

    /// Forgets a lease this node found it no longer holds (a fenced commit).
    pub fn forget(&self, namespace: &str, object_id: &str) {
        lock(&self.owned).remove(&(namespace.to_owned(), object_id.to_owned()));
    }

    /// Every node with its liveness and the objects it holds.
    pub async fn status(&self) -> Result<Vec<NodeStatus>, PgError> {
        Self::status_of(&self.pg, self.lease).await
    }

    /// [`status`](Self::status) without joining the cluster (for the CLI).
    pub async fn status_of(pg: &Pg, lease: Duration) -> Result<Vec<NodeStatus>, PgError> {
        pg.migrate_async("placement", STEPS).await?;
        let client = pg.client().await?;
        let lease_ms = lease.as_millis() as f64;
        let rows = client
            .query(
                "SELECT n.node_id, n.address,
                        n.heartbeat_at > now() - $1::float8 * interval '1 millisecond',
                        (extract(epoch FROM now() - n.heartbeat_at) * 1000)::BIGINT,
                        (SELECT count(*) FROM do_leases l WHERE l.node_id = n.node_id)
                 FROM cluster_nodes n ORDER BY n.node_id",
                &[&lease_ms],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| NodeStatus {
                node_id: r.get(0),
                address: r.get(1),
                live: r.get(2),
                heartbeat_age_ms: r.get(3),
                objects: r.get(4),
            })
            .collect())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
