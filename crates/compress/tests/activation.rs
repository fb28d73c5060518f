//! Activation-aware SVD: whitening minimizes the output error on the calibration rows exactly (the
//! Eckart–Young tail of `X·Wᵀ`), beating plain SVD and ASVD; ASVD with α = 0 is plain SVD; taps
//! leave a model's outputs alone and come off after calibration, even on failure; calibrated plans
//! compress, report and reload.

#![allow(clippy::unwrap_used)]

mod common;

use candle_core::{DType, Device, Tensor};
use common::{SENTENCES, fixture, max_abs_diff, tiny_bert};
use compress::{
    Calibration, Error, Method, Plan, RankRule, calibrate, compress_model,
    compress_model_calibrated, factorize, factorize_svd, largest_useful_rank,
    load_compressed_sentence_encoder, output_error, save_compressed,
};
use lowrank::ndarray::{Array1, Array2};
use lowrank::svd::{frobenius_norm, optimal_frobenius_error, svd};
use models::linear::{ActivationStats, ActivationTap};
use models::{Linear, Linears};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn normal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |_| StandardNormal.sample(rng))
}

/// `rows` tokens of `dim` features, correlated and of very unequal scales (log-spaced from 0.01
/// to 10 along random directions, plus two outlier channels 30× the rest): what trips plain SVD.
fn anisotropic_activations(rows: usize, dim: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scales = Array1::from_shape_fn(dim, |j| 10f64.powf(-2.0 + 3.0 * j as f64 / dim as f64));
    let mixing = normal(dim, dim, &mut rng) / (dim as f64).sqrt();
    let mut x = (normal(rows, dim, &mut rng) * &scales).dot(&mixing);
    for channel in [3, dim / 2] {
        x.column_mut(channel).mapv_inplace(|v| 30.0 * v);
    }
    x
}

fn to_tensor(a: &Array2<f64>) -> Tensor {
    Tensor::from_vec(a.iter().copied().collect::<Vec<_>>(), a.dim(), &Device::Cpu).unwrap()
}

fn to_array(t: &Tensor) -> Array2<f64> {
    let rows = t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
    let cols = rows[0].len();
    Array2::from_shape_vec((rows.len(), cols), rows.concat()).unwrap()
}

/// A dense f64 layer with a random weight, and the statistics of `x` recorded through a tap.
fn layer_and_stats(out_dim: usize, x: &Array2<f64>, seed: u64) -> (Linear, ActivationStats) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weight = normal(out_dim, x.ncols(), &mut rng);
    let layer = Linear::dense(to_tensor(&weight), None).unwrap();
    let tap = ActivationTap::new(x.ncols());
    // Two calls, as two batches would: the statistics add up.
    let half = x.nrows() / 2;
    tap.record(&to_tensor(
        &x.slice(lowrank::ndarray::s![..half, ..]).to_owned(),
    ))
    .unwrap();
    tap.record(&to_tensor(
        &x.slice(lowrank::ndarray::s![half.., ..]).to_owned(),
    ))
    .unwrap();
    (layer, tap.stats())
}

/// `‖X·(W − W_r)ᵀ‖_F / ‖X·Wᵀ‖_F`, straight from the rows (not through `XᵀX`).
fn direct_output_error(x: &Array2<f64>, original: &Linear, approximation: &Linear) -> f64 {
    let w = to_array(&original.effective_weight().unwrap());
    let wr = to_array(&approximation.effective_weight().unwrap());
    let reference = x.dot(&w.t());
    let residual = &reference - &x.dot(&wr.t());
    frobenius_norm(residual.view()) / frobenius_norm(reference.view())
}

/// On 200 anisotropic tokens, at every useful rank: the whitened truncation's output error is the
/// optimum (the tail of `X·Wᵀ`'s singular values, computed independently), and plain SVD and ASVD
/// are no better; at middle ranks they are clearly worse, so the comparison is not vacuous.
#[test]
fn whitening_minimizes_the_calibration_output_error() {
    let (out_dim, in_dim) = (24, 32);
    let x = anisotropic_activations(200, in_dim, 7);
    let (layer, stats) = layer_and_stats(out_dim, &x, 8);
    assert_eq!((stats.rows, stats.in_dim), (200, in_dim));
    let w = to_array(&layer.effective_weight().unwrap());
    let outputs = x.dot(&w.t());
    let spectrum = svd(outputs.view()).unwrap().s;
    let exact = Method::Whitened { ridge: 0.0 };
    for rank in 1..=largest_useful_rank(in_dim, out_dim) {
        let optimum =
            optimal_frobenius_error(spectrum.view(), rank) / frobenius_norm(outputs.view());
        let error = |method: Method| {
            let factored = factorize(&layer, rank, method, Some(&stats)).unwrap();
            let direct = direct_output_error(&x, &layer, &factored);
            let via_gram = output_error(&layer, &factored, &stats).unwrap();
            assert!(
                (direct - via_gram).abs() <= 1e-9 * direct.max(1e-3),
                "rank {rank} {method}: output error {direct} from X, {via_gram} from XᵀX"
            );
            direct
        };
        let (whitened, plain, asvd) = (error(exact), error(Method::Svd), error(Method::asvd()));
        let defaults = error(Method::whitened());
        assert!(
            (whitened - optimum).abs() <= 1e-9 * optimum.max(1e-3),
            "rank {rank}: whitened {whitened} but the optimum is {optimum}"
        );
        assert!(
            (defaults - optimum).abs() <= 1e-5 * optimum.max(1e-3),
            "rank {rank}: whitened with the default ridge {defaults}, optimum {optimum}"
        );
        assert!(
            plain >= whitened - 1e-12,
            "rank {rank}: svd {plain} < whitened {whitened}"
        );
        assert!(
            asvd >= whitened - 1e-12,
            "rank {rank}: asvd {asvd} < whitened {whitened}"
        );
        if (4..=8).contains(&rank) {
            assert!(
                plain > 1.5 * whitened && asvd > 1.1 * whitened,
                "rank {rank}: svd {plain}, asvd {asvd}, whitened {whitened}"
            );
        }
    }
}

/// ASVD's scaling puts weight on the outlier channels, so at middle ranks its output error is
/// below plain SVD's (the reason for the method), while its weight error is above.
#[test]
fn asvd_protects_large_activation_channels() {
    let x = anisotropic_activations(200, 32, 11);
    let (layer, stats) = layer_and_stats(24, &x, 12);
    for rank in [4, 6, 8] {
        let plain = factorize_svd(&layer, rank).unwrap();
        let scaled = factorize(&layer, rank, Method::asvd(), Some(&stats)).unwrap();
        let (e_plain, e_scaled) = (
            direct_output_error(&x, &layer, &plain),
            direct_output_error(&x, &layer, &scaled),
        );
        assert!(
            e_scaled < e_plain,
            "rank {rank}: asvd {e_scaled} ≥ svd {e_plain}"
        );
    }
}

/// `S = diag(mean|x|⁰) = I`: the same factors as plain SVD, to the last bits.
#[test]
fn asvd_with_alpha_zero_is_plain_svd() {
    let x = anisotropic_activations(100, 20, 3);
    let (layer, stats) = layer_and_stats(30, &x, 4);
    for rank in [1, 5, 11] {
        let plain = factorize_svd(&layer, rank).unwrap();
        let scaled = factorize(&layer, rank, Method::Asvd { alpha: 0.0 }, Some(&stats)).unwrap();
        let (Linear::LowRank(a), Linear::LowRank(b)) = (&plain, &scaled) else {
            panic!("expected low-rank layers");
        };
        assert!(max_abs_f64(&a.u, &b.u) <= 1e-12 && max_abs_f64(&a.v, &b.v) <= 1e-12);
    }
}

fn max_abs_f64(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// Activation-aware methods refuse to run without statistics, or with statistics of another shape,
/// and bad parameters are refused before any layer is read.
#[test]
fn methods_need_fitting_statistics() {
    let x = anisotropic_activations(50, 16, 5);
    let (layer, stats) = layer_and_stats(16, &x, 6);
    for method in [Method::asvd(), Method::whitened()] {
        let error = factorize(&layer, 4, method, None).unwrap_err();
        assert!(matches!(error, Error::Calibration { .. }), "{error}");
        let other = ActivationStats::new(8);
        let error = factorize(&layer, 4, method, Some(&other)).unwrap_err();
        assert!(error.to_string().contains("8 input features"), "{error}");
    }
    let empty = ActivationStats::new(16);
    let error = factorize(&layer, 4, Method::whitened(), Some(&empty)).unwrap_err();
    assert!(
        error.to_string().contains("no calibration tokens"),
        "{error}"
    );
    for bad in [
        Method::Asvd { alpha: -1.0 },
        Method::Whitened { ridge: f64::NAN },
    ] {
        let error = factorize(&layer, 4, bad, Some(&stats)).unwrap_err();
        assert!(matches!(error, Error::InvalidMethod { .. }), "{error}");
    }
    // Fewer tokens than features: XᵀX is singular, the ridge makes it usable.
    let few = anisotropic_activations(5, 16, 9);
    let (layer, stats) = layer_and_stats(16, &few, 10);
    assert!(factorize(&layer, 4, Method::whitened(), Some(&stats)).is_ok());
}

#[test]
fn methods_print_and_parse_back() {
    for method in [
        Method::Svd,
        Method::asvd(),
        Method::Asvd { alpha: 0.25 },
        Method::whitened(),
        Method::Whitened { ridge: 0.01 },
    ] {
        assert_eq!(method.to_string().parse::<Method>().unwrap(), method);
    }
    assert_eq!("asvd".parse::<Method>().unwrap(), Method::asvd());
    assert_eq!("whitened".parse::<Method>().unwrap(), Method::whitened());
    for bad in ["", "svd-llm", "asvd beta=1", "svd alpha=1", "asvd alpha=-2"] {
        assert!(bad.parse::<Method>().is_err(), "{bad:?} parsed");
    }
}

const ATTENTION: [&str; 2] = [
    "encoder.layer.*.attention.self.*",
    "encoder.layer.*.attention.output.dense",
];

fn taps_left(model: &impl Linears) -> Vec<String> {
    model
        .linears()
        .into_iter()
        .filter(|(_, l)| matches!(l, Linear::Dense(d) if d.tap.is_some()))
        .map(|(n, _)| n)
        .collect()
}

/// While tapped, the encoder's embeddings are bit-for-bit the untapped ones; afterwards no tap is
/// left; every selected layer has statistics (Q, K and V of a block the same ones: one input).
#[test]
fn taps_leave_outputs_unchanged_and_are_removed() {
    let mut encoder = tiny_bert().with_batch_size(1);
    let reference = encoder.embed(SENTENCES).unwrap();
    let plan = Plan::new(RankRule::ParamRatio(0.5)).select(ATTENTION);
    let mut tapped = None;
    let calibration = calibrate(&mut encoder, &plan, |model| {
        tapped = Some(model.embed(SENTENCES)?);
        Ok(())
    })
    .unwrap();
    assert_eq!(max_abs_diff(&tapped.unwrap(), &reference), 0.0);
    assert!(taps_left(&encoder).is_empty());
    assert_eq!(
        max_abs_diff(&encoder.embed(SENTENCES).unwrap(), &reference),
        0.0
    );
    assert_eq!(calibration.len(), plan.resolve(&encoder).unwrap().len());
    let tokens: usize = SENTENCES
        .iter()
        .map(|s| encoder.tokenizer().encode(s, true).unwrap().len())
        .sum();
    for (name, stats) in calibration.layers() {
        assert_eq!(stats.rows, tokens, "{name}");
    }
    let block = "encoder.layer.0.attention.self";
    let query = calibration.get(&format!("{block}.query")).unwrap();
    assert_eq!(calibration.get(&format!("{block}.key")).unwrap(), query);
    assert_eq!(calibration.get(&format!("{block}.value")).unwrap(), query);
}

/// A failing or panicking calibration run leaves no tap behind; a run that never reaches the
/// selected layers is an error, not empty statistics.
#[test]
fn taps_are_removed_when_the_run_fails() {
    let mut encoder = tiny_bert();
    let plan = Plan::new(RankRule::ParamRatio(0.5)).select(ATTENTION);
    let error = calibrate(&mut encoder, &plan, |model| {
        model.embed(SENTENCES)?;
        Err(Error::Calibration {
            reason: "stop".into(),
        })
    })
    .unwrap_err();
    assert!(error.to_string().contains("stop"));
    assert!(taps_left(&encoder).is_empty());
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        calibrate(&mut encoder, &plan, |_| panic!("boom")).unwrap();
    }));
    assert!(panicked.is_err());
    assert!(taps_left(&encoder).is_empty());
    let error = calibrate(&mut encoder, &plan, |_| Ok(())).unwrap_err();
    assert!(error.to_string().contains("saw no tokens"), "{error}");
}

/// tiny-bert's attention by each method: a whitened plan is refused without calibration; with it,
/// every layer's output error is at most plain SVD's, the report names the method, and the saved
/// model reloads (manifest method included) with the same embeddings.
#[test]
fn calibrated_plans_compress_report_and_reload() {
    let original = tiny_bert().with_batch_size(1);
    let plan = Plan::new(RankRule::ParamRatio(0.5)).select(ATTENTION);
    let mut probe = original.clone();
    let calibration = calibrate(&mut probe, &plan, |m| {
        m.embed(SENTENCES)?;
        Ok(())
    })
    .unwrap();
    let whitened_plan = plan.clone().with_method(Method::whitened());
    let error = compress_model(&mut original.clone(), &whitened_plan).unwrap_err();
    assert!(error.to_string().contains("calibrate"), "{error}");

    let mut reports = Vec::new();
    for method in [Method::Svd, Method::asvd(), Method::whitened()] {
        let mut model = original.clone();
        let report =
            compress_model_calibrated(&mut model, &plan.clone().with_method(method), &calibration)
                .unwrap();
        assert_eq!(report.method, method.to_string());
        assert!(report.layers.iter().all(|l| l.output_error.is_some()));
        assert!(report.to_string().contains("output error"));
        reports.push((report, model));
    }
    let (svd_report, _) = &reports[0];
    let (whitened_report, whitened) = &reports[2];
    for (plain, white) in svd_report.layers.iter().zip(&whitened_report.layers) {
        let (p, w) = (plain.output_error.unwrap(), white.output_error.unwrap());
        assert!(w <= p + 1e-6, "{}: whitened {w} > svd {p}", plain.name);
    }
    assert!(whitened_report.mean_output_error() < svd_report.mean_output_error());

    let temp = tempfile::TempDir::new().unwrap();
    let dir = temp.path().join("whitened");
    let manifest = save_compressed(whitened, whitened_report, &fixture("tiny-bert"), &dir).unwrap();
    assert_eq!(manifest.method, "whitened ridge=0.000001");
    let (reloaded, manifest) =
        load_compressed_sentence_encoder(&dir, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(manifest.method, whitened_report.method);
    let diff = max_abs_diff(
        &reloaded.embed(SENTENCES).unwrap(),
        &whitened.embed(SENTENCES).unwrap(),
    );
    assert!(diff <= 1e-6, "embeddings differ by {diff}");
}

/// Statistics from elsewhere work as calibrate's do; a layer missing from them is named.
#[test]
fn compression_names_a_layer_without_statistics() {
    let mut encoder = tiny_bert();
    let plan = Plan::new(RankRule::ParamRatio(0.5))
        .select(ATTENTION)
        .with_method(Method::whitened());
    let error =
        compress_model_calibrated(&mut encoder, &plan, &Calibration::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("encoder.layer.0.attention.self.query"),
        "{error}"
    );
    assert!(taps_left(&encoder).is_empty());
}
