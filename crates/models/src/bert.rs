//! BERT-family encoders (BERT, MiniLM) as Hugging Face's `BertModel`, and sentence embeddings as
//! sentence-transformers computes them (all-MiniLM-L6-v2: mean pooling, then L2 normalization).
//!
//! Every projection is a [`crate::linear::Linear`] named as in the checkpoint without its optional
//! `bert.` prefix (`encoder.layer.0.attention.self.query`), so `crate::linear::replace` swaps it.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use models::bert::{l2_normalize, mean_pool};
//!
//! // Two tokens and one pad: the mean skips the pad, the norm makes the length 1.
//! let hidden = Tensor::new(&[[[3.0f32, 0.0], [3.0, 8.0], [100.0, 100.0]]], &Device::Cpu)?;
//! let mask = Tensor::new(&[[1u32, 1, 0]], &Device::Cpu)?;
//! let pooled = mean_pool(&hidden, &mask)?;
//! assert_eq!(pooled.to_vec2::<f32>()?, [[3.0, 4.0]]);
//! assert_eq!(l2_normalize(&pooled)?.to_vec2::<f32>()?, [[0.6, 0.8]]);
//! # Ok::<(), models::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use crate::attention::{padding_mask, scaled_dot_product_attention};
use crate::error::{Error, Result, invalid};
use crate::linear::{Linear, Linears, linear};
use crate::tokenizer::{Encoded, Tokenizer};

/// The activation of the feed-forward block, by its config.json name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HiddenAct {
    /// Exact GELU, `x·Φ(x)` with the error function (transformers' `GELUActivation`).
    #[serde(rename = "gelu")]
    Gelu,
    /// GELU's tanh approximation (`NewGELUActivation`, `PytorchGELUTanh`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluNew,
    #[serde(rename = "relu")]
    Relu,
}

impl HiddenAct {
    fn forward(self, xs: &Tensor) -> Result<Tensor> {
        Ok(match self {
            HiddenAct::Gelu => xs.gelu_erf()?,
            HiddenAct::GeluNew => xs.gelu()?,
            HiddenAct::Relu => xs.relu()?,
        })
    }
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/configuration_bert.py
/// `BertConfig` as config.json spells it; keys a file omits take `BertConfig`'s defaults
/// (bert-base-uncased's sizes). Dropout and initializer settings are ignored: inference only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "default_hidden_size")]
    pub hidden_size: usize,
    #[serde(default = "default_num_hidden_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "default_num_attention_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "default_intermediate_size")]
    pub intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: HiddenAct,
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Unused at inference (it only zeroes a gradient in training); transformers 5 may write null.
    #[serde(default = "default_pad_token_id")]
    pub pad_token_id: Option<usize>,
    /// Only `"absolute"` is implemented; loading refuses `relative_key` and the like.
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

fn default_vocab_size() -> usize {
    30522
}
fn default_hidden_size() -> usize {
    768
}
fn default_num_hidden_layers() -> usize {
    12
}
fn default_num_attention_heads() -> usize {
    12
}
fn default_intermediate_size() -> usize {
    3072
}
fn default_hidden_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn default_max_position_embeddings() -> usize {
    512
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_pad_token_id() -> Option<usize> {
    Some(0)
}
fn default_position_embedding_type() -> String {
    "absolute".to_string()
}

impl Config {
    /// https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/blob/main/config.json
    pub fn all_minilm_l6_v2() -> Self {
        Config {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            hidden_act: HiddenAct::Gelu,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            position_embedding_type: "absolute".to_string(),
        }
    }

    /// https://huggingface.co/google-bert/bert-base-uncased/blob/main/config.json
    pub fn bert_base_uncased() -> Self {
        Config {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            ..Config::all_minilm_l6_v2()
        }
    }

    /// Reads and checks a config.json: [`Error::Io`] if unreadable, [`Error::Config`] if it does
    /// not parse or asks for what this file does not implement.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Config = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.check().map_err(|message| Error::Config {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(candle_nn::layer_norm(size, eps, vb)?)
}

fn embedding(n: usize, size: usize, vb: VarBuilder) -> Result<Embedding> {
    Ok(candle_nn::embedding(n, size, vb)?)
}

/// `t` cast to `dtype` and back: what storing the weights in `dtype` costs.
fn round_through(t: &Tensor, dtype: DType) -> Result<Tensor> {
    Ok(t.to_dtype(dtype)?.to_dtype(t.dtype())?)
}

fn round_layer_norm(ln: &LayerNorm, dtype: DType) -> Result<LayerNorm> {
    let bias = ln
        .bias()
        .ok_or_else(|| invalid("BERT layer norms have a bias"))?;
    Ok(LayerNorm::new(
        round_through(ln.weight(), dtype)?,
        round_through(bias, dtype)?,
        ln.eps(),
    ))
}

fn round_linear(layer: &Linear, dtype: DType, model_dtype: DType) -> Result<Linear> {
    layer.to_dtype(dtype)?.to_dtype(model_dtype)
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L180
#[derive(Debug, Clone)]
struct BertEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
}

impl BertEmbeddings {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(BertEmbeddings {
            word_embeddings: embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("word_embeddings"))?,
            position_embeddings: embedding(
                cfg.max_position_embeddings,
                cfg.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type_embeddings: embedding(
                cfg.type_vocab_size,
                cfg.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    /// (b, s) ids → (b, s, h): word + absolute position (0..s) + token type, then LayerNorm.
    fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor) -> Result<Tensor> {
        let (_b_sz, seq_len) = input_ids.dims2()?;
        let words = self.word_embeddings.forward(input_ids)?;
        let types = self.token_type_embeddings.forward(token_type_ids)?;
        let position_ids = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        let positions = self.position_embeddings.forward(&position_ids)?;
        let xs = (words + types)?.broadcast_add(&positions)?;
        crate::norm::layer_norm(&self.layer_norm, &xs)
    }

    fn rounded(&self, dtype: DType) -> Result<Self> {
        let round = |e: &Embedding| -> Result<Embedding> {
            Ok(Embedding::new(
                round_through(e.embeddings(), dtype)?,
                e.hidden_size(),
            ))
        };
        Ok(BertEmbeddings {
            word_embeddings: round(&self.word_embeddings)?,
            position_embeddings: round(&self.position_embeddings)?,
            token_type_embeddings: round(&self.token_type_embeddings)?,
            layer_norm: round_layer_norm(&self.layer_norm, dtype)?,
        })
    }
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L226
#[derive(Debug, Clone)]
struct BertSelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    num_attention_heads: usize,
    attention_head_size: usize,
}

impl BertSelfAttention {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(BertSelfAttention {
            query: linear(h, h, vb.pp("query"))?,
            key: linear(h, h, vb.pp("key"))?,
            value: linear(h, h, vb.pp("value"))?,
            num_attention_heads: cfg.num_attention_heads,
            attention_head_size: cfg.head_dim(),
        })
    }

    /// (b, s, h) → (b, n_heads, s, head_dim).
    fn split_heads(&self, xs: &Tensor) -> Result<Tensor> {
        let (b_sz, seq_len, _) = xs.dims3()?;
        Ok(xs
            .reshape((
                b_sz,
                seq_len,
                self.num_attention_heads,
                self.attention_head_size,
            ))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b_sz, seq_len, hidden) = xs.dims3()?;
        let q = self.split_heads(&self.query.forward(xs)?)?;
        let k = self.split_heads(&self.key.forward(xs)?)?;
        let v = self.split_heads(&self.value.forward(xs)?)?;
        let context = scaled_dot_product_attention(&q, &k, &v, Some(mask))?;
        // (b, n_heads, s, head_dim) → (b, s, h)
        Ok(context
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b_sz, seq_len, hidden))?)
    }
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L376
/// `dense` then LayerNorm over the residual: `BertSelfOutput` and `BertOutput` alike.
#[derive(Debug, Clone)]
struct BertOutput {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl BertOutput {
    fn load(vb: VarBuilder, in_dim: usize, cfg: &Config) -> Result<Self> {
        Ok(BertOutput {
            dense: linear(in_dim, cfg.hidden_size, vb.pp("dense"))?,
            layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let xs = self.dense.forward(xs)?;
        crate::norm::layer_norm(&self.layer_norm, &(xs + residual)?)
    }

    fn rounded(&self, dtype: DType, model_dtype: DType) -> Result<Self> {
        Ok(BertOutput {
            dense: round_linear(&self.dense, dtype, model_dtype)?,
            layer_norm: round_layer_norm(&self.layer_norm, dtype)?,
        })
    }
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L392
#[derive(Debug, Clone)]
struct BertAttention {
    /// `self` in the checkpoint (`attention.self.query`), a Rust keyword.
    self_attention: BertSelfAttention,
    output: BertOutput,
}

impl BertAttention {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(BertAttention {
            self_attention: BertSelfAttention::load(vb.pp("self"), cfg)?,
            output: BertOutput::load(vb.pp("output"), cfg.hidden_size, cfg)?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let context = self.self_attention.forward(xs, mask)?;
        self.output.forward(&context, xs)
    }
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L441
#[derive(Debug, Clone)]
struct BertIntermediate {
    dense: Linear,
    intermediate_act_fn: HiddenAct,
}

impl BertIntermediate {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(BertIntermediate {
            dense: linear(cfg.hidden_size, cfg.intermediate_size, vb.pp("dense"))?,
            intermediate_act_fn: cfg.hidden_act,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.intermediate_act_fn.forward(&self.dense.forward(xs)?)
    }
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L470
#[derive(Debug, Clone)]
struct BertLayer {
    attention: BertAttention,
    intermediate: BertIntermediate,
    output: BertOutput,
}

impl BertLayer {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(BertLayer {
            attention: BertAttention::load(vb.pp("attention"), cfg)?,
            intermediate: BertIntermediate::load(vb.pp("intermediate"), cfg)?,
            output: BertOutput::load(vb.pp("output"), cfg.intermediate_size, cfg)?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let attention_output = self.attention.forward(xs, mask)?;
        // (b, s, h) → (b, s, intermediate) → (b, s, h)
        let intermediate = self.intermediate.forward(&attention_output)?;
        self.output.forward(&intermediate, &attention_output)
    }

    fn rounded(&self, dtype: DType, model_dtype: DType) -> Result<Self> {
        let attn = &self.attention.self_attention;
        let round = |layer: &Linear| round_linear(layer, dtype, model_dtype);
        Ok(BertLayer {
            attention: BertAttention {
                self_attention: BertSelfAttention {
                    query: round(&attn.query)?,
                    key: round(&attn.key)?,
                    value: round(&attn.value)?,
                    ..attn.clone()
                },
                output: self.attention.output.rounded(dtype, model_dtype)?,
            },
            intermediate: BertIntermediate {
                dense: round(&self.intermediate.dense)?,
                intermediate_act_fn: self.intermediate.intermediate_act_fn,
            },
            output: self.output.rounded(dtype, model_dtype)?,
        })
    }
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L556
#[derive(Debug, Clone)]
struct BertEncoder {
    layer: Vec<BertLayer>,
}

impl BertEncoder {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let layer = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(vb.pp(format!("layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(BertEncoder { layer })
    }
}

/// Where a checkpoint keeps the encoder: bare `BertModel` weights (`embeddings.…`, as
/// sentence-transformers saves them) or under `bert.` (`BertForMaskedLM` and other heads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BertWeightPrefix {
    None,
    Bert,
}

impl BertWeightPrefix {
    const PROBE: &'static str = "embeddings.word_embeddings.weight";

    /// Looks for `embeddings.word_embeddings.weight`, then `bert.embeddings.word_embeddings.weight`.
    pub fn detect(vb: &VarBuilder) -> Result<Self> {
        if vb.contains_tensor(Self::PROBE) {
            Ok(BertWeightPrefix::None)
        } else if vb.pp("bert").contains_tensor(Self::PROBE) {
            Ok(BertWeightPrefix::Bert)
        } else {
            Err(Error::MissingTensor {
                name: format!("{} (nor bert.{})", Self::PROBE, Self::PROBE),
            })
        }
    }

    /// `vb` moved under the prefix.
    pub fn apply<'a>(self, vb: VarBuilder<'a>) -> VarBuilder<'a> {
        match self {
            BertWeightPrefix::None => vb,
            BertWeightPrefix::Bert => vb.pp("bert"),
        }
    }
}

// https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L874
/// Hugging Face's `BertModel` without its pooler: ids in, last hidden state out.
#[derive(Debug, Clone)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    encoder: BertEncoder,
    config: Config,
}

impl BertModel {
    /// Loads from `vb`, with or without the `bert.` prefix ([`BertWeightPrefix::detect`]). Dtype
    /// and device are `vb`'s.
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        cfg.check().map_err(invalid)?;
        let vb = BertWeightPrefix::detect(&vb)?.apply(vb);
        Ok(BertModel {
            embeddings: BertEmbeddings::load(vb.pp("embeddings"), cfg)?,
            encoder: BertEncoder::load(vb.pp("encoder"), cfg)?,
            config: cfg.clone(),
        })
    }

    /// Loads `model.safetensors` with `cfg`, read into memory (no mmap: the workspace forbids
    /// unsafe). A missing file is [`Error::Io`]; a missing or misshapen tensor names its key.
    pub fn from_safetensors(
        path: impl AsRef<Path>,
        cfg: &Config,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let tensors = read_safetensors(path.as_ref())?;
        Self::load(VarBuilder::from_tensors(tensors, dtype, device), cfg)
    }

    /// `dir/config.json` and `dir/model.safetensors`.
    pub fn from_dir(dir: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let cfg = Config::from_file(dir.join("config.json"))?;
        Self::from_safetensors(dir.join("model.safetensors"), &cfg, dtype, device)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        self.embeddings.word_embeddings.embeddings().device()
    }

    pub fn dtype(&self) -> DType {
        self.embeddings.word_embeddings.embeddings().dtype()
    }

    /// The same model with every weight rounded to `dtype` and back (f16 for the parity fixture,
    /// which sentence-transformers computed from an fp16 copy of the weights); compute stays in
    /// the model's dtype.
    pub fn with_weights_rounded_to(&self, dtype: DType) -> Result<Self> {
        let model_dtype = self.dtype();
        Ok(BertModel {
            embeddings: self.embeddings.rounded(dtype)?,
            encoder: BertEncoder {
                layer: self
                    .encoder
                    .layer
                    .iter()
                    .map(|layer| layer.rounded(dtype, model_dtype))
                    .collect::<Result<Vec<_>>>()?,
            },
            config: self.config.clone(),
        })
    }

    /// `last_hidden_state` (b, s, h) for `input_ids` (b, s) and `attention_mask` (b, s) of 1 for
    /// tokens and 0 for padding (u32 or i64 both; any device, moved to the model's);
    /// `token_type_ids` default to 0.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b_sz, seq_len) = input_ids.dims2()?;
        if attention_mask.dims() != [b_sz, seq_len] {
            return Err(invalid(format!(
                "attention_mask has shape {:?}, expected [{b_sz}, {seq_len}] like input_ids",
                attention_mask.dims()
            )));
        }
        if seq_len > self.config.max_position_embeddings {
            return Err(invalid(format!(
                "{seq_len} tokens exceed max_position_embeddings {}; truncate the input (Tokenizer::with_max_length)",
                self.config.max_position_embeddings
            )));
        }
        let device = self.device().clone();
        let input_ids = input_ids.to_device(&device)?;
        let token_type_ids = match token_type_ids {
            Some(ids) if ids.dims() != [b_sz, seq_len] => {
                return Err(invalid(format!(
                    "token_type_ids has shape {:?}, expected [{b_sz}, {seq_len}] like input_ids",
                    ids.dims()
                )));
            }
            Some(ids) => ids.to_device(&device)?,
            None => Tensor::zeros((b_sz, seq_len), DType::U32, &device)?,
        };
        // (b, 1, 1, s): 0 for tokens, the dtype's lowest for padding, added to every query's scores.
        let mask = padding_mask(&attention_mask.to_device(&device)?, self.dtype())?;
        let mut xs = self.embeddings.forward(&input_ids, &token_type_ids)?;
        for layer in &self.encoder.layer {
            xs = layer.forward(&xs, &mask)?;
        }
        Ok(xs)
    }
}

impl Linears for BertModel {
    fn linears(&self) -> Vec<(String, &Linear)> {
        let mut all = Vec::with_capacity(6 * self.encoder.layer.len());
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let attn = &layer.attention;
            let prefix = format!("encoder.layer.{i}");
            all.push((
                format!("{prefix}.attention.self.query"),
                &attn.self_attention.query,
            ));
            all.push((
                format!("{prefix}.attention.self.key"),
                &attn.self_attention.key,
            ));
            all.push((
                format!("{prefix}.attention.self.value"),
                &attn.self_attention.value,
            ));
            all.push((
                format!("{prefix}.attention.output.dense"),
                &attn.output.dense,
            ));
            all.push((
                format!("{prefix}.intermediate.dense"),
                &layer.intermediate.dense,
            ));
            all.push((format!("{prefix}.output.dense"), &layer.output.dense));
        }
        all
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut all = Vec::with_capacity(6 * self.encoder.layer.len());
        for (i, layer) in self.encoder.layer.iter_mut().enumerate() {
            let BertLayer {
                attention,
                intermediate,
                output,
            } = layer;
            let BertAttention {
                self_attention,
                output: attention_output,
            } = attention;
            let prefix = format!("encoder.layer.{i}");
            all.push((
                format!("{prefix}.attention.self.query"),
                &mut self_attention.query,
            ));
            all.push((
                format!("{prefix}.attention.self.key"),
                &mut self_attention.key,
            ));
            all.push((
                format!("{prefix}.attention.self.value"),
                &mut self_attention.value,
            ));
            all.push((
                format!("{prefix}.attention.output.dense"),
                &mut attention_output.dense,
            ));
            all.push((
                format!("{prefix}.intermediate.dense"),
                &mut intermediate.dense,
            ));
            all.push((format!("{prefix}.output.dense"), &mut output.dense));
        }
        all
    }
}

/// Reads a safetensors file into memory: unreadable or malformed files are [`Error::Io`] naming it.
fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // A map rather than VarBuilder::from_buffered_safetensors: its missing key surfaces as a
    // safetensors error, while the map's is candle's CannotFindTensor, which names the full key.
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// How token states become one sentence vector (sentence-transformers' `Pooling` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over real tokens (`pooling_mode_mean_tokens`), as all-MiniLM-L6-v2.
    Mean,
    /// The first token's state, `[CLS]` (`pooling_mode_cls_token`).
    Cls,
}

/// The mean of `last_hidden_state` (b, s, h) over positions where `attention_mask` (b, s) is 1,
/// in f32: (b, h). sentence-transformers divides by the token count clamped to 1e-9.
pub fn mean_pool(last_hidden_state: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
    let (b_sz, seq_len, _) = last_hidden_state.dims3()?;
    let mask = attention_mask
        .to_device(last_hidden_state.device())?
        .to_dtype(DType::F32)?
        .reshape((b_sz, seq_len, 1))?;
    let summed = last_hidden_state
        .to_dtype(DType::F32)?
        .broadcast_mul(&mask)?
        .sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    Ok(summed.broadcast_div(&counts)?)
}

/// Each row of `xs` (n, h) divided by its L2 norm (at least 1e-12, as torch's `F.normalize`).
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    let norms = xs
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    Ok(xs.broadcast_div(&norms)?)
}

/// sentence-transformers' `modules.json` entry.
#[derive(Debug, Deserialize)]
struct StModule {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// sentence-transformers' `1_Pooling/config.json`.
#[derive(Debug, Deserialize)]
struct StPoolingConfig {
    word_embedding_dimension: Option<usize>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

/// sentence-transformers' `sentence_bert_config.json`.
#[derive(Debug, Deserialize)]
struct StTransformerConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The pipeline `modules.json` describes: pooling and whether to normalize. Absent, it is
/// all-MiniLM-L6-v2's (mean, normalized).
fn read_modules(dir: &Path, hidden_size: usize) -> Result<(Pooling, bool)> {
    let modules_path = dir.join("modules.json");
    if !modules_path.exists() {
        return Ok((Pooling::Mean, true));
    }
    let modules: Vec<StModule> = read_json(&modules_path)?;
    let config_error = |message: String| Error::Config {
        path: modules_path.clone(),
        message,
    };
    let mut pooling = None;
    let mut normalize = false;
    for module in &modules {
        match module.kind.as_str() {
            "sentence_transformers.models.Transformer" => {}
            "sentence_transformers.models.Pooling" => {
                pooling = Some(read_pooling(
                    &dir.join(&module.path).join("config.json"),
                    hidden_size,
                )?);
            }
            "sentence_transformers.models.Normalize" => normalize = true,
            other => {
                return Err(config_error(format!(
                    "module {other} is not supported (Transformer, Pooling and Normalize are)"
                )));
            }
        }
    }
    let pooling = pooling
        .ok_or_else(|| config_error("no sentence_transformers.models.Pooling module".into()))?;
    Ok((pooling, normalize))
}

fn read_pooling(path: &Path, hidden_size: usize) -> Result<Pooling> {
    let cfg: StPoolingConfig = read_json(path)?;
    let config_error = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    if let Some(dim) = cfg.word_embedding_dimension
        && dim != hidden_size
    {
        return Err(config_error(format!(
            "word_embedding_dimension {dim} differs from the model's hidden_size {hidden_size}"
        )));
    }
    let modes = [
        ("pooling_mode_cls_token", cfg.pooling_mode_cls_token),
        ("pooling_mode_mean_tokens", cfg.pooling_mode_mean_tokens),
        ("pooling_mode_max_tokens", cfg.pooling_mode_max_tokens),
        (
            "pooling_mode_mean_sqrt_len_tokens",
            cfg.pooling_mode_mean_sqrt_len_tokens,
        ),
        (
            "pooling_mode_weightedmean_tokens",
            cfg.pooling_mode_weightedmean_tokens,
        ),
        ("pooling_mode_lasttoken", cfg.pooling_mode_lasttoken),
    ];
    let on: Vec<&str> = modes
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
    match on.as_slice() {
        ["pooling_mode_mean_tokens"] => Ok(Pooling::Mean),
        ["pooling_mode_cls_token"] => Ok(Pooling::Cls),
        other => Err(config_error(format!(
            "pooling {other:?} is not supported (exactly one of pooling_mode_mean_tokens, pooling_mode_cls_token)"
        ))),
    }
}

/// Sentence embeddings as sentence-transformers computes them: tokenize (truncating to
/// `max_seq_length`), run the [`BertModel`], pool over real tokens, L2-normalize.
#[derive(Debug, Clone)]
pub struct SentenceEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    normalize: bool,
    do_lower_case: bool,
    batch_size: usize,
}

impl SentenceEncoder {
    /// Texts per forward pass unless [`SentenceEncoder::with_batch_size`] says otherwise
    /// (sentence-transformers' `encode` default).
    pub const DEFAULT_BATCH_SIZE: usize = 32;

    /// all-MiniLM-L6-v2's pipeline (mean pooling, normalized) over `model` and `tokenizer`, which
    /// keeps its own truncation.
    pub fn new(model: BertModel, tokenizer: Tokenizer) -> Self {
        SentenceEncoder {
            model,
            tokenizer,
            pooling: Pooling::Mean,
            normalize: true,
            do_lower_case: false,
            batch_size: Self::DEFAULT_BATCH_SIZE,
        }
    }

    /// A sentence-transformers directory: config.json, model.safetensors and tokenizer.json, and
    /// when present modules.json (with its Pooling config; absent: mean pooling, normalized) and
    /// sentence_bert_config.json (`max_seq_length`, else the model's `max_position_embeddings`).
    pub fn from_dir(dir: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let model = BertModel::from_dir(dir, dtype, device)?;
        let (pooling, normalize) = read_modules(dir, model.config().hidden_size)?;
        let st_config_path = dir.join("sentence_bert_config.json");
        let st_config = if st_config_path.exists() {
            read_json(&st_config_path)?
        } else {
            StTransformerConfig {
                max_seq_length: None,
                do_lower_case: false,
            }
        };
        let max_seq_length = st_config
            .max_seq_length
            .unwrap_or(model.config().max_position_embeddings);
        let tokenizer = Tokenizer::from_dir(dir)?.with_max_length(Some(max_seq_length))?;
        Ok(SentenceEncoder {
            pooling,
            normalize,
            do_lower_case: st_config.do_lower_case,
            ..SentenceEncoder::new(model, tokenizer)
        })
    }

    /// Downloads config.json, model.safetensors, tokenizer.json and, when the repository has
    /// them, sentence-transformers' modules.json, its Pooling config and sentence_bert_config.json
    /// (e.g. `sentence-transformers/all-MiniLM-L6-v2`), then loads as [`SentenceEncoder::from_dir`].
    #[cfg(feature = "hub")]
    pub fn from_hub(repo_id: &str, dtype: DType, device: &Device) -> Result<Self> {
        let api = hf_hub::api::sync::Api::new().map_err(|e| hub_error(repo_id, "", e))?;
        let repo = api.model(repo_id.to_string());
        let get = |file: &str| repo.get(file).map_err(|e| hub_error(repo_id, file, e));
        let config = get("config.json")?;
        get("model.safetensors")?;
        get("tokenizer.json")?;
        // Optional files: a repository without them is a plain BERT checkpoint, so a failed
        // download counts as absent; from_dir then reports anything that is still missing.
        let _ = get("sentence_bert_config.json");
        if let Ok(modules) = get("modules.json") {
            let modules: Vec<StModule> = read_json(&modules)?;
            for module in modules.iter().filter(|m| m.kind.ends_with(".Pooling")) {
                get(&format!("{}/config.json", module.path))?;
            }
        }
        let dir = config
            .parent()
            .ok_or_else(|| invalid(format!("{} has no parent folder", config.display())))?;
        Self::from_dir(dir, dtype, device)
    }

    /// Embeds at most `batch_size` texts per forward pass (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// See [`BertModel::with_weights_rounded_to`].
    pub fn with_weights_rounded_to(mut self, dtype: DType) -> Result<Self> {
        self.model = self.model.with_weights_rounded_to(dtype)?;
        Ok(self)
    }

    pub fn model(&self) -> &BertModel {
        &self.model
    }

    pub fn model_mut(&mut self) -> &mut BertModel {
        &mut self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// Embedding size (384 for MiniLM).
    pub fn dim(&self) -> usize {
        self.model.config().hidden_size
    }

    /// Embeddings (n, h) in f32 for `sentences`, in order, `batch_size` at a time; unit length
    /// when the pipeline normalizes. Padding does not change a sentence's embedding.
    pub fn embed(&self, sentences: &[&str]) -> Result<Tensor> {
        if sentences.is_empty() {
            return Ok(Tensor::zeros(
                (0, self.dim()),
                DType::F32,
                self.model.device(),
            )?);
        }
        let mut batches = Vec::with_capacity(sentences.len().div_ceil(self.batch_size));
        for chunk in sentences.chunks(self.batch_size) {
            batches.push(self.embed_encoded(&self.encode(chunk)?)?);
        }
        Ok(Tensor::cat(&batches, 0)?)
    }

    /// Tokenizes one batch as the pipeline does (lower-cased first when its config says so),
    /// padded to the longest sentence.
    pub fn encode(&self, sentences: &[&str]) -> Result<Encoded> {
        if self.do_lower_case {
            let lowered: Vec<String> = sentences.iter().map(|s| s.to_lowercase()).collect();
            let lowered: Vec<&str> = lowered.iter().map(String::as_str).collect();
            self.tokenizer.encode_batch(&lowered, true)
        } else {
            self.tokenizer.encode_batch(sentences, true)
        }
    }

    /// The pooled sentence vectors (b, h) in f32 before any normalization: the features a
    /// classifier head reads. Gradients flow through it, so LoRA layers inside train.
    pub fn pooled(&self, encoded: &Encoded) -> Result<Tensor> {
        let hidden = self.model.forward(
            &encoded.input_ids,
            &encoded.attention_mask,
            Some(&encoded.token_type_ids),
        )?;
        match self.pooling {
            Pooling::Mean => mean_pool(&hidden, &encoded.attention_mask),
            Pooling::Cls => Ok(hidden.narrow(1, 0, 1)?.squeeze(1)?.to_dtype(DType::F32)?),
        }
    }

    /// Embeddings (b, h) in f32 for an already tokenized batch.
    pub fn embed_encoded(&self, encoded: &Encoded) -> Result<Tensor> {
        let pooled = self.pooled(encoded)?;
        if self.normalize {
            l2_normalize(&pooled)
        } else {
            Ok(pooled)
        }
    }
}

impl Linears for SentenceEncoder {
    fn linears(&self) -> Vec<(String, &Linear)> {
        self.model.linears()
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        self.model.linears_mut()
    }
}

#[cfg(feature = "hub")]
fn hub_error(repo_id: &str, file: &str, error: hf_hub::api::sync::ApiError) -> Error {
    Error::Io {
        path: std::path::PathBuf::from(format!("hf://{repo_id}/{file}")),
        source: std::io::Error::other(error.to_string()),
    }
}
