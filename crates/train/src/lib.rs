//! Training on candle's autograd: optimizers, learning-rate schedules, gradient clipping and
//! accumulation, the training loop, checkpoints and metrics logs; plus the generated
//! customer-service dialogue–summary set the course trains its small BART on.

pub mod checkpoint;
pub mod dialogues;
pub mod error;
pub mod metrics;
pub mod optim;
pub mod schedule;
pub mod summarizer;
pub mod trainer;

pub use error::{Error, Result};
