//! Moves between ndarray (the public API) and faer (the decompositions).
//!
//! Contiguous arrays are handed to faer as views without a copy (row-major ones as a transposed
//! column-major view); anything else is copied once into standard layout. Results come back
//! column-major, faer's own order, so the copy out reads memory in sequence.

use faer::{Mat, MatRef};
use ndarray::{Array2, ArrayView2, ShapeBuilder};

use crate::Real;

/// Calls `f` with a faer view of `a`, copying only when `a` is not contiguous.
pub(crate) fn with_faer<T: Real, R>(a: ArrayView2<T>, f: impl FnOnce(MatRef<'_, T>) -> R) -> R {
    let (m, n) = a.dim();
    if let Some(row_major) = a.to_slice() {
        return f(MatRef::from_row_major_slice(row_major, m, n));
    }
    if let Some(column_major) = a.t().to_slice() {
        return f(MatRef::from_column_major_slice(column_major, m, n));
    }
    f(to_faer(a).as_ref())
}

pub(crate) fn to_faer<T: Real>(a: ArrayView2<T>) -> Mat<T> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

pub(crate) fn to_ndarray<T: Real>(m: MatRef<T>) -> Array2<T> {
    Array2::from_shape_fn((m.nrows(), m.ncols()).f(), |(i, j)| m[(i, j)])
}
