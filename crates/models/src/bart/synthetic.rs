//! Deterministic stand-in weights defined by a hash of each tensor's name, so a BART of any size
//! can be built identically here and in Python (tests/fixtures/make_model_fixtures.py) without
//! downloading or committing a checkpoint.
//!
//! Element `i` of the parameter named `N` (its state_dict key) is `(u − 0.5)·0.04` with
//! `u = (splitmix64(fnv1a64(N) + i) >> 11) / 2⁵³`; LayerNorm weights are `1 +` that, so every
//! LayerNorm starts near the identity.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::config::Config;
use crate::error::Result;

/// The weights of `BartForConditionalGeneration.state_dict()` for `cfg` by the formula above,
/// without the tied copies (`lm_head.weight`, `model.{encoder,decoder}.embed_tokens.weight`).
pub fn synthetic_weights(cfg: &Config, device: &Device) -> Result<HashMap<String, Tensor>> {
    parameter_shapes(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let values = synthetic_values(&name, shape.iter().product());
            let tensor = Tensor::from_vec(values, shape, device)?;
            Ok((name, tensor))
        })
        .collect()
}

/// The values of the parameter `name` with `n` elements, row-major.
pub fn synthetic_values(name: &str, n: usize) -> Vec<f32> {
    let seed = fnv1a64(name.as_bytes());
    let offset = if is_layer_norm_weight(name) { 1.0 } else { 0.0 };
    (0..n as u64)
        .map(|i| {
            let u = (splitmix64(seed.wrapping_add(i)) >> 11) as f64 / (1u64 << 53) as f64;
            (offset + (u - 0.5) * 0.04) as f32
        })
        .collect()
}

fn is_layer_norm_weight(name: &str) -> bool {
    name.ends_with("layer_norm.weight") || name.ends_with("layernorm_embedding.weight")
}

/// 64-bit FNV-1a.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One output of SplitMix64 seeded with `x` (Steele, Lea and Flood 2014).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Every parameter's key and shape, as transformers names them.
fn parameter_shapes(cfg: &Config) -> Vec<(String, Vec<usize>)> {
    let d = cfg.d_model;
    let mut shapes = vec![
        ("model.shared.weight".to_string(), vec![cfg.vocab_size, d]),
        ("final_logits_bias".to_string(), vec![1, cfg.vocab_size]),
    ];
    for (stack, n_layers, ffn) in [
        ("encoder", cfg.encoder_layers, cfg.encoder_ffn_dim),
        ("decoder", cfg.decoder_layers, cfg.decoder_ffn_dim),
    ] {
        let prefix = format!("model.{stack}");
        let positions = cfg.max_position_embeddings + 2;
        shapes.push((
            format!("{prefix}.embed_positions.weight"),
            vec![positions, d],
        ));
        push_layer_norm(&mut shapes, &format!("{prefix}.layernorm_embedding"), d);
        for i in 0..n_layers {
            let layer = format!("{prefix}.layers.{i}");
            let mut blocks = vec!["self_attn"];
            if stack == "decoder" {
                blocks.push("encoder_attn");
            }
            for block in blocks {
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    push_linear(&mut shapes, &format!("{layer}.{block}.{proj}"), d, d);
                }
                push_layer_norm(&mut shapes, &format!("{layer}.{block}_layer_norm"), d);
            }
            push_linear(&mut shapes, &format!("{layer}.fc1"), d, ffn);
            push_linear(&mut shapes, &format!("{layer}.fc2"), ffn, d);
            push_layer_norm(&mut shapes, &format!("{layer}.final_layer_norm"), d);
        }
    }
    shapes
}

fn push_linear(
    shapes: &mut Vec<(String, Vec<usize>)>,
    prefix: &str,
    in_dim: usize,
    out_dim: usize,
) {
    shapes.push((format!("{prefix}.weight"), vec![out_dim, in_dim]));
    shapes.push((format!("{prefix}.bias"), vec![out_dim]));
}

fn push_layer_norm(shapes: &mut Vec<(String, Vec<usize>)>, prefix: &str, d: usize) {
    shapes.push((format!("{prefix}.weight"), vec![d]));
    shapes.push((format!("{prefix}.bias"), vec![d]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn splitmix64_matches_the_reference_stream() {
        // The first outputs of the reference generator seeded with 0: state advances by the
        // golden-ratio constant, which `splitmix64(i · γ)` reproduces.
        let gamma = 0x9E37_79B9_7F4A_7C15u64;
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(gamma), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn values_lie_in_range_and_layer_norms_start_near_one() {
        let plain = synthetic_values("model.encoder.layers.0.fc1.weight", 1000);
        assert!(plain.iter().all(|v| v.abs() <= 0.02));
        let mean = plain.iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.002, "mean {mean}");
        let norm = synthetic_values("model.decoder.layers.1.final_layer_norm.weight", 100);
        assert!(norm.iter().all(|v| (v - 1.0).abs() <= 0.02));
        let bias = synthetic_values("model.decoder.layers.1.final_layer_norm.bias", 100);
        assert!(bias.iter().all(|v| v.abs() <= 0.02));
    }
}
