//! Singular value decomposition: thin full, truncated rank-k and randomized, with the errors
//! Eckart–Young predicts.
//!
//! Every matrix `A` (m×n) factors as `A = U·diag(s)·Vᵀ` with orthonormal columns in `U` and rows in
//! `Vᵀ`, and `s` sorted descending. Keeping the first `k` terms gives the best rank-k approximation
//! (Eckart–Young–Mirsky): its Frobenius error is `sqrt(s[k]² + s[k+1]² + …)` and its spectral error
//! is `s[k]`. The full SVD comes from faer (BENCHMARKS.md says why); the randomized SVD is written here
//! because it is the lesson: Halko, Martinsson and Tropp (2011), "Finding structure with randomness".

use faer::{Mat, MatRef};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, s};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::convert::{to_faer, to_ndarray, with_faer};
use crate::error::{check_finite, check_rank};
use crate::{Error, Real, Result};

/// `A ≈ U·diag(s)·Vᵀ`: `u` is m×k, `s` has k values in descending order, `vt` is k×n.
#[derive(Debug, Clone, PartialEq)]
pub struct Svd<T> {
    pub u: Array2<T>,
    pub s: Array1<T>,
    pub vt: Array2<T>,
}

/// Thin SVD of an m×n matrix: `u` is m×min(m, n), `vt` is min(m, n)×n.
///
/// ```
/// use lowrank::{ndarray::array, svd::svd};
/// let a = array![[1.0_f64, 1.0], [1.0, 1.0]];
/// let d = svd(a.view())?;
/// assert!((d.s[0] - 2.0).abs() < 1e-12 && d.s[1].abs() < 1e-12);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn svd<T: Real>(a: ArrayView2<T>) -> Result<Svd<T>> {
    check_finite("matrix", &a)?;
    with_faer(a, thin_svd_faer)
}

/// The best rank-`rank` approximation's factors: the first `rank` singular triplets.
///
/// ```
/// use lowrank::{ndarray::Array2, svd::truncated_svd};
/// let a = Array2::from_shape_fn((6, 4), |(i, j)| (i * j) as f64 + 1.0);
/// let d = truncated_svd(a.view(), 2)?;
/// assert_eq!((d.u.dim(), d.s.len(), d.vt.dim()), ((6, 2), 2, (2, 4)));
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn truncated_svd<T: Real>(a: ArrayView2<T>, rank: usize) -> Result<Svd<T>> {
    check_rank(rank, a.nrows(), a.ncols())?;
    svd(a)?.truncate(rank)
}

/// Settings of [`randomized_svd`]; the defaults are scikit-learn's `randomized_svd` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomizedSvd {
    /// Extra random directions beyond the rank (`p` in Halko et al.); more costs time, gains accuracy.
    pub oversampling: usize,
    /// Passes of `(A·Aᵀ)` applied to the sample: each sharpens a slowly decaying spectrum.
    pub power_iterations: usize,
    /// Seed of the Gaussian test matrix: the same seed gives the same factors.
    pub seed: u64,
}

impl Default for RandomizedSvd {
    fn default() -> Self {
        Self {
            oversampling: 10,
            power_iterations: 4,
            seed: 0,
        }
    }
}

/// Approximate rank-`rank` SVD from a random sketch (Halko–Martinsson–Tropp, algorithms 4.4 and 5.1).
///
/// Costs O(mn·(k+p)) per pass instead of O(mn·min(m, n)), which is why it wins for small ranks of big
/// matrices. Between power iterations the sample is re-orthonormalised by QR, so accuracy does not
/// drown in round-off even with many iterations.
///
/// ```
/// use lowrank::{ndarray::Array2, svd::{randomized_svd, svd, RandomizedSvd}};
/// let a = Array2::from_shape_fn((40, 30), |(i, j)| 1.0 / (i + j + 1) as f64); // Hilbert-like: fast decay
/// let approx = randomized_svd(a.view(), 5, &RandomizedSvd::default())?;
/// let exact = svd(a.view())?;
/// assert!((approx.s[0] - exact.s[0]).abs() < 1e-10);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn randomized_svd<T: Real>(
    a: ArrayView2<T>,
    rank: usize,
    options: &RandomizedSvd,
) -> Result<Svd<T>> {
    let (m, n) = a.dim();
    check_rank(rank, m, n)?;
    check_finite("matrix", &a)?;
    with_faer(a, |a| randomized_range_svd(a, rank, options))
}

fn randomized_range_svd<T: Real>(
    a: MatRef<T>,
    rank: usize,
    options: &RandomizedSvd,
) -> Result<Svd<T>> {
    let (m, n) = (a.nrows(), a.ncols());
    let sketch_size = (rank + options.oversampling).min(m.min(n));
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let omega = Mat::<T>::from_fn(n, sketch_size, |_, _| {
        T::of(rng.sample::<f64, _>(StandardNormal))
    });
    let mut q = orthonormal_columns(a * &omega);
    for _ in 0..options.power_iterations {
        let z = orthonormal_columns(a.transpose() * &q);
        q = orthonormal_columns(a * &z);
    }
    let projected = q.transpose() * a;
    let small = thin_svd_faer(projected.as_ref())?;
    let u = to_ndarray((&q * to_faer(small.u.view())).as_ref());
    Svd { u, ..small }.truncate(rank)
}

fn orthonormal_columns<T: Real>(y: Mat<T>) -> Mat<T> {
    y.qr().compute_thin_Q()
}

fn thin_svd_faer<T: Real>(a: MatRef<T>) -> Result<Svd<T>> {
    let decomposition = a.thin_svd().map_err(|_| Error::NoConvergence {
        op: "svd",
        rows: a.nrows(),
        cols: a.ncols(),
    })?;
    let s = decomposition.S().column_vector().iter().copied().collect();
    Ok(sorted_descending(Svd {
        u: to_ndarray(decomposition.U()),
        s,
        vt: to_ndarray(decomposition.V().transpose()),
    }))
}

/// Puts the triplets in descending order of singular value.
///
/// faer 0.24's thin SVD can return them out of order on exactly low-rank input (a 512×512
/// checkerboard came back with σ₂ at index 457), and truncation relies on the order.
fn sorted_descending<T: Real>(svd: Svd<T>) -> Svd<T> {
    if svd.s.windows(2).into_iter().all(|w| w[0] >= w[1]) {
        return svd;
    }
    let mut order: Vec<usize> = (0..svd.s.len()).collect();
    order.sort_by(|&i, &j| {
        svd.s[j]
            .partial_cmp(&svd.s[i])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Svd {
        u: svd.u.select(Axis(1), &order),
        s: svd.s.select(Axis(0), &order),
        vt: svd.vt.select(Axis(0), &order),
    }
}

impl<T: Real> Svd<T> {
    /// The number of singular triplets held.
    pub fn rank(&self) -> usize {
        self.s.len()
    }

    /// Keeps the first `rank` triplets.
    pub fn truncate(&self, rank: usize) -> Result<Svd<T>> {
        if rank == 0 || rank > self.rank() {
            return Err(Error::RankOutOfRange {
                rank,
                rows: self.u.nrows(),
                cols: self.vt.ncols(),
                max: self.rank(),
            });
        }
        Ok(Svd {
            u: self.u.slice(s![.., ..rank]).to_owned(),
            s: self.s.slice(s![..rank]).to_owned(),
            vt: self.vt.slice(s![..rank, ..]).to_owned(),
        })
    }

    /// `U·diag(s)·Vᵀ`.
    pub fn reconstruct(&self) -> Array2<T> {
        self.u_scaled().dot(&self.vt)
    }

    /// The two factors a low-rank layer stores, `(U·diag(s), Vᵀ)`: `x·A ≈ (x·Vᵀᵀ…)` in two thin products.
    pub fn into_factors(self) -> (Array2<T>, Array2<T>) {
        (self.u_scaled(), self.vt)
    }

    fn u_scaled(&self) -> Array2<T> {
        &self.u * &self.s.view().insert_axis(Axis(0))
    }
}

/// `‖A‖_F = sqrt(Σ a_ij²)`.
pub fn frobenius_norm<T: Real>(a: ArrayView2<T>) -> f64 {
    a.iter().map(|x| x.as_f64().powi(2)).sum::<f64>().sqrt()
}

/// `‖A‖₂`, the largest singular value.
pub fn spectral_norm<T: Real>(a: ArrayView2<T>) -> Result<f64> {
    check_finite("matrix", &a)?;
    let values = with_faer(a, |a| a.singular_values()).map_err(|_| Error::NoConvergence {
        op: "singular values",
        rows: a.nrows(),
        cols: a.ncols(),
    })?;
    // The maximum rather than the first: see `sorted_descending`.
    Ok(values.iter().fold(0.0, |max: f64, s| max.max(s.as_f64())))
}

/// Eckart–Young: the Frobenius error of the best rank-`rank` approximation, `sqrt(Σ_{i≥rank} s_i²)`.
///
/// ```
/// assert_eq!(lowrank::svd::optimal_frobenius_error(ndarray::array![4.0, 3.0, 0.0].view(), 1), 3.0);
/// ```
pub fn optimal_frobenius_error<T: Real>(s: ArrayView1<T>, rank: usize) -> f64 {
    s.iter()
        .skip(rank)
        .map(|x| x.as_f64().powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Eckart–Young: the spectral error of the best rank-`rank` approximation, `s[rank]` (0 past the end).
pub fn optimal_spectral_error<T: Real>(s: ArrayView1<T>, rank: usize) -> f64 {
    s.get(rank).map_or(0.0, |x| x.as_f64())
}

/// How far an approximation is from the matrix, in both norms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApproximationError {
    pub frobenius: f64,
    pub spectral: f64,
}

/// Measures `‖A − approx‖` in the Frobenius and spectral norms.
pub fn approximation_error<T: Real>(
    a: ArrayView2<T>,
    approx: ArrayView2<T>,
) -> Result<ApproximationError> {
    if a.dim() != approx.dim() {
        return Err(Error::ShapeMismatch {
            op: "approximation error".into(),
            left: a.shape().to_vec(),
            right: approx.shape().to_vec(),
        });
    }
    let difference = &a - &approx;
    Ok(ApproximationError {
        frobenius: frobenius_norm(difference.view()),
        spectral: spectral_norm(difference.view())?,
    })
}
