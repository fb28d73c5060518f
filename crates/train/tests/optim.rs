//! Optimizers, schedules and clipping against their formulas, computed here in f64: one AdamW
//! step and two (bias correction), decoupled weight decay on a zero gradient, SGD with momentum
//! and Nesterov, transformers' schedules at their boundary steps, torch's clip_grad_norm_.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor, Var};
use train::optim::{AdamWConfig, Gradients, Optimizer, OptimizerConfig, SgdConfig};
use train::schedule::{Decay, Schedule};

fn var(values: &[f32]) -> Var {
    Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap()
}

fn grads(name: &str, values: &[f32]) -> Gradients {
    let mut g = Gradients::new();
    g.insert(name, Tensor::new(values, &Device::Cpu).unwrap());
    g
}

fn values(var: &Var) -> Vec<f64> {
    let v: Vec<f32> = var.as_tensor().to_vec1().unwrap();
    v.into_iter().map(f64::from).collect()
}

/// Fails with the index and both values of the worst element, relative to max(1, |expected|).
fn check(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len());
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let err = (a - e).abs() / e.abs().max(1.0);
        assert!(
            err <= tol,
            "element {i}: got {a}, expected {e} (error {err:e})"
        );
    }
}

/// torch.optim.AdamW for one parameter over a sequence of gradients, in f64.
fn adamw_reference(p0: &[f64], grads: &[Vec<f64>], c: AdamWConfig) -> Vec<f64> {
    let mut p = p0.to_vec();
    let mut m = vec![0.0; p.len()];
    let mut v = vec![0.0; p.len()];
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as i32;
        for i in 0..p.len() {
            p[i] *= 1.0 - c.lr * c.weight_decay;
            m[i] = c.beta1 * m[i] + (1.0 - c.beta1) * g[i];
            v[i] = c.beta2 * v[i] + (1.0 - c.beta2) * g[i] * g[i];
            let bc1 = 1.0 - c.beta1.powi(t);
            let bc2 = 1.0 - c.beta2.powi(t);
            let denom = v[i].sqrt() / bc2.sqrt() + c.eps;
            p[i] -= c.lr / bc1 * m[i] / denom;
        }
    }
    p
}

#[test]
fn adamw_matches_torch_formula_over_two_steps() {
    let config = AdamWConfig {
        lr: 0.1,
        beta1: 0.8,
        beta2: 0.95,
        eps: 1e-3,
        weight_decay: 0.3,
    };
    let p0 = [1.0f32, -2.0, 0.5, 3.0];
    let g1 = [0.1f32, -0.3, 2.0, 1e-4];
    let g2 = [-0.2f32, -0.1, 0.5, 1e-4];
    let w = var(&p0);
    let mut opt =
        Optimizer::new(OptimizerConfig::AdamW(config), &[("w".into(), w.clone())]).unwrap();
    let as64 = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<_>>();
    opt.step(&grads("w", &g1)).unwrap();
    check(
        &values(&w),
        &adamw_reference(&as64(&p0), &[as64(&g1)], config),
        1e-6,
    );
    opt.step(&grads("w", &g2)).unwrap();
    check(
        &values(&w),
        &adamw_reference(&as64(&p0), &[as64(&g1), as64(&g2)], config),
        1e-6,
    );
}

#[test]
fn adamw_weight_decay_shrinks_a_parameter_with_zero_gradient() {
    let config = AdamWConfig {
        lr: 0.01,
        weight_decay: 0.5,
        ..AdamWConfig::default()
    };
    let w = var(&[2.0, -4.0]);
    let mut opt =
        Optimizer::new(OptimizerConfig::AdamW(config), &[("w".into(), w.clone())]).unwrap();
    for _ in 0..3 {
        opt.step(&grads("w", &[0.0, 0.0])).unwrap();
    }
    // m stays 0, so the Adam term is 0 and only the decoupled decay acts.
    let shrink = (1.0f64 - 0.01 * 0.5).powi(3);
    check(&values(&w), &[2.0 * shrink, -4.0 * shrink], 1e-7);
}

#[test]
fn a_parameter_without_gradient_is_left_alone() {
    // torch skips a parameter whose .grad is None: no decay, no step counted.
    let (a, b) = (var(&[1.0]), var(&[1.0]));
    let params = [("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
    let mut opt = Optimizer::new(OptimizerConfig::AdamW(AdamWConfig::default()), &params).unwrap();
    opt.step(&grads("a", &[1.0])).unwrap();
    assert_eq!(values(&b), [1.0]);
    assert_ne!(values(&a), [1.0]);
    let state: HashMap<String, Tensor> = opt.state_tensors().unwrap().into_iter().collect();
    assert_eq!(state["a.step"].to_scalar::<i64>().unwrap(), 1);
    assert_eq!(state["b.step"].to_scalar::<i64>().unwrap(), 0);
}

#[test]
fn sgd_momentum_and_nesterov_match_torch_formula() {
    for nesterov in [false, true] {
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            nesterov,
        };
        let w = var(&[1.0, -1.0]);
        let mut opt =
            Optimizer::new(OptimizerConfig::Sgd(config), &[("w".into(), w.clone())]).unwrap();
        let gs = [[0.5f64, 0.25], [-0.5, 1.0], [0.125, 0.0]];
        let mut p = [1.0f64, -1.0];
        let mut buf: Option<[f64; 2]> = None;
        for g in gs {
            opt.step(&grads("w", &[g[0] as f32, g[1] as f32])).unwrap();
            let d = [g[0] + 0.01 * p[0], g[1] + 0.01 * p[1]];
            let b = match buf {
                None => d,
                Some(b) => [0.9 * b[0] + d[0], 0.9 * b[1] + d[1]],
            };
            buf = Some(b);
            let step = if nesterov {
                [d[0] + 0.9 * b[0], d[1] + 0.9 * b[1]]
            } else {
                b
            };
            p = [p[0] - 0.1 * step[0], p[1] - 0.1 * step[1]];
            check(&values(&w), &p, 1e-6);
        }
    }
}

#[test]
fn optimizer_state_round_trips_and_refuses_foreign_state() {
    let w = var(&[1.0, 2.0]);
    let params = [("w".to_string(), w.clone())];
    let config = OptimizerConfig::AdamW(AdamWConfig::default());
    let mut opt = Optimizer::new(config, &params).unwrap();
    opt.step(&grads("w", &[0.3, -0.7])).unwrap();
    let saved: HashMap<String, Tensor> = opt.state_tensors().unwrap().into_iter().collect();
    let mut keys: Vec<&String> = saved.keys().collect();
    keys.sort();
    assert_eq!(keys, ["w.exp_avg", "w.exp_avg_sq", "w.step"]);

    // A twin restored from the state takes the same next step as the original.
    let twin_w = var(&values(&w).iter().map(|&v| v as f32).collect::<Vec<_>>());
    let mut twin = Optimizer::new(config, &[("w".to_string(), twin_w.clone())]).unwrap();
    twin.load_state(&saved, Path::new("optimizer.safetensors"))
        .unwrap();
    opt.step(&grads("w", &[0.1, 0.1])).unwrap();
    twin.step(&grads("w", &[0.1, 0.1])).unwrap();
    assert_eq!(values(&w), values(&twin_w));

    // A parameter of another shape, and momentum state given to AdamW, are refused by name.
    let other = var(&[1.0, 2.0, 3.0]);
    let mut wrong = Optimizer::new(config, &[("w".to_string(), other)]).unwrap();
    let err = wrong
        .load_state(&saved, Path::new("optimizer.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("w.exp_avg") && err.contains("[2]") && err.contains("[3]"),
        "{err}"
    );
    let sgd = OptimizerConfig::Sgd(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::new(0.1)
    });
    let mut wrong = Optimizer::new(sgd, &params).unwrap();
    let err = wrong
        .load_state(&saved, Path::new("optimizer.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("w.momentum_buffer") && err.contains("optimizer.safetensors"),
        "{err}"
    );
}

#[test]
fn clip_grad_norm_scales_only_above_the_limit() {
    let mut g = Gradients::new();
    g.insert("a", Tensor::new(&[3f32, 4.0], &Device::Cpu).unwrap());
    g.insert("b", Tensor::new(&[[12f32]], &Device::Cpu).unwrap());
    let total = (9.0f64 + 16.0 + 144.0).sqrt();
    assert_eq!(g.global_norm().unwrap(), total);

    let mut unclipped = g.clone();
    assert_eq!(unclipped.clip_norm(20.0).unwrap(), total);
    let a: Vec<f32> = unclipped.get("a").unwrap().to_vec1().unwrap();
    assert_eq!(a, [3.0, 4.0]);

    let norm = g.clip_norm(6.5).unwrap();
    assert_eq!(norm, total);
    let coef = 6.5 / (total + 1e-6);
    let a: Vec<f32> = g.get("a").unwrap().to_vec1().unwrap();
    let b: Vec<Vec<f32>> = g.get("b").unwrap().to_vec2().unwrap();
    check(
        &[a[0] as f64, a[1] as f64, b[0][0] as f64],
        &[3.0 * coef, 4.0 * coef, 12.0 * coef],
        1e-6,
    );
    assert!((g.global_norm().unwrap() - 6.5).abs() < 1e-5);
    assert!(g.clip_norm(0.0).is_err());
}

/// transformers' lambdas, as written in optimization.py.
fn hf_linear(step: f64, warmup: f64, total: f64) -> f64 {
    if step < warmup {
        return step / warmup.max(1.0);
    }
    ((total - step) / (total - warmup).max(1.0)).max(0.0)
}

fn hf_cosine(step: f64, warmup: f64, total: f64) -> f64 {
    if step < warmup {
        return step / warmup.max(1.0);
    }
    let progress = (step - warmup) / (total - warmup).max(1.0);
    (0.5 * (1.0 + (std::f64::consts::PI * 0.5 * 2.0 * progress).cos())).max(0.0)
}

#[test]
fn schedules_match_transformers_at_boundary_steps() {
    let (warmup, total) = (10usize, 50usize);
    let steps = [0, 1, 9, 10, 11, 30, 49, 50, 51];
    let linear = Schedule::linear(warmup, total);
    let cosine = Schedule::cosine(warmup, total);
    for step in steps {
        let (s, w, t) = (step as f64, warmup as f64, total as f64);
        assert_eq!(
            linear.lr_at(2e-3, step),
            2e-3 * hf_linear(s, w, t),
            "linear at {step}"
        );
        assert_eq!(
            cosine.lr_at(2e-3, step),
            2e-3 * hf_cosine(s, w, t),
            "cosine at {step}"
        );
    }
    // The landmarks the lesson states: 0 at the start, the peak after warm-up, half way down
    // at the middle of the decay, 0 at the end.
    assert_eq!(linear.factor(0), 0.0);
    assert_eq!(linear.factor(10), 1.0);
    assert_eq!(linear.factor(30), 0.5);
    assert_eq!(linear.factor(50), 0.0);
    assert_eq!(linear.factor(60), 0.0);
    assert_eq!(cosine.factor(10), 1.0);
    assert!((cosine.factor(30) - 0.5).abs() < 1e-15);
    assert!(cosine.factor(50).abs() < 1e-15);

    let constant = Schedule {
        decay: Decay::Constant,
        warmup_steps: 4,
        total_steps: 0,
    };
    assert_eq!(constant.factor(0), 0.0);
    assert_eq!(constant.factor(2), 0.5);
    assert_eq!(constant.factor(4), 1.0);
    assert_eq!(constant.factor(1000), 1.0);
    assert_eq!(Schedule::constant().factor(0), 1.0);
    // No warm-up: the first step already runs at the peak (max(1, 0) guards the division).
    assert_eq!(Schedule::linear(0, 10).factor(0), 1.0);
}
