//! `lowrank sweep`: many compressions of one model, methods × ranks × blocks × tensors (a grid, or
//! a seeded sample of the design space γ = (rank, layers, tensors)), each judged against the
//! original and logged as it finishes, so a stopped sweep resumes. Writes results.jsonl,
//! results.csv and three charts: quality vs rank, latency vs rank, quality vs parameters with the
//! Pareto front.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use compress::sweep::{Job, SweepLog, SweepRecord, pareto_front, run_sweep, write_csv};
use compress::{
    Calibration, DesignPoint, DesignSpace, Method, Plan, RankRule, Report, Sharing, Tucker2Options,
    calibrate, compress_model, compress_model_calibrated, compress_tucker2, linear_flops_per_token,
    linear_params,
};
use eval::rouge::fast::FastRouge;
use indicatif::{ProgressBar, ProgressStyle};
use models::bart::Bart;
use models::bert::SentenceEncoder;
use models::candle::{DType, Device, Tensor};
use models::generation::GenerationConfig;
use models::tokenizer::Tokenizer;
use models::{Linears, linear};

use super::compress::{Kind, model_kind, read_lines};
use super::generate::model_generation_config;

#[derive(clap::Args)]
pub struct Args {
    /// A BART or BERT-family (e.g. all-MiniLM-L6-v2) model folder.
    #[arg(long)]
    model: PathBuf,
    /// Where results.jsonl, results.csv and the charts go; an existing results.jsonl is resumed.
    #[arg(long)]
    out: PathBuf,
    /// Methods: svd, asvd, whitened (these two need --calibration), tucker2 (all selected
    /// matrices share one pair of factors, the design-space study's Tucker-2), tucker2-per-tensor.
    #[arg(long, value_delimiter = ',', default_value = "svd,tucker2")]
    methods: Vec<String>,
    /// Ranks of the space.
    #[arg(long, value_delimiter = ',', default_value = "8,32,64")]
    ranks: Vec<usize>,
    /// The blocks of the space [default: all of the model's blocks].
    #[arg(long, value_delimiter = ',')]
    blocks: Vec<usize>,
    /// The attention tensors of the space: any of q, k, v, o.
    #[arg(long, value_delimiter = ',', default_value = "q,k,v,o")]
    tensors: Vec<String>,
    /// Block sets of the grid, `;`-separated, each a list or range: "0-5;1-4;0,5"
    /// [default: all the space's blocks].
    #[arg(long)]
    block_sets: Option<String>,
    /// Tensor sets of the grid, `;`-separated, letters of q, k, v, o: "qkvo;qk;v" [default: all].
    #[arg(long)]
    tensor_sets: Option<String>,
    /// Instead of the grid, this many points drawn from the whole space (the original included).
    #[arg(long)]
    sample: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One calibration text a line, for asvd and whitened.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Evaluation texts, one a line (encoders), or dialogues as JSONL with "dialogue" and
    /// "summary" (BART, SAMSum's format) [default: built-in sentences / generated dialogues].
    #[arg(long)]
    eval: Option<PathBuf>,
    /// How many evaluation texts or dialogues to use.
    #[arg(long, default_value_t = 32)]
    eval_count: usize,
    /// Timed runs of the evaluation batch per point (after one warm-up).
    #[arg(long, default_value_t = 5)]
    latency_runs: usize,
}

/// Sentences for the encoder when no --eval file is given: customer-service requests and small
/// talk, so the embeddings spread over more than one topic.
pub(crate) const SENTENCES: &[&str] = &[
    "My card has not arrived yet, it has been two weeks.",
    "How do I reset the PIN on my debit card?",
    "I was charged twice for the same purchase.",
    "Can I get a refund for a cancelled order?",
    "The ATM kept my card and did not give me cash.",
    "Why was my transfer declined?",
    "I want to close my account.",
    "How long does a bank transfer to Germany take?",
    "The app crashes when I open my statements.",
    "Please change the address on my account.",
    "What exchange rate do you use for dollars?",
    "My top-up failed but the money left my account.",
    "The weather in Lisbon is lovely this time of year.",
    "She plays the violin in a small orchestra.",
    "A quick brown fox jumps over the lazy dog.",
    "The recipe needs two eggs and a cup of flour.",
    "Our train was delayed by forty minutes this morning.",
    "He fixed the bicycle chain with a borrowed tool.",
    "The museum opens at ten on Sundays.",
    "Photosynthesis turns light into chemical energy.",
    "I lost my phone and need to block my card now.",
    "Is there a fee for withdrawing cash abroad?",
    "How can I verify my identity in the app?",
    "The payment to my landlord is still pending.",
    "I think someone else used my card online.",
    "Can I order a virtual card for online shopping?",
    "My salary has not shown up in my balance.",
    "The children built a sandcastle on the beach.",
    "Mountains were covered in fresh snow overnight.",
    "The library extended its opening hours.",
    "Why is my contactless payment not working?",
    "I need a statement for my mortgage application.",
];

pub fn run(args: &Args) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let methods = parse_methods(args)?;
    match model_kind(&args.model)? {
        Kind::Bart => {
            let model = Bart::from_dir(&args.model, DType::F32, &Device::Cpu)
                .with_context(|| format!("cannot load BART from {}", args.model.display()))?;
            let judge = BartJudge::new(args, &model)?;
            sweep(args, &methods, model, &BART_TENSORS, judge)
        }
        Kind::Bert => {
            let model = SentenceEncoder::from_dir(&args.model, DType::F32, &Device::Cpu)
                .with_context(|| format!("cannot load an encoder from {}", args.model.display()))?;
            let judge = EncoderJudge::new(args, &model)?;
            sweep(args, &methods, model, &BERT_TENSORS, judge)
        }
    }
}

/// The layer-name suffix of q, k, v, o.
pub(crate) type TensorNames = [(&'static str, &'static str); 4];
pub(crate) const BART_TENSORS: TensorNames = [
    ("q", "q_proj"),
    ("k", "k_proj"),
    ("v", "v_proj"),
    ("o", "out_proj"),
];
pub(crate) const BERT_TENSORS: TensorNames = [
    ("q", "attention.self.query"),
    ("k", "attention.self.key"),
    ("v", "attention.self.value"),
    ("o", "attention.output.dense"),
];

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum SweepMethod {
    Svd(Method),
    Tucker2(Sharing),
}

impl SweepMethod {
    pub(crate) fn name(&self) -> String {
        match self {
            SweepMethod::Svd(method) => method.name().to_string(),
            SweepMethod::Tucker2(Sharing::All) => "tucker2".into(),
            SweepMethod::Tucker2(sharing) => format!("tucker2-{sharing}"),
        }
    }
}

fn parse_methods(args: &Args) -> Result<Vec<SweepMethod>> {
    let mut methods = Vec::new();
    for text in &args.methods {
        let method = match text.as_str() {
            "tucker2" => SweepMethod::Tucker2(Sharing::All),
            "tucker2-per-tensor" => SweepMethod::Tucker2(Sharing::PerTensor),
            "tucker2-per-block" => SweepMethod::Tucker2(Sharing::PerBlock),
            other => SweepMethod::Svd(other.parse().with_context(|| {
                format!("--methods: {other:?} is not svd, asvd, whitened or tucker2[-per-tensor|-per-block]")
            })?),
        };
        if let SweepMethod::Svd(m) = method
            && m.needs_calibration()
            && args.calibration.is_none()
        {
            bail!("--methods {text} needs --calibration FILE (one text per line)");
        }
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    if methods.is_empty() {
        bail!("--methods names no method");
    }
    Ok(methods)
}

/// What a sweep needs from a model beyond listing its layers.
pub(crate) trait Judge<M> {
    /// Quality of `model` against the original, higher is better, by measure name.
    fn quality(&self, model: &M) -> Result<BTreeMap<String, f64>>;
    /// One run of the timed workload.
    fn workload(&self, model: &M) -> Result<()>;
    /// The measure the Pareto chart uses.
    fn headline(&self) -> &'static str;
    /// Calibration passes over `model`, for the activation-aware methods.
    fn calibration_run(&self, model: &M, texts: &[String]) -> Result<()>;
}

fn sweep<M, J>(
    args: &Args,
    methods: &[SweepMethod],
    original: M,
    names: &TensorNames,
    judge: J,
) -> Result<()>
where
    M: Linears + Clone,
    J: Judge<M>,
{
    let all_blocks = model_blocks(&original);
    let blocks = if args.blocks.is_empty() {
        all_blocks.clone()
    } else {
        args.blocks.clone()
    };
    if let Some(b) = blocks.iter().find(|b| !all_blocks.contains(b)) {
        bail!("--blocks: the model has no block {b} (it has {all_blocks:?})");
    }
    let tensors = tensor_kinds(&args.tensors, names)?;
    let space = DesignSpace::new(blocks.clone(), tensors.clone(), args.ranks.clone())?;
    let points = design_points(args, &space, &blocks, names)?;
    let jobs = jobs(methods, &points);
    println!(
        "design space: {} blocks × {} tensors × {} ranks → |S| = (2^{} − 1)(2^{} − 1)·{} + 1 = {}",
        space.blocks.len(),
        space.tensors.len(),
        space.ranks.len(),
        space.blocks.len(),
        space.tensors.len(),
        space.ranks.len(),
        space.size()
    );
    let calibration = calibration_for(args, methods, &original, &space, &judge)?;
    let space_plan = Plan::new(RankRule::Fixed(1))
        .select(space.tensors.iter().map(|t| format!("*.{t}")))
        .layers(space.blocks.iter().copied());
    let space_params = selected_params(&original, &space_plan)?;
    let log_path = args.out.join("results.jsonl");
    let mut log = SweepLog::open(&log_path)?;
    let already = log.records().len();
    println!(
        "{} jobs ({} methods × {} points), {} already in {}",
        jobs.len(),
        methods.len(),
        points.len(),
        already,
        log_path.display()
    );
    let bar = ProgressBar::new(jobs.len() as u64).with_style(
        ProgressStyle::with_template("{msg:<40} [{bar:30}] {pos}/{len} {elapsed}")?
            .progress_chars("=> "),
    );
    bar.set_position(jobs.iter().filter(|j| log.is_done(&j.key())).count() as u64);
    let evaluate = |job: &Job| -> compress::Result<SweepRecord> {
        bar.set_message(format!("{} {}", job.method, job.point));
        let method = methods
            .iter()
            .find(|m| m.name() == job.method)
            .copied()
            .unwrap_or(SweepMethod::Svd(Method::Svd));
        judge_point(
            &original,
            job,
            method,
            calibration.as_ref(),
            &judge,
            args.latency_runs,
            space_params,
        )
        .map_err(|e| compress::Error::Sweep {
            path: log_path.clone(),
            reason: format!("{}: {e:#}", job.key()),
        })
    };
    run_sweep(&jobs, &mut log, evaluate, |done, _, record| {
        bar.set_position(done as u64);
        bar.println(one_line(record, judge.headline()));
    })?;
    bar.finish_and_clear();
    let records = log.records();
    write_csv(records, &args.out.join("results.csv"))?;
    charts(records, judge.headline(), &args.out)?;
    print_front(records, judge.headline());
    println!("results: {}", args.out.display());
    Ok(())
}

fn one_line(record: &SweepRecord, headline: &str) -> String {
    match &record.error {
        Some(error) => format!(
            "{:<10} {:<40} skipped: {error}",
            record.method, record.point
        ),
        None => format!(
            "{:<10} {:<40} {headline} {:.4}  removed {:5.1}%  {:.2} ms",
            record.method,
            record.point,
            record.quality.get(headline).copied().unwrap_or(f64::NAN),
            100.0 * record.removed,
            record.latency_ms.unwrap_or(f64::NAN)
        ),
    }
}

pub(crate) fn judge_point<M, J>(
    original: &M,
    job: &Job,
    method: SweepMethod,
    calibration: Option<&Calibration>,
    judge: &J,
    latency_runs: usize,
    space_params: usize,
) -> Result<SweepRecord>
where
    M: Linears + Clone,
    J: Judge<M>,
{
    let mut model = original.clone();
    let started = Instant::now();
    let mut record = SweepRecord::unjudged(&job.method, &job.point, linear_params(&model));
    let rank = record.rank;
    if let Some(rank) = rank {
        match compress_point(&mut model, &job.point, rank, method, calibration) {
            Ok(report) => {
                record.linear_params = report.linear_params_after;
                let saved = report.params_before() as f64 - report.params_after() as f64;
                record.removed = saved / space_params.max(1) as f64;
            }
            Err(error) => {
                record.error = Some(error.to_string());
                return Ok(record);
            }
        }
    }
    record.compress_seconds = started.elapsed().as_secs_f64();
    record.linear_flops_per_token = linear_flops_per_token(&model);
    record.quality = judge.quality(&model)?;
    let latency = eval::timing::measure(1, latency_runs.max(1), || {
        judge
            .workload(&model)
            .map_err(|e| eval::Error::InvalidArgument {
                name: "workload",
                value: String::new(),
                reason: format!("{e:#}"),
            })
    })?;
    record.latency_ms = Some(1e3 * latency.median);
    record.latency_p90_ms = Some(1e3 * latency.p90);
    Ok(record)
}

fn compress_point<M: Linears>(
    model: &mut M,
    point: &DesignPoint,
    rank: usize,
    method: SweepMethod,
    calibration: Option<&Calibration>,
) -> compress::Result<Report> {
    let Some(plan) = point.plan(RankRule::Fixed(rank)) else {
        return Err(compress::Error::InvalidDesignSpace {
            reason: "the original model has no plan".into(),
        });
    };
    match (method, calibration) {
        (SweepMethod::Tucker2(sharing), _) => {
            compress_tucker2(model, &plan, &Tucker2Options::new(rank).sharing(sharing))
        }
        (SweepMethod::Svd(Method::Svd), _) => compress_model(model, &plan),
        (SweepMethod::Svd(m), Some(calibration)) => {
            compress_model_calibrated(model, &plan.with_method(m), calibration)
        }
        (SweepMethod::Svd(m), None) => Err(compress::Error::Calibration {
            reason: format!("method {m} needs calibration"),
        }),
    }
}

fn calibration_for<M, J>(
    args: &Args,
    methods: &[SweepMethod],
    original: &M,
    space: &DesignSpace,
    judge: &J,
) -> Result<Option<Calibration>>
where
    M: Linears + Clone,
    J: Judge<M>,
{
    let needed = methods
        .iter()
        .any(|m| matches!(m, SweepMethod::Svd(method) if method.needs_calibration()));
    let Some(path) = args.calibration.as_ref().filter(|_| needed) else {
        return Ok(None);
    };
    let texts = read_lines(path, "calibration")?;
    let plan = Plan::new(RankRule::Fixed(1))
        .select(space.tensors.iter().map(|t| format!("*.{t}")))
        .layers(space.blocks.iter().copied());
    let mut model = original.clone();
    println!(
        "calibrating on {} texts from {}",
        texts.len(),
        path.display()
    );
    let calibration = calibrate(&mut model, &plan, |m| {
        judge
            .calibration_run(m, &texts)
            .map_err(|e| compress::Error::Calibration {
                reason: format!("{e:#}"),
            })
    })?;
    Ok(Some(calibration))
}

fn jobs(methods: &[SweepMethod], points: &[DesignPoint]) -> Vec<Job> {
    let mut jobs = vec![Job {
        method: "original".into(),
        point: DesignPoint::Original,
    }];
    for method in methods {
        for point in points.iter().filter(|p| **p != DesignPoint::Original) {
            jobs.push(Job {
                method: method.name(),
                point: point.clone(),
            });
        }
    }
    jobs
}

fn design_points(
    args: &Args,
    space: &DesignSpace,
    blocks: &[usize],
    names: &TensorNames,
) -> Result<Vec<DesignPoint>> {
    if let Some(count) = args.sample {
        if args.block_sets.is_some() || args.tensor_sets.is_some() {
            bail!("--sample draws from the whole space; drop --block-sets and --tensor-sets");
        }
        return Ok(space.sample(count, args.seed));
    }
    let block_sets = match &args.block_sets {
        Some(text) => parse_block_sets(text)?,
        None => vec![blocks.to_vec()],
    };
    let tensor_sets = match &args.tensor_sets {
        Some(text) => text
            .split(';')
            .map(|set| {
                let letters: Vec<String> = set.trim().chars().map(String::from).collect();
                tensor_kinds(&letters, names)
            })
            .collect::<Result<Vec<_>>>()?,
        None => vec![space.tensors.clone()],
    };
    Ok(space.grid(&block_sets, &tensor_sets)?)
}

/// "0-5;1-4;0,5" → [[0..=5], [1..=4], [0, 5]].
fn parse_block_sets(text: &str) -> Result<Vec<Vec<usize>>> {
    text.split(';')
        .map(|set| {
            let mut blocks = Vec::new();
            for part in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let number = |s: &str| {
                    s.trim()
                        .parse::<usize>()
                        .with_context(|| format!("--block-sets: {s:?} is not a block number"))
                };
                match part.split_once('-') {
                    Some((from, to)) => blocks.extend(number(from)?..=number(to)?),
                    None => blocks.push(number(part)?),
                }
            }
            if blocks.is_empty() {
                bail!("--block-sets: {set:?} names no block");
            }
            Ok(blocks)
        })
        .collect()
}

fn tensor_kinds(letters: &[String], names: &TensorNames) -> Result<Vec<String>> {
    letters
        .iter()
        .map(|letter| {
            names
                .iter()
                .find(|(short, _)| short == letter)
                .map(|(_, full)| full.to_string())
                .with_context(|| format!("unknown tensor {letter:?}: use q, k, v and o"))
        })
        .collect()
}

/// The block indices the model's layer names contain, ascending.
pub(crate) fn model_blocks<M: Linears>(model: &M) -> Vec<usize> {
    let blocks: std::collections::BTreeSet<usize> = model
        .linears()
        .iter()
        .filter_map(|(name, _)| compress::tucker2::block_of(name).map(|(_, b)| b))
        .collect();
    blocks.into_iter().collect()
}

pub(crate) fn selected_params<M: Linears>(model: &M, plan: &Plan) -> Result<usize> {
    let mut total = 0;
    for name in plan.resolve(model)? {
        total += linear::find(model, &name)?.parameter_count();
    }
    Ok(total)
}

pub(crate) struct EncoderJudge {
    texts: Vec<String>,
    reference: Tensor,
}

impl EncoderJudge {
    fn new(args: &Args, model: &SentenceEncoder) -> Result<Self> {
        let mut texts = match &args.eval {
            Some(path) => read_lines(path, "evaluation")?,
            None => SENTENCES.iter().map(|s| s.to_string()).collect(),
        };
        texts.truncate(args.eval_count.max(1));
        Self::from_texts(texts, model)
    }

    /// Judges by the embeddings of `texts`, against `model`'s own.
    pub(crate) fn from_texts(texts: Vec<String>, model: &SentenceEncoder) -> Result<Self> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let reference = model.embed(&refs)?;
        Ok(Self { texts, reference })
    }
}

impl Judge<SentenceEncoder> for EncoderJudge {
    fn quality(&self, model: &SentenceEncoder) -> Result<BTreeMap<String, f64>> {
        let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        let cosines = eval::similarity::tensor_cosines(&self.reference, &model.embed(&texts)?)?;
        Ok(BTreeMap::from([
            ("cosine".to_string(), cosines.mean),
            ("cosine_min".to_string(), cosines.min),
        ]))
    }

    fn workload(&self, model: &SentenceEncoder) -> Result<()> {
        let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        model.embed(&texts)?;
        Ok(())
    }

    fn headline(&self) -> &'static str {
        "cosine"
    }

    fn calibration_run(&self, model: &SentenceEncoder, texts: &[String]) -> Result<()> {
        for text in texts {
            model.embed(&[text.as_str()])?;
        }
        Ok(())
    }
}

pub(crate) struct BartJudge {
    tokenizer: Tokenizer,
    generation: GenerationConfig,
    dialogues: Vec<String>,
    summaries: Vec<String>,
    scorer: FastRouge,
}

impl BartJudge {
    fn new(args: &Args, model: &Bart) -> Result<Self> {
        let pairs = match &args.eval {
            Some(path) => eval::samsum::load_samsum(path)?
                .into_iter()
                .map(|d| (d.dialogue, d.summary))
                .collect::<Vec<_>>(),
            None => held_out_dialogues(args.eval_count.max(1))?,
        };
        let mut pairs = pairs;
        pairs.truncate(args.eval_count.max(1));
        Self::from_pairs(&args.model, model, pairs)
    }

    /// Judges by ROUGE of greedy summaries of `pairs`' dialogues against their summaries.
    pub(crate) fn from_pairs(
        dir: &Path,
        model: &Bart,
        pairs: Vec<(String, String)>,
    ) -> Result<Self> {
        // Dialogues longer than the model's positions are cut, and generation stops there too.
        let positions = model.config().max_position_embeddings;
        let tokenizer = Tokenizer::from_dir(dir)?.with_max_length(Some(positions))?;
        let mut generation = model_generation_config(dir)?;
        generation.max_new_tokens = None;
        generation.max_length = generation.max_length.min(positions);
        let (dialogues, summaries): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
        Ok(Self {
            tokenizer,
            generation,
            dialogues,
            summaries,
            scorer: FastRouge::new(true)?,
        })
    }
}

impl Judge<Bart> for BartJudge {
    fn quality(&self, model: &Bart) -> Result<BTreeMap<String, f64>> {
        let dialogues: Vec<&str> = self.dialogues.iter().map(String::as_str).collect();
        let generated = train::summarizer::summarize(
            model,
            &self.tokenizer,
            &dialogues,
            &self.generation,
            &Device::Cpu,
        )?;
        let pairs: Vec<(&str, &str)> = self
            .summaries
            .iter()
            .map(String::as_str)
            .zip(generated.iter().map(String::as_str))
            .collect();
        let scores = self.scorer.mean(&pairs)?;
        Ok(BTreeMap::from([
            ("rouge1".to_string(), scores.rouge1.fmeasure),
            ("rouge2".to_string(), scores.rouge2.fmeasure),
            ("rougeL".to_string(), scores.rouge_l.fmeasure),
        ]))
    }

    /// One teacher-forced forward pass over the evaluation batch: the same shapes for every point,
    /// so latency differences are the layers', not how long a damaged model keeps generating.
    fn workload(&self, model: &Bart) -> Result<()> {
        let dialogues: Vec<&str> = self.dialogues.iter().map(String::as_str).collect();
        let summaries: Vec<&str> = self.summaries.iter().map(String::as_str).collect();
        let source = self.tokenizer.encode_batch(&dialogues, true)?;
        let target = self.tokenizer.encode_batch(&summaries, true)?;
        model.forward(&source.input_ids, &source.attention_mask, &target.input_ids)?;
        Ok(())
    }

    fn headline(&self) -> &'static str {
        "rougeL"
    }

    fn calibration_run(&self, model: &Bart, texts: &[String]) -> Result<()> {
        for text in texts {
            let ids = self.tokenizer.encode_batch(&[text.as_str()], true)?;
            model.forward(&ids.input_ids, &ids.attention_mask, &ids.input_ids)?;
        }
        Ok(())
    }
}

/// Seed of the generated dialogues a sweep judges on: not the summarizer's training seed, so
/// they are held out from `lowrank train summarizer`'s model.
pub(crate) const EVAL_SEED: u64 = 7_777;

/// `n` generated (dialogue, summary) pairs of [`EVAL_SEED`].
pub(crate) fn held_out_dialogues(n: usize) -> Result<Vec<(String, String)>> {
    Ok(train::dialogues::generate(n, EVAL_SEED)?
        .into_iter()
        .map(|d| (d.dialogue, d.summary))
        .collect())
}

/// quality_vs_rank.svg, latency_vs_rank.svg, quality_vs_params.svg (with the Pareto front).
pub(crate) fn charts(records: &[SweepRecord], measure: &str, out: &Path) -> Result<()> {
    let ok: Vec<&SweepRecord> = records.iter().filter(|r| r.error.is_none()).collect();
    let mut methods: Vec<&str> = ok.iter().map(|r| r.method.as_str()).collect();
    methods.sort_unstable();
    methods.dedup();
    let mut by_rank = viz::Plot::new(format!("{measure} vs rank"))
        .x_label("rank")
        .y_label(measure);
    let mut latency = viz::Plot::new("latency vs rank")
        .x_label("rank")
        .y_label("median latency (ms)");
    let mut by_params = viz::Plot::new(format!("{measure} vs parameters"))
        .x_label("linear-layer parameters (millions)")
        .y_label(measure);
    for method in &methods {
        let points: Vec<&&SweepRecord> = ok.iter().filter(|r| r.method == *method).collect();
        let ranked: Vec<&&SweepRecord> = points
            .iter()
            .copied()
            .filter(|r| r.rank.is_some())
            .collect();
        let ranks: Vec<f64> = ranked.iter().map(|r| r.rank.unwrap_or(0) as f64).collect();
        let quality: Vec<f64> = ranked.iter().map(|r| value(r, measure)).collect();
        let millis: Vec<f64> = ranked
            .iter()
            .map(|r| r.latency_ms.unwrap_or(f64::NAN))
            .collect();
        if !ranked.is_empty() {
            by_rank = by_rank.scatter(*method, &ranks, &quality);
            latency = latency.scatter(*method, &ranks, &millis);
        }
        let params: Vec<f64> = points
            .iter()
            .map(|r| r.linear_params as f64 / 1e6)
            .collect();
        let all_quality: Vec<f64> = points.iter().map(|r| value(r, measure)).collect();
        by_params = by_params.scatter(*method, &params, &all_quality);
    }
    let front = pareto_front(records, measure);
    if front.len() > 1 {
        let xs: Vec<f64> = front
            .iter()
            .map(|&i| records[i].linear_params as f64 / 1e6)
            .collect();
        let ys: Vec<f64> = front.iter().map(|&i| value(&records[i], measure)).collect();
        by_params = by_params.line("Pareto front", &xs, &ys);
    }
    let has_ranked = ok.iter().any(|r| r.rank.is_some());
    if has_ranked {
        by_rank.save(out.join("quality_vs_rank.svg"))?;
        latency.save(out.join("latency_vs_rank.svg"))?;
    }
    if !ok.is_empty() {
        by_params.save(out.join("quality_vs_params.svg"))?;
    }
    Ok(())
}

fn value(record: &SweepRecord, measure: &str) -> f64 {
    record.quality.get(measure).copied().unwrap_or(f64::NAN)
}

fn print_front(records: &[SweepRecord], measure: &str) {
    println!("Pareto front (fewest parameters for the {measure} they reach):");
    for i in pareto_front(records, measure) {
        let r = &records[i];
        println!(
            "  {:<10} {:<44} {:>10} params  {measure} {:.4}  {:.2} ms",
            r.method,
            r.point,
            r.linear_params,
            value(r, measure),
            r.latency_ms.unwrap_or(f64::NAN)
        );
    }
}
