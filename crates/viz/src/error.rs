//! The one error type of the crate: each variant names the chart, series or file at fault.

use std::path::PathBuf;

/// What went wrong, with the offending values.
///
/// Charts check their data before drawing, so bad input (no data, NaN, lengths that differ, a
/// non-positive value on a log scale) comes back as one of these rather than as a plotters panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A chart, series or image with nothing in it.
    #[error("{what} is empty")]
    Empty { what: String },
    /// A series whose x and y values differ in number, or labels that do not match their values.
    #[error("{what} has {left} {left_name} but {right} {right_name}")]
    LengthMismatch {
        what: String,
        left_name: &'static str,
        left: usize,
        right_name: &'static str,
        right: usize,
    },
    /// NaN or infinity in the data.
    #[error("{what} holds the non-finite value {value} at index {index}")]
    NonFinite {
        what: String,
        index: usize,
        value: f64,
    },
    /// A value a chart cannot take: 0 or below on a log scale, a negative singular value, or one so
    /// large that the axis range would overflow.
    #[error("{what} holds {value} at index {index}: {reason}")]
    OutOfRange {
        what: String,
        index: usize,
        value: f64,
        reason: &'static str,
    },
    /// A parameter outside its valid range (a colour range, a rank to mark, a column count).
    #[error("{name} = {value} is invalid: {reason}")]
    InvalidArgument {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// A table row with a different number of cells than the table has columns.
    #[error("table row {row} has {cells} cells but the table has {columns} columns")]
    RowLength {
        row: usize,
        cells: usize,
        columns: usize,
    },
    /// A picture size too small for the labels or too large to allocate.
    #[error("size {width}x{height} is out of range: width and height must be within {min}..={max}")]
    InvalidSize {
        width: u32,
        height: u32,
        min: u32,
        max: u32,
    },
    /// An output path whose extension names no format this value can be saved as.
    #[error("cannot save {path}: its extension {extension:?} must be one of {known}")]
    UnknownExtension {
        path: PathBuf,
        extension: String,
        known: &'static str,
    },
    /// A file-system error while saving.
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An image that cannot be decoded, or a pixel buffer that cannot be encoded as PNG.
    #[error("cannot {op} an image: {source}")]
    Image {
        op: &'static str,
        source: ::image::ImageError,
    },
    /// plotters failed to draw (or panicked: the message says so).
    #[error("cannot draw {what}: {message}")]
    Plot { what: String, message: String },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest magnitude a chart takes: axis ranges (the span plus padding) must stay finite, and
/// plotters loops forever on an infinite one.
pub(crate) const MAX_MAGNITUDE: f64 = 1e307;

/// Checks that `values` has elements and that all are finite and within ±[`MAX_MAGNITUDE`].
pub(crate) fn check_finite(what: &str, values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(Error::Empty {
            what: what.to_string(),
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: what.to_string(),
            index,
            value: values[index],
        });
    }
    match values.iter().position(|v| v.abs() > MAX_MAGNITUDE) {
        Some(index) => Err(Error::OutOfRange {
            what: what.to_string(),
            index,
            value: values[index],
            reason: "charts take values within ±1e307",
        }),
        None => Ok(()),
    }
}

/// Checks that x and y values pair up, have elements and are finite.
pub(crate) fn check_xy(what: &str, xs: &[f64], ys: &[f64]) -> Result<()> {
    if xs.len() != ys.len() {
        return Err(Error::LengthMismatch {
            what: what.to_string(),
            left_name: "x values",
            left: xs.len(),
            right_name: "y values",
            right: ys.len(),
        });
    }
    check_finite(&format!("{what}, x values"), xs)?;
    check_finite(&format!("{what}, y values"), ys)
}
