//! `env.<Queue binding>`: a Queues producer over [`hearth_queues::QueueProducer`].
//!
//! The JS half (`queue.js`) encodes bodies by content type
//! (`v8` with the versioned structured-clone codec, see
//! [`crate::structured_clone`], which the consumer side decodes alike); the natives here hand the
//! bytes to the broker. A send commits before its promise resolves, so an
//! acknowledged message survives a crash. After each committed send the
//! adapter wakes the push consumer, if one listens.

pub mod consumer;
mod kind;
mod pull;

pub use kind::{QueueKind, configure_broker, consumer_config, open_broker};

use std::sync::Arc;

use hearth_core::ErrorClass;
use hearth_queues::{
    MessageSendRequest, QueueContentType, QueueProducer, QueueSendBatchOptions, QueueSendOptions,
};
use rquickjs::{Ctx, Function, Object, Value};
use tokio::sync::Notify;

use super::BindingAdapter;
use super::support::{bytes_of, install_factory, raise, throw};

const QUEUE_JS: &str = include_str!("queue.js");

/// Exposes one queue producer as `env[name]`.
pub struct QueueAdapter {
    name: String,
    producer: QueueProducer,
    backend: String,
    sent: Option<Arc<Notify>>,
    json_by_default: bool,
}

/// The compatibility date from which a body sent without `contentType` is
/// JSON rather than V8-serialized (workerd's `queues_json_messages`).
pub const JSON_MESSAGES_DATE: &str = "2024-03-18";

/// Whether a worker with this compatibility date and these flags sends
/// bodies without a `contentType` as JSON: from [`JSON_MESSAGES_DATE`] on,
/// or with `queues_json_messages`, unless `no_queues_json_messages` is set.
pub fn queues_json_messages(compatibility_date: Option<&str>, flags: &[String]) -> bool {
    if flags.iter().any(|f| f == "no_queues_json_messages") {
        return false;
    }
    flags.iter().any(|f| f == "queues_json_messages")
        || compatibility_date.is_some_and(|d| d >= JSON_MESSAGES_DATE)
}

impl QueueAdapter {
    pub fn new(binding_name: impl Into<String>, producer: QueueProducer) -> Self {
        Self {
            name: binding_name.into(),
            producer,
            backend: "sqlite".into(),
            sent: None,
            json_by_default: false,
        }
    }

    /// Picks the default content type from the worker's compatibility date
    /// and flags (see [`queues_json_messages`]). Without this call a body
    /// sent without `contentType` is V8-serialized, as on a worker with no
    /// compatibility date.
    pub fn with_compatibility(mut self, date: Option<&str>, flags: &[String]) -> Self {
        self.json_by_default = queues_json_messages(date, flags);
        self
    }

    /// Sets what the health report says about where the data lives.
    pub fn with_backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = backend.into();
        self
    }

    /// Notified after every committed send, so a push consumer waiting for
    /// work looks again at once.
    pub fn notify_on_send(mut self, notify: Arc<Notify>) -> Self {
        self.sent = Some(notify);
        self
    }

    pub fn producer(&self) -> &QueueProducer {
        &self.producer
    }
}

impl std::fmt::Debug for QueueAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueAdapter")
            .field("name", &self.name)
            .field("queue", &self.producer.queue())
            .finish()
    }
}

fn content_type(ctx: &Ctx<'_>, value: &str) -> rquickjs::Result<QueueContentType> {
    QueueContentType::parse(value).map_err(|e| raise(ctx, e))
}

fn body_bytes(ctx: &Ctx<'_>, v: &Value<'_>) -> rquickjs::Result<Vec<u8>> {
    bytes_of(v)?.ok_or_else(|| {
        throw(
            ctx,
            ErrorClass::TypeError,
            "queue message body did not serialize to bytes",
        )
    })
}

impl BindingAdapter for QueueAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "queue"
    }

    fn backend(&self) -> String {
        self.backend.clone()
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Object::new(ctx.clone())?;
        native.set("codec", crate::events::structured_codec(ctx)?)?;
        native.set("jsonByDefault", self.json_by_default)?;

        // send(bytes | string, contentType, delaySeconds)
        let producer = self.producer.clone();
        let sent = self.sent.clone();
        native.set(
            "send",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      body: Value<'js>,
                      kind: String,
                      delay: Option<f64>|
                      -> rquickjs::Result<()> {
                    let options = QueueSendOptions {
                        content_type: content_type(&ctx, &kind)?,
                        delay_seconds: delay,
                    };
                    let bytes = body_bytes(&ctx, &body)?;
                    producer.send(bytes, &options).map_err(|e| raise(&ctx, e))?;
                    if let Some(n) = &sent {
                        n.notify_one();
                    }
                    Ok(())
                },
            )?,
        )?;

        // sendBatch(bodies, contentTypes, delays, batchDelay)
        let producer = self.producer.clone();
        let sent = self.sent.clone();
        native.set(
            "sendBatch",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      bodies: Vec<Value<'js>>,
                      kinds: Vec<String>,
                      delays: Vec<Option<f64>>,
                      batch_delay: Option<f64>|
                      -> rquickjs::Result<()> {
                    let mut messages = Vec::with_capacity(bodies.len());
                    for (i, body) in bodies.iter().enumerate() {
                        let kind = kinds.get(i).map(String::as_str).unwrap_or("v8");
                        messages.push(MessageSendRequest {
                            body: body_bytes(&ctx, body)?,
                            content_type: content_type(&ctx, kind)?,
                            delay_seconds: delays.get(i).copied().flatten(),
                        });
                    }
                    let options = QueueSendBatchOptions {
                        delay_seconds: batch_delay,
                    };
                    producer
                        .send_batch(messages, &options)
                        .map_err(|e| raise(&ctx, e))?;
                    if let Some(n) = &sent {
                        n.notify_one();
                    }
                    Ok(())
                },
            )?,
        )?;

        install_factory(ctx, env, &self.name, "queue.js", QUEUE_JS, native)
    }
}
