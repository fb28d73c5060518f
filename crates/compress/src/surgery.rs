//! Applying a [`Plan`] to a model: every selected dense layer becomes its SVD factorization (plain,
//! or activation-aware from a [`Calibration`]), and the [`Report`] says what each cost in accuracy
//! and saved in parameters.

use std::fmt;

use models::{Linear, Linears, linear};
use serde::{Deserialize, Serialize};

use crate::calibrate::Calibration;
use crate::error::{Error, Result};
use crate::method::{Gathered, LayerStats};
use crate::plan::Plan;
use crate::svd::Decomposition;
use crate::tucker2::GroupReport;

/// One factorized layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Checkpoint name, e.g. `encoder.layers.0.self_attn.q_proj`.
    pub name: String,
    pub in_dim: usize,
    pub out_dim: usize,
    pub rank: usize,
    /// Numbers stored before and after, bias included.
    pub params_before: usize,
    pub params_after: usize,
    /// `‖W − U·V‖_F / ‖W‖_F`, measured (in f64) rather than read off the spectrum.
    pub relative_error: f64,
    /// `‖X·(W − U·V)ᵀ‖_F / ‖X·Wᵀ‖_F` over the calibration rows `X`, when compressed with a
    /// calibration: the error the activation-aware methods minimize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_error: Option<f64>,
}

/// What a compression did: its layers, and the parameters of all the model's linear layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The [`crate::Method`] as text: `svd`, `asvd alpha=0.5`, `whitened ridge=0.000001`.
    pub method: String,
    /// The rank rule, as text (`param-ratio 0.75`).
    pub rule: String,
    pub layers: Vec<LayerReport>,
    /// Factors shared by several layers (Tucker-2 groups), each counted once in the totals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupReport>,
    /// Parameters of every linear layer the model lists, before and after.
    pub linear_params_before: usize,
    pub linear_params_after: usize,
}

impl Report {
    /// Parameters of the factorized layers before compression.
    pub fn params_before(&self) -> usize {
        self.layers.iter().map(|l| l.params_before).sum()
    }

    /// Parameters of the factorized layers after compression, shared factors counted once.
    pub fn params_after(&self) -> usize {
        let shared: usize = self.groups.iter().map(|g| g.shared_params).sum();
        self.layers.iter().map(|l| l.params_after).sum::<usize>() + shared
    }

    /// `after / before` over the factorized layers (1 when none).
    pub fn ratio(&self) -> f64 {
        match self.params_before() {
            0 => 1.0,
            before => self.params_after() as f64 / before as f64,
        }
    }

    /// `after / before` over all the model's linear layers.
    pub fn linear_ratio(&self) -> f64 {
        match self.linear_params_before {
            0 => 1.0,
            before => self.linear_params_after as f64 / before as f64,
        }
    }

    /// The mean relative error of the factorized layers (0 when none).
    pub fn mean_relative_error(&self) -> f64 {
        if self.layers.is_empty() {
            return 0.0;
        }
        self.layers.iter().map(|l| l.relative_error).sum::<f64>() / self.layers.len() as f64
    }

    /// The mean calibration output error of the factorized layers (`None` without calibration).
    pub fn mean_output_error(&self) -> Option<f64> {
        let errors: Option<Vec<f64>> = self.layers.iter().map(|l| l.output_error).collect();
        match errors {
            Some(errors) if !errors.is_empty() => {
                Some(errors.iter().sum::<f64>() / errors.len() as f64)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Report {
    /// A plain table, one row per layer, then the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} compression, {}", self.method, self.rule)?;
        for l in &self.layers {
            write!(
                f,
                "{:<48} {:>5}→{:<5} rank {:>4}  {:>9} → {:>9}  error {:.4}",
                l.name,
                l.in_dim,
                l.out_dim,
                l.rank,
                l.params_before,
                l.params_after,
                l.relative_error
            )?;
            match l.output_error {
                Some(e) => writeln!(f, "  output error {e:.4}")?,
                None => writeln!(f)?,
            }
        }
        for g in &self.groups {
            writeln!(
                f,
                "group {:<20} {} layers of {}→{} share rank-{} factors ({} numbers), error {:.4}, {} HOOI sweeps",
                g.name,
                g.layers.len(),
                g.in_dim,
                g.out_dim,
                g.rank,
                g.shared_params,
                g.relative_error,
                g.iterations
            )?;
        }
        writeln!(
            f,
            "{} layers: {} → {} parameters ({:.1}%); all linear layers: {} → {} ({:.1}%)",
            self.layers.len(),
            self.params_before(),
            self.params_after(),
            100.0 * self.ratio(),
            self.linear_params_before,
            self.linear_params_after,
            100.0 * self.linear_ratio()
        )
    }
}

/// Replaces every layer `plan` selects by its truncated-SVD factorization at the plan's rank.
/// Refuses a plan whose method needs calibration: use [`compress_model_calibrated`] for those.
///
/// All factorizations are computed before any layer is replaced, so an error (a rank that would
/// not compress, a layer already factorized) leaves the model as it was.
pub fn compress_model<M: Linears + ?Sized>(model: &mut M, plan: &Plan) -> Result<Report> {
    if plan.method().needs_calibration() {
        return Err(Error::Calibration {
            reason: plan.method().calibration_hint(),
        });
    }
    compress(model, plan, None)
}

/// As [`compress_model`], for any method, with the statistics [`crate::calibrate`] gathered for
/// (at least) the layers `plan` selects; every layer's report then also gives its output error
/// on the calibration data, plain SVD's included, so methods compare on one measure.
pub fn compress_model_calibrated<M: Linears + ?Sized>(
    model: &mut M,
    plan: &Plan,
    calibration: &Calibration,
) -> Result<Report> {
    compress(model, plan, Some(Gathered::Activations(calibration)))
}

pub(crate) fn compress<M: Linears + ?Sized>(
    model: &mut M,
    plan: &Plan,
    statistics: Option<Gathered<'_>>,
) -> Result<Report> {
    let names = plan.resolve(model)?;
    let linear_params_before = linear_params(model);
    let mut replacements: Vec<(LayerReport, Linear)> = Vec::with_capacity(names.len());
    for name in &names {
        let layer = linear::find(model, name)?;
        let stats = statistics.map(|s| s.layer(name)).transpose()?;
        let done = factorize_layer(layer, plan, name, stats).map_err(|e| e.in_layer(name))?;
        replacements.push(done);
    }
    let mut layers = Vec::with_capacity(replacements.len());
    for (report, layer) in replacements {
        linear::replace(model, &report.name, layer)?;
        layers.push(report);
    }
    Ok(Report {
        method: plan.method().to_string(),
        rule: plan.rule().to_string(),
        layers,
        groups: Vec::new(),
        linear_params_before,
        linear_params_after: linear_params(model),
    })
}

/// The rank rule reads the spectrum of the matrix the method truncates (`W·S`): for whitening an
/// energy share is then a share of the layer's output energy on the calibration data.
fn factorize_layer(
    layer: &Linear,
    plan: &Plan,
    name: &str,
    stats: Option<LayerStats<'_>>,
) -> Result<(LayerReport, Linear)> {
    let decomposition = Decomposition::with_method(layer, plan.method(), stats)?;
    let (in_dim, out_dim) = (decomposition.in_dim(), decomposition.out_dim());
    let rank = plan
        .rule()
        .rank_for_spectrum(decomposition.svd.s.view(), in_dim, out_dim)?;
    let factorized = decomposition.factorize(rank)?;
    let report = LayerReport {
        name: name.to_string(),
        in_dim,
        out_dim,
        rank,
        params_before: layer.parameter_count(),
        params_after: factorized.layer.parameter_count(),
        relative_error: factorized.relative_error,
        output_error: factorized.output_error,
    };
    Ok((report, factorized.layer))
}

/// Parameters of every linear layer the model lists (a shared factor counted once per layer).
pub fn linear_params<M: Linears + ?Sized>(model: &M) -> usize {
    model
        .linears()
        .iter()
        .map(|(_, layer)| layer.parameter_count())
        .sum()
}

/// Multiply-add FLOPs per token of every linear layer the model lists.
pub fn linear_flops_per_token<M: Linears + ?Sized>(model: &M) -> usize {
    model
        .linears()
        .iter()
        .map(|(_, layer)| layer.flops_per_token())
        .sum()
}
