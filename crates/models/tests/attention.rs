//! Attention against the lesson's definitions: a naive loop, what masks forbid, what heads and the
//! KV cache must preserve, and the FLOP and byte formulas.

// clippy.toml allows unwrap inside #[test] functions only; the helpers here unwrap too.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, IndexOp, Tensor};
use models::Linear;
use models::attention::{
    KvCache, MultiHeadAttention, attention_flops, attention_memory_bytes, attention_weights,
    causal_mask, merge_heads, padding_mask, scaled_dot_product_attention, split_heads,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// Fails with the largest difference and where it is.
fn assert_close(actual: &Tensor, expected: &Tensor, tol: f32) {
    assert_eq!(actual.dims(), expected.dims(), "shapes differ");
    let a = actual.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let e = expected.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (index, diff) = a
        .iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, -1f32), |best, (i, d)| {
            if d.is_nan() || d > best.1 {
                (i, d)
            } else {
                best
            }
        });
    assert!(
        diff <= tol,
        "max |Δ| = {diff} at flat index {index} (actual {}, expected {}), tolerance {tol}",
        a[index],
        e[index]
    );
}

/// softmax(q·kᵀ/√d + mask)·v by explicit loops in f64, for (b, h, s, d) inputs and a (b, s_k)
/// list of allowed keys.
fn naive_attention(q: &Tensor, k: &Tensor, v: &Tensor, keep: &[Vec<bool>]) -> Tensor {
    let (b_sz, n_heads, s_q, d) = q.dims4().unwrap();
    let s_k = k.dim(2).unwrap();
    let mut out = vec![0f32; b_sz * n_heads * s_q * d];
    for b in 0..b_sz {
        for h in 0..n_heads {
            let qs = q.i((b, h)).unwrap().to_vec2::<f32>().unwrap();
            let ks = k.i((b, h)).unwrap().to_vec2::<f32>().unwrap();
            let vs = v.i((b, h)).unwrap().to_vec2::<f32>().unwrap();
            for i in 0..s_q {
                let scores: Vec<f64> = (0..s_k)
                    .map(|j| {
                        let dot: f64 = (0..d).map(|x| qs[i][x] as f64 * ks[j][x] as f64).sum();
                        if keep[b][j] {
                            dot / (d as f64).sqrt()
                        } else {
                            f64::NEG_INFINITY
                        }
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exp.iter().sum();
                for x in 0..d {
                    let mixed: f64 = (0..s_k).map(|j| exp[j] / total * vs[j][x] as f64).sum();
                    out[((b * n_heads + h) * s_q + i) * d + x] = mixed as f32;
                }
            }
        }
    }
    Tensor::from_vec(out, (b_sz, n_heads, s_q, d), &Device::Cpu).unwrap()
}

fn mask_tensor(keep: &[Vec<bool>]) -> Tensor {
    let rows: Vec<u32> = keep.iter().flatten().map(|&k| u32::from(k)).collect();
    Tensor::from_vec(rows, (keep.len(), keep[0].len()), &Device::Cpu).unwrap()
}

fn random_linear(in_dim: usize, out_dim: usize, seed: u64) -> Linear {
    let weight = (random(&[out_dim, in_dim], seed) * 0.5).unwrap();
    Linear::dense(weight, Some(random(&[out_dim], seed + 1))).unwrap()
}

fn random_attention(d_model: usize, n_heads: usize, seed: u64) -> MultiHeadAttention {
    MultiHeadAttention::new(
        random_linear(d_model, d_model, seed),
        random_linear(d_model, d_model, seed + 10),
        random_linear(d_model, d_model, seed + 20),
        random_linear(d_model, d_model, seed + 30),
        n_heads,
    )
    .unwrap()
}

#[test]
fn sdpa_matches_a_naive_loop() {
    let (q, k, v) = (
        random(&[2, 3, 4, 5], 1),
        random(&[2, 3, 6, 5], 2),
        random(&[2, 3, 6, 5], 3),
    );
    let all = vec![vec![true; 6]; 2];
    let out = scaled_dot_product_attention(&q, &k, &v, None).unwrap();
    assert_close(&out, &naive_attention(&q, &k, &v, &all), 1e-5);

    let keep = vec![
        vec![true, true, true, true, false, false],
        vec![true, false, true, true, true, true],
    ];
    let mask = padding_mask(&mask_tensor(&keep), DType::F32).unwrap();
    let out = scaled_dot_product_attention(&q, &k, &v, Some(&mask)).unwrap();
    assert_close(&out, &naive_attention(&q, &k, &v, &keep), 1e-5);
}

#[test]
fn padded_keys_get_exactly_zero_weight() {
    let keep = vec![
        vec![true, true, false, false],
        vec![true, true, true, false],
    ];
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
        let q = random(&[2, 2, 3, 4], 4).to_dtype(dtype).unwrap();
        let k = random(&[2, 2, 4, 4], 5).to_dtype(dtype).unwrap();
        let mask = padding_mask(&mask_tensor(&keep), dtype).unwrap();
        let weights = attention_weights(&q, &k, Some(&mask))
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        for (b, row) in keep.iter().enumerate() {
            for (j, &kept) in row.iter().enumerate() {
                let column = weights.i((b, .., .., j)).unwrap().flatten_all().unwrap();
                let column = column.to_vec1::<f32>().unwrap();
                assert!(
                    kept || column.iter().all(|&w| w == 0.0),
                    "{dtype:?}: padded key {j} of row {b} got weights {column:?}"
                );
            }
        }
        let sums = weights.sum(3).unwrap().flatten_all().unwrap();
        for sum in sums.to_vec1::<f32>().unwrap() {
            assert!((sum - 1.0).abs() < 1e-2, "{dtype:?}: a row sums to {sum}");
        }
    }
}

#[test]
fn all_padding_rows_stay_finite_even_in_f16() {
    // A mask built from f32::MIN would be −∞ in f16 and turn this row into NaN.
    let keep = vec![vec![false, false, false]];
    let mask = padding_mask(&mask_tensor(&keep), DType::F16).unwrap();
    let q = random(&[1, 1, 2, 4], 6).to_dtype(DType::F16).unwrap();
    let k = random(&[1, 1, 3, 4], 7).to_dtype(DType::F16).unwrap();
    let weights = attention_weights(&q, &k, Some(&mask)).unwrap();
    let weights = weights.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    assert!(
        weights
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|w| w.is_finite())
    );
}

#[test]
fn causal_mask_prevents_looking_ahead() {
    let attention = random_attention(8, 2, 40);
    let xs = random(&[1, 6, 8], 8);
    let mask = causal_mask(6, 0, DType::F32, &Device::Cpu).unwrap();
    let out = attention.forward(&xs, Some(&mask), None).unwrap();
    for i in 0..5 {
        // Change every position after i: outputs up to i must not move.
        let later = random(&[1, 5 - i, 8], 100 + i as u64);
        let changed = Tensor::cat(&[&xs.narrow(1, 0, i + 1).unwrap(), &later], 1).unwrap();
        let out_changed = attention.forward(&changed, Some(&mask), None).unwrap();
        assert_close(
            &out_changed.narrow(1, 0, i + 1).unwrap(),
            &out.narrow(1, 0, i + 1).unwrap(),
            0.0,
        );
        let after = out_changed.narrow(1, i + 1, 5 - i).unwrap();
        let diff = (after - out.narrow(1, i + 1, 5 - i).unwrap()).unwrap();
        let moved = diff
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(moved > 1e-3, "outputs after {i} did not change");
    }
}

#[test]
fn causal_mask_with_past_lets_query_i_see_keys_up_to_past_plus_i() {
    let mask = causal_mask(2, 3, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(mask.dims(), [1, 1, 2, 5]);
    let rows = mask.i((0, 0)).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(rows[0][..4], [0.0; 4]);
    assert_eq!(rows[0][4], f32::MIN);
    assert_eq!(rows[1], [0.0; 5]);
}

#[test]
fn cached_self_attention_matches_the_full_sequence() {
    let attention = random_attention(8, 4, 50);
    let xs = random(&[2, 5, 8], 9);
    let mask = causal_mask(5, 0, DType::F32, &Device::Cpu).unwrap();
    let full = attention.forward(&xs, Some(&mask), None).unwrap();
    let mut cache = KvCache::new();
    let mut steps = Vec::new();
    for (start, len) in [(0, 2), (2, 1), (3, 2)] {
        let step_mask = causal_mask(len, start, DType::F32, &Device::Cpu).unwrap();
        let step = xs.narrow(1, start, len).unwrap();
        steps.push(
            attention
                .forward(&step, Some(&step_mask), Some(&mut cache))
                .unwrap(),
        );
        assert_eq!(cache.seq_len(), start + len);
    }
    assert_close(&Tensor::cat(&steps, 1).unwrap(), &full, 1e-5);
}

#[test]
fn cross_attention_computes_memory_kv_once_and_reuses_them() {
    let attention = random_attention(8, 2, 60);
    let (xs, memory) = (random(&[2, 3, 8], 10), random(&[2, 4, 8], 11));
    let full = attention.forward_cross(&xs, &memory, None, None).unwrap();
    let mut cache = KvCache::new();
    let first = attention
        .forward_cross(
            &xs.narrow(1, 0, 1).unwrap(),
            &memory,
            None,
            Some(&mut cache),
        )
        .unwrap();
    // The memory passed later is ignored: the cached K/V are the first call's.
    let other_memory = random(&[2, 4, 8], 12);
    let rest = attention
        .forward_cross(
            &xs.narrow(1, 1, 2).unwrap(),
            &other_memory,
            None,
            Some(&mut cache),
        )
        .unwrap();
    assert_close(&Tensor::cat(&[first, rest], 1).unwrap(), &full, 1e-6);
    assert_eq!(cache.seq_len(), 4);
}

#[test]
fn cache_index_select_reorders_batch_rows() {
    let (k, v) = (random(&[3, 2, 4, 5], 13), random(&[3, 2, 4, 5], 14));
    let mut cache = KvCache::new();
    cache.append(&k, &v).unwrap();
    let indices = Tensor::new(&[2u32, 2, 0], &Device::Cpu).unwrap();
    cache.index_select(&indices).unwrap();
    let (k2, v2) = cache.get().unwrap();
    assert_close(&k2.i(0).unwrap(), &k.i(2).unwrap(), 0.0);
    assert_close(&k2.i(1).unwrap(), &k.i(2).unwrap(), 0.0);
    assert_close(&v2.i(2).unwrap(), &v.i(0).unwrap(), 0.0);
}

#[test]
fn heads_that_do_not_divide_the_features_are_refused() {
    let xs = random(&[1, 2, 10], 15);
    let err = split_heads(&xs, 3).unwrap_err().to_string();
    assert!(err.contains("10") && err.contains('3'), "{err}");
    assert!(attention_flops(1, 4, 4, 10, 3).is_err());
    assert!(attention_memory_bytes(1, 4, 4, 10, 0, DType::F32).is_err());
    let linear = random_linear(10, 10, 16);
    assert!(
        MultiHeadAttention::new(linear.clone(), linear.clone(), linear.clone(), linear, 4).is_err()
    );
}

#[test]
fn attention_weights_rows_sum_to_one() {
    let weights =
        attention_weights(&random(&[1, 2, 3, 4], 17), &random(&[1, 2, 5, 4], 18), None).unwrap();
    let ones = Tensor::ones((1, 2, 3), DType::F32, &Device::Cpu).unwrap();
    assert_close(&weights.sum(3).unwrap(), &ones, 1e-6);
}

#[test]
fn memory_counts_the_score_matrix_and_activations() {
    let m = attention_memory_bytes(2, 10, 20, 64, 8, DType::BF16).unwrap();
    assert_eq!(m.scores, 2 * 8 * 10 * 20 * 2);
    assert_eq!(m.activations, (2 * 2 * 10 * 64 + 2 * 2 * 20 * 64) * 2);
    assert_eq!(m.total, m.scores + m.activations);
}

proptest! {
    #[test]
    fn split_then_merge_is_the_identity(
        b in 1usize..3, s in 1usize..5, h in 1usize..4, d in 1usize..5, seed in 0u64..1000
    ) {
        let xs = random(&[b, s, h * d], seed);
        let heads = split_heads(&xs, h).unwrap();
        prop_assert_eq!(heads.dims(), &[b, h, s, d]);
        // Head j of token t holds features j·d..(j+1)·d.
        let expected = xs.i((0, s - 1)).unwrap().narrow(0, (h - 1) * d, d).unwrap();
        prop_assert_eq!(
            heads.i((0, h - 1, s - 1)).unwrap().to_vec1::<f32>().unwrap(),
            expected.to_vec1::<f32>().unwrap()
        );
        let merged = merge_heads(&heads).unwrap();
        prop_assert_eq!(merged.to_vec3::<f32>().unwrap(), xs.to_vec3::<f32>().unwrap());
    }

    #[test]
    fn flops_follow_the_per_stage_formulas(
        b in 1usize..4, s_q in 1usize..300, s_k in 1usize..300, h in 1usize..16, head_dim in 1usize..64
    ) {
        let d = h * head_dim;
        let f = attention_flops(b, s_q, s_k, d, h).unwrap();
        let (b, s_q, s_k, d) = (b as u64, s_q as u64, s_k as u64, d as u64);
        // One projection of s tokens is an (s×d)·(d×d) product: 2·s·d².
        prop_assert_eq!(f.projections, b * (2 * s_q * d * d + 2 * (2 * s_k * d * d)));
        prop_assert_eq!(f.scores, 2 * b * s_q * d * s_k);
        prop_assert_eq!(f.mixing, 2 * b * s_q * s_k * d);
        prop_assert_eq!(f.output, 2 * b * s_q * d * d);
        prop_assert_eq!(f.total, f.projections + f.scores + f.mixing + f.output);
    }
}

// Parity with torch (`F.scaled_dot_product_attention`, `nn.MultiheadAttention`); the fixture is
// made by tests/fixtures/make_model_fixtures.py.

fn torch_fixture() -> std::collections::HashMap<String, Tensor> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models/attention.safetensors");
    assert!(
        path.exists(),
        "parity fixture {} is missing: run `python tests/fixtures/make_model_fixtures.py` from \
         the repository root to create it",
        path.display()
    );
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

#[test]
fn sdpa_matches_torch_with_padding_and_causal_masks() {
    let t = torch_fixture();
    let (q, k, v) = (&t["q"], &t["k"], &t["v"]);
    let mask = padding_mask(&t["keep"], DType::F32).unwrap();
    let out = scaled_dot_product_attention(q, k, v, Some(&mask)).unwrap();
    assert_close(&out, &t["sdpa"], 1e-5);
    // torch's own −∞ mask works too while no row is all padding.
    let out = scaled_dot_product_attention(q, k, v, Some(&t["mask"])).unwrap();
    assert_close(&out, &t["sdpa"], 1e-5);
    let causal = causal_mask(5, 0, DType::F32, &Device::Cpu).unwrap();
    let out = scaled_dot_product_attention(q, k, v, Some(&causal)).unwrap();
    assert_close(&out, &t["sdpa_causal"], 1e-5);
}

/// torch's packed `in_proj` (3·d, d) is q, k and v stacked.
fn torch_attention(t: &std::collections::HashMap<String, Tensor>) -> MultiHeadAttention {
    let (weight, bias) = (&t["mha_in_proj_weight"], &t["mha_in_proj_bias"]);
    let d = weight.dim(1).unwrap();
    let part = |i: usize| {
        let w = weight.narrow(0, i * d, d).unwrap();
        Linear::dense(w, Some(bias.narrow(0, i * d, d).unwrap())).unwrap()
    };
    let out_proj = Linear::dense(
        t["mha_out_proj_weight"].clone(),
        Some(t["mha_out_proj_bias"].clone()),
    )
    .unwrap();
    MultiHeadAttention::new(part(0), part(1), part(2), out_proj, 4).unwrap()
}

#[test]
fn multi_head_attention_matches_torch() {
    let t = torch_fixture();
    let attention = torch_attention(&t);
    let (x, query) = (&t["mha_x"], &t["mha_query"]);
    let mask = padding_mask(&t["keep"], DType::F32).unwrap();
    let out = attention.forward(x, Some(&mask), None).unwrap();
    assert_close(&out, &t["mha_self"], 1e-5);
    let q = split_heads(&attention.q_proj.forward(x).unwrap(), 4).unwrap();
    let k = split_heads(&attention.k_proj.forward(x).unwrap(), 4).unwrap();
    let weights = attention_weights(&q, &k, Some(&mask)).unwrap();
    assert_close(&weights, &t["mha_self_weights"], 1e-5);
    let out = attention
        .forward_cross(query, x, Some(&mask), None)
        .unwrap();
    assert_close(&out, &t["mha_cross"], 1e-5);
}
