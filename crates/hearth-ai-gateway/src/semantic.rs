//! The semantic cache, beyond Cloudflare and off unless a gateway's
//! `semantic_cache` turns it on: a request whose prompt text is close
//! enough in meaning to a cached request's, everything else being equal,
//! gets that request's cached answer.
//!
//! - The prompt text (chat messages, `system`, `prompt`, `input`) is
//!   embedded by a local Workers AI embedding model (hearth-ai).
//! - Vectors live in a Vectorize index (hearth-vectorize) of the gateway
//!   under `<data>/ai-gateway/vectorize/`, in a namespace that hashes all
//!   the rest: gateway, provider, path, credentials, the per-key identity
//!   and the body without its prompt text (model, temperature, tools...).
//!   A match is therefore never across tenants, keys or parameters.
//! - A vector's id is the exact-cache key of the answer it stands for: an
//!   answer gone from the exact cache (expired, evicted) is a miss.
//! - The index holds at most `max_entries` vectors, oldest out first.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hearth_core::{DataDir, SharedClock};
use hearth_vectorize::{
    IndexConfig, Indexer, Metric, NewVector, QueryOptions, VectorIndex, WriteMode,
};
use serde_json::Value;

use crate::cache::CacheKey;

/// Turns prompt text into a vector.
pub trait PromptEmbedder: Send + Sync + std::fmt::Debug {
    fn dimensions(&self) -> usize;
    fn embed(&self, text: &str) -> Result<Vec<f32>, String>;
}

/// A local embedding model (the files `[models.*] path` names in the AI
/// config), mean-pooled; long prompts are cut to what the model takes.
pub struct LocalEmbedder {
    model: hearth_ai::Embedder,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("dimensions", &self.model.dimensions())
            .finish()
    }
}

impl LocalEmbedder {
    pub fn load(dir: &Path) -> Result<Self, String> {
        hearth_ai::Embedder::load(&dir.display().to_string(), dir)
            .map(|model| Self { model })
            .map_err(|e| e.to_string())
    }
}

impl PromptEmbedder for LocalEmbedder {
    fn dimensions(&self) -> usize {
        self.model.dimensions()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        let mut v = self
            .model
            .embed(&[text.to_owned()], hearth_ai::Pooling::Mean, true)
            .map_err(|e| e.to_string())?;
        v.pop().ok_or_else(|| "the model answered no vector".into())
    }
}

/// The prompt text of a request body and the body without it (the part a
/// semantic match must equal exactly). `None` when there is no text.
pub fn split_prompt(body: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object_mut()?;
    let mut text = String::new();
    let mut take = |v: &mut Value, label: &str| {
        let mut found = String::new();
        collect_text(v, &mut found);
        if !found.is_empty() {
            text.push_str(label);
            text.push_str(": ");
            text.push_str(&found);
            text.push('\n');
        }
    };
    for field in ["system", "prompt", "input"] {
        if let Some(f) = obj.get_mut(field) {
            take(f, field);
        }
    }
    if let Some(Value::Array(messages)) = obj.get_mut("messages") {
        for m in messages {
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("user")
                .to_owned();
            if let Some(c) = m.get_mut("content") {
                take(c, &role);
            }
        }
    }
    if text.trim().is_empty() {
        return None;
    }
    Some((text, serde_json::to_vec(&v).ok()?))
}

/// Moves the text of `v` (a string, or parts with `text`) into `out`,
/// leaving empty strings behind.
fn collect_text(v: &mut Value, out: &mut String) {
    match v {
        Value::String(s) => {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(s);
            s.clear();
        }
        Value::Array(items) => {
            for i in items {
                collect_text(i, out);
            }
        }
        Value::Object(o) => {
            if let Some(t) = o.get_mut("text") {
                collect_text(t, out);
            }
        }
        _ => {}
    }
}

/// A miss, remembered to store its vector once its answer is cached.
#[derive(Debug, Clone)]
pub struct Probe {
    namespace: String,
    vector: Vec<f32>,
}

pub enum Lookup {
    /// The nearest cached request passes the threshold (the probe stores
    /// this one if that answer has left the exact cache).
    Hit {
        key: CacheKey,
        similarity: f64,
        probe: Probe,
    },
    Miss(Probe),
}

pub struct SemanticCache {
    threshold: f64,
    max_entries: usize,
    embedder: Arc<dyn PromptEmbedder>,
    index: Arc<VectorIndex>,
    _indexer: Indexer,
    /// Stored ids, oldest first, to hold the index to `max_entries`.
    ids: Mutex<VecDeque<String>>,
    /// Prompts stored since the cache opened.
    stored: AtomicU64,
}

impl std::fmt::Debug for SemanticCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticCache")
            .field("threshold", &self.threshold)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl SemanticCache {
    /// Opens (or creates) the gateway's index under `dir`; an index made
    /// for another model's dimensions is dropped and made again (it only
    /// holds a cache).
    pub fn open(
        dir: &Path,
        gateway: &str,
        threshold: f64,
        max_entries: usize,
        embedder: Arc<dyn PromptEmbedder>,
        clock: SharedClock,
    ) -> Result<Self, String> {
        let data = DataDir::new(dir);
        let name = format!(
            "semantic-{}",
            &hex::encode(crate::cache::key(&[gateway.as_bytes()]))[..16]
        );
        let config = IndexConfig {
            dimensions: embedder.dimensions(),
            metric: Metric::Cosine,
            description: Some(format!("AI Gateway {gateway:?} semantic cache")),
        };
        let existing = hearth_vectorize::open_index(&data, &name, clock.clone()).ok();
        let index = match existing {
            Some(ix) if ix.config().dimensions == config.dimensions => ix,
            other => {
                if other.is_some() {
                    drop(other);
                    hearth_vectorize::delete_index(&data, &name).map_err(|e| e.to_string())?;
                }
                hearth_vectorize::create_index(&data, &name, &config, clock)
                    .map_err(|e| e.to_string())?
            }
        };
        let index = Arc::new(index);
        let mut ids = VecDeque::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = index
                .list(index.limits().max_list_count, cursor.as_deref())
                .map_err(|e| e.to_string())?;
            let empty = page.ids.is_empty();
            ids.extend(page.ids);
            match page.next_cursor {
                Some(c) if !empty => cursor = Some(c),
                _ => break,
            }
        }
        let indexer = Indexer::spawn(index.clone()).map_err(|e| e.to_string())?;
        Ok(Self {
            threshold,
            max_entries,
            embedder,
            index,
            _indexer: indexer,
            ids: Mutex::new(ids),
            stored: AtomicU64::new(0),
        })
    }

    /// Embeds the prompt of `body` and looks for the nearest cached prompt
    /// in `scope`'s namespace. `None` when the body has no prompt text or
    /// embedding fails (then the request just goes on uncached by meaning).
    /// Blocking (the model runs on this thread).
    pub fn lookup(&self, scope: &[&[u8]], body: &[u8]) -> Option<Lookup> {
        let (text, rest) = split_prompt(body)?;
        let mut parts: Vec<&[u8]> = vec![b"semantic"];
        parts.extend_from_slice(scope);
        parts.push(&rest);
        let namespace = hex::encode(crate::cache::key(&parts));
        let vector = match self.embedder.embed(&text) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("AI Gateway semantic cache: embedding failed: {e}");
                return None;
            }
        };
        let query: Vec<f64> = vector.iter().map(|&x| f64::from(x)).collect();
        let options = QueryOptions {
            top_k: 1,
            namespace: Some(namespace.clone()),
            ..QueryOptions::default()
        };
        match self.index.query(&query, &options) {
            Ok(matches) => {
                if let Some(m) = matches.first()
                    && m.score >= self.threshold
                    && let Some(key) = hex::decode(&m.id)
                        .ok()
                        .and_then(|k| CacheKey::try_from(k.as_slice()).ok())
                {
                    return Some(Lookup::Hit {
                        key,
                        similarity: m.score,
                        probe: Probe { namespace, vector },
                    });
                }
            }
            Err(e) => tracing::warn!("AI Gateway semantic cache: query failed: {e}"),
        }
        Some(Lookup::Miss(Probe { namespace, vector }))
    }

    /// Stores a miss's vector under the exact-cache key its answer was
    /// cached with. Blocking (a committed Vectorize write).
    pub fn store(&self, probe: Probe, key: &CacheKey) {
        let id = hex::encode(key);
        let vector = NewVector {
            id: id.clone(),
            values: probe.vector.iter().map(|&x| f64::from(x)).collect(),
            namespace: Some(probe.namespace),
            metadata: None,
        };
        if let Err(e) = self.index.write_vectors(WriteMode::Upsert, &[vector], 1) {
            tracing::warn!("AI Gateway semantic cache: storing a vector failed: {e}");
            return;
        }
        // Under the lock, so the index never holds more than the bound
        // when stores race.
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if !ids.contains(&id) {
            ids.push_back(id);
        }
        let over = ids.len().saturating_sub(self.max_entries);
        let evict: Vec<String> = ids.drain(..over).collect();
        if !evict.is_empty() {
            let max = self.index.limits().max_ids.max(1);
            for chunk in evict.chunks(max) {
                if let Err(e) = self.index.delete_by_ids(chunk) {
                    tracing::warn!("AI Gateway semantic cache: dropping old vectors failed: {e}");
                }
            }
        }
        self.stored.fetch_add(1, Ordering::Relaxed);
    }

    /// Prompts the index holds, and prompts stored since it opened.
    pub fn counts(&self) -> (usize, u64) {
        let held = self.ids.lock().unwrap_or_else(|p| p.into_inner()).len();
        (held, self.stored.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_is_split_from_the_rest() {
        let a = br#"{"model":"m","temperature":0,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"What is the capital of France?"}]}"#;
        let b = br#"{"model":"m","temperature":0,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Tell me France's capital"}]}"#;
        let c = br#"{"model":"m","temperature":1,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#;
        let (ta, ra) = split_prompt(a).unwrap();
        let (tb, rb) = split_prompt(b).unwrap();
        let (_, rc) = split_prompt(c).unwrap();
        assert!(ta.contains("user: What is the capital of France?"), "{ta}");
        assert!(ta.contains("system: be brief"), "{ta}");
        assert!(tb.contains("Tell me"), "{tb}");
        assert_eq!(ra, rb, "only the text differs");
        assert_ne!(ra, rc, "temperature and messages differ");
        let parts = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}]}"#;
        assert!(split_prompt(parts).unwrap().0.contains("user: hello"));
        assert!(split_prompt(br#"{"model":"m"}"#).is_none());
        assert!(split_prompt(b"not json").is_none());
    }
}
