//! Attention from scratch, as lesson 05 teaches it: scaled dot-product attention with padding and
//! causal masks, multi-head attention (head split and merge), cross-attention, and what each costs.

use candle_core::{D, DType, Device, Tensor};

use crate::error::Result;

/// `softmax(q·kᵀ/√d + mask)·v` for `q` (b, h, s_q, d), `k`/`v` (b, h, s_k, d); `mask` is additive
/// (0 where attention is allowed, a large negative number where not), broadcastable to
/// (b, h, s_q, s_k).
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let head_dim = q.dim(D::Minus1)?;
    let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
    let scores = match mask {
        Some(mask) => scores.broadcast_add(&mask.to_dtype(scores.dtype())?)?,
        None => scores,
    };
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    Ok(weights.matmul(v)?)
}

/// The additive mask for padded keys: `attention_mask` (b, s) holds 1 for tokens, 0 for padding;
/// the result (b, 1, 1, s) holds 0 and `dtype`'s lowest value, as transformers builds it.
pub fn padding_mask(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b_sz, seq_len) = attention_mask.dims2()?;
    let keep = attention_mask.to_dtype(DType::F32)?;
    let blocked = ((1.0 - keep)? * f32::MIN as f64)?;
    Ok(blocked.reshape((b_sz, 1, 1, seq_len))?.to_dtype(dtype)?)
}

/// The additive causal mask (1, 1, t, past + t): position i sees keys 0..=past + i.
pub fn causal_mask(t: usize, past: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..past + t).map(move |j| if j > past + i { f32::MIN } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (1, 1, t, past + t), device)?.to_dtype(dtype)?)
}
