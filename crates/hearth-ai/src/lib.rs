//! Workers AI (`env.AI.run(model, inputs, options)`) on the machine itself.
//!
//! A model name is either a local text-embedding model, run on the CPU by
//! candle from files the AI config names (weights are never downloaded),
//! or routed to an OpenAI-compatible or Anthropic provider the config names
//! (text generation). Inputs are checked against the task's schema and
//! every failure is an [`AiError`] carrying Workers AI's internal code.
//!
//! The contract is synchronous: the runtime decides where it runs.

mod bert;
pub mod config;
pub mod embed;
pub mod error;
pub mod provider;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub use config::{AiConfig, ModelEntry, ProviderConfig, ProviderKind};
pub use embed::{Embedder, Pooling};
pub use error::{AiError, ConfigError};
pub use provider::{EventStream, ProviderRequest, SseTranslator};

/// Texts one embedding call takes (Workers AI's `maxItems` for `text`).
pub const MAX_TEXTS: usize = 100;

/// What `run` answers.
pub enum AiOutput {
    /// A JSON result (`{ shape, data, pooling }`, `{ response, usage }`).
    Json(Value),
    /// Server-sent events, pulled one at a time (`stream: true`).
    Stream(EventStream),
}

enum Route<'a> {
    Local(&'a std::path::Path),
    Provider(&'a provider::Provider, &'a str),
}

/// One model name as `hearth ai models` lists it.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    /// `local` or `provider <name> (<upstream model>)`.
    pub source: String,
    /// The files a local model reads, each with whether it is there.
    pub files: Vec<(PathBuf, bool)>,
}

/// The models of one AI config, loaded as they are first used.
pub struct Ai {
    config: AiConfig,
    providers: HashMap<String, Arc<provider::Provider>>,
    loaded: Mutex<HashMap<String, Arc<Embedder>>>,
}

impl Ai {
    pub fn new(config: AiConfig) -> Self {
        let providers = config
            .providers
            .iter()
            .map(|(name, p)| {
                (
                    name.clone(),
                    Arc::new(provider::Provider::new(name, p.clone())),
                )
            })
            .collect();
        Self {
            config,
            providers,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &AiConfig {
        &self.config
    }

    /// Every configured model name and what serves it.
    pub fn models(&self) -> Vec<ModelInfo> {
        let mut out = Vec::new();
        for (name, entry) in &self.config.models {
            out.push(match entry {
                ModelEntry::Local { path } => ModelInfo {
                    name: name.clone(),
                    source: "local".into(),
                    files: embed::model_files(path)
                        .into_iter()
                        .map(|f| {
                            let present = f.is_file();
                            (f, present)
                        })
                        .collect(),
                },
                ModelEntry::Provider { provider, model } => ModelInfo {
                    name: name.clone(),
                    source: format!("provider {provider} ({model})"),
                    files: Vec::new(),
                },
            });
        }
        out
    }

    /// The local embedding model `name`, loaded once.
    pub fn embedder(&self, name: &str, dir: &std::path::Path) -> Result<Arc<Embedder>, AiError> {
        if let Some(e) = self.lock().get(name) {
            return Ok(e.clone());
        }
        // Loaded outside the lock: two first calls may both load, and one wins.
        let e = Arc::new(Embedder::load(name, dir)?);
        Ok(self.lock().entry(name.to_owned()).or_insert(e).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Embedder>>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `model` on `inputs` (the second argument of `env.AI.run`).
    pub fn run(&self, model: &str, inputs: &Value) -> Result<AiOutput, AiError> {
        let (p, upstream) = match self.route(model)? {
            Route::Local(path) => {
                return self.run_embedding(model, path, inputs).map(AiOutput::Json);
            }
            Route::Provider(p, upstream) => (p, upstream),
        };
        let req = provider::parse_chat(inputs)?;
        if req.stream {
            p.stream(upstream, &req).map(AiOutput::Stream)
        } else {
            p.generate(upstream, &req).map(AiOutput::Json)
        }
    }

    /// The provider request `env.AI.run(model, inputs)` makes, for a caller
    /// that sends it itself (through an AI Gateway); `None` for a local
    /// model, which runs here ([`Self::run`]).
    pub fn provider_request(
        &self,
        model: &str,
        inputs: &Value,
    ) -> Result<Option<ProviderRequest>, AiError> {
        match self.route(model)? {
            Route::Local(_) => Ok(None),
            Route::Provider(p, upstream) => {
                let req = provider::parse_chat(inputs)?;
                Ok(Some(p.request(upstream, &req)))
            }
        }
    }

    fn route<'a>(&'a self, model: &'a str) -> Result<Route<'a>, AiError> {
        let (provider, upstream) = match self.config.models.get(model) {
            Some(ModelEntry::Local { path }) => return Ok(Route::Local(path)),
            Some(ModelEntry::Provider { provider, model }) => (provider.as_str(), model.as_str()),
            None => match &self.config.default_provider {
                Some(p) => (p.as_str(), model),
                None => return Err(AiError::NoSuchModel(model.to_owned())),
            },
        };
        let p = self
            .providers
            .get(provider)
            .ok_or_else(|| AiError::NoSuchModel(model.to_owned()))?;
        Ok(Route::Provider(p, upstream))
    }

    fn run_embedding(
        &self,
        model: &str,
        dir: &std::path::Path,
        inputs: &Value,
    ) -> Result<Value, AiError> {
        let req = parse_embedding(inputs)?;
        let e = self.embedder(model, dir)?;
        let vectors = e.embed(&req.texts, req.pooling, req.truncate)?;
        Ok(json!({
            "shape": [vectors.len(), e.dimensions()],
            "data": vectors,
            "pooling": req.pooling.as_str(),
        }))
    }
}

/// The checked inputs of a text-embedding call.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    pub texts: Vec<String>,
    pub pooling: Pooling,
    pub truncate: bool,
}

/// Checks `inputs` against the text-embedding schema (`text`: a string or
/// 1 to 100 strings; `pooling`: `"mean"` (default) or `"cls"`;
/// `truncate_inputs`: a boolean).
pub fn parse_embedding(inputs: &Value) -> Result<EmbeddingRequest, AiError> {
    use provider::json_type;
    let obj = inputs.as_object().ok_or_else(|| {
        AiError::BadInput(format!(
            "Type mismatch of '/', '{}' not in 'object'",
            json_type(inputs)
        ))
    })?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "text" | "pooling" | "truncate_inputs") {
            return Err(AiError::BadInput(format!(
                "Additional or unevaluated properties '/{k}' at '/' not allowed"
            )));
        }
    }
    let texts = match obj.get("text") {
        None => {
            return Err(AiError::BadInput(
                "required properties at '/' are 'text'".into(),
            ));
        }
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(AiError::BadInput(
                    "Array is too short (0 < 1) at '/text'".into(),
                ));
            }
            if items.len() > MAX_TEXTS {
                return Err(AiError::BadInput(format!(
                    "Array is too long ({} > {MAX_TEXTS}) at '/text'",
                    items.len()
                )));
            }
            let mut texts = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                match v {
                    Value::String(s) => texts.push(s.clone()),
                    v => {
                        return Err(AiError::BadInput(format!(
                            "Type mismatch of '/text/{i}', '{}' not in 'string'",
                            json_type(v)
                        )));
                    }
                }
            }
            texts
        }
        Some(v) => {
            return Err(AiError::BadInput(format!(
                "Type mismatch of '/text', '{}' not in 'string,array'",
                json_type(v)
            )));
        }
    };
    let pooling = match obj.get("pooling") {
        None => Pooling::Mean,
        Some(Value::String(s)) if s == "mean" => Pooling::Mean,
        Some(Value::String(s)) if s == "cls" => Pooling::Cls,
        Some(_) => {
            return Err(AiError::BadInput(
                "Value at '/pooling' is not one of 'mean', 'cls'".into(),
            ));
        }
    };
    let truncate = match obj.get("truncate_inputs") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(AiError::BadInput(format!(
                "Type mismatch of '/truncate_inputs', '{}' not in 'boolean'",
                json_type(v)
            )));
        }
    };
    Ok(EmbeddingRequest {
        texts,
        pooling,
        truncate,
    })
}

impl std::fmt::Debug for Ai {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ai")
            .field("models", &self.config.models.keys().collect::<Vec<_>>())
            .finish()
    }
}
