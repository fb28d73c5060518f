//! Transformer models on candle whose every projection is a swappable [`Linear`].
//!
//! `attention` is the lesson's from-scratch attention (masks, heads, costs); `bart` and `bert` are
//! Hugging Face-compatible models built from it; `generation` decodes with a KV cache.

pub mod atomic_dir;
pub mod attention;
pub mod bart;
pub mod bert;
pub mod error;
pub mod generation;
pub mod linear;
pub mod lora;
pub mod loss;
mod norm;
pub mod tokenizer;

/// candle itself, so users of this crate name its tensors and devices without a second dependency.
pub use candle_core as candle;
pub use error::{Error, Result};
pub use linear::{Linear, Linears, linear, linear_no_bias};
