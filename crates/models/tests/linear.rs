//! Every form of `Linear` computes what its factors multiply out to; LoRA with B = 0 is its base;
//! merging LoRA changes nothing; counts follow the formulas; bad factors are refused.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use models::Linear;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

fn random(shape: (usize, usize), seed: u64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// `layer` on a batch (2, 3, in) equals the dense layer with its effective weight.
fn check_equals_effective_dense(layer: &Linear, seed: u64) {
    let xs = random((6, layer.in_dim()), seed)
        .reshape((2, 3, layer.in_dim()))
        .unwrap();
    let dense = Linear::dense(layer.effective_weight().unwrap(), layer.bias().cloned()).unwrap();
    let got = layer.forward(&xs).unwrap();
    let want = dense.forward(&xs).unwrap();
    assert_eq!(got.dims(), [2, 3, layer.out_dim()]);
    assert!(max_abs_diff(&got, &want) < 1e-4, "{}", layer.kind());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn factorized_forms_compute_their_product(n_in in 1usize..7, n_out in 1usize..7, rank in 1usize..4, seed in 0u64..1000) {
        let bias = random((1, n_out), seed + 9).flatten_all().unwrap();
        let low_rank = Linear::low_rank(random((n_out, rank), seed), random((rank, n_in), seed + 1), Some(bias.clone())).unwrap();
        check_equals_effective_dense(&low_rank, seed);
        let tucker = Linear::tucker2(random((n_out, rank), seed + 2), random((rank, rank + 1), seed + 3), random((n_in, rank + 1), seed + 4), None).unwrap();
        check_equals_effective_dense(&tucker, seed);
        let base = Linear::dense(random((n_out, n_in), seed + 5), Some(bias)).unwrap();
        let lora = Linear::lora(base, random((rank, n_in), seed + 6), random((n_out, rank), seed + 7), 16.0, 0.0).unwrap();
        check_equals_effective_dense(&lora, seed);
    }

    #[test]
    fn lora_with_b_zero_is_its_base_and_merging_changes_nothing(n_in in 1usize..7, n_out in 1usize..7, rank in 1usize..4, seed in 0u64..1000) {
        let base = Linear::dense(random((n_out, n_in), seed), None).unwrap();
        let xs = random((4, n_in), seed + 1);
        let zero_b = Tensor::zeros((n_out, rank), DType::F32, &Device::Cpu).unwrap();
        let fresh = Linear::lora(base.clone(), random((rank, n_in), seed + 2), zero_b, 8.0, 0.1).unwrap();
        prop_assert_eq!(max_abs_diff(&fresh.forward(&xs).unwrap(), &base.forward(&xs).unwrap()), 0.0);
        let trained = Linear::lora(base, random((rank, n_in), seed + 2), random((n_out, rank), seed + 3), 8.0, 0.1).unwrap();
        let merged = trained.merged().unwrap();
        prop_assert_eq!(merged.kind(), "dense");
        prop_assert!(max_abs_diff(&merged.forward(&xs).unwrap(), &trained.forward(&xs).unwrap()) < 1e-4);
    }
}

#[test]
fn a_full_rank_factorization_of_w_equals_w() {
    let w = random((5, 4), 1);
    let identity = Tensor::eye(4, DType::F32, &Device::Cpu).unwrap();
    let dense = Linear::dense(w.clone(), None).unwrap();
    let factored = Linear::low_rank(w, identity, None).unwrap();
    let xs = random((3, 4), 2);
    assert!(
        max_abs_diff(
            &dense.forward(&xs).unwrap(),
            &factored.forward(&xs).unwrap()
        ) < 1e-6
    );
}

#[test]
fn counts_follow_the_formulas() {
    let (n_in, n_out, rank) = (768, 512, 16);
    let bias = Tensor::zeros(n_out, DType::F32, &Device::Cpu).unwrap();
    let dense = Linear::dense(random((n_out, n_in), 1), Some(bias.clone())).unwrap();
    assert_eq!(dense.parameter_count(), n_in * n_out + n_out);
    assert_eq!(dense.flops_per_token(), 2 * n_in * n_out);
    let low_rank = Linear::low_rank(
        random((n_out, rank), 2),
        random((rank, n_in), 3),
        Some(bias),
    )
    .unwrap();
    assert_eq!(low_rank.parameter_count(), rank * (n_in + n_out) + n_out);
    assert_eq!(low_rank.flops_per_token(), 2 * rank * (n_in + n_out));
    let tucker = Linear::tucker2(
        random((n_out, rank), 4),
        random((rank, rank), 5),
        random((n_in, rank), 6),
        None,
    )
    .unwrap();
    assert_eq!(
        tucker.parameter_count(),
        n_out * rank + rank * rank + rank * n_in
    );
    let lora = Linear::lora(
        dense.clone(),
        random((8, n_in), 7),
        random((n_out, 8), 8),
        16.0,
        0.05,
    )
    .unwrap();
    assert_eq!(
        lora.parameter_count(),
        dense.parameter_count() + 8 * (n_in + n_out)
    );
    let Linear::Lora(adapter) = &lora else {
        panic!("not lora")
    };
    assert_eq!(adapter.scaling(), 2.0);
}

#[test]
fn tensors_are_named_as_checkpoints_name_them() {
    let base = Linear::dense(
        random((3, 2), 1),
        Some(random((1, 3), 2).flatten_all().unwrap()),
    )
    .unwrap();
    let names = |layer: &Linear| -> Vec<String> {
        layer.tensors().into_iter().map(|(name, _)| name).collect()
    };
    assert_eq!(names(&base), ["weight", "bias"]);
    let lora = Linear::lora(base, random((1, 2), 3), random((3, 1), 4), 1.0, 0.0).unwrap();
    assert_eq!(
        names(&lora),
        [
            "base_layer.weight",
            "base_layer.bias",
            "lora_A.weight",
            "lora_B.weight"
        ]
    );
}

#[test]
fn dropout_acts_only_in_training() {
    let base = Linear::dense(random((4, 64), 1), None).unwrap();
    let lora = Linear::lora(base, random((2, 64), 2), random((4, 2), 3), 2.0, 0.5).unwrap();
    let xs = random((8, 64), 4);
    let inference = lora.forward(&xs).unwrap();
    assert_eq!(max_abs_diff(&inference, &lora.forward(&xs).unwrap()), 0.0);
    let training = lora.forward_t(&xs, true).unwrap();
    assert!(max_abs_diff(&inference, &training) > 1e-3);
}

#[test]
fn mismatched_factors_are_refused_with_the_shapes() {
    let error = Linear::low_rank(random((5, 3), 1), random((2, 4), 2), None).unwrap_err();
    assert!(error.to_string().contains("[5, 3]") && error.to_string().contains("[2, 4]"));
    let error = Linear::dense(
        random((5, 3), 1),
        Some(random((1, 4), 2).flatten_all().unwrap()),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "bias has shape [4], expected [5]");
    let base = Linear::dense(random((5, 3), 1), None).unwrap();
    let error =
        Linear::lora(base.clone(), random((2, 4), 1), random((5, 2), 2), 1.0, 0.0).unwrap_err();
    assert!(
        error.to_string().contains("do not fit a 3→5 layer"),
        "{error}"
    );
    let error = Linear::lora(base, random((2, 3), 1), random((5, 2), 2), 1.0, 1.5).unwrap_err();
    assert!(error.to_string().contains("dropout 1.5"), "{error}");
    let error = Linear::tucker2(
        random((5, 2), 1),
        random((3, 2), 2),
        random((4, 2), 3),
        None,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("Tucker-2 factors disagree"),
        "{error}"
    );
}

#[test]
fn seeded_dropout_drops_p_scales_the_rest_and_repeats_per_step() {
    let rng = models::linear::DropoutRng::new(3);
    let xs = Tensor::ones((100, 100), DType::F32, &Device::Cpu).unwrap();
    // Off (evaluation): the input itself.
    assert_eq!(max_abs_diff(&rng.apply(&xs, 0.25).unwrap(), &xs), 0.0);
    rng.set_active(true);
    rng.reseed(5);
    let dropped: Vec<f32> = rng
        .apply(&xs, 0.25)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let zeros = dropped.iter().filter(|&&v| v == 0.0).count();
    // 10,000 Bernoulli(0.25) draws: 2,500 ± 43 (one standard deviation); 5σ either way.
    assert!(
        (2285..=2715).contains(&zeros),
        "{zeros} of 10000 dropped at p = 0.25"
    );
    assert!(
        dropped
            .iter()
            .all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6)
    );
    rng.reseed(5);
    let again: Vec<f32> = rng
        .apply(&xs, 0.25)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(dropped, again, "same seed and step, same mask");
    rng.reseed(6);
    let next: Vec<f32> = rng
        .apply(&xs, 0.25)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_ne!(dropped, next, "another step, another mask");
}
