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
use lowrank::ndarray::{Array2, Array3, ArrayD, Axis, Ix3, s};
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
    /// Tucker-2 of the weights reshaped per attention head ([`PerHead`]); `None` decomposes
    /// whole matrices.
    pub per_head: Option<PerHead>,
}

/// Split each matrix's output rows into `heads` blocks (head_dim × in), stack every head of every
/// matrix in the group, and decompose that: `U₁` (head_dim × `head_rank`) is shared by all heads,
/// `U₂` (in × rank) as before, and each head keeps a `head_rank` × rank core. For the projections
/// whose outputs are heads (q, k, v); an output projection mixes heads on its input instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerHead {
    pub heads: usize,
    pub head_rank: usize,
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
            per_head: None,
        }
    }

    /// Decomposes per head: `heads` heads, `U₁` of rank `head_rank` within a head.
    pub fn per_head(mut self, heads: usize, head_rank: usize) -> Self {
        self.per_head = Some(PerHead { heads, head_rank });
        self
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
    /// Heads per matrix when decomposed per head (1 otherwise).
    #[serde(default = "one")]
    pub heads: usize,
    /// `U₁`'s rank within a head, when decomposed per head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_rank: Option<usize>,
}

fn one() -> usize {
    1
}

/// The `(out + in)·R + N·R²` a group of `n` (out×in) matrices stores at rank `rank`.
pub fn group_params(out_dim: usize, in_dim: usize, n: usize, rank: usize) -> usize {
    GroupShape {
        rows: out_dim,
        cols: in_dim,
        slices: n,
    }
    .params(rank, rank)
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
    let (heads, r1) = match options.per_head {
        Some(p) => (p.heads, p.head_rank),
        None => (1, options.rank),
    };
    if heads == 0 || !out_dim.is_multiple_of(heads) {
        return Err(Error::Tucker2Group {
            group: group.into(),
            reason: format!("{out_dim} output rows do not split into {heads} heads"),
        });
    }
    let head_dim = out_dim / heads;
    let shape = GroupShape {
        rows: head_dim,
        cols: in_dim,
        slices: members.len() * heads,
    };
    check_group_rank(
        group,
        shape,
        (r1, options.rank),
        options.per_head.is_some(),
        members.len() * out_dim * in_dim,
    )?;
    let slices: Vec<Array2<f64>> = members
        .iter()
        .flat_map(|m| {
            (0..heads).map(move |h| {
                m.weight
                    .slice(s![h * head_dim..(h + 1) * head_dim, ..])
                    .to_owned()
            })
        })
        .collect();
    let stacked = stack(&slices)?;
    let ranks = [r1, options.rank, slices.len()];
    let (tucker, trace) = hooi(stacked.view().into_dyn(), &ranks, &options.hooi)?;
    let (u1, u2) = (&tucker.factors[0], &tucker.factors[1]);
    let head_cores = slice_cores(&tucker.core, &tucker.factors[2])?;
    let (dtype, device) = (members[0].dtype, &members[0].device);
    let (u1_tensor, u2_tensor) = (to_tensor(u1, dtype, device)?, to_tensor(u2, dtype, device)?);
    let mut layers = Vec::with_capacity(members.len());
    let (mut squared_error, mut squared_norm) = (0.0, 0.0);
    for (member, cores) in members.iter().zip(head_cores.chunks(heads)) {
        let views: Vec<_> = cores.iter().map(|c| c.view()).collect();
        let core =
            lowrank::ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Tucker2Group {
                group: group.into(),
                reason: e.to_string(),
            })?;
        let approx: Vec<Array2<f64>> = cores.iter().map(|c| u1.dot(c).dot(&u2.t())).collect();
        let approx_views: Vec<_> = approx.iter().map(|a| a.view()).collect();
        let approx = lowrank::ndarray::concatenate(Axis(0), &approx_views).map_err(|e| {
            Error::Tucker2Group {
                group: group.into(),
                reason: e.to_string(),
            }
        })?;
        let error = frobenius_norm((&member.weight - &approx).view());
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
        let core = to_tensor(&core, dtype, device)?;
        let (u1, u2, bias) = (u1_tensor.clone(), u2_tensor.clone(), member.bias.clone());
        let layer = if heads == 1 {
            Linear::tucker2(u1, core, u2, bias)?
        } else {
            Linear::tucker2_heads(u1, core, u2, bias, heads)?
        };
        layers.push((report, layer));
    }
    let report = GroupReport {
        name: group.into(),
        layers: members.iter().map(|m| m.name.clone()).collect(),
        rank: options.rank,
        out_dim,
        in_dim,
        shared_params: head_dim * r1 + in_dim * options.rank,
        relative_error: (squared_error / squared_norm.max(f64::MIN_POSITIVE)).sqrt(),
        iterations: trace.iterations(),
        heads,
        head_rank: options.per_head.map(|p| p.head_rank),
    };
    Ok(GroupDecomposition { report, layers })
}

/// The stacked tensor's sizes: `slices` matrices (or heads) of `rows` × `cols`.
#[derive(Clone, Copy)]
struct GroupShape {
    rows: usize,
    cols: usize,
    slices: usize,
}

impl GroupShape {
    fn params(&self, r1: usize, r2: usize) -> usize {
        self.rows * r1 + self.cols * r2 + self.slices * r1 * r2
    }
}

fn check_group_rank(
    group: &str,
    shape: GroupShape,
    (r1, r2): (usize, usize),
    per_head: bool,
    dense: usize,
) -> Result<()> {
    let factored = shape.params(r1, r2);
    let reason = if r1 == 0 || r2 == 0 {
        "rank 0 keeps nothing"
    } else if r1 > shape.rows || r2 > shape.cols {
        "a factor cannot have more columns than its side of the matrix (or head)"
    } else if factored >= dense {
        "the shared factors and cores would hold at least as many numbers as the dense matrices"
    } else {
        return Ok(());
    };
    // Per head, U₁'s rank is fixed and the rank asked about is U₂'s; otherwise both move.
    let max_useful = if per_head {
        (1..=shape.cols)
            .take_while(|&r| shape.params(r1, r) < dense)
            .last()
            .unwrap_or(0)
    } else {
        largest_useful_group_rank(shape.rows, shape.cols, shape.slices)
    };
    Err(Error::InvalidGroupRank {
        group: group.into(),
        rank: r2,
        count: shape.slices,
        out_dim: shape.rows,
        in_dim: shape.cols,
        dense_params: dense,
        factored_params: factored,
        max_useful,
        reason,
    })
}

/// The (out, in, N) tensor whose slice `k` along the last mode is `matrices[k]`.
fn stack(matrices: &[Array2<f64>]) -> Result<Array3<f64>> {
    let (out_dim, in_dim) = matrices[0].dim();
    let views: Vec<_> = matrices
        .iter()
        .map(|m| m.view().insert_axis(Axis(2)))
        .collect();
    lowrank::ndarray::concatenate(Axis(2), &views).map_err(|e| Error::Tucker2Group {
        group: format!("{} matrices of {out_dim}×{in_dim}", matrices.len()),
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
