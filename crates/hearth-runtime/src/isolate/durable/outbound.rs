//! The caller's natives `js/durable.js` calls: calls to Durable Objects
//! (hosted here or in any isolate) and to service bindings, and joining an
//! object's WebSocket to a socket of this worker. Answers come back to the
//! loop as `DurableReply` events.

use std::rc::Rc;

use bytes::Bytes;
use rquickjs::class::Trace;
use rquickjs::{Array, Ctx, JsLifetime, Value};

use super::super::host::Host;
use super::super::{CallReply, HostEvent, pairs_from_flat, value_to_bytes};
use super::{err_msg, objects};
use crate::durable::{ObjectEvent, ObjectJob};
use crate::error::DispatchError;
use crate::services::ServiceCall;
use crate::{WebSocketChannel, WebSocketSink, WorkerRequest, WorkerResponse, WsMessage};

/// `outbound` in `durable.js`.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "DurableObjectCallNatives")]
pub(super) struct OutboundNatives {
    #[qjs(skip_trace)]
    host: Rc<Host>,
}

impl OutboundNatives {
    pub(super) fn new(host: Rc<Host>) -> Self {
        Self { host }
    }
}

#[rquickjs::methods]
impl OutboundNatives {
    /// call(kind, class, id, name, args, script) -> call number; the answer
    /// comes back through `reply` / `replyError`. `script` names the worker
    /// hosting the class when it is not this one.
    #[allow(clippy::too_many_arguments)]
    fn call<'js>(
        &self,
        ctx: Ctx<'js>,
        kind: String,
        class: String,
        id: String,
        name: Option<String>,
        args: Array<'js>,
        script: Option<String>,
    ) -> rquickjs::Result<f64> {
        let h = &self.host;
        let a: Value = args.get(0)?;
        let b: Value = args.get(1)?;
        let c: Value = args.get(2)?;
        let d: Value = args.get(3)?;
        let own = objects(&ctx, h)?;
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
                cf: Option::<String>::from_js_value(&args.get::<Value>(4)?)?,
            },
            _ => ObjectEvent::Rpc {
                method: String::from_js_value(&a)?,
                args: String::from_js_value(&b)?,
            },
        };
        // The call leaves the object it is made from: its output gate.
        h.durable.gate_outbound(h);
        let job = ObjectJob {
            class,
            id,
            name,
            event,
        };
        let n = h.durable.next_call.get();
        let reply = CallReply::new(h.events.clone(), n, h.owner.get());
        match objects.send_call(job, reply) {
            Ok(None) => {
                h.durable.next_call.set(n + 1);
                h.durable.calls.borrow_mut().insert(n);
                Ok(n as f64)
            }
            Ok(Some(rx)) => {
                let reply = async move { rx.await.unwrap_or(Err(DispatchError::IsolateRestarted)) };
                Ok(track_call(h, reply))
            }
            Err(e) => Err(err_msg(&ctx, &e.to_string())),
        }
    }

    /// serviceCall(binding, kind, args) -> call number, answered like `call`.
    #[qjs(rename = "serviceCall")]
    fn service_call<'js>(
        &self,
        ctx: Ctx<'js>,
        binding: String,
        kind: String,
        args: Array<'js>,
    ) -> rquickjs::Result<f64> {
        let h = &self.host;
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
                cf: Option::<String>::from_js_value(&args.get::<Value>(4)?)?,
            })
        } else {
            ServiceCall::Rpc {
                method: String::from_js_value(&a)?,
                args: String::from_js_value(&b)?,
            }
        };
        // The call leaves any object hosted here: its output gate.
        h.durable.gate_outbound(h);
        let reply = service.call(call).map_err(|m| err_msg(&ctx, &m))?;
        Ok(track_call(h, reply))
    }

    /// remoteAccept(remoteId, localId): the caller accept()ed the client end
    /// of an object's WebSocket instead of returning it. The object's
    /// channel is joined to the local socket `localId` (an attached end
    /// whose peer is the WebSocket the caller holds): what the caller sends
    /// goes to the object, what the object sends arrives as events on
    /// `localId`.
    #[qjs(rename = "remoteAccept")]
    fn remote_accept(&self, ctx: Ctx<'_>, remote: f64, local: f64) -> rquickjs::Result<()> {
        let h = &self.host;
        let Some(channel) = h.durable.take_remote_socket(remote as u64) else {
            return Err(err_msg(
                &ctx,
                "This WebSocket was already used in a response.",
            ));
        };
        let local = local as u64;
        let WebSocketChannel { outgoing, incoming } = channel;
        let (tx, rx) = crate::ws_queue();
        h.sockets.borrow_mut().insert(local, (tx, h.owner.get()));
        tokio::spawn(relay_to_object(rx, incoming));
        let here = WebSocketSink::new(local, h.events.clone());
        tokio::spawn(relay_from_object(outgoing, here));
        Ok(())
    }
}

/// What the caller's socket sends, to the object, until either side closes.
async fn relay_to_object(mut rx: crate::WsOutgoing, incoming: WebSocketSink) {
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
}

/// What the object sends, as events on the caller's socket.
async fn relay_from_object(mut outgoing: crate::WsOutgoing, here: WebSocketSink) {
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
}

/// Registers a call in flight and delivers its answer to the loop as a
/// `DurableReply`; a streamed answer is read whole first.
fn track_call(
    h: &Host,
    reply: impl std::future::Future<Output = Result<WorkerResponse, DispatchError>> + Send + 'static,
) -> f64 {
    let n = h.durable.next_call.get();
    h.durable.next_call.set(n + 1);
    h.durable.calls.borrow_mut().insert(n);
    let owner = h.owner.get();
    let events = h.events.clone();
    tokio::spawn(async move {
        let result = match reply.await {
            Ok(resp) => collect_reply(resp).await,
            Err(e) => Err(e),
        };
        let _ = events.send(HostEvent::DurableReply {
            call: n,
            owner,
            result,
        });
    });
    n as f64
}

/// An answer with its body read whole (a streamed one is gathered).
pub(crate) async fn collect_reply(
    mut resp: WorkerResponse,
) -> Result<WorkerResponse, DispatchError> {
    if resp.stream.is_none() {
        return Ok(resp);
    }
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
