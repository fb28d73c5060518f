//! Lesson 02, the SVD on images: its exercises, checked against [`lowrank::svd`] and
//! [`lowrank::spectrum`].

use ndarray::{Array1, Array2};
use rand::Rng;

use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::{gaussian_matrix, spectrum, svd};

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "02-rank-for-energy",
        lesson: "02-svd-on-images",
        title: "The rank that keeps a share of the energy",
        task: "Given singular values in decreasing order and a threshold in (0, 1], return the smallest \
               rank k whose first k values hold at least that share of the energy Σσ².",
        hint: "energy is the sum of squared singular values, not of the values; stop at the first k that reaches the threshold",
        template: "fn answer(singular_values: &[f64], threshold: f64) -> usize {\n    todo!()\n}\n",
        checker: "lab::svd_on_images::check_rank_for_energy",
        self_test: || SelfTest {
            reference: check_rank_for_energy(|s, t| {
                spectrum::rank_for_energy(ndarray::ArrayView1::from(s), t).unwrap_or(0)
            }),
            wrong: check_rank_for_energy(|s, t| {
                let total: f64 = s.iter().sum();
                let mut kept = 0.0;
                s.iter()
                    .position(|x| {
                        kept += x;
                        kept >= t * total
                    })
                    .map_or(s.len(), |i| i + 1)
            }),
        },
    },
    Exercise {
        id: "02-storage-ratio",
        lesson: "02-svd-on-images",
        title: "How much a rank-k image saves",
        task: "Return how many times smaller a rank-k SVD of an h×w channel is than the channel: \
               h·w numbers against k columns of U, k of V and k singular values.",
        hint: "the factors hold k·(h + w + 1) numbers",
        template: "fn answer(height: usize, width: usize, k: usize) -> f64 {\n    todo!()\n}\n",
        checker: "lab::svd_on_images::check_storage_ratio",
        self_test: || SelfTest {
            reference: check_storage_ratio(storage_ratio),
            wrong: check_storage_ratio(|h, w, k| (h * w) as f64 / (k * (h + w)) as f64),
        },
    },
    Exercise {
        id: "02-best-rank-k",
        lesson: "02-svd-on-images",
        title: "The best rank-k approximation",
        task: "Return the best rank-k approximation of a matrix in the Frobenius norm (Eckart–Young), \
               as a matrix of the same shape.",
        hint: "take svd::svd(a.view()) (unwrapping its Result is fine here), keep the first k columns of U, the first k singular values and the first k rows of Vᵀ",
        template: "use lab::*;\n\nfn answer(a: &Array2<f64>, k: usize) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::svd_on_images::check_best_rank_k",
        self_test: || SelfTest {
            reference: check_best_rank_k(|a, k| {
                svd::truncated_svd(a.view(), k)
                    .map(|t| t.reconstruct())
                    .unwrap_or_else(|_| a.clone())
            }),
            wrong: check_best_rank_k(|a, k| {
                let mut kept = a.clone();
                kept.slice_mut(ndarray::s![k.., ..]).fill(0.0);
                kept
            }),
        },
    },
];

/// `h·w / (k·(h + w + 1))`.
pub fn storage_ratio(height: usize, width: usize, k: usize) -> f64 {
    (height * width) as f64 / (k * (height + width + 1)) as f64
}

/// Checks `answer(s, threshold)` against [`spectrum::rank_for_energy`].
pub fn check_rank_for_energy(answer: impl Fn(&[f64], f64) -> usize) -> Verdict {
    let mut rng = exercise::rng(21);
    let mut cases: Vec<(Vec<f64>, f64)> = vec![(vec![3.0, 2.0, 1.0], 0.9), (vec![1.0], 1.0)];
    for _ in 0..30 {
        let n = rng.random_range(2..40);
        let mut s: Vec<f64> = (0..n).map(|_| rng.random_range(0.01..10.0)).collect();
        s.sort_by(|a, b| b.total_cmp(a));
        cases.push((s, rng.random_range(0.3..0.999)));
    }
    Checker::new(EXERCISES[0].id, EXERCISES[0].hint, cases).run(
        |(s, t)| answer(s, *t),
        |(s, t), got| {
            let want = spectrum::rank_for_energy(Array1::from(s.clone()).view(), *t)
                .map_err(|e| e.to_string())?;
            exercise::equal(&format!("threshold {t:.3} on {s:.3?}"), got, want)
        },
    )
}

/// Checks `answer(h, w, k)` against [`storage_ratio`].
pub fn check_storage_ratio(answer: impl Fn(usize, usize, usize) -> f64) -> Verdict {
    let mut rng = exercise::rng(22);
    let mut cases = vec![(512, 512, 20), (1, 1, 1)];
    cases.extend((0..30).map(|_| {
        (
            rng.random_range(1..2000),
            rng.random_range(1..2000),
            rng.random_range(1..100),
        )
    }));
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, cases).run(
        |&(h, w, k)| answer(h, w, k),
        |&(h, w, k), got| {
            exercise::close(
                &format!("h={h}, w={w}, k={k}"),
                got,
                storage_ratio(h, w, k),
                1e-9,
            )
        },
    )
}

/// Checks `answer(a, k)` against [`svd::truncated_svd`]: the error must be the optimal one.
pub fn check_best_rank_k(answer: impl Fn(&Array2<f64>, usize) -> Array2<f64>) -> Verdict {
    let mut rng = exercise::rng(23);
    let cases: Vec<(Array2<f64>, usize)> = (0..8)
        .map(|seed| {
            let (m, n) = (rng.random_range(3..30), rng.random_range(3..30));
            let k = rng.random_range(1..m.min(n));
            (gaussian_matrix(m, n, seed), k)
        })
        .collect();
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, cases).run(
        |(a, k)| answer(a, *k),
        |(a, k), got| {
            let what = format!("a {}x{} matrix at k={k}", a.nrows(), a.ncols());
            let want = svd::truncated_svd(a.view(), *k)
                .map_err(|e| e.to_string())?
                .reconstruct();
            exercise::close_arrays(&what, &got, &want, 1e-8)
        },
    )
}
