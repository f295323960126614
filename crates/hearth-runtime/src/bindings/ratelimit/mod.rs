//! `env.<ratelimits name>`: the Rate Limiting binding over
//! [`hearth_ratelimit`]. `limit({ key, limit?, period? })` resolves to
//! `{ success }`; the native checks the options with the messages Workers
//! gives and counts, the JS half wraps the answer in a promise.

use std::sync::Arc;

use hearth_core::ErrorClass;
use hearth_ratelimit::{RateLimitNamespace, RateLimits};
use rquickjs::{Atom, Ctx, Function, Object, Value};

use super::BindingAdapter;
use super::registry::{BindingError, BindingKind, OpenContext, OpenedWorker};
use super::support::{install_factory, raise, throw};

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
        let namespace = self.namespace.clone();
        let defaults = (self.limit, self.period);
        native.set(
            "check",
            Function::new(ctx.clone(), move |ctx: Ctx<'js>, options: Value<'js>| {
                let (key, limit, period) = options_of(&ctx, &options, defaults)?;
                namespace
                    .limit(&key, limit, period)
                    .map_err(|e| raise(&ctx, e))
            })?,
        )?;
        install_factory(ctx, env, &self.name, "ratelimit.js", RATELIMIT_JS, native)
    }
}

/// `limit()`'s options as Workers checks them, with its messages: an
/// object whose own keys are among `key`, `limit` and `period`, a string
/// key, a finite non-negative limit and a period of 10 or 60. Checked in
/// one native call because this runs on every request that calls
/// `limit()`: the same checks in JavaScript cost more than the count.
fn options_of<'js>(
    ctx: &Ctx<'js>,
    options: &Value<'js>,
    (default_limit, default_period): (u64, u64),
) -> rquickjs::Result<(String, u64, u64)> {
    let fail = |message: String| throw(ctx, ErrorClass::Error, &message);
    let Some(object) = options.as_object().filter(|_| !options.is_function()) else {
        return Err(fail("invalid rate limit options".into()));
    };
    let names = [
        Atom::from_str(ctx.clone(), "key")?,
        Atom::from_str(ctx.clone(), "limit")?,
        Atom::from_str(ctx.clone(), "period")?,
    ];
    let mut unknown = Vec::new();
    for name in object.keys::<Atom>() {
        let name = name?;
        if !names.contains(&name) {
            unknown.push(name.to_string()?);
        }
    }
    if !unknown.is_empty() {
        return Err(fail(format!(
            "bad rate limit options: [{}]",
            unknown.join(",")
        )));
    }
    let [key, limit, period] = names.map(|n| object.get::<_, Value>(n));
    let (key, limit, period) = (key?, limit?, period?);
    let text = |v: Value<'js>| -> rquickjs::Result<String> {
        let string: Function = ctx.globals().get("String")?;
        string.call((v,))
    };
    let key = match key.as_string() {
        Some(s) => s.to_string()?,
        None if key.is_undefined() => String::new(),
        None => return Err(fail(format!("invalid key: {}", text(key)?))),
    };
    let limit = match limit.as_number() {
        None if limit.is_undefined() => default_limit,
        Some(n) if n.is_finite() && n >= 0.0 => n as u64,
        _ => return Err(fail(format!("limit must be a number: {}", text(limit)?))),
    };
    let period = match period.as_number() {
        None if period.is_undefined() => default_period,
        Some(n) if n == 10.0 || n == 60.0 => n as u64,
        Some(_) => return Err(fail(format!("unsupported period: {}", text(period)?))),
        None => return Err(fail(format!("period must be a number: {}", text(period)?))),
    };
    Ok((key, limit, period))
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
