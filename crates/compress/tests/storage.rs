//! Compressed checkpoints: saved and reloaded models compute the same outputs, the file holds
//! factors instead of dense weights, and damaged or mismatched manifests are refused by name.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use common::{SENTENCES, bart_logits, fixture, max_abs_diff, tiny_bart, tiny_bert};
use compress::storage::{MANIFEST_FILE, MODEL_FILE};
use compress::{
    Error, Plan, RankRule, compress_model, load_compressed_bart, load_compressed_sentence_encoder,
    save_compressed,
};
use models::Linears;
use tempfile::TempDir;

/// tiny-bart with its attention and fc1 layers at half their weights, saved under `temp/name`.
fn saved_bart(temp: &TempDir, name: &str) -> (PathBuf, models::bart::Bart) {
    let mut model = tiny_bart();
    let plan = Plan::new(RankRule::ParamRatio(0.5)).select(["*_proj", "*.fc1"]);
    let report = compress_model(&mut model, &plan).unwrap();
    let dir = temp.path().join(name);
    save_compressed(&model, &report, &fixture("tiny-bart"), &dir).unwrap();
    (dir, model)
}

fn load_error(dir: &Path) -> Error {
    load_compressed_bart(dir, DType::F32, &Device::Cpu).unwrap_err()
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(MANIFEST_FILE);
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(&path, value.to_string()).unwrap();
}

#[test]
fn saved_bart_reloads_with_identical_logits() {
    let temp = TempDir::new().unwrap();
    let (dir, model) = saved_bart(&temp, "bart");
    let (reloaded, manifest) = load_compressed_bart(&dir, DType::F32, &Device::Cpu).unwrap();
    let diff = max_abs_diff(&bart_logits(&reloaded), &bart_logits(&model));
    assert!(diff <= 1e-6, "logits differ by {diff}");
    assert_eq!(manifest.layers.len(), 2 * 5 + 2 * 9);
    assert_eq!(manifest.method, "svd");
    assert_eq!(manifest.config["d_model"], 32);
    let kinds = |m: &models::bart::Bart| {
        m.linears()
            .iter()
            .map(|(n, l)| (n.clone(), l.kind()))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&reloaded), kinds(&model));
}

/// The file holds `…q_proj.u`/`.v` and the bias, no dense `…q_proj.weight`, and is smaller.
#[test]
fn saved_file_holds_factors_not_dense_weights() {
    let temp = TempDir::new().unwrap();
    let (dir, _) = saved_bart(&temp, "bart");
    let tensors = candle_core::safetensors::load(dir.join(MODEL_FILE), &Device::Cpu).unwrap();
    let key = "model.encoder.layers.0.self_attn.q_proj";
    assert_eq!(tensors[&format!("{key}.u")].dims(), [32, 8]);
    assert_eq!(tensors[&format!("{key}.v")].dims(), [8, 32]);
    assert!(tensors.contains_key(&format!("{key}.bias")));
    assert!(!tensors.contains_key(&format!("{key}.weight")));
    assert!(
        tensors.contains_key("model.encoder.layers.0.fc2.weight"),
        "fc2 stays dense"
    );
    let size = |p: PathBuf| std::fs::metadata(p).unwrap().len();
    assert!(size(dir.join(MODEL_FILE)) < size(fixture("tiny-bart").join(MODEL_FILE)));
    assert!(dir.join("config.json").is_file() && dir.join("tokenizer.json").is_file());
}

/// Saving again over a folder replaces it whole.
#[test]
fn saving_over_a_folder_replaces_it() {
    let temp = TempDir::new().unwrap();
    let (dir, _) = saved_bart(&temp, "bart");
    std::fs::write(dir.join("stale.txt"), "old").unwrap();
    saved_bart(&temp, "bart");
    assert!(!dir.join("stale.txt").exists());
    assert!(load_compressed_bart(&dir, DType::F32, &Device::Cpu).is_ok());
}

#[test]
fn saved_sentence_encoder_reloads_with_identical_embeddings() {
    let temp = TempDir::new().unwrap();
    let mut encoder = tiny_bert();
    let plan = Plan::new(RankRule::Fixed(6)).select(["*.attention.*"]);
    let report = compress_model(&mut encoder, &plan).unwrap();
    let dir = temp.path().join("bert");
    save_compressed(&encoder, &report, &fixture("tiny-bert"), &dir).unwrap();
    let (reloaded, manifest) =
        load_compressed_sentence_encoder(&dir, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(manifest.layers.len(), 8);
    let diff = max_abs_diff(
        &reloaded.embed(SENTENCES).unwrap(),
        &encoder.embed(SENTENCES).unwrap(),
    );
    assert!(diff <= 1e-6, "embeddings differ by {diff}");
}

#[test]
fn bad_json_is_refused() {
    let temp = TempDir::new().unwrap();
    let (dir, _) = saved_bart(&temp, "bart");
    std::fs::write(dir.join(MANIFEST_FILE), "{ \"format\": ").unwrap();
    let message = load_error(&dir).to_string();
    assert!(
        message.contains(MANIFEST_FILE) && message.contains("not a valid manifest"),
        "{message}"
    );
}

#[test]
fn unknown_format_or_method_is_refused() {
    let temp = TempDir::new().unwrap();
    let (dir, _) = saved_bart(&temp, "bart");
    edit_manifest(&dir, |m| m["version"] = 7.into());
    assert!(load_error(&dir).to_string().contains("version 7"));
    edit_manifest(&dir, |m| {
        m["version"] = 1.into();
        m["method"] = "tucker".into();
    });
    assert!(load_error(&dir).to_string().contains("\"tucker\""));
}

/// A manifest naming a layer the model lacks fails on that name.
#[test]
fn unknown_layer_is_refused() {
    let temp = TempDir::new().unwrap();
    let (dir, _) = saved_bart(&temp, "bart");
    // Rename both the manifest entry and its tensors' key, so only the model can object.
    edit_manifest(&dir, |m| {
        m["layers"][0]["name"] = "encoder.layers.9.self_attn.q_proj".into()
    });
    let error = load_error(&dir);
    assert!(matches!(error, Error::Manifest { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("encoder.layers.9.self_attn.q_proj"),
        "{error}"
    );
}

/// Factors in the file that the manifest leaves out are named, not reported as a missing weight.
#[test]
fn unlisted_factors_are_refused() {
    let temp = TempDir::new().unwrap();
    let (dir, _) = saved_bart(&temp, "bart");
    edit_manifest(&dir, |m| {
        m["layers"].as_array_mut().unwrap().remove(0);
    });
    let message = load_error(&dir).to_string();
    assert!(
        message.contains("model.encoder.layers.0.self_attn.q_proj.")
            && message.contains("does not list"),
        "{message}"
    );
}

/// A rank or shape that disagrees with the stored factors names the tensor and both shapes.
#[test]
fn wrong_shape_is_refused() {
    let temp = TempDir::new().unwrap();
    let (dir, _) = saved_bart(&temp, "bart");
    edit_manifest(&dir, |m| m["layers"][0]["rank"] = 5.into());
    let message = load_error(&dir).to_string();
    assert!(
        message.contains("q_proj.u has shape [32, 8]") && message.contains("[32, 5]"),
        "{message}"
    );
    edit_manifest(&dir, |m| {
        m["layers"][0]["rank"] = 8.into();
        m["layers"][0]["in_dim"] = 64.into();
    });
    assert!(
        load_error(&dir)
            .to_string()
            .contains("q_proj.v has shape [8, 32]")
    );
}

/// A manifest pointing at factors that are not in the file says which key is missing.
#[test]
fn missing_factor_is_refused() {
    let temp = TempDir::new().unwrap();
    let (dir, _) = saved_bart(&temp, "bart");
    edit_manifest(&dir, |m| {
        m["layers"][0]["key"] = "model.encoder.layers.0.self_attn.nope".into()
    });
    let message = load_error(&dir).to_string();
    assert!(
        message.contains("model.encoder.layers.0.self_attn.nope.u is missing"),
        "{message}"
    );
}

/// Saving with the wrong source folder (another model's checkpoint) is refused before writing.
#[test]
fn wrong_source_is_refused() {
    let temp = TempDir::new().unwrap();
    let mut model = tiny_bart();
    let report =
        compress_model(&mut model, &Plan::new(RankRule::Fixed(2)).select(["*.fc1"])).unwrap();
    let dir = temp.path().join("out");
    let error = save_compressed(&model, &report, &fixture("tiny-bert"), &dir).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("encoder.layers.0.self_attn.q_proj.weight"),
        "{error}"
    );
    assert!(!dir.exists());
    // A report from another compression does not describe this model.
    let other = compress_model(
        &mut tiny_bart(),
        &Plan::new(RankRule::Fixed(2)).select(["*.fc2"]),
    )
    .unwrap();
    let message = save_compressed(&model, &other, &fixture("tiny-bart"), &dir)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("fc1 is low-rank but the report does not list it"),
        "{message}"
    );
}
