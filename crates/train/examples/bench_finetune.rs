//! LoRA fine-tuning throughput on candle, the Rust half of a side-by-side run with
//! tests/fixtures/bench_finetune.py (torch + transformers + PEFT on the same machine, same sizes).
//!
//! usage: cargo run --release -p train --example bench_finetune -- \
//!            --device cpu|cuda --dtype f32|bf16 --out results.json [--quick] [--steps N] [--warmup N]
//!
//! What one step is: BART-base (`synthetic_weights`, hash-defined, no download) with LoRA r = 16,
//! alpha = 32 on q_proj, k_proj, v_proj and out_proj of every attention block (encoder self,
//! decoder self and cross), batch 8, 256 source and 64 target tokens (deterministic SplitMix64 ids
//! in [5, vocab), all-ones masks, labels = the target ids, decoder inputs = labels shifted right),
//! forward, mean token cross-entropy, backward, torch's AdamW (lr 1e-4, weight decay 0.01) on the
//! adapter alone, through `train::Trainer::train_step` (constant schedule, no clipping).
//!
//! Dropout: the config records PEFT's study value, lora_dropout = 0.05, but Lowrank's BART forward
//! has no training mode, so neither LoRA's dropout nor BART's own (0.1) is applied here
//! (`"dropout_applied": false`). The Python script applies both by default (a real fine-tune,
//! `model.train()`) and leaves them out with `--no-dropout`, the like-for-like comparison.
//!
//! bf16: the base weights are bf16; the adapter's variables and AdamW's moments stay f32 (master
//! weights), cast to bf16 for each forward, so gradients arrive in f32 through the cast. (PEFT with
//! a bf16 model keeps the adapter f32 too, `autocast_adapter_dtype`, but computes the adapter's
//! product in f32; here it is computed in bf16.)
//!
//! Timing: `--warmup` steps (default 3; 1 with `--quick`), during which peak memory is sampled (peak
//! RSS on the CPU, device memory in use, every process, on CUDA), then `--steps` timed steps
//! (CUDA 20, CPU 5, quick 3), each ended by `device.synchronize()`. `tokens_per_s` counts source +
//! target tokens, batch · (source_len + target_len) / median step seconds; `target_tokens_per_s`
//! the label tokens alone. `--quick` (CPU smoke run): batch 2, 64 source, 16 target tokens.
//!
//! JSON written to `--out` (atomically):
//! ```text
//! { "tool": "candle", "device": "cpu"|"cuda", "device_name", "dtype", "quick", "threads",
//!   "unix_time", "command",
//!   "config": {"model": "bart-base-synthetic", "r", "lora_alpha", "lora_dropout",
//!              "dropout_applied", "target_modules": [..], "batch", "source_len", "target_len",
//!              "optimizer": "adamw", "lr", "weight_decay", "warmup_steps", "timed_steps"},
//!   "trainable_params", "all_params", "trainable_line",
//!   "runs": { "candle": {"step_seconds": [..], "step_seconds_median", "tokens_per_s",
//!                        "target_tokens_per_s", "peak_mem_mib", "losses": [..]} },
//!   "skipped": [..] }
//! ```
//! The Python script writes the same keys with `runs` per attention implementation
//! (`{"eager": {..}, "sdpa": {..}}`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use models::Linears;
use models::bart::{Bart, Config as BartConfig, synthetic_weights};
use models::linear::{self, Linear};
use models::lora::{LoraConfig, trainable_parameters_line};
use models::loss::{cross_entropy, shift_tokens_right};
use serde_json::{Value, json};
use train::optim::{AdamWConfig, OptimizerConfig};
use train::trainer::{Precision, Trainer, TrainerConfig};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: bench_finetune --device cpu|cuda --dtype f32|bf16 --out FILE \
[--quick] [--steps N] [--warmup N]";

const RANK: usize = 16;
const ALPHA: f64 = 32.0;
const LORA_DROPOUT: f64 = 0.05;
const TARGETS: [&str; 4] = ["q_proj", "k_proj", "v_proj", "out_proj"];
const LR: f64 = 1e-4;

/// Seeds of the deterministic inputs; tests/fixtures/bench_finetune.py uses the same.
const SALT_SOURCE: u64 = 11 << 32;
const SALT_TARGET: u64 = 12 << 32;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let parsed = match Args::parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("bench_finetune: error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&parsed, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_finetune: error: {e}");
            ExitCode::from(1)
        }
    }
}

struct Args {
    cuda: bool,
    dtype: DType,
    out: PathBuf,
    quick: bool,
    steps: Option<usize>,
    warmup: Option<usize>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self> {
        let (mut cuda, mut dtype, mut out, mut quick) = (None, None, None, false);
        let (mut steps, mut warmup) = (None, None);
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--device" => {
                    cuda = Some(match value()?.as_str() {
                        "cpu" => false,
                        "cuda" => true,
                        other => return Err(format!("--device {other}: use cpu or cuda").into()),
                    })
                }
                "--dtype" => {
                    dtype = Some(match value()?.as_str() {
                        "f32" => DType::F32,
                        "bf16" => DType::BF16,
                        other => return Err(format!("--dtype {other}: use f32 or bf16").into()),
                    })
                }
                "--out" => out = Some(PathBuf::from(value()?)),
                "--quick" => quick = true,
                "--steps" => steps = Some(positive(flag, &value()?)?),
                "--warmup" => warmup = Some(positive(flag, &value()?)?),
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        Ok(Self {
            cuda: cuda.ok_or("--device is required")?,
            dtype: dtype.ok_or("--dtype is required")?,
            out: out.ok_or("--out is required")?,
            quick,
            steps,
            warmup,
        })
    }
}

fn positive(flag: &str, text: &str) -> Result<usize> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} {text}: want a whole number ≥ 1").into()),
    }
}

fn progress(message: &str) {
    eprintln!("[bench_finetune] {message}");
}

fn run(args: &Args, raw_args: &[String]) -> Result<()> {
    let device = open_device(args.cuda)?;
    let (batch, source_len, target_len) = if args.quick {
        (2, 64, 16)
    } else {
        (8, 256, 64)
    };
    let warmup = args.warmup.unwrap_or(if args.quick { 1 } else { 3 });
    let steps = args.steps.unwrap_or(match (args.quick, args.cuda) {
        (true, _) => 3,
        (false, true) => 20,
        (false, false) => 5,
    });
    let weight_decay = AdamWConfig::default().weight_decay;

    progress("building BART-base with synthetic weights");
    let cfg = BartConfig::bart_base();
    let weights = synthetic_weights(&cfg, &device)?;
    let base = Bart::load(VarBuilder::from_tensors(weights, args.dtype, &device), &cfg)?;

    // The adapter: f32 variables initialised as PEFT does (A uniform in ±1/√in, B zero).
    let varmap = VarMap::new();
    let mut adapters = Vec::new();
    for (name, layer) in base.linears() {
        let last = name.rsplit('.').next().unwrap_or_default();
        if !TARGETS.contains(&last) {
            continue;
        }
        let bound = 1.0 / (layer.in_dim() as f64).sqrt();
        let a = varmap.get(
            (RANK, layer.in_dim()),
            &format!("{name}.lora_A.weight"),
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
            DType::F32,
            &device,
        )?;
        let b = varmap.get(
            (layer.out_dim(), RANK),
            &format!("{name}.lora_B.weight"),
            Init::Const(0.0),
            DType::F32,
            &device,
        )?;
        adapters.push((name, layer.clone(), a, b));
    }
    let trainable: usize = adapters
        .iter()
        .map(|(_, _, a, b)| a.elem_count() + b.elem_count())
        .sum();
    let all = base.parameter_count() + trainable;
    let line = trainable_parameters_line(trainable, all);
    progress(&line);

    // One forward's model: the frozen base with each target wrapped in LoRA, the f32 factors cast
    // to the run's dtype (a no-op in f32) so gradients reach the f32 variables.
    let adapted = || -> Result<Bart> {
        let mut model = base.clone();
        for (name, layer, a, b) in &adapters {
            let lora = Linear::lora(
                layer.clone(),
                a.to_dtype(args.dtype)?,
                b.to_dtype(args.dtype)?,
                ALPHA,
                LORA_DROPOUT as f32,
            )?;
            linear::replace(&mut model, name, lora)?;
        }
        Ok(model)
    };

    let vocab = cfg.vocab_size as u32;
    let source = Tensor::from_vec(
        token_ids(batch * source_len, 5, vocab, SALT_SOURCE),
        (batch, source_len),
        &device,
    )?;
    let mask = Tensor::ones((batch, source_len), DType::U32, &device)?;
    let labels_cpu = Tensor::from_vec(
        token_ids(batch * target_len, 5, vocab, SALT_TARGET)
            .into_iter()
            .map(i64::from)
            .collect::<Vec<_>>(),
        (batch, target_len),
        &Device::Cpu,
    )?;
    let decoder_input =
        shift_tokens_right(&labels_cpu, cfg.pad_token_id, cfg.decoder_start_token_id)?
            .to_dtype(DType::U32)?
            .to_device(&device)?;
    let labels = labels_cpu.to_device(&device)?;

    let mut config = TrainerConfig::new(
        OptimizerConfig::AdamW(AdamWConfig {
            lr: LR,
            ..AdamWConfig::default()
        }),
        usize::MAX,
    );
    config.precision = if args.dtype == DType::BF16 {
        Precision::Bf16
    } else {
        Precision::F32
    };
    let mut trainer = Trainer::new(config, &varmap)?;
    let mut next_batch = |_: usize, _: &mut rand_chacha::ChaCha8Rng| Ok(());
    let mut loss = |_: &(), _| {
        let model = adapted().map_err(|e| train::Error::Config(e.to_string()))?;
        let logits = model.forward(&source, &mask, &decoder_input)?;
        Ok((cross_entropy(&logits, &labels)?, batch * target_len))
    };

    let mut losses = Vec::new();
    progress(&format!(
        "{warmup} warm-up steps, batch {batch}, {source_len}+{target_len} tokens, {}",
        dtype_name(args.dtype)
    ));
    let watch = MemWatch::start(&device);
    for _ in 0..warmup {
        losses.push(trainer.train_step(&mut next_batch, &mut loss)?.loss);
    }
    device.synchronize()?;
    let peak = watch.stop();
    progress(&format!("{steps} timed steps"));
    let mut seconds = Vec::with_capacity(steps);
    for _ in 0..steps {
        let start = Instant::now();
        let stats = trainer.train_step(&mut next_batch, &mut loss)?;
        device.synchronize()?;
        seconds.push(start.elapsed().as_secs_f64());
        losses.push(stats.loss);
    }
    let step_median = median(&seconds);
    let run = json!({
        "step_seconds": seconds,
        "step_seconds_median": step_median,
        "tokens_per_s": (batch * (source_len + target_len)) as f64 / step_median,
        "target_tokens_per_s": (batch * target_len) as f64 / step_median,
        "peak_mem_mib": peak,
        "losses": losses,
    });
    progress(&format!(
        "median step {step_median:.3} s, {:.0} tokens/s (source + target), peak {} MiB",
        (batch * (source_len + target_len)) as f64 / step_median,
        peak.map_or("?".into(), |p| format!("{p:.0}"))
    ));
    let mut skipped = Vec::new();
    if peak.is_none() {
        skipped.push("peak_mem_mib: no memory reading on this device".to_string());
    }
    let report = json!({
        "tool": "candle",
        "device": if args.cuda { "cuda" } else { "cpu" },
        "device_name": device_name(&device),
        "dtype": dtype_name(args.dtype),
        "quick": args.quick,
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "command": std::iter::once("bench_finetune".to_string()).chain(raw_args.iter().cloned()).collect::<Vec<_>>().join(" "),
        "config": {
            "model": "bart-base-synthetic",
            "r": RANK,
            "lora_alpha": ALPHA,
            "lora_dropout": LORA_DROPOUT,
            "dropout_applied": false,
            "target_modules": TARGETS,
            "batch": batch,
            "source_len": source_len,
            "target_len": target_len,
            "optimizer": "adamw",
            "lr": LR,
            "weight_decay": weight_decay,
            "warmup_steps": warmup,
            "timed_steps": steps,
        },
        "trainable_params": trainable,
        "all_params": all,
        "trainable_line": line,
        "runs": {"candle": run},
        "skipped": skipped,
    });
    save_json(&args.out, &report)?;
    progress(&format!("wrote {}", args.out.display()));
    // A LoraConfig for the same adapter, checked as PEFT's would be (r, alpha, dropout valid).
    let mut peft = LoraConfig::new(RANK, ALPHA, &TARGETS);
    peft.lora_dropout = LORA_DROPOUT;
    peft.validate()?;
    Ok(())
}

fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bf16",
        _ => "f32",
    }
}

fn open_device(cuda: bool) -> Result<Device> {
    if !cuda {
        return Ok(Device::Cpu);
    }
    if !cfg!(feature = "cuda") {
        return Err(
            "--device cuda needs the cuda feature: build with `cargo build --release -p \
                    train --features cuda --example bench_finetune`"
                .into(),
        );
    }
    Ok(Device::new_cuda(0)?)
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
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, serde_json::to_string_pretty(value)? + "\n")?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

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

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Peak memory during the warm-up: the process's peak RSS on the CPU (VmHWM after resetting it
/// through /proc/self/clear_refs), device memory in use (total − free, every process) on CUDA,
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
                let _ = std::fs::write("/proc/self/clear_refs", "5");
                MemWatch::Cpu
            }
            _ => gpu::Poller::start(device).map_or(MemWatch::None, MemWatch::Gpu),
        }
    }

    fn stop(self) -> Option<f64> {
        match self {
            MemWatch::Cpu => {
                let status = std::fs::read_to_string("/proc/self/status").ok()?;
                let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
                let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib / 1024.0)
            }
            MemWatch::Gpu(poller) => poller.stop(),
            MemWatch::None => None,
        }
    }
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
