//! Copies between ndarray (the public API) and faer (the decompositions).
//!
//! A copy costs O(mn), negligible beside the O(mn·min(m, n)) of a decomposition, and keeps the
//! crate free of `unsafe` stride juggling.

use faer::{Mat, MatRef};
use ndarray::{Array2, ArrayView2};

use crate::Real;

pub(crate) fn to_faer<T: Real>(a: ArrayView2<T>) -> Mat<T> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

pub(crate) fn to_ndarray<T: Real>(m: MatRef<T>) -> Array2<T> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}
