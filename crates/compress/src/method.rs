//! How a layer's weight is truncated: plainly, or weighted by the inputs it meets.
//!
//! Plain truncated SVD minimizes `‖W − W_r‖_F`, every input direction counting the same. A layer
//! only ever sees its activations `X` (rows = tokens), and what matters is the output error
//! `‖X·(W − W_r)ᵀ‖_F = ‖(W − W_r)·S‖_F` for any `S` with `S·Sᵀ = XᵀX`. Both activation-aware methods
//! truncate `W·S` instead of `W` and map back with `S⁻¹`, for different `S`:
//!
//! - [`Method::Asvd`] (ASVD, Yuan et al. 2023): `S = diag(mean|x_j|^α)`, a per-channel scale that
//!   protects the input channels with large activations (outlier channels); `α = 0` is plain SVD.
//! - [`Method::Whitened`] (SVD-LLM, Wang et al. 2024): `S = L`, the Cholesky factor of `XᵀX`
//!   (plus a small ridge), which makes the truncation minimize the output error on the calibration
//!   data exactly: `‖(W − W_r)·L‖_F` is the tail of the singular values of `W·L` (Eckart–Young).
//!
//! Both store the same `u`, `v` factors as plain SVD, so a compressed checkpoint reloads the same
//! way whatever made it.

use std::fmt;
use std::str::FromStr;

use faer::{Mat, Side};
use lowrank::ndarray::{Array1, Array2, ArrayView2, Axis};
use models::linear::ActivationStats;

use crate::error::{Error, Result};

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

    /// `svd`, `asvd`, `whitened`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Svd => "svd",
            Method::Asvd { .. } => "asvd",
            Method::Whitened { .. } => "whitened",
        }
    }

    /// Whether the method reads calibration activations.
    pub fn needs_calibration(&self) -> bool {
        !matches!(self, Method::Svd)
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
    /// `svd`, `asvd alpha=0.5`, `whitened ridge=0.000001`: what [`Method::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Svd => write!(f, "svd"),
            Method::Asvd { alpha } => write!(f, "asvd alpha={alpha}"),
            Method::Whitened { ridge } => write!(f, "whitened ridge={ridge}"),
        }
    }
}

impl FromStr for Method {
    type Err = Error;

    /// `svd`, `asvd`, `asvd alpha=0.5`, `whitened`, `whitened ridge=1e-6`.
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
                reason: "known methods are \"svd\", \"asvd alpha=<α>\" and \"whitened ridge=<ε>\""
                    .into(),
            }),
        }
    }
}

/// The `S` a method truncates `W·S` by, and its inverse on the right factor.
#[derive(Debug, Clone)]
pub(crate) enum InputTransform {
    Identity,
    /// `S = diag(scale)`, every entry positive.
    Scale(Array1<f64>),
    /// `S = L`, lower triangular with a positive diagonal.
    Cholesky(Mat<f64>),
}

impl InputTransform {
    /// The transform `method` builds from a layer's calibration statistics.
    pub(crate) fn new(
        method: Method,
        stats: Option<&ActivationStats>,
        in_dim: usize,
    ) -> Result<Self> {
        method.validate()?;
        if method == Method::Svd {
            return Ok(InputTransform::Identity);
        }
        let stats = stats.ok_or_else(|| Error::Calibration {
            reason: format!("method {method} needs calibration statistics for this layer"),
        })?;
        check_stats(stats, in_dim)?;
        Ok(match method {
            Method::Svd => InputTransform::Identity,
            Method::Asvd { alpha } => InputTransform::Scale(asvd_scale(stats, alpha)),
            Method::Whitened { ridge } => InputTransform::Cholesky(cholesky(&gram(stats)?, ridge)?),
        })
    }

    /// `W·S`.
    pub(crate) fn apply(&self, weight: &Array2<f64>) -> Array2<f64> {
        match self {
            InputTransform::Identity => weight.clone(),
            InputTransform::Scale(scale) => weight * &scale.view().insert_axis(Axis(0)),
            InputTransform::Cholesky(l) => {
                let l = Array2::from_shape_fn((l.nrows(), l.ncols()), |(i, j)| l[(i, j)]);
                weight.dot(&l)
            }
        }
    }

    /// `Vᵀ·S⁻¹` for the (r×in) right factor of the truncated `W·S`.
    pub(crate) fn undo(&self, vt: Array2<f64>) -> Array2<f64> {
        match self {
            InputTransform::Identity => vt,
            InputTransform::Scale(scale) => vt / scale.view().insert_axis(Axis(0)),
            InputTransform::Cholesky(l) => {
                // Z = Vᵀ·L⁻¹  ⇔  Lᵀ·Zᵀ = V: one triangular solve, no inverse formed.
                let (rank, n) = vt.dim();
                let mut zt = Mat::from_fn(n, rank, |i, j| vt[[j, i]]);
                l.transpose().solve_upper_triangular_in_place(zt.as_mut());
                Array2::from_shape_fn((rank, n), |(i, j)| zt[(j, i)])
            }
        }
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
