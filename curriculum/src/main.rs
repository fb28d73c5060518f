//! `lowrank`: the course's command line. Each lesson's tool is a subcommand; they print what a student
//! needs to see and write files atomically (a temp file renamed into place).
//!
//! Exit codes: 0 success, 2 error (the message names the problem and, where possible, the fix).

mod cmd;
mod output;

use clap::{Parser, Subcommand};

/// Lowrank: the linear algebra behind large language models.
#[derive(Parser)]
#[command(name = "lowrank", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// FLOP counts of a product, a factorized product and attention; this machine's measured FLOP/s.
    Flops(cmd::flops::Args),
    /// Compress an image channel by channel with a truncated SVD.
    SvdImage(cmd::svd_image::Args),
    /// Tucker-decompose a tensor stored as .npy (HOSVD or HOOI).
    Tucker(cmd::tucker::Args),
    /// Generate text with a BART model: greedy, beam search or sampling.
    Generate(cmd::generate::Args),
    /// Embed sentences with a sentence encoder (all-MiniLM-L6-v2) and compare them.
    Embed(cmd::embed::Args),
    /// Train the small BART summarizer on the generated customer-service dialogues.
    Train(cmd::train::Args),
    /// LoRA: fine-tune adapters on a BART model, merge them, show trainable parameters.
    Lora(cmd::lora::Args),
    /// Factorize a model's layers by truncated SVD and save the compressed model.
    Compress(cmd::compress::Args),
    /// Sweep compressions over methods × ranks × blocks × tensors: resumable, CSV/JSONL, charts.
    Sweep(cmd::sweep::Args),
    /// The compression report: cosine vs parameters per method and the Tucker-2 insights on
    /// MiniLM, ROUGE and runtime vs rank on the small BART.
    Findings(cmd::findings::Args),
    /// The customer-service chatbot in the terminal; `chat train|eval|load|download` for its workflow.
    Chat(cmd::chat::Args),
    /// Serve the chatbot: HTTP API (POST /v1/chat, GET /health) and the chat page at /.
    Serve(cmd::chat::ServeArgs),
    /// Singular-value spectra and effective ranks of a model's layers, beside random matrices.
    Inspect(cmd::inspect::Args),
    /// The chapters' exercises: list, show one, start a file, check your answer.
    Exercise(cmd::exercise::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Flops(args) => cmd::flops::run(&args),
        Command::SvdImage(args) => cmd::svd_image::run(&args),
        Command::Tucker(args) => cmd::tucker::run(&args),
        Command::Generate(args) => cmd::generate::run(&args),
        Command::Embed(args) => cmd::embed::run(&args),
        Command::Train(args) => cmd::train::run(&args),
        Command::Lora(args) => cmd::lora::run(&args),
        Command::Compress(args) => cmd::compress::run(&args),
        Command::Inspect(args) => cmd::inspect::run(&args),
        Command::Sweep(args) => cmd::sweep::run(&args),
        Command::Findings(args) => cmd::findings::run(&args),
        Command::Chat(args) => cmd::chat::run(&args),
        Command::Serve(args) => cmd::chat::serve(&args),
        Command::Exercise(args) => cmd::exercise::run(&args),
    };
    if let Err(error) = result {
        eprintln!("lowrank: error: {}", render(&error));
        std::process::exit(2);
    }
}

/// The error and its causes on one line, skipping a cause whose text its parent already quoted
/// (many library errors print their source inside their own message).
fn render(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}
