//! One isolate: a QuickJS runtime and context owned by one OS thread, which
//! runs a current-thread tokio runtime as the isolate's event loop.
//!
//! The loop waits on three sources: new requests from the pool, completions
//! of host work (outgoing fetches), and the earliest timer deadline. Every
//! entry into JavaScript is a *slice* attributed to one request; the slice's
//! time is charged to that request's CPU budget, and QuickJS's interrupt
//! handler stops the slice once the budget is spent.

use std::rc::Rc;

use bytes::Bytes;
use rquickjs::{Context, Function, Persistent, Runtime, TypedArray, Value, qjs};
use tokio::sync::{mpsc, oneshot};

use crate::error::DispatchError;
use crate::fetch;
use crate::{WorkerRequest, WorkerResponse, WsMessage};

const PRELUDE: &str = include_str!("../../js/prelude.js");

mod build;
mod durable;
mod event_loop;
mod host;
mod natives;
mod tcp;

use host::{Host, Slot};

pub(crate) use event_loop::run_thread;

/// Bytes of a fetched body read ahead of the worker's stream of it.
const FETCH_READ_AHEAD_BYTES: usize = 256 * 1024;

/// Where an isolate sends the outcome of a job.
pub(crate) enum Responder {
    /// A task awaiting it (the HTTP front, a pool caller, the alarm loop).
    Channel(oneshot::Sender<Result<WorkerResponse, DispatchError>>),
    /// A stub's call from an isolate: the answer goes straight onto that
    /// isolate's event queue, with no task in between.
    Call(CallReply),
}

impl From<oneshot::Sender<Result<WorkerResponse, DispatchError>>> for Responder {
    fn from(tx: oneshot::Sender<Result<WorkerResponse, DispatchError>>) -> Self {
        Responder::Channel(tx)
    }
}

impl Responder {
    pub(crate) fn send(self, result: Result<WorkerResponse, DispatchError>) {
        match self {
            Responder::Channel(tx) => {
                let _ = tx.send(result);
            }
            Responder::Call(mut reply) => reply.deliver(result),
        }
    }
}

/// The answer to call `call` of request `owner` in the isolate whose event
/// queue `events` is. Dropped unanswered (its isolate was rebuilt or shut
/// down), it answers that the callee restarted, as a dropped channel did.
pub(crate) struct CallReply {
    events: mpsc::UnboundedSender<HostEvent>,
    call: u64,
    owner: u64,
    sent: bool,
}

impl CallReply {
    pub(crate) fn new(events: mpsc::UnboundedSender<HostEvent>, call: u64, owner: u64) -> Self {
        Self {
            events,
            call,
            owner,
            sent: false,
        }
    }

    /// The answer will come another way: dropping this sends nothing.
    pub(crate) fn unused(mut self) {
        self.sent = true;
    }

    fn deliver(&mut self, result: Result<WorkerResponse, DispatchError>) {
        self.sent = true;
        let (events, call, owner) = (self.events.clone(), self.call, self.owner);
        match result {
            // A streamed answer is read whole first, off this thread's turn.
            Ok(resp) if resp.stream.is_some() => {
                tokio::spawn(async move {
                    let result = durable::collect_reply(resp).await;
                    let _ = events.send(HostEvent::DurableReply {
                        call,
                        owner,
                        result,
                    });
                });
            }
            result => {
                let _ = events.send(HostEvent::DurableReply {
                    call,
                    owner,
                    result,
                });
            }
        }
    }
}

impl Drop for CallReply {
    fn drop(&mut self) {
        if !self.sent {
            self.deliver(Err(DispatchError::IsolateRestarted));
        }
    }
}

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
    /// A fetch's full request body channel has room again (`open`), or
    /// the fetch stopped reading it.
    FetchBodyReady { id: u64, owner: u64, open: bool },
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
    /// Something happened on an outbound TCP socket.
    Tcp {
        id: u64,
        owner: u64,
        event: tcp::TcpEvent,
    },
    /// A Durable Object answered a call made from this isolate.
    DurableReply {
        call: u64,
        owner: u64,
        result: Result<WorkerResponse, DispatchError>,
    },
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

/// The frames of a stack that JS reads with V8's `Name: message` line first
/// (see the prelude), for a description that puts its own head line on.
fn without_header<'a>(stack: &'a str, head: &str) -> &'a str {
    match stack.strip_prefix(head) {
        Some("") => "",
        Some(rest) => rest.strip_prefix('\n').unwrap_or(stack),
        None => stack,
    }
}

/// `(message, "Name: message\n    at ...")` of a thrown value.
fn describe_exception(v: &Value<'_>) -> (String, String) {
    if let Some(obj) = v.as_object() {
        let name: Option<String> = obj.get("name").ok();
        let message: Option<String> = obj.get("message").ok();
        let stack: Option<String> = obj.get("stack").ok();
        let message = message.unwrap_or_default();
        // The line the prelude's `stack` getter puts first.
        let js_head = match name.as_deref().unwrap_or("Error") {
            "" => message.clone(),
            n if message.is_empty() => n.to_owned(),
            n => format!("{n}: {message}"),
        };
        let head = match name {
            Some(n) if !n.is_empty() => format!("{n}: {message}"),
            _ => message.clone(),
        };
        let stack = match stack
            .as_deref()
            .map(|s| without_header(s.trim_end(), &js_head))
        {
            Some(s) if !s.trim().is_empty() => {
                let frames = crate::modules::remap_stack(&user_frames(s));
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
    if let Some(buf) = crate::bindings::support::as_array_buffer(v) {
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
    fetch_body_ready: Persistent<Function<'static>>,
    body_chunk: Persistent<Function<'static>>,
    end_io: Persistent<Function<'static>>,
    reset_context: Persistent<Function<'static>>,
    tcp_event: Persistent<Function<'static>>,
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
