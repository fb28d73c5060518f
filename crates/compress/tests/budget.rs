//! Per-layer ranks under one budget: the greedy allocation is the exhaustive optimum when steps
//! cost alike and gains fall, and otherwise no allocation of at most its exact phase's weights
//! beats it; it never exceeds the budget, beats the uniform parameter ratio at no more weights,
//! gives slowly falling spectra more rank, and compresses to exactly the ranks and errors it
//! predicts; measured sensitivities leave the model whole; bad inputs get clear errors; on the
//! real MiniLM, whitened SVD at allocated ranks against whitened SVD at one rank.

#![allow(clippy::unwrap_used)]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use candle_core::{DType, Device, Tensor};
use common::{
    MINILM_ATTENTION, MINILM_CALIBRATION, MINILM_SENTENCES, SENTENCES, mean_cosine, minilm_dir,
    tiny_bert,
};
use compress::{
    Allocation, Error, LayerSpectrum, Method, Plan, Probe, RankRule, Sensitivity, Spectra,
    allocate_ranks, calibrate, compress_model, compress_model_calibrated, compress_with_allocation,
    largest_useful_rank, layer_spectra, measure_sensitivity,
};
use lowrank::ndarray::{Array1, Array2};
use lowrank::svd::svd;
use models::bert::SentenceEncoder;
use models::{Linear, Linears, linear};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

// ---------------------------------------------------------------------------------------------
// Helpers: spectra, matrices with a chosen spectrum, a model of loose layers, brute force.

fn spectrum(name: &str, out_dim: usize, in_dim: usize, s: Vec<f64>) -> LayerSpectrum {
    LayerSpectrum {
        name: name.into(),
        in_dim,
        out_dim,
        singular_values: s,
    }
}

/// `k` singular values with σᵢ² = scale·qⁱ.
fn geometric(k: usize, q: f64, scale: f64) -> Vec<f64> {
    (0..k).map(|i| (scale * q.powi(i as i32)).sqrt()).collect()
}

/// How a test spectrum falls.
#[derive(Debug, Clone, Copy)]
enum Decay {
    /// σᵢ = qⁱ.
    Geometric(f64),
    /// σᵢ = (i+1)^−p.
    Power(f64),
    /// A Gaussian matrix's own (nearly flat) spectrum.
    Gaussian,
}

fn normal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |_| StandardNormal.sample(rng))
}

/// A seeded (out×in) matrix whose singular values fall as `decay` says, scaled to ‖W‖_F = 1.
fn matrix(out_dim: usize, in_dim: usize, decay: Decay, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = out_dim.min(in_dim);
    let w = match decay {
        Decay::Gaussian => normal(out_dim, in_dim, &mut rng),
        Decay::Geometric(_) | Decay::Power(_) => {
            let u = svd(normal(out_dim, k, &mut rng).view()).unwrap().u;
            let v = svd(normal(in_dim, k, &mut rng).view()).unwrap().u;
            let sigma = Array2::from_diag(
                &(0..k)
                    .map(|i| match decay {
                        Decay::Geometric(q) => q.powi(i as i32),
                        Decay::Power(p) => ((i + 1) as f64).powf(-p),
                        Decay::Gaussian => unreachable!(),
                    })
                    .collect::<Array1<f64>>(),
            );
            u.dot(&sigma).dot(&v.t())
        }
    };
    let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
    w / norm
}

fn to_tensor(a: &Array2<f64>) -> Tensor {
    Tensor::from_vec(a.iter().copied().collect::<Vec<_>>(), a.dim(), &Device::Cpu).unwrap()
}

/// A model that is only a list of named dense layers.
struct Layers(Vec<(String, Linear)>);

impl Linears for Layers {
    fn linears(&self) -> Vec<(String, &Linear)> {
        self.0.iter().map(|(n, l)| (n.clone(), l)).collect()
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        self.0.iter_mut().map(|(n, l)| (n.clone(), l)).collect()
    }
}

/// `Σ_{i≥r} σᵢ²`, 0 for dense (`None`).
fn tail(s: &[f64], rank: Option<usize>) -> f64 {
    rank.map_or(0.0, |r| s[r..].iter().map(|v| v * v).sum())
}

fn weights(l: &LayerSpectrum, rank: Option<usize>) -> usize {
    rank.map_or(l.in_dim * l.out_dim, |r| r * (l.in_dim + l.out_dim))
}

/// The allocation's total squared error, recomputed from the spectra (weight 1).
fn total_error(spectra: &Spectra, allocation: &Allocation) -> f64 {
    spectra
        .layers
        .iter()
        .zip(&allocation.layers)
        .map(|(l, a)| {
            assert_eq!(l.name, a.name);
            tail(&l.singular_values, a.rank)
        })
        .sum()
}

/// Every allocation of ranks 1, …, largest useful, or dense, as (weights, total squared error).
fn every_allocation(spectra: &Spectra) -> Vec<(usize, f64)> {
    let mut all = vec![(0, 0.0)];
    for l in &spectra.layers {
        let choices: Vec<Option<usize>> = (1..=largest_useful_rank(l.in_dim, l.out_dim))
            .map(Some)
            .chain([None])
            .collect();
        all = all
            .iter()
            .flat_map(|&(w, e)| {
                choices
                    .iter()
                    .map(move |&c| (w + weights(l, c), e + tail(&l.singular_values, c)))
            })
            .collect();
    }
    all
}

/// The least error of any allocation of at most `budget` weights.
fn optimum(all: &[(usize, f64)], budget: usize) -> f64 {
    all.iter()
        .filter(|(w, _)| *w <= budget)
        .map(|(_, e)| *e)
        .fold(f64::INFINITY, f64::min)
}

/// A target ratio whose budget `⌊ratio·total⌋` is exactly `budget`.
fn ratio_for(budget: usize, total: usize) -> f64 {
    (budget as f64 + 0.5) / total as f64
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

// ---------------------------------------------------------------------------------------------
// The allocation on spectra alone.

/// Three 8×8 layers: every step costs 16 weights (the last, from rank 3 to dense, too), and
/// σ² falls by at least half per step, so the step to dense (the whole tail) gains no more than
/// the step before it. Then greedy is the exhaustive optimum at every budget.
#[test]
fn greedy_is_the_exhaustive_optimum_when_steps_cost_alike_and_gains_fall() {
    let spectra = Spectra {
        method: Method::Svd,
        layers: vec![
            spectrum("a", 8, 8, geometric(8, 0.5, 1.0)),
            spectrum("b", 8, 8, geometric(8, 0.3, 3.0)),
            spectrum("c", 8, 8, geometric(8, 0.45, 0.4)),
        ],
    };
    let all = every_allocation(&spectra);
    let total = 3 * 64;
    for budget in 48..total {
        let allocation =
            allocate_ranks(&spectra, ratio_for(budget, total), &Sensitivity::Spectral).unwrap();
        assert_eq!(allocation.budget, budget);
        assert!(allocation.weights_after() <= budget);
        let error = total_error(&spectra, &allocation);
        assert!(close(error, allocation.weighted_error()));
        let best = optimum(&all, budget);
        assert!(
            close(error, best),
            "budget {budget}: greedy {error}, optimum {best}\n{allocation}"
        );
        // With equal steps nothing is left to fill: the exact phase is the whole allocation.
        assert_eq!(allocation.optimal_up_to, allocation.weights_after());
    }
}

/// Layers of unequal shapes and spectra (fast, power-law, flat): at every budget, no allocation
/// of at most `optimal_up_to` weights has a smaller error, the filled remainder only lowers it,
/// and the budget holds. Where the greedy misses the optimum within the whole budget, that is
/// the knapsack gap of the second phase; the test counts it.
#[test]
fn no_allocation_of_at_most_the_exact_phase_weights_beats_the_greedy() {
    let shapes = [(8, 8), (10, 6), (12, 12), (16, 7)];
    let decays = [
        Decay::Geometric(0.5),
        Decay::Power(1.0),
        Decay::Gaussian,
        Decay::Geometric(0.85),
        Decay::Power(0.3),
    ];
    let (mut budgets, mut at_optimum) = (0, 0);
    for seed in 0..12u64 {
        let layers = (0..3)
            .map(|i| {
                let (out_dim, in_dim) = shapes[(seed as usize + i) % shapes.len()];
                let decay = decays[(seed as usize * 3 + i) % decays.len()];
                let w = matrix(out_dim, in_dim, decay, 100 * seed + i as u64);
                // Unequal norms too, so the spectral measure has to weigh the layers.
                let scale = [1.0, 3.0, 0.5][i];
                let s = svd(w.view()).unwrap().s.mapv(|v| v * scale).to_vec();
                spectrum(&format!("l{i}"), out_dim, in_dim, s)
            })
            .collect();
        let spectra = Spectra {
            method: Method::Svd,
            layers,
        };
        let all = every_allocation(&spectra);
        let total: usize = spectra.layers.iter().map(|l| l.in_dim * l.out_dim).sum();
        let minimum: usize = spectra.layers.iter().map(|l| l.in_dim + l.out_dim).sum();
        for budget in minimum..total {
            let allocation =
                allocate_ranks(&spectra, ratio_for(budget, total), &Sensitivity::Spectral).unwrap();
            let error = total_error(&spectra, &allocation);
            assert!(allocation.weights_after() <= budget);
            assert!(allocation.optimal_up_to <= allocation.weights_after());
            let exact = optimum(&all, allocation.optimal_up_to);
            assert!(
                error <= exact * (1.0 + 1e-12) + 1e-15,
                "seed {seed}, budget {budget}: greedy {error} > {exact}, the optimum within \
                 {} weights\n{allocation}",
                allocation.optimal_up_to
            );
            let best = optimum(&all, budget);
            assert!(error >= best * (1.0 - 1e-12) - 1e-15);
            budgets += 1;
            at_optimum += usize::from(close(error, best));
        }
    }
    println!("greedy at the exhaustive optimum within the budget in {at_optimum} of {budgets}");
}

/// Random matrices of unequal shapes and spectra, through a model: at every ratio the greedy's
/// total squared error is at most the uniform `ParamRatio` rule's, which keeps no more weights
/// (guaranteed where the uniform weights are within the greedy's exact phase, observed in the
/// other cases), and compressing at the allocation gives exactly its ranks and predicted errors.
#[test]
fn greedy_beats_the_uniform_param_ratio_on_random_matrices() {
    let layout = [
        ((32, 32), Decay::Geometric(0.8)),
        ((48, 32), Decay::Power(0.5)),
        ((64, 24), Decay::Gaussian),
        ((40, 40), Decay::Geometric(0.95)),
        ((32, 32), Decay::Power(1.5)),
        ((24, 56), Decay::Gaussian),
    ];
    let (mut cases, mut covered) = (0, 0);
    for seed in 0..4u64 {
        let layers = layout
            .iter()
            .enumerate()
            .map(|(i, &((out_dim, in_dim), _))| {
                // The spectra move round the shapes from seed to seed.
                let decay = layout[(i + seed as usize) % layout.len()].1;
                let w = matrix(out_dim, in_dim, decay, 1000 * seed + i as u64);
                let layer = Linear::dense(to_tensor(&w), None).unwrap();
                (format!("layers.{i}.proj"), layer)
            })
            .collect();
        let model = Layers(layers);
        let plan = Plan::new(RankRule::Fixed(1));
        let spectra = layer_spectra(&model, &plan, None).unwrap();
        for ratio in [0.2, 0.35, 0.5, 0.65, 0.8, 0.9] {
            let allocation = allocate_ranks(&spectra, ratio, &Sensitivity::Spectral).unwrap();
            let greedy = total_error(&spectra, &allocation);
            let (mut uniform_weights, mut uniform) = (0, 0.0);
            for (l, (_, layer)) in spectra.layers.iter().zip(model.linears()) {
                let Linear::Dense(dense) = layer else {
                    unreachable!()
                };
                let rank = RankRule::ParamRatio(ratio).rank_for(&dense.weight).unwrap();
                uniform_weights += rank * (l.in_dim + l.out_dim);
                uniform += tail(&l.singular_values, Some(rank));
            }
            assert!(uniform_weights <= allocation.budget);
            assert!(allocation.weights_after() <= allocation.budget);
            // The theorem covers the cases where the uniform rule keeps no more weights than the
            // greedy's exact phase; in the others (a flat layer's jump to dense did not fit, and
            // the fill took single steps) the greedy is ahead too, by a wide margin, but nothing
            // guarantees it.
            covered += usize::from(uniform_weights <= allocation.optimal_up_to);
            cases += 1;
            assert!(
                greedy <= uniform,
                "seed {seed}, ratio {ratio}: greedy {greedy} > uniform {uniform}\n{allocation}"
            );
            if seed == 0 {
                println!(
                    "ratio {ratio}: squared error greedy {greedy:.4} ({} weights), uniform \
                     {uniform:.4} ({uniform_weights}); ranks {:?}",
                    allocation.weights_after(),
                    allocation.layers.iter().map(|l| l.rank).collect::<Vec<_>>()
                );
            }
            let mut compressed = Layers(model.0.clone());
            let report = compress_with_allocation(&mut compressed, &allocation, None).unwrap();
            check_report(&allocation, &report);
            for layer in &report.layers {
                let predicted = allocation.get(&layer.name).unwrap().predicted_error;
                assert!(
                    (layer.relative_error - predicted).abs() < 1e-9,
                    "{}: measured {} predicted {predicted}",
                    layer.name,
                    layer.relative_error
                );
            }
        }
    }
    println!("uniform within the greedy's exact phase in {covered} of {cases} cases");
}

/// The report lists exactly the allocation's factorized layers, in order, at its ranks, and the
/// dense ones are left as they were.
fn check_report(allocation: &Allocation, report: &compress::Report) {
    let factorized: Vec<(&str, usize)> = allocation
        .layers
        .iter()
        .filter_map(|l| l.rank.map(|r| (l.name.as_str(), r)))
        .collect();
    let reported: Vec<(&str, usize)> = report
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.rank))
        .collect();
    assert_eq!(reported, factorized);
    for (layer, planned) in report
        .layers
        .iter()
        .zip(allocation.layers.iter().filter(|l| l.rank.is_some()))
    {
        let bias = layer.params_before - planned.weights_before;
        assert_eq!(layer.params_after, planned.weights_after + bias);
    }
    let kept_dense: usize = allocation
        .layers
        .iter()
        .filter(|l| l.rank.is_none())
        .map(|l| l.weights_before)
        .sum();
    let factorized_before: usize = allocation
        .layers
        .iter()
        .filter(|l| l.rank.is_some())
        .map(|l| l.weights_before)
        .sum();
    assert_eq!(
        report.linear_params_before - report.linear_params_after,
        factorized_before + kept_dense - allocation.weights_after()
    );
}

/// A flat spectrum gains more from going back to dense than from any rank it can afford: with
/// the budget for it, the greedy keeps that layer dense and counts its dense weights.
#[test]
fn a_flat_layer_is_kept_dense_when_that_removes_more_error_per_weight() {
    let spectra = Spectra {
        method: Method::Svd,
        layers: vec![
            spectrum("fast", 8, 8, vec![8.0, 2.0, 0.5, 0.1, 0.0, 0.0, 0.0, 0.0]),
            spectrum("flat", 8, 8, vec![2.0, 2.0, 2.0, 1.9, 1.8, 1.7, 1.6, 1.5]),
        ],
    };
    let allocation = allocate_ranks(&spectra, 0.75, &Sensitivity::Spectral).unwrap();
    let flat = allocation.get("flat").unwrap();
    assert_eq!(flat.rank, None);
    assert_eq!((flat.weights_after, flat.tail_energy), (64, 0.0));
    assert_eq!(allocation.get("fast").unwrap().rank, Some(2));
    assert_eq!(allocation.weights_after(), 96);
    // Half the weights do not reach dense: the greedy's exact phase stops at rank 1 (the flat
    // layer's hull step is 48 weights, rank 1 to dense), and the fill takes a rank step each.
    let half = allocate_ranks(&spectra, 0.5, &Sensitivity::Spectral).unwrap();
    assert_eq!(half.optimal_up_to, 32);
    assert_eq!(
        half.layers.iter().map(|l| l.rank).collect::<Vec<_>>(),
        [Some(2), Some(2)]
    );
}

/// The relative measure is blind to scale: a layer scaled by 100 gets the same ranks; the
/// spectral one gives the large layer all it can.
#[test]
fn the_relative_measure_ignores_scale_and_the_spectral_one_does_not() {
    let s = geometric(16, 0.7, 1.0);
    let loud: Vec<f64> = s.iter().map(|v| 100.0 * v).collect();
    let spectra = Spectra {
        method: Method::Svd,
        layers: vec![spectrum("quiet", 16, 16, s), spectrum("loud", 16, 16, loud)],
    };
    let relative = allocate_ranks(&spectra, 0.4, &Sensitivity::Relative).unwrap();
    let ranks: Vec<_> = relative.layers.iter().map(|l| l.rank).collect();
    assert_eq!(ranks[0], ranks[1]);
    let spectral = allocate_ranks(&spectra, 0.4, &Sensitivity::Spectral).unwrap();
    let (quiet, loud) = (spectral.layers[0].rank, spectral.layers[1].rank);
    assert!(quiet < loud, "{quiet:?} {loud:?}");
    assert_eq!(quiet, Some(1));
}

#[test]
fn bad_targets_budgets_and_spectra_are_refused() {
    let spectra = Spectra {
        method: Method::Svd,
        layers: vec![
            spectrum("a", 8, 8, geometric(8, 0.5, 1.0)),
            spectrum("b", 16, 4, geometric(4, 0.5, 1.0)),
        ],
    };
    for target in [0.0, 1.0, 1.5, -0.2, f64::NAN] {
        let error = allocate_ranks(&spectra, target, &Sensitivity::Spectral).unwrap_err();
        assert!(matches!(error, Error::InvalidRule { .. }), "{error}");
        assert!(error.to_string().contains("(0, 1)"), "{error}");
    }
    // Rank 1 everywhere takes 16 + 20 = 36 of the 128 weights.
    let error = allocate_ranks(&spectra, 0.25, &Sensitivity::Spectral).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::InvalidRule { .. }), "{text}");
    assert!(text.contains("rank 1") && text.contains("36"), "{text}");
    assert!(text.contains("0.2813"), "{text}");
    assert!(allocate_ranks(&spectra, 0.2813, &Sensitivity::Spectral).is_ok());

    let unsorted = Spectra {
        method: Method::Svd,
        layers: vec![spectrum(
            "a",
            8,
            8,
            vec![1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        )],
    };
    let short = Spectra {
        method: Method::Svd,
        layers: vec![spectrum("a", 8, 8, vec![1.0])],
    };
    let nan = Spectra {
        method: Method::Svd,
        layers: vec![spectrum("a", 8, 8, vec![f64::NAN; 8])],
    };
    for (bad, words) in [
        (unsorted, "largest first"),
        (short, "8 singular values"),
        (nan, "finite"),
    ] {
        let text = allocate_ranks(&bad, 0.5, &Sensitivity::Spectral)
            .unwrap_err()
            .to_string();
        assert!(text.starts_with("a: ") && text.contains(words), "{text}");
    }
    // A 1×8 layer has no rank that saves anything.
    let row = Spectra {
        method: Method::Svd,
        layers: vec![spectrum("row", 1, 8, vec![1.0])],
    };
    let error = allocate_ranks(&row, 0.5, &Sensitivity::Spectral).unwrap_err();
    assert!(error.to_string().starts_with("row: rank 1"), "{error}");

    // A measured sensitivity needs a positive damage for every layer, at a rank with a tail.
    let probe = |name: &str, rank, damage| Probe {
        name: name.into(),
        rank,
        damage,
    };
    let cases = [
        (vec![probe("a", 2, 0.1)], "no measured sensitivity"),
        (vec![probe("a", 2, 0.1), probe("b", 1, 0.0)], "positive"),
        (
            vec![probe("a", 2, 0.1), probe("b", 1, f64::NAN)],
            "positive",
        ),
        (vec![probe("a", 9, 0.1), probe("b", 1, 0.1)], "rank 9"),
    ];
    for (probes, words) in cases {
        let text = allocate_ranks(&spectra, 0.6, &Sensitivity::Measured(probes))
            .unwrap_err()
            .to_string();
        assert!(text.contains(words), "{text}");
    }
    let low_rank = Spectra {
        method: Method::Svd,
        layers: vec![spectrum(
            "a",
            8,
            8,
            vec![1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        )],
    };
    let text = allocate_ranks(
        &low_rank,
        0.5,
        &Sensitivity::Measured(vec![probe("a", 2, 0.1)]),
    )
    .unwrap_err()
    .to_string();
    assert!(text.contains("exactly of rank 2"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// tiny-bert.

fn attention() -> Plan {
    Plan::new(RankRule::ParamRatio(0.5)).select([
        "encoder.layer.*.attention.self.*",
        "encoder.layer.*.attention.output.dense",
    ])
}

#[test]
fn tiny_bert_allocation_meets_the_budget_and_compresses_to_its_ranks() {
    let original = tiny_bert();
    let plan = attention();
    let spectra = layer_spectra(&original, &plan, None).unwrap();
    assert_eq!(spectra.layers.len(), 8);
    for sensitivity in [Sensitivity::Spectral, Sensitivity::Relative] {
        for target in [0.3, 0.5, 0.75] {
            let allocation = allocate_ranks(&spectra, target, &sensitivity).unwrap();
            let total = 8 * 32 * 32;
            assert_eq!(allocation.budget, (target * total as f64).floor() as usize);
            assert!(allocation.weights_after() <= allocation.budget);
            assert!(allocation.ratio() <= target);
            let mut model = original.clone();
            let report = compress_with_allocation(&mut model, &allocation, None).unwrap();
            check_report(&allocation, &report);
            assert!(report.rule.contains(&sensitivity.to_string()));
            for layer in &report.layers {
                let predicted = allocation.get(&layer.name).unwrap().predicted_error;
                assert!((layer.relative_error - predicted).abs() < 1e-9);
            }
        }
    }
}

/// tiny-bert's eight attention layers with their weights replaced by matrices of equal norm
/// whose spectra fall at eight speeds (σᵢ = qⁱ): at each budget the ranks grow as the spectra
/// flatten (a dense layer counting as the highest).
#[test]
fn tiny_bert_layers_with_faster_falling_spectra_get_lower_ranks() {
    let mut model = tiny_bert();
    let plan = attention();
    let names = plan.resolve(&model).unwrap();
    // Shuffled against the layer order, so order in the model cannot explain the ranks.
    let speeds = [0.8, 0.5, 0.9, 0.65, 0.95, 0.7, 0.6, 0.85];
    for (i, (name, q)) in names.iter().zip(speeds).enumerate() {
        let w = matrix(32, 32, Decay::Geometric(q), i as u64);
        let bias = linear::find(&model, name).unwrap().bias().cloned();
        let layer = Linear::dense(to_tensor(&w).to_dtype(DType::F32).unwrap(), bias).unwrap();
        linear::replace(&mut model, name, layer).unwrap();
    }
    let spectra = layer_spectra(&model, &plan, None).unwrap();
    for sensitivity in [Sensitivity::Spectral, Sensitivity::Relative] {
        for target in [0.25, 0.4, 0.5, 0.6, 0.75] {
            let allocation = allocate_ranks(&spectra, target, &sensitivity).unwrap();
            let mut by_speed: Vec<(f64, usize)> = allocation
                .layers
                .iter()
                .zip(speeds)
                .map(|(l, q)| (q, l.rank.unwrap_or(32)))
                .collect();
            by_speed.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                by_speed.windows(2).all(|w| w[0].1 <= w[1].1),
                "{sensitivity} at {target}: (q, rank) {by_speed:?}"
            );
            assert!(by_speed[0].1 < by_speed[7].1, "{by_speed:?}");
        }
    }
}

/// Whitened spectra from a calibration: the allocation's predicted error is the output error
/// the report measures on the calibration rows (up to the ridge).
#[test]
fn tiny_bert_whitened_allocation_predicts_the_output_error() {
    let original = tiny_bert();
    let plan = attention().with_method(Method::whitened());
    let mut probe = original.clone();
    let calibration = calibrate(&mut probe, &plan, |m| {
        m.embed(SENTENCES)?;
        Ok(())
    })
    .unwrap();
    let spectra = layer_spectra(&original, &plan, Some(&calibration)).unwrap();
    assert_eq!(spectra.method, Method::whitened());
    let allocation = allocate_ranks(&spectra, 0.5, &Sensitivity::Spectral).unwrap();
    let mut model = original.clone();
    let report = compress_with_allocation(&mut model, &allocation, Some(&calibration)).unwrap();
    check_report(&allocation, &report);
    for layer in &report.layers {
        let predicted = allocation.get(&layer.name).unwrap().predicted_error;
        let measured = layer.output_error.unwrap();
        assert!(
            (measured - predicted).abs() < 1e-4,
            "{}: output error {measured}, predicted {predicted}",
            layer.name
        );
    }
    // Without the calibration the whitened allocation cannot be computed or applied.
    let text = layer_spectra(&original, &plan, None)
        .unwrap_err()
        .to_string();
    assert!(text.contains("calibrate"), "{text}");
    let text = compress_with_allocation(&mut original.clone(), &allocation, None)
        .unwrap_err()
        .to_string();
    assert!(text.contains("calibrate"), "{text}");
}

#[test]
fn non_dense_layers_and_fisher_are_refused() {
    let mut model = tiny_bert();
    let plan = attention();
    let allocation = allocate_ranks(
        &layer_spectra(&model, &plan, None).unwrap(),
        0.5,
        &Sensitivity::Spectral,
    )
    .unwrap();
    compress_model(
        &mut model,
        &Plan::new(RankRule::Fixed(4)).select(["encoder.layer.1.attention.self.key"]),
    )
    .unwrap();
    let error = layer_spectra(&model, &plan, None).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("encoder.layer.1.attention.self.key: only dense layers"),
        "{text}"
    );
    // Applying an allocation to it fails before any layer is replaced.
    let before: Vec<&'static str> = model.linears().iter().map(|(_, l)| l.kind()).collect();
    let error = compress_with_allocation(&mut model, &allocation, None).unwrap_err();
    assert!(error.to_string().contains("only dense layers"), "{error}");
    let after: Vec<&'static str> = model.linears().iter().map(|(_, l)| l.kind()).collect();
    assert_eq!(before, after);

    let fisher = attention().with_method(Method::Fisher);
    let text = layer_spectra(&tiny_bert(), &fisher, None)
        .unwrap_err()
        .to_string();
    assert!(text.contains("not gradients"), "{text}");
}

/// Measured sensitivity: each probe is the damage with that layer alone at the plan's rank, the
/// model comes back whole (also when the score fails or panics), and the allocation's error
/// curve passes through every measurement.
#[test]
fn measured_sensitivity_probes_one_layer_at_a_time_and_scales_the_curves() {
    let mut model = tiny_bert();
    let reference = model.embed(SENTENCES).unwrap();
    let plan = attention();
    let probes = measure_sensitivity(&mut model, &plan, None, |m| {
        Ok(1.0 - mean_cosine(&m.embed(SENTENCES)?, &reference))
    })
    .unwrap();
    assert_eq!(
        model.embed(SENTENCES).unwrap().to_vec2::<f32>().unwrap(),
        reference.to_vec2::<f32>().unwrap()
    );
    assert_eq!(probes.len(), 8);
    // ParamRatio(0.5) of a 32→32 layer: rank 8.
    assert!(probes.iter().all(|p| p.rank == 8 && p.damage > 0.0));
    // Each probe is that layer alone: compress it by the plan and score.
    let one = &probes[2];
    let mut alone = model.clone();
    compress_model(
        &mut alone,
        &Plan::new(RankRule::ParamRatio(0.5)).select([one.name.clone()]),
    )
    .unwrap();
    let damage = 1.0 - mean_cosine(&alone.embed(SENTENCES).unwrap(), &reference);
    assert!(
        (damage - one.damage).abs() < 1e-12,
        "{damage} {}",
        one.damage
    );

    let spectra = layer_spectra(&model, &plan, None).unwrap();
    let allocation = allocate_ranks(&spectra, 0.5, &Sensitivity::Measured(probes.clone())).unwrap();
    assert_eq!(allocation.sensitivity, "measured");
    for (l, p) in spectra.layers.iter().zip(&probes) {
        let weight = allocation.get(&l.name).unwrap().weight;
        let at_probe = weight * tail(&l.singular_values, Some(p.rank));
        assert!(
            (at_probe - p.damage).abs() <= 1e-12 * p.damage,
            "{}",
            l.name
        );
    }
    assert!(allocation.weights_after() <= allocation.budget);

    // A failing and a panicking score leave the model whole; a zero damage is refused.
    let error = measure_sensitivity(&mut model, &plan, None, |_| {
        Err(Error::Calibration {
            reason: "no score".into(),
        })
    })
    .unwrap_err();
    assert!(error.to_string().contains("no score"));
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        measure_sensitivity(&mut model, &plan, None, |_| panic!("score panicked"))
    }));
    assert!(panicked.is_err());
    let error = measure_sensitivity(&mut model, &plan, None, |_| Ok(0.0)).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("encoder.layer.0.attention.self.query: ") && text.contains("positive"),
        "{text}"
    );
    assert!(model.linears().iter().all(|(_, l)| l.kind() == "dense"));
    assert_eq!(
        model.embed(SENTENCES).unwrap().to_vec2::<f32>().unwrap(),
        reference.to_vec2::<f32>().unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// The real MiniLM.

/// Text the measured sensitivity scores on: neither calibration nor held-out.
const PROBE: &[&str] = &[
    "The kettle clicked off just as the doorbell rang.",
    "Where should I send the signed rental agreement?",
    "A fisherman mends his nets on the harbour wall.",
    "The app crashes whenever I try to upload a photo.",
    "Autumn leaves covered the path through the forest.",
    "Our neighbours are building an extension to their house.",
    "Which vaccine do I need before travelling abroad?",
    "The lecture on quantum computing was fully booked.",
];

/// Whitened SVD of MiniLM's attention (Q, K, V, O of six blocks) at 75% of its weights: one rank
/// for all (144) against ranks allocated by each sensitivity, at no more weights. Held-out mean
/// cosine to the original embeddings, measured on CPU (f32), 63 calibration sentences, the
/// measured damage `1 − cosine` with each layer alone at the uniform rank, on the first 16
/// calibration sentences or on [`PROBE`] (the test runs the 75% row without the former):
///
/// | kept | uniform | spectral | relative | measured on calibration text | measured on [`PROBE`] |
/// |------|---------|----------|----------|------------------------------|-----------------------|
/// | 50%  | 0.8267  | 0.7501   | 0.8253   | 0.8277                       | 0.9415                |
/// | 75%  | 0.8949  | 0.7955   | 0.8915   | 0.9037                       | 0.9832                |
/// | 90%  | 0.9249  | 0.9100   | 0.9913   | 0.9963                       | 0.9962                |
///
/// The spectral measure (absolute output energy) keeps the queries and keys, whose outputs are
/// largest, dense and starves the attention outputs (ranks 29–66). Most of what whitening loses is
/// one layer: the last block's attention output, 0.078 of cosine alone on held-out text but 0.0002
/// on the calibration text it was whitened for. Damage measured on calibration text barely sees
/// it, so whether that layer stays dense is luck: probing on the first 16 calibration sentences
/// it does not at 75% (0.9037 above), on the last 16 it does (0.9829). Damage measured on other
/// text always sees it: either half of [`PROBE`], or probing at half the weights, moved the
/// measured column by at most 0.005.
#[test]
fn minilm_whitened_allocated_ranks_against_one_rank() {
    let Some(dir) = minilm_dir() else {
        eprintln!(
            "skipped: set LOWRANK_PYTHON (the reference venv) or LOWRANK_MINILM_DIR to run it"
        );
        return;
    };
    let original = SentenceEncoder::from_dir(&dir, DType::F32, &Device::Cpu)
        .unwrap()
        .with_batch_size(1);
    let reference = original.embed(MINILM_SENTENCES).unwrap();
    let plan = Plan::new(RankRule::ParamRatio(0.75))
        .select(MINILM_ATTENTION)
        .with_method(Method::whitened());
    let mut probe = original.clone();
    let calibration = calibrate(&mut probe, &plan, |m| {
        m.embed(MINILM_CALIBRATION)?;
        Ok(())
    })
    .unwrap();

    let mut uniform = original.clone();
    let report = compress_model_calibrated(&mut uniform, &plan, &calibration).unwrap();
    let uniform_weights: usize = report
        .layers
        .iter()
        .map(|l| l.rank * (l.in_dim + l.out_dim))
        .sum();
    let uniform_cosine = mean_cosine(&uniform.embed(MINILM_SENTENCES).unwrap(), &reference);
    println!(
        "uniform rank 144: {uniform_weights} weights, mean output error {:.4}, held-out cosine \
         {uniform_cosine:.4}",
        report.mean_output_error().unwrap()
    );

    let spectra = layer_spectra(&original, &plan, Some(&calibration)).unwrap();
    let probe_reference = original.embed(PROBE).unwrap();
    let mut measuring = original.clone();
    let probes = measure_sensitivity(&mut measuring, &plan, Some(&calibration), |m| {
        Ok(1.0 - mean_cosine(&m.embed(PROBE)?, &probe_reference))
    })
    .unwrap();
    for p in &probes {
        println!(
            "probe {:<44} rank {} damage {:.5}",
            p.name, p.rank, p.damage
        );
    }
    let mut cosines = Vec::new();
    for sensitivity in [
        Sensitivity::Spectral,
        Sensitivity::Relative,
        Sensitivity::Measured(probes),
    ] {
        let allocation = allocate_ranks(&spectra, 0.75, &sensitivity).unwrap();
        assert!(allocation.weights_after() <= uniform_weights);
        let mut encoder = original.clone();
        let report =
            compress_with_allocation(&mut encoder, &allocation, Some(&calibration)).unwrap();
        check_report(&allocation, &report);
        let cosine = mean_cosine(&encoder.embed(MINILM_SENTENCES).unwrap(), &reference);
        let ranks: Vec<String> = allocation
            .layers
            .iter()
            .map(|l| l.rank.map_or("dense".into(), |r| r.to_string()))
            .collect();
        println!(
            "{sensitivity}: {} weights (exact up to {}), mean output error {:.4}, held-out cosine \
             {cosine:.4}; ranks {}",
            allocation.weights_after(),
            allocation.optimal_up_to,
            report.mean_output_error().unwrap(),
            ranks.join(" ")
        );
        cosines.push(cosine);
    }
    // Only the measured allocation is ahead robustly (see the table); the spectral and relative
    // ones are printed, not judged.
    let measured = cosines[2];
    assert!(
        measured >= uniform_cosine,
        "measured {measured} < uniform {uniform_cosine}"
    );
    assert!(
        measured >= MEASURED_BOUND,
        "measured {measured} < {MEASURED_BOUND}"
    );
}

/// 0.03 under the measured 0.983; the uniform rank (0.895) fails it.
const MEASURED_BOUND: f64 = 0.95;
