//! `cargo xtask test`: the README's test command and the only thing `.ci/run` calls.

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use crate::phases::Phases;
use crate::{book, lab, notebooks_run, venv};

pub fn run(sh: &Shell) -> Result<()> {
    let mut phases = Phases::default();
    let result = run_phases(sh, &mut phases);
    phases.summary();
    result
}

fn run_phases(sh: &Shell, phases: &mut Phases) -> Result<()> {
    let mut failed = Vec::new();
    if phases
        .run("format check", || {
            Ok(cmd!(sh, "cargo fmt --all -- --check").run()?)
        })
        .is_err()
    {
        failed.push("format check (run `cargo fmt --all`)");
    }
    if phases
        .run("clippy", || {
            Ok(cmd!(
                sh,
                "cargo clippy --workspace --all-targets --locked -- -D warnings"
            )
            .run()?)
        })
        .is_err()
    {
        failed.push("clippy");
    }
    let python = phases.run("reference venv", || venv::ensure(sh))?;
    let _env = sh.push_env("LOWRANK_PYTHON", &python);
    if phases
        .run("rust tests + reference parity", || {
            Ok(cmd!(sh, "cargo test --workspace --locked --no-fail-fast").run()?)
        })
        .is_err()
    {
        failed.push("tests");
    }
    // The lab's phases print their own error, which is otherwise only summarised below.
    let report = |error: &anyhow::Error| eprintln!("xtask: error: {error:#}");
    match phases
        .run("lab set-up", || lab::ensure(sh))
        .inspect_err(report)
    {
        Ok(lab) => {
            if phases
                .run("lab smoke", || lab::smoke(&lab))
                .inspect_err(report)
                .is_err()
            {
                failed.push("lab smoke");
            }
            if phases
                .run("notebooks", || notebooks_run::execute(sh, &lab, &[]))
                .inspect_err(report)
                .is_err()
            {
                failed.push("notebooks");
            }
        }
        Err(_) => failed.push("lab set-up (lab smoke and notebooks not run)"),
    }
    if phases
        .run("book (build + link check)", || book::build(sh))
        .is_err()
    {
        failed.push("book");
    }
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}
