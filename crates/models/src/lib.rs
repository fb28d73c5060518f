//! Transformer models on candle whose every projection is a swappable [`Linear`].
//!
//! `attention` is the lesson's from-scratch attention (masks, heads, costs); `bart` and `bert` are
//! Hugging Face-compatible models built from it; `generation` decodes with a KV cache.

pub mod attention;
pub mod error;
pub mod generation;
pub mod linear;

pub use error::{Error, Result};
pub use linear::{Linear, Linears, linear, linear_no_bias};
