//! The isolate's side of Durable Objects: the natives `js/durable.js` calls,
//! the storage of the objects this isolate hosts, calls in flight to
//! objects hosted elsewhere, and the entry points the event loop uses.
//! A child of the isolate module, so it works on the loop's own state.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use hearth_do::{
    AlarmRetry, DoError, DueAlarm, DurableObjectId, DurableObjectStorage, ListOptions, SqlValue,
};
use rquickjs::promise::{MaybePromise, PromiseState};
use rquickjs::{Array, ArrayBuffer, Ctx, Exception, Function, Object, Persistent, Value};

use super::{
    Host, Isolate, Responder, Slot, internal_eval_options, pairs_from_flat, value_to_bytes,
};
use crate::durable::native::{AlarmInfo, DurableObjectState, NativeObjects, NativeRequest};
use crate::durable::{
    DurableObjects, ERROR_HEADER, ObjectEvent, ObjectJob, ServiceJob, adapter::raise,
};
use crate::error::DispatchError;
use crate::services::ServiceCall;
use crate::{WebSocketChannel, WebSocketSink, WorkerRequest, WorkerResponse, WsMessage};

const DURABLE_JS: &str = include_str!("../../js/durable.js");

/// Ids of WebSockets held by another isolate start here, far above the ids
/// the prelude gives its own sockets.
const REMOTE_SOCKET_BASE: u64 = 1 << 40;

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

    /// Flushes every object's storage (before an outgoing fetch, at exit).
    fn flush_all(&self) {
        let storages: Vec<_> = self.storages.borrow().values().cloned().collect();
        for s in storages {
            if let Err(e) = self.flush(&s) {
                tracing::error!(target: "hearth::durable", "flushing Durable Object storage: {e}");
            }
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
}

/// Evaluates `durable.js` and publishes its namespace factory for the
/// binding adapters. Runs before `env` is built.
pub(super) fn install<'js>(ctx: &Ctx<'js>, host: &Rc<Host>) -> rquickjs::Result<JsApi> {
    let natives = make_natives(ctx, host)?;
    let factory: Function = ctx.eval_with_options(DURABLE_JS, internal_eval_options())?;
    let api: Object = factory.call((natives,))?;
    let publish: Function = ctx.eval(
        "(api) => Object.defineProperty(globalThis, Symbol.for('hearth.durable'), { value: api })",
    )?;
    publish.call::<_, ()>((api.clone(),))?;
    // Outgoing fetches pass the output gate of every object hosted here.
    let gate: Function = ctx.eval(
        "(flush) => { const f = globalThis.fetch; if (typeof f === 'function') Object.defineProperty(globalThis, 'fetch', { value: function fetch(...a) { flush(); return f.apply(this, a); }, writable: true, configurable: true }); }",
    )?;
    let h = host.clone();
    gate.call::<_, ()>((Function::new(ctx.clone(), move || h.durable.flush_all())?,))?;
    Ok(JsApi {
        dispatch: Persistent::save(ctx, api.get::<_, Function>("dispatch")?),
        reply: Persistent::save(ctx, api.get::<_, Function>("reply")?),
        reply_error: Persistent::save(ctx, api.get::<_, Function>("replyError")?),
        set_exports: Persistent::save(ctx, api.get::<_, Function>("setExports")?),
        dispatch_service: Persistent::save(ctx, api.get::<_, Function>("dispatchService")?),
        set_service_env: Persistent::save(ctx, api.get::<_, Function>("setServiceEnv")?),
    })
}

/// Hands `durable.js` the main module's exports (the classes).
pub(super) fn set_exports<'js>(
    ctx: &Ctx<'js>,
    api: &JsApi,
    exports: Object<'js>,
    host: &Host,
) -> rquickjs::Result<()> {
    let idle = host
        .durable
        .objects
        .as_ref()
        .map(|o| o.idle_ms())
        .unwrap_or(10_000.0);
    api.set_exports.clone().restore(ctx)?.call::<_, ()>((
        exports,
        Value::new_undefined(ctx.clone()),
        idle,
    ))
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

/// Registers a call in flight and delivers its answer to the loop as a
/// `DurableReply`; a streamed answer is read whole first.
fn track_call(
    h: &Rc<Host>,
    reply: impl std::future::Future<Output = Result<WorkerResponse, DispatchError>> + Send + 'static,
) -> f64 {
    let n = h.durable.next_call.get();
    h.durable.next_call.set(n + 1);
    h.durable.calls.borrow_mut().insert(n);
    let owner = h.owner.get();
    let events = h.events.clone();
    tokio::spawn(async move {
        let result = match reply.await {
            Ok(mut resp) => {
                if resp.stream.is_some() {
                    let ws = resp.web_socket.take();
                    let head = (
                        resp.status,
                        resp.status_text.clone(),
                        std::mem::take(&mut resp.headers),
                    );
                    match resp.collect().await {
                        Ok(body) => Ok(WorkerResponse {
                            status: head.0,
                            status_text: head.1,
                            headers: head.2,
                            body,
                            stream: None,
                            web_socket: ws,
                        }),
                        Err(e) => Err(DispatchError::Exception {
                            message: e.clone(),
                            stack: e,
                            pass_through: false,
                        }),
                    }
                } else {
                    Ok(resp)
                }
            }
            Err(e) => Err(e),
        };
        let _ = events.send(super::HostEvent::DurableReply {
            call: n,
            owner,
            result,
        });
    });
    n as f64
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

fn sql_value<'js>(ctx: &Ctx<'js>, v: &Value<'js>) -> rquickjs::Result<SqlValue> {
    if v.is_null() || v.is_undefined() {
        return Ok(SqlValue::Null);
    }
    if let Some(n) = v.as_int() {
        return Ok(SqlValue::Integer(i64::from(n)));
    }
    if let Some(f) = v.as_float() {
        if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
            return Ok(SqlValue::Integer(f as i64));
        }
        return Ok(SqlValue::Real(f));
    }
    if let Some(s) = v.as_string() {
        return Ok(SqlValue::Text(s.to_string()?));
    }
    if let Some(b) = v.as_big_int() {
        return Ok(SqlValue::Integer(b.clone().to_i64()?));
    }
    if let Some(buf) = ArrayBuffer::from_value(v.clone()) {
        // SAFETY: copied before control returns to JS.
        let bytes = unsafe { buf.as_bytes() }
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        return Ok(SqlValue::Blob(bytes));
    }
    Err(Exception::throw_type(
        ctx,
        "Unsupported type for SQL binding: expected null, a number, a bigint, a string or an ArrayBuffer",
    ))
}

fn js_sql_value<'js>(ctx: &Ctx<'js>, v: SqlValue) -> rquickjs::Result<Value<'js>> {
    Ok(match v {
        SqlValue::Null => Value::new_null(ctx.clone()),
        SqlValue::Integer(i) => Value::new_number(ctx.clone(), i as f64),
        SqlValue::Real(f) => Value::new_number(ctx.clone(), f),
        SqlValue::Text(s) => rquickjs::String::from_str(ctx.clone(), &s)?.into_value(),
        SqlValue::Blob(b) => ArrayBuffer::new(ctx.clone(), b)?.into_value(),
    })
}

fn pairs_to_js<'js>(ctx: &Ctx<'js>, pairs: Vec<(String, Vec<u8>)>) -> rquickjs::Result<Array<'js>> {
    let out = Array::new(ctx.clone())?;
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        let pair = Array::new(ctx.clone())?;
        pair.set(0, k)?;
        pair.set(1, String::from_utf8_lossy(&v).into_owned())?;
        out.set(i, pair)?;
    }
    Ok(out)
}

/// What a transaction callback failed with.
enum TxError<'js> {
    Storage(DoError),
    Js(rquickjs::Error),
    Rejected(Value<'js>),
    Stuck,
}

impl From<DoError> for TxError<'_> {
    fn from(e: DoError) -> Self {
        TxError::Storage(e)
    }
}

fn make_natives<'js>(ctx: &Ctx<'js>, host: &Rc<Host>) -> rquickjs::Result<Object<'js>> {
    let obj = Object::new(ctx.clone())?;

    // call(kind, class, id, name, args, script) -> call number; the answer
    // comes back through `reply` / `replyError`. `script` names the worker
    // hosting the class when it is not this one.
    let h = host.clone();
    obj.set(
        "call",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  kind: String,
                  class: String,
                  id: String,
                  name: Option<String>,
                  args: Array<'js>,
                  script: Option<String>|
                  -> rquickjs::Result<f64> {
                let a: Value = args.get(0)?;
                let b: Value = args.get(1)?;
                let c: Value = args.get(2)?;
                let d: Value = args.get(3)?;
                let own = objects(&ctx, &h)?;
                let objects = match script {
                    None => own.clone(),
                    Some(s) => own.linked(&s).ok_or_else(|| {
                        err_msg(
                            &ctx,
                            &format!("The worker \"{s}\" hosting Durable Object class {class} is not running in this process."),
                        )
                    })?,
                };
                let event = match kind.as_str() {
                    "fetch" => ObjectEvent::Fetch {
                        method: String::from_js_value(&a)?,
                        url: String::from_js_value(&b)?,
                        headers: pairs_from_flat(Vec::<String>::from_js_value(&c)?),
                        body: if d.is_null() || d.is_undefined() {
                            None
                        } else {
                            Some(value_to_bytes(&d)?)
                        },
                    },
                    _ => ObjectEvent::Rpc {
                        method: String::from_js_value(&a)?,
                        args: String::from_js_value(&b)?,
                    },
                };
                // The call leaves the object it is made from: its output gate.
                h.durable.flush_all();
                let rx = objects
                    .send(ObjectJob {
                        class,
                        id,
                        name,
                        event,
                    })
                    .map_err(|e| err_msg(&ctx, &e.to_string()))?;
                let reply = async move { rx.await.unwrap_or(Err(DispatchError::IsolateRestarted)) };
                Ok(track_call(&h, reply))
            },
        )?,
    )?;

    // serviceCall(binding, kind, args) -> call number, answered like `call`.
    let h = host.clone();
    obj.set(
        "serviceCall",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  binding: String,
                  kind: String,
                  args: Array<'js>|
                  -> rquickjs::Result<f64> {
                let Some(service) = h.config.services.iter().find(|s| s.binding == binding) else {
                    return Err(err_msg(
                        &ctx,
                        &format!("{binding} is not a service binding"),
                    ));
                };
                let a: Value = args.get(0)?;
                let b: Value = args.get(1)?;
                let call = if kind == "fetch" {
                    let c: Value = args.get(2)?;
                    let d: Value = args.get(3)?;
                    ServiceCall::Fetch(WorkerRequest {
                        id: h.current_tag(),
                        method: String::from_js_value(&a)?,
                        url: String::from_js_value(&b)?,
                        headers: pairs_from_flat(Vec::<String>::from_js_value(&c)?),
                        body: if d.is_null() || d.is_undefined() {
                            Bytes::new()
                        } else {
                            value_to_bytes(&d)?
                        },
                        body_stream: None,
                    })
                } else {
                    ServiceCall::Rpc {
                        method: String::from_js_value(&a)?,
                        args: String::from_js_value(&b)?,
                    }
                };
                // The call leaves any object hosted here: its output gate.
                h.durable.flush_all();
                let reply = service.call(call).map_err(|m| err_msg(&ctx, &m))?;
                Ok(track_call(&h, reply))
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "open",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, class: String, id: String| -> rquickjs::Result<u32> {
                let objects = objects(&ctx, &h)?;
                let ns = objects.storage_namespace(&class).ok_or_else(|| {
                    err_msg(
                        &ctx,
                        &format!("Durable Object class \"{class}\" is not configured"),
                    )
                })?;
                let id = ns.id_from_string(&id).map_err(|e| raise(&ctx, &e))?;
                let storage = ns.storage(&id).map_err(|e| raise(&ctx, &e))?;
                let handle = h.durable.next_handle.get();
                h.durable.next_handle.set(handle.wrapping_add(1).max(1));
                h.durable
                    .storages
                    .borrow_mut()
                    .insert(handle, Rc::new(storage));
                Ok(handle)
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "close",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32| -> rquickjs::Result<()> {
                let storage = h.durable.storages.borrow_mut().remove(&handle);
                if let Some(s) = storage {
                    h.durable.flush(&s).map_err(|e| raise(&ctx, &e))?;
                }
                Ok(())
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "flush",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32| -> rquickjs::Result<()> {
                let s = h.durable.storage(&ctx, handle)?;
                h.durable.flush(&s).map_err(|e| raise(&ctx, &e))
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "kvGet",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  handle: u32,
                  keys: Vec<String>,
                  multi: bool|
                  -> rquickjs::Result<Array<'js>> {
                let s = h.durable.storage(&ctx, handle)?;
                let found = if multi {
                    s.get_many(&keys).map_err(|e| raise(&ctx, &e))?
                } else {
                    let key = keys.into_iter().next().unwrap_or_default();
                    match s.get(&key).map_err(|e| raise(&ctx, &e))? {
                        Some(v) => vec![(key, v)],
                        None => Vec::new(),
                    }
                };
                pairs_to_js(&ctx, found)
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "kvPut",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  handle: u32,
                  pairs: Vec<Vec<String>>,
                  multi: bool|
                  -> rquickjs::Result<()> {
                let s = h.durable.storage(&ctx, handle)?;
                // Each entry is [key, encoded value, size]: the size is the
                // value's V8-serialized size, which Cloudflare's limits measure
                // (the JSON encoding carries bytes as base64, so it is larger).
                let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(pairs.len());
                let mut sizes: Vec<usize> = Vec::with_capacity(pairs.len());
                for p in pairs {
                    let mut p = p.into_iter();
                    let (Some(k), Some(v)) = (p.next(), p.next()) else {
                        continue;
                    };
                    let size = p.next().and_then(|n| n.parse::<usize>().ok());
                    sizes.push(size.unwrap_or(v.len()));
                    entries.push((k, v.into_bytes()));
                }
                if !multi {
                    entries.truncate(1);
                    sizes.truncate(1);
                }
                s.put_many_measured(&entries, &sizes)
                    .map_err(|e| raise(&ctx, &e))
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "kvDelete",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  handle: u32,
                  keys: Vec<String>,
                  multi: bool|
                  -> rquickjs::Result<f64> {
                let s = h.durable.storage(&ctx, handle)?;
                if multi {
                    let n = s.delete_many(&keys).map_err(|e| raise(&ctx, &e))?;
                    Ok(n as f64)
                } else {
                    let key = keys.into_iter().next().unwrap_or_default();
                    let found = s.delete(&key).map_err(|e| raise(&ctx, &e))?;
                    Ok(if found { 1.0 } else { 0.0 })
                }
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "kvList",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32, opts: Array<'js>| -> rquickjs::Result<Array<'js>> {
                let start: Option<String> = opts.get(0)?;
                let start_after: Option<String> = opts.get(1)?;
                let end: Option<String> = opts.get(2)?;
                let prefix: Option<String> = opts.get(3)?;
                let reverse: bool = opts.get(4)?;
                let limit: Option<f64> = opts.get(5)?;
                let s = h.durable.storage(&ctx, handle)?;
                let limit = match limit {
                    Some(l) if l.is_nan() || l < 1.0 => {
                        return Err(raise(&ctx, &DoError::ListLimitNotPositive));
                    }
                    Some(l) => Some(l as u64),
                    None => None,
                };
                let options = ListOptions {
                    start,
                    start_after,
                    end,
                    prefix,
                    reverse,
                    limit,
                };
                let found = s.list(&options).map_err(|e| raise(&ctx, &e))?;
                pairs_to_js(&ctx, found)
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "kvDeleteAll",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32| -> rquickjs::Result<()> {
                let s = h.durable.storage(&ctx, handle)?;
                s.delete_all(false).map_err(|e| raise(&ctx, &e))
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "getAlarm",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32| -> rquickjs::Result<Option<f64>> {
                let s = h.durable.storage(&ctx, handle)?;
                let at = s.get_alarm().map_err(|e| raise(&ctx, &e))?;
                Ok(at.map(|v| v as f64))
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "setAlarm",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32, ms: f64| -> rquickjs::Result<()> {
                let s = h.durable.storage(&ctx, handle)?;
                s.set_alarm(ms as i64).map_err(|e| raise(&ctx, &e))
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "deleteAlarm",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32| -> rquickjs::Result<()> {
                let s = h.durable.storage(&ctx, handle)?;
                s.delete_alarm().map_err(|e| raise(&ctx, &e))
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "sqlExec",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  handle: u32,
                  query: String,
                  bindings: Vec<Value<'js>>|
                  -> rquickjs::Result<Array<'js>> {
                let s = h.durable.storage(&ctx, handle)?;
                let params = bindings
                    .iter()
                    .map(|v| sql_value(&ctx, v))
                    .collect::<rquickjs::Result<Vec<_>>>()?;
                let mut cursor = s.sql_exec(&query, &params).map_err(|e| raise(&ctx, &e))?;
                let columns = cursor.column_names().to_vec();
                let read = cursor.rows_read() as f64;
                let written = cursor.rows_written() as f64;
                let rows = Array::new(ctx.clone())?;
                for (i, row) in cursor.raw().enumerate() {
                    let r = Array::new(ctx.clone())?;
                    for (j, v) in row.into_iter().enumerate() {
                        r.set(j, js_sql_value(&ctx, v)?)?;
                    }
                    rows.set(i, r)?;
                }
                let out = Array::new(ctx.clone())?;
                out.set(0, columns)?;
                out.set(1, rows)?;
                out.set(2, read)?;
                out.set(3, written)?;
                Ok(out)
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "databaseSize",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32| -> rquickjs::Result<f64> {
                let s = h.durable.storage(&ctx, handle)?;
                let size = s.database_size().map_err(|e| raise(&ctx, &e))?;
                Ok(size as f64)
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "txnSync",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32, f: Function<'js>| -> rquickjs::Result<Value<'js>> {
                let s = h.durable.storage(&ctx, handle)?;
                let result = s.transaction_sync(|_| f.call::<_, Value>(()).map_err(TxError::Js));
                finish_txn(&ctx, result)
            },
        )?,
    )?;

    // transaction(async fn): the callback runs to completion inside the
    // transaction, its storage awaits settling as microtasks here.
    let h = host.clone();
    obj.set(
        "txnAsync",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: u32, f: Function<'js>| -> rquickjs::Result<Value<'js>> {
                let s = h.durable.storage(&ctx, handle)?;
                let result = s.transaction(|_| {
                    let p = MaybePromise::from_value(f.call::<_, Value>(()).map_err(TxError::Js)?);
                    loop {
                        match p.state() {
                            PromiseState::Pending => {
                                if !ctx.execute_pending_job() {
                                    return Err(TxError::Stuck);
                                }
                            }
                            PromiseState::Resolved => {
                                return match p.result::<Value>() {
                                    Some(Ok(v)) => Ok(v),
                                    Some(Err(e)) => Err(TxError::Js(e)),
                                    None => Err(TxError::Stuck),
                                };
                            }
                            PromiseState::Rejected => {
                                let reason = match p.result::<Value>() {
                                    Some(Err(rquickjs::Error::Exception)) => ctx.catch(),
                                    Some(Ok(v)) => v,
                                    _ => Value::new_undefined(ctx.clone()),
                                };
                                return Err(TxError::Rejected(reason));
                            }
                        }
                    }
                });
                finish_txn(&ctx, result)
            },
        )?,
    )?;

    // respond(rid, [status, statusText, headers, body], socketId)
    let h = host.clone();
    obj.set(
        "respond",
        Function::new(
            ctx.clone(),
            move |rid: f64, out: Array<'js>, socket: f64| -> rquickjs::Result<()> {
                let rid = rid as u64;
                let status: u16 = out.get(0)?;
                let status_text: String = out.get(1)?;
                let flat: Vec<String> = out.get(2)?;
                let body: Value = out.get(3)?;
                let body = value_to_bytes(&body)?;
                let web_socket = if socket > 0.0 {
                    let id = socket as u64;
                    let (tx, rx) = crate::ws_queue();
                    h.sockets.borrow_mut().insert(id, (tx, rid));
                    Some(WebSocketChannel {
                        outgoing: rx,
                        incoming: WebSocketSink::new(id, h.events.clone()),
                    })
                } else {
                    None
                };
                h.send(
                    rid,
                    Ok(WorkerResponse {
                        status,
                        status_text,
                        headers: pairs_from_flat(flat),
                        body,
                        stream: None,
                        web_socket,
                    }),
                );
                Ok(())
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "done",
        Function::new(ctx.clone(), move |rid: f64| {
            h.durable.alarms.borrow_mut().remove(&(rid as u64));
            h.finish(rid as u64)
        })?,
    )?;

    // Before running an alarm: is it still the one the index holds?
    let h = host.clone();
    obj.set(
        "alarmCurrent",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, rid: f64, _handle: u32| -> rquickjs::Result<bool> {
                let objects = objects(&ctx, &h)?;
                let Some(alarm) = h.durable.alarms.borrow().get(&(rid as u64)).cloned() else {
                    return Ok(false);
                };
                let current = objects.scheduler().is_current(&alarm).unwrap_or(false);
                if !current {
                    objects.scheduler().release(&alarm);
                    h.durable.alarms.borrow_mut().remove(&(rid as u64));
                }
                Ok(current)
            },
        )?,
    )?;

    let h = host.clone();
    obj.set(
        "alarmDone",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, rid: f64, handle: u32, ok: bool| -> rquickjs::Result<()> {
                let objects = objects(&ctx, &h)?.clone();
                let Some(alarm) = h.durable.alarms.borrow_mut().remove(&(rid as u64)) else {
                    return Ok(());
                };
                let storage = h.durable.storages.borrow().get(&handle).cloned();
                let storage = match storage {
                    Some(s) => s,
                    None => {
                        let ns = objects.storage_namespace(&alarm.namespace);
                        let opened = ns.and_then(|ns| {
                            let id = ns.id_from_string(&alarm.id).ok()?;
                            ns.storage(&id).ok()
                        });
                        match opened {
                            Some(s) => Rc::new(s),
                            None => {
                                let _ = objects.scheduler().failed(&alarm);
                                return Ok(());
                            }
                        }
                    }
                };
                let outcome = finish_alarm(&objects, &storage, &alarm, ok);
                objects.alarms_changed();
                outcome.map_err(|e| raise(&ctx, &e))
            },
        )?,
    )?;

    // remoteAccept(remoteId, localId): the caller accept()ed the client end
    // of an object's WebSocket instead of returning it. The object's channel
    // is joined to the local socket `localId` (an attached end whose peer is
    // the WebSocket the caller holds): what the caller sends goes to the
    // object, what the object sends arrives as events on `localId`.
    let h = host.clone();
    obj.set(
        "remoteAccept",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, remote: f64, local: f64| -> rquickjs::Result<()> {
                let Some(channel) = h.durable.take_remote_socket(remote as u64) else {
                    return Err(err_msg(
                        &ctx,
                        "This WebSocket was already used in a response.",
                    ));
                };
                let local = local as u64;
                let WebSocketChannel {
                    mut outgoing,
                    incoming,
                } = channel;
                let (tx, mut rx) = crate::ws_queue();
                h.sockets.borrow_mut().insert(local, (tx, h.owner.get()));
                tokio::spawn(async move {
                    while let Some(msg) = rx.recv().await {
                        let close = matches!(msg, WsMessage::Close { .. });
                        let delivered = if close {
                            incoming.send(msg)
                        } else {
                            incoming.deliver(msg).await
                        };
                        if !delivered || close {
                            break;
                        }
                    }
                });
                let here = WebSocketSink::new(local, h.events.clone());
                tokio::spawn(async move {
                    loop {
                        match outgoing.recv().await {
                            Some(msg) => {
                                let close = matches!(msg, WsMessage::Close { .. });
                                let delivered = if close {
                                    here.send(msg)
                                } else {
                                    here.deliver(msg).await
                                };
                                if !delivered || close {
                                    break;
                                }
                            }
                            // The object's end went away without a close frame.
                            None => {
                                here.send(WsMessage::Close {
                                    code: 1006,
                                    reason: String::new(),
                                });
                                break;
                            }
                        }
                    }
                });
                Ok(())
            },
        )?,
    )?;

    Ok(obj)
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

fn finish_txn<'js>(
    ctx: &Ctx<'js>,
    result: Result<Value<'js>, TxError<'js>>,
) -> rquickjs::Result<Value<'js>> {
    match result {
        Ok(v) => Ok(v),
        Err(TxError::Storage(e)) => Err(raise(ctx, &e)),
        Err(TxError::Js(e)) => Err(e),
        Err(TxError::Rejected(reason)) => Err(ctx.throw(reason)),
        Err(TxError::Stuck) => Err(err_msg(
            ctx,
            "transaction() callback awaited something other than this object's storage; it was rolled back",
        )),
    }
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
    let outcome = match &job.event {
        ObjectEvent::Fetch {
            method,
            url,
            headers,
            body,
        } => instance
            .fetch(
                &state,
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
                let ran = instance.alarm(&state, info);
                finish_alarm(&objects, &storage, alarm, ran.is_ok())
                    .map_err(|e| fail(e.to_string()))?;
                objects.alarms_changed();
                if let Err(e) = &ran {
                    tracing::error!(target: "hearth::durable", "alarm() failed: {e}");
                }
                Ok(ok_text(if ran.is_ok() { "ok" } else { "failed" }))
            }
        }
    };
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

/// `String::from_js` etc. on a borrowed value.
trait FromJsValue<'js>: Sized {
    fn from_js_value(v: &Value<'js>) -> rquickjs::Result<Self>;
}

impl<'js, T: rquickjs::FromJs<'js>> FromJsValue<'js> for T {
    fn from_js_value(v: &Value<'js>) -> rquickjs::Result<Self> {
        T::from_js(v.ctx(), v.clone())
    }
}
