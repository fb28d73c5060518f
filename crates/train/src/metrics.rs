//! Training logs as `metrics.csv` (for a spreadsheet or pandas) and `metrics.jsonl` (for
//! scripts): one row per optimizer step and one per evaluation.
//!
//! Each row is formatted whole, then written with one `write_all` on a file opened for append,
//! so a crash leaves at most a row missing, not half of one. Resuming rewrites both files (temp
//! file, then rename) keeping only complete rows up to the checkpoint's step, so the log of a
//! resumed run reads as if it had never stopped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, io};

/// The CSV log's name in the output directory.
pub const CSV_FILE: &str = "metrics.csv";
/// The JSON-lines log's name in the output directory.
pub const JSONL_FILE: &str = "metrics.jsonl";
const CSV_HEADER: &str = "kind,step,loss,lr,grad_norm,tokens,tokens_per_second\n";

/// Whether a row is a training step or an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One optimizer step.
    Train,
    /// One call of the evaluation closure.
    Eval,
}

/// One row. `step` counts optimizer steps done (1 after the first); an evaluation row carries
/// the evaluation loss in `loss` and nothing in the training-only columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Training step or evaluation.
    pub kind: Kind,
    /// Optimizer steps done when the row was written.
    pub step: usize,
    /// Training loss of the step, or evaluation loss.
    pub loss: f64,
    /// The learning rate the step used.
    pub lr: Option<f64>,
    /// Global gradient norm before clipping.
    pub grad_norm: Option<f64>,
    /// Items (label tokens, examples) the step's loss was averaged over.
    pub tokens: Option<usize>,
    /// Throughput of the step, wall clock: the one column two identical runs do not share.
    pub tokens_per_second: Option<f64>,
}

impl Record {
    fn csv_line(&self) -> String {
        fn opt<T: ToString>(value: Option<T>) -> String {
            value.map(|v| v.to_string()).unwrap_or_default()
        }
        let kind = match self.kind {
            Kind::Train => "train",
            Kind::Eval => "eval",
        };
        format!(
            "{kind},{},{},{},{},{},{}\n",
            self.step,
            self.loss,
            opt(self.lr),
            opt(self.grad_norm),
            opt(self.tokens),
            opt(self.tokens_per_second)
        )
    }
}

/// The two log files of one run directory, open for append.
#[derive(Debug)]
pub struct MetricsLog {
    csv: (PathBuf, File),
    jsonl: (PathBuf, File),
}

impl MetricsLog {
    /// Starts fresh logs in `dir` (created if needed), replacing those of an earlier run there.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let csv = dir.join(CSV_FILE);
        let jsonl = dir.join(JSONL_FILE);
        replace(&csv, CSV_HEADER)?;
        replace(&jsonl, "")?;
        Self::open(csv, jsonl)
    }

    /// Continues the logs in `dir` after a resume from `step`: rows past it (written after the
    /// checkpoint by the run that stopped) and any partial last line are dropped.
    pub fn resume(dir: &Path, step: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let csv = dir.join(CSV_FILE);
        let jsonl = dir.join(JSONL_FILE);
        let kept_csv = kept_lines(&csv, |line| {
            line.split(',')
                .nth(1)
                .and_then(|s| s.parse::<usize>().ok())
                .is_some_and(|s| s <= step)
        })?;
        replace(&csv, &format!("{CSV_HEADER}{kept_csv}"))?;
        let kept_jsonl = kept_lines(&jsonl, |line| {
            serde_json::from_str::<Record>(line).is_ok_and(|r| r.step <= step)
        })?;
        replace(&jsonl, &kept_jsonl)?;
        Self::open(csv, jsonl)
    }

    fn open(csv: PathBuf, jsonl: PathBuf) -> Result<Self> {
        let append = |path: &Path| {
            OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io("open", path))
        };
        Ok(Self {
            csv: (csv.clone(), append(&csv)?),
            jsonl: (jsonl.clone(), append(&jsonl)?),
        })
    }

    /// Appends `record` to both files as whole lines.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let json = serde_json::to_string(record)
            .map_err(|e| crate::error::invalid(format!("cannot encode a metrics row: {e}")))?;
        for ((path, file), line) in [
            (&mut self.csv, record.csv_line()),
            (&mut self.jsonl, format!("{json}\n")),
        ] {
            file.write_all(line.as_bytes())
                .and_then(|()| file.flush())
                .map_err(io("append to", path.as_path()))?;
        }
        Ok(())
    }

    /// Where the CSV rows go.
    pub fn csv_path(&self) -> &Path {
        &self.csv.0
    }

    /// Where the JSON rows go.
    pub fn jsonl_path(&self) -> &Path {
        &self.jsonl.0
    }
}

/// Reads back a JSONL log (skipping a partial last line), e.g. to plot a finished run.
pub fn read_jsonl(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).map_err(io("read", path))?;
    complete_lines(&text)
        .map(|line| {
            serde_json::from_str(line).map_err(|e| crate::Error::CorruptFile {
                path: path.to_path_buf(),
                message: format!("bad row {line:?}: {e}"),
            })
        })
        .collect()
}

/// The lines of `text` that end in a newline, without it: a last line without one is a row the
/// writer never finished.
fn complete_lines(text: &str) -> impl Iterator<Item = &str> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end + 1],
        None => "",
    };
    complete.lines().filter(|line| !line.is_empty())
}

/// The complete data lines of `path` (the CSV header excluded) that `keep` accepts, each with its
/// newline; nothing when the file does not exist.
fn kept_lines(path: &Path, keep: impl Fn(&str) -> bool) -> Result<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(io("read", path)(e)),
    };
    Ok(complete_lines(&text)
        .filter(|line| format!("{line}\n") != CSV_HEADER && keep(line))
        .map(|line| format!("{line}\n"))
        .collect())
}

/// Writes `contents` to `path` through a temp file in the same folder and a rename.
pub(crate) fn replace(path: &Path, contents: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp =
        tempfile::NamedTempFile::new_in(dir).map_err(io("create a temp file in", dir))?;
    temp.write_all(contents.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(io("write", temp.path().to_path_buf()))?;
    temp.persist(path)
        .map_err(|e| io("replace", path)(e.error))?;
    Ok(())
}

/// The file [`loss_plot`]'s chart is saved as beside a trained model or adapter.
pub const LOSS_PLOT_FILE: &str = "loss.svg";

/// A run's loss curves: training loss at every step (a line) and evaluation loss at each
/// evaluation (points), on a log axis, where a loss falling from ln(vocab) to a fraction of one
/// stays readable. Steps count from 1, as [`Record::step`] does.
///
/// ```
/// let plot = train::metrics::loss_plot("run", &[6.9, 4.0, 2.5, 1.9], &[(2, 3.1), (4, 2.0)]);
/// assert!(plot.to_svg()?.contains("validation"));
/// # Ok::<(), viz::Error>(())
/// ```
pub fn loss_plot(title: &str, train_losses: &[f64], evals: &[(usize, f64)]) -> viz::Plot {
    let steps: Vec<f64> = (1..=train_losses.len()).map(|s| s as f64).collect();
    let mut plot = viz::Plot::new(title)
        .x_label("optimizer step")
        .y_label("cross-entropy (nats per token)")
        .log_y()
        .line("training", &steps, train_losses);
    if !evals.is_empty() {
        let (xs, ys): (Vec<f64>, Vec<f64>) = evals.iter().map(|&(s, l)| (s as f64, l)).unzip();
        plot = plot.scatter("validation", &xs, &ys);
    }
    plot
}
