//! Lesson 04, neural-network basics: the perceptron, then a two-layer MLP whose forward and
//! backward passes are written by hand in ndarray, because backpropagation is the lesson.
//!
//! Every hand-written gradient here is tested against candle's autograd (the same network built
//! from `Var`s, `loss.backward()`) and against finite differences; the exercises' checkers use
//! those references too.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use ndarray::{Array1, Array2, Axis};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};

use crate::LessonResult;
use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::gaussian_matrix;

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "04-sigmoid-grad",
        lesson: "04-neural-networks",
        title: "Derivative of the sigmoid",
        task: "Return dσ/dx at x for the logistic sigmoid σ(x) = 1 / (1 + e^(−x)).",
        hint: "σ'(x) = σ(x)·(1 − σ(x)): evaluate σ at x first, then combine",
        template: "fn answer(x: f64) -> f64 {\n    todo!()\n}\n",
        checker: "lab::neural_networks::check_sigmoid_grad",
        self_test: || SelfTest {
            reference: check_sigmoid_grad(sigmoid_grad),
            wrong: check_sigmoid_grad(|x| sigmoid(x) * (1.0 - x)),
        },
    },
    Exercise {
        id: "04-softmax-cross-entropy-grad",
        lesson: "04-neural-networks",
        title: "Gradient of softmax cross-entropy",
        task: "Given logits (n×c, one row per example) and the correct class of each row, return the \
               gradient of the mean cross-entropy −(1/n)·Σᵢ log softmax(logitsᵢ)[labelᵢ] with respect \
               to the logits, an n×c matrix.",
        hint: "softmax each row (subtract the row's max first), subtract 1 at the label, divide by n",
        template: "use lab::*;\n\nfn answer(logits: &Array2<f64>, labels: &[usize]) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::neural_networks::check_softmax_cross_entropy_grad",
        self_test: || SelfTest {
            reference: check_softmax_cross_entropy_grad(softmax_cross_entropy_grad),
            wrong: check_softmax_cross_entropy_grad(|logits, labels| {
                softmax_cross_entropy_grad(logits, labels) * logits.nrows() as f64
            }),
        },
    },
    Exercise {
        id: "04-linear-backward",
        lesson: "04-neural-networks",
        title: "Backward pass of a linear layer",
        task: "A layer computes Y = X·W for X (n×i) and W (i×o). Given X, W and the upstream gradient \
               dY = ∂L/∂Y (n×o), return (dW, dX): ∂L/∂W (i×o) and ∂L/∂X (n×i).",
        hint: "each gradient has its variable's shape: dW = Xᵀ·dY and dX = dY·Wᵀ",
        template: "use lab::*;\n\nfn answer(x: &Array2<f64>, w: &Array2<f64>, dy: &Array2<f64>) -> (Array2<f64>, Array2<f64>) {\n    todo!()\n}\n",
        checker: "lab::neural_networks::check_linear_backward",
        self_test: || SelfTest {
            reference: check_linear_backward(linear_backward),
            wrong: check_linear_backward(|x, w, dy| (dy.t().dot(x), dy.dot(&w.t()))),
        },
    },
    Exercise {
        id: "04-parameter-count",
        lesson: "04-neural-networks",
        title: "Parameters of an MLP",
        task: "Return how many numbers an MLP with layer widths [w₀, w₁, …, w_L] learns: each layer \
               k maps w_(k−1) inputs to w_k outputs with a weight matrix and a bias.",
        hint: "layer k holds w_(k−1)·w_k weights plus w_k biases; fewer than two widths means no layer",
        template: "fn answer(widths: &[usize]) -> usize {\n    todo!()\n}\n",
        checker: "lab::neural_networks::check_parameter_count",
        self_test: || SelfTest {
            reference: check_parameter_count(mlp_parameter_count),
            wrong: check_parameter_count(|widths| widths.windows(2).map(|w| w[0] * w[1]).sum()),
        },
    },
];

// ---------------------------------------------------------------------------------------------
// The perceptron.

/// A linear threshold unit `sign(w·x + b)` and how many mistakes each training epoch made.
#[derive(Debug, Clone, PartialEq)]
pub struct Perceptron {
    pub w: Array1<f64>,
    pub b: f64,
    /// Mistakes per epoch; training stops after the first epoch with none.
    pub mistakes: Vec<usize>,
}

impl Perceptron {
    /// +1 or −1 for each row of `x` (0 counts as −1: the unit fires only above its threshold).
    pub fn predict(&self, x: &Array2<f64>) -> Vec<f64> {
        x.dot(&self.w)
            .iter()
            .map(|&a| if a + self.b > 0.0 { 1.0 } else { -1.0 })
            .collect()
    }

    /// Whether the last epoch made no mistake.
    pub fn converged(&self) -> bool {
        self.mistakes.last() == Some(&0)
    }
}

/// Rosenblatt's perceptron rule: visit the rows of `x` in order and, whenever `y_i (w·x_i + b) ≤ 0`,
/// add `y_i x_i` to `w` and `y_i` to `b`; at most `epochs` passes. Labels `y` are ±1.
///
/// On linearly separable data it stops after finitely many mistakes (Novikoff's theorem).
pub fn perceptron(x: &Array2<f64>, y: &[f64], epochs: usize) -> LessonResult<Perceptron> {
    if y.len() != x.nrows() {
        return Err(format!("{} labels for {} rows", y.len(), x.nrows()).into());
    }
    if let Some(bad) = y.iter().find(|&&label| label != 1.0 && label != -1.0) {
        return Err(format!("perceptron labels must be +1 or -1, got {bad}").into());
    }
    let mut w = Array1::zeros(x.ncols());
    let mut b = 0.0;
    let mut mistakes = Vec::new();
    for _ in 0..epochs {
        let mut wrong = 0;
        for (row, &label) in x.rows().into_iter().zip(y) {
            if label * (row.dot(&w) + b) <= 0.0 {
                w.scaled_add(label, &row);
                b += label;
                wrong += 1;
            }
        }
        mistakes.push(wrong);
        if wrong == 0 {
            break;
        }
    }
    Ok(Perceptron { w, b, mistakes })
}

// ---------------------------------------------------------------------------------------------
// Pieces of a network, each with its derivative.

/// The logistic sigmoid `1 / (1 + e^(−x))`, computed without overflow for large |x|.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `σ'(x) = σ(x)(1 − σ(x))`.
pub fn sigmoid_grad(x: f64) -> f64 {
    let s = sigmoid(x);
    s * (1.0 - s)
}

/// Row-wise softmax, each row shifted by its maximum first so `exp` never overflows.
pub fn softmax_rows(logits: &Array2<f64>) -> Array2<f64> {
    let mut probs = logits.clone();
    for mut row in probs.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row /= sum;
    }
    probs
}

/// Mean cross-entropy `−(1/n) Σᵢ log p[i, labelᵢ]` of row-wise probabilities.
pub fn cross_entropy(probs: &Array2<f64>, labels: &[usize]) -> f64 {
    let n = labels.len().max(1) as f64;
    -labels
        .iter()
        .enumerate()
        .map(|(i, &label)| probs[[i, label]].ln())
        .sum::<f64>()
        / n
}

/// The gradient of mean softmax cross-entropy with respect to the logits: `(softmax − one-hot)/n`.
/// Labels outside `0..c` contribute no one-hot entry.
pub fn softmax_cross_entropy_grad(logits: &Array2<f64>, labels: &[usize]) -> Array2<f64> {
    let n = logits.nrows().max(1) as f64;
    let mut grad = softmax_rows(logits);
    for (i, &label) in labels.iter().enumerate().take(logits.nrows()) {
        if label < logits.ncols() {
            grad[[i, label]] -= 1.0;
        }
    }
    grad / n
}

/// Backward pass of `Y = X·W`: given the upstream `dY`, returns `(dW, dX) = (Xᵀ·dY, dY·Wᵀ)`.
pub fn linear_backward(
    x: &Array2<f64>,
    w: &Array2<f64>,
    dy: &Array2<f64>,
) -> (Array2<f64>, Array2<f64>) {
    (x.t().dot(dy), dy.dot(&w.t()))
}

/// Parameters of an MLP with layer widths `[w₀, …, w_L]`: `Σ_k (w_(k−1)·w_k + w_k)`.
pub fn mlp_parameter_count(widths: &[usize]) -> usize {
    widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

/// The hidden layer's nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Tanh,
    /// `max(0, z)`; its derivative at exactly 0 is taken as 1, as candle's autograd does.
    Relu,
}

impl Activation {
    pub fn apply(self, z: &Array2<f64>) -> Array2<f64> {
        match self {
            Activation::Tanh => z.mapv(f64::tanh),
            Activation::Relu => z.mapv(|v| v.max(0.0)),
        }
    }

    /// The derivative at each entry of the pre-activation `z`.
    pub fn derivative(self, z: &Array2<f64>) -> Array2<f64> {
        match self {
            Activation::Tanh => z.mapv(|v| 1.0 - v.tanh().powi(2)),
            Activation::Relu => z.mapv(|v| if v >= 0.0 { 1.0 } else { 0.0 }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A two-layer MLP, forward and backward by hand.

/// `logits = act(x·W1 + b1)·W2 + b2`, classes by softmax. Weights are (fan-in × fan-out), so a
/// batch is one row per example.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    pub w1: Array2<f64>,
    pub b1: Array1<f64>,
    pub w2: Array2<f64>,
    pub b2: Array1<f64>,
    pub activation: Activation,
}

/// Everything the forward pass computes that the backward pass needs.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Hidden pre-activations `x·W1 + b1`.
    pub z1: Array2<f64>,
    /// Hidden activations `act(z1)`.
    pub h: Array2<f64>,
    pub logits: Array2<f64>,
    pub probs: Array2<f64>,
}

/// One gradient per parameter, shaped like it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    pub w1: Array2<f64>,
    pub b1: Array1<f64>,
    pub w2: Array2<f64>,
    pub b2: Array1<f64>,
}

impl Gradients {
    /// Entry `k` of block 0..4, in the order of [`Mlp`]'s parameters.
    fn entry(&mut self, block: usize, k: usize) -> Option<&mut f64> {
        match block {
            0 => self.w1.iter_mut().nth(k),
            1 => self.b1.iter_mut().nth(k),
            2 => self.w2.iter_mut().nth(k),
            _ => self.b2.iter_mut().nth(k),
        }
    }

    /// The largest absolute difference between two gradients, per parameter: `[w1, b1, w2, b2]`.
    pub fn max_abs_difference(&self, other: &Gradients) -> [f64; 4] {
        fn max_diff<'a>(
            a: impl IntoIterator<Item = &'a f64>,
            b: impl IntoIterator<Item = &'a f64>,
        ) -> f64 {
            a.into_iter()
                .zip(b)
                .fold(0.0, |m, (x, y)| m.max((x - y).abs()))
        }
        [
            max_diff(&self.w1, &other.w1),
            max_diff(&self.b1, &other.b1),
            max_diff(&self.w2, &other.w2),
            max_diff(&self.b2, &other.b2),
        ]
    }
}

impl Mlp {
    /// Weights drawn from N(0, 1/fan-in) (LeCun's scaling keeps activations near unit variance),
    /// biases zero; the same seed gives the same network.
    pub fn new(
        inputs: usize,
        hidden: usize,
        classes: usize,
        activation: Activation,
        seed: u64,
    ) -> Self {
        Self {
            w1: gaussian_matrix(inputs, hidden, seed) / (inputs.max(1) as f64).sqrt(),
            b1: Array1::zeros(hidden),
            w2: gaussian_matrix(hidden, classes, seed.wrapping_add(1))
                / (hidden.max(1) as f64).sqrt(),
            b2: Array1::zeros(classes),
            activation,
        }
    }

    /// Parameter `k` (in memory order) of block 0..4: `w1`, `b1`, `w2`, `b2`.
    fn entry(&mut self, block: usize, k: usize) -> Option<&mut f64> {
        match block {
            0 => self.w1.iter_mut().nth(k),
            1 => self.b1.iter_mut().nth(k),
            2 => self.w2.iter_mut().nth(k),
            _ => self.b2.iter_mut().nth(k),
        }
    }

    pub fn parameter_count(&self) -> usize {
        self.w1.len() + self.b1.len() + self.w2.len() + self.b2.len()
    }

    fn check_shapes(&self, x: &Array2<f64>) -> LessonResult<()> {
        let (inputs, hidden) = self.w1.dim();
        let classes = self.w2.ncols();
        if x.ncols() != inputs
            || self.b1.len() != hidden
            || self.w2.nrows() != hidden
            || self.b2.len() != classes
        {
            return Err(format!(
                "an MLP with W1 {:?}, b1 {}, W2 {:?}, b2 {} cannot take inputs with {} columns",
                self.w1.dim(),
                self.b1.len(),
                self.w2.dim(),
                self.b2.len(),
                x.ncols()
            )
            .into());
        }
        Ok(())
    }

    fn check_labels(&self, x: &Array2<f64>, labels: &[usize]) -> LessonResult<()> {
        if labels.len() != x.nrows() {
            return Err(format!("{} labels for {} rows", labels.len(), x.nrows()).into());
        }
        if let Some(bad) = labels.iter().find(|&&l| l >= self.w2.ncols()) {
            return Err(format!("label {bad} but only {} classes", self.w2.ncols()).into());
        }
        Ok(())
    }

    pub fn forward(&self, x: &Array2<f64>) -> LessonResult<Forward> {
        self.check_shapes(x)?;
        let z1 = x.dot(&self.w1) + &self.b1;
        let h = self.activation.apply(&z1);
        let logits = h.dot(&self.w2) + &self.b2;
        let probs = softmax_rows(&logits);
        Ok(Forward {
            z1,
            h,
            logits,
            probs,
        })
    }

    /// Mean cross-entropy on `(x, labels)`.
    pub fn loss(&self, x: &Array2<f64>, labels: &[usize]) -> LessonResult<f64> {
        self.check_labels(x, labels)?;
        Ok(cross_entropy(&self.forward(x)?.probs, labels))
    }

    /// The most probable class of each row.
    pub fn predict(&self, x: &Array2<f64>) -> LessonResult<Vec<usize>> {
        let forward = self.forward(x)?;
        Ok(forward
            .logits
            .rows()
            .into_iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |best, (j, &v)| {
                        if v > best.1 { (j, v) } else { best }
                    })
                    .0
            })
            .collect())
    }

    // ANCHOR: backward
    /// Backpropagation, by hand: the loss and the gradient of every parameter.
    ///
    /// ```text
    /// dlogits = (softmax − one-hot)/n
    /// dW2 = hᵀ·dlogits     db2 = Σ_rows dlogits     dh = dlogits·W2ᵀ
    /// dz1 = dh ⊙ act'(z1)
    /// dW1 = xᵀ·dz1         db1 = Σ_rows dz1
    /// ```
    pub fn backward(&self, x: &Array2<f64>, labels: &[usize]) -> LessonResult<(f64, Gradients)> {
        self.check_labels(x, labels)?;
        let forward = self.forward(x)?;
        let loss = cross_entropy(&forward.probs, labels);
        let dlogits = softmax_cross_entropy_grad(&forward.logits, labels);
        let (w2, dh) = linear_backward(&forward.h, &self.w2, &dlogits);
        let b2 = dlogits.sum_axis(Axis(0));
        let dz1 = dh * self.activation.derivative(&forward.z1);
        let (w1, _dx) = linear_backward(x, &self.w1, &dz1);
        let b1 = dz1.sum_axis(Axis(0));
        Ok((loss, Gradients { w1, b1, w2, b2 }))
    }
    // ANCHOR_END: backward

    /// One plain gradient-descent step: every parameter moves by `−learning_rate·gradient`.
    pub fn step(&mut self, gradients: &Gradients, learning_rate: f64) {
        self.w1.scaled_add(-learning_rate, &gradients.w1);
        self.b1.scaled_add(-learning_rate, &gradients.b1);
        self.w2.scaled_add(-learning_rate, &gradients.w2);
        self.b2.scaled_add(-learning_rate, &gradients.b2);
    }

    /// The same loss and gradients from candle's autograd: the network rebuilt from `Var`s, the
    /// loss by [`models::loss::cross_entropy`], then `loss.backward()`.
    pub fn candle_backward(
        &self,
        x: &Array2<f64>,
        labels: &[usize],
    ) -> LessonResult<(f64, Gradients)> {
        self.check_labels(x, labels)?;
        self.check_shapes(x)?;
        let device = Device::Cpu;
        let w1 = Var::from_tensor(&to_tensor(&self.w1)?)?;
        let b1 = Var::from_tensor(&Tensor::from_slice(
            &self.b1.to_vec(),
            self.b1.len(),
            &device,
        )?)?;
        let w2 = Var::from_tensor(&to_tensor(&self.w2)?)?;
        let b2 = Var::from_tensor(&Tensor::from_slice(
            &self.b2.to_vec(),
            self.b2.len(),
            &device,
        )?)?;
        let z1 = to_tensor(x)?.matmul(&w1)?.broadcast_add(&b1)?;
        let h = match self.activation {
            Activation::Tanh => z1.tanh()?,
            Activation::Relu => z1.relu()?,
        };
        let logits = h.matmul(&w2)?.broadcast_add(&b2)?;
        let loss = candle_cross_entropy(&logits, labels)?;
        let grads = loss.backward()?;
        let grad = |var: &Var| {
            grads
                .get(var.as_tensor())
                .cloned()
                .ok_or("candle computed no gradient for a parameter")
        };
        let vector = |t: Tensor| -> LessonResult<Array1<f64>> { Ok(Array1::from(t.to_vec1()?)) };
        Ok((
            loss.to_scalar::<f64>()?,
            Gradients {
                w1: to_array(&grad(&w1)?)?,
                b1: vector(grad(&b1)?)?,
                w2: to_array(&grad(&w2)?)?,
                b2: vector(grad(&b2)?)?,
            },
        ))
    }

    /// Central finite differences `(L(θ + ε) − L(θ − ε)) / 2ε` for every parameter, one at a time:
    /// slow (two forward passes per parameter) and approximate, but independent of any calculus.
    pub fn numerical_gradients(
        &self,
        x: &Array2<f64>,
        labels: &[usize],
        epsilon: f64,
    ) -> LessonResult<Gradients> {
        let mut probe = self.clone();
        let mut gradients = Gradients {
            w1: Array2::zeros(self.w1.dim()),
            b1: Array1::zeros(self.b1.len()),
            w2: Array2::zeros(self.w2.dim()),
            b2: Array1::zeros(self.b2.len()),
        };
        let sizes = [self.w1.len(), self.b1.len(), self.w2.len(), self.b2.len()];
        for (block, &size) in sizes.iter().enumerate() {
            for k in 0..size {
                let mut losses = [0.0; 2];
                for (side, shift) in [epsilon, -epsilon].into_iter().enumerate() {
                    if let Some(value) = probe.entry(block, k) {
                        *value += shift;
                    }
                    losses[side] = probe.loss(x, labels)?;
                    if let Some(value) = probe.entry(block, k) {
                        *value -= shift;
                    }
                }
                if let Some(derivative) = gradients.entry(block, k) {
                    *derivative = (losses[0] - losses[1]) / (2.0 * epsilon);
                }
            }
        }
        Ok(gradients)
    }
}

/// A matrix as an f64 candle tensor of the same shape.
pub fn to_tensor(a: &Array2<f64>) -> candle_core::Result<Tensor> {
    Tensor::from_vec(a.iter().copied().collect(), a.dim(), &Device::Cpu)
}

/// A 2-D candle tensor (any float dtype) as an f64 matrix.
pub fn to_array(t: &Tensor) -> LessonResult<Array2<f64>> {
    let (rows, cols) = t.dims2()?;
    let values = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    Ok(Array2::from_shape_vec((rows, cols), values)?)
}

/// Mean cross-entropy of (n, c) logits by [`models::loss::cross_entropy`], which takes a batch of
/// sequences: here one sequence of n positions.
fn candle_cross_entropy(logits: &Tensor, labels: &[usize]) -> LessonResult<Tensor> {
    let (n, c) = logits.dims2()?;
    let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let labels = Tensor::from_vec(labels, (1, n), logits.device())?;
    Ok(models::loss::cross_entropy(
        &logits.reshape((1, n, c))?,
        &labels,
    )?)
}

/// The gradient of mean cross-entropy with respect to the logits, by candle's autograd.
pub fn candle_logits_gradient(logits: &Array2<f64>, labels: &[usize]) -> LessonResult<Array2<f64>> {
    let logits_var = Var::from_tensor(&to_tensor(logits)?)?;
    let loss = candle_cross_entropy(logits_var.as_tensor(), labels)?;
    let grads = loss.backward()?;
    let grad = grads
        .get(logits_var.as_tensor())
        .ok_or("candle computed no gradient for the logits")?;
    to_array(grad)
}

/// `(dW, dX)` of `Y = X·W` for the upstream `dY`, by candle's autograd on `L = Σ Y ⊙ dY` (whose
/// gradient with respect to Y is exactly dY).
pub fn candle_linear_backward(
    x: &Array2<f64>,
    w: &Array2<f64>,
    dy: &Array2<f64>,
) -> LessonResult<(Array2<f64>, Array2<f64>)> {
    let x_var = Var::from_tensor(&to_tensor(x)?)?;
    let w_var = Var::from_tensor(&to_tensor(w)?)?;
    let y = x_var.matmul(&w_var)?;
    let loss = (y * to_tensor(dy)?)?.sum_all()?;
    let grads = loss.backward()?;
    let dw = grads.get(&w_var).ok_or("no gradient for W")?;
    let dx = grads.get(&x_var).ok_or("no gradient for X")?;
    Ok((to_array(dw)?, to_array(dx)?))
}

// ---------------------------------------------------------------------------------------------
// Data and training.

/// Two interleaving half circles ("moons", as scikit-learn's `make_moons` draws them) of
/// `n_per_class` points each, with seeded Gaussian noise of standard deviation `noise`.
/// Class 0 is the upper moon; rows alternate between the classes.
pub fn two_moons(n_per_class: usize, noise: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = exercise::rng(seed);
    let n = n_per_class;
    let mut x = Array2::zeros((2 * n, 2));
    let mut labels = Vec::with_capacity(2 * n);
    for i in 0..n {
        let t = std::f64::consts::PI * i as f64 / (n.max(2) - 1) as f64;
        for class in 0..2 {
            let (px, py) = if class == 0 {
                (t.cos(), t.sin())
            } else {
                (1.0 - t.cos(), 0.5 - t.sin())
            };
            let row = 2 * i + class;
            let ex: f64 = StandardNormal.sample(&mut rng);
            let ey: f64 = StandardNormal.sample(&mut rng);
            x[[row, 0]] = px + noise * ex;
            x[[row, 1]] = py + noise * ey;
            labels.push(class);
        }
    }
    (x, labels)
}

/// Mini-batch stochastic gradient descent's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub epochs: usize,
    /// Seeds the shuffle of each epoch.
    pub seed: u64,
}

/// Trains `mlp` in place: each epoch shuffles the rows, steps once per mini-batch on the batch's
/// hand-computed gradients, then records the loss on the whole set. Returns one loss per epoch.
pub fn train(
    mlp: &mut Mlp,
    x: &Array2<f64>,
    labels: &[usize],
    sgd: &Sgd,
) -> LessonResult<Vec<f64>> {
    if sgd.batch_size == 0 {
        return Err("the batch size must be at least 1".into());
    }
    mlp.check_labels(x, labels)?;
    let mut rng = exercise::rng(sgd.seed);
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    let mut losses = Vec::with_capacity(sgd.epochs);
    for _ in 0..sgd.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(sgd.batch_size) {
            let xb = x.select(Axis(0), batch);
            let yb: Vec<usize> = batch.iter().map(|&i| labels[i]).collect();
            let (_, gradients) = mlp.backward(&xb, &yb)?;
            mlp.step(&gradients, sgd.learning_rate);
        }
        losses.push(mlp.loss(x, labels)?);
    }
    Ok(losses)
}

/// The class-1 probability over a `resolution × resolution` grid spanning `x_range × y_range`,
/// row 0 at the top (largest y), as [`viz::Heatmap`] draws it.
pub fn probability_grid(
    mlp: &Mlp,
    x_range: (f64, f64),
    y_range: (f64, f64),
    resolution: usize,
) -> LessonResult<Array2<f64>> {
    let steps = resolution.max(2);
    let at = |(lo, hi): (f64, f64), k: usize| lo + (hi - lo) * k as f64 / (steps - 1) as f64;
    let points = Array2::from_shape_fn((steps * steps, 2), |(p, d)| {
        let (row, col) = (p / steps, p % steps);
        if d == 0 {
            at(x_range, col)
        } else {
            at(y_range, steps - 1 - row)
        }
    });
    let probs = mlp.forward(&points)?.probs;
    let class = 1.min(probs.ncols().saturating_sub(1));
    Ok(Array2::from_shape_fn((steps, steps), |(r, c)| {
        probs[[r * steps + c, class]]
    }))
}

/// The moons network the chapter and its figures train: 2 → 16 (tanh) → 2, 300 epochs.
pub fn train_moons() -> LessonResult<(Mlp, Vec<f64>, f64)> {
    let (x, labels) = two_moons(100, 0.15, 4);
    let mut mlp = Mlp::new(2, 16, 2, Activation::Tanh, 4);
    let sgd = Sgd {
        learning_rate: 0.2,
        batch_size: 16,
        epochs: 300,
        seed: 4,
    };
    let losses = train(&mut mlp, &x, &labels, &sgd)?;
    let accuracy = eval::classification::accuracy(&labels, &mlp.predict(&x)?)?;
    Ok((mlp, losses, accuracy))
}

/// The chapter's figures, drawn into `out` when the book is built.
pub fn figures(out: &Path) -> LessonResult<()> {
    let (mlp, losses, accuracy) = train_moons()?;
    let epochs: Vec<f64> = (1..=losses.len()).map(|e| e as f64).collect();
    viz::Plot::new(format!(
        "Two moons, 2-16-2 MLP: {:.0}% accuracy",
        100.0 * accuracy
    ))
    .x_label("epoch")
    .y_label("mean cross-entropy")
    .line("training loss", &epochs, &losses)
    .save(out.join("04-loss-curve.svg"))?;
    let grid = probability_grid(&mlp, (-1.5, 2.5), (-1.0, 1.5), 80)?;
    viz::Heatmap::new("P(lower moon) over the plane", grid.view())
        .x_label("x₁ from −1.5 to 2.5")
        .y_label("x₂ from −1 to 1.5")
        .range(0.0, 1.0)
        .save(out.join("04-decision-boundary.svg"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Checkers.

/// Checks `answer(x)` against [`sigmoid_grad`] (itself tested against candle's autograd).
pub fn check_sigmoid_grad(answer: impl Fn(f64) -> f64) -> Verdict {
    let mut rng = exercise::rng(41);
    let mut cases = vec![0.0, 1.0, -1.0, 4.0, -4.0, 20.0, -20.0];
    cases.extend((0..30).map(|_| rng.random_range(-8.0..8.0)));
    let exercise = &EXERCISES[0];
    Checker::new(exercise.id, exercise.hint, cases).run(
        |&x| answer(x),
        |&x, got| {
            let want = sigmoid_grad(x);
            // Absolute tolerance: σ' is at most 1/4, so a relative one would accept anything tiny.
            if got.is_finite() && (got - want).abs() <= 1e-9 {
                Ok(())
            } else {
                Err(format!(
                    "x = {x:.4}: you returned {got:.6e}, expected {want:.6e}"
                ))
            }
        },
    )
}

fn random_logits(rng: &mut impl Rng, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let (n, c) = (rng.random_range(1..9), rng.random_range(2..7));
    let logits = gaussian_matrix(n, c, seed) * rng.random_range(0.5..4.0);
    let labels = (0..n).map(|_| rng.random_range(0..c)).collect();
    (logits, labels)
}

/// Checks `answer(logits, labels)` against candle's autograd of [`models::loss::cross_entropy`].
pub fn check_softmax_cross_entropy_grad(
    answer: impl Fn(&Array2<f64>, &[usize]) -> Array2<f64>,
) -> Verdict {
    let mut rng = exercise::rng(42);
    let mut cases = vec![
        (
            ndarray::array![[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]],
            vec![2, 0],
        ),
        // Large logits: a softmax without the max shift overflows to NaN.
        (ndarray::array![[800.0, 0.0], [-5.0, 900.0]], vec![1, 1]),
    ];
    cases.extend((0..12).map(|seed| random_logits(&mut rng, 420 + seed)));
    let exercise = &EXERCISES[1];
    Checker::new(exercise.id, exercise.hint, cases).run(
        |(logits, labels)| answer(logits, labels),
        |(logits, labels), got| {
            let want = candle_logits_gradient(logits, labels).map_err(|e| e.to_string())?;
            let what = format!(
                "logits {}x{} with labels {labels:?}",
                logits.nrows(),
                logits.ncols()
            );
            exercise::close_arrays(&what, &got, &want, 1e-9)
        },
    )
}

/// Checks `answer(x, w, dy)` against candle's autograd of `Y = X·W`.
pub fn check_linear_backward(
    answer: impl Fn(&Array2<f64>, &Array2<f64>, &Array2<f64>) -> (Array2<f64>, Array2<f64>),
) -> Verdict {
    let mut rng = exercise::rng(43);
    let mut cases: Vec<(Array2<f64>, Array2<f64>, Array2<f64>)> = vec![(
        Array2::from_shape_fn((3, 3), |(i, j)| (i * 3 + j) as f64),
        Array2::eye(3),
        Array2::ones((3, 3)),
    )];
    for seed in 0..10 {
        let (n, i, o) = (
            rng.random_range(1..7),
            rng.random_range(1..7),
            rng.random_range(1..7),
        );
        cases.push((
            gaussian_matrix(n, i, 430 + seed),
            gaussian_matrix(i, o, 440 + seed),
            gaussian_matrix(n, o, 450 + seed),
        ));
    }
    let exercise = &EXERCISES[2];
    Checker::new(exercise.id, exercise.hint, cases).run(
        |(x, w, dy)| answer(x, w, dy),
        |(x, w, dy), (dw, dx)| {
            let (want_dw, want_dx) = candle_linear_backward(x, w, dy).map_err(|e| e.to_string())?;
            let shapes = format!("X {:?}, W {:?}, dY {:?}", x.dim(), w.dim(), dy.dim());
            exercise::close_arrays(&format!("dW for {shapes}"), &dw, &want_dw, 1e-9)?;
            exercise::close_arrays(&format!("dX for {shapes}"), &dx, &want_dx, 1e-9)
        },
    )
}

/// Checks `answer(widths)` against [`mlp_parameter_count`].
pub fn check_parameter_count(answer: impl Fn(&[usize]) -> usize) -> Verdict {
    let mut rng = exercise::rng(44);
    let mut cases: Vec<Vec<usize>> = vec![vec![], vec![5], vec![2, 16, 2], vec![784, 256, 10]];
    cases.extend((0..20).map(|_| {
        let depth = rng.random_range(2..6);
        (0..depth).map(|_| rng.random_range(1..300)).collect()
    }));
    let exercise = &EXERCISES[3];
    Checker::new(exercise.id, exercise.hint, cases).run(
        |widths| answer(widths),
        |widths, got| {
            exercise::equal(
                &format!("widths {widths:?}"),
                got,
                mlp_parameter_count(widths),
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::{Module, VarBuilder, VarMap};

    fn tiny(activation: Activation) -> (Mlp, Array2<f64>, Vec<usize>) {
        let mut mlp = Mlp::new(3, 5, 4, activation, 7);
        mlp.b1 = Array1::from_shape_fn(5, |i| 0.1 * i as f64 - 0.2);
        mlp.b2 = Array1::from_shape_fn(4, |i| 0.05 * i as f64);
        (mlp, gaussian_matrix(6, 3, 8), vec![0, 3, 1, 2, 3, 0])
    }

    #[test]
    fn hand_backprop_matches_candle_and_finite_differences() {
        for activation in [Activation::Tanh, Activation::Relu] {
            let (mlp, x, labels) = tiny(activation);
            let (loss, hand) = mlp.backward(&x, &labels).unwrap();
            let (candle_loss, autograd) = mlp.candle_backward(&x, &labels).unwrap();
            assert!((loss - candle_loss).abs() < 1e-12);
            for d in hand.max_abs_difference(&autograd) {
                assert!(d < 1e-12, "{activation:?}: {d}");
            }
            let numeric = mlp.numerical_gradients(&x, &labels, 1e-6).unwrap();
            for d in hand.max_abs_difference(&numeric) {
                assert!(d < 1e-7, "{activation:?}: {d}");
            }
        }
    }

    #[test]
    fn pieces_match_candle() {
        let logits = gaussian_matrix(5, 3, 1);
        let labels = [0, 2, 1, 1, 0];
        let want = candle_logits_gradient(&logits, &labels).unwrap();
        let got = softmax_cross_entropy_grad(&logits, &labels);
        assert!((got - want).iter().all(|d| d.abs() < 1e-12));
        let (x, w, dy) = (
            gaussian_matrix(4, 3, 2),
            gaussian_matrix(3, 2, 3),
            gaussian_matrix(4, 2, 4),
        );
        let (dw, dx) = linear_backward(&x, &w, &dy);
        let (want_dw, want_dx) = candle_linear_backward(&x, &w, &dy).unwrap();
        assert!((dw - want_dw).iter().all(|d| d.abs() < 1e-12));
        assert!((dx - want_dx).iter().all(|d| d.abs() < 1e-12));
        for x in [-30.0, -2.0, 0.0, 0.5, 30.0] {
            let var = Var::new(&[x], &Device::Cpu).unwrap();
            let s = candle_nn::ops::sigmoid(&var).unwrap().sum_all().unwrap();
            let g = s.backward().unwrap();
            let want = g.get(&var).unwrap().to_vec1::<f64>().unwrap()[0];
            assert!((sigmoid_grad(x) - want).abs() < 1e-15, "{x}");
        }
        assert!(
            softmax_rows(&ndarray::array![[1000.0, 0.0]])
                .iter()
                .all(|p| p.is_finite())
        );
    }

    #[test]
    fn parameter_count_matches_candle_nn_layers() {
        let widths = [7, 11, 5, 3];
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
        let layers: Vec<_> = widths
            .windows(2)
            .enumerate()
            .map(|(k, w)| candle_nn::linear(w[0], w[1], vb.pp(k.to_string())).unwrap())
            .collect();
        let mut xs = Tensor::zeros((1, 7), DType::F64, &Device::Cpu).unwrap();
        for layer in &layers {
            xs = layer.forward(&xs).unwrap();
        }
        let counted: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(mlp_parameter_count(&widths), counted);
        assert_eq!(
            Mlp::new(2, 16, 2, Activation::Tanh, 0).parameter_count(),
            mlp_parameter_count(&[2, 16, 2])
        );
    }

    #[test]
    fn perceptron_separates_separable_data_and_rejects_bad_labels() {
        let x = ndarray::array![[2.0, 1.0], [1.0, 3.0], [-1.0, -2.0], [-2.0, 0.5]];
        let y = [1.0, 1.0, -1.0, -1.0];
        let p = perceptron(&x, &y, 100).unwrap();
        assert!(p.converged());
        assert_eq!(p.predict(&x), y);
        assert!(perceptron(&x, &[1.0, 0.0, 1.0, 1.0], 3).is_err());
    }

    #[test]
    fn training_separates_the_moons() {
        let (_, losses, accuracy) = train_moons().unwrap();
        assert!(losses.last().unwrap() < &(losses[0] * 0.5));
        assert!(accuracy > 0.95, "{accuracy}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        let mlp = Mlp::new(2, 3, 2, Activation::Tanh, 0);
        assert!(mlp.forward(&Array2::zeros((1, 3))).is_err());
        assert!(mlp.backward(&Array2::zeros((2, 2)), &[0, 5]).is_err());
    }
}
