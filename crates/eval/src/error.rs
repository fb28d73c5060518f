//! The one error type of the eval crate: each variant names what the caller must change.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while scoring, with the offending values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing to score: an empty list of pairs, or pairs whose targets hold no token (a perplexity
    /// of zero tokens is 0/0).
    #[error("{what} is empty: nothing to score")]
    Empty { what: String },
    /// A parameter outside its valid range (a batch size of 0, say).
    #[error("{name} = {value} is invalid: {reason}")]
    InvalidArgument {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// The model, its tokenizer or its loss failed (shapes, vocabulary, files); the message is the
    /// models crate's, which names the tensor or file.
    #[error(transparent)]
    Model(#[from] models::Error),
}

impl From<candle_core::Error> for Error {
    /// Tensor errors go through the models crate's conversion, which turns candle's shape and
    /// missing-tensor errors into ones naming the tensor.
    fn from(error: candle_core::Error) -> Self {
        Error::Model(models::Error::from(error))
    }
}
