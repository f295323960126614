//! Events other than `fetch`: the default export's `scheduled(controller,
//! env, ctx)` and `queue(batch, env, ctx)` handlers.
//!
//! An event travels as a [`WorkerEvent`] (a kind, a JSON payload and some
//! byte buffers) through the same isolate machinery as a request: it gets a
//! slot with the per-request CPU limit, its `console` lines carry its id, an
//! exception in it is caught, and `ctx.waitUntil` promises are awaited
//! before the outcome is reported. The JS half (`js/events.js`) builds the
//! handler's arguments for each kind and answers with a JSON outcome.
//!
//! Adding a kind: register it in the `kinds` map of `js/events.js` (how to
//! build the arguments and what to report) and add a typed wrapper here as
//! [`IsolatePool::scheduled`] and [`IsolatePool::queue`] are.

use hearth_queues::{BatchOutcome, LeasedBatch, QueueRetryOptions};
use rquickjs::{Array, ArrayBuffer, Ctx, Function, Object, Persistent, Value};
use serde::Deserialize;

use crate::error::DispatchError;
use crate::pool::IsolatePool;

const EVENTS_JS: &str = include_str!("../js/events.js");

/// Whether `kind` is in the `kinds` map of `js/events.js`.
#[cfg(test)]
pub(crate) fn event_kind_known(kind: &str) -> bool {
    EVENTS_JS.contains(&format!("[\"{kind}\", "))
}
/// The structured-clone codec that queue messages and workflow values are
/// encoded with: the versioned format of `hearth-webapi` (its
/// `js/41_serialize.js`), evaluated once per isolate with the Web APIs, in its
/// bytes flavour, which also reads values written before it was versioned.
pub(crate) fn structured_codec<'js>(
    ctx: &rquickjs::Ctx<'js>,
) -> rquickjs::Result<rquickjs::Value<'js>> {
    let host: Object = ctx.globals().get(hearth_webapi::HOST_GLOBAL)?;
    let codec: Object = host.get("codec")?;
    codec.get("bytes")
}

/// One event for the worker's default export.
#[derive(Debug, Clone)]
pub struct WorkerEvent {
    /// Tags the event's log lines (`request_id` field).
    pub id: String,
    /// The kind registered in `js/events.js`: `scheduled`, `queue`.
    pub kind: String,
    /// Kind-specific arguments, as JSON.
    pub payload: serde_json::Value,
    /// Bytes handed to JS as `ArrayBuffer`s (queue message bodies).
    pub buffers: Vec<Vec<u8>>,
}

/// An exception from a handler, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EventError {
    pub message: String,
    /// `Name: message` and the worker's stack frames.
    pub stack: String,
}

/// What the JS half reports for every kind; kind-specific fields follow.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawOutcome {
    pub(crate) error: Option<EventError>,
    #[serde(rename = "waitUntilError")]
    wait_until_error: Option<EventError>,
    #[serde(flatten)]
    pub(crate) rest: serde_json::Map<String, serde_json::Value>,
}

/// The outcome of one `scheduled()` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledOutcome {
    /// Why the run failed: the handler threw or rejected, the first
    /// `waitUntil` promise to reject (as Cloudflare records it), or a limit.
    pub error: Option<String>,
    /// The handler called `controller.noRetry()`.
    pub no_retry: bool,
}

impl ScheduledOutcome {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The `queue()` handler's calls, replayed in order into a
/// [`BatchOutcome`], which applies Cloudflare's precedence rules.
#[derive(Debug, Clone)]
pub struct QueueEventOutcome {
    pub outcome: BatchOutcome,
    /// Why the handler failed, if it did (then undecided messages retry).
    pub error: Option<String>,
}

pub(crate) struct EventApi {
    dispatch: Persistent<Function<'static>>,
}

/// Evaluates `js/events.js` for one isolate, bound to its default export,
/// its other exports (Workflow classes) and `env`.
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    host: Object<'js>,
    default: Value<'js>,
    exports: Object<'js>,
    env: Object<'js>,
    workflows: Option<&std::sync::Arc<crate::bindings::workflow::runner::Workflows>>,
) -> rquickjs::Result<EventApi> {
    let codec = structured_codec(ctx)?;
    let factory: Function =
        hearth_webapi::builtin::eval_script(ctx, EVENTS_JS, eval_options("events.js"))?;
    let step_natives = match workflows {
        Some(w) => crate::bindings::workflow::runner::natives(ctx, w)?.into_value(),
        None => Value::new_null(ctx.clone()),
    };
    let api: Object = factory.call((host, codec, step_natives))?;
    let install: Function = api.get("install")?;
    install.call::<_, ()>((default, env, exports))?;
    let dispatch: Function = api.get("dispatch")?;
    Ok(EventApi {
        dispatch: Persistent::save(ctx, dispatch),
    })
}

impl EventApi {
    /// Starts the event in JS; the outcome arrives through `host.respond`.
    pub(crate) fn call<'js>(
        &self,
        ctx: &Ctx<'js>,
        rid: u64,
        event: WorkerEvent,
    ) -> rquickjs::Result<()> {
        let buffers = Array::new(ctx.clone())?;
        for (i, b) in event.buffers.into_iter().enumerate() {
            buffers.set(i, ArrayBuffer::new(ctx.clone(), b)?)?;
        }
        let dispatch = self.dispatch.clone().restore(ctx)?;
        dispatch.call::<_, ()>((rid as f64, event.kind, event.payload.to_string(), buffers))
    }
}

fn eval_options(script: &str) -> rquickjs::context::EvalOptions {
    let mut o = rquickjs::context::EvalOptions::default();
    o.global = true;
    o.strict = true;
    o.filename = Some(format!("hearth:internal/{script}"));
    o
}

/// Logs a handler's exception as a failed request's is logged.
fn log_error(id: &str, what: &str, e: &EventError) {
    tracing::error!(target: "hearth::worker", request_id = %id, "{what}{}", e.stack);
}

impl IsolatePool {
    pub(crate) async fn run_event(&self, event: WorkerEvent) -> Result<RawOutcome, DispatchError> {
        let id = event.id.clone();
        let response = self.dispatch_event(event).await?;
        let raw: RawOutcome =
            serde_json::from_slice(&response.body).map_err(|e| DispatchError::Exception {
                message: format!("malformed event outcome: {e}"),
                stack: String::new(),
                pass_through: false,
            })?;
        if let Some(e) = &raw.error {
            log_error(&id, "Uncaught ", e);
        }
        if let Some(e) = &raw.wait_until_error {
            log_error(&id, "Uncaught (in waitUntil) ", e);
        }
        Ok(raw)
    }

    /// Runs `scheduled(controller, env, ctx)` with `controller.cron = cron`
    /// and `controller.scheduledTime = scheduled_time_ms`. A limit hit or a
    /// lost isolate is a failed run, never an `Err`.
    pub async fn scheduled(
        &self,
        id: impl Into<String>,
        cron: &str,
        scheduled_time_ms: u64,
    ) -> ScheduledOutcome {
        let event = WorkerEvent {
            id: id.into(),
            kind: "scheduled".into(),
            payload: serde_json::json!({ "cron": cron, "scheduledTime": scheduled_time_ms }),
            buffers: Vec::new(),
        };
        match self.run_event(event).await {
            Ok(raw) => ScheduledOutcome {
                error: raw.error.or(raw.wait_until_error).map(|e| e.stack),
                no_retry: raw
                    .rest
                    .get("noRetry")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
            },
            Err(e) => ScheduledOutcome {
                error: Some(e.to_string()),
                no_retry: false,
            },
        }
    }

    /// Runs `queue(batch, env, ctx)` for a leased batch and returns the
    /// outcome to settle it with. A throwing handler, a limit hit or a lost
    /// isolate retries every message the handler did not decide about.
    pub async fn queue(&self, id: impl Into<String>, batch: &LeasedBatch) -> QueueEventOutcome {
        let mut outcome = batch.outcome();
        let max_delay = outcome.max_delay_secs();
        let messages: Vec<serde_json::Value> = batch
            .messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id,
                    "timestamp_ms": m.timestamp_ms,
                    "attempts": m.attempts,
                    "content_type": m.content_type.as_str(),
                })
            })
            .collect();
        let event = WorkerEvent {
            id: id.into(),
            kind: "queue".into(),
            payload: serde_json::json!({
                "queue": batch.queue,
                "messages": messages,
                "maxDelaySecs": max_delay,
            }),
            buffers: batch.messages.iter().map(|m| m.body.clone()).collect(),
        };
        let raw = match self.run_event(event).await {
            Ok(raw) => raw,
            Err(e) => {
                outcome.set_threw();
                return QueueEventOutcome {
                    outcome,
                    error: Some(e.to_string()),
                };
            }
        };
        if let Some(calls) = raw.rest.get("calls").and_then(|c| c.as_array()) {
            for call in calls {
                replay(&mut outcome, call);
            }
        }
        let error = raw.error.map(|e| e.stack);
        if error.is_some() {
            outcome.set_threw();
        }
        QueueEventOutcome { outcome, error }
    }
}

fn replay(outcome: &mut BatchOutcome, call: &serde_json::Value) {
    let Some(parts) = call.as_array() else { return };
    let op = parts.first().and_then(|v| v.as_str()).unwrap_or("");
    let delay = |i: usize| QueueRetryOptions {
        delay_seconds: parts.get(i).and_then(|v| v.as_f64()),
    };
    let id = parts.get(1).and_then(|v| v.as_str()).unwrap_or("");
    // The JS half already refused bad delays, so these calls cannot fail.
    match op {
        "ack" => {
            outcome.ack(id);
        }
        "retry" => {
            let _ = outcome.retry(id, &delay(2));
        }
        "ackAll" => {
            outcome.ack_all();
        }
        "retryAll" => {
            let _ = outcome.retry_all(&delay(1));
        }
        _ => {}
    }
}
