//! Sweeps: many (method, design point) compressions of one model, each judged and logged as one
//! JSON line the moment it finishes, so a sweep stopped halfway resumes where it was.
//!
//! The log (`results.jsonl`) is the source of truth: [`SweepLog::open`] reads the finished points
//! back (dropping a last line torn by a crash, rewritten atomically), [`SweepLog::append`] adds
//! one line and syncs it. [`write_csv`] renders the records as a table and [`pareto_front`] picks
//! the records no other beats on both size and quality. What a point is judged by (cosine of
//! embeddings, ROUGE, latency) is the caller's: [`run_sweep`] only walks the jobs and keeps the log.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::design::DesignPoint;
use crate::error::{Error, Result, io};

/// One compressed (or original) model and how it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// `original`, `svd`, `whitened`, `tucker2`, …
    pub method: String,
    /// The design point's key ([`DesignPoint::key`]).
    pub point: String,
    pub rank: Option<usize>,
    pub blocks: Vec<usize>,
    pub tensors: Vec<String>,
    /// Parameters of every linear layer of the model after compression.
    pub linear_params: usize,
    /// Multiply-add FLOPs per token of every linear layer after compression (`2·in·out` a dense
    /// layer, `2·r·(in+out)` a factorized one).
    #[serde(default)]
    pub linear_flops_per_token: usize,
    /// The share of the space's layers (all blocks × all tensors) removed, in [0, 1).
    pub removed: f64,
    /// Quality measures by name (`cosine`, `rouge1`, …): higher is better.
    pub quality: BTreeMap<String, f64>,
    /// Median latency of the evaluation workload, milliseconds.
    pub latency_ms: Option<f64>,
    pub latency_p90_ms: Option<f64>,
    /// Seconds spent compressing.
    pub compress_seconds: f64,
    /// Why the point could not be compressed (a rank too large for its layers), if so; the point
    /// still counts as done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SweepRecord {
    /// The record of a point before it is compressed and judged: its rank, blocks and tensors
    /// spelled out, the model's linear parameters as they are, nothing measured yet.
    pub fn unjudged(method: &str, point: &DesignPoint, linear_params: usize) -> Self {
        let (rank, blocks, tensors) = match point {
            DesignPoint::Original => (None, Vec::new(), Vec::new()),
            DesignPoint::Compressed {
                rank,
                blocks,
                tensors,
            } => (Some(*rank), blocks.clone(), tensors.clone()),
        };
        Self {
            method: method.to_string(),
            point: point.key(),
            rank,
            blocks,
            tensors,
            linear_params,
            linear_flops_per_token: 0,
            removed: 0.0,
            quality: BTreeMap::new(),
            latency_ms: None,
            latency_p90_ms: None,
            compress_seconds: 0.0,
            error: None,
        }
    }

    /// `method point`, what a resumed sweep recognises a finished job by.
    pub fn job_key(&self) -> String {
        job_key(&self.method, &self.point)
    }
}

/// The key of a job before it has run.
pub fn job_key(method: &str, point: &str) -> String {
    format!("{method} {point}")
}

/// One job of a sweep: a method at a design point.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub method: String,
    pub point: DesignPoint,
}

impl Job {
    pub fn key(&self) -> String {
        job_key(&self.method, &self.point.key())
    }
}

/// An append-only log of finished points.
#[derive(Debug)]
pub struct SweepLog {
    path: PathBuf,
    records: Vec<SweepRecord>,
}

impl SweepLog {
    /// Opens (or starts) the log at `path`. A last line that does not parse, the trace of a run
    /// killed mid-write, is dropped and the file rewritten without it; a bad line before the last
    /// is an error naming its line number (the file is someone else's, or was edited).
    pub fn open(path: &Path) -> Result<Self> {
        let records = if path.exists() {
            read_records(path)?
        } else {
            Vec::new()
        };
        Ok(Self {
            path: path.to_path_buf(),
            records,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn records(&self) -> &[SweepRecord] {
        &self.records
    }

    /// Whether a job with this key is already logged.
    pub fn is_done(&self, key: &str) -> bool {
        self.records.iter().any(|r| r.job_key() == key)
    }

    /// Appends `record` as one line, synced to disk before returning.
    pub fn append(&mut self, record: SweepRecord) -> Result<()> {
        let line = serde_json::to_string(&record).map_err(|e| Error::Sweep {
            path: self.path.clone(),
            reason: format!("cannot encode a record: {e}"),
        })?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io("open", &self.path))?;
        writeln!(file, "{line}").map_err(io("append to", &self.path))?;
        file.sync_all().map_err(io("sync", &self.path))?;
        self.records.push(record);
        Ok(())
    }
}

fn read_records(path: &Path) -> Result<Vec<SweepRecord>> {
    let text = std::fs::read_to_string(path).map_err(io("read", path))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<SweepRecord>(line) {
            Ok(record) => records.push(record),
            Err(_) if index + 1 == lines.len() && !text.ends_with('\n') => {
                rewrite(path, &records)?;
                break;
            }
            Err(e) => {
                return Err(Error::Sweep {
                    path: path.to_path_buf(),
                    reason: format!(
                        "line {} is not a sweep record ({e}); move the file away to start afresh",
                        index + 1
                    ),
                });
            }
        }
    }
    Ok(records)
}

/// Replaces `path` by exactly `records`, through a temp file renamed into place.
fn rewrite(path: &Path, records: &[SweepRecord]) -> Result<()> {
    let mut text = String::new();
    for record in records {
        let line = serde_json::to_string(record).map_err(|e| Error::Sweep {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    write_atomically(path, text.as_bytes())
}

/// Writes `bytes` to a temp file beside `path`, syncs it and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp =
        tempfile::NamedTempFile::new_in(dir).map_err(io("create a temp file in", dir))?;
    temp.write_all(bytes).map_err(io("write", temp.path()))?;
    temp.as_file().sync_all().map_err(io("sync", temp.path()))?;
    temp.persist(path)
        .map_err(|e| io("rename into", path)(e.error))?;
    Ok(())
}

/// The records as CSV: fixed columns, then one column per quality measure any record has.
pub fn to_csv(records: &[SweepRecord]) -> String {
    let measures: Vec<String> = records
        .iter()
        .flat_map(|r| r.quality.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut csv = String::from(
        "method,point,rank,blocks,tensors,linear_params,linear_flops_per_token,removed,latency_ms,latency_p90_ms,compress_seconds",
    );
    for measure in &measures {
        csv.push(',');
        csv.push_str(measure);
    }
    csv.push_str(",error\n");
    let optional = |x: Option<f64>| x.map_or(String::new(), |x| format!("{x}"));
    for r in records {
        let blocks: Vec<String> = r.blocks.iter().map(usize::to_string).collect();
        let fields = [
            quote(&r.method),
            quote(&r.point),
            r.rank.map_or(String::new(), |x| x.to_string()),
            quote(&blocks.join(" ")),
            quote(&r.tensors.join(" ")),
            r.linear_params.to_string(),
            r.linear_flops_per_token.to_string(),
            format!("{}", r.removed),
            optional(r.latency_ms),
            optional(r.latency_p90_ms),
            format!("{}", r.compress_seconds),
        ];
        csv.push_str(&fields.join(","));
        for measure in &measures {
            csv.push(',');
            csv.push_str(&optional(r.quality.get(measure).copied()));
        }
        csv.push(',');
        csv.push_str(&quote(r.error.as_deref().unwrap_or("")));
        csv.push('\n');
    }
    csv
}

/// [`to_csv`] written atomically to `path`.
pub fn write_csv(records: &[SweepRecord], path: &Path) -> Result<()> {
    write_atomically(path, to_csv(records).as_bytes())
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Indices of the records on the Pareto front of (fewer linear parameters, higher `measure`):
/// those no other record matches or beats on both with one strictly better. Records without the
/// measure, or with an error, take no part. Sorted by parameters.
pub fn pareto_front(records: &[SweepRecord], measure: &str) -> Vec<usize> {
    let candidates: Vec<(usize, usize, f64)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.error.is_none())
        .filter_map(|(i, r)| {
            let q = *r.quality.get(measure)?;
            q.is_finite().then_some((i, r.linear_params, q))
        })
        .collect();
    let mut front: Vec<(usize, usize)> = candidates
        .iter()
        .filter(|&&(_, params, quality)| {
            !candidates
                .iter()
                .any(|&(_, p, q)| p <= params && q >= quality && (p < params || q > quality))
        })
        .map(|&(i, params, _)| (i, params))
        .collect();
    front.sort_by_key(|&(i, params)| (params, i));
    front.into_iter().map(|(i, _)| i).collect()
}

/// Runs every job not yet in `log` through `evaluate`, appending each record as it finishes;
/// `progress(done, total, record)` is told after each (jobs already logged count as done).
/// Returns how many jobs ran now.
pub fn run_sweep<E, P>(
    jobs: &[Job],
    log: &mut SweepLog,
    mut evaluate: E,
    mut progress: P,
) -> Result<usize>
where
    E: FnMut(&Job) -> Result<SweepRecord>,
    P: FnMut(usize, usize, &SweepRecord),
{
    let keys: Vec<String> = jobs.iter().map(Job::key).collect();
    let distinct: HashSet<&String> = keys.iter().collect();
    if distinct.len() != keys.len() {
        return Err(Error::Sweep {
            path: log.path.clone(),
            reason: "the job list names a (method, point) twice".into(),
        });
    }
    let mut done = jobs.iter().filter(|j| log.is_done(&j.key())).count();
    let mut ran = 0;
    for job in jobs {
        if log.is_done(&job.key()) {
            continue;
        }
        let record = evaluate(job)?;
        if record.job_key() != job.key() {
            return Err(Error::Sweep {
                path: log.path.clone(),
                reason: format!(
                    "the evaluation of {} returned a record for {}",
                    job.key(),
                    record.job_key()
                ),
            });
        }
        log.append(record)?;
        done += 1;
        ran += 1;
        if let Some(record) = log.records.last() {
            progress(done, jobs.len(), record);
        }
    }
    Ok(ran)
}
