//! One isolate: a QuickJS runtime and context owned by one OS thread, which
//! runs a current-thread tokio runtime as the isolate's event loop.
//!
//! The loop waits on three sources: new requests from the pool, completions
//! of host work (outgoing fetches), and the earliest timer deadline. Every
//! entry into JavaScript is a *slice* attributed to one request; the slice's
//! time is charged to that request's CPU budget, and QuickJS's interrupt
//! handler stops the slice once the budget is spent.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rquickjs::{
    Array, ArrayBuffer, Context, Ctx, Function, Module, Object, Persistent, Runtime, TypedArray,
    Value, qjs,
};
use tokio::sync::{mpsc, oneshot};

use crate::config::WorkerConfig;
use crate::error::{DispatchError, StartError};
use crate::fetch::{self, FetchRequest, RedirectMode};
use crate::loader::module_name;
use crate::pool::IsolateStats;
use crate::{
    BODY_STREAM_CHUNKS, WebSocketChannel, WebSocketSink, WorkerRequest, WorkerResponse, WsMessage,
    WsSendError, WsSender,
};

const PRELUDE: &str = include_str!("../js/prelude.js");

#[path = "durable/glue.rs"]
pub(crate) mod durable;

/// Workers' error for a request whose promises can never settle.
const NEVER_RESPONDS: &str = "The script will never generate a response.";

/// Bytes of a fetched body read ahead of the worker's stream of it.
const FETCH_READ_AHEAD_BYTES: usize = 256 * 1024;

/// How long a shutting-down isolate waits for `waitUntil` work to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(crate) type Responder = oneshot::Sender<Result<WorkerResponse, DispatchError>>;

pub(crate) enum Job {
    Request(WorkerRequest, Responder),
    /// A non-`fetch` event; its outcome comes back as the response body.
    Event(crate::events::WorkerEvent, Responder),
    /// An event for a Durable Object this isolate hosts.
    Object(crate::durable::ObjectJob, Responder),
    /// A service binding's RPC call into this worker.
    Service(crate::durable::ServiceJob, Responder),
    Shutdown,
}

#[derive(Debug)]
pub(crate) enum HostEvent {
    WebSocket {
        id: u64,
        msg: WsMessage,
        /// Holds the message's bytes against the socket's receive budget
        /// until it is delivered.
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    },
    /// The next chunk of a request body the worker asked for (`None`: the
    /// end), with the receiver to put back.
    BodyChunk {
        rid: u64,
        rx: mpsc::Receiver<Result<Bytes, String>>,
        item: Option<Result<Bytes, String>>,
    },
    /// A full response body channel has room again (`open`), or its
    /// reader went away.
    StreamReady { rid: u64, open: bool },
    /// A fetch's final response head, or why it failed.
    Fetch {
        id: u64,
        owner: u64,
        result: Result<fetch::FetchHead, String>,
    },
    /// The next chunk of a fetched response body.
    FetchChunk { id: u64, owner: u64, chunk: Bytes },
    /// The fetched body ended, cleanly or with an error.
    FetchEnd {
        id: u64,
        owner: u64,
        error: Option<String>,
    },
    /// A Durable Object answered a call made from this isolate.
    DurableReply {
        call: u64,
        owner: u64,
        result: Result<WorkerResponse, DispatchError>,
    },
}

/// A request the isolate is working on, until its response is sent and its
/// `waitUntil` promises have settled.
struct Slot {
    tag: String,
    responder: Option<Responder>,
    cpu_used: Duration,
    pass_through: bool,
    subrequests: u32,
    /// Whether the request's timers and unread fetch bodies end with it.
    /// A Durable Object's timers belong to the object, not to one request.
    scoped_io: bool,
    /// Whether it ever set a timer (so ending it has timers to look for).
    set_timers: bool,
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
struct Cpu {
    slice_start: Cell<Option<(Instant, Duration)>>,
    budget: Cell<Duration>,
    tripped: Cell<bool>,
}

impl Cpu {
    fn begin(&self, budget: Duration) {
        self.budget.set(budget);
        self.tripped.set(false);
        self.slice_start
            .set(Some((Instant::now(), thread_cpu_time())));
    }

    /// CPU time of the current slice so far, and ends it.
    fn end(&self) -> Duration {
        self.slice_start
            .take()
            .map(|(_, cpu)| thread_cpu_time().saturating_sub(cpu))
            .unwrap_or_default()
    }

    fn over_budget(&self) -> bool {
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
struct Host {
    config: Arc<WorkerConfig>,
    stats: Arc<IsolateStats>,
    events: mpsc::UnboundedSender<HostEvent>,
    slots: RefCell<HashMap<u64, Slot>>,
    timers: RefCell<BinaryHeap<Reverse<(Instant, u64, u64)>>>,
    /// Outgoing fetches in flight: their task and the request that made them.
    fetches: RefCell<HashMap<u64, (tokio::task::AbortHandle, u64)>>,
    /// Chunks each fetched body may read ahead of the worker's stream.
    fetch_credits: RefCell<HashMap<u64, Arc<tokio::sync::Semaphore>>>,
    /// Timers of requests that ended, still to be dropped on the JS side.
    cancelled_timers: RefCell<Vec<u64>>,
    /// Requests that ended, whose JS-side state (a streamed body) is still
    /// to be dropped.
    ended_requests: RefCell<Vec<u64>>,
    /// Request bodies still arriving, by request, while no read is pending.
    request_bodies: RefCell<HashMap<u64, mpsc::Receiver<Result<Bytes, String>>>>,
    /// Reads of request bodies waiting for the client.
    body_pulls: Cell<usize>,
    /// Requests whose body is streamed, until they end.
    streamed_bodies: RefCell<HashSet<u64>>,
    /// Outgoing HTTP(S) client; its connection pool lives on this loop.
    client: fetch::Client,
    /// Open streamed response bodies, by request.
    streams: RefCell<HashMap<u64, mpsc::Sender<Result<Bytes, String>>>>,
    /// Streamed bodies whose channel is full: the worker's stream is not
    /// read again until the client takes a chunk.
    stream_waits: Cell<usize>,
    /// Open WebSockets: the channel to the client and the request that
    /// opened it.
    sockets: RefCell<HashMap<u64, (WsSender, u64)>>,
    /// Open sockets whose worker end has sent its close frame: the entry
    /// above stays until the other side's close arrives.
    closed_here: RefCell<HashSet<u64>>,
    /// Sockets the other side closed first: the worker may still answer
    /// with its own close frame, which completes the closing handshake.
    closed_there: RefCell<HashMap<u64, WsSender>>,
    owner: Cell<u64>,
    cpu: Rc<Cpu>,
    out_of_memory: Cell<bool>,
    origin: Instant,
    /// Promises rejected with no handler yet. A handler may still be attached
    /// before the microtask queue drains (streams do this routinely), so they
    /// are reported only if still unhandled then.
    unhandled: RefCell<Vec<UnhandledRejection>>,
    durable: durable::IsolateDurable,
}

struct UnhandledRejection {
    promise: Persistent<Value<'static>>,
    tag: String,
    stack: String,
}

impl Host {
    fn tag(&self, rid: u64) -> String {
        self.slots
            .borrow()
            .get(&rid)
            .map(|s| s.tag.clone())
            .unwrap_or_else(|| "-".to_string())
    }

    fn current_tag(&self) -> String {
        self.tag(self.owner.get())
    }

    fn send(&self, rid: u64, result: Result<WorkerResponse, DispatchError>) {
        let responder = self
            .slots
            .borrow_mut()
            .get_mut(&rid)
            .and_then(|s| s.responder.take());
        if let Some(tx) = responder {
            if result.is_err() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            let _ = tx.send(result);
        }
    }

    fn finish(&self, rid: u64) {
        let slot = self.slots.borrow_mut().remove(&rid);
        if let Some(slot) = &slot {
            let (timers, fetches) = (slot.set_timers, slot.subrequests > 0);
            // A body the worker did not read is not read further: the
            // front stops taking it from the client.
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
            let _ = tx.send(Err(DispatchError::Exception {
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
    fn end_io(&self, rid: u64) {
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
        }
    }

    /// Ends a streamed body with an error, so the client sees it cut short.
    fn fail_stream(&self, rid: u64, message: String) {
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
    fn fail_with(&self, rid: u64, err: &Value<'_>) {
        let (message, stack) = describe_exception(err);
        // Running out of heap can surface as another error (one raised while
        // building the out-of-memory exception, or by code that caught it),
        // so a heap at the limit counts as the memory limit too.
        if message.contains("out of memory")
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

/// Script name of the host's own JS; its frames are cut from stack traces.
const INTERNAL_SCRIPT: &str = "hearth:internal";

fn internal_eval_options() -> rquickjs::context::EvalOptions {
    let mut o = rquickjs::context::EvalOptions::default();
    o.global = true;
    o.strict = false;
    o.filename = Some(INTERNAL_SCRIPT.to_string());
    o
}

/// Drops the host's frames so a stack shows only the worker's code.
fn user_frames(stack: &str) -> String {
    stack
        .lines()
        .filter(|l| !l.contains(INTERNAL_SCRIPT))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(message, "Name: message\n    at ...")` of a thrown value.
fn describe_exception(v: &Value<'_>) -> (String, String) {
    if let Some(obj) = v.as_object() {
        let name: Option<String> = obj.get("name").ok();
        let message: Option<String> = obj.get("message").ok();
        let stack: Option<String> = obj.get("stack").ok();
        let message = message.unwrap_or_default();
        let head = match name {
            Some(n) if !n.is_empty() => format!("{n}: {message}"),
            _ => message.clone(),
        };
        let stack = match stack {
            Some(s) if !s.trim().is_empty() => {
                let frames = crate::modules::remap_stack(&user_frames(s.trim_end()));
                format!("{head}\n{frames}")
            }
            _ => head,
        };
        return (message, stack);
    }
    let text = v
        .as_string()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("{v:?}"));
    (text.clone(), text)
}

fn value_to_bytes(v: &Value<'_>) -> rquickjs::Result<Bytes> {
    if v.is_null() || v.is_undefined() {
        return Ok(Bytes::new());
    }
    if let Some(s) = v.as_string() {
        return Ok(Bytes::from(s.to_string()?));
    }
    if let Some(buf) = ArrayBuffer::from_value(v.clone()) {
        // SAFETY: the slice is copied before control returns to JS, so the
        // buffer cannot be detached or resized while borrowed.
        let bytes = unsafe { buf.as_bytes() }.unwrap_or(&[]);
        return Ok(Bytes::copy_from_slice(bytes));
    }
    if let Ok(arr) = TypedArray::<u8>::from_value(v.clone()) {
        // SAFETY: as above, copied at once.
        let bytes = unsafe { arr.as_bytes() }.unwrap_or(&[]);
        return Ok(Bytes::copy_from_slice(bytes));
    }
    Err(rquickjs::Error::new_from_js("value", "body bytes"))
}

fn pairs_from_flat(flat: Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// The prelude's internal functions, kept across requests.
struct Api {
    dispatch: Persistent<Function<'static>>,
    ws_deliver: Persistent<Function<'static>>,
    fire_timer: Persistent<Function<'static>>,
    fetch_done: Persistent<Function<'static>>,
    fetch_failed: Persistent<Function<'static>>,
    fetch_chunk: Persistent<Function<'static>>,
    fetch_end: Persistent<Function<'static>>,
    stream_ready: Persistent<Function<'static>>,
    body_chunk: Persistent<Function<'static>>,
    end_io: Persistent<Function<'static>>,
    events: crate::events::EventApi,
    durable: durable::JsApi,
}

pub(crate) struct Isolate {
    // Field order is drop order: JS handles before the context and runtime.
    api: Api,
    context: Context,
    runtime: Runtime,
    host: Rc<Host>,
    events: mpsc::UnboundedReceiver<HostEvent>,
    next_rid: u64,
}

pub(crate) enum Exit {
    Done,
    Rebuild,
}

fn script_error(ctx: &Ctx<'_>, err: rquickjs::Error, fallback_location: &str) -> StartError {
    let caught = match err {
        rquickjs::Error::Exception => ctx.catch(),
        other => {
            return StartError::Script {
                location: fallback_location.to_string(),
                message: other.to_string(),
                stack: String::new(),
            };
        }
    };
    script_error_from_value(&caught, fallback_location)
}

fn script_error_from_value(caught: &Value<'_>, fallback_location: &str) -> StartError {
    let (message, stack) = describe_exception(caught);
    let name: String = caught
        .as_object()
        .and_then(|o| o.get::<_, String>("name").ok())
        .unwrap_or_default();
    // First "at ..." frame names file:line:column.
    let location = stack
        .lines()
        .filter_map(|l| l.trim().strip_prefix("at "))
        .map(|l| {
            let l = l.trim();
            match (l.rfind('('), l.ends_with(')')) {
                (Some(i), true) => l[i + 1..l.len() - 1].to_string(),
                _ => l.to_string(),
            }
        })
        .find(|l| !l.is_empty() && !l.starts_with('<'))
        .unwrap_or_else(|| fallback_location.to_string());
    let message = if name.is_empty() {
        message
    } else {
        format!("{name}: {message}")
    };
    StartError::Script {
        location,
        message,
        stack,
    }
}

impl Isolate {
    pub(crate) fn build(
        config: Arc<WorkerConfig>,
        stats: Arc<IsolateStats>,
    ) -> Result<Isolate, StartError> {
        let main = config.main.clone();
        if !main.is_file() {
            return Err(StartError::MainNotFound {
                path: main.display().to_string(),
            });
        }
        let root = match &config.module_root {
            Some(r) => r.clone(),
            None => main.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        let root = root.canonicalize().map_err(|source| StartError::Read {
            path: root.display().to_string(),
            source,
        })?;
        let main_abs = main.canonicalize().map_err(|source| StartError::Read {
            path: main.display().to_string(),
            source,
        })?;
        let main_rel = main_abs
            .strip_prefix(&root)
            .map_err(|_| {
                StartError::Engine(format!(
                    "main module {} is outside the module root {}",
                    main_abs.display(),
                    root.display()
                ))
            })?
            .to_path_buf();
        let main_name = module_name(&main_rel);
        let source = crate::loader::main_source(&root, &main_name, &config)?;

        let engine = |e: rquickjs::Error| StartError::Engine(e.to_string());
        let runtime = Runtime::new().map_err(engine)?;
        let context = Context::full(&runtime).map_err(engine)?;
        let cpu = Rc::new(Cpu::default());
        runtime.set_max_stack_size(config.limits.max_stack_bytes);
        let handler_cpu = cpu.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || handler_cpu.over_budget())));
        let (resolver, loader) =
            crate::loader::for_root(&root, &config).map_err(|source| StartError::Read {
                path: root.display().to_string(),
                source,
            })?;
        runtime.set_loader(resolver, loader);

        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let host = Rc::new(Host {
            config: config.clone(),
            stats,
            events: events_tx,
            slots: RefCell::new(HashMap::new()),
            timers: RefCell::new(BinaryHeap::new()),
            fetches: RefCell::new(HashMap::new()),
            fetch_credits: RefCell::new(HashMap::new()),
            cancelled_timers: RefCell::new(Vec::new()),
            ended_requests: RefCell::new(Vec::new()),
            request_bodies: RefCell::new(HashMap::new()),
            body_pulls: Cell::new(0),
            streamed_bodies: RefCell::new(HashSet::new()),
            client: fetch::client(&config.extra_root_certs).map_err(StartError::Engine)?,
            streams: RefCell::new(HashMap::new()),
            stream_waits: Cell::new(0),
            sockets: RefCell::new(HashMap::new()),
            closed_here: RefCell::new(HashSet::new()),
            closed_there: RefCell::new(HashMap::new()),
            owner: Cell::new(0),
            cpu: cpu.clone(),
            out_of_memory: Cell::new(false),
            origin: Instant::now(),
            unhandled: RefCell::new(Vec::new()),
            durable: durable::IsolateDurable::new(config.durable_objects.clone()),
        });
        let tracker_host = host.clone();
        runtime.set_host_promise_rejection_tracker(Some(Box::new(
            move |ctx, promise, reason, is_handled| {
                if is_handled {
                    let raw = promise.as_raw();
                    tracker_host.unhandled.borrow_mut().retain(|u| {
                        u.promise
                            .clone()
                            .restore(&ctx)
                            .map(|p| !same_value(&p.as_raw(), &raw))
                            .unwrap_or(false)
                    });
                    return;
                }
                let (message, stack) = describe_exception(&reason);
                if message.contains("out of memory") {
                    tracker_host.out_of_memory.set(true);
                }
                tracker_host
                    .unhandled
                    .borrow_mut()
                    .push(UnhandledRejection {
                        promise: Persistent::save(&ctx, promise),
                        tag: tracker_host.current_tag(),
                        stack,
                    });
            },
        )));

        // Time spent building counts against a start-up budget equal to the
        // per-request CPU limit, so a looping top level cannot hang start-up.
        cpu.begin(Duration::from_millis(config.limits.cpu_ms));

        let built = context.with(|ctx| -> Result<(Api, bool), StartError> {
            hearth_webapi::install(&ctx).map_err(|e| script_error(&ctx, e, "webapi"))?;
            let host_obj = make_host_object(&ctx, &host).map_err(engine)?;
            let prelude: Function = ctx
                .eval_with_options(PRELUDE, internal_eval_options())
                .map_err(|e| script_error(&ctx, e, "prelude"))?;
            let api: Object = prelude
                .call((host_obj.clone(),))
                .map_err(|e| script_error(&ctx, e, "prelude"))?;
            let get = |name: &str| -> Result<Function, StartError> {
                api.get(name).map_err(|e| script_error(&ctx, e, "prelude"))
            };
            let durable_api =
                durable::install(&ctx, &host).map_err(|e| script_error(&ctx, e, "durable"))?;
            let env = crate::bindings::build_env(&ctx, &config).map_err(|message| {
                StartError::Binding {
                    name: "env".into(),
                    message,
                }
            })?;
            get("setEnv")?
                .call::<_, ()>((env.clone(),))
                .map_err(engine)?;
            durable::set_service_env(&ctx, &durable_api, env.clone()).map_err(engine)?;

            let module = Module::declare(ctx.clone(), main_name.as_str(), source)
                .map_err(|e| script_error(&ctx, e, &main_name))?;
            let (module, promise) = module
                .eval()
                .map_err(|e| script_error(&ctx, e, &main_name))?;
            // Run the module's top level (including top-level await).
            loop {
                match promise.state() {
                    rquickjs::promise::PromiseState::Pending => {
                        if !ctx.execute_pending_job() {
                            return Err(StartError::Script {
                                location: main_name.clone(),
                                message: "the module's top-level await never settled".into(),
                                stack: String::new(),
                            });
                        }
                    }
                    rquickjs::promise::PromiseState::Resolved => break,
                    rquickjs::promise::PromiseState::Rejected => {
                        let err = promise
                            .result::<Value>()
                            .map(|r| match r {
                                Err(rquickjs::Error::Exception) => ctx.catch(),
                                Err(e) => rquickjs::String::from_str(ctx.clone(), &e.to_string())
                                    .map(|s| s.into_value())
                                    .unwrap_or_else(|_| Value::new_undefined(ctx.clone())),
                                Ok(v) => v,
                            })
                            .unwrap_or_else(|| Value::new_undefined(ctx.clone()));
                        return Err(script_error_from_value(&err, &main_name));
                    }
                }
            }
            let default: Value = module
                .namespace()
                .and_then(|ns| ns.get("default"))
                .map_err(|e| script_error(&ctx, e, &main_name))?;
            let exports = module
                .namespace()
                .map_err(|e| script_error(&ctx, e, &main_name))?;
            durable::set_exports(&ctx, &durable_api, exports, &host)
                .map_err(|e| script_error(&ctx, e, &main_name))?;
            let has_fetch: bool = get("setHandler")?
                .call((default.clone(),))
                .map_err(|e| script_error(&ctx, e, &main_name))?;
            let exports = module
                .namespace()
                .map_err(|e| script_error(&ctx, e, &main_name))?;
            let events = crate::events::install(
                &ctx,
                host_obj,
                default,
                exports,
                env,
                config.workflows.as_ref(),
            )
            .map_err(|e| script_error(&ctx, e, "events"))?;
            let api = Api {
                dispatch: Persistent::save(&ctx, get("dispatch")?),
                ws_deliver: Persistent::save(&ctx, get("wsDeliver")?),
                fire_timer: Persistent::save(&ctx, get("fireTimer")?),
                fetch_done: Persistent::save(&ctx, get("fetchDone")?),
                fetch_failed: Persistent::save(&ctx, get("fetchFailed")?),
                fetch_chunk: Persistent::save(&ctx, get("fetchChunk")?),
                fetch_end: Persistent::save(&ctx, get("fetchEnd")?),
                stream_ready: Persistent::save(&ctx, get("streamReady")?),
                body_chunk: Persistent::save(&ctx, get("bodyChunk")?),
                end_io: Persistent::save(&ctx, get("endIo")?),
                events,
                durable: durable_api,
            };
            Ok((api, has_fetch))
        });
        let tripped = cpu.tripped.get();
        cpu.end();
        if built.is_err() {
            // Rejections recorded while evaluating hold JS values; release
            // them while the runtime is still alive.
            drop(host.unhandled.take());
        }
        let (api, has_fetch) = match built {
            Ok(b) => b,
            Err(_) if tripped => {
                return Err(StartError::Script {
                    location: main_name,
                    message: format!(
                        "evaluating the module exceeded the CPU time limit (limits.cpu_ms = {})",
                        config.limits.cpu_ms
                    ),
                    stack: String::new(),
                });
            }
            Err(e) => return Err(e),
        };
        if !has_fetch {
            tracing::warn!(target: "hearth::worker", module = %main_name, "the worker's default export has no fetch() handler");
        }
        // Set after start-up so the limit applies to the worker, not to the
        // host's own scripts.
        runtime.set_memory_limit(config.limits.memory_bytes);
        Ok(Isolate {
            api,
            context,
            runtime,
            host,
            events: events_rx,
            next_rid: 1,
        })
    }

    fn slice_begin(&self, owner: u64) {
        let host = &self.host;
        host.owner.set(owner);
        let used = host
            .slots
            .borrow()
            .get(&owner)
            .map(|s| s.cpu_used)
            .unwrap_or_default();
        let limit = Duration::from_millis(host.config.limits.cpu_ms);
        host.cpu.begin(limit.saturating_sub(used));
    }

    fn slice_end(&self) {
        let host = &self.host;
        let owner = host.owner.get();
        let elapsed = host.cpu.end();
        host.stats
            .cpu_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        if let Some(slot) = host.slots.borrow_mut().get_mut(&owner) {
            slot.cpu_used += elapsed;
        }
        if host.cpu.tripped.take() {
            let limit_ms = host.config.limits.cpu_ms;
            tracing::error!(target: "hearth::worker", request_id = %host.tag(owner), "request exceeded the CPU time limit (limits.cpu_ms = {limit_ms})");
            host.stats.cpu_limit_hits.fetch_add(1, Ordering::Relaxed);
            let err = DispatchError::CpuLimit { limit_ms };
            host.fail_stream(owner, err.to_string());
            host.send(owner, Err(err));
            // The request's JS was unwound; nothing of it remains to wait for.
            host.finish(owner);
        }
        host.owner.set(0);
    }

    /// Runs `f` in JS as a slice for `owner`, then drains the microtask queue.
    fn run<F>(&self, owner: u64, f: F)
    where
        F: for<'js> FnOnce(&Ctx<'js>, &Api) -> rquickjs::Result<()>,
    {
        self.slice_begin(owner);
        self.context.with(|ctx| {
            if let Err(e) = f(&ctx, &self.api) {
                let caught = match e {
                    rquickjs::Error::Exception => ctx.catch(),
                    other => rquickjs::String::from_str(ctx.clone(), &other.to_string())
                        .map(|s| s.into_value())
                        .unwrap_or_else(|_| Value::new_undefined(ctx.clone())),
                };
                if !self.host.cpu.tripped.get() {
                    self.host.fail_with(owner, &caught);
                }
            }
            self.drain_jobs(&ctx);
        });
        self.slice_end();
    }

    fn drain_jobs(&self, ctx: &Ctx<'_>) {
        // SAFETY: the runtime lock is held by `Context::with`; this is the
        // same call `Ctx::execute_pending_job` makes, but it lets us see the
        // exception a job threw.
        let rt = unsafe { qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) };
        loop {
            let mut job_ctx = std::mem::MaybeUninit::<*mut qjs::JSContext>::uninit();
            // SAFETY: `rt` is this context's live runtime (lock held, as above)
            // and `job_ctx` is a valid out-pointer for the call.
            let r = unsafe { qjs::JS_ExecutePendingJob(rt, job_ctx.as_mut_ptr()) };
            if r == 0 {
                break;
            }
            if r < 0 {
                // One context per runtime, so the exception is on `ctx`.
                let caught = ctx.catch();
                if !self.host.cpu.tripped.get() {
                    let (message, stack) = describe_exception(&caught);
                    if message.contains("out of memory") {
                        self.host.out_of_memory.set(true);
                        let owner = self.host.owner.get();
                        self.host.send(
                            owner,
                            Err(DispatchError::MemoryLimit {
                                limit_bytes: self.host.config.limits.memory_bytes,
                            }),
                        );
                    } else {
                        tracing::error!(target: "hearth::worker", request_id = %self.host.current_tag(), "Uncaught {stack}");
                    }
                }
            }
            if self.host.cpu.tripped.get() {
                // The remaining jobs belong to no request we can tell; give
                // them a fresh budget.
                self.slice_end();
                self.slice_begin(0);
            }
        }
        for u in self.host.unhandled.take() {
            tracing::warn!(target: "hearth::worker", request_id = %u.tag, "Uncaught (in promise) {}", u.stack);
        }
    }

    fn start_request(&mut self, req: WorkerRequest, tx: Responder) {
        let rid = self.next_rid;
        self.next_rid += 1;
        self.host.stats.requests.fetch_add(1, Ordering::Relaxed);
        // It has left the queue the pool bounds.
        self.host.stats.queued.fetch_sub(1, Ordering::Relaxed);
        self.host
            .slots
            .borrow_mut()
            .insert(rid, Slot::new(req.id, tx, true));
        let WorkerRequest {
            method,
            url,
            headers,
            body,
            body_stream,
            ..
        } = req;
        let streamed = match body_stream {
            Some(stream) => {
                let rx = stream.take().unwrap_or_else(|| {
                    let (tx, rx) = mpsc::channel(1);
                    let _ = tx.try_send(Err(crate::REQUEST_BODY_TAKEN.into()));
                    rx
                });
                self.host.request_bodies.borrow_mut().insert(rid, rx);
                self.host.streamed_bodies.borrow_mut().insert(rid);
                true
            }
            None => false,
        };
        self.run(rid, move |ctx, api| {
            let mut flat = Vec::with_capacity(headers.len() * 2);
            for (k, v) in headers {
                flat.push(k);
                flat.push(v);
            }
            let body = if streamed {
                // Read from the host as the worker pulls it.
                Value::new_number(ctx.clone(), rid as f64)
            } else if body.is_empty() && (method == "GET" || method == "HEAD") {
                Value::new_null(ctx.clone())
            } else {
                // Backed by Rust memory, outside the heap QuickJS counts
                // against the isolate's limit: a body is not the worker's
                // allocation, and one near the body limit must still be
                // readable whole.
                ArrayBuffer::new(ctx.clone(), Vec::from(body))?.into_value()
            };
            let dispatch = api.dispatch.clone().restore(ctx)?;
            dispatch.call::<_, ()>((rid as f64, method, url, flat, body))
        });
    }

    fn start_event(&mut self, ev: crate::events::WorkerEvent, tx: Responder) {
        let rid = self.next_rid;
        self.next_rid += 1;
        self.host.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.host
            .slots
            .borrow_mut()
            .insert(rid, Slot::new(ev.id.clone(), tx, true));
        self.run(rid, move |ctx, api| api.events.call(ctx, rid, ev));
    }

    fn fire_timers(&self) {
        let now = Instant::now();
        loop {
            let due = {
                let mut timers = self.host.timers.borrow_mut();
                match timers.peek() {
                    Some(Reverse((at, _, _))) if *at <= now => timers.pop().map(|Reverse(t)| t),
                    _ => None,
                }
            };
            let Some((_, id, owner)) = due else { break };
            let owner = if self.host.slots.borrow().contains_key(&owner) {
                owner
            } else {
                0
            };
            self.run(owner, move |ctx, api| {
                api.fire_timer
                    .clone()
                    .restore(ctx)?
                    .call::<_, ()>((id as f64,))
            });
        }
    }

    fn handle_event(&self, ev: HostEvent) {
        match ev {
            HostEvent::WebSocket { id, msg, permit } => {
                let owner = match self.host.sockets.borrow().get(&id) {
                    Some((_, owner)) => *owner,
                    None => return,
                };
                if matches!(msg, WsMessage::Close { .. })
                    && let Some((tx, _)) = self.host.sockets.borrow_mut().remove(&id)
                    && !self.host.closed_here.borrow_mut().remove(&id)
                {
                    let mut there = self.host.closed_there.borrow_mut();
                    there.retain(|_, tx| !tx.is_closed());
                    there.insert(id, tx);
                }
                let owner = if self.host.slots.borrow().contains_key(&owner) {
                    owner
                } else {
                    0
                };
                self.run(owner, move |ctx, api| {
                    let deliver = api.ws_deliver.clone().restore(ctx)?;
                    let id = id as f64;
                    match msg {
                        WsMessage::Text(t) => deliver.call::<_, ()>((id, 0, t)),
                        WsMessage::Binary(b) => {
                            let buf = ArrayBuffer::new_copy(ctx.clone(), &b[..])?;
                            deliver.call::<_, ()>((id, 1, buf))
                        }
                        WsMessage::Close { code, reason } => {
                            deliver.call::<_, ()>((id, 2, (), code, reason))
                        }
                    }
                });
                drop(permit);
            }
            HostEvent::BodyChunk { rid, rx, item } => {
                self.host
                    .body_pulls
                    .set(self.host.body_pulls.get().saturating_sub(1));
                let live = self.host.slots.borrow().contains_key(&rid);
                if !live {
                    return;
                }
                if matches!(item, Some(Ok(_))) {
                    self.host.request_bodies.borrow_mut().insert(rid, rx);
                }
                self.run(rid, move |ctx, api| {
                    let f = api.body_chunk.clone().restore(ctx)?;
                    match item {
                        Some(Ok(chunk)) => {
                            let buf = ArrayBuffer::new(ctx.clone(), Vec::from(chunk))?;
                            f.call::<_, ()>((rid as f64, buf))
                        }
                        Some(Err(e)) => f.call::<_, ()>((rid as f64, (), e)),
                        None => f.call::<_, ()>((rid as f64, ())),
                    }
                });
            }
            HostEvent::StreamReady { rid, open } => {
                self.host
                    .stream_waits
                    .set(self.host.stream_waits.get().saturating_sub(1));
                let owner = self.live_owner(rid);
                self.run(owner, move |ctx, api| {
                    api.stream_ready
                        .clone()
                        .restore(ctx)?
                        .call::<_, ()>((rid as f64, open))
                });
            }
            HostEvent::Fetch { id, owner, result } => {
                if result.is_err() {
                    self.host.fetches.borrow_mut().remove(&id);
                    self.host.fetch_credits.borrow_mut().remove(&id);
                }
                let owner = self.live_owner(owner);
                self.run(owner, move |ctx, api| match result {
                    Ok(r) => {
                        let mut flat = Vec::with_capacity(r.headers.len() * 2);
                        for (k, v) in r.headers {
                            flat.push(k);
                            flat.push(v);
                        }
                        api.fetch_done.clone().restore(ctx)?.call::<_, ()>((
                            id as f64,
                            r.status,
                            r.status_text,
                            flat,
                            r.url,
                            r.redirected,
                        ))
                    }
                    Err(message) => api
                        .fetch_failed
                        .clone()
                        .restore(ctx)?
                        .call::<_, ()>((id as f64, message)),
                });
            }
            HostEvent::FetchChunk { id, owner, chunk } => {
                let owner = self.live_owner(owner);
                self.run(owner, move |ctx, api| {
                    let buf = ArrayBuffer::new_copy(ctx.clone(), &chunk[..])?;
                    api.fetch_chunk
                        .clone()
                        .restore(ctx)?
                        .call::<_, ()>((id as f64, buf))
                });
            }
            HostEvent::DurableReply {
                call,
                owner,
                result,
            } => durable::deliver_reply(self, call, owner, result),
            HostEvent::FetchEnd { id, owner, error } => {
                self.host.fetches.borrow_mut().remove(&id);
                self.host.fetch_credits.borrow_mut().remove(&id);
                let owner = self.live_owner(owner);
                self.run(owner, move |ctx, api| {
                    api.fetch_end
                        .clone()
                        .restore(ctx)?
                        .call::<_, ()>((id as f64, error))
                });
            }
        }
    }

    /// `owner` if that request is still live, else 0 (no request).
    fn live_owner(&self, owner: u64) -> u64 {
        if self.host.slots.borrow().contains_key(&owner) {
            owner
        } else {
            0
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.host
            .timers
            .borrow()
            .peek()
            .map(|Reverse((at, _, _))| *at)
    }

    /// Fails every request still in this isolate (before a rebuild).
    pub(crate) fn abandon(&self, err: DispatchError) {
        let rids: Vec<u64> = self.host.slots.borrow().keys().copied().collect();
        for rid in rids {
            self.host.send(rid, Err(err.clone()));
        }
        self.host.slots.borrow_mut().clear();
        self.host.sockets.borrow_mut().clear();
        self.host.closed_here.borrow_mut().clear();
        self.host.closed_there.borrow_mut().clear();
        let streams: Vec<u64> = self.host.streams.borrow().keys().copied().collect();
        for rid in streams {
            self.host.fail_stream(rid, err.to_string());
        }
        for (_, (h, _)) in self.host.fetches.borrow_mut().drain() {
            h.abort();
        }
        self.host.fetch_credits.borrow_mut().clear();
        self.host.timers.borrow_mut().clear();
        self.host.cancelled_timers.borrow_mut().clear();
        self.host.ended_requests.borrow_mut().clear();
        self.host.request_bodies.borrow_mut().clear();
        self.host.streamed_bodies.borrow_mut().clear();
    }

    /// Serves until shut down, or until the isolate must be rebuilt.
    pub(crate) async fn serve(
        &mut self,
        jobs: &mut mpsc::UnboundedReceiver<Job>,
        shutting_down: &mut Option<Instant>,
    ) -> Exit {
        loop {
            if self.host.out_of_memory.get() {
                return Exit::Rebuild;
            }
            self.drop_ended_io();
            if !self.host.slots.borrow().is_empty() && self.idle() {
                self.reap_hung();
            }
            if let Some(since) = *shutting_down
                && (self.host.slots.borrow().is_empty() || since.elapsed() > SHUTDOWN_GRACE)
            {
                return Exit::Done;
            }
            let deadline = self.next_deadline();
            let grace = shutting_down.map(|s| s + SHUTDOWN_GRACE);
            tokio::select! {
                biased;
                Some(ev) = self.events.recv() => self.handle_event(ev),
                job = jobs.recv(), if shutting_down.is_none() => match job {
                    Some(Job::Request(req, tx)) => self.start_request(req, tx),
                    Some(Job::Event(ev, tx)) => self.start_event(ev, tx),
                    Some(Job::Object(job, tx)) => durable::start_object_event(self, job, tx),
                    Some(Job::Service(job, tx)) => durable::start_service_event(self, job, tx),
                    Some(Job::Shutdown) | None => *shutting_down = Some(Instant::now()),
                },
                _ = sleep_until(deadline), if deadline.is_some() => self.fire_timers(),
                _ = sleep_until(grace), if grace.is_some() => {}
            }
        }
    }

    /// Nothing can wake JavaScript again: no timer, fetch, socket or event.
    fn idle(&self) -> bool {
        self.host.timers.borrow().is_empty()
            && self.host.fetches.borrow().is_empty()
            && self.host.sockets.borrow().is_empty()
            && self.host.stream_waits.get() == 0
            && self.host.body_pulls.get() == 0
            && !self.host.durable.busy()
            && self.events.is_empty()
    }

    /// Ends requests that wait on promises nothing can settle any more.
    fn reap_hung(&self) {
        let rids: Vec<u64> = self.host.slots.borrow().keys().copied().collect();
        for rid in rids {
            let pending = self
                .host
                .slots
                .borrow()
                .get(&rid)
                .is_some_and(|s| s.responder.is_some());
            if pending {
                tracing::error!(target: "hearth::worker", request_id = %self.host.tag(rid), "{NEVER_RESPONDS}");
                self.host.send(
                    rid,
                    Err(DispatchError::Exception {
                        message: NEVER_RESPONDS.into(),
                        stack: format!("Error: {NEVER_RESPONDS}"),
                        pass_through: false,
                    }),
                );
            }
            self.host.fail_stream(rid, NEVER_RESPONDS.into());
            self.host.finish(rid);
        }
    }

    /// Frees the JS side of what ended requests left: timers, unread
    /// streamed bodies.
    fn drop_ended_io(&self) {
        let timers = self.host.cancelled_timers.take();
        let requests = self.host.ended_requests.take();
        if timers.is_empty() && requests.is_empty() {
            return;
        }
        self.run(0, move |ctx, api| {
            let timers: Vec<f64> = timers.into_iter().map(|id| id as f64).collect();
            let requests: Vec<f64> = requests.into_iter().map(|id| id as f64).collect();
            api.end_io
                .clone()
                .restore(ctx)?
                .call::<_, ()>((timers, requests))
        });
    }

    pub(crate) fn memory_used(&self) -> i64 {
        self.runtime.memory_usage().malloc_size
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

fn make_host_object<'js>(ctx: &Ctx<'js>, host: &Rc<Host>) -> rquickjs::Result<Object<'js>> {
    let obj = Object::new(ctx.clone())?;

    let h = host.clone();
    obj.set(
        "log",
        Function::new(ctx.clone(), move |level: i32, msg: String| {
            let tag = h.current_tag();
            match level {
                0 => tracing::trace!(target: "hearth::console", request_id = %tag, "{msg}"),
                1 => tracing::debug!(target: "hearth::console", request_id = %tag, "{msg}"),
                3 => tracing::warn!(target: "hearth::console", request_id = %tag, "{msg}"),
                4 => tracing::error!(target: "hearth::console", request_id = %tag, "{msg}"),
                _ => tracing::info!(target: "hearth::console", request_id = %tag, "{msg}"),
            }
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "now",
        Function::new(ctx.clone(), move || h.origin.elapsed().as_millis() as f64)?,
    )?;

    let h = host.clone();
    obj.set(
        "timerStart",
        Function::new(ctx.clone(), move |id: f64, delay: f64| {
            let at = Instant::now() + Duration::from_millis(delay.max(0.0) as u64);
            let owner = h.owner.get();
            if let Some(slot) = h.slots.borrow_mut().get_mut(&owner) {
                slot.set_timers = true;
            }
            h.timers.borrow_mut().push(Reverse((at, id as u64, owner)));
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "respond",
        Function::new(
            ctx.clone(),
            move |rid: f64, out: Array<'js>| -> rquickjs::Result<()> {
                let rid = rid as u64;
                let status: u16 = out.get(0)?;
                let status_text: String = out.get(1)?;
                let flat: Vec<String> = out.get(2)?;
                let body: Value = out.get(3)?;
                let body = value_to_bytes(&body)?;
                h.send(
                    rid,
                    Ok(WorkerResponse {
                        status,
                        status_text,
                        headers: pairs_from_flat(flat),
                        body,
                        stream: None,
                        web_socket: None,
                    }),
                );
                Ok(())
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "respondStream",
        Function::new(
            ctx.clone(),
            move |rid: f64, out: Array<'js>| -> rquickjs::Result<()> {
                let rid = rid as u64;
                let status: u16 = out.get(0)?;
                let status_text: String = out.get(1)?;
                let flat: Vec<String> = out.get(2)?;
                let (tx, rx) = mpsc::channel(BODY_STREAM_CHUNKS);
                h.streams.borrow_mut().insert(rid, tx);
                h.send(
                    rid,
                    Ok(WorkerResponse {
                        status,
                        status_text,
                        headers: pairs_from_flat(flat),
                        body: Bytes::new(),
                        stream: Some(rx),
                        web_socket: None,
                    }),
                );
                Ok(())
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "respondWebSocket",
        Function::new(
            ctx.clone(),
            move |rid: f64, out: Array<'js>, id: f64| -> rquickjs::Result<()> {
                let rid = rid as u64;
                let id = id as u64;
                let status: u16 = out.get(0)?;
                let status_text: String = out.get(1)?;
                let flat: Vec<String> = out.get(2)?;
                // A socket an object answered with is already connected.
                let channel = match h.durable.take_remote_socket(id) {
                    Some(channel) => channel,
                    None => {
                        let (tx, rx) = crate::ws_queue();
                        h.sockets.borrow_mut().insert(id, (tx, rid));
                        WebSocketChannel {
                            outgoing: rx,
                            incoming: WebSocketSink::new(id, h.events.clone()),
                        }
                    }
                };
                h.send(
                    rid,
                    Ok(WorkerResponse {
                        status,
                        status_text,
                        headers: pairs_from_flat(flat),
                        body: Bytes::new(),
                        stream: None,
                        web_socket: Some(channel),
                    }),
                );
                Ok(())
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "wsSend",
        Function::new(
            ctx.clone(),
            move |id: f64, data: Value<'js>| -> rquickjs::Result<()> {
                let msg = match data.as_string() {
                    Some(s) => WsMessage::Text(s.to_string()?),
                    None => WsMessage::Binary(value_to_bytes(&data)?),
                };
                let id = id as u64;
                let sent = match h.sockets.borrow().get(&id) {
                    Some((tx, _)) => tx.send(msg),
                    None => Ok(()),
                };
                if sent == Err(WsSendError::Overflow) {
                    // The client is not reading: the front closes the
                    // connection with 1009 and the worker's end hears so.
                    // Later sends are dropped, as after a disconnect.
                    let sockets = h.sockets.borrow();
                    let first = sockets.get(&id).is_some_and(|_| !h.closed_here.borrow().contains(&id));
                    drop(sockets);
                    if first {
                        h.closed_here.borrow_mut().insert(id);
                        tracing::warn!(target: "hearth::worker", request_id = %h.current_tag(), "WebSocket closed: the client did not read {} bytes the worker sent (send queue limit)", crate::WEBSOCKET_SEND_QUEUE_BYTES);
                        let _ = h.events.send(HostEvent::WebSocket {
                            id,
                            msg: WsMessage::Close {
                                code: 1009,
                                reason: "send queue full: the client is not reading".into(),
                            },
                            permit: None,
                        });
                    }
                }
                Ok(())
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "wsClose",
        Function::new(ctx.clone(), move |id: f64, code: u16, reason: String| {
            // The entry stays until the other side's close arrives (or the
            // connection ends, which delivers 1006), so the worker's end
            // still gets its `close` event.
            let id = id as u64;
            if let Some((tx, _)) = h.sockets.borrow().get(&id) {
                let _ = tx.send(WsMessage::Close { code, reason });
                h.closed_here.borrow_mut().insert(id);
            } else if let Some(tx) = h.closed_there.borrow_mut().remove(&id) {
                let _ = tx.send(WsMessage::Close { code, reason });
            }
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "streamChunk",
        Function::new(
            ctx.clone(),
            // 0: sent, ask for more; 1: sent, but wait for `streamReady`
            // before the next chunk; 2: the client went away.
            move |rid: f64, chunk: Value<'js>| -> rquickjs::Result<u8> {
                let rid = rid as u64;
                let bytes = value_to_bytes(&chunk)?;
                let streams = h.streams.borrow();
                let Some(tx) = streams.get(&rid) else {
                    return Ok(2);
                };
                match tx.try_send(Ok(bytes)) {
                    Ok(()) if tx.capacity() > 0 => Ok(0),
                    Ok(()) => {
                        // Full: the worker's stream is not read again
                        // until the client has taken a chunk. The loop
                        // waits on this, never the isolate thread.
                        let tx = tx.clone();
                        let events = h.events.clone();
                        h.stream_waits.set(h.stream_waits.get() + 1);
                        tokio::spawn(async move {
                            let open = tx.reserve().await.is_ok();
                            let _ = events.send(HostEvent::StreamReady { rid, open });
                        });
                        Ok(1)
                    }
                    Err(mpsc::error::TrySendError::Full(item)) => {
                        // Only after an error was queued; keep the order.
                        let tx = tx.clone();
                        let events = h.events.clone();
                        h.stream_waits.set(h.stream_waits.get() + 1);
                        tokio::spawn(async move {
                            let open = tx.send(item).await.is_ok();
                            let _ = events.send(HostEvent::StreamReady { rid, open });
                        });
                        Ok(1)
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => Ok(2),
                }
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "streamEnd",
        Function::new(ctx.clone(), move |rid: f64, err: Value<'js>| {
            let rid = rid as u64;
            if err.is_null() || err.is_undefined() {
                h.streams.borrow_mut().remove(&rid);
            } else if h.streams.borrow().contains_key(&rid) {
                let (_, stack) = describe_exception(&err);
                tracing::error!(target: "hearth::worker", request_id = %h.tag(rid), "response body stream failed: {stack}");
                h.fail_stream(rid, stack);
            }
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "fail",
        Function::new(ctx.clone(), move |rid: f64, err: Value<'js>| {
            h.fail_with(rid as u64, &err);
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "uncaught",
        Function::new(ctx.clone(), move |rid: f64, err: Value<'js>| {
            let (message, stack) = describe_exception(&err);
            if message.contains("out of memory") {
                h.out_of_memory.set(true);
            }
            tracing::error!(target: "hearth::worker", request_id = %h.tag(rid as u64), "Uncaught (in waitUntil) {stack}");
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "done",
        Function::new(ctx.clone(), move |rid: f64| h.finish(rid as u64))?,
    )?;

    let h = host.clone();
    obj.set(
        "passThrough",
        Function::new(ctx.clone(), move |rid: f64| {
            if let Some(s) = h.slots.borrow_mut().get_mut(&(rid as u64)) {
                s.pass_through = true;
            }
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "fetchStart",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  id: f64,
                  method: String,
                  url: String,
                  headers: Vec<String>,
                  body: Value<'js>,
                  redirect: String|
                  -> rquickjs::Result<()> {
                let owner = h.owner.get();
                let limits = &h.config.limits;
                if let Some(slot) = h.slots.borrow_mut().get_mut(&owner) {
                    slot.subrequests += 1;
                    if slot.subrequests > limits.max_subrequests {
                        return Err(rquickjs::Exception::throw_message(
                            &ctx,
                            &format!(
                                "Too many subrequests. (limits.max_subrequests = {})",
                                limits.max_subrequests
                            ),
                        ));
                    }
                }
                let body = value_to_bytes(&body)?;
                let req = FetchRequest {
                    method,
                    url,
                    headers: pairs_from_flat(headers),
                    body,
                    redirect: RedirectMode::parse(&redirect),
                    max_redirects: limits.max_redirects,
                    timeout: Duration::from_millis(limits.subrequest_timeout_ms),
                };
                let max_body = limits.max_subrequest_response_bytes;
                let events = h.events.clone();
                let client = h.client.clone();
                let id = id as u64;
                // The body is read at most FETCH_READ_AHEAD_BYTES ahead of
                // the worker's stream, which grants a credit each time it
                // wants more. A small body the worker never reads still
                // arrives whole, so its connection is freed.
                let credits = Arc::new(tokio::sync::Semaphore::new(0));
                h.fetch_credits.borrow_mut().insert(id, credits.clone());
                let task = tokio::spawn(async move {
                    let mut body = match fetch::fetch(&client, req).await {
                        Ok((head, body)) => {
                            let _ = events.send(HostEvent::Fetch {
                                id,
                                owner,
                                result: Ok(head),
                            });
                            body
                        }
                        Err(e) => {
                            let _ = events.send(HostEvent::Fetch {
                                id,
                                owner,
                                result: Err(e),
                            });
                            return;
                        }
                    };
                    // Chunks go to JS as they arrive; the entry in
                    // `fetches` keeps the isolate awake until the end.
                    let mut seen = 0;
                    let mut ahead = 0;
                    let error = loop {
                        match fetch::read_chunk(&mut body, &mut seen, max_body).await {
                            Ok(Some(chunk)) => {
                                if ahead >= FETCH_READ_AHEAD_BYTES {
                                    match credits.acquire().await {
                                        Ok(permit) => permit.forget(),
                                        Err(_) => return,
                                    }
                                    ahead = 0;
                                }
                                ahead += chunk.len();
                                if events
                                    .send(HostEvent::FetchChunk { id, owner, chunk })
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Ok(None) => break None,
                            Err(e) => break Some(e),
                        }
                    };
                    let _ = events.send(HostEvent::FetchEnd { id, owner, error });
                });
                h.fetches
                    .borrow_mut()
                    .insert(id, (task.abort_handle(), owner));
                Ok(())
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "fetchAbort",
        Function::new(ctx.clone(), move |id: f64| {
            let id = id as u64;
            if let Some((task, _)) = h.fetches.borrow_mut().remove(&id) {
                task.abort();
            }
            h.fetch_credits.borrow_mut().remove(&id);
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "bodyPull",
        Function::new(ctx.clone(), move |rid: f64| {
            let rid = rid as u64;
            // Absent while a read is already waiting, or after the end.
            let Some(mut rx) = h.request_bodies.borrow_mut().remove(&rid) else {
                return;
            };
            let events = h.events.clone();
            h.body_pulls.set(h.body_pulls.get() + 1);
            tokio::spawn(async move {
                let item = rx.recv().await;
                let _ = events.send(HostEvent::BodyChunk { rid, rx, item });
            });
        })?,
    )?;

    let h = host.clone();
    obj.set(
        "fetchPull",
        Function::new(ctx.clone(), move |id: f64| {
            if let Some(credits) = h.fetch_credits.borrow().get(&(id as u64))
                && credits.available_permits() == 0
            {
                credits.add_permits(1);
            }
        })?,
    )?;

    Ok(obj)
}

/// Runs one isolate thread: builds the isolate, serves, rebuilds it after a
/// fatal fault, exits on shutdown.
pub(crate) fn run_thread(
    config: Arc<WorkerConfig>,
    stats: Arc<IsolateStats>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(), StartError>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(StartError::Thread(e)));
            return;
        }
    };
    let mut ready = Some(ready);
    let mut shutting_down: Option<Instant> = None;
    rt.block_on(async {
        loop {
            let built = {
                let _guard = rt.enter();
                Isolate::build(config.clone(), stats.clone())
            };
            let mut isolate = match built {
                Ok(i) => i,
                Err(e) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(e));
                    } else {
                        // Rebuilding failed after a good start: the files
                        // changed under us. Keep the error visible and stop.
                        tracing::error!(target: "hearth::worker", "cannot rebuild isolate: {e}");
                    }
                    return;
                }
            };
            stats
                .memory_bytes
                .store(isolate.memory_used().max(0) as u64, Ordering::Relaxed);
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(()));
            }
            let exit = {
                let fut = std::panic::AssertUnwindSafe(isolate.serve(&mut jobs, &mut shutting_down));
                futures::FutureExt::catch_unwind(fut).await
            };
            match exit {
                Ok(Exit::Done) => return,
                Ok(Exit::Rebuild) => {
                    tracing::warn!(target: "hearth::worker", "rebuilding isolate after it exceeded its memory limit");
                    isolate.abandon(DispatchError::IsolateRestarted);
                }
                Err(_) => {
                    tracing::error!(target: "hearth::worker", "isolate panicked; rebuilding it");
                    isolate.abandon(DispatchError::IsolateRestarted);
                }
            }
            drop(isolate);
            stats.restarts.fetch_add(1, Ordering::Relaxed);
            if shutting_down.is_some() {
                return;
            }
        }
    });
}

/// Whether two raw values are the same object (or equal primitives).
fn same_value(a: &qjs::JSValue, b: &qjs::JSValue) -> bool {
    // SAFETY: reads the tag and pointer fields only; no reference counts change.
    unsafe {
        qjs::JS_VALUE_GET_PTR(*a) == qjs::JS_VALUE_GET_PTR(*b)
            && qjs::JS_VALUE_GET_TAG(*a) == qjs::JS_VALUE_GET_TAG(*b)
    }
}

/// Whether the runtime holding `value` has used at least 90% of `limit` bytes.
fn heap_near_limit(value: &Value<'_>, limit: usize) -> bool {
    // SAFETY: the runtime lock is held while a `Value` of it is alive; this
    // only reads the allocator's statistics.
    let used = unsafe {
        let rt = qjs::JS_GetRuntime(value.ctx().as_raw().as_ptr());
        let mut usage = std::mem::MaybeUninit::<qjs::JSMemoryUsage>::zeroed();
        qjs::JS_ComputeMemoryUsage(rt, usage.as_mut_ptr());
        usage.assume_init().malloc_size
    };
    used >= 0 && (used as u128) * 10 >= (limit as u128) * 9
}
