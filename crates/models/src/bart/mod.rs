//! BART (encoder–decoder) as Hugging Face transformers implements it, on [`crate::linear::Linear`].
//!
//! `config` is config.json; `model` the blocks and `Bart` (BartForConditionalGeneration) with its
//! KV-cached decoding; `causal` the decoder alone as a language model (BartForCausalLM); `checkpoint` loading from a directory or the hub; `synthetic` hash-defined
//! weights for tests and parity fixtures of any size.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarBuilder;
//! use models::bart::{Bart, Config, synthetic_weights};
//!
//! let cfg = Config { vocab_size: 32, d_model: 16, encoder_layers: 1, decoder_layers: 1,
//!     encoder_attention_heads: 2, decoder_attention_heads: 2, encoder_ffn_dim: 32,
//!     decoder_ffn_dim: 32, max_position_embeddings: 16, ..Config::bart_base() };
//! let weights = synthetic_weights(&cfg, &Device::Cpu)?;
//! let model = Bart::load(VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu), &cfg)?;
//! let ids = Tensor::new(&[[0u32, 5, 7, 2]], &Device::Cpu)?;
//! let mask = Tensor::ones((1, 4), DType::U32, &Device::Cpu)?;
//! let logits = model.forward(&ids, &mask, &Tensor::new(&[[2u32, 0]], &Device::Cpu)?)?;
//! assert_eq!(logits.dims(), [1, 2, 32]);
//! # Ok::<(), models::Error>(())
//! ```

mod causal;
mod checkpoint;
mod config;
mod model;
mod synthetic;

pub use causal::BartForCausalLm;
pub use config::Config;
pub use model::{Bart, BartCache, LayerCache};
pub use synthetic::{synthetic_values, synthetic_weights};
