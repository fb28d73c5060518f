//! How a layer's weight is truncated: plainly, or weighted by the data it meets.
//!
//! Plain truncated SVD minimizes `‖W − W_r‖_F`, every entry counting the same. The weighted
//! methods truncate `T·W·S` instead of `W` and map the factors back with `T⁻¹` on the left and
//! `S⁻¹` on the right ([`Statistics`] says what each reads):
//!
//! - Input side, from activations. A layer only ever sees its activations `X` (rows = tokens), and
//!   what matters is the output error `‖X·(W − W_r)ᵀ‖_F = ‖(W − W_r)·S‖_F` for any `S` with
//!   `S·Sᵀ = XᵀX`:
//!   - [`Method::Asvd`] (ASVD, Yuan et al. 2023): `S = diag(mean|x_j|^α)`, a per-channel scale that
//!     protects the input channels with large activations (outlier channels); `α = 0` is plain
//!     SVD.
//!   - [`Method::Whitened`] (SVD-LLM, Wang et al. 2024): `S = L`, the Cholesky factor of `XᵀX`
//!     (plus a small ridge), which makes the truncation minimize the output error on the
//!     calibration data exactly: `‖(W − W_r)·L‖_F` is the tail of the singular values of `W·L`
//!     (Eckart–Young).
//! - Output side, from gradients. [`Method::Fisher`] (FWSVD, Hsu et al. 2022): `T = diag(√I_i)`,
//!   `I_i = Σ_j F_ij` the Fisher information of output row `i`, estimated by the squared
//!   gradients of a task loss (`F_ij = Σ_batches (∂L/∂W_ij)²`, see [`crate::fisher`]). The
//!   truncation then minimizes the Fisher-weighted error `‖diag(√I)·(W − W_r)‖_F` exactly: the
//!   rows the loss is sensitive to are kept best.
//!
//! All store the same `u`, `v` factors as plain SVD, so a compressed checkpoint reloads the same
//! way whatever made it.

use std::fmt;
use std::str::FromStr;

use faer::{Mat, Side};
use lowrank::ndarray::{Array1, Array2, ArrayView2, Axis};
use models::linear::ActivationStats;

use crate::calibrate::Calibration;
use crate::error::{Error, Result};
use crate::fisher::{FisherStats, LayerFisher};

/// ASVD's exponent when none is given (the paper's default).
pub const DEFAULT_ALPHA: f64 = 0.5;
/// The whitening ridge when none is given, as a fraction of the mean diagonal of `XᵀX`.
pub const DEFAULT_RIDGE: f64 = 1e-6;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Method {
    /// Truncated SVD of `W` (no calibration).
    #[default]
    Svd,
    /// Truncated SVD of `W·diag(s)`, `s_j = mean|x_j|^alpha`.
    Asvd { alpha: f64 },
    /// Truncated SVD of `W·L`, `L·Lᵀ = XᵀX + ridge·(tr(XᵀX)/n)·I`.
    Whitened { ridge: f64 },
    /// Truncated SVD of `diag(√I)·W`, `I_i` the Fisher information of output row `i` (FWSVD).
    Fisher,
}

/// What a method reads besides the weight, so the caller knows which passes to run first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    /// The weight alone ([`Method::Svd`]).
    Weights,
    /// Each layer's inputs over calibration forward passes, from [`crate::calibrate()`]
    /// ([`Method::Asvd`], [`Method::Whitened`]).
    Activations,
    /// Squared gradients of a loss over calibration batches, from
    /// [`crate::fisher_importance`] ([`Method::Fisher`]).
    Gradients,
}

impl Method {
    /// ASVD with α = [`DEFAULT_ALPHA`].
    pub fn asvd() -> Self {
        Method::Asvd {
            alpha: DEFAULT_ALPHA,
        }
    }

    /// Whitening with the ridge [`DEFAULT_RIDGE`].
    pub fn whitened() -> Self {
        Method::Whitened {
            ridge: DEFAULT_RIDGE,
        }
    }

    /// `svd`, `asvd`, `whitened`, `fisher`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Svd => "svd",
            Method::Asvd { .. } => "asvd",
            Method::Whitened { .. } => "whitened",
            Method::Fisher => "fisher",
        }
    }

    /// Which statistics the method reads: none, activations or gradients.
    pub fn statistics(&self) -> Statistics {
        match self {
            Method::Svd => Statistics::Weights,
            Method::Asvd { .. } | Method::Whitened { .. } => Statistics::Activations,
            Method::Fisher => Statistics::Gradients,
        }
    }

    /// Whether the method reads calibration data at all (activations or gradients); see
    /// [`Method::statistics`] for which.
    pub fn needs_calibration(&self) -> bool {
        self.statistics() != Statistics::Weights
    }

    /// What to run before compressing with this method: the reason a caller without its
    /// statistics is given.
    pub(crate) fn calibration_hint(&self) -> String {
        match self.statistics() {
            Statistics::Weights => format!("method {self} reads no statistics"),
            Statistics::Activations => format!(
                "method {self} reads activations: run compress::calibrate and \
                 compress_model_calibrated"
            ),
            Statistics::Gradients => format!(
                "method {self} reads gradients: run compress::fisher_importance and \
                 compress_model_fisher"
            ),
        }
    }

    /// Checks the method's own value, before any layer is looked at.
    pub fn validate(&self) -> Result<()> {
        let reason = match *self {
            Method::Asvd { alpha } if !(alpha.is_finite() && alpha >= 0.0) => {
                "alpha must be finite and at least 0 (0 is plain SVD)"
            }
            Method::Whitened { ridge } if !(ridge.is_finite() && ridge >= 0.0) => {
                "the ridge must be finite and at least 0"
            }
            _ => return Ok(()),
        };
        Err(Error::InvalidMethod {
            method: self.to_string(),
            reason: reason.into(),
        })
    }
}

impl fmt::Display for Method {
    /// `svd`, `asvd alpha=0.5`, `whitened ridge=0.000001`, `fisher`: what [`Method::from_str`]
    /// reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Svd => write!(f, "svd"),
            Method::Asvd { alpha } => write!(f, "asvd alpha={alpha}"),
            Method::Whitened { ridge } => write!(f, "whitened ridge={ridge}"),
            Method::Fisher => write!(f, "fisher"),
        }
    }
}

impl FromStr for Method {
    type Err = Error;

    /// `svd`, `asvd`, `asvd alpha=0.5`, `whitened`, `whitened ridge=1e-6`, `fisher`.
    fn from_str(text: &str) -> Result<Self> {
        let mut words = text.split_whitespace();
        let name = words.next().unwrap_or_default();
        let value = |key: &str, default: f64, rest: Option<&str>| -> Option<f64> {
            match rest {
                None => Some(default),
                Some(word) => word.strip_prefix(key)?.strip_prefix('=')?.parse().ok(),
            }
        };
        let rest = words.next();
        let method = match name {
            "svd" if rest.is_none() => Some(Method::Svd),
            "fisher" if rest.is_none() => Some(Method::Fisher),
            "asvd" => value("alpha", DEFAULT_ALPHA, rest).map(|alpha| Method::Asvd { alpha }),
            "whitened" => {
                value("ridge", DEFAULT_RIDGE, rest).map(|ridge| Method::Whitened { ridge })
            }
            _ => None,
        };
        match method {
            Some(method) if words.next().is_none() => {
                method.validate()?;
                Ok(method)
            }
            _ => Err(Error::InvalidMethod {
                method: text.to_string(),
                reason: "known methods are \"svd\", \"asvd alpha=<α>\", \"whitened ridge=<ε>\" \
                         and \"fisher\""
                    .into(),
            }),
        }
    }
}

impl fmt::Display for Statistics {
    /// `weights`, `activations`, `gradients`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Statistics::Weights => "weights",
            Statistics::Activations => "activations",
            Statistics::Gradients => "gradients",
        })
    }
}

/// One layer's statistics, of the kind its method reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LayerStats<'a> {
    Activations(&'a ActivationStats),
    Gradients(&'a LayerFisher),
}

impl<'a> LayerStats<'a> {
    /// The activation statistics, when these are they (the report's output error reads them).
    pub(crate) fn activations(self) -> Option<&'a ActivationStats> {
        match self {
            LayerStats::Activations(stats) => Some(stats),
            LayerStats::Gradients(_) => None,
        }
    }

    fn kind(self) -> Statistics {
        match self {
            LayerStats::Activations(_) => Statistics::Activations,
            LayerStats::Gradients(_) => Statistics::Gradients,
        }
    }
}

/// Every layer's statistics of one kind, as the calibrated surgery receives them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Gathered<'a> {
    Activations(&'a Calibration),
    Gradients(&'a FisherStats),
}

impl<'a> Gathered<'a> {
    /// The statistics of layer `name`; an error naming it when they are missing.
    pub(crate) fn layer(self, name: &str) -> Result<LayerStats<'a>> {
        Ok(match self {
            Gathered::Activations(calibration) => LayerStats::Activations(calibration.stats(name)?),
            Gathered::Gradients(fisher) => LayerStats::Gradients(fisher.stats(name)?),
        })
    }
}

/// The two sides a method weights: it truncates `T·W·S` and maps the factors of the truncation
/// back, `T⁻¹·U` on the left and `Vᵀ·S⁻¹` on the right.
#[derive(Debug, Clone)]
pub(crate) struct Transform {
    output: OutputTransform,
    input: InputTransform,
}

/// The `T` a method truncates `T·W` by (weights on the output rows).
#[derive(Debug, Clone)]
enum OutputTransform {
    Identity,
    /// `T = diag(scale)`, every entry positive.
    Scale(Array1<f64>),
}

/// The `S` a method truncates `W·S` by (weights on the input columns).
#[derive(Debug, Clone)]
enum InputTransform {
    Identity,
    /// `S = diag(scale)`, every entry positive.
    Scale(Array1<f64>),
    /// `S = L`, lower triangular with a positive diagonal.
    Cholesky(Mat<f64>),
}

impl Transform {
    /// The transform `method` builds from a layer's statistics (none for plain SVD).
    pub(crate) fn new(
        method: Method,
        stats: Option<LayerStats<'_>>,
        out_dim: usize,
        in_dim: usize,
    ) -> Result<Self> {
        method.validate()?;
        let mut transform = Transform {
            output: OutputTransform::Identity,
            input: InputTransform::Identity,
        };
        let wanted = method.statistics();
        if wanted == Statistics::Weights {
            return Ok(transform);
        }
        let stats = stats.ok_or_else(|| Error::Calibration {
            reason: format!(
                "method {method} needs calibration statistics ({wanted}) for this layer"
            ),
        })?;
        match (method, stats) {
            (Method::Asvd { alpha }, LayerStats::Activations(stats)) => {
                check_stats(stats, in_dim)?;
                transform.input = InputTransform::Scale(asvd_scale(stats, alpha));
            }
            (Method::Whitened { ridge }, LayerStats::Activations(stats)) => {
                check_stats(stats, in_dim)?;
                transform.input = InputTransform::Cholesky(cholesky(&gram(stats)?, ridge)?);
            }
            (Method::Fisher, LayerStats::Gradients(fisher)) => {
                check_fisher(fisher, out_dim, in_dim)?;
                transform.output = OutputTransform::Scale(fisher_scale(fisher));
            }
            _ => {
                return Err(Error::Calibration {
                    reason: format!(
                        "given {} instead; {}",
                        stats.kind(),
                        method.calibration_hint()
                    ),
                });
            }
        }
        Ok(transform)
    }

    /// `T·W·S`.
    pub(crate) fn apply(&self, weight: &Array2<f64>) -> Array2<f64> {
        let weighted = match &self.input {
            InputTransform::Identity => weight.clone(),
            InputTransform::Scale(scale) => weight * &scale.view().insert_axis(Axis(0)),
            InputTransform::Cholesky(l) => {
                let l = Array2::from_shape_fn((l.nrows(), l.ncols()), |(i, j)| l[(i, j)]);
                weight.dot(&l)
            }
        };
        match &self.output {
            OutputTransform::Identity => weighted,
            OutputTransform::Scale(scale) => weighted * scale.view().insert_axis(Axis(1)),
        }
    }

    /// `(T⁻¹·U, Vᵀ·S⁻¹)` for the (out×r) left and (r×in) right factors of the truncated `T·W·S`.
    ///
    /// A diagonal `T` never amplifies anything here: row `i` of the truncation is
    /// `t_i·W_i·P` (`P` the projector onto the kept right singular vectors), so dividing by `t_i`
    /// leaves `W_i·P`, however small `t_i` is. The weights only decide which subspace is kept.
    pub(crate) fn undo(&self, u: Array2<f64>, vt: Array2<f64>) -> (Array2<f64>, Array2<f64>) {
        let u = match &self.output {
            OutputTransform::Identity => u,
            OutputTransform::Scale(scale) => u / scale.view().insert_axis(Axis(1)),
        };
        let vt = match &self.input {
            InputTransform::Identity => vt,
            InputTransform::Scale(scale) => vt / scale.view().insert_axis(Axis(0)),
            InputTransform::Cholesky(l) => {
                // Z = Vᵀ·L⁻¹  ⇔  Lᵀ·Zᵀ = V: one triangular solve, no inverse formed.
                let (rank, n) = vt.dim();
                let mut zt = Mat::from_fn(n, rank, |i, j| vt[[j, i]]);
                l.transpose().solve_upper_triangular_in_place(zt.as_mut());
                Array2::from_shape_fn((rank, n), |(i, j)| zt[(j, i)])
            }
        };
        (u, vt)
    }
}

fn check_stats(stats: &ActivationStats, in_dim: usize) -> Result<()> {
    let reason = if stats.in_dim != in_dim {
        format!(
            "the statistics are for {} input features but the layer has {in_dim}",
            stats.in_dim
        )
    } else if stats.rows == 0 {
        "the layer saw no calibration tokens".to_string()
    } else if stats.gram.len() != in_dim * in_dim || stats.abs_sum.len() != in_dim {
        "the statistics are malformed (XᵀX or Σ|x| has the wrong length)".to_string()
    } else if !stats
        .gram
        .iter()
        .chain(&stats.abs_sum)
        .all(|x| x.is_finite())
    {
        "the calibration activations hold NaN or infinity".to_string()
    } else {
        return Ok(());
    };
    Err(Error::Calibration { reason })
}

/// `XᵀX` as an (in×in) array.
pub(crate) fn gram(stats: &ActivationStats) -> Result<Array2<f64>> {
    Array2::from_shape_vec((stats.in_dim, stats.in_dim), stats.gram.clone()).map_err(|_| {
        Error::Calibration {
            reason: "XᵀX has the wrong length".into(),
        }
    })
}

/// `mean|x_j|^α`, channels that never fired raised to a tiny share of the largest, so `S` stays
/// invertible (their columns of `W` then count for almost nothing, as their inputs do).
fn asvd_scale(stats: &ActivationStats, alpha: f64) -> Array1<f64> {
    let rows = stats.rows as f64;
    let mean: Array1<f64> = stats.abs_sum.iter().map(|s| s / rows).collect();
    let floor = mean.iter().copied().fold(0.0, f64::max) * 1e-6;
    mean.mapv(|m| {
        let m = if m > floor {
            m
        } else {
            floor.max(f64::MIN_POSITIVE)
        };
        m.powf(alpha)
    })
}

/// Row weights below this share of the largest are raised to it, so `T` stays invertible.
pub const FISHER_FLOOR: f64 = 1e-6;

fn check_fisher(fisher: &LayerFisher, out_dim: usize, in_dim: usize) -> Result<()> {
    let importance = &fisher.row_importance;
    let reason = if fisher.in_dim != in_dim {
        format!(
            "the Fisher statistics are for {} input features but the layer has {in_dim}",
            fisher.in_dim
        )
    } else if importance.len() != out_dim {
        format!(
            "the Fisher statistics have {} rows but the layer has {out_dim} outputs",
            importance.len()
        )
    } else if fisher.batches == 0 {
        "the Fisher statistics sum no batches".to_string()
    } else if !importance.iter().all(|i| i.is_finite() && *i >= 0.0) {
        "the Fisher importances hold NaN, infinity or a negative number".to_string()
    } else if importance.iter().all(|i| *i == 0.0) {
        "every row has zero Fisher importance: no gradient reached this layer's weight".to_string()
    } else {
        return Ok(());
    };
    Err(Error::Calibration { reason })
}

/// FWSVD's row weights `√I_i`, divided by the largest (the truncation does not depend on their
/// scale, and sums of squared gradients can be tiny); rows below [`FISHER_FLOOR`] are raised to
/// it, so a row the loss never felt still gets the projection every row gets (see
/// [`Transform::undo`]) while counting for almost nothing in the choice of subspace.
fn fisher_scale(fisher: &LayerFisher) -> Array1<f64> {
    let largest = fisher.row_importance.iter().copied().fold(0.0, f64::max);
    fisher
        .row_importance
        .iter()
        .map(|i| (i / largest).sqrt().max(FISHER_FLOOR))
        .collect()
}

/// The lower Cholesky factor of `G + ε·I`, `ε = ridge·tr(G)/n`. A Gram matrix from fewer tokens
/// than features is singular, so some ridge is usually needed; if rounding still leaves it
/// indefinite, the ridge grows tenfold (at most six times) before giving up.
fn cholesky(gram: &Array2<f64>, ridge: f64) -> Result<Mat<f64>> {
    let n = gram.nrows();
    let mean_diagonal = gram.diag().sum() / n.max(1) as f64;
    let scale = if mean_diagonal > 0.0 {
        mean_diagonal
    } else {
        1.0
    };
    let mut epsilon = ridge * scale;
    for _ in 0..7 {
        let regularized = Mat::from_fn(n, n, |i, j| {
            // Symmetrized: float sums of xᵀx may differ in the last bit across the diagonal.
            let g = 0.5 * (gram[[i, j]] + gram[[j, i]]);
            if i == j { g + epsilon } else { g }
        });
        if let Ok(llt) = regularized.llt(Side::Lower) {
            return Ok(llt.L().to_owned());
        }
        epsilon = if epsilon > 0.0 {
            epsilon * 10.0
        } else {
            1e-9 * scale
        };
    }
    Err(Error::Calibration {
        reason: format!(
            "XᵀX is not positive definite even with a ridge of {epsilon:e}; calibrate on more \
             tokens or raise the ridge"
        ),
    })
}

/// `tr(A·G·Aᵀ) = ‖X·Aᵀ‖_F²` for the rows `X` that `G = XᵀX` sums.
pub(crate) fn weighted_square_norm(a: ArrayView2<f64>, gram: &Array2<f64>) -> f64 {
    (&a.dot(gram) * &a).sum()
}
