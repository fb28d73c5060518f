//! Latency cut per parameter removed: BART-base (synthetic weights) with every attention
//! projection (q, k, v, out_proj of encoder self-attention, decoder self-attention and
//! cross-attention: 72 layers of 768×768) replaced by a rank-r factorization keeping a fraction of
//! its parameters, timed against the dense model in the same run.
//!
//! usage: cargo run --release -p compress --example bench_latency -- \
//!            --device cpu|cuda --dtype f32|bf16|f16 [--out results.json] [--quick] \
//!            [--keeps 1,0.9,0.75,0.5,0.25,0.1] [--factors svd|random] \
//!            [--align N] [--only gemm,proj,encoder,forward,generate] [--batch B] [--seq S] \
//!            [--dec-len T] [--gen-batch B] [--gen-in S] [--new-tokens N] [--warmup W] [--iters N]
//!
//! Factors (`--factors`):
//! - `svd` (default): `compress::compress_model` with
//!   `Plan::new(RankRule::ParamRatio(keep)).select(["*.q_proj", "*.k_proj", "*.v_proj",
//!   "*.out_proj"])`, a plain truncated SVD of each weight (72 SVDs of 768×768 in f64 per kept
//!   fraction, on the CPU whatever the device);
//! - `random`: the same ranks (`RankRule::rank_for`) with Gaussian `U`, `V` built on the device,
//!   swapped in by `models::linear::replace`. Speed depends on shapes, not values, so this times
//!   the same work without the SVDs (the CPU run of BENCHMARKS.md measures both).
//!
//! `--align N` rounds every rank down to a multiple of N (at least N), the rank then given to
//! both paths as `RankRule::Fixed`: GPU GEMM kernels want leading dimensions that are multiples
//! of 8 (bf16 tensor cores) or more.
//!
//! Sections (`--only` picks some; all by default), each at every kept fraction:
//! - `gemm`: the bare products of the 72 attention projections on (batch·seq, 768) activations,
//!   `x·Wᵀ` or `(x·Vᵀ)·Uᵀ`, without bias or reshapes;
//! - `proj`: the 72 attention projections alone, applied one after another to the same
//!   (batch·seq, 768) activations: the part of the model that compression touches;
//! - `encoder`: the encoder on batch × seq tokens;
//! - `forward`: the teacher-forced forward (encoder, then decoder on batch × dec-len tokens, LM
//!   head included);
//! - `generate`: greedy generation of exactly `new-tokens` tokens (`min_new_tokens =
//!   max_new_tokens`) with the KV cache, gen-batch × gen-in input tokens.
//!
//! Timing: every model is built first; then each section warms every model up `warmup` times, and
//! runs `iters` rounds, each timing every model once (the order rotates each round, so drift and
//! turbo do not favour one model), each call ended by `device.synchronize()` (as in
//! crates/models/examples/bench_models.rs). Median and p90 are `eval::timing`'s (numpy's linear
//! percentiles). The FLOP cut is the ideal: matmul FLOPs only (projections, attention scores and
//! values, FFN, LM head), no softmax, LayerNorm or launch overhead.
//!
//! Table, per section and kept fraction: attention parameters removed (%), whole-model parameters
//! removed (%, torch's `parameters()` count, embeddings included), median and p90 latency, latency
//! cut (%), FLOP cut (%), and latency cut per 1% of attention / whole-model parameters removed.
//! JSON (`--out`, written atomically) holds the same plus every sample.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use compress::{Plan, RankRule, compress_model};
use eval::timing::Latency;
use models::bart::{Bart, Config as BartConfig, synthetic_weights};
use models::generation::{GenerationConfig, generate};
use models::{Linear, Linears, linear};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};

const USAGE: &str = "usage: bench_latency --device cpu|cuda --dtype f32|bf16|f16 [--out FILE] \
[--quick] [--keeps 1,0.9,0.75,0.5,0.25,0.1] [--factors svd|random] [--align N] \
[--only gemm,proj,encoder,forward,generate] [--batch B] [--seq S] [--dec-len T] [--gen-batch B] \
[--gen-in S] [--new-tokens N] [--warmup W] [--iters N]";

const SECTIONS: [&str; 5] = ["gemm", "proj", "encoder", "forward", "generate"];
const ATTENTION: [&str; 4] = ["*.q_proj", "*.k_proj", "*.v_proj", "*.out_proj"];
const DEFAULT_KEEPS: [f64; 6] = [1.0, 0.9, 0.75, 0.5, 0.25, 0.1];
/// The compression issue's target: latency cut per 1% of attention parameters removed.
const TARGET_PER_PERCENT: f64 = 0.8;

/// Seed of the deterministic input ids (the same salt and formula as bench_models).
const SALT_IDS: u64 = 1 << 32;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let parsed = match Args::parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("bench_latency: error: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&parsed, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_latency: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------- arguments and sizes

#[derive(Debug, Clone, Copy, PartialEq)]
enum Factors {
    Svd,
    Random,
}

#[derive(Debug)]
struct Args {
    cuda: bool,
    dtype: DType,
    out: Option<PathBuf>,
    keeps: Vec<f64>,
    factors: Factors,
    align: usize,
    only: Vec<String>,
    sizes: Sizes,
}

/// Batch sizes, lengths and repetitions.
#[derive(Debug, Clone)]
struct Sizes {
    batch: usize,
    seq: usize,
    dec_len: usize,
    gen_batch: usize,
    gen_in: usize,
    new_tokens: usize,
    warmup: usize,
    iters: usize,
}

impl Sizes {
    /// CPU defaults finish in a few minutes on two cores; `quick` is a smoke run.
    fn defaults(cuda: bool, quick: bool) -> Self {
        match (cuda, quick) {
            (false, false) => Sizes {
                batch: 4,
                seq: 128,
                dec_len: 32,
                gen_batch: 1,
                gen_in: 64,
                new_tokens: 16,
                warmup: 1,
                iters: 5,
            },
            (false, true) => Sizes {
                batch: 1,
                seq: 64,
                dec_len: 16,
                gen_batch: 1,
                gen_in: 32,
                new_tokens: 8,
                warmup: 1,
                iters: 3,
            },
            (true, false) => Sizes {
                batch: 16,
                seq: 256,
                dec_len: 64,
                gen_batch: 1,
                gen_in: 256,
                new_tokens: 64,
                warmup: 3,
                iters: 20,
            },
            (true, true) => Sizes {
                batch: 4,
                seq: 128,
                dec_len: 32,
                gen_batch: 1,
                gen_in: 64,
                new_tokens: 16,
                warmup: 2,
                iters: 10,
            },
        }
    }
}

impl Args {
    fn parse(args: &[String]) -> Result<Self> {
        let mut device = None;
        let mut dtype = None;
        let mut out = None;
        let mut quick = false;
        let mut keeps = DEFAULT_KEEPS.to_vec();
        let mut factors = Factors::Svd;
        let mut align = 1;
        let mut only: Vec<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
        let mut overrides: Vec<(String, usize)> = Vec::new();
        let mut iter = args.iter();
        while let Some(flag) = iter.next() {
            let mut value = || {
                iter.next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--device" => device = Some(value()?),
                "--dtype" => dtype = Some(value()?),
                "--out" => out = Some(PathBuf::from(value()?)),
                "--quick" => quick = true,
                "--keeps" => {
                    keeps = value()?
                        .split(',')
                        .map(|s| {
                            s.trim()
                                .parse::<f64>()
                                .with_context(|| format!("--keeps: {s:?} is not a number"))
                        })
                        .collect::<Result<_>>()?;
                    if let Some(bad) = keeps.iter().find(|&&k| !(k > 0.0 && k <= 1.0)) {
                        bail!("--keeps: {bad} is not in (0, 1]");
                    }
                }
                "--factors" => {
                    factors = match value()?.as_str() {
                        "svd" => Factors::Svd,
                        "random" => Factors::Random,
                        other => bail!("--factors {other:?}: use svd or random"),
                    }
                }
                "--align" => {
                    let text = value()?;
                    align = text
                        .parse()
                        .ok()
                        .filter(|&n: &usize| n >= 1)
                        .with_context(|| format!("--align {text:?} is not a count ≥ 1"))?;
                }
                "--only" => {
                    only = value()?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if let Some(bad) = only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                        bail!(
                            "--only: unknown section {bad:?} (use {})",
                            SECTIONS.join(",")
                        );
                    }
                }
                "--batch" | "--seq" | "--dec-len" | "--gen-batch" | "--gen-in" | "--new-tokens"
                | "--warmup" | "--iters" => {
                    let text = value()?;
                    let n: usize = text
                        .parse()
                        .with_context(|| format!("{flag} {text:?} is not a count"))?;
                    if n == 0 && flag != "--warmup" {
                        bail!("{flag} must be at least 1");
                    }
                    overrides.push((flag.clone(), n));
                }
                other => bail!("unknown argument {other:?}"),
            }
        }
        let cuda = match device.as_deref() {
            Some("cpu") => false,
            Some("cuda") => true,
            Some(other) => bail!("--device {other:?}: use cpu or cuda"),
            None => bail!("--device is required"),
        };
        let dtype = match dtype.as_deref() {
            Some("f32") => DType::F32,
            Some("bf16") => DType::BF16,
            Some("f16") => DType::F16,
            Some(other) => bail!("--dtype {other:?}: use f32, bf16 or f16"),
            None => bail!("--dtype is required"),
        };
        let mut sizes = Sizes::defaults(cuda, quick);
        for (flag, n) in overrides {
            let slot = match flag.as_str() {
                "--batch" => &mut sizes.batch,
                "--seq" => &mut sizes.seq,
                "--dec-len" => &mut sizes.dec_len,
                "--gen-batch" => &mut sizes.gen_batch,
                "--gen-in" => &mut sizes.gen_in,
                "--new-tokens" => &mut sizes.new_tokens,
                "--warmup" => &mut sizes.warmup,
                _ => &mut sizes.iters,
            };
            *slot = n;
        }
        // The dense model is the baseline: always measured, first.
        keeps.retain(|&k| k < 1.0);
        keeps.sort_by(|a, b| b.total_cmp(a));
        keeps.dedup();
        keeps.insert(0, 1.0);
        Ok(Args {
            cuda,
            dtype,
            out,
            keeps,
            factors,
            align,
            only,
            sizes,
        })
    }

    fn wants(&self, section: &str) -> bool {
        self.only.iter().any(|s| s == section)
    }
}

fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        _ => "other",
    }
}

fn progress(message: &str) {
    eprintln!("[bench_latency] {message}");
}

// ---------------------------------------------------------------- models

/// One model of the sweep: the dense baseline or a compressed copy.
struct Variant {
    keep: f64,
    model: Bart,
    /// Rank of the first compressed layer (all share one shape, so one rank); `None` when dense.
    rank: Option<usize>,
    attention_params: usize,
    model_params: usize,
    /// Seconds spent factorizing (SVD or random factors).
    build_seconds: f64,
}

fn load_bart_base(device: &Device, dtype: DType) -> Result<Bart> {
    let cfg = BartConfig::bart_base();
    let weights =
        synthetic_weights(&cfg, device).context("building synthetic BART-base weights")?;
    Bart::load(VarBuilder::from_tensors(weights, dtype, device), &cfg).context("loading BART-base")
}

fn attention_names(model: &Bart) -> Result<Vec<String>> {
    Ok(Plan::new(RankRule::Fixed(1))
        .select(ATTENTION)
        .resolve(model)?)
}

fn attention_params(model: &Bart, names: &[String]) -> Result<usize> {
    names
        .iter()
        .map(|name| Ok(linear::find(model, name)?.parameter_count()))
        .sum()
}

/// A copy of `dense` (sharing every tensor it does not replace) with its attention projections
/// factorized to keep `keep` of their parameters.
fn compressed(
    dense: &Bart,
    names: &[String],
    keep: f64,
    factors: Factors,
    align: usize,
    seed: u64,
) -> Result<(Bart, usize)> {
    let mut model = dense.clone();
    let mut rule = RankRule::ParamRatio(keep);
    if align > 1 {
        let mut ranks = names
            .iter()
            .map(|name| Ok(rule.rank_for(&linear::find(dense, name)?.effective_weight()?)?))
            .collect::<Result<Vec<usize>>>()?;
        ranks.dedup();
        let [rank] = ranks[..] else {
            bail!("--align needs layers of one shape; the ranks would be {ranks:?}");
        };
        rule = RankRule::Fixed((rank / align * align).max(align));
    }
    let mut rank = None;
    match factors {
        Factors::Svd => {
            let plan = Plan::new(rule).select(ATTENTION);
            let report = compress_model(&mut model, &plan)
                .with_context(|| format!("compressing to {keep} of the attention parameters"))?;
            if report.layers.len() != names.len() {
                bail!(
                    "the plan selected {} layers, expected {}",
                    report.layers.len(),
                    names.len()
                );
            }
            rank = report.layers.first().map(|l| l.rank);
        }
        Factors::Random => {
            for (i, name) in names.iter().enumerate() {
                let (u, v, bias) = {
                    let Linear::Dense(layer) = linear::find(&model, name)? else {
                        bail!("{name} is not dense");
                    };
                    let r = rule.rank_for(&layer.weight)?;
                    rank.get_or_insert(r);
                    let (out_dim, in_dim) = layer.weight.dims2()?;
                    let (device, dtype) = (layer.weight.device(), layer.weight.dtype());
                    // Entries N(0, s²) give U·V entries of standard deviation s²·√r; match the
                    // dense weight's (uniform in ±0.02, sd 0.0115) so activations stay alike.
                    let s = (0.0115 / (r as f64).sqrt()).sqrt() as f32;
                    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(i as u64));
                    let normal = Normal::new(0f32, s)?;
                    let mut factor = |rows: usize, cols: usize| -> Result<Tensor> {
                        let values: Vec<f32> =
                            (0..rows * cols).map(|_| normal.sample(&mut rng)).collect();
                        Ok(Tensor::from_vec(values, (rows, cols), device)?.to_dtype(dtype)?)
                    };
                    let u = factor(out_dim, r)?;
                    let v = factor(r, in_dim)?;
                    (u, v, layer.bias.clone())
                };
                linear::replace(&mut model, name, Linear::low_rank(u, v, bias)?)?;
            }
        }
    }
    Ok((model, rank.context("no layer was compressed")?))
}

fn build_variants(args: &Args, device: &Device) -> Result<Vec<Variant>> {
    progress("building BART-base with synthetic weights");
    let dense = load_bart_base(device, args.dtype)?;
    let names = attention_names(&dense)?;
    progress(&format!(
        "{} attention projections, {} attention parameters, {} parameters in all",
        names.len(),
        attention_params(&dense, &names)?,
        dense.parameter_count()
    ));
    let mut variants = Vec::with_capacity(args.keeps.len());
    for (i, &keep) in args.keeps.iter().enumerate() {
        let start = Instant::now();
        let (model, rank) = if keep >= 1.0 {
            (dense.clone(), None)
        } else {
            let (model, rank) = compressed(
                &dense,
                &names,
                keep,
                args.factors,
                args.align,
                1000 * i as u64,
            )?;
            (model, Some(rank))
        };
        device.synchronize()?;
        let build_seconds = start.elapsed().as_secs_f64();
        let variant = Variant {
            keep,
            rank,
            attention_params: attention_params(&model, &names)?,
            model_params: model.parameter_count(),
            model,
            build_seconds,
        };
        progress(&format!(
            "keep {keep}: rank {}, {} attention parameters, {:.1} s to factorize",
            rank.map_or("dense".into(), |r| r.to_string()),
            variant.attention_params,
            build_seconds
        ));
        variants.push(variant);
    }
    Ok(variants)
}

// ---------------------------------------------------------------- inputs and FLOPs

/// One output of SplitMix64 seeded with `x`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Ids (b, len) in [5, vocab) and an all-ones mask, on `device`.
fn bart_inputs(
    batch: usize,
    len: usize,
    vocab: usize,
    salt: u64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let span = (vocab - 5) as u64;
    let ids: Vec<u32> = (0..(batch * len) as u64)
        .map(|i| 5 + (splitmix64(SALT_IDS + salt + i) % span) as u32)
        .collect();
    let ids = Tensor::from_vec(ids, (batch, len), device)?;
    let mask = Tensor::ones((batch, len), DType::U32, device)?;
    Ok((ids, mask))
}

/// Matmul FLOPs of one section's call (0 where not modelled): each `Linear` by its own
/// `flops_per_token` (so factorized layers count two thin products), attention's QKᵀ and
/// weights·V (4·keys·d per query per layer), the LM head (2·d·vocab per decoder token).
fn flops(model: &Bart, section: &str, sizes: &Sizes) -> f64 {
    let cfg = model.config();
    let d = cfg.d_model as f64;
    let (b, s, t) = (sizes.batch as f64, sizes.seq as f64, sizes.dec_len as f64);
    let per_token = |prefix: &str, skip_cross_kv: bool| -> f64 {
        model
            .linears()
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .filter(|(name, _)| {
                !(skip_cross_kv
                    && (name.ends_with("encoder_attn.k_proj")
                        || name.ends_with("encoder_attn.v_proj")))
            })
            .map(|(_, l)| l.flops_per_token() as f64)
            .sum()
    };
    let cross_kv: f64 = model
        .linears()
        .iter()
        .filter(|(name, _)| {
            name.ends_with("encoder_attn.k_proj") || name.ends_with("encoder_attn.v_proj")
        })
        .map(|(_, l)| l.flops_per_token() as f64)
        .sum();
    let attention =
        |queries: f64, keys: f64, layers: usize| 4.0 * queries * keys * d * layers as f64;
    let encoder = b * s * per_token("encoder.", false) + b * attention(s, s, cfg.encoder_layers);
    match section {
        "proj" | "gemm" => {
            let all: f64 = model
                .linears()
                .iter()
                .filter(|(name, _)| ATTENTION.iter().any(|p| name.ends_with(&p[1..])))
                .map(|(_, l)| l.flops_per_token() as f64)
                .sum();
            b * s * all
        }
        "encoder" => encoder,
        "forward" => {
            encoder
                + b * t * per_token("decoder.", true)
                + b * s * cross_kv
                + b * attention(t, t, cfg.decoder_layers)
                + b * attention(t, s, cfg.decoder_layers)
                + b * t * 2.0 * d * cfg.vocab_size as f64
        }
        _ => 0.0,
    }
}

// ---------------------------------------------------------------- timing

/// Warms each of `n` variants up, then times `iters` rounds of one call per variant (the order
/// rotating each round); `call(i)` runs variant `i`.
fn time_section(
    n: usize,
    device: &Device,
    sizes: &Sizes,
    mut call: impl FnMut(usize) -> Result<()>,
) -> Result<Vec<Latency>> {
    for i in 0..n {
        for _ in 0..sizes.warmup {
            call(i)?;
        }
    }
    device.synchronize()?;
    let mut samples = vec![Vec::with_capacity(sizes.iters); n];
    for round in 0..sizes.iters {
        for k in 0..n {
            let i = (round + k) % n;
            let start = Instant::now();
            call(i)?;
            device.synchronize()?;
            samples[i].push(start.elapsed().as_secs_f64());
        }
    }
    samples
        .into_iter()
        .map(|s| Latency::from_samples(s, sizes.warmup).map_err(Into::into))
        .collect()
}

fn section_rows(
    section: &str,
    variants: &[Variant],
    latencies: &[Latency],
    sizes: &Sizes,
) -> Vec<Value> {
    let dense = &variants[0];
    let base = &latencies[0];
    let base_flops = flops(&dense.model, section, sizes);
    variants
        .iter()
        .zip(latencies)
        .map(|(v, lat)| {
            let attn_removed =
                100.0 * (1.0 - v.attention_params as f64 / dense.attention_params as f64);
            let model_removed = 100.0 * (1.0 - v.model_params as f64 / dense.model_params as f64);
            let cut = 100.0 * (1.0 - lat.median / base.median);
            let f = flops(&v.model, section, sizes);
            let flop_cut = (base_flops > 0.0).then(|| 100.0 * (1.0 - f / base_flops));
            let per = |removed: f64| (removed > 0.0).then(|| cut / removed);
            json!({
                "section": section,
                "keep": v.keep,
                "rank": v.rank,
                "attention_params": v.attention_params,
                "model_params": v.model_params,
                "attention_removed_pct": attn_removed,
                "model_removed_pct": model_removed,
                "median_s": lat.median,
                "p90_s": lat.p90,
                "min_s": lat.min,
                "latency_cut_pct": cut,
                "gflops": (f > 0.0).then_some(f / 1e9),
                "flop_cut_pct": flop_cut,
                "cut_per_pct_attention": per(attn_removed),
                "cut_per_pct_model": per(model_removed),
                "target_met": per(attn_removed).map(|p| p >= TARGET_PER_PERCENT),
                "latency": lat,
            })
        })
        .collect()
}

// ---------------------------------------------------------------- the run

fn open_device(cuda: bool) -> Result<Device> {
    if !cuda {
        return Ok(Device::Cpu);
    }
    if !candle_core::utils::cuda_is_available() {
        bail!(
            "--device cuda needs candle's cuda feature: build with `cargo build --release -p \
             compress --features models/cuda --example bench_latency` (see ../shared/cuda/README.md)"
        );
    }
    Device::new_cuda(0).context("cannot open CUDA device 0")
}

fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "cpu".into()),
        _ => std::process::Command::new("nvidia-smi")
            .args(["--query-gpu=name", "--format=csv,noheader", "-i", "0"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "cuda".into()),
    }
}

fn run(args: &Args, raw_args: &[String]) -> Result<()> {
    let device = open_device(args.cuda)?;
    let sizes = &args.sizes;
    let factors_name = match args.factors {
        Factors::Svd => "svd",
        Factors::Random => "random",
    };
    let mut report = json!({
        "tool": "candle",
        "device": if args.cuda { "cuda" } else { "cpu" },
        "device_name": device_name(&device),
        "dtype": dtype_name(args.dtype),
        "threads": candle_core::utils::get_num_threads(),
        "rayon_num_threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "factors": factors_name,
        "align": args.align,
        "sizes": {
            "batch": sizes.batch, "seq": sizes.seq, "dec_len": sizes.dec_len,
            "gen_batch": sizes.gen_batch, "gen_in": sizes.gen_in,
            "new_tokens": sizes.new_tokens, "warmup": sizes.warmup, "iters": sizes.iters,
        },
        "target_cut_per_pct_attention": TARGET_PER_PERCENT,
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "command": raw_args.join(" "),
        "rows": [],
    });
    progress(&format!(
        "device {} ({}), dtype {}, {} threads, factors {}, keeps {:?}, sizes {:?}",
        report["device"],
        report["device_name"],
        report["dtype"],
        report["threads"],
        report["factors"],
        args.keeps,
        sizes
    ));
    let variants = build_variants(args, &device)?;
    report["build_seconds"] = variants.iter().map(|v| v.build_seconds).collect();
    let vocab = variants[0].model.config().vocab_size;
    let d_model = variants[0].model.config().d_model;

    let mut rows: Vec<Value> = Vec::new();
    let mut finish = |section: &str, latencies: Vec<Latency>, report: &mut Value| -> Result<()> {
        let new = section_rows(section, &variants, &latencies, sizes);
        for row in &new {
            progress(&format!(
                "  {section} keep {}: median {:.2} ms, cut {:.1}%",
                row["keep"],
                1e3 * row["median_s"].as_f64().unwrap_or(f64::NAN),
                row["latency_cut_pct"].as_f64().unwrap_or(f64::NAN)
            ));
        }
        rows.extend(new);
        report["rows"] = Value::Array(rows.clone());
        if let Some(out) = &args.out {
            save_json(out, report)?;
        }
        Ok(())
    };

    if args.wants("gemm") {
        progress(&format!(
            "gemm: the 72 attention products on {} × {} rows, no bias",
            sizes.batch, sizes.seq
        ));
        let xs = (Tensor::randn(0f32, 1.0, (sizes.batch * sizes.seq, d_model), &device)?)
            .to_dtype(args.dtype)?;
        let names = attention_names(&variants[0].model)?;
        // Per variant, per layer: the transposed factors it multiplies by, one or two.
        let factors: Vec<Vec<Vec<Tensor>>> = variants
            .iter()
            .map(|v| {
                names
                    .iter()
                    .map(|n| match linear::find(&v.model, n)? {
                        Linear::Dense(d) => Ok(vec![d.weight.t()?]),
                        Linear::LowRank(l) => Ok(vec![l.v.t()?, l.u.t()?]),
                        other => bail!("{n} is {}, neither dense nor low-rank", other.kind()),
                    })
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?;
        let latencies = time_section(variants.len(), &device, sizes, |i| {
            for layer in &factors[i] {
                let mut ys = xs.clone();
                for f in layer {
                    ys = ys.matmul(f)?;
                }
            }
            Ok(())
        })?;
        finish("gemm", latencies, &mut report)?;
    }
    if args.wants("proj") {
        progress(&format!(
            "proj: 72 attention projections on {} × {} tokens",
            sizes.batch, sizes.seq
        ));
        let xs = (Tensor::randn(0f32, 1.0, (sizes.batch, sizes.seq, d_model), &device)?)
            .to_dtype(args.dtype)?;
        let names = attention_names(&variants[0].model)?;
        let layers: Vec<Vec<Linear>> = variants
            .iter()
            .map(|v| {
                names
                    .iter()
                    .map(|n| Ok(linear::find(&v.model, n)?.clone()))
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?;
        let latencies = time_section(variants.len(), &device, sizes, |i| {
            for layer in &layers[i] {
                layer.forward(&xs)?;
            }
            Ok(())
        })?;
        finish("proj", latencies, &mut report)?;
    }
    if args.wants("encoder") {
        progress(&format!("encoder: {} × {} tokens", sizes.batch, sizes.seq));
        let (ids, mask) = bart_inputs(sizes.batch, sizes.seq, vocab, 0, &device)?;
        let latencies = time_section(variants.len(), &device, sizes, |i| {
            variants[i].model.encode(&ids, &mask)?;
            Ok(())
        })?;
        finish("encoder", latencies, &mut report)?;
    }
    if args.wants("forward") {
        progress(&format!(
            "forward: {} × ({} + {}) tokens, teacher-forced",
            sizes.batch, sizes.seq, sizes.dec_len
        ));
        let (ids, mask) = bart_inputs(sizes.batch, sizes.seq, vocab, 0, &device)?;
        let (decoder_ids, _) = bart_inputs(sizes.batch, sizes.dec_len, vocab, 1 << 20, &device)?;
        let latencies = time_section(variants.len(), &device, sizes, |i| {
            variants[i].model.forward(&ids, &mask, &decoder_ids)?;
            Ok(())
        })?;
        finish("forward", latencies, &mut report)?;
    }
    if args.wants("generate") {
        let n = sizes.new_tokens;
        progress(&format!(
            "generate: batch {} × {} input tokens, {n} new tokens (greedy, KV cache)",
            sizes.gen_batch, sizes.gen_in
        ));
        let (ids, mask) = bart_inputs(sizes.gen_batch, sizes.gen_in, vocab, 2 << 20, &device)?;
        let config = GenerationConfig {
            max_new_tokens: Some(n),
            min_new_tokens: Some(n),
            num_beams: 1,
            do_sample: false,
            use_cache: true,
            ..GenerationConfig::default()
        };
        let latencies = time_section(variants.len(), &device, sizes, |i| {
            let sequences = generate(&variants[i].model, &ids, &mask, &config)?;
            if sequences.len() != sizes.gen_batch || sequences.iter().any(|s| s.len() != n + 1) {
                bail!("generate returned sequences of the wrong length");
            }
            Ok(())
        })?;
        finish("generate", latencies, &mut report)?;
    }
    print_table(&report);
    if let Some(out) = &args.out {
        save_json(out, &report)?;
        progress(&format!("wrote {}", out.display()));
    }
    Ok(())
}

/// Writes `value` to `path` through a temporary file and a rename.
fn save_json(path: &Path, value: &Value) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(&tmp, text + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

// ---------------------------------------------------------------- table

fn print_table(report: &Value) {
    let sizes = &report["sizes"];
    println!(
        "\nlatency per parameter removed: candle on {} ({}), {}, {} threads, {} factors",
        report["device"].as_str().unwrap_or("?"),
        report["device_name"].as_str().unwrap_or("?"),
        report["dtype"].as_str().unwrap_or("?"),
        report["threads"],
        report["factors"].as_str().unwrap_or("?"),
    );
    println!(
        "proj/encoder: batch {} × seq {}; forward: + decoder {} tokens; generate: batch {} × {} \
         in, {} new; {} warm-up, {} rounds",
        sizes["batch"],
        sizes["seq"],
        sizes["dec_len"],
        sizes["gen_batch"],
        sizes["gen_in"],
        sizes["new_tokens"],
        sizes["warmup"],
        sizes["iters"]
    );
    println!(
        "{:<9} {:>5} {:>5} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9}",
        "section",
        "keep",
        "rank",
        "attn -%",
        "model -%",
        "median ms",
        "p90 ms",
        "cut %",
        "FLOP -%",
        "cut/attn%",
        "cut/mdl%"
    );
    let opt = |v: &Value, width: usize, precision: usize| match v.as_f64() {
        Some(x) => format!("{x:>width$.precision$}"),
        None => format!("{:>width$}", "-"),
    };
    let rows = report["rows"].as_array().cloned().unwrap_or_default();
    let mut last = String::new();
    for r in &rows {
        let section = r["section"].as_str().unwrap_or("?").to_string();
        if section != last && !last.is_empty() {
            println!();
        }
        last.clone_from(&section);
        println!(
            "{:<9} {:>5} {:>5} {:>8.1} {:>8.1} {:>10.2} {:>10.2} {} {} {} {}",
            section,
            r["keep"].as_f64().map_or("?".into(), |k| format!("{k}")),
            r["rank"].as_u64().map_or("dense".into(), |k| k.to_string()),
            r["attention_removed_pct"].as_f64().unwrap_or(f64::NAN),
            r["model_removed_pct"].as_f64().unwrap_or(f64::NAN),
            1e3 * r["median_s"].as_f64().unwrap_or(f64::NAN),
            1e3 * r["p90_s"].as_f64().unwrap_or(f64::NAN),
            opt(&r["latency_cut_pct"], 8, 1),
            opt(&r["flop_cut_pct"], 8, 1),
            opt(&r["cut_per_pct_attention"], 9, 3),
            opt(&r["cut_per_pct_model"], 9, 3),
        );
    }
    println!(
        "\ntarget: latency cut per 1% of attention parameters removed ≥ {TARGET_PER_PERCENT}%"
    );
    for section in SECTIONS {
        let per: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r["section"] == section)
            .filter_map(|r| Some((r["keep"].as_f64()?, r["cut_per_pct_attention"].as_f64()?)))
            .collect();
        if per.is_empty() {
            continue;
        }
        let met: Vec<String> = per
            .iter()
            .filter(|(_, p)| *p >= TARGET_PER_PERCENT)
            .map(|(k, _)| format!("{k}"))
            .collect();
        let best = per
            .iter()
            .map(|(_, p)| *p)
            .fold(f64::NEG_INFINITY, f64::max);
        println!(
            "{section:<9} best {best:.3}% per 1%: {}",
            if met.len() == per.len() {
                "met at every kept fraction".to_string()
            } else if met.is_empty() {
                "missed at every kept fraction".to_string()
            } else {
                format!("met only at keep {}", met.join(", "))
            }
        );
    }
}
