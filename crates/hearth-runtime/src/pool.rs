//! The isolate pool: N isolate threads behind per-isolate channels. A request
//! goes to the isolate with the fewest requests in flight.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::config::WorkerConfig;
use crate::error::{DispatchError, StartError};
use crate::isolate::{self, Job};
use crate::{WorkerRequest, WorkerResponse};

/// Native stack of an isolate thread; well above the JS stack limit so
/// QuickJS reports "Maximum call stack size exceeded" before the OS faults.
const MIN_THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Counters of one isolate, readable from any thread.
#[derive(Debug, Default)]
pub struct IsolateStats {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicUsize,
    /// Requests sent to this isolate that it has not started yet.
    pub queued: AtomicUsize,
    pub cpu_micros: AtomicU64,
    pub cpu_limit_hits: AtomicU64,
    pub restarts: AtomicU64,
    /// Heap size measured when the isolate was (re)built.
    pub memory_bytes: AtomicU64,
}

/// A snapshot of one isolate's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolateSnapshot {
    pub index: usize,
    pub requests: u64,
    pub errors: u64,
    pub in_flight: usize,
    pub queued: usize,
    pub cpu_micros: u64,
    pub cpu_limit_hits: u64,
    pub restarts: u64,
    pub memory_bytes: u64,
}

/// A worker's isolates. Cheap to clone; all clones share the same threads.
#[derive(Clone)]
pub struct IsolatePool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    config: Arc<WorkerConfig>,
    senders: Vec<mpsc::UnboundedSender<Job>>,
    stats: Vec<Arc<IsolateStats>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next: AtomicUsize,
}

struct InFlight<'a>(&'a IsolateStats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl IsolatePool {
    /// Starts the worker's isolates and waits until every one has loaded the
    /// main module. Blocks the calling thread while modules evaluate.
    pub fn start(config: WorkerConfig) -> Result<IsolatePool, StartError> {
        let count = config.isolate_count();
        let config = Arc::new(config);
        let stack = MIN_THREAD_STACK_BYTES.max(config.limits.max_stack_bytes * 4);
        let mut senders = Vec::with_capacity(count);
        let mut stats = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        let mut readies = Vec::with_capacity(count);
        for index in 0..count {
            let (tx, rx) = mpsc::unbounded_channel();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let s = Arc::new(IsolateStats::default());
            let cfg = config.clone();
            let thread_stats = s.clone();
            let handle = std::thread::Builder::new()
                .name(format!("hearth-isolate-{index}"))
                .stack_size(stack)
                .spawn(move || isolate::run_thread(cfg, thread_stats, rx, ready_tx))
                .map_err(StartError::Thread)?;
            senders.push(tx);
            stats.push(s);
            threads.push(handle);
            readies.push(ready_rx);
        }
        if let Some(objects) = &config.durable_objects {
            objects.attach(senders.clone());
        }
        let pool = IsolatePool {
            inner: Arc::new(PoolInner {
                config,
                senders,
                stats,
                threads: Mutex::new(threads),
                next: AtomicUsize::new(0),
            }),
        };
        let mut first_error = None;
        for ready in readies {
            let result = ready.recv().unwrap_or_else(|_| {
                Err(StartError::Engine(
                    "an isolate thread exited during start-up".into(),
                ))
            });
            if let Err(e) = result
                && first_error.is_none()
            {
                first_error = Some(e);
            }
        }
        if let Some(e) = first_error {
            pool.shutdown();
            pool.join();
            return Err(e);
        }
        Ok(pool)
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Number of isolates.
    pub fn size(&self) -> usize {
        self.inner.senders.len()
    }

    fn pick(&self) -> usize {
        let n = self.inner.senders.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = start;
        let mut best_load = usize::MAX;
        for k in 0..n {
            let i = (start + k) % n;
            let load = self.inner.stats[i].in_flight.load(Ordering::Relaxed);
            if load < best_load {
                best = i;
                best_load = load;
                if load == 0 {
                    break;
                }
            }
        }
        best
    }

    /// The least-busy isolate whose queue has room, with a place in that
    /// queue reserved; `None` when every queue is full.
    fn reserve(&self) -> Option<usize> {
        let n = self.inner.senders.len();
        let bound = self.inner.config.limits.max_queued_requests;
        let first = self.pick();
        (0..n).map(|k| (first + k) % n).find(|&i| {
            self.inner.stats[i]
                .queued
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |q| {
                    (q < bound).then_some(q + 1)
                })
                .is_ok()
        })
    }

    /// Runs the worker's `fetch` handler for one request. Fails with
    /// [`DispatchError::Overloaded`] when every isolate already has
    /// `limits.max_queued_requests` requests waiting to start.
    pub async fn dispatch(&self, req: WorkerRequest) -> Result<WorkerResponse, DispatchError> {
        if let Some(native) = &self.inner.config.native {
            return crate::native_worker::dispatch(native.clone(), req).await;
        }
        let Some(i) = self.reserve() else {
            return Err(DispatchError::Overloaded {
                limit: self.inner.config.limits.max_queued_requests,
            });
        };
        let stats = &self.inner.stats[i];
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(stats);
        let (tx, rx) = oneshot::channel();
        if self.inner.senders[i]
            .send(Job::Request(req, tx.into()))
            .is_err()
        {
            stats.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(DispatchError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(DispatchError::IsolateRestarted))
    }

    /// Runs an RPC call of a service binding on one of this worker's
    /// isolates (see [`crate::services`]).
    pub(crate) async fn dispatch_service(
        &self,
        entrypoint: Option<String>,
        method: String,
        args: String,
    ) -> Result<WorkerResponse, DispatchError> {
        if let Some(native) = &self.inner.config.native {
            return crate::native_worker::rpc_unsupported(native.as_ref(), &method);
        }
        let i = self.pick();
        let stats = &self.inner.stats[i];
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(stats);
        let (tx, rx) = oneshot::channel();
        self.inner.senders[i]
            .send(Job::Service(
                crate::durable::ServiceJob {
                    entrypoint,
                    method,
                    args,
                },
                tx.into(),
            ))
            .map_err(|_| DispatchError::ShuttingDown)?;
        rx.await.unwrap_or(Err(DispatchError::IsolateRestarted))
    }

    /// Runs a non-`fetch` event (see [`crate::events`]); the outcome is the
    /// response body, as JSON.
    pub(crate) async fn dispatch_event(
        &self,
        event: crate::events::WorkerEvent,
    ) -> Result<WorkerResponse, DispatchError> {
        if self.inner.senders.is_empty() {
            return Err(DispatchError::Exception {
                message: "a Rust-native worker handles fetch only".into(),
                stack: String::new(),
                pass_through: false,
            });
        }
        let i = self.pick();
        let stats = &self.inner.stats[i];
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(stats);
        let (tx, rx) = oneshot::channel();
        self.inner.senders[i]
            .send(Job::Event(event, tx.into()))
            .map_err(|_| DispatchError::ShuttingDown)?;
        rx.await.unwrap_or(Err(DispatchError::IsolateRestarted))
    }

    /// Counters of every isolate.
    pub fn snapshot(&self) -> Vec<IsolateSnapshot> {
        self.inner
            .stats
            .iter()
            .enumerate()
            .map(|(index, s)| IsolateSnapshot {
                index,
                requests: s.requests.load(Ordering::Relaxed),
                errors: s.errors.load(Ordering::Relaxed),
                in_flight: s.in_flight.load(Ordering::Relaxed),
                queued: s.queued.load(Ordering::Relaxed),
                cpu_micros: s.cpu_micros.load(Ordering::Relaxed),
                cpu_limit_hits: s.cpu_limit_hits.load(Ordering::Relaxed),
                restarts: s.restarts.load(Ordering::Relaxed),
                memory_bytes: s.memory_bytes.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Asks every isolate to stop taking requests; each finishes the
    /// requests (and `waitUntil` work) it has, then exits.
    pub fn shutdown(&self) {
        if let Some(objects) = &self.inner.config.durable_objects {
            objects.detach();
        }
        for s in &self.inner.senders {
            let _ = s.send(Job::Shutdown);
        }
    }

    /// Waits for the isolate threads to exit (after [`IsolatePool::shutdown`]).
    pub fn join(&self) {
        let threads = match self.inner.threads.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for t in threads {
            let _ = t.join();
        }
    }
}
