//! Lowrank's SVD against numpy's `np.linalg.svd` (LAPACK gesdd) on the matrices that break naive
//! implementations: random, ill-conditioned, rank-deficient, tall, wide; and the randomized SVD
//! against the optimal error Eckart–Young gives from numpy's spectrum.

use lowrank::svd::{RandomizedSvd, optimal_frobenius_error, randomized_svd, svd};
use ndarray::{Array1, Array2, Axis};
use parity::{assert_close, load, reference, save};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gaussian(seed: u64, m: usize, n: usize) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((m, n), |_| {
        // Box–Muller keeps this crate free of rand_distr.
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    })
}

/// `Q1·diag(s)·Q2ᵀ` with random orthonormal Q1, Q2: a matrix with exactly the spectrum `s`.
fn with_spectrum(seed: u64, m: usize, n: usize, s: &[f64]) -> Array2<f64> {
    let q1 = svd(gaussian(seed, m, s.len()).view()).expect("svd").u;
    let q2 = svd(gaussian(seed + 1, n, s.len()).view()).expect("svd").u;
    let s = Array1::from(s.to_vec());
    (&q1 * &s.view().insert_axis(Axis(0))).dot(&q2.t())
}

fn checkerboard(side: usize) -> Array2<f64> {
    Array2::from_shape_fn((side, side), |(i, j)| {
        if (i / 8 + j / 8) % 2 == 0 { 200.0 } else { 0.0 }
    })
}

fn test_matrices() -> Vec<(&'static str, Array2<f64>, Vec<usize>)> {
    let graded: Vec<f64> = (0..50)
        .map(|i| 10f64.powf(-12.0 * i as f64 / 49.0))
        .collect();
    let rank5: Vec<f64> = vec![9.0, 5.0, 3.0, 1.0, 0.5];
    vec![
        ("random 60x40", gaussian(1, 60, 40), vec![1, 10, 39]),
        (
            "ill-conditioned 50x50 (cond 1e12)",
            with_spectrum(2, 50, 50, &graded),
            vec![5, 25],
        ),
        (
            "rank-deficient 40x30 (rank 5)",
            with_spectrum(4, 40, 30, &rank5),
            vec![2, 5],
        ),
        ("tall 300x20", gaussian(6, 300, 20), vec![3, 19]),
        ("wide 20x300", gaussian(7, 20, 300), vec![3, 19]),
        ("single row 1x12", gaussian(8, 1, 12), vec![1]),
        // Exactly rank 2 with many equal zeros: faer once returned its values out of order here.
        ("checkerboard 64x64 (rank 2)", checkerboard(64), vec![1, 2]),
    ]
}

#[test]
fn svd_f64_equals_numpy_to_1e10() {
    for (name, a, ranks) in test_matrices() {
        let dir = tempfile::tempdir().expect("temp dir");
        save(dir.path(), "a", &a.view());
        let rank_args = ranks.iter().map(usize::to_string);
        reference(
            "svd.py",
            std::iter::once(dir.path().display().to_string()).chain(rank_args),
        );
        let expected_s: Array1<f64> = load(&dir.path().join("s.npy"));
        let ours = svd(a.view()).expect("svd");
        let scale = expected_s[0];
        assert_close(
            &format!("{name}: singular values"),
            &ours.s.view(),
            &expected_s.view(),
            1e-10,
            scale,
        );
        let full: Array2<f64> = load(&dir.path().join("full.npy"));
        assert_close(
            &format!("{name}: reconstruction"),
            &ours.reconstruct().view(),
            &full.view(),
            1e-10,
            scale,
        );
        for k in ranks {
            let expected: Array2<f64> = load(&dir.path().join(format!("rank_{k}.npy")));
            let truncated = ours.truncate(k).expect("truncate").reconstruct();
            assert_close(
                &format!("{name}: rank-{k} reconstruction"),
                &truncated.view(),
                &expected.view(),
                1e-10,
                scale,
            );
        }
    }
}

#[test]
fn svd_f32_equals_numpy_float32() {
    let a = gaussian(11, 80, 50).mapv(|x| x as f32);
    let dir = tempfile::tempdir().expect("temp dir");
    save(dir.path(), "a", &a.view());
    let result = reference("svd.py", [dir.path().display().to_string(), "8".into()]);
    assert_eq!(
        result["dtype"], "float32",
        "numpy must see the same float32 data"
    );
    let expected_s: Array1<f32> = load(&dir.path().join("s.npy"));
    let expected_8: Array2<f32> = load(&dir.path().join("rank_8.npy"));
    let ours = svd(a.view()).expect("svd");
    let scale = f64::from(expected_s[0]);
    let widen1 = |x: &Array1<f32>| x.mapv(f64::from);
    let widen2 = |x: &Array2<f32>| x.mapv(f64::from);
    assert_close(
        "f32 singular values",
        &widen1(&ours.s).view(),
        &widen1(&expected_s).view(),
        1e-5,
        scale,
    );
    let ours_8 = ours.truncate(8).expect("truncate").reconstruct();
    assert_close(
        "f32 rank-8 reconstruction",
        &widen2(&ours_8).view(),
        &widen2(&expected_8).view(),
        1e-5,
        scale,
    );
}

#[test]
fn randomized_svd_error_within_5_percent_of_optimal() {
    let decaying: Vec<f64> = (0..120).map(|i| 1.0 / (1.0 + i as f64).powf(0.8)).collect();
    let cases = [
        (
            "decaying spectrum 400x120, rank 10",
            with_spectrum(20, 400, 120, &decaying),
            10,
        ),
        (
            "decaying spectrum 400x120, rank 40",
            with_spectrum(20, 400, 120, &decaying),
            40,
        ),
        ("gaussian 300x200, rank 20", gaussian(21, 300, 200), 20),
        ("gaussian 100x500, rank 5", gaussian(22, 100, 500), 5),
    ];
    for (name, a, rank) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        save(dir.path(), "a", &a.view());
        reference("svd.py", [dir.path().display().to_string()]);
        let numpy_s: Array1<f64> = load(&dir.path().join("s.npy"));
        let optimal = optimal_frobenius_error(numpy_s.view(), rank);
        let approx = randomized_svd(a.view(), rank, &RandomizedSvd::default()).expect("rsvd");
        let error = lowrank::svd::frobenius_norm((&a - &approx.reconstruct()).view());
        assert!(
            error <= 1.05 * optimal,
            "{name}: randomized error {error} is {:.4}x the optimal {optimal}",
            error / optimal
        );
    }
}
