//! One error type for the compress crate: each variant names the layer, value or file at fault and
//! says what to change.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rank that cannot be used, or that would not save anything, for an (out, in) layer.
    #[error(
        "rank {rank} does not fit a {in_dim}→{out_dim} layer ({dense_params} weights; rank {rank} \
         would store {factored_params}): {reason}; choose a rank in 1..={max_useful}"
    )]
    InvalidRank {
        rank: usize,
        in_dim: usize,
        out_dim: usize,
        dense_params: usize,
        factored_params: usize,
        /// The largest rank whose factors hold fewer numbers than the dense weight.
        max_useful: usize,
        reason: &'static str,
    },
    /// A Tucker-2 rank that cannot be used, or would not save anything, for a group of `count`
    /// (out×in) matrices sharing their factors.
    #[error(
        "rank {rank} does not fit Tucker-2 group {group} ({count} matrices of {in_dim}→{out_dim}, \
         {dense_params} weights; rank {rank} would store {factored_params}): {reason}; choose a \
         rank in 1..={max_useful}"
    )]
    InvalidGroupRank {
        group: String,
        rank: usize,
        count: usize,
        out_dim: usize,
        in_dim: usize,
        dense_params: usize,
        factored_params: usize,
        max_useful: usize,
        reason: &'static str,
    },
    /// A sweep log that cannot be read or extended.
    #[error("sweep log {}: {reason}", path.display())]
    Sweep { path: PathBuf, reason: String },
    /// A design space or grid that cannot be enumerated.
    #[error("design space: {reason}")]
    InvalidDesignSpace { reason: String },
    /// Matrices that cannot share Tucker-2 factors.
    #[error("Tucker-2 group {group}: {reason}")]
    Tucker2Group { group: String, reason: String },
    /// A layer that is already factorized (or wrapped by LoRA) where a dense one is needed.
    #[error(
        "only dense layers can be factorized, this one is {kind}; merge a LoRA layer first \
         (Linear::merged) or leave the layer out of the plan"
    )]
    NotDense { kind: &'static str },
    /// A rank rule whose value is out of range.
    #[error("invalid rank rule {rule}: {reason}")]
    InvalidRule { rule: String, reason: String },
    /// A method whose parameter is out of range, or a name that is no method.
    #[error("invalid method {method:?}: {reason}")]
    InvalidMethod { method: String, reason: String },
    /// Calibration statistics that are missing, empty or unusable for a layer.
    #[error("calibration: {reason}")]
    Calibration { reason: String },
    /// A plan that selects nothing, or a pattern that matches no layer.
    #[error("{what} matches no linear layer; the model has {count} of them, e.g. {examples}")]
    NoMatch {
        what: String,
        count: usize,
        examples: String,
    },
    /// An error about one layer of a model, with the layer's name in front.
    #[error("{name}: {source}")]
    Layer { name: String, source: Box<Error> },
    /// A compressed checkpoint whose manifest or tensors do not fit together or the model.
    #[error("{} does not describe this model: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// Reading or writing a file failed; `action` says what was being done to `path`.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A model error (missing tensor, shape mismatch, unknown layer name).
    #[error(transparent)]
    Model(#[from] models::Error),
    /// The SVD or the spectrum code refused its input (non-finite weights, empty matrix).
    #[error(transparent)]
    Math(#[from] lowrank::Error),
}

impl From<candle_core::Error> for Error {
    /// Through models' conversion, so a missing or misshapen tensor is named with both shapes.
    fn from(error: candle_core::Error) -> Self {
        Error::Model(models::Error::from(error))
    }
}

impl Error {
    /// This error, prefixed with the layer it concerns.
    pub(crate) fn in_layer(self, name: &str) -> Error {
        Error::Layer {
            name: name.to_string(),
            source: Box::new(self),
        }
    }
}

/// A closure turning an `std::io::Error` on `path` into [`Error::Io`].
pub(crate) fn io(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
