//! Tucker-2 with shared factors: the weights of several projections stacked into one 3-way tensor
//! and decomposed on their two matrix modes, `W_k ≈ U₁·Γ_k·U₂ᵀ` for every matrix `k` of a group.
//!
//! This is the decomposition the Tucker-2 design-space study of attention compresses with: `U₁`
//! (out×R) and `U₂` (in×R) are stored once per group and each layer keeps only its R×R core, so a
//! group of `N` matrices stores `(out + in)·R + N·R²` numbers instead of `N·out·in`. Which matrices
//! share is the design choice ([`Sharing`]): every selected matrix together (the study's setting,
//! a point γ = (rank, layers, tensors) of [`crate::design`]), one group per block, or one group
//! per tensor kind (all the `q_proj`s, all the `k_proj`s, …).
//!
//! The factors come from HOOI (`lowrank::tucker::hooi`, tensorly's algorithm) on the tensor
//! (out, in, N) with the third mode left whole, so the fit is the best shared-basis fit HOOI finds,
//! never worse than HOSVD's. A group of one matrix is a plain truncated SVD with a dense R×R core.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};
use lowrank::ndarray::{Array2, Array3, ArrayD, Axis, Ix3};
use lowrank::svd::frobenius_norm;
use lowrank::tucker::{Hooi, hooi};
use models::{Linear, Linears, linear};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::surgery::{LayerReport, Report, linear_params};
use crate::svd::{to_array, to_tensor};

/// Which selected matrices share one pair of factors `U₁`, `U₂`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// Every selected matrix in one group: the design-space study's Tucker-2.
    #[default]
    All,
    /// One group per block (`layers.3.`): the tensors of a layer share.
    PerBlock,
    /// One group per projection kind (`q_proj`, `query`, …) across the selected blocks.
    PerTensor,
}

impl Sharing {
    pub fn name(&self) -> &'static str {
        match self {
            Sharing::All => "all",
            Sharing::PerBlock => "per-block",
            Sharing::PerTensor => "per-tensor",
        }
    }
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Sharing {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "all" => Ok(Sharing::All),
            "per-block" => Ok(Sharing::PerBlock),
            "per-tensor" => Ok(Sharing::PerTensor),
            other => Err(Error::InvalidMethod {
                method: format!("tucker2 sharing={other}"),
                reason: "sharing is \"all\", \"per-block\" or \"per-tensor\"".into(),
            }),
        }
    }
}

/// The text a Tucker-2 compression records as its method (`tucker2 sharing=all`).
pub fn method_text(sharing: Sharing) -> String {
    format!("tucker2 sharing={sharing}")
}

/// The sharing a method text names, `None` when it is not a Tucker-2 method.
pub fn parse_method_text(text: &str) -> Option<Result<Sharing>> {
    let rest = text.strip_prefix("tucker2")?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Some(Ok(Sharing::All));
    }
    Some(match rest.strip_prefix("sharing=") {
        Some(sharing) => sharing.parse(),
        None => Err(Error::InvalidMethod {
            method: text.into(),
            reason: "write \"tucker2\" or \"tucker2 sharing=<all|per-block|per-tensor>\"".into(),
        }),
    })
}

/// How a Tucker-2 compression goes: the rank `R` of both factors, who shares them, and HOOI's
/// stopping rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Tucker2Options {
    pub rank: usize,
    pub sharing: Sharing,
    pub hooi: Hooi,
}

impl Tucker2Options {
    /// All selected matrices share rank-`rank` factors; HOOI runs at most 25 sweeps.
    pub fn new(rank: usize) -> Self {
        Self {
            rank,
            sharing: Sharing::All,
            hooi: Hooi {
                max_iterations: 25,
                tolerance: 1e-6,
            },
        }
    }

    pub fn sharing(mut self, sharing: Sharing) -> Self {
        self.sharing = sharing;
        self
    }
}

/// One group of matrices that share `U₁` and `U₂`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// `all`, `block 3` or `q_proj`; also the group's key in a saved checkpoint.
    pub name: String,
    /// The layers, in model order: layer `k` is slice `k` of the stacked tensor.
    pub layers: Vec<String>,
    pub rank: usize,
    pub out_dim: usize,
    pub in_dim: usize,
    /// Numbers in `U₁` and `U₂`, stored once for the whole group.
    pub shared_params: usize,
    /// `‖X − X̂‖_F / ‖X‖_F` over the whole stacked tensor.
    pub relative_error: f64,
    /// HOOI sweeps run.
    pub iterations: usize,
}

/// The `(out + in)·R + N·R²` a group of `n` (out×in) matrices stores at rank `rank`.
pub fn group_params(out_dim: usize, in_dim: usize, n: usize, rank: usize) -> usize {
    (out_dim + in_dim) * rank + n * rank * rank
}

/// The largest rank whose shared factors and cores hold fewer numbers than the `n` dense
/// matrices, capped at `min(out, in)`; 0 when none does.
pub fn largest_useful_group_rank(out_dim: usize, in_dim: usize, n: usize) -> usize {
    let dense = n * out_dim * in_dim;
    (1..=out_dim.min(in_dim))
        .take_while(|&r| group_params(out_dim, in_dim, n, r) < dense)
        .last()
        .unwrap_or(0)
}

/// The largest rank keeping at most `ratio` of a group's dense parameters (0 when even rank 1
/// keeps more).
pub fn group_rank_for_ratio(out_dim: usize, in_dim: usize, n: usize, ratio: f64) -> usize {
    let budget = ratio * (n * out_dim * in_dim) as f64;
    (1..=out_dim.min(in_dim))
        .take_while(|&r| group_params(out_dim, in_dim, n, r) as f64 <= budget)
        .last()
        .unwrap_or(0)
}

/// Replaces every layer `plan` selects (its rank rule and method are not used) by Tucker-2
/// factors shared within each group of `options.sharing`.
///
/// Every group's decomposition is computed before any layer is swapped, so an error leaves the
/// model whole. The report's `layers` hold each layer's core (`params_after` = R² + bias) and its
/// own relative error; `groups` the shared factors, counted once in every total.
pub fn compress_tucker2<M: Linears + ?Sized>(
    model: &mut M,
    plan: &Plan,
    options: &Tucker2Options,
) -> Result<Report> {
    let names = plan.resolve(model)?;
    let linear_params_before = linear_params(model);
    let mut decompositions = Vec::new();
    for (group, members) in groups(&names, options.sharing) {
        let members = members
            .iter()
            .map(|name| member(model, name))
            .collect::<Result<Vec<_>>>()?;
        decompositions.push(decompose(&group, &members, options)?);
    }
    let mut layers = Vec::with_capacity(names.len());
    let mut group_reports = Vec::with_capacity(decompositions.len());
    for decomposition in decompositions {
        for (report, layer) in decomposition.layers {
            linear::replace(model, &report.name, layer)?;
            layers.push(report);
        }
        group_reports.push(decomposition.report);
    }
    let mut report = Report {
        method: method_text(options.sharing),
        rule: format!("rank {}", options.rank),
        layers,
        groups: group_reports,
        linear_params_before,
        linear_params_after: 0,
    };
    report.linear_params_after =
        linear_params_before - report.params_before() + report.params_after();
    Ok(report)
}

/// The groups of `names` (model order kept inside each group), keyed by group name.
fn groups(names: &[String], sharing: Sharing) -> Vec<(String, Vec<String>)> {
    let mut grouped: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for (position, name) in names.iter().enumerate() {
        let key = match sharing {
            Sharing::All => (0, "all".to_string()),
            Sharing::PerBlock => match block_of(name) {
                Some((stack, block)) => (position_of_block(names, name), format!("{stack}{block}")),
                None => (position, name.clone()),
            },
            Sharing::PerTensor => {
                let kind = tensor_kind(name);
                let first = names
                    .iter()
                    .position(|n| tensor_kind(n) == kind)
                    .unwrap_or(0);
                (first, kind.to_string())
            }
        };
        grouped.entry(key).or_default().push(name.clone());
    }
    grouped
        .into_iter()
        .map(|((_, name), members)| (name, members))
        .collect()
}

/// Where a name's block first appears, so per-block groups come in model order.
fn position_of_block(names: &[String], name: &str) -> usize {
    let block = block_of(name);
    names.iter().position(|n| block_of(n) == block).unwrap_or(0)
}

/// `("encoder.layers.", 3)` for `encoder.layers.3.self_attn.q_proj`: the stack (so BART's
/// encoder and decoder blocks stay apart) and the block index.
pub fn block_of(name: &str) -> Option<(String, usize)> {
    for marker in ["layers.", "layer."] {
        let mut from = 0;
        while let Some(found) = name[from..].find(marker) {
            let start = from + found + marker.len();
            let digits: String = name[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !digits.is_empty() && name[start + digits.len()..].starts_with('.') {
                let index = digits.parse().ok()?;
                return Some((name[..start].to_string(), index));
            }
            from = start;
        }
    }
    None
}

/// The projection kind of a layer name: what follows its block (`self_attn.q_proj`,
/// `attention.self.query`), or the whole name outside blocks.
pub fn tensor_kind(name: &str) -> &str {
    match block_of(name) {
        Some((stack, block)) => {
            let skip = stack.len() + block.to_string().len() + 1;
            name.get(skip..).unwrap_or(name)
        }
        None => name,
    }
}

/// A selected layer as the decomposition needs it: its weight in f64, bias, dtype and device.
struct Member {
    name: String,
    weight: Array2<f64>,
    bias: Option<Tensor>,
    dtype: DType,
    device: Device,
}

fn member<M: Linears + ?Sized>(model: &M, name: &str) -> Result<Member> {
    match linear::find(model, name)? {
        Linear::Dense(d) => Ok(Member {
            name: name.to_string(),
            weight: to_array(&d.weight).map_err(|e| e.in_layer(name))?,
            bias: d.bias.clone(),
            dtype: d.weight.dtype(),
            device: d.weight.device().clone(),
        }),
        other => Err(Error::NotDense { kind: other.kind() }.in_layer(name)),
    }
}

struct GroupDecomposition {
    report: GroupReport,
    layers: Vec<(LayerReport, Linear)>,
}

fn decompose(
    group: &str,
    members: &[Member],
    options: &Tucker2Options,
) -> Result<GroupDecomposition> {
    let (out_dim, in_dim) = members[0].weight.dim();
    if let Some(odd) = members.iter().find(|m| m.weight.dim() != (out_dim, in_dim)) {
        return Err(Error::Tucker2Group {
            group: group.into(),
            reason: format!(
                "{} is {}×{} but {} is {out_dim}×{in_dim}; only matrices of one shape can share \
                 factors (choose other layers or another sharing)",
                odd.name,
                odd.weight.nrows(),
                odd.weight.ncols(),
                members[0].name
            ),
        });
    }
    check_group_rank(group, options.rank, out_dim, in_dim, members.len())?;
    let stacked = stack(members)?;
    let ranks = [options.rank, options.rank, members.len()];
    let (tucker, trace) = hooi(stacked.view().into_dyn(), &ranks, &options.hooi)?;
    let (u1, u2) = (&tucker.factors[0], &tucker.factors[1]);
    let cores = slice_cores(&tucker.core, &tucker.factors[2])?;
    let (dtype, device) = (members[0].dtype, &members[0].device);
    let (u1_tensor, u2_tensor) = (to_tensor(u1, dtype, device)?, to_tensor(u2, dtype, device)?);
    let mut layers = Vec::with_capacity(members.len());
    let (mut squared_error, mut squared_norm) = (0.0, 0.0);
    for (member, core) in members.iter().zip(&cores) {
        let error = frobenius_norm((&member.weight - &u1.dot(core).dot(&u2.t())).view());
        let norm = frobenius_norm(member.weight.view());
        squared_error += error * error;
        squared_norm += norm * norm;
        let bias_params = member.bias.as_ref().map_or(0, Tensor::elem_count);
        let report = LayerReport {
            name: member.name.clone(),
            in_dim,
            out_dim,
            rank: options.rank,
            params_before: out_dim * in_dim + bias_params,
            params_after: core.len() + bias_params,
            relative_error: error / norm.max(f64::MIN_POSITIVE),
            output_error: None,
        };
        let core = to_tensor(core, dtype, device)?;
        let layer = Linear::tucker2(
            u1_tensor.clone(),
            core,
            u2_tensor.clone(),
            member.bias.clone(),
        )?;
        layers.push((report, layer));
    }
    let report = GroupReport {
        name: group.into(),
        layers: members.iter().map(|m| m.name.clone()).collect(),
        rank: options.rank,
        out_dim,
        in_dim,
        shared_params: (out_dim + in_dim) * options.rank,
        relative_error: (squared_error / squared_norm.max(f64::MIN_POSITIVE)).sqrt(),
        iterations: trace.iterations(),
    };
    Ok(GroupDecomposition { report, layers })
}

fn check_group_rank(
    group: &str,
    rank: usize,
    out_dim: usize,
    in_dim: usize,
    n: usize,
) -> Result<()> {
    let dense = n * out_dim * in_dim;
    let factored = group_params(out_dim, in_dim, n, rank);
    let reason = if rank == 0 {
        "rank 0 keeps nothing"
    } else if rank > out_dim.min(in_dim) {
        "a factor cannot have more columns than its side of the matrix"
    } else if factored >= dense {
        "the shared factors and cores would hold at least as many numbers as the dense matrices"
    } else {
        return Ok(());
    };
    Err(Error::InvalidGroupRank {
        group: group.into(),
        rank,
        count: n,
        out_dim,
        in_dim,
        dense_params: dense,
        factored_params: factored,
        max_useful: largest_useful_group_rank(out_dim, in_dim, n),
        reason,
    })
}

/// The (out, in, N) tensor whose slice `k` along the last mode is `matrices[k]`.
fn stack(members: &[Member]) -> Result<Array3<f64>> {
    let (out_dim, in_dim) = members[0].weight.dim();
    let views: Vec<_> = members
        .iter()
        .map(|m| m.weight.view().insert_axis(Axis(2)))
        .collect();
    lowrank::ndarray::concatenate(Axis(2), &views).map_err(|e| Error::Tucker2Group {
        group: format!("{} matrices of {out_dim}×{in_dim}", members.len()),
        reason: e.to_string(),
    })
}

/// `Γ_k`: the core (R, R, N) times the third factor (N×N), sliced along the last mode.
fn slice_cores(core: &ArrayD<f64>, third: &Array2<f64>) -> Result<Vec<Array2<f64>>> {
    let core = core
        .view()
        .into_dimensionality::<Ix3>()
        .map_err(|e| Error::Tucker2Group {
            group: "core".into(),
            reason: e.to_string(),
        })?;
    let (r1, r2, n) = core.dim();
    let mut cores = Vec::with_capacity(third.nrows());
    for k in 0..third.nrows() {
        let mut gamma = Array2::<f64>::zeros((r1, r2));
        for j in 0..n {
            let weight = third[[k, j]];
            gamma.scaled_add(weight, &core.index_axis(Axis(2), j));
        }
        cores.push(gamma);
    }
    Ok(cores)
}
