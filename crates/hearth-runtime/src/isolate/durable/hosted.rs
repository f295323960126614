//! The natives `js/durable.js` calls for the events of objects hosted in
//! this isolate: answering an event and checking and completing alarms.

use std::rc::Rc;

use rquickjs::class::Trace;
use rquickjs::{Array, Ctx, JsLifetime, Value};

use super::super::host::Host;
use super::super::{pairs_from_flat, value_to_bytes};
use super::{finish_alarm, objects};
use crate::durable::adapter::raise;
use crate::{WebSocketChannel, WebSocketSink, WorkerResponse};

/// `hosted` in `durable.js`.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "DurableObjectEventNatives")]
pub(super) struct HostedNatives {
    #[qjs(skip_trace)]
    host: Rc<Host>,
}

impl HostedNatives {
    pub(super) fn new(host: Rc<Host>) -> Self {
        Self { host }
    }
}

#[rquickjs::methods]
impl HostedNatives {
    /// respond(rid, [status, statusText, headers, body], socketId)
    fn respond<'js>(&self, rid: f64, out: Array<'js>, socket: f64) -> rquickjs::Result<()> {
        let h = &self.host;
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
    }

    /// Answers of this isolate's objects wait for a group commit.
    fn hold(&self) {
        self.host.durable.hold();
    }

    fn done(&self, rid: f64) {
        self.host.durable.alarms.borrow_mut().remove(&(rid as u64));
        self.host.finish(rid as u64)
    }

    /// Before running an alarm: is it still the one the index holds?
    #[qjs(rename = "alarmCurrent")]
    fn alarm_current(&self, ctx: Ctx<'_>, rid: f64, _handle: u32) -> rquickjs::Result<bool> {
        let h = &self.host;
        let objects = objects(&ctx, h)?;
        let Some(alarm) = h.durable.alarms.borrow().get(&(rid as u64)).cloned() else {
            return Ok(false);
        };
        let current = objects.scheduler().is_current(&alarm).unwrap_or(false);
        if !current {
            objects.scheduler().release(&alarm);
            h.durable.alarms.borrow_mut().remove(&(rid as u64));
        }
        Ok(current)
    }

    /// The alarm event `rid` ran (`ok`) or failed: record it in the object's
    /// storage and the alarm index.
    #[qjs(rename = "alarmDone")]
    fn alarm_done(&self, ctx: Ctx<'_>, rid: f64, handle: u32, ok: bool) -> rquickjs::Result<()> {
        let h = &self.host;
        let objects = objects(&ctx, h)?.clone();
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
    }
}
