//! Lesson 06 (`06-transformer-and-bart`): the transformer layer and BART. The lesson writes an
//! encoder layer by hand (LayerNorm, GELU feed-forward, multi-head self-attention, residuals) on
//! ndarray and checks it against [`models::bart::Bart`]; counts where BART's parameters go by
//! formula and against a built model; implements BART's denoising noise (text infilling with
//! Poisson span lengths, token masking, token deletion, Lewis et al. 2020); and trains the
//! project's tiny dialogue BART ([`train::summarizer`]) for a few steps.
//!
//! Everything here is small on purpose: the library's BART is the reference every function is
//! tested against.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use models::bart::{Bart, Config};
use models::linear::Linears;
use models::tokenizer::Tokenizer;
use ndarray::{Array1, Array2, Axis, s};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use train::summarizer::{self, SummarizerConfig, SummarizerReport};

use crate::LessonResult;
use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::gaussian_matrix;

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "06-layer-norm",
        lesson: "06-transformer-and-bart",
        title: "LayerNorm over the rows of a matrix",
        task: "Normalize each row of x to mean 0 and variance 1 (the biased variance, over the row's \
               d entries, plus eps under the square root), then scale column j by gamma[j] and add \
               beta[j].",
        hint: "var = mean((x - mean)²) divides by d, not d - 1 (PyTorch's LayerNorm); y = (x - mean) / sqrt(var + eps) · γ + β",
        template: "use lab::*;\n\nfn answer(x: &Array2<f64>, gamma: &[f64], beta: &[f64], eps: f64) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::transformer::check_layer_norm",
        self_test: || SelfTest {
            reference: check_layer_norm(|x, g, b, eps| {
                layer_norm(x, g, b, eps).unwrap_or_else(|_| x.clone())
            }),
            wrong: check_layer_norm(|x, g, b, eps| {
                // The unbiased variance (d - 1), numpy's ddof=1 mistake.
                let d = x.ncols() as f64;
                let mut y = layer_norm(x, g, b, eps).unwrap_or_else(|_| x.clone());
                let scale = (d / (d - 1.0).max(1.0)).sqrt();
                for (j, mut column) in y.axis_iter_mut(Axis(1)).enumerate() {
                    column.mapv_inplace(|v| (v - b[j]) / scale + b[j]);
                }
                y
            }),
        },
    },
    Exercise {
        id: "06-feed-forward",
        lesson: "06-transformer-and-bart",
        title: "BART's position-wise feed-forward block",
        task: "Return fc2(gelu(fc1(x))) for the rows of x, where fc(x) = x·Wᵀ + b with W stored as \
               PyTorch stores it, (out, in), and gelu is the exact x·Φ(x) = x/2·(1 + erf(x/√2)).",
        hint: "x.dot(&w1.t()) + b1, then gelu elementwise with candle::cpu::erf::erf_f64 (not the tanh approximation), then the same with w2, b2",
        template: "use lab::*;\n\nfn answer(x: &Array2<f64>, w1: &Array2<f64>, b1: &[f64], w2: &Array2<f64>, b2: &[f64]) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::transformer::check_feed_forward",
        self_test: || SelfTest {
            reference: check_feed_forward(|x, w1, b1, w2, b2| {
                feed_forward(x, w1, b1, w2, b2).unwrap_or_else(|_| x.clone())
            }),
            wrong: check_feed_forward(|x, w1, b1, w2, b2| {
                // The tanh approximation (gelu_new) where BART's config says exact gelu.
                let h = (x.dot(&w1.t()) + &Array1::from(b1.to_vec())).mapv(|v| {
                    0.5 * v
                        * (1.0
                            + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3)))
                                .tanh())
                });
                h.dot(&w2.t()) + &Array1::from(b2.to_vec())
            }),
        },
    },
    Exercise {
        id: "06-shift-tokens-right",
        lesson: "06-transformer-and-bart",
        title: "Decoder inputs for teacher forcing",
        task: "Given one row of labels (token ids, -100 where the loss ignores a position), return \
               the decoder's input: the decoder start token, then the labels without their last \
               entry, with every -100 replaced by the pad token.",
        hint: "same length as the labels: [start, l0, l1, …, l(t-2)]; -100 is not a token the embedding can read, so it becomes pad",
        template: "fn answer(labels: &[i64], pad_token_id: i64, decoder_start_token_id: i64) -> Vec<i64> {\n    todo!()\n}\n",
        checker: "lab::transformer::check_shift_tokens_right",
        self_test: || SelfTest {
            reference: check_shift_tokens_right(shift_right),
            wrong: check_shift_tokens_right(|labels, _pad, start| {
                std::iter::once(start)
                    .chain(labels.iter().take(labels.len().saturating_sub(1)).copied())
                    .collect()
            }),
        },
    },
    Exercise {
        id: "06-bart-parameters",
        lesson: "06-transformer-and-bart",
        title: "How many parameters a BART has",
        task: "Return the parameters of a BART (BartForConditionalGeneration, LM head tied to the \
               token embedding) with this vocabulary, width, layer counts, feed-forward width and \
               position table.",
        hint: "shared embedding V·d; two position tables of (max_positions + 2)·d; two embedding LayerNorms; per encoder layer 4 attention projections (d² + d each), fc1, fc2 and 2 LayerNorms (2d each); the decoder adds cross-attention and a third LayerNorm",
        template: "fn answer(vocab_size: usize, d_model: usize, encoder_layers: usize, decoder_layers: usize, ffn_dim: usize, max_position_embeddings: usize) -> usize {\n    todo!()\n}\n",
        checker: "lab::transformer::check_bart_parameters",
        self_test: || SelfTest {
            reference: check_bart_parameters(|v, d, e, l, f, p| {
                bart_parameters(&small_config(v, d, e, l, f, p)).total()
            }),
            wrong: check_bart_parameters(|v, d, e, l, f, p| {
                let counts = bart_parameters(&small_config(v, d, e, l, f, p));
                counts.total() - counts.decoder_cross_attention
            }),
        },
    },
];

// ---------------------------------------------------------------------------------------------
// The encoder layer by hand.

/// LayerNorm over each row: `(x − mean) / √(var + ε) · γ + β`, with the biased variance (over
/// the row's `d` entries), as PyTorch's `nn.LayerNorm` computes it.
pub fn layer_norm(
    x: &Array2<f64>,
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
) -> LessonResult<Array2<f64>> {
    let d = x.ncols();
    if gamma.len() != d || beta.len() != d {
        return Err(format!(
            "layer_norm: x has {d} columns but gamma has {} and beta {}",
            gamma.len(),
            beta.len()
        )
        .into());
    }
    if d == 0 {
        return Err("layer_norm: x has no columns".into());
    }
    let mut y = x.clone();
    for mut row in y.rows_mut() {
        let mean = row.sum() / d as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        let inv_std = 1.0 / (var + eps).sqrt();
        for (j, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv_std * gamma[j] + beta[j];
        }
    }
    Ok(y)
}

/// The exact GELU, `x·Φ(x) = x/2·(1 + erf(x/√2))` (BART's `activation_function: "gelu"`).
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x / std::f64::consts::SQRT_2))
}

/// `x·wᵀ + b` for `w` stored as PyTorch stores a Linear's weight, (out, in).
pub fn linear(x: &Array2<f64>, w: &Array2<f64>, b: &[f64]) -> LessonResult<Array2<f64>> {
    if x.ncols() != w.ncols() || w.nrows() != b.len() {
        return Err(format!(
            "linear: x is {:?}, w {:?} and b has {} entries; need x (n, in), w (out, in), b (out)",
            x.dim(),
            w.dim(),
            b.len()
        )
        .into());
    }
    Ok(x.dot(&w.t()) + &Array1::from(b.to_vec()))
}

/// `fc2(gelu(fc1(x)))`, the position-wise feed-forward block (d → ffn → d).
pub fn feed_forward(
    x: &Array2<f64>,
    w1: &Array2<f64>,
    b1: &[f64],
    w2: &Array2<f64>,
    b2: &[f64],
) -> LessonResult<Array2<f64>> {
    linear(&linear(x, w1, b1)?.mapv(gelu), w2, b2)
}

/// Each row's softmax.
fn softmax_rows(scores: &mut Array2<f64>) {
    for mut row in scores.rows_mut() {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
}

/// A checkpoint's tensors as f64 arrays, looked up by name, for the by-hand layer.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    pub fn new(tensors: HashMap<String, Tensor>) -> Self {
        Self { tensors }
    }

    /// The tensor `name` as a matrix (a vector becomes one row).
    pub fn matrix(&self, name: &str) -> LessonResult<Array2<f64>> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| format!("no tensor named {name}"))?;
        to_array2(tensor)
    }

    /// The tensor `name` as a vector.
    pub fn vector(&self, name: &str) -> LessonResult<Vec<f64>> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| format!("no tensor named {name}"))?;
        Ok(tensor.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?)
    }

    /// `x·Wᵀ + b` with the Linear `prefix` (`prefix.weight`, `prefix.bias`).
    pub fn linear(&self, x: &Array2<f64>, prefix: &str) -> LessonResult<Array2<f64>> {
        let w = self.matrix(&format!("{prefix}.weight"))?;
        let b = self.vector(&format!("{prefix}.bias"))?;
        linear(x, &w, &b)
    }

    /// The LayerNorm `prefix` (ε = 1e-5, as every LayerNorm in BART).
    pub fn layer_norm(&self, x: &Array2<f64>, prefix: &str) -> LessonResult<Array2<f64>> {
        let gamma = self.vector(&format!("{prefix}.weight"))?;
        let beta = self.vector(&format!("{prefix}.bias"))?;
        layer_norm(x, &gamma, &beta, 1e-5)
    }
}

/// A 1-D or 2-D tensor as an f64 matrix (a vector becomes one row).
pub fn to_array2(tensor: &Tensor) -> LessonResult<Array2<f64>> {
    let tensor = tensor.to_dtype(DType::F64)?;
    let rows: Vec<Vec<f64>> = match tensor.rank() {
        1 => vec![tensor.to_vec1()?],
        2 => tensor.to_vec2()?,
        rank => return Err(format!("to_array2: a tensor of rank {rank}, need 1 or 2").into()),
    };
    let (n, d) = (rows.len(), rows.first().map_or(0, Vec::len));
    Ok(Array2::from_shape_vec((n, d), rows.concat())?)
}

/// Multi-head self-attention over one sequence `x` (s, d), no mask: project to Q, K, V, split the
/// d features into `n_heads` heads, `softmax(Q·Kᵀ/√d_head)·V` per head, concatenate, `out_proj`.
pub fn self_attention(
    weights: &Weights,
    x: &Array2<f64>,
    prefix: &str,
    n_heads: usize,
) -> LessonResult<Array2<f64>> {
    let d = x.ncols();
    if n_heads == 0 || !d.is_multiple_of(n_heads) {
        return Err(format!("{n_heads} heads do not divide d_model {d}").into());
    }
    let head_dim = d / n_heads;
    let q = weights.linear(x, &format!("{prefix}.q_proj"))?;
    let k = weights.linear(x, &format!("{prefix}.k_proj"))?;
    let v = weights.linear(x, &format!("{prefix}.v_proj"))?;
    let mut heads = Array2::zeros(x.dim());
    for h in 0..n_heads {
        let cols = s![.., h * head_dim..(h + 1) * head_dim];
        let mut scores = q.slice(cols).dot(&k.slice(cols).t()) / (head_dim as f64).sqrt();
        softmax_rows(&mut scores);
        heads.slice_mut(cols).assign(&scores.dot(&v.slice(cols)));
    }
    weights.linear(&heads, &format!("{prefix}.out_proj"))
}

/// One BART encoder layer (post-LayerNorm, as transformers' `BartEncoderLayer`):
/// `h = LN(x + SelfAttn(x))`, then `LN(h + FFN(h))`.
pub fn encoder_layer(
    weights: &Weights,
    x: &Array2<f64>,
    prefix: &str,
    n_heads: usize,
) -> LessonResult<Array2<f64>> {
    let attended = self_attention(weights, x, &format!("{prefix}.self_attn"), n_heads)?;
    let h = weights.layer_norm(&(x + &attended), &format!("{prefix}.self_attn_layer_norm"))?;
    let fed = weights.linear(
        &weights.linear(&h, &format!("{prefix}.fc1"))?.mapv(gelu),
        &format!("{prefix}.fc2"),
    )?;
    weights.layer_norm(&(&h + &fed), &format!("{prefix}.final_layer_norm"))
}

/// BART's whole encoder by hand for one sequence of token ids: token embedding plus learned
/// positions (rows 2, 3, …: BART's table keeps two rows spare), `layernorm_embedding`, then every
/// layer. `weights` are named as in `BartForConditionalGeneration` (`model.shared.weight`, …).
pub fn encoder_by_hand(weights: &Weights, cfg: &Config, ids: &[u32]) -> LessonResult<Array2<f64>> {
    let shared = weights.matrix("model.shared.weight")?;
    let positions = weights.matrix("model.encoder.embed_positions.weight")?;
    if ids.len() + 2 > positions.nrows() {
        return Err(format!("{} tokens exceed the position table", ids.len()).into());
    }
    let mut x = Array2::zeros((ids.len(), cfg.d_model));
    for (i, &id) in ids.iter().enumerate() {
        if id as usize >= shared.nrows() {
            return Err(format!("token id {id} is outside the vocabulary").into());
        }
        x.row_mut(i)
            .assign(&(&shared.row(id as usize) + &positions.row(i + 2)));
    }
    let mut x = weights.layer_norm(&x, "model.encoder.layernorm_embedding")?;
    for layer in 0..cfg.encoder_layers {
        x = encoder_layer(
            weights,
            &x,
            &format!("model.encoder.layers.{layer}"),
            cfg.encoder_attention_heads,
        )?;
    }
    Ok(x)
}

// ---------------------------------------------------------------------------------------------
// Where the parameters go.

/// BART's parameters by component, as `model.parameters()` counts them for
/// BartForConditionalGeneration (the LM head is tied to the token embedding; `final_logits_bias`
/// is a buffer, not a parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BartParameters {
    /// The shared token embedding, vocab × d (the LM head reuses it).
    pub token_embedding: usize,
    /// Encoder and decoder learned positions, 2 × (max_positions + 2) × d.
    pub positions: usize,
    /// `layernorm_embedding` of both stacks.
    pub embedding_norms: usize,
    pub encoder_self_attention: usize,
    pub encoder_feed_forward: usize,
    pub encoder_norms: usize,
    pub decoder_self_attention: usize,
    pub decoder_cross_attention: usize,
    pub decoder_feed_forward: usize,
    pub decoder_norms: usize,
}

impl BartParameters {
    /// Each component with its name, in the order the model runs them.
    pub fn components(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("token embedding (tied LM head)", self.token_embedding),
            ("positions", self.positions),
            ("embedding LayerNorms", self.embedding_norms),
            ("encoder self-attention", self.encoder_self_attention),
            ("encoder feed-forward", self.encoder_feed_forward),
            ("encoder LayerNorms", self.encoder_norms),
            ("decoder self-attention", self.decoder_self_attention),
            ("decoder cross-attention", self.decoder_cross_attention),
            ("decoder feed-forward", self.decoder_feed_forward),
            ("decoder LayerNorms", self.decoder_norms),
        ]
    }

    pub fn total(&self) -> usize {
        self.components().iter().map(|(_, n)| n).sum()
    }
}

/// BART's parameter count by formula: an attention block is 4 projections of `d² + d`, a
/// feed-forward block `2·d·ffn + ffn + d`, a LayerNorm `2d`.
pub fn bart_parameters(cfg: &Config) -> BartParameters {
    let d = cfg.d_model;
    let attention = 4 * (d * d + d);
    let norm = 2 * d;
    let ffn = |width: usize| 2 * d * width + width + d;
    BartParameters {
        token_embedding: cfg.vocab_size * d,
        positions: 2 * (cfg.max_position_embeddings + 2) * d,
        embedding_norms: 2 * norm,
        encoder_self_attention: cfg.encoder_layers * attention,
        encoder_feed_forward: cfg.encoder_layers * ffn(cfg.encoder_ffn_dim),
        encoder_norms: cfg.encoder_layers * 2 * norm,
        decoder_self_attention: cfg.decoder_layers * attention,
        decoder_cross_attention: cfg.decoder_layers * attention,
        decoder_feed_forward: cfg.decoder_layers * ffn(cfg.decoder_ffn_dim),
        decoder_norms: cfg.decoder_layers * 3 * norm,
    }
}

/// A BART of `cfg`'s shape with every weight zero: cheap to build (no values computed), enough to
/// count its tensors. The shared embedding is created first so the loader finds the layout, and
/// no `lm_head.weight` exists, so the head is tied as in the checkpoint.
pub fn zero_bart(cfg: &Config) -> LessonResult<Bart> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    vb.get_with_hints(
        (cfg.vocab_size, cfg.d_model),
        "model.shared.weight",
        Init::Const(0.0),
    )?;
    Ok(Bart::load(vb, cfg)?)
}

/// Parameters of the model's [`models::linear::Linear`]s whose checkpoint name starts with
/// `stack` (`encoder`, `decoder`) and contains `block` (`self_attn`, `encoder_attn`, `fc`).
pub fn linear_parameters(model: &Bart, stack: &str, block: &str) -> usize {
    model
        .linears()
        .iter()
        .filter(|(name, _)| name.starts_with(stack) && name.contains(block))
        .map(|(_, layer)| layer.parameter_count())
        .sum()
}

/// A BART config with these sizes and BART-base's everything else (heads: 1, which divides any
/// width; the count does not depend on them).
pub fn small_config(
    vocab_size: usize,
    d_model: usize,
    encoder_layers: usize,
    decoder_layers: usize,
    ffn_dim: usize,
    max_position_embeddings: usize,
) -> Config {
    Config {
        vocab_size,
        d_model,
        encoder_layers,
        decoder_layers,
        encoder_attention_heads: 1,
        decoder_attention_heads: 1,
        encoder_ffn_dim: ffn_dim,
        decoder_ffn_dim: ffn_dim,
        max_position_embeddings,
        ..Config::bart_base()
    }
}

/// The repository's test fixtures folder (`tests/fixtures`), found from this crate's source.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

// ---------------------------------------------------------------------------------------------
// Pre-training noise.

/// One masked span of text infilling: `len` tokens from `start` become one mask token; a span of
/// length 0 inserts a mask before `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// The spans text infilling masks in a sequence of `n` tokens: lengths drawn from Poisson(λ)
/// until `round(ratio·n)` tokens are covered (the last span is cut to fit), each placed at a
/// uniform start where it overlaps no earlier span. Sorted by start. Seeded.
pub fn infilling_spans(n: usize, ratio: f64, lambda: f64, seed: u64) -> LessonResult<Vec<Span>> {
    if !(0.0..=1.0).contains(&ratio) {
        return Err(format!("mask ratio {ratio} is outside [0, 1]").into());
    }
    let poisson = Poisson::new(lambda).map_err(|e| format!("Poisson({lambda}): {e}"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let target = (ratio * n as f64).round() as usize;
    let mut masked = vec![false; n];
    let mut spans: Vec<Span> = Vec::new();
    let mut covered = 0;
    // Each drawn length gets many tries at a free place, so long spans are not rejected more
    // often than short ones; bounded, so a crowded sequence stops rather than hangs.
    for _ in 0..10 * n + 10 {
        if covered >= target {
            break;
        }
        let len = (poisson.sample(&mut rng) as usize).min(target - covered);
        for _ in 0..100 {
            let start = rng.random_range(0..=n - len);
            if is_free(&masked, &spans, start, len) {
                masked[start..start + len].fill(true);
                covered += len;
                spans.push(Span { start, len });
                break;
            }
        }
    }
    spans.sort_by_key(|s| (s.start, s.len));
    Ok(spans)
}

/// Whether a span may go at `start`: no overlap with earlier spans, no insertion inside one, no
/// two insertions at one place.
fn is_free(masked: &[bool], spans: &[Span], start: usize, len: usize) -> bool {
    let inside = |i: usize| masked.get(i).copied().unwrap_or(false);
    if len == 0 {
        let within_a_span = start > 0 && inside(start - 1) && inside(start);
        !within_a_span && !spans.iter().any(|s| s.len == 0 && s.start == start)
    } else {
        (start..start + len).all(|i| !inside(i))
            && !spans
                .iter()
                .any(|s| s.len == 0 && start < s.start && s.start < start + len)
    }
}

/// BART's text infilling (Lewis et al. 2020, §2.2): spans with Poisson(λ) lengths covering
/// `ratio` of the tokens are each replaced by a single `mask`; a span of length 0 inserts one.
/// The model must recover the original, including how many tokens each mask hid.
pub fn text_infilling<T: Clone>(
    tokens: &[T],
    mask: &T,
    ratio: f64,
    lambda: f64,
    seed: u64,
) -> LessonResult<Vec<T>> {
    let spans = infilling_spans(tokens.len(), ratio, lambda, seed)?;
    Ok(apply_spans(tokens, mask, &spans))
}

/// `tokens` with each span replaced by one `mask` (spans sorted and disjoint).
pub fn apply_spans<T: Clone>(tokens: &[T], mask: &T, spans: &[Span]) -> Vec<T> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut spans = spans.iter().peekable();
    let mut i = 0;
    while i <= tokens.len() {
        // A span starting before `i` would overlap the previous one: skip it.
        while spans.next_if(|s| s.start < i).is_some() {}
        if let Some(span) = spans.next_if(|s| s.start == i) {
            out.push(mask.clone());
            i += span.len;
            if span.len > 0 {
                continue;
            }
            if spans.peek().is_some_and(|s| s.start == i) {
                continue;
            }
        }
        if let Some(token) = tokens.get(i) {
            out.push(token.clone());
        }
        i += 1;
    }
    out
}

/// BERT-style token masking: each token becomes `mask` with probability `p`. Seeded.
pub fn token_masking<T: Clone>(tokens: &[T], mask: &T, p: f64, seed: u64) -> Vec<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    tokens
        .iter()
        .map(|t| {
            if rng.random::<f64>() < p {
                mask.clone()
            } else {
                t.clone()
            }
        })
        .collect()
}

/// Token deletion: each token is dropped with probability `p`; the model must also find where.
pub fn token_deletion<T: Clone>(tokens: &[T], p: f64, seed: u64) -> Vec<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    tokens
        .iter()
        .filter(|_| rng.random::<f64>() >= p)
        .cloned()
        .collect()
}

/// Poisson(λ) probability of `k`.
pub fn poisson_pmf(lambda: f64, k: usize) -> f64 {
    let log = k as f64 * lambda.ln() - lambda - (1..=k).map(|i| (i as f64).ln()).sum::<f64>();
    log.exp()
}

// ---------------------------------------------------------------------------------------------
// Fine-tuning the project's tiny BART.

/// Where Lowrank caches models: `$LOWRANK_CACHE`, else `$XDG_CACHE_HOME/lowrank`, else
/// `~/.cache/lowrank` (the rule of `lowrank train summarizer`, so the two share trained models).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOWRANK_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("lowrank")
}

/// A trained dialogue BART with its tokenizer and training report.
pub struct DialogueBart {
    pub model: Bart,
    pub tokenizer: Tokenizer,
    pub report: SummarizerReport,
    pub dir: PathBuf,
    /// False when the model came from the cache.
    pub trained_now: bool,
}

/// The dialogue summarizer `cfg` describes, from `<cache>/models/dialogue-bart-<hash>` when a
/// finished run of the same config is there, else trained now (on the CPU) and saved there.
pub fn dialogue_bart(cfg: &SummarizerConfig) -> LessonResult<DialogueBart> {
    let dir = cache_dir().join("models").join(cfg.dir_name());
    let cached = summarizer::is_complete(&dir)
        .then(|| SummarizerReport::load(&dir).ok())
        .flatten()
        .filter(|report| report.config == *cfg);
    let trained_now = cached.is_none();
    let report = match cached {
        Some(report) => report,
        None => summarizer::train_summarizer(cfg, &dir, &mut |_| {})?,
    };
    Ok(DialogueBart {
        model: Bart::from_dir(&dir, DType::F32, &Device::Cpu)?,
        tokenizer: Tokenizer::from_dir(&dir)?,
        report,
        dir,
        trained_now,
    })
}

/// One row of `models::loss::shift_tokens_right`, on plain numbers.
pub fn shift_right(labels: &[i64], pad_token_id: i64, decoder_start_token_id: i64) -> Vec<i64> {
    std::iter::once(decoder_start_token_id)
        .chain(labels.iter().take(labels.len().saturating_sub(1)).copied())
        .map(|id| {
            if id == models::loss::IGNORE_INDEX {
                pad_token_id
            } else {
                id
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Checkers.

/// candle's LayerNorm formula on `x` in f64 (its fused kernel has no f64; ε passes as f32).
fn candle_layer_norm(
    x: &Array2<f64>,
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
) -> LessonResult<Array2<f64>> {
    let device = Device::Cpu;
    let xs = Tensor::from_vec(x.iter().copied().collect::<Vec<_>>(), x.dim(), &device)?;
    let ys = candle_nn::ops::layer_norm_slow(
        &xs,
        &Tensor::new(gamma, &device)?,
        &Tensor::new(beta, &device)?,
        eps as f32,
    )?;
    to_array2(&ys)
}

/// Checks `answer(x, gamma, beta, eps)` against candle's `LayerNorm`.
pub fn check_layer_norm(
    answer: impl Fn(&Array2<f64>, &[f64], &[f64], f64) -> Array2<f64>,
) -> Verdict {
    let mut rng = exercise::rng(61);
    let mut cases = vec![(
        Array2::from_shape_fn((2, 4), |(i, j)| (i * 4 + j) as f64),
        vec![1.0; 4],
        vec![0.0; 4],
        1e-5,
    )];
    for seed in 0..10 {
        let (n, d) = (rng.random_range(1..6), rng.random_range(2..12));
        let x = gaussian_matrix(n, d, 600 + seed) * rng.random_range(0.1..5.0)
            + rng.random_range(-3.0..3.0);
        let gamma: Vec<f64> = (0..d).map(|_| rng.random_range(0.5..2.0)).collect();
        let beta: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let eps = [1e-5, 1e-3, 0.1][seed as usize % 3];
        cases.push((x, gamma, beta, eps));
    }
    Checker::new(EXERCISES[0].id, EXERCISES[0].hint, cases).run(
        |(x, g, b, eps)| answer(x, g, b, *eps),
        |(x, g, b, eps), got| {
            let want = candle_layer_norm(x, g, b, *eps).map_err(|e| e.to_string())?;
            let what = format!("a {}x{} x with eps={eps}", x.nrows(), x.ncols());
            exercise::close_arrays(&what, &got, &want, 1e-6)
        },
    )
}

/// candle's `fc2(gelu_erf(fc1(x)))` in f64.
fn candle_feed_forward(
    x: &Array2<f64>,
    w1: &Array2<f64>,
    b1: &[f64],
    w2: &Array2<f64>,
    b2: &[f64],
) -> LessonResult<Array2<f64>> {
    let device = Device::Cpu;
    let tensor =
        |a: &Array2<f64>| Tensor::from_vec(a.iter().copied().collect::<Vec<_>>(), a.dim(), &device);
    let h = tensor(x)?
        .matmul(&tensor(w1)?.t()?)?
        .broadcast_add(&Tensor::new(b1, &device)?)?
        .gelu_erf()?;
    let out = h
        .matmul(&tensor(w2)?.t()?)?
        .broadcast_add(&Tensor::new(b2, &device)?)?;
    to_array2(&out)
}

/// Checks `answer(x, w1, b1, w2, b2)` against candle's matmul and `gelu_erf`.
pub fn check_feed_forward(
    answer: impl Fn(&Array2<f64>, &Array2<f64>, &[f64], &Array2<f64>, &[f64]) -> Array2<f64>,
) -> Verdict {
    type Case = (Array2<f64>, Array2<f64>, Vec<f64>, Array2<f64>, Vec<f64>);
    let mut rng = exercise::rng(62);
    let cases: Vec<Case> = (0..8)
        .map(|seed| {
            let (n, d, ffn) = (
                rng.random_range(1..5),
                rng.random_range(2..10),
                rng.random_range(2..20),
            );
            let b1 = (0..ffn).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b2 = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
            (
                gaussian_matrix(n, d, 620 + seed) * 2.0,
                gaussian_matrix(ffn, d, 640 + seed),
                b1,
                gaussian_matrix(d, ffn, 660 + seed),
                b2,
            )
        })
        .collect();
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, cases).run(
        |(x, w1, b1, w2, b2)| answer(x, w1, b1, w2, b2),
        |(x, w1, b1, w2, b2), got| {
            let want = candle_feed_forward(x, w1, b1, w2, b2).map_err(|e| e.to_string())?;
            let what = format!("x {:?}, w1 {:?}, w2 {:?}", x.dim(), w1.dim(), w2.dim());
            exercise::close_arrays(&what, &got, &want, 1e-9)
        },
    )
}

/// Checks `answer(labels, pad, start)` against [`models::loss::shift_tokens_right`].
pub fn check_shift_tokens_right(answer: impl Fn(&[i64], i64, i64) -> Vec<i64>) -> Verdict {
    let mut rng = exercise::rng(63);
    let mut cases: Vec<(Vec<i64>, i64, i64)> = vec![
        (vec![0, 45, 7, 2], 1, 2),
        (vec![0, 45, 2, -100, -100], 1, 2),
        (vec![9], 1, 2),
    ];
    for _ in 0..20 {
        let t = rng.random_range(1..12);
        let length = rng.random_range(1..=t);
        let labels = (0..t)
            .map(|i| {
                if i < length {
                    rng.random_range(0..500)
                } else {
                    models::loss::IGNORE_INDEX
                }
            })
            .collect();
        cases.push((labels, rng.random_range(0..5), rng.random_range(0..5)));
    }
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, cases).run(
        |(labels, pad, start)| answer(labels, *pad, *start),
        |(labels, pad, start), got| {
            let want = library_shift(labels, *pad, *start).map_err(|e| e.to_string())?;
            exercise::equal(
                &format!("labels {labels:?}, pad {pad}, start {start}"),
                got,
                want,
            )
        },
    )
}

fn library_shift(labels: &[i64], pad: i64, start: i64) -> LessonResult<Vec<i64>> {
    let tensor = Tensor::from_vec(labels.to_vec(), (1, labels.len()), &Device::Cpu)?;
    let shifted = models::loss::shift_tokens_right(&tensor, pad as u32, start as u32)?;
    Ok(shifted.squeeze(0)?.to_vec1()?)
}

/// Checks `answer(vocab, d, encoder_layers, decoder_layers, ffn, positions)` against
/// [`Bart::parameter_count`] of a model built with those sizes.
pub fn check_bart_parameters(
    answer: impl Fn(usize, usize, usize, usize, usize, usize) -> usize,
) -> Verdict {
    let mut rng = exercise::rng(64);
    let mut cases = vec![(50265, 768, 6, 6, 3072, 1024), (10, 4, 1, 1, 8, 8)];
    cases.extend((0..6).map(|_| {
        (
            rng.random_range(5..400),
            rng.random_range(2..40),
            rng.random_range(1..4),
            rng.random_range(1..4),
            rng.random_range(2..80),
            rng.random_range(4..64),
        )
    }));
    Checker::new(EXERCISES[3].id, EXERCISES[3].hint, cases).run(
        |&(v, d, e, l, f, p)| answer(v, d, e, l, f, p),
        |&(v, d, e, l, f, p), got| {
            let model = zero_bart(&small_config(v, d, e, l, f, p)).map_err(|e| e.to_string())?;
            exercise::equal(
                &format!("vocab {v}, d_model {d}, {e}+{l} layers, ffn {f}, {p} positions"),
                got,
                model.parameter_count(),
            )
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// The chapter's figures, drawn into `out` when the book is built: bart-base's parameters by
/// component, and the span lengths text infilling draws against Poisson(3).
pub fn figures(out: &Path) -> LessonResult<()> {
    parameter_chart(&Config::bart_base())?.save(out.join("06-bart-parameters.svg"))?;
    span_length_plot(200, 400)?.save(out.join("06-span-lengths.svg"))?;
    Ok(())
}

/// A bar chart of `cfg`'s parameters (millions) by component.
pub fn parameter_chart(cfg: &Config) -> LessonResult<viz::BarChart> {
    let counts = bart_parameters(cfg);
    let labels = [
        "embedding",
        "positions",
        "emb. LN",
        "enc. self",
        "enc. FFN",
        "enc. LN",
        "dec. self",
        "dec. cross",
        "dec. FFN",
        "dec. LN",
    ];
    let values: Vec<f64> = counts
        .components()
        .iter()
        .map(|(_, n)| *n as f64 / 1e6)
        .collect();
    Ok(viz::BarChart::new(format!(
        "Where BART's {:.1}M parameters go",
        counts.total() as f64 / 1e6
    ))
    .y_label("millions of parameters")
    .bars(&labels, &values)
    .size(900, 450))
}

/// Span lengths of text infilling over `samples` sequences of `n` tokens (relative frequency)
/// beside the Poisson(3) pmf. The last span of each sequence is cut to fit the 30% budget, so
/// the observed lengths lean slightly shorter.
pub fn span_length_plot(n: usize, samples: u64) -> LessonResult<viz::Plot> {
    let mut counts = [0usize; 13];
    let mut total = 0usize;
    for seed in 0..samples {
        for span in infilling_spans(n, 0.3, 3.0, seed)? {
            counts[span.len.min(12)] += 1;
            total += 1;
        }
    }
    let ks: Vec<f64> = (0..=12).map(|k| k as f64).collect();
    let observed: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 / total.max(1) as f64)
        .collect();
    let pmf: Vec<f64> = (0..=12).map(|k| poisson_pmf(3.0, k)).collect();
    Ok(
        viz::Plot::new("Text infilling: span lengths against Poisson(3)")
            .x_label("span length (tokens)")
            .y_label("share of spans")
            .line("Poisson(3) pmf", &ks, &pmf)
            .scatter(
                format!("observed, {samples} sequences of {n}"),
                &ks,
                &observed,
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::bart::synthetic_weights;

    fn tiny_config() -> Config {
        Config {
            vocab_size: 50,
            d_model: 16,
            encoder_layers: 2,
            decoder_layers: 1,
            encoder_attention_heads: 4,
            decoder_attention_heads: 4,
            encoder_ffn_dim: 24,
            decoder_ffn_dim: 24,
            max_position_embeddings: 20,
            ..Config::bart_base()
        }
    }

    #[test]
    fn layer_norm_matches_candle_and_centres_rows() {
        let x = gaussian_matrix(3, 7, 1) * 3.0 + 2.0;
        let gamma = vec![1.0; 7];
        let beta = vec![0.0; 7];
        let ours = layer_norm(&x, &gamma, &beta, 1e-5).unwrap();
        let theirs = candle_layer_norm(&x, &gamma, &beta, 1e-5).unwrap();
        exercise::close_arrays("layer norm", &ours, &theirs, 1e-9).unwrap();
        for row in ours.rows() {
            assert!(row.sum().abs() < 1e-9);
        }
    }

    #[test]
    fn the_encoder_by_hand_matches_the_library() {
        let cfg = tiny_config();
        let tensors = synthetic_weights(&cfg, &Device::Cpu).unwrap();
        let model = Bart::load(
            VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu),
            &cfg,
        )
        .unwrap();
        let ids = [0u32, 7, 19, 3, 41, 2];
        let ours = encoder_by_hand(&Weights::new(tensors), &cfg, &ids).unwrap();
        let input = Tensor::new(&[ids], &Device::Cpu).unwrap();
        let mask = Tensor::ones((1, ids.len()), DType::U32, &Device::Cpu).unwrap();
        let theirs = to_array2(&model.encode(&input, &mask).unwrap().squeeze(0).unwrap()).unwrap();
        exercise::close_arrays("encoder", &ours, &theirs, 1e-4).unwrap();
    }

    #[test]
    fn parameter_formula_matches_built_models() {
        let cfg = tiny_config();
        let model = zero_bart(&cfg).unwrap();
        let counts = bart_parameters(&cfg);
        assert_eq!(counts.total(), model.parameter_count());
        assert_eq!(
            counts.encoder_self_attention,
            linear_parameters(&model, "encoder", "self_attn")
        );
        assert_eq!(
            counts.decoder_cross_attention,
            linear_parameters(&model, "decoder", "encoder_attn")
        );
        assert_eq!(
            counts.decoder_feed_forward,
            linear_parameters(&model, "decoder", ".fc")
        );
        // facebook/bart-base: the published 139M.
        assert_eq!(bart_parameters(&Config::bart_base()).total(), 139_420_416);
    }

    #[test]
    fn text_infilling_masks_the_ratio_with_one_mask_per_span() {
        let tokens: Vec<u32> = (10..110).collect();
        for seed in 0..20 {
            let spans = infilling_spans(tokens.len(), 0.3, 3.0, seed).unwrap();
            let covered: usize = spans.iter().map(|s| s.len).sum();
            assert_eq!(covered, 30, "seed {seed}");
            let noised = text_infilling(&tokens, &0, 0.3, 3.0, seed).unwrap();
            let masks = noised.iter().filter(|&&t| t == 0).count();
            assert_eq!(masks, spans.len(), "seed {seed}");
            assert_eq!(noised.len(), tokens.len() - covered + spans.len());
            // The kept tokens stay in order.
            let kept: Vec<u32> = noised.iter().copied().filter(|&t| t != 0).collect();
            assert!(kept.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(
            apply_spans(&[1, 2, 3], &0, &[Span { start: 0, len: 0 }]),
            [0, 1, 2, 3]
        );
        assert_eq!(
            apply_spans(&[1, 2, 3], &0, &[Span { start: 3, len: 0 }]),
            [1, 2, 3, 0]
        );
        assert_eq!(
            apply_spans(&[1, 2, 3], &0, &[Span { start: 1, len: 2 }]),
            [1, 0]
        );
        assert!(infilling_spans(0, 0.3, 3.0, 1).unwrap().is_empty());
    }

    #[test]
    fn masking_and_deletion_are_seeded() {
        let tokens: Vec<u32> = (1..=1000).collect();
        let masked = token_masking(&tokens, &0, 0.15, 3);
        assert_eq!(masked, token_masking(&tokens, &0, 0.15, 3));
        let share = masked.iter().filter(|&&t| t == 0).count() as f64 / 1000.0;
        assert!((share - 0.15).abs() < 0.04, "{share}");
        let kept = token_deletion(&tokens, 0.15, 3);
        assert!((kept.len() as f64 / 1000.0 - 0.85).abs() < 0.04);
    }

    #[test]
    fn shift_right_matches_the_library() {
        let labels = [0, 5, 2, -100];
        assert_eq!(
            shift_right(&labels, 1, 2),
            library_shift(&labels, 1, 2).unwrap()
        );
    }

    #[test]
    fn poisson_pmf_sums_to_one() {
        let total: f64 = (0..60).map(|k| poisson_pmf(3.0, k)).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
}
