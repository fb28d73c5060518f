//! Tucker decompositions: HOSVD and HOOI for N-way tensors, and Tucker-2 of a weight matrix.
//!
//! A Tucker decomposition writes a tensor `X` (I₀×…×I_{N−1}) as a small core `G` (R₀×…×R_{N−1})
//! multiplied along every mode by a factor with orthonormal columns: `X ≈ G ×₀ U₀ ×₁ U₁ … ×_{N−1}
//! U_{N−1}`, with `Uₙ` of shape Iₙ×Rₙ. It stores `Π Rₙ + Σ Iₙ·Rₙ` numbers instead of `Π Iₙ`.
//!
//! - [`hosvd`] (De Lathauwer, De Moor and Vandewalle, 2000) takes each factor from the leading left
//!   singular vectors of the tensor's unfolding along that mode, then projects: `G = X ×ₙ Uₙᵀ`.
//! - [`hooi`] starts there and alternates: each factor becomes the leading left singular vectors of
//!   the tensor projected on all the other factors. It follows tensorly 0.10's
//!   `tensorly.decomposition.tucker` step for step (init `"svd"`, its error formula and stopping rule),
//!   so the same tolerance gives the same fit.
//! - [`tucker2`] is the two-mode case of a matrix, `W ≈ U₁·Γ·U₂ᵀ`, the factorization that replaces
//!   one big linear layer by three small ones.
//!
//! Unfoldings follow tensorly's convention (`unfold`, `fold`): the mode moves to the front and the
//! rest is flattened in row-major order.

use std::borrow::Cow;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Side};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, IxDyn, s};

use crate::convert::{to_faer, to_ndarray};
use crate::error::check_finite;
use crate::{Error, Real, Result};

/// The mode-`mode` unfolding of `x`: an `Iₙ × Π_{m≠n} I_m` matrix whose columns are the mode's fibers.
///
/// Same layout as tensorly's `unfold`, `reshape(moveaxis(x, mode, 0), (Iₙ, -1))` in row-major order.
///
/// ```
/// use lowrank::{ndarray::{ArrayD, IxDyn}, tucker::unfold};
/// let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 12 + i[1] * 4 + i[2]) as f64);
/// let m = unfold(x.view(), 1)?;
/// assert_eq!(m.dim(), (3, 8));
/// assert_eq!(m.row(0).to_vec(), vec![0.0, 1.0, 2.0, 3.0, 12.0, 13.0, 14.0, 15.0]);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn unfold<T: Real>(x: ArrayViewD<T>, mode: usize) -> Result<Array2<T>> {
    check_mode(mode, x.ndim())?;
    let shape = x.shape().to_vec();
    let order = mode_to_front(shape.len(), mode);
    let (size, rest) = (shape[mode], order[1..].iter().map(|&m| shape[m]).product());
    let moved = x.permuted_axes(IxDyn(&order));
    let values: Vec<T> = moved.iter().copied().collect();
    Array2::from_shape_vec((size, rest), values).map_err(|_| Error::ShapeMismatch {
        op: "unfold".into(),
        left: shape,
        right: vec![size, rest],
    })
}

/// The inverse of [`unfold`]: rebuilds the tensor of shape `shape` from its mode-`mode` unfolding.
///
/// ```
/// use lowrank::{ndarray::{ArrayD, IxDyn}, tucker::{fold, unfold}};
/// let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 12 + i[1] * 4 + i[2]) as f64);
/// for mode in 0..3 {
///     assert_eq!(fold(unfold(x.view(), mode)?.view(), mode, &[2, 3, 4])?, x);
/// }
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn fold<T: Real>(m: ArrayView2<T>, mode: usize, shape: &[usize]) -> Result<ArrayD<T>> {
    check_mode(mode, shape.len())?;
    let front = mode_to_front(shape.len(), mode);
    let moved_shape: Vec<usize> = front.iter().map(|&axis| shape[axis]).collect();
    let rest: usize = moved_shape[1..].iter().product();
    let mismatch = || Error::ShapeMismatch {
        op: format!("fold along mode {mode} into shape {shape:?}"),
        left: m.shape().to_vec(),
        right: vec![shape[mode], rest],
    };
    if m.dim() != (shape[mode], rest) {
        return Err(mismatch());
    }
    let values: Vec<T> = m.iter().copied().collect();
    let moved = ArrayD::from_shape_vec(IxDyn(&moved_shape), values).map_err(|_| mismatch())?;
    // Moving axis 0 back to `mode` is the inverse permutation of moving `mode` to the front.
    let mut back = vec![0; shape.len()];
    for (position, &axis) in front.iter().enumerate() {
        back[axis] = position;
    }
    Ok(moved
        .permuted_axes(IxDyn(&back))
        .as_standard_layout()
        .into_owned())
}

/// The n-mode product `x ×ₙ matrix`: every mode-`mode` fiber of `x` multiplied by `matrix` (J×Iₙ).
///
/// The result has the shape of `x` with `Iₙ` replaced by `J`; its mode-`mode` unfolding is
/// `matrix · unfold(x, mode)`.
///
/// ```
/// use lowrank::{ndarray::{array, ArrayD, IxDyn}, tucker::mode_product};
/// let x = ArrayD::from_elem(IxDyn(&[2, 3]), 1.0);
/// let sums = mode_product(x.view(), array![[1.0, 1.0, 1.0], [1.0, 0.0, -1.0]].view(), 1)?;
/// assert_eq!(sums.shape(), &[2, 2]);
/// assert_eq!(sums.iter().copied().collect::<Vec<_>>(), vec![3.0, 0.0, 3.0, 0.0]);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn mode_product<T: Real>(
    x: ArrayViewD<T>,
    matrix: ArrayView2<T>,
    mode: usize,
) -> Result<ArrayD<T>> {
    check_mode(mode, x.ndim())?;
    check_product_shape(x.shape(), mode, matrix.shape(), "mode product")?;
    contract(&Dense::from_view(x), to_faer(matrix).as_ref(), mode).into_array()
}

/// `x ×₀ matrices[0] ×₁ matrices[1] … `: one matrix per mode of `x`, applied in mode order.
///
/// With the Tucker factors it rebuilds a tensor from its core; with their transposes it projects a
/// tensor onto them (the core of [`hosvd`]).
///
/// ```
/// use lowrank::{ndarray::{array, ArrayD, IxDyn}, tucker::multi_mode_product};
/// let x = ArrayD::from_elem(IxDyn(&[2, 3]), 1.0);
/// let total = multi_mode_product(x.view(), &[array![[1.0, 1.0]].view(), array![[1.0, 1.0, 1.0]].view()])?;
/// assert_eq!(total.iter().copied().collect::<Vec<_>>(), vec![6.0]);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn multi_mode_product<T: Real>(
    x: ArrayViewD<T>,
    matrices: &[ArrayView2<T>],
) -> Result<ArrayD<T>> {
    if matrices.len() != x.ndim() {
        return Err(Error::ShapeMismatch {
            op: format!(
                "multi-mode product (one matrix per mode, got {})",
                matrices.len()
            ),
            left: x.shape().to_vec(),
            right: vec![matrices.len()],
        });
    }
    let mut result = Dense::from_view(x);
    for (mode, matrix) in matrices.iter().enumerate() {
        check_product_shape(&result.shape, mode, matrix.shape(), "multi-mode product")?;
        result = contract(&result, to_faer(matrix.view()).as_ref(), mode);
    }
    result.into_array()
}

/// `X ≈ core ×₀ factors[0] ×₁ factors[1] …`: `core` is R₀×…×R_{N−1}, `factors[n]` is Iₙ×Rₙ with
/// orthonormal columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Tucker<T> {
    pub core: ArrayD<T>,
    pub factors: Vec<Array2<T>>,
}

impl<T: Real> Tucker<T> {
    /// The full tensor `core ×ₙ Uₙ`; an error if the factors no longer fit the core.
    pub fn reconstruct(&self) -> Result<ArrayD<T>> {
        let views: Vec<ArrayView2<T>> = self.factors.iter().map(|u| u.view()).collect();
        multi_mode_product(self.core.view(), &views).map_err(|error| match error {
            Error::ShapeMismatch { left, right, .. } => Error::ShapeMismatch {
                op: "tucker reconstruction (core and factors)".into(),
                left,
                right,
            },
            other => other,
        })
    }

    /// The numbers stored: the core's plus the factors', `Π Rₙ + Σ Iₙ·Rₙ`.
    pub fn parameter_count(&self) -> usize {
        self.core.len() + self.factors.iter().map(|u| u.len()).sum::<usize>()
    }

    /// `‖x − reconstruction‖_F / ‖x‖_F`, computed in `f64` (0 when both are zero, infinity when
    /// only `x` is).
    ///
    /// ```
    /// use lowrank::{ndarray::{ArrayD, IxDyn}, tucker::hosvd};
    /// let x = ArrayD::from_shape_fn(IxDyn(&[4, 3, 2]), |i| (i[0] + 2 * i[1] + 3 * i[2]) as f64);
    /// let full = hosvd(x.view(), &[4, 3, 2])?;
    /// assert!(full.relative_error(x.view())? < 1e-14);
    /// # Ok::<(), lowrank::Error>(())
    /// ```
    pub fn relative_error(&self, x: ArrayViewD<T>) -> Result<f64> {
        let approx = self.reconstruct()?;
        if approx.shape() != x.shape() {
            return Err(Error::ShapeMismatch {
                op: "tucker relative error (tensor and reconstruction)".into(),
                left: x.shape().to_vec(),
                right: approx.shape().to_vec(),
            });
        }
        let difference: f64 = x
            .iter()
            .zip(approx.iter())
            .map(|(a, b)| (a.as_f64() - b.as_f64()).powi(2))
            .sum();
        Ok(relative(difference.sqrt(), squared_norm(x.iter()).sqrt()))
    }
}

/// Truncated higher-order SVD: `Uₙ` = the `ranks[n]` leading left singular vectors of
/// `unfold(x, n)`, core `= x ×ₙ Uₙᵀ`.
///
/// Each factor's columns are signed like tensorly's (`svd_flip`): the entry of largest magnitude
/// is positive. At full ranks (`ranks == x.shape()`) the reconstruction is exact.
///
/// ```
/// use lowrank::{ndarray::{ArrayD, IxDyn}, tucker::hosvd};
/// // The outer product a∘b∘c with ‖a‖ = 5, ‖b‖ = 2, ‖c‖ = 3 has multilinear rank (1, 1, 1).
/// let (a, b, c) = ([3.0_f64, 4.0], [0.0, 2.0], [1.0, 2.0, 2.0]);
/// let x = ArrayD::from_shape_fn(IxDyn(&[2, 2, 3]), |i| a[i[0]] * b[i[1]] * c[i[2]]);
/// let t = hosvd(x.view(), &[1, 1, 1])?;
/// assert!((t.core[[0, 0, 0]] - 30.0).abs() < 1e-12);
/// assert!((t.factors[0][[1, 0]] - 0.8).abs() < 1e-12);
/// assert!(t.relative_error(x.view())? < 1e-14);
/// assert_eq!(t.parameter_count(), 1 + 2 + 2 + 3);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn hosvd<T: Real>(x: ArrayViewD<T>, ranks: &[usize]) -> Result<Tucker<T>> {
    check_tensor(&x, ranks)?;
    let dense = Dense::from_view(x);
    let factors = hosvd_factors(&dense, ranks)?;
    let core = project(dense, &factors);
    into_tucker(core, &factors)
}

/// Settings of [`hooi`]; the defaults are those of tensorly's `tucker` (100 iterations, `tol=10e-5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hooi {
    /// The most sweeps over the modes.
    pub max_iterations: usize,
    /// Stop once the relative error changes by less than this between two iterations.
    pub tolerance: f64,
}

impl Default for Hooi {
    fn default() -> Self {
        Self {
            max_iterations: 100,
            tolerance: 1e-4,
        }
    }
}

/// How [`hooi`] went: the relative error after each iteration, as tensorly's `return_errors` gives.
#[derive(Debug, Clone, PartialEq)]
pub struct HooiTrace {
    /// The starting point's (HOSVD's) relative error, by the same formula.
    pub initial_relative_error: f64,
    /// `sqrt(|‖x‖² − ‖core‖²|) / ‖x‖` after each iteration: exact because the factors are orthonormal.
    pub relative_errors: Vec<f64>,
    /// Whether the error settled within the tolerance before `max_iterations` ran out.
    pub converged: bool,
}

impl HooiTrace {
    /// The iterations run.
    pub fn iterations(&self) -> usize {
        self.relative_errors.len()
    }

    /// The fit `1 − relative error` after each iteration.
    pub fn fits(&self) -> Vec<f64> {
        self.relative_errors.iter().map(|e| 1.0 - e).collect()
    }

    /// The relative error of the returned decomposition.
    pub fn final_relative_error(&self) -> f64 {
        self.relative_errors
            .last()
            .copied()
            .unwrap_or(self.initial_relative_error)
    }

    /// The fit `1 − relative error` of the returned decomposition.
    pub fn final_fit(&self) -> f64 {
        1.0 - self.final_relative_error()
    }
}

/// Higher-order orthogonal iteration (De Lathauwer, De Moor and Vandewalle, 2000), as tensorly's
/// `tucker(x, ranks, init="svd", tol, n_iter_max)`.
///
/// Starts from [`hosvd`]. Each iteration sweeps the modes in order; mode n's factor becomes the
/// `ranks[n]` leading left singular vectors of `unfold(x ×_{m≠n} U_mᵀ, n)`, which maximises the
/// core's norm given the other factors, so the error never increases. After the sweep the core is
/// `x ×ₙ Uₙᵀ` and the relative error `sqrt(|‖x‖² − ‖core‖²|) / ‖x‖`; like tensorly it stops from the
/// third iteration on once two successive errors differ by less than `tolerance`.
///
/// One case departs from tensorly: a rank above the product of the other ranks asks for more
/// singular vectors than the projected unfolding has. tensorly pads the factor with random
/// orthonormal columns, Lowrank with eigenvectors of the zero eigenvalue; the error after that
/// iteration is the same, but the padding steers the following ones, so the two (like tensorly
/// with two seeds) then part ways.
///
/// ```
/// use lowrank::{ndarray::{ArrayD, IxDyn}, tucker::{hooi, hosvd, Hooi}};
/// let x = ArrayD::from_shape_fn(IxDyn(&[6, 5, 4]), |i| {
///     ((i[0] * i[1]) as f64).sin() + (i[1] as f64 - i[2] as f64).cos() + (i[0] + i[2]) as f64 * 0.1
/// });
/// let (t, trace) = hooi(x.view(), &[2, 2, 2], &Hooi::default())?;
/// assert!(trace.converged && trace.iterations() >= 3);
/// assert!(trace.final_relative_error() <= trace.initial_relative_error);
/// assert!((t.relative_error(x.view())? - trace.final_relative_error()).abs() < 1e-10);
/// assert!(t.relative_error(x.view())? <= hosvd(x.view(), &[2, 2, 2])?.relative_error(x.view())?);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn hooi<T: Real>(
    x: ArrayViewD<T>,
    ranks: &[usize],
    options: &Hooi,
) -> Result<(Tucker<T>, HooiTrace)> {
    check_options(options)?;
    check_tensor(&x, ranks)?;
    let dense = Dense::from_view(x);
    let norm = squared_norm(dense.data.iter()).sqrt();
    let error_of = |core: &Dense<T>| {
        let difference = (norm * norm - squared_norm(core.data.iter())).abs();
        relative(difference.sqrt(), norm)
    };
    let mut factors = hosvd_factors(&dense, ranks)?;
    let mut core = project(dense.borrowed(), &factors);
    let initial_relative_error = error_of(&core);
    let mut relative_errors = Vec::new();
    let mut converged = false;
    for iteration in 0..options.max_iterations {
        core = sweep(&dense, ranks, &mut factors)?;
        relative_errors.push(error_of(&core));
        // tensorly's rule, `iteration > 1`: at least three iterations before it may stop.
        if let [.., previous, last] = relative_errors[..]
            && iteration > 1
            && (previous - last).abs() < options.tolerance
        {
            converged = true;
            break;
        }
    }
    let trace = HooiTrace {
        initial_relative_error,
        relative_errors,
        converged,
    };
    Ok((into_tucker(core, &factors)?, trace))
}

/// `W ≈ U₁·Γ·U₂ᵀ` for an H×W matrix: `u1` is H×r₁, `core` (Γ) is r₁×r₂, `u2` is W×r₂.
#[derive(Debug, Clone, PartialEq)]
pub struct Tucker2<T> {
    pub u1: Array2<T>,
    pub core: Array2<T>,
    pub u2: Array2<T>,
}

impl<T: Real> Tucker2<T> {
    /// `U₁·Γ·U₂ᵀ`; an error if the three no longer fit together.
    pub fn reconstruct(&self) -> Result<Array2<T>> {
        if self.u1.ncols() != self.core.nrows() || self.core.ncols() != self.u2.ncols() {
            return Err(Error::ShapeMismatch {
                op: "tucker-2 reconstruction (u1, core, u2)".into(),
                left: vec![self.u1.ncols(), self.u2.ncols()],
                right: self.core.shape().to_vec(),
            });
        }
        Ok(self.u1.dot(&self.core).dot(&self.u2.t()))
    }

    /// The numbers stored, `H·r₁ + r₁·r₂ + W·r₂`.
    pub fn parameter_count(&self) -> usize {
        self.u1.len() + self.core.len() + self.u2.len()
    }
}

/// Tucker-2 of a matrix: the `r1` leading left and `r2` leading right singular vectors, and
/// `Γ = U₁ᵀ·W·U₂`.
///
/// For a matrix this is the best approximation of its kind (HOOI would not improve it): `Γ` is
/// `diag(s)` cut to r₁×r₂, so the result equals the truncated SVD of rank `min(r1, r2)`. Ranks above
/// `min(H, W)` (up to H or W) pad the factor with an orthonormal basis of the complement, which
/// meets zero rows or columns of `Γ`.
///
/// ```
/// use lowrank::{ndarray::array, svd::frobenius_norm, tucker::tucker2};
/// let w = array![[3.0_f64, 0.0], [0.0, 2.0], [0.0, 0.0]];
/// let t = tucker2(w.view(), 1, 1)?;
/// assert!((t.core[[0, 0]] - 3.0).abs() < 1e-12);
/// assert!((frobenius_norm((&w - &t.reconstruct()?).view()) - 2.0).abs() < 1e-12);
/// assert_eq!(t.parameter_count(), 3 + 1 + 2);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn tucker2<T: Real>(w: ArrayView2<T>, r1: usize, r2: usize) -> Result<Tucker2<T>> {
    check_finite("matrix", &w)?;
    check_ranks(w.shape(), &[r1, r2])?;
    let d = crate::svd::svd(w)?;
    let u1 = leading_columns(d.u, r1)?;
    let u2 = leading_columns(d.vt.t().to_owned(), r2)?;
    let mut core = Array2::zeros((r1, r2));
    for (i, &value) in d.s.iter().enumerate().take(r1.min(r2)) {
        core[[i, i]] = value;
    }
    Ok(Tucker2 { u1, core, u2 })
}

/// `Π ranks + Σ shape[n]·ranks[n]`, the numbers a Tucker decomposition of that size stores.
///
/// ```
/// use lowrank::tucker::tucker_parameter_count;
/// assert_eq!(tucker_parameter_count(&[100, 100, 100], &[10, 10, 10])?, 1_000 + 3_000);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn tucker_parameter_count(shape: &[usize], ranks: &[usize]) -> Result<usize> {
    check_ranks(shape, ranks)?;
    let overflow = || Error::InvalidArgument {
        name: "ranks",
        value: format!("{ranks:?}"),
        reason: format!("the parameter count for shape {shape:?} overflows usize"),
    };
    let core = ranks
        .iter()
        .try_fold(1_usize, |product, &r| product.checked_mul(r))
        .ok_or_else(overflow)?;
    shape
        .iter()
        .zip(ranks)
        .try_fold(core, |sum, (&size, &r)| {
            sum.checked_add(size.checked_mul(r)?)
        })
        .ok_or_else(overflow)
}

/// `h·r1 + r1·r2 + w·r2`: the parameters of a Tucker-2 factorization of an h×w matrix.
///
/// ```
/// assert_eq!(lowrank::tucker::tucker2_parameter_count(768, 3072, 64, 128), 768 * 64 + 64 * 128 + 3072 * 128);
/// ```
pub fn tucker2_parameter_count(h: usize, w: usize, r1: usize, r2: usize) -> usize {
    h.saturating_mul(r1)
        .saturating_add(r1.saturating_mul(r2))
        .saturating_add(w.saturating_mul(r2))
}

/// `h·w / (h·r + r² + r·w)`: how many times smaller a rank-(r, r) Tucker-2 of an h×w matrix is.
///
/// ```
/// let ratio = lowrank::tucker::tucker2_compression_ratio(4096, 4096, 256);
/// assert!((ratio - 256.0 / 33.0).abs() < 1e-12);
/// ```
pub fn tucker2_compression_ratio(h: usize, w: usize, r: usize) -> f64 {
    let (h, w, r) = (h as f64, w as f64, r as f64);
    h * w / (h * r + r * r + r * w)
}

/// A tensor in row-major order: the layout every product below reads as matrices without copying.
struct Dense<'a, T: Clone> {
    shape: Vec<usize>,
    data: Cow<'a, [T]>,
}

impl<'a, T: Real> Dense<'a, T> {
    fn from_view(x: ArrayViewD<'a, T>) -> Self {
        let data = match x.to_slice() {
            Some(slice) => Cow::Borrowed(slice),
            None => Cow::Owned(x.iter().copied().collect()),
        };
        Dense {
            shape: x.shape().to_vec(),
            data,
        }
    }

    fn borrowed(&self) -> Dense<'_, T> {
        Dense {
            shape: self.shape.clone(),
            data: Cow::Borrowed(&self.data),
        }
    }

    /// `(Π sizes before, size, Π sizes after)` of `mode`: the tensor as a stack of matrices.
    fn split(&self, mode: usize) -> (usize, usize, usize) {
        (
            self.shape[..mode].iter().product(),
            self.shape[mode],
            self.shape[mode + 1..].iter().product(),
        )
    }

    fn into_array(self) -> Result<ArrayD<T>> {
        let len = self.data.len();
        ArrayD::from_shape_vec(IxDyn(&self.shape), self.data.into_owned()).map_err(|_| {
            Error::ShapeMismatch {
                op: "tensor from its elements".into(),
                left: self.shape,
                right: vec![len],
            }
        })
    }
}

/// `x ×_mode m` with `m` of shape J×Iₙ (checked by the callers).
///
/// Viewed as `(before, Iₙ, after)`, the product is `m · x[a]` for each of the `before` blocks: one
/// matrix product per block, reading the blocks in place. When `after == 1` all blocks stack
/// into one `(before × Iₙ) · mᵀ` product instead of many matrix-vector ones.
fn contract<T: Real>(x: &Dense<T>, m: MatRef<T>, mode: usize) -> Dense<'static, T> {
    let (before, size, after) = x.split(mode);
    let rows = m.nrows();
    let mut shape = x.shape.clone();
    shape[mode] = rows;
    let mut data = vec![T::zero(); before * rows * after];
    if !data.is_empty() && size > 0 {
        let par = faer::get_global_parallelism();
        if after == 1 {
            matmul(
                MatMut::from_row_major_slice_mut(&mut data, before, rows),
                Accum::Replace,
                MatRef::from_row_major_slice(&x.data, before, size),
                m.transpose(),
                T::one(),
                par,
            );
        } else {
            let blocks = x.data.chunks_exact(size * after);
            for (block, out) in blocks.zip(data.chunks_exact_mut(rows * after)) {
                matmul(
                    MatMut::from_row_major_slice_mut(out, rows, after),
                    Accum::Replace,
                    m,
                    MatRef::from_row_major_slice(block, size, after),
                    T::one(),
                    par,
                );
            }
        }
    }
    Dense {
        shape,
        data: Cow::Owned(data),
    }
}

/// `unfold(x, mode) · unfold(x, mode)ᵀ` (Iₙ×Iₙ), summed block by block without forming the unfolding.
fn gram<T: Real>(x: &Dense<T>, mode: usize) -> Mat<T> {
    let (before, size, after) = x.split(mode);
    let mut g = Mat::zeros(size, size);
    if x.data.is_empty() {
        return g;
    }
    let par = faer::get_global_parallelism();
    if after == 1 {
        let stacked = MatRef::from_row_major_slice(&x.data, before, size);
        matmul(
            &mut g,
            Accum::Replace,
            stacked.transpose(),
            stacked,
            T::one(),
            par,
        );
    } else {
        for block in x.data.chunks_exact(size * after) {
            let block = MatRef::from_row_major_slice(block, size, after);
            matmul(&mut g, Accum::Add, block, block.transpose(), T::one(), par);
        }
    }
    g
}

/// The `rank` leading left singular vectors of an unfolding, from the eigenvectors of its Gram matrix.
///
/// The unfoldings met here are short and wide (Iₙ × Π_{m≠n} I_m for the HOSVD, Iₙ × Π_{m≠n} R_m in
/// HOOI), so the Iₙ×Iₙ Gram matrix costs one product and a small symmetric eigensolve: measured on
/// one core, 6 ms against 21 ms for faer's thin SVD of a 100×10 000 unfolding, 1.1 ms against 2.2 ms
/// at 100×100. Squaring the singular values costs accuracy only in directions with tiny singular
/// values, which the leading vectors of a truncation do not need (HOOI's errors match tensorly's
/// LAPACK SVD to 1e-14 in the parity tests); and the eigenvectors form a full orthonormal basis, so
/// a rank above the unfolding's column count (tensorly pads those columns at random) still gets
/// orthonormal columns. Signs as tensorly's `svd_flip`: the largest-magnitude entry of each column
/// is positive.
fn leading_left_vectors<T: Real>(g: &Mat<T>, rank: usize) -> Result<Mat<T>> {
    let n = g.nrows();
    let eigen = g
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| Error::NoConvergence {
            op: "eigendecomposition of an unfolding's gram matrix",
            rows: n,
            cols: n,
        })?;
    // Eigenvalues come in ascending order: the leading vectors are the last columns, reversed.
    let u = eigen.U();
    let mut factor = Mat::from_fn(n, rank, |i, j| u[(i, n - 1 - j)]);
    for j in 0..rank {
        let mut largest = T::zero();
        for i in 0..n {
            if factor[(i, j)].abs() > largest.abs() {
                largest = factor[(i, j)];
            }
        }
        if largest < T::zero() {
            for i in 0..n {
                factor[(i, j)] = -factor[(i, j)];
            }
        }
    }
    Ok(factor)
}

fn hosvd_factors<T: Real>(x: &Dense<T>, ranks: &[usize]) -> Result<Vec<Mat<T>>> {
    ranks
        .iter()
        .enumerate()
        .map(|(mode, &rank)| leading_left_vectors(&gram(x, mode), rank))
        .collect()
}

/// `x ×ₙ Uₙᵀ` over all modes.
fn project<'a, T: Real>(x: Dense<'a, T>, factors: &[Mat<T>]) -> Dense<'a, T> {
    factors
        .iter()
        .enumerate()
        .fold(x, |y, (mode, u)| contract(&y, u.transpose(), mode))
}

/// One HOOI iteration: updates every factor in mode order and returns the new core.
///
/// Mode n needs `x` projected on every factor but its own: the new ones for modes before n, the
/// current ones after. The projection on modes `0..n` (`prefix`) grows by one mode per step and is
/// shared, so a sweep reads the full tensor only twice (for mode 0, then the prefix of mode 1),
/// where projecting from scratch for each mode, as tensorly does, reads it N + 1 times; the last
/// prefix is the core.
fn sweep<'a, T: Real>(
    x: &'a Dense<'a, T>,
    ranks: &[usize],
    factors: &mut [Mat<T>],
) -> Result<Dense<'a, T>> {
    let mut prefix = x.borrowed();
    for (mode, &rank) in ranks.iter().enumerate() {
        // The last mode first: its product is one matrix product over the whole tensor.
        let mut projected: Option<Dense<T>> = None;
        for later in (mode + 1..ranks.len()).rev() {
            let source = projected.as_ref().unwrap_or(&prefix);
            projected = Some(contract(source, factors[later].transpose(), later));
        }
        let g = gram(projected.as_ref().unwrap_or(&prefix), mode);
        factors[mode] = leading_left_vectors(&g, rank)?;
        prefix = contract(&prefix, factors[mode].transpose(), mode);
    }
    Ok(prefix)
}

fn into_tucker<T: Real>(core: Dense<T>, factors: &[Mat<T>]) -> Result<Tucker<T>> {
    Ok(Tucker {
        core: core.into_array()?,
        factors: factors.iter().map(|u| to_ndarray(u.as_ref())).collect(),
    })
}

/// The first `rank` columns of `q` (orthonormal columns), completed by an orthonormal basis of their
/// complement when `rank` exceeds them: the trailing columns of a full QR's Q.
fn leading_columns<T: Real>(q: Array2<T>, rank: usize) -> Result<Array2<T>> {
    let (rows, cols) = q.dim();
    if rank <= cols {
        return Ok(q.slice(s![.., ..rank]).to_owned());
    }
    let full = to_ndarray(to_faer(q.view()).qr().compute_Q().as_ref());
    let mut completed = Array2::zeros((rows, rank));
    completed.slice_mut(s![.., ..cols]).assign(&q);
    completed
        .slice_mut(s![.., cols..])
        .assign(&full.slice(s![.., cols..rank]));
    Ok(completed)
}

/// Finite, non-empty, at least one mode, and ranks that fit.
fn check_tensor<T: Real>(x: &ArrayViewD<T>, ranks: &[usize]) -> Result<()> {
    // The fast scan first: `check_finite` walks multi-indices, which is slow on big tensors, so it
    // only runs to name the offending element.
    if x.is_empty() || !x.iter().all(|value| value.is_finite()) {
        check_finite("tensor", x)?;
    }
    check_ranks(x.shape(), ranks)
}

fn check_ranks(shape: &[usize], ranks: &[usize]) -> Result<()> {
    let fail = |reason: String| {
        Err(Error::TuckerRanks {
            ranks: ranks.to_vec(),
            shape: shape.to_vec(),
            reason,
        })
    };
    if shape.is_empty() {
        return fail("a tensor needs at least one mode".into());
    }
    if ranks.len() != shape.len() {
        return fail(format!(
            "give one rank per mode: {} ranks for {} modes",
            ranks.len(),
            shape.len()
        ));
    }
    for (mode, (&rank, &size)) in ranks.iter().zip(shape).enumerate() {
        if rank == 0 || rank > size {
            return fail(format!(
                "the rank of mode {mode} must lie in 1..={size}, got {rank}"
            ));
        }
    }
    Ok(())
}

fn check_options(options: &Hooi) -> Result<()> {
    if options.max_iterations == 0 {
        return Err(Error::InvalidArgument {
            name: "max_iterations",
            value: "0".into(),
            reason: "HOOI needs at least one iteration".into(),
        });
    }
    if options.tolerance.is_nan() || options.tolerance <= 0.0 {
        return Err(Error::InvalidArgument {
            name: "tolerance",
            value: options.tolerance.to_string(),
            reason: "the tolerance must be positive".into(),
        });
    }
    Ok(())
}

fn check_mode(mode: usize, ndim: usize) -> Result<()> {
    if mode >= ndim {
        return Err(Error::InvalidArgument {
            name: "mode",
            value: mode.to_string(),
            reason: format!("a tensor with {ndim} modes has modes 0..{ndim}"),
        });
    }
    Ok(())
}

fn check_product_shape(shape: &[usize], mode: usize, matrix: &[usize], op: &str) -> Result<()> {
    if matrix[1] != shape[mode] {
        return Err(Error::ShapeMismatch {
            op: format!("{op} along mode {mode} (the matrix needs one column per index)"),
            left: shape.to_vec(),
            right: matrix.to_vec(),
        });
    }
    Ok(())
}

/// The axis order of `moveaxis(x, mode, 0)`.
fn mode_to_front(ndim: usize, mode: usize) -> Vec<usize> {
    std::iter::once(mode)
        .chain((0..ndim).filter(|&axis| axis != mode))
        .collect()
}

fn squared_norm<'a, T: Real>(values: impl Iterator<Item = &'a T>) -> f64 {
    values.map(|v| v.as_f64().powi(2)).sum()
}

/// `error / norm`, with 0/0 read as 0: the zero tensor is matched exactly.
fn relative(error: f64, norm: f64) -> f64 {
    if norm > 0.0 {
        error / norm
    } else if error == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn arange(shape: &[usize]) -> ArrayD<f64> {
        let len: usize = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), (0..len).map(|i| i as f64).collect())
            .expect("len elements")
    }

    #[test]
    fn unfold_matches_tensorly_layout() {
        // tensorly: unfold(np.arange(24.).reshape(2, 3, 4), 2)[1] == [1, 5, 9, 13, 17, 21].
        let m = unfold(arange(&[2, 3, 4]).view(), 2).unwrap();
        assert_eq!(m.dim(), (4, 6));
        assert_eq!(m.row(1).to_vec(), vec![1.0, 5.0, 9.0, 13.0, 17.0, 21.0]);
    }

    #[test]
    fn unfold_and_fold_of_a_non_standard_layout() {
        let x = arange(&[3, 4, 2]);
        let transposed = x.view().reversed_axes();
        let m = unfold(transposed.view(), 0).unwrap();
        assert_eq!(
            m.row(1).to_vec(),
            vec![
                1.0, 9.0, 17.0, 3.0, 11.0, 19.0, 5.0, 13.0, 21.0, 7.0, 15.0, 23.0
            ]
        );
        assert_eq!(fold(m.view(), 0, &[2, 4, 3]).unwrap(), transposed);
    }

    #[test]
    fn mode_product_unfolds_to_a_matrix_product() {
        let x = arange(&[2, 3, 4, 2]);
        let matrix = array![[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]];
        let product = mode_product(x.view(), matrix.view(), 1).unwrap();
        let expected = matrix.dot(&unfold(x.view(), 1).unwrap());
        assert_eq!(unfold(product.view(), 1).unwrap(), expected);
        let last = mode_product(x.view(), array![[1.0, 1.0]].view(), 3).unwrap();
        assert_eq!(last.shape(), &[2, 3, 4, 1]);
        assert_eq!(last[[1, 2, 3, 0]], 46.0 + 47.0);
    }

    #[test]
    fn mode_product_rejects_a_bad_matrix_or_mode() {
        let x = arange(&[2, 3]);
        let err = mode_product(x.view(), Array2::zeros((2, 2)).view(), 1).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
        let err = mode_product(x.view(), Array2::zeros((2, 3)).view(), 2).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { name: "mode", .. }),
            "{err}"
        );
    }

    #[test]
    fn hosvd_and_hooi_reject_bad_input() {
        let x = arange(&[3, 4, 2]);
        for ranks in [&[1, 1][..], &[0, 1, 1], &[4, 1, 1], &[1, 1, 3]] {
            let err = hosvd(x.view(), ranks).unwrap_err();
            assert!(
                matches!(&err, Error::TuckerRanks { shape, .. } if shape == &[3, 4, 2]),
                "{err}"
            );
            assert!(hooi(x.view(), ranks, &Hooi::default()).is_err());
        }
        let empty = ArrayD::<f64>::zeros(IxDyn(&[3, 0, 2]));
        assert!(matches!(
            hosvd(empty.view(), &[1, 1, 1]),
            Err(Error::Empty { .. })
        ));
        let mut bad = x.clone();
        bad[[2, 1, 0]] = f64::NAN;
        let err = hosvd(bad.view(), &[1, 1, 1]).unwrap_err();
        assert!(
            matches!(&err, Error::NonFinite { index, .. } if index == &[2, 1, 0]),
            "{err}"
        );
        let scalar = ArrayD::from_elem(IxDyn(&[]), 1.0);
        assert!(matches!(
            hosvd(scalar.view(), &[]),
            Err(Error::TuckerRanks { .. })
        ));
        for options in [
            Hooi {
                max_iterations: 0,
                tolerance: 1e-4,
            },
            Hooi {
                max_iterations: 10,
                tolerance: 0.0,
            },
            Hooi {
                max_iterations: 10,
                tolerance: f64::NAN,
            },
        ] {
            assert!(matches!(
                hooi(x.view(), &[1, 1, 1], &options),
                Err(Error::InvalidArgument { .. })
            ));
        }
        assert!(matches!(
            tucker2(array![[1.0, 2.0]].view(), 1, 3),
            Err(Error::TuckerRanks { .. })
        ));
    }

    #[test]
    fn hooi_stops_like_tensorly() {
        let x = arange(&[4, 3, 5]).mapv(|v| (v * 0.7).sin());
        let (_, one) = hooi(
            x.view(),
            &[2, 2, 2],
            &Hooi {
                max_iterations: 1,
                tolerance: 1.0,
            },
        )
        .unwrap();
        assert_eq!((one.iterations(), one.converged), (1, false));
        // A huge tolerance still runs three iterations: tensorly checks from `iteration > 1`.
        let (_, three) = hooi(
            x.view(),
            &[2, 2, 2],
            &Hooi {
                max_iterations: 50,
                tolerance: 1e9,
            },
        )
        .unwrap();
        assert_eq!((three.iterations(), three.converged), (3, true));
        assert_eq!(three.fits().len(), 3);
    }

    #[test]
    fn zero_tensor_decomposes_exactly() {
        let x = ArrayD::<f64>::zeros(IxDyn(&[3, 2, 2]));
        let (t, trace) = hooi(x.view(), &[1, 2, 1], &Hooi::default()).unwrap();
        assert_eq!(trace.final_relative_error(), 0.0);
        assert_eq!(t.relative_error(x.view()).unwrap(), 0.0);
    }

    #[test]
    fn rank_above_the_other_modes_product_keeps_orthonormal_factors() {
        // Mode 2's projected unfolding is 5×1 at ranks (1, 1, 4): only one singular vector exists.
        let x = arange(&[2, 2, 5]).mapv(|v| (v * 1.3).cos());
        let (t, _) = hooi(x.view(), &[1, 1, 4], &Hooi::default()).unwrap();
        let u = &t.factors[2];
        let off = (&u.t().dot(u) - &Array2::<f64>::eye(4))
            .iter()
            .map(|v| v.abs())
            .fold(0.0, f64::max);
        assert!(off < 1e-12, "‖UᵀU − I‖_max = {off}");
    }

    #[test]
    fn f32_hosvd_is_close_to_f64() {
        let x = arange(&[5, 4, 3]).mapv(|v| (v * 0.37).sin());
        let t64 = hosvd(x.view(), &[2, 2, 2]).unwrap();
        let x32 = x.mapv(|v| v as f32);
        let t32 = hosvd(x32.view(), &[2, 2, 2]).unwrap();
        let (e64, e32) = (
            t64.relative_error(x.view()).unwrap(),
            t32.relative_error(x32.view()).unwrap(),
        );
        assert!((e64 - e32).abs() < 1e-5, "{e64} vs {e32}");
    }

    #[test]
    fn tucker2_pads_ranks_above_the_smaller_side() {
        let w = arange(&[5, 2])
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .mapv(|v| v.sqrt());
        let t = tucker2(w.view(), 4, 2).unwrap();
        assert_eq!(
            (t.u1.dim(), t.core.dim(), t.u2.dim()),
            ((5, 4), (4, 2), (2, 2))
        );
        let off = (&t.u1.t().dot(&t.u1) - &Array2::<f64>::eye(4))
            .iter()
            .map(|v| v.abs())
            .fold(0.0, f64::max);
        assert!(off < 1e-12);
        let error = (&w - &t.reconstruct().unwrap())
            .iter()
            .map(|v| v.abs())
            .fold(0.0, f64::max);
        assert!(error < 1e-12);
    }
}
