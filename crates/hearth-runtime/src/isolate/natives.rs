//! The natives the prelude (`js/prelude.js`) and `js/events.js` call as
//! `host.<name>(...)`: console output, timers, answering a request, streamed
//! bodies, WebSockets and outgoing fetches. Each method works on the
//! isolate's [`Host`] state; the loop picks up what they start.

use std::cmp::Reverse;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rquickjs::class::Trace;
use rquickjs::{Array, Ctx, JsLifetime, Value};
use tokio::sync::mpsc;

use super::host::Host;
use super::{
    FETCH_READ_AHEAD_BYTES, HostEvent, describe_exception, pairs_from_flat, value_to_bytes,
};
use crate::fetch::{self, FetchRequest, RedirectMode};
use crate::{
    BODY_STREAM_CHUNKS, WebSocketChannel, WebSocketSink, WorkerResponse, WsMessage, WsSendError,
};
use hearth_core::Clock as _;

/// The prelude's `host` object.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "HostNatives")]
pub(super) struct HostNatives {
    #[qjs(skip_trace)]
    host: Rc<Host>,
}

impl HostNatives {
    pub(super) fn new(host: Rc<Host>) -> Self {
        Self { host }
    }
}

/// Status, status text and headers of a response.
type ResponseHead = (u16, String, Vec<(String, String)>);

/// The head of a response the prelude hands over as
/// `[status, statusText, flatHeaders, body]`.
fn response_head(out: &Array<'_>) -> rquickjs::Result<ResponseHead> {
    let status: u16 = out.get(0)?;
    let status_text: String = out.get(1)?;
    let flat: Vec<String> = out.get(2)?;
    Ok((status, status_text, pairs_from_flat(flat)))
}

#[rquickjs::methods]
impl HostNatives {
    /// console output at `level` (0 trace .. 4 error).
    fn log(&self, level: i32, msg: String) {
        let tag = self.host.current_tag();
        match level {
            0 => tracing::trace!(target: "hearth::console", request_id = %tag, "{msg}"),
            1 => tracing::debug!(target: "hearth::console", request_id = %tag, "{msg}"),
            3 => tracing::warn!(target: "hearth::console", request_id = %tag, "{msg}"),
            4 => tracing::error!(target: "hearth::console", request_id = %tag, "{msg}"),
            _ => tracing::info!(target: "hearth::console", request_id = %tag, "{msg}"),
        }
    }

    /// Milliseconds since the isolate started (`performance.now()`).
    fn now(&self) -> f64 {
        self.host.origin.elapsed().as_millis() as f64
    }

    /// Milliseconds since the epoch by the worker's test clock (`Date`
    /// reads it only when the worker has one).
    #[qjs(rename = "wallNow")]
    fn wall_now(&self) -> f64 {
        match &self.host.config.clock {
            Some(clock) => clock.now_ms() as f64,
            None => hearth_core::SystemClock.now_ms() as f64,
        }
    }

    /// The request JS runs for now (0 outside any), for node:fs's /tmp.
    #[qjs(rename = "requestId")]
    fn request_id(&self) -> f64 {
        self.host.owner.get() as f64
    }

    /// The current request put files in node:fs's /tmp: they are dropped
    /// (through `endIo`) when it ends.
    #[qjs(rename = "tmpUsed")]
    fn tmp_used(&self) {
        let owner = self.host.owner.get();
        if owner != 0 {
            self.host.tmp_requests.borrow_mut().insert(owner);
        }
    }

    /// The files loaded from the module root so far (node:fs's /bundle),
    /// as `/`-separated paths relative to it.
    #[qjs(rename = "bundleFiles")]
    fn bundle_files(&self) -> Vec<String> {
        let root = &self.host.module_root;
        self.host
            .config
            .loaded_files
            .paths()
            .iter()
            .filter_map(|p| p.strip_prefix(root).ok())
            .map(|rel| {
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
    }

    /// The bytes of bundle file `name` (one `bundleFiles` lists), or null.
    #[qjs(rename = "bundleRead")]
    fn bundle_read<'js>(&self, ctx: Ctx<'js>, name: String) -> rquickjs::Result<Value<'js>> {
        let path = self.host.module_root.join(&name);
        let listed = self.host.config.loaded_files.paths().contains(&path);
        if !listed || name.split('/').any(|c| c == ".." || c.is_empty()) {
            return Ok(Value::new_null(ctx));
        }
        match std::fs::read(&path) {
            Ok(bytes) => Ok(rquickjs::TypedArray::<u8>::new(ctx, bytes)?.into_value()),
            Err(_) => Ok(Value::new_null(ctx)),
        }
    }

    /// `connect()`: opens socket `id`; throws why it may not.
    #[qjs(rename = "tcpConnect")]
    fn tcp_connect<'js>(
        &self,
        ctx: Ctx<'js>,
        id: f64,
        hostname: String,
        port: f64,
        tls: bool,
    ) -> rquickjs::Result<()> {
        let port = if (1.0..=65535.0).contains(&port) {
            port as u16
        } else {
            0
        };
        super::tcp::check(&self.host, port)
            .map_err(|m| rquickjs::Exception::throw_message(&ctx, &m))?;
        super::tcp::start(&self.host, id as u64, hostname, port, tls);
        Ok(())
    }

    /// Sends bytes on socket `id`; a `written` event follows.
    #[qjs(rename = "tcpWrite")]
    fn tcp_write<'js>(&self, ctx: Ctx<'js>, id: f64, data: Value<'js>) -> rquickjs::Result<bool> {
        let bytes = value_to_bytes(&data)?;
        Ok(self.tcp_cmd(id, super::tcp::TcpCmd::Write(bytes), &ctx))
    }

    #[qjs(rename = "tcpShutdown")]
    fn tcp_shutdown<'js>(&self, ctx: Ctx<'js>, id: f64) -> bool {
        self.tcp_cmd(id, super::tcp::TcpCmd::ShutdownWrite, &ctx)
    }

    #[qjs(rename = "tcpClose")]
    fn tcp_close<'js>(&self, ctx: Ctx<'js>, id: f64) -> bool {
        self.tcp_cmd(id, super::tcp::TcpCmd::Close, &ctx)
    }

    #[qjs(rename = "tcpStartTls")]
    fn tcp_start_tls<'js>(&self, ctx: Ctx<'js>, id: f64, name: String) -> bool {
        self.tcp_cmd(id, super::tcp::TcpCmd::StartTls(name), &ctx)
    }

    /// The worker reads a socket: let it read further ahead.
    #[qjs(rename = "tcpPull")]
    fn tcp_pull(&self, id: f64) {
        if let Some(h) = self.host.tcp.borrow().get(&(id as u64))
            && h.credits.available_permits() == 0
        {
            h.credits.add_permits(1);
        }
    }

    /// The first AsyncLocalStorage context was entered.
    #[qjs(rename = "asyncContextOn")]
    fn async_context_on(&self) {
        self.host.async_context.set(true);
    }

    #[qjs(rename = "timerStart")]
    fn timer_start(&self, id: f64, delay: f64) {
        let h = &self.host;
        let at = Instant::now() + Duration::from_millis(delay.max(0.0) as u64);
        let owner = h.owner.get();
        if let Some(slot) = h.slots.borrow_mut().get_mut(&owner) {
            slot.set_timers = true;
        }
        h.timers.borrow_mut().push(Reverse((at, id as u64, owner)));
    }

    /// A whole response: `[status, statusText, headers, body]`.
    fn respond<'js>(&self, rid: f64, out: Array<'js>) -> rquickjs::Result<()> {
        let (status, status_text, headers) = response_head(&out)?;
        let body: Value = out.get(3)?;
        let body = value_to_bytes(&body)?;
        self.host.send(
            rid as u64,
            Ok(WorkerResponse {
                status,
                status_text,
                headers,
                body,
                stream: None,
                web_socket: None,
            }),
        );
        Ok(())
    }

    /// A response whose body follows through `streamChunk`/`streamEnd`.
    #[qjs(rename = "respondStream")]
    fn respond_stream<'js>(&self, rid: f64, out: Array<'js>) -> rquickjs::Result<()> {
        let rid = rid as u64;
        let (status, status_text, headers) = response_head(&out)?;
        let (tx, rx) = mpsc::channel(BODY_STREAM_CHUNKS);
        self.host.streams.borrow_mut().insert(rid, tx);
        self.host.send(
            rid,
            Ok(WorkerResponse {
                status,
                status_text,
                headers,
                body: Bytes::new(),
                stream: Some(rx),
                web_socket: None,
            }),
        );
        Ok(())
    }

    /// A 101 answer handing the client the socket `id`.
    #[qjs(rename = "respondWebSocket")]
    fn respond_web_socket<'js>(&self, rid: f64, out: Array<'js>, id: f64) -> rquickjs::Result<()> {
        let h = &self.host;
        let rid = rid as u64;
        let id = id as u64;
        let (status, status_text, headers) = response_head(&out)?;
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
                headers,
                body: Bytes::new(),
                stream: None,
                web_socket: Some(channel),
            }),
        );
        Ok(())
    }

    #[qjs(rename = "wsSend")]
    fn ws_send<'js>(&self, id: f64, data: Value<'js>) -> rquickjs::Result<()> {
        let h = &self.host;
        let msg = match data.as_string() {
            Some(s) => WsMessage::Text(s.to_string()?),
            None => WsMessage::Binary(value_to_bytes(&data)?),
        };
        let id = id as u64;
        // A message an object sends passes its output gate.
        h.durable.gate_outbound(h);
        let sent = match h.sockets.borrow().get(&id) {
            Some((tx, _)) => tx.send(msg),
            None => Ok(()),
        };
        if sent == Err(WsSendError::Overflow) {
            h.close_overflowed_socket(id);
        }
        Ok(())
    }

    #[qjs(rename = "wsClose")]
    fn ws_close(&self, id: f64, code: u16, reason: String) {
        let h = &self.host;
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
    }

    /// 0: sent, ask for more; 1: sent, but wait for `streamReady` before
    /// the next chunk; 2: the client went away.
    #[qjs(rename = "streamChunk")]
    fn stream_chunk<'js>(&self, rid: f64, chunk: Value<'js>) -> rquickjs::Result<u8> {
        let h = &self.host;
        let rid = rid as u64;
        let bytes = value_to_bytes(&chunk)?;
        let streams = h.streams.borrow();
        let Some(tx) = streams.get(&rid) else {
            return Ok(2);
        };
        match tx.try_send(Ok(bytes)) {
            Ok(()) if tx.capacity() > 0 => Ok(0),
            Ok(()) => {
                // Full: the worker's stream is not read again until the
                // client has taken a chunk. The loop waits on this, never
                // the isolate thread.
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
    }

    #[qjs(rename = "streamEnd")]
    fn stream_end<'js>(&self, rid: f64, err: Value<'js>) {
        let h = &self.host;
        let rid = rid as u64;
        if err.is_null() || err.is_undefined() {
            h.streams.borrow_mut().remove(&rid);
        } else if h.streams.borrow().contains_key(&rid) {
            let (_, stack) = describe_exception(&err);
            tracing::error!(target: "hearth::worker", request_id = %h.tag(rid), "response body stream failed: {stack}");
            h.fail_stream(rid, stack);
        }
    }

    fn fail<'js>(&self, rid: f64, err: Value<'js>) {
        self.host.fail_with(rid as u64, &err);
    }

    /// A `waitUntil` promise rejected.
    fn uncaught<'js>(&self, rid: f64, err: Value<'js>) {
        let h = &self.host;
        let (message, stack) = describe_exception(&err);
        if message.contains("out of memory") {
            h.out_of_memory.set(true);
        }
        tracing::error!(target: "hearth::worker", request_id = %h.tag(rid as u64), "Uncaught (in waitUntil) {stack}");
    }

    fn done(&self, rid: f64) {
        self.host.finish(rid as u64);
    }

    #[qjs(rename = "passThrough")]
    fn pass_through(&self, rid: f64) {
        if let Some(s) = self.host.slots.borrow_mut().get_mut(&(rid as u64)) {
            s.pass_through = true;
        }
    }

    #[qjs(rename = "fetchStart")]
    #[allow(clippy::too_many_arguments)]
    fn fetch_start<'js>(
        &self,
        ctx: Ctx<'js>,
        id: f64,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Value<'js>,
        redirect: String,
        streamed: rquickjs::function::Opt<bool>,
    ) -> rquickjs::Result<()> {
        let h = &self.host;
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
        let id = id as u64;
        // A streamed body follows through `fetchBodyChunk`/`fetchBodyEnd`,
        // at most BODY_STREAM_CHUNKS ahead of the upstream's reads.
        let body_stream = if streamed.0 == Some(true) {
            let (tx, rx) = mpsc::channel(BODY_STREAM_CHUNKS);
            h.fetch_bodies.borrow_mut().insert(id, tx);
            Some(rx)
        } else {
            None
        };
        let req = FetchRequest {
            method,
            url,
            headers: pairs_from_flat(headers),
            body: value_to_bytes(&body)?,
            body_stream,
            redirect: RedirectMode::parse(&redirect),
            max_redirects: limits.max_redirects,
            timeout: Duration::from_millis(limits.subrequest_timeout_ms),
        };
        // The body is read at most FETCH_READ_AHEAD_BYTES ahead of the
        // worker's stream, which grants a credit each time it wants more.
        // A small body the worker never reads still arrives whole, so its
        // connection is freed.
        let credits = Arc::new(tokio::sync::Semaphore::new(0));
        h.fetch_credits.borrow_mut().insert(id, credits.clone());
        let task = tokio::spawn(run_fetch(
            h.client.clone(),
            req,
            limits.max_subrequest_response_bytes,
            FetchTicket {
                id,
                owner,
                events: h.events.clone(),
                credits,
            },
        ));
        h.fetches
            .borrow_mut()
            .insert(id, (task.abort_handle(), owner));
        Ok(())
    }

    /// Like `fetchStart`, to one of the worker's in-process services
    /// ([`crate::local`]); the answer comes back as a fetch's does.
    #[qjs(rename = "localFetchStart")]
    #[allow(clippy::too_many_arguments)]
    fn local_fetch_start<'js>(
        &self,
        ctx: Ctx<'js>,
        id: f64,
        service: String,
        method: String,
        path: String,
        headers: Vec<String>,
        body: Value<'js>,
    ) -> rquickjs::Result<()> {
        let h = &self.host;
        let Some(svc) = h.config.local_services.get(&service).cloned() else {
            return Err(rquickjs::Exception::throw_message(
                &ctx,
                &format!("no in-process service {service:?} in this worker"),
            ));
        };
        let owner = h.owner.get();
        let call = svc.call(crate::local::LocalRequest {
            method,
            path,
            headers: pairs_from_flat(headers),
            body: if body.is_null() || body.is_undefined() {
                Bytes::new()
            } else {
                value_to_bytes(&body)?
            },
        });
        let id = id as u64;
        let credits = Arc::new(tokio::sync::Semaphore::new(0));
        h.fetch_credits.borrow_mut().insert(id, credits.clone());
        let max_body = h.config.limits.max_subrequest_response_bytes;
        let ticket = FetchTicket {
            id,
            owner,
            events: h.events.clone(),
            credits,
        };
        let task = tokio::spawn(async move {
            let resp = call.await;
            let _ = ticket.events.send(HostEvent::Fetch {
                id: ticket.id,
                owner: ticket.owner,
                result: Ok(fetch::FetchHead {
                    status: resp.status,
                    status_text: http::StatusCode::from_u16(resp.status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("")
                        .to_owned(),
                    headers: resp.headers,
                    url: String::new(),
                    redirected: false,
                }),
            });
            pump_body(resp.body, max_body, ticket).await;
        });
        h.fetches
            .borrow_mut()
            .insert(id, (task.abort_handle(), owner));
        Ok(())
    }

    /// The next chunk of fetch `id`'s streamed request body. 0: sent, ask
    /// for more; 1: sent, but wait for `fetchBodyReady` before the next;
    /// 2: the fetch no longer reads it (it ended or failed).
    #[qjs(rename = "fetchBodyChunk")]
    fn fetch_body_chunk<'js>(&self, id: f64, chunk: Value<'js>) -> rquickjs::Result<u8> {
        let h = &self.host;
        let id = id as u64;
        let bytes = value_to_bytes(&chunk)?;
        let bodies = h.fetch_bodies.borrow();
        let Some(tx) = bodies.get(&id) else {
            return Ok(2);
        };
        match tx.try_send(fetch::BodyPiece::Data(bytes)) {
            Ok(()) if tx.capacity() > 0 => Ok(0),
            Ok(()) => {
                // Full: the worker's stream is not read again until the
                // upstream has taken a chunk.
                let tx = tx.clone();
                let events = h.events.clone();
                let owner = h.owner.get();
                h.stream_waits.set(h.stream_waits.get() + 1);
                tokio::spawn(async move {
                    let open = tx.reserve().await.is_ok();
                    let _ = events.send(HostEvent::FetchBodyReady { id, owner, open });
                });
                Ok(1)
            }
            // Only a full channel after `Ok` above leads here, never twice.
            Err(mpsc::error::TrySendError::Full(_)) | Err(mpsc::error::TrySendError::Closed(_)) => {
                Ok(2)
            }
        }
    }

    /// Fetch `id`'s streamed request body ended, or failed with `err`.
    #[qjs(rename = "fetchBodyEnd")]
    fn fetch_body_end(&self, id: f64, err: rquickjs::function::Opt<String>) {
        let Some(tx) = self.host.fetch_bodies.borrow_mut().remove(&(id as u64)) else {
            return;
        };
        let piece = match err.0 {
            None => fetch::BodyPiece::End,
            Some(message) => fetch::BodyPiece::Failed(message),
        };
        // The channel may be full; the end waits its turn off the thread.
        tokio::spawn(async move {
            let _ = tx.send(piece).await;
        });
    }

    #[qjs(rename = "fetchAbort")]
    fn fetch_abort(&self, id: f64) {
        let h = &self.host;
        let id = id as u64;
        h.fetch_bodies.borrow_mut().remove(&id);
        if let Some((task, _)) = h.fetches.borrow_mut().remove(&id) {
            task.abort();
        }
        h.fetch_credits.borrow_mut().remove(&id);
    }

    /// The worker reads its request body: wait for the next chunk.
    #[qjs(rename = "bodyPull")]
    fn body_pull(&self, rid: f64) {
        let h = &self.host;
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
    }

    /// The worker reads a fetched body: let it read further ahead.
    #[qjs(rename = "fetchPull")]
    fn fetch_pull(&self, id: f64) {
        if let Some(credits) = self.host.fetch_credits.borrow().get(&(id as u64))
            && credits.available_permits() == 0
        {
            credits.add_permits(1);
        }
    }
}

impl HostNatives {
    /// Queues a command for socket `id`; false if it is gone or busy (the
    /// JS side sends one command at a time).
    fn tcp_cmd(&self, id: f64, cmd: super::tcp::TcpCmd, _ctx: &Ctx<'_>) -> bool {
        match self.host.tcp.borrow().get(&(id as u64)) {
            Some(h) => h.cmds.try_send(cmd).is_ok(),
            None => false,
        }
    }
}

impl Host {
    /// The client is not reading a socket's messages: the front closes the
    /// connection with 1009 and the worker's end hears so. Later sends are
    /// dropped, as after a disconnect.
    fn close_overflowed_socket(&self, id: u64) {
        let first =
            self.sockets.borrow().contains_key(&id) && !self.closed_here.borrow().contains(&id);
        if !first {
            return;
        }
        self.closed_here.borrow_mut().insert(id);
        tracing::warn!(target: "hearth::worker", request_id = %self.current_tag(), "WebSocket closed: the client did not read {} bytes the worker sent (send queue limit)", crate::WEBSOCKET_SEND_QUEUE_BYTES);
        let _ = self.events.send(HostEvent::WebSocket {
            id,
            msg: WsMessage::Close {
                code: 1009,
                reason: "send queue full: the client is not reading".into(),
            },
            permit: None,
        });
    }
}

/// Where an outgoing fetch reports to, and the read-ahead credits its
/// body reader waits on.
struct FetchTicket {
    id: u64,
    owner: u64,
    events: mpsc::UnboundedSender<HostEvent>,
    credits: Arc<tokio::sync::Semaphore>,
}

/// Runs one outgoing fetch on the loop: its head, then its body's chunks
/// as they arrive (the entry in `fetches` keeps the isolate awake until
/// the end), each reported as a [`HostEvent`].
async fn run_fetch(client: fetch::Client, req: FetchRequest, max_body: usize, t: FetchTicket) {
    let FetchTicket {
        id,
        owner,
        events,
        credits,
    } = t;
    let body = match fetch::fetch(&client, req).await {
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
    pump_body(
        body,
        max_body,
        FetchTicket {
            id,
            owner,
            events,
            credits,
        },
    )
    .await;
}

/// Sends a response body to the loop chunk by chunk, at most
/// `FETCH_READ_AHEAD_BYTES` ahead of the worker's reads, then its end.
async fn pump_body<B>(mut body: B, max_body: usize, t: FetchTicket)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + 'static,
{
    let FetchTicket {
        id,
        owner,
        events,
        credits,
    } = t;
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
}
