//! `lowrank train summarizer`: trains the small BART summarizer on the generated customer-service
//! dialogues from scratch on the CPU, with a progress bar, and prints how good it is beside the
//! lead-k baseline. The model lands in `<cache>/models/dialogue-bart-<config hash>` (reused when
//! complete) or `--out DIR`, in Hugging Face's layout, so `lowrank generate --model DIR` loads it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use train::summarizer::{self, SummarizerConfig, SummarizerReport};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Train the dialogue summarizer (a tiny BART and its byte-level BPE tokenizer).
    Summarizer(SummarizerArgs),
}

#[derive(clap::Args)]
struct SummarizerArgs {
    /// Where to save the model [default: <cache>/models/dialogue-bart-<config hash>, with cache
    /// $LOWRANK_CACHE or ~/.cache/lowrank].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Optimizer steps [default: 600; 60 with --quick].
    #[arg(long, value_name = "N", value_parser = parse_steps)]
    steps: Option<usize>,
    /// Seed of the dialogues, the initial weights and the batch order.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// A seconds-long run of the whole pipeline on a much smaller model (it will not summarize
    /// well).
    #[arg(long)]
    quick: bool,
    /// Train even if the output directory already holds a finished model.
    #[arg(long)]
    force: bool,
}

pub fn run(args: &Args) -> Result<()> {
    match &args.what {
        What::Summarizer(args) => summarizer(args),
    }
}

fn summarizer(args: &SummarizerArgs) -> Result<()> {
    let mut cfg = if args.quick {
        SummarizerConfig::quick()
    } else {
        SummarizerConfig::default()
    };
    cfg.seed = args.seed;
    if let Some(steps) = args.steps {
        cfg.steps = steps;
        cfg.warmup_steps = cfg.warmup_steps.min(cfg.steps / 10);
        cfg.eval_every = cfg.eval_every.min(cfg.steps);
    }
    cfg.validate().context("invalid training settings")?;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => cache_dir()?.join("models").join(cfg.dir_name()),
    };
    if !args.force && summarizer::is_complete(&out) {
        let report = SummarizerReport::load(&out).with_context(|| {
            format!(
                "cannot read the finished model in {} (use --force to retrain)",
                out.display()
            )
        })?;
        if report.config == cfg {
            println!(
                "Reusing the model trained earlier in {} (--force retrains).\n",
                out.display()
            );
            print_report(&report, &out);
            return Ok(());
        }
    }
    println!(
        "Training a BART summarizer from scratch: {} training dialogues, vocabulary {}, d_model {}, \
         {}+{} layers, {} steps of {} dialogues.",
        cfg.n_train,
        cfg.vocab_size,
        cfg.d_model,
        cfg.encoder_layers,
        cfg.decoder_layers,
        cfg.steps,
        cfg.batch_size
    );
    let style = ProgressStyle::with_template(
        "{spinner} [{bar:30}] {pos}/{len} steps {elapsed}<{eta} {msg}",
    )
    .context("bad progress template")?
    .progress_chars("=> ");
    let bar = ProgressBar::new(cfg.steps as u64).with_style(style);
    bar.set_message("tokenizer");
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut eval_loss = None;
    let result = summarizer::train_summarizer(&cfg, &out, &mut |progress| {
        if progress.eval_loss.is_some() {
            eval_loss = progress.eval_loss;
        }
        let valid = eval_loss.map_or(String::new(), |l| format!(" valid {l:.3}"));
        bar.set_position(progress.step as u64);
        bar.set_message(if progress.step == progress.max_steps {
            "evaluating on the test dialogues".to_string()
        } else {
            format!(
                "loss {:.3}{valid} lr {:.1e} {:.0} tok/s",
                progress.loss, progress.lr, progress.tokens_per_second
            )
        });
    });
    bar.finish_and_clear();
    let report =
        result.with_context(|| format!("cannot train the summarizer into {}", out.display()))?;
    print_report(&report, &out);
    Ok(())
}

fn print_report(report: &SummarizerReport, out: &Path) {
    let last_valid = report
        .valid_losses
        .last()
        .map_or("-".to_string(), |(_, l)| format!("{l:.3}"));
    println!(
        "Model:            {} ({} parameters)",
        out.display(),
        report.parameters
    );
    println!(
        "Training:         {} steps in {:.1} s (evaluation {:.1} s)",
        report.losses.len(),
        report.train_seconds,
        report.eval_seconds
    );
    println!(
        "Loss:             train {:.3} -> {:.3} (mean of first/last 10 steps), valid {last_valid}",
        report.first_train_loss, report.final_train_loss
    );
    println!(
        "Test perplexity:  {:.2} ({} dialogues)",
        report.test_perplexity, report.config.n_test
    );
    println!(
        "Overlap F1:       model {:.3} (P {:.3}, R {:.3}) vs lead-{} baseline {:.3}",
        report.overlap_f1,
        report.overlap_precision,
        report.overlap_recall,
        report.lead_k,
        report.lead_k_f1
    );
    let (m, l) = (&report.rouge, &report.lead_k_rouge);
    println!(
        "ROUGE F1:         model R-1 {:.3}  R-2 {:.3}  R-L {:.3}  R-S4 {:.3}\n                  \
         lead-{} R-1 {:.3}  R-2 {:.3}  R-L {:.3}  R-S4 {:.3}",
        m.rouge1.fmeasure,
        m.rouge2.fmeasure,
        m.rouge_l.fmeasure,
        m.rouge_s4.fmeasure,
        report.lead_k,
        l.rouge1.fmeasure,
        l.rouge2.fmeasure,
        l.rouge_l.fmeasure,
        l.rouge_s4.fmeasure
    );
    println!(
        "Loss curve:       {}",
        out.join(train::metrics::LOSS_PLOT_FILE).display()
    );
    for (i, example) in report.examples.iter().enumerate() {
        println!("\nExample {}:", i + 1);
        for line in example.dialogue.lines() {
            println!("  | {line}");
        }
        println!("  reference: {}", example.reference);
        if example.summary.is_empty() {
            println!("  model:     (empty: it ends the summary at once)");
        } else {
            println!("  model:     {}", example.summary);
        }
    }
    println!(
        "\nTry it: lowrank generate --model {} --text \"<dialogue>\"",
        out.display()
    );
}

fn parse_steps(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("training needs at least 1 step".into()),
        Ok(steps) => Ok(steps),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// Where Lowrank caches models: `$LOWRANK_CACHE`, else `$XDG_CACHE_HOME/lowrank`, else
/// `~/.cache/lowrank`.
pub(crate) fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LOWRANK_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("lowrank"));
    }
    let home = std::env::var_os("HOME")
        .context("cannot find a cache directory: set LOWRANK_CACHE (or HOME)")?;
    Ok(PathBuf::from(home).join(".cache").join("lowrank"))
}
