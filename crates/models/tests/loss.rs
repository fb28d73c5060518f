//! Cross-entropy and teacher-forcing inputs as transformers computes them, on cases small enough to
//! work out by hand.
#![allow(clippy::unwrap_used)]

use candle_core::{Device, Tensor};
use models::loss::{cross_entropy, nll_sum, shift_tokens_right};

#[test]
fn shift_puts_the_start_token_first_and_pads_ignored_labels() {
    let labels = Tensor::new(&[[5i64, 6, 7, -100], [8, -100, -100, -100]], &Device::Cpu).unwrap();
    let shifted: Vec<Vec<i64>> = shift_tokens_right(&labels, 1, 2)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(shifted, [[2, 5, 6, 7], [2, 8, 1, 1]]);
}

#[test]
fn the_loss_is_the_mean_negative_log_probability_of_the_labels() {
    // One row, vocabulary 3: logits (0, ln 2, ln 3) give probabilities 1/6, 2/6, 3/6.
    let logits = Tensor::new(
        &[[
            [0f32, 2f32.ln(), 3f32.ln()],
            [0.0, 0.0, 0.0],
            [5.0, 5.0, 5.0],
        ]],
        &Device::Cpu,
    )
    .unwrap();
    let labels = Tensor::new(&[[2i64, 0, -100]], &Device::Cpu).unwrap();
    let (sum, count) = nll_sum(&logits, &labels).unwrap();
    let want = -(0.5f64).ln() - (1.0f64 / 3.0).ln();
    assert_eq!(count, 2);
    assert!((sum.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-6);
    let mean = cross_entropy(&logits, &labels)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((mean as f64 - want / 2.0).abs() < 1e-6);
}

#[test]
fn bad_labels_are_refused() {
    let logits = Tensor::zeros((1, 2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let out_of_vocab = Tensor::new(&[[1i64, 3]], &Device::Cpu).unwrap();
    assert!(
        nll_sum(&logits, &out_of_vocab)
            .unwrap_err()
            .to_string()
            .contains("label 3 is outside the vocabulary of 3")
    );
    let wrong_shape = Tensor::new(&[[1i64, 2, 0]], &Device::Cpu).unwrap();
    assert!(nll_sum(&logits, &wrong_shape).is_err());
    let all_ignored = Tensor::new(&[[-100i64, -100]], &Device::Cpu).unwrap();
    assert!(cross_entropy(&logits, &all_ignored).is_err());
}
