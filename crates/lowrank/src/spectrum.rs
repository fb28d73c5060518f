//! Reading a spectrum: how much of a matrix the first singular values hold.
//!
//! Energy is the squared Frobenius norm, `Σ s_i²`; keeping k singular values keeps the fraction
//! `Σ_{i<k} s_i² / Σ s_i²`, which is `1 − (relative Eckart–Young error)²`. Effective rank summarises
//! a spectrum in one number (Roy and Vetterli, 2007): `exp(H(p))` with `p_i = s_i / Σ s_j`.

use ndarray::ArrayView1;

use crate::{Error, Real, Result};

/// The fraction of energy `Σ s_i²` kept by the first `rank` singular values (1 for a zero spectrum).
///
/// ```
/// let s = ndarray::array![3.0, 4.0];
/// assert!((lowrank::spectrum::energy_kept(s.view(), 1) - 9.0 / 25.0).abs() < 1e-15);
/// ```
pub fn energy_kept<T: Real>(s: ArrayView1<T>, rank: usize) -> f64 {
    let total: f64 = s.iter().map(|x| x.as_f64().powi(2)).sum();
    if total == 0.0 {
        return 1.0;
    }
    s.iter().take(rank).map(|x| x.as_f64().powi(2)).sum::<f64>() / total
}

/// Energy kept at every rank: entry `k − 1` is [`energy_kept`] at rank k, for plotting.
pub fn cumulative_energy<T: Real>(s: ArrayView1<T>) -> Vec<f64> {
    let total: f64 = s.iter().map(|x| x.as_f64().powi(2)).sum();
    let mut running = 0.0;
    s.iter()
        .map(|x| {
            running += x.as_f64().powi(2);
            if total == 0.0 { 1.0 } else { running / total }
        })
        .collect()
}

/// The smallest rank whose [`energy_kept`] reaches `threshold` (in (0, 1]).
///
/// ```
/// let s = ndarray::array![10.0, 1.0, 0.1];
/// assert_eq!(lowrank::spectrum::rank_for_energy(s.view(), 0.99)?, 1);
/// assert_eq!(lowrank::spectrum::rank_for_energy(s.view(), 0.9999)?, 2);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn rank_for_energy<T: Real>(s: ArrayView1<T>, threshold: f64) -> Result<usize> {
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(Error::InvalidArgument {
            name: "energy",
            value: threshold.to_string(),
            reason: "the fraction of energy to keep must lie in (0, 1]".into(),
        });
    }
    if s.is_empty() {
        return Err(Error::Empty {
            what: "spectrum".into(),
            shape: vec![0],
        });
    }
    // Round-off can leave the last cumulative value a hair under 1.0; full rank always qualifies.
    let rank = cumulative_energy(s)
        .iter()
        .position(|&kept| kept >= threshold - 1e-12)
        .map_or(s.len(), |i| i + 1);
    Ok(rank)
}

/// Roy–Vetterli effective rank `exp(−Σ p_i ln p_i)`, `p_i = s_i / Σ s_j`: between 1 (one direction)
/// and the number of non-zero singular values (all equal). 0 for a zero spectrum.
///
/// ```
/// let flat = ndarray::array![2.0, 2.0, 2.0, 2.0];
/// assert!((lowrank::spectrum::effective_rank(flat.view()) - 4.0).abs() < 1e-12);
/// let spike = ndarray::array![5.0, 0.0, 0.0];
/// assert!((lowrank::spectrum::effective_rank(spike.view()) - 1.0).abs() < 1e-12);
/// ```
pub fn effective_rank<T: Real>(s: ArrayView1<T>) -> f64 {
    let total: f64 = s.iter().map(|x| x.as_f64().abs()).sum();
    if total == 0.0 {
        return 0.0;
    }
    let entropy: f64 = s
        .iter()
        .map(|x| x.as_f64().abs() / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}
