//! AI Gateway: one engine in front of LLM providers, on Cloudflare's URL
//! scheme and `cf-aig-*` headers.
//!
//! - [`config`]: the gateway file (`[[gateways]]`, `[providers.*]`, `[[prices]]`).
//! - [`engine`]: [`Gateways`] / [`Gateway::run`], a request's way through
//!   authentication, limits, budgets, DLP, cache, circuit breaker, retries
//!   with backoff, and the universal endpoint's fallback steps.
//! - [`cache`], [`breaker`], [`limits`], [`dlp`], [`usage`]: the parts.
//! - [`double`]: the provider double tests and benchmarks answer from.
//! - [`logs`]: every request's log in embedded SQLite, capped per gateway.
//! - [`semantic`]: the optional semantic cache (local embeddings and a
//!   Vectorize index).
//! - [`state`]: spend (committed before the answer), rate windows and the
//!   exact cache, saved so a restart keeps them.
//! - [`server`]: the HTTP face (`/<gateway>/<provider>/<path>` and the
//!   universal `/<gateway>`), mounted by `hearth serve` under
//!   `/__hearth/ai-gateway/` and served on its own by `hearth gateway`.
//!
//! Time (cache TTLs, rate windows, budgets, the breaker's cool-down) is read
//! from the injected clock; retry waits go through an injected [`Sleeper`].

pub mod breaker;
pub mod cache;
pub mod config;
pub mod dlp;
pub mod double;
pub mod engine;
pub mod limits;
pub mod logs;
pub mod semantic;
pub mod server;
pub mod state;
pub mod usage;

pub use config::{ConfigError, GatewayFile};
pub use engine::{
    Gateway, GatewayBody, GatewayOptions, GatewayRequest, GatewayResponse, Gateways, Sleeper,
    TokioSleeper,
};
