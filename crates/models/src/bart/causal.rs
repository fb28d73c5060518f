//! transformers `BartForCausalLM`: BART's decoder alone as a decoder-only language model. Each
//! layer skips its cross-attention (the checkpoint still holds those weights, unused, as
//! transformers' does), and the LM head reads the decoder's own token embedding.
//!
//! It is the course's causal model: what causal perplexity is checked on against transformers,
//! with the same blocks the seq2seq BART uses.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::checkpoint::checkpoint_var_builder;
use super::config::Config;
use super::model::{BartCache, Decoder};
use crate::attention::padding_mask;
use crate::error::{Error, Result, invalid};
use crate::linear::Linear;

/// BART's decoder with an LM head: logits of the next token at every position.
#[derive(Debug, Clone)]
pub struct BartForCausalLm {
    embed_tokens: Embedding,
    embed_scale: f64,
    decoder: Decoder,
    lm_head: Linear,
    layers: usize,
}

impl BartForCausalLm {
    /// Loads `model.decoder.*` and `lm_head.weight` (tied to `model.decoder.embed_tokens.weight`
    /// when the checkpoint leaves it out, as `save_pretrained` does for tied weights).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        cfg.validate()?;
        let decoder_vb = vb.pp("model").pp("decoder");
        if !decoder_vb.contains_tensor("embed_tokens.weight") {
            return Err(Error::MissingTensor {
                name: "model.decoder.embed_tokens.weight (a BartForCausalLM checkpoint)".into(),
            });
        }
        let embedding = decoder_vb.get((cfg.vocab_size, cfg.d_model), "embed_tokens.weight")?;
        let lm_weight = if vb.contains_tensor("lm_head.weight") {
            vb.get((cfg.vocab_size, cfg.d_model), "lm_head.weight")?
        } else {
            embedding.clone()
        };
        Ok(Self {
            embed_tokens: Embedding::new(embedding, cfg.d_model),
            embed_scale: if cfg.scale_embedding {
                (cfg.d_model as f64).sqrt()
            } else {
                1.0
            },
            decoder: Decoder::load(decoder_vb, cfg)?,
            lm_head: Linear::dense(lm_weight, None)?,
            layers: cfg.decoder_layers,
        })
    }

    /// Loads `dir/config.json` and `dir/model.safetensors`.
    pub fn from_dir(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let config = Config::from_json_file(&dir.join("config.json"))?;
        let path = dir.join("model.safetensors");
        let data = std::fs::read(&path).map_err(|source| Error::Io { path, source })?;
        Self::load(checkpoint_var_builder(data, dtype, device)?, &config)
    }

    /// Logits (b, s, vocab) of `input_ids` (b, s); `attention_mask` (b, s) holds 1 for tokens and
    /// 0 for padding, which no token attends to.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        if input_ids.dims() != attention_mask.dims() {
            return Err(invalid(format!(
                "input_ids {:?} and attention_mask {:?} must have one (batch, length) shape",
                input_ids.dims(),
                attention_mask.dims()
            )));
        }
        let mut tokens = self.embed_tokens.forward(input_ids)?;
        if self.embed_scale != 1.0 {
            tokens = (tokens * self.embed_scale)?;
        }
        let padding = padding_mask(attention_mask, tokens.dtype())?;
        let mut cache = BartCache {
            layers: vec![Default::default(); self.layers],
        };
        let hidden = self
            .decoder
            .forward(&tokens, None, Some(&padding), &mut cache)?;
        self.lm_head.forward(&hidden)
    }
}
