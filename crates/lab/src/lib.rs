//! The notebooks' prelude: `use lab::*;` brings in the math, the plots, ndarray and seeded random data.
//!
//! The kernel's `init.evcxr` adds this crate with one `:dep`, so every lesson starts from the same
//! compiled crate and evcxr's cache builds it once for all notebooks.

pub use lowrank::{self, Error, image, matrices, spectrum, svd, tucker};
pub use ndarray::{self, Array1, Array2, ArrayD, Axis, IxDyn, array, s};
pub use viz;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A `rows × cols` matrix of standard normal values; the same seed gives the same matrix everywhere.
///
/// ```
/// let a = lab::gaussian_matrix(3, 2, 7);
/// assert_eq!(a.dim(), (3, 2));
/// assert_eq!(a, lab::gaussian_matrix(3, 2, 7));
/// ```
pub fn gaussian_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(&mut rng))
}

/// A tensor of the given shape filled with standard normal values, seeded.
///
/// ```
/// let x = lab::gaussian_tensor(&[2, 3, 4], 1);
/// assert_eq!(x.shape(), &[2, 3, 4]);
/// ```
pub fn gaussian_tensor(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || StandardNormal.sample(&mut rng))
}
