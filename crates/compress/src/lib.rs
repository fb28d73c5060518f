//! Low-rank surgery: replace a model's dense projections by SVD factors, measure what it cost,
//! and save the result so it loads back exactly.
//!
//! - [`svd`]: one layer, `W ≈ U·V` from the truncated SVD ([`factorize_svd`]), or by any
//!   [`Method`] ([`factorize`]);
//! - [`method`]: plain SVD, ASVD's activation scaling, SVD-LLM's whitening and FWSVD's Fisher
//!   row weights ([`Method`]);
//! - [`calibrate`](mod@calibrate): each selected layer's input statistics (`XᵀX`, `Σ|x|`) over
//!   forward passes the caller runs ([`calibrate()`], [`Calibration`]);
//! - [`fisher`]: each selected layer's Fisher row importances (squared gradients of a loss over
//!   calibration batches, through candle's autograd on a `VarMap`) for FWSVD
//!   ([`fisher_importance`], [`FisherStats`], [`compress_model_fisher`]);
//! - [`rank`]: how to choose the rank of a layer ([`RankRule`]: fixed, a parameter budget, or a
//!   share of the spectrum's energy);
//! - [`plan`] and [`surgery`]: which layers of a model ([`Plan`]), applied by [`compress_model`],
//!   or [`compress_model_calibrated`] for the activation-aware methods, which return a [`Report`]
//!   (per layer: shape, rank, parameters, relative error, output error on the calibration data);
//! - [`budget`]: a rank per layer under one parameter budget, spent greedily where it removes the
//!   most error per weight, by spectrum or measured sensitivity ([`layer_spectra`],
//!   [`measure_sensitivity`], [`allocate_ranks`], [`compress_with_allocation`]);
//! - [`design`]: the design space γ = (rank, layers, tensors), its size
//!   `|S| = (2^L − 1)(2^T − 1)·R + 1`, numbered points, grids and seeded samples;
//! - [`sweep`]: many (method, point) compressions logged one JSON line each, resumable, with CSV
//!   output and the Pareto front of size against quality;
//! - [`tucker2`]: Tucker-2 with factors shared across layers and tensors (`W_k ≈ U₁·Γ_k·U₂ᵀ`,
//!   [`compress_tucker2`]), the decomposition of the design-space study;
//! - [`storage`]: `model.safetensors` with the factors under each layer's prefix plus a
//!   `compression.json` manifest ([`save_compressed`], [`load_compressed`]).
//!
//! The SVD itself is `lowrank::svd`'s (faer, in f64): this crate only moves tensors between candle
//! and ndarray, decides ranks, and (in [`method`]) calls faer directly for the whitening's
//! Cholesky factor and triangular solve, which `lowrank` does not offer.

pub mod budget;
pub mod calibrate;
pub mod design;
pub mod error;
pub mod fisher;
pub mod method;
pub mod plan;
pub mod rank;
pub mod storage;
pub mod surgery;
pub mod svd;
pub mod sweep;
pub mod tucker2;

pub use budget::{
    Allocation, LayerAllocation, LayerSpectrum, Probe, Sensitivity, Spectra, allocate_ranks,
    compress_with_allocation, layer_spectra, measure_sensitivity,
};
pub use calibrate::{Calibration, calibrate, output_error};
pub use design::{DesignPoint, DesignSpace};
pub use error::{Error, Result};
pub use fisher::{
    FisherStats, LayerFisher, compress_model_fisher, factorize_fisher, fisher_importance,
    fisher_weighted_error,
};
pub use method::Method;
pub use plan::Plan;
pub use rank::RankRule;
pub use storage::{
    Manifest, load_compressed, load_compressed_bart, load_compressed_sentence_encoder,
    save_compressed,
};
pub use surgery::{
    LayerReport, Report, compress_model, compress_model_calibrated, linear_flops_per_token,
    linear_params,
};
pub use svd::{factorize, factorize_svd, largest_useful_rank};
pub use tucker2::{Sharing, Tucker2Options, compress_tucker2};
