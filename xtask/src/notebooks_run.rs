//! `cargo xtask notebooks --execute [NAME | PATH.ipynb ...]`: every notebooks/*.ipynb (or the ones
//! named) run headless on the real "Rust (Lowrank)" kernel through nbclient
//! (`kernel/execute_notebooks.py`), executed copies in target/notebooks/, never over the sources.
//!
//! A failing notebook does not stop the rest; the command then fails listing every failure. A
//! notebook fails when a cell errors, an output is of type "error", or a cell's stderr says
//! "panicked" (evcxr reports a panic on stderr, not as an error). Committed notebooks must carry no
//! outputs or execution counts. Prints each notebook's time, its kernel start and slowest cells.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::lab::{self, Lab};
use crate::{cache, notebook_checks, venv};

const SLOWEST_SHOWN: usize = 5;

/// One executed notebook, judged.
pub struct Report {
    pub name: String,
    pub seconds: f64,
    pub kernel_start: Option<f64>,
    /// Code cells: 1-based index among all cells, seconds (when it ran), first line of source.
    pub cells: Vec<(usize, Option<f64>, String)>,
    pub failure: Option<String>,
    /// Every output of every cell, for callers that look for a kind of output.
    pub outputs: Vec<Value>,
}

pub fn run(sh: &Shell, selection: &[&str]) -> Result<()> {
    let lab = lab::ensure(sh)?;
    execute(sh, &lab, selection)
}

/// The clean check, then the selected notebooks (all when `selection` is empty).
pub fn execute(sh: &Shell, lab: &Lab, selection: &[&str]) -> Result<()> {
    let committed = committed_notebooks(&lab.root)?;
    let mut failures = Vec::new();
    for path in &committed {
        let notebook = read_json(path)?;
        let dirty = dirty_cells(&notebook);
        if !dirty.is_empty() {
            failures.push(format!(
                "{} carries outputs or execution counts (cells {}): commit it clean \
                 (JupyterLab: Edit > Clear Outputs of All Cells, then save; or regenerate it)",
                relative(path, &lab.root),
                join(&dirty)
            ));
        }
    }
    let paths = select(&lab.root, &committed, selection)?;
    if paths.is_empty() {
        eprintln!("notebooks: notebooks/ holds no .ipynb yet: nothing to execute");
    } else {
        let python = venv::ensure(sh)?;
        let expected = notebook_checks::expected(sh, &python, &lab.root, &cache::dir())?;
        let start = std::time::Instant::now();
        let out_dir = lab.root.join("target/notebooks");
        let reports = execute_paths(sh, lab, &paths, &out_dir)?;
        print_reports(&reports, start.elapsed().as_secs_f64());
        for report in &reports {
            if let Some(failure) = &report.failure {
                failures.push(format!("{}: {failure}", report.name));
                continue;
            }
            let executed = read_json(&out_dir.join(format!("{}.ipynb", report.name)))?;
            let problems = notebook_checks::judge(&report.name, &executed, &expected);
            eprintln!(
                "notebooks: {}: {} checked value(s) {}",
                report.name,
                if problems.is_empty() { "all" } else { "some" },
                if problems.is_empty() {
                    "equal the reference"
                } else {
                    "differ"
                }
            );
            failures.extend(problems.iter().map(|p| format!("{}: {p}", report.name)));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} notebook failure(s):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// Runs notebooks through the venv's nbclient into `out_dir` and judges each; a notebook that
/// did not run at all is a failure too.
pub fn execute_paths(
    sh: &Shell,
    lab: &Lab,
    paths: &[PathBuf],
    out_dir: &Path,
) -> Result<Vec<Report>> {
    sh.create_dir(out_dir)?;
    let status_file = out_dir.join("status.json");
    let _ = std::fs::remove_file(&status_file);
    let python = &lab.python;
    let driver = lab.root.join("kernel/execute_notebooks.py");
    let mut command = cmd!(sh, "{python} {driver} {out_dir} {paths...}");
    for (key, value) in lab.jupyter_env() {
        command = command.env(key, value);
    }
    command.run().context("the notebook runner failed")?;
    let statuses = read_json(&status_file)?;
    let mut reports = Vec::new();
    for path in paths {
        let name = stem(path);
        let status = statuses.as_array().and_then(|all| {
            all.iter()
                .find(|s| s["notebook"] == path.display().to_string())
        });
        let report = match status {
            Some(status) => judge(
                &name,
                status,
                &read_json(&out_dir.join(format!("{name}.ipynb")))?,
            ),
            None => Report {
                name,
                seconds: 0.0,
                kernel_start: None,
                cells: Vec::new(),
                failure: Some("did not run".into()),
                outputs: Vec::new(),
            },
        };
        reports.push(report);
    }
    Ok(reports)
}

/// Judges one executed notebook from the runner's status and the notebook's outputs.
fn judge(name: &str, status: &Value, notebook: &Value) -> Report {
    let mut cells = Vec::new();
    let mut outputs = Vec::new();
    let mut failure = None;
    for (i, cell) in notebook["cells"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if cell["cell_type"] != "code" {
            continue;
        }
        let index = i + 1;
        let first = first_line(&source(cell));
        cells.push((index, cell_seconds(cell), first.clone()));
        let cell_outputs = cell["outputs"].as_array().cloned().unwrap_or_default();
        if failure.is_none()
            && let Some(problem) = cell_problem(&cell_outputs)
        {
            failure = Some(format!("cell {index} (`{first}`): {problem}"));
        }
        outputs.extend(cell_outputs);
    }
    let kernel_start = status["kernel_start_s"].as_f64();
    let stopped = status["error"].as_str().map(|error| match kernel_start {
        Some(_) => error.to_string(),
        None => format!(
            "the kernel did not start ({error}); its messages above say why, often a compile \
             error in crates/lab or a :dep of kernel/init.evcxr"
        ),
    });
    Report {
        name: name.to_string(),
        seconds: status["seconds"].as_f64().unwrap_or(0.0),
        kernel_start,
        cells,
        // The cell's own error says more than the runner's "cell N failed"; a timeout or a dead
        // kernel has only the runner's.
        failure: failure.or(stopped),
        outputs,
    }
}

/// An error output, or a panic on stderr, in one cell's outputs.
fn cell_problem(outputs: &[Value]) -> Option<String> {
    if let Some(error) = outputs.iter().find(|o| o["output_type"] == "error") {
        let text = format!(
            "{}: {}",
            error["ename"].as_str().unwrap_or("error"),
            error["evalue"].as_str().unwrap_or("")
        );
        let one_line = strip_ansi(&text)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        return Some(cut(&one_line, 300));
    }
    let stderr: String = outputs
        .iter()
        .filter(|o| o["output_type"] == "stream" && o["name"] == "stderr")
        .map(text_of)
        .collect();
    let stderr = strip_ansi(&stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines.iter().position(|line| line.contains("panicked"))?;
    let message = lines.get(at + 1).map_or("", |line| line.trim());
    Some(format!("{} {message}", lines[at].trim()).trim().to_string())
}

/// Code cells that carry outputs, an execution count or nbclient's timing, 1-based.
fn dirty_cells(notebook: &Value) -> Vec<usize> {
    notebook["cells"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, cell)| {
            cell["outputs"].as_array().is_some_and(|o| !o.is_empty())
                || !cell["execution_count"].is_null()
                || !cell["metadata"]["execution"].is_null()
        })
        .map(|(i, _)| i + 1)
        .collect()
}

fn print_reports(reports: &[Report], total: f64) {
    let failed = reports.iter().filter(|r| r.failure.is_some()).count();
    eprintln!(
        "\nnotebooks: {} executed, {failed} failed, {total:.1}s (executed copies in target/notebooks/)",
        reports.len()
    );
    for report in reports {
        let verdict = if report.failure.is_some() {
            "FAILED"
        } else {
            "ok"
        };
        let start = report
            .kernel_start
            .map_or(String::new(), |s| format!(", kernel start {s:.1}s"));
        eprintln!(
            "  {:<28} {verdict:<6} {:>7.1}s{start}, {} code cells",
            report.name,
            report.seconds,
            report.cells.len()
        );
        if let Some(failure) = &report.failure {
            eprintln!("      {failure}");
        }
        let mut timed: Vec<_> = report
            .cells
            .iter()
            .filter_map(|(index, seconds, first)| Some((*index, (*seconds)?, first)))
            .collect();
        timed.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (index, seconds, first) in timed.into_iter().take(SLOWEST_SHOWN) {
            eprintln!("      {seconds:>7.2}s  cell {index:<3} {first}");
        }
    }
}

pub fn committed_notebooks(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join("notebooks");
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "ipynb"))
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error).with_context(|| format!("cannot list {}", dir.display())),
    };
    paths.sort();
    Ok(paths)
}

/// All committed notebooks, or those named (`01-matrices`) or given as paths (`/tmp/x.ipynb`).
fn select(root: &Path, committed: &[PathBuf], selection: &[&str]) -> Result<Vec<PathBuf>> {
    if selection.is_empty() {
        return Ok(committed.to_vec());
    }
    selection
        .iter()
        .map(|&arg| {
            if arg.ends_with(".ipynb") {
                let path = PathBuf::from(arg);
                let path = if path.is_absolute() {
                    path
                } else {
                    std::env::current_dir()?.join(path)
                };
                if path.is_file() {
                    return Ok(path);
                }
                bail!("no notebook at {}", path.display());
            }
            let path = root.join("notebooks").join(format!("{arg}.ipynb"));
            if committed.contains(&path) {
                return Ok(path);
            }
            let names: Vec<String> = committed.iter().map(|p| stem(p)).collect();
            bail!("no notebooks/{arg}.ipynb; there are: {}", names.join(", "))
        })
        .collect()
}

/// Seconds from nbclient's `iopub.execute_input` to `shell.execute_reply`.
fn cell_seconds(cell: &Value) -> Option<f64> {
    let execution = &cell["metadata"]["execution"];
    let start = parse_timestamp(execution["iopub.execute_input"].as_str()?)?;
    let end = parse_timestamp(execution["shell.execute_reply"].as_str()?)?;
    Some(end - start)
}

/// Seconds since 1970 of an ISO 8601 UTC time as nbclient writes it: `2026-11-25T14:58:22.792816Z`.
fn parse_timestamp(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.split(':');
    let hours: f64 = time.next()?.parse().ok()?;
    let minutes: f64 = time.next()?.parse().ok()?;
    let seconds: f64 = time.next()?.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + hours * 3600.0 + minutes * 60.0 + seconds)
}

fn source(cell: &Value) -> String {
    match &cell["source"] {
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().unwrap_or("").to_string(),
    }
}

fn text_of(output: &Value) -> String {
    match &output["text"] {
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().unwrap_or("").to_string(),
    }
}

/// The first non-blank line, cut to 60 characters (a cell's source in a listing).
fn first_line(text: &str) -> String {
    cut(text, 60)
}

/// The first non-blank line, cut to `max` characters.
fn cut(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Removes terminal colour codes (`ESC [ ... letter`) from evcxr's messages.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn join(numbers: &[usize]) -> String {
    numbers
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn executed(cells: Vec<Value>) -> Value {
        json!({ "cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5 })
    }

    fn code(source: &str, outputs: Value, start: &str, end: &str) -> Value {
        json!({
            "cell_type": "code",
            "execution_count": 1,
            "metadata": { "execution": { "iopub.execute_input": start, "shell.execute_reply": end } },
            "outputs": outputs,
            "source": source,
        })
    }

    fn check(cells: Vec<Value>, error: Option<&str>, expected: Option<&str>) {
        let status = json!({ "seconds": 3.5, "kernel_start_s": 1.0, "error": error });
        let report = judge("nb", &status, &executed(cells));
        assert_eq!(report.failure.as_deref(), expected);
    }

    #[test]
    fn timestamps_give_seconds_across_midnight() {
        let a = parse_timestamp("2026-12-31T23:59:59.500000Z").expect("a");
        let b = parse_timestamp("2027-01-01T00:00:01.250000Z").expect("b");
        assert!((b - a - 1.75).abs() < 1e-6, "{}", b - a);
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_timestamp("2000-03-01T00:00:00Z"), Some(951_868_800.0));
    }

    #[test]
    fn a_clean_notebook_passes_and_times_cells() {
        let cells = vec![
            json!({ "cell_type": "markdown", "metadata": {}, "source": "# Title" }),
            code(
                "let x = 1;\nx",
                json!([{ "output_type": "execute_result", "data": { "text/plain": "1" } }]),
                "2026-11-25T14:58:22.000000Z",
                "2026-11-25T14:58:24.500000Z",
            ),
        ];
        let status = json!({ "seconds": 3.5, "kernel_start_s": 1.0, "error": null });
        let report = judge("nb", &status, &executed(cells));
        assert_eq!(report.failure, None);
        assert_eq!(report.cells, vec![(2, Some(2.5), "let x = 1;".to_string())]);
    }

    #[test]
    fn an_error_output_fails_with_its_message() {
        let error = json!([{
            "output_type": "error", "ename": "Error",
            "evalue": "cannot find value `y` in this scope", "traceback": []
        }]);
        let t = "2026-11-25T14:58:22Z";
        check(
            vec![code("y + 1", error, t, t)],
            Some("cell 1 failed"),
            Some("cell 1 (`y + 1`): Error: cannot find value `y` in this scope"),
        );
    }

    #[test]
    fn a_panic_on_stderr_fails_even_when_the_kernel_says_ok() {
        let stderr = json!([
            { "output_type": "stream", "name": "stderr", "text": ["\n"] },
            { "output_type": "stream", "name": "stderr", "text": ["thread '<unnamed>' panicked at src/lib.rs:113:2:\n"] },
            { "output_type": "stream", "name": "stderr", "text": ["\u{1b}[31mindex out of bounds\u{1b}[0m\n"] },
        ]);
        let t = "2026-11-25T14:58:22Z";
        check(
            vec![code("v[3]", stderr, t, t)],
            None,
            Some(
                "cell 1 (`v[3]`): thread '<unnamed>' panicked at src/lib.rs:113:2: index out of bounds",
            ),
        );
    }

    #[test]
    fn stderr_without_a_panic_passes_and_a_timeout_fails() {
        let stderr =
            json!([{ "output_type": "stream", "name": "stderr", "text": "warning: slow\n" }]);
        let t = "2026-11-25T14:58:22Z";
        check(vec![code("f()", stderr.clone(), t, t)], None, None);
        check(
            vec![code("f()", stderr, t, t)],
            Some("CellTimeoutError: cell timed out"),
            Some("CellTimeoutError: cell timed out"),
        );
    }

    #[test]
    fn a_kernel_that_never_started_says_where_to_look() {
        let status =
            json!({ "seconds": 3.0, "kernel_start_s": null, "error": "RuntimeError: Kernel died" });
        let report = judge("nb", &status, &executed(vec![]));
        let failure = report.failure.expect("a failure");
        assert!(
            failure.starts_with("the kernel did not start (RuntimeError: Kernel died)"),
            "{failure}"
        );
    }

    #[test]
    fn dirty_cells_are_those_with_outputs_counts_or_timing() {
        let clean = json!({ "cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": "" });
        let counted = json!({ "cell_type": "code", "execution_count": 3, "metadata": {}, "outputs": [], "source": "" });
        let t = "2026-11-25T14:58:22Z";
        let notebook = executed(vec![
            clean.clone(),
            counted,
            json!({ "cell_type": "markdown", "metadata": {}, "source": "x" }),
            code("x", json!([]), t, t),
        ]);
        assert_eq!(dirty_cells(&notebook), vec![2, 4]);
        assert!(dirty_cells(&executed(vec![clean])).is_empty());
    }

    #[test]
    fn long_first_lines_are_cut() {
        let long = "x".repeat(70);
        assert_eq!(
            first_line(&format!("\n  \n{long}\nnext")),
            format!("{}…", "x".repeat(60))
        );
    }
}
