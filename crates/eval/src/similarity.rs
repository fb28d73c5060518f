//! Cosine similarity between what the original model and its compressed copy output, row by row.
//!
//! Perplexity and ROUGE need data and a full model; comparing outputs needs neither. Feeding the
//! same inputs to both models and taking the cosine of each output vector (a hidden state, a
//! sentence embedding, a row of logits) shows at once how far compression moved them, and the
//! minimum finds the one token it broke. Cosine ignores scale, so it pairs with a relative error
//! when magnitude matters.
//!
//! Zero vectors get a value, not an error, so that padding rows (often exactly zero in both
//! outputs) do not stop an evaluation: two zero vectors point "the same way" and score 1, a zero
//! and a non-zero vector share nothing and score 0. (PyTorch's `F.cosine_similarity` gives 0 for
//! both cases, and scipy's cosine distance gives NaN; compare accordingly.) Numbers are summed in
//! f64, after scaling each vector by its largest magnitude so that no square overflows, and the
//! result is clamped to [-1, 1] against rounding.
//!
//! ```
//! use eval::similarity::{cosine, tensor_cosines};
//! use models::candle::{Device, Tensor};
//!
//! // (1, 2, 3)·(4, 5, 6) = 32, |a|² = 14, |b|² = 77.
//! let c = cosine(&[1.0f32, 2.0, 3.0], &[4.0, 5.0, 6.0])?;
//! assert!((c - 32.0 / (14.0f64 * 77.0).sqrt()).abs() < 1e-15);
//!
//! // Two (batch 1, 2 tokens, 2 features) outputs: the first token is unchanged, the second turned.
//! let original = Tensor::new(&[[[1.0f32, 0.0], [0.0, 2.0]]], &Device::Cpu)?;
//! let compressed = Tensor::new(&[[[3.0f32, 0.0], [2.0, 2.0]]], &Device::Cpu)?;
//! let cosines = tensor_cosines(&original, &compressed)?;
//! assert_eq!(cosines.rows.len(), 2);
//! assert!((cosines.rows[0] - 1.0).abs() < 1e-15);
//! assert!((cosines.min - 0.5f64.sqrt()).abs() < 1e-15);
//! # Ok::<(), eval::Error>(())
//! ```

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The cosine of each row and their mean and minimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cosines {
    /// One cosine per row, in row-major order of the leading dimensions, each in [-1, 1].
    pub rows: Vec<f64>,
    /// Mean over rows.
    pub mean: f64,
    /// The least similar row's cosine.
    pub min: f64,
}

/// Cosine similarity of two vectors of equal length: `a·b / (|a|·|b|)`; 1 for two zero vectors,
/// 0 for a zero and a non-zero one. An error on different lengths, empty vectors or a NaN or
/// infinity.
pub fn cosine<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(Error::LengthMismatch {
            what: "the two vectors".into(),
            left: a.len(),
            right: b.len(),
        });
    }
    let (a, b) = (to_f64(a), to_f64(b));
    check_finite(&a, "the first vector", 0)?;
    check_finite(&b, "the second vector", 0)?;
    if a.is_empty() {
        return Err(Error::Empty {
            what: "the two vectors".into(),
        });
    }
    Ok(cosine_f64(&a, &b))
}

/// Cosine of each row of two row-major matrices stored flat, rows of `n_features` values.
pub fn row_cosines<T: Copy + Into<f64>>(a: &[T], b: &[T], n_features: usize) -> Result<Cosines> {
    if a.len() != b.len() {
        return Err(Error::LengthMismatch {
            what: "the two matrices".into(),
            left: a.len(),
            right: b.len(),
        });
    }
    if n_features == 0 || !a.len().is_multiple_of(n_features) {
        return Err(Error::InvalidArgument {
            name: "n_features",
            value: n_features.to_string(),
            reason: format!("the matrices hold {} values: need a divisor of it", a.len()),
        });
    }
    rows_of(&to_f64(a), &to_f64(b), n_features)
}

/// Cosine of each vector along the last dimension of two tensors of one shape: a (batch, tokens,
/// hidden) output gives batch·tokens cosines. Any dtype and device (values are copied to the host
/// as f64).
pub fn tensor_cosines(a: &Tensor, b: &Tensor) -> Result<Cosines> {
    if a.dims() != b.dims() {
        return Err(Error::ShapeMismatch {
            what: "the two tensors".into(),
            left: a.dims().to_vec(),
            right: b.dims().to_vec(),
        });
    }
    let n_features = match a.dims().last() {
        Some(&n) if n > 0 => n,
        _ => {
            return Err(Error::InvalidArgument {
                name: "tensor shape",
                value: format!("{:?}", a.dims()),
                reason: "need a last (feature) dimension of at least 1".into(),
            });
        }
    };
    let flat = |t: &Tensor| -> Result<Vec<f64>> {
        Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
    };
    rows_of(&flat(a)?, &flat(b)?, n_features)
}

/// Row cosines of flat f64 matrices whose length is a multiple of `n_features` (≥ 1).
fn rows_of(a: &[f64], b: &[f64], n_features: usize) -> Result<Cosines> {
    if a.is_empty() {
        return Err(Error::Empty {
            what: "the list of rows".into(),
        });
    }
    let rows = a
        .chunks(n_features)
        .zip(b.chunks(n_features))
        .enumerate()
        .map(|(row, (a, b))| {
            check_finite(a, "the first input", row * n_features)?;
            check_finite(b, "the second input", row * n_features)?;
            Ok(cosine_f64(a, b))
        })
        .collect::<Result<Vec<f64>>>()?;
    let mean = rows.iter().sum::<f64>() / rows.len() as f64;
    let min = rows.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(Cosines { rows, mean, min })
}

/// The cosine of two finite vectors of one length, with the zero-vector rule.
fn cosine_f64(a: &[f64], b: &[f64]) -> f64 {
    let (scale_a, scale_b) = (max_abs(a), max_abs(b));
    if scale_a == 0.0 || scale_b == 0.0 {
        // Two zero vectors are the same vector; a zero and a non-zero one share no direction.
        return if scale_a == scale_b { 1.0 } else { 0.0 };
    }
    // Dividing by the largest magnitude first keeps every product ≤ 1: no overflow for 1e200.
    let (mut dot, mut norm_a, mut norm_b) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x / scale_a, y / scale_b);
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    // One square root of the product rounds once: parallel vectors give exactly ±1 more often.
    (dot / (norm_a * norm_b).sqrt()).clamp(-1.0, 1.0)
}

fn max_abs(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |max, v| max.max(v.abs()))
}

fn to_f64<T: Copy + Into<f64>>(values: &[T]) -> Vec<f64> {
    values.iter().map(|&v| v.into()).collect()
}

/// An error naming the first non-finite value; `offset` is the index of `values[0]` in the input.
fn check_finite(values: &[f64], what: &str, offset: usize) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::NonFinite {
            what: what.into(),
            index: offset + i,
            value: values[i],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// `cosine(a, b)` equals `expected` to 1e-14 (a few ulps), in f64 and (for f32-exact inputs) in f32.
    fn check(a: &[f64], b: &[f64], expected: f64) {
        let got = cosine(a, b).unwrap();
        assert!(
            (got - expected).abs() < 1e-14,
            "cosine({a:?}, {b:?}) = {got}, expected {expected}"
        );
        let (a32, b32): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&x| x as f32).collect(),
            b.iter().map(|&x| x as f32).collect(),
        );
        if a32.iter().zip(a).all(|(&x, &y)| f64::from(x) == y) {
            assert!((cosine(&a32, &b32).unwrap() - expected).abs() < 1e-14);
        }
    }

    #[test]
    fn cosines_match_hand_computed_values() {
        check(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 32.0 / 1078f64.sqrt());
        check(&[1.0, 0.0], &[0.0, 1.0], 0.0);
        check(&[1.0, 1.0], &[1.0, 0.0], 0.5f64.sqrt());
        check(&[2.0, -3.0], &[-4.0, 6.0], -1.0);
        check(&[3.0, 4.0], &[6.0, 8.0], 1.0);
        // 3-4-5 against 5-12-13: (15 + 48) / (5·13) = 63/65.
        check(&[3.0, 4.0], &[5.0, 12.0], 63.0 / 65.0);
        // Magnitudes whose squares overflow f64 give the same cosine.
        check(&[3e200, 4e200], &[5e-200, 12e-200], 63.0 / 65.0);
    }

    #[test]
    fn zero_vectors_follow_the_documented_rule() {
        check(&[0.0, 0.0], &[0.0, -0.0], 1.0);
        check(&[0.0, 0.0], &[0.0, 1.0], 0.0);
        check(&[2.0, 0.0], &[0.0, 0.0], 0.0);
    }

    #[test]
    fn tensors_compare_rows_along_the_last_dimension() {
        // Shape (2, 2, 2): rows (1,0)/(1,0) → 1, (0,2)/(2,2) → 1/√2, (1,1)/(-1,-1) → -1,
        // (0,0)/(0,0) → 1.
        let device = Device::Cpu;
        let a = Tensor::new(
            &[[[1.0f32, 0.0], [0.0, 2.0]], [[1.0, 1.0], [0.0, 0.0]]],
            &device,
        )
        .unwrap();
        let b = Tensor::new(
            &[[[1.0f32, 0.0], [2.0, 2.0]], [[-1.0, -1.0], [0.0, 0.0]]],
            &device,
        )
        .unwrap();
        let cosines = tensor_cosines(&a, &b).unwrap();
        let expected = [1.0, 0.5f64.sqrt(), -1.0, 1.0];
        assert_eq!(cosines.rows.len(), 4);
        for (got, want) in cosines.rows.iter().zip(expected) {
            assert!((got - want).abs() < 1e-14, "{:?}", cosines.rows);
        }
        assert!((cosines.mean - (1.0 + 0.5f64.sqrt()) / 4.0).abs() < 1e-14);
        assert!((cosines.min + 1.0).abs() < 1e-14);
        // bf16 and f64 tensors work the same; the flat-slice version agrees.
        let bf16 = tensor_cosines(
            &a.to_dtype(DType::BF16).unwrap(),
            &b.to_dtype(DType::BF16).unwrap(),
        )
        .unwrap();
        assert_eq!(bf16.rows, cosines.rows);
        let flat_a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let flat_b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(row_cosines(&flat_a, &flat_b, 2).unwrap(), cosines);
    }

    #[test]
    fn bad_input_is_an_error_naming_it() {
        let device = Device::Cpu;
        let a = Tensor::zeros((2, 3), DType::F32, &device).unwrap();
        let b = Tensor::zeros((3, 2), DType::F32, &device).unwrap();
        assert_eq!(
            tensor_cosines(&a, &b).unwrap_err().to_string(),
            "the two tensors: shapes differ ([2, 3] vs [3, 2]), need the same shape"
        );
        let empty = Tensor::zeros((0, 3), DType::F32, &device).unwrap();
        assert!(matches!(
            tensor_cosines(&empty, &empty),
            Err(Error::Empty { .. })
        ));
        let no_features = Tensor::zeros((2, 0), DType::F32, &device).unwrap();
        assert!(matches!(
            tensor_cosines(&no_features, &no_features),
            Err(Error::InvalidArgument {
                name: "tensor shape",
                ..
            })
        ));
        let nan = Tensor::new(&[[1.0f32, 2.0], [3.0, f32::NAN]], &device).unwrap();
        let ones = Tensor::ones((2, 2), DType::F32, &device).unwrap();
        assert_eq!(
            tensor_cosines(&ones, &nan).unwrap_err().to_string(),
            "the second input holds NaN at index 3: need finite numbers"
        );
        assert_eq!(
            cosine(&[1.0, 2.0], &[1.0]).unwrap_err().to_string(),
            "the two vectors: lengths differ (2 vs 1), need one entry of each per item"
        );
        assert!(matches!(cosine::<f64>(&[], &[]), Err(Error::Empty { .. })));
        assert!(matches!(
            cosine(&[f64::INFINITY], &[1.0]),
            Err(Error::NonFinite { index: 0, .. })
        ));
        assert!(matches!(
            row_cosines(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 2),
            Err(Error::InvalidArgument {
                name: "n_features",
                ..
            })
        ));
    }
}
