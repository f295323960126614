//! The zone file (`hearth.toml`): listeners, TLS, trusted proxies, rules
//! and auth policies, read into a checked [`ZoneConfig`]. Every problem is
//! collected and reported as `<file>: <field path>: <what is wrong>`;
//! unknown fields are errors here (a misspelt security setting must not be
//! silently ignored).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::managed::{Exclusion, InputLimits, ManagedRules, Policy};
use crate::rules::{Cidr, Expr};

/// The zone file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .problems.join("\n"))]
    Invalid { problems: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub address: SocketAddr,
    pub tls: bool,
    /// Expect a PROXY protocol (v1 or v2) header first; honoured only from
    /// a trusted proxy's address.
    pub proxy_protocol: bool,
}

#[derive(Debug, Clone)]
pub struct Certificate {
    /// SNI names this pair serves; `*.example.com` matches one label; `*`
    /// alone is the default for clients that send no or an unknown name.
    pub names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIpHeader {
    XForwardedFor,
    Forwarded,
}

#[derive(Debug, Clone)]
pub struct HostPolicy {
    pub host: String,
    pub redirect_https: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Block {
        status: u16,
        body: String,
        content_type: String,
    },
    Log,
    /// Skip the named phases / rule ids for the rest of this request.
    Skip {
        phases: Vec<String>,
        rules: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct CustomRule {
    pub id: String,
    pub description: String,
    pub expression: Expr,
    pub action: Action,
    pub enabled: bool,
}

/// What a rate-limiting rule counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Characteristic {
    Ip,
    Header(String),
    Query(String),
    Path,
    Host,
    JwtClaim(String),
    ApiKey,
}

#[derive(Debug, Clone)]
pub struct RateLimitRule {
    pub id: String,
    pub expression: Expr,
    pub characteristics: Vec<Characteristic>,
    pub requests_per_period: u64,
    pub period_secs: u64,
    pub mitigation_timeout_secs: u64,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedAction {
    Block,
    Log,
}

#[derive(Debug, Clone)]
pub struct ManagedConfig {
    pub rules: ManagedRules,
    pub action: ManagedAction,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct JwtPolicy {
    pub id: String,
    pub expression: Expr,
    pub algorithms: Vec<String>,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub clock_skew_secs: u64,
    /// PEM public keys (RS256/ES256/EdDSA) or raw HMAC secrets (HS256).
    pub key_files: Vec<PathBuf>,
    pub hmac_secret_files: Vec<PathBuf>,
    /// JWKS documents (RFC 7517) on disk, read at start and on reload.
    pub jwks_files: Vec<PathBuf>,
    /// A JWKS URL, its keys cached and fetched again on rotation.
    pub jwks_url: Option<crate::jwks::JwksSettings>,
    /// Where the token is read from: `Authorization: Bearer` when unset.
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub required: bool,
    pub tenant_claim: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyPolicy {
    pub id: String,
    pub expression: Expr,
    pub header: String,
    pub required: bool,
    pub scopes: Vec<String>,
}

/// Names of the request headers the edge sets for the worker; any a
/// client sends are removed first.
#[derive(Debug, Clone)]
pub struct ForwardHeaders {
    pub claims: String,
    pub tenant: String,
    pub key_id: String,
    pub scopes: String,
}

impl Default for ForwardHeaders {
    fn default() -> Self {
        Self {
            claims: "x-hearth-jwt-claims".into(),
            tenant: "x-hearth-tenant".into(),
            key_id: "x-hearth-api-key-id".into(),
            scopes: "x-hearth-api-key-scopes".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub path: PathBuf,
    pub listeners: Vec<Listener>,
    pub certificates: Vec<Certificate>,
    pub trusted_proxies: Vec<Cidr>,
    pub client_ip_header: Option<ClientIpHeader>,
    pub hosts: Vec<HostPolicy>,
    pub rules: Vec<CustomRule>,
    pub rate_limits: Vec<RateLimitRule>,
    pub managed: Option<ManagedConfig>,
    pub jwt: Vec<JwtPolicy>,
    pub api_keys: Vec<ApiKeyPolicy>,
    pub forward: ForwardHeaders,
    pub max_events: usize,
}

/// Reads and checks a zone file.
pub fn load(path: &Path) -> Result<ZoneConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Checks zone-file text; `path` names it in errors and anchors relative
/// file names.
pub fn parse(path: &Path, text: &str) -> Result<ZoneConfig, ConfigError> {
    let mut c = Cx {
        file: path.display().to_string(),
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        problems: Vec::new(),
    };
    let table: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let msg = e.message().to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: ")
                })
                .unwrap_or_default();
            return Err(ConfigError::Invalid {
                problems: vec![format!("{}: {at}{msg}", c.file)],
            });
        }
    };
    let zone = c.zone(&table);
    if c.problems.is_empty() {
        Ok(zone)
    } else {
        Err(ConfigError::Invalid {
            problems: c.problems,
        })
    }
}

struct Cx {
    file: String,
    dir: PathBuf,
    problems: Vec<String>,
}

const STATUS_RANGE: std::ops::RangeInclusive<i64> = 400..=599;

impl Cx {
    fn err(&mut self, path: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{}: {path}: {msg}", self.file));
    }

    fn known(&mut self, t: &Table, path: &str, fields: &[&str]) {
        for k in t.keys() {
            if !fields.contains(&k.as_str()) {
                let at = join(path, k);
                self.err(
                    &at,
                    format!("unknown field; expected one of: {}", fields.join(", ")),
                );
            }
        }
    }

    fn str(&mut self, t: &Table, path: &str, key: &str) -> Option<String> {
        match t.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.err(
                    &join(path, key),
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn req_str(&mut self, t: &Table, path: &str, key: &str) -> Option<String> {
        if !t.contains_key(key) {
            self.err(&join(path, key), "missing; a string is required");
            return None;
        }
        self.str(t, path, key)
    }

    fn bool(&mut self, t: &Table, path: &str, key: &str, default: bool) -> bool {
        match t.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                self.err(
                    &join(path, key),
                    format!("expected true or false, found {}", other.type_str()),
                );
                default
            }
        }
    }

    fn int(
        &mut self,
        t: &Table,
        path: &str,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        match t.get(key)? {
            Value::Integer(n) if range.contains(n) => Some(*n),
            Value::Integer(n) => {
                self.err(
                    &join(path, key),
                    format!(
                        "{n} is out of range; expected {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
            other => {
                self.err(
                    &join(path, key),
                    format!("expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn strs(&mut self, t: &Table, path: &str, key: &str) -> Vec<String> {
        match t.get(key) {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => self.err(
                            &format!("{}[{i}]", join(path, key)),
                            format!("expected a string, found {}", other.type_str()),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.err(
                    &join(path, key),
                    format!("expected an array of strings, found {}", other.type_str()),
                );
                Vec::new()
            }
        }
    }

    fn tables<'t>(&mut self, t: &'t Table, path: &str, key: &str) -> Vec<(String, &'t Table)> {
        match t.get(key) {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    let at = format!("{}[{i}]", join(path, key));
                    match v {
                        Value::Table(t) => out.push((at, t)),
                        other => {
                            self.err(&at, format!("expected a table, found {}", other.type_str()))
                        }
                    }
                }
                out
            }
            Some(other) => {
                self.err(
                    &join(path, key),
                    format!(
                        "expected an array of tables ([[{key}]]), found {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn table<'t>(&mut self, t: &'t Table, path: &str, key: &str) -> Option<&'t Table> {
        match t.get(key)? {
            Value::Table(t) => Some(t),
            other => {
                self.err(
                    &join(path, key),
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn expr(&mut self, t: &Table, path: &str, key: &str, default: Option<&str>) -> Option<Expr> {
        let src = match (t.contains_key(key), default) {
            (false, Some(d)) => d.to_string(),
            _ => self.req_str(t, path, key)?,
        };
        match Expr::compile(&src) {
            Ok(e) => Some(e),
            Err(e) => {
                self.err(&join(path, key), format!("invalid expression {src:?}: {e}"));
                None
            }
        }
    }

    fn file(&mut self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { self.dir.join(p) }
    }

    fn zone(&mut self, t: &Table) -> ZoneConfig {
        self.known(
            t,
            "",
            &[
                "listeners",
                "tls",
                "trusted_proxies",
                "hosts",
                "rules",
                "rate_limits",
                "managed_rules",
                "jwt",
                "api_keys",
                "forward_headers",
                "security_events",
            ],
        );
        let mut zone = ZoneConfig {
            path: PathBuf::from(&self.file),
            listeners: Vec::new(),
            certificates: Vec::new(),
            trusted_proxies: Vec::new(),
            client_ip_header: None,
            hosts: Vec::new(),
            rules: Vec::new(),
            rate_limits: Vec::new(),
            managed: Some(ManagedConfig {
                rules: ManagedRules::default(),
                action: ManagedAction::Block,
                status: 403,
            }),
            jwt: Vec::new(),
            api_keys: Vec::new(),
            forward: ForwardHeaders::default(),
            max_events: 10_000,
        };
        for (at, l) in self.tables(t, "", "listeners") {
            self.known(l, &at, &["address", "tls", "proxy_protocol"]);
            let Some(addr) = self.req_str(l, &at, "address") else {
                continue;
            };
            let Ok(address) = addr.parse::<SocketAddr>() else {
                self.err(
                    &join(&at, "address"),
                    format!("{addr:?} is not an address:port such as \"0.0.0.0:443\""),
                );
                continue;
            };
            zone.listeners.push(Listener {
                address,
                tls: self.bool(l, &at, "tls", false),
                proxy_protocol: self.bool(l, &at, "proxy_protocol", false),
            });
        }
        if let Some(tls) = self.table(t, "", "tls") {
            self.known(tls, "tls", &["certificates"]);
            for (at, c) in self.tables(tls, "tls", "certificates") {
                self.known(c, &at, &["names", "cert", "key"]);
                let names = self.strs(c, &at, "names");
                if names.is_empty() {
                    self.err(&join(&at, "names"), "missing; list the SNI names this certificate serves (\"*\" for the default)");
                }
                let (Some(cert), Some(key)) =
                    (self.req_str(c, &at, "cert"), self.req_str(c, &at, "key"))
                else {
                    continue;
                };
                let (cert, key) = (self.file(&cert), self.file(&key));
                for (f, field) in [(&cert, "cert"), (&key, "key")] {
                    if !f.is_file() {
                        self.err(
                            &join(&at, field),
                            format!("{} does not exist or is not a file", f.display()),
                        );
                    }
                }
                zone.certificates.push(Certificate { names, cert, key });
            }
        }
        if zone.listeners.iter().any(|l| l.tls) && zone.certificates.is_empty() {
            self.err(
                "tls.certificates",
                "a listener has tls = true, so at least one certificate is required",
            );
        }
        if let Some(tp) = self.table(t, "", "trusted_proxies") {
            self.known(tp, "trusted_proxies", &["cidrs", "header"]);
            for (i, c) in self.strs(tp, "trusted_proxies", "cidrs").iter().enumerate() {
                match Cidr::parse(c) {
                    Ok(c) => zone.trusted_proxies.push(c),
                    Err(e) => self.err(&format!("trusted_proxies.cidrs[{i}]"), e),
                }
            }
            zone.client_ip_header = match self.str(tp, "trusted_proxies", "header").as_deref() {
                None => Some(ClientIpHeader::XForwardedFor),
                Some(h) if h.eq_ignore_ascii_case("x-forwarded-for") => {
                    Some(ClientIpHeader::XForwardedFor)
                }
                Some(h) if h.eq_ignore_ascii_case("forwarded") => Some(ClientIpHeader::Forwarded),
                Some("none") => None,
                Some(other) => {
                    self.err(
                        "trusted_proxies.header",
                        format!(
                            "{other:?}: expected \"x-forwarded-for\", \"forwarded\" or \"none\""
                        ),
                    );
                    None
                }
            };
        }
        for (at, h) in self.tables(t, "", "hosts") {
            self.known(h, &at, &["host", "redirect_https"]);
            if let Some(host) = self.req_str(h, &at, "host") {
                zone.hosts.push(HostPolicy {
                    host: host.to_ascii_lowercase(),
                    redirect_https: self.bool(h, &at, "redirect_https", false),
                });
            }
        }
        let mut ids = Vec::new();
        for (at, r) in self.tables(t, "", "rules") {
            self.known(
                r,
                &at,
                &[
                    "id",
                    "description",
                    "expression",
                    "action",
                    "status",
                    "body",
                    "content_type",
                    "skip",
                    "enabled",
                ],
            );
            let id = self
                .str(r, &at, "id")
                .unwrap_or_else(|| format!("rule-{}", zone.rules.len() + 1));
            self.unique(&mut ids, &id, &at);
            let (Some(expression), Some(action)) = (
                self.expr(r, &at, "expression", None),
                self.action(r, &at, true),
            ) else {
                continue;
            };
            zone.rules.push(CustomRule {
                id,
                description: self.str(r, &at, "description").unwrap_or_default(),
                expression,
                action,
                enabled: self.bool(r, &at, "enabled", true),
            });
        }
        for (at, r) in self.tables(t, "", "rate_limits") {
            if let Some(rule) = self.rate_limit(r, &at, &mut ids) {
                zone.rate_limits.push(rule);
            }
        }
        if let Some(m) = self.table(t, "", "managed_rules") {
            zone.managed = self.managed(m);
        }
        for (at, j) in self.tables(t, "", "jwt") {
            if let Some(p) = self.jwt(j, &at, &mut ids) {
                zone.jwt.push(p);
            }
        }
        for (at, k) in self.tables(t, "", "api_keys") {
            self.known(
                k,
                &at,
                &["id", "expression", "header", "required", "scopes"],
            );
            let id = self
                .str(k, &at, "id")
                .unwrap_or_else(|| format!("api-keys-{}", zone.api_keys.len() + 1));
            self.unique(&mut ids, &id, &at);
            let Some(expression) = self.expr(k, &at, "expression", Some("true")) else {
                continue;
            };
            zone.api_keys.push(ApiKeyPolicy {
                id,
                expression,
                header: self
                    .str(k, &at, "header")
                    .unwrap_or_else(|| "x-api-key".into())
                    .to_ascii_lowercase(),
                required: self.bool(k, &at, "required", true),
                scopes: self.strs(k, &at, "scopes"),
            });
        }
        if let Some(f) = self.table(t, "", "forward_headers") {
            self.known(
                f,
                "forward_headers",
                &["claims", "tenant", "key_id", "scopes"],
            );
            let d = ForwardHeaders::default();
            let pick = |cx: &mut Cx, key: &str, dflt: String| {
                cx.str(f, "forward_headers", key)
                    .map(|s| s.to_ascii_lowercase())
                    .unwrap_or(dflt)
            };
            zone.forward = ForwardHeaders {
                claims: pick(self, "claims", d.claims),
                tenant: pick(self, "tenant", d.tenant),
                key_id: pick(self, "key_id", d.key_id),
                scopes: pick(self, "scopes", d.scopes),
            };
        }
        if let Some(e) = self.table(t, "", "security_events") {
            self.known(e, "security_events", &["max_events"]);
            if let Some(n) = self.int(e, "security_events", "max_events", 1..=10_000_000) {
                zone.max_events = n as usize;
            }
        }
        zone
    }

    fn unique(&mut self, ids: &mut Vec<String>, id: &str, at: &str) {
        if ids.iter().any(|i| i == id) {
            self.err(
                &join(at, "id"),
                format!("{id:?} is used by another rule; ids must be unique"),
            );
        }
        ids.push(id.to_string());
    }

    fn action(&mut self, r: &Table, at: &str, allow_skip: bool) -> Option<Action> {
        let action = self.req_str(r, at, "action")?;
        match action.as_str() {
            "block" => {
                let status = self.int(r, at, "status", STATUS_RANGE).unwrap_or(403) as u16;
                let body = self.str(r, at, "body").unwrap_or_default();
                let content_type = self
                    .str(r, at, "content_type")
                    .unwrap_or_else(|| "text/plain;charset=UTF-8".into());
                Some(Action::Block {
                    status,
                    body,
                    content_type,
                })
            }
            "log" => Some(Action::Log),
            "skip" if allow_skip => {
                let mut phases = Vec::new();
                let mut rules = Vec::new();
                for (i, s) in self.strs(r, at, "skip").into_iter().enumerate() {
                    match s.as_str() {
                        "rest" | "custom_rules" | "rate_limits" | "managed_rules" => phases.push(s),
                        _ if s.starts_with("managed:") && ManagedRules::known(&s["managed:".len()..]) => rules.push(s["managed:".len()..].to_string()),
                        _ => self.err(&format!("{}[{i}]", join(at, "skip")), format!("{s:?}: expected \"rest\", \"custom_rules\", \"rate_limits\", \"managed_rules\" or \"managed:<rule id>\"")),
                    }
                }
                if phases.is_empty() && rules.is_empty() {
                    self.err(
                        &join(at, "skip"),
                        "a skip action needs `skip = [...]` naming what to skip",
                    );
                }
                Some(Action::Skip { phases, rules })
            }
            "challenge" | "js_challenge" | "managed_challenge" => {
                self.err(
                    &join(at, "action"),
                    format!(
                        "{action:?} is not supported (no challenge pages); use \"block\" or \"log\""
                    ),
                );
                None
            }
            other => {
                let allowed = if allow_skip {
                    "\"block\", \"log\" or \"skip\""
                } else {
                    "\"block\" or \"log\""
                };
                self.err(
                    &join(at, "action"),
                    format!("{other:?}: expected {allowed}"),
                );
                None
            }
        }
    }

    fn rate_limit(&mut self, r: &Table, at: &str, ids: &mut Vec<String>) -> Option<RateLimitRule> {
        self.known(
            r,
            at,
            &[
                "id",
                "expression",
                "characteristics",
                "requests_per_period",
                "period",
                "mitigation_timeout",
                "action",
                "status",
                "body",
                "content_type",
            ],
        );
        let id = self.str(r, at, "id").unwrap_or_else(|| at.to_string());
        self.unique(ids, &id, at);
        let expression = self.expr(r, at, "expression", Some("true"));
        let mut characteristics = Vec::new();
        let names = self.strs(r, at, "characteristics");
        for (i, c) in names.iter().enumerate() {
            let arg = |p: &str| {
                c.strip_prefix(p)
                    .and_then(|s| s.strip_suffix("\"]"))
                    .map(str::to_ascii_lowercase)
            };
            let parsed = match c.as_str() {
                "ip.src" => Some(Characteristic::Ip),
                "http.request.uri.path" => Some(Characteristic::Path),
                "http.host" => Some(Characteristic::Host),
                "api_key" => Some(Characteristic::ApiKey),
                _ => arg("http.request.headers[\"")
                    .map(Characteristic::Header)
                    .or_else(|| {
                        c.strip_prefix("http.request.uri.args[\"")
                            .and_then(|s| s.strip_suffix("\"]"))
                            .map(|s| Characteristic::Query(s.to_string()))
                    })
                    .or_else(|| {
                        c.strip_prefix("http.request.jwt.claims[\"")
                            .and_then(|s| s.strip_suffix("\"]"))
                            .map(|s| Characteristic::JwtClaim(s.to_string()))
                    }),
            };
            match parsed {
                Some(p) => characteristics.push(p),
                None => self.err(
                    &format!("{}[{i}]", join(at, "characteristics")),
                    format!("{c:?}: expected \"ip.src\", \"http.host\", \"http.request.uri.path\", \"api_key\", http.request.headers[\"name\"], http.request.uri.args[\"name\"] or http.request.jwt.claims[\"name\"]"),
                ),
            }
        }
        if characteristics.is_empty() && names.is_empty() {
            characteristics.push(Characteristic::Ip);
        }
        let requests = self.int(r, at, "requests_per_period", 1..=1_000_000_000);
        if requests.is_none() && !r.contains_key("requests_per_period") {
            self.err(
                &join(at, "requests_per_period"),
                "missing; how many requests a period allows",
            );
        }
        let period = self.int(r, at, "period", 1..=86_400);
        if period.is_none() && !r.contains_key("period") {
            self.err(&join(at, "period"), "missing; the counting period in seconds (Cloudflare offers 10, 60, 120, 300, 600, 3600)");
        }
        let timeout = self
            .int(r, at, "mitigation_timeout", 0..=86_400)
            .unwrap_or(0);
        let action = self.action(r, at, false)?;
        Some(RateLimitRule {
            id,
            expression: expression?,
            characteristics,
            requests_per_period: requests? as u64,
            period_secs: period? as u64,
            mitigation_timeout_secs: timeout as u64,
            action: match action {
                Action::Block {
                    body, content_type, ..
                } if !r.contains_key("status") => Action::Block {
                    status: 429,
                    body,
                    content_type,
                },
                a => a,
            },
        })
    }

    fn managed(&mut self, m: &Table) -> Option<ManagedConfig> {
        let at = "managed_rules";
        self.known(
            m,
            at,
            &[
                "enabled",
                "paranoia_level",
                "action",
                "status",
                "disabled_rules",
                "exclusions",
                "limits",
                "policy",
            ],
        );
        let mut rules = ManagedRules {
            paranoia: self.int(m, at, "paranoia_level", 1..=4).unwrap_or(1) as u8,
            ..ManagedRules::default()
        };
        for (i, id) in self.strs(m, at, "disabled_rules").into_iter().enumerate() {
            if !ManagedRules::known(&id) {
                self.err(
                    &format!("{at}.disabled_rules[{i}]"),
                    format!("{id:?} is not a managed rule id"),
                );
            }
            rules.disabled.push(id);
        }
        for (eat, e) in self.tables(m, at, "exclusions") {
            self.known(e, &eat, &["rules", "expression"]);
            let ids = self.strs(e, &eat, "rules");
            for (i, id) in ids.iter().enumerate() {
                if !ManagedRules::known(id) {
                    self.err(
                        &format!("{eat}.rules[{i}]"),
                        format!("{id:?} is not a managed rule id"),
                    );
                }
            }
            if let Some(when) = self.expr(e, &eat, "expression", None) {
                rules.exclusions.push(Exclusion { rules: ids, when });
            }
        }
        if let Some(l) = self.table(m, at, "limits") {
            let lat = "managed_rules.limits";
            self.known(
                l,
                lat,
                &[
                    "max_args",
                    "max_arg_name_bytes",
                    "max_arg_value_bytes",
                    "max_header_value_bytes",
                    "max_path_bytes",
                ],
            );
            let d = InputLimits::default();
            let get = |cx: &mut Cx, k: &str, dflt: usize| {
                cx.int(l, lat, k, 1..=100_000_000)
                    .map_or(dflt, |n| n as usize)
            };
            rules.limits = InputLimits {
                max_args: get(self, "max_args", d.max_args),
                max_arg_name_bytes: get(self, "max_arg_name_bytes", d.max_arg_name_bytes),
                max_arg_value_bytes: get(self, "max_arg_value_bytes", d.max_arg_value_bytes),
                max_header_value_bytes: get(
                    self,
                    "max_header_value_bytes",
                    d.max_header_value_bytes,
                ),
                max_path_bytes: get(self, "max_path_bytes", d.max_path_bytes),
            };
        }
        if let Some(p) = self.table(m, at, "policy") {
            rules.policy = self.policy(p);
        }
        let action = match self.str(m, at, "action").as_deref() {
            None | Some("block") => ManagedAction::Block,
            Some("log") => ManagedAction::Log,
            Some(other) => {
                self.err(
                    &format!("{at}.action"),
                    format!("{other:?}: expected \"block\" or \"log\""),
                );
                ManagedAction::Block
            }
        };
        let status = self.int(m, at, "status", STATUS_RANGE).unwrap_or(403) as u16;
        self.bool(m, at, "enabled", true).then_some(ManagedConfig {
            rules,
            action,
            status,
        })
    }

    /// `[managed_rules.policy]`: each list replaces its default.
    fn policy(&mut self, p: &Table) -> Policy {
        let at = "managed_rules.policy";
        self.known(
            p,
            at,
            &[
                "allowed_methods",
                "allowed_content_types",
                "allowed_charsets",
                "restricted_extensions",
                "restricted_headers",
            ],
        );
        let mut policy = Policy::default();
        let list = |cx: &mut Cx, key: &str, ok: &dyn Fn(&str) -> Option<&'static str>| {
            let items = cx.strs(p, at, key);
            for (i, item) in items.iter().enumerate() {
                if let Some(expected) = ok(item) {
                    cx.err(
                        &format!("{at}.{key}[{i}]"),
                        format!("{item:?}: expected {expected}"),
                    );
                }
            }
            (p.get(key).is_some()).then_some(items)
        };
        let token = |s: &str| {
            (s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)))
            .then_some("a non-empty HTTP token")
        };
        let method = |s: &str| {
            (s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_'))
            .then_some("an upper-case method name such as \"GET\"")
        };
        let media = |s: &str| {
            let ok = if let Some(suffix) = s.strip_prefix('+') {
                !suffix.is_empty() && token(suffix).is_none()
            } else {
                s.split_once('/')
                    .is_some_and(|(t, st)| token(t).is_none() && (st == "*" || token(st).is_none()))
            };
            (!ok).then_some("a media type (\"application/json\"), a type wildcard (\"image/*\") or a suffix (\"+json\")")
        };
        let ext = |s: &str| {
            (s.is_empty()
                || s.starts_with('.')
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .then_some("a file extension without its dot, such as \"bak\"")
        };
        if let Some(v) = list(self, "allowed_methods", &method) {
            policy.allowed_methods = v;
        }
        if let Some(v) = list(self, "allowed_content_types", &media) {
            policy.allowed_content_types = v;
        }
        if let Some(v) = list(self, "allowed_charsets", &token) {
            policy.allowed_charsets = v;
        }
        if let Some(v) = list(self, "restricted_extensions", &ext) {
            policy.restricted_extensions = v;
        }
        if let Some(v) = list(self, "restricted_headers", &token) {
            policy.restricted_headers = v;
        }
        policy
    }

    fn jwt(&mut self, j: &Table, at: &str, ids: &mut Vec<String>) -> Option<JwtPolicy> {
        self.known(
            j,
            at,
            &[
                "id",
                "expression",
                "algorithms",
                "issuer",
                "audience",
                "clock_skew",
                "keys",
                "hmac_secret_files",
                "jwks_files",
                "jwks_url",
                "jwks_max_age",
                "jwks_timeout_ms",
                "header",
                "cookie",
                "required",
                "tenant_claim",
            ],
        );
        let id = self.str(j, at, "id").unwrap_or_else(|| at.to_string());
        self.unique(ids, &id, at);
        let algorithms = self.strs(j, at, "algorithms");
        if algorithms.is_empty() {
            self.err(
                &join(at, "algorithms"),
                "missing; list the accepted algorithms (HS256, RS256, ES256, EdDSA)",
            );
        }
        for (i, a) in algorithms.iter().enumerate() {
            if !crate::jwt::ALGORITHMS.contains(&a.as_str()) {
                self.err(
                    &format!("{}[{i}]", join(at, "algorithms")),
                    format!("{a:?}: expected one of HS256, RS256, ES256, EdDSA"),
                );
            }
        }
        let key_files: Vec<PathBuf> = self
            .strs(j, at, "keys")
            .iter()
            .map(|p| self.file(p))
            .collect();
        let hmac_secret_files: Vec<PathBuf> = self
            .strs(j, at, "hmac_secret_files")
            .iter()
            .map(|p| self.file(p))
            .collect();
        for (i, f) in key_files.iter().chain(&hmac_secret_files).enumerate() {
            if !f.is_file() {
                self.err(
                    &format!("{at}.keys/hmac_secret_files[{i}]"),
                    format!("{} does not exist or is not a file", f.display()),
                );
            }
        }
        let jwks_files: Vec<PathBuf> = self
            .strs(j, at, "jwks_files")
            .iter()
            .map(|p| self.file(p))
            .collect();
        for (i, f) in jwks_files.iter().enumerate() {
            if !f.is_file() {
                self.err(
                    &format!("{at}.jwks_files[{i}]"),
                    format!("{} does not exist or is not a file", f.display()),
                );
            }
        }
        let jwks_url = self.str(j, at, "jwks_url").and_then(|url| {
            let scheme_ok = ["https://", "http://"]
                .iter()
                .any(|s| url.len() > s.len() && url[..s.len()].eq_ignore_ascii_case(s));
            if !scheme_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                self.err(
                    &join(at, "jwks_url"),
                    format!("{url:?}: expected an http:// or https:// URL"),
                );
                return None;
            }
            Some(crate::jwks::JwksSettings {
                url,
                max_age_secs: self.int(j, at, "jwks_max_age", 60..=86_400).unwrap_or(600) as u64,
                timeout_ms: self
                    .int(j, at, "jwks_timeout_ms", 100..=60_000)
                    .unwrap_or(5_000) as u64,
            })
        });
        if jwks_url.is_none() {
            for k in ["jwks_max_age", "jwks_timeout_ms"] {
                if j.contains_key(k) {
                    self.err(&join(at, k), "only applies with `jwks_url`");
                }
            }
        }
        if key_files.is_empty()
            && hmac_secret_files.is_empty()
            && jwks_files.is_empty()
            && jwks_url.is_none()
        {
            self.err(
                at,
                "no keys: give `keys` (PEM public keys), `hmac_secret_files`, `jwks_files` or `jwks_url`",
            );
        }
        Some(JwtPolicy {
            expression: self.expr(j, at, "expression", Some("true"))?,
            id,
            algorithms,
            issuer: self.str(j, at, "issuer"),
            audiences: self.strs(j, at, "audience"),
            clock_skew_secs: self.int(j, at, "clock_skew", 0..=3600).unwrap_or(60) as u64,
            key_files,
            hmac_secret_files,
            jwks_files,
            jwks_url,
            header: self.str(j, at, "header").map(|h| h.to_ascii_lowercase()),
            cookie: self.str(j, at, "cookie"),
            required: self.bool(j, at, "required", true),
            tenant_claim: self.str(j, at, "tenant_claim"),
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
