//! The notebooks' prelude and the lessons' own code: `use lab::*;` brings in the math, the models,
//! the plots, ndarray and seeded random data; `lab::<lesson>` holds what one lesson adds (its
//! exercises and their checkers, and the book's figures for it).
//!
//! The kernel's `init.evcxr` adds this crate with one `:dep`, so every lesson starts from the same
//! compiled crate and evcxr's cache builds it once for all notebooks.

pub mod exercise;

pub mod attention;
pub mod chatbot;
pub mod compressing_bart;
pub mod decoding;
pub mod design_space;
pub mod lora;
pub mod matrices_and_flops;
pub mod neural_networks;
pub mod svd_on_images;
pub mod transformer;
pub mod tucker;

pub use candle_core::{self as candle, DType, Device, Tensor};
pub use candle_nn;
pub use exercise::Verdict;
pub use lowrank::{self, Error, image, matrices, spectrum, svd};
pub use ndarray::{self, Array1, Array2, Array3, ArrayD, Axis, IxDyn, array, s};
pub use {chat, compress, eval, models, train, viz};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The result type of lesson helpers and book figures: any error, with its message.
pub type LessonResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

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
