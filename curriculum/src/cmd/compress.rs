//! `lowrank compress`: truncated-SVD surgery on a BART or BERT-family model folder, saved as a
//! folder that `compress::load_compressed*` reloads; for a sentence encoder, the cosine of its
//! embeddings to the original's on the texts given.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use compress::{
    Calibration, Method, Plan, RankRule, Report, Sensitivity, Sharing, Tucker2Options,
    allocate_ranks, calibrate, compress_model, compress_model_calibrated, compress_tucker2,
    compress_with_allocation, layer_spectra, measure_sensitivity, save_compressed,
};
use models::bart::Bart;
use models::bert::SentenceEncoder;
use models::candle::{DType, Device};

#[derive(clap::Args)]
pub struct Args {
    /// A model folder: config.json, model.safetensors (and tokenizer.json). BART
    /// (`model_type` "bart") or a BERT-family sentence encoder ("bert", e.g. all-MiniLM-L6-v2).
    #[arg(long)]
    model: PathBuf,
    /// Layers to factorize, by checkpoint name; `*` matches any run of characters. Repeat for
    /// several [default: the attention projections, `*.q_proj` … for BART, `*.attention.*` for BERT].
    #[arg(long = "layers")]
    patterns: Vec<String>,
    /// Only these blocks (the number after `layers.` / `layer.`), e.g. `--blocks 1,2,3`.
    #[arg(long, value_delimiter = ',')]
    blocks: Vec<usize>,
    /// The same rank for every selected layer.
    #[arg(long, group = "rule")]
    rank: Option<usize>,
    /// Keep this fraction of each selected layer's weights, e.g. 0.75 removes a quarter.
    #[arg(long, group = "rule")]
    keep: Option<f64>,
    /// The smallest rank keeping this fraction of each layer's Σσ² (of W·S for asvd/whitened),
    /// e.g. 0.9.
    #[arg(long, group = "rule")]
    energy: Option<f64>,
    /// `svd` (plain truncated SVD), `asvd` (columns scaled by the inputs' mean magnitude),
    /// `whitened` (SVD-LLM: the error measured on the inputs, optimal for them); these two need
    /// --calibration. `tucker2`: the selected matrices share Tucker-2 factors U1, U2 of --rank R
    /// and each keeps an R×R core (see --sharing).
    #[arg(long, default_value = "svd")]
    method: String,
    /// For --method tucker2, which matrices share factors: `all` (the design-space study's
    /// Tucker-2), `per-block` or `per-tensor`.
    #[arg(long, default_value = "all")]
    sharing: String,
    /// For --method tucker2: decompose per attention head instead, U1 of this rank within a
    /// head shared by all heads (heads from config.json); for q, k, v projections.
    #[arg(long)]
    head_rank: Option<usize>,
    /// With --keep: give each layer its own rank so the selected layers keep that share of their
    /// weights, spending rank where it matters: `spectral` (least total squared error),
    /// `relative` (least sum of relative errors) or `measured` (sentence encoders: each layer's
    /// damage alone, 1 − cosine on --probe texts, scales its error curve). A layer may stay dense.
    #[arg(long)]
    allocate: Option<String>,
    /// Texts, one a line, on which `--allocate measured` measures each layer's damage: neither
    /// the calibration texts nor the ones you evaluate on.
    #[arg(long)]
    probe: Option<PathBuf>,
    /// A text file, one calibration text per line (dialogues or sentences like the model's
    /// inputs), for --method asvd or whitened. Hundreds of lines: with fewer tokens than a
    /// layer's input size the whitening overfits them.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Where to write the compressed model (replaced if it exists).
    #[arg(long)]
    out: PathBuf,
    /// Texts to compare the encoder's embeddings on, before and after (sentence encoders only).
    #[arg(long)]
    text: Vec<String>,
}

pub(crate) enum Kind {
    Bart,
    Bert,
}

pub fn run(args: &Args) -> Result<()> {
    if args.method == "tucker2" {
        return match model_kind(&args.model)? {
            Kind::Bart => tucker2_bart(args),
            Kind::Bert => tucker2_encoder(args),
        };
    }
    if args.sharing != "all" || args.head_rank.is_some() {
        bail!("--sharing and --head-rank are for --method tucker2");
    }
    let rule = rule(args)?;
    match model_kind(&args.model)? {
        Kind::Bart => compress_bart(args, rule),
        Kind::Bert => compress_encoder(args, rule),
    }
}

fn rule(args: &Args) -> Result<RankRule> {
    let rule = match (args.rank, args.keep, args.energy) {
        (Some(rank), None, None) => RankRule::Fixed(rank),
        (None, Some(keep), None) => RankRule::ParamRatio(keep),
        (None, None, Some(energy)) => RankRule::Energy(energy),
        (None, None, None) => {
            bail!("say how far to compress: --rank R, --keep 0.75 or --energy 0.9")
        }
        _ => bail!("give one of --rank, --keep and --energy"),
    };
    rule.validate()?;
    Ok(rule)
}

pub(crate) fn model_kind(dir: &Path) -> Result<Kind> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is --model a model folder?)",
            path.display()
        )
    })?;
    let config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match config["model_type"].as_str() {
        Some("bart") => Ok(Kind::Bart),
        Some("bert") => Ok(Kind::Bert),
        other => bail!(
            "{}: model_type {other:?} is not supported; lowrank compress takes \"bart\" or \"bert\"",
            path.display()
        ),
    }
}

fn plan(args: &Args, rule: RankRule, default_patterns: &[&str]) -> Result<Plan> {
    let method: Method = args.method.parse()?;
    if method != Method::Svd && args.calibration.is_none() {
        bail!(
            "--method {} needs --calibration FILE (one text per line)",
            args.method
        );
    }
    let patterns: Vec<String> = if args.patterns.is_empty() {
        default_patterns.iter().map(|p| p.to_string()).collect()
    } else {
        args.patterns.clone()
    };
    let plan = Plan::new(rule).select(patterns).with_method(method);
    Ok(if args.blocks.is_empty() {
        plan
    } else {
        plan.layers(args.blocks.iter().copied())
    })
}

/// The calibration texts, one a line, blank lines skipped; none without --calibration.
fn calibration_texts(args: &Args) -> Result<Vec<String>> {
    match &args.calibration {
        Some(path) => read_lines(path, "calibration"),
        None => Ok(Vec::new()),
    }
}

/// The non-blank lines of `path`, the `what` file (an error if it has none).
pub(crate) fn read_lines(path: &Path, what: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        bail!("the {what} file {} has no text", path.display());
    }
    Ok(lines)
}

/// `--method tucker2` needs one rank for the shared factors; the rank rules that differ per layer
/// do not apply.
fn tucker2_plan(args: &Args, default_patterns: &[&str]) -> Result<(Plan, Tucker2Options)> {
    let Some(rank) = args.rank else {
        bail!("--method tucker2 takes --rank R (the shared factors' rank), not --keep or --energy");
    };
    if args.calibration.is_some() {
        bail!("--method tucker2 reads no calibration; drop --calibration");
    }
    let sharing: Sharing = args.sharing.parse()?;
    let options = Tucker2Options::new(rank).sharing(sharing);
    let options = match args.head_rank {
        Some(head_rank) => options.per_head(attention_heads(&args.model)?, head_rank),
        None => options,
    };
    let patterns: Vec<String> = if args.patterns.is_empty() {
        default_patterns.iter().map(|p| p.to_string()).collect()
    } else {
        args.patterns.clone()
    };
    let plan = Plan::new(RankRule::Fixed(rank)).select(patterns);
    let plan = if args.blocks.is_empty() {
        plan
    } else {
        plan.layers(args.blocks.iter().copied())
    };
    Ok((plan, options))
}

/// The attention heads config.json gives (`num_attention_heads` for BERT, the encoder's and
/// decoder's, which must agree, for BART).
fn attention_heads(dir: &Path) -> Result<usize> {
    let path = dir.join("config.json");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    let read = |key: &str| config[key].as_u64().map(|n| n as usize);
    match (
        read("num_attention_heads"),
        read("encoder_attention_heads"),
        read("decoder_attention_heads"),
    ) {
        (Some(heads), _, _) => Ok(heads),
        (None, Some(encoder), Some(decoder)) if encoder == decoder => Ok(encoder),
        (None, Some(encoder), Some(decoder)) => bail!(
            "--head-rank needs one head count, but the encoder has {encoder} heads and the \
             decoder {decoder}"
        ),
        _ => bail!("{} gives no attention head count", path.display()),
    }
}

fn tucker2_bart(args: &Args) -> Result<()> {
    let mut model = Bart::from_dir(&args.model, DType::F32, &Device::Cpu)
        .with_context(|| format!("cannot load BART from {}", args.model.display()))?;
    let (plan, options) = tucker2_plan(args, &BART_ATTENTION)?;
    let report = compress_tucker2(&mut model, &plan, &options)?;
    finish(args, &model, &report)
}

fn tucker2_encoder(args: &Args) -> Result<()> {
    let original = load_encoder(&args.model)?;
    let mut model = original.clone();
    let (plan, options) = tucker2_plan(args, &["*.attention.*"])?;
    let report = compress_tucker2(&mut model, &plan, &options)?;
    finish(args, &model, &report)?;
    print_cosines(args, &original, &model)
}

const BART_ATTENTION: [&str; 4] = ["*.q_proj", "*.k_proj", "*.v_proj", "*.out_proj"];

fn load_encoder(dir: &Path) -> Result<SentenceEncoder> {
    SentenceEncoder::from_dir(dir, DType::F32, &Device::Cpu)
        .with_context(|| format!("cannot load a sentence encoder from {}", dir.display()))
}

fn compress_bart(args: &Args, rule: RankRule) -> Result<()> {
    let mut model = Bart::from_dir(&args.model, DType::F32, &Device::Cpu)
        .with_context(|| format!("cannot load BART from {}", args.model.display()))?;
    let plan = plan(args, rule, &BART_ATTENTION)?;
    let texts = calibration_texts(args)?;
    let calibration = if texts.is_empty() {
        None
    } else {
        let tokenizer = models::tokenizer::Tokenizer::from_dir(&args.model)?;
        // Each text alone (no padding rows), read by the encoder and, teacher-forced, the decoder.
        let calibration = calibrate(&mut model, &plan, |model| {
            for text in &texts {
                let ids = tokenizer.encode_batch(&[text.as_str()], true)?;
                model.forward(&ids.input_ids, &ids.attention_mask, &ids.input_ids)?;
            }
            Ok(())
        })?;
        Some(calibration)
    };
    let report = match allocation(args, rule)? {
        Some(Sensitivity::Measured(_)) => {
            bail!("--allocate measured scores sentence encoders; use spectral or relative for BART")
        }
        Some(sensitivity) => allocate(&mut model, &plan, rule, sensitivity, calibration.as_ref())?,
        None => compress_plan(&mut model, &plan, calibration.as_ref())?,
    };
    finish(args, &model, &report)
}

fn compress_encoder(args: &Args, rule: RankRule) -> Result<()> {
    let original = load_encoder(&args.model)?;
    let mut model = original.clone();
    let plan = plan(args, rule, &["*.attention.*"])?;
    let texts = calibration_texts(args)?;
    let calibration = if texts.is_empty() {
        None
    } else {
        // One text a pass, so no padding rows enter the statistics.
        Some(calibrate(&mut model, &plan, |model| {
            for text in &texts {
                model.embed(&[text.as_str()])?;
            }
            Ok(())
        })?)
    };
    let report = match allocation(args, rule)? {
        Some(Sensitivity::Measured(_)) => {
            let Some(path) = &args.probe else {
                bail!("--allocate measured needs --probe FILE (texts to measure damage on)");
            };
            let probe_texts = read_lines(path, "probe")?;
            let probes = encoder_damage(
                &original,
                &mut model,
                &plan,
                calibration.as_ref(),
                &probe_texts,
            )?;
            allocate(
                &mut model,
                &plan,
                rule,
                Sensitivity::Measured(probes),
                calibration.as_ref(),
            )?
        }
        Some(sensitivity) => allocate(&mut model, &plan, rule, sensitivity, calibration.as_ref())?,
        None => compress_plan(&mut model, &plan, calibration.as_ref())?,
    };
    finish(args, &model, &report)?;
    print_cosines(args, &original, &model)
}

fn compress_plan<M: models::Linears>(
    model: &mut M,
    plan: &Plan,
    calibration: Option<&Calibration>,
) -> Result<Report> {
    Ok(match calibration {
        Some(calibration) => compress_model_calibrated(model, plan, calibration)?,
        None => compress_model(model, plan)?,
    })
}

/// `--allocate`, checked against the rank rule: a budget needs --keep.
fn allocation(args: &Args, rule: RankRule) -> Result<Option<Sensitivity>> {
    let Some(name) = &args.allocate else {
        if args.probe.is_some() {
            bail!("--probe is for --allocate measured");
        }
        return Ok(None);
    };
    if !matches!(rule, RankRule::ParamRatio(_)) {
        bail!("--allocate shares out a budget: give it with --keep, not --rank or --energy");
    }
    Ok(Some(match name.as_str() {
        "spectral" => Sensitivity::Spectral,
        "relative" => Sensitivity::Relative,
        "measured" => Sensitivity::Measured(Vec::new()),
        other => bail!("--allocate {other:?}: use spectral, relative or measured"),
    }))
}

/// Per-layer ranks for the --keep budget, then the compression they give.
pub(crate) fn allocate<M: models::Linears>(
    model: &mut M,
    plan: &Plan,
    rule: RankRule,
    sensitivity: Sensitivity,
    calibration: Option<&Calibration>,
) -> Result<Report> {
    let RankRule::ParamRatio(keep) = rule else {
        bail!("--allocate needs --keep");
    };
    let spectra = layer_spectra(model, plan, calibration)?;
    let allocation = allocate_ranks(&spectra, keep, &sensitivity)?;
    let dense = allocation
        .layers
        .iter()
        .filter(|l| l.rank.is_none())
        .count();
    let ranks: Vec<usize> = allocation.layers.iter().filter_map(|l| l.rank).collect();
    println!(
        "allocation ({sensitivity}): {} of {} layers factorized at ranks {}–{}, {dense} kept dense; \
         {} → {} weights",
        ranks.len(),
        allocation.layers.len(),
        ranks.iter().min().copied().unwrap_or(0),
        ranks.iter().max().copied().unwrap_or(0),
        allocation.weights_before(),
        allocation.weights_after()
    );
    Ok(compress_with_allocation(model, &allocation, calibration)?)
}

/// Each selected layer's damage alone (`1 − mean embedding cosine` to `original` on `probe_texts`)
/// for `--allocate measured`; `lowrank findings` uses it too.
pub(crate) fn encoder_damage(
    original: &SentenceEncoder,
    model: &mut SentenceEncoder,
    plan: &Plan,
    calibration: Option<&Calibration>,
    probe_texts: &[String],
) -> Result<Vec<compress::Probe>> {
    let refs: Vec<&str> = probe_texts.iter().map(String::as_str).collect();
    let reference = original.embed(&refs)?;
    Ok(measure_sensitivity(model, plan, calibration, |m| {
        let embedded = m.embed(&refs).map_err(compress::Error::from)?;
        let cosines = eval::similarity::tensor_cosines(&reference, &embedded).map_err(|e| {
            compress::Error::Calibration {
                reason: e.to_string(),
            }
        })?;
        // A layer that changes nothing measurable still counts a little.
        Ok((1.0 - cosines.mean).max(1e-9))
    })?)
}

/// The embedding cosines of the compressed encoder to the original on --text, if given.
fn print_cosines(args: &Args, original: &SentenceEncoder, model: &SentenceEncoder) -> Result<()> {
    if !args.text.is_empty() {
        let texts: Vec<&str> = args.text.iter().map(String::as_str).collect();
        let cosines =
            eval::similarity::tensor_cosines(&original.embed(&texts)?, &model.embed(&texts)?)?;
        println!("embedding cosine to the original: mean {:.4}", cosines.mean);
        for (text, cosine) in args.text.iter().zip(&cosines.rows) {
            println!("  {cosine:.4}  {text}");
        }
    }
    Ok(())
}

fn finish<M: models::Linears>(args: &Args, model: &M, report: &Report) -> Result<()> {
    print!("{report}");
    save_compressed(model, report, &args.model, &args.out)
        .with_context(|| format!("cannot save the compressed model to {}", args.out.display()))?;
    println!("compressed model written to {}", args.out.display());
    Ok(())
}
