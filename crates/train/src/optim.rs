//! Optimizers with PyTorch's update rules (AdamW, SGD with momentum), gradients keyed by parameter
//! name, and torch's `clip_grad_norm_`.
//!
//! candle-nn has an `AdamW` too, but its moments are private, so a checkpoint could not save
//! them; here every piece of state (step, `exp_avg`, `exp_avg_sq`, `momentum_buffer`) lives under
//! the parameter's `VarMap` name, as torch's `optimizer.state_dict()` keeps it per parameter.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};

/// The float parameters of a `VarMap`, sorted by name, so every walk over them (optimizer step,
/// checkpoint, gradient norm) visits them in the same order whatever the hash map does.
pub fn named_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap.data().lock().map_err(|_| Error::Poisoned)?;
    let mut vars: Vec<(String, Var)> = data
        .iter()
        .filter(|(_, var)| var.dtype().is_float())
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

/// Gradients by parameter name: what one or several `backward` calls left for each `Var`.
///
/// candle's `GradStore` is keyed by tensor id and made afresh by each `backward`; accumulation
/// over micro-batches, clipping and the optimizer need one map that outlives them.
#[derive(Debug, Clone, Default)]
pub struct Gradients {
    grads: BTreeMap<String, Tensor>,
}

impl Gradients {
    /// No gradients yet: the start of an accumulation.
    pub fn new() -> Self {
        Self::default()
    }

    /// The gradients one `backward` produced for `params`; parameters the loss did not reach have
    /// none, and the optimizer skips them as torch skips a `None` grad.
    pub fn from_store(store: &GradStore, params: &[(String, Var)]) -> Self {
        let mut grads = Self::new();
        for (name, var) in params {
            if let Some(grad) = store.get(var.as_tensor()) {
                grads.grads.insert(name.clone(), grad.detach());
            }
        }
        grads
    }

    /// Adds another `backward`'s gradients into these, parameter by parameter: gradient
    /// accumulation, the sum torch gets by calling `backward` k times before `step`.
    pub fn accumulate(&mut self, store: &GradStore, params: &[(String, Var)]) -> Result<()> {
        for (name, var) in params {
            let Some(grad) = store.get(var.as_tensor()) else {
                continue;
            };
            let sum = match self.grads.get(name) {
                Some(previous) => (previous + grad)?,
                None => grad.detach(),
            };
            self.grads.insert(name.clone(), sum);
        }
        Ok(())
    }

    /// The gradient of parameter `name`, if the loss reached it.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.grads.get(name)
    }

    /// Sets a gradient by hand: for lessons that compute one analytically, and for tests.
    pub fn insert(&mut self, name: impl Into<String>, grad: Tensor) {
        self.grads.insert(name.into(), grad);
    }

    /// How many parameters have a gradient.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// True when no parameter has a gradient (the loss reached none of them).
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// (name, gradient) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.grads.iter().map(|(name, grad)| (name.as_str(), grad))
    }

    /// Multiplies every gradient by `factor` (1/tokens after accumulation, the clip coefficient).
    pub fn scale(&mut self, factor: f64) -> Result<()> {
        for grad in self.grads.values_mut() {
            *grad = grad.affine(factor, 0.0)?;
        }
        Ok(())
    }

    /// The 2-norm of all gradients taken as one vector, computed in f32 as torch does for f32
    /// gradients; 0 when there are none.
    pub fn global_norm(&self) -> Result<f64> {
        let squares = self
            .grads
            .values()
            .map(|grad| grad.to_dtype(DType::F32)?.sqr()?.sum_all())
            .collect::<candle_core::Result<Vec<_>>>()?;
        if squares.is_empty() {
            return Ok(0.0);
        }
        // One stack, one read back: a device sync per parameter would cost more than the sums.
        let total = Tensor::stack(&squares, 0)?.sum_all()?.sqrt()?;
        Ok(total.to_scalar::<f32>()? as f64)
    }

    /// torch's `clip_grad_norm_(params, max_norm)`: when the global norm exceeds `max_norm`,
    /// scales every gradient by `max_norm / (norm + 1e-6)`. Returns the norm before clipping,
    /// the number worth logging (a rising norm warns of divergence before the loss does).
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use train::optim::Gradients;
    /// let mut grads = Gradients::new();
    /// grads.insert("w", Tensor::new(&[3f32, 4.0], &Device::Cpu)?);
    /// let norm = grads.clip_norm(1.0)?;
    /// assert_eq!(norm, 5.0);
    /// let clipped: Vec<f32> = grads.get("w").unwrap().to_vec1()?;
    /// assert!((clipped[0] - 0.6).abs() < 1e-6 && (clipped[1] - 0.8).abs() < 1e-6);
    /// # Ok::<(), train::Error>(())
    /// ```
    pub fn clip_norm(&mut self, max_norm: f64) -> Result<f64> {
        if !(max_norm > 0.0 && max_norm.is_finite()) {
            return Err(invalid(format!(
                "max_grad_norm {max_norm} must be a positive number"
            )));
        }
        let total_norm = self.global_norm()?;
        let clip_coef = max_norm / (total_norm + 1e-6);
        if clip_coef < 1.0 {
            self.scale(clip_coef)?;
        }
        Ok(total_norm)
    }
}

/// torch.optim.AdamW's hyper-parameters, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// Base learning rate (a schedule multiplies it).
    pub lr: f64,
    /// Decay of the first moment, the running mean of gradients (torch's `betas[0]`).
    pub beta1: f64,
    /// Decay of the second moment, the running mean of squared gradients (`betas[1]`).
    pub beta2: f64,
    /// Added to the root of the second moment, so a parameter with tiny gradients does not
    /// take huge steps.
    pub eps: f64,
    /// Decoupled decay: each step shrinks parameters by `lr·weight_decay` of themselves,
    /// independently of the gradient (Loshchilov and Hutter 2019).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// torch.optim.SGD's hyper-parameters (dampening 0): plain gradient descent when `momentum` is 0,
/// heavy ball otherwise, Nesterov's look-ahead when `nesterov` is set. `weight_decay` is L2 added
/// to the gradient (coupled), as torch's SGD does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Base learning rate (a schedule multiplies it).
    pub lr: f64,
    /// How much of the previous step the next one keeps (0 for plain SGD, 0.9 usually).
    pub momentum: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Step along the gradient at the look-ahead point (needs momentum).
    pub nesterov: bool,
}

impl SgdConfig {
    /// Plain gradient descent at `lr`: no momentum, no decay.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// Which optimizer, with its settings; serialized into a checkpoint's `trainer_state.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// torch.optim.AdamW.
    #[serde(rename = "adamw")]
    AdamW(AdamWConfig),
    /// torch.optim.SGD.
    Sgd(SgdConfig),
}

impl OptimizerConfig {
    /// The base learning rate, the one a schedule multiplies.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::AdamW(c) => c.lr,
            OptimizerConfig::Sgd(c) => c.lr,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str, value: f64| {
            Err(Error::Config(format!(
                "{what} is {value}; it must be a finite number in range"
            )))
        };
        let lr = self.lr();
        if !(lr >= 0.0 && lr.is_finite()) {
            return bad("learning rate", lr);
        }
        match self {
            OptimizerConfig::AdamW(c) => {
                if !(0.0..1.0).contains(&c.beta1) {
                    return bad("beta1 (must be in [0, 1))", c.beta1);
                }
                if !(0.0..1.0).contains(&c.beta2) {
                    return bad("beta2 (must be in [0, 1))", c.beta2);
                }
                if !(c.eps > 0.0 && c.eps.is_finite()) {
                    return bad("eps (must be > 0)", c.eps);
                }
                if !(c.weight_decay >= 0.0 && c.weight_decay.is_finite()) {
                    return bad("weight_decay (must be >= 0)", c.weight_decay);
                }
            }
            OptimizerConfig::Sgd(c) => {
                if !(c.momentum >= 0.0 && c.momentum.is_finite()) {
                    return bad("momentum (must be >= 0)", c.momentum);
                }
                if !(c.weight_decay >= 0.0 && c.weight_decay.is_finite()) {
                    return bad("weight_decay (must be >= 0)", c.weight_decay);
                }
                if c.nesterov && c.momentum == 0.0 {
                    return Err(Error::Config(
                        "nesterov needs a momentum above 0, as in torch".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The state tensors each parameter carries, by their torch names.
    fn buffer_names(&self) -> &'static [&'static str] {
        match self {
            OptimizerConfig::AdamW(_) => &["exp_avg", "exp_avg_sq"],
            OptimizerConfig::Sgd(c) if c.momentum > 0.0 => &["momentum_buffer"],
            OptimizerConfig::Sgd(_) => &[],
        }
    }
}

/// One parameter's optimizer state. `step` is per parameter, as in torch, because a parameter
/// that got no gradient is skipped and its bias correction must not advance.
#[derive(Debug, Clone)]
struct ParamState {
    name: String,
    var: Var,
    step: u64,
    /// In `buffer_names` order, shaped and typed like the parameter, zeros at first (torch's
    /// lazily made zeros, made eagerly so a checkpoint always has every key).
    buffers: Vec<Tensor>,
}

/// AdamW or SGD over named `Var`s, with state a checkpoint can save and restore.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    lr: f64,
    params: Vec<ParamState>,
}

impl Optimizer {
    /// An optimizer over `params` (name, var); the learning rate starts at the config's.
    pub fn new(config: OptimizerConfig, params: &[(String, Var)]) -> Result<Self> {
        config.validate()?;
        let params = params
            .iter()
            .map(|(name, var)| {
                let buffers = config
                    .buffer_names()
                    .iter()
                    .map(|_| var.as_tensor().zeros_like())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Ok(ParamState {
                    name: name.clone(),
                    var: var.clone(),
                    step: 0,
                    buffers,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            lr: config.lr(),
            params,
        })
    }

    /// An optimizer over every float variable of `varmap`.
    pub fn from_varmap(config: OptimizerConfig, varmap: &VarMap) -> Result<Self> {
        Self::new(config, &named_vars(varmap)?)
    }

    /// The settings it was built with (the base learning rate among them).
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The learning rate the next `step` uses.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// What a schedule calls before each step (torch's `param_group["lr"] = ...`).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Updates every parameter that has a gradient in `grads`, by torch's formulas:
    ///
    /// AdamW: `p ← p·(1 − lr·wd)`, `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
    /// `p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`: decoupled decay, bias correction, ε outside
    /// the root.
    ///
    /// SGD: `g ← g + wd·p`, `b ← μ·b + g` (the first `b` is `g`), `p ← p − lr·(g + μ·b)` with
    /// Nesterov, else `p ← p − lr·b`.
    pub fn step(&mut self, grads: &Gradients) -> Result<()> {
        let lr = self.lr;
        for state in self.params.iter_mut() {
            let Some(grad) = grads.get(&state.name) else {
                continue;
            };
            let param = state.var.as_tensor().detach();
            if grad.dims() != param.dims() {
                return Err(invalid(format!(
                    "gradient for {} has shape {:?}, the parameter {:?}",
                    state.name,
                    grad.dims(),
                    param.dims()
                )));
            }
            let grad = grad.to_dtype(param.dtype())?;
            state.step += 1;
            let updated = match self.config {
                OptimizerConfig::AdamW(c) => {
                    let t = state.step as i32;
                    let param = if c.weight_decay != 0.0 {
                        param.affine(1.0 - lr * c.weight_decay, 0.0)?
                    } else {
                        param
                    };
                    let exp_avg = (state.buffers[0].affine(c.beta1, 0.0)?
                        + grad.affine(1.0 - c.beta1, 0.0)?)?;
                    let exp_avg_sq = (state.buffers[1].affine(c.beta2, 0.0)?
                        + grad.sqr()?.affine(1.0 - c.beta2, 0.0)?)?;
                    let bias_correction1 = 1.0 - c.beta1.powi(t);
                    let bias_correction2 = 1.0 - c.beta2.powi(t);
                    let step_size = lr / bias_correction1;
                    let denom = ((exp_avg_sq.sqrt()? / bias_correction2.sqrt())? + c.eps)?;
                    let updated = (param - (exp_avg.div(&denom)? * step_size)?)?;
                    state.buffers = vec![exp_avg, exp_avg_sq];
                    updated
                }
                OptimizerConfig::Sgd(c) => {
                    let grad = if c.weight_decay != 0.0 {
                        (&grad + param.affine(c.weight_decay, 0.0)?)?
                    } else {
                        grad
                    };
                    let direction = if c.momentum > 0.0 {
                        // Zeros at the first step make μ·0 + g = g, torch's first buffer.
                        let buffer = (state.buffers[0].affine(c.momentum, 0.0)? + &grad)?;
                        let direction = if c.nesterov {
                            (&grad + buffer.affine(c.momentum, 0.0)?)?
                        } else {
                            buffer.clone()
                        };
                        state.buffers = vec![buffer];
                        direction
                    } else {
                        grad
                    };
                    (param - direction.affine(lr, 0.0)?)?
                }
            };
            state.var.set(&updated)?;
        }
        Ok(())
    }

    /// The state as named tensors, `{param}.step` (i64 scalar) and `{param}.{buffer}`: what
    /// `optimizer.safetensors` holds.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let names = self.config.buffer_names();
        let mut tensors = Vec::with_capacity(self.params.len() * (names.len() + 1));
        for state in &self.params {
            let device = state.var.device();
            tensors.push((
                format!("{}.step", state.name),
                Tensor::new(state.step as i64, device)?,
            ));
            for (buffer_name, buffer) in names.iter().zip(&state.buffers) {
                tensors.push((format!("{}.{buffer_name}", state.name), buffer.clone()));
            }
        }
        Ok(tensors)
    }

    /// Restores what `state_tensors` saved. Every key must be there with the parameter's shape
    /// and no other key may be; `source` names the file in the error.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, source: &Path) -> Result<()> {
        let mismatch = |message: String| Error::Mismatch {
            path: source.to_path_buf(),
            message,
        };
        let names = self.config.buffer_names();
        let mut expected = std::collections::HashSet::new();
        let mut restored = Vec::with_capacity(self.params.len());
        for state in &self.params {
            let key = format!("{}.step", state.name);
            let step = tensors.get(&key).ok_or_else(|| {
                mismatch(format!(
                    "no optimizer state {key} for parameter {} (was it saved with another model or optimizer?)",
                    state.name
                ))
            })?;
            let step = step
                .to_dtype(DType::I64)?
                .to_scalar::<i64>()
                .map_err(|e| mismatch(format!("{key} is not a scalar step count: {e}")))?;
            let step =
                u64::try_from(step).map_err(|_| mismatch(format!("{key} is negative ({step})")))?;
            expected.insert(key);
            let mut buffers = Vec::with_capacity(names.len());
            for buffer_name in names {
                let key = format!("{}.{buffer_name}", state.name);
                let tensor = tensors.get(&key).ok_or_else(|| {
                    mismatch(format!(
                        "no optimizer state {key} for parameter {} ({} keeps {})",
                        state.name,
                        self.config_name(),
                        names.join(", ")
                    ))
                })?;
                if tensor.dims() != state.var.dims() {
                    return Err(mismatch(format!(
                        "optimizer state {key} has shape {:?} but parameter {} has {:?}",
                        tensor.dims(),
                        state.name,
                        state.var.dims()
                    )));
                }
                buffers.push(
                    tensor
                        .to_device(state.var.device())?
                        .to_dtype(state.var.dtype())?,
                );
                expected.insert(key);
            }
            restored.push((step, buffers));
        }
        let mut extra: Vec<&String> = tensors.keys().filter(|k| !expected.contains(*k)).collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(mismatch(format!(
                "optimizer state {} belongs to no parameter of this model",
                extra
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for (state, (step, buffers)) in self.params.iter_mut().zip(restored) {
            state.step = step;
            state.buffers = buffers;
        }
        Ok(())
    }

    fn config_name(&self) -> &'static str {
        match self.config {
            OptimizerConfig::AdamW(_) => "AdamW",
            OptimizerConfig::Sgd(_) => "SGD with momentum",
        }
    }
}
