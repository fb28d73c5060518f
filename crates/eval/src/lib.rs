//! Judging models and what compression did to them: perplexity of seq2seq and causal models,
//! ROUGE, a plain token-overlap score with a lead-k baseline, classification scores, the cosine
//! between original and compressed outputs, latency and memory, and a SAMSum-format loader.
//!
//! `perplexity` scores what a model assigns to reference text; `rouge` and `overlap` score what it
//! generates against a reference; `classification` scores predicted labels as scikit-learn does;
//! `similarity` compares two models' outputs directly. `timing` and `memory` measure the cost
//! that compression is meant to cut. All take plain text, labels, slices or tensors and return plain
//! numbers (the reports serializable), so the CLI, notebooks and training loops print them as they
//! like. `samsum` reads dialogue–summary data that users bring.

pub mod classification;
pub mod error;
pub mod memory;
pub mod overlap;
pub mod perplexity;
pub mod rouge;
pub mod samsum;
pub mod similarity;
pub mod timing;

pub use error::{Error, Result};
