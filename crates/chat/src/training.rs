//! Training an intent model. Both recipes first fit a linear probe on the frozen encoder's pooled
//! features (softmax regression on standardized features, folded back into the head); the LoRA
//! recipe then fine-tunes adapters and head together from there (linear probing then fine-tuning,
//! which keeps the pretrained features from being torn up by a random head). Finally the
//! out-of-scope threshold is calibrated on held-out data.

use std::path::Path;
use std::time::Instant;

use candle_nn::{Init, Optimizer, VarMap};
use models::bert::SentenceEncoder;
use models::candle::{DType, Device, Tensor, Var};
use models::lora::{self, LoraConfig};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use train::optim::{AdamWConfig, OptimizerConfig};
use train::schedule::Schedule;
use train::trainer::{Trainer, TrainerConfig};

use crate::data::{Example, IntentData};
use crate::error::{Result, invalid};
use crate::model::{Adaptation, IntentModel, ModelCard, Prediction, card_format, head_logits};

/// LoRA's shape, as PEFT names it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    pub r: usize,
    pub alpha: f64,
    /// Layer names by suffix: `query,key,value` for attention, plus `dense` for every linear layer.
    pub targets: Vec<String>,
    pub dropout: f64,
}

impl Default for LoraSettings {
    fn default() -> Self {
        Self {
            r: 16,
            alpha: 32.0,
            targets: ["query", "key", "value", "dense"]
                .map(String::from)
                .to_vec(),
            dropout: 0.1,
        }
    }
}

/// How to train. `lora: None` trains only the head (the frozen-embedding baseline).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    pub lora: Option<LoraSettings>,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of the fine-tuning phase (linear warm-up over 6% of steps, then decay).
    pub lr: f64,
    /// Full-batch Adam steps of the linear probe, and their learning rate.
    pub probe_steps: usize,
    pub probe_lr: f64,
    /// L2 penalty on the probe's weights (on standardized features).
    pub probe_l2: f64,
    /// Share of correct validation answers the threshold keeps when there is no out-of-scope
    /// validation data to calibrate against.
    pub keep_without_oos: f64,
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            lora: Some(LoraSettings::default()),
            epochs: 10,
            batch_size: 32,
            lr: 1e-3,
            probe_steps: 300,
            probe_lr: 0.05,
            probe_l2: 1e-3,
            keep_without_oos: 0.98,
            seed: 42,
        }
    }
}

impl TrainSettings {
    fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.probe_steps == 0 {
            return Err(invalid("batch size and probe steps must be at least 1"));
        }
        if self.lora.is_some() && self.epochs == 0 {
            return Err(invalid("LoRA fine-tuning needs at least one epoch"));
        }
        for (name, value) in [("lr", self.lr), ("probe lr", self.probe_lr)] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(invalid(format!("{name} {value} must be a positive number")));
            }
        }
        if !(0.0..=1.0).contains(&self.keep_without_oos) {
            return Err(invalid("keep_without_oos must lie in [0, 1]"));
        }
        Ok(())
    }
}

/// Where training is, for progress bars and notebook lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Pooling the frozen encoder's features of the training set.
    Embedding,
    /// Fitting the linear probe.
    Probe,
    /// LoRA + head steps.
    FineTune,
}

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub phase: Phase,
    pub done: usize,
    pub total: usize,
    pub loss: Option<f64>,
}

/// A trained model with what it took.
pub struct Trained {
    pub model: IntentModel,
    /// The adapter's config (LoRA only), for saving.
    pub lora: Option<LoraConfig>,
    pub probe_seconds: f64,
    pub fine_tune_seconds: f64,
    /// Fine-tuning loss per step.
    pub losses: Vec<f64>,
    pub calibration: Calibration,
}

impl Trained {
    /// Saves the model folder (adapter, head, card).
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.model.save(dir, self.lora.as_ref())
    }
}

/// Trains on `data.train`, calibrates on `data.valid` and `data.oos_valid`. `encoder_dir` is
/// recorded in the card so the model folder can find its base again.
pub fn train(
    mut encoder: SentenceEncoder,
    encoder_dir: &Path,
    data: &IntentData,
    settings: &TrainSettings,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<Trained> {
    settings.validate()?;
    if data.train.is_empty() {
        return Err(invalid(format!("{} has no training examples", data.name)));
    }
    let device = encoder.model().device().clone();
    let started = Instant::now();
    let features = pooled_features(&encoder, &data.train, on_progress)?;
    let labels = label_tensor(&data.train, &device)?;
    let (weight, bias) = fit_probe(&features, &labels, data.labels.len(), settings, on_progress)?;
    let probe_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (weight, bias, lora, losses) = match &settings.lora {
        None => (weight, bias, None, Vec::new()),
        Some(lora_settings) => {
            let cfg = lora_config(lora_settings, encoder_dir)?;
            let (weight, bias, losses) = fine_tune(
                &mut encoder,
                &cfg,
                data,
                settings,
                (&weight, &bias),
                on_progress,
            )?;
            (weight, bias, Some(cfg), losses)
        }
    };
    let fine_tune_seconds = started.elapsed().as_secs_f64();
    let card = ModelCard {
        format: card_format(),
        adaptation: match &settings.lora {
            None => Adaptation::Frozen,
            Some(l) => Adaptation::Lora {
                r: l.r,
                alpha: l.alpha,
                targets: l.targets.clone(),
            },
        },
        labels: data.labels.clone(),
        threshold: 0.0,
        encoder: encoder_dir.to_path_buf(),
        dataset: data.name.clone(),
        training: serde_json::json!({
            "epochs": if lora.is_some() { settings.epochs } else { 0 },
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "probe_steps": settings.probe_steps,
            "train_examples": data.train.len(),
            "probe_seconds": probe_seconds,
            "fine_tune_seconds": fine_tune_seconds,
            "device": if device.is_cuda() { "cuda" } else { "cpu" },
            "seed": settings.seed,
        }),
    };
    let mut model = IntentModel::new(encoder, weight, bias, card)?;
    let calibration = calibrate(&model, data, settings.keep_without_oos)?;
    model.set_threshold(calibration.threshold);
    Ok(Trained {
        model,
        lora,
        probe_seconds,
        fine_tune_seconds,
        losses,
        calibration,
    })
}

fn lora_config(settings: &LoraSettings, encoder_dir: &Path) -> Result<LoraConfig> {
    let targets: Vec<&str> = settings.targets.iter().map(String::as_str).collect();
    let mut cfg = LoraConfig::new(settings.r, settings.alpha, &targets);
    cfg.lora_dropout = settings.dropout;
    cfg.task_type = Some("FEATURE_EXTRACTION".into());
    cfg.base_model_name_or_path = Some(encoder_dir.display().to_string());
    cfg.validate()?;
    Ok(cfg)
}

/// Pooled features (n, dim) of the frozen encoder, in the examples' order. Texts go through in
/// batches of 64 of similar length (sorted by token count), so little of the work is padding.
fn pooled_features(
    encoder: &SentenceEncoder,
    examples: &[Example],
    on_progress: &mut dyn FnMut(Progress),
) -> Result<Tensor> {
    let total = examples.len();
    let lengths = token_counts(encoder, examples)?;
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut parts = Vec::new();
    for (i, chunk) in order.chunks(64).enumerate() {
        let texts: Vec<&str> = chunk.iter().map(|&j| examples[j].text.as_str()).collect();
        parts.push(encoder.pooled(&encoder.encode(&texts)?)?.detach());
        on_progress(Progress {
            phase: Phase::Embedding,
            done: (i * 64 + chunk.len()).min(total),
            total,
            loss: None,
        });
    }
    let sorted = Tensor::cat(&parts, 0)?;
    // Row k of `sorted` is example order[k]; put each back in its place.
    let mut position = vec![0u32; total];
    for (k, &j) in order.iter().enumerate() {
        position[j] = k as u32;
    }
    let position = Tensor::from_vec(position, total, sorted.device())?;
    Ok(sorted.index_select(&position, 0)?)
}

/// Token count of each example's text.
fn token_counts(encoder: &SentenceEncoder, examples: &[Example]) -> Result<Vec<usize>> {
    examples
        .iter()
        .map(|e| Ok(encoder.tokenizer().encode(&e.text, true)?.len()))
        .collect()
}

fn label_tensor(examples: &[Example], device: &Device) -> Result<Tensor> {
    let labels: Vec<u32> = examples.iter().map(|e| e.label as u32).collect();
    Ok(Tensor::from_vec(labels, examples.len(), device)?)
}

/// Softmax regression on standardized features by full-batch AdamW, then the standardization
/// folded into the head: `W' = W / σ`, `b' = b − W'·μ`, so the head reads raw pooled features.
fn fit_probe(
    features: &Tensor,
    labels: &Tensor,
    n_labels: usize,
    settings: &TrainSettings,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<(Tensor, Tensor)> {
    let (_, dim) = features.dims2()?;
    let device = features.device();
    let mean = features.mean_keepdim(0)?;
    let centered = features.broadcast_sub(&mean)?;
    let std = centered
        .sqr()?
        .mean_keepdim(0)?
        .sqrt()?
        .clamp(1e-6, f64::MAX)?;
    let standardized = centered.broadcast_div(&std)?;
    let weight = Var::zeros((n_labels, dim), DType::F32, device)?;
    let bias = Var::zeros(n_labels, DType::F32, device)?;
    let mut optimizer = candle_nn::AdamW::new(
        vec![weight.clone(), bias.clone()],
        candle_nn::ParamsAdamW {
            lr: settings.probe_lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    for step in 0..settings.probe_steps {
        let logits = head_logits(&standardized, weight.as_tensor(), bias.as_tensor())?;
        let loss = candle_nn::loss::cross_entropy(&logits, labels)?;
        let penalty = (weight.as_tensor().sqr()?.sum_all()? * settings.probe_l2)?;
        optimizer.backward_step(&(&loss + penalty)?)?;
        if step % 20 == 19 || step + 1 == settings.probe_steps {
            on_progress(Progress {
                phase: Phase::Probe,
                done: step + 1,
                total: settings.probe_steps,
                loss: Some(loss.to_scalar::<f32>()? as f64),
            });
        }
    }
    let std_row = std.squeeze(0)?;
    let folded = weight.as_tensor().broadcast_div(&std_row.unsqueeze(0)?)?;
    let shift = folded.matmul(&mean.t()?)?.squeeze(1)?;
    let folded_bias = (bias.as_tensor() - shift)?;
    Ok((folded.detach(), folded_bias.detach()))
}

/// Batches of example indices for one epoch: shuffled, then grouped by length within windows
/// of 16 batches (less padding), the batch order shuffled again.
fn epoch_batches(lengths: &[usize], batch_size: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    let mut batches = Vec::new();
    for window in order.chunks(batch_size * 16) {
        let mut window = window.to_vec();
        window.sort_by_key(|&i| lengths[i]);
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// LoRA adapters and the head (started from the probe) trained together with AdamW.
fn fine_tune(
    encoder: &mut SentenceEncoder,
    cfg: &LoraConfig,
    data: &IntentData,
    settings: &TrainSettings,
    probe: (&Tensor, &Tensor),
    on_progress: &mut dyn FnMut(Progress),
) -> Result<(Tensor, Tensor, Vec<f64>)> {
    let device = encoder.model().device().clone();
    let mut varmap = VarMap::new();
    lora::apply_lora(encoder, cfg, &varmap, settings.seed)?;
    let (dropout, _) = lora::attach_dropout(encoder, settings.seed);
    let weight = varmap.get(
        probe.0.dims(),
        "head.weight",
        Init::Const(0.0),
        DType::F32,
        &device,
    )?;
    let bias = varmap.get(
        probe.1.dims(),
        "head.bias",
        Init::Const(0.0),
        DType::F32,
        &device,
    )?;
    varmap.set_one("head.weight", probe.0)?;
    varmap.set_one("head.bias", probe.1)?;

    let lengths = token_counts(encoder, &data.train)?;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let per_epoch = data.train.len().div_ceil(settings.batch_size);
    let mut plan = Vec::with_capacity(per_epoch * settings.epochs);
    for _ in 0..settings.epochs {
        plan.extend(epoch_batches(&lengths, settings.batch_size, &mut rng));
    }
    let steps = plan.len();
    let mut config = TrainerConfig::new(
        OptimizerConfig::AdamW(AdamWConfig {
            lr: settings.lr,
            ..AdamWConfig::default()
        }),
        steps,
    );
    config.schedule = Schedule::linear(steps * 6 / 100, steps);
    config.max_grad_norm = Some(1.0);
    config.seed = settings.seed;
    let mut trainer = Trainer::new(config, &varmap)?;
    dropout.set_active(true);
    let encoder_ref = &*encoder;
    let report = trainer.fit(
        |index, _rng| {
            dropout.reseed(index as u64);
            let batch = &plan[index % steps];
            let texts: Vec<&str> = batch.iter().map(|&i| data.train[i].text.as_str()).collect();
            let labels: Vec<u32> = batch.iter().map(|&i| data.train[i].label as u32).collect();
            let encoded = encoder_ref.encode(&texts).map_err(train::Error::from)?;
            let labels = Tensor::from_vec(labels, batch.len(), &device)?;
            Ok((encoded, labels))
        },
        |(encoded, labels), _forward| {
            let features = encoder_ref.pooled(encoded).map_err(train::Error::from)?;
            let logits = features.matmul(&weight.t()?)?.broadcast_add(&bias)?;
            Ok((
                candle_nn::loss::cross_entropy(&logits, labels)?,
                labels.dim(0)?,
            ))
        },
        None,
        &mut |p| {
            on_progress(Progress {
                phase: Phase::FineTune,
                done: p.step,
                total: p.max_steps,
                loss: Some(p.loss),
            })
        },
    )?;
    dropout.set_active(false);
    Ok((weight.detach(), bias.detach(), report.losses()))
}

/// The out-of-scope threshold and how it does on the data it was chosen on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub threshold: f32,
    /// Share of in-scope validation texts answered with the right intent.
    pub in_scope_correct: f64,
    /// Share of out-of-scope validation texts rejected (None without such texts).
    pub oos_rejected: Option<f64>,
}

/// Calibrates the model's threshold on `data.valid` and `data.oos_valid`.
pub fn calibrate(
    model: &IntentModel,
    data: &IntentData,
    keep_without_oos: f64,
) -> Result<Calibration> {
    if data.valid.is_empty() {
        return Ok(Calibration {
            threshold: 0.0,
            in_scope_correct: f64::NAN,
            oos_rejected: None,
        });
    }
    let texts: Vec<&str> = data.valid.iter().map(|e| e.text.as_str()).collect();
    let in_scope = confidence_and_correct(&model.predict(&texts)?, &data.valid);
    let oos = oos_confidences(model, &data.oos_valid)?;
    let threshold = choose_threshold(&in_scope, &oos, keep_without_oos);
    let (correct, rejected) = threshold_scores(&in_scope, &oos, threshold);
    Ok(Calibration {
        threshold,
        in_scope_correct: correct,
        oos_rejected: (!oos.is_empty()).then_some(rejected),
    })
}

/// The threshold that maximizes the mean of (in-scope answered correctly) and (out-of-scope
/// rejected); without out-of-scope data, the one that keeps `keep` of the correct answers.
/// Ties go to the lower threshold (answer rather than hand off).
pub fn choose_threshold(in_scope: &[(f32, bool)], oos: &[f32], keep: f64) -> f32 {
    if oos.is_empty() {
        let mut correct: Vec<f32> = in_scope
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(c, _)| *c)
            .collect();
        if correct.is_empty() {
            return 0.0;
        }
        correct.sort_by(f32::total_cmp);
        let drop = ((1.0 - keep) * correct.len() as f64).floor() as usize;
        return correct[drop.min(correct.len() - 1)];
    }
    let mut candidates: Vec<f32> = in_scope
        .iter()
        .map(|(c, _)| *c)
        .chain(oos.iter().copied())
        .collect();
    candidates.push(0.0);
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let mut best = (f64::NEG_INFINITY, 0.0);
    for &t in &candidates {
        let (correct, rejected) = threshold_scores(in_scope, oos, t);
        let score = (correct + rejected) / 2.0;
        if score > best.0 {
            best = (score, t);
        }
    }
    best.1
}

/// `(confidence, right intent?)` of each prediction against its example.
pub(crate) fn confidence_and_correct(
    predictions: &[Prediction],
    examples: &[Example],
) -> Vec<(f32, bool)> {
    predictions
        .iter()
        .zip(examples)
        .map(|(p, e)| (p.confidence, p.label == e.label))
        .collect()
}

/// The top-intent confidence of each out-of-scope text (none for none).
pub(crate) fn oos_confidences(model: &IntentModel, texts: &[String]) -> Result<Vec<f32>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(model
        .predict(&texts)?
        .iter()
        .map(|p| p.confidence)
        .collect())
}

/// (share of in-scope answered correctly, share of out-of-scope rejected) at threshold `t`.
pub fn threshold_scores(in_scope: &[(f32, bool)], oos: &[f32], t: f32) -> (f64, f64) {
    let correct = in_scope.iter().filter(|(c, ok)| *ok && *c >= t).count() as f64
        / in_scope.len().max(1) as f64;
    let rejected = oos.iter().filter(|&&c| c < t).count() as f64 / oos.len().max(1) as f64;
    (correct, rejected)
}
