//! BART on a tiny config built here (structure: shapes, KV cache, padding, surgery, loading
//! errors) and against Hugging Face's own outputs (parity fixtures under tests/fixtures/models/).

// clippy.toml allows unwrap inside #[test] functions only; the helpers here unwrap too.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use models::Error;
use models::bart::{Bart, BartCache, Config, synthetic_weights};
use models::generation::Seq2Seq;
use models::linear::{self, Linear, Linears};

const FIXTURE_SCRIPT: &str = "tests/fixtures/make_model_fixtures.py";

fn tiny_config_json() -> serde_json::Value {
    serde_json::json!({
        "vocab_size": 50, "d_model": 16, "encoder_layers": 2, "decoder_layers": 2,
        "encoder_attention_heads": 4, "decoder_attention_heads": 2,
        "encoder_ffn_dim": 32, "decoder_ffn_dim": 24, "activation_function": "gelu",
        "max_position_embeddings": 20, "scale_embedding": true, "pad_token_id": 1,
        "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2,
        "forced_eos_token_id": 2, "dropout": 0.1, "model_type": "bart"
    })
}

fn tiny_config() -> Config {
    serde_json::from_value(tiny_config_json()).unwrap()
}

/// Synthetic weights with everything but the LayerNorm weights scaled by `scale`: the formula's
/// ±0.02 leaves attention nearly uniform, too weak to expose a masking or caching bug.
fn weights(cfg: &Config, scale: f64) -> HashMap<String, Tensor> {
    let mut weights = synthetic_weights(cfg, &Device::Cpu).unwrap();
    for (name, tensor) in weights.iter_mut() {
        if !name.ends_with("layer_norm.weight") && !name.ends_with("layernorm_embedding.weight") {
            *tensor = (&*tensor * scale).unwrap();
        }
    }
    weights
}

fn load(weights: HashMap<String, Tensor>, cfg: &Config) -> models::Result<Bart> {
    Bart::load(
        VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu),
        cfg,
    )
}

fn tiny_model() -> Bart {
    let cfg = tiny_config();
    load(weights(&cfg, 10.0), &cfg).unwrap()
}

/// Two sources, the second padded (pad id 1) after five tokens, and two decoder prefixes.
fn inputs() -> (Tensor, Tensor, Tensor) {
    let dev = Device::Cpu;
    let ids = Tensor::new(&[[0u32, 8, 13, 21, 34, 5, 2], [0, 44, 3, 9, 2, 1, 1]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]], &dev).unwrap();
    let decoder_ids = Tensor::new(&[[2u32, 0, 17, 30, 6], [2, 0, 41, 12, 12]], &dev).unwrap();
    (ids, mask, decoder_ids)
}

/// Fails with the largest difference and where it is.
fn assert_close(actual: &Tensor, expected: &Tensor, tol: f32, what: &str) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shapes differ");
    let a = actual.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    let e = expected
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap();
    let (a, e) = (a.to_vec1::<f32>().unwrap(), e.to_vec1::<f32>().unwrap());
    let (index, diff) = a
        .iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, -1.0), |best, (i, d)| {
            if d.is_nan() || d > best.1 {
                (i, d)
            } else {
                best
            }
        });
    let at = unflatten(index, expected.dims());
    assert!(
        diff <= tol,
        "{what}: max |Δ| = {diff} at {at:?} (actual {}, expected {}), tolerance {tol}",
        a[index],
        e[index]
    );
}

fn unflatten(mut index: usize, dims: &[usize]) -> Vec<usize> {
    let mut at = vec![0; dims.len()];
    for (slot, &dim) in at.iter_mut().zip(dims).rev() {
        *slot = index % dim;
        index /= dim;
    }
    at
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bart")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_checkpoint(dir: &Path, config: &serde_json::Value, weights: &HashMap<String, Tensor>) {
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    candle_core::safetensors::save(weights, dir.join("model.safetensors")).unwrap();
}

#[test]
fn shapes_of_encoder_states_and_logits() {
    let model = tiny_model();
    let (ids, mask, decoder_ids) = inputs();
    assert_eq!(model.encode(&ids, &mask).unwrap().dims(), [2, 7, 16]);
    assert_eq!(
        model.forward(&ids, &mask, &decoder_ids).unwrap().dims(),
        [2, 5, 50]
    );
}

#[test]
fn cached_decoding_step_by_step_matches_the_full_forward() {
    let model = tiny_model();
    let (ids, mask, decoder_ids) = inputs();
    let full = model.forward(&ids, &mask, &decoder_ids).unwrap();
    let encoder_hidden = Seq2Seq::encode(&model, &ids, &mask).unwrap();
    for chunks in [&[1, 1, 1, 1, 1][..], &[2, 3], &[1, 4]] {
        let mut cache = Seq2Seq::new_cache(&model);
        let mut start = 0;
        for &len in chunks {
            let step = decoder_ids.narrow(1, start, len).unwrap();
            let logits =
                Seq2Seq::decode(&model, &step, &encoder_hidden, &mask, &mut cache).unwrap();
            let expected = full.narrow(1, start, len).unwrap();
            assert_close(
                &logits,
                &expected,
                1e-5,
                &format!("chunks {chunks:?} at {start}"),
            );
            start += len;
            assert_eq!(cache.past_len(), start);
        }
    }
}

#[test]
fn a_default_cache_is_sized_on_first_use() {
    let model = tiny_model();
    let (ids, mask, decoder_ids) = inputs();
    let encoder_hidden = model.encode(&ids, &mask).unwrap();
    let mut cache = BartCache::default();
    let logits = model
        .decode(&decoder_ids, &encoder_hidden, &mask, &mut cache)
        .unwrap();
    assert_close(
        &logits,
        &model.forward(&ids, &mask, &decoder_ids).unwrap(),
        1e-6,
        "logits",
    );
    assert_eq!(cache.layers.len(), 2);
}

#[test]
fn padding_does_not_change_the_padded_row() {
    let model = tiny_model();
    let (ids, mask, decoder_ids) = inputs();
    let batch = model.forward(&ids, &mask, &decoder_ids).unwrap();
    let alone = model
        .forward(
            &ids.i((1..2, 0..5)).unwrap(),
            &mask.i((1..2, 0..5)).unwrap(),
            &decoder_ids.i(1..2).unwrap(),
        )
        .unwrap();
    assert_close(&batch.i(1..2).unwrap(), &alone, 1e-5, "padded row");
}

#[test]
fn reorder_cache_swaps_batch_rows() {
    let model = tiny_model();
    let (ids, mask, decoder_ids) = inputs();
    let full = model.forward(&ids, &mask, &decoder_ids).unwrap();
    let encoder_hidden = model.encode(&ids, &mask).unwrap();
    let mut cache = model.new_cache();
    model
        .decode(
            &decoder_ids.narrow(1, 0, 3).unwrap(),
            &encoder_hidden,
            &mask,
            &mut cache,
        )
        .unwrap();
    let swap = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
    model.reorder_cache(&mut cache, &swap).unwrap();
    let swapped = |t: &Tensor| t.contiguous().unwrap().index_select(&swap, 0).unwrap();
    let next = swapped(&decoder_ids.narrow(1, 3, 2).unwrap());
    let logits = model
        .decode(
            &next,
            &swapped(&encoder_hidden),
            &swapped(&mask),
            &mut cache,
        )
        .unwrap();
    assert_close(
        &logits,
        &swapped(&full.narrow(1, 3, 2).unwrap()),
        1e-5,
        "reordered",
    );
}

#[test]
fn linears_are_named_by_their_checkpoint_keys() {
    let cfg = tiny_config();
    let model = tiny_model();
    let names: Vec<String> = model.linears().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names.len(), 2 * 6 + 2 * 10);
    assert_eq!(names[0], "encoder.layers.0.self_attn.q_proj");
    assert!(names.contains(&"decoder.layers.0.encoder_attn.k_proj".to_string()));
    assert_eq!(names.last().unwrap(), "decoder.layers.1.fc2");
    let keys = synthetic_weights(&cfg, &Device::Cpu).unwrap();
    for name in &names {
        assert!(keys.contains_key(&format!("model.{name}.weight")), "{name}");
    }
    let mut model = model;
    assert_eq!(model.linears_mut().len(), names.len());
}

#[test]
fn a_full_rank_low_rank_layer_keeps_the_logits() {
    let (ids, mask, decoder_ids) = inputs();
    let mut model = tiny_model();
    let before = model.forward(&ids, &mask, &decoder_ids).unwrap();
    for name in [
        "encoder.layers.0.self_attn.q_proj",
        "encoder.layers.1.fc1",
        "decoder.layers.0.self_attn.v_proj",
        "decoder.layers.1.encoder_attn.k_proj",
        "decoder.layers.1.fc2",
    ] {
        let old = linear::find(&model, name).unwrap();
        let (w, bias) = (old.effective_weight().unwrap(), old.bias().cloned());
        let identity = Tensor::eye(w.dim(1).unwrap(), DType::F32, &Device::Cpu).unwrap();
        let low_rank = Linear::low_rank(w, identity, bias).unwrap();
        let replaced = linear::replace(&mut model, name, low_rank).unwrap();
        assert_eq!(replaced.kind(), "dense");
        assert_eq!(linear::find(&model, name).unwrap().kind(), "low-rank");
    }
    let after = model.forward(&ids, &mask, &decoder_ids).unwrap();
    assert_close(&after, &before, 1e-5, "logits after surgery");
}

#[test]
fn an_unknown_layer_name_is_an_error() {
    let mut model = tiny_model();
    let layer = linear::find(&model, "encoder.layers.0.fc1")
        .unwrap()
        .clone();
    match linear::replace(&mut model, "encoder.layers.7.fc1", layer) {
        Err(Error::UnknownLayer { name, .. }) => assert_eq!(name, "encoder.layers.7.fc1"),
        other => panic!("expected UnknownLayer, got {other:?}"),
    }
    assert!(matches!(
        linear::find(&model, "model.encoder.layers.0.fc1"),
        Err(Error::UnknownLayer { .. })
    ));
}

#[test]
fn from_dir_loads_what_from_tensors_loads() {
    let cfg = tiny_config();
    let weights = weights(&cfg, 10.0);
    let dir = temp_dir("roundtrip");
    write_checkpoint(&dir, &tiny_config_json(), &weights);
    let from_dir = Bart::from_dir(&dir, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(from_dir.config(), &cfg);
    let (ids, mask, decoder_ids) = inputs();
    let expected = load(weights, &cfg)
        .unwrap()
        .forward(&ids, &mask, &decoder_ids)
        .unwrap();
    let logits = from_dir.forward(&ids, &mask, &decoder_ids).unwrap();
    assert_close(&logits, &expected, 0.0, "from_dir");
}

#[test]
fn a_missing_tensor_is_named() {
    let cfg = tiny_config();
    let mut weights = weights(&cfg, 1.0);
    let key = "model.decoder.layers.1.encoder_attn.v_proj.weight";
    weights.remove(key);
    let dir = temp_dir("missing");
    write_checkpoint(&dir, &tiny_config_json(), &weights);
    match Bart::from_dir(&dir, DType::F32, &Device::Cpu) {
        Err(Error::MissingTensor { name }) => assert_eq!(name, key),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    match load(weights, &cfg) {
        Err(err @ Error::MissingTensor { .. }) => assert!(err.to_string().contains(key), "{err}"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
}

#[test]
fn a_misshapen_tensor_is_named_with_both_shapes() {
    let cfg = tiny_config();
    let mut weights = weights(&cfg, 1.0);
    let key = "model.encoder.layers.0.self_attn.k_proj.weight";
    weights.insert(
        key.into(),
        Tensor::zeros((16, 8), DType::F32, &Device::Cpu).unwrap(),
    );
    let dir = temp_dir("misshapen");
    write_checkpoint(&dir, &tiny_config_json(), &weights);
    let err = Bart::from_dir(&dir, DType::F32, &Device::Cpu).unwrap_err();
    match &err {
        Error::ShapeMismatch {
            name,
            expected,
            actual,
        } => {
            assert_eq!(name, key);
            assert_eq!(
                (expected.as_slice(), actual.as_slice()),
                (&[16, 16][..], &[16, 8][..])
            );
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(key) && message.contains("[16, 8]"),
        "{message}"
    );
}

#[test]
fn missing_files_and_bad_json_name_the_file() {
    let dir = temp_dir("files");
    match Bart::from_dir(&dir, DType::F32, &Device::Cpu) {
        Err(Error::Io { path, .. }) => assert_eq!(path, dir.join("config.json")),
        other => panic!("expected Io for config.json, got {other:?}"),
    }
    std::fs::write(dir.join("config.json"), tiny_config_json().to_string()).unwrap();
    match Bart::from_dir(&dir, DType::F32, &Device::Cpu) {
        Err(Error::Io { path, .. }) => assert_eq!(path, dir.join("model.safetensors")),
        other => panic!("expected Io for model.safetensors, got {other:?}"),
    }
    std::fs::write(dir.join("config.json"), r#"{"d_model": "wide"}"#).unwrap();
    match Bart::from_dir(&dir, DType::F32, &Device::Cpu) {
        Err(Error::Config { path, message }) => {
            assert_eq!(path, dir.join("config.json"));
            assert!(message.contains("invalid type"), "{message}");
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[test]
fn an_unsupported_activation_is_refused_by_name() {
    let cfg = Config {
        activation_function: "swish".into(),
        ..tiny_config()
    };
    let err = load(weights(&tiny_config(), 1.0), &cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("swish"), "{err}");
}

#[test]
fn activations_other_than_gelu_load_and_differ() {
    let (ids, mask, decoder_ids) = inputs();
    let mut outputs = Vec::new();
    for activation in ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"] {
        let cfg = Config {
            activation_function: activation.into(),
            ..tiny_config()
        };
        let model = load(weights(&cfg, 10.0), &cfg).unwrap();
        outputs.push(model.forward(&ids, &mask, &decoder_ids).unwrap());
    }
    assert_close(
        &outputs[1],
        &outputs[2],
        0.0,
        "gelu_new vs gelu_pytorch_tanh",
    );
    let gap = |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().max_all().unwrap();
    assert!(gap(&outputs[0], &outputs[1]).to_scalar::<f32>().unwrap() > 0.0);
    assert!(gap(&outputs[0], &outputs[3]).to_scalar::<f32>().unwrap() > 1e-3);
}

/// A BartModel checkpoint (facebook/bart-base) has no `model.` prefix; bart-large-cnn keeps the
/// embedding only as `model.decoder.embed_tokens`; both must give the same model.
#[test]
fn checkpoint_layouts_are_detected() {
    let cfg = tiny_config();
    let weights = weights(&cfg, 10.0);
    let (ids, mask, decoder_ids) = inputs();
    let expected = load(weights.clone(), &cfg)
        .unwrap()
        .forward(&ids, &mask, &decoder_ids)
        .unwrap();

    let rename = |from: &str, to: &str| -> HashMap<String, Tensor> {
        let mut renamed = weights.clone();
        let tensor = renamed.remove(from).unwrap();
        renamed.insert(to.into(), tensor);
        renamed
    };
    let cnn = rename("model.shared.weight", "model.decoder.embed_tokens.weight");
    let logits = load(cnn, &cfg)
        .unwrap()
        .forward(&ids, &mask, &decoder_ids)
        .unwrap();
    assert_close(&logits, &expected, 0.0, "decoder.embed_tokens only");

    // No prefix and no final_logits_bias: transformers then uses a zero bias.
    let bare: HashMap<String, Tensor> = weights
        .iter()
        .filter(|(k, _)| k.as_str() != "final_logits_bias")
        .map(|(k, v)| (k.trim_start_matches("model.").to_string(), v.clone()))
        .collect();
    let bias = weights["final_logits_bias"].unsqueeze(0).unwrap();
    let logits = load(bare, &cfg)
        .unwrap()
        .forward(&ids, &mask, &decoder_ids)
        .unwrap();
    let with_bias = logits.broadcast_add(&bias).unwrap();
    assert_close(&with_bias, &expected, 1e-5, "no model. prefix");

    let mut none = weights.clone();
    none.remove("model.shared.weight");
    assert!(matches!(load(none, &cfg), Err(Error::MissingTensor { .. })));
}

#[test]
fn an_untied_lm_head_is_used_when_present() {
    let cfg = tiny_config();
    let mut weights = weights(&cfg, 10.0);
    let lm_head = Tensor::zeros((50, 16), DType::F32, &Device::Cpu).unwrap();
    weights.insert("lm_head.weight".into(), lm_head);
    let (ids, mask, decoder_ids) = inputs();
    let bias = weights["final_logits_bias"].clone();
    let logits = load(weights, &cfg)
        .unwrap()
        .forward(&ids, &mask, &decoder_ids)
        .unwrap();
    let expected = bias.unsqueeze(0).unwrap().broadcast_as((2, 5, 50)).unwrap();
    assert_close(&logits, &expected, 0.0, "logits of a zero LM head");
}

#[test]
fn sequences_longer_than_the_position_table_are_refused() {
    let model = tiny_model();
    let ids = Tensor::zeros((1, 21), DType::U32, &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 21), DType::U32, &Device::Cpu).unwrap();
    let err = model.encode(&ids, &mask).unwrap_err().to_string();
    assert!(err.contains("max_position_embeddings = 20"), "{err}");
    let short = Tensor::zeros((1, 20), DType::U32, &Device::Cpu).unwrap();
    assert!(
        model
            .encode(
                &short,
                &Tensor::ones((1, 20), DType::U32, &Device::Cpu).unwrap()
            )
            .is_ok()
    );
}

#[test]
fn a_mask_of_the_wrong_shape_is_refused() {
    let model = tiny_model();
    let (ids, _, _) = inputs();
    let mask = Tensor::ones((2, 6), DType::U32, &Device::Cpu).unwrap();
    let err = model.encode(&ids, &mask).unwrap_err().to_string();
    assert!(err.contains("[2, 7]") && err.contains("[2, 6]"), "{err}");
}

#[test]
fn special_tokens_come_from_the_config() {
    let tokens = tiny_model().special_tokens();
    assert_eq!(tokens.decoder_start_token_id, 2);
    assert_eq!(tokens.pad_token_id, 1);
    assert_eq!(tokens.eos_token_id, 2);
    assert_eq!(tokens.forced_eos_token_id, Some(2));
    assert_eq!(tokens.forced_bos_token_id, None);
}

/// facebook/bart-base's config.json as published on the hub.
const BART_BASE_CONFIG_JSON: &str = r#"{
  "_name_or_path": "bart-base", "activation_dropout": 0.1, "activation_function": "gelu",
  "add_bias_logits": false, "add_final_layer_norm": false, "architectures": ["BartModel"],
  "attention_dropout": 0.1, "bos_token_id": 0, "classif_dropout": 0.1, "classifier_dropout": 0.0,
  "d_model": 768, "decoder_attention_heads": 12, "decoder_ffn_dim": 3072, "decoder_layerdrop": 0.0,
  "decoder_layers": 6, "decoder_start_token_id": 2, "dropout": 0.1, "early_stopping": true,
  "encoder_attention_heads": 12, "encoder_ffn_dim": 3072, "encoder_layerdrop": 0.0,
  "encoder_layers": 6, "eos_token_id": 2, "forced_eos_token_id": 2, "forced_bos_token_id": 0,
  "gradient_checkpointing": false, "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
  "init_std": 0.02, "is_encoder_decoder": true,
  "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}, "max_position_embeddings": 1024,
  "model_type": "bart", "no_repeat_ngram_size": 3, "normalize_before": false,
  "normalize_embedding": true, "num_beams": 4, "num_hidden_layers": 6, "pad_token_id": 1,
  "scale_embedding": false,
  "task_specific_params": {
    "summarization": {"length_penalty": 1.0, "max_length": 128, "min_length": 12, "num_beams": 4},
    "summarization_cnn": {"length_penalty": 2.0, "max_length": 142, "min_length": 56, "num_beams": 4},
    "summarization_xsum": {"length_penalty": 1.0, "max_length": 62, "min_length": 11, "num_beams": 6}
  },
  "torch_dtype": "float32", "transformers_version": "4.12.0.dev0", "use_cache": true,
  "vocab_size": 50265
}"#;

#[test]
fn bart_base_config_parses_to_the_named_constructor() {
    let parsed: Config = serde_json::from_str(BART_BASE_CONFIG_JSON).unwrap();
    assert_eq!(parsed, Config::bart_base());
}

#[test]
fn an_empty_config_takes_transformers_defaults() {
    let cfg: Config = serde_json::from_str("{}").unwrap();
    assert_eq!(
        (cfg.vocab_size, cfg.d_model, cfg.encoder_layers),
        (50265, 1024, 12)
    );
    assert_eq!(
        (cfg.decoder_attention_heads, cfg.decoder_ffn_dim),
        (16, 4096)
    );
    assert_eq!(
        (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id),
        (1, 0, 2)
    );
    assert_eq!(
        (cfg.decoder_start_token_id, cfg.forced_eos_token_id),
        (2, Some(2))
    );
    assert_eq!(cfg.activation_function, "gelu");
    assert!(!cfg.scale_embedding);
    assert_eq!(cfg.num_beams, None);
}

// Parity with Hugging Face transformers. The fixtures are made by tests/fixtures/make_model_fixtures.py.

fn fixture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name);
    assert!(
        path.exists(),
        "parity fixture {} is missing: run `python {FIXTURE_SCRIPT}` from the repository root \
         to create it",
        path.display()
    );
    path
}

fn read_fixture(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name), &Device::Cpu).unwrap()
}

/// The forward pass transformers recorded: inputs are int64, outputs f32. A fixture holds either
/// all the logits or, for a large vocabulary, the first columns, the log-sum-exp and the argmax of
/// each row (what the whole row would be checked for, in a fraction of the bytes).
fn check_forward(model: &Bart, expected: &HashMap<String, Tensor>, what: &str) {
    let get = |key: &str| {
        expected
            .get(key)
            .unwrap_or_else(|| panic!("{what}: fixture has no tensor {key}"))
    };
    let (ids, mask) = (get("input_ids"), get("attention_mask"));
    let logits = model.forward(ids, mask, get("decoder_input_ids")).unwrap();
    let mut checked = 0;
    if let Some(full) = expected.get("logits") {
        assert_close(&logits, full, 1e-4, &format!("{what}: logits"));
        checked += 1;
    }
    if let Some(head) = expected.get("logits_head") {
        let columns = head.dim(2).unwrap();
        let actual = logits.narrow(2, 0, columns).unwrap();
        assert_close(
            &actual,
            head,
            1e-4,
            &format!("{what}: logits[.., .., ..{columns}]"),
        );
        checked += 1;
    }
    if let Some(lse) = expected.get("logits_logsumexp") {
        assert_close(
            &log_sum_exp(&logits),
            lse,
            1e-4,
            &format!("{what}: logsumexp"),
        );
        checked += 1;
    }
    if let Some(argmax) = expected.get("logits_argmax") {
        let actual = logits.argmax(2).unwrap().to_dtype(DType::I64).unwrap();
        let (actual, argmax) = (
            actual.to_vec2::<i64>().unwrap(),
            argmax.to_vec2::<i64>().unwrap(),
        );
        assert_eq!(actual, argmax, "{what}: argmax of the logits");
    }
    assert!(checked > 0, "{what}: the fixture holds no logits");
    if let Some(hidden) = expected.get("encoder_last_hidden_state") {
        let encoded = model.encode(ids, mask).unwrap();
        assert_close(
            &encoded,
            hidden,
            1e-4,
            &format!("{what}: encoder_last_hidden_state"),
        );
    }
}

fn log_sum_exp(logits: &Tensor) -> Tensor {
    let max = logits.max_keepdim(2).unwrap();
    let shifted = logits.broadcast_sub(&max).unwrap().exp().unwrap();
    let sum = shifted.sum_keepdim(2).unwrap().log().unwrap();
    (sum + max).unwrap().squeeze(2).unwrap()
}

#[test]
fn tiny_bart_matches_transformers() {
    let expected = read_fixture("tiny-bart-forward.safetensors");
    assert!(expected.contains_key("encoder_last_hidden_state"));
    let model = Bart::from_dir(&fixture("tiny-bart"), DType::F32, &Device::Cpu).unwrap();
    check_forward(&model, &expected, "tiny-bart");
}

#[test]
fn bart_base_with_synthetic_weights_matches_transformers() {
    let expected = read_fixture("bart-base-synthetic.safetensors");
    let cfg = Config::bart_base();
    let model = load(synthetic_weights(&cfg, &Device::Cpu).unwrap(), &cfg).unwrap();
    check_forward(&model, &expected, "bart-base-synthetic");
}

#[test]
fn the_fixtures_bart_base_config_parses_to_the_named_constructor() {
    let path = fixture("bart-base-config.json");
    assert_eq!(Config::from_json_file(&path).unwrap(), Config::bart_base());
}

#[test]
fn tiny_bart_cached_decoding_matches_its_forward() {
    let expected = read_fixture("tiny-bart-forward.safetensors");
    let model = Bart::from_dir(&fixture("tiny-bart"), DType::F32, &Device::Cpu).unwrap();
    let (ids, mask) = (&expected["input_ids"], &expected["attention_mask"]);
    let decoder_ids = &expected["decoder_input_ids"];
    let encoder_hidden = model.encode(ids, mask).unwrap();
    let mut cache = model.new_cache();
    let steps: Vec<Tensor> = (0..decoder_ids.dim(1).unwrap())
        .map(|i| {
            let step = decoder_ids.narrow(1, i, 1).unwrap();
            model
                .decode(&step, &encoder_hidden, mask, &mut cache)
                .unwrap()
        })
        .collect();
    let logits = Tensor::cat(&steps, 1).unwrap();
    assert_close(
        &logits,
        &expected["logits"],
        1e-4,
        "tiny-bart: cached logits",
    );
}
