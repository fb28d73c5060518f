//! Judging models: perplexity of seq2seq (and causal) models, and a token-overlap score with a
//! lead-k baseline until ROUGE lands (issue #8).
//!
//! `perplexity` scores what a model assigns to reference text; `overlap` scores what it generates
//! against a reference. Both take plain text and return plain numbers, so the CLI, notebooks and
//! training loops print them as they like.

pub mod error;
pub mod overlap;
pub mod perplexity;

pub use error::{Error, Result};
