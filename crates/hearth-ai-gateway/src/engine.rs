//! A request's way through a gateway.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hearth_core::SharedClock;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::{Value, json};

use crate::breaker::{Admission, Breakers};
use crate::cache::{CacheKey, CachedResponse, ResponseCache};
use crate::config::{
    Backoff, ConfigError, GatewayConfig, GatewayFile, MAX_ATTEMPTS, MAX_RETRY_DELAY_MS, Price,
    default_base_url,
};
use crate::dlp::{Dlp, DlpAction};
use crate::limits::{Budgets, RateTable, SavedWindow};
use crate::logs::{LogError, LogPatch, LogRecord, LogStore};
use crate::semantic::{LocalEmbedder, Lookup, Probe, PromptEmbedder, SemanticCache};
use crate::state::{RateRow, StateStore};
use crate::usage::{self, CustomCost, Usage};

pub type GatewayBody = BoxBody<Bytes, io::Error>;
type Client = LegacyClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest provider answer read whole (non-streamed answers are read whole
/// to count tokens, check DLP and cache them).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Largest number of steps in one universal request.
pub const MAX_STEPS: usize = 10;
/// Largest `cf-aig-metadata`: Cloudflare allows five entries.
pub const MAX_METADATA_ENTRIES: usize = 5;

/// How retries wait; tests record the waits instead of sleeping.
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    fn sleep(&self, ms: u64) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

#[derive(Debug, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, ms: u64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(Duration::from_millis(ms)))
    }
}

pub struct GatewayOptions {
    pub clock: SharedClock,
    pub sleeper: Arc<dyn Sleeper>,
    /// `logs.sqlite`; `None` keeps no logs.
    pub logs_path: Option<std::path::PathBuf>,
    /// Where `state.sqlite` (spend, rate windows) and `cache.sqlite` (the
    /// exact cache) live; `None` keeps them in memory only. Semantic
    /// caches keep their Vectorize indexes under it too.
    pub state_dir: Option<std::path::PathBuf>,
    /// Embeds prompts for every semantic cache in place of the model its
    /// config names.
    pub embedder: Option<Arc<dyn PromptEmbedder>>,
}

#[derive(Debug)]
struct Shared {
    clock: SharedClock,
    sleeper: Arc<dyn Sleeper>,
    cache: ResponseCache,
    breakers: Breakers,
    logs: Option<LogStore>,
    state: Option<StateStore>,
    client: Client,
    prices: Vec<Price>,
    providers: HashMap<String, String>,
}

#[derive(Debug)]
struct GatewayState {
    cfg: GatewayConfig,
    dlp: Option<Dlp>,
    rate: RateTable,
    key_rate: RateTable,
    budgets: Budgets,
    semantic: Option<Arc<SemanticCache>>,
}

/// Every gateway of one gateway file, sharing one cache, breaker table,
/// log store and connection pool.
#[derive(Debug, Clone)]
pub struct Gateways {
    shared: Arc<Shared>,
    gateways: Arc<HashMap<String, Arc<GatewayState>>>,
}

/// One gateway: what `env.AI.gateway(id)` will hold.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    state: Arc<GatewayState>,
}

/// A request to one provider: `POST /<gateway>/<provider>/<path>`.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub provider: String,
    /// The provider path with its query (`chat/completions`).
    pub path: String,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct GatewayResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: GatewayBody,
}

impl std::fmt::Debug for GatewayResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl GatewayResponse {
    /// The whole body (for callers that do not stream).
    pub async fn into_bytes(self) -> io::Result<Bytes> {
        Ok(self.body.collect().await?.to_bytes())
    }
}

fn full(b: impl Into<Bytes>) -> GatewayBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// The gateway's own error answer.
pub fn error_response(status: StatusCode, code: u32, message: &str) -> GatewayResponse {
    let body = json!({
        "success": false,
        "result": [],
        "messages": [],
        "error": [{ "code": code, "message": message }],
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    GatewayResponse {
        status,
        headers,
        body: full(body.to_string()),
    }
}

fn https_client() -> Result<Client, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("TLS client configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(LegacyClient::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(https))
}

impl Gateways {
    /// Opens the gateways of `file`. Needs a Tokio runtime to serve.
    pub fn open(file: GatewayFile, options: GatewayOptions) -> Result<Self, ConfigError> {
        let logs = match &options.logs_path {
            Some(p) => {
                Some(LogStore::open(p).map_err(|e| ConfigError(format!("{}: {e}", p.display())))?)
            }
            None => None,
        };
        let state = match &options.state_dir {
            Some(dir) => {
                let (state, cache) = crate::state::paths(dir);
                Some(
                    StateStore::open(&state, &cache, file.cache_max_bytes, options.clock.clone())
                        .map_err(|e| ConfigError(format!("{}: {e}", dir.display())))?,
                )
            }
            None => None,
        };
        let rate_table = || {
            if state.is_some() {
                RateTable::saved()
            } else {
                RateTable::default()
            }
        };
        let mut gateways = HashMap::new();
        for g in &file.gateways {
            let dlp = match &g.dlp {
                Some(d) => Some(
                    d.compile()
                        .map_err(|e| ConfigError(format!("gateways.{}.dlp: {e}", g.id)))?,
                ),
                None => None,
            };
            let semantic = match &g.semantic_cache {
                Some(sc) => {
                    let at =
                        |e: String| ConfigError(format!("gateways.{}.semantic_cache: {e}", g.id));
                    let dir = options.state_dir.as_ref().ok_or_else(|| {
                        at("needs a data directory for its Vectorize index".into())
                    })?;
                    let embedder: Arc<dyn PromptEmbedder> = match (&options.embedder, &sc.model) {
                        (Some(e), _) => e.clone(),
                        (None, Some(m)) => Arc::new(
                            LocalEmbedder::load(Path::new(m))
                                .map_err(|e| at(format!("model {m:?}: {e}")))?,
                        ),
                        (None, None) => {
                            return Err(at(
                                "model: name the directory of a local embedding model".into()
                            ));
                        }
                    };
                    Some(Arc::new(
                        SemanticCache::open(
                            dir,
                            &g.id,
                            sc.threshold,
                            sc.max_entries,
                            embedder,
                            options.clock.clone(),
                        )
                        .map_err(at)?,
                    ))
                }
                None => None,
            };
            gateways.insert(
                g.id.clone(),
                Arc::new(GatewayState {
                    cfg: g.clone(),
                    dlp,
                    rate: rate_table(),
                    key_rate: rate_table(),
                    budgets: Budgets::default(),
                    semantic,
                }),
            );
        }
        let shared = Arc::new(Shared {
            breakers: Breakers::new(options.clock.clone()),
            clock: options.clock,
            sleeper: options.sleeper,
            cache: ResponseCache::new(file.cache_max_bytes),
            logs,
            state,
            client: https_client()?,
            prices: file.prices.clone(),
            providers: file
                .providers
                .iter()
                .map(|(k, v)| (k.clone(), v.base_url.trim_end_matches('/').to_owned()))
                .collect(),
        });
        let gateways = Self {
            shared,
            gateways: Arc::new(gateways),
        };
        if gateways.shared.state.is_some() {
            gateways.restore_state();
            gateways.spawn_rate_saver();
        } else {
            gateways.seed_budgets();
        }
        Ok(gateways)
    }

    /// Spend, rate windows and cache entries saved before a restart.
    fn restore_state(&self) {
        let Some(state) = &self.shared.state else {
            return;
        };
        let now = self.shared.clock.now_ms();
        for g in self.gateways.values() {
            let id = &g.cfg.id;
            if let Some(b) = &g.cfg.key_budget {
                match state.spends(id, now / (b.period * 1000)) {
                    Ok(rows) => {
                        for (key, spent) in rows {
                            g.budgets.seed(b, &key, now, spent);
                        }
                    }
                    Err(e) => tracing::warn!("AI Gateway {id:?}: saved spend unreadable: {e}"),
                }
            }
            for (scope, cfg, table) in [
                ("gateway", &g.cfg.rate_limit, &g.rate),
                ("key", &g.cfg.key_rate_limit, &g.key_rate),
            ] {
                let Some(rl) = cfg else {
                    continue;
                };
                let since = (now / (rl.period * 1000)).saturating_sub(1);
                match state.rates(id, scope, since) {
                    Ok(rows) => {
                        for r in rows {
                            table.restore(
                                &r.key,
                                SavedWindow {
                                    index: r.window,
                                    current: r.current,
                                    previous: r.previous,
                                },
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!("AI Gateway {id:?}: saved rate windows unreadable: {e}")
                    }
                }
            }
        }
        match state.load_cache(now, self.shared.cache.max_bytes()) {
            Ok(entries) => {
                // Oldest first, so the newest are the last evicted.
                for (key, response, expires_ms) in entries.into_iter().rev() {
                    self.shared.cache.put_until(key, response, now, expires_ms);
                }
            }
            Err(e) => tracing::warn!("AI Gateway: saved cache unreadable: {e}"),
        }
    }

    /// Saves the rate windows counted since the last save, once a second,
    /// until the gateways are dropped.
    fn spawn_rate_saver(&self) {
        let shared = Arc::downgrade(&self.shared);
        let gateways: Vec<std::sync::Weak<GatewayState>> =
            self.gateways.values().map(Arc::downgrade).collect();
        let _ = std::thread::Builder::new()
            .name("ai-gateway-rates".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    let states: Vec<_> = gateways.iter().filter_map(|g| g.upgrade()).collect();
                    save_rates(&shared, &states);
                }
            });
    }

    /// Writes what is waiting: queued logs, rate windows, cache entries.
    pub fn flush_state(&self) -> Result<(), LogError> {
        let states: Vec<_> = self.gateways.values().cloned().collect();
        save_rates(&self.shared, &states);
        if let Some(s) = &self.shared.state {
            s.flush_cache();
        }
        self.flush_logs()
    }

    /// Spend already logged in the current budget windows counts again after
    /// a restart.
    fn seed_budgets(&self) {
        let Some(logs) = &self.shared.logs else {
            return;
        };
        let Ok(conn) = crate::logs::open_file(logs.path()) else {
            return;
        };
        let now = self.shared.clock.now_ms();
        for g in self.gateways.values() {
            let Some(b) = &g.cfg.key_budget else {
                continue;
            };
            let start = now / (b.period * 1000) * (b.period * 1000);
            let Ok(mut stmt) = conn.prepare(
                "SELECT key, SUM(cost) FROM logs WHERE gateway = ?1 AND created_ms >= ?2
                 AND key IS NOT NULL GROUP BY key LIMIT 100000",
            ) else {
                return;
            };
            let Ok(rows) = stmt.query_map(rusqlite::params![g.cfg.id, start as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
            }) else {
                continue;
            };
            for (key, spent) in rows.flatten() {
                g.budgets.seed(b, &key, now, spent);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<Gateway> {
        Some(Gateway {
            shared: self.shared.clone(),
            state: self.gateways.get(id)?.clone(),
        })
    }

    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.gateways.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Waits until every log queued so far is written.
    pub fn flush_logs(&self) -> Result<(), LogError> {
        match &self.shared.logs {
            Some(l) => l.flush(),
            None => Ok(()),
        }
    }

    pub fn breaker_state(&self, gateway: &str, provider: &str) -> crate::breaker::BreakerState {
        self.shared.breakers.state(gateway, provider)
    }
}

fn save_rates(shared: &Shared, states: &[Arc<GatewayState>]) {
    let Some(state) = &shared.state else {
        return;
    };
    let mut rows = Vec::new();
    for g in states {
        for (scope, table) in [("gateway", &g.rate), ("key", &g.key_rate)] {
            for (key, w) in table.take_dirty() {
                rows.push(RateRow {
                    gateway: g.cfg.id.clone(),
                    scope,
                    key,
                    window: w.index,
                    current: w.current,
                    previous: w.previous,
                });
            }
        }
    }
    if let Err(e) = state.save_rates(&rows) {
        tracing::warn!("AI Gateway: saving rate windows failed: {e}");
    }
}

/// The `cf-aig-*` controls of one request (or one universal step, whose
/// own headers win over the request's).
#[derive(Debug, Clone)]
struct Controls {
    skip_cache: bool,
    cache_ttl: Option<u64>,
    cache_key: Option<String>,
    max_attempts: u32,
    retry_delay: u64,
    backoff: Backoff,
    timeout_ms: Option<u64>,
    metadata: Option<String>,
    custom_cost: Option<CustomCost>,
    collect_log: bool,
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn bad(message: String) -> GatewayResponse {
    error_response(StatusCode::BAD_REQUEST, 2008, &message)
}

impl Controls {
    fn parse(cfg: &GatewayConfig, h: &HeaderMap) -> Result<Self, GatewayResponse> {
        let number = |name: &str, max: u64| -> Result<Option<u64>, GatewayResponse> {
            match header(h, name) {
                None => Ok(None),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n <= max => Ok(Some(n)),
                    _ => Err(bad(format!(
                        "{name}: {v:?} must be a whole number from 0 to {max}"
                    ))),
                },
            }
        };
        let flag = |name: &str| -> Result<Option<bool>, GatewayResponse> {
            match header(h, name) {
                None => Ok(None),
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                Some(v) => Err(bad(format!("{name}: {v:?} must be true or false"))),
            }
        };
        let max_attempts = match number("cf-aig-max-attempts", u64::from(MAX_ATTEMPTS))? {
            Some(0) => {
                return Err(bad(format!(
                    "cf-aig-max-attempts: must be 1 to {MAX_ATTEMPTS}"
                )));
            }
            Some(n) => n as u32,
            None => cfg.max_attempts,
        };
        let backoff = match header(h, "cf-aig-backoff") {
            None => cfg.backoff,
            Some(v) => Backoff::parse(v).ok_or_else(|| {
                bad(format!(
                    "cf-aig-backoff: {v:?} must be constant, linear or exponential"
                ))
            })?,
        };
        let metadata = match header(h, "cf-aig-metadata") {
            None => None,
            Some(v) => {
                let parsed: serde_json::Map<String, Value> = serde_json::from_str(v)
                    .map_err(|_| bad("cf-aig-metadata: must be a JSON object".into()))?;
                if parsed.len() > MAX_METADATA_ENTRIES {
                    return Err(bad(format!(
                        "cf-aig-metadata: at most {MAX_METADATA_ENTRIES} entries, got {}",
                        parsed.len()
                    )));
                }
                if parsed
                    .values()
                    .any(|v| !(v.is_string() || v.is_number() || v.is_boolean()))
                {
                    return Err(bad(
                        "cf-aig-metadata: values must be strings, numbers or booleans".into(),
                    ));
                }
                Some(Value::Object(parsed).to_string())
            }
        };
        let custom_cost = match header(h, "cf-aig-custom-cost") {
            None => None,
            Some(v) => Some(CustomCost::parse(v).map_err(bad)?),
        };
        let cache_key = header(h, "cf-aig-cache-key").map(str::to_owned);
        if cache_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 1024)
        {
            return Err(bad("cf-aig-cache-key: must be 1 to 1024 characters".into()));
        }
        Ok(Self {
            skip_cache: flag("cf-aig-skip-cache")?.unwrap_or(false),
            cache_ttl: number("cf-aig-cache-ttl", 30 * 86_400)?.or(cfg.cache_ttl),
            cache_key,
            max_attempts,
            retry_delay: number("cf-aig-retry-delay", MAX_RETRY_DELAY_MS)?
                .unwrap_or(cfg.retry_delay),
            backoff,
            timeout_ms: number("cf-aig-request-timeout", 3_600_000)?.or(cfg.request_timeout),
            metadata,
            custom_cost,
            collect_log: flag("cf-aig-collect-log")?.unwrap_or(cfg.collect_logs),
        })
    }
}

/// What is known of a request before its answer, carried to its log.
#[derive(Debug, Clone)]
struct Pending {
    started: Instant,
    created_ms: u64,
    key: Option<String>,
    dlp: Vec<String>,
    request_body: Option<Vec<u8>>,
}

/// One provider call of a request.
#[derive(Debug, Clone)]
struct Step {
    provider: String,
    /// The provider's URL when the caller names it (the Workers AI
    /// binding's providers); else the gateway file's or the default.
    base: Option<String>,
    path: String,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The header that carries a request's credentials for the cache key.
fn credentials(h: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for name in ["authorization", "x-api-key", "api-key", "x-goog-api-key"] {
        if let Some(v) = h.get(name) {
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
    }
    out
}

enum StepOutcome {
    /// Sent to the client; success says whether the universal endpoint stops.
    Answer {
        response: GatewayResponse,
        success: bool,
    },
}

impl Gateway {
    pub fn id(&self) -> &str {
        &self.state.cfg.id
    }

    /// The path of this gateway under a base URL, as `getUrl(provider)`
    /// answers: `<base>/<gateway>[/<provider>]`.
    pub fn url(&self, base: &str, provider: Option<&str>) -> String {
        let base = base.trim_end_matches('/');
        match provider {
            Some(p) => format!("{base}/{}/{p}", self.id()),
            None => format!("{base}/{}", self.id()),
        }
    }

    /// One log, as `getLog(id)` answers.
    pub fn get_log(&self, id: &str) -> Result<Value, LogError> {
        let logs = self.shared.logs.as_ref().ok_or(LogError::Stopped)?;
        logs.flush()?;
        let conn = crate::logs::open_file(logs.path())?;
        let v = crate::logs::get(&conn, id)?;
        if v["gateway"] != self.id() {
            return Err(LogError::NotFound(id.to_owned()));
        }
        Ok(v)
    }

    /// One page of this gateway's logs, newest first (`page` from 1), and
    /// the gateway's log count, for Cloudflare's "List Gateway Logs" API.
    pub fn list_logs(&self, page: u64, per_page: u64) -> Result<(Vec<Value>, u64), LogError> {
        let logs = self.shared.logs.as_ref().ok_or(LogError::Stopped)?;
        logs.flush()?;
        let conn = crate::logs::open_file(logs.path())?;
        crate::logs::page(&conn, self.id(), page, per_page)
    }

    /// `patchLog(id, { feedback, score, metadata })`.
    pub fn patch_log(&self, id: &str, patch: LogPatch) -> Result<(), LogError> {
        self.get_log(id)?;
        let logs = self.shared.logs.as_ref().ok_or(LogError::Stopped)?;
        logs.patch(id, patch)
    }

    /// The semantic cache's prompts held and stored since it opened;
    /// `None` when the gateway has none.
    pub fn semantic_counts(&self) -> Option<(usize, u64)> {
        self.state.semantic.as_ref().map(|s| s.counts())
    }

    /// A request to one provider.
    pub async fn run(&self, req: GatewayRequest) -> GatewayResponse {
        self.run_step(req, None).await
    }

    /// A request to one provider at `base_url` (the Workers AI binding's
    /// providers, whose URLs its own config names); `req.provider` names it
    /// in logs, the breaker and the cache key.
    pub async fn run_at(&self, base_url: &str, req: GatewayRequest) -> GatewayResponse {
        let base = base_url.trim_end_matches('/').to_owned();
        self.run_step(req, Some(base)).await
    }

    async fn run_step(&self, req: GatewayRequest, base: Option<String>) -> GatewayResponse {
        let steps = vec![Step {
            provider: req.provider,
            base,
            path: req.path,
            method: req.method,
            headers: req.headers.clone(),
            body: req.body,
        }];
        self.serve(&req.headers, steps, false).await
    }

    /// The universal endpoint: a JSON array (or one object) of
    /// `{ provider, endpoint, headers, query }`, tried in order.
    pub async fn universal(&self, headers: &HeaderMap, body: &[u8]) -> GatewayResponse {
        let steps = match parse_steps(headers, body) {
            Ok(s) => s,
            Err(msg) => return bad(msg),
        };
        self.serve(headers, steps, true).await
    }

    async fn serve(
        &self,
        headers: &HeaderMap,
        steps: Vec<Step>,
        universal: bool,
    ) -> GatewayResponse {
        let cfg = &self.state.cfg;
        let started = Instant::now();
        let now = self.shared.clock.now_ms();
        if let Some(token) = &cfg.token {
            let given = header(headers, "cf-aig-authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
                return error_response(
                    StatusCode::UNAUTHORIZED,
                    2009,
                    "Unauthorized: this gateway needs cf-aig-authorization: Bearer <token>",
                );
            }
        }
        let controls = match Controls::parse(cfg, headers) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let key = self.key_of(headers, controls.metadata.as_deref());
        if let Some(rl) = &cfg.rate_limit
            && let Err(wait) = self.state.rate.check(rl, "", now)
        {
            return too_many(
                wait,
                &format!(
                    "Rate limited: gateway {:?} allows {} requests per {} s",
                    cfg.id, rl.limit, rl.period
                ),
            );
        }
        if let Some(k) = &key {
            if let Some(rl) = &cfg.key_rate_limit
                && let Err(wait) = self.state.key_rate.check(rl, k, now)
            {
                return too_many(
                    wait,
                    &format!(
                        "Rate limited: key {k:?} may send {} requests per {} s",
                        rl.limit, rl.period
                    ),
                );
            }
            if let Some(b) = &cfg.key_budget
                && let Err((wait, spent)) = self.state.budgets.check(b, k, now)
            {
                return too_many(
                    wait,
                    &format!(
                        "Budget exceeded: key {k:?} spent {spent:.6} of {} allowed per {} s",
                        b.limit, b.period
                    ),
                );
            }
        }
        let mut pending = Pending {
            started,
            created_ms: now,
            key,
            dlp: Vec::new(),
            request_body: None,
        };
        if let Some(dlp) = &self.state.dlp
            && dlp.checks_requests()
        {
            for s in &steps {
                for found in dlp.scan(&s.body) {
                    if !pending.dlp.contains(&found) {
                        pending.dlp.push(found);
                    }
                }
            }
            if !pending.dlp.is_empty() && dlp.action == DlpAction::Block {
                let msg = format!(
                    "Blocked by DLP: the request matches {}",
                    pending.dlp.join(", ")
                );
                let first = &steps[0];
                self.log(
                    &pending,
                    &controls,
                    first,
                    0,
                    0,
                    LogResult::error(403, msg.clone()),
                );
                return error_response(StatusCode::FORBIDDEN, 2016, &msg);
            }
        }
        let last = steps.len() - 1;
        for (i, step) in steps.into_iter().enumerate() {
            let step_controls = if universal {
                match Controls::parse(cfg, &merge(headers, &step.headers)) {
                    Ok(c) => c,
                    Err(r) => return r,
                }
            } else {
                controls.clone()
            };
            if cfg.log_bodies {
                pending.request_body = Some(step.body.to_vec());
            }
            let StepOutcome::Answer {
                mut response,
                success,
            } = self
                .call_step(&step, &step_controls, &pending, i as u32)
                .await;
            if success || i == last {
                if universal {
                    response
                        .headers
                        .insert("cf-aig-step", HeaderValue::from(i as u32));
                }
                return response;
            }
        }
        // `steps` is never empty (parse_steps refuses that).
        error_response(StatusCode::BAD_GATEWAY, 2005, "no step answered")
    }

    /// Who a request is, for per-key limits: the configured header, else the
    /// configured `cf-aig-metadata` field.
    fn key_of(&self, h: &HeaderMap, metadata: Option<&str>) -> Option<String> {
        let cfg = &self.state.cfg;
        if let Some(name) = &cfg.key_header
            && let Some(v) = header(h, name)
            && !v.is_empty()
        {
            return Some(v.chars().take(256).collect());
        }
        let field = cfg.key_metadata.as_ref()?;
        let m: Value = serde_json::from_str(metadata?).ok()?;
        match m.get(field)? {
            Value::String(s) => Some(s.chars().take(256).collect()),
            other => Some(other.to_string()),
        }
    }

    fn base_url(&self, provider: &str) -> Option<String> {
        self.shared
            .providers
            .get(provider)
            .cloned()
            .or_else(|| default_base_url(provider).map(str::to_owned))
    }

    fn cache_key(&self, step: &Step, c: &Controls) -> Option<CacheKey> {
        if c.skip_cache || c.cache_ttl.unwrap_or(0) == 0 {
            return None;
        }
        if !(step.method == Method::POST || step.method == Method::GET) {
            return None;
        }
        let gw = self.id().as_bytes();
        Some(match &c.cache_key {
            Some(k) => crate::cache::key(&[b"custom", gw, k.as_bytes()]),
            None => crate::cache::key(&[
                b"exact",
                gw,
                step.provider.as_bytes(),
                step.path.as_bytes(),
                &credentials(&step.headers),
                &step.body,
            ]),
        })
    }

    async fn call_step(
        &self,
        step: &Step,
        c: &Controls,
        pending: &Pending,
        index: u32,
    ) -> StepOutcome {
        let shared = &self.shared;
        let Some(base) = step.base.clone().or_else(|| self.base_url(&step.provider)) else {
            let msg = format!(
                "unknown provider {:?}: name it under [providers.{}] with a base_url",
                step.provider, step.provider
            );
            self.log(
                pending,
                c,
                step,
                index,
                0,
                LogResult::error(400, msg.clone()),
            );
            return StepOutcome::Answer {
                response: bad(msg),
                success: false,
            };
        };
        let cache_key = self.cache_key(step, c);
        if let Some(k) = &cache_key
            && let Some(hit) = shared.cache.get(k, shared.clock.now_ms())
        {
            return StepOutcome::Answer {
                response: self.cached_answer(pending, c, step, index, hit),
                success: true,
            };
        }
        let mut probe = None;
        if let (Some(sem), Some(_), None) = (&self.state.semantic, &cache_key, &c.cache_key) {
            let sem = sem.clone();
            let scope = [
                self.id().as_bytes().to_vec(),
                step.provider.as_bytes().to_vec(),
                step.path.as_bytes().to_vec(),
                credentials(&step.headers),
                pending.key.clone().unwrap_or_default().into_bytes(),
            ];
            let body = step.body.clone();
            // The model runs on a blocking thread, not the request's.
            let found = tokio::task::spawn_blocking(move || {
                let scope: Vec<&[u8]> = scope.iter().map(Vec::as_slice).collect();
                sem.lookup(&scope, &body)
            })
            .await
            .ok()
            .flatten();
            match found {
                Some(Lookup::Hit {
                    key,
                    similarity,
                    probe: p,
                }) => {
                    if let Some(hit) = shared.cache.get(&key, shared.clock.now_ms()) {
                        let mut response = self.cached_answer(pending, c, step, index, hit);
                        response
                            .headers
                            .insert("cf-aig-cache-match", HeaderValue::from_static("semantic"));
                        if let Ok(v) = HeaderValue::from_str(&format!("{similarity:.4}")) {
                            response.headers.insert("cf-aig-cache-similarity", v);
                        }
                        return StepOutcome::Answer {
                            response,
                            success: true,
                        };
                    }
                    // The answer it stood for has left the exact cache.
                    probe = Some(p);
                }
                Some(Lookup::Miss(p)) => probe = Some(p),
                None => {}
            }
        }
        let url = format!("{base}/{}", step.path.trim_start_matches('/'));
        let uri: http::Uri = match url.parse() {
            Ok(u) => u,
            Err(e) => {
                return StepOutcome::Answer {
                    response: bad(format!("provider URL {url:?} is not valid: {e}")),
                    success: false,
                };
            }
        };
        let breaker = self.state.cfg.breaker.as_ref();
        let mut attempts = 0;
        let mut last_error = None;
        let upstream = loop {
            attempts += 1;
            if attempts > 1 {
                let wait = c.backoff.delay_ms(c.retry_delay, attempts - 1);
                if wait > 0 {
                    shared.sleeper.sleep(wait).await;
                }
            }
            if breaker.is_some()
                && let Admission::Refused(ms) = shared.breakers.admit(self.id(), &step.provider)
            {
                last_error = Some((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Circuit open: provider {:?} failed repeatedly; next try in {} s",
                        step.provider,
                        ms.div_ceil(1000)
                    ),
                ));
                break None;
            }
            let mut req = http::Request::builder()
                .method(step.method.clone())
                .uri(uri.clone());
            if let Some(h) = req.headers_mut() {
                for (name, value) in &step.headers {
                    let n = name.as_str();
                    if HOP_BY_HOP.contains(&n) || n.starts_with("cf-aig-") || n == "accept-encoding"
                    {
                        continue;
                    }
                    h.append(name.clone(), value.clone());
                }
            }
            let Ok(req) = req.body(Full::new(step.body.clone())) else {
                break None;
            };
            let call = shared.client.request(req);
            let result = match c.timeout_ms {
                Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), call).await {
                    Ok(r) => r.map_err(|e| {
                        (
                            StatusCode::BAD_GATEWAY,
                            format!("provider unreachable: {e}"),
                        )
                    }),
                    Err(_) => Err((
                        StatusCode::GATEWAY_TIMEOUT,
                        format!("Request timeout: the provider did not answer within {ms} ms"),
                    )),
                },
                None => call.await.map_err(|e| {
                    (
                        StatusCode::BAD_GATEWAY,
                        format!("provider unreachable: {e}"),
                    )
                }),
            };
            let retryable = match &result {
                Ok(r) => {
                    r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS
                }
                Err(_) => true,
            };
            if let Some(b) = breaker {
                shared
                    .breakers
                    .record(b, self.id(), &step.provider, !retryable);
            }
            match result {
                Ok(r) if !retryable || attempts >= c.max_attempts => break Some(r),
                Ok(_) => last_error = None,
                Err(e) => {
                    last_error = Some(e);
                    if attempts >= c.max_attempts {
                        break None;
                    }
                }
            }
        };
        let Some(upstream) = upstream else {
            let (status, msg) = last_error.unwrap_or((
                StatusCode::BAD_GATEWAY,
                "the request could not be built".to_owned(),
            ));
            let log_id = self.log(
                pending,
                c,
                step,
                index,
                attempts,
                LogResult::error(status.as_u16(), msg.clone()),
            );
            let mut r = error_response(status, 2005, &msg);
            if let Some(id) = log_id {
                r.headers.insert("cf-aig-log-id", id);
            }
            return StepOutcome::Answer {
                response: r,
                success: false,
            };
        };
        self.answer(
            upstream, step, c, pending, index, attempts, cache_key, probe,
        )
        .await
    }

    /// A cached answer, replayed and logged as a hit.
    fn cached_answer(
        &self,
        pending: &Pending,
        c: &Controls,
        step: &Step,
        index: u32,
        hit: CachedResponse,
    ) -> GatewayResponse {
        let log_id = self.log(
            pending,
            c,
            step,
            index,
            0,
            LogResult {
                status: hit.status,
                success: true,
                cached: true,
                usage: Usage {
                    tokens_in: hit.tokens_in,
                    tokens_out: hit.tokens_out,
                },
                model: hit.model.clone(),
                cost: 0.0,
                error: None,
                response_body: self.state.cfg.log_bodies.then(|| hit.body.to_vec()),
            },
        );
        replay(hit, log_id)
    }

    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &self,
        upstream: http::Response<Incoming>,
        step: &Step,
        c: &Controls,
        pending: &Pending,
        index: u32,
        attempts: u32,
        cache_key: Option<CacheKey>,
        probe: Option<Probe>,
    ) -> StepOutcome {
        let (parts, body) = upstream.into_parts();
        let status = parts.status;
        let success = status.is_success();
        let streamed = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut headers = HeaderMap::new();
        for (name, value) in &parts.headers {
            if HOP_BY_HOP.contains(&name.as_str()) {
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        headers.insert(
            "cf-aig-cache-status",
            HeaderValue::from_static(if cache_key.is_some() {
                "MISS"
            } else {
                "BYPASS"
            }),
        );
        let log_id = uuid::Uuid::new_v4().simple().to_string();
        if let Ok(v) = HeaderValue::from_str(&log_id) {
            headers.insert("cf-aig-log-id", v);
        }
        let finish = Finish {
            gateway: self.clone(),
            controls: c.clone(),
            step: Step {
                body: Bytes::new(),
                headers: HeaderMap::new(),
                ..step.clone()
            },
            pending: pending.clone(),
            index,
            attempts,
            status: status.as_u16(),
            success,
            cache_key: if success { cache_key } else { None },
            semantic: probe.and_then(|p| Some((self.state.semantic.clone()?, p))),
            headers: headers
                .iter()
                .filter(|(n, _)| !n.as_str().starts_with("cf-aig-"))
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            streamed,
            log_id,
            request_model: usage::request_model(&step.body),
        };
        if streamed {
            let dlp = self
                .state
                .dlp
                .as_ref()
                .filter(|d| d.checks_responses())
                .map(|_| StreamDlp::default());
            let tee = Tee {
                inner: body,
                seen: Vec::new(),
                keep: MAX_RESPONSE_BYTES,
                overflow: false,
                finish: Some(finish),
                dlp,
                ended: false,
            };
            return StepOutcome::Answer {
                response: GatewayResponse {
                    status,
                    headers,
                    body: tee.boxed(),
                },
                success,
            };
        }
        let bytes = match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let msg = format!("reading the provider's answer failed: {e}");
                finish.done(&[], false, Some(msg.clone()));
                return StepOutcome::Answer {
                    response: error_response(StatusCode::BAD_GATEWAY, 2005, &msg),
                    success: false,
                };
            }
        };
        if let Some(dlp) = &self.state.dlp
            && dlp.checks_responses()
        {
            let found = dlp.scan(&bytes);
            if !found.is_empty() {
                let mut finish = finish;
                for f in &found {
                    if !finish.pending.dlp.contains(f) {
                        finish.pending.dlp.push(f.clone());
                    }
                }
                if dlp.action == DlpAction::Block {
                    let msg = format!("Blocked by DLP: the response matches {}", found.join(", "));
                    finish.cache_key = None;
                    finish.status = 403;
                    finish.success = false;
                    finish.done(&bytes, true, Some(msg.clone()));
                    return StepOutcome::Answer {
                        response: error_response(StatusCode::FORBIDDEN, 2016, &msg),
                        success: false,
                    };
                }
                finish.done(&bytes, true, None);
                return StepOutcome::Answer {
                    response: GatewayResponse {
                        status,
                        headers,
                        body: full(bytes),
                    },
                    success,
                };
            }
        }
        finish.done(&bytes, true, None);
        StepOutcome::Answer {
            response: GatewayResponse {
                status,
                headers,
                body: full(bytes),
            },
            success,
        }
    }

    fn log(
        &self,
        p: &Pending,
        c: &Controls,
        step: &Step,
        index: u32,
        attempts: u32,
        r: LogResult,
    ) -> Option<HeaderValue> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.write_log(&id, p, c, step, index, attempts, r);
        HeaderValue::from_str(&id).ok()
    }

    #[allow(clippy::too_many_arguments)]
    fn write_log(
        &self,
        id: &str,
        p: &Pending,
        c: &Controls,
        step: &Step,
        index: u32,
        attempts: u32,
        r: LogResult,
    ) {
        let cfg = &self.state.cfg;
        if let (Some(k), Some(b)) = (&p.key, &cfg.key_budget)
            && let Some((counted, window)) =
                self.state
                    .budgets
                    .charge(b, k, self.shared.clock.now_ms(), r.cost)
            && let Some(state) = &self.shared.state
            // Committed before the answer is released (see state.rs).
            && let Err(e) = state.charge(&cfg.id, &counted, window, r.cost)
        {
            tracing::error!(
                "AI Gateway {:?}: saving spend of key {k:?} failed: {e}",
                cfg.id
            );
        }
        let Some(logs) = &self.shared.logs else {
            return;
        };
        if !c.collect_log {
            return;
        }
        let path = step.path.split('?').next().unwrap_or_default().to_owned();
        logs.record(
            LogRecord {
                id: id.to_owned(),
                gateway: cfg.id.clone(),
                created_ms: p.created_ms,
                provider: step.provider.clone(),
                model: r.model.or_else(|| usage::request_model(&step.body)),
                path,
                status: r.status,
                success: r.success,
                cached: r.cached,
                step: index,
                attempts,
                tokens_in: r.usage.tokens_in,
                tokens_out: r.usage.tokens_out,
                cost: r.cost,
                duration_ms: p.started.elapsed().as_millis() as u64,
                key: p.key.clone(),
                metadata: c.metadata.clone(),
                dlp: p.dlp.clone(),
                error: r.error,
                request_body: if cfg.log_bodies {
                    p.request_body.clone()
                } else {
                    None
                },
                response_body: if cfg.log_bodies {
                    r.response_body
                } else {
                    None
                },
            },
            cfg.max_logs,
            cfg.when_full,
        );
    }
}

struct LogResult {
    status: u16,
    success: bool,
    cached: bool,
    usage: Usage,
    model: Option<String>,
    cost: f64,
    error: Option<String>,
    response_body: Option<Vec<u8>>,
}

impl LogResult {
    fn error(status: u16, msg: String) -> Self {
        Self {
            status,
            success: false,
            cached: false,
            usage: Usage::default(),
            model: None,
            cost: 0.0,
            error: Some(msg),
            response_body: None,
        }
    }
}

fn too_many(wait_secs: u64, message: &str) -> GatewayResponse {
    let mut r = error_response(StatusCode::TOO_MANY_REQUESTS, 2003, message);
    r.headers
        .insert(http::header::RETRY_AFTER, HeaderValue::from(wait_secs));
    r
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request's headers with a step's own on top.
fn merge(base: &HeaderMap, over: &HeaderMap) -> HeaderMap {
    let mut h = base.clone();
    for name in over.keys() {
        h.remove(name);
    }
    for (name, value) in over {
        h.append(name.clone(), value.clone());
    }
    h
}

fn parse_steps(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Step>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("universal request: the body is not JSON: {e}"))?;
    let items = match v {
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        _ => return Err("universal request: the body must be an array of steps".into()),
    };
    if items.is_empty() || items.len() > MAX_STEPS {
        return Err(format!(
            "universal request: 1 to {MAX_STEPS} steps, got {}",
            items.len()
        ));
    }
    let mut steps = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("universal request: step {i}: {k} must be a string"))
        };
        let provider = field("provider")?.to_owned();
        let endpoint = field("endpoint")?.to_owned();
        let mut h = headers.clone();
        h.remove(http::header::CONTENT_LENGTH);
        let mut own = HeaderMap::new();
        if let Some(obj) = item.get("headers") {
            let obj = obj
                .as_object()
                .ok_or_else(|| format!("universal request: step {i}: headers must be an object"))?;
            for (k, v) in obj {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                    format!("universal request: step {i}: {k:?} is not a header name")
                })?;
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let value = HeaderValue::from_str(&text).map_err(|_| {
                    format!("universal request: step {i}: header {k:?} has an invalid value")
                })?;
                own.insert(name, value);
            }
        }
        let h = merge(&h, &own);
        let body = match item.get("query") {
            None | Some(Value::Null) => Bytes::new(),
            Some(q) => Bytes::from(q.to_string()),
        };
        let mut headers = h;
        if !body.is_empty() && !headers.contains_key(http::header::CONTENT_TYPE) {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        steps.push(Step {
            provider,
            base: None,
            path: endpoint,
            method: Method::POST,
            headers,
            body,
        });
    }
    Ok(steps)
}

/// A cached answer as a response; a stream is replayed event by event.
fn replay(hit: CachedResponse, log_id: Option<HeaderValue>) -> GatewayResponse {
    let mut headers = HeaderMap::new();
    for (k, v) in &hit.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(n, v);
        }
    }
    headers.insert("cf-aig-cache-status", HeaderValue::from_static("HIT"));
    if let Some(id) = log_id {
        headers.insert("cf-aig-log-id", id);
    }
    let status = StatusCode::from_u16(hit.status).unwrap_or(StatusCode::OK);
    let body = if hit.streamed {
        let mut events = Vec::new();
        let mut rest = hit.body.clone();
        while let Some(at) = rest.windows(2).position(|w| w == b"\n\n") {
            events.push(rest.split_to(at + 2));
        }
        if !rest.is_empty() {
            events.push(rest);
        }
        let stream = futures::stream::iter(
            events
                .into_iter()
                .map(|b| Ok::<_, io::Error>(Frame::data(b))),
        );
        http_body_util::StreamBody::new(stream).boxed()
    } else {
        full(hit.body)
    };
    GatewayResponse {
        status,
        headers,
        body,
    }
}

/// What to do once an answer is whole (or abandoned): count tokens and
/// cost, charge the budget, cache it, log it.
struct Finish {
    gateway: Gateway,
    controls: Controls,
    step: Step,
    pending: Pending,
    index: u32,
    attempts: u32,
    status: u16,
    success: bool,
    cache_key: Option<CacheKey>,
    /// A semantic-cache miss whose vector is stored once the answer is
    /// cached.
    semantic: Option<(Arc<SemanticCache>, Probe)>,
    headers: Vec<(String, String)>,
    streamed: bool,
    log_id: String,
    request_model: Option<String>,
}

impl Finish {
    fn done(self, body: &[u8], complete: bool, error: Option<String>) {
        let g = &self.gateway;
        let (u, model) = usage::read(body, self.streamed);
        let model = model.or(self.request_model.clone());
        let cost = if self.success || complete {
            usage::cost(
                &g.shared.prices,
                model.as_deref(),
                u,
                self.controls.custom_cost,
            )
        } else {
            0.0
        };
        if complete && let (Some(key), Some(ttl)) = (self.cache_key, self.controls.cache_ttl) {
            let response = CachedResponse {
                status: self.status,
                headers: self.headers.clone(),
                body: Bytes::copy_from_slice(body),
                streamed: self.streamed,
                model: model.clone(),
                tokens_in: u.tokens_in,
                tokens_out: u.tokens_out,
            };
            let now = g.shared.clock.now_ms();
            let saved = g.shared.state.as_ref().map(|_| response.clone());
            let cached = g.shared.cache.put(key, response, now, ttl);
            if cached && let (Some(state), Some(response)) = (&g.shared.state, saved) {
                state.cache_put(key, &response, now.saturating_add(ttl.saturating_mul(1000)));
            }
            if cached && let Some((sem, probe)) = self.semantic.clone() {
                // A committed Vectorize write: off the request's thread.
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn_blocking(move || sem.store(probe, &key));
                    }
                    Err(_) => sem.store(probe, &key),
                }
            }
        }
        let (status, error) = if complete {
            (self.status, error)
        } else {
            (
                499,
                Some("the client closed the connection before the answer ended".into()),
            )
        };
        g.write_log(
            &self.log_id,
            &self.pending,
            &self.controls,
            &self.step,
            self.index,
            self.attempts,
            LogResult {
                status,
                success: self.success && complete && error.is_none(),
                cached: false,
                usage: u,
                model,
                cost,
                error,
                response_body: g.state.cfg.log_bodies.then(|| body.to_vec()),
            },
        );
    }
}

/// Passes a streamed answer through as it arrives, keeping a copy (up to
/// `keep` bytes) to count tokens and cache it once it ends. Dropped early
/// (the client went away), it drops the provider's body, which closes that
/// connection, and logs the request as cancelled.
struct Tee {
    inner: Incoming,
    seen: Vec<u8>,
    keep: usize,
    overflow: bool,
    finish: Option<Finish>,
    /// DLP on the answer's text as it streams (when the gateway checks
    /// responses).
    dlp: Option<StreamDlp>,
    /// Cut short by DLP: nothing more is read or sent.
    ended: bool,
}

/// Longest answer text kept for DLP on a stream; past it, only the last
/// `STREAM_DLP_WINDOW` bytes are scanned (a match cannot span more).
const STREAM_DLP_TEXT: usize = 256 * 1024;
const STREAM_DLP_WINDOW: usize = 4096;

/// The text pieces of a streamed answer (OpenAI's `choices[].delta.content`,
/// Anthropic's `delta.text`), gathered line by line so a pattern split
/// across events is still seen whole.
#[derive(Default)]
struct StreamDlp {
    line: Vec<u8>,
    text: String,
}

impl StreamDlp {
    /// Takes one chunk of the stream; true if it added answer text.
    fn feed(&mut self, data: &[u8]) -> bool {
        let mut added = false;
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&rest[..nl]);
            rest = &rest[nl + 1..];
            let line = std::mem::take(&mut self.line);
            let Some(payload) = line.strip_prefix(b"data:") else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<Value>(payload.trim_ascii()) else {
                continue;
            };
            let piece = v
                .pointer("/choices/0/delta/content")
                .or_else(|| v.pointer("/delta/text"))
                .and_then(Value::as_str);
            if let Some(piece) = piece.filter(|p| !p.is_empty()) {
                self.text.push_str(piece);
                added = true;
            }
        }
        // A line longer than the window is not an event worth keeping whole.
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_RESPONSE_BYTES {
            self.line.clear();
        }
        if self.text.len() > STREAM_DLP_TEXT {
            let mut cut = self.text.len() - STREAM_DLP_WINDOW;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
        added
    }
}

impl Tee {
    /// Scans the stream's text after `data`; `Some(error event)` when DLP
    /// blocks it (the chunk that completed the match is not sent).
    fn check_dlp(&mut self, data: &[u8]) -> Option<Bytes> {
        let sd = self.dlp.as_mut()?;
        if !sd.feed(data) {
            return None;
        }
        let f = self.finish.as_mut()?;
        let dlp = f.gateway.state.dlp.as_ref()?;
        let found = dlp.scan(sd.text.as_bytes());
        let mut new = false;
        for name in &found {
            if !f.pending.dlp.contains(name) {
                f.pending.dlp.push(name.clone());
                new = true;
            }
        }
        if !new || dlp.action != DlpAction::Block {
            return None;
        }
        let msg = format!("Blocked by DLP: the response matches {}", found.join(", "));
        let event = format!(
            "event: error\ndata: {}\n\n",
            json!({ "error": { "code": 2016, "message": msg, "type": "dlp_blocked" } })
        );
        if let Some(mut f) = self.finish.take() {
            f.cache_key = None;
            f.status = 403;
            f.success = false;
            f.done(&self.seen, true, Some(msg));
        }
        self.ended = true;
        Some(Bytes::from(event))
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.seen.len() + data.len() <= this.keep {
                        this.seen.extend_from_slice(data);
                    } else {
                        this.overflow = true;
                    }
                    if this.dlp.is_some() {
                        let data = data.clone();
                        if let Some(event) = this.check_dlp(&data) {
                            return Poll::Ready(Some(Ok(Frame::data(event))));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(mut f) = this.finish.take() {
                    f.cache_key = None;
                    f.success = false;
                    f.done(
                        &this.seen,
                        true,
                        Some(format!("the provider's stream failed: {e}")),
                    );
                }
                Poll::Ready(Some(Err(io::Error::other(e))))
            }
            Poll::Ready(None) => {
                if let Some(mut f) = this.finish.take() {
                    if this.overflow {
                        f.cache_key = None;
                    }
                    f.done(&this.seen, true, None);
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if let Some(mut f) = self.finish.take() {
            f.cache_key = None;
            f.done(&self.seen, false, None);
        }
    }
}

/// Opens the gateways of a file with the log store under `data_dir`.
pub fn open_file(
    path: &Path,
    data_dir: &Path,
    clock: SharedClock,
) -> Result<Gateways, ConfigError> {
    let mut file = GatewayFile::load(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    for g in &mut file.gateways {
        if let Some(m) = g.semantic_cache.as_mut().and_then(|s| s.model.as_mut())
            && Path::new(m.as_str()).is_relative()
        {
            *m = base.join(&*m).display().to_string();
        }
    }
    Gateways::open(
        file,
        GatewayOptions {
            clock,
            sleeper: Arc::new(TokioSleeper),
            logs_path: Some(logs_path(data_dir)),
            state_dir: logs_path(data_dir).parent().map(Path::to_path_buf),
            embedder: None,
        },
    )
}

/// `<data dir>/ai-gateway/logs.sqlite`.
pub fn logs_path(data_dir: &Path) -> std::path::PathBuf {
    hearth_core::DataDir::new(data_dir).ai_gateway_logs()
}
