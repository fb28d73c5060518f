//! Lowrank's HOSVD and HOOI against tensorly 0.10's `tucker(init="svd")` on the same tensors: a
//! low-multilinear-rank tensor with noise, a pure Gaussian one, a 4-way one, ranks above what an
//! unfolding can give, and a run cut short by the iteration cap. HOOI must take as many iterations
//! as tensorly and report the same relative error after each one.

use lowrank::svd::svd;
use lowrank::tucker::{Hooi, hooi, hosvd, multi_mode_product};
use ndarray::{Array2, ArrayD, ArrayView2, IxDyn};
use parity::{assert_close, load, number, reference, save};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn gaussian(rng: &mut ChaCha8Rng, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.sample(StandardNormal))
}

fn norm(x: &ArrayD<f64>) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// `G ×ₙ Qₙ` for a Gaussian core `G` of shape `ranks` and random orthonormal `Qₙ`, scaled to norm 1,
/// plus Gaussian noise of norm `noise`.
fn low_multilinear_rank(seed: u64, shape: &[usize], ranks: &[usize], noise: f64) -> ArrayD<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let core = gaussian(&mut rng, ranks);
    let factors: Vec<Array2<f64>> = shape
        .iter()
        .zip(ranks)
        .map(|(&size, &rank)| {
            let g = gaussian(&mut rng, &[size, rank])
                .into_dimensionality()
                .expect("2-D");
            svd(g.view()).expect("svd").u
        })
        .collect();
    let views: Vec<ArrayView2<f64>> = factors.iter().map(|u| u.view()).collect();
    let clean = multi_mode_product(core.view(), &views).expect("tucker tensor");
    let noise_part = gaussian(&mut rng, shape);
    &clean / norm(&clean) + &noise_part * (noise / norm(&noise_part))
}

struct Case {
    name: &'static str,
    x: ArrayD<f64>,
    ranks: Vec<usize>,
    options: Hooi,
    /// A rank exceeds what an unfolding can give, so factors get padded (see
    /// `rank_above_what_the_unfolding_gives`): only the first HOOI iteration can match.
    padded: bool,
}

/// Runs tensorly on `case` and compares HOSVD (core, factors, reconstruction) and HOOI (the
/// iteration count, the relative error of every iteration, the reconstruction).
fn check(case: Case) {
    let Case {
        name,
        x,
        ranks,
        options,
        padded,
    } = case;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = save(dir.path(), "x", &x.view());
    let ranks_arg = ranks
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let result = reference(
        "tucker.py",
        [
            path.display().to_string(),
            ranks_arg,
            options.tolerance.to_string(),
            options.max_iterations.to_string(),
        ],
    );
    assert_eq!(
        result["dtype"], "float64",
        "{name}: tensorly must see the same float64 data"
    );
    let scale = norm(&x);

    let ours = hosvd(x.view(), &ranks).expect("hosvd");
    let core_norm_difference = (norm(&ours.core) - number(&result, "hosvd_core_norm")).abs();
    assert!(
        core_norm_difference <= 1e-12 * scale,
        "{name}: HOSVD core norms differ by {core_norm_difference:e}"
    );
    let core: ArrayD<f64> = load(&dir.path().join("hosvd_core.npy"));
    assert_close(
        &format!("{name}: HOSVD core"),
        &ours.core.view(),
        &core.view(),
        1e-9,
        scale,
    );
    for (mode, factor) in ours.factors.iter().enumerate() {
        let expected: Array2<f64> = load(&dir.path().join(format!("hosvd_factor_{mode}.npy")));
        assert_close(
            &format!("{name}: HOSVD factor {mode}"),
            &factor.view(),
            &expected.view(),
            1e-9,
            1.0,
        );
    }
    let expected: ArrayD<f64> = load(&dir.path().join("hosvd_reconstruction.npy"));
    let reconstruction = ours.reconstruct().expect("reconstruct");
    assert_close(
        &format!("{name}: HOSVD reconstruction"),
        &reconstruction.view(),
        &expected.view(),
        1e-12,
        scale,
    );

    let (tucker, trace) = hooi(x.view(), &ranks, &options).expect("hooi");
    let expected_errors: Vec<f64> = result["relative_errors"]
        .as_array()
        .expect("relative_errors is a list")
        .iter()
        .map(|e| e.as_f64().expect("a number"))
        .collect();
    if padded {
        let first_difference = (trace.relative_errors[0] - expected_errors[0]).abs();
        assert!(
            first_difference <= 1e-10,
            "{name}: first HOOI iteration differs by {first_difference:e}"
        );
        let final_difference =
            (trace.final_relative_error() - expected_errors[expected_errors.len() - 1]).abs();
        assert!(
            final_difference <= 1e-3,
            "{name}: final relative errors differ by {final_difference:e}"
        );
        eprintln!(
            "{name}: tensorly {}, first iteration |Δ rel. error| {first_difference:.1e}; then the padding differs: \
             {} iterations and relative error {:.8} here, {} and {:.8} in tensorly",
            result["tensorly"],
            trace.iterations(),
            trace.final_relative_error(),
            expected_errors.len(),
            expected_errors[expected_errors.len() - 1],
        );
        return;
    }
    assert_eq!(
        trace.iterations(),
        expected_errors.len(),
        "{name}: iteration counts differ"
    );
    assert_eq!(
        trace.converged,
        expected_errors.len() < options.max_iterations,
        "{name}: convergence"
    );
    let worst_error_difference = trace
        .relative_errors
        .iter()
        .zip(&expected_errors)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst_error_difference <= 1e-10,
        "{name}: relative errors differ by up to {worst_error_difference:e}"
    );
    let fit_difference = (trace.final_fit() - number(&result, "fit")).abs();
    assert!(
        fit_difference <= 1e-6,
        "{name}: fits differ by {fit_difference:e}"
    );
    let expected: ArrayD<f64> = load(&dir.path().join("hooi_reconstruction.npy"));
    let reconstruction = tucker.reconstruct().expect("reconstruct");
    let reconstruction_difference = norm(&(&reconstruction - &expected)) / scale;
    assert!(
        reconstruction_difference <= 1e-8,
        "{name}: HOOI reconstructions differ by {reconstruction_difference:e} relative to ‖x‖"
    );
    eprintln!(
        "{name}: tensorly {}, {} iterations, fit {:.12}; |Δfit| {fit_difference:.1e}, max |Δ rel. error| \
         {worst_error_difference:.1e}, ‖ΔHOOI reconstruction‖/‖x‖ {reconstruction_difference:.1e}, |Δ‖HOSVD core‖| {core_norm_difference:.1e}",
        result["tensorly"],
        trace.iterations(),
        trace.final_fit(),
    );
}

#[test]
fn low_multilinear_rank_with_noise() {
    check(Case {
        name: "rank (4, 3, 5) + 5% noise, 20x18x16",
        x: low_multilinear_rank(1, &[20, 18, 16], &[4, 3, 5], 0.05),
        ranks: vec![4, 3, 5],
        options: Hooi {
            max_iterations: 100,
            tolerance: 1e-8,
        },
        padded: false,
    });
}

#[test]
fn pure_gaussian() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    check(Case {
        name: "Gaussian 15x12x10, ranks (5, 4, 3)",
        x: gaussian(&mut rng, &[15, 12, 10]),
        ranks: vec![5, 4, 3],
        options: Hooi {
            max_iterations: 100,
            tolerance: 1e-6,
        },
        padded: false,
    });
}

#[test]
fn four_way() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = low_multilinear_rank(3, &[8, 7, 6, 5], &[3, 3, 2, 2], 0.2)
        + gaussian(&mut rng, &[8, 7, 6, 5]) * 0.01;
    check(Case {
        name: "4-way 8x7x6x5, ranks (3, 3, 2, 2)",
        x,
        ranks: vec![3, 3, 2, 2],
        options: Hooi::default(),
        padded: false,
    });
}

#[test]
fn rank_above_what_the_unfolding_gives() {
    // Mode 2's projected unfolding is 6x4 at ranks (2, 2, 5): tensorly pads the fifth column at random,
    // Lowrank with an eigenvector of its Gram matrix. Either meets a zero slice of the core, so the
    // first iteration agrees, but the padding steers the next updates: tensorly's own trajectory
    // changes with `random_state` (7 to 9 iterations, relative errors 0.78223 to 0.78225 for states 0-3).
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    check(Case {
        name: "Gaussian 6x6x6, ranks (2, 2, 5)",
        x: gaussian(&mut rng, &[6, 6, 6]),
        ranks: vec![2, 2, 5],
        options: Hooi::default(),
        padded: true,
    });
}

#[test]
fn iteration_cap() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    check(Case {
        name: "Gaussian 10x9x8 capped at 7 iterations",
        x: gaussian(&mut rng, &[10, 9, 8]),
        ranks: vec![3, 3, 3],
        options: Hooi {
            max_iterations: 7,
            tolerance: 1e-14,
        },
        padded: false,
    });
}
