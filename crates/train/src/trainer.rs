//! The training loop: closures give batches and losses, the [`Trainer`] does the rest (schedule,
//! accumulation, clipping, evaluation, early stopping, checkpoints, metrics) and reports progress
//! through a callback; it never prints.
//!
//! Reproducibility: one ChaCha8 stream, seeded from `TrainerConfig::seed`, is handed to the batch
//! closure (shuffling, sampling) and saved in every checkpoint, so the same seed gives the same
//! losses and a resumed run continues the stream where it stopped. candle's own random ops
//! (`candle_nn::ops::dropout`, `randn`) draw from the device's generator, which on CPU cannot be
//! seeded: a model that needs reproducible dropout draws its masks from the stream instead.
//!
//! Mixed precision ([`Precision::Bf16`]): the `Var`s (master weights) and the optimizer state stay
//! f32; the loss closure casts weights or inputs to [`Forward::dtype`] (see [`Forward::cast`]),
//! the trainer casts the loss back to f32, and since `to_dtype` has a backward the gradients
//! arrive in f32 on the master weights.
//!
//! Activation (gradient) checkpointing is not offered: candle 0.11 cannot express it. Each tensor
//! holds its op with `Arc`s to the op's inputs, and `Tensor::backward` walks that graph, so every
//! activation between the `Var`s and the loss stays alive until the loss is dropped; there is no
//! hook to free an activation and recompute it during the backward pass. The nearest tool, a
//! `CustomOp1/2/3` with its own `bwd(args, result, grad)`, returns gradients only for its (at
//! most three) argument tensors and cannot reach the `GradStore` that `backward` is filling, so a
//! block that recomputed its forward inside `bwd` would have no way to hand back the gradients of
//! its weights (a layer has many); and the op's forward gets raw device storage
//! (`cpu_fwd(&CpuStorage, &Layout)`, `cuda_fwd`), not tensors. With candle, trade memory for
//! time with smaller micro-batches and gradient accumulation instead.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, RngState, TrainerState};
use crate::error::{Error, Result, invalid};
use crate::metrics::{Kind, MetricsLog, Record};
use crate::optim::{Gradients, Optimizer, OptimizerConfig, named_vars};
use crate::schedule::Schedule;

/// The checkpoint folder `fit` keeps (and replaces) under `TrainerConfig::output_dir`.
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// The dtype of the forward pass; parameters and optimizer state are f32 in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in f32: the default, and the right choice on CPU.
    #[default]
    F32,
    /// bfloat16 forward: f32's range with 8 bits of mantissa, so no loss scaling is needed (as
    /// it would be for f16). Pays off on GPUs with bf16 tensor cores; on CPU it is slower.
    Bf16,
}

impl Precision {
    /// The dtype the forward pass computes in.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// What the loss closure is told about the pass it computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// Training pass (dropout on) rather than evaluation.
    pub train: bool,
    /// The dtype to compute in (f32, or bf16 under mixed precision).
    pub dtype: DType,
}

impl Forward {
    /// `xs` in the compute dtype when it is a float tensor (weights, activations); integer
    /// tensors (token ids, labels) pass unchanged.
    pub fn cast(&self, xs: &Tensor) -> Result<Tensor> {
        if xs.dtype().is_float() && xs.dtype() != self.dtype {
            Ok(xs.to_dtype(self.dtype)?)
        } else {
            Ok(xs.clone())
        }
    }
}

/// Everything that decides a run; saved in each checkpoint so a resume needs only the folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerConfig {
    /// AdamW or SGD, with the base learning rate.
    pub optimizer: OptimizerConfig,
    /// Multiplies the optimizer's learning rate, step by step.
    pub schedule: Schedule,
    /// Optimizer steps to take in all (a resumed run counts the steps before the checkpoint).
    pub max_steps: usize,
    /// Micro-batches per optimizer step (`k`): the effective batch is k times the closure's.
    pub accumulation_steps: usize,
    /// Clip gradients to this global 2-norm (torch's `clip_grad_norm_`); `None` leaves them.
    pub max_grad_norm: Option<f64>,
    /// Call the evaluation closure after every this many optimizer steps.
    pub eval_every: Option<usize>,
    /// Stop after this many evaluations in a row without a lower evaluation loss.
    pub patience: Option<usize>,
    /// Keep a copy of the parameters at the best evaluation and load it back when the run ends
    /// (transformers' `load_best_model_at_end`); costs one more copy of the parameters.
    pub restore_best: bool,
    /// Seeds the stream the batch closure draws from.
    pub seed: u64,
    /// The forward pass's dtype (f32 by default; bf16 pays off on GPUs).
    pub precision: Precision,
    /// Where `metrics.csv`, `metrics.jsonl` and the `checkpoint/` folder go; `None` writes nothing.
    pub output_dir: Option<PathBuf>,
    /// Save a checkpoint after every this many steps (and at the end); needs `output_dir`.
    pub checkpoint_every: Option<usize>,
}

impl TrainerConfig {
    /// `max_steps` steps of `optimizer` at a constant rate, one micro-batch per step, no clipping,
    /// evaluation, checkpoint or log, seed 0, f32: change the fields that matter.
    pub fn new(optimizer: OptimizerConfig, max_steps: usize) -> Self {
        Self {
            optimizer,
            schedule: Schedule::constant(),
            max_steps,
            accumulation_steps: 1,
            max_grad_norm: None,
            eval_every: None,
            patience: None,
            restore_best: false,
            seed: 0,
            precision: Precision::F32,
            output_dir: None,
            checkpoint_every: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let zero = |field: &str| Err(Error::Config(format!("{field} must be at least 1")));
        if self.accumulation_steps == 0 {
            return zero("accumulation_steps");
        }
        if self.eval_every == Some(0) {
            return zero("eval_every");
        }
        if self.patience == Some(0) {
            return zero("patience");
        }
        if self.checkpoint_every == Some(0) {
            return zero("checkpoint_every");
        }
        if let Some(max_norm) = self.max_grad_norm
            && !(max_norm > 0.0 && max_norm.is_finite())
        {
            return Err(Error::Config(format!(
                "max_grad_norm {max_norm} must be a positive number (None turns clipping off)"
            )));
        }
        if self.patience.is_some() && self.eval_every.is_none() {
            return Err(Error::Config(
                "patience counts evaluations: set eval_every too".into(),
            ));
        }
        if self.restore_best && self.eval_every.is_none() {
            return Err(Error::Config(
                "restore_best keeps the parameters of the best evaluation: set eval_every too"
                    .into(),
            ));
        }
        if self.checkpoint_every.is_some() && self.output_dir.is_none() {
            return Err(Error::Config(
                "checkpoint_every needs an output_dir to write checkpoints into".into(),
            ));
        }
        if self.schedule.decay != crate::schedule::Decay::Constant && self.schedule.total_steps == 0
        {
            return Err(Error::Config(
                "a decaying schedule needs total_steps (usually max_steps)".into(),
            ));
        }
        Ok(())
    }
}

/// One optimizer step, as logged: `step` counts steps done (1 after the first), `lr` is the rate
/// that step used, `grad_norm` the global norm before clipping, `tokens` what the loss closure
/// counted over the step's micro-batches.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// Steps done, this one included.
    pub step: usize,
    /// Mean loss over the step's micro-batches, weighted by their counts.
    pub loss: f64,
    /// The learning rate the step used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Items the loss closure counted, all micro-batches together.
    pub tokens: usize,
    /// `tokens` over the step's wall-clock time.
    pub tokens_per_second: f64,
}

/// An evaluation loss and the step after which it was measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Steps done when it was measured.
    pub step: usize,
    /// What the evaluation closure returned.
    pub loss: f64,
}

/// What the progress callback gets after each step: enough for a progress bar and a live plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps done (a progress bar's position).
    pub step: usize,
    /// Steps in all (the bar's length).
    pub max_steps: usize,
    /// The step's training loss.
    pub loss: f64,
    /// The learning rate the step used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Throughput of the step.
    pub tokens_per_second: f64,
    /// The evaluation loss when this step ended with an evaluation.
    pub eval_loss: Option<f64>,
}

/// What one `fit` call did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// The steps this call took, in order.
    pub steps: Vec<StepStats>,
    /// The evaluations this call made.
    pub evals: Vec<Evaluation>,
    /// The lowest evaluation loss of the whole run (resumes included).
    pub best: Option<Evaluation>,
    /// Whether patience ran out before `max_steps`.
    pub stopped_early: bool,
    /// Steps done in all when the call returned.
    pub final_step: usize,
}

impl Report {
    /// The training loss of each step this call took.
    pub fn losses(&self) -> Vec<f64> {
        self.steps.iter().map(|s| s.loss).collect()
    }
}

/// The training loop over a `VarMap`'s parameters, with its optimizer, RNG and early-stopping
/// state; [`Trainer::resume`] rebuilds it from a checkpoint.
pub struct Trainer {
    config: TrainerConfig,
    params: Vec<(String, Var)>,
    optimizer: Optimizer,
    rng: ChaCha8Rng,
    step: usize,
    best: Option<Evaluation>,
    /// The parameters at `best`, in `params` order (only with `restore_best`).
    best_params: Option<Vec<Tensor>>,
    evals_without_improvement: usize,
    stopped_early: bool,
    metrics: Option<MetricsLog>,
}

impl Trainer {
    /// A trainer for every float variable in `varmap` (the `VarMap` is shared, not copied: the
    /// model built from it sees each update). Starts fresh logs in `output_dir`.
    pub fn new(config: TrainerConfig, varmap: &VarMap) -> Result<Self> {
        config.validate()?;
        let params = named_vars(varmap)?;
        if params.is_empty() {
            return Err(invalid(
                "the VarMap has no float parameters to train; build the model through a VarBuilder over it first",
            ));
        }
        let optimizer = Optimizer::new(config.optimizer, &params)?;
        let metrics = match &config.output_dir {
            Some(dir) => Some(MetricsLog::create(dir)?),
            None => None,
        };
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            params,
            optimizer,
            step: 0,
            best: None,
            best_params: None,
            evals_without_improvement: 0,
            stopped_early: false,
            metrics,
        })
    }

    /// Rebuilds the trainer saved in the checkpoint `dir`, loading its parameters into `varmap`'s
    /// variables (names and shapes must match exactly). Logs in `output_dir` continue from the
    /// checkpoint's step, dropping rows written after it.
    pub fn resume(dir: &Path, varmap: &VarMap) -> Result<Self> {
        let params = named_vars(varmap)?;
        let device = params
            .first()
            .map(|(_, var)| var.device().clone())
            .unwrap_or(Device::Cpu);
        let loaded = checkpoint::load(dir, &device)?;
        let state = loaded.state;
        let state_path = dir.join(checkpoint::STATE_FILE);
        state.config.validate().map_err(|e| Error::CorruptFile {
            path: state_path.clone(),
            message: format!("{e}; {}", checkpoint::DAMAGED_HINT),
        })?;
        let values = checkpoint::match_parameters(
            &loaded.model,
            &params,
            &dir.join(checkpoint::MODEL_FILE),
        )?;
        let mut optimizer = Optimizer::new(state.config.optimizer, &params)?;
        optimizer.load_state(&loaded.optimizer, &dir.join(checkpoint::OPTIMIZER_FILE))?;
        let best_params = match &loaded.best_model {
            Some(best) => Some(checkpoint::match_parameters(
                best,
                &params,
                &dir.join(checkpoint::BEST_MODEL_FILE),
            )?),
            None => None,
        };
        let rng = state.rng.restore().map_err(|message| Error::CorruptFile {
            path: state_path,
            message: format!("{message}; {}", checkpoint::DAMAGED_HINT),
        })?;
        // Everything is read and checked: only now does the model change.
        for ((_, var), value) in params.iter().zip(values) {
            var.set(&value)?;
        }
        let metrics = match &state.config.output_dir {
            Some(out) => Some(MetricsLog::resume(out, state.step)?),
            None => None,
        };
        Ok(Self {
            config: state.config,
            params,
            optimizer,
            rng,
            step: state.step,
            best: state.best,
            best_params,
            evals_without_improvement: state.evals_without_improvement,
            stopped_early: state.stopped_early,
            metrics,
        })
    }

    /// The run's settings (from the checkpoint, after a resume).
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Optimizer steps done.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The optimizer, e.g. to read its current learning rate or state.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// The lowest evaluation loss so far.
    pub fn best(&self) -> Option<Evaluation> {
        self.best
    }

    /// Trains to a new total, e.g. longer after a resume. The schedule is not stretched: set
    /// a schedule's `total_steps` for the run's final length from the start.
    pub fn set_max_steps(&mut self, max_steps: usize) {
        self.config.max_steps = max_steps;
    }

    /// Trains until `max_steps` or early stopping.
    ///
    /// - `next_batch(index, rng)` gives micro-batch `index` (0, 1, … across the run:
    ///   `step · accumulation_steps + micro`), drawing any randomness from `rng`;
    /// - `loss(batch, forward)` returns the batch's mean loss as a scalar and how many items
    ///   (label tokens, examples) the mean is over; accumulated micro-batches are weighted by that
    ///   count, so k micro-batches give the gradient of one batch of them all even when their
    ///   lengths differ (transformers' `num_items_in_batch`); with equal counts this is torch's
    ///   `loss / k`;
    /// - `evaluate()` returns the evaluation loss (the model in evaluation mode);
    /// - `on_progress` hears about each step.
    ///
    /// A NaN or infinite loss or gradient norm stops the run with an error before the optimizer
    /// step, so the parameters stay finite.
    pub fn fit<B>(
        &mut self,
        mut next_batch: impl FnMut(usize, &mut ChaCha8Rng) -> Result<B>,
        mut loss: impl FnMut(&B, Forward) -> Result<(Tensor, usize)>,
        mut evaluate: Option<&mut dyn FnMut() -> Result<f64>>,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<Report> {
        let mut report = Report::default();
        while self.step < self.config.max_steps && !self.stopped_early {
            let stats = self.train_step(&mut next_batch, &mut loss)?;
            self.log(&Record {
                kind: Kind::Train,
                step: stats.step,
                loss: stats.loss,
                lr: Some(stats.lr),
                grad_norm: Some(stats.grad_norm),
                tokens: Some(stats.tokens),
                tokens_per_second: Some(stats.tokens_per_second),
            })?;
            let mut eval_loss = None;
            if let (Some(every), Some(evaluate)) = (self.config.eval_every, evaluate.as_mut())
                && self.step.is_multiple_of(every)
            {
                let value = evaluate()?;
                eval_loss = Some(value);
                let evaluation = Evaluation {
                    step: self.step,
                    loss: value,
                };
                report.evals.push(evaluation);
                self.log(&Record {
                    kind: Kind::Eval,
                    step: self.step,
                    loss: value,
                    lr: None,
                    grad_norm: None,
                    tokens: None,
                    tokens_per_second: None,
                })?;
                self.observe(evaluation)?;
            }
            on_progress(&Progress {
                step: stats.step,
                max_steps: self.config.max_steps,
                loss: stats.loss,
                lr: stats.lr,
                grad_norm: stats.grad_norm,
                tokens_per_second: stats.tokens_per_second,
                eval_loss,
            });
            report.steps.push(stats);
            let finished = self.step >= self.config.max_steps || self.stopped_early;
            if let Some(every) = self.config.checkpoint_every
                && (self.step.is_multiple_of(every) || finished)
                && let Some(out) = self.config.output_dir.clone()
            {
                self.save_checkpoint(&out.join(CHECKPOINT_DIR))?;
            }
        }
        if self.config.restore_best
            && let Some(best) = &self.best_params
        {
            for ((_, var), value) in self.params.iter().zip(best) {
                var.set(value)?;
            }
        }
        report.best = self.best;
        report.stopped_early = self.stopped_early;
        report.final_step = self.step;
        Ok(report)
    }

    /// One optimizer step over `accumulation_steps` micro-batches: what `fit` repeats, public
    /// for loops that want to do their own evaluation or stopping.
    pub fn train_step<B>(
        &mut self,
        next_batch: &mut impl FnMut(usize, &mut ChaCha8Rng) -> Result<B>,
        loss: &mut impl FnMut(&B, Forward) -> Result<(Tensor, usize)>,
    ) -> Result<StepStats> {
        let start = Instant::now();
        let k = self.config.accumulation_steps;
        let forward = Forward {
            train: true,
            dtype: self.config.precision.dtype(),
        };
        let mut grads = Gradients::new();
        let (mut weighted_loss, mut tokens) = (0.0, 0usize);
        for micro in 0..k {
            let batch = next_batch(self.step * k + micro, &mut self.rng)?;
            let (micro_loss, count) = loss(&batch, forward)?;
            let micro_loss = scalar_f32(&micro_loss)?;
            let value = micro_loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(Error::NonFiniteLoss {
                    step: self.step + 1,
                    loss: value,
                });
            }
            // Summing count·∇loss and dividing by the total count below is the gradient of the
            // pooled mean; with one micro-batch the loss goes through unscaled, bit for bit.
            let store = if k == 1 {
                micro_loss.backward()?
            } else {
                micro_loss.affine(count as f64, 0.0)?.backward()?
            };
            grads.accumulate(&store, &self.params)?;
            weighted_loss += value * count as f64;
            tokens += count;
            if k == 1 {
                // The closure's own mean, not value·count/count rounded twice.
                weighted_loss = value;
            }
        }
        if grads.is_empty() {
            return Err(invalid(
                "the loss reached none of the VarMap's parameters; build the model from a VarBuilder over this VarMap (VarBuilder::from_varmap) and do not detach its weights",
            ));
        }
        if k > 1 {
            if tokens == 0 {
                return Err(invalid(format!(
                    "the loss closure counted 0 items over the {k} micro-batches of step {}; it must return how many tokens or examples its mean loss is over",
                    self.step + 1
                )));
            }
            grads.scale(1.0 / tokens as f64)?;
            weighted_loss /= tokens as f64;
        }
        let grad_norm = match self.config.max_grad_norm {
            Some(max_norm) => grads.clip_norm(max_norm)?,
            None => grads.global_norm()?,
        };
        if !grad_norm.is_finite() {
            return Err(Error::NonFiniteGradient {
                step: self.step + 1,
                norm: grad_norm,
            });
        }
        let lr = self
            .config
            .schedule
            .lr_at(self.config.optimizer.lr(), self.step);
        self.optimizer.set_lr(lr);
        self.optimizer.step(&grads)?;
        self.step += 1;
        let seconds = start.elapsed().as_secs_f64();
        Ok(StepStats {
            step: self.step,
            loss: weighted_loss,
            lr,
            grad_norm,
            tokens,
            tokens_per_second: if seconds > 0.0 {
                tokens as f64 / seconds
            } else {
                0.0
            },
        })
    }

    /// Writes this trainer's checkpoint into `dir` (atomically, replacing one there).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        let model: Vec<(String, Tensor)> = self
            .params
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect();
        let best: Option<Vec<(String, Tensor)>> = self.best_params.as_ref().map(|values| {
            self.params
                .iter()
                .map(|(name, _)| name.clone())
                .zip(values.iter().cloned())
                .collect()
        });
        let state = TrainerState {
            format_version: checkpoint::FORMAT_VERSION,
            step: self.step,
            config: self.config.clone(),
            rng: RngState::capture(&self.rng),
            best: self.best,
            evals_without_improvement: self.evals_without_improvement,
            stopped_early: self.stopped_early,
        };
        checkpoint::save(
            dir,
            &model,
            &self.optimizer.state_tensors()?,
            &state,
            best.as_deref(),
        )
    }

    /// Early-stopping bookkeeping for one evaluation: a strictly lower loss is an improvement
    /// (transformers' `EarlyStoppingCallback` with threshold 0); NaN never is.
    fn observe(&mut self, evaluation: Evaluation) -> Result<()> {
        let improved = self.best.is_none_or(|best| evaluation.loss < best.loss);
        if improved && evaluation.loss.is_finite() {
            self.best = Some(evaluation);
            self.evals_without_improvement = 0;
            if self.config.restore_best {
                let copies = self
                    .params
                    .iter()
                    .map(|(_, var)| var.as_tensor().copy())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                self.best_params = Some(copies);
            }
        } else {
            self.evals_without_improvement += 1;
            if self
                .config
                .patience
                .is_some_and(|patience| self.evals_without_improvement >= patience)
            {
                self.stopped_early = true;
            }
        }
        Ok(())
    }

    fn log(&mut self, record: &Record) -> Result<()> {
        match &mut self.metrics {
            Some(metrics) => metrics.append(record),
            None => Ok(()),
        }
    }
}

/// The loss as an f32 scalar: a one-element tensor of any shape is accepted, a batch of losses
/// is not (the closure must take the mean).
fn scalar_f32(loss: &Tensor) -> Result<Tensor> {
    if loss.elem_count() != 1 {
        return Err(invalid(format!(
            "the loss closure returned a tensor of shape {:?}; it must return the mean loss, a scalar",
            loss.dims()
        )));
    }
    Ok(loss.reshape(())?.to_dtype(DType::F32)?)
}
