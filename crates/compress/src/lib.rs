//! Low-rank surgery: replace a model's dense projections by SVD factors, measure what it cost,
//! and save the result so it loads back exactly.
//!
//! - [`svd`]: one layer, `W ≈ U·V` from the truncated SVD ([`factorize_svd`]);
//! - [`rank`]: how to choose the rank of a layer ([`RankRule`]: fixed, a parameter budget, or a
//!   share of the spectrum's energy);
//! - [`plan`] and [`surgery`]: which layers of a model ([`Plan`]), applied by [`compress_model`],
//!   which returns a [`Report`] (per layer: shape, rank, parameters, relative error);
//! - [`storage`]: `model.safetensors` with the factors under each layer's prefix plus a
//!   `compression.json` manifest ([`save_compressed`], [`load_compressed`]).
//!
//! The SVD itself is `lowrank::svd`'s (faer, in f64): this crate only moves tensors between candle
//! and ndarray and decides ranks.

pub mod error;
pub mod plan;
pub mod rank;
pub mod storage;
pub mod surgery;
pub mod svd;

pub use error::{Error, Result};
pub use plan::Plan;
pub use rank::RankRule;
pub use storage::{
    Manifest, load_compressed, load_compressed_bart, load_compressed_sentence_encoder,
    save_compressed,
};
pub use surgery::{LayerReport, Report, compress_model};
pub use svd::{factorize_svd, largest_useful_rank};
