//! `env.<ratelimits name>`: the Rate Limiting binding over
//! [`hearth_ratelimit`]. `limit({ key, limit?, period? })` resolves to
//! `{ success }`; the JS half checks the options with the messages Workers
//! gives, the native counts.

use std::sync::Arc;

use hearth_ratelimit::{RateLimitNamespace, RateLimits};
use rquickjs::{Ctx, Function, Object};

use super::BindingAdapter;
use super::registry::{BindingError, BindingKind, OpenContext, OpenedWorker};
use super::support::{install_factory, raise};

const RATELIMIT_JS: &str = include_str!("ratelimit.js");

/// Exposes one rate limiter as `env[name]`.
pub struct RateLimitAdapter {
    name: String,
    namespace_id: String,
    namespace: Arc<RateLimitNamespace>,
    limit: u64,
    period: u64,
}

impl RateLimitAdapter {
    pub fn new(
        name: impl Into<String>,
        namespace_id: impl Into<String>,
        namespace: Arc<RateLimitNamespace>,
        limit: u64,
        period: u64,
    ) -> Self {
        Self {
            name: name.into(),
            namespace_id: namespace_id.into(),
            namespace,
            limit,
            period,
        }
    }
}

impl BindingAdapter for RateLimitAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "ratelimit"
    }

    fn backend(&self) -> String {
        format!(
            "{}:namespace {} ({} per {}s)",
            self.namespace.backend(),
            self.namespace_id,
            self.limit,
            self.period
        )
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Object::new(ctx.clone())?;
        native.set("limit", self.limit as f64)?;
        native.set("period", self.period as f64)?;
        let namespace = self.namespace.clone();
        native.set(
            "count",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>, key: String, limit: f64, period: f64| {
                    // The JS half passes finite, non-negative numbers.
                    namespace
                        .limit(&key, limit as u64, period as u64)
                        .map_err(|e| raise(&ctx, e))
                },
            )?,
        )?;
        install_factory(ctx, env, &self.name, "ratelimit.js", RATELIMIT_JS, native)
    }
}

/// How `ratelimits` is served: counters in memory, one set per
/// `namespace_id` across every worker of the process.
pub struct RateLimitKind;

impl BindingKind for RateLimitKind {
    fn section(&self) -> &'static str {
        "ratelimits"
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        if cx.config.ratelimits.is_empty() {
            return Ok(());
        }
        let clock = cx.clock.clone();
        let redis = cx
            .settings
            .cluster
            .as_ref()
            .and_then(|node| node.redis().cloned());
        let limits = cx.shared("ratelimits", || {
            Ok::<_, BindingError>(match redis {
                Some(pool) => RateLimits::on_redis(clock, pool),
                None => RateLimits::new(clock),
            })
        })?;
        for b in &cx.config.ratelimits {
            out.worker.bindings.push(Arc::new(RateLimitAdapter::new(
                &b.name,
                &b.namespace_id,
                limits.namespace(&b.namespace_id),
                b.simple.limit,
                b.simple.period,
            )));
        }
        Ok(())
    }
}
