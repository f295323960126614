//! The AI config file (`hearth serve --ai-config ai.toml`): which model
//! names are local models and where their files are, and which go to a
//! provider. Weights are only ever read from the paths named here.
//!
//! ```toml
//! default_provider = "openai"          # optional: unlisted models go here
//!
//! [models."@cf/baai/bge-small-en-v1.5"]
//! path = "models/bge-small-en-v1.5"    # relative to this file
//!
//! [models."@cf/meta/llama-3.1-8b-instruct"]
//! provider = "openai"
//! model = "gpt-4o-mini"                # the provider's name; default: the same
//!
//! [providers.openai]
//! type = "openai"                      # or "anthropic"
//! url = "https://api.openai.com/v1"
//! api_key_env = "OPENAI_API_KEY"       # read by the binary at start
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;

/// The whole file, checked.
#[derive(Debug, Clone, Default)]
pub struct AiConfig {
    pub models: BTreeMap<String, ModelEntry>,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub default_provider: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelEntry {
    /// A local model directory in the sentence-transformers layout.
    Local { path: PathBuf },
    /// Routed to a provider, under the provider's model name.
    Provider { provider: String, model: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `POST {url}/chat/completions`.
    OpenAi,
    /// `POST {url}/messages` (Anthropic's Messages API).
    Anthropic,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub url: String,
    /// The variable the key is read from; the binary resolves it into
    /// `api_key` (no crate below it reads the environment).
    pub api_key_env: Option<String>,
    pub api_key: Option<String>,
    /// Longest wait for the provider, in milliseconds.
    pub timeout_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    default_provider: Option<String>,
    #[serde(default)]
    models: BTreeMap<String, RawModel>,
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    path: Option<String>,
    provider: Option<String>,
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    api_key_env: Option<String>,
    timeout_ms: Option<u64>,
}

impl AiConfig {
    /// Reads and checks `file`; relative model paths are resolved against
    /// the file's folder.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigError(format!("{}: {e}", file.display())))?;
        let base = file.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| ConfigError(format!("{}: {}", file.display(), e.0)))
    }

    /// Parses the file's text; `base` is where relative paths start.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        let mut providers = BTreeMap::new();
        for (name, p) in raw.providers {
            let kind = match p.kind.as_str() {
                "openai" => ProviderKind::OpenAi,
                "anthropic" => ProviderKind::Anthropic,
                other => {
                    return Err(ConfigError(format!(
                        "providers.{name}.type: \"{other}\" is not \"openai\" or \"anthropic\""
                    )));
                }
            };
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "providers.{name}.url: \"{}\" is not an http(s) URL",
                    p.url
                )));
            }
            providers.insert(
                name,
                ProviderConfig {
                    kind,
                    url: p.url.trim_end_matches('/').to_owned(),
                    api_key_env: p.api_key_env,
                    api_key: None,
                    timeout_ms: p.timeout_ms.unwrap_or(120_000),
                },
            );
        }
        let mut models = BTreeMap::new();
        for (name, m) in raw.models {
            let entry = match (m.path, m.provider) {
                (Some(path), None) => {
                    if m.model.is_some() {
                        return Err(ConfigError(format!(
                            "models.\"{name}\".model: only a provider's model has one"
                        )));
                    }
                    ModelEntry::Local {
                        path: base.join(path),
                    }
                }
                (None, Some(provider)) => {
                    if !providers.contains_key(&provider) {
                        return Err(ConfigError(format!(
                            "models.\"{name}\".provider: no [providers.{provider}] in this file"
                        )));
                    }
                    ModelEntry::Provider {
                        provider,
                        model: m.model.unwrap_or_else(|| name.clone()),
                    }
                }
                _ => {
                    return Err(ConfigError(format!(
                        "models.\"{name}\": needs exactly one of `path` (a local model) or `provider`"
                    )));
                }
            };
            models.insert(name, entry);
        }
        if let Some(p) = &raw.default_provider
            && !providers.contains_key(p)
        {
            return Err(ConfigError(format!(
                "default_provider: no [providers.{p}] in this file"
            )));
        }
        Ok(Self {
            models,
            providers,
            default_provider: raw.default_provider,
        })
    }
}
