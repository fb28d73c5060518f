//! Low-rank surgery: replace a model's dense projections by SVD factors, measure what it cost,
//! and save the result so it loads back exactly.
//!
//! - [`svd`]: one layer, `W ≈ U·V` from the truncated SVD ([`factorize_svd`]), or by any
//!   [`Method`] ([`factorize`]);
//! - [`method`]: plain SVD, ASVD's activation scaling and SVD-LLM's whitening ([`Method`]);
//! - [`calibrate`](mod@calibrate): each selected layer's input statistics (`XᵀX`, `Σ|x|`) over
//!   forward passes the caller runs ([`calibrate()`], [`Calibration`]);
//! - [`rank`]: how to choose the rank of a layer ([`RankRule`]: fixed, a parameter budget, or a
//!   share of the spectrum's energy);
//! - [`plan`] and [`surgery`]: which layers of a model ([`Plan`]), applied by [`compress_model`],
//!   or [`compress_model_calibrated`] for the activation-aware methods, which return a [`Report`]
//!   (per layer: shape, rank, parameters, relative error, output error on the calibration data);
//! - [`storage`]: `model.safetensors` with the factors under each layer's prefix plus a
//!   `compression.json` manifest ([`save_compressed`], [`load_compressed`]).
//!
//! The SVD itself is `lowrank::svd`'s (faer, in f64): this crate only moves tensors between candle
//! and ndarray, decides ranks, and (in [`method`]) calls faer directly for the whitening's
//! Cholesky factor and triangular solve, which `lowrank` does not offer.

pub mod calibrate;
pub mod error;
pub mod method;
pub mod plan;
pub mod rank;
pub mod storage;
pub mod surgery;
pub mod svd;

pub use calibrate::{Calibration, calibrate, output_error};
pub use error::{Error, Result};
pub use method::Method;
pub use plan::Plan;
pub use rank::RankRule;
pub use storage::{
    Manifest, load_compressed, load_compressed_bart, load_compressed_sentence_encoder,
    save_compressed,
};
pub use surgery::{LayerReport, Report, compress_model, compress_model_calibrated};
pub use svd::{factorize, factorize_svd, largest_useful_rank};
