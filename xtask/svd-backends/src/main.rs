//! Times and checks the candidate SVD backends on the sizes the course uses (BART-base projections):
//! faer and nalgebra, both pure Rust. ndarray-linalg needs a LAPACK: without a system one it must
//! build OpenBLAS or MKL from a download at build time, which this project's machines cannot fetch.

use std::time::Instant;

use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

struct Outcome {
    seconds: f64,
    residual: f64,
    orthogonality: f64,
}

fn main() {
    println!("{:<10} {:<10} {:>10} {:>14} {:>14}", "backend", "size", "seconds", "‖A−USVᵀ‖/‖A‖", "‖UᵀU−I‖");
    for (m, n) in [(768, 768), (3072, 768)] {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let data: Vec<f64> = (0..m * n).map(|_| rng.sample(StandardNormal)).collect();
        for (name, outcome) in [("faer", faer_svd(&data, m, n)), ("nalgebra", nalgebra_svd(&data, m, n))] {
            println!(
                "{name:<10} {:<10} {:>10.3} {:>14.2e} {:>14.2e}",
                format!("{m}x{n}"),
                outcome.seconds,
                outcome.residual,
                outcome.orthogonality
            );
        }
    }
}

fn median_of_3<T>(mut run: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::new();
    let mut last = run();
    for _ in 0..3 {
        let start = Instant::now();
        last = run();
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[1], last)
}

fn faer_svd(data: &[f64], m: usize, n: usize) -> Outcome {
    let a = Mat::from_fn(m, n, |i, j| data[i * n + j]);
    let (seconds, svd) = median_of_3(|| a.thin_svd().expect("faer svd"));
    let (u, s, v) = (svd.U(), svd.S(), svd.V());
    let mut us = u.to_owned();
    for j in 0..us.ncols() {
        for i in 0..m {
            us[(i, j)] *= s[j];
        }
    }
    let residual = (&a - &us * v.transpose()).norm_l2() / a.norm_l2();
    let gram = u.transpose() * u;
    let orthogonality = (&gram - Mat::<f64>::identity(gram.nrows(), gram.ncols())).norm_l2();
    Outcome { seconds, residual, orthogonality }
}

fn nalgebra_svd(data: &[f64], m: usize, n: usize) -> Outcome {
    let a = nalgebra::DMatrix::from_row_slice(m, n, data);
    let (seconds, svd) = median_of_3(|| a.clone().svd(true, true));
    let (u, vt) = (svd.u.as_ref().expect("u"), svd.v_t.as_ref().expect("vt"));
    let residual = (&a - u * nalgebra::DMatrix::from_diagonal(&svd.singular_values) * vt).norm() / a.norm();
    let orthogonality = (u.transpose() * u - nalgebra::DMatrix::identity(u.ncols(), u.ncols())).norm();
    Outcome { seconds, residual, orthogonality }
}
