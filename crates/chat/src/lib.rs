//! Lowrank's customer-service chatbot.
//!
//! - [`data`]: the embedded intent set (with replies), Banking77 CSV and CLINC150 JSON loaders;
//! - [`model`]: MiniLM (optionally with LoRA) + a linear head, top-k and an out-of-scope threshold;
//! - [`training`]: the linear probe (frozen baseline), LoRA fine-tuning, threshold calibration;
//! - [`evaluate`]: accuracy, macro-F1, per-intent scores, confusion matrix;
//! - [`dialogue`]: replies, slot questions, clarification, hand-off, sessions with expiry;
//! - [`server`]: the HTTP API and chat page (axum); [`load`]: its load test.

pub mod data;
pub mod dialogue;
pub mod error;
pub mod evaluate;
pub mod load;
pub mod model;
pub mod server;
pub mod training;

pub use error::{Error, Result};
