//! Rank rules: a parameter budget gives the largest rank within it, an energy threshold the
//! smallest rank keeping that share of Σσ², and out-of-range values are refused.

#![allow(clippy::unwrap_used)]

mod common;

use candle_core::{Device, Tensor};
use common::random_tensor;
use compress::{Error, RankRule};

/// A 16×16 diagonal weight: its singular values are the diagonal, known exactly.
fn diagonal(values: &[f32]) -> Tensor {
    let n = values.len();
    let mut data = vec![0.0_f32; n * n];
    for (i, v) in values.iter().enumerate() {
        data[i * n + i] = *v;
    }
    Tensor::from_vec(data, (n, n), &Device::Cpu).unwrap()
}

#[test]
fn fixed_rank_is_checked_against_the_shape() {
    let w = random_tensor(32, 32, 1);
    assert_eq!(RankRule::Fixed(7).rank_for(&w).unwrap(), 7);
    assert!(matches!(
        RankRule::Fixed(16).rank_for(&w).unwrap_err(),
        Error::InvalidRank { .. }
    ));
    assert!(matches!(
        RankRule::Fixed(0).rank_for(&w).unwrap_err(),
        Error::InvalidRule { .. }
    ));
}

/// The largest r with r·(in+out) ≤ ratio·in·out, for several shapes and ratios.
#[test]
fn param_ratio_gives_the_largest_rank_within_budget() {
    for (out_dim, in_dim) in [(32, 32), (64, 32), (384, 1536), (768, 3072)] {
        for ratio in [0.1, 0.25, 0.5, 0.75, 0.99] {
            let w =
                Tensor::zeros((out_dim, in_dim), candle_core::DType::F32, &Device::Cpu).unwrap();
            let rank = RankRule::ParamRatio(ratio).rank_for(&w).unwrap();
            let budget = ratio * (in_dim * out_dim) as f64;
            assert!(
                (rank * (in_dim + out_dim)) as f64 <= budget,
                "{out_dim}x{in_dim} at {ratio}"
            );
            assert!(
                ((rank + 1) * (in_dim + out_dim)) as f64 > budget,
                "{out_dim}x{in_dim} at {ratio}"
            );
        }
    }
    let w = random_tensor(384, 384, 2);
    assert_eq!(RankRule::ParamRatio(0.75).rank_for(&w).unwrap(), 144);
    assert_eq!(RankRule::ParamRatio(0.5).rank_for(&w).unwrap(), 96);
}

#[test]
fn param_ratio_out_of_range_is_refused() {
    let w = random_tensor(32, 32, 3);
    for ratio in [0.0, -0.5, 1.0, 1.5, f64::NAN] {
        let error = RankRule::ParamRatio(ratio).rank_for(&w).unwrap_err();
        assert!(
            matches!(error, Error::InvalidRule { .. }),
            "{ratio}: {error:?}"
        );
        assert!(error.to_string().contains("(0, 1)"), "{error}");
    }
    let message = RankRule::ParamRatio(0.01)
        .rank_for(&w)
        .unwrap_err()
        .to_string();
    assert!(message.contains("at least 0.0625"), "{message}");
}

/// Energy keeps the smallest rank reaching the threshold: σ = 10, 3, 1, 0.1… gives rank 1 for
/// 0.9 (100/110.x), 2 for 0.95 and 3 for 0.995.
#[test]
fn energy_gives_the_smallest_rank_reaching_the_threshold() {
    let mut values = vec![10.0_f32, 3.0, 1.0];
    values.extend(std::iter::repeat_n(0.1, 13));
    let w = diagonal(&values);
    assert_eq!(RankRule::Energy(0.9).rank_for(&w).unwrap(), 1);
    assert_eq!(RankRule::Energy(0.95).rank_for(&w).unwrap(), 2);
    assert_eq!(RankRule::Energy(0.995).rank_for(&w).unwrap(), 3);
}

#[test]
fn energy_out_of_range_or_past_break_even_is_refused() {
    let w = random_tensor(32, 32, 4);
    for energy in [0.0, -0.1, 1.01, f64::NAN] {
        let error = RankRule::Energy(energy).rank_for(&w).unwrap_err();
        assert!(
            matches!(error, Error::InvalidRule { .. }),
            "{energy}: {error:?}"
        );
    }
    // A Gaussian matrix's energy is spread out: keeping all of it needs every singular value.
    let message = RankRule::Energy(1.0).rank_for(&w).unwrap_err().to_string();
    assert!(
        message.contains("needs rank 32") && message.contains("above 15"),
        "{message}"
    );
}

#[test]
fn rules_print_as_the_manifest_records_them() {
    assert_eq!(RankRule::Fixed(8).to_string(), "fixed rank 8");
    assert_eq!(RankRule::ParamRatio(0.75).to_string(), "param-ratio 0.75");
    assert_eq!(RankRule::Energy(0.9).to_string(), "energy 0.9");
}
