//! One error type for the models crate: each variant names what the user must fix.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tensor {name} is missing from the checkpoint")]
    MissingTensor { name: String },
    #[error("tensor {name} has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("no linear layer named {name}; {hint}")]
    UnknownLayer { name: String, hint: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("tokenizer: {message}")]
    Tokenizer { message: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for Error {
    /// candle reports a missing or misshapen weight through its own variants; they become ours, so
    /// a user sees the tensor's name and both shapes whatever wrapped the error on the way.
    fn from(error: candle_core::Error) -> Self {
        match error {
            candle_core::Error::CannotFindTensor { path } => Error::MissingTensor { name: path },
            // candle's buffered safetensors backend reports a missing key as the format's error.
            candle_core::Error::SafeTensor(safetensors::SafeTensorError::TensorNotFound(name)) => {
                Error::MissingTensor { name }
            }
            candle_core::Error::UnexpectedShape { msg, expected, got } => Error::ShapeMismatch {
                name: msg
                    .strip_prefix("shape mismatch for ")
                    .unwrap_or(&msg)
                    .to_string(),
                expected: expected.dims().to_vec(),
                actual: got.dims().to_vec(),
            },
            candle_core::Error::WithBacktrace { inner, .. } => Error::from(*inner),
            candle_core::Error::Context { inner, .. } => Error::from(*inner),
            candle_core::Error::WithPath { inner, .. } => Error::from(*inner),
            other => Error::Candle(other),
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}
