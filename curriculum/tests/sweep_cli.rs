#![allow(clippy::unwrap_used)]
//! `lowrank sweep` and `lowrank compress --method tucker2` end to end on the tiny fixtures: the
//! design space is counted, every job is logged once, a rerun resumes without redoing any, the
//! logged quality equals an in-process compression's, and bad requests fail cleanly.

use std::collections::BTreeMap;

use compress::sweep::SweepRecord;
use compress::{
    Plan, RankRule, Sharing, Tucker2Options, compress_tucker2, load_compressed_sentence_encoder,
};
use models::bert::SentenceEncoder;
use models::candle::{DType, Device};

mod common;
use common::{check_fails, fixtures, stdout_of, temp_dir, tiny_bart};

fn tiny_bert() -> String {
    fixtures().join("tiny-bert").to_string_lossy().into_owned()
}

fn records(dir: &std::path::Path) -> Vec<SweepRecord> {
    records_named(dir, "results.jsonl")
}

fn encoder_sweep_args(out: &str) -> Vec<String> {
    [
        "sweep",
        "--model",
        &tiny_bert(),
        "--out",
        out,
        "--methods",
        "svd,tucker2",
        "--ranks",
        "1,2",
        "--block-sets",
        "0-1;1",
        "--tensor-sets",
        "qkvo;v",
        "--latency-runs",
        "1",
        "--eval-count",
        "6",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn encoder_sweep_logs_every_job_once_and_resumes() {
    let dir = temp_dir();
    let out = dir.path().join("sweep");
    let args = encoder_sweep_args(&out.to_string_lossy());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = stdout_of(&args);
    assert!(
        stdout.contains("|S| = (2^2 − 1)(2^4 − 1)·2 + 1 = 91"),
        "{stdout}"
    );
    // The original, then 2 methods × 2 block sets × 2 tensor sets × 2 ranks.
    let logged = records(&out);
    assert_eq!(logged.len(), 1 + 2 * 2 * 2 * 2);
    let original = &logged[0];
    assert_eq!(original.method, "original");
    assert!((original.quality["cosine"] - 1.0).abs() < 1e-5);
    for name in [
        "results.csv",
        "quality_vs_rank.svg",
        "latency_vs_rank.svg",
        "quality_vs_params.svg",
    ] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + logged.len());
    assert!(stdout.contains("Pareto front"), "{stdout}");

    // The logged cosine of one point is what compressing in process gives.
    let record = logged
        .iter()
        .find(|r| {
            r.method == "tucker2" && r.rank == Some(2) && r.blocks == [0, 1] && r.tensors.len() == 4
        })
        .unwrap();
    let encoder =
        SentenceEncoder::from_dir(fixtures().join("tiny-bert"), DType::F32, &Device::Cpu).unwrap();
    let mut compressed = encoder.clone();
    let plan = Plan::new(RankRule::Fixed(2))
        .select(record.tensors.iter().map(|t| format!("*.{t}")))
        .layers([0, 1]);
    let report = compress_tucker2(&mut compressed, &plan, &Tucker2Options::new(2)).unwrap();
    assert_eq!(record.linear_params, report.linear_params_after);
    let flops: usize = models::Linears::linears(&compressed)
        .iter()
        .map(|(_, l)| l.flops_per_token())
        .sum();
    assert_eq!(record.linear_flops_per_token, flops);
    assert!(flops < logged[0].linear_flops_per_token);
    assert!(record.removed > 0.0 && record.removed < 1.0);

    // A rerun finds every job done and runs none.
    let again = stdout_of(&args);
    assert!(
        again.contains(&format!("{} already in", logged.len())),
        "{again}"
    );
    assert_eq!(records(&out), logged);
}

#[test]
fn bart_sweep_scores_rouge_on_generated_dialogues() {
    let dir = temp_dir();
    let out = dir.path().join("bart");
    let stdout = stdout_of(&[
        "sweep",
        "--model",
        &tiny_bart(),
        "--out",
        &out.to_string_lossy(),
        "--methods",
        "svd",
        "--ranks",
        "2",
        "--tensors",
        "q,v",
        "--latency-runs",
        "1",
        "--eval-count",
        "3",
    ]);
    assert!(
        stdout.contains("|S| = (2^2 − 1)(2^2 − 1)·1 + 1 = 10"),
        "{stdout}"
    );
    let logged = records(&out);
    assert_eq!(logged.len(), 2);
    let measures: Vec<&String> = logged[1].quality.keys().collect();
    assert_eq!(measures, ["rouge1", "rouge2", "rougeL"]);
    assert!(
        logged
            .iter()
            .all(|r| r.latency_ms.is_some_and(|ms| ms > 0.0))
    );
}

#[test]
fn sampled_sweep_draws_distinct_points_and_records_ranks_that_do_not_fit() {
    let dir = temp_dir();
    let out = dir.path().join("sample");
    stdout_of(&[
        "sweep",
        "--model",
        &tiny_bert(),
        "--out",
        &out.to_string_lossy(),
        "--methods",
        "svd",
        "--ranks",
        "1,31",
        "--sample",
        "6",
        "--seed",
        "3",
        "--latency-runs",
        "1",
        "--eval-count",
        "4",
    ]);
    let logged = records(&out);
    assert_eq!(logged.len(), 6);
    let points: std::collections::HashSet<&str> = logged.iter().map(|r| r.point.as_str()).collect();
    assert_eq!(points.len(), 6);
    // Rank 31 of a 32×32 layer would not compress: logged as skipped, not a failed sweep.
    for record in logged.iter().filter(|r| r.rank == Some(31)) {
        let error = record.error.as_deref().unwrap();
        assert!(error.contains("rank 31"), "{error}");
    }
}

#[test]
fn tucker2_compression_saves_groups_that_reload() {
    let dir = temp_dir();
    let out = dir.path().join("tucker");
    let stdout = stdout_of(&[
        "compress",
        "--model",
        &tiny_bert(),
        "--method",
        "tucker2",
        "--sharing",
        "per-tensor",
        "--rank",
        "3",
        "--out",
        &out.to_string_lossy(),
        "--text",
        "my card is lost",
    ]);
    assert_eq!(stdout.matches("group ").count(), 4, "{stdout}");
    assert!(
        stdout.contains("embedding cosine to the original"),
        "{stdout}"
    );
    let (reloaded, manifest) =
        load_compressed_sentence_encoder(&out, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(manifest.groups.len(), 4);
    let mut expected =
        SentenceEncoder::from_dir(fixtures().join("tiny-bert"), DType::F32, &Device::Cpu).unwrap();
    let plan = Plan::new(RankRule::Fixed(3)).select(["*.attention.*"]);
    compress_tucker2(
        &mut expected,
        &plan,
        &Tucker2Options::new(3).sharing(Sharing::PerTensor),
    )
    .unwrap();
    let texts = ["my card is lost", "reset the PIN"];
    let a: Vec<Vec<f32>> = reloaded.embed(&texts).unwrap().to_vec2().unwrap();
    let b: Vec<Vec<f32>> = expected.embed(&texts).unwrap().to_vec2().unwrap();
    let diff = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "reloaded embeddings differ by {diff}");
}

#[test]
fn bad_sweeps_and_tucker2_requests_exit_2_naming_the_problem() {
    let dir = temp_dir();
    let out = dir.path().join("bad");
    let out = out.to_string_lossy();
    let bert = tiny_bert();
    let base = ["sweep", "--model", bert.as_str(), "--out", &out];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let cases: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::from([
        (
            "method",
            (with(&["--methods", "magic"]), vec!["magic", "tucker2"]),
        ),
        ("block", (with(&["--blocks", "9"]), vec!["no block 9"])),
        (
            "tensor",
            (with(&["--tensor-sets", "qx"]), vec!["unknown tensor \"x\""]),
        ),
        (
            "sample",
            (
                with(&["--sample", "5", "--block-sets", "0"]),
                vec!["--sample"],
            ),
        ),
        (
            "calibration",
            (with(&["--methods", "whitened"]), vec!["--calibration"]),
        ),
        ("rank", (with(&["--ranks", "0"]), vec!["rank 0"])),
    ]);
    for (name, (args, needles)) in &cases {
        eprintln!("case {name}");
        check_fails(args, needles);
    }
    let tucker_out = dir.path().join("t");
    check_fails(
        &[
            "compress",
            "--model",
            &bert,
            "--method",
            "tucker2",
            "--keep",
            "0.5",
            "--out",
            &tucker_out.to_string_lossy(),
        ],
        &["--rank"],
    );
    check_fails(
        &[
            "compress",
            "--model",
            &bert,
            "--method",
            "tucker2",
            "--rank",
            "40",
            "--out",
            &tucker_out.to_string_lossy(),
        ],
        &["rank 40", "choose a rank in 1..="],
    );
    check_fails(
        &[
            "compress",
            "--model",
            &bert,
            "--method",
            "tucker2",
            "--sharing",
            "odd",
            "--rank",
            "2",
            "--out",
            &tucker_out.to_string_lossy(),
        ],
        &["sharing"],
    );
}

#[test]
fn findings_quick_run_writes_a_report_from_its_logged_numbers() {
    let dir = temp_dir();
    let out = dir.path().join("findings");
    let args = [
        "findings",
        "--minilm",
        &tiny_bert(),
        "--bart",
        &tiny_bart(),
        "--out",
        &out.to_string_lossy(),
        "--quick",
        "--latency-runs",
        "1",
    ];
    stdout_of(&args);
    let report = std::fs::read_to_string(out.join("findings.md")).unwrap();
    for needle in [
        "### Cosine against attention parameters kept",
        "**1. Rank 1 can be enough.**",
        "## The small BART summarizer",
        "| dense | 0.0% |",
    ] {
        assert!(report.contains(needle), "{needle:?} not in {report}");
    }
    // The one-block rank-1 cosines in the table are the logged ones.
    let minilm = records_named(&out, "minilm.jsonl");
    for block in [0usize, 1] {
        let record = minilm
            .iter()
            .find(|r| r.method == "tucker2" && r.rank == Some(1) && r.blocks == [block])
            .unwrap();
        let row = format!("| {block} | {:.3} |", record.quality["cosine"]);
        assert!(report.contains(&row), "{row:?} not in {report}");
    }
    let bart = records_named(&out, "bart.jsonl");
    assert_eq!(bart.len(), 3, "dense, rank 1 and the largest useful rank");
    // A second run resumes: nothing is measured again.
    stdout_of(&args);
    assert_eq!(records_named(&out, "minilm.jsonl"), minilm);
    assert_eq!(records_named(&out, "bart.jsonl"), bart);
}

fn records_named(dir: &std::path::Path, name: &str) -> Vec<SweepRecord> {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn per_head_tucker2_compression_reloads() {
    let dir = temp_dir();
    let out = dir.path().join("heads");
    let stdout = stdout_of(&[
        "compress",
        "--model",
        &tiny_bert(),
        "--method",
        "tucker2",
        "--layers",
        "*.query",
        "--layers",
        "*.key",
        "--layers",
        "*.value",
        "--rank",
        "8",
        "--head-rank",
        "4",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(stdout.contains("6 layers: "), "{stdout}");
    let (_, manifest) = load_compressed_sentence_encoder(&out, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        (manifest.groups[0].heads, manifest.groups[0].head_rank),
        (4, Some(4))
    );
    check_fails(
        &[
            "compress",
            "--model",
            &tiny_bert(),
            "--rank",
            "2",
            "--head-rank",
            "2",
            "--out",
            &out.to_string_lossy(),
        ],
        &["--head-rank are for --method tucker2"],
    );
}
