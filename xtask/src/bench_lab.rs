//! `cargo xtask bench lab [--warm-only | --cold-only]`: how long a student waits in the lab. Cold: the kernel's
//! compile cache emptied (a fresh machine after set-up's first kernel: the first cell compiles the
//! whole library); warm: the cache as `cargo xtask lab` leaves it. Per run: kernel start, first cell,
//! the median of ten small cells, and each lesson notebook top to bottom. Targets from issue #5 on
//! the 2-core CI machine: a warm cell under 1.5 s, all notebooks cold under 20 minutes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;
use xshell::Shell;

use crate::lab::{self, Lab};
use crate::notebooks_run::{self, Report};

const SMALL_CELLS: usize = 10;
const WARM_CELL_TARGET_S: f64 = 1.5;
const COLD_ALL_TARGET_S: f64 = 20.0 * 60.0;

pub fn run(sh: &Shell, cold: bool, warm: bool) -> Result<()> {
    let lab = lab::ensure(sh)?;
    let dir = lab.root.join("target/bench-lab");
    sh.create_dir(&dir)?;
    let probe = dir.join("small-cells.ipynb");
    std::fs::write(&probe, probe_notebook()?)?;
    let mut paths = vec![probe];
    paths.extend(notebooks_run::committed_notebooks(&lab.root)?);
    if cold {
        let reports = with_empty_compile_cache(sh, || {
            notebooks_run::execute_paths(sh, &lab, &paths, &dir.join("cold"))
        })?;
        print_run("cold (empty compile cache)", &reports);
    }
    if warm {
        let reports = notebooks_run::execute_paths(sh, &lab, &paths, &dir.join("warm"))?;
        print_run("warm (compile cache filled)", &reports);
    }
    print_environment(&lab);
    Ok(())
}

/// A first cell that brings the library in, then ten small cells of the size lessons use.
fn probe_notebook() -> Result<String> {
    let mut cells = vec![
        code(0, "use lab::*;"),
        code(1, "let a = gaussian_matrix(64, 64, 0);"),
    ];
    for i in 0..SMALL_CELLS {
        cells.push(code(
            i + 2,
            &format!(
                "let s{i} = svd::svd(a.view())?.s[{i}];\nprintln!(\"sigma_{i} = {{s{i}:.4}}\");"
            ),
        ));
    }
    let notebook = json!({
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Rust (Lowrank)", "language": "rust", "name": "lowrank-rust"}},
        "nbformat": 4, "nbformat_minor": 5
    });
    Ok(serde_json::to_string_pretty(&notebook)?)
}

fn code(index: usize, source: &str) -> serde_json::Value {
    json!({"cell_type": "code", "execution_count": null, "id": format!("cell-{index}"),
           "metadata": {}, "outputs": [], "source": source})
}

/// Moves the evcxr compile cache aside for `f` and puts it back afterwards, whatever `f` returns.
fn with_empty_compile_cache<T>(sh: &Shell, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let cache = lab::compile_cache_dir(sh)?;
    let aside = PathBuf::from(format!("{}.bench-aside", cache.display()));
    if cache.exists() {
        std::fs::rename(&cache, &aside)
            .with_context(|| format!("cannot move {} aside", cache.display()))?;
    }
    let result = f();
    let _ = std::fs::remove_dir_all(&cache);
    if aside.exists() {
        std::fs::rename(&aside, &cache)
            .with_context(|| format!("cannot restore {}", cache.display()))?;
    }
    result
}

fn print_run(title: &str, reports: &[Report]) {
    println!("\n## {title}\n");
    for report in reports {
        if let Some(failure) = &report.failure {
            println!("{}: FAILED: {failure}", report.name);
        }
    }
    let Some(probe) = reports.first() else { return };
    let first = probe.cells.first().and_then(|c| c.1).unwrap_or(f64::NAN);
    let start = probe.kernel_start.unwrap_or(f64::NAN);
    let mut small: Vec<f64> = probe.cells.iter().skip(2).filter_map(|c| c.1).collect();
    small.sort_by(f64::total_cmp);
    let median = small.get(small.len() / 2).copied().unwrap_or(f64::NAN);
    let worst = small.last().copied().unwrap_or(f64::NAN);
    println!("| measure | seconds | target |\n| --- | ---: | --- |");
    println!("| kernel start | {start:.1} | |");
    println!("| first cell (`use lab::*;`) | {first:.1} | |");
    println!(
        "| first cell answered (kernel start + first cell) | {:.1} | |",
        start + first
    );
    println!(
        "| small cell, median of {} (worst {worst:.2}) | {median:.2} | < {WARM_CELL_TARGET_S} s: {} |",
        small.len(),
        met(median < WARM_CELL_TARGET_S)
    );
    let lessons = &reports[1..];
    for report in lessons {
        println!(
            "| {} top to bottom (kernel start {:.1}) | {:.1} | |",
            report.name,
            report.kernel_start.unwrap_or(f64::NAN),
            report.seconds
        );
    }
    let all: f64 = reports.iter().map(|r| r.seconds).sum();
    println!(
        "| all notebooks, this probe included | {all:.1} | < {} min cold: {} |",
        COLD_ALL_TARGET_S / 60.0,
        met(all < COLD_ALL_TARGET_S)
    );
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn print_environment(lab: &Lab) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n{cores} cores; kernel config {}",
        display(&lab.root.join("kernel/init.evcxr"))
    );
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
