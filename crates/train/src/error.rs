//! One error type for the training crate: each variant names the file, parameter or setting at
//! fault and, where there is one, the fix.

use std::path::PathBuf;

/// The crate's result; loss and batch closures return it too, so `?` works on model and candle
/// errors inside them.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything training can fail on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model error from a loss or evaluation closure (missing tensor, shape mismatch, bad label).
    #[error(transparent)]
    Model(#[from] models::Error),
    /// A tensor operation failed (inside a closure, or a device error).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A chart of the run could not be drawn or saved.
    #[error(transparent)]
    Plot(#[from] viz::Error),
    /// Reading or writing a file failed; `action` says what was being done to `path`.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A checkpoint directory lacks one of its files.
    #[error("checkpoint file {} is missing; a checkpoint directory holds {}", path.display(), crate::checkpoint::FILES.join(", "))]
    MissingFile { path: PathBuf },
    /// A file exists but cannot be parsed (truncated safetensors, bad JSON, unknown version).
    #[error("{} is damaged: {message}", path.display())]
    CorruptFile { path: PathBuf, message: String },
    /// The checkpoint was written for another model (or another optimizer): names and shapes must
    /// match the `VarMap` exactly.
    #[error("{} does not fit this run: {message}", path.display())]
    Mismatch { path: PathBuf, message: String },
    /// A `TrainerConfig` or optimizer setting out of range, or settings that need each other.
    #[error("invalid training config: {0}")]
    Config(String),
    /// The loss came back NaN or infinite; the optimizer step was not taken.
    #[error(
        "loss is {loss} at step {step}; lower the learning rate, set max_grad_norm, or train in f32"
    )]
    NonFiniteLoss { step: usize, loss: f64 },
    /// The gradients overflowed; the optimizer step was not taken.
    #[error(
        "gradient norm is {norm} at step {step}; lower the learning rate, set max_grad_norm, or train in f32"
    )]
    NonFiniteGradient { step: usize, norm: f64 },
    /// A closure returned something the trainer cannot use (a non-scalar loss, no token count).
    #[error("{0}")]
    InvalidArgument(String),
    /// Another thread panicked while holding the `VarMap`'s lock.
    #[error("the VarMap's lock is poisoned: a thread panicked while holding it")]
    Poisoned,
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// Maps an `io::Error` to `Error::Io` naming the action and the file.
pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
