//! Properties the lessons teach, checked on random small matrices: the SVD's factors are
//! orthonormal and its values sorted, truncation error equals the spectrum's tail (Eckart–Young),
//! the randomized SVD is exact on exactly-low-rank input, and the FLOP counter gives 2mnp.

use lowrank::matrices::{matmul, matmul_flops, naive_matmul};
use lowrank::spectrum::{effective_rank, energy_kept, rank_for_energy};
use lowrank::svd::{
    RandomizedSvd, approximation_error, frobenius_norm, optimal_frobenius_error,
    optimal_spectral_error, randomized_svd, svd,
};
use ndarray::Array2;
use proptest::prelude::*;

fn matrix(max_side: usize) -> impl Strategy<Value = Array2<f64>> {
    (1..=max_side, 1..=max_side).prop_flat_map(|(m, n)| {
        proptest::collection::vec(-10.0..10.0_f64, m * n)
            .prop_map(move |values| Array2::from_shape_vec((m, n), values).expect("m*n values"))
    })
}

fn assert_orthonormal_columns(q: &Array2<f64>, what: &str) -> Result<(), TestCaseError> {
    let gram = q.t().dot(q);
    let identity = Array2::<f64>::eye(q.ncols());
    let off = frobenius_norm((&gram - &identity).view());
    prop_assert!(off < 1e-10, "{what}: ‖QᵀQ − I‖_F = {off}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn factors_are_orthonormal_and_values_sorted(a in matrix(12)) {
        let d = svd(a.view()).unwrap();
        assert_orthonormal_columns(&d.u, "U")?;
        assert_orthonormal_columns(&d.vt.t().to_owned(), "V")?;
        prop_assert!(d.s.iter().all(|&x| x >= 0.0));
        prop_assert!(d.s.windows(2).into_iter().all(|w| w[0] >= w[1]));
        let residual = frobenius_norm((&a - &d.reconstruct()).view());
        prop_assert!(residual <= 1e-10 * frobenius_norm(a.view()).max(1.0));
    }

    #[test]
    fn truncation_error_is_the_spectrum_tail(a in matrix(12), pick in 0.0..1.0_f64) {
        let d = svd(a.view()).unwrap();
        let k = 1 + (pick * (d.rank() as f64 - 1.0)).round() as usize;
        let error = approximation_error(a.view(), d.truncate(k).unwrap().reconstruct().view()).unwrap();
        let tol = 1e-9 * d.s[0].max(1.0);
        prop_assert!((error.frobenius - optimal_frobenius_error(d.s.view(), k)).abs() < tol);
        prop_assert!((error.spectral - optimal_spectral_error(d.s.view(), k)).abs() < tol);
        // Energy kept is 1 − (relative Frobenius error)².
        let total = frobenius_norm(a.view());
        if total > 0.0 {
            let kept = energy_kept(d.s.view(), k);
            prop_assert!((kept - (1.0 - (error.frobenius / total).powi(2))).abs() < 1e-9);
            let needed = rank_for_energy(d.s.view(), kept).unwrap();
            prop_assert!(needed <= k);
        }
    }

    #[test]
    fn randomized_svd_is_exact_on_low_rank_input(
        u in matrix(3).prop_filter("tall enough", |u| u.nrows() >= 1),
        seed in 0..1000_u64,
    ) {
        // Build an (m+10)×(n+8) matrix of rank ≤ min(m, n) from small random factors.
        let left = Array2::from_shape_fn((u.nrows() + 10, u.nrows()), |(i, j)| ((i * 7 + j * 13) % 5) as f64 - 2.0 + u[[j % u.nrows(), 0]]);
        let a = left.dot(&u).dot(&Array2::from_shape_fn((u.ncols(), u.ncols() + 8), |(i, j)| ((i * 3 + j * 5) % 7) as f64 - 3.0));
        let exact = svd(a.view()).unwrap();
        let rank = (1..=exact.rank()).find(|&k| exact.s.get(k).is_none_or(|&s| s <= 1e-9 * exact.s[0].max(1e-300))).unwrap_or(exact.rank());
        let options = RandomizedSvd { seed, ..RandomizedSvd::default() };
        let approx = randomized_svd(a.view(), rank, &options).unwrap();
        let residual = frobenius_norm((&a - &approx.reconstruct()).view());
        prop_assert!(residual <= 1e-8 * frobenius_norm(a.view()).max(1.0), "residual {residual}");
    }

    #[test]
    fn flop_counter_gives_2mnp(a in matrix(8), p in 1..8_usize) {
        let b = Array2::from_shape_fn((a.ncols(), p), |(i, j)| (i + 2 * j) as f64);
        let counted = naive_matmul(a.view(), b.view()).unwrap();
        let fast = matmul(a.view(), b.view()).unwrap();
        prop_assert_eq!(counted.flops, matmul_flops(a.nrows(), a.ncols(), p));
        prop_assert_eq!(fast.flops, counted.flops);
        prop_assert!(frobenius_norm((&counted.value - &fast.value).view()) < 1e-9 * (1.0 + frobenius_norm(fast.value.view())));
    }

    #[test]
    fn effective_rank_lies_between_one_and_the_rank(a in matrix(10)) {
        let d = svd(a.view()).unwrap();
        let numerical_rank = d.s.iter().filter(|&&s| s > 1e-12 * d.s[0]).count();
        let e = effective_rank(d.s.view());
        if numerical_rank > 0 {
            prop_assert!(e >= 1.0 - 1e-12 && e <= numerical_rank as f64 + 1e-9, "erank {e} rank {numerical_rank}");
        }
    }
}

#[test]
fn bad_input_gives_errors_naming_the_values() {
    let a = Array2::<f64>::zeros((4, 3));
    let message = lowrank::svd::truncated_svd(a.view(), 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "rank 0 is out of range for a 4x3 matrix: choose 1..=3"
    );
    let message = lowrank::svd::truncated_svd(a.view(), 4)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("rank 4") && message.contains("1..=3"),
        "{message}"
    );
    let message = randomized_svd(a.view(), 9, &RandomizedSvd::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("rank 9"), "{message}");
    let empty = Array2::<f64>::zeros((0, 3));
    assert_eq!(
        svd(empty.view()).unwrap_err().to_string(),
        "matrix is empty (shape [0, 3])"
    );
    let mut nan = Array2::<f32>::ones((2, 2));
    nan[[1, 0]] = f32::NAN;
    assert_eq!(
        svd(nan.view()).unwrap_err().to_string(),
        "matrix holds the non-finite value NaN at index [1, 0]"
    );
    let message = matmul(a.view(), a.view()).unwrap_err().to_string();
    assert!(message.contains("[4, 3] and [4, 3]"), "{message}");
    let message = rank_for_energy(ndarray::array![1.0].view(), 1.5)
        .unwrap_err()
        .to_string();
    assert!(message.contains("energy = 1.5"), "{message}");
    let message = approximation_error(a.view(), Array2::zeros((3, 4)).view())
        .unwrap_err()
        .to_string();
    assert!(message.contains("[4, 3] and [3, 4]"), "{message}");
}

/// Regression: faer 0.24.4 returned the singular values of a checkerboard out of order, so the
/// best rank-2 approximation dropped σ₂ and missed by 51200 instead of 0.
#[test]
fn truncation_keeps_the_largest_values_of_an_exactly_low_rank_matrix() {
    for side in [128, 512] {
        let board = Array2::from_shape_fn((side, side), |(i, j)| {
            if (i / 32 + j / 32) % 2 == 0 {
                200.0
            } else {
                0.0
            }
        });
        let d = svd(board.view()).unwrap();
        assert!(
            d.s.windows(2).into_iter().all(|w| w[0] >= w[1]),
            "{side}: values out of order"
        );
        let rank2 = lowrank::svd::truncated_svd(board.view(), 2)
            .unwrap()
            .reconstruct();
        let error = frobenius_norm((&board - &rank2).view());
        assert!(
            error < 1e-9 * frobenius_norm(board.view()),
            "{side}: rank-2 error {error}"
        );
        assert!(
            (lowrank::svd::spectral_norm(board.view()).unwrap() - d.s[0]).abs() < 1e-9 * d.s[0]
        );
    }
}
