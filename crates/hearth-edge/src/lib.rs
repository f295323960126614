//! The edge in front of every worker, as a Cloudflare zone has it: the
//! zone file ([`config`]), TLS certificates by SNI ([`tls`]), the client's
//! address from trusted proxies only ([`net`]), and per request, in order,
//! the phases:
//!
//! 1. `auth`: JWT and API-key policies whose expression matches; the
//!    verified claims, key id, scopes and tenant go to the worker in
//!    headers the edge owns (a client's copies are removed first);
//! 2. `custom_rules`: Rules-language expressions with block, log or skip;
//! 3. `rate_limits`: counters by characteristics, 429 with `Retry-After`;
//! 4. `managed_rules`: attack detection over head and body.
//!
//! This crate knows no HTTP library: the front hands it an [`EdgeRequest`]
//! and gets back a [`Verdict`].

pub mod config;
pub mod events;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod managed;
pub mod net;
pub mod ratelimit;
pub mod rules;
pub mod tls;

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use hearth_core::SharedClock;

use crate::config::{Action, Characteristic, ManagedAction, ZoneConfig};
use crate::events::{EventLog, SecurityEvent};
use crate::keys::KeyStore;
use crate::ratelimit::{Mitigations, RateLimitNamespace};
use crate::rules::RequestCtx;

pub use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Key(#[from] jwt::KeyError),
    #[error("API key store: {0}")]
    KeyStore(#[from] keys::KeyStoreError),
    #[error("security events file: {0}")]
    Events(std::io::Error),
}

/// One request as the edge sees it.
#[derive(Debug)]
pub struct EdgeRequest<'a> {
    pub method: &'a str,
    /// The Host header without its port (lower case).
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Header names in lower case.
    pub headers: Vec<(&'a str, Cow<'a, str>)>,
    /// The connection's source: the TCP peer or the PROXY header's source.
    pub peer: IpAddr,
    pub tls: bool,
    pub port: u16,
    pub version: &'static str,
    /// The request's ray id, for events and block pages.
    pub ray: &'a str,
}

/// An answer the edge gives instead of the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A request the worker may see, and what the edge adds to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub client_ip: IpAddr,
    /// Headers to set for the worker (names lower case).
    pub set_headers: Vec<(String, String)>,
    /// Whether the body still needs the managed rules.
    body_rules: Option<Vec<String>>,
    jwt_claims: Vec<(String, Vec<String>)>,
    owned: Arc<[String]>,
}

impl Pass {
    /// Whether [`Edge::check_body`] has rules to run on this request's body.
    pub fn inspects_body(&self) -> bool {
        self.body_rules.is_some()
    }

    /// Header names the edge owns in the zone that passed this request: a
    /// client's copies never reach the worker.
    pub fn owned_headers(&self) -> &[String] {
        &self.owned
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass(Pass),
    Reply(Reply),
}

/// What [`Edge::check_or_fetch`] found: a verdict, or a JWKS fetch to run
/// before checking the request again (nothing was counted or logged yet).
#[derive(Debug)]
pub enum Checked {
    Verdict(Verdict),
    Fetch(jwks::KeyFetch),
}

/// Why the auth phase stopped a check.
enum AuthStop {
    Reply(Reply),
    Fetch(jwks::KeyFetch),
}

/// Rounds of JWKS fetches one check may ask for before it goes on with
/// the keys held (a policy each, and a fetch another request is running).
pub const MAX_FETCH_ROUNDS: usize = 4;

#[derive(Debug)]
struct Zone {
    config: ZoneConfig,
    /// Keys of each JWT policy, in `config.jwt` order.
    jwt_keys: Vec<PolicyKeys>,
    /// The `[forward]` header names, shared by every request's [`Pass`].
    owned: Arc<[String]>,
}

/// A JWT policy's keys: those read from files, and its JWKS URL's.
#[derive(Debug)]
struct PolicyKeys {
    fixed: Vec<jwt::Key>,
    remote: Option<Arc<jwks::JwksSource>>,
}

/// The running edge: the current zone (swapped whole on reload), the API
/// key store, rate counters and the event log.
#[derive(Debug)]
pub struct Edge {
    path: PathBuf,
    zone: RwLock<Arc<Zone>>,
    clock: SharedClock,
    keys: Option<KeyStore>,
    counter: Arc<RateLimitNamespace>,
    mitigations: Mitigations,
    events: EventLog,
    certs: Arc<tls::CertStore>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// The zone's compiled form. JWKS URLs the previous zone already fetched
/// (same URL and settings) keep their cache, so a reload fetches nothing.
fn compile(config: ZoneConfig, old: Option<&Zone>, now_ms: u64) -> Result<Zone, EdgeError> {
    let mut jwt_keys = Vec::new();
    for p in &config.jwt {
        let mut keys = Vec::new();
        for f in &p.key_files {
            keys.push(jwt::Key::pem_file(f)?);
        }
        for f in &p.hmac_secret_files {
            keys.push(jwt::Key::hmac_file(f)?);
        }
        for f in &p.jwks_files {
            let bytes = std::fs::read(f).map_err(|source| jwt::KeyError::Read {
                path: f.display().to_string(),
                source,
            })?;
            keys.extend(
                jwt::Key::jwks(&bytes)
                    .map_err(|e| jwt::KeyError::Jwks(format!("{}: {e}", f.display())))?,
            );
        }
        let remote = p.jwks_url.as_ref().map(|settings| {
            let held = old.and_then(|z| {
                z.jwt_keys
                    .iter()
                    .filter_map(|k| k.remote.as_ref())
                    .find(|r| r.settings == *settings)
                    .cloned()
            });
            held.unwrap_or_else(|| {
                let source = Arc::new(jwks::JwksSource::new(settings.clone()));
                // The first fetch happens now rather than on a request; a
                // failure is logged and tried again on use.
                source.keys(now_ms);
                source
            })
        });
        jwt_keys.push(PolicyKeys {
            fixed: keys,
            remote,
        });
    }
    let f = &config.forward;
    let owned = Arc::from([
        f.claims.clone(),
        f.tenant.clone(),
        f.key_id.clone(),
        f.scopes.clone(),
    ]);
    Ok(Zone {
        config,
        jwt_keys,
        owned,
    })
}

/// Where the edge keeps its files under a data directory.
pub fn edge_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("edge")
}

impl Edge {
    /// Loads the zone file at `path`. With `data_dir`, API keys are read
    /// from and events written to `<data_dir>/edge/`.
    pub fn load(
        path: &Path,
        data_dir: Option<&Path>,
        clock: SharedClock,
    ) -> Result<Edge, EdgeError> {
        let config = config::load(path)?;
        Self::from_config(
            path,
            config,
            data_dir,
            clock.clone(),
            ratelimit::memory(clock),
        )
    }

    /// An edge over a checked config, counting rate limits in `counter`
    /// (a namespace on the same clock; in Redis to share counts between
    /// nodes).
    pub fn from_config(
        path: &Path,
        config: ZoneConfig,
        data_dir: Option<&Path>,
        clock: SharedClock,
        counter: Arc<RateLimitNamespace>,
    ) -> Result<Edge, EdgeError> {
        let certs = Arc::new(tls::CertStore::load(&config.certificates)?);
        let tls = if config.certificates.is_empty() {
            None
        } else {
            Some(tls::server_config(certs.clone())?)
        };
        let keys = match data_dir {
            Some(d) => Some(KeyStore::open(&keys::store_path(d))?),
            None => None,
        };
        let events = match data_dir {
            Some(d) => EventLog::with_file(config.max_events, events::events_path(d))
                .map_err(EdgeError::Events)?,
            None => EventLog::memory(config.max_events),
        };
        Ok(Edge {
            path: path.to_path_buf(),
            zone: RwLock::new(Arc::new(compile(config, None, clock.now_ms())?)),
            clock,
            keys,
            counter,
            mitigations: Mitigations::default(),
            events,
            certs,
            tls,
        })
    }

    fn zone(&self) -> Arc<Zone> {
        self.zone.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The zone file this edge was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listeners of the zone file as loaded at start (a reload does
    /// not move listeners).
    pub fn listeners(&self) -> Vec<config::Listener> {
        self.zone().config.listeners.clone()
    }

    /// The rustls config for TLS listeners (certificates follow reloads).
    pub fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.clone()
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Reads the zone file again; when it is valid, new requests use it.
    /// An invalid file leaves the running zone as it was.
    pub fn reload(&self) -> Result<(), EdgeError> {
        let config = config::load(&self.path)?;
        let old = self.zone();
        if listener_set(&config) != listener_set(&old.config) {
            tracing::warn!(target: "hearth::edge", "{}: listeners changed; they take effect at the next start", self.path.display());
        }
        let zone = compile(config, Some(&old), self.clock.now_ms())?;
        self.certs.replace(&zone.config.certificates)?;
        self.events.set_max(zone.config.max_events);
        *self.zone.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(zone);
        Ok(())
    }

    /// Reloads certificates whose files changed on disk.
    pub fn refresh_certificates(&self) -> (usize, Vec<tls::TlsError>) {
        self.certs.refresh()
    }

    /// Whether `ip` is one of the zone's trusted proxies.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        net::trusted(&self.zone().config.trusted_proxies, ip)
    }

    /// Header names the edge owns: a client's copies never reach a worker.
    pub fn owned_headers(&self) -> Vec<String> {
        self.zone().owned.to_vec()
    }

    fn event(
        &self,
        req: &EdgeRequest<'_>,
        ip: IpAddr,
        phase: &str,
        rule: &str,
        action: &str,
        reason: String,
    ) {
        self.events.record(SecurityEvent {
            time_ms: self.clock.now_ms(),
            ray: req.ray.to_string(),
            phase: phase.into(),
            rule: rule.into(),
            action: action.into(),
            client_ip: ip.to_string(),
            host: req.host.to_string(),
            method: req.method.to_string(),
            path: req.path.chars().take(1024).collect(),
            reason,
        });
    }

    /// Runs every phase over the request's head, fetching JWKS keys on
    /// this thread when a check needs them.
    pub fn check(&self, req: &EdgeRequest<'_>) -> Verdict {
        let mut round = 0;
        loop {
            // Once the rounds are spent no fetch is asked for.
            match self.check_or_fetch(req, round < MAX_FETCH_ROUNDS) {
                Checked::Verdict(v) => return v,
                Checked::Fetch(fetch) => {
                    round += 1;
                    fetch.run();
                }
            }
        }
    }

    /// Runs every phase over the request's head. With `may_fetch`, a JWT
    /// policy whose JWKS keys expired, or that meets a `kid` it lacks,
    /// stops the check and hands back the fetch, which the caller runs off
    /// its front threads before checking again; without it the held keys
    /// are used.
    pub fn check_or_fetch(&self, req: &EdgeRequest<'_>, may_fetch: bool) -> Checked {
        match self.check_head(req, may_fetch) {
            Ok(v) => Checked::Verdict(v),
            Err(fetch) => Checked::Fetch(fetch),
        }
    }

    fn check_head(
        &self,
        req: &EdgeRequest<'_>,
        may_fetch: bool,
    ) -> Result<Verdict, jwks::KeyFetch> {
        let zone = self.zone();
        let cfg = &zone.config;
        let header_name = match cfg.client_ip_header {
            Some(config::ClientIpHeader::Forwarded) => "forwarded",
            _ => "x-forwarded-for",
        };
        let ip = net::client_ip(
            req.peer,
            &cfg.trusted_proxies,
            cfg.client_ip_header,
            req.headers
                .iter()
                .filter(|(k, _)| *k == header_name)
                .map(|(_, v)| v.as_ref()),
        );
        let redirect = |h: &config::HostPolicy| h.redirect_https && host_matches(&h.host, req.host);
        if !req.tls && cfg.hosts.iter().any(redirect) {
            let q = if req.query.is_empty() { "" } else { "?" };
            return Ok(Verdict::Reply(Reply {
                status: 301,
                headers: vec![(
                    "location".into(),
                    format!("https://{}{}{q}{}", req.host, req.path, req.query),
                )],
                body: String::new(),
            }));
        }
        let headers: Vec<(&str, Cow<'_, str>)> = req
            .headers
            .iter()
            .filter(|(k, _)| !zone.owned.iter().any(|o| o.as_str() == *k))
            .cloned()
            .collect();
        let mut ctx = RequestCtx::new(
            req.method, req.host, req.path, req.query, headers, ip, req.tls, req.port,
        );
        ctx.version = req.version;
        ctx.timestamp_sec = (self.clock.now_ms() / 1000) as i64;
        let mut pass = Pass {
            client_ip: ip,
            set_headers: Vec::new(),
            body_rules: None,
            jwt_claims: Vec::new(),
            owned: zone.owned.clone(),
        };
        match self.auth(&zone, req, &mut ctx, &mut pass, may_fetch) {
            Ok(()) => {}
            Err(AuthStop::Reply(reply)) => return Ok(Verdict::Reply(reply)),
            Err(AuthStop::Fetch(fetch)) => return Err(fetch),
        }
        let mut skip_phases: Vec<&str> = Vec::new();
        let mut skip_managed: Vec<String> = Vec::new();
        for rule in cfg.rules.iter().filter(|r| r.enabled) {
            if !rule.expression.eval(&ctx) {
                continue;
            }
            match &rule.action {
                Action::Block {
                    status,
                    body,
                    content_type,
                } => {
                    self.event(
                        req,
                        ip,
                        "custom_rules",
                        &rule.id,
                        "block",
                        rule.description.clone(),
                    );
                    return Ok(Verdict::Reply(block(*status, body, content_type, req.ray)));
                }
                Action::Log => self.event(
                    req,
                    ip,
                    "custom_rules",
                    &rule.id,
                    "log",
                    rule.description.clone(),
                ),
                Action::Skip { phases, rules } => {
                    skip_phases.extend(phases.iter().map(String::as_str));
                    skip_managed.extend(rules.iter().cloned());
                    if phases.iter().any(|p| p == "rest" || p == "custom_rules") {
                        break;
                    }
                }
            }
        }
        let skipped = |p: &str| {
            skip_phases.contains(&p) || (skip_phases.contains(&"rest") && p != "custom_rules")
        };
        if !skipped("rate_limits")
            && let Some(reply) = self.rate_limits(&zone, req, &ctx, &pass)
        {
            return Ok(Verdict::Reply(reply));
        }
        if let Some(m) = cfg.managed.as_ref().filter(|_| !skipped("managed_rules")) {
            if let Some(f) = m.rules.scan_parts(&ctx, true, None, &skip_managed) {
                let reason = format!("{} in {} {}", f.reason, f.location.as_str(), f.name)
                    .trim_end()
                    .to_string();
                if m.action == ManagedAction::Block {
                    self.event(req, ip, "managed_rules", f.rule, "block", reason);
                    return Ok(Verdict::Reply(block(
                        m.status,
                        "",
                        "text/plain;charset=UTF-8",
                        req.ray,
                    )));
                }
                self.event(req, ip, "managed_rules", f.rule, "log", reason);
            }
            pass.body_rules = Some(skip_managed);
        }
        pass.jwt_claims = std::mem::take(&mut ctx.jwt_claims);
        Ok(Verdict::Pass(pass))
    }

    /// Runs the managed rules over a body whose head passed [`check`](Self::check).
    pub fn check_body(&self, req: &EdgeRequest<'_>, pass: &Pass, body: &[u8]) -> Option<Reply> {
        let skipped = pass.body_rules.as_ref()?;
        if body.is_empty() {
            return None;
        }
        let zone = self.zone();
        let m = zone.config.managed.as_ref()?;
        let mut ctx = RequestCtx::new(
            req.method,
            req.host,
            req.path,
            req.query,
            req.headers.clone(),
            pass.client_ip,
            req.tls,
            req.port,
        );
        ctx.jwt_claims = pass.jwt_claims.clone();
        let f = m.rules.scan_parts(&ctx, false, Some(body), skipped)?;
        let reason = format!("{} in {} {}", f.reason, f.location.as_str(), f.name)
            .trim_end()
            .to_string();
        if m.action == ManagedAction::Block {
            self.event(
                req,
                pass.client_ip,
                "managed_rules",
                f.rule,
                "block",
                reason,
            );
            return Some(block(m.status, "", "text/plain;charset=UTF-8", req.ray));
        }
        self.event(req, pass.client_ip, "managed_rules", f.rule, "log", reason);
        None
    }

    fn auth(
        &self,
        zone: &Zone,
        req: &EdgeRequest<'_>,
        ctx: &mut RequestCtx<'_>,
        pass: &mut Pass,
        may_fetch: bool,
    ) -> Result<(), AuthStop> {
        let cfg = &zone.config;
        let mut tenant: Option<String> = None;
        let deny = |status: u16, code: &str, scheme: &str| {
            AuthStop::Reply(Reply {
                status,
                headers: vec![
                    (
                        "www-authenticate".into(),
                        format!("{scheme} error=\"{code}\""),
                    ),
                    ("content-type".into(), "text/plain;charset=UTF-8".into()),
                    ("cf-ray".into(), req.ray.to_string()),
                ],
                body: format!(
                    "{status} {}: {code}\n",
                    if status == 401 {
                        "Unauthorized"
                    } else {
                        "Forbidden"
                    }
                ),
            })
        };
        for (p, keys) in cfg.jwt.iter().zip(&zone.jwt_keys) {
            if !p.expression.eval(ctx) {
                continue;
            }
            let token = match (&p.header, &p.cookie) {
                (_, Some(c)) => ctx
                    .cookie_map()
                    .iter()
                    .find(|(k, _)| k == c)
                    .and_then(|(_, v)| v.first().cloned()),
                (Some(h), None) => ctx.header(h).map(str::to_string),
                (None, None) => ctx.header("authorization").and_then(|v| {
                    let (scheme, t) = v.split_once(' ')?;
                    scheme
                        .eq_ignore_ascii_case("bearer")
                        .then(|| t.trim().to_string())
                }),
            };
            let Some(token) = token else {
                if p.required {
                    self.event(
                        req,
                        pass.client_ip,
                        "auth",
                        &p.id,
                        "block",
                        "missing_token".into(),
                    );
                    return Err(deny(401, "missing_token", "Bearer"));
                }
                continue;
            };
            let v = jwt::Validation {
                algorithms: &p.algorithms,
                issuer: p.issuer.as_deref(),
                audiences: &p.audiences,
                clock_skew_secs: p.clock_skew_secs,
                now_secs: self.clock.now_ms() / 1000,
            };
            let now_ms = self.clock.now_ms();
            let result = match &keys.remote {
                None => jwt::verify(&token, &keys.fixed, &v),
                Some(remote) => {
                    if may_fetch && let Some(fetch) = remote.due(now_ms) {
                        return Err(AuthStop::Fetch(fetch));
                    }
                    let result = jwt::verify_in(&token, &[&keys.fixed, &remote.held()], &v);
                    // A `kid` no held key has: the provider may have rotated.
                    if may_fetch
                        && result == Err(jwt::JwtError::NoKey)
                        && let Some(fetch) =
                            remote.unknown_kid(jwt::token_kid(&token).as_deref(), now_ms)
                    {
                        return Err(AuthStop::Fetch(fetch));
                    }
                    result
                }
            };
            match result {
                Ok(claims) => {
                    if let Some(tc) = &p.tenant_claim {
                        match claims.get(tc).and_then(|v| v.as_str()) {
                            Some(t) => tenant = Some(t.to_string()),
                            None => {
                                self.event(
                                    req,
                                    pass.client_ip,
                                    "auth",
                                    &p.id,
                                    "block",
                                    format!("no {tc} claim"),
                                );
                                return Err(deny(403, "missing_tenant_claim", "Bearer"));
                            }
                        }
                    }
                    ctx.jwt_claims = jwt::claim_map(&claims);
                    pass.set_headers.push((
                        cfg.forward.claims.clone(),
                        serde_json::Value::Object(claims).to_string(),
                    ));
                }
                Err(e) => {
                    self.event(req, pass.client_ip, "auth", &p.id, "block", e.to_string());
                    return Err(deny(401, e.code(), "Bearer"));
                }
            }
        }
        for p in &cfg.api_keys {
            if !p.expression.eval(ctx) {
                continue;
            }
            let Some(presented) = ctx.header(&p.header).map(str::to_string) else {
                if p.required {
                    self.event(
                        req,
                        pass.client_ip,
                        "auth",
                        &p.id,
                        "block",
                        "missing_api_key".into(),
                    );
                    return Err(deny(401, "missing_api_key", "ApiKey"));
                }
                continue;
            };
            let found = match &self.keys {
                Some(store) => store.lookup(&presented).unwrap_or_else(|e| {
                    tracing::error!(target: "hearth::edge", "API key lookup: {e}");
                    None
                }),
                None => None,
            };
            let Some(key) = found else {
                self.event(
                    req,
                    pass.client_ip,
                    "auth",
                    &p.id,
                    "block",
                    "invalid_api_key".into(),
                );
                return Err(deny(401, "invalid_api_key", "ApiKey"));
            };
            if let Some(missing) = p.scopes.iter().find(|s| !key.scopes.contains(s)) {
                self.event(
                    req,
                    pass.client_ip,
                    "auth",
                    &p.id,
                    "block",
                    format!("key {} lacks scope {missing}", key.id),
                );
                return Err(deny(403, "insufficient_scope", "ApiKey"));
            }
            if tenant.as_deref().is_some_and(|t| t != key.tenant) {
                self.event(
                    req,
                    pass.client_ip,
                    "auth",
                    &p.id,
                    "block",
                    "JWT and API key name different tenants".into(),
                );
                return Err(deny(403, "tenant_mismatch", "ApiKey"));
            }
            tenant = Some(key.tenant.clone());
            pass.set_headers
                .push((cfg.forward.key_id.clone(), key.id.clone()));
            pass.set_headers
                .push((cfg.forward.scopes.clone(), key.scopes.join(" ")));
        }
        if let Some(t) = tenant {
            pass.set_headers.push((cfg.forward.tenant.clone(), t));
        }
        Ok(())
    }

    fn rate_limits(
        &self,
        zone: &Zone,
        req: &EdgeRequest<'_>,
        ctx: &RequestCtx<'_>,
        pass: &Pass,
    ) -> Option<Reply> {
        let now = self.clock.now_ms();
        for r in &zone.config.rate_limits {
            if !r.expression.eval(ctx) {
                continue;
            }
            let mut key = r.id.clone();
            for c in &r.characteristics {
                key.push('\u{1f}');
                match c {
                    Characteristic::Ip => key.push_str(&pass.client_ip.to_string()),
                    Characteristic::Host => key.push_str(req.host),
                    Characteristic::Path => key.push_str(req.path),
                    Characteristic::Header(h) => key.push_str(ctx.header(h).unwrap_or("")),
                    Characteristic::Query(q) => {
                        if let Some((_, v)) = ctx.arg_map().iter().find(|(k, _)| k == q) {
                            key.push_str(v.first().map_or("", String::as_str));
                        }
                    }
                    Characteristic::JwtClaim(c) => {
                        if let Some((_, v)) = ctx.jwt_claims.iter().find(|(k, _)| k == c) {
                            key.push_str(&v.join(","));
                        }
                    }
                    Characteristic::ApiKey => {
                        let id = pass
                            .set_headers
                            .iter()
                            .find(|(k, _)| *k == zone.config.forward.key_id);
                        key.push_str(id.map_or("", |(_, v)| v.as_str()));
                    }
                }
            }
            // The engine refuses keys over its byte cap; a long path or
            // header is counted under its digest instead.
            if key.len() > hearth_ratelimit::MAX_KEY_BYTES {
                use sha2::Digest as _;
                key = format!("{}\u{1f}{}", r.id, hex::encode(sha2::Sha256::digest(&key)));
            }
            let period_ms = r.period_secs * 1000;
            let retry_ms = if let Some(until) = self.mitigations.blocked_until(&key, now) {
                Some(until - now)
            } else {
                let fits = self
                    .counter
                    .count(&key, r.requests_per_period, r.period_secs)
                    .unwrap_or_else(|e| {
                        // A counter that cannot count (Redis down) lets
                        // the request through: the limiter failing must
                        // not take the site down with it.
                        tracing::warn!(target: "hearth::edge", "rate limit {}: {e}", r.id);
                        true
                    });
                if fits {
                    None
                } else if r.mitigation_timeout_secs > 0 {
                    let until = now + r.mitigation_timeout_secs * 1000;
                    self.mitigations.block(&key, until, now);
                    Some(until - now)
                } else {
                    // Until the window ends, when the count starts again.
                    Some(period_ms - now % period_ms)
                }
            };
            let Some(retry_ms) = retry_ms else { continue };
            let reason = format!(
                "over {} requests per {} s",
                r.requests_per_period, r.period_secs
            );
            match &r.action {
                Action::Block {
                    status,
                    body,
                    content_type,
                } => {
                    self.event(req, pass.client_ip, "rate_limits", &r.id, "block", reason);
                    let mut reply = block(*status, body, content_type, req.ray);
                    reply.headers.push((
                        "retry-after".into(),
                        retry_ms.div_ceil(1000).max(1).to_string(),
                    ));
                    return Some(reply);
                }
                _ => self.event(req, pass.client_ip, "rate_limits", &r.id, "log", reason),
            }
        }
        None
    }
}

fn listener_set(c: &ZoneConfig) -> Vec<String> {
    c.listeners
        .iter()
        .map(|l| format!("{}|{}|{}", l.address, l.tls, l.proxy_protocol))
        .collect()
}

/// `example.com` matches itself; `*.example.com` matches one or more
/// labels before `example.com`.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(base) => {
            host.len() > base.len() + 1
                && host.ends_with(base)
                && host.as_bytes()[host.len() - base.len() - 1] == b'.'
        }
        None => pattern == "*" || pattern.eq_ignore_ascii_case(host),
    }
}

fn block(status: u16, body: &str, content_type: &str, ray: &str) -> Reply {
    let body = if body.is_empty() {
        format!(
            "Sorry, you have been blocked.\nThis request was refused by the site's security rules.\nRay ID: {ray}\n"
        )
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers: vec![
            ("content-type".into(), content_type.into()),
            ("cf-ray".into(), ray.into()),
        ],
        body,
    }
}
