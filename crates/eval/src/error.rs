//! The one error type of the eval crate: each variant names what the caller must change.

use std::fmt;
use std::path::PathBuf;

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
    /// Two inputs that must pair up element by element have different lengths (truths and
    /// predictions, say).
    #[error("{what}: lengths differ ({left} vs {right}), need one entry of each per item")]
    LengthMismatch {
        what: String,
        left: usize,
        right: usize,
    },
    /// Two tensors that must be compared row by row have different shapes.
    #[error("{what}: shapes differ ({left:?} vs {right:?}), need the same shape")]
    ShapeMismatch {
        what: String,
        left: Vec<usize>,
        right: Vec<usize>,
    },
    /// A NaN or an infinity where a finite number is needed.
    #[error("{what} holds {value} at index {index}: need finite numbers")]
    NonFinite {
        what: String,
        index: usize,
        value: f64,
    },
    /// A class label at or beyond `n_classes`.
    #[error(
        "{what}[{index}] = {label} is out of range: with n_classes = {n_classes} labels are 0..{n_classes}"
    )]
    LabelOutOfRange {
        what: &'static str,
        index: usize,
        label: usize,
        n_classes: usize,
    },
    /// A measurement this system cannot make (no `/proc` outside Linux, no `nvidia-smi`).
    #[error("{what} is unavailable: {reason}")]
    Unavailable { what: &'static str, reason: String },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A data file was read but its content is wrong: where (`location`, when it is one line or
    /// item) and what.
    #[error("{source_name}{}: {reason}", at(.location))]
    Data {
        source_name: String,
        location: Option<DataLocation>,
        reason: String,
    },
    /// The model, its tokenizer or its loss failed (shapes, vocabulary, files); the message is the
    /// models crate's, which names the tensor or file.
    #[error(transparent)]
    Model(#[from] models::Error),
}

/// Where in a data file an [`Error::Data`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLocation {
    /// A line of a line-oriented file (JSONL), counted from 1 as editors do.
    Line(usize),
    /// An element of a JSON array, counted from 0 as JSON paths do (`data[3]`).
    Item(usize),
}

impl fmt::Display for DataLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataLocation::Line(line) => write!(f, "line {line}"),
            DataLocation::Item(index) => write!(f, "item {index}"),
        }
    }
}

/// ", line 3" after the file name, or nothing when the problem is the whole file.
fn at(location: &Option<DataLocation>) -> String {
    location.map(|l| format!(", {l}")).unwrap_or_default()
}

impl From<candle_core::Error> for Error {
    /// Tensor errors go through the models crate's conversion, which turns candle's shape and
    /// missing-tensor errors into ones naming the tensor.
    fn from(error: candle_core::Error) -> Self {
        Error::Model(models::Error::from(error))
    }
}
