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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pg::{Pg, PgError};

const STEPS: &[&str] = &[
    "
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
",
    "
ALTER TABLE cluster_nodes ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
",
];

/// The holder of a lease its node handed over: no node has this id (node
/// ids are never empty), so the next node asked for the object takes it,
/// raising the token.
const RELEASED: &str = "";

/// A node's state, as `hearth cluster drain` moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Takes leases and runs objects.
    Active,
    /// Takes no new lease and hands its objects over one by one.
    Draining,
    /// Holds no object and takes none until it restarts.
    Drained,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Drained => "drained",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "draining" => NodeState::Draining,
            "drained" => NodeState::Drained,
            _ => NodeState::Active,
        }
    }
}

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
    /// Set once a drain was asked for: no lease is taken from then on.
    draining: AtomicBool,
    drain_asked: tokio::sync::Notify,
    counters: PlacementCounters,
}

/// What placement did on this node since it started (for metrics).
#[derive(Debug, Default)]
pub struct PlacementCounters {
    /// Leases this node took (new objects, and objects of silent or
    /// draining nodes).
    pub acquired: AtomicU64,
    /// Leases this node found lost (a commit fenced by a newer owner).
    pub lost: AtomicU64,
    /// Leases this node handed over while draining.
    pub released: AtomicU64,
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
    pub state: NodeState,
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
            draining: AtomicBool::new(false),
            drain_asked: tokio::sync::Notify::new(),
            counters: PlacementCounters::default(),
        });
        let p = placement.clone();
        placement.pg.block(async move {
            p.wait_for_namesake().await?;
            // A drained (or draining) node that restarts rejoins as active.
            p.set_state(NodeState::Active).await?;
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

    pub fn counters(&self) -> &PlacementCounters {
        &self.counters
    }

    /// Renews every lease this node holds (they hang on its heartbeat),
    /// and notices a drain asked for by `hearth cluster drain`.
    pub async fn heartbeat(&self) -> Result<(), PgError> {
        let started = Instant::now();
        let client = self.pg.client().await?;
        let row = client
            .query_one(
                "INSERT INTO cluster_nodes (node_id, address) VALUES ($1, $2)
                 ON CONFLICT (node_id) DO UPDATE
                     SET address = excluded.address, heartbeat_at = now()
                 RETURNING state",
                &[&self.node_id, &self.address.to_string()],
            )
            .await?;
        // Counted from before the round trip: the lease may have been
        // renewed as early as that.
        *lock(&self.last_heartbeat) = Some(started);
        let state: String = row.get(0);
        if NodeState::parse(&state) == NodeState::Draining
            && !self.draining.swap(true, Ordering::SeqCst)
        {
            tracing::info!(target: "hearth::cluster", "draining: handing every Durable Object over to other nodes");
            self.drain_asked.notify_one();
        }
        Ok(())
    }

    /// Whether this node is draining (or drained).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Waits until a drain is asked for.
    pub async fn drain_asked(&self) {
        self.drain_asked.notified().await
    }

    /// Records this node's state for `hearth cluster status`.
    pub async fn set_state(&self, state: NodeState) -> Result<(), PgError> {
        let client = self.pg.client().await?;
        client
            .execute(
                "UPDATE cluster_nodes SET state = $2 WHERE node_id = $1",
                &[&self.node_id, &state.as_str()],
            )
            .await?;
        Ok(())
    }

    /// The leases this node holds in PostgreSQL: (class, object id, token).
    pub async fn held(&self) -> Result<Vec<(String, String, i64)>, PgError> {
        let client = self.pg.client().await?;
        let rows = client
            .query(
                "SELECT namespace, object_id, token FROM do_leases
                 WHERE node_id = $1 ORDER BY namespace, object_id",
                &[&self.node_id],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// How many leases this node's cache holds.
    pub fn owned_count(&self) -> usize {
        lock(&self.owned).len()
    }

    /// Whether this node's cache says it holds the object's lease.
    pub fn holds(&self, namespace: &str, object_id: &str) -> bool {
        lock(&self.owned).contains_key(&(namespace.to_owned(), object_id.to_owned()))
    }

    /// Hands a lease over: the next node asked for the object takes it,
    /// with a higher token. Waits for a commit being appended under the
    /// lease (the row is read `FOR SHARE` by appends). `false` when the
    /// lease was not this node's with this token any more.
    pub async fn release(
        &self,
        namespace: &str,
        object_id: &str,
        token: i64,
    ) -> Result<bool, PgError> {
        lock(&self.owned).remove(&(namespace.to_owned(), object_id.to_owned()));
        let client = self.pg.client().await?;
        let n = client
            .execute(
                "UPDATE do_leases SET node_id = $5
                 WHERE namespace = $1 AND object_id = $2 AND node_id = $3 AND token = $4",
                &[&namespace, &object_id, &self.node_id, &token, &RELEASED],
            )
            .await?;
        if n == 1 {
            self.counters.released.fetch_add(1, Ordering::Relaxed);
        }
        Ok(n == 1)
    }

    /// Asks `node_id` to drain (`hearth cluster drain`); the node sees it
    /// on its next heartbeat. The node's state before the call.
    pub async fn ask_drain(pg: &Pg, lease: Duration, node_id: &str) -> Result<NodeState, PgError> {
        pg.migrate_async("placement", STEPS).await?;
        let client = pg.client().await?;
        let lease_ms = lease.as_millis() as f64;
        let row = client
            .query_opt(
                "SELECT state, heartbeat_at > now() - $2::float8 * interval '1 millisecond'
                 FROM cluster_nodes WHERE node_id = $1",
                &[&node_id, &lease_ms],
            )
            .await?;
        let Some(row) = row else {
            return Err(PgError::Query(format!(
                "no node {node_id:?} in the cluster"
            )));
        };
        let state = NodeState::parse(row.get::<_, &str>(0));
        let live: bool = row.get(1);
        if !live {
            return Err(PgError::Query(format!(
                "node {node_id:?} is not live: its objects move to other nodes once its lease lapses"
            )));
        }
        if state == NodeState::Active {
            client
                .execute(
                    "UPDATE cluster_nodes SET state = 'draining' WHERE node_id = $1 AND state = 'active'",
                    &[&node_id],
                )
                .await?;
        }
        Ok(state)
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
        if self.draining() {
            return self.resolve_draining(&client, key, lease_ms as f64).await;
        }
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
            self.counters.acquired.fetch_add(1, Ordering::Relaxed);
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
        remote(node, &address)
    }

    /// [`resolve`](Self::resolve) on a draining node: never takes a lease.
    /// An object this node still holds runs here; one another live node
    /// holds runs there; any other goes to an active node, which takes it.
    async fn resolve_draining(
        &self,
        client: &tokio_postgres::Client,
        key: (String, String),
        lease_ms: f64,
    ) -> Result<Owner, PgError> {
        let row = client
            .query_opt(
                "SELECT l.node_id, l.token, n.address FROM do_leases l
                 JOIN cluster_nodes n ON n.node_id = l.node_id
                 WHERE l.namespace = $1 AND l.object_id = $2
                   AND n.heartbeat_at > now() - $3::float8 * interval '1 millisecond'",
                &[&key.0, &key.1, &lease_ms],
            )
            .await?;
        if let Some(row) = row {
            let node: String = row.get(0);
            if node == self.node_id {
                let token: i64 = row.get(1);
                lock(&self.owned).insert(key, token);
                return Ok(Owner::Local { token });
            }
            let address: String = row.get(2);
            return remote(node, &address);
        }
        let active = client
            .query(
                "SELECT node_id, address FROM cluster_nodes
                 WHERE state = 'active' AND node_id <> $1
                   AND heartbeat_at > now() - $2::float8 * interval '1 millisecond'
                 ORDER BY node_id",
                &[&self.node_id, &lease_ms],
            )
            .await?;
        if active.is_empty() {
            return Err(PgError::Query(format!(
                "node {} is draining and no active node is live to run the object",
                self.node_id
            )));
        }
        // Spread the objects over the active nodes, the same choice for
        // the same object.
        let h = key
            .1
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let row = &active[(h % active.len() as u64) as usize];
        remote(row.get(0), row.get::<_, &str>(1))
    }

    /// Forgets a lease this node found it no longer holds (a fenced commit).
    pub fn forget(&self, namespace: &str, object_id: &str) {
        lock(&self.owned).remove(&(namespace.to_owned(), object_id.to_owned()));
        self.counters.lost.fetch_add(1, Ordering::Relaxed);
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
                        (SELECT count(*) FROM do_leases l WHERE l.node_id = n.node_id),
                        n.state
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
                state: NodeState::parse(r.get::<_, &str>(5)),
            })
            .collect())
    }
}

fn remote(node: String, address: &str) -> Result<Owner, PgError> {
    let address = address
        .parse()
        .map_err(|_| PgError::Query(format!("node {node} has a bad address {address:?}")))?;
    Ok(Owner::Remote { node, address })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
