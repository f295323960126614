//! The isolate's side of Durable Objects: the natives `js/durable.js` calls,
//! the storage of the objects this isolate hosts, calls in flight to
//! objects hosted elsewhere, and the entry points the event loop uses.
//! A child of the isolate module, so it works on the loop's own state.
//! The natives come in three classes: `outbound` (calls to objects and
//! services), `store` (the storage of objects hosted here) and `hosted`
//! (answering their events).

mod hosted;
mod outbound;
mod storage;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hearth_do::{AlarmRetry, DoError, DueAlarm, DurableObjectId, DurableObjectStorage};
use rquickjs::{Array, ArrayBuffer, Class, Ctx, Exception, Function, Object, Persistent, Value};

use super::{Host, Isolate, Responder, Slot, internal_eval_options};
use crate::durable::native::{
    AlarmInfo, DurableObject, DurableObjectState, NativeObjects, NativeRequest,
};
use crate::durable::{DurableObjects, ERROR_HEADER, ObjectEvent, ObjectJob, ServiceJob};
use crate::error::DispatchError;
use crate::{WebSocketChannel, WorkerResponse};
use hosted::HostedNatives;
use outbound::OutboundNatives;
use storage::StorageNatives;

pub(crate) use outbound::collect_reply;

const DURABLE_JS: &str = include_str!("../../../js/durable.js");

/// Ids of WebSockets held by another isolate start here, far above the ids
/// the prelude gives its own sockets.
const REMOTE_SOCKET_BASE: u64 = 1 << 40;

/// The longest an answer waits for its group commit while other events keep
/// arriving (past it, the commit runs before the next event).
const MAX_HOLD: Duration = Duration::from_millis(2);

/// Per-isolate Durable Object state.
pub(crate) struct IsolateDurable {
    objects: Option<Arc<DurableObjects>>,
    storages: RefCell<HashMap<u32, Rc<DurableObjectStorage>>>,
    next_handle: Cell<u32>,
    /// Calls from this isolate awaiting an object's answer.
    calls: RefCell<HashSet<u64>>,
    next_call: Cell<u64>,
    /// Client ends of objects' WebSockets, until this worker returns them.
    remote: RefCell<HashMap<u64, WebSocketChannel>>,
    next_remote: Cell<u64>,
    /// Alarms being delivered, by the event's request id.
    alarms: RefCell<HashMap<u64, DueAlarm>>,
    native: RefCell<NativeObjects>,
    /// Since when answers wait for a group commit (`commitHeld` in
    /// `durable.js`).
    held: Cell<Option<Instant>>,
    /// A flush outside an object's own event (`flush_all`) failed: its
    /// writes are lost, so its next flush must fail too, and the answers
    /// that followed those writes with it.
    failed: RefCell<HashMap<u32, DoError>>,
}

impl IsolateDurable {
    pub(crate) fn new(objects: Option<Arc<DurableObjects>>) -> Self {
        Self {
            objects,
            storages: RefCell::new(HashMap::new()),
            next_handle: Cell::new(1),
            calls: RefCell::new(HashSet::new()),
            next_call: Cell::new(1),
            remote: RefCell::new(HashMap::new()),
            next_remote: Cell::new(REMOTE_SOCKET_BASE),
            alarms: RefCell::new(HashMap::new()),
            native: RefCell::new(HashMap::new()),
            held: Cell::new(None),
            failed: RefCell::new(HashMap::new()),
        }
    }

    /// Answers of objects hosted here wait for a group commit.
    pub(super) fn hold(&self) {
        if self.held.get().is_none() {
            self.held.set(Some(Instant::now()));
        }
    }

    /// Whether held answers are due: when no event is ready (`ready_idle`),
    /// or once they have waited [`MAX_HOLD`] behind a steady stream of them.
    fn take_due(&self, ready_idle: bool) -> bool {
        match self.held.get() {
            Some(since) if ready_idle || since.elapsed() >= MAX_HOLD => {
                self.held.set(None);
                true
            }
            _ => false,
        }
    }

    /// Calls to objects are in flight: the loop must not count as idle.
    pub(crate) fn busy(&self) -> bool {
        !self.calls.borrow().is_empty()
    }

    /// The channel of a WebSocket an object (in any isolate) answered with.
    pub(crate) fn take_remote_socket(&self, id: u64) -> Option<WebSocketChannel> {
        if id < REMOTE_SOCKET_BASE {
            return None;
        }
        self.remote.borrow_mut().remove(&id)
    }

    fn storage(&self, ctx: &Ctx<'_>, handle: u32) -> rquickjs::Result<Rc<DurableObjectStorage>> {
        self.storages.borrow().get(&handle).cloned().ok_or_else(|| {
            Exception::throw_message(ctx, "This Durable Object has been reset; retry the call.")
        })
    }

    fn flush(&self, storage: &DurableObjectStorage) -> Result<(), DoError> {
        let changed = storage.has_unflushed_writes();
        storage.flush()?;
        if changed && let Some(o) = &self.objects {
            o.alarms_changed();
        }
        Ok(())
    }

    /// Flushes the storage behind `handle`, failing with the error of an
    /// earlier `flush_all` that lost its writes.
    fn flush_handle(&self, handle: u32, storage: &DurableObjectStorage) -> Result<(), DoError> {
        if let Some(e) = self.failed.borrow_mut().remove(&handle) {
            return Err(e);
        }
        self.flush(storage)
    }

    /// Whether the storage behind `handle` has writes an answer must wait for.
    fn pending(&self, handle: u32, storage: &DurableObjectStorage) -> bool {
        self.failed.borrow().contains_key(&handle) || storage.has_unflushed_writes()
    }

    /// Flushes every object's storage (before an outgoing fetch, at exit).
    fn flush_all(&self) {
        let storages: Vec<_> = self
            .storages
            .borrow()
            .iter()
            .map(|(h, s)| (*h, s.clone()))
            .collect();
        for (handle, s) in storages {
            if !s.has_unflushed_writes() {
                continue;
            }
            if let Err(e) = self.flush(&s) {
                tracing::error!(target: "hearth::durable", "flushing Durable Object storage: {e}");
                self.failed.borrow_mut().insert(handle, e);
            }
        }
    }

    /// The output gate of a call or fetch leaving this isolate: every object
    /// hosted here flushes, unless the code making it is a worker's own
    /// request (not an object's event), which holds no object's writes.
    pub(super) fn gate_outbound(&self, host: &Host) {
        let owner = host.owner.get();
        // Object events' slots are the unscoped ones; code running for no
        // request (owner 0) may be an object's.
        let worker_request = host.slots.borrow().get(&owner).is_some_and(|s| s.scoped_io);
        if !worker_request {
            self.flush_all();
        }
    }
}

impl Drop for IsolateDurable {
    fn drop(&mut self) {
        self.flush_all();
    }
}

/// The functions of `durable.js` the loop calls.
pub(crate) struct JsApi {
    dispatch: Persistent<Function<'static>>,
    reply: Persistent<Function<'static>>,
    reply_error: Persistent<Function<'static>>,
    set_exports: Persistent<Function<'static>>,
    dispatch_service: Persistent<Function<'static>>,
    set_service_env: Persistent<Function<'static>>,
    commit_held: Persistent<Function<'static>>,
}

/// Evaluates `durable.js` and publishes its namespace factory for the
/// binding adapters. Runs before `env` is built.
pub(super) fn install<'js>(ctx: &Ctx<'js>, host: &Rc<Host>) -> rquickjs::Result<JsApi> {
    let outbound = Class::instance(ctx.clone(), OutboundNatives::new(host.clone()))?;
    let store = Class::instance(ctx.clone(), StorageNatives::new(host.clone()))?;
    let hosted = Class::instance(ctx.clone(), HostedNatives::new(host.clone()))?;
    let factory: Function =
        hearth_webapi::builtin::eval_script(ctx, DURABLE_JS, internal_eval_options())?;
    let api: Object = factory.call((outbound, store, hosted))?;
    let publish: Function = ctx.eval(
        "(api) => Object.defineProperty(globalThis, Symbol.for('hearth.durable'), { value: api })",
    )?;
    publish.call::<_, ()>((api.clone(),))?;
    // Outgoing fetches pass the output gate of every object hosted here.
    let gate: Function = ctx.eval(
        "(flush) => { const f = globalThis.fetch; if (typeof f === 'function') Object.defineProperty(globalThis, 'fetch', { value: function fetch(...a) { flush(); return f.apply(this, a); }, writable: true, configurable: true }); }",
    )?;
    let h = host.clone();
    gate.call::<_, ()>((Function::new(ctx.clone(), move || {
        h.durable.gate_outbound(&h)
    })?,))?;
    Ok(JsApi {
        dispatch: Persistent::save(ctx, api.get::<_, Function>("dispatch")?),
        reply: Persistent::save(ctx, api.get::<_, Function>("reply")?),
        reply_error: Persistent::save(ctx, api.get::<_, Function>("replyError")?),
        set_exports: Persistent::save(ctx, api.get::<_, Function>("setExports")?),
        dispatch_service: Persistent::save(ctx, api.get::<_, Function>("dispatchService")?),
        set_service_env: Persistent::save(ctx, api.get::<_, Function>("setServiceEnv")?),
        commit_held: Persistent::save(ctx, api.get::<_, Function>("commitHeld")?),
    })
}

/// Hands `durable.js` the main module's exports (the classes) and the
/// worker's `env`, which every object's constructor receives.
pub(super) fn set_exports<'js>(
    ctx: &Ctx<'js>,
    api: &JsApi,
    exports: Object<'js>,
    env: Object<'js>,
    host: &Host,
) -> rquickjs::Result<()> {
    let idle = host
        .durable
        .objects
        .as_ref()
        .map(|o| o.idle_ms())
        .unwrap_or(10_000.0);
    api.set_exports
        .clone()
        .restore(ctx)?
        .call::<_, ()>((exports, env, idle))
}

/// Hands `durable.js` the worker's `env`, for its RPC entrypoints.
pub(super) fn set_service_env<'js>(
    ctx: &Ctx<'js>,
    api: &JsApi,
    env: Object<'js>,
) -> rquickjs::Result<()> {
    api.set_service_env
        .clone()
        .restore(ctx)?
        .call::<_, ()>((env,))
}

/// Group commit: commits the writes held answers wait for and sends them.
/// The loop calls it before each event, `ready_idle` when none is waiting.
pub(crate) fn commit_held(iso: &Isolate, ready_idle: bool) {
    if !iso.host.durable.take_due(ready_idle) {
        return;
    }
    let api = iso.api.durable.commit_held.clone();
    iso.run(0, move |ctx, _| api.restore(ctx)?.call::<_, ()>(()));
}

/// A service binding's RPC call into this worker: runs as a request of its
/// own (with its own CPU budget) whose answer goes back on `tx`.
pub(crate) fn start_service_event(iso: &mut Isolate, job: ServiceJob, tx: Responder) {
    let rid = iso.next_rid;
    iso.next_rid += 1;
    iso.host
        .slots
        .borrow_mut()
        .insert(rid, Slot::new(format!("rpc:{}", job.method), tx, true));
    let api = iso.api.durable.dispatch_service.clone();
    let ServiceJob {
        entrypoint,
        method,
        args,
    } = job;
    iso.run(rid, move |ctx, _| {
        api.restore(ctx)?
            .call::<_, ()>((rid as f64, entrypoint, method, args))
    });
}

/// An event for an object hosted here: runs it as a request of its own
/// (with its own CPU budget) whose answer goes back on `tx`.
pub(crate) fn start_object_event(iso: &mut Isolate, job: ObjectJob, tx: Responder) {
    let rid = iso.next_rid;
    iso.next_rid += 1;
    let short = job.id.get(..12).unwrap_or(&job.id).to_owned();
    // An object's timers outlive the request that set them, as the
    // object's I/O context does on Workers.
    iso.host
        .slots
        .borrow_mut()
        .insert(rid, Slot::new(format!("{}:{short}", job.class), tx, false));
    if let Some(factory) = iso
        .host
        .durable
        .objects
        .as_ref()
        .and_then(|o| o.native_class(&job.class))
    {
        run_native(&iso.host, rid, job, factory);
        return;
    }
    let ObjectJob {
        class,
        id,
        name,
        event,
    } = job;
    let api = iso.api.durable.dispatch.clone();
    match event {
        ObjectEvent::Fetch {
            method,
            url,
            headers,
            body,
            cf,
        } => iso.run(rid, move |ctx, _| {
            let mut flat = Vec::with_capacity(headers.len() * 2);
            for (k, v) in headers {
                flat.push(k);
                flat.push(v);
            }
            let body = match body {
                // Outside the counted heap, as a request body from the
                // front is (see `start_request`).
                Some(b) => ArrayBuffer::new(ctx.clone(), Vec::from(b))?.into_value(),
                None => Value::new_null(ctx.clone()),
            };
            let args = Array::new(ctx.clone())?;
            args.set(0, method)?;
            args.set(1, url)?;
            args.set(2, flat)?;
            args.set(3, body)?;
            if let Some(json) = cf {
                args.set(4, ctx.json_parse(json)?)?;
            }
            api.restore(ctx)?
                .call::<_, ()>((rid as f64, class, id, name, "fetch", args))
        }),
        ObjectEvent::Rpc { method, args } => iso.run(rid, move |ctx, _| {
            let list = Array::new(ctx.clone())?;
            list.set(0, method)?;
            list.set(1, args)?;
            api.restore(ctx)?
                .call::<_, ()>((rid as f64, class, id, name, "rpc", list))
        }),
        ObjectEvent::Alarm(alarm) => {
            let retry = alarm.retry_count;
            iso.host.durable.alarms.borrow_mut().insert(rid, alarm);
            iso.run(rid, move |ctx, _| {
                let list = Array::new(ctx.clone())?;
                list.set(0, retry)?;
                api.restore(ctx)?
                    .call::<_, ()>((rid as f64, class, id, name, "alarm", list))
            })
        }
    }
    // An alarm event that ended without reporting (e.g. the CPU limit
    // unwound it) gives its lease back through the alarm loop's failure path.
    if !iso.host.slots.borrow().contains_key(&rid) {
        iso.host.durable.alarms.borrow_mut().remove(&rid);
    }
}

/// An object's answer to a call from this isolate.
pub(crate) fn deliver_reply(
    iso: &Isolate,
    call: u64,
    owner: u64,
    result: Result<WorkerResponse, DispatchError>,
) {
    iso.host.durable.calls.borrow_mut().remove(&call);
    let owner = iso.live_owner(owner);
    let host = iso.host.clone();
    match result {
        Ok(resp) => iso.run(owner, move |ctx, api| {
            let mut flat = Vec::with_capacity(resp.headers.len() * 2);
            for (k, v) in resp.headers {
                flat.push(k);
                flat.push(v);
            }
            let socket = match resp.web_socket {
                Some(ch) => {
                    let id = host.durable.next_remote.get();
                    host.durable.next_remote.set(id + 1);
                    host.durable.remote.borrow_mut().insert(id, ch);
                    id as f64
                }
                None => 0.0,
            };
            let body = ArrayBuffer::new_copy(ctx.clone(), &resp.body[..])?;
            api.durable.reply.clone().restore(ctx)?.call::<_, ()>((
                call as f64,
                resp.status,
                resp.status_text,
                flat,
                body,
                socket,
            ))
        }),
        Err(e) => iso.run(owner, move |ctx, api| {
            api.durable
                .reply_error
                .clone()
                .restore(ctx)?
                .call::<_, ()>((call as f64, e.to_string()))
        }),
    }
}

fn err_msg(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_message(ctx, message)
}

fn objects<'a>(ctx: &Ctx<'_>, host: &'a Host) -> rquickjs::Result<&'a Arc<DurableObjects>> {
    host.durable
        .objects
        .as_ref()
        .ok_or_else(|| err_msg(ctx, "Durable Objects are not configured for this worker"))
}

/// Records the outcome of an alarm run, in the order the contract asks.
fn finish_alarm(
    objects: &DurableObjects,
    storage: &DurableObjectStorage,
    alarm: &DueAlarm,
    ok: bool,
) -> Result<(), DoError> {
    let scheduler = objects.scheduler();
    if ok {
        storage.complete_alarm(alarm.scheduled_ms)?;
        scheduler.complete(alarm)?;
    } else {
        storage.flush()?;
        match scheduler.failed(alarm)? {
            AlarmRetry::GaveUp => {
                tracing::warn!(target: "hearth::durable", class = %alarm.namespace, id = %alarm.id, "alarm() failed on every retry; giving up");
                storage.complete_alarm(alarm.scheduled_ms)?;
            }
            AlarmRetry::RetryAt(at) => {
                tracing::info!(target: "hearth::durable", class = %alarm.namespace, id = %alarm.id, retry_at_ms = at, "alarm() failed; retrying");
            }
            AlarmRetry::Superseded => {}
        }
    }
    Ok(())
}

/// Runs an event of a Rust-native object on this thread, to completion.
fn run_native(
    host: &Rc<Host>,
    rid: u64,
    job: ObjectJob,
    factory: Arc<dyn crate::durable::native::Factory>,
) {
    let result = native_event(host, &job, factory.as_ref());
    host.send(rid, result);
    host.finish(rid);
}

fn native_event(
    host: &Rc<Host>,
    job: &ObjectJob,
    factory: &dyn crate::durable::native::Factory,
) -> Result<WorkerResponse, DispatchError> {
    let fail = |message: String| DispatchError::Exception {
        stack: format!("Error: {message}"),
        message,
        pass_through: false,
    };
    let objects = host
        .durable
        .objects
        .clone()
        .ok_or_else(|| fail("Durable Objects are not configured".into()))?;
    let ns = objects
        .storage_namespace(&job.class)
        .ok_or_else(|| fail(format!("class {} is not configured", job.class)))?;
    // An id made from a name keeps it (`id.name()`).
    let named = job
        .name
        .as_deref()
        .map(|n| ns.id_from_name(n))
        .filter(|id| id.to_string() == job.id);
    let id: DurableObjectId = match named {
        Some(id) => id,
        None => ns
            .id_from_string(&job.id)
            .map_err(|e| fail(e.to_string()))?,
    };
    let storage = ns.storage(&id).map_err(|e| fail(e.to_string()))?;
    let state = DurableObjectState {
        id: &id,
        storage: &storage,
    };
    let key = (job.class.clone(), job.id.clone());
    let mut live = host.durable.native.borrow_mut();
    if !live.contains_key(&key) {
        let instance = factory.create(&state).map_err(fail)?;
        live.insert(key.clone(), instance);
    }
    let Some(instance) = live.get_mut(&key) else {
        return Err(fail("object vanished".into()));
    };
    let outcome = deliver_native(instance.as_mut(), &state, &objects, &job.event)
        .map_err(|e| fail(e.to_string()))?;
    // Output gate: nothing leaves before the writes are durable.
    let flushed = storage.flush();
    if outcome.is_err() || flushed.is_err() {
        live.remove(&key);
    }
    if storage.get_alarm().ok().flatten().is_some() {
        objects.alarms_changed();
    }
    flushed.map_err(|e| fail(e.to_string()))?;
    match outcome {
        Ok(r) => Ok(r),
        Err(message) => Ok(error_response(&message)),
    }
}

/// Delivers one event to a live native object. The outer error is the
/// alarm bookkeeping failing; the inner one is the object's own failure.
fn deliver_native(
    instance: &mut dyn DurableObject,
    state: &DurableObjectState<'_>,
    objects: &DurableObjects,
    event: &ObjectEvent,
) -> Result<Result<WorkerResponse, String>, DoError> {
    Ok(match event {
        ObjectEvent::Fetch {
            method,
            url,
            headers,
            body,
            ..
        } => instance
            .fetch(
                state,
                NativeRequest {
                    method: method.clone(),
                    url: url.clone(),
                    headers: headers.clone(),
                    body: body.clone().unwrap_or_default(),
                },
            )
            .map(|r| WorkerResponse {
                status: r.status,
                status_text: String::new(),
                headers: r.headers,
                body: r.body,
                stream: None,
                web_socket: None,
            }),
        ObjectEvent::Rpc { method, .. } => Err(format!(
            "The RPC receiver does not implement the method \"{method}\"."
        )),
        ObjectEvent::Alarm(alarm) => {
            let current = objects.scheduler().is_current(alarm).unwrap_or(false);
            if !current {
                objects.scheduler().release(alarm);
                Ok(ok_text("skipped"))
            } else {
                let info = AlarmInfo {
                    retry_count: alarm.retry_count,
                    is_retry: alarm.is_retry(),
                };
                let ran = instance.alarm(state, info);
                finish_alarm(objects, state.storage, alarm, ran.is_ok())?;
                objects.alarms_changed();
                if let Err(e) = &ran {
                    tracing::error!(target: "hearth::durable", "alarm() failed: {e}");
                }
                Ok(ok_text(if ran.is_ok() { "ok" } else { "failed" }))
            }
        }
    })
}

fn ok_text(s: &str) -> WorkerResponse {
    WorkerResponse {
        status: 200,
        status_text: "OK".into(),
        headers: Vec::new(),
        body: Bytes::from(s.to_owned()),
        stream: None,
        web_socket: None,
    }
}

fn error_response(message: &str) -> WorkerResponse {
    let body = crate::structured_clone::error_text("Error", message);
    WorkerResponse {
        status: 500,
        status_text: "Internal Server Error".into(),
        headers: vec![(ERROR_HEADER.into(), "1".into())],
        body: Bytes::from(body),
        stream: None,
        web_socket: None,
    }
}
