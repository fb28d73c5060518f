//! One layer: the factors are the truncated SVD (Eckart–Young error), exact on low-rank weights,
//! and bad ranks or non-dense layers are refused with the numbers needed to fix the call.

#![allow(clippy::unwrap_used)]

mod common;

use candle_core::{DType, Device, Tensor};
use common::{max_abs_diff, random_tensor};
use compress::svd::{check_rank, relative_error};
use compress::{Error, factorize_svd, largest_useful_rank};
use lowrank::ndarray::Array2;
use lowrank::svd::{optimal_frobenius_error, svd};
use models::Linear;

fn dense(rows: usize, cols: usize, seed: u64) -> Linear {
    let bias = random_tensor(1, rows, seed + 1000).squeeze(0).unwrap();
    Linear::dense(random_tensor(rows, cols, seed), Some(bias)).unwrap()
}

/// Σ_{i>rank} σ_i² of `w`, from the project's SVD in f64.
fn frobenius_tail(w: &Tensor, rank: usize) -> f64 {
    let rows = w.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
    let (m, n) = (rows.len(), rows[0].len());
    let a = Array2::from_shape_vec((m, n), rows.concat()).unwrap();
    optimal_frobenius_error(svd(a.view()).unwrap().s.view(), rank).powi(2)
}

fn factors(layer: &Linear) -> (Tensor, Tensor) {
    match layer {
        Linear::LowRank(l) => (l.u.clone(), l.v.clone()),
        other => panic!("expected a low-rank layer, got {}", other.kind()),
    }
}

/// ‖W − U·V‖_F² equals Σ_{i>r} σ_i² at every useful rank, on random matrices of several shapes.
#[test]
fn factorization_error_is_the_eckart_young_tail() {
    for (seed, (out_dim, in_dim)) in [(40, 24), (24, 40), (32, 32)].into_iter().enumerate() {
        let layer = dense(out_dim, in_dim, seed as u64);
        for rank in 1..=largest_useful_rank(in_dim, out_dim) {
            let factored = factorize_svd(&layer, rank).unwrap();
            let (u, v) = factors(&factored);
            assert_eq!(
                (u.dims(), v.dims()),
                (&[out_dim, rank][..], &[rank, in_dim][..])
            );
            let w = layer.effective_weight().unwrap();
            let residual = (&w - u.matmul(&v).unwrap()).unwrap();
            let measured = residual
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let expected = frobenius_tail(&w, rank);
            assert!(
                (measured as f64 - expected).abs() <= 1e-4 * expected.max(1.0),
                "{out_dim}x{in_dim} rank {rank}: ‖W−UV‖² = {measured}, Σ tail σ² = {expected}"
            );
            let relative = relative_error(&layer, &factored).unwrap();
            let norm2 = w
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64;
            assert!((relative - (expected / norm2).sqrt()).abs() < 1e-5);
            assert_eq!(
                factored.bias().unwrap().to_vec1::<f32>().unwrap(),
                layer.bias().unwrap().to_vec1::<f32>().unwrap()
            );
        }
    }
}

/// Σ goes to U: V's rows are orthonormal, U's columns orthogonal with norms σ_1 ≥ σ_2 ≥ ….
#[test]
fn sigma_goes_to_u_and_v_is_orthonormal() {
    let (u, v) = factors(&factorize_svd(&dense(30, 20, 7), 6).unwrap());
    let vvt = v.matmul(&v.t().unwrap()).unwrap();
    assert!(max_abs_diff(&vvt, &Tensor::eye(6, DType::F32, &Device::Cpu).unwrap()) < 1e-5);
    let norms = u
        .sqr()
        .unwrap()
        .sum(0)
        .unwrap()
        .sqrt()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(norms.windows(2).all(|w| w[0] >= w[1]), "{norms:?}");
}

/// A weight of true rank k, factorized at rank k, computes what the dense layer does.
#[test]
fn exact_rank_weight_gives_the_dense_output() {
    let (out_dim, in_dim, k) = (48, 36, 5);
    let w = random_tensor(out_dim, k, 1)
        .matmul(&random_tensor(k, in_dim, 2))
        .unwrap();
    let bias = random_tensor(1, out_dim, 3).squeeze(0).unwrap();
    let layer = Linear::dense(w, Some(bias)).unwrap();
    let factored = factorize_svd(&layer, k).unwrap();
    let x = random_tensor(7, in_dim, 4).reshape((1, 7, in_dim)).unwrap();
    let (dense_y, low_y) = (layer.forward(&x).unwrap(), factored.forward(&x).unwrap());
    let scale = dense_y
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        max_abs_diff(&dense_y, &low_y) < 1e-5 * scale,
        "outputs differ"
    );
    assert!(factored.parameter_count() < layer.parameter_count());
    assert!(relative_error(&layer, &factored).unwrap() < 1e-5);
}

/// The error grows as the rank falls (each dropped σ adds its square).
#[test]
fn error_falls_as_rank_grows() {
    let layer = dense(32, 48, 9);
    let errors: Vec<f64> = (1..=largest_useful_rank(48, 32))
        .map(|r| relative_error(&layer, &factorize_svd(&layer, r).unwrap()).unwrap())
        .collect();
    assert!(errors.windows(2).all(|w| w[1] < w[0]), "{errors:?}");
}

/// Rank 0, a rank above min(in, out) and a rank at or past break-even are refused, and the message
/// carries the shape, the rank, both parameter counts and the largest useful rank.
#[test]
fn bad_ranks_are_refused_with_the_numbers() {
    let layer = dense(32, 32, 5);
    assert_eq!(largest_useful_rank(32, 32), 15);
    assert!(factorize_svd(&layer, 15).is_ok());
    for rank in [0, 16, 32, 33] {
        let error = factorize_svd(&layer, rank).unwrap_err();
        assert!(
            matches!(error, Error::InvalidRank { max_useful: 15, .. }),
            "{error:?}"
        );
        let message = error.to_string();
        for needle in [
            format!("rank {rank}"),
            "32→32".into(),
            "1024 weights".into(),
            "1..=15".into(),
        ] {
            assert!(message.contains(&needle), "{message:?} lacks {needle:?}");
        }
        if rank == 16 {
            assert!(message.contains("store 1024"), "{message}");
        }
    }
    assert!(
        check_rank(1, 1, 100).is_err(),
        "a 1-row layer cannot shrink"
    );
    assert_eq!(largest_useful_rank(100, 1), 0);
    assert_eq!(largest_useful_rank(768, 3072), 614);
}

/// Factorizing a factorization, or a LoRA layer, is refused with what to do instead.
#[test]
fn non_dense_layers_are_refused() {
    let low = factorize_svd(&dense(16, 16, 3), 4).unwrap();
    let error = factorize_svd(&low, 2).unwrap_err();
    assert!(
        matches!(error, Error::NotDense { kind: "low-rank" }),
        "{error:?}"
    );
    let lora = Linear::lora(
        dense(16, 16, 3),
        random_tensor(2, 16, 4),
        random_tensor(16, 2, 5),
        4.0,
        0.0,
    )
    .unwrap();
    let message = factorize_svd(&lora, 2).unwrap_err().to_string();
    assert!(
        message.contains("lora") && message.contains("merged"),
        "{message}"
    );
}

/// bf16 layers come back as bf16 factors.
#[test]
fn factors_keep_the_layer_dtype() {
    let layer = dense(24, 16, 2).to_dtype(DType::BF16).unwrap();
    let (u, v) = factors(&factorize_svd(&layer, 3).unwrap());
    assert_eq!((u.dtype(), v.dtype()), (DType::BF16, DType::BF16));
}
