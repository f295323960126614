//! A BERT encoder (the architecture of MiniLM and BGE) on candle's CPU
//! tensors: embeddings, N encoder layers, the last hidden state. Weights are
//! named as Hugging Face's `BertModel` saves them, with or without a
//! `bert.` prefix.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// The fields of `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    approximate_gelu: bool,
}

impl Bert {
    pub fn load(vb: VarBuilder<'_>, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let e = vb.pp("embeddings");
        let word = candle_nn::embedding(cfg.vocab_size, h, e.pp("word_embeddings"))?;
        let position =
            candle_nn::embedding(cfg.max_position_embeddings, h, e.pp("position_embeddings"))?;
        let token_type =
            candle_nn::embedding(cfg.type_vocab_size, h, e.pp("token_type_embeddings"))?;
        let emb_norm = candle_nn::layer_norm(h, eps, e.pp("LayerNorm"))?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            layers.push(Layer {
                query: candle_nn::linear(h, h, a.pp("self.query"))?,
                key: candle_nn::linear(h, h, a.pp("self.key"))?,
                value: candle_nn::linear(h, h, a.pp("self.value"))?,
                attn_out: candle_nn::linear(h, h, a.pp("output.dense"))?,
                attn_norm: candle_nn::layer_norm(h, eps, a.pp("output.LayerNorm"))?,
                intermediate: candle_nn::linear(
                    h,
                    cfg.intermediate_size,
                    l.pp("intermediate.dense"),
                )?,
                output: candle_nn::linear(cfg.intermediate_size, h, l.pp("output.dense"))?,
                out_norm: candle_nn::layer_norm(h, eps, l.pp("output.LayerNorm"))?,
            });
        }
        if cfg.num_attention_heads == 0 || !h.is_multiple_of(cfg.num_attention_heads) {
            candle_core::bail!("hidden_size {h} is not a multiple of num_attention_heads");
        }
        Ok(Self {
            word,
            position,
            token_type,
            emb_norm,
            layers,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            approximate_gelu: cfg.hidden_act == "gelu_new" || cfg.hidden_act == "gelu_pytorch_tanh",
        })
    }

    /// The last hidden state, `[batch, seq, hidden]`, of `ids` (`[batch,
    /// seq]`, u32) where `mask` (`[batch, seq]`, f32) is 1 on real tokens.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let positions = Tensor::arange(0u32, s as u32, ids.device())?;
        let types = Tensor::zeros((b, s), DType::U32, ids.device())?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .add(&self.token_type.forward(&types)?)?;
        let mut x = self.emb_norm.forward(&x)?;
        // 0 where a token may be attended to, a large negative where not.
        let bias = ((mask.ones_like()? - mask)? * -10_000.0)?.reshape((b, 1, 1, s))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for l in &self.layers {
            let split = |t: Tensor| -> Result<Tensor> {
                t.reshape((b, s, self.heads, self.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(l.query.forward(&x)?)?;
            let k = split(l.key.forward(&x)?)?;
            let v = split(l.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx =
                probs
                    .matmul(&v)?
                    .transpose(1, 2)?
                    .reshape((b, s, self.heads * self.head_dim))?;
            let attn = l.attn_norm.forward(&(l.attn_out.forward(&ctx)? + &x)?)?;
            let inter = l.intermediate.forward(&attn)?;
            let inter = if self.approximate_gelu {
                inter.gelu()?
            } else {
                inter.gelu_erf()?
            };
            x = l.out_norm.forward(&(l.output.forward(&inter)? + &attn)?)?;
        }
        Ok(x)
    }
}

/// Loads `model.safetensors` into a builder, finding the `bert.` prefix
/// some checkpoints carry.
pub fn var_builder(file: &std::path::Path) -> Result<VarBuilder<'static>> {
    let tensors = candle_core::safetensors::load(file, &Device::Cpu)?;
    let prefixed = tensors.contains_key("bert.embeddings.word_embeddings.weight");
    let tensors = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
        .collect::<Result<std::collections::HashMap<_, _>>>()?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    Ok(if prefixed { vb.pp("bert") } else { vb })
}
