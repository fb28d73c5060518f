//! Properties the Tucker lessons teach, checked on random small tensors: unfolding and folding are
//! inverse, full-rank Tucker is exact, factors are orthonormal, the HOSVD core holds the captured
//! energy, HOOI never does worse than its HOSVD start and never goes backwards, Tucker-2 of a matrix
//! is its truncated SVD, and the parameter-count formulas count the arrays.

use lowrank::svd::{frobenius_norm, optimal_frobenius_error, svd};
use lowrank::tucker::{
    Hooi, fold, hooi, hosvd, mode_product, tucker_parameter_count, tucker2,
    tucker2_compression_ratio, tucker2_parameter_count, unfold,
};
use ndarray::{Array2, ArrayD, IxDyn};
use proptest::prelude::*;

/// A tensor of 1 to 4 modes, each of size 1 to 5, with values in [-10, 10).
fn tensor() -> impl Strategy<Value = ArrayD<f64>> {
    proptest::collection::vec(1..=5_usize, 1..=4).prop_flat_map(|shape| {
        let len: usize = shape.iter().product();
        proptest::collection::vec(-10.0..10.0_f64, len).prop_map(move |values| {
            ArrayD::from_shape_vec(IxDyn(&shape), values).expect("len values")
        })
    })
}

/// A tensor with ranks in 1..=size for each mode.
fn tensor_and_ranks() -> impl Strategy<Value = (ArrayD<f64>, Vec<usize>)> {
    tensor().prop_flat_map(|x| {
        let picks = proptest::collection::vec(0.0..1.0_f64, x.ndim());
        (Just(x), picks).prop_map(|(x, picks)| {
            let ranks = x
                .shape()
                .iter()
                .zip(picks)
                .map(|(&size, pick)| 1 + (pick * (size - 1) as f64).round() as usize)
                .collect();
            (x, ranks)
        })
    })
}

fn matrix(max_side: usize) -> impl Strategy<Value = Array2<f64>> {
    (1..=max_side, 1..=max_side).prop_flat_map(|(m, n)| {
        proptest::collection::vec(-10.0..10.0_f64, m * n)
            .prop_map(move |values| Array2::from_shape_vec((m, n), values).expect("m*n values"))
    })
}

fn norm(x: &ArrayD<f64>) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn max_abs_difference(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn assert_orthonormal_columns(u: &Array2<f64>, what: &str) -> Result<(), TestCaseError> {
    let off = frobenius_norm((&u.t().dot(u) - &Array2::<f64>::eye(u.ncols())).view());
    prop_assert!(off < 1e-10, "{what}: ‖UᵀU − I‖_F = {off}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn fold_inverts_unfold_and_mode_product_is_a_matrix_product(x in tensor(), seed in 0..1000_u64) {
        for mode in 0..x.ndim() {
            let unfolded = unfold(x.view(), mode).unwrap();
            prop_assert_eq!(unfolded.nrows(), x.shape()[mode]);
            prop_assert_eq!(&fold(unfolded.view(), mode, x.shape()).unwrap(), &x);
            let rows = 1 + (seed as usize + mode) % 4;
            let m = Array2::from_shape_fn((rows, x.shape()[mode]), |(i, j)| ((seed + 3 * i as u64 + j as u64) % 7) as f64 - 3.0);
            let product = mode_product(x.view(), m.view(), mode).unwrap();
            let expected = m.dot(&unfolded);
            let difference = (&unfold(product.view(), mode).unwrap() - &expected).iter().map(|v| v.abs()).fold(0.0, f64::max);
            prop_assert!(difference <= 1e-12 * expected.iter().map(|v| v.abs()).fold(1.0, f64::max));
        }
    }

    #[test]
    fn full_rank_tucker_reconstructs_exactly(x in tensor()) {
        let ranks = x.shape().to_vec();
        let full = hosvd(x.view(), &ranks).unwrap();
        let error = max_abs_difference(&full.reconstruct().unwrap(), &x);
        prop_assert!(error <= 1e-10 * norm(&x).max(1.0), "HOSVD at full rank misses by {error:e}");
        let (full, _) = hooi(x.view(), &ranks, &Hooi::default()).unwrap();
        let error = max_abs_difference(&full.reconstruct().unwrap(), &x);
        prop_assert!(error <= 1e-10 * norm(&x).max(1.0), "HOOI at full rank misses by {error:e}");
    }

    #[test]
    fn hosvd_factors_are_orthonormal_and_the_core_holds_the_captured_energy((x, ranks) in tensor_and_ranks()) {
        let t = hosvd(x.view(), &ranks).unwrap();
        prop_assert_eq!(t.core.shape(), &ranks[..]);
        for (mode, u) in t.factors.iter().enumerate() {
            prop_assert_eq!(u.dim(), (x.shape()[mode], ranks[mode]));
            assert_orthonormal_columns(u, &format!("HOSVD factor {mode}"))?;
        }
        // An orthogonal projection: ‖x‖² = ‖core‖² + ‖x − reconstruction‖².
        let residual = norm(&(&x - &t.reconstruct().unwrap()));
        let pythagoras = norm(&x).powi(2) - norm(&t.core).powi(2) - residual.powi(2);
        prop_assert!(pythagoras.abs() <= 1e-10 * norm(&x).powi(2).max(1.0), "off by {pythagoras:e}");
    }

    #[test]
    fn hooi_never_does_worse_than_hosvd_and_never_goes_backwards((x, ranks) in tensor_and_ranks()) {
        let start = hosvd(x.view(), &ranks).unwrap();
        let (t, trace) = hooi(x.view(), &ranks, &Hooi::default()).unwrap();
        for (mode, u) in t.factors.iter().enumerate() {
            assert_orthonormal_columns(u, &format!("HOOI factor {mode}"))?;
        }
        let (ours, theirs) = (t.relative_error(x.view()).unwrap(), start.relative_error(x.view()).unwrap());
        prop_assert!(ours <= theirs + 1e-12, "HOOI {ours} above HOSVD {theirs}");
        // Compared squared: the trace's sqrt(|‖x‖² − ‖core‖²|) magnifies round-off near zero error.
        let squared: Vec<f64> = std::iter::once(trace.initial_relative_error)
            .chain(trace.relative_errors.iter().copied())
            .map(|e| e * e)
            .collect();
        for pair in squared.windows(2) {
            prop_assert!(pair[1] <= pair[0] + 1e-12, "the error went up: {:?}", trace.relative_errors);
        }
        prop_assert!((trace.final_relative_error().powi(2) - ours.powi(2)).abs() <= 1e-12);
        prop_assert!((trace.initial_relative_error.powi(2) - theirs.powi(2)).abs() <= 1e-12);
        prop_assert_eq!(trace.fits().len(), trace.iterations());
        // tensorly checks for convergence from the third iteration on.
        prop_assert!(trace.iterations() >= 3);
    }

    #[test]
    fn parameter_counts_count_the_arrays((x, ranks) in tensor_and_ranks()) {
        let t = hosvd(x.view(), &ranks).unwrap();
        prop_assert_eq!(tucker_parameter_count(x.shape(), &ranks).unwrap(), t.parameter_count());
        let stored = t.core.len() + t.factors.iter().map(Array2::len).sum::<usize>();
        prop_assert_eq!(t.parameter_count(), stored);
    }

    #[test]
    fn tucker2_is_the_truncated_svd(w in matrix(8), pick1 in 0.0..1.0_f64, pick2 in 0.0..1.0_f64) {
        let (h, wd) = w.dim();
        let full = tucker2(w.view(), h, wd).unwrap();
        let error = (&w - &full.reconstruct().unwrap()).iter().map(|v| v.abs()).fold(0.0, f64::max);
        prop_assert!(error <= 1e-10 * frobenius_norm(w.view()).max(1.0), "full rank misses by {error:e}");
        assert_orthonormal_columns(&full.u1, "U1 at full rank")?;
        assert_orthonormal_columns(&full.u2, "U2 at full rank")?;

        let r1 = 1 + (pick1 * (h - 1) as f64).round() as usize;
        let r2 = 1 + (pick2 * (wd - 1) as f64).round() as usize;
        let t = tucker2(w.view(), r1, r2).unwrap();
        prop_assert_eq!((t.u1.dim(), t.core.dim(), t.u2.dim()), ((h, r1), (r1, r2), (wd, r2)));
        assert_orthonormal_columns(&t.u1, "U1")?;
        assert_orthonormal_columns(&t.u2, "U2")?;
        let s = svd(w.view()).unwrap().s;
        let error = frobenius_norm((&w - &t.reconstruct().unwrap()).view());
        let optimal = optimal_frobenius_error(s.view(), r1.min(r2));
        prop_assert!((error - optimal).abs() <= 1e-9 * s[0].max(1.0), "{error} vs Eckart–Young {optimal}");

        prop_assert_eq!(tucker2_parameter_count(h, wd, r1, r2), t.parameter_count());
        let square = tucker2(w.view(), r1.min(r2), r1.min(r2)).unwrap();
        let ratio = tucker2_compression_ratio(h, wd, r1.min(r2));
        prop_assert!((ratio - (h * wd) as f64 / square.parameter_count() as f64).abs() < 1e-12);
    }
}
