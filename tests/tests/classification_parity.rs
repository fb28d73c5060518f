#![allow(clippy::unwrap_used)]
//! Classification scores against scikit-learn (the reference venv) on 243 seeded cases: one
//! class, classes never predicted, classes absent from the truths, all correct, all wrong, noisy
//! and skewed classifiers, one to three samples, and 77 classes with 3,000 samples (an intent
//! classifier's size). Every number of `eval::classification` must equal scikit-learn's with
//! `labels=list(range(n))` and `zero_division=0` to 1e-12, counts and the report's text exactly.

use eval::classification::{
    ClassificationReport, accuracy, classification_report, confusion_matrix, macro_f1,
    macro_f1_present, per_class, weighted_f1,
};
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Absolute tolerance: every score is a ratio of counts, so only the last bits may differ.
const TOLERANCE: f64 = 1e-12;

/// One case: the number of classes, the truths and the predictions.
struct Case {
    n_classes: usize,
    truths: Vec<usize>,
    predictions: Vec<usize>,
}

/// `count` labels drawn uniformly from `0..n`.
fn uniform(rng: &mut ChaCha8Rng, n: usize, count: usize) -> Vec<usize> {
    (0..count).map(|_| rng.random_range(0..n)).collect()
}

/// Predictions equal to the truth with probability `p_right`, else uniform over `0..n`.
fn noisy(rng: &mut ChaCha8Rng, truths: &[usize], n: usize, p_right: f64) -> Vec<usize> {
    truths
        .iter()
        .map(|&t| {
            if rng.random_bool(p_right) {
                t
            } else {
                rng.random_range(0..n)
            }
        })
        .collect()
}

fn case(rng: &mut ChaCha8Rng, kind: usize) -> Case {
    let n = rng.random_range(2..=12);
    let m = rng.random_range(1..=60);
    let (n_classes, truths, predictions) = match kind {
        // One class: every label is 0.
        0 => (1, vec![0; m], vec![0; m]),
        // Classes never predicted: predictions use only the lower half of the classes.
        1 => {
            let truths = uniform(rng, n, m);
            let predictions = uniform(rng, n.div_ceil(2), m);
            (n, truths, predictions)
        }
        // Classes absent from the truths: truths use only the lower half.
        2 => {
            let truths = uniform(rng, n.div_ceil(2), m);
            let predictions = uniform(rng, n, m);
            (n, truths, predictions)
        }
        // All correct, usually with some classes absent from both.
        3 => {
            let truths = uniform(rng, n, m);
            (n, truths.clone(), truths)
        }
        // All wrong: every prediction another class.
        4 => {
            let truths = uniform(rng, n, m);
            let predictions = truths
                .iter()
                .map(|&t| (t + rng.random_range(1..n)) % n)
                .collect();
            (n, truths, predictions)
        }
        // A classifier of any quality.
        5 => {
            let truths = uniform(rng, n, m);
            let p_right = rng.random_range(0.0..1.0);
            let predictions = noisy(rng, &truths, n, p_right);
            (n, truths, predictions)
        }
        // One to three samples over up to five classes.
        6 => {
            let n = rng.random_range(1..=5);
            let m = rng.random_range(1..=3);
            (n, uniform(rng, n, m), uniform(rng, n, m))
        }
        // Imbalanced: most truths class 0, and a classifier that leans towards it.
        _ => {
            let truths: Vec<usize> = (0..m)
                .map(|_| {
                    if rng.random_bool(0.8) {
                        0
                    } else {
                        rng.random_range(0..n)
                    }
                })
                .collect();
            let predictions = truths
                .iter()
                .map(|&t| if rng.random_bool(0.3) { 0 } else { t })
                .collect();
            (n, truths, predictions)
        }
    };
    Case {
        n_classes,
        truths,
        predictions,
    }
}

/// 77 classes, 3,000 samples: a decent classifier that never predicts the last 5 classes.
fn intents(rng: &mut ChaCha8Rng, p_right: f64) -> Case {
    let truths = uniform(rng, 77, 3000);
    let predictions = noisy(rng, &truths, 77, p_right)
        .into_iter()
        .map(|p| if p >= 72 { rng.random_range(0..72) } else { p })
        .collect();
    Case {
        n_classes: 77,
        truths,
        predictions,
    }
}

fn cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let mut cases: Vec<Case> = (0..240).map(|i| case(&mut rng, i % 8)).collect();
    for p_right in [0.9, 0.6, 0.0] {
        cases.push(intents(&mut rng, p_right));
    }
    cases
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn counts(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| usize::try_from(v.as_u64().unwrap()).unwrap())
        .collect()
}

/// Asserts `max |actual − expected| <= TOLERANCE`, naming the worst index.
fn assert_close(what: &str, actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let (worst_index, worst) = actual
        .iter()
        .zip(expected)
        // A NaN on either side is as far off as can be.
        .map(|(a, e)| {
            let d = (a - e).abs();
            if d.is_nan() { f64::INFINITY } else { d }
        })
        .enumerate()
        .fold(
            (0, 0.0),
            |best, (i, d)| if d > best.1 { (i, d) } else { best },
        );
    assert!(
        worst <= TOLERANCE,
        "{what}: max |difference| {worst:e} at index {worst_index}: {} vs scikit-learn {}",
        actual[worst_index],
        expected[worst_index]
    );
}

/// Every number and the text of `report` (and the standalone functions) against scikit-learn's.
fn check(i: usize, case: &Case, report: &ClassificationReport, want: &Value) {
    let (t, p, n) = (&case.truths, &case.predictions, case.n_classes);
    let what = |name: &str| format!("case {i} ({n} classes, {} samples) {name}", t.len());
    let scores = |f: fn(&eval::classification::ClassScores) -> f64| -> Vec<f64> {
        report.classes.iter().map(f).collect()
    };
    assert_close(
        &what("precision"),
        &scores(|c| c.precision),
        &numbers(&want["precision"]),
    );
    assert_close(
        &what("recall"),
        &scores(|c| c.recall),
        &numbers(&want["recall"]),
    );
    assert_close(&what("f1"), &scores(|c| c.f1), &numbers(&want["f1"]));
    let support: Vec<usize> = report.classes.iter().map(|c| c.support).collect();
    assert_eq!(support, counts(&want["support"]), "{}", what("support"));
    for (name, avg) in [
        ("macro", report.macro_avg),
        ("weighted", report.weighted_avg),
    ] {
        assert_close(
            &what(name),
            &[avg.precision, avg.recall, avg.f1],
            &numbers(&want[name]),
        );
    }
    let key = |k: &str| want[k].as_f64().unwrap();
    assert_close(
        &what("accuracy, macro F1, weighted F1, macro F1 over present labels"),
        &[
            report.accuracy,
            accuracy(t, p).unwrap(),
            macro_f1(t, p, n).unwrap(),
            weighted_f1(t, p, n).unwrap(),
            macro_f1_present(t, p).unwrap(),
        ],
        &[
            key("accuracy"),
            key("accuracy"),
            key("macro_f1"),
            key("weighted_f1"),
            key("macro_f1_present"),
        ],
    );
    let confusion: Vec<Vec<usize>> = want["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(counts)
        .collect();
    assert_eq!(report.confusion, confusion, "{}", what("confusion matrix"));
    assert_eq!(
        confusion_matrix(t, p, n).unwrap(),
        confusion,
        "{}",
        what("confusion_matrix")
    );
    assert_eq!(
        per_class(t, p, n).unwrap(),
        report.classes,
        "{}",
        what("per_class")
    );
    assert_eq!(
        report.table(),
        integer_supports(want["report"].as_str().unwrap()),
        "{}",
        what("classification_report text")
    );
}

/// scikit-learn's report with the last column as integers: when no prediction is right, its
/// `multilabel_confusion_matrix` counts in floats (the "pathological case" in
/// `sklearn/metrics/_classification.py`) and the report prints supports as `1.0`; Lowrank prints
/// counts as integers always.
fn integer_supports(report: &str) -> String {
    let mut fixed = String::new();
    for line in report.lines() {
        // The support is the last field, right-aligned after a space: "      1.0" becomes "        1".
        match line.rsplit_once(' ') {
            Some((head, last)) if last.ends_with(".0") && last.parse::<f64>().is_ok() => {
                let width = last.len() + 1;
                let support = last.trim_end_matches(".0");
                fixed.push_str(&format!("{head}{support:>width$}"));
            }
            _ => fixed.push_str(line),
        }
        fixed.push('\n');
    }
    fixed
}

#[test]
fn classification_scores_equal_scikit_learns_on_243_cases() {
    let cases = cases();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    let json: Vec<Value> = cases
        .iter()
        .map(
            |c| json!({"n_classes": c.n_classes, "truths": c.truths, "predictions": c.predictions}),
        )
        .collect();
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    let reference = parity::reference("classification.py", [&path]);
    let expected = reference["cases"].as_array().unwrap();
    assert_eq!(expected.len(), cases.len());

    let mut reports = Vec::new();
    for (i, (case, want)) in cases.iter().zip(expected).enumerate() {
        let report =
            classification_report(&case.truths, &case.predictions, case.n_classes).unwrap();
        check(i, case, &report, want);
        reports.push(report);
    }

    // The set exercises what it claims.
    let count = |f: &dyn Fn(&Case, &ClassificationReport) -> bool| {
        cases.iter().zip(&reports).filter(|(c, r)| f(c, r)).count()
    };
    let never_predicted =
        |r: &ClassificationReport, k: usize| r.confusion.iter().all(|row| row[k] == 0);
    assert!(count(&|c, _| c.n_classes == 1) >= 20);
    assert!(
        count(&|c, r| (0..c.n_classes).any(|k| r.classes[k].support > 0 && never_predicted(r, k)))
            >= 50
    );
    assert!(
        count(&|c, r| (0..c.n_classes).any(|k| r.classes[k].support == 0 && !never_predicted(r, k)))
            >= 30
    );
    assert!(
        count(&|c, r| (0..c.n_classes).any(|k| r.classes[k].support == 0 && never_predicted(r, k)))
            >= 30
    );
    assert!(count(&|_, r| r.accuracy == 1.0) >= 40);
    assert!(count(&|_, r| r.accuracy == 0.0) >= 30);
    assert!(count(&|_, r| r.accuracy > 0.2 && r.accuracy < 0.9) >= 40);
    assert!(count(&|c, _| c.n_classes == 77 && c.truths.len() == 3000) == 3);
}
