//! BART's config.json, field for field as Hugging Face writes it, and the activations it names.

use std::path::Path;

use candle_core::Tensor;
use serde::Deserialize;

use crate::error::{Error, Result, invalid};
use crate::generation::SpecialTokens;

/// A BART config.json. Keys a file omits take transformers' `BartConfig` defaults
/// (<https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/bart/configuration_bart.py>),
/// so a hub config parses unchanged; keys this crate does not use (dropouts, labels) are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    #[serde(default = "default_layers")]
    pub encoder_layers: usize,
    #[serde(default = "default_layers")]
    pub decoder_layers: usize,
    #[serde(default = "default_heads")]
    pub encoder_attention_heads: usize,
    #[serde(default = "default_heads")]
    pub decoder_attention_heads: usize,
    #[serde(default = "default_ffn_dim")]
    pub encoder_ffn_dim: usize,
    #[serde(default = "default_ffn_dim")]
    pub decoder_ffn_dim: usize,
    /// `gelu` (exact, erf), `gelu_new` / `gelu_pytorch_tanh` (tanh approximation) or `relu`;
    /// checked when the model loads, so an unusual config still parses.
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Multiply token embeddings by √d_model (false for BART, true for mBART).
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default = "default_pad_token_id")]
    pub pad_token_id: u32,
    #[serde(default)]
    pub bos_token_id: u32,
    #[serde(default = "default_eos_token_id")]
    pub eos_token_id: u32,
    #[serde(default = "default_eos_token_id")]
    pub decoder_start_token_id: u32,
    #[serde(default)]
    pub forced_bos_token_id: Option<u32>,
    #[serde(default = "default_forced_eos_token_id")]
    pub forced_eos_token_id: Option<u32>,
    /// Read and ignored: BART is post-LayerNorm (transformers' BartModel ignores it too).
    #[serde(default)]
    pub normalize_before: Option<bool>,
    /// Read and ignored: transformers' current BART has no final encoder/decoder LayerNorm.
    #[serde(default)]
    pub add_final_layer_norm: Option<bool>,
    /// Generation defaults the checkpoint suggests; `None` leaves the decoder's own default.
    #[serde(default)]
    pub num_beams: Option<usize>,
    #[serde(default)]
    pub no_repeat_ngram_size: Option<usize>,
    #[serde(default)]
    pub early_stopping: Option<bool>,
    #[serde(default)]
    pub length_penalty: Option<f64>,
    #[serde(default)]
    pub min_length: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
}

fn default_vocab_size() -> usize {
    50265
}
fn default_d_model() -> usize {
    1024
}
fn default_layers() -> usize {
    12
}
fn default_heads() -> usize {
    16
}
fn default_ffn_dim() -> usize {
    4096
}
fn default_activation() -> String {
    "gelu".into()
}
fn default_max_position_embeddings() -> usize {
    1024
}
fn default_pad_token_id() -> u32 {
    1
}
fn default_eos_token_id() -> u32 {
    2
}
fn default_forced_eos_token_id() -> Option<u32> {
    Some(2)
}

impl Config {
    /// facebook/bart-base's config.json (<https://huggingface.co/facebook/bart-base/blob/main/config.json>).
    pub fn bart_base() -> Self {
        Self {
            vocab_size: 50265,
            d_model: 768,
            encoder_layers: 6,
            decoder_layers: 6,
            encoder_attention_heads: 12,
            decoder_attention_heads: 12,
            encoder_ffn_dim: 3072,
            decoder_ffn_dim: 3072,
            activation_function: "gelu".into(),
            max_position_embeddings: 1024,
            scale_embedding: false,
            pad_token_id: 1,
            bos_token_id: 0,
            eos_token_id: 2,
            decoder_start_token_id: 2,
            forced_bos_token_id: Some(0),
            forced_eos_token_id: Some(2),
            normalize_before: Some(false),
            add_final_layer_norm: Some(false),
            num_beams: Some(4),
            no_repeat_ngram_size: Some(3),
            early_stopping: Some(true),
            length_penalty: None,
            min_length: None,
            max_length: None,
        }
    }

    /// Parses a config.json; a syntax or type error becomes [`Error::Config`] naming the file.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn special_tokens(&self) -> SpecialTokens {
        SpecialTokens {
            bos_token_id: Some(self.bos_token_id),
            eos_token_id: self.eos_token_id,
            pad_token_id: self.pad_token_id,
            decoder_start_token_id: self.decoder_start_token_id,
            forced_bos_token_id: self.forced_bos_token_id,
            forced_eos_token_id: self.forced_eos_token_id,
        }
    }

    pub(crate) fn activation(&self) -> Result<Activation> {
        Activation::from_name(&self.activation_function)
    }

    /// Refuses sizes the model cannot be built with, naming the keys at fault.
    pub(crate) fn validate(&self) -> Result<()> {
        for (key, heads) in [
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
        ] {
            if heads == 0 || !self.d_model.is_multiple_of(heads) {
                return Err(invalid(format!(
                    "{key} = {heads} does not divide d_model = {}",
                    self.d_model
                )));
            }
        }
        self.activation().map(|_| ())
    }
}

/// The feed-forward nonlinearity, as transformers' `ACT2FN` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `gelu`: x·Φ(x) with the exact erf (PyTorch's `nn.GELU()`).
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Relu,
}

impl Activation {
    fn from_name(name: &str) -> Result<Self> {
        match name {
            "gelu" => Ok(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Self::GeluTanh),
            "relu" => Ok(Self::Relu),
            other => Err(invalid(format!(
                "activation_function {other:?} is not supported (use gelu, gelu_new, gelu_pytorch_tanh or relu)"
            ))),
        }
    }

    pub(crate) fn forward(self, xs: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Gelu => xs.gelu_erf()?,
            Self::GeluTanh => xs.gelu()?,
            Self::Relu => xs.relu()?,
        })
    }
}
