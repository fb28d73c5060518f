//! Calibration: the statistics of each selected layer's inputs over a few forward passes, for the
//! activation-aware methods ([`crate::Method::Asvd`], [`crate::Method::Whitened`]).
//!
//! The models have no hooks, so [`calibrate`] puts an [`ActivationTap`] on each selected dense
//! layer (the one field `models::linear::Dense` keeps for this), lets the caller run whatever
//! forward passes it likes, then takes the taps off, even if the passes fail or panic. A layer
//! records every row it is given, padding included: run unpadded batches (one text at a time) so
//! padding positions do not weigh in.

use std::collections::BTreeMap;

use lowrank::ndarray::Array2;
use models::linear::{ActivationStats, ActivationTap};
use models::{Linear, Linears, linear};

use crate::error::{Error, Result};
use crate::method::{gram, weighted_square_norm};
use crate::plan::Plan;
use crate::svd::to_array;

/// Per layer (by checkpoint name), the statistics of its inputs over the calibration passes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    layers: BTreeMap<String, ActivationStats>,
}

impl Calibration {
    /// Statistics gathered elsewhere (one [`ActivationTap`] per layer, or saved ones).
    pub fn from_stats(layers: impl IntoIterator<Item = (String, ActivationStats)>) -> Self {
        Self {
            layers: layers.into_iter().collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&ActivationStats> {
        self.layers.get(name)
    }

    /// The calibrated layers, by name.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &ActivationStats)> {
        self.layers
            .iter()
            .map(|(name, stats)| (name.as_str(), stats))
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// `XᵀX` of one layer as an (in×in) array.
    pub fn gram(&self, name: &str) -> Result<Array2<f64>> {
        gram(self.stats(name)?)
    }

    pub(crate) fn stats(&self, name: &str) -> Result<&ActivationStats> {
        self.layers.get(name).ok_or_else(|| {
            Error::Calibration {
                reason: "no calibration statistics for this layer; calibrate with the plan that \
                         compresses"
                    .into(),
            }
            .in_layer(name)
        })
    }
}

/// Runs `run` on `model` with a tap on every layer `plan` selects and returns what each recorded.
///
/// `run` does the forward passes (e.g. `|m| { m.embed(&["a sentence"])?; Ok(()) }`). The model
/// comes back as it was, taps removed, whether `run` succeeds, fails or panics. Refuses a selection
/// with a layer that is not dense, and a layer that saw no tokens (the passes never reached it).
pub fn calibrate<M, F>(model: &mut M, plan: &Plan, run: F) -> Result<Calibration>
where
    M: Linears + ?Sized,
    F: FnOnce(&M) -> Result<()>,
{
    let names = plan.resolve(model)?;
    for name in &names {
        let layer = linear::find(model, name)?;
        if !matches!(layer, Linear::Dense(_)) {
            return Err(Error::NotDense { kind: layer.kind() }.in_layer(name));
        }
    }
    let mut taps = Vec::with_capacity(names.len());
    for (name, layer) in model.linears_mut() {
        if let (true, Linear::Dense(dense)) = (names.contains(&name), layer) {
            let tap = ActivationTap::new(dense.weight.dim(1)?);
            dense.tap = Some(tap.clone());
            taps.push((name, tap));
        }
    }
    {
        let guard = TapGuard {
            model: &mut *model,
            names: &names,
        };
        run(&*guard.model)?;
    }
    let mut layers = BTreeMap::new();
    for (name, tap) in taps {
        let stats = tap.stats();
        if stats.rows == 0 {
            return Err(Error::Calibration {
                reason: "the layer saw no tokens during calibration; the passes must run through \
                         it (a decoder layer needs decoder inputs)"
                    .into(),
            }
            .in_layer(&name));
        }
        layers.insert(name, stats);
    }
    Ok(Calibration { layers })
}

/// Takes the taps off the named layers when dropped, so a failing or panicking `run` leaves none.
struct TapGuard<'a, M: Linears + ?Sized> {
    model: &'a mut M,
    names: &'a [String],
}

impl<M: Linears + ?Sized> Drop for TapGuard<'_, M> {
    fn drop(&mut self) {
        for (name, layer) in self.model.linears_mut() {
            if let (true, Linear::Dense(dense)) = (self.names.contains(&name), layer) {
                dense.tap = None;
            }
        }
    }
}

/// `‖X·(A − B)ᵀ‖_F / ‖X·Aᵀ‖_F` over the calibration rows `X` behind `stats`: how far layer `B`'s
/// outputs are from layer `A`'s on the calibration data, biases aside (0 when `X·Aᵀ` is zero).
pub fn output_error(
    original: &Linear,
    approximation: &Linear,
    stats: &ActivationStats,
) -> Result<f64> {
    let a = to_array(&original.effective_weight()?)?;
    let b = to_array(&approximation.effective_weight()?)?;
    let g = gram(stats)?;
    if a.dim() != b.dim() || a.ncols() != g.nrows() {
        return Err(Error::Math(lowrank::Error::ShapeMismatch {
            op: "output error".into(),
            left: a.shape().to_vec(),
            right: b.shape().to_vec(),
        }));
    }
    Ok(relative_output_error(&a, &b, &g))
}

pub(crate) fn relative_output_error(a: &Array2<f64>, b: &Array2<f64>, gram: &Array2<f64>) -> f64 {
    let reference = weighted_square_norm(a.view(), gram);
    let residual = a - b;
    if reference <= 0.0 {
        return 0.0;
    }
    (weighted_square_norm(residual.view(), gram).max(0.0) / reference).sqrt()
}
