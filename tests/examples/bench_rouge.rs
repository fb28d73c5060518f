//! ROUGE speed beside Google's `rouge-score`, measured in one run on the same pairs:
//! `cargo run --release -p parity --example bench_rouge [PAIRS]` (default 2,000).
//!
//! The pairs are summary-sized (10–60 words, a third multi-line), as a summarization sweep scores
//! them. rouge-score (the reference venv, `tests/reference/rouge.py`) times its own scoring loop;
//! here the teaching implementation (`eval::rouge::Rouge`) and the `rougers` path
//! (`eval::rouge::fast`) score the same pairs on one thread, and every score is checked equal to
//! rouge-score's before any speed is printed. ROUGE-1/2/L/Lsum, with and without stemming.

use std::time::Instant;

use eval::rouge::{Rouge, RougeScores, fast::FastRouge};
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;

const WORDS: &[&str] = &[
    "the",
    "customer",
    "card",
    "arrived",
    "refund",
    "agent",
    "transfer",
    "blocked",
    "sends",
    "replacement",
    "charged",
    "twice",
    "explains",
    "account",
    "address",
    "Berlin",
    "Anna",
    "€42.50",
    "days",
    "after",
    "before",
    "weekend",
    "exchange",
    "rate",
    "pending",
    "verification",
    "statement",
    "download",
    "app",
    "locked",
    "password",
    "reset",
    "hours",
    "claim",
    "opens",
];

fn pairs(n: usize) -> Vec<(String, String)> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let text = |rng: &mut ChaCha8Rng| {
        let words = rng.random_range(10..60);
        let mut out: Vec<&str> = (0..words)
            .map(|_| WORDS[rng.random_range(0..WORDS.len())])
            .collect();
        if rng.random_bool(0.33) {
            let at = rng.random_range(1..out.len());
            out.insert(at, "\n");
        }
        out.join(" ")
    };
    (0..n).map(|_| (text(&mut rng), text(&mut rng))).collect()
}

fn four(s: &RougeScores) -> [f64; 12] {
    let mut out = [0.0; 12];
    for (i, score) in [s.rouge1, s.rouge2, s.rouge_l, s.rouge_lsum]
        .iter()
        .enumerate()
    {
        out[3 * i] = score.precision;
        out[3 * i + 1] = score.recall;
        out[3 * i + 2] = score.fmeasure;
    }
    out
}

fn expected(value: &serde_json::Value) -> [f64; 12] {
    let mut out = [0.0; 12];
    for (i, key) in ["rouge1", "rouge2", "rougeL", "rougeLsum"]
        .iter()
        .enumerate()
    {
        for j in 0..3 {
            out[3 * i + j] = value[key][j].as_f64().unwrap_or(f64::NAN);
        }
    }
    out
}

/// Seconds per pass, the best of `rounds` (the least disturbed by other work on the machine).
fn best_of(rounds: usize, mut pass: impl FnMut() -> Vec<RougeScores>) -> (f64, Vec<RougeScores>) {
    let mut best = f64::INFINITY;
    let mut scores = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        scores = pass();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, scores)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(2000), |a| a.parse())?;
    let pairs = pairs(n);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pairs.json");
    std::fs::write(&path, serde_json::to_string(&pairs)?)?;
    eprintln!("rouge-score on {n} pairs (reference venv)…");
    let reference = parity::reference("rouge.py", [&path]);

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("ROUGE-1/2/L/Lsum on {n} summary-sized pairs; rouge-score one pass, Rust best of 3");
    println!(
        "| stemming | rouge-score (s) | eval::rouge, 1 thread (s) | speed-up | rougers, 1 thread (s) \
         | speed-up | rougers batch, {cores} cores (s) | speed-up | identical |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, stem) in [("plain", false), ("stemmed", true)] {
        let python = reference["seconds"][name]
            .as_f64()
            .ok_or("no timing from rouge.py")?;
        let teaching = Rouge::new(stem);
        let fast = FastRouge::new(stem)?;
        let (ours, our_scores) = best_of(3, || {
            pairs.iter().map(|(t, p)| teaching.score(t, p)).collect()
        });
        let (rougers, fast_scores) = best_of(3, || {
            pairs
                .iter()
                .map(|(t, p)| fast.score_rouge_score_variants(t, p))
                .collect()
        });
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(t, p)| (t.as_str(), p.as_str()))
            .collect();
        let (parallel, parallel_scores) =
            best_of(3, || fast.score_batch_rouge_score_variants(&refs));
        if parallel_scores != fast_scores {
            return Err("the parallel batch differs from the one-thread scores".into());
        }
        let want = reference["scores"][name]
            .as_array()
            .ok_or("no scores from rouge.py")?;
        let identical = want
            .iter()
            .zip(&our_scores)
            .zip(&fast_scores)
            .all(|((w, o), f)| {
                let w = expected(w);
                four(o).iter().zip(&w).all(|(a, b)| (a - b).abs() <= 1e-12)
                    && four(f).iter().zip(&w).all(|(a, b)| (a - b).abs() <= 1e-12)
            });
        println!(
            "| {name} | {python:.3} | {ours:.4} | {:.0}× | {rougers:.4} | {:.0}× | {parallel:.4} | {:.0}× | {} |",
            python / ours,
            python / rougers,
            python / parallel,
            if identical { "yes" } else { "NO" }
        );
        if !identical {
            return Err(format!("{name}: scores differ from rouge-score").into());
        }
    }
    Ok(())
}
