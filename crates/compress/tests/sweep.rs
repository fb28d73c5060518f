//! Sweep logs: resuming skips finished jobs, a torn last line is dropped, a corrupt earlier line
//! is an error, the CSV quotes what needs it, and the Pareto front is the brute-force one.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use compress::sweep::{Job, SweepLog, SweepRecord, pareto_front, run_sweep, to_csv};
use compress::{DesignPoint, DesignSpace};
use tempfile::TempDir;

fn record(job: &Job, params: usize, cosine: f64) -> SweepRecord {
    SweepRecord {
        method: job.method.clone(),
        point: job.point.key(),
        rank: job.point.rank(),
        blocks: vec![],
        tensors: vec![],
        linear_params: params,
        linear_flops_per_token: 2 * params,
        removed: 0.0,
        quality: BTreeMap::from([("cosine".to_string(), cosine)]),
        latency_ms: Some(1.0),
        latency_p90_ms: None,
        compress_seconds: 0.0,
        error: None,
    }
}

fn jobs() -> Vec<Job> {
    let space = DesignSpace::new(0..2, ["q", "v"], [1, 2]).unwrap();
    let mut jobs = Vec::new();
    for method in ["svd", "tucker2"] {
        for point in space.iter() {
            if method == "tucker2" && point == DesignPoint::Original {
                continue;
            }
            jobs.push(Job {
                method: method.into(),
                point,
            });
        }
    }
    jobs
}

#[test]
fn a_stopped_sweep_resumes_where_it_was_and_drops_a_torn_line() {
    let temp = TempDir::new().unwrap();
    let path = temp.path().join("results.jsonl");
    let jobs = jobs();
    let mut log = SweepLog::open(&path).unwrap();
    let mut calls = 0;
    let stop_after = 5;
    let result = run_sweep(
        &jobs,
        &mut log,
        |job| {
            calls += 1;
            if calls > stop_after {
                return Err(compress::Error::InvalidDesignSpace {
                    reason: "interrupted".into(),
                });
            }
            Ok(record(job, calls, 0.5))
        },
        |_, _, _| {},
    );
    assert!(result.is_err());
    // A crash mid-write leaves half a line.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"method\":\"svd\",\"po");
    std::fs::write(&path, text).unwrap();

    let mut log = SweepLog::open(&path).unwrap();
    assert_eq!(log.records().len(), stop_after);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().lines().count(),
        stop_after
    );
    let mut evaluated = Vec::new();
    let mut last_progress = (0, 0);
    let ran = run_sweep(
        &jobs,
        &mut log,
        |job| {
            evaluated.push(job.key());
            Ok(record(job, 100, 0.9))
        },
        |done, total, _| last_progress = (done, total),
    )
    .unwrap();
    assert_eq!(ran, jobs.len() - stop_after);
    assert_eq!(last_progress, (jobs.len(), jobs.len()));
    assert!(
        !evaluated.contains(&jobs[0].key()),
        "finished jobs are not rerun"
    );
    let reopened = SweepLog::open(&path).unwrap();
    assert_eq!(reopened.records().len(), jobs.len());
    assert_eq!(reopened.records(), log.records());
}

#[test]
fn a_corrupt_line_before_the_last_is_an_error_naming_it() {
    let temp = TempDir::new().unwrap();
    let path = temp.path().join("results.jsonl");
    let jobs = jobs();
    let good = serde_json::to_string(&record(&jobs[0], 1, 0.1)).unwrap();
    std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
    let message = SweepLog::open(&path).unwrap_err().to_string();
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn csv_quotes_fields_and_lists_every_measure() {
    let jobs = jobs();
    let mut a = record(&jobs[1], 10, 0.5);
    a.error = Some("rank 9, too big".into());
    let mut b = record(&jobs[2], 20, 0.7);
    b.quality.insert("rouge1".into(), 0.25);
    let csv = to_csv(&[a, b]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].ends_with(",cosine,rouge1,error"), "{}", lines[0]);
    assert!(
        lines[1].ends_with(",0.5,,\"rank 9, too big\""),
        "{}",
        lines[1]
    );
    assert!(lines[2].ends_with(",0.7,0.25,"), "{}", lines[2]);
}

#[test]
fn pareto_front_equals_brute_force() {
    let jobs = jobs();
    let points = [
        (100, 0.9),
        (80, 0.9),
        (80, 0.95),
        (60, 0.7),
        (60, 0.7),
        (50, 0.2),
        (120, 0.99),
        (90, 0.5),
    ];
    let records: Vec<SweepRecord> = points
        .iter()
        .zip(&jobs)
        .map(|(&(p, q), job)| record(job, p, q))
        .collect();
    let front = pareto_front(&records, "cosine");
    // (80, 0.95) beats (100, 0.9) and (80, 0.9); (60, 0.7) twice: equal points do not dominate
    // each other; (90, 0.5) is beaten by (80, 0.95).
    assert_eq!(front, vec![5, 3, 4, 2, 6]);
    assert!(pareto_front(&records, "missing").is_empty());
}
