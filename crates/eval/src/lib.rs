//! Judging models: perplexity of seq2seq and causal models, ROUGE, and a plain token-overlap
//! score with a lead-k baseline.
//!
//! `perplexity` scores what a model assigns to reference text; `rouge` and `overlap` score what it
//! generates against a reference. Both take plain text and return plain numbers, so the CLI, notebooks and
//! training loops print them as they like.

pub mod error;
pub mod overlap;
pub mod perplexity;
pub mod rouge;

pub use error::{Error, Result};
