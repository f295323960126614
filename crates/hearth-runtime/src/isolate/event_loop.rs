//! The isolate's event loop: the thread that owns it, the requests and
//! events it starts, the host events it delivers, and the slices of
//! JavaScript each one runs, charged to its request's CPU budget.

/// How long a shutting-down isolate waits for `waitUntil` work to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

use std::cmp::Reverse;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rquickjs::{ArrayBuffer, Ctx, Value, qjs};
use tokio::sync::mpsc;

use super::{Api, Exit, HostEvent, Isolate, Job, Responder, Slot, describe_exception, durable};
use crate::config::WorkerConfig;
use crate::error::{DispatchError, StartError};
use crate::fetch;
use crate::pool::IsolateStats;
use crate::{WorkerRequest, WsMessage};

/// Workers' error for a request whose promises can never settle.
const NEVER_RESPONDS: &str = "The script will never generate a response.";

impl Isolate {
    fn slice_begin(&self, owner: u64) {
        let host = &self.host;
        host.owner.set(owner);
        crate::bindings::support::set_invocation(owner);
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
        crate::bindings::support::set_invocation(0);
    }

    /// Runs `f` in JS as a slice for `owner`, then drains the microtask queue.
    pub(super) fn run<F>(&self, owner: u64, f: F)
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
            if self.host.async_context.get()
                && let Ok(reset) = self.api.reset_context.clone().restore(&ctx)
            {
                // Nothing runs between turns: no context is current.
                let _ = reset.call::<_, ()>(());
            }
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
            cf,
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
            let cf = match cf {
                Some(json) => ctx.json_parse(json)?,
                None => Value::new_undefined(ctx.clone()),
            };
            let dispatch = api.dispatch.clone().restore(ctx)?;
            dispatch.call::<_, ()>((rid as f64, method, url, flat, body, cf))
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
                self.deliver_ws(id, msg);
                drop(permit);
            }
            HostEvent::BodyChunk { rid, rx, item } => self.deliver_body_chunk(rid, rx, item),
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
            HostEvent::FetchBodyReady { id, owner, open } => {
                self.host
                    .stream_waits
                    .set(self.host.stream_waits.get().saturating_sub(1));
                let owner = self.live_owner(owner);
                self.run(owner, move |ctx, api| {
                    api.fetch_body_ready
                        .clone()
                        .restore(ctx)?
                        .call::<_, ()>((id as f64, open))
                });
            }
            HostEvent::Fetch { id, owner, result } => self.deliver_fetch_head(id, owner, result),
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
            HostEvent::Tcp { id, owner, event } => self.deliver_tcp(id, owner, event),
            HostEvent::FetchEnd { id, owner, error } => {
                self.host.fetches.borrow_mut().remove(&id);
                self.host.fetch_credits.borrow_mut().remove(&id);
                self.host.fetch_bodies.borrow_mut().remove(&id);
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

    /// A message (or the close) from the client of socket `id`, to the
    /// worker's end of it.
    fn deliver_ws(&self, id: u64, msg: WsMessage) {
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
    }

    /// The next chunk of request `rid`'s body (`None`: its end), to the
    /// worker's stream of it.
    fn deliver_body_chunk(
        &self,
        rid: u64,
        rx: mpsc::Receiver<Result<Bytes, String>>,
        item: Option<Result<Bytes, String>>,
    ) {
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

    /// A fetch's response head (or why it failed), to the worker.
    /// Hands a socket's event to the prelude's `tcpEvent(id, kind, a, b)`.
    fn deliver_tcp(&self, id: u64, owner: u64, event: super::tcp::TcpEvent) {
        use super::tcp::TcpEvent;
        if let TcpEvent::Closed(_) = &event {
            self.host.tcp.borrow_mut().remove(&id);
        }
        let owner = self.live_owner(owner);
        self.run(owner, move |ctx, api| {
            let f = api.tcp_event.clone().restore(ctx)?;
            let id = id as f64;
            match event {
                TcpEvent::Opened { remote, local } => {
                    f.call::<_, ()>((id, "opened", remote, local))
                }
                TcpEvent::Data(chunk) => {
                    let buf = ArrayBuffer::new_copy(ctx.clone(), &chunk[..])?;
                    f.call::<_, ()>((id, "data", buf))
                }
                TcpEvent::ReadEnd => f.call::<_, ()>((id, "readEnd")),
                TcpEvent::Written => f.call::<_, ()>((id, "written")),
                TcpEvent::TlsUpgraded => f.call::<_, ()>((id, "tls")),
                TcpEvent::Closed(error) => f.call::<_, ()>((id, "closed", error)),
            }
        });
    }

    fn deliver_fetch_head(&self, id: u64, owner: u64, result: Result<fetch::FetchHead, String>) {
        if result.is_err() {
            self.host.fetches.borrow_mut().remove(&id);
            self.host.fetch_credits.borrow_mut().remove(&id);
            self.host.fetch_bodies.borrow_mut().remove(&id);
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

    /// `owner` if that request is still live, else 0 (no request).
    pub(super) fn live_owner(&self, owner: u64) -> u64 {
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
        for (_, h) in self.host.tcp.borrow_mut().drain() {
            h.task.abort();
        }
        self.host.fetch_credits.borrow_mut().clear();
        self.host.fetch_bodies.borrow_mut().clear();
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
            // Group commit: answers held for the output gate leave once no
            // other event is ready, so one commit covers all of them.
            durable::commit_held(self, self.events.is_empty() && jobs.is_empty());
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
            && self.host.tcp.borrow().is_empty()
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
