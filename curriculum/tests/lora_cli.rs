#![allow(clippy::unwrap_used)]
//! `lowrank lora` end to end on the tiny random BART fixture: PEFT's trainable line, a short
//! fine-tune that writes a PEFT adapter and lowers the loss, a merge that `generate` loads and that
//! computes what base + adapter compute, and clean failures.

use std::path::Path;

use models::bart::Bart;
use models::candle::{DType, Device, Tensor};
use models::lora;

mod common;
use common::{check_fails, fixtures, stdout_of, tiny_bart};

/// What PEFT printed for tiny-bart (tests/fixtures/make_lora_fixtures.py) and its config.
fn peft_record() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("lora-step.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// "validation loss (…): before X, after Y" → (X, Y).
fn before_after(stdout: &str) -> (f64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("validation loss"))
        .unwrap_or_else(|| panic!("no validation loss line in {stdout}"));
    let number = |key: &str| -> f64 {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.split(|c: char| c == ',' || c.is_whitespace())
            .find(|s| !s.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (number("before "), number("after "))
}

#[test]
fn info_prints_pefts_trainable_line() {
    let record = peft_record();
    let cfg = &record["lora_config"];
    let targets: Vec<&str> = cfg["target_modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let (r, alpha) = (cfg["r"].to_string(), cfg["lora_alpha"].to_string());
    let targets = targets.join(",");
    let model = tiny_bart();
    let stdout = stdout_of(&[
        "lora",
        "info",
        "--model",
        &model,
        "--r",
        &r,
        "--alpha",
        &alpha,
        "--targets",
        &targets,
    ]);
    let expected = record["trainable_parameters"].as_str().unwrap();
    assert!(
        stdout.lines().any(|l| l == expected),
        "{expected:?} not in {stdout}"
    );
}

#[test]
fn train_writes_a_peft_adapter_and_lowers_the_loss_and_merge_gives_a_loadable_model() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("adapter");
    let adapter_arg = adapter.to_string_lossy().into_owned();
    let model = tiny_bart();
    let stdout = stdout_of(&[
        "lora",
        "train",
        "--model",
        &model,
        "--out",
        &adapter_arg,
        "--r",
        "4",
        "--alpha",
        "8",
        "--dropout",
        "0.05",
        "--targets",
        "q_proj,v_proj",
        "--steps",
        "20",
        "--lr",
        "1e-2",
        "--batch-size",
        "8",
        "--examples",
        "64",
        "--valid-examples",
        "16",
        "--seed",
        "3",
        "--quiet",
    ]);
    assert!(stdout.contains("trainable params: "), "{stdout}");
    let (before, after) = before_after(&stdout);
    assert!(
        after < before,
        "loss did not go down: {before} → {after}\n{stdout}"
    );
    for file in [lora::CONFIG_FILE, lora::WEIGHTS_FILE] {
        assert!(adapter.join(file).is_file(), "{file} missing");
    }
    let curve = std::fs::read_to_string(adapter.join("loss.svg")).unwrap();
    assert!(
        curve.starts_with("<svg") && curve.contains("optimizer step"),
        "{curve}"
    );
    let cfg = lora::LoraConfig::from_json_file(&adapter.join(lora::CONFIG_FILE)).unwrap();
    assert_eq!((cfg.r, cfg.lora_alpha, cfg.lora_dropout), (4, 8.0, 0.05));
    let weights =
        models::candle::safetensors::load(adapter.join(lora::WEIGHTS_FILE), &Device::Cpu).unwrap();
    assert!(
        weights
            .keys()
            .all(|k| k.starts_with("base_model.model.model.") && k.contains(".lora_")),
        "{:?}",
        weights.keys().collect::<Vec<_>>()
    );

    // Merge, then generate with the merged folder.
    let merged = dir.path().join("merged");
    let merged_arg = merged.to_string_lossy().into_owned();
    stdout_of(&[
        "lora",
        "merge",
        "--model",
        &model,
        "--adapter",
        &adapter_arg,
        "--out",
        &merged_arg,
    ]);
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(
            merged.join(file).is_file(),
            "{file} missing from the merged model"
        );
    }
    let generated = stdout_of(&[
        "generate",
        "--model",
        &merged_arg,
        "--text",
        "my card has not arrived",
        "--max-new-tokens",
        "4",
    ]);
    assert!(!generated.is_empty());
    // Merging again replaces the folder.
    stdout_of(&[
        "lora",
        "merge",
        "--model",
        &model,
        "--adapter",
        &adapter_arg,
        "--out",
        &merged_arg,
    ]);
    assert_same_logits(Path::new(&model), &adapter, &merged);
}

/// The merged model computes what the base model with the adapter computes.
fn assert_same_logits(model: &Path, adapter: &Path, merged: &Path) {
    let device = Device::Cpu;
    let mut adapted = Bart::from_dir(model, DType::F32, &device).unwrap();
    lora::load_adapter(&mut adapted, adapter, "model.").unwrap();
    let merged = Bart::from_dir(merged, DType::F32, &device).unwrap();
    let ids = Tensor::new(&[[0u32, 11, 42, 7, 99, 2]], &device).unwrap();
    let mask = Tensor::ones((1, 6), DType::U32, &device).unwrap();
    let decoder = Tensor::new(&[[2u32, 0, 17, 5]], &device).unwrap();
    let a = adapted.forward(&ids, &mask, &decoder).unwrap();
    let b = merged.forward(&ids, &mask, &decoder).unwrap();
    let diff: f32 = (a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    let scale: f32 = b.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
    assert!(
        diff <= 1e-4 * scale.max(1.0),
        "merged logits differ by {diff}"
    );
}

#[test]
fn merge_takes_a_peft_made_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = fixtures().join("tiny-bart-lora");
    let merged = dir.path().join("nested").join("merged");
    stdout_of(&[
        "lora",
        "merge",
        "--model",
        &tiny_bart(),
        "--adapter",
        &adapter.to_string_lossy(),
        "--out",
        &merged.to_string_lossy(),
    ]);
    assert_same_logits(&fixtures().join("tiny-bart"), &adapter, &merged);
}

#[test]
fn bad_inputs_exit_2_with_clear_messages() {
    let model = tiny_bart();
    check_fails(
        &["lora", "info", "--model", &model, "--targets", "foo_proj"],
        &["foo_proj", "q_proj"],
    );
    check_fails(
        &["lora", "info", "--model", &model, "--r", "0"],
        &["--r 0", "at least 1"],
    );
    check_fails(
        &["lora", "info", "--model", "/nonexistent/model"],
        &["/nonexistent/model", "does not exist"],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("adapter").to_string_lossy().into_owned();
    check_fails(
        &[
            "lora",
            "train",
            "--model",
            "/nonexistent/model",
            "--out",
            &out,
            "--steps",
            "1",
        ],
        &["/nonexistent/model"],
    );
    check_fails(
        &[
            "lora", "train", "--model", &model, "--out", &out, "--r", "0",
        ],
        &["--r 0"],
    );
    check_fails(
        &[
            "lora",
            "merge",
            "--model",
            &model,
            "--adapter",
            "/nonexistent/adapter",
            "--out",
            &out,
        ],
        &["/nonexistent/adapter"],
    );
}

/// Recovery fine-tuning (LPAF / LoRAPrune): LoRA trained on top of a compressed model lowers the
/// validation loss the compression raised, and merging into the compressed folder is refused.
#[test]
fn lora_recovers_part_of_what_compression_lost() {
    let dir = tempfile::tempdir().unwrap();
    let compressed = dir.path().join("compressed");
    let compressed_arg = compressed.to_string_lossy().into_owned();
    stdout_of(&[
        "compress",
        "--model",
        &tiny_bart(),
        "--rank",
        "2",
        "--out",
        &compressed_arg,
    ]);
    let adapter = dir.path().join("adapter");
    let adapter_arg = adapter.to_string_lossy().into_owned();
    let stdout = stdout_of(&[
        "lora",
        "train",
        "--model",
        &compressed_arg,
        "--out",
        &adapter_arg,
        "--r",
        "4",
        "--alpha",
        "8",
        "--targets",
        "q_proj,v_proj,k_proj,out_proj",
        "--steps",
        "20",
        "--lr",
        "1e-2",
        "--batch-size",
        "8",
        "--examples",
        "64",
        "--valid-examples",
        "16",
        "--seed",
        "3",
        "--quiet",
    ]);
    assert!(
        stdout.contains("compressed model (svd, 24 factorized layers"),
        "{stdout}"
    );
    let (before, after) = before_after(&stdout);
    assert!(
        after < before,
        "recovery did not lower the loss: {before} → {after}\n{stdout}"
    );
    check_fails(
        &[
            "lora",
            "merge",
            "--model",
            &compressed_arg,
            "--adapter",
            &adapter_arg,
            "--out",
            &dir.path().join("merged").to_string_lossy(),
        ],
        &["is a compressed model", "merge into the uncompressed model"],
    );
}
