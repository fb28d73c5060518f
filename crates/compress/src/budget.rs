//! Per-layer ranks under one parameter budget: instead of one rank rule for every layer, each
//! selected layer gets its own rank so that together they keep a target share of their weights,
//! spending rank where it removes the most error.
//!
//! The error model. At rank `r` layer `l` loses `E_l(r) = w_l·Σ_{i>r} σ_{l,i}²`, the tail energy
//! of the matrix its [`Method`] truncates ([`layer_spectra`]: `W` for plain SVD, `W·S` for ASVD
//! and whitening, so with whitening the squared output error on the calibration rows), times a
//! sensitivity weight `w_l` ([`Sensitivity`]): 1 (the total squared error), `1/Σσ²` (the sum of
//! relative squared errors, every layer alike whatever its scale), or a measured one
//! ([`measure_sensitivity`]: the damage to the caller's score with only that layer compressed at a
//! probe rank, which the curve is scaled to pass through).
//!
//! The allocation ([`allocate_ranks`]) is greedy on the error removed per weight. Every layer
//! starts at rank 1 (rank 0 would delete the layer, and [`crate::svd::check_rank`] refuses it), so
//! a budget below `Σ(in+out)` is an error. A rank step costs `in+out` weights and removes
//! `w·σ²_{r+1}`, less with each step; past the largest useful rank (factors smaller than the dense
//! weight) the one step left goes back to dense, costing what remains up to `in·out` (at most
//! `in+out`) and removing the whole remaining tail. That last step can be worth more per weight
//! than the steps before it (on a flat spectrum a layer gains more by staying dense than by any
//! rank it can afford), which would break the greedy's ordering, so it runs in two phases:
//!
//! 1. On the lower convex hull of each layer's (weights, error) points, rank 1, …, largest useful
//!    rank, dense: along it the gains per weight fall, and always taking the best next hull step
//!    of any layer takes them in one sorted order. The phase stops at the first step that does
//!    not fit. What it holds then is a prefix of that order, and an exchange argument shows that no
//!    allocation of at most as many weights has a smaller error ([`Allocation::optimal_up_to`];
//!    tests/budget.rs checks it against an exhaustive search).
//! 2. The budget left (less than that one hull step, which can span many ranks up to dense) is
//!    filled by single rank steps, best gain per weight first, skipping those that do not fit.
//!    This only lowers the error, but is no longer provably the least for its size (choosing steps
//!    of unequal costs under a cap is a knapsack problem).
//!
//! When every layer's steps cost the same and its gains fall (a square layer of even size whose
//! spectrum falls fast enough that the step to dense is not worth more than the one before), the
//! hull steps are the single steps and the allocation is the least error within the budget.
//!
//! Weights are counted as [`RankRule::ParamRatio`](crate::RankRule::ParamRatio) counts them,
//! biases aside (kept whole, the same before and after): `r·(in+out)` for a factorized layer,
//! `in·out` for a dense one. So an allocation at ratio ρ compares directly with
//! `RankRule::ParamRatio(ρ)`, which gives every layer the same share.
//!
//! ```
//! use compress::{LayerSpectrum, Method, Sensitivity, Spectra, allocate_ranks};
//!
//! // Two 8→8 layers, one with a fast-falling spectrum, one flat.
//! let layer = |name: &str, s: Vec<f64>| LayerSpectrum {
//!     name: name.into(),
//!     in_dim: 8,
//!     out_dim: 8,
//!     singular_values: s,
//! };
//! let spectra = Spectra {
//!     method: Method::Svd,
//!     layers: vec![
//!         layer("fast", vec![8.0, 2.0, 0.5, 0.1, 0.0, 0.0, 0.0, 0.0]),
//!         layer("flat", vec![2.0, 2.0, 2.0, 1.9, 1.8, 1.7, 1.6, 1.5]),
//!     ],
//! };
//! // Half of the 2·64 weights: uniformly rank 2 each; here too (the step to rank 2 gains σ² = 4
//! // in both, and the flat layer's further steps gain almost as much).
//! let half = allocate_ranks(&spectra, 0.5, &Sensitivity::Spectral)?;
//! assert_eq!(half.get("fast").unwrap().rank, Some(2));
//! assert_eq!(half.get("flat").unwrap().rank, Some(2));
//! // Three quarters: uniformly rank 3 each, which leaves the flat layer 14.55 of its 26.55 of
//! // energy to lose. Keeping it dense (48 more weights than rank 1) and the fast one at rank 2
//! // loses only 0.26.
//! let three_quarters = allocate_ranks(&spectra, 0.75, &Sensitivity::Spectral)?;
//! assert_eq!(three_quarters.get("fast").unwrap().rank, Some(2));
//! assert_eq!(three_quarters.get("flat").unwrap().rank, None);
//! assert!((three_quarters.weighted_error() - 0.26).abs() < 1e-9);
//! assert_eq!(three_quarters.weights_after(), three_quarters.budget);
//! # Ok::<(), compress::Error>(())
//! ```

use std::fmt;

use models::{Linear, Linears, linear};

use crate::calibrate::Calibration;
use crate::error::{Error, Result};
use crate::method::{LayerStats, Method, Statistics};
use crate::plan::Plan;
use crate::surgery::{LayerReport, Report, linear_params};
use crate::svd::{Decomposition, check_rank, largest_useful_rank};

/// The singular values of the matrix one layer's method truncates.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpectrum {
    /// Checkpoint name, e.g. `encoder.layer.0.attention.self.query`.
    pub name: String,
    pub in_dim: usize,
    pub out_dim: usize,
    /// Largest first, `min(in, out)` of them.
    pub singular_values: Vec<f64>,
}

/// Every selected layer's spectrum under one method: what an allocation reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectra {
    /// The method whose matrix (`W`, `W·S`) the spectra are of, and that
    /// [`compress_with_allocation`] factorizes by.
    pub method: Method,
    pub layers: Vec<LayerSpectrum>,
}

/// How much a layer's truncation error counts, relative to the other layers'.
#[derive(Debug, Clone, PartialEq)]
pub enum Sensitivity {
    /// `w = 1`: minimize the total squared error `Σ_l Σ_{i>r_l} σ_{l,i}²`.
    Spectral,
    /// `w = 1/Σσ²`: minimize the sum of the layers' relative squared errors.
    Relative,
    /// `w = damage / Σ_{i>r_p} σ²`: each layer's error curve scaled to the damage measured with
    /// only that layer compressed at the probe rank `r_p` ([`measure_sensitivity`]).
    Measured(Vec<Probe>),
}

impl fmt::Display for Sensitivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sensitivity::Spectral => "spectral",
            Sensitivity::Relative => "relative",
            Sensitivity::Measured(_) => "measured",
        })
    }
}

/// One layer compressed alone at `rank`, and how much that hurt the caller's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub name: String,
    pub rank: usize,
    /// Positive: how much worse the model got (e.g. `1 − cosine`, or the loss increase).
    pub damage: f64,
}

/// The ranks an allocation gives each layer, and what it predicts they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// The method to factorize by (the one the spectra are of).
    pub method: Method,
    /// The [`Sensitivity`] minimized, as text (`spectral`, `relative`, `measured`).
    pub sensitivity: String,
    pub target_ratio: f64,
    /// The most weights the selected layers may keep: `⌊target_ratio·Σ in·out⌋`.
    pub budget: usize,
    /// No allocation of at most this many weights has a smaller weighted error than this one: the
    /// greedy's exact phase (see the module docs); the budget beyond it was filled by the best
    /// single steps that fit.
    pub optimal_up_to: usize,
    /// In the spectra's order.
    pub layers: Vec<LayerAllocation>,
}

/// One layer's share of the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerAllocation {
    pub name: String,
    pub in_dim: usize,
    pub out_dim: usize,
    /// The rank to factorize at; `None` leaves the layer dense (every useful rank gained less per
    /// weight than going back to dense).
    pub rank: Option<usize>,
    /// Weights before (`in·out`) and after (`r·(in+out)`, or `in·out` when dense), biases aside.
    pub weights_before: usize,
    pub weights_after: usize,
    /// `Σ_{i>r} σ_i²` of the truncated matrix (0 when dense).
    pub tail_energy: f64,
    /// `sqrt(tail_energy / Σσ²)`: the relative error of the truncated matrix, which for plain SVD
    /// is the report's `relative_error` and for whitening its `output_error` (up to the ridge).
    pub predicted_error: f64,
    /// The sensitivity weight `w` the error counted with.
    pub weight: f64,
}

impl Allocation {
    /// The layer called `name`.
    pub fn get(&self, name: &str) -> Option<&LayerAllocation> {
        self.layers.iter().find(|l| l.name == name)
    }

    pub fn weights_before(&self) -> usize {
        self.layers.iter().map(|l| l.weights_before).sum()
    }

    pub fn weights_after(&self) -> usize {
        self.layers.iter().map(|l| l.weights_after).sum()
    }

    /// `after / before` over the allocated layers' weights.
    pub fn ratio(&self) -> f64 {
        self.weights_after() as f64 / self.weights_before().max(1) as f64
    }

    /// `Σ_l w_l·tail_l`: what the allocation minimized.
    pub fn weighted_error(&self) -> f64 {
        self.layers.iter().map(|l| l.weight * l.tail_energy).sum()
    }
}

impl fmt::Display for Allocation {
    /// One row per layer, then the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} allocation ({}) at {}: budget {} weights",
            self.method, self.sensitivity, self.target_ratio, self.budget
        )?;
        for l in &self.layers {
            let rank = l.rank.map_or("dense".to_string(), |r| r.to_string());
            writeln!(
                f,
                "{:<48} {:>5}→{:<5} rank {:>5}  {:>9} → {:>9}  predicted error {:.4}",
                l.name,
                l.in_dim,
                l.out_dim,
                rank,
                l.weights_before,
                l.weights_after,
                l.predicted_error
            )?;
        }
        writeln!(
            f,
            "{} layers: {} → {} weights ({:.2}%)",
            self.layers.len(),
            self.weights_before(),
            self.weights_after(),
            100.0 * self.ratio()
        )
    }
}

/// The spectrum of the matrix `plan`'s method truncates, for every layer `plan` selects (its rank
/// rule is not read). The activation-aware methods need `calibration` (for at least those layers);
/// [`Method::Fisher`] is refused (its statistics are gradients, not taken here).
pub fn layer_spectra<M: Linears + ?Sized>(
    model: &M,
    plan: &Plan,
    calibration: Option<&Calibration>,
) -> Result<Spectra> {
    let method = plan.method();
    let calibration = statistics_for(method, calibration)?;
    let names = plan.resolve(model)?;
    let mut layers = Vec::with_capacity(names.len());
    for name in &names {
        let decomposition = decompose(model, name, method, calibration)?;
        layers.push(LayerSpectrum {
            name: name.clone(),
            in_dim: decomposition.in_dim(),
            out_dim: decomposition.out_dim(),
            singular_values: decomposition.svd.s.to_vec(),
        });
    }
    Ok(Spectra { method, layers })
}

/// Compresses each layer `plan` selects alone, at the plan's rank rule (the uniform
/// [`RankRule::ParamRatio`](crate::RankRule::ParamRatio) of the target is a natural probe), calls
/// `damage` on the model so changed, and puts the layer back. `damage` returns how much worse the
/// model got, a positive number (e.g. `1 − mean cosine` to the original embeddings, or the loss
/// increase); a layer whose compression does no measurable damage is an error, since its error
/// curve could not be scaled (probe at a lower rank, or score more finely).
///
/// The model comes back as it was, whether `damage` succeeds, fails or panics. Score on text that
/// is neither the calibration's nor the final evaluation's: whitening fits the calibration rows,
/// so damage measured on them hides the layers where it does not carry over to other text (on
/// MiniLM the last block's attention output: 0.0002 of cosine on the calibration text, 0.078 on
/// other sentences; see tests/budget.rs).
pub fn measure_sensitivity<M, F>(
    model: &mut M,
    plan: &Plan,
    calibration: Option<&Calibration>,
    mut damage: F,
) -> Result<Vec<Probe>>
where
    M: Linears + ?Sized,
    F: FnMut(&M) -> Result<f64>,
{
    let method = plan.method();
    let calibration = statistics_for(method, calibration)?;
    let names = plan.resolve(model)?;
    // Every factorization before any swap: a plan that fails, fails before the model is touched.
    let mut probes = Vec::with_capacity(names.len());
    for name in &names {
        let decomposition = decompose(model, name, method, calibration)?;
        let (in_dim, out_dim) = (decomposition.in_dim(), decomposition.out_dim());
        let rank = plan
            .rule()
            .rank_for_spectrum(decomposition.svd.s.view(), in_dim, out_dim)
            .map_err(|e| e.in_layer(name))?;
        let layer = decomposition
            .factorize(rank)
            .map_err(|e| e.in_layer(name))?
            .layer;
        probes.push((name.clone(), rank, layer));
    }
    let mut measured = Vec::with_capacity(probes.len());
    for (name, rank, layer) in probes {
        let original = linear::replace(model, &name, layer)?;
        let guard = Restore {
            model: &mut *model,
            name: &name,
            original: Some(original),
        };
        let value = damage(&*guard.model);
        drop(guard);
        let value = value?;
        if !(value.is_finite() && value > 0.0) {
            return Err(Error::Calibration {
                reason: format!(
                    "compressing this layer alone at rank {rank} gave a damage of {value}; it must \
                     be positive and finite (probe at a lower rank, or score more finely)"
                ),
            }
            .in_layer(&name));
        }
        measured.push(Probe {
            name,
            rank,
            damage: value,
        });
    }
    Ok(measured)
}

/// Puts the original layer back when dropped, so a failing or panicking score leaves none swapped.
struct Restore<'a, M: Linears + ?Sized> {
    model: &'a mut M,
    name: &'a str,
    original: Option<Linear>,
}

impl<M: Linears + ?Sized> Drop for Restore<'_, M> {
    fn drop(&mut self) {
        if let Some(original) = self.original.take() {
            // Cannot fail: the slot exists and the probe has the original's shape.
            let _ = linear::replace(self.model, self.name, original);
        }
    }
}

/// Ranks for every layer of `spectra` such that their weights total at most
/// `⌊target_ratio·Σ in·out⌋`, chosen greedily by error removed per weight (see the module docs):
/// no allocation of at most [`Allocation::optimal_up_to`] weights has a smaller `Σ_l w_l·tail_l`,
/// and the rest of the budget is filled by the best single rank steps that fit.
///
/// Errors: a target outside (0, 1); a budget below rank 1 for every layer; a layer with no useful
/// rank; singular values not of the layer's shape, negative, non-finite or unsorted; a
/// [`Sensitivity::Measured`] without a usable probe for some layer.
pub fn allocate_ranks(
    spectra: &Spectra,
    target_ratio: f64,
    sensitivity: &Sensitivity,
) -> Result<Allocation> {
    let invalid = |reason: String| Error::InvalidRule {
        rule: format!("budget {target_ratio}"),
        reason,
    };
    if !(target_ratio > 0.0 && target_ratio < 1.0) {
        return Err(invalid(
            "the fraction of the selected layers' weights to keep must lie in (0, 1); 1 or more \
             would not compress"
                .into(),
        ));
    }
    if spectra.layers.is_empty() {
        return Err(invalid("there are no layers to allocate ranks to".into()));
    }
    let mut curves = Vec::with_capacity(spectra.layers.len());
    for layer in &spectra.layers {
        let curve = Curve::new(layer, sensitivity).map_err(|e| e.in_layer(&layer.name))?;
        curves.push(curve);
    }
    let total: usize = curves.iter().map(|c| c.dense_weights()).sum();
    let budget = (target_ratio * total as f64).floor() as usize;
    let minimum: usize = curves.iter().map(|c| c.vertices[0].weights).sum();
    if minimum > budget {
        return Err(invalid(format!(
            "{budget} of the {total} weights cannot give each of the {} layers rank 1, which takes \
             {minimum}; keep at least {:.4}",
            curves.len(),
            // Rounded up: the ratio shown must be enough.
            (1e4 * minimum as f64 / total as f64).ceil() / 1e4
        )));
    }
    // Phase 1: the best next hull step of any layer, while it fits.
    let mut at = vec![0; curves.len()];
    let mut spent = minimum;
    loop {
        let best = best_step(
            curves
                .iter()
                .enumerate()
                .filter_map(|(i, curve)| curve.hull_step(at[i]).map(|step| (i, step))),
        );
        match best {
            Some((i, step)) if step.gain > 0.0 && spent + step.weights <= budget => {
                spent += step.weights;
                at[i] += 1;
            }
            _ => break,
        }
    }
    let optimal_up_to = spent;
    // Phase 2: single steps into what is left, best first, skipping those that do not fit.
    let mut ranks: Vec<Option<usize>> = curves
        .iter()
        .zip(&at)
        .map(|(curve, &vertex)| curve.vertices[vertex].rank)
        .collect();
    loop {
        let best = best_step(curves.iter().enumerate().filter_map(|(i, curve)| {
            curve
                .single_step(ranks[i])
                .filter(|step| step.gain > 0.0 && spent + step.weights <= budget)
                .map(|step| (i, step))
        }));
        let Some((i, step)) = best else { break };
        spent += step.weights;
        ranks[i] = step.to;
    }
    let layers = curves
        .iter()
        .zip(&ranks)
        .map(|(curve, &rank)| curve.allocation(rank))
        .collect();
    Ok(Allocation {
        method: spectra.method,
        sensitivity: sensitivity.to_string(),
        target_ratio,
        budget,
        optimal_up_to,
        layers,
    })
}

/// The step removing the most error per weight; the first of equals.
fn best_step(steps: impl Iterator<Item = (usize, Step)>) -> Option<(usize, Step)> {
    let mut best: Option<(usize, Step)> = None;
    for (i, step) in steps {
        if best.is_none_or(|(_, b)| step.per_weight() > b.per_weight()) {
            best = Some((i, step));
        }
    }
    best
}

/// Factorizes every layer of `allocation` at its rank (layers it leaves dense are not touched) by
/// its method, with the statistics of `calibration` for an activation-aware one; with calibration
/// the report gives each layer's output error too, as [`crate::compress_model_calibrated`]'s does.
///
/// All factorizations are computed before any layer is replaced, so an error (a layer already
/// factorized, a shape that is not the allocation's) leaves the model as it was. The SVDs are
/// computed again here: an [`Allocation`] holds ranks, not factors.
pub fn compress_with_allocation<M: Linears + ?Sized>(
    model: &mut M,
    allocation: &Allocation,
    calibration: Option<&Calibration>,
) -> Result<Report> {
    let method = allocation.method;
    statistics_for(method, calibration)?;
    let linear_params_before = linear_params(model);
    let mut replacements: Vec<(LayerReport, Linear)> = Vec::new();
    for planned in &allocation.layers {
        let name = &planned.name;
        let layer = linear::find(model, name)?;
        let shape = (layer.in_dim(), layer.out_dim());
        if shape != (planned.in_dim, planned.out_dim) {
            return Err(Error::Math(lowrank::Error::ShapeMismatch {
                op: format!("the allocation of {name} (in, out)"),
                left: vec![planned.in_dim, planned.out_dim],
                right: vec![shape.0, shape.1],
            }));
        }
        let Some(rank) = planned.rank else { continue };
        let stats = calibration.map(|c| c.stats(name)).transpose()?;
        let factorized =
            Decomposition::with_method(layer, method, stats.map(LayerStats::Activations))
                .and_then(|d| d.factorize(rank))
                .map_err(|e| e.in_layer(name))?;
        let report = LayerReport {
            name: name.clone(),
            in_dim: planned.in_dim,
            out_dim: planned.out_dim,
            rank,
            params_before: layer.parameter_count(),
            params_after: factorized.layer.parameter_count(),
            relative_error: factorized.relative_error,
            output_error: factorized.output_error,
        };
        replacements.push((report, factorized.layer));
    }
    let mut layers = Vec::with_capacity(replacements.len());
    for (report, layer) in replacements {
        linear::replace(model, &report.name, layer)?;
        layers.push(report);
    }
    Ok(Report {
        method: method.to_string(),
        rule: format!(
            "allocated budget {} ({})",
            allocation.target_ratio, allocation.sensitivity
        ),
        layers,
        groups: Vec::new(),
        linear_params_before,
        linear_params_after: linear_params(model),
    })
}

/// The calibration `method` reads (none for plain SVD, whatever was given); an error when an
/// activation-aware method has none, or for [`Method::Fisher`].
fn statistics_for(
    method: Method,
    calibration: Option<&Calibration>,
) -> Result<Option<&Calibration>> {
    match method.statistics() {
        Statistics::Weights => Ok(None),
        Statistics::Activations if calibration.is_some() => Ok(calibration),
        Statistics::Activations => Err(Error::Calibration {
            reason: method.calibration_hint(),
        }),
        Statistics::Gradients => Err(Error::Calibration {
            reason: format!(
                "budget allocation reads activation statistics, not gradients; allocate with \
                 svd, asvd or whitened (method {method})"
            ),
        }),
    }
}

fn decompose<M: Linears + ?Sized>(
    model: &M,
    name: &str,
    method: Method,
    calibration: Option<&Calibration>,
) -> Result<Decomposition> {
    let layer = linear::find(model, name)?;
    let stats = calibration.map(|c| c.stats(name)).transpose()?;
    Decomposition::with_method(layer, method, stats.map(LayerStats::Activations))
        .map_err(|e| e.in_layer(name))
}

/// One layer's weighted error against its weights, reduced to the lower convex hull of the points
/// rank 1, …, largest useful rank, dense.
struct Curve<'a> {
    layer: &'a LayerSpectrum,
    weight: f64,
    /// `tails[r] = Σ_{i≥r} σ_i²` (0-based: the energy left at rank r); `tails[0]` the total.
    tails: Vec<f64>,
    vertices: Vec<Vertex>,
}

#[derive(Debug, Clone, Copy)]
struct Vertex {
    /// `None`: dense.
    rank: Option<usize>,
    weights: usize,
    error: f64,
}

impl<'a> Curve<'a> {
    fn new(layer: &'a LayerSpectrum, sensitivity: &Sensitivity) -> Result<Self> {
        let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
        check_spectrum(layer)?;
        check_rank(1, in_dim, out_dim)?;
        let s = &layer.singular_values;
        let mut tails = vec![0.0; s.len() + 1];
        // From the small end, so a tail of tiny values is summed without the large ones' round-off.
        for i in (0..s.len()).rev() {
            tails[i] = tails[i + 1] + s[i] * s[i];
        }
        let weight = match sensitivity {
            Sensitivity::Spectral => 1.0,
            Sensitivity::Relative if tails[0] > 0.0 => 1.0 / tails[0],
            Sensitivity::Relative => 0.0,
            Sensitivity::Measured(probes) => measured_weight(layer, probes, &tails)?,
        };
        let points = (1..=largest_useful_rank(in_dim, out_dim))
            .map(|rank| Vertex {
                rank: Some(rank),
                weights: rank * (in_dim + out_dim),
                error: weight * tails[rank],
            })
            .chain(std::iter::once(Vertex {
                rank: None,
                weights: in_dim * out_dim,
                error: 0.0,
            }));
        let mut vertices: Vec<Vertex> = Vec::new();
        for point in points {
            // Drop the last vertex while it lies strictly above the chord from the one before it
            // to `point` (a right turn); collinear ones stay, so equal steps remain single steps.
            while let [.., a, b] = vertices[..] {
                let cross = (b.weights - a.weights) as f64 * (point.error - a.error)
                    - (b.error - a.error) * (point.weights - a.weights) as f64;
                if cross < 0.0 {
                    vertices.pop();
                } else {
                    break;
                }
            }
            vertices.push(point);
        }
        Ok(Self {
            layer,
            weight,
            tails,
            vertices,
        })
    }

    fn dense_weights(&self) -> usize {
        self.layer.in_dim * self.layer.out_dim
    }

    /// The step from hull vertex `at` to the next; `None` at the end.
    fn hull_step(&self, at: usize) -> Option<Step> {
        let (from, to) = (self.vertices.get(at)?, self.vertices.get(at + 1)?);
        Some(Step {
            weights: to.weights - from.weights,
            gain: from.error - to.error,
            to: to.rank,
        })
    }

    /// One rank more from `rank`, or dense from the largest useful rank; `None` when dense.
    fn single_step(&self, rank: Option<usize>) -> Option<Step> {
        let (in_dim, out_dim) = (self.layer.in_dim, self.layer.out_dim);
        let rank = rank?;
        let s = &self.layer.singular_values;
        Some(if rank < largest_useful_rank(in_dim, out_dim) {
            Step {
                weights: in_dim + out_dim,
                gain: self.weight * s[rank] * s[rank],
                to: Some(rank + 1),
            }
        } else {
            Step {
                weights: in_dim * out_dim - rank * (in_dim + out_dim),
                gain: self.weight * self.tails[rank],
                to: None,
            }
        })
    }

    fn allocation(&self, rank: Option<usize>) -> LayerAllocation {
        let (in_dim, out_dim) = (self.layer.in_dim, self.layer.out_dim);
        let tail_energy = rank.map_or(0.0, |r| self.tails[r]);
        let predicted_error = if self.tails[0] > 0.0 {
            (tail_energy / self.tails[0]).sqrt()
        } else {
            0.0
        };
        LayerAllocation {
            name: self.layer.name.clone(),
            in_dim,
            out_dim,
            rank,
            weights_before: in_dim * out_dim,
            weights_after: rank.map_or(in_dim * out_dim, |r| r * (in_dim + out_dim)),
            tail_energy,
            predicted_error,
            weight: self.weight,
        }
    }
}

/// Moving one layer from one point of its curve to a later one.
#[derive(Debug, Clone, Copy)]
struct Step {
    weights: usize,
    /// The weighted error removed.
    gain: f64,
    /// The rank after the step; `None`: dense.
    to: Option<usize>,
}

impl Step {
    fn per_weight(&self) -> f64 {
        self.gain / self.weights as f64
    }
}

fn check_spectrum(layer: &LayerSpectrum) -> Result<()> {
    let s = &layer.singular_values;
    let reason = if s.len() != layer.in_dim.min(layer.out_dim) {
        format!(
            "a {}→{} layer has {} singular values, not {}",
            layer.in_dim,
            layer.out_dim,
            layer.in_dim.min(layer.out_dim),
            s.len()
        )
    } else if !s.iter().all(|v| v.is_finite() && *v >= 0.0) {
        "they must be finite and non-negative".to_string()
    } else if s.windows(2).any(|w| w[1] > w[0]) {
        "they must come largest first".to_string()
    } else {
        return Ok(());
    };
    Err(Error::Math(lowrank::Error::InvalidArgument {
        name: "singular values",
        value: format!("{} values", s.len()),
        reason,
    }))
}

/// `damage / Σ_{i>r_p} σ²` from the layer's probe.
fn measured_weight(layer: &LayerSpectrum, probes: &[Probe], tails: &[f64]) -> Result<f64> {
    let unusable = |reason: String| Error::Calibration { reason };
    let probe = probes
        .iter()
        .find(|p| p.name == layer.name)
        .ok_or_else(|| {
            unusable(
                "no measured sensitivity for this layer; measure with the plan that allocates"
                    .into(),
            )
        })?;
    check_rank(probe.rank, layer.in_dim, layer.out_dim)?;
    if !(probe.damage.is_finite() && probe.damage > 0.0) {
        return Err(unusable(format!(
            "the measured damage {} at rank {} must be positive and finite",
            probe.damage, probe.rank
        )));
    }
    let tail = tails[probe.rank];
    if tail <= 0.0 {
        return Err(unusable(format!(
            "the layer is exactly of rank {} or less, so its probe at rank {} lost nothing to \
             scale by; probe at a lower rank",
            probe.rank, probe.rank
        )));
    }
    Ok(probe.damage / tail)
}
