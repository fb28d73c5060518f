//! Activation-aware SVD on the real all-MiniLM-L6-v2: attention (Q, K, V, O) of all six blocks
//! factorized by plain SVD, ASVD and SVD-LLM whitening, calibrated on 16 sentences and measured on
//! 10 others. Runs only where the model is available (LOWRANK_MINILM_DIR or LOWRANK_PYTHON, as in
//! minilm.rs); otherwise the test says so and passes.

#![allow(clippy::unwrap_used)]

mod common;

use candle_core::{DType, Device};
use common::{MINILM_ATTENTION, MINILM_CALIBRATION, MINILM_SENTENCES, mean_cosine, minilm_dir};
use compress::{Method, Plan, RankRule, calibrate, compress_model_calibrated};
use models::bert::SentenceEncoder;

/// Mean cosine to the original embeddings on the held-out sentences, measured on CPU (f32),
/// 64 calibration sentences (794 tokens), one row per method:
///
/// | kept | svd    | asvd α=0.5 | whitened |
/// |------|--------|------------|----------|
/// | 90%  | 0.8597 | 0.8896     | 0.9249   |
/// | 75%  | 0.8088 | 0.8368     | 0.8949   |
/// | 50%  | 0.6919 | 0.7139     | 0.8267   |
/// | 25%  | 0.5695 | 0.5887     | 0.7200   |
///
/// On the calibration sentences themselves whitening keeps 0.994 at 75%: the gap to held-out text
/// is the calibration set's size. With only the first 16 sentences (206 tokens, fewer than the 384
/// features, so `XᵀX` is singular) it kept 1.000 on them but 0.831 held out at 75%, barely above
/// ASVD; a larger ridge (0.1) helped little (0.858).
#[test]
fn minilm_activation_aware_svd_beats_plain_svd() {
    let Some(dir) = minilm_dir() else {
        eprintln!(
            "skipped: set LOWRANK_PYTHON (the reference venv) or LOWRANK_MINILM_DIR to run it"
        );
        return;
    };
    // One sentence per pass: no padding rows in the statistics.
    let original = SentenceEncoder::from_dir(&dir, DType::F32, &Device::Cpu)
        .unwrap()
        .with_batch_size(1);
    let reference = original.embed(MINILM_SENTENCES).unwrap();
    let mut probe = original.clone();
    let selection = Plan::new(RankRule::Fixed(1)).select(MINILM_ATTENTION);
    let calibration = calibrate(&mut probe, &selection, |m| {
        m.embed(MINILM_CALIBRATION)?;
        Ok(())
    })
    .unwrap();
    let methods = [Method::Svd, Method::asvd(), Method::whitened()];
    let mut table = Vec::new();
    for ratio in [0.9, 0.75, 0.5] {
        let mut row = Vec::new();
        for method in methods {
            let mut encoder = original.clone();
            let plan = Plan::new(RankRule::ParamRatio(ratio))
                .select(MINILM_ATTENTION)
                .with_method(method);
            let report = compress_model_calibrated(&mut encoder, &plan, &calibration).unwrap();
            let cosine = mean_cosine(&encoder.embed(MINILM_SENTENCES).unwrap(), &reference);
            println!(
                "kept {ratio}: {method:<24} layer error {:.3}, output error {:.3}, held-out cosine {cosine:.4}",
                report.mean_relative_error(),
                report.mean_output_error().unwrap()
            );
            row.push(cosine);
        }
        table.push((ratio, row));
    }
    for (ratio, row) in &table {
        let (svd, asvd, whitened) = (row[0], row[1], row[2]);
        assert!(
            whitened > svd,
            "kept {ratio}: whitened {whitened} ≤ svd {svd}"
        );
        assert!(asvd > svd, "kept {ratio}: asvd {asvd} ≤ svd {svd}");
    }
    let whitened_at_75 = table[1].1[2];
    assert!(
        whitened_at_75 >= WHITENED_BOUND_AT_75,
        "kept 0.75: whitened {whitened_at_75} < {WHITENED_BOUND_AT_75}"
    );
}

/// 0.025 under the measured 0.895; plain SVD (0.809) and ASVD (0.837) fail it.
const WHITENED_BOUND_AT_75: f64 = 0.87;
