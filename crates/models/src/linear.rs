//! The one linear layer every model projection uses, so compression can swap its form after loading.
//!
//! All forms compute `y = x·Wᵀ + b` for a weight `W` of shape (out, in), as Hugging Face stores it:
//! - [`Linear::Dense`]: `W` itself, `in·out` numbers, `2·in·out` FLOPs per token;
//! - [`Linear::LowRank`]: `W ≈ U·V`, `U` (out×r), `V` (r×in): two thin products, `r·(in+out)` numbers;
//! - [`Linear::Tucker2`]: `W ≈ U1·Γ·U2ᵀ`, `U1` (out×r1), `Γ` (r1×r2), `U2` (in×r2);
//! - [`Linear::Lora`]: a frozen base plus `(α/r)·B·A`, `A` (r×in), `B` (out×r), mergeable.
//!
//! Model files never name the variants: they call [`linear`] / [`linear_no_bias`] (candle-nn's
//! signatures) and expose their layers through [`Linears`], so `replace(model, "encoder.layers.3.
//! self_attn.q_proj", layer)` is the whole of model surgery. Compressed weights live under the layer's
//! own prefix (`q_proj.u`, `q_proj.v`; `q_proj.lora_A.weight` as PEFT names them).
//!
//! A dense layer may carry an [`ActivationTap`] that sums statistics of its inputs during forward
//! passes (`XᵀX`, `Σ|x|`): the hook activation-aware compression calibrates through, since model
//! files have no hooks of their own.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result, invalid};

#[derive(Debug, Clone)]
pub enum Linear {
    Dense(Dense),
    LowRank(LowRank),
    Tucker2(Tucker2),
    Lora(Lora),
}

/// `y = x·Wᵀ + b`.
#[derive(Debug, Clone)]
pub struct Dense {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    /// While set, every forward pass also records its input's statistics (calibration for
    /// activation-aware compression); `None` except while `compress::calibrate` runs.
    pub tap: Option<ActivationTap>,
}

/// `y = (x·Vᵀ)·Uᵀ + b`, the rank-r factorization `W ≈ U·V`.
#[derive(Debug, Clone)]
pub struct LowRank {
    pub u: Tensor,
    pub v: Tensor,
    pub bias: Option<Tensor>,
}

/// `y = ((x·U2)·Γᵀ)·U1ᵀ + b`, the Tucker-2 form `W ≈ U1·Γ·U2ᵀ`.
///
/// With `heads > 1` the output rows are split into heads that share `U1` (head_dim×r1) and `U2`
/// (in×r2), each head with its own core: `Γ` stacks them (heads·r1 × r2), and head `h`'s rows
/// are `U1·Γ_h·U2ᵀ` (Tucker-2 of the weight reshaped per head).
#[derive(Debug, Clone)]
pub struct Tucker2 {
    pub u1: Tensor,
    pub core: Tensor,
    pub u2: Tensor,
    pub bias: Option<Tensor>,
    pub heads: usize,
}

/// `y = base(x) + (α/r)·dropout(x)·Aᵀ·Bᵀ` with the base frozen (LoRA, Hu et al. 2021).
#[derive(Debug, Clone)]
pub struct Lora {
    pub base: Box<Linear>,
    pub lora_a: Tensor,
    pub lora_b: Tensor,
    pub alpha: f64,
    pub dropout: f32,
    /// Where training-time dropout masks come from; `None` outside training (see
    /// [`DropoutRng`]).
    pub dropout_rng: Option<DropoutRng>,
}

/// A seeded source of dropout masks shared by the layers of one model, switched on for training
/// and off for evaluation without touching the model. candle's own dropout draws from an
/// unseedable thread RNG on the CPU; masks from here make a training run reproducible, and
/// [`DropoutRng::reseed`] at every step makes a resumed run draw what an uninterrupted one did.
#[derive(Debug, Clone)]
pub struct DropoutRng(Arc<Mutex<DropoutState>>);

#[derive(Debug)]
struct DropoutState {
    seed: u64,
    active: bool,
    rng: ChaCha8Rng,
}

impl DropoutRng {
    /// Off until [`DropoutRng::set_active`]; `seed` fixes every mask.
    pub fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(DropoutState {
            seed,
            active: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })))
    }

    /// Training (masks drawn) or evaluation (inputs pass unchanged).
    pub fn set_active(&self, active: bool) {
        self.state().active = active;
    }

    pub fn is_active(&self) -> bool {
        self.state().active
    }

    /// Restarts the masks at a stream of their own for `step`: the masks of a step depend only on
    /// the seed and the step.
    pub fn reseed(&self, step: u64) {
        let mut state = self.state();
        let mut rng = ChaCha8Rng::seed_from_u64(state.seed);
        rng.set_stream(step);
        state.rng = rng;
    }

    /// `xs` with each element zeroed with probability `p` and the rest scaled by 1/(1−p)
    /// (inverted dropout, as torch's), when active; `xs` itself otherwise.
    pub fn apply(&self, xs: &Tensor, p: f32) -> Result<Tensor> {
        let mut state = self.state();
        if !state.active || p <= 0.0 {
            return Ok(xs.clone());
        }
        let scale = 1.0 / (1.0 - p);
        let mask: Vec<f32> = (0..xs.elem_count())
            .map(|_| {
                if state.rng.random::<f32>() < p {
                    0.0
                } else {
                    scale
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, xs.shape(), &candle_core::Device::Cpu)?
            .to_device(xs.device())?
            .to_dtype(xs.dtype())?;
        Ok(xs.mul(&mask)?)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, DropoutState> {
        // A panic while holding the lock cannot leave the state half-written.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Statistics of a layer's inputs over calibration data, rows `x` (1×in) being tokens: what
/// activation-aware compression needs to weigh the error of `W` by the inputs it meets.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationStats {
    pub in_dim: usize,
    /// Tokens recorded.
    pub rows: usize,
    /// `XᵀX = Σ xᵀx`, (in×in) row-major, in f64.
    pub gram: Vec<f64>,
    /// `Σ |x_j|` per input channel.
    pub abs_sum: Vec<f64>,
}

impl ActivationStats {
    pub fn new(in_dim: usize) -> Self {
        Self {
            in_dim,
            rows: 0,
            gram: vec![0.0; in_dim * in_dim],
            abs_sum: vec![0.0; in_dim],
        }
    }
}

/// An accumulator a [`Dense`] layer feeds with every input it sees while [`Dense::tap`] holds it
/// (shared: clones of the layer feed the same statistics). Recording works in f64 on the CPU
/// whatever the model's dtype and device, and leaves the layer's output untouched; it costs a
/// copy of the input and an (in×in) product per call, so it is for calibration only.
#[derive(Debug, Clone)]
pub struct ActivationTap(Arc<Mutex<ActivationStats>>);

impl ActivationTap {
    pub fn new(in_dim: usize) -> Self {
        Self(Arc::new(Mutex::new(ActivationStats::new(in_dim))))
    }

    /// Adds the rows of `xs` (…, in): every position of every sequence is one row.
    pub fn record(&self, xs: &Tensor) -> Result<()> {
        let Some(&in_dim) = xs.dims().last() else {
            return Err(invalid(
                "an activation tap needs an input with at least one dimension",
            ));
        };
        let rows = xs.elem_count() / in_dim.max(1);
        let mut state = self.state();
        if in_dim != state.in_dim {
            return Err(invalid(format!(
                "activation tap for {} input features was given {:?}",
                state.in_dim,
                xs.dims()
            )));
        }
        if rows == 0 {
            return Ok(());
        }
        let x = xs
            .detach()
            .to_device(&candle_core::Device::Cpu)?
            .to_dtype(DType::F64)?
            .reshape((rows, in_dim))?;
        let gram = x.t()?.matmul(&x)?.flatten_all()?.to_vec1::<f64>()?;
        let abs_sum = x.abs()?.sum(0)?.to_vec1::<f64>()?;
        for (total, g) in state.gram.iter_mut().zip(gram) {
            *total += g;
        }
        for (total, a) in state.abs_sum.iter_mut().zip(abs_sum) {
            *total += a;
        }
        state.rows += rows;
        Ok(())
    }

    /// What has been recorded so far.
    pub fn stats(&self) -> ActivationStats {
        self.state().clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ActivationStats> {
        // The totals are updated only after every fallible step, so a poisoned lock holds whole rows.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Lora {
    pub fn rank(&self) -> usize {
        self.lora_a.dims().first().copied().unwrap_or(0)
    }

    /// `α / r`, the factor PEFT calls `scaling`.
    pub fn scaling(&self) -> f64 {
        self.alpha / self.rank().max(1) as f64
    }
}

/// A dense layer with bias, loaded from `vb` (`weight` (out, in), `bias` (out)).
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = vb.get(out_dim, "bias")?;
    Ok(Linear::Dense(Dense {
        weight,
        bias: Some(bias),
        tap: None,
    }))
}

/// A dense layer without bias.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    Ok(Linear::Dense(Dense {
        weight,
        bias: None,
        tap: None,
    }))
}

impl Linear {
    pub fn dense(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let (out_dim, _) = weight.dims2()?;
        check_bias(bias.as_ref(), out_dim)?;
        Ok(Linear::Dense(Dense {
            weight,
            bias,
            tap: None,
        }))
    }

    /// `W ≈ U·V`; refuses factors whose inner sizes disagree.
    pub fn low_rank(u: Tensor, v: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let (out_dim, rank) = u.dims2()?;
        let (rank_v, _) = v.dims2()?;
        if rank != rank_v {
            return Err(invalid(format!(
                "low-rank factors disagree: U is {:?} but V is {:?} (need U (out×r), V (r×in))",
                u.dims(),
                v.dims()
            )));
        }
        check_bias(bias.as_ref(), out_dim)?;
        Ok(Linear::LowRank(LowRank { u, v, bias }))
    }

    /// `W ≈ U1·Γ·U2ᵀ`.
    pub fn tucker2(u1: Tensor, core: Tensor, u2: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let (out_dim, r1) = u1.dims2()?;
        let (core_r1, core_r2) = core.dims2()?;
        let (_, r2) = u2.dims2()?;
        if (r1, r2) != (core_r1, core_r2) {
            return Err(invalid(format!(
                "Tucker-2 factors disagree: U1 {:?}, core {:?}, U2 {:?} (need U1 (out×r1), core (r1×r2), U2 (in×r2))",
                u1.dims(),
                core.dims(),
                u2.dims()
            )));
        }
        check_bias(bias.as_ref(), out_dim)?;
        Ok(Linear::Tucker2(Tucker2 {
            u1,
            core,
            u2,
            bias,
            heads: 1,
        }))
    }

    /// Per-head Tucker-2: `heads` blocks of output rows, head `h` = `U1·Γ_h·U2ᵀ` with `U1`
    /// (head_dim×r1), `core` the stacked `Γ_h` (heads·r1 × r2) and `U2` (in×r2).
    pub fn tucker2_heads(
        u1: Tensor,
        core: Tensor,
        u2: Tensor,
        bias: Option<Tensor>,
        heads: usize,
    ) -> Result<Self> {
        let (head_dim, r1) = u1.dims2()?;
        let (rows, core_r2) = core.dims2()?;
        let (_, r2) = u2.dims2()?;
        if heads == 0 || rows != heads * r1 || core_r2 != r2 {
            return Err(invalid(format!(
                "per-head Tucker-2 factors disagree: U1 {:?}, core {:?}, U2 {:?}, {heads} heads \
                 (need U1 (head_dim×r1), core (heads·r1 × r2), U2 (in×r2))",
                u1.dims(),
                core.dims(),
                u2.dims()
            )));
        }
        check_bias(bias.as_ref(), heads * head_dim)?;
        Ok(Linear::Tucker2(Tucker2 {
            u1,
            core,
            u2,
            bias,
            heads,
        }))
    }

    /// Wraps `base` with LoRA factors `A` (r×in) and `B` (out×r).
    pub fn lora(
        base: Linear,
        lora_a: Tensor,
        lora_b: Tensor,
        alpha: f64,
        dropout: f32,
    ) -> Result<Self> {
        let (rank, in_dim) = lora_a.dims2()?;
        let (out_dim, rank_b) = lora_b.dims2()?;
        if rank != rank_b || in_dim != base.in_dim() || out_dim != base.out_dim() {
            return Err(invalid(format!(
                "LoRA factors A {:?} and B {:?} do not fit a {}→{} layer (need A (r×{}), B ({}×r))",
                lora_a.dims(),
                lora_b.dims(),
                base.in_dim(),
                base.out_dim(),
                base.in_dim(),
                base.out_dim()
            )));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(invalid(format!("LoRA dropout {dropout} must be in [0, 1)")));
        }
        Ok(Linear::Lora(Lora {
            base: Box::new(base),
            lora_a,
            lora_b,
            alpha,
            dropout,
            dropout_rng: None,
        }))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Linear::Dense(_) => "dense",
            Linear::LowRank(_) => "low-rank",
            Linear::Tucker2(_) => "tucker-2",
            Linear::Lora(_) => "lora",
        }
    }

    pub fn in_dim(&self) -> usize {
        let dim = match self {
            Linear::Dense(d) => d.weight.dims().get(1),
            Linear::LowRank(l) => l.v.dims().get(1),
            Linear::Tucker2(t) => t.u2.dims().first(),
            Linear::Lora(l) => return l.base.in_dim(),
        };
        dim.copied().unwrap_or(0)
    }

    pub fn out_dim(&self) -> usize {
        let dim = match self {
            Linear::Dense(d) => d.weight.dims().first(),
            Linear::LowRank(l) => l.u.dims().first(),
            Linear::Tucker2(t) => return t.u1.dims().first().map_or(0, |rows| rows * t.heads),
            Linear::Lora(l) => return l.base.out_dim(),
        };
        dim.copied().unwrap_or(0)
    }

    pub fn bias(&self) -> Option<&Tensor> {
        match self {
            Linear::Dense(d) => d.bias.as_ref(),
            Linear::LowRank(l) => l.bias.as_ref(),
            Linear::Tucker2(t) => t.bias.as_ref(),
            Linear::Lora(l) => l.base.bias(),
        }
    }

    /// Numbers stored, bias included (LoRA: base plus adapter).
    pub fn parameter_count(&self) -> usize {
        let bias = self.bias().map_or(0, |b| b.elem_count());
        match self {
            Linear::Dense(d) => d.weight.elem_count() + bias,
            Linear::LowRank(l) => l.u.elem_count() + l.v.elem_count() + bias,
            Linear::Tucker2(t) => {
                t.u1.elem_count() + t.core.elem_count() + t.u2.elem_count() + bias
            }
            Linear::Lora(l) => {
                l.base.parameter_count() + l.lora_a.elem_count() + l.lora_b.elem_count()
            }
        }
    }

    /// Multiply-add FLOPs per input row (token), bias excluded: `2·in·out` for a dense layer.
    pub fn flops_per_token(&self) -> usize {
        match self {
            Linear::Dense(d) => 2 * d.weight.elem_count(),
            Linear::LowRank(l) => 2 * (l.u.elem_count() + l.v.elem_count()),
            Linear::Tucker2(t) => {
                2 * (t.heads * t.u1.elem_count() + t.core.elem_count() + t.u2.elem_count())
            }
            Linear::Lora(l) => {
                l.base.flops_per_token() + 2 * (l.lora_a.elem_count() + l.lora_b.elem_count())
            }
        }
    }

    /// The (out, in) matrix this layer applies; for LoRA the merged `W + (α/r)·B·A`.
    pub fn effective_weight(&self) -> Result<Tensor> {
        Ok(match self {
            Linear::Dense(d) => d.weight.clone(),
            Linear::LowRank(l) => l.u.matmul(&l.v)?,
            Linear::Tucker2(t) => {
                let (head_dim, r1) = t.u1.dims2()?;
                let r2 = t.core.dim(1)?;
                // (heads, r1, r2) cores, each U1·Γ_h: (heads, head_dim, r2), stacked into rows.
                let cores = t.core.reshape((t.heads, r1, r2))?;
                let u1 = t.u1.unsqueeze(0)?.broadcast_as((t.heads, head_dim, r1))?;
                let left = u1.contiguous()?.matmul(&cores)?;
                left.reshape((t.heads * head_dim, r2))?.matmul(&t.u2.t()?)?
            }
            Linear::Lora(l) => {
                let delta = l.lora_b.matmul(&l.lora_a)?;
                (l.base.effective_weight()? + (delta * l.scaling())?)?
            }
        })
    }

    /// `y = x·Wᵀ + b` for `xs` of shape (…, in); LoRA's dropout acts only while the layer's
    /// [`DropoutRng`] is active (training).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_t(xs, false)
    }

    /// As [`Linear::forward`], with LoRA's dropout also on when `train` is set (candle's unseeded
    /// masks, unless the layer has a [`DropoutRng`]).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let ys = match self {
            Linear::Dense(d) => {
                if let Some(tap) = &d.tap {
                    tap.record(xs)?;
                }
                matmul_t(xs, &d.weight)?
            }
            Linear::LowRank(l) => matmul_t(&matmul_t(xs, &l.v)?, &l.u)?,
            Linear::Tucker2(t) => {
                let projected = matmul_t(&matmul_rows(xs, &t.u2)?, &t.core)?;
                if t.heads == 1 {
                    matmul_t(&projected, &t.u1)?
                } else {
                    // (…, heads·r1) → (…, heads, r1) → ·U1ᵀ → (…, heads·head_dim).
                    let dims = projected.dims().to_vec();
                    let r1 = t.u1.dim(1)?;
                    let mut split = dims[..dims.len() - 1].to_vec();
                    split.extend([t.heads, r1]);
                    let per_head = matmul_t(&projected.reshape(split)?, &t.u1)?;
                    let mut out = dims[..dims.len() - 1].to_vec();
                    out.push(t.heads * t.u1.dim(0)?);
                    per_head.reshape(out)?
                }
            }
            Linear::Lora(l) => {
                let base = l.base.forward_t(xs, train)?;
                let dropped = match &l.dropout_rng {
                    Some(rng) if rng.is_active() => rng.apply(xs, l.dropout)?,
                    _ if train && l.dropout > 0.0 => candle_nn::ops::dropout(xs, l.dropout)?,
                    _ => xs.clone(),
                };
                let update = matmul_t(&matmul_t(&dropped, &l.lora_a)?, &l.lora_b)?;
                return Ok((base + (update * l.scaling())?)?);
            }
        };
        match self.bias() {
            Some(bias) => Ok(ys.broadcast_add(bias)?),
            None => Ok(ys),
        }
    }

    /// LoRA folded into a dense layer (`W + (α/r)·B·A`); other forms come back unchanged.
    pub fn merged(&self) -> Result<Linear> {
        match self {
            Linear::Lora(l) => Linear::dense(self.effective_weight()?, l.base.bias().cloned()),
            other => Ok(other.clone()),
        }
    }

    /// The inverse of [`Linear::merged`] (PEFT's `unmerge`): this dense layer, holding
    /// `W + (α/r)·B·A`, back in LoRA form, `W` recovered by subtraction (up to rounding) and
    /// detached from `A` and `B`. Refuses a layer that is not dense or factors that do not fit it.
    pub fn unmerged(
        &self,
        lora_a: Tensor,
        lora_b: Tensor,
        alpha: f64,
        dropout: f32,
    ) -> Result<Linear> {
        let Linear::Dense(dense) = self else {
            return Err(invalid(format!(
                "only a dense layer holds a merged LoRA update; this one is {}",
                self.kind()
            )));
        };
        let Linear::Lora(checked) = Linear::lora(self.clone(), lora_a, lora_b, alpha, dropout)?
        else {
            return Err(invalid("Linear::lora returned another form"));
        };
        let delta = (checked.lora_b.matmul(&checked.lora_a)? * checked.scaling())?;
        let weight = (&dense.weight - delta.to_dtype(dense.weight.dtype())?)?.detach();
        Linear::lora(
            Linear::dense(weight, dense.bias.clone())?,
            checked.lora_a,
            checked.lora_b,
            alpha,
            dropout,
        )
    }

    /// Casts every tensor (for bf16 inference or f32 parity checks).
    pub fn to_dtype(&self, dtype: DType) -> Result<Linear> {
        let cast = |t: &Tensor| t.to_dtype(dtype);
        let cast_bias = |b: &Option<Tensor>| b.as_ref().map(cast).transpose();
        Ok(match self {
            Linear::Dense(d) => Linear::Dense(Dense {
                weight: cast(&d.weight)?,
                bias: cast_bias(&d.bias)?,
                tap: d.tap.clone(),
            }),
            Linear::LowRank(l) => Linear::LowRank(LowRank {
                u: cast(&l.u)?,
                v: cast(&l.v)?,
                bias: cast_bias(&l.bias)?,
            }),
            Linear::Tucker2(t) => Linear::Tucker2(Tucker2 {
                u1: cast(&t.u1)?,
                core: cast(&t.core)?,
                u2: cast(&t.u2)?,
                bias: cast_bias(&t.bias)?,
                heads: t.heads,
            }),
            Linear::Lora(l) => Linear::Lora(Lora {
                base: Box::new(l.base.to_dtype(dtype)?),
                lora_a: cast(&l.lora_a)?,
                lora_b: cast(&l.lora_b)?,
                alpha: l.alpha,
                dropout: l.dropout,
                dropout_rng: l.dropout_rng.clone(),
            }),
        })
    }

    /// The named tensors of this layer, keyed relative to its prefix (`weight`, `u`, `lora_A.weight`).
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<(String, Tensor)> = match self {
            Linear::Dense(d) => vec![("weight".into(), d.weight.clone())],
            Linear::LowRank(l) => vec![("u".into(), l.u.clone()), ("v".into(), l.v.clone())],
            Linear::Tucker2(t) => vec![
                ("u1".into(), t.u1.clone()),
                ("core".into(), t.core.clone()),
                ("u2".into(), t.u2.clone()),
            ],
            Linear::Lora(l) => {
                let mut base: Vec<(String, Tensor)> = l
                    .base
                    .tensors()
                    .into_iter()
                    .map(|(name, t)| (format!("base_layer.{name}"), t))
                    .collect();
                base.push(("lora_A.weight".into(), l.lora_a.clone()));
                base.push(("lora_B.weight".into(), l.lora_b.clone()));
                return base;
            }
        };
        if let Some(bias) = self.bias() {
            tensors.push(("bias".into(), bias.clone()));
        }
        tensors
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Linear::forward(self, xs).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }
}

/// `xs·wᵀ` for `xs` (…, in) and `w` (out, in).
fn matmul_t(xs: &Tensor, w: &Tensor) -> Result<Tensor> {
    matmul_rows(xs, &w.t()?)
}

/// `xs·rhs` for `xs` (…, k) and `rhs` (k, n), as one 2-D product over all leading rows. A
/// broadcast batched product would copy `rhs` once per batch row on CUDA (candle makes the
/// stride-0 operand contiguous), which made MiniLM at batch 256 slower than torch.
fn matmul_rows(xs: &Tensor, rhs: &Tensor) -> Result<Tensor> {
    let dims = xs.dims();
    let Some((&k, leading)) = dims.split_last() else {
        return Err(invalid(
            "a linear layer needs an input with at least one dimension",
        ));
    };
    if leading.len() <= 1 {
        return Ok(xs.matmul(rhs)?);
    }
    let rows: usize = leading.iter().product();
    let ys = xs.reshape((rows, k))?.matmul(rhs)?;
    let mut out_dims = leading.to_vec();
    out_dims.push(rhs.dim(1)?);
    Ok(ys.reshape(out_dims)?)
}

fn check_bias(bias: Option<&Tensor>, out_dim: usize) -> Result<()> {
    match bias {
        Some(b) if b.dims() != [out_dim] => Err(invalid(format!(
            "bias has shape {:?}, expected [{out_dim}]",
            b.dims()
        ))),
        _ => Ok(()),
    }
}

/// A model whose projections can be listed and swapped by their checkpoint names.
pub trait Linears {
    /// Every linear layer with its full name (`encoder.layers.0.self_attn.q_proj`), in model order.
    fn linears(&self) -> Vec<(String, &Linear)>;
    fn linears_mut(&mut self) -> Vec<(String, &mut Linear)>;
}

/// The layer called `name`, or an error listing names that look close.
pub fn find<'a, M: Linears + ?Sized>(model: &'a M, name: &str) -> Result<&'a Linear> {
    let all = model.linears();
    let names: Vec<String> = all.iter().map(|(n, _)| n.clone()).collect();
    all.into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, layer)| layer)
        .ok_or_else(|| unknown_layer(name, &names))
}

/// Swaps the layer called `name` for `layer`, which must map the same sizes; returns the old one.
pub fn replace<M: Linears + ?Sized>(model: &mut M, name: &str, layer: Linear) -> Result<Linear> {
    let mut all = model.linears_mut();
    let names: Vec<String> = all.iter().map(|(n, _)| n.clone()).collect();
    let slot = all
        .iter_mut()
        .find(|(n, _)| n == name)
        .map(|(_, slot)| slot)
        .ok_or_else(|| unknown_layer(name, &names))?;
    if (slot.in_dim(), slot.out_dim()) != (layer.in_dim(), layer.out_dim()) {
        return Err(invalid(format!(
            "{name} maps {}→{} but the replacement maps {}→{}",
            slot.in_dim(),
            slot.out_dim(),
            layer.in_dim(),
            layer.out_dim()
        )));
    }
    Ok(std::mem::replace(*slot, layer))
}

fn unknown_layer(name: &str, names: &[String]) -> Error {
    let last = name.rsplit('.').next().unwrap_or(name);
    let similar: Vec<&str> = names
        .iter()
        .filter(|n| n.ends_with(last) || name.starts_with(n.as_str()))
        .take(4)
        .map(String::as_str)
        .collect();
    let hint = if similar.is_empty() {
        format!(
            "the model has {} linear layers, e.g. {}",
            names.len(),
            names.first().map_or("none", String::as_str)
        )
    } else {
        format!("did you mean {}?", similar.join(", "))
    };
    Error::UnknownLayer {
        name: name.to_string(),
        hint,
    }
}
