//! The Rust half of `cargo xtask bench math`: makes the benchmark inputs, saves them as .npy so the
//! Python references time the very same data, times Lowrank on them and writes `rust.json`.
//!
//! usage: cargo run --release -p lowrank --example bench_math -- DIR

use std::path::{Path, PathBuf};
use std::time::Instant;

use lowrank::svd::{RandomizedSvd, frobenius_norm, optimal_frobenius_error, randomized_svd, svd};
use lowrank::tucker::{Hooi, hooi};
use ndarray::{Array2, Array3, ArrayD, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::json;

/// Settings shared with tests/reference/bench_math.py through rust.json.
const RSVD_RANK: usize = 64;
const HOOI_RANKS: [usize; 3] = [10, 10, 10];
const HOOI_TOLERANCE: f64 = 1e-6;
/// Randomized SVD errors are averaged over this many seeds: one draw differs from another by more
/// than two implementations of the same algorithm do.
const RSVD_SEEDS: u64 = 5;
/// Power iterations swept to show the speed/accuracy trade-off against the full SVD.
const RSVD_SWEEP: [usize; 4] = [0, 1, 2, 4];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: bench_math DIR")?);
    std::fs::create_dir_all(&dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let square = gaussian(&mut rng, 768, 768);
    let tall = weight_like(&mut rng, 3072, 768)?;
    let tensor = low_multilinear_rank(&mut rng, 100, 10, 0.1);
    save(&dir, "square", &square)?;
    save(&dir, "tall", &tall)?;
    ndarray_npy::write_npy(dir.join("tensor.npy"), &tensor)?;

    let svd_square = median_seconds(5, || svd(square.view()).map(drop))?;
    let svd_tall = median_seconds(3, || svd(tall.view()).map(drop))?;
    let options = RandomizedSvd::default();
    let rsvd = median_seconds(5, || {
        randomized_svd(tall.view(), RSVD_RANK, &options).map(drop)
    })?;
    let rsvd_error = mean_rsvd_error(&tall, &options)?;
    let optimal_error = optimal_frobenius_error(svd(tall.view())?.s.view(), RSVD_RANK)
        / frobenius_norm(tall.view());
    let mut sweep = Vec::new();
    for power_iterations in RSVD_SWEEP {
        let options = RandomizedSvd {
            power_iterations,
            ..options
        };
        let seconds = median_seconds(5, || {
            randomized_svd(tall.view(), RSVD_RANK, &options).map(drop)
        })?;
        let error = mean_rsvd_error(&tall, &options)?;
        sweep.push(json!({"power_iterations": power_iterations, "seconds": seconds, "relative_error": error}));
    }

    let hooi_options = Hooi {
        max_iterations: 100,
        tolerance: HOOI_TOLERANCE,
    };
    let tensor_dyn: ArrayD<f64> = tensor.clone().into_dyn();
    let hooi_time = median_seconds(3, || {
        hooi(tensor_dyn.view(), &HOOI_RANKS, &hooi_options).map(drop)
    })?;
    let (_, trace) = hooi(tensor_dyn.view(), &HOOI_RANKS, &hooi_options)?;

    let report = json!({
        "threads": rayon_threads(),
        "svd_768x768_s": svd_square,
        "svd_3072x768_s": svd_tall,
        "rsvd_rank": RSVD_RANK,
        "rsvd_oversampling": options.oversampling,
        "rsvd_power_iterations": options.power_iterations,
        "rsvd_3072x768_s": rsvd,
        "rsvd_relative_error": rsvd_error,
        "rsvd_seeds": RSVD_SEEDS,
        "rsvd_optimal_relative_error": optimal_error,
        "rsvd_sweep": sweep,
        "hooi_ranks": HOOI_RANKS,
        "hooi_tolerance": HOOI_TOLERANCE,
        "hooi_s": hooi_time,
        "hooi_relative_error": trace.relative_errors.last().copied().unwrap_or(f64::NAN),
        "hooi_iterations": trace.relative_errors.len(),
    });
    std::fs::write(
        dir.join("rust.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("{report}");
    Ok(())
}

/// faer's parallel kernels run on rayon's global pool, sized by `RAYON_NUM_THREADS` when set.
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// ‖A − A_k‖_F / ‖A‖_F of the randomized SVD, averaged over seeds 0..RSVD_SEEDS.
fn mean_rsvd_error(a: &Array2<f64>, options: &RandomizedSvd) -> lowrank::Result<f64> {
    let mut total = 0.0;
    for seed in 0..RSVD_SEEDS {
        let approx = randomized_svd(a.view(), RSVD_RANK, &RandomizedSvd { seed, ..*options })?;
        total += frobenius_norm((a - &approx.reconstruct()).view()) / frobenius_norm(a.view());
    }
    Ok(total / RSVD_SEEDS as f64)
}

fn gaussian(rng: &mut ChaCha8Rng, m: usize, n: usize) -> Array2<f64> {
    Array2::from_shape_fn((m, n), |_| rng.sample(StandardNormal))
}

/// Like a trained weight matrix: a power-law spectrum (s_i ∝ (1 + i)^-0.6) on random singular vectors.
fn weight_like(rng: &mut ChaCha8Rng, m: usize, n: usize) -> lowrank::Result<Array2<f64>> {
    let u = svd(gaussian(rng, m, n).view())?.u;
    let v = svd(gaussian(rng, n, n).view())?.u;
    let s = ndarray::Array1::from_shape_fn(n, |i| (1.0 + i as f64).powf(-0.6));
    Ok((&u * &s.view().insert_axis(Axis(0))).dot(&v.t()))
}

/// A random Tucker tensor of multilinear rank (r, r, r) plus `noise` relative Gaussian noise.
fn low_multilinear_rank(rng: &mut ChaCha8Rng, size: usize, rank: usize, noise: f64) -> Array3<f64> {
    let core = Array3::from_shape_fn((rank, rank, rank), |_| rng.sample::<f64, _>(StandardNormal));
    let factors: Vec<Array2<f64>> = (0..3).map(|_| gaussian(rng, size, rank)).collect();
    let clean = Array3::from_shape_fn((size, size, size), |(i, j, k)| {
        let mut sum = 0.0;
        for a in 0..rank {
            for b in 0..rank {
                let ab = factors[0][[i, a]] * factors[1][[j, b]];
                for c in 0..rank {
                    sum += core[[a, b, c]] * ab * factors[2][[k, c]];
                }
            }
        }
        sum
    });
    let scale = noise * (clean.iter().map(|x| x * x).sum::<f64>() / clean.len() as f64).sqrt();
    clean.mapv(|x| x + scale * rng.sample::<f64, _>(StandardNormal))
}

fn save(dir: &Path, name: &str, a: &Array2<f64>) -> Result<(), ndarray_npy::WriteNpyError> {
    ndarray_npy::write_npy(dir.join(format!("{name}.npy")), a)
}

/// Median wall time of `repeats` runs after one warm-up.
fn median_seconds(
    repeats: usize,
    mut run: impl FnMut() -> lowrank::Result<()>,
) -> lowrank::Result<f64> {
    run()?;
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
