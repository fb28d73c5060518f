//! LoRA as PEFT does it: structure on the committed tiny-bart and on a toy model built here
//! (targets, initialisation, merge/unmerge, counts, save/load, errors), then parity with PEFT's
//! own adapter, logits, loss, gradients and AdamW step (fixtures made by
//! tests/fixtures/make_lora_fixtures.py).

// clippy.toml allows unwrap inside #[test] functions only; the helpers here unwrap too.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarMap};
use models::Error;
use models::bart::Bart;
use models::linear::{self, Linear, Linears};
use models::lora::{
    self, LoraConfig, ParameterCount, TargetModules, adapter_tensors, apply_lora, load_adapter,
    load_adapter_trainable, lora_parameter_counts, merge_lora, save_adapter,
    trainable_parameters_line, trainable_summary, unmerge_lora,
};
use models::loss::{cross_entropy, shift_tokens_right};
use proptest::prelude::*;

const LORA_SCRIPT: &str = "tests/fixtures/make_lora_fixtures.py";
/// BartForConditionalGeneration keeps its encoder and decoder under `model.`.
const BART_PREFIX: &str = "model.";
const PAD: u32 = 1;
const DECODER_START: u32 = 2;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

/// tiny-bart (committed, made by make_model_fixtures.py).
fn tiny_bart() -> Bart {
    Bart::from_dir(&models_dir().join("tiny-bart"), DType::F32, &Device::Cpu).unwrap()
}

/// The two texts of tiny-bart-tokens.json (the second one is longer; the first padded with 1).
fn source_batch() -> (Tensor, Tensor) {
    let text = std::fs::read_to_string(models_dir().join("tiny-bart-tokens.json")).unwrap();
    let tokens: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows: Vec<Vec<u32>> = serde_json::from_value(tokens["input_ids"].clone()).unwrap();
    let mask: Vec<Vec<u32>> = rows
        .iter()
        .map(|row| row.iter().map(|&id| u32::from(id != PAD)).collect())
        .collect();
    (
        Tensor::new(rows, &Device::Cpu).unwrap(),
        Tensor::new(mask, &Device::Cpu).unwrap(),
    )
}

fn labels() -> Tensor {
    Tensor::new(
        &[
            [0i64, 40, 41, 42, 43, 44, 2],
            [0, 50, 51, 52, 2, -100, -100],
        ],
        &Device::Cpu,
    )
    .unwrap()
}

fn logits(model: &Bart) -> Tensor {
    let (ids, mask) = source_batch();
    let decoder_ids = shift_tokens_right(&labels(), PAD, DECODER_START).unwrap();
    model.forward(&ids, &mask, &decoder_ids).unwrap()
}

fn q_v() -> LoraConfig {
    LoraConfig::new(4, 8.0, &["q_proj", "v_proj"])
}

/// Fails with the largest difference and where it is.
fn assert_close(actual: &Tensor, expected: &Tensor, tol: f32, what: &str) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shapes differ");
    let flat = |t: &Tensor| -> Vec<f32> {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (a, e) = (flat(actual), flat(expected));
    let (index, diff) = a
        .iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, -1.0f32), |best, (i, d)| {
            if d.is_nan() || d > best.1 {
                (i, d)
            } else {
                best
            }
        });
    assert!(
        diff <= tol,
        "{what}: max |Δ| = {diff} at flat index {index} (actual {}, expected {}), tolerance {tol}",
        a[index],
        e[index]
    );
}

/// Sets every lora_B variable in `varmap` to seeded normal values, so the update is not zero.
fn randomize_b(varmap: &VarMap, seed: u64) {
    let vars = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = vars.keys().filter(|k| k.contains("lora_B")).collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        let var = &vars[name];
        let n = var.elem_count();
        let values: Vec<f32> = (0..n)
            .map(|j| ((seed as usize + i * 7919 + j * 104_729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        var.set(&Tensor::from_vec(values, var.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }
}

fn lora_layers(model: &impl Linears) -> Vec<String> {
    model
        .linears()
        .into_iter()
        .filter(|(_, l)| matches!(l, Linear::Lora(_)))
        .map(|(n, _)| n)
        .collect()
}

/// A fresh folder under the system temp dir, removed first if a previous run left it.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lowrank-lora-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// A toy model: named dense layers plus a number of parameters that are not in linear layers.

struct Toy {
    layers: Vec<(String, Linear)>,
    other_parameters: usize,
}

impl Linears for Toy {
    fn linears(&self) -> Vec<(String, &Linear)> {
        self.layers.iter().map(|(n, l)| (n.clone(), l)).collect()
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        self.layers
            .iter_mut()
            .map(|(n, l)| (n.clone(), l))
            .collect()
    }
}

impl ParameterCount for Toy {
    fn parameter_count(&self) -> usize {
        self.other_parameters
            + self
                .layers
                .iter()
                .map(|(_, l)| l.parameter_count())
                .sum::<usize>()
    }
}

/// Dense layers `name: in→out` with bias, weights from a fixed formula.
fn toy(layers: &[(&str, usize, usize)], other_parameters: usize) -> Toy {
    let layers = layers
        .iter()
        .map(|&(name, in_dim, out_dim)| {
            let values: Vec<f32> = (0..in_dim * out_dim)
                .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
                .collect();
            let weight = Tensor::from_vec(values, (out_dim, in_dim), &Device::Cpu).unwrap();
            let bias = Tensor::ones(out_dim, DType::F32, &Device::Cpu).unwrap();
            (name.to_string(), Linear::dense(weight, Some(bias)).unwrap())
        })
        .collect();
    Toy {
        layers,
        other_parameters,
    }
}

// ------------------------------------------------------------------ applying

#[test]
fn lora_with_zero_b_leaves_tiny_bart_unchanged() {
    let mut model = tiny_bart();
    let before = logits(&model);
    apply_lora(&mut model, &q_v(), &VarMap::new(), 0).unwrap();
    // Not bit for bit: with variables in the graph, candle may take differentiable (unfused)
    // kernels. The per-layer property test below checks B = 0 exactly.
    assert_close(&logits(&model), &before, 1e-5, "logits with B = 0");
}

#[test]
fn q_proj_and_v_proj_are_adapted_in_every_attention_block() {
    let mut model = tiny_bart();
    let expected: Vec<String> = model
        .linears()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with(".q_proj") || n.ends_with(".v_proj"))
        .collect();
    // Encoder self-attention, decoder self- and cross-attention, two layers each: 3·2·2 layers.
    assert_eq!(expected.len(), 12);
    assert!(expected.contains(&"decoder.layers.1.encoder_attn.v_proj".to_string()));
    let varmap = VarMap::new();
    let adapted = apply_lora(&mut model, &q_v(), &varmap, 0).unwrap();
    assert_eq!(adapted, expected);
    assert_eq!(lora_layers(&model), expected);

    // Only the factors are variables, named after their layers.
    let vars = varmap.data().lock().unwrap();
    let mut var_names: Vec<&String> = vars.keys().collect();
    var_names.sort();
    let mut wanted: Vec<String> = expected
        .iter()
        .flat_map(|n| [format!("{n}.lora_A.weight"), format!("{n}.lora_B.weight")])
        .collect();
    wanted.sort();
    assert_eq!(var_names, wanted.iter().collect::<Vec<_>>());
    for (name, layer) in model.linears() {
        let Linear::Lora(l) = layer else { continue };
        assert_eq!(l.lora_a.dims(), [4, 32], "{name}");
        assert_eq!(l.lora_b.dims(), [32, 4], "{name}");
        assert_eq!(l.scaling(), 2.0);
        // The layer holds the variables themselves, so gradients reach them.
        assert_eq!(
            l.lora_a.id(),
            vars[&format!("{name}.lora_A.weight")].as_tensor().id()
        );
        assert!(
            !l.base.tensors()[0].1.is_variable(),
            "{name}: base must stay frozen"
        );
    }
}

#[test]
fn a_is_kaiming_uniform_seeded_and_b_is_zero() {
    let draw = |seed| {
        let mut model = tiny_bart();
        apply_lora(&mut model, &q_v(), &VarMap::new(), seed).unwrap();
        model
    };
    let model = draw(7);
    let in_dim = 32.0f32;
    let bound = 1.0 / in_dim.sqrt();
    let mut a_values = Vec::new();
    for (_, layer) in model.linears() {
        let Linear::Lora(l) = layer else { continue };
        assert_eq!(
            l.lora_b
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
        a_values.extend(l.lora_a.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
    assert!(a_values.iter().all(|a| a.abs() <= bound));
    // Uniform on ±b: mean 0, variance b²/3 (1536 draws: a few percent of sampling error).
    let n = a_values.len() as f32;
    let mean = a_values.iter().sum::<f32>() / n;
    let variance = a_values.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / n;
    assert!(mean.abs() < 0.05 * bound, "mean {mean}");
    let expected = bound * bound / 3.0;
    assert!(
        (variance / expected - 1.0).abs() < 0.1,
        "variance {variance}, expected {expected}"
    );

    let factors = |model: &Bart| adapter_tensors(model, BART_PREFIX);
    for ((key, a), (_, b)) in factors(&model).iter().zip(factors(&draw(7)).iter()) {
        assert_close(a, b, 0.0, &format!("{key}: same seed"));
    }
    let other = draw(8);
    let (a7, a8) = (&factors(&model)[0].1, &factors(&other)[0].1);
    let differ = (a7 - a8).unwrap().abs().unwrap().sum_all().unwrap();
    assert!(
        differ.to_scalar::<f32>().unwrap() > 0.0,
        "another seed, another A"
    );
}

#[test]
fn a_regex_target_must_match_the_whole_name() {
    let mut model = tiny_bart();
    let cfg = LoraConfig {
        target_modules: TargetModules::Regex(
            r"decoder\.layers\.\d+\.encoder_attn\.(q|k)_proj".into(),
        ),
        ..q_v()
    };
    let adapted = apply_lora(&mut model, &cfg, &VarMap::new(), 0).unwrap();
    assert_eq!(
        adapted,
        [
            "decoder.layers.0.encoder_attn.q_proj",
            "decoder.layers.0.encoder_attn.k_proj",
            "decoder.layers.1.encoder_attn.q_proj",
            "decoder.layers.1.encoder_attn.k_proj",
        ]
    );
    // `re.fullmatch("q_proj", "encoder.layers.0.self_attn.q_proj")` is None: nothing matches.
    let cfg = LoraConfig {
        target_modules: TargetModules::Regex("q_proj".into()),
        ..q_v()
    };
    match apply_lora(&mut tiny_bart(), &cfg, &VarMap::new(), 0) {
        Err(Error::UnknownLayer { name, hint }) => {
            assert_eq!(name, "q_proj");
            assert!(hint.contains("out_proj"), "lists the layer kinds: {hint}");
        }
        other => panic!("expected UnknownLayer, got {other:?}"),
    }
    assert!(
        TargetModules::Regex(".*\\.(q|v)_proj".into())
            .matches("encoder.layers.0.self_attn.v_proj")
            .unwrap()
    );
    assert!(
        !TargetModules::Names(vec!["proj".into()])
            .matches("encoder.layers.0.self_attn.v_proj")
            .unwrap()
    );
}

#[test]
fn an_existing_variable_is_reused_as_varmap_get_does() {
    let varmap = VarMap::new();
    let mut first = tiny_bart();
    apply_lora(&mut first, &q_v(), &varmap, 0).unwrap();
    randomize_b(&varmap, 3);
    let mut second = tiny_bart();
    apply_lora(&mut second, &q_v(), &varmap, 99).unwrap();
    assert_eq!(varmap.all_vars().len(), 24);
    assert_close(
        &logits(&second),
        &logits(&first),
        0.0,
        "models sharing one adapter",
    );
}

// ------------------------------------------------------------------ merging

#[test]
fn merge_then_unmerge_round_trips_on_tiny_bart() {
    let mut model = tiny_bart();
    let base: HashMap<String, Tensor> = model
        .linears()
        .into_iter()
        .map(|(n, l)| (n, l.effective_weight().unwrap()))
        .collect();
    let varmap = VarMap::new();
    apply_lora(&mut model, &q_v(), &varmap, 0).unwrap();
    randomize_b(&varmap, 1);
    let with_lora = logits(&model);
    let without = logits(&tiny_bart());
    let moved = (&with_lora - &without)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(
        moved.to_scalar::<f32>().unwrap() > 1e-2,
        "B ≠ 0 must change the logits"
    );

    let merged = merge_lora(&mut model).unwrap();
    assert_eq!(merged.len(), 12);
    assert!(lora_layers(&model).is_empty());
    assert_close(&logits(&model), &with_lora, 1e-5, "merged logits");

    let restored = unmerge_lora(&mut model, &merged).unwrap();
    assert_eq!(restored, merged.names());
    assert_eq!(lora_layers(&model), restored);
    for (name, layer) in model.linears() {
        let Linear::Lora(l) = layer else { continue };
        assert_close(
            &l.base.effective_weight().unwrap(),
            &base[&name],
            1e-6,
            &format!("{name}: base after unmerge"),
        );
        // The same variables as before: training goes on after an unmerge.
        let var = varmap.data().lock().unwrap()[&format!("{name}.lora_B.weight")].clone();
        assert_eq!(l.lora_b.id(), var.as_tensor().id());
    }
    // The bases are back to 1e-6; tiny-bart's large weights (std 0.3) amplify that in the logits.
    assert_close(&logits(&model), &with_lora, 1e-4, "unmerged logits");
}

#[test]
fn a_factored_base_is_restored_whole() {
    let u = Tensor::new(&[[1.0f32, 0.0], [0.0, 2.0], [1.0, 1.0]], &Device::Cpu).unwrap();
    let v = Tensor::new(
        &[[1.0f32, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 2.0]],
        &Device::Cpu,
    )
    .unwrap();
    let mut model = Toy {
        layers: vec![("proj".into(), Linear::low_rank(u, v, None).unwrap())],
        other_parameters: 0,
    };
    let cfg = LoraConfig::new(1, 2.0, &["proj"]);
    let varmap = VarMap::new();
    apply_lora(&mut model, &cfg, &varmap, 0).unwrap();
    randomize_b(&varmap, 2);
    let merged = merge_lora(&mut model).unwrap();
    assert_eq!(model.layers[0].1.kind(), "dense");
    unmerge_lora(&mut model, &merged).unwrap();
    let Linear::Lora(l) = &model.layers[0].1 else {
        panic!("not LoRA after unmerge")
    };
    assert_eq!(l.base.kind(), "low-rank");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The lesson's two facts on any small layer: B = 0 changes nothing; merging then unmerging
    /// gives the layer back.
    #[test]
    fn zero_b_is_identity_and_merge_unmerge_round_trips(
        in_dim in 1usize..12, out_dim in 1usize..12, rank in 1usize..5, seed in 0u64..1000,
    ) {
        let mut model = toy(&[("layer", in_dim, out_dim)], 0);
        let xs = Tensor::rand(-1.0f32, 1.0, (3, in_dim), &Device::Cpu).unwrap();
        let before = model.layers[0].1.forward(&xs).unwrap();
        let varmap = VarMap::new();
        apply_lora(&mut model, &LoraConfig::new(rank, 16.0, &["layer"]), &varmap, seed).unwrap();
        assert_close(&model.layers[0].1.forward(&xs).unwrap(), &before, 0.0, "B = 0");

        randomize_b(&varmap, seed);
        let lora = model.layers[0].1.forward(&xs).unwrap();
        let merged = merge_lora(&mut model).unwrap();
        assert_close(&model.layers[0].1.forward(&xs).unwrap(), &lora, 1e-5, "merged");
        unmerge_lora(&mut model, &merged).unwrap();
        let Linear::Lora(l) = &model.layers[0].1 else { panic!("not LoRA after unmerge") };
        let original = toy(&[("layer", in_dim, out_dim)], 0);
        assert_close(
            &l.base.effective_weight().unwrap(),
            &original.layers[0].1.effective_weight().unwrap(),
            1e-6,
            "base after unmerge",
        );
    }
}

// ------------------------------------------------------------------ counting

#[test]
fn counts_and_summary_on_a_hand_checkable_model() {
    // Two 10→20 layers with bias and 1,000 parameters elsewhere (an embedding, say).
    let mut model = toy(&[("a.q_proj", 10, 20), ("a.k_proj", 10, 20)], 1000);
    let base = 1000 + 2 * (10 * 20 + 20);
    assert_eq!(lora_parameter_counts(&model), (0, base));
    apply_lora(
        &mut model,
        &LoraConfig::new(2, 4.0, &["q_proj"]),
        &VarMap::new(),
        0,
    )
    .unwrap();
    // A (r×in) and B (out×r): r·(in + out) new parameters, counted in "all" too.
    let trainable = 2 * (10 + 20);
    assert_eq!(lora_parameter_counts(&model), (trainable, base + trainable));
    assert_eq!(base + trainable, 1500);
    assert_eq!(
        trainable_summary(&model),
        "trainable params: 60 || all params: 1,500 || trainable%: 4.0000"
    );
    assert_eq!(
        trainable_parameters_line(3_072, 1_234_567),
        "trainable params: 3,072 || all params: 1,234,567 || trainable%: 0.2488"
    );
    assert_eq!(
        trainable_parameters_line(0, 999),
        "trainable params: 0 || all params: 999 || trainable%: 0.0000"
    );
}

#[test]
fn bart_counts_its_checkpoints_parameters_as_torch_does() {
    // save_pretrained stores the tied embedding once and final_logits_bias, a buffer.
    let path = models_dir().join("tiny-bart/model.safetensors");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let expected: usize = tensors
        .iter()
        .filter(|(k, _)| k.as_str() != "final_logits_bias")
        .map(|(_, t)| t.elem_count())
        .sum();
    let mut model = tiny_bart();
    assert_eq!(model.parameter_count(), expected);
    apply_lora(&mut model, &q_v(), &VarMap::new(), 0).unwrap();
    let trainable = 12 * 4 * (32 + 32);
    assert_eq!(
        lora_parameter_counts(&model),
        (trainable, expected + trainable)
    );
}

// ------------------------------------------------------------------ saving and loading

#[test]
fn save_then_load_round_trips_in_peft_layout() {
    let mut model = tiny_bart();
    let varmap = VarMap::new();
    let cfg = LoraConfig {
        task_type: Some("SEQ_2_SEQ_LM".into()),
        base_model_name_or_path: Some("tests/fixtures/models/tiny-bart".into()),
        ..q_v()
    };
    apply_lora(&mut model, &cfg, &varmap, 0).unwrap();
    randomize_b(&varmap, 5);
    let dir = temp_dir("round-trip");
    save_adapter(&model, &cfg, &dir, BART_PREFIX).unwrap();

    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["adapter_config.json", "adapter_model.safetensors"],
        "no temp files left"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(json["peft_type"], "LORA");
    assert_eq!(json["r"], 4);
    assert_eq!(
        json["lora_alpha"],
        serde_json::json!(8),
        "an integer, as PEFT writes it"
    );
    assert_eq!(
        json["target_modules"],
        serde_json::json!(["q_proj", "v_proj"])
    );
    assert_eq!(json["bias"], "none");
    assert_eq!(json["inference_mode"], true);
    assert_eq!(json["task_type"], "SEQ_2_SEQ_LM");

    let saved = candle_core::safetensors::load(dir.join("adapter_model.safetensors"), &Device::Cpu)
        .unwrap();
    let mut keys: Vec<&String> = saved.keys().collect();
    keys.sort();
    assert_eq!(keys.len(), 24);
    assert!(
        saved
            .contains_key("base_model.model.model.encoder.layers.0.self_attn.q_proj.lora_A.weight")
    );
    assert!(
        saved.contains_key(
            "base_model.model.model.decoder.layers.1.encoder_attn.v_proj.lora_B.weight"
        )
    );

    let mut loaded = tiny_bart();
    let loaded_cfg = load_adapter(&mut loaded, &dir, BART_PREFIX).unwrap();
    assert_eq!(
        loaded_cfg,
        LoraConfig {
            inference_mode: true,
            ..cfg.clone()
        }
    );
    assert_eq!(lora_layers(&loaded), lora_layers(&model));
    assert_close(&logits(&loaded), &logits(&model), 1e-5, "logits after load");

    // Trainable: the factors become variables holding the file's values.
    let varmap2 = VarMap::new();
    let mut trainable = tiny_bart();
    load_adapter_trainable(&mut trainable, &dir, BART_PREFIX, &varmap2).unwrap();
    assert_eq!(varmap2.all_vars().len(), 24);
    assert_close(
        &logits(&trainable),
        &logits(&model),
        1e-5,
        "logits after trainable load",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_peft_config_parses_and_round_trips() {
    // Fields as PEFT 0.21 writes them (the fixture's adapter_config.json, abridged).
    let text = r#"{
        "alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "tiny-bart",
        "bias": "none", "exclude_modules": null, "fan_in_fan_out": false, "inference_mode": true,
        "init_lora_weights": true, "layers_pattern": null, "layers_to_transform": null,
        "loftq_config": {}, "lora_alpha": 16, "lora_bias": false, "lora_dropout": 0.05,
        "megatron_config": null, "megatron_core": "megatron.core", "modules_to_save": null,
        "peft_type": "LORA", "peft_version": "0.21.0", "qalora_group_size": 16, "r": 8,
        "rank_pattern": {}, "revision": null, "target_modules": ["v_proj", "q_proj"],
        "task_type": "SEQ_2_SEQ_LM", "use_dora": false, "use_qalora": false, "use_rslora": false
    }"#;
    let cfg: LoraConfig = serde_json::from_str(text).unwrap();
    cfg.validate().unwrap();
    assert_eq!((cfg.r, cfg.lora_alpha, cfg.lora_dropout), (8, 16.0, 0.05));
    assert_eq!(cfg.scaling(), 2.0);
    assert_eq!(cfg.other["peft_version"], "0.21.0");
    let again: LoraConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
}

// ------------------------------------------------------------------ errors

fn message(result: models::Result<impl std::fmt::Debug>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn configs_lowrank_cannot_honour_are_refused() {
    let refused = |json: serde_json::Value, needle: &str| {
        let mut fields = serde_json::json!({"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]});
        for (k, v) in json.as_object().unwrap() {
            fields[k] = v.clone();
        }
        let cfg: LoraConfig = serde_json::from_value(fields).unwrap();
        let text = message(apply_lora(&mut tiny_bart(), &cfg, &VarMap::new(), 0));
        assert!(text.contains(needle), "{text:?} should mention {needle:?}");
    };
    refused(serde_json::json!({"bias": "all"}), "bias");
    refused(
        serde_json::json!({"fan_in_fan_out": true}),
        "fan_in_fan_out",
    );
    refused(serde_json::json!({"use_dora": true}), "use_dora");
    refused(serde_json::json!({"use_rslora": true}), "use_rslora");
    refused(
        serde_json::json!({"rank_pattern": {"q_proj": 2}}),
        "rank_pattern",
    );
    refused(serde_json::json!({"peft_type": "IA3"}), "peft_type");
    refused(serde_json::json!({"r": 0}), "r is 0");
    refused(serde_json::json!({"lora_dropout": 1.0}), "lora_dropout");
    refused(
        serde_json::json!({"init_lora_weights": false}),
        "init_lora_weights",
    );
    refused(
        serde_json::json!({"target_modules": []}),
        "target_modules is empty",
    );
    refused(
        serde_json::json!({"target_modules": "(q_proj"}),
        "regular expression",
    );

    let null = serde_json::from_value::<LoraConfig>(
        serde_json::json!({"r": 4, "lora_alpha": 8, "target_modules": null}),
    );
    assert!(
        null.unwrap_err()
            .to_string()
            .contains("list of module names")
    );
}

#[test]
fn a_target_that_matches_nothing_lists_the_layers() {
    let cfg = LoraConfig::new(4, 8.0, &["q_proj", "query"]);
    let mut model = tiny_bart();
    match apply_lora(&mut model, &cfg, &VarMap::new(), 0) {
        Err(Error::UnknownLayer { name, hint }) => {
            assert_eq!(name, "query");
            for kind in ["fc1", "fc2", "k_proj", "out_proj", "q_proj", "v_proj"] {
                assert!(hint.contains(kind), "{hint}");
            }
        }
        other => panic!("expected UnknownLayer, got {other:?}"),
    }
    assert!(
        lora_layers(&model).is_empty(),
        "the model is left untouched"
    );
}

#[test]
fn an_adapted_layer_cannot_be_adapted_again() {
    let mut model = tiny_bart();
    apply_lora(&mut model, &q_v(), &VarMap::new(), 0).unwrap();
    let text = message(apply_lora(&mut model, &q_v(), &VarMap::new(), 0));
    assert!(text.contains("already has a LoRA adapter"), "{text}");
}

#[test]
fn unmerge_refuses_a_layer_changed_since_the_merge() {
    let mut model = tiny_bart();
    apply_lora(&mut model, &q_v(), &VarMap::new(), 0).unwrap();
    let merged = merge_lora(&mut model).unwrap();
    let name = "encoder.layers.0.self_attn.q_proj";
    let w = linear::find(&model, name)
        .unwrap()
        .effective_weight()
        .unwrap();
    let (u, v) = (
        w.narrow(1, 0, 4).unwrap(),
        Tensor::eye(4, DType::F32, &Device::Cpu).unwrap(),
    );
    let v = Tensor::cat(
        &[
            &v,
            &Tensor::zeros((4, 28), DType::F32, &Device::Cpu).unwrap(),
        ],
        1,
    )
    .unwrap();
    linear::replace(&mut model, name, Linear::low_rank(u, v, None).unwrap()).unwrap();
    let text = message(unmerge_lora(&mut model, &merged));
    assert!(text.contains(name) && text.contains("low-rank"), "{text}");
    assert!(lora_layers(&model).is_empty(), "nothing unmerged on error");
}

#[test]
fn save_refuses_a_model_without_adapter_or_another_config() {
    let dir = temp_dir("save-errors");
    let text = message(save_adapter(&tiny_bart(), &q_v(), &dir, BART_PREFIX));
    assert!(text.contains("no LoRA layers"), "{text}");
    let mut model = tiny_bart();
    apply_lora(&mut model, &q_v(), &VarMap::new(), 0).unwrap();
    let text = message(save_adapter(
        &model,
        &LoraConfig::new(8, 8.0, &["q_proj", "v_proj"]),
        &dir,
        BART_PREFIX,
    ));
    assert!(text.contains("r = 4") && text.contains("r = 8"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A saved adapter (r = 4 on q_proj, v_proj) whose files a test then breaks.
fn saved_adapter(name: &str) -> PathBuf {
    let mut model = tiny_bart();
    apply_lora(&mut model, &q_v(), &VarMap::new(), 0).unwrap();
    let dir = temp_dir(name);
    save_adapter(&model, &q_v(), &dir, BART_PREFIX).unwrap();
    dir
}

fn rewrite_weights(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let path = dir.join(lora::WEIGHTS_FILE);
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &path).unwrap();
}

/// Loads `dir` into a fresh tiny-bart, expecting an error; checks the model was left alone.
fn load_error(dir: &Path, key_prefix: &str) -> Error {
    let mut model = tiny_bart();
    let err = load_adapter(&mut model, dir, key_prefix).unwrap_err();
    assert!(
        lora_layers(&model).is_empty(),
        "a failed load must leave the model untouched"
    );
    err
}

#[test]
fn load_names_missing_and_malformed_files() {
    let dir = temp_dir("missing");
    match load_error(&dir, BART_PREFIX) {
        Error::Io { path, source } => {
            assert!(path.ends_with("adapter_config.json"));
            assert!(
                source.to_string().contains("adapter_model.safetensors"),
                "{source}"
            );
        }
        other => panic!("expected Io, got {other:?}"),
    }
    std::fs::write(dir.join(lora::CONFIG_FILE), "{\"r\": 4,").unwrap();
    assert!(matches!(
        load_error(&dir, BART_PREFIX),
        Error::Config { .. }
    ));
    std::fs::write(
        dir.join(lora::CONFIG_FILE),
        r#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "bias": "lora_only"}"#,
    )
    .unwrap();
    match load_error(&dir, BART_PREFIX) {
        Error::Config { message, .. } => assert!(message.contains("bias"), "{message}"),
        other => panic!("expected Config, got {other:?}"),
    }
    std::fs::write(
        dir.join(lora::CONFIG_FILE),
        r#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}"#,
    )
    .unwrap();
    match load_error(&dir, BART_PREFIX) {
        Error::Io { path, .. } => assert!(path.ends_with("adapter_model.safetensors")),
        other => panic!("expected Io, got {other:?}"),
    }
    std::fs::write(dir.join("adapter_model.bin"), b"pickle").unwrap();
    let text = load_error(&dir, BART_PREFIX).to_string();
    assert!(text.contains("safe_serialization=True"), "{text}");
    std::fs::write(dir.join(lora::WEIGHTS_FILE), b"not safetensors").unwrap();
    let text = load_error(&dir, BART_PREFIX).to_string();
    assert!(text.contains("safetensors"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_refuses_keys_the_model_cannot_take() {
    let key = "base_model.model.model.encoder.layers.0.self_attn.q_proj.lora_A.weight";

    let dir = saved_adapter("unknown-layer");
    rewrite_weights(&dir, |t| {
        let a = t.remove(key).unwrap();
        t.insert(key.replace("layers.0", "layers.7"), a);
        let b_key = key.replace("lora_A", "lora_B");
        let b = t.remove(&b_key).unwrap();
        t.insert(b_key.replace("layers.0", "layers.7"), b);
    });
    match load_error(&dir, BART_PREFIX) {
        Error::UnknownLayer { name, hint } => {
            assert_eq!(name, "encoder.layers.7.self_attn.q_proj");
            assert!(hint.contains("adapter_model.safetensors"), "{hint}");
        }
        other => panic!("expected UnknownLayer, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = saved_adapter("shapes");
    rewrite_weights(&dir, |t| {
        t.insert(
            key.into(),
            Tensor::zeros((2, 32), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    match load_error(&dir, BART_PREFIX) {
        Error::ShapeMismatch {
            name,
            expected,
            actual,
        } => {
            assert_eq!(name, key);
            assert_eq!((expected, actual), (vec![4, 32], vec![2, 32]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = saved_adapter("partner");
    rewrite_weights(&dir, |t| {
        t.remove(&key.replace("lora_A", "lora_B"));
    });
    match load_error(&dir, BART_PREFIX) {
        Error::MissingTensor { name } => assert!(name.contains("q_proj.lora_B.weight"), "{name}"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = saved_adapter("bias");
    rewrite_weights(&dir, |t| {
        t.insert(
            key.replace("lora_A.weight", "bias"),
            Tensor::zeros(32, DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let text = load_error(&dir, BART_PREFIX).to_string();
    assert!(text.contains("not a lora_A or lora_B weight"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();

    // A BartModel prefix ("") or a wrong one for a BartForConditionalGeneration adapter.
    let dir = saved_adapter("prefix");
    for wrong in ["", "bart."] {
        let text = load_error(&dir, wrong).to_string();
        assert!(text.contains("key_prefix"), "{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn older_peft_keys_with_the_adapter_name_load() {
    let dir = saved_adapter("default-name");
    let mut model = tiny_bart();
    load_adapter(&mut model, &dir, BART_PREFIX).unwrap();
    rewrite_weights(&dir, |t| {
        let renamed: HashMap<String, Tensor> = t
            .drain()
            .map(|(k, v)| (k.replace(".weight", ".default.weight"), v))
            .collect();
        *t = renamed;
    });
    let mut old = tiny_bart();
    load_adapter(&mut old, &dir, BART_PREFIX).unwrap();
    assert_close(&logits(&old), &logits(&model), 0.0, "adapter-name keys");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------------ parity with PEFT

/// A file made by make_lora_fixtures.py, or a failure saying how to make it.
fn lora_fixture(name: &str) -> PathBuf {
    let path = models_dir().join(name);
    assert!(
        path.exists(),
        "LoRA parity fixture {} is missing: on a machine with torch, transformers and peft run \
         `python {LORA_SCRIPT} --out OUT` from the repository root, then copy OUT/tiny-bart-lora, \
         OUT/lora-step.safetensors and OUT/lora-step.json into tests/fixtures/models/",
        path.display()
    );
    path
}

struct Step {
    tensors: HashMap<String, Tensor>,
    json: serde_json::Value,
}

fn peft_step() -> Step {
    let tensors =
        candle_core::safetensors::load(lora_fixture("lora-step.safetensors"), &Device::Cpu)
            .unwrap();
    let text = std::fs::read_to_string(lora_fixture("lora-step.json")).unwrap();
    Step {
        tensors,
        json: serde_json::from_str(&text).unwrap(),
    }
}

impl Step {
    fn get(&self, key: &str) -> &Tensor {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("lora-step.safetensors has no tensor {key}"))
    }

    /// tiny-bart with PEFT's adapter, its factors variables in `varmap`, and its logits.
    fn forward(&self, varmap: &VarMap) -> (Bart, Tensor) {
        let mut model = tiny_bart();
        let cfg = load_adapter_trainable(
            &mut model,
            &lora_fixture("tiny-bart-lora"),
            BART_PREFIX,
            varmap,
        )
        .unwrap();
        assert_eq!((cfg.r, cfg.lora_alpha), (4, 8.0));
        let labels = self.get("labels");
        let decoder_ids = shift_tokens_right(labels, PAD, DECODER_START).unwrap();
        assert_close(
            &decoder_ids.to_dtype(DType::F32).unwrap(),
            &self.get("decoder_input_ids").to_dtype(DType::F32).unwrap(),
            0.0,
            "decoder_input_ids",
        );
        let logits = model
            .forward(
                &self.get("input_ids").to_dtype(DType::U32).unwrap(),
                &self.get("attention_mask").to_dtype(DType::U32).unwrap(),
                &decoder_ids.to_dtype(DType::U32).unwrap(),
            )
            .unwrap();
        (model, logits)
    }
}

#[test]
fn peft_adapter_gives_peft_logits_and_loss() {
    let step = peft_step();
    let (_, logits) = step.forward(&VarMap::new());
    assert_close(
        &logits,
        step.get("logits"),
        1e-5,
        "logits with PEFT's adapter",
    );
    let loss = cross_entropy(&logits, step.get("labels")).unwrap();
    assert_close(&loss.reshape(1).unwrap(), step.get("loss"), 1e-5, "loss");
}

#[test]
fn peft_trainable_summary_is_reproduced() {
    let step = peft_step();
    let (model, _) = step.forward(&VarMap::new());
    let line = step.json["trainable_parameters"].as_str().unwrap();
    assert_eq!(trainable_summary(&model), line);
    let mut fresh = tiny_bart();
    let cfg = LoraConfig::from_json_file(&lora_fixture("tiny-bart-lora").join(lora::CONFIG_FILE))
        .unwrap();
    apply_lora(&mut fresh, &cfg, &VarMap::new(), 0).unwrap();
    assert_eq!(
        trainable_summary(&fresh),
        line,
        "apply_lora with PEFT's config"
    );
}

#[test]
fn peft_gradients_are_reproduced() {
    let step = peft_step();
    let varmap = VarMap::new();
    let (model, logits) = step.forward(&varmap);
    let loss = cross_entropy(&logits, step.get("labels")).unwrap();
    let grads = loss.backward().unwrap();
    let factors = adapter_tensors(&model, BART_PREFIX);
    assert_eq!(factors.len(), 24);
    for (key, factor) in &factors {
        let grad = grads
            .get(factor)
            .unwrap_or_else(|| panic!("{key}: no gradient reached this factor"));
        assert_close(
            grad,
            step.get(&format!("{key}.grad")),
            1e-5,
            &format!("{key}.grad"),
        );
    }
}

#[test]
fn peft_adamw_step_is_reproduced() {
    let step = peft_step();
    let varmap = VarMap::new();
    let (model, logits) = step.forward(&varmap);
    let adamw = &step.json["adamw"];
    let params = candle_nn::ParamsAdamW {
        lr: adamw["lr"].as_f64().unwrap(),
        beta1: adamw["betas"][0].as_f64().unwrap(),
        beta2: adamw["betas"][1].as_f64().unwrap(),
        eps: adamw["eps"].as_f64().unwrap(),
        weight_decay: adamw["weight_decay"].as_f64().unwrap(),
    };
    let vars: Vec<Var> = varmap.all_vars();
    let mut optimizer = candle_nn::AdamW::new(vars, params).unwrap();
    let loss = cross_entropy(&logits, step.get("labels")).unwrap();
    optimizer.backward_step(&loss).unwrap();
    for (key, factor) in adapter_tensors(&model, BART_PREFIX) {
        assert_close(
            &factor,
            step.get(&format!("{key}.adamw")),
            1e-5,
            &format!("{key} after AdamW"),
        );
    }
}
