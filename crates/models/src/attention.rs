//! Attention from scratch, as lesson 05 teaches it: scaled dot-product attention with padding and
//! causal masks, multi-head attention (head split and merge), cross-attention, a KV cache, and what
//! each costs in FLOPs and bytes.
//!
//! Shapes follow Hugging Face: hidden states are (b, s, d_model) with `d_model = n_heads·head_dim`;
//! inside attention they are split into heads, (b, h, s, head_dim). Masks are additive: 0 where a
//! query may look, the dtype's lowest finite number where it may not, so a softmax gives those keys
//! a weight that underflows to exactly zero.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::{Result, invalid};
use crate::linear::{Linear, linear};

/// `softmax(q·kᵀ/√d + mask)·v` for `q` (b, h, s_q, d), `k`/`v` (b, h, s_k, d); `mask` is additive
/// (0 where attention is allowed, a large negative number where not), broadcastable to
/// (b, h, s_q, s_k).
///
/// ```
/// # use candle_core::{Device, Tensor};
/// // One query, two keys with equal scores: the output is the mean of the two values.
/// let q = Tensor::new(&[[[[1f32, 0.]]]], &Device::Cpu)?;
/// let k = Tensor::new(&[[[[0f32, 1.], [0., -1.]]]], &Device::Cpu)?;
/// let v = Tensor::new(&[[[[2f32, 0.], [4., 2.]]]], &Device::Cpu)?;
/// let out = models::attention::scaled_dot_product_attention(&q, &k, &v, None)?;
/// assert_eq!(out.flatten_all()?.to_vec1::<f32>()?, [3.0, 1.0]);
/// # Ok::<(), models::Error>(())
/// ```
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let weights = attention_weights(q, k, mask)?;
    Ok(weights.matmul(v)?)
}

/// The attention pattern `softmax(q·kᵀ/√d + mask)`, (b, h, s_q, s_k): each row sums to one. The
/// lessons plot it; [`scaled_dot_product_attention`] mixes the values with it.
pub fn attention_weights(q: &Tensor, k: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let head_dim = q.dim(D::Minus1)?;
    let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
    let scores = match mask {
        Some(mask) => scores.broadcast_add(&mask.to_dtype(scores.dtype())?)?,
        None => scores,
    };
    // candle's fused softmax has no backward pass: while training, the composite one.
    if scores.track_op() {
        return Ok(candle_nn::ops::softmax(&scores, D::Minus1)?);
    }
    Ok(candle_nn::ops::softmax_last_dim(&scores)?)
}

/// The additive mask for padded keys: `attention_mask` (b, s) holds 1 for tokens, 0 for padding;
/// the result (b, 1, 1, s) holds 0 and `dtype`'s lowest finite value, as transformers builds it.
///
/// The lowest value of the mask's own dtype, not `f32::MIN` cast down: in f16 that cast would give
/// −∞, and a row whose keys are all padding would then turn into NaN instead of a uniform average.
pub fn padding_mask(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b_sz, seq_len) = attention_mask.dims2()?;
    let keep = attention_mask.to_dtype(dtype)?;
    additive(&keep)?
        .reshape((b_sz, 1, 1, seq_len))
        .map_err(Into::into)
}

/// The additive causal mask (1, 1, t, past + t): query i (at absolute position past + i) sees keys
/// 0..=past + i, so nothing a later token says can change an earlier output.
pub fn causal_mask(t: usize, past: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let keep: Vec<u8> = (0..t)
        .flat_map(|i| (0..past + t).map(move |j| u8::from(j <= past + i)))
        .collect();
    let keep = Tensor::from_vec(keep, (1, 1, t, past + t), device)?.to_dtype(dtype)?;
    additive(&keep)
}

/// 1 → 0 and 0 → the dtype's lowest finite value, computed in the dtype itself as `keep·(−L) + L`.
fn additive(keep: &Tensor) -> Result<Tensor> {
    let lowest = lowest_finite(keep.dtype())?;
    Ok(keep.affine(-lowest, lowest)?)
}

fn lowest_finite(dtype: DType) -> Result<f64> {
    match dtype {
        DType::F16 => Ok(-65504.0),
        DType::BF16 => Ok(-3.389_531_389_251_535_5e38),
        DType::F32 => Ok(f32::MIN as f64),
        DType::F64 => Ok(f64::MIN),
        other => Err(invalid(format!(
            "attention masks need a float dtype (f16, bf16, f32 or f64), got {other:?}"
        ))),
    }
}

/// (b, s, h·d) → (b, h, s, d): each head gets its own contiguous slice of the features.
///
/// ```
/// # use candle_core::{Device, Tensor};
/// use models::attention::{merge_heads, split_heads};
/// let xs = Tensor::arange(0f32, 24., &Device::Cpu)?.reshape((1, 3, 8))?;
/// let heads = split_heads(&xs, 2)?;
/// assert_eq!(heads.dims(), [1, 2, 3, 4]);
/// // Head 1 of token 0 holds features 4..8.
/// assert_eq!(heads.get(0)?.get(1)?.get(0)?.to_vec1::<f32>()?, [4., 5., 6., 7.]);
/// assert_eq!(merge_heads(&heads)?.to_vec3::<f32>()?, xs.to_vec3::<f32>()?);
/// # Ok::<(), models::Error>(())
/// ```
pub fn split_heads(xs: &Tensor, n_heads: usize) -> Result<Tensor> {
    let (b_sz, seq_len, hidden) = xs.dims3()?;
    if n_heads == 0 || !hidden.is_multiple_of(n_heads) {
        return Err(invalid(format!(
            "cannot split {hidden} features into {n_heads} heads (need a divisor of {hidden})"
        )));
    }
    let head_dim = hidden / n_heads;
    Ok(xs
        .reshape((b_sz, seq_len, n_heads, head_dim))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// (b, h, s, d) → (b, s, h·d), the inverse of [`split_heads`].
pub fn merge_heads(xs: &Tensor) -> Result<Tensor> {
    let (b_sz, n_heads, seq_len, head_dim) = xs.dims4()?;
    Ok(xs
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b_sz, seq_len, n_heads * head_dim))?)
}

/// Past keys and values (b, h, s_past, d) of one attention block.
///
/// Self-attention appends the new positions' K/V at each decoding step, so a step costs O(s) rather
/// than recomputing O(s²); cross-attention stores the encoder's K/V once and reuses them.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    kv: Option<(Tensor, Tensor)>,
}

impl KvCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Positions cached (0 when empty).
    pub fn seq_len(&self) -> usize {
        self.kv
            .as_ref()
            .and_then(|(k, _)| k.dims().get(2).copied())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.kv.is_none()
    }

    /// The cached keys and values, if any.
    pub fn get(&self) -> Option<(&Tensor, &Tensor)> {
        self.kv.as_ref().map(|(k, v)| (k, v))
    }

    /// Stores `k`, `v` in place of whatever was cached.
    pub fn set(&mut self, k: Tensor, v: Tensor) {
        self.kv = Some((k, v));
    }

    /// Appends `k`, `v` (b, h, t, d) along the sequence and returns everything cached so far.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (k, v) = match &self.kv {
            Some((past_k, past_v)) => {
                (Tensor::cat(&[past_k, k], 2)?, Tensor::cat(&[past_v, v], 2)?)
            }
            None => (k.clone(), v.clone()),
        };
        self.kv = Some((k.clone(), v.clone()));
        Ok((k, v))
    }

    /// Keeps batch row `indices[i]` as row `i` (beam search reorders and duplicates beams).
    pub fn index_select(&mut self, indices: &Tensor) -> Result<()> {
        if let Some((k, v)) = &self.kv {
            let select = |t: &Tensor| t.contiguous()?.index_select(indices, 0);
            self.kv = Some((select(k)?, select(v)?));
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.kv = None;
    }
}

/// Multi-head attention with the four projections Hugging Face names `q_proj`, `k_proj`, `v_proj`
/// and `out_proj`, each a swappable [`Linear`].
///
/// Reference: transformers `BartAttention`
/// (<https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/bart/modeling_bart.py>).
/// transformers scales `q` by `1/√d` before the product; here the scores are scaled, the same up
/// to rounding.
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
    pub head_dim: usize,
}

impl MultiHeadAttention {
    /// Assembles the block, checking that every projection maps `num_heads·head_dim` features.
    pub fn new(
        q_proj: Linear,
        k_proj: Linear,
        v_proj: Linear,
        out_proj: Linear,
        num_heads: usize,
    ) -> Result<Self> {
        let embed_dim = q_proj.out_dim();
        if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            return Err(invalid(format!(
                "{embed_dim} features cannot be split into {num_heads} heads"
            )));
        }
        for (name, layer) in [("k_proj", &k_proj), ("v_proj", &v_proj)] {
            if layer.out_dim() != embed_dim {
                return Err(invalid(format!(
                    "{name} has {} outputs but q_proj has {embed_dim}",
                    layer.out_dim()
                )));
            }
        }
        if out_proj.in_dim() != embed_dim {
            return Err(invalid(format!(
                "out_proj takes {} features but the heads give {embed_dim}",
                out_proj.in_dim()
            )));
        }
        let head_dim = embed_dim / num_heads;
        Ok(Self {
            q_proj,
            k_proj,
            v_proj,
            out_proj,
            num_heads,
            head_dim,
        })
    }

    /// Loads `q_proj`, `k_proj`, `v_proj`, `out_proj` (weights and biases) under `vb`.
    pub fn load(vb: VarBuilder, embed_dim: usize, num_heads: usize) -> Result<Self> {
        let proj = |name: &str| linear(embed_dim, embed_dim, vb.pp(name));
        Self::new(
            proj("q_proj")?,
            proj("k_proj")?,
            proj("v_proj")?,
            proj("out_proj")?,
            num_heads,
        )
    }

    /// Self-attention of `xs` (b, t, d) over itself, plus the positions in `cache` when given
    /// (the new K/V are appended to it). `mask` broadcasts to (b, h, t, past + t).
    pub fn forward(
        &self,
        xs: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let q = self.heads(&self.q_proj, xs)?;
        let k = self.heads(&self.k_proj, xs)?;
        let v = self.heads(&self.v_proj, xs)?;
        let (k, v) = match cache {
            Some(cache) => cache.append(&k, &v)?,
            None => (k, v),
        };
        self.attend(&q, &k, &v, mask)
    }

    /// Cross-attention of `xs` (b, t, d) over `memory` (b, s, d), the encoder's output. With a
    /// cache, K/V of `memory` are computed on the first call and reused after (`memory` is then
    /// not read). `mask` broadcasts to (b, h, t, s).
    pub fn forward_cross(
        &self,
        xs: &Tensor,
        memory: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let q = self.heads(&self.q_proj, xs)?;
        let (k, v) = match cache {
            Some(cache) => match cache.get() {
                Some((k, v)) => (k.clone(), v.clone()),
                None => {
                    let (k, v) = self.memory_kv(memory)?;
                    cache.set(k.clone(), v.clone());
                    (k, v)
                }
            },
            None => self.memory_kv(memory)?,
        };
        self.attend(&q, &k, &v, mask)
    }

    /// The projections by their checkpoint names, in Hugging Face's order.
    pub fn named_linears(&self) -> [(&'static str, &Linear); 4] {
        [
            ("q_proj", &self.q_proj),
            ("k_proj", &self.k_proj),
            ("v_proj", &self.v_proj),
            ("out_proj", &self.out_proj),
        ]
    }

    pub fn named_linears_mut(&mut self) -> [(&'static str, &mut Linear); 4] {
        [
            ("q_proj", &mut self.q_proj),
            ("k_proj", &mut self.k_proj),
            ("v_proj", &mut self.v_proj),
            ("out_proj", &mut self.out_proj),
        ]
    }

    fn memory_kv(&self, memory: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.heads(&self.k_proj, memory)?,
            self.heads(&self.v_proj, memory)?,
        ))
    }

    /// (b, s, d) → projected and split into heads, (b, h, s, head_dim).
    fn heads(&self, proj: &Linear, xs: &Tensor) -> Result<Tensor> {
        split_heads(&proj.forward(xs)?, self.num_heads)
    }

    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let context = scaled_dot_product_attention(q, k, v, mask)?;
        self.out_proj.forward(&merge_heads(&context)?)
    }
}

/// FLOPs of one multi-head attention block (multiply and add counted as 2), by stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionFlops {
    /// Q from the s_q queries, K and V from the s_k keys: `2·b·d²·(s_q + 2·s_k)`.
    pub projections: u64,
    /// `q·kᵀ` in every head: `2·b·s_q·s_k·d` (h heads of d/h each).
    pub scores: u64,
    /// The weighted sum of values: `2·b·s_q·s_k·d`.
    pub mixing: u64,
    /// `out_proj`: `2·b·s_q·d²`.
    pub output: u64,
    pub total: u64,
}

/// FLOPs of attention with `b` sequences of `s_q` queries over `s_k` keys (self-attention:
/// `s_q = s_k`) in `d_model` features split into `n_heads` heads; softmax and bias are left out.
/// The projections grow with s·d², the scores and mixing with s²·d: the crossover at s ≈ d is the
/// lesson's point.
///
/// ```
/// let f = models::attention::attention_flops(1, 128, 128, 768, 12)?;
/// assert_eq!(f.projections, 3 * 2 * 128 * 768 * 768);
/// assert_eq!(f.scores, 2 * 128 * 128 * 768);
/// assert_eq!(f.total, 8 * 128 * 768 * 768 + 4 * 128 * 128 * 768);
/// # Ok::<(), models::Error>(())
/// ```
pub fn attention_flops(
    b: usize,
    s_q: usize,
    s_k: usize,
    d_model: usize,
    n_heads: usize,
) -> Result<AttentionFlops> {
    let head_dim = head_dim(d_model, n_heads)? as u64;
    let (b, s_q, s_k, d, h) = (
        b as u64,
        s_q as u64,
        s_k as u64,
        d_model as u64,
        n_heads as u64,
    );
    let projections = 2 * b * d * d * (s_q + 2 * s_k);
    let scores = 2 * b * h * s_q * s_k * head_dim;
    let mixing = 2 * b * h * s_q * s_k * head_dim;
    let output = 2 * b * s_q * d * d;
    Ok(AttentionFlops {
        projections,
        scores,
        mixing,
        output,
        total: projections + scores + mixing + output,
    })
}

/// Bytes one attention block holds at its peak, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionMemory {
    /// The score matrix `b·h·s_q·s_k` (softmax works in place on it).
    pub scores: u64,
    /// Q and the context (`b·s_q·d` each), K and V (`b·s_k·d` each).
    pub activations: u64,
    pub total: u64,
}

/// Memory of attention's intermediate tensors in `dtype`; the score matrix is what grows with the
/// square of the sequence and what fused kernels (FlashAttention) avoid storing.
///
/// ```
/// use candle_core::DType;
/// let m = models::attention::attention_memory_bytes(1, 1024, 1024, 768, 12, DType::F32)?;
/// assert_eq!(m.scores, 12 * 1024 * 1024 * 4);
/// assert_eq!(m.activations, 4 * 1024 * 768 * 4);
/// # Ok::<(), models::Error>(())
/// ```
pub fn attention_memory_bytes(
    b: usize,
    s_q: usize,
    s_k: usize,
    d_model: usize,
    n_heads: usize,
    dtype: DType,
) -> Result<AttentionMemory> {
    head_dim(d_model, n_heads)?;
    let bytes = dtype.size_in_bytes() as u64;
    let (b, s_q, s_k, d, h) = (
        b as u64,
        s_q as u64,
        s_k as u64,
        d_model as u64,
        n_heads as u64,
    );
    let scores = b * h * s_q * s_k * bytes;
    let activations = 2 * b * (s_q + s_k) * d * bytes;
    Ok(AttentionMemory {
        scores,
        activations,
        total: scores + activations,
    })
}

fn head_dim(d_model: usize, n_heads: usize) -> Result<usize> {
    if n_heads == 0 || !d_model.is_multiple_of(n_heads) {
        return Err(invalid(format!(
            "d_model {d_model} is not divisible into {n_heads} heads"
        )));
    }
    Ok(d_model / n_heads)
}
