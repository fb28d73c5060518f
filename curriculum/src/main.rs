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
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Flops(args) => cmd::flops::run(&args),
        Command::SvdImage(args) => cmd::svd_image::run(&args),
        Command::Tucker(args) => cmd::tucker::run(&args),
    };
    if let Err(error) = result {
        eprintln!("lowrank: error: {error:#}");
        std::process::exit(2);
    }
}
