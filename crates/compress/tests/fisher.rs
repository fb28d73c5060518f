//! Fisher-weighted SVD (FWSVD): the truncation minimizes the Fisher-weighted error exactly (the
//! Eckart–Young tail of `diag(√I)·W`), beating plain SVD on it at every rank; importances come
//! from candle's autograd on a model built over a `VarMap`; on a small trained BART, FWSVD of the
//! attention projections keeps each layer's weighted error below plain SVD's; and the errors name
//! what is wrong (unknown layer, no batches, a loss that never reaches a layer).

#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, Optimizer, VarBuilder, VarMap};
use compress::method::Statistics;
use compress::{
    Error, FisherStats, LayerFisher, Method, Plan, RankRule, compress_model,
    compress_model_calibrated, compress_model_fisher, factorize, factorize_fisher, factorize_svd,
    fisher_importance, fisher_weighted_error, largest_useful_rank,
};
use lowrank::ndarray::{Array1, Array2, Axis};
use lowrank::svd::{frobenius_norm, optimal_frobenius_error, svd};
use models::bart::{Bart, Config};
use models::linear::ActivationStats;
use models::loss::{cross_entropy, shift_tokens_right};
use models::{Linear, Linears};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn normal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |_| StandardNormal.sample(rng))
}

fn to_tensor(a: &Array2<f64>) -> Tensor {
    Tensor::from_vec(a.iter().copied().collect::<Vec<_>>(), a.dim(), &Device::Cpu).unwrap()
}

fn to_array(t: &Tensor) -> Array2<f64> {
    let rows = t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
    let cols = rows[0].len();
    Array2::from_shape_vec((rows.len(), cols), rows.concat()).unwrap()
}

fn fisher_of(importance: &[f64], in_dim: usize) -> LayerFisher {
    LayerFisher {
        in_dim,
        row_importance: importance.to_vec(),
        batches: 1,
    }
}

/// `‖diag(√I)·(W − W_r)‖_F / ‖diag(√I)·W‖_F`, straight from the arrays.
fn weighted_error(w: &Array2<f64>, approximation: &Linear, importance: &[f64]) -> f64 {
    let wr = to_array(&approximation.effective_weight().unwrap());
    let root: Array1<f64> = importance.iter().map(|i| i.sqrt()).collect();
    let root = root.insert_axis(Axis(1));
    frobenius_norm(((w - &wr) * &root).view()) / frobenius_norm((w * &root).view())
}

/// A random 24×32 layer and row importances log-spaced over four decades in a shuffled order:
/// at every useful rank, FWSVD's weighted error is the optimum (the tail of the singular values
/// of `diag(√I)·W`, computed here independently) and plain SVD's is never lower, and clearly
/// higher at middle ranks; on the unweighted error the order flips (plain SVD is optimal there).
#[test]
fn fisher_truncation_minimizes_the_weighted_error() {
    let (out_dim, in_dim) = (24, 32);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let w = normal(out_dim, in_dim, &mut rng);
    let layer = Linear::dense(to_tensor(&w), None).unwrap();
    let mut importance: Vec<f64> = (0..out_dim)
        .map(|i| 10f64.powf(-3.0 + 4.0 * i as f64 / (out_dim - 1) as f64))
        .collect();
    for i in (1..out_dim).rev() {
        importance.swap(i, rng.random_range(0..=i));
    }
    let fisher = fisher_of(&importance, in_dim);
    let root: Array1<f64> = importance.iter().map(|i| i.sqrt()).collect();
    let weighted = &w * &root.view().insert_axis(Axis(1));
    let spectrum = svd(weighted.view()).unwrap().s;
    let plain_spectrum = svd(w.view()).unwrap().s;
    for rank in 1..=largest_useful_rank(in_dim, out_dim) {
        let optimum =
            optimal_frobenius_error(spectrum.view(), rank) / frobenius_norm(weighted.view());
        let fwsvd = factorize_fisher(&layer, rank, &fisher).unwrap();
        let plain = factorize_svd(&layer, rank).unwrap();
        let (fisher_error, plain_error) = (
            weighted_error(&w, &fwsvd, &importance),
            weighted_error(&w, &plain, &importance),
        );
        let library = fisher_weighted_error(&layer, &fwsvd, &fisher).unwrap();
        assert!(
            (library - fisher_error).abs() <= 1e-12,
            "rank {rank}: fisher_weighted_error {library}, direct {fisher_error}"
        );
        assert!(
            (fisher_error - optimum).abs() <= 1e-9 * optimum,
            "rank {rank}: fisher {fisher_error} but the optimum is {optimum}"
        );
        assert!(
            plain_error > fisher_error,
            "rank {rank}: svd {plain_error} <= fisher {fisher_error}"
        );
        if (4..=10).contains(&rank) {
            assert!(
                plain_error > 1.2 * fisher_error,
                "rank {rank}: svd {plain_error}, fisher {fisher_error}"
            );
        }
        // Unweighted, plain SVD is the optimum (Eckart–Young) and FWSVD pays for its weights.
        let plain_optimum =
            optimal_frobenius_error(plain_spectrum.view(), rank) / frobenius_norm(w.view());
        let unweighted = |l: &Linear| weighted_error(&w, l, &vec![1.0; out_dim]);
        assert!((unweighted(&plain) - plain_optimum).abs() <= 1e-9 * plain_optimum);
        assert!(unweighted(&fwsvd) > unweighted(&plain), "rank {rank}");
    }
}

/// Equal importances weight nothing: FWSVD is then plain SVD, whatever their common value.
#[test]
fn equal_importances_give_plain_svd() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let w = normal(20, 12, &mut rng);
    let layer = Linear::dense(to_tensor(&w), None).unwrap();
    let plain = to_array(
        &factorize_svd(&layer, 4)
            .unwrap()
            .effective_weight()
            .unwrap(),
    );
    for value in [1e-30, 1.0, 1e20] {
        let fisher = fisher_of(&[value; 20], 12);
        let fwsvd = factorize_fisher(&layer, 4, &fisher).unwrap();
        let fwsvd = to_array(&fwsvd.effective_weight().unwrap());
        let difference = frobenius_norm((&fwsvd - &plain).view());
        assert!(
            difference <= 1e-10 * frobenius_norm(plain.view()),
            "{value}: {difference}"
        );
    }
}

/// Rows with zero importance are floored rather than divided by zero: the factors stay finite,
/// each such row is still projected onto the kept subspace (its norm can only shrink), and the
/// weighted error is the optimum of the rows that count.
#[test]
fn rows_without_importance_are_floored() {
    let (out_dim, in_dim) = (16, 24);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let w = normal(out_dim, in_dim, &mut rng);
    let layer = Linear::dense(to_tensor(&w), None).unwrap();
    let importance: Vec<f64> = (0..out_dim)
        .map(|i| if i % 3 == 0 { 0.0 } else { 1.0 + i as f64 })
        .collect();
    let fisher = fisher_of(&importance, in_dim);
    let rank = 6;
    let fwsvd = factorize_fisher(&layer, rank, &fisher).unwrap();
    let approximation = to_array(&fwsvd.effective_weight().unwrap());
    assert!(approximation.iter().all(|x| x.is_finite()));
    for (row, original) in approximation.outer_iter().zip(w.outer_iter()) {
        let norm = |r: lowrank::ndarray::ArrayView1<f64>| r.dot(&r).sqrt();
        assert!(norm(row) <= norm(original) * (1.0 + 1e-9));
    }
    let root: Array1<f64> = importance.iter().map(|i| i.sqrt()).collect();
    let weighted = &w * &root.view().insert_axis(Axis(1));
    let spectrum = svd(weighted.view()).unwrap().s;
    let optimum = optimal_frobenius_error(spectrum.view(), rank) / frobenius_norm(weighted.view());
    let error = weighted_error(&w, &fwsvd, &importance);
    assert!(
        (error - optimum).abs() <= 1e-6 * optimum,
        "{error} vs {optimum}"
    );
}

#[test]
fn fisher_prints_parses_and_says_it_reads_gradients() {
    assert_eq!(Method::Fisher.to_string(), "fisher");
    assert_eq!("fisher".parse::<Method>().unwrap(), Method::Fisher);
    assert_eq!(
        Method::Fisher.to_string().parse::<Method>().unwrap(),
        Method::Fisher
    );
    for bad in ["fisher alpha=1", "fwsvd", "fisher fisher"] {
        assert!(bad.parse::<Method>().is_err(), "{bad:?} parsed");
    }
    assert_eq!(Method::Svd.statistics(), Statistics::Weights);
    assert_eq!(Method::asvd().statistics(), Statistics::Activations);
    assert_eq!(Method::whitened().statistics(), Statistics::Activations);
    assert_eq!(Method::Fisher.statistics(), Statistics::Gradients);
    assert!(Method::Fisher.needs_calibration());
    assert!(!Method::Svd.needs_calibration());
    assert_eq!(Method::Fisher.name(), "fisher");
}

/// FWSVD refuses to run without importances, with activations instead, or with importances that
/// do not fit the layer or weight nothing; the surgery entry points send each method to the
/// statistics it reads.
#[test]
fn fisher_needs_fitting_importances() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let layer = Linear::dense(to_tensor(&normal(16, 16, &mut rng)), None).unwrap();
    let error = factorize(&layer, 4, Method::Fisher, None).unwrap_err();
    assert!(matches!(error, Error::Calibration { .. }), "{error}");
    let activations = ActivationStats::new(16);
    let error = factorize(&layer, 4, Method::Fisher, Some(&activations)).unwrap_err();
    assert!(error.to_string().contains("fisher_importance"), "{error}");
    for (fisher, expected) in [
        (fisher_of(&[1.0; 8], 16), "8 rows"),
        (fisher_of(&[1.0; 16], 8), "8 input features"),
        (fisher_of(&[0.0; 16], 16), "zero Fisher importance"),
        (
            LayerFisher {
                batches: 0,
                ..fisher_of(&[1.0; 16], 16)
            },
            "no batches",
        ),
    ] {
        let error = factorize_fisher(&layer, 4, &fisher).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
    let mut nan = vec![1.0; 16];
    nan[3] = f64::NAN;
    let error = factorize_fisher(&layer, 4, &fisher_of(&nan, 16)).unwrap_err();
    assert!(error.to_string().contains("NaN"), "{error}");

    let mut model = small_bart(0);
    let plan = Plan::new(RankRule::Fixed(4))
        .select(["encoder.layers.0.self_attn.q_proj"])
        .with_method(Method::Fisher);
    let error = compress_model(&mut model, &plan).unwrap_err();
    assert!(error.to_string().contains("fisher_importance"), "{error}");
    let calibration = compress::Calibration::from_stats([(
        "encoder.layers.0.self_attn.q_proj".to_string(),
        ActivationStats::new(32),
    )]);
    let error = compress_model_calibrated(&mut model, &plan, &calibration).unwrap_err();
    assert!(error.to_string().contains("fisher_importance"), "{error}");
    let error = compress_model_fisher(&mut model, &plan.clone().with_method(Method::asvd()), &{
        FisherStats::default()
    })
    .unwrap_err();
    assert!(error.to_string().contains("compress::calibrate"), "{error}");
    let error = compress_model_fisher(&mut model, &plan, &FisherStats::default()).unwrap_err();
    assert!(
        error.to_string().contains("no Fisher statistics")
            && error
                .to_string()
                .contains("encoder.layers.0.self_attn.q_proj"),
        "{error}"
    );
    assert!(model.linears().iter().all(|(_, l)| l.kind() == "dense"));
}

/// The importances are the squared gradients summed row by row over batches: for a loss linear
/// in `W` (`L = Σ c_ij·W_ij`, so `∂L/∂W = c`), batch `k` scaled by `k` adds `k²·Σ_j c_ij²`.
#[test]
fn importances_are_summed_squared_gradients() {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let w = varmap
        .get(
            (3, 4),
            "block.proj.weight",
            Init::Const(0.5),
            DType::F32,
            &device,
        )
        .unwrap();
    let other = varmap
        .get((2, 4), "head.weight", Init::Const(1.0), DType::F32, &device)
        .unwrap();
    let c = Tensor::new(
        &[[1f32, 0., 0., 0.], [1., 1., 1., 1.], [0., 2., 0., 3.]],
        &device,
    )
    .unwrap();
    let d = Tensor::new(&[[1f32, 1., 0., 0.], [0., 0., 0., 0.]], &device).unwrap();
    let fisher = fisher_importance(&varmap, &["block.proj", "head"], 1..=3, |k: u32| {
        let scale = f64::from(k);
        let loss = ((&w * &c)?.sum_all()? * scale)? + (&other * &d)?.sum_all()?;
        Ok(loss?)
    })
    .unwrap();
    assert_eq!(fisher.len(), 2);
    // Σ_k k² = 14; the rows' Σ_j c_ij² are 1, 4 and 13.
    let proj = fisher.get("block.proj").unwrap();
    assert_eq!(proj.row_importance, vec![14.0, 56.0, 182.0]);
    assert_eq!((proj.in_dim, proj.batches), (4, 3));
    let head = fisher.get("head").unwrap();
    assert_eq!(head.row_importance, vec![6.0, 0.0]);
}

/// Unknown and ambiguous layers, no batches, a loss that never reaches a layer, NaN gradients
/// and a loss that is not a scalar are each refused with an error that says so.
#[test]
fn gathering_errors_name_the_problem() {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let a = varmap
        .get(
            (2, 2),
            "a.proj.weight",
            Init::Const(1.0),
            DType::F32,
            &device,
        )
        .unwrap();
    let b = varmap
        .get(
            (2, 2),
            "b.proj.weight",
            Init::Const(1.0),
            DType::F32,
            &device,
        )
        .unwrap();
    let only_a = |_: usize| Ok(a.sum_all()?);
    let message = |error: Error| error.to_string();

    let error = message(fisher_importance(&varmap, &["c.proj"], 0..1, only_a).unwrap_err());
    assert!(
        error.contains("c.proj") && error.contains("no variable c.proj.weight"),
        "{error}"
    );
    assert!(error.contains("a.proj.weight"), "{error}");
    let error = message(fisher_importance(&varmap, &["proj"], 0..1, only_a).unwrap_err());
    assert!(
        error.contains("ambiguous") && error.contains("b.proj.weight"),
        "{error}"
    );
    let error = message(fisher_importance(&varmap, &["a.proj"], 0..0, only_a).unwrap_err());
    assert!(error.contains("no batches"), "{error}");
    let error =
        message(fisher_importance(&varmap, &["a.proj", "b.proj"], 0..2, only_a).unwrap_err());
    assert!(
        error.starts_with("b.proj:") && error.contains("does not depend on b.proj.weight"),
        "{error}"
    );
    let nan = |_: usize| Ok((&b * f64::NAN)?.sum_all()?);
    let error = message(fisher_importance(&varmap, &["b.proj"], 0..1, nan).unwrap_err());
    assert!(error.contains("NaN"), "{error}");
    let rows = |_: usize| Ok(b.sum(1)?);
    let error = message(fisher_importance(&varmap, &["b.proj"], 0..1, rows).unwrap_err());
    assert!(error.contains("scalar"), "{error}");
    let none: &[&str] = &[];
    assert!(fisher_importance(&varmap, none, 0..1, only_a).is_err());
    // A loss that fails is passed through as it is.
    let error = fisher_importance(&varmap, &["a.proj"], 0..1, |_: usize| {
        Err(Error::Calibration {
            reason: "the batch was bad".into(),
        })
    })
    .unwrap_err();
    assert!(message(error).contains("the batch was bad"));
}

// --- A small BART trained on a toy task, compressed by plain SVD and by FWSVD. ---

const VOCAB: usize = 48;
const SOURCE_LEN: usize = 8;

fn bart_config() -> Config {
    serde_json::from_value(serde_json::json!({
        "vocab_size": VOCAB,
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64,
        "activation_function": "gelu",
        "max_position_embeddings": 32,
        "scale_embedding": false,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
    }))
    .unwrap()
}

/// A BART over `varmap` with seeded N(0, 0.1²) weights (LayerNorms and biases as the loader
/// makes them), as the summarizer builds its model.
fn bart_over(varmap: &VarMap, seed: u64) -> Bart {
    let device = Device::Cpu;
    let cfg = bart_config();
    let vb = VarBuilder::from_varmap(varmap, DType::F32, &device);
    // The loader finds the layout by the embedding's name, so it must exist first.
    vb.get_with_hints((VOCAB, 32), "model.shared.weight", Init::Const(0.0))
        .unwrap();
    let model = Bart::load(vb, &cfg).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut vars: Vec<_> = varmap.data().lock().unwrap().clone().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        if name.ends_with(".bias") || name.contains("layer_norm") || name.contains("layernorm") {
            continue;
        }
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| {
                let x: f32 = StandardNormal.sample(&mut rng);
                0.1 * x
            })
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &device).unwrap())
            .unwrap();
    }
    model
}

fn small_bart(seed: u64) -> Bart {
    bart_over(&VarMap::new(), seed)
}

/// The toy task: reverse a sequence of random tokens (the decoder must read the encoder).
struct Batch {
    input_ids: Tensor,
    attention_mask: Tensor,
    decoder_input_ids: Tensor,
    labels: Tensor,
}

fn batch(rng: &mut ChaCha8Rng, b_sz: usize) -> Batch {
    let device = Device::Cpu;
    let mut ids = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..b_sz {
        let tokens: Vec<u32> = (0..SOURCE_LEN)
            .map(|_| rng.random_range(3..VOCAB as u32))
            .collect();
        ids.push(0);
        ids.extend(&tokens);
        ids.push(2);
        labels.extend(tokens.iter().rev().map(|&t| i64::from(t)));
        labels.push(2);
    }
    let labels = Tensor::from_vec(labels, (b_sz, SOURCE_LEN + 1), &device).unwrap();
    Batch {
        input_ids: Tensor::from_vec(ids, (b_sz, SOURCE_LEN + 2), &device).unwrap(),
        attention_mask: Tensor::ones((b_sz, SOURCE_LEN + 2), DType::U32, &device).unwrap(),
        decoder_input_ids: shift_tokens_right(&labels, 1, 2)
            .unwrap()
            .to_dtype(DType::U32)
            .unwrap(),
        labels,
    }
}

fn loss(model: &Bart, batch: &Batch) -> models::Result<Tensor> {
    let logits = model.forward(
        &batch.input_ids,
        &batch.attention_mask,
        &batch.decoder_input_ids,
    )?;
    cross_entropy(&logits, &batch.labels)
}

fn mean_loss(model: &Bart, batches: &[Batch]) -> f64 {
    let total: f64 = batches
        .iter()
        .map(|b| f64::from(loss(model, b).unwrap().to_scalar::<f32>().unwrap()))
        .sum();
    total / batches.len() as f64
}

/// Trains a small BART to reverse token sequences, gathers the Fisher importances of its attention
/// projections from the cross-entropy on calibration batches, and compresses them at one rank by
/// plain SVD and by FWSVD. Exact: every layer's Fisher-weighted error is lower by FWSVD (and
/// `compress_model_fisher` reports what `compress_model` does for plain SVD). Measured and
/// printed, not asserted: the loss increase on the calibration batches and on held-out ones.
/// FWSVD's is the lower one here, but over other seeds, ranks (4, 8, 12), training lengths and
/// per-example Fisher on this toy model it is as often higher: the row weights minimize a proxy
/// of the loss, layer by layer, not the loss.
#[test]
fn fwsvd_of_a_trained_bart_keeps_the_weighted_error_below_plain_svd() {
    let varmap = VarMap::new();
    let model = bart_over(&varmap, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut optimizer = candle_nn::AdamW::new(
        varmap.all_vars(),
        candle_nn::ParamsAdamW {
            lr: 3e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let first = mean_loss(&model, &[batch(&mut rng, 16)]);
    for _ in 0..200 {
        let step = batch(&mut rng, 16);
        optimizer
            .backward_step(&loss(&model, &step).unwrap())
            .unwrap();
    }
    let calibration: Vec<Batch> = (0..8).map(|_| batch(&mut rng, 16)).collect();
    let held_out: Vec<Batch> = (0..8).map(|_| batch(&mut rng, 16)).collect();
    let before = mean_loss(&model, &calibration);
    println!("loss: untrained {first:.4}, trained {before:.4} (calibration batches)");
    assert!(
        before < 0.8 * first,
        "training did not take: {first} → {before}"
    );

    let plan =
        Plan::new(RankRule::Fixed(8)).select(["*.q_proj", "*.k_proj", "*.v_proj", "*.out_proj"]);
    let names = plan.resolve(&model).unwrap();
    assert_eq!(names.len(), 2 * 4 + 2 * 8);
    let fisher =
        fisher_importance(&varmap, &names, &calibration, |b| Ok(loss(&model, b)?)).unwrap();
    assert_eq!(fisher.len(), names.len());
    for (name, layer) in fisher.layers() {
        assert_eq!(
            (layer.in_dim, layer.row_importance.len(), layer.batches),
            (32, 32, 8)
        );
        assert!(
            layer.row_importance.iter().all(|i| *i > 0.0),
            "{name}: a row without importance"
        );
    }

    let mut plain = model.clone();
    let plain_report = compress_model(&mut plain, &plan).unwrap();
    let mut same_plain = model.clone();
    let same_report = compress_model_fisher(&mut same_plain, &plan, &fisher).unwrap();
    assert_eq!(same_report, plain_report);
    let mut fwsvd = model.clone();
    let report =
        compress_model_fisher(&mut fwsvd, &plan.with_method(Method::Fisher), &fisher).unwrap();
    assert_eq!(report.method, "fisher");
    assert_eq!(report.params_after(), plain_report.params_after());

    let originals = model.linears();
    let (plain_layers, fisher_layers) = (plain.linears(), fwsvd.linears());
    let (mut plain_sum, mut fisher_sum) = (0.0, 0.0);
    for name in &names {
        let find = |layers: &[(String, &Linear)]| -> Linear {
            layers.iter().find(|(n, _)| n == name).unwrap().1.clone()
        };
        let (original, by_svd, by_fisher) =
            (find(&originals), find(&plain_layers), find(&fisher_layers));
        let importances = fisher.get(name).unwrap();
        let svd_error = fisher_weighted_error(&original, &by_svd, importances).unwrap();
        let fisher_error = fisher_weighted_error(&original, &by_fisher, importances).unwrap();
        assert!(
            fisher_error < svd_error,
            "{name}: fisher {fisher_error} >= svd {svd_error}"
        );
        plain_sum += svd_error;
        fisher_sum += fisher_error;
    }
    let n = names.len() as f64;
    println!(
        "mean Fisher-weighted error over {} layers at rank 8: svd {:.4}, fisher {:.4}",
        names.len(),
        plain_sum / n,
        fisher_sum / n
    );
    for (what, batches) in [("calibration", &calibration), ("held-out", &held_out)] {
        let base = mean_loss(&model, batches);
        let (by_svd, by_fisher) = (mean_loss(&plain, batches), mean_loss(&fwsvd, batches));
        println!(
            "{what} loss {base:.4}: svd {by_svd:.4} (+{:.4}), fisher {by_fisher:.4} (+{:.4})",
            by_svd - base,
            by_fisher - base
        );
    }
}
