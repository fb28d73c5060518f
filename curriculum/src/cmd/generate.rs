//! `lowrank generate`: summarize or continue texts with a BART model from a local directory
//! (config.json, model.safetensors, tokenizer.json), by greedy search, beam search or sampling.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use models::bart::Bart;
use models::candle::DType;
use models::generation::{self, GenerationConfig};
use models::tokenizer::Tokenizer;

use super::device::DeviceArg;

#[derive(clap::Args)]
pub struct Args {
    /// A BART directory: config.json, model.safetensors, tokenizer.json (generation_config.json
    /// optional, as save_pretrained writes it).
    #[arg(long)]
    model: PathBuf,
    /// An input text; repeat for a batch.
    #[arg(long, required = true)]
    text: Vec<String>,
    /// Beam search with this many beams (1: greedy search, or sampling with --top-p/--top-k).
    #[arg(long)]
    beams: Option<usize>,
    /// Sample from the smallest set of tokens whose probability exceeds this (turns sampling on).
    #[arg(long)]
    top_p: Option<f64>,
    /// Sample from the k most likely tokens (turns sampling on).
    #[arg(long)]
    top_k: Option<usize>,
    /// Softmax temperature for sampling.
    #[arg(long)]
    temperature: Option<f64>,
    /// Seed of the sampler, for repeatable samples.
    #[arg(long)]
    seed: Option<u64>,
    /// Tokens to generate at most (the model's max_length otherwise).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Ban repeating any n-gram of this size (0: off).
    #[arg(long)]
    no_repeat_ngram_size: Option<usize>,
    /// Beam scores divide by length^penalty: above 1 favours longer outputs.
    #[arg(long)]
    length_penalty: Option<f64>,
    /// Print the token ids too.
    #[arg(long)]
    ids: bool,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceArg,
}

pub fn run(args: &Args) -> Result<()> {
    let device = args.device.open()?;
    let model = Bart::from_dir(&args.model, DType::F32, &device)
        .with_context(|| format!("cannot load a BART model from {}", args.model.display()))?;
    let tokenizer = Tokenizer::from_dir(&args.model)?;
    let config = generation_config(&args.model, args)?;
    let texts: Vec<&str> = args.text.iter().map(String::as_str).collect();
    let encoded = tokenizer.encode_batch(&texts, true)?.to_device(&device)?;
    let progress = ProgressBar::new(config.resolved_max_length() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tokens")?.progress_chars("=> "),
    );
    progress.set_message("generating");
    let sequences = generation::generate_with_progress(
        &model,
        &encoded.input_ids,
        &encoded.attention_mask,
        &config,
        &mut |step| progress.set_position(step.cur_len as u64),
    )?;
    progress.finish_and_clear();
    for (text, sequence) in texts.iter().zip(&sequences) {
        println!("> {text}");
        println!("{}", tokenizer.decode(sequence, true)?);
        if args.ids {
            println!("ids: {sequence:?}");
        }
    }
    Ok(())
}

/// The model's own generation settings (config.json, then generation_config.json).
pub(crate) fn model_generation_config(dir: &Path) -> Result<GenerationConfig> {
    let mut config = GenerationConfig::default();
    for name in ["config.json", "generation_config.json"] {
        let path = dir.join(name);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            config.update(&json)?;
        }
    }
    Ok(config)
}

/// The model's own generation settings, then the flags.
fn generation_config(dir: &Path, args: &Args) -> Result<GenerationConfig> {
    let mut config = model_generation_config(dir)?;
    if let Some(beams) = args.beams {
        config.num_beams = beams;
    }
    if args.top_p.is_some() || args.top_k.is_some() || args.temperature.is_some() {
        config.do_sample = true;
        config.num_beams = args.beams.unwrap_or(1);
        config.top_p = args.top_p.unwrap_or(1.0);
        config.top_k = args.top_k.unwrap_or(0);
        config.temperature = args.temperature.unwrap_or(1.0);
    }
    config.seed = args.seed.or(config.seed);
    config.max_new_tokens = args.max_new_tokens.or(config.max_new_tokens);
    if let Some(n) = args.no_repeat_ngram_size {
        config.no_repeat_ngram_size = n;
    }
    if let Some(penalty) = args.length_penalty {
        config.length_penalty = penalty;
    }
    config.validate()?;
    Ok(config)
}
