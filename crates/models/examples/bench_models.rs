//! Model benchmarks on candle, the Rust half of a side-by-side run with
//! tests/fixtures/bench_models.py (PyTorch / transformers on the same machine, same sizes).
//!
//! usage: cargo run --release -p models --example bench_models -- \
//!            --device cpu|cuda --dtype f32|bf16|f16 --out results.json \
//!            [--quick] [--minilm DIR] [--only bart,encoder,minilm,matmul,parity] \
//!            [--fixtures DIR] [--reps N]
//!
//! Sections (`--only` picks some; all by default):
//! - `bart`: BART-base greedy generation, exactly `new_tokens` new tokens (`min_new_tokens =
//!   max_new_tokens`, so no early EOS), KV cache on; tokens/s = batch · new_tokens / seconds.
//! - `encoder`: BART-base encoder forward; sequences/s = batch / seconds.
//! - `minilm`: all-MiniLM-L6-v2 `BertModel` forward on pre-built ids (`mode: "forward"`), and,
//!   with `--minilm DIR`, `SentenceEncoder::embed` end to end (tokenize, forward, pool, normalize;
//!   `mode: "encode"`). Without `--minilm` the forward uses synthetic weights (speed only).
//! - `matmul`: an n×n matmul in the run's dtype; 3 warm-up calls, then 5 rounds of 20 calls, each
//!   round ended by `device.synchronize()`; TFLOP/s = 2n³·20 / round time, best and median round.
//! - `parity`: outputs of this device against the CPU float32 references of transformers in
//!   tests/fixtures/models (tiny-bart logits, BART-base synthetic logits, MiniLM embeddings with
//!   `--minilm`), in float32 and in the run's dtype.
//!
//! BART-base uses `synthetic_weights` (hash-defined, no download), cast to the run's dtype. Inputs
//! are deterministic token ids (SplitMix64, reproduced by the Python script); attention masks are
//! all ones. Each timing warms up with one full run (during which peak memory is sampled: peak
//! RSS on the CPU, device memory in use on CUDA), then times `--reps` runs (CUDA 5, CPU 3),
//! synchronizing the device before the clock stops, and reports the median.
//! `--quick` shrinks the sizes for a CPU smoke run (batch 1, 64 input / 32 new tokens, MiniLM
//! batch 64, matmul n = 1024).
//!
//! JSON written to `--out` (atomically, after every section):
//! ```text
//! { "tool": "candle", "device": "cpu"|"cuda", "device_name", "dtype", "quick", "reps", "threads",
//!   "unix_time", "command", "inputs": {"bart_ids_head","minilm_ids_head","sentence_0"},
//!   "bart_generate": [{"batch","input_len","new_tokens","seconds":[..],"seconds_median",
//!                      "tokens_per_s","peak_mem_mib"}],
//!   "bart_encoder":  [{"batch","seq_len","seconds":[..],"seconds_median","sequences_per_s",
//!                      "tokens_per_s","peak_mem_mib"}],
//!   "minilm":        [{"mode":"forward"|"encode","weights":"synthetic"|"real","batch","seq_len",
//!                      "seconds":[..],"seconds_median","sentences_per_s","peak_mem_mib"}],
//!   "matmul":        [{"n","dtype","calls_per_round","round_seconds":[..],"tflops_best",
//!                      "tflops_median"}],
//!   "parity": { "<dtype>": {
//!       "tiny_bart": {"logits_max_abs_diff","logits_max_abs_ref","encoder_max_abs_diff"},
//!       "bart_base_synthetic": {"logits_head_max_abs_diff","logits_head_rel_l2",
//!                               "logits_head_max_abs_ref","logsumexp_max_abs_diff",
//!                               "argmax_agreement","positions"},
//!       "minilm": {"min_cosine","mean_cosine","sentences"} } },
//!   "skipped": ["what was not run and why"] }
//! ```
//! The Python script writes the same keys, per attention implementation
//! (`{"eager": {"bart_generate": .., ..}, "sdpa": {..}}`), with `matmul` at the top.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use models::bart::{Bart, Config as BartConfig, synthetic_values, synthetic_weights};
use models::bert::{BertModel, Config as BertConfig, SentenceEncoder};
use models::generation::{GenerationConfig, generate};
use serde_json::{Value, json};

const USAGE: &str = "usage: bench_models --device cpu|cuda --dtype f32|bf16|f16 --out FILE \
[--quick] [--minilm DIR] [--only bart,encoder,minilm,matmul,parity] [--fixtures DIR] [--reps N]";

const SECTIONS: [&str; 5] = ["bart", "encoder", "minilm", "matmul", "parity"];

/// Seeds of the deterministic inputs; tests/fixtures/bench_models.py uses the same.
const SALT_BART_IDS: u64 = 1 << 32;
const SALT_MINILM_IDS: u64 = 2 << 32;
const SALT_SENTENCES: u64 = 3 << 32;

/// Words that bert-base-uncased keeps whole: 30 of them plus [CLS] and [SEP] make 32 tokens.
const WORDS: [&str; 30] = [
    "the", "card", "has", "not", "arrived", "yet", "my", "account", "was", "charged", "twice",
    "for", "same", "purchase", "at", "store", "how", "do", "i", "reset", "pin", "transfer",
    "money", "to", "bank", "why", "declined", "please", "help", "today",
];
const WORDS_PER_SENTENCE: usize = 30;

const MATMUL_WARMUP: usize = 3;
const MATMUL_ROUNDS: usize = 5;
const MATMUL_CALLS: usize = 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let parsed = match Args::parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("bench_models: error: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&parsed, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_models: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------- arguments and sizes

#[derive(Debug)]
struct Args {
    cuda: bool,
    dtype: DType,
    out: PathBuf,
    quick: bool,
    minilm: Option<PathBuf>,
    only: Vec<String>,
    fixtures: Option<PathBuf>,
    reps: Option<usize>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self> {
        let mut device = None;
        let mut dtype = None;
        let mut out = None;
        let mut quick = false;
        let mut minilm = None;
        let mut only: Vec<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
        let mut fixtures = None;
        let mut reps = None;
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
                "--minilm" => minilm = Some(PathBuf::from(value()?)),
                "--fixtures" => fixtures = Some(PathBuf::from(value()?)),
                "--reps" => {
                    let text = value()?;
                    let n: usize = text
                        .parse()
                        .with_context(|| format!("--reps {text:?} is not a count"))?;
                    if n == 0 {
                        bail!("--reps must be at least 1");
                    }
                    reps = Some(n);
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
        let out = out.context("--out is required")?;
        Ok(Args {
            cuda,
            dtype,
            out,
            quick,
            minilm,
            only,
            fixtures,
            reps,
        })
    }

    fn wants(&self, section: &str) -> bool {
        self.only.iter().any(|s| s == section)
    }
}

/// Lengths and batch sizes; the Python script has the same table.
#[derive(Debug, Clone)]
struct Sizes {
    generate_batches: Vec<usize>,
    input_len: usize,
    new_tokens: usize,
    encoder_batches: Vec<usize>,
    encoder_len: usize,
    minilm_batch: usize,
    minilm_len: usize,
    matmul_ns: Vec<usize>,
    reps: usize,
}

impl Sizes {
    fn new(quick: bool, cuda: bool, reps: Option<usize>) -> Self {
        let default_reps = if cuda { 5 } else { 3 };
        let reps = reps.unwrap_or(default_reps);
        if quick {
            Sizes {
                generate_batches: vec![1],
                input_len: 64,
                new_tokens: 32,
                encoder_batches: vec![1],
                encoder_len: 64,
                minilm_batch: 64,
                minilm_len: 32,
                matmul_ns: vec![1024],
                reps,
            }
        } else {
            Sizes {
                generate_batches: vec![1, 16],
                input_len: 256,
                new_tokens: 128,
                encoder_batches: vec![1, 16],
                encoder_len: 256,
                minilm_batch: 256,
                minilm_len: 32,
                matmul_ns: vec![4096, 8192],
                reps,
            }
        }
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

// ---------------------------------------------------------------- the run

fn run(args: &Args, raw_args: &[String]) -> Result<()> {
    let device = open_device(args.cuda)?;
    let sizes = Sizes::new(args.quick, args.cuda, args.reps);
    let mut report = json!({
        "tool": "candle",
        "device": if args.cuda { "cuda" } else { "cpu" },
        "device_name": device_name(&device),
        "dtype": dtype_name(args.dtype),
        "quick": args.quick,
        "reps": sizes.reps,
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "command": raw_args.join(" "),
        // The first deterministic inputs, to check that the Python side used the same.
        "inputs": {
            "bart_ids_head": token_ids(8, 5, 50265, SALT_BART_IDS),
            "minilm_ids_head": token_ids(8, 1000, 30522, SALT_MINILM_IDS),
            "sentence_0": sentences(1),
        },
        "skipped": [],
    });
    progress(&format!(
        "device {} ({}), dtype {}, sizes {:?}",
        report["device"], report["device_name"], report["dtype"], sizes
    ));
    if args.wants("bart") || args.wants("encoder") {
        progress("loading BART-base with synthetic weights");
        let bart = load_bart_base(&device, args.dtype)?;
        if args.wants("bart") {
            report["bart_generate"] = Value::Array(bench_generate(&bart, &device, &sizes)?);
            save_json(&args.out, &report)?;
        }
        if args.wants("encoder") {
            report["bart_encoder"] = Value::Array(bench_encoder(&bart, &device, &sizes)?);
            save_json(&args.out, &report)?;
        }
        // Dropped here, so the next sections' peak memory does not count it.
    }
    if args.wants("minilm") {
        let rows = bench_minilm(args, &device, &sizes)?;
        report["minilm"] = Value::Array(rows);
        save_json(&args.out, &report)?;
    }
    if args.wants("matmul") {
        let rows = bench_matmul(&device, args.dtype, &sizes)?;
        report["matmul"] = Value::Array(rows);
        save_json(&args.out, &report)?;
    }
    if args.wants("parity") {
        match fixtures_dir(args.fixtures.as_deref()) {
            Some(dir) => {
                let mut parity = json!({});
                let mut dtypes = vec![DType::F32];
                if args.dtype != DType::F32 {
                    dtypes.push(args.dtype);
                }
                for dtype in dtypes {
                    let entry = parity_block(&dir, args.minilm.as_deref(), &device, dtype)?;
                    parity[dtype_name(dtype)] = entry;
                }
                report["parity"] = parity;
            }
            None => skip(
                &mut report,
                "parity: no fixtures directory (give --fixtures DIR)",
            ),
        }
        save_json(&args.out, &report)?;
    }
    if args.wants("minilm") && args.minilm.is_none() {
        skip(
            &mut report,
            "minilm encode (end to end) and minilm parity: no --minilm DIR",
        );
    }
    save_json(&args.out, &report)?;
    print_table(&report);
    progress(&format!("wrote {}", args.out.display()));
    Ok(())
}

fn skip(report: &mut Value, why: &str) {
    progress(&format!("skipped {why}"));
    if let Some(list) = report["skipped"].as_array_mut() {
        list.push(Value::from(why));
    }
}

fn progress(message: &str) {
    eprintln!("[bench_models] {message}");
}

fn open_device(cuda: bool) -> Result<Device> {
    if !cuda {
        return Ok(Device::Cpu);
    }
    if !cfg!(feature = "cuda") {
        bail!(
            "--device cuda needs the cuda feature: build with `cargo build --release -p models \
             --features cuda --example bench_models` (see ../shared/cuda/README.md)"
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
        _ => gpu::name(device).unwrap_or_else(|| "cuda".into()),
    }
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

// ---------------------------------------------------------------- deterministic inputs

/// One output of SplitMix64 seeded with `x` (the same function as the synthetic weights').
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `count` ids in `lo..hi`: `lo + splitmix64(salt + i) % (hi - lo)`.
fn token_ids(count: usize, lo: u32, hi: u32, salt: u64) -> Vec<u32> {
    let span = u64::from(hi - lo);
    (0..count as u64)
        .map(|i| lo + (splitmix64(salt + i) % span) as u32)
        .collect()
}

/// BART inputs (b, len) in [5, vocab) with an all-ones mask, on `device`.
fn bart_inputs(
    batch: usize,
    len: usize,
    vocab: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let ids = token_ids(batch * len, 5, vocab as u32, SALT_BART_IDS);
    let ids = Tensor::from_vec(ids, (batch, len), device)?;
    let mask = Tensor::ones((batch, len), DType::U32, device)?;
    Ok((ids, mask))
}

/// MiniLM inputs: [CLS], `len - 2` ids in [1000, vocab), [SEP], all-ones mask.
fn minilm_inputs(
    batch: usize,
    len: usize,
    vocab: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let body = token_ids(batch * (len - 2), 1000, vocab as u32, SALT_MINILM_IDS);
    let mut ids = Vec::with_capacity(batch * len);
    for row in body.chunks(len - 2) {
        ids.push(101);
        ids.extend_from_slice(row);
        ids.push(102);
    }
    let ids = Tensor::from_vec(ids, (batch, len), device)?;
    let mask = Tensor::ones((batch, len), DType::U32, device)?;
    Ok((ids, mask))
}

/// `count` sentences of 30 words from [`WORDS`].
fn sentences(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            (0..WORDS_PER_SENTENCE)
                .map(|j| {
                    let k = splitmix64(SALT_SENTENCES + (i * WORDS_PER_SENTENCE + j) as u64);
                    WORDS[(k % WORDS.len() as u64) as usize]
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

// ---------------------------------------------------------------- models

fn load_bart_base(device: &Device, dtype: DType) -> Result<Bart> {
    let cfg = BartConfig::bart_base();
    let weights =
        synthetic_weights(&cfg, device).context("building synthetic BART-base weights")?;
    let model = Bart::load(VarBuilder::from_tensors(weights, dtype, device), &cfg)
        .context("loading BART-base")?;
    Ok(model)
}

/// all-MiniLM-L6-v2's parameters with BART's hash formula (`synthetic_values`), LayerNorm weights
/// shifted by 1; the Python script builds the same values.
fn minilm_synthetic(cfg: &BertConfig, device: &Device) -> Result<HashMap<String, Tensor>> {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            vec![cfg.vocab_size, h],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![cfg.max_position_embeddings, h],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![cfg.type_vocab_size, h],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for layer in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{layer}");
        for (name, out_dim, in_dim) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", i, h),
            ("output.dense", h, i),
        ] {
            shapes.push((format!("{p}.{name}.weight"), vec![out_dim, in_dim]));
            shapes.push((format!("{p}.{name}.bias"), vec![out_dim]));
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            shapes.push((format!("{p}.{norm}.weight"), vec![h]));
            shapes.push((format!("{p}.{norm}.bias"), vec![h]));
        }
    }
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let mut values = synthetic_values(&name, shape.iter().product());
            if name.ends_with("LayerNorm.weight") {
                values.iter_mut().for_each(|v| *v += 1.0);
            }
            let tensor = Tensor::from_vec(values, shape, device)?;
            Ok((name, tensor))
        })
        .collect()
}

// ---------------------------------------------------------------- timing

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One warm-up run (sampling peak memory), then `reps` timed runs, each ended by a device
/// synchronization. Returns the seconds of each timed run and the warm-up's peak memory (MiB).
fn time_runs(
    device: &Device,
    reps: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<(Vec<f64>, Option<f64>)> {
    let watch = MemWatch::start(device);
    f()?;
    device.synchronize()?;
    let peak = watch.stop();
    let mut seconds = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        device.synchronize()?;
        seconds.push(start.elapsed().as_secs_f64());
    }
    Ok((seconds, peak))
}

/// Peak memory during a stretch of work: the process's peak RSS on the CPU (VmHWM after resetting
/// it through /proc/self/clear_refs), device memory in use (total − free, every process) on CUDA,
/// polled every millisecond by a thread.
enum MemWatch {
    Cpu,
    Gpu(gpu::Poller),
    None,
}

impl MemWatch {
    fn start(device: &Device) -> Self {
        match device {
            Device::Cpu => {
                // "5" resets the peak RSS to the current RSS (Linux ≥ 4.0); without it VmHWM is
                // the peak since the process started.
                let _ = std::fs::write("/proc/self/clear_refs", "5");
                MemWatch::Cpu
            }
            _ => gpu::Poller::start(device).map_or(MemWatch::None, MemWatch::Gpu),
        }
    }

    fn stop(self) -> Option<f64> {
        match self {
            MemWatch::Cpu => peak_rss_mib(),
            MemWatch::Gpu(poller) => poller.stop(),
            MemWatch::None => None,
        }
    }
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(feature = "cuda")]
mod gpu {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use candle_core::Device;
    use candle_core::cuda::cudarc::driver::CudaContext;

    fn context(device: &Device) -> Option<Arc<CudaContext>> {
        let cuda = device.as_cuda_device().ok()?;
        Some(cuda.cuda_stream().context().clone())
    }

    fn used_bytes(context: &CudaContext) -> Option<u64> {
        let (free, total) = context.mem_get_info().ok()?;
        Some(total.saturating_sub(free) as u64)
    }

    pub fn name(device: &Device) -> Option<String> {
        context(device)?.name().ok()
    }

    pub struct Poller {
        stop: Arc<AtomicBool>,
        handle: JoinHandle<u64>,
    }

    impl Poller {
        pub fn start(device: &Device) -> Option<Self> {
            let context = context(device)?;
            let first = used_bytes(&context)?;
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let handle = std::thread::spawn(move || {
                let mut peak = first;
                while !flag.load(Ordering::Relaxed) {
                    if let Some(used) = used_bytes(&context) {
                        peak = peak.max(used);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                if let Some(used) = used_bytes(&context) {
                    peak = peak.max(used);
                }
                peak
            });
            Some(Poller { stop, handle })
        }

        pub fn stop(self) -> Option<f64> {
            self.stop.store(true, Ordering::Relaxed);
            let peak = self.handle.join().ok()?;
            Some(peak as f64 / (1024.0 * 1024.0))
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod gpu {
    use candle_core::Device;

    pub fn name(_device: &Device) -> Option<String> {
        None
    }

    pub struct Poller;

    impl Poller {
        pub fn start(_device: &Device) -> Option<Self> {
            None
        }

        pub fn stop(self) -> Option<f64> {
            None
        }
    }
}

// ---------------------------------------------------------------- sections

fn bench_generate(model: &Bart, device: &Device, sizes: &Sizes) -> Result<Vec<Value>> {
    let mut rows = Vec::new();
    let n = sizes.new_tokens;
    let config = GenerationConfig {
        max_new_tokens: Some(n),
        min_new_tokens: Some(n),
        num_beams: 1,
        do_sample: false,
        use_cache: true,
        ..GenerationConfig::default()
    };
    for &batch in &sizes.generate_batches {
        progress(&format!(
            "bart generate: batch {batch}, {} input tokens, {n} new tokens",
            sizes.input_len
        ));
        let (ids, mask) = bart_inputs(batch, sizes.input_len, model.config().vocab_size, device)?;
        let mut lengths = Vec::new();
        let (seconds, peak) = time_runs(device, sizes.reps, || {
            let sequences = generate(model, &ids, &mask, &config)?;
            lengths = sequences.iter().map(Vec::len).collect();
            Ok(())
        })?;
        // The start token plus exactly n new tokens in every row.
        if lengths.len() != batch || lengths.iter().any(|&len| len != n + 1) {
            bail!(
                "generate returned sequence lengths {lengths:?}, expected {batch} × {}",
                n + 1
            );
        }
        let t = median(&seconds);
        progress(&format!(
            "  median {t:.3} s, {:.1} tokens/s",
            (batch * n) as f64 / t
        ));
        rows.push(json!({
            "batch": batch, "input_len": sizes.input_len, "new_tokens": n,
            "seconds": seconds, "seconds_median": t,
            "tokens_per_s": (batch * n) as f64 / t, "peak_mem_mib": peak,
        }));
    }
    Ok(rows)
}

fn bench_encoder(model: &Bart, device: &Device, sizes: &Sizes) -> Result<Vec<Value>> {
    let mut rows = Vec::new();
    let len = sizes.encoder_len;
    for &batch in &sizes.encoder_batches {
        progress(&format!("bart encoder: batch {batch}, {len} tokens"));
        let (ids, mask) = bart_inputs(batch, len, model.config().vocab_size, device)?;
        let (seconds, peak) = time_runs(device, sizes.reps, || {
            model.encode(&ids, &mask)?;
            Ok(())
        })?;
        let t = median(&seconds);
        progress(&format!(
            "  median {t:.4} s, {:.1} sequences/s",
            batch as f64 / t
        ));
        rows.push(json!({
            "batch": batch, "seq_len": len, "seconds": seconds, "seconds_median": t,
            "sequences_per_s": batch as f64 / t, "tokens_per_s": (batch * len) as f64 / t,
            "peak_mem_mib": peak,
        }));
    }
    Ok(rows)
}

fn bench_minilm(args: &Args, device: &Device, sizes: &Sizes) -> Result<Vec<Value>> {
    let (batch, len) = (sizes.minilm_batch, sizes.minilm_len);
    let mut rows = Vec::new();
    let (model, encoder, weights) = match &args.minilm {
        Some(dir) => {
            progress(&format!("loading MiniLM from {}", dir.display()));
            let encoder = SentenceEncoder::from_dir(dir, args.dtype, device)
                .with_context(|| format!("loading MiniLM from {}", dir.display()))?
                .with_batch_size(batch);
            (encoder.model().clone(), Some(encoder), "real")
        }
        None => {
            progress("MiniLM with synthetic weights (speed only)");
            let cfg = BertConfig::all_minilm_l6_v2();
            let weights = minilm_synthetic(&cfg, device)?;
            let model =
                BertModel::load(VarBuilder::from_tensors(weights, args.dtype, device), &cfg)
                    .context("loading MiniLM (synthetic)")?;
            (model, None, "synthetic")
        }
    };
    progress(&format!(
        "minilm forward: batch {batch} × {len} tokens ({weights} weights)"
    ));
    let (ids, mask) = minilm_inputs(batch, len, model.config().vocab_size, device)?;
    let (seconds, peak) = time_runs(device, sizes.reps, || {
        model.forward(&ids, &mask, None)?;
        Ok(())
    })?;
    let t = median(&seconds);
    progress(&format!(
        "  median {t:.4} s, {:.1} sentences/s",
        batch as f64 / t
    ));
    rows.push(json!({
        "mode": "forward", "weights": weights, "batch": batch, "seq_len": len,
        "seconds": seconds, "seconds_median": t, "sentences_per_s": batch as f64 / t,
        "peak_mem_mib": peak,
    }));
    if let Some(encoder) = encoder {
        let texts = sentences(batch);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (_, padded_len) = encoder.tokenizer().encode_batch(&refs, true)?.dims()?;
        progress(&format!(
            "minilm encode (end to end): {batch} sentences, {padded_len} tokens padded"
        ));
        let (seconds, peak) = time_runs(device, sizes.reps, || {
            encoder.embed(&refs)?;
            Ok(())
        })?;
        let t = median(&seconds);
        progress(&format!(
            "  median {t:.4} s, {:.1} sentences/s",
            batch as f64 / t
        ));
        rows.push(json!({
            "mode": "encode", "weights": weights, "batch": batch, "seq_len": padded_len,
            "seconds": seconds, "seconds_median": t, "sentences_per_s": batch as f64 / t,
            "peak_mem_mib": peak,
        }));
    }
    Ok(rows)
}

fn bench_matmul(device: &Device, dtype: DType, sizes: &Sizes) -> Result<Vec<Value>> {
    let mut rows = Vec::new();
    for &n in &sizes.matmul_ns {
        progress(&format!("matmul: {n}×{n} {}", dtype_name(dtype)));
        let a = Tensor::randn(0f32, 1.0, (n, n), device)?.to_dtype(dtype)?;
        let b = Tensor::randn(0f32, 1.0, (n, n), device)?.to_dtype(dtype)?;
        for _ in 0..MATMUL_WARMUP {
            a.matmul(&b)?;
        }
        device.synchronize()?;
        let mut round_seconds = Vec::with_capacity(MATMUL_ROUNDS);
        for _ in 0..MATMUL_ROUNDS {
            let start = Instant::now();
            for _ in 0..MATMUL_CALLS {
                a.matmul(&b)?;
            }
            device.synchronize()?;
            round_seconds.push(start.elapsed().as_secs_f64());
        }
        let flops = 2.0 * (n as f64).powi(3) * MATMUL_CALLS as f64;
        let best = round_seconds.iter().copied().fold(f64::INFINITY, f64::min);
        let tflops_best = flops / best / 1e12;
        let tflops_median = flops / median(&round_seconds) / 1e12;
        progress(&format!(
            "  best {tflops_best:.3} TFLOP/s, median {tflops_median:.3}"
        ));
        rows.push(json!({
            "n": n, "dtype": dtype_name(dtype), "calls_per_round": MATMUL_CALLS,
            "round_seconds": round_seconds, "tflops_best": tflops_best,
            "tflops_median": tflops_median,
        }));
    }
    Ok(rows)
}

// ---------------------------------------------------------------- parity

/// `--fixtures`, else the workspace's tests/fixtures/models as compiled, else the same path under
/// the current directory (the GPU machine runs from the repository root).
fn fixtures_dir(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = given {
        return Some(dir.to_path_buf());
    }
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models");
    [compiled, PathBuf::from("tests/fixtures/models")]
        .into_iter()
        .find(|dir| dir.is_dir())
}

fn read_fixture(dir: &Path, name: &str) -> Result<HashMap<String, Tensor>> {
    let path = dir.join(name);
    candle_core::safetensors::load(&path, &Device::Cpu)
        .with_context(|| format!("cannot read fixture {}", path.display()))
}

fn get<'a>(map: &'a HashMap<String, Tensor>, key: &str) -> Result<&'a Tensor> {
    map.get(key)
        .with_context(|| format!("fixture has no tensor {key}"))
}

/// Values of `t` as f32 on the host, flattened.
fn host_values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max)
}

fn max_abs(a: &[f32]) -> f64 {
    a.iter().map(|x| f64::from(x.abs())).fold(0.0, f64::max)
}

fn rel_l2(actual: &[f32], reference: &[f32]) -> f64 {
    let diff: f64 = actual
        .iter()
        .zip(reference)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum();
    let norm: f64 = reference.iter().map(|y| f64::from(*y).powi(2)).sum();
    (diff / norm).sqrt()
}

/// Fixture ids (int64) as u32 on `device`.
fn ids_on(t: &Tensor, device: &Device) -> Result<Tensor> {
    Ok(t.to_dtype(DType::U32)?.to_device(device)?)
}

fn parity_block(dir: &Path, minilm: Option<&Path>, device: &Device, dtype: DType) -> Result<Value> {
    let name = dtype_name(dtype);
    let mut entry = json!({});

    progress(&format!("parity {name}: tiny-bart"));
    let expected = read_fixture(dir, "tiny-bart-forward.safetensors")?;
    let model =
        Bart::from_dir(&dir.join("tiny-bart"), dtype, device).context("loading tiny-bart")?;
    let ids = ids_on(get(&expected, "input_ids")?, device)?;
    let mask = ids_on(get(&expected, "attention_mask")?, device)?;
    let decoder_ids = ids_on(get(&expected, "decoder_input_ids")?, device)?;
    let logits = host_values(&model.forward(&ids, &mask, &decoder_ids)?)?;
    let reference = host_values(get(&expected, "logits")?)?;
    let encoded = host_values(&model.encode(&ids, &mask)?)?;
    let encoded_ref = host_values(get(&expected, "encoder_last_hidden_state")?)?;
    entry["tiny_bart"] = json!({
        "logits_max_abs_diff": max_abs_diff(&logits, &reference),
        "logits_max_abs_ref": max_abs(&reference),
        "encoder_max_abs_diff": max_abs_diff(&encoded, &encoded_ref),
    });

    progress(&format!("parity {name}: bart-base synthetic"));
    let expected = read_fixture(dir, "bart-base-synthetic.safetensors")?;
    let model = load_bart_base(device, dtype)?;
    let ids = ids_on(get(&expected, "input_ids")?, device)?;
    let mask = ids_on(get(&expected, "attention_mask")?, device)?;
    let decoder_ids = ids_on(get(&expected, "decoder_input_ids")?, device)?;
    let logits = model
        .forward(&ids, &mask, &decoder_ids)?
        .to_dtype(DType::F32)?;
    let head_ref = get(&expected, "logits_head")?;
    let columns = head_ref.dim(2)?;
    let head = host_values(&logits.narrow(2, 0, columns)?)?;
    let head_ref = host_values(head_ref)?;
    let vocab = logits.dim(2)?;
    let full = host_values(&logits)?;
    let lse: Vec<f32> = full
        .chunks(vocab)
        .map(|row| {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|&x| f64::from(x - m).exp()).sum();
            (f64::from(m) + sum.ln()) as f32
        })
        .collect();
    let lse_ref = host_values(get(&expected, "logits_logsumexp")?)?;
    let argmax: Vec<i64> = logits
        .argmax(D::Minus1)?
        .to_device(&Device::Cpu)?
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1()?;
    let argmax_ref: Vec<i64> = get(&expected, "logits_argmax")?
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1()?;
    let agree = argmax
        .iter()
        .zip(&argmax_ref)
        .filter(|(a, b)| a == b)
        .count();
    entry["bart_base_synthetic"] = json!({
        "logits_head_max_abs_diff": max_abs_diff(&head, &head_ref),
        "logits_head_rel_l2": rel_l2(&head, &head_ref),
        "logits_head_max_abs_ref": max_abs(&head_ref),
        "logsumexp_max_abs_diff": max_abs_diff(&lse, &lse_ref),
        "argmax_agreement": agree as f64 / argmax_ref.len().max(1) as f64,
        "positions": argmax_ref.len(),
    });

    if let Some(minilm_dir) = minilm {
        progress(&format!("parity {name}: MiniLM embeddings"));
        let meta_path = dir.join("minilm-embeddings.json");
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(&meta_path)
                .with_context(|| format!("cannot read {}", meta_path.display()))?,
        )
        .with_context(|| format!("cannot parse {}", meta_path.display()))?;
        let texts: Vec<String> = serde_json::from_value(meta["sentences"].clone())
            .with_context(|| format!("{}: no sentences list", meta_path.display()))?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        // The fixture was computed from the weights rounded to fp16; round ours alike.
        let encoder = SentenceEncoder::from_dir(minilm_dir, dtype, device)
            .context("loading MiniLM")?
            .with_weights_rounded_to(DType::F16)?
            .with_batch_size(8);
        let actual = encoder.embed(&refs)?.to_device(&Device::Cpu)?;
        let reference = get(
            &read_fixture(dir, "minilm-embeddings.safetensors")?,
            "embeddings",
        )?
        .clone();
        let dot = (&actual * &reference)?.sum(1)?;
        let norms = (actual.sqr()?.sum(1)?.sqrt()? * reference.sqr()?.sum(1)?.sqrt()?)?;
        let cosines: Vec<f32> = (dot / norms)?.to_vec1()?;
        let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
        let mean = cosines.iter().map(|&c| f64::from(c)).sum::<f64>() / cosines.len() as f64;
        entry["minilm"] = json!({
            "min_cosine": min, "mean_cosine": mean, "sentences": cosines.len(),
        });
    }
    Ok(entry)
}

// ---------------------------------------------------------------- table

fn print_table(report: &Value) {
    let num = |v: &Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    let mem = |v: &Value| match v["peak_mem_mib"].as_f64() {
        Some(m) => format!("{m:.0} MiB"),
        None => "-".into(),
    };
    println!(
        "\ncandle on {} ({}), {}",
        report["device"].as_str().unwrap_or("?"),
        report["device_name"].as_str().unwrap_or("?"),
        report["dtype"].as_str().unwrap_or("?")
    );
    println!(
        "{:<44} {:>12} {:>14} {:>10}",
        "benchmark", "median s", "throughput", "peak mem"
    );
    let rows = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    for r in rows("bart_generate") {
        let label = format!(
            "bart generate b={} in={} new={}",
            r["batch"], r["input_len"], r["new_tokens"]
        );
        println!(
            "{label:<44} {:>12.4} {:>10.1} tok/s {:>10}",
            num(&r, "seconds_median"),
            num(&r, "tokens_per_s"),
            mem(&r)
        );
    }
    for r in rows("bart_encoder") {
        let label = format!("bart encoder b={} len={}", r["batch"], r["seq_len"]);
        println!(
            "{label:<44} {:>12.4} {:>10.1} seq/s {:>10}",
            num(&r, "seconds_median"),
            num(&r, "sequences_per_s"),
            mem(&r)
        );
    }
    for r in rows("minilm") {
        let label = format!(
            "minilm {} ({}) b={} len={}",
            r["mode"].as_str().unwrap_or("?"),
            r["weights"].as_str().unwrap_or("?"),
            r["batch"],
            r["seq_len"]
        );
        println!(
            "{label:<44} {:>12.4} {:>10.1} snt/s {:>10}",
            num(&r, "seconds_median"),
            num(&r, "sentences_per_s"),
            mem(&r)
        );
    }
    for r in rows("matmul") {
        let label = format!("matmul n={} {}", r["n"], r["dtype"].as_str().unwrap_or("?"));
        println!(
            "{label:<44} {:>12} {:>8.2} TFLOP/s (median {:.2})",
            "",
            num(&r, "tflops_best"),
            num(&r, "tflops_median")
        );
    }
    if let Some(parity) = report["parity"].as_object() {
        for (dtype, entry) in parity {
            let tiny = &entry["tiny_bart"];
            let base = &entry["bart_base_synthetic"];
            println!(
                "parity {dtype}: tiny-bart logits max|Δ| {:.3e} (max|ref| {:.2}); bart-base \
                 logits[..4096] max|Δ| {:.3e}, rel L2 {:.3e}, argmax agree {:.3}",
                num(tiny, "logits_max_abs_diff"),
                num(tiny, "logits_max_abs_ref"),
                num(base, "logits_head_max_abs_diff"),
                num(base, "logits_head_rel_l2"),
                num(base, "argmax_agreement")
            );
            if entry.get("minilm").is_some() {
                println!(
                    "parity {dtype}: MiniLM embeddings min cosine {:.6}",
                    num(&entry["minilm"], "min_cosine")
                );
            }
        }
    }
    if let Some(skipped) = report["skipped"].as_array().filter(|s| !s.is_empty()) {
        for s in skipped {
            println!("skipped: {}", s.as_str().unwrap_or("?"));
        }
    }
}
