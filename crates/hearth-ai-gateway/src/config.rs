//! The gateway file (`gateways.toml`): wrangler has no place for AI Gateway
//! settings (Cloudflare keeps them in the dashboard), so Hearth reads them
//! from a file of its own, named by `hearth serve --ai-gateway FILE` or
//! `hearth gateway --config FILE`.
//!
//! ```toml
//! [[gateways]]
//! id = "main"
//! cache_ttl = 300                 # seconds; absent = cache only on request
//! collect_logs = true
//! log_bodies = false
//! max_logs = 100000
//! when_full = "drop_oldest"       # or "stop"
//! token = "..."                   # cf-aig-authorization: Bearer <token>
//! key_header = "x-tenant"         # who a request is, for per-key limits
//! key_metadata = "user"           # or this field of cf-aig-metadata
//! rate_limit = { limit = 100, period = 60, technique = "sliding" }
//! key_rate_limit = { limit = 10, period = 60, technique = "fixed" }
//! key_budget = { limit = 5.0, period = 86400 }
//! breaker = { failures = 5, cooldown = 30 }
//! dlp = { action = "block", on = "both", detectors = ["credit_card", "email", "api_key"], patterns = ["ACME-\\d{6}"] }
//! semantic_cache = { threshold = 0.95, model = "models/all-MiniLM-L6-v2", max_entries = 10000 }
//!
//! [providers.openai]
//! base_url = "https://api.openai.com/v1"
//!
//! [[prices]]
//! model = "gpt-4o-mini"
//! input = 0.15                    # currency per million input tokens
//! output = 0.60
//! ```
//!
//! Every problem is reported as `<file>: <field path>: <what is wrong>`;
//! unknown fields are errors, since a misspelt limit must not pass silently.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::dlp::DlpConfig;

/// Cloudflare's largest `cf-aig-max-attempts`.
pub const MAX_ATTEMPTS: u32 = 5;
/// Cloudflare's largest `cf-aig-retry-delay`, in milliseconds.
pub const MAX_RETRY_DELAY_MS: u64 = 5_000;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    #[serde(default)]
    pub gateways: Vec<GatewayConfig>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub prices: Vec<Price>,
    /// Bytes the exact cache may hold across gateways.
    #[serde(default = "default_cache_bytes")]
    pub cache_max_bytes: usize,
}

fn default_cache_bytes() -> usize {
    64 * 1024 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub id: String,
    /// Default cache TTL in seconds; `None` = responses are cached only when
    /// a request sends `cf-aig-cache-ttl`.
    pub cache_ttl: Option<u64>,
    #[serde(default = "yes")]
    pub collect_logs: bool,
    /// Keep request and response bodies in the logs.
    #[serde(default)]
    pub log_bodies: bool,
    #[serde(default = "default_max_logs")]
    pub max_logs: u64,
    #[serde(default)]
    pub when_full: WhenFull,
    /// Authenticated gateway: requests must send
    /// `cf-aig-authorization: Bearer <token>`.
    pub token: Option<String>,
    pub key_header: Option<String>,
    pub key_metadata: Option<String>,
    pub rate_limit: Option<RateLimitConfig>,
    pub key_rate_limit: Option<RateLimitConfig>,
    pub key_budget: Option<BudgetConfig>,
    pub breaker: Option<BreakerConfig>,
    pub dlp: Option<DlpConfig>,
    /// Defaults for requests that send no retry headers.
    #[serde(default = "one")]
    pub max_attempts: u32,
    #[serde(default)]
    pub retry_delay: u64,
    #[serde(default)]
    pub backoff: Backoff,
    /// Milliseconds; `None` = no timeout.
    pub request_timeout: Option<u64>,
    /// Beyond Cloudflare: answers from the cache by prompt meaning.
    pub semantic_cache: Option<SemanticCacheConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticCacheConfig {
    /// Cosine similarity a prompt needs to a cached one, above 0 and at
    /// most 1.
    pub threshold: f64,
    /// Directory of a local embedding model (what `[models.*] path` names
    /// in the AI config); relative to the gateway file.
    pub model: Option<String>,
    /// Prompts the gateway's index holds, oldest out first.
    #[serde(default = "default_semantic_entries")]
    pub max_entries: usize,
}

fn default_semantic_entries() -> usize {
    10_000
}

/// Largest `semantic_cache.max_entries`.
pub const MAX_SEMANTIC_ENTRIES: usize = 1_000_000;

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_max_logs() -> u64 {
    100_000
}

/// What happens when a gateway holds `max_logs` logs (Cloudflare's two
/// choices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// New requests are served but not logged.
    Stop,
    /// The oldest logs make room.
    #[default]
    DropOldest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Technique {
    Fixed,
    Sliding,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub limit: u64,
    /// Seconds.
    pub period: u64,
    pub technique: Technique,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Spend allowed per period, in the price table's currency.
    pub limit: f64,
    /// Seconds; windows are aligned to the epoch (86400 = UTC days).
    #[serde(default = "day")]
    pub period: u64,
}

fn day() -> u64 {
    86_400
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    /// Seconds the circuit stays open before one probe is let through.
    pub cooldown: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    #[default]
    Constant,
    Linear,
    Exponential,
}

impl Backoff {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "constant" => Some(Self::Constant),
            "linear" => Some(Self::Linear),
            "exponential" => Some(Self::Exponential),
            _ => None,
        }
    }

    /// The wait before retry number `retry` (1 = the first retry).
    pub fn delay_ms(self, base: u64, retry: u32) -> u64 {
        match self {
            Self::Constant => base,
            Self::Linear => base.saturating_mul(u64::from(retry)),
            Self::Exponential => base.saturating_mul(1u64 << (retry - 1).min(20)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub base_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub model: String,
    /// Per million input tokens.
    pub input: f64,
    /// Per million output tokens.
    pub output: f64,
}

/// Where each provider Cloudflare's AI Gateway knows is reached, as the
/// path after `/<gateway>/<provider>/` is appended to it.
pub fn default_base_url(provider: &str) -> Option<&'static str> {
    Some(match provider {
        "openai" => "https://api.openai.com/v1",
        "anthropic" => "https://api.anthropic.com",
        "groq" => "https://api.groq.com/openai/v1",
        "mistral" => "https://api.mistral.ai",
        "deepseek" => "https://api.deepseek.com",
        "openrouter" => "https://openrouter.ai/api/v1",
        "perplexity-ai" => "https://api.perplexity.ai",
        "google-ai-studio" => "https://generativelanguage.googleapis.com",
        "cohere" => "https://api.cohere.com",
        "grok" => "https://api.x.ai",
        "cerebras" => "https://api.cerebras.ai",
        "huggingface" => "https://api-inference.huggingface.co",
        _ => return None,
    })
}

impl GatewayFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let parsed: Self =
            toml::from_str(text).map_err(|e| ConfigError(format!("{file}: {}", e.message())))?;
        let mut problems = Vec::new();
        parsed.check(&mut problems);
        if problems.is_empty() {
            Ok(parsed)
        } else {
            Err(ConfigError(
                problems
                    .iter()
                    .map(|p| format!("{file}: {p}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ))
        }
    }

    fn check(&self, problems: &mut Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        for (i, g) in self.gateways.iter().enumerate() {
            let at = format!("gateways[{i}]");
            if g.id.is_empty()
                || g.id.len() > 64
                || !g
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                problems.push(format!(
                    "{at}.id: {:?} must be 1 to 64 letters, digits, '-' or '_'",
                    g.id
                ));
            }
            if !seen.insert(g.id.as_str()) {
                problems.push(format!("{at}.id: {:?} is declared twice", g.id));
            }
            if g.max_attempts == 0 || g.max_attempts > MAX_ATTEMPTS {
                problems.push(format!(
                    "{at}.max_attempts: must be 1 to {MAX_ATTEMPTS}, got {}",
                    g.max_attempts
                ));
            }
            if g.retry_delay > MAX_RETRY_DELAY_MS {
                problems.push(format!(
                    "{at}.retry_delay: must be at most {MAX_RETRY_DELAY_MS} ms, got {}",
                    g.retry_delay
                ));
            }
            if g.max_logs == 0 {
                problems.push(format!("{at}.max_logs: must be at least 1"));
            }
            for (name, rl) in [
                ("rate_limit", &g.rate_limit),
                ("key_rate_limit", &g.key_rate_limit),
            ] {
                if let Some(rl) = rl
                    && (rl.limit == 0 || rl.period == 0)
                {
                    problems.push(format!("{at}.{name}: limit and period must be at least 1"));
                }
            }
            if (g.key_rate_limit.is_some() || g.key_budget.is_some())
                && g.key_header.is_none()
                && g.key_metadata.is_none()
            {
                problems.push(format!(
                    "{at}: key_rate_limit and key_budget need key_header or key_metadata to tell keys apart"
                ));
            }
            if let Some(b) = &g.key_budget
                && (!b.limit.is_finite() || b.limit < 0.0 || b.period == 0)
            {
                problems.push(format!(
                    "{at}.key_budget: limit must be a non-negative number and period at least 1"
                ));
            }
            if let Some(b) = &g.breaker
                && (b.failures == 0 || b.cooldown == 0)
            {
                problems.push(format!(
                    "{at}.breaker: failures and cooldown must be at least 1"
                ));
            }
            if let Some(s) = &g.semantic_cache {
                if !(s.threshold > 0.0 && s.threshold <= 1.0) {
                    problems.push(format!(
                        "{at}.semantic_cache.threshold: must be above 0 and at most 1, got {}",
                        s.threshold
                    ));
                }
                if s.max_entries == 0 || s.max_entries > MAX_SEMANTIC_ENTRIES {
                    problems.push(format!(
                        "{at}.semantic_cache.max_entries: must be 1 to {MAX_SEMANTIC_ENTRIES}, got {}",
                        s.max_entries
                    ));
                }
                if s.model.as_deref().is_some_and(str::is_empty) {
                    problems.push(format!(
                        "{at}.semantic_cache.model: must name a model directory"
                    ));
                }
            }
            if let Some(d) = &g.dlp
                && let Err(e) = d.compile()
            {
                problems.push(format!("{at}.dlp: {e}"));
            }
        }
        for (name, p) in &self.providers {
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                problems.push(format!(
                    "providers.{name}.base_url: {:?} must start with http:// or https://",
                    p.base_url
                ));
            }
        }
        for (i, p) in self.prices.iter().enumerate() {
            if !(p.input.is_finite() && p.output.is_finite() && p.input >= 0.0 && p.output >= 0.0) {
                problems.push(format!(
                    "prices[{i}]: input and output must be non-negative numbers"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_field() {
        let err = GatewayFile::parse(
            "[[gateways]]\nid = \"a b\"\nmax_attempts = 9\nkey_rate_limit = { limit = 1, period = 1, technique = \"fixed\" }\n",
            "g.toml",
        )
        .unwrap_err()
        .0;
        assert!(err.contains("g.toml: gateways[0].id"), "{err}");
        assert!(
            err.contains("gateways[0].max_attempts: must be 1 to 5"),
            "{err}"
        );
        assert!(err.contains("need key_header or key_metadata"), "{err}");
        let err = GatewayFile::parse("[[gateways]]\nid = \"a\"\ncache_tll = 3\n", "g.toml")
            .unwrap_err()
            .0;
        assert!(err.contains("unknown field `cache_tll`"), "{err}");
    }

    #[test]
    fn backoff_delays() {
        assert_eq!(Backoff::Constant.delay_ms(100, 3), 100);
        assert_eq!(Backoff::Linear.delay_ms(100, 3), 300);
        assert_eq!(Backoff::Exponential.delay_ms(100, 3), 400);
    }
}
