//! Tucker-2 with shared factors: exact recovery of shared structure, the reported errors and
//! parameter counts against independent measurements, a one-matrix group equal to truncated SVD,
//! clear refusals, saved groups that reload exactly, and the design space's size and numbering.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use candle_core::{DType, Device, Tensor};
use common::{SENTENCES, bart_logits, fixture, max_abs_diff, random_tensor, tiny_bart, tiny_bert};
use compress::storage::MODEL_FILE;
use compress::{
    DesignPoint, DesignSpace, Error, Plan, RankRule, Sharing, Tucker2Options, compress_tucker2,
    load_compressed_bart, save_compressed,
};
use lowrank::ndarray::Array2;
use models::{Linear, Linears, linear};
use tempfile::TempDir;

const ATTENTION: &str = "*.attention.*";

fn to_array(t: &Tensor) -> Array2<f64> {
    let (rows, cols) = t.dims2().unwrap();
    let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    Array2::from_shape_vec((rows, cols), values.into_iter().map(f64::from).collect()).unwrap()
}

fn frobenius(a: &Array2<f64>) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn plan() -> Plan {
    Plan::new(RankRule::Fixed(1)).select([ATTENTION])
}

fn attention_names<M: Linears>(model: &M) -> Vec<String> {
    plan().resolve(model).unwrap()
}

/// tiny-bert with every attention weight replaced by `U1·G_k·U2ᵀ` of rank `rank`, one pair of
/// factors for all of them.
fn bert_with_shared_structure(rank: usize) -> models::bert::SentenceEncoder {
    let mut model = tiny_bert();
    let u1 = random_tensor(32, rank, 1);
    let u2 = random_tensor(32, rank, 2);
    for (k, name) in attention_names(&model).into_iter().enumerate() {
        let core = random_tensor(rank, rank, 100 + k as u64);
        let weight = u1.matmul(&core).unwrap().matmul(&u2.t().unwrap()).unwrap();
        let bias = linear::find(&model, &name).unwrap().bias().cloned();
        linear::replace(&mut model, &name, Linear::dense(weight, bias).unwrap()).unwrap();
    }
    model
}

#[test]
fn shared_structure_is_recovered_exactly_with_one_pair_of_factors() {
    let mut model = bert_with_shared_structure(4);
    let names = attention_names(&model);
    let report = compress_tucker2(&mut model, &plan(), &Tucker2Options::new(4)).unwrap();
    assert_eq!(report.groups.len(), 1);
    let group = &report.groups[0];
    assert_eq!(group.layers, names);
    assert!(
        group.relative_error < 1e-5,
        "group error {}",
        group.relative_error
    );
    for layer in &report.layers {
        assert!(
            layer.relative_error < 1e-5,
            "{}: {}",
            layer.name,
            layer.relative_error
        );
    }
    // 8 matrices of 32×32: U1, U2 (2·32·4) once, eight 4×4 cores, biases untouched.
    let biases = 8 * 32;
    assert_eq!(group.shared_params, 2 * 32 * 4);
    assert_eq!(report.params_before(), 8 * 32 * 32 + biases);
    assert_eq!(report.params_after(), 2 * 32 * 4 + 8 * 16 + biases);
}

#[test]
fn reported_errors_and_parameters_match_what_the_model_now_computes() {
    let original = tiny_bert();
    let mut model = original.clone();
    let report = compress_tucker2(&mut model, &plan(), &Tucker2Options::new(6)).unwrap();
    let (mut squared_error, mut squared_norm) = (0.0, 0.0);
    for layer in &report.layers {
        let before = to_array(
            &linear::find(&original, &layer.name)
                .unwrap()
                .effective_weight()
                .unwrap(),
        );
        let now = linear::find(&model, &layer.name).unwrap();
        assert_eq!(now.kind(), "tucker-2");
        let after = to_array(&now.effective_weight().unwrap());
        let error = frobenius(&(&before - &after));
        let measured = error / frobenius(&before);
        assert!(
            (measured - layer.relative_error).abs() < 1e-5,
            "{}: reported {} measured {measured}",
            layer.name,
            layer.relative_error
        );
        squared_error += error * error;
        squared_norm += frobenius(&before).powi(2);
    }
    let group_error = (squared_error / squared_norm).sqrt();
    assert!((group_error - report.groups[0].relative_error).abs() < 1e-5);
    // Totals: every distinct tensor of every linear layer, each counted once.
    let mut seen = HashSet::new();
    let mut distinct = 0;
    for (_, layer) in model.linears() {
        for (_, tensor) in layer.tensors() {
            let id = tensor.id();
            if seen.insert(id) {
                distinct += tensor.elem_count();
            }
        }
    }
    assert_eq!(report.linear_params_after, distinct);
    assert!(report.linear_params_after < report.linear_params_before);
    let embeddings = model.embed(SENTENCES).unwrap();
    assert_eq!(embeddings.dims(), [SENTENCES.len(), 32]);
}

#[test]
fn a_group_of_one_matrix_is_the_truncated_svd() {
    let original = tiny_bert();
    let mut model = original.clone();
    let only_query = Plan::new(RankRule::Fixed(1)).select(["*.attention.self.query"]);
    let options = Tucker2Options::new(5).sharing(Sharing::PerBlock);
    let report = compress_tucker2(&mut model, &only_query, &options).unwrap();
    assert_eq!(report.groups.len(), 2, "one group per block");
    for layer in &report.layers {
        let weight = to_array(
            &linear::find(&original, &layer.name)
                .unwrap()
                .effective_weight()
                .unwrap(),
        );
        let s = lowrank::svd::svd(weight.view()).unwrap().s;
        let tail: f64 = s.iter().skip(5).map(|x| x * x).sum::<f64>().sqrt();
        let expected = tail / frobenius(&weight);
        assert!(
            (layer.relative_error - expected).abs() < 1e-5,
            "{}: {} vs the SVD tail {expected}",
            layer.name,
            layer.relative_error
        );
    }
}

#[test]
fn sharing_groups_follow_blocks_and_tensor_kinds() {
    let mut model = tiny_bart();
    let plan = Plan::new(RankRule::Fixed(1)).select(["*.self_attn.q_proj", "*.self_attn.v_proj"]);
    let by_tensor = compress_tucker2(
        &mut model.clone(),
        &plan,
        &Tucker2Options::new(3).sharing(Sharing::PerTensor),
    )
    .unwrap();
    let names: Vec<&str> = by_tensor.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["self_attn.q_proj", "self_attn.v_proj"]);
    assert_eq!(
        by_tensor.groups[0].layers.len(),
        4,
        "two encoder and two decoder blocks"
    );
    let by_block = compress_tucker2(
        &mut model,
        &plan,
        &Tucker2Options::new(3).sharing(Sharing::PerBlock),
    )
    .unwrap();
    let names: Vec<&str> = by_block.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "encoder.layers.0",
            "encoder.layers.1",
            "decoder.layers.0",
            "decoder.layers.1"
        ]
    );
}

#[test]
fn ranks_that_do_not_compress_and_mixed_shapes_are_refused_and_leave_the_model_whole() {
    let mut model = tiny_bart();
    let before = bart_logits(&model);
    let error = compress_tucker2(
        &mut model,
        &Plan::new(RankRule::Fixed(1)).select(["*.self_attn.q_proj"]),
        &Tucker2Options::new(32),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::InvalidGroupRank { .. }), "{message}");
    assert!(
        message.contains("rank 32") && message.contains("choose a rank in 1..="),
        "{message}"
    );
    let error = compress_tucker2(
        &mut model,
        &Plan::new(RankRule::Fixed(1)).select(["*.q_proj", "*.fc1"]),
        &Tucker2Options::new(2),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("only matrices of one shape can share"),
        "{message}"
    );
    assert_eq!(max_abs_diff(&bart_logits(&model), &before), 0.0);
    let error = compress_tucker2(
        &mut model,
        &Plan::new(RankRule::Fixed(1)).select(["*.nothing"]),
        &Tucker2Options::new(2),
    )
    .unwrap_err();
    assert!(matches!(error, Error::NoMatch { .. }), "{error}");
}

#[test]
fn saved_groups_store_shared_factors_once_and_reload_with_identical_logits() {
    let temp = TempDir::new().unwrap();
    let mut model = tiny_bart();
    let plan =
        Plan::new(RankRule::Fixed(1)).select(["*.q_proj", "*.k_proj", "*.v_proj", "*.out_proj"]);
    let options = Tucker2Options::new(4).sharing(Sharing::PerTensor);
    let report = compress_tucker2(&mut model, &plan, &options).unwrap();
    let dir = temp.path().join("tucker");
    let manifest = save_compressed(&model, &report, &fixture("tiny-bart"), &dir).unwrap();
    assert_eq!(manifest.groups.len(), report.groups.len());
    assert!(manifest.layers.is_empty());
    let bytes = std::fs::read(dir.join(MODEL_FILE)).unwrap();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    let shared = tensors.keys().filter(|k| k.ends_with(".u1")).count();
    assert_eq!(shared, report.groups.len(), "one U1 per group");
    let cores = tensors.keys().filter(|k| k.ends_with(".core")).count();
    assert_eq!(cores, report.layers.len());
    let (reloaded, read) = load_compressed_bart(&dir, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(read.groups.len(), manifest.groups.len());
    for (read, written) in read.groups.iter().zip(&manifest.groups) {
        assert_eq!(
            (&read.name, &read.key, read.rank),
            (&written.name, &written.key, written.rank)
        );
        assert!((read.relative_error - written.relative_error).abs() < 1e-12);
    }
    assert!(max_abs_diff(&bart_logits(&reloaded), &bart_logits(&model)) <= 1e-6);

    // A missing core is named.
    let mut damaged = tensors.clone();
    let core_key = damaged
        .keys()
        .find(|k| k.ends_with(".core"))
        .unwrap()
        .clone();
    damaged.remove(&core_key);
    candle_core::safetensors::save(&damaged, dir.join(MODEL_FILE)).unwrap();
    let message = load_compressed_bart(&dir, DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&core_key) && message.contains("missing"),
        "{message}"
    );
}

#[test]
fn design_space_size_numbering_samples_and_grids() {
    let space = DesignSpace::new(0..6, ["q", "k", "v", "o"], [1, 8, 32]).unwrap();
    assert_eq!(space.size(), 63 * 15 * 3 + 1);
    let all: Vec<DesignPoint> = space.iter().collect();
    assert_eq!(all.len() as u128, space.size());
    assert_eq!(all[0], DesignPoint::Original);
    let distinct: HashSet<&DesignPoint> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "every index is a different point"
    );
    let keys: HashSet<String> = all.iter().map(DesignPoint::key).collect();
    assert_eq!(keys.len(), all.len(), "keys tell points apart");
    assert!(space.point(space.size()).is_err());

    let bert_base = DesignSpace::new(0..12, ["q", "k", "v", "o"], 1..=8).unwrap();
    assert_eq!(bert_base.size(), 491_401);

    let sample = space.sample(50, 7);
    assert_eq!(sample.len(), 50);
    assert_eq!(sample[0], DesignPoint::Original);
    assert_eq!(sample, space.sample(50, 7), "seeded");
    assert_ne!(sample, space.sample(50, 8));
    assert_eq!(sample.iter().collect::<HashSet<_>>().len(), 50);
    assert_eq!(space.sample(10_000, 1).len() as u128, space.size());

    let grid = space
        .grid(&[vec![0, 5], vec![2]], &[vec!["q".into(), "k".into()]])
        .unwrap();
    assert_eq!(grid.len(), 1 + 2 * 3);
    assert!(space.grid(&[vec![9]], &[vec!["q".into()]]).is_err());
    assert!(space.grid(&[vec![]], &[vec!["q".into()]]).is_err());
    assert!(DesignSpace::new(0..3, ["q"], [0]).is_err());
    assert!(DesignSpace::new(0..30, ["q"], [1]).is_err());
}

const QKV: [&str; 3] = [
    "*.attention.self.query",
    "*.attention.self.key",
    "*.attention.self.value",
];

/// tiny-bert (32 wide, 4 heads of 8) whose q, k, v weights are, head by head, `U1·G·U2ᵀ` with
/// one U1 (8×2) and U2 (32×3) for every head of every matrix.
fn bert_with_shared_head_structure() -> models::bert::SentenceEncoder {
    let mut model = tiny_bert();
    let u1 = random_tensor(8, 2, 11);
    let u2 = random_tensor(32, 3, 12);
    let names = Plan::new(RankRule::Fixed(1))
        .select(QKV)
        .resolve(&model)
        .unwrap();
    for (k, name) in names.iter().enumerate() {
        let heads: Vec<Tensor> = (0..4)
            .map(|h| {
                let core = random_tensor(2, 3, 200 + 10 * k as u64 + h);
                u1.matmul(&core).unwrap().matmul(&u2.t().unwrap()).unwrap()
            })
            .collect();
        let weight = Tensor::cat(&heads, 0).unwrap();
        let bias = linear::find(&model, name).unwrap().bias().cloned();
        linear::replace(&mut model, name, Linear::dense(weight, bias).unwrap()).unwrap();
    }
    model
}

#[test]
fn per_head_tucker2_recovers_shared_head_structure_and_computes_its_weight() {
    let original = bert_with_shared_head_structure();
    let mut model = original.clone();
    let plan = Plan::new(RankRule::Fixed(1)).select(QKV);
    let options = Tucker2Options::new(3).per_head(4, 2);
    let report = compress_tucker2(&mut model, &plan, &options).unwrap();
    let group = &report.groups[0];
    assert_eq!((group.heads, group.head_rank), (4, Some(2)));
    assert!(group.relative_error < 1e-5, "{}", group.relative_error);
    // U1 (8×2) and U2 (32×3) once; six matrices × four heads of 2×3 cores; biases kept.
    assert_eq!(group.shared_params, 8 * 2 + 32 * 3);
    assert_eq!(report.params_after(), 8 * 2 + 32 * 3 + 6 * 4 * 6 + 6 * 32);
    let x = random_tensor(5, 32, 99);
    for layer in &report.layers {
        let compressed = linear::find(&model, &layer.name).unwrap();
        assert_eq!((compressed.in_dim(), compressed.out_dim()), (32, 32));
        let weight = compressed.effective_weight().unwrap();
        let dense = linear::find(&original, &layer.name)
            .unwrap()
            .effective_weight()
            .unwrap();
        let scale = dense
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let diff = max_abs_diff(&weight, &dense);
        assert!(diff < 1e-5 * scale, "{}: {diff} of {scale}", layer.name);
        // The per-head forward pass applies exactly that weight.
        let bias = compressed.bias().unwrap().clone();
        let expected = x
            .matmul(&weight.t().unwrap())
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        let direct = compressed
            .forward(&x.unsqueeze(0).unwrap())
            .unwrap()
            .squeeze(0)
            .unwrap();
        let diff = max_abs_diff(&direct, &expected);
        assert!(diff < 1e-5 * scale * 32.0, "{}: {diff}", layer.name);
    }
    let embeddings = |m: &models::bert::SentenceEncoder| m.embed(SENTENCES).unwrap();
    assert!(max_abs_diff(&embeddings(&model), &embeddings(&original)) < 1e-4);
}

#[test]
fn per_head_groups_save_and_reload_and_bad_head_counts_are_refused() {
    let temp = TempDir::new().unwrap();
    let mut model = tiny_bart();
    let plan = Plan::new(RankRule::Fixed(1)).select(["*.q_proj", "*.k_proj", "*.v_proj"]);
    let report =
        compress_tucker2(&mut model, &plan, &Tucker2Options::new(6).per_head(4, 3)).unwrap();
    let dir = temp.path().join("heads");
    let manifest = save_compressed(&model, &report, &fixture("tiny-bart"), &dir).unwrap();
    assert_eq!(manifest.groups[0].heads, 4);
    let (reloaded, _) = load_compressed_bart(&dir, DType::F32, &Device::Cpu).unwrap();
    assert!(max_abs_diff(&bart_logits(&reloaded), &bart_logits(&model)) <= 1e-6);

    let mut fresh = tiny_bart();
    let message = compress_tucker2(&mut fresh, &plan, &Tucker2Options::new(6).per_head(5, 1))
        .unwrap_err()
        .to_string();
    assert!(message.contains("do not split into 5 heads"), "{message}");
    let message = compress_tucker2(&mut fresh, &plan, &Tucker2Options::new(6).per_head(4, 9))
        .unwrap_err()
        .to_string();
    assert!(message.contains("more columns than its side"), "{message}");
}
