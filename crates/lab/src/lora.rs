//! Lesson 08 (`08-lora`): LoRA and efficient fine-tuning. The adapter itself is the library's
//! ([`models::lora`], re-exported here so `lab::lora::apply_lora` reads as the chapter writes it);
//! this module adds what the chapter needs around it: dialogue batches for a tiny BART, the
//! summed and mean losses, matrix–tensor conversions for checking the formula by hand, weight
//! memory, MiniLM's parameter count from its config, the exercises and their checkers, and the
//! book's figures.

pub use models::lora::*;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use models::Linears;
use models::bart::Bart;
use models::linear::Linear;
use models::loss::{IGNORE_INDEX, nll_sum, shift_tokens_right};
use models::tokenizer::Tokenizer;
use ndarray::Array2;
use rand::Rng;
use train::dialogues::Dialogue;
use train::optim::{AdamWConfig, Gradients, OptimizerConfig};
use train::trainer::{Forward, Report, Trainer, TrainerConfig};

use crate::LessonResult;
use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::gaussian_matrix;

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "08-lora-forward",
        lesson: "08-lora",
        title: "A LoRA layer's output",
        task: "Given inputs x (n×in), a frozen weight W (out×in, as nn.Linear stores it), LoRA factors \
               A (r×in) and B (out×r) and α, return the layer's output x·(W + (α/r)·B·A)ᵀ (no bias).",
        hint: "the update is scaled by α/r, where r = A.nrows(); compute x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ",
        template: "use lab::*;\n\nfn answer(x: &Array2<f64>, w: &Array2<f64>, a: &Array2<f64>, b: &Array2<f64>, alpha: f64) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::lora::check_lora_forward",
        self_test: || SelfTest {
            reference: check_lora_forward(|x, w, a, b, alpha| {
                let scaling = alpha / a.nrows() as f64;
                x.dot(&w.t()) + x.dot(&a.t()).dot(&b.t()) * scaling
            }),
            wrong: check_lora_forward(|x, w, a, b, alpha| {
                x.dot(&w.t()) + x.dot(&a.t()).dot(&b.t()) * alpha
            }),
        },
    },
    Exercise {
        id: "08-trainable-fraction",
        lesson: "08-lora",
        title: "How much of the model LoRA trains",
        task: "Given the (out, in) shapes of the adapted layers, the rank r and the base model's \
               parameter count, return (trainable, trainable%) as PEFT's print_trainable_parameters \
               counts them: A and B of every adapted layer, as a percentage of all parameters, \
               the adapters included.",
        hint: "each adapted layer adds r·in (A) + out·r (B); PEFT's 'all params' is the base plus those",
        template: "fn answer(shapes: &[(usize, usize)], r: usize, base_params: usize) -> (usize, f64) {\n    todo!()\n}\n",
        checker: "lab::lora::check_trainable_fraction",
        self_test: || SelfTest {
            reference: check_trainable_fraction(|shapes, r, base| {
                let trainable: usize = shapes.iter().map(|&(out, inp)| r * (out + inp)).sum();
                (
                    trainable,
                    100.0 * trainable as f64 / (base + trainable) as f64,
                )
            }),
            wrong: check_trainable_fraction(|shapes, r, base| {
                let trainable: usize = shapes.iter().map(|&(out, inp)| r * (out + inp)).sum();
                (trainable, 100.0 * trainable as f64 / base as f64)
            }),
        },
    },
    Exercise {
        id: "08-merge",
        lesson: "08-lora",
        title: "Merging an adapter into its weight",
        task: "Given W (out×in), A (r×in), B (out×r) and α, return the merged weight that computes \
               the adapted layer with one dense product: W + (α/r)·B·A.",
        hint: "B·A is (out×r)·(r×in) = out×in, the shape of W; scale it by α/r with r = A.nrows()",
        template: "use lab::*;\n\nfn answer(w: &Array2<f64>, a: &Array2<f64>, b: &Array2<f64>, alpha: f64) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::lora::check_merge",
        self_test: || SelfTest {
            reference: check_merge(|w, a, b, alpha| w + &(b.dot(a) * (alpha / a.nrows() as f64))),
            wrong: check_merge(|w, a, b, alpha| w + &(b.dot(a) * (alpha * a.nrows() as f64))),
        },
    },
];

/// A committed model fixture, `tests/fixtures/models/<name>` (found from this crate's source, so
/// a notebook run from any folder finds it).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name)
}

/// The tiny random BART the chapter fine-tunes (d_model 32, 2+2 layers, 400 tokens).
pub fn tiny_bart_dir() -> PathBuf {
    fixture("tiny-bart")
}

/// An f64 tensor holding `a` (shape and values), on the CPU.
pub fn tensor_from_array(a: &Array2<f64>) -> candle_core::Result<Tensor> {
    let values: Vec<f64> = a.iter().copied().collect();
    Tensor::from_vec(values, a.dim(), &Device::Cpu)
}

/// A two-dimensional tensor of any float dtype as an f64 matrix.
pub fn array_from_tensor(t: &Tensor) -> LessonResult<Array2<f64>> {
    let (rows, cols) = t.dims2()?;
    let values: Vec<f64> = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    Ok(Array2::from_shape_vec((rows, cols), values)?)
}

/// The library's LoRA layer, `W` frozen plus `(α/r)·B·A`, built from matrices (f64, no bias, no
/// dropout): what the chapter and the checkers compare hand-written formulas against.
pub fn lora_layer(
    w: &Array2<f64>,
    a: &Array2<f64>,
    b: &Array2<f64>,
    alpha: f64,
) -> LessonResult<Linear> {
    let base = Linear::dense(tensor_from_array(w)?, None)?;
    Ok(Linear::lora(
        base,
        tensor_from_array(a)?,
        tensor_from_array(b)?,
        alpha,
        0.0,
    )?)
}

/// The library's output of the LoRA layer on `x`: `x·(W + (α/r)·B·A)ᵀ`.
pub fn lora_forward(
    x: &Array2<f64>,
    w: &Array2<f64>,
    a: &Array2<f64>,
    b: &Array2<f64>,
    alpha: f64,
) -> LessonResult<Array2<f64>> {
    let layer = lora_layer(w, a, b, alpha)?;
    array_from_tensor(&layer.forward(&tensor_from_array(x)?)?)
}

/// The library's merged weight, `W + (α/r)·B·A` ([`Linear::merged`]).
pub fn merged_weight(
    w: &Array2<f64>,
    a: &Array2<f64>,
    b: &Array2<f64>,
    alpha: f64,
) -> LessonResult<Array2<f64>> {
    let merged = lora_layer(w, a, b, alpha)?.merged()?;
    array_from_tensor(&merged.effective_weight()?)
}

/// The largest absolute difference between two tensors of one shape (any float dtype).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> candle_core::Result<f64> {
    let a = a.to_dtype(DType::F64)?;
    let b = b.to_dtype(DType::F64)?;
    (a - b)?.abs()?.max_all()?.to_scalar::<f64>()
}

/// The largest absolute difference between two sets of gradients over the parameters they share.
pub fn max_gradient_difference(a: &Gradients, b: &Gradients) -> LessonResult<f64> {
    let mut worst: f64 = 0.0;
    for (name, grad) in a.iter() {
        let other = b
            .get(name)
            .ok_or_else(|| format!("{name} has a gradient in one set only"))?;
        worst = worst.max(max_abs_diff(grad, other)?);
    }
    Ok(worst)
}

/// The numbers in `model`'s LoRA factors, PEFT's trainable count, for any model that lists its
/// layers (BERT has no [`ParameterCount`]; [`lora_parameter_counts`] needs one).
pub fn adapter_parameter_count<M: Linears + ?Sized>(model: &M) -> usize {
    model
        .linears()
        .iter()
        .map(|(_, layer)| match layer {
            Linear::Lora(l) => l.lora_a.elem_count() + l.lora_b.elem_count(),
            _ => 0,
        })
        .sum()
}

/// Bytes held by a BART's weights: every linear layer's tensors and the shared token embedding,
/// at their dtype's size (2 for bf16, 4 for f32).
pub fn weight_bytes(model: &Bart) -> usize {
    let bytes = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
    let linears: usize = model
        .linears()
        .iter()
        .flat_map(|(_, layer)| layer.tensors())
        .map(|(_, t)| bytes(&t))
        .sum();
    linears + bytes(model.shared_embedding())
}

/// Parameters of Hugging Face's `BertModel` for `cfg` without its pooler (what
/// `models::bert::BertModel` holds): embeddings (tokens, positions, segments, LayerNorm) and per
/// layer four attention projections, the two feed-forward layers and two LayerNorms.
/// all-MiniLM-L6-v2 has 22,565,376 (transformers' 22,713,216 minus the 147,840 of its pooler).
pub fn bert_parameter_count(cfg: &models::bert::Config) -> usize {
    let (d, ffn) = (cfg.hidden_size, cfg.intermediate_size);
    let embeddings =
        (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * d + 2 * d;
    let layer = 4 * (d * d + d) + (d * ffn + ffn) + (ffn * d + d) + 2 * 2 * d;
    embeddings + cfg.num_hidden_layers * layer
}

/// A tokenized teacher-forcing batch: encoder ids and mask, decoder inputs, labels (-100 on
/// padding), all on the CPU.
#[derive(Debug, Clone)]
pub struct Batch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub decoder_input_ids: Tensor,
    pub labels: Tensor,
}

/// Turns dialogues into [`Batch`]es for one BART: its tokenizer, truncated to the lengths given
/// (and to the model's positions), and its pad and decoder-start ids.
pub struct DialogueBatcher {
    source: Tokenizer,
    target: Tokenizer,
    pad_token_id: u32,
    decoder_start_token_id: u32,
}

impl DialogueBatcher {
    /// The tokenizer in `model_dir` (`tokenizer.json`), dialogues cut to `max_source` tokens and
    /// summaries to `max_target`.
    pub fn new(
        model_dir: &Path,
        cfg: &models::bart::Config,
        max_source: usize,
        max_target: usize,
    ) -> LessonResult<Self> {
        let positions = cfg.max_position_embeddings;
        let tokenizer = |max_len: usize| -> LessonResult<Tokenizer> {
            Ok(Tokenizer::from_dir(model_dir)?.with_max_length(Some(max_len.min(positions)))?)
        };
        Ok(Self {
            source: tokenizer(max_source)?,
            target: tokenizer(max_target)?,
            pad_token_id: cfg.pad_token_id,
            decoder_start_token_id: cfg.decoder_start_token_id,
        })
    }

    /// The batch of `items`: dialogues in, summaries as labels, shifted right as decoder inputs.
    pub fn batch(&self, items: &[Dialogue]) -> models::Result<Batch> {
        let sources: Vec<&str> = items.iter().map(|d| d.dialogue.as_str()).collect();
        let targets: Vec<&str> = items.iter().map(|d| d.summary.as_str()).collect();
        let encoded = self.source.encode_batch(&sources, true)?;
        let summaries = self.target.encode_batch(&targets, true)?;
        let ids: Vec<Vec<u32>> = summaries.input_ids.to_vec2()?;
        let mask: Vec<Vec<u32>> = summaries.attention_mask.to_vec2()?;
        let (b_sz, t) = summaries.dims()?;
        let labels: Vec<i64> = ids
            .iter()
            .zip(&mask)
            .flat_map(|(row, keep)| {
                row.iter()
                    .zip(keep)
                    .map(|(&id, &k)| if k == 1 { i64::from(id) } else { IGNORE_INDEX })
            })
            .collect();
        let labels = Tensor::from_vec(labels, (b_sz, t), &Device::Cpu)?;
        let decoder_input_ids =
            shift_tokens_right(&labels, self.pad_token_id, self.decoder_start_token_id)?
                .to_dtype(DType::U32)?;
        Ok(Batch {
            input_ids: encoded.input_ids,
            attention_mask: encoded.attention_mask,
            decoder_input_ids,
            labels,
        })
    }

    /// Batch number `index` of size `batch_size`, walking `items` in order, epoch after epoch
    /// (deterministic, so a resumed run sees the batches an uninterrupted one would).
    pub fn batch_at(
        &self,
        items: &[Dialogue],
        index: usize,
        batch_size: usize,
    ) -> models::Result<Batch> {
        if items.is_empty() {
            return Err(models::Error::InvalidArgument(
                "no dialogues to draw batches from".into(),
            ));
        }
        let chosen: Vec<Dialogue> = (0..batch_size)
            .map(|j| items[(index * batch_size + j) % items.len()].clone())
            .collect();
        self.batch(&chosen)
    }
}

/// Summed token cross-entropy of `batch` under `model` and how many label tokens it covers.
pub fn batch_nll_sum(model: &Bart, batch: &Batch) -> models::Result<(Tensor, usize)> {
    let logits = model.forward(
        &batch.input_ids,
        &batch.attention_mask,
        &batch.decoder_input_ids,
    )?;
    nll_sum(&logits, &batch.labels)
}

/// Mean token cross-entropy of `batch` (a scalar tensor, for `backward`) and its token count:
/// what `Trainer::fit`'s loss closure returns.
pub fn batch_loss(model: &Bart, batch: &Batch) -> train::Result<(Tensor, usize)> {
    let (sum, count) = batch_nll_sum(model, batch)?;
    Ok(((sum / count.max(1) as f64)?, count))
}

/// The tiny BART with LoRA (`r`, `α = 2r`, on `targets`) applied with `seed`, and the `VarMap`
/// holding its adapters: the model the chapter's training cells start from.
pub fn tiny_bart_with_lora(r: usize, targets: &[&str], seed: u64) -> LessonResult<(Bart, VarMap)> {
    let mut model = Bart::from_dir(&tiny_bart_dir(), DType::F32, &Device::Cpu)?;
    let varmap = VarMap::new();
    let cfg = LoraConfig::new(r, 2.0 * r as f64, targets);
    apply_lora(&mut model, &cfg, &varmap, seed)?;
    Ok((model, varmap))
}

/// Runs `trainer` to its `max_steps` on batches of `batch_size` dialogues drawn in order from
/// `items` (see [`DialogueBatcher::batch_at`]); the loop the chapter writes out once, reused.
pub fn fit_on_dialogues(
    trainer: &mut Trainer,
    model: &Bart,
    batcher: &DialogueBatcher,
    items: &[Dialogue],
    batch_size: usize,
) -> train::Result<Report> {
    trainer.fit(
        |index, _rng| Ok(batcher.batch_at(items, index, batch_size)?),
        |batch, _forward: Forward| batch_loss(model, batch),
        None,
        &mut |_| {},
    )
}

/// `base` with every adapter in `varmap` (those [`apply_lora`] made on a model of the same
/// layers) wrapped around its layer, the factors cast to `base`'s dtype. Under mixed precision
/// the loss closure builds this each step from a bf16 base: the casts have a backward, so the
/// gradients land on the f32 variables (the master weights).
pub fn adapted_copy(base: &Bart, varmap: &VarMap, alpha: f64, dtype: DType) -> train::Result<Bart> {
    let vars = train::optim::named_vars(varmap)?;
    let mut model = base.clone();
    for (name, layer) in base.linears() {
        let factor = |which: &str| {
            vars.iter()
                .find(|(key, _)| *key == format!("{name}.{which}.weight"))
                .map(|(_, var)| var.as_tensor().to_dtype(dtype))
        };
        if let (Some(a), Some(b)) = (factor("lora_A"), factor("lora_B")) {
            let lora = Linear::lora(layer.clone(), a?, b?, alpha, 0.0)?;
            models::linear::replace(&mut model, &name, lora)?;
        }
    }
    Ok(model)
}

/// A trainer of AdamW at a constant `lr` for `steps` steps, f32, nothing written.
pub fn adamw_trainer(varmap: &VarMap, lr: f64, steps: usize) -> train::Result<Trainer> {
    let config = TrainerConfig::new(
        OptimizerConfig::AdamW(AdamWConfig {
            lr,
            ..AdamWConfig::default()
        }),
        steps,
    );
    Trainer::new(config, varmap)
}

/// Trainable parameters and PEFT's trainable% for LoRA of rank `r` on layers of the given
/// (out, in) shapes over a model of `base_params` parameters, counted on the library's layers
/// ([`Linear::lora`] over zero weights) and printed by [`trainable_parameters_line`].
pub fn trainable_fraction(
    shapes: &[(usize, usize)],
    r: usize,
    base_params: usize,
) -> LessonResult<(usize, f64)> {
    let mut trainable = 0;
    for &(out_dim, in_dim) in shapes {
        let zeros = |rows, cols| Tensor::zeros((rows, cols), DType::F32, &Device::Cpu);
        let layer = Linear::lora(
            Linear::dense(zeros(out_dim, in_dim)?, None)?,
            zeros(r, in_dim)?,
            zeros(out_dim, r)?,
            r as f64,
            0.0,
        )?;
        trainable += layer.parameter_count() - out_dim * in_dim;
    }
    let line = trainable_parameters_line(trainable, base_params + trainable);
    let percent = line
        .rsplit("trainable%: ")
        .next()
        .and_then(|p| p.parse::<f64>().ok())
        .ok_or_else(|| format!("cannot read the percentage in {line:?}"))?;
    Ok((trainable, percent))
}

struct LoraCase {
    x: Array2<f64>,
    w: Array2<f64>,
    a: Array2<f64>,
    b: Array2<f64>,
    alpha: f64,
}

impl LoraCase {
    fn describe(&self) -> String {
        format!(
            "x {}x{}, W {}x{}, r = {}, α = {}",
            self.x.nrows(),
            self.x.ncols(),
            self.w.nrows(),
            self.w.ncols(),
            self.a.nrows(),
            self.alpha
        )
    }
}

fn lora_cases(seed: u64) -> Vec<LoraCase> {
    let mut rng = exercise::rng(seed);
    (0..10)
        .map(|i| {
            let (n, inp, out) = (
                rng.random_range(1..6),
                rng.random_range(2..12),
                rng.random_range(2..12),
            );
            let r = rng.random_range(1..=inp.min(out).min(4));
            let base = seed * 100 + i * 4;
            LoraCase {
                x: gaussian_matrix(n, inp, base),
                w: gaussian_matrix(out, inp, base + 1),
                a: gaussian_matrix(r, inp, base + 2),
                b: gaussian_matrix(out, r, base + 3),
                // r = 1 with α = 1 first: scaling 1, the case every formula agrees on.
                alpha: if i == 0 {
                    r as f64
                } else {
                    [1.0, 4.0, 8.0, 16.0, 32.0][rng.random_range(0..5)]
                },
            }
        })
        .collect()
}

/// Checks `answer(x, W, A, B, α)` against the library's [`Linear::lora`] forward.
pub fn check_lora_forward(
    answer: impl Fn(&Array2<f64>, &Array2<f64>, &Array2<f64>, &Array2<f64>, f64) -> Array2<f64>,
) -> Verdict {
    Checker::new(EXERCISES[0].id, EXERCISES[0].hint, lora_cases(81)).run(
        |c| answer(&c.x, &c.w, &c.a, &c.b, c.alpha),
        |c, got| {
            let want = lora_forward(&c.x, &c.w, &c.a, &c.b, c.alpha).map_err(|e| e.to_string())?;
            exercise::close_arrays(&c.describe(), &got, &want, 1e-9)
        },
    )
}

/// Adapted layers' (out, in) shapes, the rank, the base model's parameters.
type FractionCase = (Vec<(usize, usize)>, usize, usize);

/// Checks `answer(shapes, r, base_params)` against LoRA layers counted by the library and PEFT's
/// line ([`trainable_fraction`]).
pub fn check_trainable_fraction(
    answer: impl Fn(&[(usize, usize)], usize, usize) -> (usize, f64),
) -> Verdict {
    let mut rng = exercise::rng(82);
    // BART-base's q_proj and v_proj of 18 attention blocks at r = 8, then random models.
    let mut cases: Vec<FractionCase> = vec![
        (vec![(768, 768); 36], 8, 139_420_416),
        (vec![(4, 3)], 1, 10),
    ];
    for _ in 0..20 {
        let layers = rng.random_range(1..12);
        let shapes = (0..layers)
            .map(|_| (rng.random_range(1..800), rng.random_range(1..800)))
            .collect();
        cases.push((
            shapes,
            rng.random_range(1..33),
            rng.random_range(1_000..5_000_000),
        ));
    }
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, cases).run(
        |(shapes, r, base)| answer(shapes, *r, *base),
        |(shapes, r, base), (trainable, percent)| {
            let (want, want_percent) =
                trainable_fraction(shapes, *r, *base).map_err(|e| e.to_string())?;
            let what = format!(
                "{} layers {:?}…, r = {r}, base {base}",
                shapes.len(),
                shapes[0]
            );
            exercise::equal(&format!("trainable params for {what}"), trainable, want)?;
            // PEFT prints four decimals: agree to that.
            if (percent - want_percent).abs() <= 5e-5 + 1e-9 {
                Ok(())
            } else {
                Err(format!(
                    "trainable% for {what}: you returned {percent:.6}, expected {want_percent:.4}"
                ))
            }
        },
    )
}

/// Checks `answer(W, A, B, α)` against the library's merge ([`Linear::merged`]).
pub fn check_merge(
    answer: impl Fn(&Array2<f64>, &Array2<f64>, &Array2<f64>, f64) -> Array2<f64>,
) -> Verdict {
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, lora_cases(83)).run(
        |c| answer(&c.w, &c.a, &c.b, c.alpha),
        |c, got| {
            let want = merged_weight(&c.w, &c.a, &c.b, c.alpha).map_err(|e| e.to_string())?;
            exercise::close_arrays(&c.describe(), &got, &want, 1e-9)
        },
    )
}

/// The chapter's figures: LoRA's training loss on the tiny BART, and BART-base's trainable share
/// against the rank.
pub fn figures(out: &Path) -> LessonResult<()> {
    let (model, varmap) = tiny_bart_with_lora(8, &["q_proj", "v_proj"], 0)?;
    let cfg = model.config().clone();
    let batcher = DialogueBatcher::new(&tiny_bart_dir(), &cfg, 64, 32)?;
    let data = train::dialogues::split(0, 256, 0, 0)?;
    let mut trainer = adamw_trainer(&varmap, 3e-2, 40)?;
    let report = fit_on_dialogues(&mut trainer, &model, &batcher, &data.train, 8)?;
    train::metrics::loss_plot(
        "LoRA (r = 8, q and v) on the tiny BART",
        &report.losses(),
        &[],
    )
    .save(out.join("08-lora-loss.svg"))?;

    // BART-base: 36 attention blocks' q and v are 768x768; the base has 139,420,416 parameters
    // (the test below counts them on the model).
    let ranks = [1usize, 2, 4, 8, 16, 32, 64];
    let mut percents = Vec::new();
    for &r in &ranks {
        percents.push(trainable_fraction(&[(768, 768); 36], r, BART_BASE_PARAMETERS)?.1);
    }
    let labels: Vec<String> = ranks.iter().map(|r| format!("r = {r}")).collect();
    viz::BarChart::new("BART-base, LoRA on q_proj and v_proj")
        .x_label("rank")
        .y_label("trainable % of all parameters")
        .bars(&labels, &percents)
        .save(out.join("08-trainable-vs-rank.svg"))?;
    Ok(())
}

/// facebook/bart-base's parameters as torch's `model.parameters()` counts them
/// (BartForConditionalGeneration, LM head tied); a unit test counts them on the model.
pub const BART_BASE_PARAMETERS: usize = 139_420_416;

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, phase: f64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * cols + j) as f64 * 0.37 + phase).sin()
        })
    }

    #[test]
    fn the_formula_matches_the_library_layer_and_its_merge() {
        let (x, w, a, b) = (
            matrix(3, 6, 0.0),
            matrix(4, 6, 1.0),
            matrix(2, 6, 2.0),
            matrix(4, 2, 3.0),
        );
        let by_hand = x.dot(&w.t()) + x.dot(&a.t()).dot(&b.t()) * (4.0 / 2.0);
        let library = lora_forward(&x, &w, &a, &b, 4.0).unwrap();
        assert!((&by_hand - &library).iter().all(|d| d.abs() < 1e-12));
        let merged = merged_weight(&w, &a, &b, 4.0).unwrap();
        let through_merge = x.dot(&merged.t());
        assert!((&by_hand - &through_merge).iter().all(|d| d.abs() < 1e-12));
        // B = 0: the adapted layer is the base layer.
        let zero = lora_forward(&x, &w, &a, &Array2::zeros((4, 2)), 4.0).unwrap();
        assert!((&zero - &x.dot(&w.t())).iter().all(|d| d.abs() < 1e-12));
    }

    #[test]
    fn bart_base_counts_match_the_model() {
        let cfg = models::bart::Config::from_json_file(&fixture("bart-base-config.json")).unwrap();
        let weights = models::bart::synthetic_weights(&cfg, &Device::Cpu).unwrap();
        let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let mut model = Bart::load(vb, &cfg).unwrap();
        assert_eq!(model.parameter_count(), BART_BASE_PARAMETERS);
        let varmap = VarMap::new();
        apply_lora(
            &mut model,
            &LoraConfig::new(8, 16.0, &["q_proj", "v_proj"]),
            &varmap,
            0,
        )
        .unwrap();
        let (trainable, all) = lora_parameter_counts(&model);
        let (want, percent) =
            trainable_fraction(&[(768, 768); 36], 8, BART_BASE_PARAMETERS).unwrap();
        assert_eq!((trainable, all), (want, BART_BASE_PARAMETERS + want));
        assert!(trainable_summary(&model).ends_with(&format!("{percent:.4}")));
    }

    #[test]
    fn minilm_count_is_transformers_without_the_pooler() {
        let cfg = models::bert::Config::all_minilm_l6_v2();
        assert_eq!(bert_parameter_count(&cfg), 22_713_216 - (384 * 384 + 384));
    }

    #[test]
    fn accumulated_micro_batches_give_the_big_batch_gradient() {
        let (model, varmap) = tiny_bart_with_lora(4, &["q_proj", "v_proj"], 1).unwrap();
        let batcher = DialogueBatcher::new(&tiny_bart_dir(), model.config(), 64, 32).unwrap();
        let data = train::dialogues::split(0, 16, 0, 0).unwrap();
        // Train a few steps first: with B = 0 the gradient of A is exactly zero.
        let mut trainer = adamw_trainer(&varmap, 1e-2, 3).unwrap();
        fit_on_dialogues(&mut trainer, &model, &batcher, &data.train, 4).unwrap();
        let params = train::optim::named_vars(&varmap).unwrap();
        let items = &data.train[..6];
        let (loss, _) = batch_loss(&model, &batcher.batch(items).unwrap()).unwrap();
        let whole = Gradients::from_store(&loss.backward().unwrap(), &params);
        let mut accumulated = Gradients::new();
        let mut tokens = 0;
        for chunk in items.chunks(2) {
            let (sum, n) = batch_nll_sum(&model, &batcher.batch(chunk).unwrap()).unwrap();
            accumulated
                .accumulate(&sum.backward().unwrap(), &params)
                .unwrap();
            tokens += n;
        }
        accumulated.scale(1.0 / tokens as f64).unwrap();
        assert_eq!(whole.len(), params.len());
        assert!(max_gradient_difference(&whole, &accumulated).unwrap() < 1e-5);
    }

    #[test]
    fn checkers_name_the_case() {
        let verdict = check_merge(|w, _, _, _| w.clone());
        assert!(verdict.to_string().contains("r = "), "{verdict}");
    }
}
