//! The one error type of the crate: each variant carries the values a user needs to fix the call.

use std::path::PathBuf;

/// What went wrong, with the offending values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rank of 0, or one above what the matrix can have.
    #[error("rank {rank} is out of range for a {rows}x{cols} matrix: choose 1..={max}")]
    RankOutOfRange {
        rank: usize,
        rows: usize,
        cols: usize,
        max: usize,
    },
    /// An input with no elements.
    #[error("{what} is empty (shape {shape:?})")]
    Empty { what: String, shape: Vec<usize> },
    /// An input holding NaN or infinity.
    #[error("{what} holds the non-finite value {value} at index {index:?}")]
    NonFinite {
        what: String,
        index: Vec<usize>,
        value: f64,
    },
    /// Two inputs whose shapes do not fit together.
    #[error("shapes do not fit in {op}: {left:?} and {right:?}")]
    ShapeMismatch {
        op: String,
        left: Vec<usize>,
        right: Vec<usize>,
    },
    /// A parameter outside its valid range (an energy threshold, a tolerance, a size).
    #[error("{name} = {value} is invalid: {reason}")]
    InvalidArgument {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// Tucker ranks that do not match the tensor.
    #[error("tucker ranks {ranks:?} do not fit a tensor of shape {shape:?}: {reason}")]
    TuckerRanks {
        ranks: Vec<usize>,
        shape: Vec<usize>,
        reason: String,
    },
    /// The decomposition backend failed to converge.
    #[error("{op} did not converge on a {rows}x{cols} matrix")]
    NoConvergence {
        op: &'static str,
        rows: usize,
        cols: usize,
    },
    /// An image file that cannot be opened or decoded.
    #[error("cannot read image {path}: {source}")]
    ImageRead {
        path: PathBuf,
        source: ::image::ImageError,
    },
    /// An image that cannot be encoded or written.
    #[error("cannot write image {path}: {source}")]
    ImageWrite {
        path: PathBuf,
        source: ::image::ImageError,
    },
    /// An output path whose extension names no image format the crate can write.
    #[error("cannot write image {path}: its extension must be one of {known}")]
    UnsupportedImageFormat {
        path: PathBuf,
        extension: String,
        known: String,
    },
    /// A file-system error while saving.
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A sample name the library does not know.
    #[error("unknown sample image {name:?}: known samples are {known}")]
    UnknownSample { name: String, known: String },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks that an array has elements and that all are finite.
pub(crate) fn check_finite<'a, T, D>(what: &str, a: &ndarray::ArrayView<'a, T, D>) -> Result<()>
where
    T: crate::Real,
    D: ndarray::Dimension,
{
    if a.is_empty() {
        return Err(Error::Empty {
            what: what.to_string(),
            shape: a.shape().to_vec(),
        });
    }
    match a.indexed_iter().find(|(_, x)| !x.is_finite()) {
        Some((index, value)) => Err(Error::NonFinite {
            what: what.to_string(),
            index: ndarray::IntoDimension::into_dimension(index)
                .as_array_view()
                .to_vec(),
            value: value.as_f64(),
        }),
        None => Ok(()),
    }
}

/// Checks `1 <= rank <= min(rows, cols)`.
pub(crate) fn check_rank(rank: usize, rows: usize, cols: usize) -> Result<()> {
    let max = rows.min(cols);
    if rank == 0 || rank > max {
        return Err(Error::RankOutOfRange {
            rank,
            rows,
            cols,
            max,
        });
    }
    Ok(())
}
