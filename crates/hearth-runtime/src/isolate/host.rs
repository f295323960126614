//! The state the isolate's natives share with its event loop: the requests
//! in progress, their timers and I/O, and the CPU accounting of slices.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rquickjs::{Persistent, Value};
use tokio::sync::mpsc;

use super::{HostEvent, Responder, describe_exception, durable, heap_near_limit};
use crate::config::WorkerConfig;
use crate::error::DispatchError;
use crate::fetch;
use crate::pool::IsolateStats;
use crate::{WorkerResponse, WsSender};

/// A request the isolate is working on, until its response is sent and its
/// `waitUntil` promises have settled.
pub(super) struct Slot {
    pub(super) tag: String,
    pub(super) responder: Option<Responder>,
    pub(super) cpu_used: Duration,
    pub(super) pass_through: bool,
    pub(super) subrequests: u32,
    /// Whether the request's timers and unread fetch bodies end with it.
    /// A Durable Object's timers belong to the object, not to one request.
    pub(super) scoped_io: bool,
    /// Whether it ever set a timer (so ending it has timers to look for).
    pub(super) set_timers: bool,
}

impl Slot {
    pub(crate) fn new(tag: String, responder: Responder, scoped_io: bool) -> Slot {
        Slot {
            tag,
            responder: Some(responder),
            cpu_used: Duration::ZERO,
            pass_through: false,
            subrequests: 0,
            scoped_io,
            set_timers: false,
        }
    }
}

/// CPU time this thread has used, from the kernel's per-thread clock, so a
/// slice blocked in a host call (a disk write, a lock) is not charged for
/// the time it slept.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant every supported kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU accounting shared with the interrupt handler. A slice records both
/// clocks at its start: CPU time never exceeds wall time, so the handler
/// reads the cheap wall clock first and asks the kernel for the thread's
/// CPU time only once the wall clock alone could be over budget.
#[derive(Default)]
pub(super) struct Cpu {
    pub(super) slice_start: Cell<Option<(Instant, Duration)>>,
    pub(super) budget: Cell<Duration>,
    pub(super) tripped: Cell<bool>,
}

impl Cpu {
    pub(super) fn begin(&self, budget: Duration) {
        self.budget.set(budget);
        self.tripped.set(false);
        self.slice_start
            .set(Some((Instant::now(), thread_cpu_time())));
    }

    /// CPU time of the current slice so far, and ends it.
    pub(super) fn end(&self) -> Duration {
        self.slice_start
            .take()
            .map(|(_, cpu)| thread_cpu_time().saturating_sub(cpu))
            .unwrap_or_default()
    }

    pub(super) fn over_budget(&self) -> bool {
        let Some((wall, cpu)) = self.slice_start.get() else {
            return false;
        };
        let budget = self.budget.get();
        if wall.elapsed() <= budget || thread_cpu_time().saturating_sub(cpu) <= budget {
            return false;
        }
        self.tripped.set(true);
        true
    }
}

/// State the native functions share with the loop.
pub(super) struct Host {
    pub(super) config: Arc<WorkerConfig>,
    pub(super) stats: Arc<IsolateStats>,
    pub(super) events: mpsc::UnboundedSender<HostEvent>,
    pub(super) slots: RefCell<HashMap<u64, Slot>>,
    pub(super) timers: RefCell<BinaryHeap<Reverse<(Instant, u64, u64)>>>,
    /// Outgoing fetches in flight: their task and the request that made them.
    pub(super) fetches: RefCell<HashMap<u64, (tokio::task::AbortHandle, u64)>>,
    /// Chunks each fetched body may read ahead of the worker's stream.
    pub(super) fetch_credits: RefCell<HashMap<u64, Arc<tokio::sync::Semaphore>>>,
    /// Streamed request bodies of outgoing fetches, by fetch.
    pub(super) fetch_bodies: RefCell<HashMap<u64, mpsc::Sender<crate::fetch::BodyPiece>>>,
    /// Timers of requests that ended, still to be dropped on the JS side.
    pub(super) cancelled_timers: RefCell<Vec<u64>>,
    /// Requests that ended, whose JS-side state (a streamed body) is still
    /// to be dropped.
    pub(super) ended_requests: RefCell<Vec<u64>>,
    /// Request bodies still arriving, by request, while no read is pending.
    pub(super) request_bodies: RefCell<HashMap<u64, mpsc::Receiver<Result<Bytes, String>>>>,
    /// Reads of request bodies waiting for the client.
    pub(super) body_pulls: Cell<usize>,
    /// Requests whose body is streamed, until they end.
    pub(super) streamed_bodies: RefCell<HashSet<u64>>,
    /// Outgoing HTTP(S) client; its connection pool lives on this loop.
    pub(super) client: fetch::Client,
    /// Open streamed response bodies, by request.
    pub(super) streams: RefCell<HashMap<u64, mpsc::Sender<Result<Bytes, String>>>>,
    /// Streamed bodies whose channel is full: the worker's stream is not
    /// read again until the client takes a chunk.
    pub(super) stream_waits: Cell<usize>,
    /// Open WebSockets: the channel to the client and the request that
    /// opened it.
    pub(super) sockets: RefCell<HashMap<u64, (WsSender, u64)>>,
    /// Open sockets whose worker end has sent its close frame: the entry
    /// above stays until the other side's close arrives.
    pub(super) closed_here: RefCell<HashSet<u64>>,
    /// Sockets the other side closed first: the worker may still answer
    /// with its own close frame, which completes the closing handshake.
    pub(super) closed_there: RefCell<HashMap<u64, WsSender>>,
    pub(super) owner: Cell<u64>,
    pub(super) cpu: Rc<Cpu>,
    pub(super) out_of_memory: Cell<bool>,
    /// A worker entered an AsyncLocalStorage context: the frame is cleared
    /// after each turn of the event loop.
    pub(super) async_context: Cell<bool>,
    /// The worker's module root: node:fs's /bundle lists what was loaded
    /// from under it.
    pub(super) module_root: std::path::PathBuf,
    /// Requests whose node:fs /tmp holds files, dropped when they end.
    pub(super) tmp_requests: RefCell<HashSet<u64>>,
    /// Open outbound TCP sockets.
    pub(super) tcp: RefCell<HashMap<u64, super::tcp::TcpHandle>>,
    /// TLS settings for sockets (the same roots as fetch), built when a
    /// socket first needs them.
    pub(super) tls: std::cell::OnceCell<Option<Arc<rustls::ClientConfig>>>,
    pub(super) origin: Instant,
    /// Promises rejected with no handler yet. A handler may still be attached
    /// before the microtask queue drains (streams do this routinely), so they
    /// are reported only if still unhandled then.
    pub(super) unhandled: RefCell<Vec<UnhandledRejection>>,
    pub(super) durable: durable::IsolateDurable,
}

pub(super) struct UnhandledRejection {
    pub(super) promise: Persistent<Value<'static>>,
    pub(super) tag: String,
    pub(super) stack: String,
}

impl Host {
    pub(super) fn tag(&self, rid: u64) -> String {
        self.slots
            .borrow()
            .get(&rid)
            .map(|s| s.tag.clone())
            .unwrap_or_else(|| "-".to_string())
    }

    pub(super) fn current_tag(&self) -> String {
        self.tag(self.owner.get())
    }

    pub(super) fn send(&self, rid: u64, result: Result<WorkerResponse, DispatchError>) {
        let responder = self
            .slots
            .borrow_mut()
            .get_mut(&rid)
            .and_then(|s| s.responder.take());
        if let Some(tx) = responder {
            if result.is_err() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            tx.send(result);
        }
    }

    pub(super) fn finish(&self, rid: u64) {
        let slot = self.slots.borrow_mut().remove(&rid);
        if let Some(slot) = &slot {
            let (timers, fetches) = (slot.set_timers, slot.subrequests > 0);
            // A body the worker did not read is not read further: the
            // front stops taking it from the client.
            self.close_sockets_of(rid);
            if self.tmp_requests.borrow_mut().remove(&rid) {
                self.ended_requests.borrow_mut().push(rid);
            }
            if self.streamed_bodies.borrow_mut().remove(&rid) {
                self.request_bodies.borrow_mut().remove(&rid);
                self.ended_requests.borrow_mut().push(rid);
            }
            if slot.scoped_io && (timers || fetches) {
                self.end_io(rid);
            }
        }
        if let Some(mut slot) = slot
            && let Some(tx) = slot.responder.take()
        {
            // A request that ended without answering (cannot normally happen).
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            tx.send(Err(DispatchError::Exception {
                message: "The worker did not produce a response.".into(),
                stack: String::new(),
                pass_through: slot.pass_through,
            }));
        }
    }

    /// Ends what request `rid` left running once it is done (its response
    /// sent, its `waitUntil` settled), as workerd does when a request's
    /// I/O context ends: its timers are cancelled, so an interval cannot
    /// burn CPU charged to nobody, and fetched bodies it never read are
    /// dropped. A request whose WebSocket is still open keeps its timers,
    /// as its context lives as long as the socket.
    pub(super) fn end_io(&self, rid: u64) {
        if self
            .sockets
            .borrow()
            .values()
            .any(|(_, owner)| *owner == rid)
        {
            return;
        }
        let mut cancelled = self.cancelled_timers.borrow_mut();
        self.timers.borrow_mut().retain(|Reverse((_, id, owner))| {
            if *owner == rid {
                cancelled.push(*id);
                false
            } else {
                true
            }
        });
        let mut fetches = self.fetches.borrow_mut();
        let ended: Vec<u64> = fetches
            .iter()
            .filter(|(_, (_, owner))| *owner == rid)
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            if let Some((task, _)) = fetches.remove(&id) {
                task.abort();
            }
            self.fetch_credits.borrow_mut().remove(&id);
            self.fetch_bodies.borrow_mut().remove(&id);
        }
    }

    /// Ends a streamed body with an error, so the client sees it cut short.
    pub(super) fn fail_stream(&self, rid: u64, message: String) {
        let Some(tx) = self.streams.borrow_mut().remove(&rid) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(item)) = tx.try_send(Err(message)) {
            // The error must follow the chunks already queued.
            tokio::spawn(async move {
                let _ = tx.send(item).await;
            });
        }
    }

    /// Reports a JS exception for request `rid`: to the log, and to the
    /// client if it is still waiting.
    pub(super) fn fail_with(&self, rid: u64, err: &Value<'_>) {
        let (message, stack) = describe_exception(err);
        // Running out of heap can surface as another error (one raised while
        // building the out-of-memory exception, or by code that caught it),
        // so a heap at the limit counts as the memory limit too. When QuickJS
        // cannot even allocate its out-of-memory error the exception is
        // left `null` (and the heap may be freed by the time it is seen).
        if message.contains("out of memory")
            || err.is_null()
            || self.out_of_memory.get()
            || heap_near_limit(err, self.config.limits.memory_bytes)
        {
            self.out_of_memory.set(true);
            tracing::error!(target: "hearth::worker", request_id = %self.tag(rid), "worker ran out of memory");
            self.send(
                rid,
                Err(DispatchError::MemoryLimit {
                    limit_bytes: self.config.limits.memory_bytes,
                }),
            );
            return;
        }
        tracing::error!(target: "hearth::worker", request_id = %self.tag(rid), "Uncaught {stack}");
        let pass_through = self
            .slots
            .borrow()
            .get(&rid)
            .map(|s| s.pass_through)
            .unwrap_or(false);
        self.send(
            rid,
            Err(DispatchError::Exception {
                message,
                stack,
                pass_through,
            }),
        );
    }
}
