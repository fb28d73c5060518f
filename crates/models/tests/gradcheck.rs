#![allow(clippy::unwrap_used)]
//! The full model's gradients against central finite differences in f64: every parameter kind
//! of BART (embeddings, positions, attention, LayerNorm, feed-forward) gets the gradient the loss
//! really has, so training moves the weights the way the loss says.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use models::bart::{Bart, Config};
use models::loss::{cross_entropy, shift_tokens_right};

fn config() -> Config {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 13, "d_model": 8, "encoder_layers": 2, "decoder_layers": 1,
        "encoder_attention_heads": 2, "decoder_attention_heads": 2,
        "encoder_ffn_dim": 12, "decoder_ffn_dim": 12, "max_position_embeddings": 16,
        "activation_function": "gelu", "pad_token_id": 1, "bos_token_id": 0,
        "eos_token_id": 2, "decoder_start_token_id": 2
    }))
    .unwrap()
}

fn seeded(varmap: &VarMap) {
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    let mut vars: Vec<(String, Var)> = varmap.data().lock().unwrap().clone().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        let is_gain = name.contains("norm") && name.ends_with("weight");
        let values: Vec<f64> = (0..var.elem_count())
            .map(|_| {
                if is_gain {
                    1.0 + 0.2 * next()
                } else {
                    0.6 * next()
                }
            })
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
}

#[test]
fn every_parameter_gets_the_finite_difference_gradient() {
    let device = Device::Cpu;
    let cfg = config();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &device);
    vb.get((13, 8), "model.shared.weight").unwrap();
    let model = Bart::load(vb, &cfg).unwrap();
    seeded(&varmap);

    // Two sources, the second padded; two targets, the second padded with -100.
    let ids = Tensor::new(&[[0u32, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]], &device).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], &device).unwrap();
    let labels = Tensor::new(&[[0i64, 11, 12, 2], [0, 4, 2, -100]], &device).unwrap();
    let decoder_ids = shift_tokens_right(&labels, 1, 2)
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap();
    let loss = || -> f64 {
        let logits = model.forward(&ids, &mask, &decoder_ids).unwrap();
        cross_entropy(&logits, &labels)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let grads = {
        let logits = model.forward(&ids, &mask, &decoder_ids).unwrap();
        cross_entropy(&logits, &labels).unwrap().backward().unwrap()
    };

    let vars: Vec<(String, Var)> = varmap.data().lock().unwrap().clone().into_iter().collect();
    let mut worst = (0.0f64, String::new());
    for (name, var) in &vars {
        let analytic = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} got no gradient"))
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let original = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        // A few entries of each tensor, spread over it.
        for index in (0..original.len()).step_by(original.len().div_ceil(5).max(1)) {
            let at = |delta: f64| {
                let mut values = original.clone();
                values[index] += delta;
                var.set(&Tensor::from_vec(values, var.shape(), &device).unwrap())
                    .unwrap();
                loss()
            };
            let h = 1e-6;
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            var.set(&Tensor::from_vec(original.clone(), var.shape(), &device).unwrap())
                .unwrap();
            // Relative, with a floor: central differences at h = 1e-6 carry ~1e-10 of rounding.
            let error = (numeric - analytic[index]).abs()
                / numeric.abs().max(analytic[index].abs()).max(1e-4);
            if error > worst.0 {
                worst = (
                    error,
                    format!(
                        "{name}[{index}]: numeric {numeric} analytic {}",
                        analytic[index]
                    ),
                );
            }
        }
    }
    assert!(
        worst.0 < 1e-5,
        "worst relative gradient error {:.2e} at {}",
        worst.0,
        worst.1
    );
}
