//! The chat crate's one error type: each variant says what to fix, naming the file, line or field.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A data file that does not parse: the file, where in it, and what is wrong.
    #[error("{}: {location}: {message}", path.display())]
    Data {
        path: PathBuf,
        location: String,
        message: String,
    },
    /// A file or folder that cannot be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A setting or request the caller must change.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Model(#[from] models::Error),
    #[error(transparent)]
    Train(#[from] train::Error),
    #[error(transparent)]
    Eval(#[from] eval::Error),
}

impl From<models::candle::Error> for Error {
    fn from(error: models::candle::Error) -> Self {
        Error::Model(error.into())
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

pub(crate) fn io_error(
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
