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
mod config;
pub mod cron;
pub mod durable;
mod error;
pub mod events;
mod fetch;
mod isolate;
pub mod limits;
mod loader;
pub mod modules;
pub mod native_worker;
mod pool;
pub mod queue_consumer;
pub mod services;
pub mod structured_clone;
pub mod workflows;

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
    pub body: Bytes,
}

/// A streamed body: chunks in order, then the channel closes. An `Err`
/// means the worker's stream failed and the body is incomplete.
pub type BodyStream = tokio::sync::mpsc::UnboundedReceiver<Result<Bytes, String>>;

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

/// The host side of a worker's WebSocket.
#[derive(Debug)]
pub struct WebSocketChannel {
    /// Messages the worker sends to the client; a `Close` ends the stream.
    pub outgoing: tokio::sync::mpsc::UnboundedReceiver<WsMessage>,
    /// Where the front delivers the client's messages.
    pub incoming: WebSocketSink,
}

/// Delivers client messages to the worker's end of a WebSocket.
#[derive(Debug, Clone)]
pub struct WebSocketSink {
    pub(crate) id: u64,
    pub(crate) events: tokio::sync::mpsc::UnboundedSender<isolate::HostEvent>,
}

impl WebSocketSink {
    /// Queues a message for the worker; false once the isolate is gone.
    pub fn send(&self, msg: WsMessage) -> bool {
        self.events
            .send(isolate::HostEvent::WebSocket { id: self.id, msg })
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
