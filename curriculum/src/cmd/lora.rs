//! `lowrank lora`: LoRA on a BART model as PEFT does it. `info` prints PEFT's trainable-parameters
//! line for a config, `train` fine-tunes adapters on the generated dialogue–summary set and saves
//! a PEFT-compatible adapter, `merge` folds an adapter into the dense weights and writes a plain
//! model folder that `lowrank generate` (or transformers) loads.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_nn::VarMap;
use indicatif::{ProgressBar, ProgressStyle};
use models::Linears;
use models::bart::Bart;
use models::candle::{DType, Device, Tensor};
use models::lora::{self, LoraConfig};
use models::loss::{IGNORE_INDEX, nll_sum, shift_tokens_right};
use models::tokenizer::Tokenizer;
use train::dialogues::{self, Dialogue};
use train::optim::{AdamWConfig, OptimizerConfig};
use train::schedule::Schedule;
use train::trainer::{Trainer, TrainerConfig};

use super::device::DeviceArg;

/// Where BartForConditionalGeneration keeps the layers `Linears` lists (`model.encoder…`).
const KEY_PREFIX: &str = "model.";

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print PEFT's trainable-parameters line for a LoRA config on a model (no training).
    Info(InfoArgs),
    /// Fine-tune LoRA adapters on the generated dialogue–summary set; save a PEFT adapter.
    Train(TrainArgs),
    /// Fold an adapter into the model's dense weights and write a plain model folder.
    Merge(MergeArgs),
}

/// The adapter's shape, as PEFT's `LoraConfig` names it.
#[derive(clap::Args)]
struct AdapterArgs {
    /// A BART directory: config.json, model.safetensors, tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// The rank of B·A.
    #[arg(long, default_value_t = 8)]
    r: usize,
    /// The update is scaled by alpha / r.
    #[arg(long, default_value_t = 16.0)]
    alpha: f64,
    /// Layers to adapt, by last name (q_proj, k_proj, v_proj, out_proj, fc1, fc2), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "q_proj,v_proj")]
    targets: Vec<String>,
}

impl AdapterArgs {
    fn config(&self, dropout: f64) -> Result<LoraConfig> {
        if self.r == 0 {
            bail!("--r 0: a LoRA rank must be at least 1");
        }
        let targets: Vec<&str> = self
            .targets
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if targets.is_empty() {
            bail!("--targets is empty: name at least one layer, e.g. q_proj,v_proj");
        }
        let mut cfg = LoraConfig::new(self.r, self.alpha, &targets);
        cfg.lora_dropout = dropout;
        cfg.task_type = Some("SEQ_2_SEQ_LM".into());
        cfg.base_model_name_or_path = Some(self.model.display().to_string());
        cfg.validate()?;
        Ok(cfg)
    }
}

#[derive(clap::Args)]
struct InfoArgs {
    #[command(flatten)]
    adapter: AdapterArgs,
}

#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    adapter: AdapterArgs,
    /// The adapter folder to write (adapter_config.json, adapter_model.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Dropout on the adapter's input (PEFT's lora_dropout), recorded in the adapter config.
    /// Lowrank's BART forward has no training mode, so it is not applied while training here.
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// AdamW's peak learning rate (linear decay to 0 after --warmup steps).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Dialogues per step.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Training dialogues generated (train::dialogues); batches are drawn from them at random.
    #[arg(long, default_value_t = 512)]
    examples: usize,
    /// Validation dialogues the loss before and after is measured on.
    #[arg(long, default_value_t = 32)]
    valid_examples: usize,
    /// Dialogue tokens kept (also capped by the model's max_position_embeddings).
    #[arg(long, default_value_t = 256)]
    max_source_len: usize,
    /// Summary tokens kept (also capped by the model's max_position_embeddings).
    #[arg(long, default_value_t = 64)]
    max_target_len: usize,
    /// Seeds the data, the adapter's initialisation and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceArg,
}

#[derive(clap::Args)]
struct MergeArgs {
    /// The base BART directory the adapter was trained on.
    #[arg(long)]
    model: PathBuf,
    /// A PEFT adapter folder (adapter_config.json, adapter_model.safetensors).
    #[arg(long)]
    adapter: PathBuf,
    /// The merged model folder to write (replaced if it exists).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: &Args) -> Result<()> {
    match &args.command {
        Command::Info(args) => info(args),
        Command::Train(args) => train(args),
        Command::Merge(args) => merge(args),
    }
}

fn load_model(dir: &Path, device: &Device) -> Result<Bart> {
    if !dir.is_dir() {
        bail!(
            "model folder {} does not exist (want config.json, model.safetensors, tokenizer.json)",
            dir.display()
        );
    }
    // A compressed folder (`lowrank compress`) loads with its factors: LoRA on top of it is the
    // recovery fine-tuning of LPAF / LoRAPrune, adapters learning what the truncation lost.
    if dir.join(compress::storage::MANIFEST_FILE).is_file() {
        let (model, manifest) = compress::load_compressed_bart(dir, DType::F32, device)
            .with_context(|| format!("cannot load the compressed BART in {}", dir.display()))?;
        println!(
            "compressed model ({}, {} factorized layers, {} Tucker-2 groups): LoRA adapters train \
             on top of the factors",
            manifest.method,
            manifest.layers.len(),
            manifest.groups.len()
        );
        return Ok(model);
    }
    Bart::from_dir(dir, DType::F32, device)
        .with_context(|| format!("cannot load a BART model from {}", dir.display()))
}

fn info(args: &InfoArgs) -> Result<()> {
    let cfg = args.adapter.config(0.0)?;
    let mut model = load_model(&args.adapter.model, &Device::Cpu)?;
    let varmap = VarMap::new();
    let adapted = lora::apply_lora(&mut model, &cfg, &varmap, 0)?;
    println!(
        "LoRA r = {}, alpha = {} (scaling {}), {} layers adapted ({})",
        cfg.r,
        cfg.lora_alpha,
        cfg.scaling(),
        adapted.len(),
        args.adapter.targets.join(", ")
    );
    println!("{}", lora::trainable_summary(&model));
    Ok(())
}

/// A tokenized batch: encoder ids and mask, decoder inputs, labels (-100 on padding).
struct Batch {
    input_ids: Tensor,
    attention_mask: Tensor,
    decoder_input_ids: Tensor,
    labels: Tensor,
}

struct Encoder<'a> {
    source: Tokenizer,
    target: Tokenizer,
    model: &'a Bart,
    device: &'a Device,
}

impl Encoder<'_> {
    fn batch(&self, items: &[&Dialogue]) -> Result<Batch> {
        let sources: Vec<&str> = items.iter().map(|d| d.dialogue.as_str()).collect();
        let targets: Vec<&str> = items.iter().map(|d| d.summary.as_str()).collect();
        let encoded = self.source.encode_batch(&sources, true)?;
        let summaries = self.target.encode_batch(&targets, true)?;
        let ids: Vec<Vec<u32>> = summaries.input_ids.to_vec2()?;
        let mask: Vec<Vec<u32>> = summaries.attention_mask.to_vec2()?;
        let (b, t) = summaries.dims()?;
        let labels: Vec<i64> = ids
            .iter()
            .zip(&mask)
            .flat_map(|(row, m)| {
                row.iter()
                    .zip(m)
                    .map(|(&id, &keep)| if keep == 1 { id as i64 } else { IGNORE_INDEX })
            })
            .collect();
        let labels = Tensor::from_vec(labels, (b, t), &Device::Cpu)?;
        let cfg = self.model.config();
        let decoder_input_ids =
            shift_tokens_right(&labels, cfg.pad_token_id, cfg.decoder_start_token_id)?
                .to_dtype(DType::U32)?;
        Ok(Batch {
            input_ids: encoded.input_ids.to_device(self.device)?,
            attention_mask: encoded.attention_mask.to_device(self.device)?,
            decoder_input_ids: decoder_input_ids.to_device(self.device)?,
            labels: labels.to_device(self.device)?,
        })
    }

    /// Summed NLL and label count of `batch`.
    fn nll(&self, batch: &Batch) -> Result<(Tensor, usize)> {
        let logits = self.model.forward(
            &batch.input_ids,
            &batch.attention_mask,
            &batch.decoder_input_ids,
        )?;
        Ok(nll_sum(&logits, &batch.labels)?)
    }

    /// Mean token cross-entropy over `items`, in batches of `batch_size`.
    fn mean_loss(&self, items: &[Dialogue], batch_size: usize) -> Result<f64> {
        let (mut sum, mut count) = (0.0, 0usize);
        for chunk in items.chunks(batch_size.max(1)) {
            let refs: Vec<&Dialogue> = chunk.iter().collect();
            let (nll, n) = self.nll(&self.batch(&refs)?)?;
            sum += nll.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            count += n;
        }
        if count == 0 {
            bail!("the validation set has no summary tokens");
        }
        Ok(sum / count as f64)
    }
}

fn train(args: &TrainArgs) -> Result<()> {
    let cfg = args.adapter.config(args.dropout)?;
    for (flag, value) in [
        ("--steps", args.steps),
        ("--batch-size", args.batch_size),
        ("--examples", args.examples),
        ("--valid-examples", args.valid_examples),
    ] {
        if value == 0 {
            bail!("{flag} must be at least 1");
        }
    }
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        bail!("--lr {} must be a positive number", args.lr);
    }
    let device = args.device.open()?;
    let mut model = load_model(&args.adapter.model, &device)?;
    let max_positions = model.config().max_position_embeddings;
    let tokenizer = |max_len: usize| -> Result<Tokenizer> {
        Ok(Tokenizer::from_dir(&args.adapter.model)?
            .with_max_length(Some(max_len.min(max_positions)))?)
    };
    let varmap = VarMap::new();
    let adapted = lora::apply_lora(&mut model, &cfg, &varmap, args.seed)?;
    // lora_dropout acts while training only, with masks fixed by the seed and the step.
    let (dropout, _) = lora::attach_dropout(&mut model, args.seed);
    let summary = lora::trainable_summary(&model);
    println!(
        "LoRA r = {}, alpha = {}, {} layers adapted ({})",
        cfg.r,
        cfg.lora_alpha,
        adapted.len(),
        args.adapter.targets.join(", ")
    );
    println!("{summary}");

    let data = dialogues::split(args.seed, args.examples, args.valid_examples, 0)?;
    let encoder = Encoder {
        source: tokenizer(args.max_source_len)?,
        target: tokenizer(args.max_target_len)?,
        model: &model,
        device: &device,
    };
    let before = encoder.mean_loss(&data.valid, args.batch_size)?;

    let mut config = TrainerConfig::new(
        OptimizerConfig::AdamW(AdamWConfig {
            lr: args.lr,
            ..AdamWConfig::default()
        }),
        args.steps,
    );
    config.schedule = Schedule::linear(args.warmup, args.steps);
    config.seed = args.seed;
    let mut trainer = Trainer::new(config, &varmap)?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.steps as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps [{elapsed_precise}<{eta}] {msg}")
            .context("progress bar template")?,
    );
    let train_set = &data.train;
    dropout.set_active(true);
    let report = trainer.fit(
        // Batches walk the (seeded, intent-shuffled) training set in order, epoch after epoch.
        |index, _rng| {
            dropout.reseed(index as u64);
            let items: Vec<&Dialogue> = (0..args.batch_size)
                .map(|j| &train_set[(index * args.batch_size + j) % train_set.len()])
                .collect();
            encoder
                .batch(&items)
                .map_err(|e| train::Error::Config(format!("{e:#}")))
        },
        |batch, _forward| {
            let (sum, count) = encoder
                .nll(batch)
                .map_err(|e| train::Error::Config(format!("{e:#}")))?;
            Ok(((sum / count.max(1) as f64)?, count))
        },
        None,
        &mut |p| {
            bar.set_position(p.step as u64);
            bar.set_message(format!(
                "loss {:.4}  lr {:.2e}  {:.0} label tokens/s",
                p.loss, p.lr, p.tokens_per_second
            ));
        },
    )?;
    bar.finish_and_clear();
    dropout.set_active(false);
    let after = encoder.mean_loss(&data.valid, args.batch_size)?;

    lora::save_adapter(&model, &cfg, &args.out, KEY_PREFIX)
        .with_context(|| format!("cannot save the adapter to {}", args.out.display()))?;
    let losses = report.losses();
    let tokens_per_second = report
        .steps
        .iter()
        .map(|s| s.tokens_per_second)
        .sum::<f64>()
        / report.steps.len().max(1) as f64;
    println!(
        "{} steps, batch {}, lr {} (linear schedule, AdamW); training loss {:.4} → {:.4}; {:.0} label tokens/s",
        report.final_step,
        args.batch_size,
        args.lr,
        losses.first().copied().unwrap_or(f64::NAN),
        losses.last().copied().unwrap_or(f64::NAN),
        tokens_per_second
    );
    println!(
        "validation loss ({} dialogues): before {before:.4}, after {after:.4}",
        data.valid.len()
    );
    let plot_path = args.out.join(train::metrics::LOSS_PLOT_FILE);
    train::metrics::loss_plot("LoRA fine-tuning loss", &losses, &[])
        .save(&plot_path)
        .with_context(|| format!("cannot save the loss curve {}", plot_path.display()))?;
    println!("adapter saved to {}", args.out.display());
    println!("loss curve: {}", plot_path.display());
    Ok(())
}

fn merge(args: &MergeArgs) -> Result<()> {
    if args.model.join(compress::storage::MANIFEST_FILE).is_file() {
        bail!(
            "{} is a compressed model: merging would turn its factorized layers back into dense ones; \
             keep the adapter beside it, or merge into the uncompressed model",
            args.model.display()
        );
    }
    let mut model = load_model(&args.model, &Device::Cpu)?;
    let cfg = lora::load_adapter(&mut model, &args.adapter, KEY_PREFIX)
        .with_context(|| format!("cannot load the adapter in {}", args.adapter.display()))?;
    let merged = lora::merge_lora(&mut model)?;
    if merged.is_empty() {
        bail!("{} adapts no layer of the model", args.adapter.display());
    }
    let weights_path = args.model.join("model.safetensors");
    let mut tensors = models::candle::safetensors::load(&weights_path, &Device::Cpu)
        .with_context(|| format!("cannot read {}", weights_path.display()))?;
    let names = merged.names();
    for (name, layer) in model.linears() {
        if !names.contains(&name.as_str()) {
            continue;
        }
        let key = [format!("{KEY_PREFIX}{name}.weight"), format!("{name}.weight")]
            .into_iter()
            .find(|k| tensors.contains_key(k))
            .with_context(|| {
                format!(
                    "{} has no weight for {name} (looked for {KEY_PREFIX}{name}.weight and {name}.weight)",
                    weights_path.display()
                )
            })?;
        let dtype = tensors[&key].dtype();
        let weight = layer.effective_weight()?.to_dtype(dtype)?.contiguous()?;
        tensors.insert(key, weight);
    }

    let out = &args.out;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".lowrank-merge-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot make a temporary folder in {}", parent.display()))?;
    for entry in std::fs::read_dir(&args.model)
        .with_context(|| format!("cannot list {}", args.model.display()))?
    {
        let entry = entry?;
        let file_name = entry.file_name();
        if entry.file_type()?.is_file() && file_name != "model.safetensors" {
            std::fs::copy(entry.path(), temp.path().join(&file_name))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    let merged_weights = temp.path().join("model.safetensors");
    models::candle::safetensors::save(&tensors, &merged_weights)
        .context("cannot write the merged model.safetensors")?;
    // The new folder and weights get the permissions of the originals (a temporary folder is
    // private to its owner).
    std::fs::set_permissions(
        &merged_weights,
        std::fs::metadata(&weights_path)?.permissions(),
    )?;
    std::fs::set_permissions(temp.path(), std::fs::metadata(&args.model)?.permissions())?;
    replace_dir(temp, out)?;
    println!(
        "merged LoRA r = {}, alpha = {} into {} layers ({} … {})",
        cfg.r,
        cfg.lora_alpha,
        names.len(),
        names.first().copied().unwrap_or_default(),
        names.last().copied().unwrap_or_default()
    );
    println!("merged model written to {}", out.display());
    Ok(())
}

/// Moves the finished folder `temp` to `out`, swapping out an existing `out` only once the new
/// one is complete.
fn replace_dir(temp: tempfile::TempDir, out: &Path) -> Result<()> {
    let temp = temp.keep();
    if out.exists() {
        let old = out.with_file_name(format!(
            ".{}.old-{}",
            out.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::rename(out, &old)
            .with_context(|| format!("cannot move the old {} aside", out.display()))?;
        if let Err(e) = std::fs::rename(&temp, out) {
            let _ = std::fs::rename(&old, out);
            let _ = std::fs::remove_dir_all(&temp);
            return Err(e).with_context(|| format!("cannot write {}", out.display()));
        }
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove the old {}", old.display()))?;
    } else if let Err(e) = std::fs::rename(&temp, out) {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    Ok(())
}
