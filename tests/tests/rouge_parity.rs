#![allow(clippy::unwrap_used)]
//! ROUGE against Google's `rouge-score` (the reference venv) on 1,200 seeded pairs: short and long
//! (300 and 2,000 words), empty and blank, unicode, punctuation, numbers, repeated words, multi-line
//! summaries for ROUGE-Lsum, and words the Porter stemmer changes. The teaching implementation
//! (`eval::rouge`) and the `rougers` path (`eval::rouge::fast`) must both give rouge-score's
//! numbers, with and without stemming; ROUGE-S against a Python version written from Lin (2004).

use std::sync::OnceLock;

use eval::rouge::{Rouge, Score, fast::FastRouge, rouge_s, tokenize};
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;

const WORDS: &[&str] = &[
    "the",
    "card",
    "cards",
    "arrived",
    "arriving",
    "arrival",
    "refund",
    "refunds",
    "refunded",
    "transfer",
    "transfers",
    "agent",
    "agents",
    "customer",
    "customers",
    "blocked",
    "blocking",
    "happily",
    "generalization",
    "connections",
    "connected",
    "running",
    "runs",
    "ran",
    "is",
    "was",
    "a",
    "an",
    "of",
    "to",
    "on",
    "in",
    "Anna",
    "Tom",
    "Berlin",
    "€42.50",
    "$737.35",
    "CS-198017",
    "ATM",
    "PIN",
    "don't",
    "e-mail",
    "2026",
    "3rd",
    "café",
    "naïve",
    "Zürich",
    "東京",
    "Ελληνικά",
    "🙂",
    "straße",
    "İstanbul",
    "KELVIN\u{212A}",
    "—",
    "...",
    "(note)",
    "sky",
    "news",
    "dying",
    "lying",
    "agreed",
    "feed",
    "hopping",
    "falling",
    "relational",
    "conditional",
    "rational",
    "valency",
    "digitizer",
    "operator",
    "triplicate",
    "formative",
    "electriciti",
    "hopeful",
    "goodness",
    "adjustable",
    "replacement",
    "adoption",
    "gyroscopic",
];

fn sentence(rng: &mut ChaCha8Rng, words: usize) -> String {
    let mut text: Vec<String> = (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())].to_string())
        .collect();
    if rng.random_bool(0.3) {
        let i = rng.random_range(0..text.len().max(1));
        if let Some(word) = text.get_mut(i) {
            word.push_str(if rng.random_bool(0.5) { "," } else { "!" });
        }
    }
    text.join(if rng.random_bool(0.1) { "  " } else { " " })
}

fn text(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..20) {
        0 => String::new(),
        1 => " \n\t ".to_string(),
        // Long texts, a few of 2,000 words: rouge-score's LCS in Python is quadratic.
        2 => {
            let words = if rng.random_bool(0.1) { 2000 } else { 300 };
            sentence(rng, words)
        }
        3..=8 => (0..rng.random_range(1..5))
            .map(|_| {
                let words = rng.random_range(1..15);
                sentence(rng, words)
            })
            .collect::<Vec<_>>()
            .join(if rng.random_bool(0.2) { "\n\n" } else { "\n" }),
        _ => {
            let words = rng.random_range(1..40);
            sentence(rng, words)
        }
    }
}

/// Pairs sharing words often (a prediction derived from its target), so scores spread over 0..1.
fn pairs() -> Vec<(String, String)> {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    (0..1200)
        .map(|i| {
            let target = text(&mut rng);
            let prediction = if i % 3 == 0 {
                text(&mut rng)
            } else {
                let mut words: Vec<&str> = target.split(' ').collect();
                words.retain(|_| rng.random_bool(0.7));
                let mut prediction = words.join(" ");
                if rng.random_bool(0.5) {
                    prediction.push(' ');
                    prediction.push_str(&sentence(&mut rng, 5));
                }
                prediction
            };
            (target, prediction)
        })
        .collect()
}

/// The pairs and rouge-score's results, computed once for both tests.
fn reference() -> &'static (Vec<(String, String)>, serde_json::Value) {
    static REFERENCE: OnceLock<(Vec<(String, String)>, serde_json::Value)> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let pairs = pairs();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.json");
        std::fs::write(&path, serde_json::to_string(&pairs).unwrap()).unwrap();
        let reference = parity::reference("rouge.py", [&path]);
        (pairs, reference)
    })
}

fn triple(score: &Score) -> [f64; 3] {
    [score.precision, score.recall, score.fmeasure]
}

fn expected(value: &serde_json::Value) -> [f64; 3] {
    let numbers: Vec<f64> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    [numbers[0], numbers[1], numbers[2]]
}

fn assert_same(actual: [f64; 3], expected: [f64; 3], what: &str) {
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (a - e).abs() <= 1e-12,
            "{what}: {actual:?} vs rouge-score {expected:?}"
        );
    }
}

#[test]
fn rouge_equals_rouge_score_on_1200_pairs_with_and_without_stemming() {
    let (pairs, reference) = reference();

    for (name, stem) in [("plain", false), ("stemmed", true)] {
        let teaching = Rouge::new(stem);
        let fast = FastRouge::new(stem).unwrap();
        let expected_scores = reference["scores"][name].as_array().unwrap();
        for (i, ((target, prediction), want)) in pairs.iter().zip(expected_scores).enumerate() {
            let ours = teaching.score(target, prediction);
            let theirs = fast.score(target, prediction);
            for (key, ours, theirs) in [
                ("rouge1", ours.rouge1, theirs.rouge1),
                ("rouge2", ours.rouge2, theirs.rouge2),
                ("rougeL", ours.rouge_l, theirs.rouge_l),
                ("rougeLsum", ours.rouge_lsum, theirs.rouge_lsum),
            ] {
                let what = format!("pair {i} {key} {name} ({target:.40?} / {prediction:.40?})");
                assert_same(
                    triple(&ours),
                    expected(&want[key]),
                    &format!("eval::rouge {what}"),
                );
                assert_same(
                    triple(&theirs),
                    expected(&want[key]),
                    &format!("rougers {what}"),
                );
            }
        }
    }
    // The set exercises what it claims: some empty scores, some perfect, and many in between.
    let teaching = Rouge::new(false);
    let f1: Vec<f64> = pairs
        .iter()
        .map(|(t, p)| teaching.score(t, p).rouge1.fmeasure)
        .collect();
    assert!(f1.iter().filter(|&&f| f == 0.0).count() >= 50);
    assert!(f1.iter().filter(|&&f| f > 0.3 && f < 0.95).count() >= 500);
}

#[test]
fn rouge_s_equals_the_papers_definition() {
    let (pairs, reference) = reference();
    let s4 = reference["rouge_s4"].as_array().unwrap();
    let s_star = reference["rouge_s_star"].as_array().unwrap();
    for (i, (target, prediction)) in pairs.iter().enumerate() {
        let (t, p) = (tokenize(target, false), tokenize(prediction, false));
        assert_same(
            triple(&rouge_s(&t, &p, Some(4))),
            expected(&s4[i]),
            &format!("S4 pair {i}"),
        );
        if let Some(want) = s_star.get(i) {
            assert_same(
                triple(&rouge_s(&t, &p, None)),
                expected(want),
                &format!("S* pair {i}"),
            );
        }
    }
}
