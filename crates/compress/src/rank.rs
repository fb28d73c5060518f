//! How to choose a layer's rank: a fixed number, a parameter budget, or a share of the spectrum.
//!
//! A budget (`ParamRatio`) gives every layer of a shape the same rank and a predictable size; an
//! energy threshold adapts the rank to how fast each weight's singular values fall, which is what
//! the course's spectra lesson shows differs between Q/K and V/O projections.

use std::fmt;

use candle_core::Tensor;
use lowrank::ndarray::ArrayView1;
use lowrank::spectrum::rank_for_energy;
use lowrank::svd::svd;

use crate::error::{Error, Result};
use crate::svd::{check_rank, largest_useful_rank, to_array};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RankRule {
    /// The same rank for every selected layer.
    Fixed(usize),
    /// The largest rank keeping at most this fraction, in (0, 1), of a layer's weights:
    /// `r·(in+out) ≤ ratio·in·out`. The bias is kept whole and not counted.
    ParamRatio(f64),
    /// The smallest rank whose singular values keep this fraction, in (0, 1], of `Σσ²` (so the
    /// relative Frobenius error is at most `sqrt(1 − energy)`).
    Energy(f64),
}

impl fmt::Display for RankRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RankRule::Fixed(rank) => write!(f, "fixed rank {rank}"),
            RankRule::ParamRatio(ratio) => write!(f, "param-ratio {ratio}"),
            RankRule::Energy(energy) => write!(f, "energy {energy}"),
        }
    }
}

impl RankRule {
    /// Checks the rule's own value, before any layer is looked at.
    pub fn validate(&self) -> Result<()> {
        let reason = match *self {
            RankRule::Fixed(0) => "a rank must be at least 1",
            RankRule::ParamRatio(r) if !(r > 0.0 && r < 1.0) => {
                "the fraction of parameters to keep must lie in (0, 1); 1 or more would not compress"
            }
            RankRule::Energy(e) if !(e > 0.0 && e <= 1.0) => {
                "the fraction of energy to keep must lie in (0, 1]"
            }
            _ => return Ok(()),
        };
        Err(self.invalid(reason))
    }

    /// Whether the rule reads singular values (only [`RankRule::Energy`] does).
    pub fn needs_spectrum(&self) -> bool {
        matches!(self, RankRule::Energy(_))
    }

    /// The rank this rule gives the (out, in) `weight`; an error if that rank would not save
    /// parameters. Decomposes the weight only for [`RankRule::Energy`].
    pub fn rank_for(&self, weight: &Tensor) -> Result<usize> {
        let (out_dim, in_dim) = weight.dims2()?;
        if self.needs_spectrum() {
            let spectrum = svd(to_array(weight)?.view())?.s;
            self.rank_for_spectrum(spectrum.view(), in_dim, out_dim)
        } else {
            self.rank_for_shape(in_dim, out_dim)
        }
    }

    /// As [`RankRule::rank_for`], from singular values already computed.
    pub(crate) fn rank_for_spectrum(
        &self,
        spectrum: ArrayView1<f64>,
        in_dim: usize,
        out_dim: usize,
    ) -> Result<usize> {
        let RankRule::Energy(energy) = *self else {
            return self.rank_for_shape(in_dim, out_dim);
        };
        self.validate()?;
        let rank = rank_for_energy(spectrum, energy)?;
        let max_useful = largest_useful_rank(in_dim, out_dim);
        if rank > max_useful {
            return Err(self.invalid(&format!(
                "on this {in_dim}→{out_dim} weight it needs rank {rank}, but ranks above \
                 {max_useful} store more numbers than the dense weight; lower the energy, or use \
                 ParamRatio for a size budget"
            )));
        }
        Ok(rank)
    }

    fn rank_for_shape(&self, in_dim: usize, out_dim: usize) -> Result<usize> {
        self.validate()?;
        let rank = match *self {
            RankRule::Fixed(rank) => rank,
            RankRule::ParamRatio(ratio) => {
                let budget = ratio * (in_dim * out_dim) as f64;
                let rank = (budget / (in_dim + out_dim) as f64).floor() as usize;
                if rank == 0 {
                    let needed = (in_dim + out_dim) as f64 / (in_dim * out_dim) as f64;
                    return Err(self.invalid(&format!(
                        "a {in_dim}→{out_dim} layer needs a ratio of at least {needed:.4} for rank 1"
                    )));
                }
                rank
            }
            RankRule::Energy(_) => {
                return Err(self.invalid("an energy rule needs the weight's singular values"));
            }
        };
        check_rank(rank, in_dim, out_dim)?;
        Ok(rank)
    }

    fn invalid(&self, reason: &str) -> Error {
        Error::InvalidRule {
            rule: self.to_string(),
            reason: reason.to_string(),
        }
    }
}
