//! Lowrank's workflows as Rust, run with `cargo xtask <command>` from anywhere in the clone.
//!
//! Depends on no workspace crate, so it builds in seconds even when the library does not compile.

mod bench;
mod bench_lab;
mod book;
mod cache;
mod lab;
mod notebook_checks;
mod notebooks;
mod notebooks_run;
mod phases;
mod test;
mod tools;
mod venv;

use anyhow::{Result, bail};

const HELP: &str = "\
cargo xtask <command>

commands:
  test          the whole suite: fmt check, clippy -D warnings, every Rust test, reference parity,
                the lab set-up and smoke test, every notebook run headless
  lab           JupyterLab on notebooks/ with the Rust (Lowrank) kernel (sets up what is missing:
                .venv/ with kernel/requirements-lab.txt, evcxr_jupyter in the cache, the kernelspec)
  lab --no-launch
                the set-up only
  notebooks     regenerate notebooks/NN-slug.ipynb from book/src/NN-slug.md (--check: only compare)
  notebooks --execute [NAME | PATH.ipynb ...]
                run every notebook (or those named) headless on the kernel; per-cell times; fails
                listing every failing notebook; also checks committed notebooks carry no outputs
  book          build the mdBook (math rendered offline, figures made by the library) into target/book
  venv          make (or reuse) the reference Python venv and the sample photographs
  bench math    time Lowrank's SVD, randomized SVD and HOOI beside numpy, scikit-learn and tensorly
  bench lab [--warm-only | --cold-only]
                kernel start, first cell, small cells and every notebook, cold and warm
  bench svd-backends
                time and check faer's and nalgebra's SVD (why Lowrank uses faer)
";

fn main() {
    if let Err(error) = run() {
        eprintln!("xtask: error: {error:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    match args.as_slice() {
        ["test"] => test::run(&sh),
        ["lab"] => lab::run(&sh, true),
        ["lab", "--no-launch"] => lab::run(&sh, false),
        ["notebooks", "--execute", selection @ ..] => notebooks_run::run(&sh, selection),
        ["venv"] => venv::ensure(&sh).map(|_| ()),
        ["notebooks"] => notebooks::run(&project_root(), false),
        ["notebooks", "--check"] => notebooks::run(&project_root(), true),
        ["book"] => book::build(&sh),
        ["bench", "math"] => bench::math(&sh),
        ["bench", "svd-backends"] => bench::svd_backends(&sh),
        ["bench", "lab"] => bench_lab::run(&sh, true, true),
        ["bench", "lab", "--warm-only"] => bench_lab::run(&sh, false, true),
        ["bench", "lab", "--cold-only"] => bench_lab::run(&sh, true, false),
        [] | ["help" | "--help" | "-h"] => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{HELP}"),
    }
}

fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| ".".into())
}
