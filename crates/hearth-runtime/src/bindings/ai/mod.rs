//! `env.<ai binding>`: Workers AI over [`hearth_ai::Ai`]. `run(model,
//! inputs, options)` resolves to the model's JSON result, or with
//! `stream: true` to a `ReadableStream` of server-sent events; failures
//! reject with Workers AI's `AiError` (`"5007: No such model ..."`).
//!
//! Without a gateway the model runs on the isolate thread, as the KV and
//! D1 natives do: an embedding call holds the isolate for its compute
//! time, a provider call for the provider's answer (bounded by the
//! provider's timeout), and a stream for each piece as it is pulled.
//!
//! With `options.gateway`, and for `env.AI.gateway(id)`, the glue calls
//! the in-process service of [`gateway`] instead: the call is a task on
//! the loop, its answer a promise the loop resolves.

mod gateway;

use std::cell::RefCell;
use std::sync::Arc;

use hearth_ai::{Ai, AiOutput, EventStream};
use rquickjs::class::Trace;
use rquickjs::{Class, Ctx, JsLifetime, Object, Value};

use super::BindingAdapter;
use super::registry::{BindingError, BindingKind, OpenContext, OpenedWorker};
use super::support::{install_factory, raise};

const AI_JS: &str = include_str!("ai.js");

/// Exposes Workers AI as `env[name]`.
pub struct AiAdapter {
    name: String,
    ai: Arc<Ai>,
    /// Whether the server has AI Gateways (`--ai-gateway`); without, a
    /// `gateway` option calls the provider directly.
    gateways: bool,
}

impl AiAdapter {
    pub fn new(name: impl Into<String>, ai: Arc<Ai>) -> Self {
        Self {
            name: name.into(),
            ai,
            gateways: false,
        }
    }

    /// The in-process service `ai.js` calls for gateway work; the worker
    /// registers it under [`Self::service_name`].
    pub fn gateway_service(
        &mut self,
        gateways: Option<hearth_ai_gateway::Gateways>,
        base_url: Arc<std::sync::OnceLock<String>>,
    ) -> Arc<dyn crate::local::LocalService> {
        self.gateways = gateways.is_some();
        Arc::new(gateway::AiGatewayService {
            ai: self.ai.clone(),
            gateways,
            base_url,
        })
    }

    pub fn service_name(&self) -> String {
        gateway::service_name(&self.name)
    }
}

impl BindingAdapter for AiAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "ai"
    }

    fn backend(&self) -> String {
        let models = self.ai.models();
        let local = models.iter().filter(|m| m.source == "local").count();
        format!(
            "local:{local} models, {} through providers",
            models.len() - local
        )
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Class::instance(
            ctx.clone(),
            AiNatives {
                ai: self.ai.clone(),
                service: self.service_name(),
                gateways: self.gateways,
            },
        )?;
        install_factory(ctx, env, &self.name, "ai.js", AI_JS, native.into_inner())
    }
}

/// The natives `ai.js` calls.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "AiNatives")]
pub(crate) struct AiNatives {
    #[qjs(skip_trace)]
    ai: Arc<Ai>,
    #[qjs(skip_trace)]
    service: String,
    #[qjs(skip_trace)]
    gateways: bool,
}

#[rquickjs::methods]
impl AiNatives {
    /// The name of the gateway service (`localFetch`'s first argument).
    fn service(&self) -> String {
        self.service.clone()
    }

    /// Whether AI Gateways are configured (`--ai-gateway`).
    #[qjs(rename = "hasGateways")]
    fn has_gateways(&self) -> bool {
        self.gateways
    }

    /// run(model, inputsJson) -> resultJson | AiStream
    fn run<'js>(
        &self,
        ctx: Ctx<'js>,
        model: String,
        inputs: String,
    ) -> rquickjs::Result<Value<'js>> {
        let inputs: serde_json::Value =
            serde_json::from_str(&inputs).unwrap_or(serde_json::Value::Null);
        match self.ai.run(&model, &inputs).map_err(|e| raise(&ctx, e))? {
            AiOutput::Json(v) => {
                Ok(rquickjs::String::from_str(ctx.clone(), &v.to_string())?.into_value())
            }
            AiOutput::Stream(s) => {
                let stream = Class::instance(
                    ctx.clone(),
                    AiStream {
                        events: RefCell::new(Some(s)),
                    },
                )?;
                Ok(stream.into_value())
            }
        }
    }
}

/// One streamed answer; dropped with its JS object, or at `close()`.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "AiStream")]
pub(crate) struct AiStream {
    #[qjs(skip_trace)]
    events: RefCell<Option<EventStream>>,
}

#[rquickjs::methods]
impl AiStream {
    /// The next event's text, or null at the end.
    fn next(&self, ctx: Ctx<'_>) -> rquickjs::Result<Option<String>> {
        let mut events = self.events.borrow_mut();
        let Some(s) = events.as_mut() else {
            return Ok(None);
        };
        match s.next() {
            Some(Ok(text)) => Ok(Some(text)),
            Some(Err(e)) => {
                *events = None;
                Err(raise(&ctx, e))
            }
            None => {
                *events = None;
                Ok(None)
            }
        }
    }

    fn close(&self) {
        self.events.borrow_mut().take();
    }
}

/// How `[ai]` is served: by the models of the AI config the server was
/// started with (`--ai-config`); without one every model is unknown.
pub struct AiKind;

impl BindingKind for AiKind {
    fn section(&self) -> &'static str {
        "ai"
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let Some(b) = &cx.config.ai else {
            return Ok(());
        };
        let ai = match &cx.settings.ai {
            Some(ai) => ai.clone(),
            None => {
                tracing::warn!(
                    "{}: ai: {}: no AI config given (--ai-config); every model is unknown",
                    cx.config.path.display(),
                    b.binding
                );
                Arc::new(Ai::new(hearth_ai::AiConfig::default()))
            }
        };
        let mut adapter = AiAdapter::new(&b.binding, ai);
        let service = adapter.gateway_service(
            cx.settings.ai_gateway.clone(),
            cx.settings.ai_gateway_url.clone(),
        );
        out.worker
            .local_services
            .insert(adapter.service_name(), service);
        out.worker.bindings.push(Arc::new(adapter));
        Ok(())
    }
}
