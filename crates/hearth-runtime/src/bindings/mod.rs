//! The worker's `env`: plain vars, secrets, and one object per binding.
//!
//! A binding adapter (KV, D1, R2, ...) implements [`BindingAdapter`] and is
//! listed in [`crate::WorkerConfig::bindings`]. Each isolate calls
//! [`BindingAdapter::install`] once when it is built, so the adapter puts a
//! fresh JS object for its binding on that isolate's `env`. The adapter holds
//! the Rust contract (e.g. a `KvNamespace`) behind an `Arc`, shared by all
//! isolates.

use rquickjs::{Ctx, Object};

use crate::config::WorkerConfig;

mod ai;
mod analytics;
mod assets;
pub mod cron;
pub(crate) mod d1;
mod kv;
pub mod queue;
mod r2;
mod ratelimit;
pub mod registry;
pub(crate) mod support;
mod vectorize;
pub mod workflow;

pub use ai::{AiAdapter, AiKind};
pub use analytics::{AnalyticsAdapter, AnalyticsKind, open_analytics};
pub use assets::{AssetsAdapter, AssetsKind};
pub use d1::{D1Adapter, D1Kind};
pub use kv::{KvAdapter, KvKind, open_namespace};
pub use queue::{
    QueueAdapter, QueueKind, configure_broker as configure_queue_broker,
    open_broker as open_queue_broker,
};
pub use r2::{R2Adapter, R2Kind, open_bucket};
pub use ratelimit::{RateLimitAdapter, RateLimitKind};
pub(crate) use support::bytes_of;
pub use vectorize::{VectorizeAdapter, VectorizeKind};
pub use workflow::{WorkflowAdapter, WorkflowKind, open_engine};

/// Exposes one binding to JavaScript.
pub trait BindingAdapter: Send + Sync {
    /// The `env` property name (the `binding` field of the config).
    fn name(&self) -> &str;
    /// Cloudflare's binding type, e.g. `kv_namespace`, `d1`, `r2_bucket`.
    fn kind(&self) -> &str;
    /// Where its data lives, e.g. `sqlite:/data/kv/MY_KV.sqlite`; shown by
    /// the health endpoint.
    fn backend(&self) -> String;
    /// Sets `env[name]` to this binding's JS object.
    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()>;
}

/// One line of the health report per `env` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingInfo {
    pub name: String,
    pub kind: String,
    pub backend: String,
}

/// Describes every `env` entry (never the secret values).
pub fn describe(config: &WorkerConfig) -> Vec<BindingInfo> {
    let mut out = Vec::new();
    for (name, value) in &config.vars {
        out.push(BindingInfo {
            name: name.clone(),
            kind: if value.is_string() {
                "plain_text"
            } else {
                "json"
            }
            .into(),
            backend: "config".into(),
        });
    }
    for name in config.secrets.keys() {
        out.push(BindingInfo {
            name: name.clone(),
            kind: "secret_text".into(),
            backend: "config".into(),
        });
    }
    for b in &config.bindings {
        out.push(BindingInfo {
            name: b.name().to_string(),
            kind: b.kind().to_string(),
            backend: b.backend(),
        });
    }
    out
}

/// Builds the `env` object for one isolate.
pub(crate) fn build_env<'js>(ctx: &Ctx<'js>, config: &WorkerConfig) -> Result<Object<'js>, String> {
    let env = Object::new(ctx.clone()).map_err(|e| e.to_string())?;
    for (name, value) in &config.vars {
        let set = match value {
            serde_json::Value::String(s) => env.set(name.as_str(), s.as_str()),
            other => {
                let parsed = ctx
                    .json_parse(other.to_string())
                    .map_err(|e| format!("var {name}: {e}"))?;
                env.set(name.as_str(), parsed)
            }
        };
        set.map_err(|e| format!("var {name}: {e}"))?;
    }
    for (name, value) in &config.secrets {
        env.set(name.as_str(), value.as_str())
            .map_err(|e| format!("secret {name}: {e}"))?;
    }
    for b in &config.bindings {
        b.install(ctx, &env)
            .map_err(|e| format!("binding {}: {e}", b.name()))?;
    }
    if !config.services.is_empty() {
        let install = || -> rquickjs::Result<()> {
            let api: Object = ctx.eval("globalThis[Symbol.for('hearth.durable')]")?;
            let make: rquickjs::Function = api.get("makeService")?;
            for s in &config.services {
                let fetcher: rquickjs::Value = make.call((s.binding.as_str(),))?;
                env.set(s.binding.as_str(), fetcher)?;
            }
            Ok(())
        };
        install().map_err(|e| format!("services: {e}"))?;
    }
    Ok(env)
}
