//! A local text-embedding model: a directory in the sentence-transformers
//! layout (`config.json`, `model.safetensors`, `tokenizer.json`, and
//! optionally `sentence_bert_config.json` for the longest input and
//! `modules.json` naming a `Normalize` step), run on the CPU.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

use crate::bert::{Bert, BertConfig, var_builder};
use crate::error::AiError;

/// The files a local embedding model loads from.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// How token vectors become one vector per text (Workers AI's `pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

/// Texts run through the encoder together; longer inputs are split into
/// batches of this many, shortest first so padding stays small.
const BATCH: usize = 16;

pub struct Embedder {
    bert: Bert,
    tokenizer: Tokenizer,
    /// Longest input in tokens (`max_seq_length`, else the positions).
    max_tokens: usize,
    normalize: bool,
    dim: usize,
}

/// The files of `dir` that a model needs and does not have.
pub fn missing_files(dir: &Path) -> Vec<&'static str> {
    REQUIRED_FILES
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect()
}

impl Embedder {
    /// Loads the model in `dir`; `name` is used in errors.
    pub fn load(name: &str, dir: &Path) -> Result<Self, AiError> {
        let missing = missing_files(dir);
        if !missing.is_empty() {
            return Err(AiError::MissingFiles {
                model: name.to_owned(),
                files: missing.join(", "),
            });
        }
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            AiError::Internal(format!("model {name}: {what}: {e}"))
        };
        let read = |f: &str| -> Result<String, AiError> {
            std::fs::read_to_string(dir.join(f)).map_err(|e| internal(f, &e))
        };
        let cfg: BertConfig =
            serde_json::from_str(&read("config.json")?).map_err(|e| internal("config.json", &e))?;
        let vb = var_builder(&dir.join("model.safetensors"))
            .map_err(|e| internal("model.safetensors", &e))?;
        let bert = Bert::load(vb, &cfg).map_err(|e| internal("model.safetensors", &e))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| internal("tokenizer.json", &e))?;
        // Batches are padded here, and length is checked here.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| internal("tokenizer.json", &e))?;
        let max_tokens = optional_json(dir, "sentence_bert_config.json")
            .and_then(|v| v.get("max_seq_length")?.as_u64())
            .map(|n| n as usize)
            .unwrap_or(cfg.max_position_embeddings)
            .min(cfg.max_position_embeddings);
        let normalize = optional_json(dir, "modules.json")
            .and_then(|v| {
                v.as_array().map(|steps| {
                    steps.iter().any(|s| {
                        s.get("type")
                            .and_then(|t| t.as_str())
                            .is_some_and(|t| t.ends_with(".Normalize"))
                    })
                })
            })
            .unwrap_or(false);
        Ok(Self {
            bert,
            tokenizer,
            max_tokens,
            normalize,
            dim: cfg.hidden_size,
        })
    }

    pub fn dimensions(&self) -> usize {
        self.dim
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// One vector per text, in order. A text longer than the model takes
    /// is cut when `truncate` is set and refused otherwise.
    pub fn embed(
        &self,
        texts: &[String],
        pooling: Pooling,
        truncate: bool,
    ) -> Result<Vec<Vec<f32>>, AiError> {
        let mut encoded = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let enc = self
                .tokenizer
                .encode(text.as_str(), true)
                .map_err(|e| AiError::InvalidInput(format!("text {i}: {e}")))?;
            let mut ids = enc.get_ids().to_vec();
            if ids.len() > self.max_tokens {
                if !truncate {
                    return Err(AiError::InvalidInput(format!(
                        "text {i} is {} tokens, above the model's {}; set truncate_inputs to cut it",
                        ids.len(),
                        self.max_tokens
                    )));
                }
                // Keep [CLS] ... and the closing [SEP], as the tokenizer's
                // own truncation does.
                let last = ids[ids.len() - 1];
                ids.truncate(self.max_tokens - 1);
                ids.push(last);
            }
            encoded.push(ids);
        }
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut out = vec![Vec::new(); encoded.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            let vectors = self
                .run_batch(&batch, pooling)
                .map_err(|e| AiError::Internal(e.to_string()))?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn run_batch(&self, batch: &[&[u32]], pooling: Pooling) -> candle_core::Result<Vec<Vec<f32>>> {
        let seq = batch.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * seq);
        let mut mask = Vec::with_capacity(batch.len() * seq);
        for b in batch {
            ids.extend_from_slice(b);
            ids.extend(std::iter::repeat_n(0u32, seq - b.len()));
            mask.extend(std::iter::repeat_n(1f32, b.len()));
            mask.extend(std::iter::repeat_n(0f32, seq - b.len()));
        }
        let dev = Device::Cpu;
        let ids = Tensor::from_vec(ids, (batch.len(), seq), &dev)?;
        let mask = Tensor::from_vec(mask, (batch.len(), seq), &dev)?;
        let hidden = self.bert.forward(&ids, &mask)?;
        let pooled = match pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                let m = mask.unsqueeze(2)?.to_dtype(DType::F32)?;
                let sum = hidden.broadcast_mul(&m)?.sum(1)?;
                let count = m.sum(1)?.clamp(1e-9, f64::MAX)?;
                sum.broadcast_div(&count)?
            }
        };
        let pooled = if self.normalize {
            let norm = pooled
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?;
            pooled.broadcast_div(&norm)?
        } else {
            pooled
        };
        pooled.to_vec2::<f32>()
    }
}

fn optional_json(dir: &Path, file: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The files a model directory holds that Hearth reads, for `hearth ai models`.
pub fn model_files(dir: &Path) -> Vec<PathBuf> {
    REQUIRED_FILES
        .iter()
        .chain(["sentence_bert_config.json", "modules.json"].iter())
        .map(|f| dir.join(f))
        .collect()
}
