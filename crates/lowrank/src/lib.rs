//! The linear algebra behind large language models, computed for real.
//!
//! `lowrank` is the math crate of the Lowrank course: every number a lesson prints comes from here.
//! It works on [`ndarray`] arrays of `f32` or `f64` (see [`Real`]) and covers
//!
//! - [`matrices`]: products with their FLOP counts, a FLOP/s measurement, memory of a matrix and its factors;
//! - [`svd`]: thin full, truncated and randomized SVD, reconstruction and the Eckart–Young errors;
//! - [`spectrum`]: energy kept, the rank for an energy threshold, effective rank;
//! - [`tucker`]: HOSVD and HOOI for N-way tensors, Tucker-2 of a matrix and its compression ratio;
//! - [`image`]: images compressed channel by channel with a truncated SVD, storage ratio and PSNR.
//!
//! ```
//! use lowrank::{ndarray::array, svd};
//!
//! let a = array![[3.0, 0.0], [0.0, 2.0], [0.0, 0.0]];
//! let decomposition = svd::svd(a.view())?;
//! assert_eq!(decomposition.s.to_vec(), vec![3.0, 2.0]);
//! let best_rank_one = decomposition.truncate(1)?;
//! assert!((svd::frobenius_norm((&a - &best_rank_one.reconstruct()).view()) - 2.0).abs() < 1e-12);
//! # Ok::<(), lowrank::Error>(())
//! ```

pub mod error;
pub mod image;
pub mod matrices;
pub mod spectrum;
pub mod svd;
pub mod tucker;

mod convert;
mod real;

pub use error::{Error, Result};
pub use ndarray;
pub use real::Real;
