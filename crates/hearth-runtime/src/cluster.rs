//! Cluster mode in the runtime (`hearth serve --cluster cluster.toml`):
//! the node's shared backends and the path of a Durable Object event
//! across nodes.
//!
//! An event for an object (a stub's `fetch` or RPC call) first asks
//! placement who runs the object. This node: the object's lease token is
//! granted to its storage (which checks it on every commit) and the event
//! goes to the local isolate as in single-node mode. Another live node: the
//! event is sent over the internal channel, signed with the node secret,
//! and the owner runs it, after checking that it still holds the lease.
//! A call that certainly did not run (the owner refused it as not its own,
//! or could not be connected to) is retried against placement until the
//! dead owner's lease lapses and another node takes the object; a call
//! that may have run is never retried, so an acknowledged write is never
//! applied twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hearth_cluster::channel;
use hearth_cluster::{
    ClusterConfig, Nats, NatsError, NodeState, Owner, Pg, PgChangeLog, PgCronClaims, PgError,
    Placement, QueuesBackend, RateLimitBackend,
};
use hearth_core::SharedClock;
use hearth_do::FenceBook;
use hearth_r2::S3Store;
use hearth_ratelimit::redis::RedisPool;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// Placement's and the log's key space for D1 databases.
pub use crate::bindings::d1::cluster::D1_NAMESPACE;
use crate::bindings::d1::cluster::{ClusterD1, D1_PATH, D1Call};
use crate::durable::{DurableObjects, ObjectEvent, ObjectJob};
use crate::{DispatchError, WorkerResponse};

/// The largest body a forwarded call or its answer may carry.
pub const MAX_FORWARD_BYTES: usize = 32 * 1024 * 1024;
/// How long a forwarded call may take, the object's own work included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(120);
/// The internal path of Durable Object events (`/do/<worker>`).
pub const DO_PATH: &str = "/do/";
/// How long a drain waits for an object's calls in flight before it
/// hands the object over anyway (a later commit of theirs is fenced).
const HANDOVER_WAIT: Duration = Duration::from_secs(30);

/// What this node did since it started, for `/__hearth/metrics`.
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Durable Object calls run here (local and forwarded in).
    pub object_calls: AtomicU64,
    /// Calls another node sent here.
    pub forwarded_in: AtomicU64,
    /// Calls sent to the node that runs their object.
    pub forwarded_out: AtomicU64,
    /// Calls answered with an error because placement or PostgreSQL failed.
    pub postgres_errors: AtomicU64,
    /// Forwarded calls that could not reach their node.
    pub forward_errors: AtomicU64,
}

/// Calls running on each object of this node, and the object being handed
/// over by a drain: its new calls wait until it is gone, then follow it.
#[derive(Default)]
struct Gates {
    running: HashMap<(String, String), usize>,
    handing_over: Option<(String, String)>,
}

/// A call running on a local object; counted until dropped.
struct InFlight<'a> {
    node: &'a ClusterNode,
    key: (String, String),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut gates = lock(&self.node.gates);
        if let Some(n) = gates.running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                gates.running.remove(&self.key);
            }
        }
        drop(gates);
        self.node.gate_changed.notify_waiters();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Postgres(#[from] PgError),
    #[error("{0}")]
    Redis(#[from] hearth_ratelimit::RateLimitError),
    #[error("{0}")]
    Nats(#[from] NatsError),
    #[error("{}: [postgres] is required in cluster mode", .0)]
    NoPostgres(String),
    #[error("the S3 store: {0}")]
    S3(#[from] hearth_r2::R2Error),
}

/// One node of the cluster: its config and its connections to the shared
/// backends. Shared by every worker the node serves.
pub struct ClusterNode {
    config: ClusterConfig,
    pg: Pg,
    placement: Arc<Placement>,
    cron_claims: Arc<PgCronClaims>,
    redis: Option<RedisPool>,
    nats: Option<Nats>,
    fences: Arc<FenceBook>,
    do_log: Arc<PgChangeLog>,
    do_secret: [u8; 32],
    /// The cluster's S3-compatible store (`[s3]`): R2 objects, Durable
    /// Object snapshots.
    s3: Option<Arc<S3Store>>,
    client: Client<HttpConnector, Full<Bytes>>,
    clock: SharedClock,
    objects: RwLock<BTreeMap<String, Weak<DurableObjects>>>,
    gates: Mutex<Gates>,
    gate_changed: tokio::sync::Notify,
    counters: NodeCounters,
    /// D1 databases by id, reachable from other nodes.
    d1: RwLock<BTreeMap<String, Weak<ClusterD1>>>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("node_id", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

/// The client of the cluster's store; its bucket must answer before the
/// node serves anything.
fn connect_s3(config: &hearth_cluster::S3Config) -> Result<Arc<S3Store>, hearth_r2::R2Error> {
    let store = S3Store::connect(&store_config(config))?;
    store.check()?;
    Ok(store)
}

/// The store client's settings from the cluster file's `[s3]`.
pub fn store_config(c: &hearth_cluster::S3Config) -> hearth_r2::S3Config {
    hearth_r2::S3Config {
        endpoint: c.endpoint.clone(),
        bucket: c.bucket.clone(),
        region: c.region.clone(),
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        prefix: c.prefix.clone(),
    }
}

impl ClusterNode {
    /// The cluster's S3-compatible store, when the cluster file has `[s3]`.
    pub fn s3(&self) -> Option<&Arc<S3Store>> {
        self.s3.as_ref()
    }

    /// Connects to the backends, migrates placement, records the first
    /// heartbeat and keeps heartbeating.
    pub fn start(config: ClusterConfig, clock: SharedClock) -> Result<Arc<Self>, ClusterError> {
        let Some(pg_config) = &config.postgres else {
            return Err(ClusterError::NoPostgres(config.path.display().to_string()));
        };
        let pg = Pg::connect(&pg_config.url, &pg_config.schema)?;
        // No lock a node takes in a transaction outlives its lease when
        // the node is cut off mid-transaction.
        pg.limit_idle_transactions(Duration::from_millis(config.durable_objects.lease_ms));
        let placement = Placement::open(
            pg.clone(),
            &config.node_id,
            config.advertise,
            Duration::from_millis(config.durable_objects.lease_ms),
        )?;
        placement.spawn_heartbeat();
        let cron_claims = Arc::new(PgCronClaims::open(
            pg.clone(),
            &config.node_id,
            placement.lease(),
        )?);
        let s3 = config.s3.as_ref().map(connect_s3).transpose()?;
        let snapshot_after = config.durable_objects.snapshot_after_bytes;
        let do_log = match &s3 {
            Some(store) => PgChangeLog::open_with_store(pg.clone(), snapshot_after, store.clone())?,
            None => PgChangeLog::open(pg.clone(), snapshot_after)?,
        };
        let do_secret = do_log.id_secret()?;
        let redis = match (&config.redis, config.backends.ratelimits) {
            (Some(r), RateLimitBackend::Redis) => Some(RedisPool::connect(&r.url, &r.prefix)?),
            _ => None,
        };
        let nats = match (&config.nats, config.backends.queues) {
            (Some(n), QueuesBackend::JetStream) => Some(Nats::connect(&n.url, &n.prefix)?),
            _ => None,
        };
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new()).build(http);
        let node = Arc::new(Self {
            fences: Arc::new(FenceBook::new(config.node_id.clone())),
            do_log,
            do_secret,
            s3,
            config,
            pg,
            placement,
            cron_claims,
            redis,
            nats,
            client,
            clock,
            objects: RwLock::new(BTreeMap::new()),
            gates: Mutex::new(Gates::default()),
            gate_changed: tokio::sync::Notify::new(),
            counters: NodeCounters::default(),
            d1: RwLock::new(BTreeMap::new()),
        });
        node.spawn_drainer();
        Ok(node)
    }

    pub fn counters(&self) -> &NodeCounters {
        &self.counters
    }

    /// What this node shipped to the Durable Object log.
    pub fn log_counters(&self) -> &hearth_cluster::LogCounters {
        self.do_log.counters()
    }

    /// Waits for `hearth cluster drain` to name this node, then hands its
    /// objects over.
    fn spawn_drainer(self: &Arc<Self>) {
        let this = Arc::downgrade(self);
        let placement = self.placement.clone();
        self.pg.handle().spawn(async move {
            placement.drain_asked().await;
            if let Some(node) = this.upgrade() {
                node.drain().await;
            }
        });
    }

    /// Hands every object this node holds over, one at a time, until it
    /// holds none (a lease taken while the drain began is found by the
    /// next pass), then records the node as drained.
    async fn drain(&self) {
        loop {
            let held = match self.placement.held().await {
                Ok(h) => h,
                Err(e) => {
                    self.counters
                        .postgres_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "hearth::cluster", "drain: listing leases: {e}");
                    tokio::time::sleep(self.placement.lease() / 3).await;
                    continue;
                }
            };
            if held.is_empty() {
                break;
            }
            for (class, id, token) in held {
                self.hand_over(class, id, token).await;
            }
        }
        loop {
            match self.placement.set_state(NodeState::Drained).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(target: "hearth::cluster", "drain: recording the state: {e}");
                    tokio::time::sleep(self.placement.lease() / 3).await;
                }
            }
        }
        tracing::info!(target: "hearth::cluster", "drained: this node holds no Durable Object");
    }

    /// Hands one object over: new calls for it wait, the calls running on
    /// it finish (their commits are shipped before they answer), then the
    /// lease is released and the waiting calls follow the object to the
    /// node that takes it.
    async fn hand_over(&self, class: String, id: String, token: i64) {
        let key = (class, id);
        lock(&self.gates).handing_over = Some(key.clone());
        let deadline = tokio::time::Instant::now() + HANDOVER_WAIT;
        loop {
            let changed = self.gate_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !lock(&self.gates).running.contains_key(&key) {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::warn!(target: "hearth::cluster", class = %key.0, id = %key.1, "drain: calls still running after {} s; handing the object over anyway", HANDOVER_WAIT.as_secs());
                break;
            }
        }
        loop {
            match self.placement.release(&key.0, &key.1, token).await {
                Ok(_) => break,
                Err(e) => {
                    self.counters
                        .postgres_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "hearth::cluster", "drain: releasing a lease: {e}");
                    tokio::time::sleep(self.placement.lease() / 3).await;
                }
            }
        }
        lock(&self.gates).handing_over = None;
        self.gate_changed.notify_waiters();
    }

    /// Counts a call on a local object; waits while the object is being
    /// handed over. `None` when this node no longer holds it.
    async fn enter(&self, class: &str, id: &str) -> Option<InFlight<'_>> {
        let key = (class.to_owned(), id.to_owned());
        loop {
            let changed = self.gate_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut gates = lock(&self.gates);
                if gates.handing_over.as_ref() != Some(&key) {
                    if !self.placement.holds(class, id) {
                        return None;
                    }
                    *gates.running.entry(key.clone()).or_default() += 1;
                    return Some(InFlight { node: self, key });
                }
            }
            changed.await;
        }
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    pub fn pg(&self) -> &Pg {
        &self.pg
    }

    pub fn placement(&self) -> &Arc<Placement> {
        &self.placement
    }

    /// Which node fires each cron slot.
    pub fn cron_claims(&self) -> Arc<PgCronClaims> {
        self.cron_claims.clone()
    }

    /// The Redis pool, when rate limiting counts there.
    pub fn redis(&self) -> Option<&RedisPool> {
        self.redis.as_ref()
    }

    /// The NATS connection, when Queues live in JetStream.
    pub fn nats(&self) -> Option<&Nats> {
        self.nats.as_ref()
    }

    pub(crate) fn fences(&self) -> Arc<FenceBook> {
        self.fences.clone()
    }

    /// Where Durable Object commits are made durable before they are
    /// acknowledged.
    pub(crate) fn do_log(&self) -> Arc<PgChangeLog> {
        self.do_log.clone()
    }

    /// The cluster's Durable Object id secret: the same ids on every node.
    pub(crate) fn do_secret(&self) -> [u8; 32] {
        self.do_secret
    }

    /// Makes `worker`'s objects reachable from other nodes.
    pub(crate) fn register(&self, worker: &str, objects: &Arc<DurableObjects>) {
        let mut all = self.objects.write().unwrap_or_else(|p| p.into_inner());
        all.insert(worker.to_owned(), Arc::downgrade(objects));
    }

    /// Makes a D1 database reachable from other nodes.
    pub(crate) fn register_d1(&self, id: &str, d1: &Arc<ClusterD1>) {
        let mut all = self.d1.write().unwrap_or_else(|p| p.into_inner());
        all.insert(id.to_owned(), Arc::downgrade(d1));
    }

    fn d1_of(&self, id: &str) -> Option<Arc<ClusterD1>> {
        let all = self.d1.read().unwrap_or_else(|p| p.into_inner());
        all.get(id).and_then(Weak::upgrade)
    }

    fn objects_of(&self, worker: &str) -> Option<Arc<DurableObjects>> {
        let all = self.objects.read().unwrap_or_else(|p| p.into_inner());
        all.get(worker).and_then(Weak::upgrade)
    }

    /// Runs `job` where its object lives; the future runs on the node's
    /// own runtime.
    pub(crate) fn spawn_route(
        self: &Arc<Self>,
        worker: String,
        job: ObjectJob,
    ) -> tokio::sync::oneshot::Receiver<Result<WorkerResponse, DispatchError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let this = self.clone();
        self.pg.handle().spawn(async move {
            let _ = tx.send(this.route(&worker, job).await);
        });
        rx
    }

    async fn route(&self, worker: &str, job: ObjectJob) -> Result<WorkerResponse, DispatchError> {
        let wire = WireJob::of(&job);
        let mut job = Some(job);
        let lease = self.placement.lease();
        let deadline = Instant::now() + lease * 3;
        loop {
            let (class, id) = match (&job, &wire) {
                (Some(j), _) => (j.class.clone(), j.id.clone()),
                (None, Some(w)) => (w.class.clone(), w.id.clone()),
                (None, None) => return Err(DispatchError::IsolateRestarted),
            };
            match self.owner(&class, &id).await? {
                Owner::Local { token } => {
                    let Some(_running) = self.enter(&class, &id).await else {
                        // Handed over meanwhile: ask placement again.
                        continue;
                    };
                    self.fences.grant(&class, &id, token);
                    self.counters.object_calls.fetch_add(1, Ordering::Relaxed);
                    let objects = self.objects_of(worker).ok_or(DispatchError::ShuttingDown)?;
                    let job = match job.take() {
                        Some(j) => j,
                        None => match &wire {
                            Some(w) => w.clone().into_job().map_err(exception)?,
                            None => return Err(DispatchError::IsolateRestarted),
                        },
                    };
                    let rx = objects.send_local(job)?;
                    return rx.await.unwrap_or(Err(DispatchError::IsolateRestarted));
                }
                Owner::Remote { node, address } => {
                    let Some(wire) = &wire else {
                        // Alarms run where the object is; this one is retried
                        // by the alarm index until its owner's loop takes it.
                        return Err(exception(format!("the alarm's object runs on node {node}")));
                    };
                    self.counters.forwarded_out.fetch_add(1, Ordering::Relaxed);
                    match self.forward(address, worker, wire).await {
                        Forwarded::Reply(r) => return r,
                        Forwarded::NotRun(why) if Instant::now() < deadline => {
                            tracing::debug!(target: "hearth::cluster", %node, "not run: {why}; asking placement again");
                            tokio::time::sleep(lease / 5).await;
                        }
                        Forwarded::NotRun(why) => {
                            self.counters.forward_errors.fetch_add(1, Ordering::Relaxed);
                            return Err(exception(format!(
                                "Durable Object unavailable: node {node} ({address}) runs it and cannot be reached: {why}"
                            )));
                        }
                        Forwarded::Lost(why) => {
                            self.counters.forward_errors.fetch_add(1, Ordering::Relaxed);
                            return Err(exception(format!(
                                "Durable Object call to node {node} ({address}) failed after it was sent, so it may or may not have run: {why}"
                            )));
                        }
                    }
                }
            }
        }
    }

    /// Whether this node runs the object (taking its lease when no live
    /// node holds it); `false` when placement cannot tell.
    pub(crate) async fn runs_here(&self, class: &str, id: &str) -> bool {
        match self.owner(class, id).await {
            Ok(Owner::Local { token }) => {
                self.fences.grant(class, id, token);
                true
            }
            Ok(Owner::Remote { .. }) => false,
            Err(e) => {
                tracing::warn!(target: "hearth::cluster", "alarm placement: {e}");
                false
            }
        }
    }

    pub(crate) async fn owner(&self, class: &str, id: &str) -> Result<Owner, DispatchError> {
        if self.fences.take_revoked(class, id) {
            self.placement.forget(class, id);
        }
        self.placement.resolve(class, id).await.map_err(|e| {
            self.counters
                .postgres_errors
                .fetch_add(1, Ordering::Relaxed);
            exception(format!("Durable Object placement failed: {e}"))
        })
    }

    async fn forward(&self, to: std::net::SocketAddr, worker: &str, job: &WireJob) -> Forwarded {
        let body = match serde_json::to_vec(job) {
            Ok(b) => Bytes::from(b),
            Err(e) => return Forwarded::Reply(Err(exception(e.to_string()))),
        };
        match self.post(to, &format!("{DO_PATH}{worker}"), body).await {
            Sent::Answered(bytes) => match serde_json::from_slice::<WireReply>(&bytes) {
                Ok(reply) => Forwarded::Reply(reply.into_result()),
                Err(e) => Forwarded::Lost(format!("unreadable answer: {e}")),
            },
            Sent::Refused(message) => Forwarded::Reply(Err(exception(message))),
            Sent::NotRun(why) => Forwarded::NotRun(why),
            Sent::Lost(why) => Forwarded::Lost(why),
        }
    }

    /// Sends a signed call to a peer's internal listener.
    pub(crate) async fn post(&self, to: std::net::SocketAddr, path: &str, body: Bytes) -> Sent {
        let mut request = http::Request::post(format!("http://{to}{path}"));
        for (name, value) in channel::sign(
            &self.config.secret,
            &self.config.node_id,
            self.clock.now_ms(),
            path,
            &body,
        ) {
            request = request.header(name, value);
        }
        let request = match request.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => return Sent::Refused(e.to_string()),
        };
        let sent = tokio::time::timeout(FORWARD_TIMEOUT, async {
            let response = match self.client.request(request).await {
                Ok(r) => r,
                // Refused or unreachable: the owner never saw the call.
                Err(e) if e.is_connect() => return Sent::NotRun(e.to_string()),
                Err(e) => return Sent::Lost(e.to_string()),
            };
            let status = response.status().as_u16();
            let limited = http_body_util::Limited::new(response.into_body(), MAX_FORWARD_BYTES);
            let bytes = match limited.collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return Sent::Lost(e.to_string()),
            };
            match status {
                200 => Sent::Answered(bytes),
                // The owner checked its lease before running anything.
                409 => Sent::NotRun(String::from_utf8_lossy(&bytes).into_owned()),
                _ => Sent::Refused(format!(
                    "node refused the call ({status}): {}",
                    String::from_utf8_lossy(&bytes)
                )),
            }
        })
        .await;
        sent.unwrap_or_else(|_| {
            Sent::Lost(format!("no answer within {} s", FORWARD_TIMEOUT.as_secs()))
        })
    }

    /// Runs `fut` on the node's runtime and waits for it, from a thread
    /// outside it (an isolate's); `None` past the forwarding timeout.
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.pg.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(FORWARD_TIMEOUT + Duration::from_secs(5))
            .ok()
    }

    /// Answers a call on the internal listener: `(status, body)`.
    pub async fn handle_internal(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> (u16, Bytes) {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        if path == "/health" {
            return (200, Bytes::from_static(b"ok\n"));
        }
        if !path.starts_with(DO_PATH) && !path.starts_with(D1_PATH) {
            return (404, Bytes::from_static(b"no such internal endpoint\n"));
        }
        let from = match channel::verify(
            &self.config.secret,
            header,
            self.clock.now_ms(),
            path,
            &body,
        ) {
            Ok(node) => node.to_owned(),
            Err(e) => return (401, Bytes::from(format!("refused: {e}\n"))),
        };
        if let Some(id) = path.strip_prefix(D1_PATH) {
            return self.handle_d1(&from, id, &body).await;
        }
        let Some(worker) = path.strip_prefix(DO_PATH) else {
            return (404, Bytes::from_static(b"no such internal endpoint\n"));
        };
        let job: WireJob = match serde_json::from_slice(&body) {
            Ok(j) => j,
            Err(e) => return (400, Bytes::from(format!("bad call: {e}\n"))),
        };
        let Some(objects) = self.objects_of(worker) else {
            return (
                409,
                Bytes::from(format!("worker {worker:?} is not served here yet\n")),
            );
        };
        let token = match self.owner(&job.class, &job.id).await {
            Ok(Owner::Local { token }) => token,
            Ok(Owner::Remote { node, .. }) => {
                return (
                    409,
                    Bytes::from(format!("the object runs on node {node}, not here\n")),
                );
            }
            Err(e) => return (503, Bytes::from(format!("{e}\n"))),
        };
        let Some(_running) = self.enter(&job.class, &job.id).await else {
            return (
                409,
                Bytes::from_static(b"the object was handed over to another node\n"),
            );
        };
        self.fences.grant(&job.class, &job.id, token);
        self.counters.object_calls.fetch_add(1, Ordering::Relaxed);
        self.counters.forwarded_in.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "hearth::cluster", %from, class = %job.class, "running a forwarded call");
        let result = match job.into_job() {
            Ok(job) => match objects.send_local(job) {
                Ok(rx) => rx.await.unwrap_or(Err(DispatchError::IsolateRestarted)),
                Err(e) => Err(e),
            },
            Err(e) => Err(exception(e)),
        };
        let reply = WireReply::of(result).await;
        match serde_json::to_vec(&reply) {
            Ok(b) => (200, Bytes::from(b)),
            Err(e) => (500, Bytes::from(format!("{e}\n"))),
        }
    }
}

impl ClusterNode {
    /// A D1 call from a peer: run on this node's copy if it still holds
    /// the database's lease, else 409 (not run, the peer asks again).
    async fn handle_d1(&self, from: &str, id: &str, body: &[u8]) -> (u16, Bytes) {
        let call: D1Call = match serde_json::from_slice(body) {
            Ok(c) => c,
            Err(e) => return (400, Bytes::from(format!("bad call: {e}\n"))),
        };
        let Some(d1) = self.d1_of(id) else {
            return (
                409,
                Bytes::from(format!("D1 database {id:?} is not served here\n")),
            );
        };
        let token = match self.owner(D1_NAMESPACE, id).await {
            Ok(Owner::Local { token }) => token,
            Ok(Owner::Remote { node, .. }) => {
                return (
                    409,
                    Bytes::from(format!("the database runs on node {node}, not here\n")),
                );
            }
            Err(e) => return (503, Bytes::from(format!("{e}\n"))),
        };
        tracing::debug!(target: "hearth::cluster", %from, database = %id, "running a forwarded D1 call");
        // SQLite and the log's round trips block: off the async threads.
        let answer = tokio::task::spawn_blocking(move || d1.run_here(token, &call)).await;
        match answer
            .map_err(|e| e.to_string())
            .and_then(|a| serde_json::to_vec(&a).map_err(|e| e.to_string()))
        {
            Ok(b) => (200, Bytes::from(b)),
            Err(e) => (500, Bytes::from(format!("{e}\n"))),
        }
    }
}

fn exception(message: impl Into<String>) -> DispatchError {
    let message = message.into();
    DispatchError::Exception {
        stack: format!("Error: {message}"),
        message,
        pass_through: false,
    }
}

/// What became of a call sent to a peer.
pub(crate) enum Sent {
    /// 200, with the answer's body.
    Answered(Bytes),
    /// The peer refused it before running it for a reason retrying does
    /// not cure (a bad signature, a bad call).
    Refused(String),
    /// Certainly not run: safe to send again.
    NotRun(String),
    /// May have run: never sent again.
    Lost(String),
}

enum Forwarded {
    Reply(Result<WorkerResponse, DispatchError>),
    /// Certainly not run: safe to send again.
    NotRun(String),
    /// May have run: never sent again.
    Lost(String),
}

/// A Durable Object event on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireJob {
    class: String,
    id: String,
    name: Option<String>,
    event: WireEvent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireEvent {
    Fetch {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Option<String>,
        cf: Option<String>,
    },
    Rpc {
        method: String,
        args: String,
    },
}

impl WireJob {
    /// `None` for alarms, which are never forwarded.
    fn of(job: &ObjectJob) -> Option<Self> {
        let event = match &job.event {
            ObjectEvent::Fetch {
                method,
                url,
                headers,
                body,
                cf,
            } => WireEvent::Fetch {
                method: method.clone(),
                url: url.clone(),
                headers: headers.clone(),
                body: body.as_ref().map(|b| BASE64.encode(b)),
                cf: cf.clone(),
            },
            ObjectEvent::Rpc { method, args } => WireEvent::Rpc {
                method: method.clone(),
                args: args.clone(),
            },
            ObjectEvent::Alarm(_) => return None,
        };
        Some(Self {
            class: job.class.clone(),
            id: job.id.clone(),
            name: job.name.clone(),
            event,
        })
    }

    fn into_job(self) -> Result<ObjectJob, String> {
        let event = match self.event {
            WireEvent::Fetch {
                method,
                url,
                headers,
                body,
                cf,
            } => ObjectEvent::Fetch {
                method,
                url,
                headers,
                body: match body {
                    Some(b) => Some(Bytes::from(
                        BASE64.decode(b).map_err(|e| format!("bad body: {e}"))?,
                    )),
                    None => None,
                },
                cf,
            },
            WireEvent::Rpc { method, args } => ObjectEvent::Rpc { method, args },
        };
        Ok(ObjectJob {
            class: self.class,
            id: self.id,
            name: self.name,
            event,
        })
    }
}

/// An object's answer on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireReply {
    Response {
        status: u16,
        status_text: String,
        headers: Vec<(String, String)>,
        body: String,
    },
    Error {
        message: String,
        stack: String,
    },
}

impl WireReply {
    async fn of(result: Result<WorkerResponse, DispatchError>) -> Self {
        let mut resp = match result {
            Ok(r) => r,
            Err(DispatchError::Exception { message, stack, .. }) => {
                return WireReply::Error { message, stack };
            }
            Err(e) => {
                return WireReply::Error {
                    message: e.to_string(),
                    stack: e.to_string(),
                };
            }
        };
        if resp.web_socket.is_some() {
            return WireReply::Error {
                message: "a WebSocket to a Durable Object on another node is not supported yet"
                    .into(),
                stack: String::new(),
            };
        }
        let mut body = std::mem::take(&mut resp.body).to_vec();
        if let Some(mut rx) = resp.stream.take() {
            while let Some(chunk) = rx.recv().await {
                match chunk {
                    Ok(c) if body.len() + c.len() <= MAX_FORWARD_BYTES => {
                        body.extend_from_slice(&c)
                    }
                    Ok(_) => {
                        return WireReply::Error {
                            message: format!(
                                "the object's response body passed {MAX_FORWARD_BYTES} bytes, the most forwarded between nodes"
                            ),
                            stack: String::new(),
                        };
                    }
                    Err(e) => {
                        return WireReply::Error {
                            message: e.clone(),
                            stack: e,
                        };
                    }
                }
            }
        }
        WireReply::Response {
            status: resp.status,
            status_text: resp.status_text,
            headers: resp.headers,
            body: BASE64.encode(body),
        }
    }

    fn into_result(self) -> Result<WorkerResponse, DispatchError> {
        match self {
            WireReply::Response {
                status,
                status_text,
                headers,
                body,
            } => Ok(WorkerResponse {
                status,
                status_text,
                headers,
                body: Bytes::from(BASE64.decode(body).map_err(|e| exception(e.to_string()))?),
                stream: None,
                web_socket: None,
            }),
            WireReply::Error { message, stack } => Err(DispatchError::Exception {
                message,
                stack,
                pass_through: false,
            }),
        }
    }
}
