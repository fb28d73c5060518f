//! Training and calibration: the linear probe against scikit-learn's logistic regression on the
//! same frozen features, LoRA fine-tuning (the loss falls; saved, reloaded and merged it predicts
//! what it predicted in memory), the threshold rule against brute force, and load errors.

#![allow(clippy::unwrap_used)]
mod common;

use std::process::Command;

use chat::data::{Catalog, IntentData};
use chat::model::{CARD_FILE, IntentModel};
use chat::training::{self, LoraSettings, TrainSettings, choose_threshold, threshold_scores};
use models::candle::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The first `n` intents of the embedded set: small enough to fine-tune in a test.
fn first_intents(n: usize) -> IntentData {
    let mut data = Catalog::embedded().unwrap().split();
    data.labels.truncate(n);
    for split in [&mut data.train, &mut data.valid, &mut data.test] {
        split.retain(|e| e.label < n);
    }
    data
}

#[test]
fn the_baseline_answers_the_embedded_test_set_and_rejects_out_of_scope() {
    let model = common::baseline_model();
    let data = Catalog::embedded().unwrap().split();
    let evaluation = chat::evaluate::evaluate(&model, &data).unwrap();
    println!(
        "baseline: accuracy {:.4}, macro-F1 {:.4}, threshold {:.3}, in-scope right {:.3}, out-of-scope rejected {:?}",
        evaluation.accuracy(),
        evaluation.macro_f1(),
        evaluation.threshold,
        evaluation.in_scope_correct,
        evaluation.oos_rejected
    );
    assert!(evaluation.accuracy() > 0.9, "{}", evaluation.accuracy());
    assert!(evaluation.macro_f1() > 0.9);
    assert!(evaluation.oos_rejected.unwrap() > 0.75);
    assert_eq!(evaluation.report.n_samples, data.test.len());
}

/// Our probe (softmax regression by AdamW, standardization folded into the head) and
/// scikit-learn's LogisticRegression on the same standardized frozen MiniLM features reach test
/// accuracies within two points of each other.
#[test]
fn the_linear_probe_matches_scikit_learn_logistic_regression() {
    let Some(python) = std::env::var_os("LOWRANK_PYTHON") else {
        eprintln!("skipped: needs LOWRANK_PYTHON (scikit-learn); `cargo xtask test` sets it");
        return;
    };
    let data = Catalog::embedded().unwrap().split();
    let encoder = common::encoder();
    let features = |examples: &[chat::data::Example]| -> Vec<Vec<f32>> {
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        texts
            .chunks(64)
            .flat_map(|chunk| {
                encoder
                    .pooled(&encoder.encode(chunk).unwrap())
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap()
            })
            .collect()
    };
    let labels = |examples: &[chat::data::Example]| -> Vec<usize> {
        examples.iter().map(|e| e.label).collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("features.json");
    std::fs::write(
        &input,
        serde_json::json!({
            "train_x": features(&data.train), "train_y": labels(&data.train),
            "test_x": features(&data.test), "test_y": labels(&data.test),
        })
        .to_string(),
    )
    .unwrap();
    let script = r#"
import json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
d = json.load(open(sys.argv[1]))
scaler = StandardScaler().fit(np.array(d["train_x"]))
clf = LogisticRegression(max_iter=2000).fit(scaler.transform(np.array(d["train_x"])), d["train_y"])
print(clf.score(scaler.transform(np.array(d["test_x"])), d["test_y"]))
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sklearn: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    let ours = chat::evaluate::evaluate(&common::baseline_model(), &data)
        .unwrap()
        .accuracy();
    println!("probe test accuracy: ours {ours:.4}, scikit-learn {sklearn:.4}");
    assert!(
        (ours - sklearn).abs() <= 0.02,
        "ours {ours}, scikit-learn {sklearn}"
    );
}

#[test]
fn lora_fine_tuning_lowers_the_loss_and_reloads_to_the_same_predictions() {
    let data = first_intents(6);
    let settings = TrainSettings {
        lora: Some(LoraSettings {
            r: 4,
            alpha: 8.0,
            targets: vec!["query".into(), "value".into()],
            dropout: 0.0,
        }),
        epochs: 2,
        batch_size: 16,
        lr: 2e-3,
        ..TrainSettings::default()
    };
    let encoder_dir = common::minilm_dir();
    let trained = training::train(
        common::encoder(),
        &encoder_dir,
        &data,
        &settings,
        &mut |_| {},
    )
    .unwrap();
    let losses = &trained.losses;
    assert_eq!(losses.len(), 2 * data.train.len().div_ceil(16));
    let head = losses[..4].iter().sum::<f64>() / 4.0;
    let tail = losses[losses.len() - 4..].iter().sum::<f64>() / 4.0;
    assert!(tail < head, "loss {head:.4} → {tail:.4}");

    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("model");
    trained.save(&saved).unwrap();
    for file in [
        CARD_FILE,
        "head.safetensors",
        "adapter_model.safetensors",
        "adapter_config.json",
    ] {
        assert!(saved.join(file).is_file(), "{file} is missing");
    }
    let texts: Vec<&str> = data.test.iter().map(|e| e.text.as_str()).collect();
    let before = trained.model.predict(&texts).unwrap();
    let reloaded = IntentModel::load(&saved, None, &Device::Cpu).unwrap();
    assert_eq!(reloaded.threshold(), trained.model.threshold());
    assert_eq!(reloaded.labels(), &data.labels[..]);
    let after = reloaded.predict(&texts).unwrap();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.label, a.label);
        for (x, y) in b.probabilities.iter().zip(&a.probabilities) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
    let accuracy = chat::evaluate::evaluate(&reloaded, &data)
        .unwrap()
        .accuracy();
    assert!(accuracy > 0.8, "6-intent accuracy {accuracy}");
}

/// The chosen threshold scores at least as well as every threshold on a fine grid.
#[test]
fn the_threshold_is_the_best_balance_of_answers_and_rejections() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..20 {
        let in_scope: Vec<(f32, bool)> = (0..rng.random_range(1..60))
            .map(|_| (rng.random::<f32>().powf(0.3), rng.random_bool(0.85)))
            .collect();
        let oos: Vec<f32> = (0..rng.random_range(1..40))
            .map(|_| rng.random::<f32>().powf(2.0))
            .collect();
        let t = choose_threshold(&in_scope, &oos, 0.98);
        let score = |t: f32| {
            let (a, b) = threshold_scores(&in_scope, &oos, t);
            (a + b) / 2.0
        };
        let best_on_grid = (0..=2000)
            .map(|i| score(i as f32 / 2000.0))
            .fold(0.0, f64::max);
        assert!(
            score(t) >= best_on_grid - 1e-12,
            "{} < {best_on_grid}",
            score(t)
        );
    }
    // Without out-of-scope data it keeps 98% of the correct answers.
    let in_scope: Vec<(f32, bool)> = (0..100).map(|i| (i as f32 / 100.0, true)).collect();
    let t = choose_threshold(&in_scope, &[], 0.98);
    let kept = in_scope.iter().filter(|(c, _)| *c >= t).count();
    assert_eq!(kept, 98, "threshold {t}");
}

#[test]
fn loading_a_missing_or_damaged_model_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let error = IntentModel::load(dir.path(), None, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains(CARD_FILE), "{error}");
    std::fs::write(dir.path().join(CARD_FILE), "{\"format\": 1,").unwrap();
    let error = IntentModel::load(dir.path(), None, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("line"), "{error}");
    let card = serde_json::json!({
        "format": 99, "adaptation": {"kind": "frozen"}, "labels": ["a", "b"], "threshold": 0.5,
        "encoder": "/nowhere", "dataset": "x", "training": {}
    });
    std::fs::write(dir.path().join(CARD_FILE), card.to_string()).unwrap();
    let error = IntentModel::load(dir.path(), None, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("format 99") && error.contains("retrain"),
        "{error}"
    );
    let card = serde_json::json!({
        "format": 1, "adaptation": {"kind": "frozen"}, "labels": ["a", "b"], "threshold": 0.5,
        "encoder": "/nowhere", "dataset": "x", "training": {}
    });
    std::fs::write(dir.path().join(CARD_FILE), card.to_string()).unwrap();
    let error = IntentModel::load(dir.path(), None, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("/nowhere") && error.contains("--encoder"),
        "{error}"
    );
}
