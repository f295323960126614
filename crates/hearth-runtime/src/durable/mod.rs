//! Durable Objects in the runtime: the execution model over the
//! [`hearth_do`] contract.
//!
//! - **One live instance per id.** Every event for an object (a stub's
//!   `fetch` or RPC call, an alarm, a hibernated WebSocket's message) is
//!   routed to one isolate, chosen from the id, and the instance lives in
//!   that isolate's heap (`js/durable.js`). A stub in any isolate reaches
//!   it through the pool's job channels.
//! - **Input gates.** Storage calls are synchronous SQLite underneath, so
//!   an object's storage promises settle in the same turn; a new event is
//!   only delivered between turns. `blockConcurrencyWhile` queues events
//!   until its callback settles, and queued events go out one per turn.
//! - **Output gates.** Before a response or RPC result leaves the object,
//!   and before an object's outgoing `fetch`, its storage is flushed
//!   (committed with `synchronous=FULL`): acknowledged means durable.
//! - **Eviction.** An object with no event in flight for
//!   [`DurableObjectOptions::idle_timeout`] is dropped (storage flushed and
//!   closed); the next event rebuilds it. Hibernatable WebSockets stay open.
//! - **Alarms.** [`DurableObjects`] runs a loop on its own thread over the
//!   contract's [`AlarmScheduler`]: due alarms (including those that came
//!   due while the server was down) are delivered as `alarm()` events.

pub(crate) mod adapter;
pub(crate) mod native;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use hearth_core::SharedClock;
use hearth_do::{AlarmScheduler, DoError, DueAlarm, DurableObjectHost, DurableObjectNamespace};
use hearth_do::{DurableObjectId, StorageBackend};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::DispatchError;
use crate::isolate::{CallReply, Job, Responder};
use crate::{WorkerRequest, WorkerResponse};

pub(crate) mod kind;

pub use adapter::DurableObjectAdapter;
pub use native::{
    AlarmInfo, DurableObject, DurableObjectState, Factory, NativeClass, NativeRequest,
    NativeResponse,
};

/// Idle time after which an object is evicted, by default (Cloudflare
/// evicts after roughly ten seconds without events).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Header set on an object's answer that carries a serialized exception
/// instead of a response (internal to the runtime).
pub(crate) const ERROR_HEADER: &str = "x-hearth-durable-error";

/// Tunables of the execution model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableObjectOptions {
    /// An object with no event for this long is evicted.
    pub idle_timeout: Duration,
}

impl Default for DurableObjectOptions {
    fn default() -> Self {
        Self {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// An event for one object, routed to the isolate that hosts it.
pub(crate) struct ObjectJob {
    pub class: String,
    pub id: String,
    pub name: Option<String>,
    pub event: ObjectEvent,
}

pub(crate) enum ObjectEvent {
    Fetch {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Option<Bytes>,
        /// The caller's `request.cf` as JSON text; the object sees the same.
        cf: Option<String>,
    },
    Rpc {
        method: String,
        args: String,
    },
    Alarm(DueAlarm),
}

/// A service binding's RPC call into a worker (see [`crate::services`]).
pub(crate) struct ServiceJob {
    pub entrypoint: Option<String>,
    pub method: String,
    pub args: String,
}

pub(crate) type ObjectReply = oneshot::Receiver<Result<WorkerResponse, DispatchError>>;

/// The Durable Object classes of one worker, their storage, and the routes
/// to the isolates that host them. Shared by every isolate of the pool (set
/// it as [`crate::WorkerConfig::durable_objects`]).
pub struct DurableObjects {
    namespaces: BTreeMap<String, DurableObjectNamespace>,
    scheduler: AlarmScheduler,
    clock: SharedClock,
    options: DurableObjectOptions,
    router: RwLock<Vec<mpsc::UnboundedSender<Job>>>,
    wake: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    alarm_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    native: native::Registry,
    /// Other workers' objects, by worker name, that this worker's
    /// `script_name` bindings reach.
    links: RwLock<BTreeMap<String, Arc<DurableObjects>>>,
    /// Cluster mode: the node, and this worker's name on it.
    cluster: std::sync::OnceLock<(Arc<crate::cluster::ClusterNode>, String)>,
}

impl std::fmt::Debug for DurableObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableObjects")
            .field("classes", &self.namespaces.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DurableObjects {
    /// The classes (name and storage backend) the worker exports. Apply the
    /// config's migrations to `host` before calling this.
    pub fn new(
        host: &DurableObjectHost,
        classes: impl IntoIterator<Item = (String, StorageBackend)>,
        clock: SharedClock,
        options: DurableObjectOptions,
    ) -> Result<Arc<Self>, DoError> {
        let mut namespaces = BTreeMap::new();
        for (class, backend) in classes {
            let ns = host.namespace(&class, backend)?;
            namespaces.insert(class, ns);
        }
        let wake = Arc::new(Notify::new());
        crate::bindings::registry::wake_on_jump(&clock, &wake);
        Ok(Arc::new(Self {
            namespaces,
            scheduler: host.alarm_scheduler(),
            clock,
            options,
            router: RwLock::new(Vec::new()),
            wake,
            stopping: Arc::new(AtomicBool::new(false)),
            alarm_thread: Mutex::new(None),
            native: native::Registry::default(),
            links: RwLock::new(BTreeMap::new()),
            cluster: std::sync::OnceLock::new(),
        }))
    }

    /// Cluster mode: events for these objects go where placement says
    /// they run, and other nodes can send this node theirs.
    pub fn join_cluster(self: &Arc<Self>, node: Arc<crate::cluster::ClusterNode>, worker: &str) {
        node.register(worker, self);
        self.adopt_orphan_alarms(node.clone());
        let _ = self.cluster.set((node, worker.to_owned()));
    }

    /// Each node's alarm index holds the alarms of the objects it runs; the
    /// log in PostgreSQL records every object's alarm with its changes.
    /// Once a lease, this node takes over the alarms whose owner went
    /// silent: it takes the object's lease and indexes the alarm, and the
    /// alarm loop delivers it here.
    fn adopt_orphan_alarms(self: &Arc<Self>, node: Arc<crate::cluster::ClusterNode>) {
        let this = Arc::downgrade(self);
        node.pg().handle().clone().spawn(async move {
            let lease = node.placement().lease();
            loop {
                tokio::time::sleep(lease).await;
                let Some(objects) = this.upgrade() else { break };
                if objects.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let orphans = match node.do_log().orphan_alarms(lease, 100).await {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::warn!(target: "hearth::cluster", "reading orphaned alarms: {e}");
                        continue;
                    }
                };
                for (class, id, at) in orphans {
                    if !objects.namespaces.contains_key(&class) || !node.runs_here(&class, &id).await
                    {
                        continue;
                    }
                    tracing::info!(target: "hearth::cluster", %class, %id, "took over an alarm from a silent node");
                    if let Err(e) = objects.scheduler.adopt(&class, &id, at) {
                        tracing::warn!(target: "hearth::cluster", "indexing an adopted alarm: {e}");
                    }
                    objects.wake.notify_one();
                }
            }
        });
    }

    /// Like [`new`](Self::new), with Rust-native classes: events for these
    /// run the given implementation instead of a JavaScript class.
    pub fn with_native(self: Arc<Self>, classes: Vec<NativeClass>) -> Arc<Self> {
        self.native.add(classes);
        self
    }

    pub fn options(&self) -> &DurableObjectOptions {
        &self.options
    }

    /// The namespace of a class, to make ids from Rust.
    pub fn namespace(&self, class: &str) -> Option<&DurableObjectNamespace> {
        self.namespaces.get(class)
    }

    /// The adapter that exposes `class` as `env[binding]`.
    pub fn adapter(
        self: &Arc<Self>,
        binding: impl Into<String>,
        class: &str,
    ) -> Result<DurableObjectAdapter, String> {
        if !self.namespaces.contains_key(class) {
            return Err(format!(
                "class \"{class}\" is not a Durable Object class of this worker (add it to a migration's new_sqlite_classes or new_classes)"
            ));
        }
        Ok(DurableObjectAdapter::new(
            binding.into(),
            class.to_owned(),
            self.clone(),
        ))
    }

    /// The adapter that exposes `class` of this worker, named `script` in
    /// the process, as `env[binding]` of another worker (a binding with
    /// `script_name`). Ids come from this worker's namespace, so they are
    /// valid on both sides; the caller must [`link`](Self::link) these
    /// objects under `script` so its stubs reach this worker's isolates.
    pub fn adapter_for_script(
        self: &Arc<Self>,
        binding: impl Into<String>,
        class: &str,
        script: &str,
    ) -> Result<DurableObjectAdapter, String> {
        if !self.namespaces.contains_key(class) {
            return Err(format!(
                "class \"{class}\" is not a Durable Object class of the worker \"{script}\" (add it to a migration's new_sqlite_classes or new_classes in that worker's config)"
            ));
        }
        Ok(
            DurableObjectAdapter::new(binding.into(), class.to_owned(), self.clone())
                .with_script(script),
        )
    }

    /// Routes this worker's stubs for `script`'s classes to `target`.
    pub fn link(&self, script: impl Into<String>, target: Arc<DurableObjects>) {
        match self.links.write() {
            Ok(mut l) => l.insert(script.into(), target),
            Err(p) => p.into_inner().insert(script.into(), target),
        };
    }

    pub(crate) fn linked(&self, script: &str) -> Option<Arc<DurableObjects>> {
        match self.links.read() {
            Ok(l) => l.get(script).cloned(),
            Err(p) => p.into_inner().get(script).cloned(),
        }
    }

    /// Sends a request to an object's `fetch()` from Rust, as a stub would.
    pub async fn fetch(
        &self,
        class: &str,
        id: &DurableObjectId,
        mut request: WorkerRequest,
    ) -> Result<WorkerResponse, DispatchError> {
        request.body = request
            .collect_body()
            .await
            .map_err(DispatchError::unreadable_body)?;
        let body =
            if request.body.is_empty() && (request.method == "GET" || request.method == "HEAD") {
                None
            } else {
                Some(request.body)
            };
        let rx = self.send(ObjectJob {
            class: class.to_owned(),
            id: id.to_string(),
            name: id.name().map(str::to_owned),
            event: ObjectEvent::Fetch {
                method: request.method,
                url: request.url,
                headers: request.headers,
                body,
                cf: request.cf,
            },
        })?;
        rx.await.unwrap_or(Err(DispatchError::IsolateRestarted))
    }

    pub(crate) fn idle_ms(&self) -> f64 {
        self.options.idle_timeout.as_millis() as f64
    }

    pub(crate) fn storage_namespace(&self, class: &str) -> Option<&DurableObjectNamespace> {
        self.namespaces.get(class)
    }

    pub(crate) fn scheduler(&self) -> &AlarmScheduler {
        &self.scheduler
    }

    pub(crate) fn native_class(&self, class: &str) -> Option<Arc<dyn native::Factory>> {
        self.native.get(class)
    }

    /// Wakes the alarm loop (an alarm may have been set or moved).
    pub(crate) fn alarms_changed(&self) {
        self.wake.notify_one();
    }

    /// The isolate that hosts an object: the same one for the same id, for
    /// as long as the pool lives.
    fn route(&self, id: &str, isolates: usize) -> usize {
        let head = id.get(..16).unwrap_or(id);
        let n = u64::from_str_radix(head, 16).unwrap_or_else(|_| {
            id.bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        });
        (n % isolates.max(1) as u64) as usize
    }

    pub(crate) fn send(&self, job: ObjectJob) -> Result<ObjectReply, DispatchError> {
        if let Some((node, worker)) = self.cluster.get() {
            return Ok(node.spawn_route(worker.clone(), job));
        }
        self.send_local(job)
    }

    /// A stub's call from an isolate: the answer goes straight onto the
    /// caller's event queue (`reply`). `Some`: in cluster mode the call
    /// took the routed path, whose answer arrives on the returned channel.
    pub(crate) fn send_call(
        &self,
        job: ObjectJob,
        reply: CallReply,
    ) -> Result<Option<ObjectReply>, DispatchError> {
        if let Some((node, worker)) = self.cluster.get() {
            // The routed answer comes back on the channel instead.
            reply.unused();
            return Ok(Some(node.spawn_route(worker.clone(), job)));
        }
        self.deliver_local(job, Responder::Call(reply))?;
        Ok(None)
    }

    /// Delivers an event to the isolate of this node that hosts the object.
    pub(crate) fn send_local(&self, job: ObjectJob) -> Result<ObjectReply, DispatchError> {
        let (tx, rx) = oneshot::channel();
        self.deliver_local(job, tx.into())?;
        Ok(rx)
    }

    fn deliver_local(&self, job: ObjectJob, responder: Responder) -> Result<(), DispatchError> {
        let router = match self.router.read() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        if router.is_empty() {
            return Err(DispatchError::ShuttingDown);
        }
        let i = self.route(&job.id, router.len());
        router[i]
            .send(Job::Object(job, responder))
            .map_err(|_| DispatchError::ShuttingDown)
    }

    /// Called by the pool once its isolates' channels exist: routes events
    /// to them and starts the alarm loop.
    pub(crate) fn attach(self: &Arc<Self>, senders: Vec<mpsc::UnboundedSender<Job>>) {
        match self.router.write() {
            Ok(mut r) => *r = senders,
            Err(p) => *p.into_inner() = senders,
        }
        self.stopping.store(false, Ordering::SeqCst);
        let mut thread = match self.alarm_thread.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        // A worker that only binds other workers' classes has no alarms of
        // its own to deliver.
        if thread.is_none() && !self.namespaces.is_empty() {
            let this = self.clone();
            *thread = std::thread::Builder::new()
                .name("hearth-do-alarms".into())
                .spawn(move || this.alarm_loop())
                .map_err(|e| tracing::error!(target: "hearth::durable", "cannot start the alarm loop: {e}"))
                .ok();
        }
    }

    /// Stops the alarm loop and forgets the isolates (the pool is shutting
    /// down).
    pub(crate) fn detach(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        match self.router.write() {
            Ok(mut r) => r.clear(),
            Err(p) => p.into_inner().clear(),
        }
        let thread = match self.alarm_thread.lock() {
            Ok(mut t) => t.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = thread
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }

    fn alarm_loop(self: Arc<Self>) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(target: "hearth::durable", "cannot start the alarm loop: {e}");
                return;
            }
        };
        rt.block_on(async {
            while !self.stopping.load(Ordering::SeqCst) {
                match self.scheduler.due() {
                    Ok(due) => {
                        for alarm in due {
                            let this = self.clone();
                            tokio::spawn(async move { this.deliver_alarm(alarm).await });
                        }
                    }
                    Err(e) => {
                        tracing::error!(target: "hearth::durable", "reading due alarms: {e}")
                    }
                }
                let wait = match self.scheduler.next_wake() {
                    Ok(Some(at)) => Some(Duration::from_millis(
                        at.saturating_sub(self.clock.now_ms()),
                    )),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::error!(target: "hearth::durable", "reading the alarm index: {e}");
                        Some(Duration::from_secs(1))
                    }
                };
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
                }
            }
        });
    }

    async fn deliver_alarm(&self, alarm: DueAlarm) {
        if !self.namespaces.contains_key(&alarm.namespace) {
            // Left leased: a class the worker does not export cannot run it.
            tracing::warn!(target: "hearth::durable", class = %alarm.namespace, "alarm for a class this worker does not export; not delivered");
            return;
        }
        if let Some((node, _)) = self.cluster.get()
            && !node.runs_here(&alarm.namespace, &alarm.id).await
        {
            // Every node sees the shared alarm index; the node that runs
            // the object delivers it. Looked at again after two leases, in
            // case that node has died by then.
            tokio::time::sleep(node.placement().lease() * 2).await;
            self.scheduler.release(&alarm);
            self.wake.notify_one();
            return;
        }
        let job = ObjectJob {
            class: alarm.namespace.clone(),
            id: alarm.id.clone(),
            name: None,
            event: ObjectEvent::Alarm(alarm.clone()),
        };
        let outcome = match self.send(job) {
            Ok(rx) => rx.await.unwrap_or(Err(DispatchError::IsolateRestarted)),
            Err(e) => Err(e),
        };
        match outcome {
            // The hosting isolate completed, retried or released it.
            Ok(r) if r.status == 200 => {}
            Ok(_) | Err(_) => {
                if self.stopping.load(Ordering::SeqCst) {
                    self.scheduler.release(&alarm);
                } else if let Err(e) = self.scheduler.failed(&alarm) {
                    tracing::error!(target: "hearth::durable", "recording a failed alarm: {e}");
                }
            }
        }
        self.wake.notify_one();
    }
}

impl Drop for DurableObjects {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}
