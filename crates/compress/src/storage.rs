//! Compressed checkpoints: a folder a base model's loader can read, plus what surgery changed.
//!
//! `save_compressed` writes
//! - `model.safetensors`: every tensor of the source checkpoint, except that each linear layer's
//!   tensors come from the model as it is now ([`Linear::tensors`]): a factorized layer stores
//!   `<prefix>.u` (out×r) and `<prefix>.v` (r×in) and its bias, and no `weight`;
//! - Tucker-2 groups ([`crate::tucker2`]) store their shared `U₁`, `U₂` once, as
//!   `lowrank.tucker2.<group>.u1`/`.u2`, and each member layer its `<prefix>.core` and bias;
//! - `compression.json`: the [`Manifest`] (method, rule, each factorized layer with its checkpoint
//!   key and rank, totals, and the source's config.json copied);
//! - the source's config and tokenizer files, so the folder stands alone.
//!
//! Loading reads the manifest, checks every factor against it, stands a zero placeholder in for
//! each missing dense `weight` so the ordinary model loader runs unchanged, then swaps the factors
//! in. The folder is written in a temp directory beside the target and renamed into place, so a
//! crash never leaves half a checkpoint.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use models::bart::{self, Bart};
use models::bert::{self, BertModel, SentenceEncoder};
use models::tokenizer::Tokenizer;
use models::{Linear, Linears, linear};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io};
use crate::method::Method;
use crate::surgery::Report;

pub const MODEL_FILE: &str = "model.safetensors";
pub const MANIFEST_FILE: &str = "compression.json";
/// What `compression.json` says it is, so another JSON file is not mistaken for one.
pub const FORMAT: &str = "lowrank-compressed";
pub const FORMAT_VERSION: u32 = 2;
/// Version 1 (no Tucker-2 groups) still loads.
const OLDEST_VERSION: u32 = 1;
/// Where a Tucker-2 group's shared factors live in `model.safetensors`.
const GROUP_PREFIX: &str = "lowrank.tucker2.";

/// Files copied from the source folder when present: configs and tokenizers, never weights.
const AUX_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
];

/// `compression.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    pub version: u32,
    /// The [`Method`] as text (`svd`, `asvd alpha=0.5`, `whitened ridge=0.000001`).
    pub method: String,
    pub rule: String,
    /// The folder the base checkpoint came from, for the record.
    pub source: String,
    /// The source's config.json, verbatim.
    pub config: serde_json::Value,
    pub layers: Vec<ManifestLayer>,
    /// Tucker-2 groups: shared factors and the layers whose cores use them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ManifestGroup>,
    pub params_before: usize,
    pub params_after: usize,
}

/// One factorized layer: `key` is its tensors' prefix in `model.safetensors` (`model.` +
/// the layer name in a BART checkpoint saved by transformers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestLayer {
    pub name: String,
    pub key: String,
    pub in_dim: usize,
    pub out_dim: usize,
    pub rank: usize,
    pub relative_error: f64,
}

/// A Tucker-2 group: `key.u1` (out×rank) and `key.u2` (in×rank) are shared by its layers, each
/// of which stores `<layer key>.core` (rank×rank).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestGroup {
    pub name: String,
    pub key: String,
    pub in_dim: usize,
    pub out_dim: usize,
    pub rank: usize,
    pub relative_error: f64,
    pub layers: Vec<ManifestLayer>,
    /// Heads per matrix when decomposed per head: `key.u1` is then (out/heads × head_rank) and
    /// each core (heads·head_rank × rank).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub heads: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_rank: Option<usize>,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Writes `model` (compressed as `report` says) to `dir`, taking the tensors that are not linear
/// layers (embeddings, norms) and the config from `source_dir`, the folder it was loaded from.
/// Replaces a folder already at `dir`.
pub fn save_compressed<M: Linears + ?Sized>(
    model: &M,
    report: &Report,
    source_dir: &Path,
    dir: &Path,
) -> Result<Manifest> {
    let source_file = source_dir.join(MODEL_FILE);
    let mut tensors = read_safetensors(&source_file, &Device::Cpu)?;
    let prefix = checkpoint_prefix(model, &tensors, &source_file)?;
    let layers = manifest_layers(model, report, &prefix, &source_file)?;
    let groups = manifest_groups(report, &prefix);
    for (name, layer) in model.linears() {
        let key = format!("{prefix}{name}");
        tensors.retain(|k, _| {
            !k.strip_prefix(&key)
                .is_some_and(|rest| rest.starts_with('.'))
        });
        for (suffix, tensor) in layer.tensors() {
            if let Linear::Tucker2(_) = layer
                && (suffix == "u1" || suffix == "u2")
            {
                let group = groups
                    .iter()
                    .find(|g| g.layers.iter().any(|l| l.name == name));
                if let Some(group) = group {
                    let shared = format!("{}.{suffix}", group.key);
                    tensors.insert(shared, tensor.to_device(&Device::Cpu)?);
                }
                continue;
            }
            tensors.insert(format!("{key}.{suffix}"), tensor.to_device(&Device::Cpu)?);
        }
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        method: report.method.clone(),
        rule: report.rule.clone(),
        source: source_dir.display().to_string(),
        config: read_json(&source_dir.join("config.json"))?,
        layers,
        groups,
        params_before: report.params_before(),
        params_after: report.params_after(),
    };
    write_atomically(dir, |temp| {
        write_safetensors(&temp.join(MODEL_FILE), &tensors)?;
        write_manifest(&temp.join(MANIFEST_FILE), &manifest)?;
        copy_aux_files(source_dir, temp)
    })?;
    Ok(manifest)
}

/// Loads a folder [`save_compressed`] wrote: `build` makes the base model from a `VarBuilder` over
/// its tensors (dense placeholders stand in for factorized weights), then the factors replace
/// those layers. Fails, naming the file, when the manifest and the tensors or model disagree.
pub fn load_compressed<M, F>(
    dir: &Path,
    dtype: DType,
    device: &Device,
    build: F,
) -> Result<(M, Manifest)>
where
    M: Linears,
    F: FnOnce(VarBuilder<'static>, &Manifest) -> models::Result<M>,
{
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = read_manifest(&manifest_path)?;
    let model_path = dir.join(MODEL_FILE);
    let mut tensors = read_safetensors(&model_path, device)?;
    let mut factors = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        let (u, v) = take_factors(&mut tensors, layer, &model_path)?;
        let placeholder = Tensor::zeros((layer.out_dim, layer.in_dim), u.dtype(), device)?;
        tensors.insert(format!("{}.weight", layer.key), placeholder);
        factors.push((layer, u, v));
    }
    let mut cores = Vec::new();
    for group in &manifest.groups {
        let heads = group.heads.max(1);
        let r1 = group.head_rank.unwrap_or(group.rank);
        let [u1, u2] = [
            ("u1", [group.out_dim / heads, r1]),
            ("u2", [group.in_dim, group.rank]),
        ]
        .map(|(suffix, shape)| {
            let key = format!("{}.{suffix}", group.key);
            take_checked(&mut tensors, &key, shape, &group.name, &model_path)
        });
        let (u1, u2) = (u1?, u2?);
        for layer in &group.layers {
            let key = format!("{}.core", layer.key);
            let core = take_checked(
                &mut tensors,
                &key,
                [heads * r1, group.rank],
                &layer.name,
                &model_path,
            )?;
            let placeholder = Tensor::zeros((layer.out_dim, layer.in_dim), core.dtype(), device)?;
            tensors.insert(format!("{}.weight", layer.key), placeholder);
            cores.push((layer, u1.clone(), core, u2.clone(), heads));
        }
    }
    let is_factor = |k: &&String| {
        [".u", ".v", ".u1", ".u2", ".core"]
            .iter()
            .any(|suffix| k.ends_with(suffix))
    };
    if let Some(stray) = tensors.keys().find(is_factor) {
        return Err(manifest_error(
            &manifest_path,
            &format!(
                "{} holds the factor {stray}, which the manifest does not list",
                MODEL_FILE
            ),
        ));
    }
    let vb = VarBuilder::from_tensors(tensors, dtype, device);
    let mut model = build(vb, &manifest)?;
    for (layer, u, v) in factors {
        let bias = checked_bias(&model, layer, &manifest_path)?;
        let factored = Linear::low_rank(u.to_dtype(dtype)?, v.to_dtype(dtype)?, bias)?;
        linear::replace(&mut model, &layer.name, factored)?;
    }
    for (layer, u1, core, u2, heads) in cores {
        let bias = checked_bias(&model, layer, &manifest_path)?;
        let [u1, core, u2] = [u1, core, u2].map(|t| t.to_dtype(dtype));
        let factored = Linear::tucker2_heads(u1?, core?, u2?, bias, heads)?;
        linear::replace(&mut model, &layer.name, factored)?;
    }
    Ok((model, manifest))
}

/// A compressed BART folder (config.json beside the weights).
pub fn load_compressed_bart(dir: &Path, dtype: DType, device: &Device) -> Result<(Bart, Manifest)> {
    let config = bart::Config::from_json_file(&dir.join("config.json"))?;
    load_compressed(dir, dtype, device, |vb, _| Bart::load(vb, &config))
}

/// A compressed sentence encoder folder. The pipeline is all-MiniLM-L6-v2's (mean pooling,
/// normalized), whatever modules.json says; the tokenizer truncates at sentence_bert_config.json's
/// `max_seq_length` when the folder has one, else at the model's position limit.
pub fn load_compressed_sentence_encoder(
    dir: &Path,
    dtype: DType,
    device: &Device,
) -> Result<(SentenceEncoder, Manifest)> {
    let config = bert::Config::from_file(dir.join("config.json"))?;
    let max_length = max_seq_length(dir)?.unwrap_or(config.max_position_embeddings);
    let tokenizer = Tokenizer::from_dir(dir)?.with_max_length(Some(max_length))?;
    let (model, manifest) =
        load_compressed(dir, dtype, device, |vb, _| BertModel::load(vb, &config))?;
    Ok((SentenceEncoder::new(model, tokenizer), manifest))
}

/// What the tensors' keys put before a layer's name: `""`, `"model."` (BART as transformers
/// saves it) or `"bert."`, found from the first linear layer and checked on all of them.
fn checkpoint_prefix<M: Linears + ?Sized>(
    model: &M,
    tensors: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<String> {
    let names: Vec<String> = model.linears().into_iter().map(|(n, _)| n).collect();
    let Some(first) = names.first() else {
        return Err(manifest_error(path, "the model lists no linear layers"));
    };
    let has_layer = |key: &str| {
        tensors.contains_key(&format!("{key}.weight")) || tensors.contains_key(&format!("{key}.u"))
    };
    let prefix = ["", "model.", "bert."]
        .into_iter()
        .find(|p| has_layer(&format!("{p}{first}")))
        .ok_or_else(|| {
            manifest_error(
                path,
                &format!(
                    "it holds no {first}.weight under any known prefix; pass the folder the model \
                     was loaded from"
                ),
            )
        })?;
    if let Some(missing) = names.iter().find(|n| !has_layer(&format!("{prefix}{n}"))) {
        return Err(manifest_error(
            path,
            &format!(
                "it holds no {prefix}{missing}.weight; pass the folder the model was loaded from"
            ),
        ));
    }
    Ok(prefix.to_string())
}

/// The manifest's layer list, checking that every reported layer is low-rank at its rank and that
/// no other layer is in a form the manifest cannot describe.
fn manifest_layers<M: Linears + ?Sized>(
    model: &M,
    report: &Report,
    prefix: &str,
    path: &Path,
) -> Result<Vec<ManifestLayer>> {
    let mut layers = Vec::with_capacity(report.layers.len());
    for (name, layer) in model.linears() {
        let reported = report.layers.iter().find(|l| l.name == name);
        match (reported, layer) {
            (Some(r), Linear::LowRank(l)) if l.v.dims().first() == Some(&r.rank) => {
                layers.push(ManifestLayer {
                    name: name.clone(),
                    key: format!("{prefix}{name}"),
                    in_dim: r.in_dim,
                    out_dim: r.out_dim,
                    rank: r.rank,
                    relative_error: r.relative_error,
                });
            }
            (Some(r), Linear::Tucker2(t))
                if report.groups.iter().any(|g| g.layers.contains(&name))
                    && t.core.dims().get(1) == Some(&r.rank) => {}
            (None, Linear::Dense(_)) => {}
            (_, other) => {
                return Err(manifest_error(
                    path,
                    &format!(
                        "layer {name} is {} but the report {} it; save the report compress_model \
                         returned for this model",
                        other.kind(),
                        if reported.is_some() {
                            "factorizes"
                        } else {
                            "does not list"
                        }
                    ),
                ));
            }
        }
    }
    if let Some(stray) = report.layers.iter().find(|r| {
        !layers.iter().any(|l| l.name == r.name)
            && !report.groups.iter().any(|g| g.layers.contains(&r.name))
    }) {
        return Err(manifest_error(
            path,
            &format!(
                "the report names {}, which the model does not have",
                stray.name
            ),
        ));
    }
    Ok(layers)
}

/// Removes and checks `<key>.u` and `<key>.v`.
fn take_factors(
    tensors: &mut HashMap<String, Tensor>,
    layer: &ManifestLayer,
    path: &Path,
) -> Result<(Tensor, Tensor)> {
    let expected = [
        ("u", [layer.out_dim, layer.rank]),
        ("v", [layer.rank, layer.in_dim]),
    ];
    let mut found = Vec::with_capacity(2);
    for (suffix, shape) in expected {
        let key = format!("{}.{suffix}", layer.key);
        let tensor = tensors.remove(&key).ok_or_else(|| {
            manifest_error(
                path,
                &format!(
                    "the manifest factorizes {} but {key} is missing",
                    layer.name
                ),
            )
        })?;
        if tensor.dims() != shape {
            return Err(manifest_error(
                path,
                &format!(
                    "{key} has shape {:?}, but the manifest says rank {} of a {}→{} layer, so {shape:?}",
                    tensor.dims(),
                    layer.rank,
                    layer.in_dim,
                    layer.out_dim
                ),
            ));
        }
        found.push(tensor);
    }
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(u), Some(v)) => Ok((u, v)),
        _ => Err(manifest_error(path, "internal: factors went missing")),
    }
}

/// The bias of the model's layer `layer.name`, after checking it maps the sizes the manifest says.
fn checked_bias<M: Linears>(
    model: &M,
    layer: &ManifestLayer,
    path: &Path,
) -> Result<Option<Tensor>> {
    let current = linear::find(model, &layer.name)
        .map_err(|e| manifest_error(path, &format!("it lists layer {}, but {e}", layer.name)))?;
    if (current.in_dim(), current.out_dim()) != (layer.in_dim, layer.out_dim) {
        return Err(manifest_error(
            path,
            &format!(
                "it says {} maps {}→{}, but the model's layer maps {}→{}",
                layer.name,
                layer.in_dim,
                layer.out_dim,
                current.in_dim(),
                current.out_dim()
            ),
        ));
    }
    Ok(current.bias().cloned())
}

/// Removes `key` from `tensors`, checking it is there with `shape`; `owner` is the layer or group
/// the manifest says it belongs to.
fn take_checked(
    tensors: &mut HashMap<String, Tensor>,
    key: &str,
    shape: [usize; 2],
    owner: &str,
    path: &Path,
) -> Result<Tensor> {
    let tensor = tensors.remove(key).ok_or_else(|| {
        manifest_error(
            path,
            &format!("the manifest lists {owner} but {key} is missing"),
        )
    })?;
    if tensor.dims() != shape {
        return Err(manifest_error(
            path,
            &format!(
                "{key} has shape {:?}, but the manifest says {shape:?}",
                tensor.dims()
            ),
        ));
    }
    Ok(tensor)
}

/// The report's Tucker-2 groups as the manifest records them.
fn manifest_groups(report: &Report, prefix: &str) -> Vec<ManifestGroup> {
    report
        .groups
        .iter()
        .map(|g| ManifestGroup {
            name: g.name.clone(),
            key: format!(
                "{GROUP_PREFIX}{}",
                g.name
                    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
            ),
            in_dim: g.in_dim,
            out_dim: g.out_dim,
            rank: g.rank,
            relative_error: g.relative_error,
            heads: g.heads,
            head_rank: g.head_rank,
            layers: g
                .layers
                .iter()
                .map(|name| {
                    let error = report
                        .layers
                        .iter()
                        .find(|l| &l.name == name)
                        .map_or(f64::NAN, |l| l.relative_error);
                    ManifestLayer {
                        name: name.clone(),
                        key: format!("{prefix}{name}"),
                        in_dim: g.in_dim,
                        out_dim: g.out_dim,
                        rank: g.rank,
                        relative_error: error,
                    }
                })
                .collect(),
        })
        .collect()
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = std::fs::read_to_string(path).map_err(io("read", path))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| manifest_error(path, &format!("it is not a valid manifest: {e}")))?;
    if manifest.format != FORMAT || !(OLDEST_VERSION..=FORMAT_VERSION).contains(&manifest.version) {
        return Err(manifest_error(
            path,
            &format!(
                "it is format {:?} version {}, this build reads {FORMAT:?} versions {OLDEST_VERSION} to {FORMAT_VERSION}",
                manifest.format, manifest.version
            ),
        ));
    }
    // The factors are `u`, `v` whatever the method made them; an unknown name is still refused,
    // so a file from a future method is not loaded as if it were understood.
    let method = match crate::tucker2::parse_method_text(&manifest.method) {
        Some(sharing) => sharing.map(|_| ()),
        None => manifest.method.parse::<Method>().map(|_| ()),
    };
    if let Err(error) = method {
        return Err(manifest_error(path, &error.to_string()));
    }
    Ok(manifest)
}

fn write_manifest(path: &Path, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_string_pretty(manifest)
        .map_err(|e| manifest_error(path, &format!("cannot encode the manifest: {e}")))?;
    std::fs::write(path, json).map_err(io("write", path))?;
    sync(path)
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(io("read", path))?;
    serde_json::from_str(&text).map_err(|e| manifest_error(path, &format!("bad JSON: {e}")))
}

/// sentence_bert_config.json's `max_seq_length`, when the file and the key are there.
fn max_seq_length(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join("sentence_bert_config.json");
    if !path.exists() {
        return Ok(None);
    }
    let value = read_json(&path)?;
    Ok(value
        .get("max_seq_length")
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| usize::try_from(n).ok()))
}

fn read_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(io("read", path))?;
    candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| manifest_error(path, &format!("it is not a readable safetensors file: {e}")))
}

fn write_safetensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    candle_core::safetensors::save(tensors, path)
        .map_err(|e| io("write", path)(std::io::Error::other(e.to_string())))?;
    sync(path)
}

fn copy_aux_files(source_dir: &Path, target: &Path) -> Result<()> {
    for file in AUX_FILES {
        let from = source_dir.join(file);
        if !from.is_file() {
            continue;
        }
        let to = target.join(file);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::copy(&from, &to).map_err(io("copy", &from))?;
    }
    Ok(())
}

/// Fills a temp directory beside `dir` with `fill`, then swaps it in (see
/// [`models::atomic_dir::write_dir_atomically`]).
fn write_atomically(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    models::atomic_dir::write_dir_atomically(dir, ".tmp-compressed-", fill, |action, path, e| {
        io(action, path)(e)
    })
}

/// Flushes a written file, so the rename that publishes the folder never outruns its data.
fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", path))
}

fn manifest_error(path: &Path, message: &str) -> Error {
    Error::Manifest {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}
