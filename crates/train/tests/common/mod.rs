//! Toy problems for the training tests: a seeded regression data set, a linear model and a
//! two-layer MLP (97 parameters) whose weights live in a `VarMap`, and batch closures over them.

#![allow(dead_code)]

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use train::trainer::Forward;

pub const IN: usize = 4;
pub const HIDDEN: usize = 16;

/// `n` rows of x in [-1, 1)^4 and y = sin(x·a) + 0.5·x₀x₁ + noise: nonlinear, so the MLP has
/// something to learn beyond a plane.
pub fn dataset(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = [0.9f32, -1.3, 0.4, 2.0];
    let mut xs = Vec::with_capacity(n * IN);
    let mut ys = Vec::with_capacity(n);
    for _ in 0..n {
        let x: Vec<f32> = (0..IN).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dot: f32 = x.iter().zip(a).map(|(x, a)| x * a).sum();
        ys.push(dot.sin() + 0.5 * x[0] * x[1] + 0.01 * rng.random_range(-1.0f32..1.0));
        xs.extend(x);
    }
    (
        Tensor::from_vec(xs, (n, IN), &Device::Cpu).unwrap(),
        Tensor::from_vec(ys, (n, 1), &Device::Cpu).unwrap(),
    )
}

/// A `VarMap` holding the named shapes, filled from ChaCha8 (candle's own init draws from an
/// unseeded generator on CPU, so tests that compare runs make their weights here).
pub fn seeded_varmap(shapes: &[(&str, &[usize])], seed: u64) -> VarMap {
    let varmap = VarMap::new();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    {
        let mut data = varmap.data().lock().unwrap();
        for (name, shape) in shapes {
            let n: usize = shape.iter().product();
            let fan_in = *shape.last().unwrap() as f32;
            let bound = 1.0 / fan_in.sqrt();
            let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            let tensor = Tensor::from_vec(values, *shape, &Device::Cpu).unwrap();
            data.insert(name.to_string(), Var::from_tensor(&tensor).unwrap());
        }
    }
    varmap
}

pub fn mlp_varmap(seed: u64) -> VarMap {
    seeded_varmap(
        &[
            ("fc1.weight", &[HIDDEN, IN]),
            ("fc1.bias", &[HIDDEN]),
            ("fc2.weight", &[1, HIDDEN]),
            ("fc2.bias", &[1]),
        ],
        seed,
    )
}

pub fn linear_varmap(seed: u64) -> VarMap {
    seeded_varmap(&[("weight", &[1, IN]), ("bias", &[1])], seed)
}

fn var(varmap: &VarMap, name: &str) -> Tensor {
    varmap.data().lock().unwrap()[name].as_tensor().clone()
}

/// `x·Wᵀ + b` computed in `forward.dtype`.
fn affine(varmap: &VarMap, prefix: &str, xs: &Tensor, forward: Forward) -> train::Result<Tensor> {
    let name = |p: &str| {
        if prefix.is_empty() {
            p.to_string()
        } else {
            format!("{prefix}.{p}")
        }
    };
    let w = forward.cast(&var(varmap, &name("weight")))?;
    let b = forward.cast(&var(varmap, &name("bias")))?;
    Ok(xs.matmul(&w.t()?)?.broadcast_add(&b)?)
}

/// The MLP's predictions (n, 1).
pub fn mlp(varmap: &VarMap, xs: &Tensor, forward: Forward) -> train::Result<Tensor> {
    let xs = forward.cast(xs)?;
    let hidden = affine(varmap, "fc1", &xs, forward)?.relu()?;
    affine(varmap, "fc2", &hidden, forward)
}

pub fn linear(varmap: &VarMap, xs: &Tensor, forward: Forward) -> train::Result<Tensor> {
    affine(varmap, "", &forward.cast(xs)?, forward)
}

/// Mean squared error in the prediction's dtype.
pub fn mse(pred: &Tensor, ys: &Tensor) -> train::Result<Tensor> {
    let ys = ys.to_dtype(pred.dtype())?;
    Ok(pred.sub(&ys)?.sqr()?.mean_all()?)
}

/// Rows `start..start + len` of the data set, wrapping around.
pub fn rows(xs: &Tensor, ys: &Tensor, start: usize, len: usize) -> (Tensor, Tensor) {
    let n = xs.dim(0).unwrap();
    let ids: Vec<u32> = (start..start + len).map(|i| (i % n) as u32).collect();
    let ids = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap();
    (
        xs.index_select(&ids, 0).unwrap(),
        ys.index_select(&ids, 0).unwrap(),
    )
}

/// `len` rows drawn with replacement through the trainer's stream.
pub fn sample(xs: &Tensor, ys: &Tensor, len: usize, rng: &mut ChaCha8Rng) -> (Tensor, Tensor) {
    let n = xs.dim(0).unwrap();
    let ids: Vec<u32> = (0..len).map(|_| rng.random_range(0..n as u32)).collect();
    let ids = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap();
    (
        xs.index_select(&ids, 0).unwrap(),
        ys.index_select(&ids, 0).unwrap(),
    )
}

/// Every parameter's values, by name, for exact comparisons.
pub fn snapshot(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
    let data = varmap.data().lock().unwrap();
    let mut values: Vec<(String, Vec<f32>)> = data
        .iter()
        .map(|(name, var)| {
            (
                name.clone(),
                var.as_tensor()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap(),
            )
        })
        .collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    values
}

/// The largest absolute difference between two snapshots of the same parameters.
pub fn max_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|((na, va), (nb, vb))| {
            assert_eq!(na, nb);
            va.iter().zip(vb).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

/// Mean loss over the whole set, evaluation mode.
pub fn eval_loss(varmap: &VarMap, xs: &Tensor, ys: &Tensor) -> train::Result<f64> {
    let forward = Forward {
        train: false,
        dtype: DType::F32,
    };
    let loss = mse(&mlp(varmap, xs, forward)?, ys)?;
    Ok(loss.to_scalar::<f32>()? as f64)
}
