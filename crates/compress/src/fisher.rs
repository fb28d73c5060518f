//! Fisher information of each output row of a layer, for Fisher-weighted SVD ([`Method::Fisher`],
//! FWSVD, Hsu et al., "Language model compression with weighted low-rank factorization",
//! ICLR 2022).
//!
//! The Fisher information of a weight is estimated, as the paper does, by its squared gradient
//! summed over calibration batches, `F_ij = Σ_batches (∂L/∂W_ij)²`; FWSVD keeps only the row sums
//! `I_i = Σ_j F_ij` (one weight per output row, so the weighted problem still has a closed-form
//! solution: the truncated SVD of `diag(√I)·W`, see [`crate::method`]).
//!
//! Gradients need candle's autograd, so the model must be built over a [`VarMap`] (as the trainer
//! builds it): [`fisher_importance`] runs the caller's loss on each batch, calls `backward`, and
//! reads the gradient of each layer's weight variable, `{layer}.weight` in the map (or the one
//! key ending in `.{layer}.weight`, so BART's `model.` prefix needs no spelling out). A saved
//! model is read into a `VarMap` by building it over an empty map and then
//! `varmap.load("model.safetensors")`. Nothing is trained: the weights are only read.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{Init, VarMap};
//!
//! let varmap = VarMap::new();
//! let w = varmap.get((2, 3), "proj.weight", Init::Const(1.0), DType::F32, &Device::Cpu)?;
//! // L = Σ c_ij·W_ij, so ∂L/∂W = c and each batch adds Σ_j c_ij² to row i.
//! let c = Tensor::new(&[[1f32, 2., 2.], [0., 0., 2.]], &Device::Cpu)?;
//! let fisher = compress::fisher_importance(&varmap, &["proj"], 0..2, |_batch| {
//!     Ok((&w * &c)?.sum_all()?)
//! })?;
//! let proj = fisher.get("proj").unwrap();
//! assert_eq!(proj.row_importance, vec![18.0, 8.0]);
//! assert_eq!((proj.in_dim, proj.batches), (3, 2));
//! # Ok::<(), compress::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use lowrank::ndarray::{Array1, Axis};
use lowrank::svd::frobenius_norm;
use models::{Linear, Linears};

use crate::error::{Error, Result};
use crate::method::{Gathered, LayerStats, Method, Statistics};
use crate::plan::Plan;
use crate::surgery::{self, Report};
use crate::svd::{Decomposition, check_rank, to_array};

/// One layer's Fisher information, summed over output rows' entries and calibration batches.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerFisher {
    /// Input features of the layer (columns of `W`).
    pub in_dim: usize,
    /// Per output row `i`, `I_i = Σ_batches Σ_j (∂L/∂W_ij)²` (length: the layer's outputs).
    pub row_importance: Vec<f64>,
    /// How many batches the sums run over.
    pub batches: usize,
}

/// Per layer (by checkpoint name), the Fisher row importances over the calibration batches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FisherStats {
    layers: BTreeMap<String, LayerFisher>,
}

impl FisherStats {
    /// Importances gathered elsewhere (another framework, or saved ones).
    pub fn from_layers(layers: impl IntoIterator<Item = (String, LayerFisher)>) -> Self {
        Self {
            layers: layers.into_iter().collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&LayerFisher> {
        self.layers.get(name)
    }

    /// The layers with importances, by name.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &LayerFisher)> {
        self.layers
            .iter()
            .map(|(name, fisher)| (name.as_str(), fisher))
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    pub(crate) fn stats(&self, name: &str) -> Result<&LayerFisher> {
        self.layers.get(name).ok_or_else(|| {
            Error::Calibration {
                reason: "no Fisher statistics for this layer; gather them for the layers the plan \
                         that compresses selects (plan.resolve)"
                    .into(),
            }
            .in_layer(name)
        })
    }
}

/// Sums the squared gradients of `loss` over `batches` for the weight of each layer in `layers`
/// (checkpoint names, e.g. from [`Plan::resolve`]), row by row, in f64.
///
/// `loss` runs the model on one batch and returns a scalar (e.g. `models::loss::cross_entropy`
/// of the logits); every layer's weight variable must be in `varmap` and reached by every loss.
/// Errors name the layer: one not in the map (or matched by several keys), a loss that does not
/// depend on it, a NaN or infinite gradient; and no batches at all.
pub fn fisher_importance<S, B, I, F>(
    varmap: &VarMap,
    layers: &[S],
    batches: I,
    mut loss: F,
) -> Result<FisherStats>
where
    S: AsRef<str>,
    I: IntoIterator<Item = B>,
    F: FnMut(B) -> Result<Tensor>,
{
    if layers.is_empty() {
        return Err(Error::Calibration {
            reason: "no layers to gather Fisher information for".into(),
        });
    }
    let mut sums = Vec::with_capacity(layers.len());
    {
        let vars = varmap.data().lock().map_err(|_| Error::Calibration {
            reason: "the VarMap's lock is poisoned (a thread panicked while holding it)".into(),
        })?;
        for name in layers {
            let name = name.as_ref();
            let (key, var) = weight_var(&vars, name).map_err(|e| e.in_layer(name))?;
            let (out_dim, in_dim) = var.dims2().map_err(|_| {
                Error::Calibration {
                    reason: format!("{key} has shape {:?}, not a matrix", var.dims()),
                }
                .in_layer(name)
            })?;
            sums.push(Sum {
                name: name.to_string(),
                key,
                var,
                in_dim,
                rows: Array1::zeros(out_dim),
            });
        }
    }
    let mut n_batches = 0;
    for (batch_idx, batch) in batches.into_iter().enumerate() {
        let value = loss(batch)?;
        if value.elem_count() != 1 {
            return Err(Error::Calibration {
                reason: format!(
                    "the loss of batch {batch_idx} has shape {:?}; it must be a scalar",
                    value.dims()
                ),
            });
        }
        let grads = value.backward()?;
        for sum in &mut sums {
            let grad = grads.get(sum.var.as_tensor()).ok_or_else(|| {
                Error::Calibration {
                    reason: format!(
                        "the loss of batch {batch_idx} does not depend on {}: no gradient reached \
                         it (is the model built over this VarMap, and does the loss run through \
                         the layer?)",
                        sum.key
                    ),
                }
                .in_layer(&sum.name)
            })?;
            let rows: Vec<f64> = grad
                .to_dtype(DType::F64)?
                .sqr()?
                .sum(1)?
                .to_device(&candle_core::Device::Cpu)?
                .to_vec1()?;
            if !rows.iter().all(|r| r.is_finite()) {
                return Err(Error::Calibration {
                    reason: format!(
                        "the gradient of {} in batch {batch_idx} holds NaN or infinity",
                        sum.key
                    ),
                }
                .in_layer(&sum.name));
            }
            sum.rows += &Array1::from(rows);
        }
        n_batches += 1;
    }
    if n_batches == 0 {
        return Err(Error::Calibration {
            reason: "no batches: the Fisher information is a sum over calibration batches".into(),
        });
    }
    Ok(FisherStats::from_layers(sums.into_iter().map(|sum| {
        let fisher = LayerFisher {
            in_dim: sum.in_dim,
            row_importance: sum.rows.to_vec(),
            batches: n_batches,
        };
        (sum.name, fisher)
    })))
}

/// One layer's running sums.
struct Sum {
    name: String,
    key: String,
    var: Var,
    in_dim: usize,
    rows: Array1<f64>,
}

/// The variable `{name}.weight`, or the only one whose key ends in `.{name}.weight`.
fn weight_var(vars: &HashMap<String, Var>, name: &str) -> Result<(String, Var)> {
    let key = format!("{name}.weight");
    if let Some(var) = vars.get(&key) {
        return Ok((key, var.clone()));
    }
    let suffix = format!(".{key}");
    let mut found: Vec<&String> = vars.keys().filter(|k| k.ends_with(&suffix)).collect();
    found.sort();
    match found.as_slice() {
        [one] => Ok(((*one).clone(), vars[*one].clone())),
        [] => {
            let mut keys: Vec<&String> = vars.keys().filter(|k| k.ends_with(".weight")).collect();
            keys.sort();
            let examples: Vec<&str> = keys.iter().take(3).map(|k| k.as_str()).collect();
            Err(Error::Calibration {
                reason: format!(
                    "the VarMap has no variable {key} (nor one ending in .{key}); it holds {} \
                     weights, e.g. {}",
                    keys.len(),
                    if examples.is_empty() {
                        "none".to_string()
                    } else {
                        examples.join(", ")
                    }
                ),
            })
        }
        several => Err(Error::Calibration {
            reason: format!(
                "{key} is ambiguous in the VarMap ({}); name the layer by its full key without \
                 .weight",
                several
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// As [`crate::compress_model_calibrated`], with the Fisher importances of (at least) the layers
/// `plan` selects: for [`Method::Fisher`], and plain SVD (which reads none); refuses the
/// activation-aware methods. The report has no output error (there are no activations to
/// measure it on); [`fisher_weighted_error`] gives the error FWSVD minimizes.
pub fn compress_model_fisher<M: Linears + ?Sized>(
    model: &mut M,
    plan: &Plan,
    fisher: &FisherStats,
) -> Result<Report> {
    if plan.method().statistics() == Statistics::Activations {
        return Err(Error::Calibration {
            reason: plan.method().calibration_hint(),
        });
    }
    surgery::compress(model, plan, Some(Gathered::Gradients(fisher)))
}

/// The rank-`rank` FWSVD factorization of a dense layer, bias kept: the truncated SVD of
/// `diag(√I)·W`, the left factor mapped back by `diag(1/√I)`. The factors have
/// [`crate::factorize_svd`]'s form (`u` out×r, `v` r×in).
pub fn factorize_fisher(layer: &Linear, rank: usize, fisher: &LayerFisher) -> Result<Linear> {
    check_rank(rank, layer.in_dim(), layer.out_dim())?;
    Ok(
        Decomposition::with_method(layer, Method::Fisher, Some(LayerStats::Gradients(fisher)))?
            .factorize(rank)?
            .layer,
    )
}

/// `‖diag(√I)·(A − B)‖_F / ‖diag(√I)·A‖_F`: how far layer `B`'s effective weight is from layer
/// `A`'s with each output row weighted by its Fisher information, the error FWSVD minimizes
/// (0 when `diag(√I)·A` is zero).
pub fn fisher_weighted_error(
    original: &Linear,
    approximation: &Linear,
    fisher: &LayerFisher,
) -> Result<f64> {
    let a = to_array(&original.effective_weight()?)?;
    let b = to_array(&approximation.effective_weight()?)?;
    if !fisher
        .row_importance
        .iter()
        .all(|i| i.is_finite() && *i >= 0.0)
    {
        return Err(Error::Calibration {
            reason: "the Fisher importances hold NaN, infinity or a negative number".into(),
        });
    }
    if a.dim() != b.dim() || a.nrows() != fisher.row_importance.len() {
        return Err(Error::Math(lowrank::Error::ShapeMismatch {
            op: "Fisher-weighted error".into(),
            left: a.shape().to_vec(),
            right: vec![fisher.row_importance.len(), b.ncols()],
        }));
    }
    let weights: Array1<f64> = fisher.row_importance.iter().map(|i| i.sqrt()).collect();
    let weights = weights.insert_axis(Axis(1));
    let reference = frobenius_norm((&a * &weights).view());
    let residual = frobenius_norm(((&a - &b) * &weights).view());
    Ok(if reference == 0.0 {
        0.0
    } else {
        residual / reference
    })
}
