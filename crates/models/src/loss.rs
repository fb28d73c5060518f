//! Token-level cross-entropy as transformers computes it for language models: labels of -100 are
//! ignored, the loss is the mean over the others; and BART's `shift_tokens_right`, which turns
//! labels into decoder inputs for teacher forcing.

use candle_core::{D, DType, Tensor};

use crate::error::{Result, invalid};

/// transformers' ignore index: label positions holding it add nothing to the loss.
pub const IGNORE_INDEX: i64 = -100;

/// Decoder inputs for teacher forcing: `labels` (b, t) i64 shifted one to the right, the decoder
/// start token in front, -100 replaced by the pad token (transformers `shift_tokens_right`).
pub fn shift_tokens_right(
    labels: &Tensor,
    pad_token_id: u32,
    decoder_start_token_id: u32,
) -> Result<Tensor> {
    let (b_sz, t) = labels.dims2()?;
    let rows: Vec<Vec<i64>> = labels.to_dtype(DType::I64)?.to_vec2()?;
    let shifted: Vec<i64> = rows
        .iter()
        .flat_map(|row| {
            std::iter::once(decoder_start_token_id as i64)
                .chain(row.iter().take(t.saturating_sub(1)).copied())
                .map(|id| {
                    if id == IGNORE_INDEX {
                        pad_token_id as i64
                    } else {
                        id
                    }
                })
        })
        .collect();
    Ok(Tensor::from_vec(shifted, (b_sz, t), labels.device())?)
}

/// Sum of `-log softmax(logits)[label]` over positions whose label is not -100, and how many
/// there were. `logits` (b, t, vocab), `labels` (b, t) of any integer dtype. Summing (rather than
/// averaging) lets perplexity pool batches of different sizes exactly.
pub fn nll_sum(logits: &Tensor, labels: &Tensor) -> Result<(Tensor, usize)> {
    let (b_sz, t, vocab) = logits.dims3()?;
    if labels.dims() != [b_sz, t] {
        return Err(invalid(format!(
            "labels have shape {:?} but logits are {:?}: need labels (batch, length)",
            labels.dims(),
            logits.dims()
        )));
    }
    let labels = labels.to_dtype(DType::I64)?.flatten_all()?;
    let values: Vec<i64> = labels.to_vec1()?;
    if let Some(bad) = values
        .iter()
        .find(|&&id| id != IGNORE_INDEX && !(0..vocab as i64).contains(&id))
    {
        return Err(invalid(format!(
            "label {bad} is outside the vocabulary of {vocab} (use -100 to ignore a position)"
        )));
    }
    let keep: Vec<f32> = values
        .iter()
        .map(|&id| if id == IGNORE_INDEX { 0.0 } else { 1.0 })
        .collect();
    let count = keep.iter().filter(|&&k| k > 0.0).count();
    // Half-precision logits are scored in f32; f32 and f64 keep their own precision.
    let dtype = match logits.dtype() {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    };
    let keep = Tensor::from_vec(keep, b_sz * t, logits.device())?.to_dtype(dtype)?;
    let safe: Vec<u32> = values.iter().map(|&id| id.max(0) as u32).collect();
    let safe = Tensor::from_vec(safe, (b_sz * t, 1), logits.device())?;
    let log_probs = candle_nn::ops::log_softmax(
        &logits.to_dtype(dtype)?.reshape((b_sz * t, vocab))?,
        D::Minus1,
    )?;
    let picked = log_probs.gather(&safe, 1)?.squeeze(1)?;
    let sum = (picked * keep)?.sum_all()?.neg()?;
    Ok((sum, count))
}

/// Mean cross-entropy over the labelled positions (transformers' `CrossEntropyLoss()` default);
/// an error when every position is ignored (the mean would be 0/0).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (sum, count) = nll_sum(logits, labels)?;
    if count == 0 {
        return Err(invalid("every label is -100: nothing to compute a loss on"));
    }
    Ok((sum / count as f64)?)
}
