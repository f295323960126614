//! The JavaScript engine host: isolates, event loop, timers, console,
//! outgoing `fetch()`, module loader and request dispatch.
//!
//! # Shape
//!
//! An isolate is one QuickJS runtime + context owned by one OS thread that
//! runs a current-thread tokio runtime as its event loop ([`IsolatePool`]
//! starts one per core). The HTTP front, on its own multi-thread runtime,
//! sends a [`WorkerRequest`] over a channel to the least-busy isolate and
//! awaits the [`WorkerResponse`] on a oneshot channel.
//!
//! Why this shape rather than rquickjs's `AsyncRuntime`: the host needs to
//! see every entry into JavaScript, to charge its time to the right request
//! (the per-request CPU limit), to learn which exception a microtask threw,
//! and to rebuild the isolate after an out-of-memory fault. A plain
//! `Runtime` driven by our own loop makes each of those one explicit step,
//! and keeps the per-request path to one JS call plus a channel hop.
//!
//! The worker's module is evaluated once per isolate; its default export is
//! kept and `fetch(request, env, ctx)` is called per request. No context is
//! created per request.
//!
//! A request whose promises nothing can settle any more (no timer, fetch,
//! WebSocket or host event pending in its isolate) is answered at once
//! with Workers' "The script will never generate a response." Host work
//! that resolves JS promises later must therefore be registered with the
//! isolate's loop (as timers and fetches are), or it would count as idle.
//!
//! # Boundaries
//!
//! This crate knows no HTTP wire format: requests and responses cross it as
//! plain method/url/header pairs/bytes. The worker cannot reach the host
//! filesystem (imports are confined to the module root, no `std`/`os`
//! modules) nor the process environment (only `vars` and secrets reach
//! `env`). Binding adapters plug in through [`bindings::BindingAdapter`].

pub mod bindings;
pub mod bytecode;
mod cache;
pub mod cluster;
mod config;
pub mod durable;
mod error;
pub mod events;
mod fetch;
mod isolate;
pub mod limits;
mod loader;
pub mod local;
pub mod modules;
pub mod native_worker;
mod pool;
pub mod services;
pub mod structured_clone;

pub use bindings::{BindingAdapter, BindingInfo};
pub use config::WorkerConfig;
pub use error::{DispatchError, StartError};
pub use events::{QueueEventOutcome, ScheduledOutcome, WorkerEvent};
pub use fetch::SUBREQUEST_MARKER;
pub use limits::Limits;
pub use native_worker::{NativeContext, NativeEnv, NativeWorker, RustWorker};
pub use pool::{IsolatePool, IsolateSnapshot, IsolateStats};
pub use services::{ServiceBinding, ServiceCall, ServiceRegistry, ServiceTarget};

use bytes::Bytes;

/// A request handed to the worker.
#[derive(Debug, Clone)]
pub struct WorkerRequest {
    /// Request id, used to tag log lines (`request_id` field).
    pub id: String,
    pub method: String,
    /// Absolute URL, e.g. `http://example.com/path?q=1`.
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The whole body, unless `body_stream` is set (then this is empty).
    pub body: Bytes,
    /// Set when the body is still arriving: the worker reads it as a
    /// stream, as fast as it wants it.
    pub body_stream: Option<RequestBodyStream>,
    /// `request.cf` as JSON text, from the HTTP front (which knows the
    /// connection and, with a GeoIP database, the client's place). `None`
    /// gives the worker the runtime's minimal `cf`.
    pub cf: Option<String>,
}

impl WorkerRequest {
    /// A request without headers or body (a GET, typically), tagged `id` in
    /// logs; the fields are public for anything more.
    pub fn new(id: impl Into<String>, method: impl Into<String>, url: impl Into<String>) -> Self {
        WorkerRequest {
            id: id.into(),
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Bytes::new(),
            body_stream: None,
            cf: None,
        }
    }

    /// The whole body, waiting for a streamed one to arrive.
    pub async fn collect_body(&mut self) -> Result<Bytes, String> {
        let Some(stream) = self.body_stream.take() else {
            return Ok(std::mem::take(&mut self.body));
        };
        let Some(mut rx) = stream.take() else {
            return Err(REQUEST_BODY_TAKEN.into());
        };
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }
}

/// Why a streamed request body cannot be read again.
pub(crate) const REQUEST_BODY_TAKEN: &str =
    "The request body was already read by an isolate that has since stopped.";

/// Chunks of a request body that may wait for the worker to read them; the
/// front stops reading from the client past it.
pub const REQUEST_BODY_CHUNKS: usize = 4;

/// A request body still arriving: chunks in order, then the channel closes;
/// an `Err` means the client's body failed (and names why). Cloning shares
/// it: whichever isolate takes it first reads it.
#[derive(Debug, Clone)]
pub struct RequestBodyStream(std::sync::Arc<std::sync::Mutex<Option<BodyChunks>>>);

/// Chunks of a body in order; an `Err` ends it early and says why.
type BodyChunks = tokio::sync::mpsc::Receiver<Result<Bytes, String>>;

impl RequestBodyStream {
    /// A stream and the sender the front feeds it through.
    pub fn channel() -> (tokio::sync::mpsc::Sender<Result<Bytes, String>>, Self) {
        let (tx, rx) = tokio::sync::mpsc::channel(REQUEST_BODY_CHUNKS);
        (
            tx,
            Self(std::sync::Arc::new(std::sync::Mutex::new(Some(rx)))),
        )
    }

    pub(crate) fn take(&self) -> Option<BodyChunks> {
        match self.0.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

/// Chunks of a streamed body that may wait between the isolate and the
/// client. The isolate reads the worker's stream only as fast as this
/// drains, so a slow client holds at most this many chunks in memory.
pub const BODY_STREAM_CHUNKS: usize = 4;

/// A streamed body: chunks in order, then the channel closes. An `Err`
/// means the worker's stream failed and the body is incomplete. The channel
/// is bounded ([`BODY_STREAM_CHUNKS`]).
pub type BodyStream = tokio::sync::mpsc::Receiver<Result<Bytes, String>>;

/// The worker's response.
#[derive(Debug)]
pub struct WorkerResponse {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    /// The whole body, unless `stream` is set (then this is empty).
    pub body: Bytes,
    /// Set when the worker answered with a `ReadableStream` body.
    pub stream: Option<BodyStream>,
    /// Set when the worker answered 101 with the client end of a
    /// `WebSocketPair`: the front upgrades the connection and carries
    /// messages both ways.
    pub web_socket: Option<WebSocketChannel>,
}

/// One WebSocket message, either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    Text(String),
    Binary(Bytes),
    Close { code: u16, reason: String },
}

impl WsMessage {
    /// Payload bytes, as counted against the queue budgets.
    pub fn len(&self) -> usize {
        match self {
            WsMessage::Text(t) => t.len(),
            WsMessage::Binary(b) => b.len(),
            WsMessage::Close { reason, .. } => reason.len() + 2,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bytes a worker may have sent on one WebSocket that the client has not
/// taken yet. Past it the connection is closed with 1009 (message too big)
/// rather than queueing without bound for a client that does not read.
pub const WEBSOCKET_SEND_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Bytes of client messages on one WebSocket waiting for the worker; the
/// connection stops reading from the client past it.
pub const WEBSOCKET_RECEIVE_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Shared accounting of one direction's queued bytes.
#[derive(Debug, Default)]
struct QueueBudget {
    queued: std::sync::atomic::AtomicUsize,
    overflowed: std::sync::atomic::AtomicBool,
    overflow: tokio::sync::Notify,
}

/// The sending half of a worker-to-client message queue.
#[derive(Debug, Clone)]
pub(crate) struct WsSender {
    tx: tokio::sync::mpsc::UnboundedSender<WsMessage>,
    budget: std::sync::Arc<QueueBudget>,
}

/// Why a message could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WsSendError {
    /// The receiving side is gone.
    Closed,
    /// More than [`WEBSOCKET_SEND_QUEUE_BYTES`] would be waiting.
    Overflow,
}

impl WsSender {
    /// Queues `msg`. A close frame always fits, so a worker can end a
    /// socket whatever its backlog.
    pub(crate) fn send(&self, msg: WsMessage) -> Result<(), WsSendError> {
        use std::sync::atomic::Ordering;
        let len = msg.len();
        let is_close = matches!(msg, WsMessage::Close { .. });
        if !is_close {
            if self.budget.overflowed.load(Ordering::Acquire) {
                return Err(WsSendError::Overflow);
            }
            let before = self.budget.queued.fetch_add(len, Ordering::AcqRel);
            if before + len > WEBSOCKET_SEND_QUEUE_BYTES {
                self.budget.queued.fetch_sub(len, Ordering::AcqRel);
                self.budget.overflowed.store(true, Ordering::Release);
                self.budget.overflow.notify_one();
                return Err(WsSendError::Overflow);
            }
        } else {
            self.budget.queued.fetch_add(len, Ordering::AcqRel);
        }
        self.tx.send(msg).map_err(|_| WsSendError::Closed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Messages the worker sends to the client, in order; a `Close` ends them.
#[derive(Debug)]
pub struct WsOutgoing {
    rx: tokio::sync::mpsc::UnboundedReceiver<WsMessage>,
    budget: std::sync::Arc<QueueBudget>,
}

impl WsOutgoing {
    /// The next message, or `None` once the worker's end is gone.
    pub async fn recv(&mut self) -> Option<WsMessage> {
        let msg = self.rx.recv().await?;
        self.budget
            .queued
            .fetch_sub(msg.len(), std::sync::atomic::Ordering::AcqRel);
        Some(msg)
    }

    /// Tells when the worker has sent more than the client took, past
    /// [`WEBSOCKET_SEND_QUEUE_BYTES`]: the connection should then be closed.
    pub fn overflow(&self) -> WsOverflow {
        WsOverflow(self.budget.clone())
    }

    /// Bytes queued and not yet taken.
    pub fn queued_bytes(&self) -> usize {
        self.budget
            .queued
            .load(std::sync::atomic::Ordering::Acquire)
    }
}

/// See [`WsOutgoing::overflow`].
#[derive(Debug, Clone)]
pub struct WsOverflow(std::sync::Arc<QueueBudget>);

impl WsOverflow {
    /// Resolves once the send queue has overflowed.
    pub async fn wait(&self) {
        loop {
            if self.0.overflowed.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            self.0.overflow.notified().await;
        }
    }
}

/// A bounded (by bytes) queue from a worker's WebSocket to its client.
pub(crate) fn ws_queue() -> (WsSender, WsOutgoing) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let budget = std::sync::Arc::new(QueueBudget::default());
    (
        WsSender {
            tx,
            budget: budget.clone(),
        },
        WsOutgoing { rx, budget },
    )
}

/// The host side of a worker's WebSocket.
#[derive(Debug)]
pub struct WebSocketChannel {
    /// Messages the worker sends to the client; a `Close` ends the stream.
    pub outgoing: WsOutgoing,
    /// Where the front delivers the client's messages.
    pub incoming: WebSocketSink,
}

/// Delivers client messages to the worker's end of a WebSocket.
#[derive(Debug, Clone)]
pub struct WebSocketSink {
    pub(crate) id: u64,
    pub(crate) events: tokio::sync::mpsc::UnboundedSender<isolate::HostEvent>,
    /// Bytes of client messages the worker may have waiting.
    pub(crate) budget: std::sync::Arc<tokio::sync::Semaphore>,
}

impl WebSocketSink {
    pub(crate) fn new(
        id: u64,
        events: tokio::sync::mpsc::UnboundedSender<isolate::HostEvent>,
    ) -> Self {
        Self {
            id,
            events,
            budget: std::sync::Arc::new(tokio::sync::Semaphore::new(WEBSOCKET_RECEIVE_QUEUE_BYTES)),
        }
    }

    /// Queues a message for the worker without waiting; false once the
    /// isolate is gone. Only for a bounded number of messages (a close).
    pub fn send(&self, msg: WsMessage) -> bool {
        self.events
            .send(isolate::HostEvent::WebSocket {
                id: self.id,
                msg,
                permit: None,
            })
            .is_ok()
    }

    /// Queues a message for the worker, first waiting while more than
    /// [`WEBSOCKET_RECEIVE_QUEUE_BYTES`] of earlier ones are undelivered;
    /// false once the isolate is gone.
    pub async fn deliver(&self, msg: WsMessage) -> bool {
        let want = msg.len().clamp(1, WEBSOCKET_RECEIVE_QUEUE_BYTES) as u32;
        let Ok(permit) = self.budget.clone().acquire_many_owned(want).await else {
            return false;
        };
        self.events
            .send(isolate::HostEvent::WebSocket {
                id: self.id,
                msg,
                permit: Some(permit),
            })
            .is_ok()
    }
}

impl WorkerResponse {
    /// The whole body, waiting for a streamed one to end.
    pub async fn collect(self) -> Result<Bytes, String> {
        let Some(mut rx) = self.stream else {
            return Ok(self.body);
        };
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }
}
