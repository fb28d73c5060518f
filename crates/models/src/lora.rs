//! LoRA as Hugging Face PEFT does it: the same config file, the same layer choice, the same
//! initialisation, the same saved adapter, so an adapter trained here loads in PEFT and back.
//!
//! [`apply_lora`] wraps the layers [`LoraConfig::target_modules`] names in [`Linear::Lora`]:
//! `y = W·x + (α/r)·B·A·x` with `A` (r×in) drawn as torch's `kaiming_uniform_(a=√5)` draws it,
//! uniform in ±1/√in, and `B` (out×r) zero, so the model starts exactly where it was. `A` and `B`
//! are candle [`Var`]s registered in a [`VarMap`] under `{layer}.lora_A.weight` and
//! `{layer}.lora_B.weight`; the base weights stay plain tensors, so an optimizer over the map's
//! variables trains the adapter alone. [`merge_lora`] folds `(α/r)·B·A` into the dense weights for
//! inference and [`unmerge_lora`] takes it back out.
//!
//! [`save_adapter`] writes what PEFT's `save_pretrained` writes, `adapter_config.json` and
//! `adapter_model.safetensors` with keys `base_model.model.{key_prefix}{layer}.lora_A.weight`
//! (PEFT ≥ 0.13 leaves the adapter name `default` out); [`load_adapter`] reads them. `key_prefix`
//! is where the transformers class keeps the layers [`Linears`] lists: `"model."` for
//! BartForConditionalGeneration, whose encoder is `model.encoder`.
//!
//! PEFT's code this follows: `peft/tuners/lora/{config,layer,model}.py` and
//! `peft/tuners/tuners_utils.py` `check_target_module_exists`
//! (<https://github.com/huggingface/peft/tree/v0.13.0/src/peft/tuners/lora>).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::bart::Bart;
use crate::error::{Error, Result, invalid};
use crate::linear::{self, DropoutRng, Linear, Linears};

/// The adapter's config, as PEFT names it.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter's weights, as PEFT names them.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// What PEFT puts in front of the base model's own keys: `PeftModel.base_model` is the
/// `LoraModel`, whose `.model` is the transformers model.
pub const PEFT_KEY_PREFIX: &str = "base_model.model.";

/// PEFT's `LoraConfig` as `adapter_config.json` stores it; field names are PEFT's, so a config
/// PEFT wrote parses unchanged and one written here loads in PEFT.
///
/// ```
/// use models::lora::{LoraConfig, TargetModules};
///
/// let cfg: LoraConfig = serde_json::from_str(
///     r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}"#,
/// ).unwrap();
/// assert_eq!(cfg, LoraConfig::new(4, 8.0, &["q_proj", "v_proj"]));
/// assert_eq!(cfg.scaling(), 2.0);
/// assert!(cfg.target_modules.matches("encoder.layers.0.self_attn.q_proj")?);
/// assert!(!cfg.target_modules.matches("encoder.layers.0.self_attn.k_proj")?);
/// # Ok::<(), models::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Always `"LORA"`.
    #[serde(default = "lora_type")]
    pub peft_type: String,
    /// The rank of `B·A`.
    #[serde(default = "default_rank")]
    pub r: usize,
    /// The update is scaled by `lora_alpha / r`.
    #[serde(default = "default_alpha", serialize_with = "number")]
    pub lora_alpha: f64,
    /// Dropout on the adapter's input while training.
    #[serde(default)]
    pub lora_dropout: f64,
    /// Which layers get an adapter (see [`TargetModules::matches`]).
    pub target_modules: TargetModules,
    /// Only `"none"`: biases stay frozen.
    #[serde(default = "bias_none")]
    pub bias: String,
    /// Only `false`: weights are stored (out, in) as `nn.Linear` does (GPT-2's Conv1D would be true).
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// PEFT's task, e.g. `"SEQ_2_SEQ_LM"`; recorded, not used.
    #[serde(default)]
    pub task_type: Option<String>,
    /// The checkpoint the adapter was trained on; recorded, not used.
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// PEFT writes `true` when it saves.
    #[serde(default)]
    pub inference_mode: bool,
    /// `true`: `A` Kaiming-uniform, `B` zero (PEFT's default and the only one [`apply_lora`] does).
    #[serde(default = "yes")]
    pub init_lora_weights: bool,
    /// Every other field PEFT writes (`revision`, `use_rslora`, `rank_pattern`, …), kept so a
    /// config round-trips; [`LoraConfig::validate`] refuses those that would change the result.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

fn lora_type() -> String {
    "LORA".into()
}

fn default_rank() -> usize {
    8
}

fn default_alpha() -> f64 {
    8.0
}

fn bias_none() -> String {
    "none".into()
}

fn yes() -> bool {
    true
}

/// `8` rather than `8.0` when alpha is whole, as PEFT (an `int` field) writes it.
fn number<S: serde::Serializer>(
    value: &f64,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// PEFT fields that change what the adapter computes and that Lowrank does not implement; a
/// config that sets one is refused rather than silently misread.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("use_rslora", "false"),
    ("use_dora", "false"),
    ("rank_pattern", "{}"),
    ("alpha_pattern", "{}"),
    ("modules_to_save", "null"),
    ("layers_to_transform", "null"),
    ("layer_replication", "null"),
    ("exclude_modules", "null"),
    ("lora_bias", "false"),
    ("target_parameters", "null"),
    ("trainable_token_indices", "null"),
    ("megatron_config", "null"),
    ("alora_invocation_tokens", "null"),
    ("use_qalora", "false"),
    ("use_bdlora", "null"),
    ("arrow_config", "null"),
    ("kasa_config", "null"),
    ("monteclora_config", "null"),
    ("velora_config", "null"),
];

impl LoraConfig {
    /// PEFT's defaults (`lora_dropout` 0, `bias` "none", `init_lora_weights` true) with rank `r`,
    /// `lora_alpha` and the layers named in `targets` (see [`TargetModules::matches`]).
    pub fn new(r: usize, lora_alpha: f64, targets: &[&str]) -> Self {
        Self {
            peft_type: lora_type(),
            r,
            lora_alpha,
            lora_dropout: 0.0,
            target_modules: TargetModules::Names(targets.iter().map(|t| t.to_string()).collect()),
            bias: bias_none(),
            fan_in_fan_out: false,
            task_type: None,
            base_model_name_or_path: None,
            inference_mode: false,
            init_lora_weights: true,
            other: BTreeMap::new(),
        }
    }

    /// Reads and checks `adapter_config.json`.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source: with_hint(
                source,
                "a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors, \
                 as save_pretrained writes them",
            ),
        })?;
        let config_error = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let cfg: Self = serde_json::from_str(&text).map_err(|e| config_error(e.to_string()))?;
        cfg.problem()
            .map_or(Ok(cfg), |message| Err(config_error(message)))
    }

    /// `lora_alpha / r`, the factor PEFT calls `scaling`.
    pub fn scaling(&self) -> f64 {
        self.lora_alpha / self.r.max(1) as f64
    }

    /// Refuses what Lowrank's LoRA does not compute as PEFT would: another PEFT method, r = 0,
    /// trained biases, Conv1D layouts, rsLoRA, DoRA, per-layer ranks and the like.
    pub fn validate(&self) -> Result<()> {
        match self.problem() {
            Some(message) => Err(invalid(format!("LoRA config: {message}"))),
            None => Ok(()),
        }
    }

    fn problem(&self) -> Option<String> {
        if self.peft_type != "LORA" {
            return Some(format!(
                "peft_type is {:?}, but only LoRA adapters (\"LORA\") are supported",
                self.peft_type
            ));
        }
        if self.r == 0 {
            return Some("r is 0; a LoRA rank must be at least 1".into());
        }
        if !self.lora_alpha.is_finite() {
            return Some(format!(
                "lora_alpha {} is not a finite number",
                self.lora_alpha
            ));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Some(format!(
                "lora_dropout {} must be in [0, 1)",
                self.lora_dropout
            ));
        }
        if self.bias != "none" {
            return Some(format!(
                "bias = {:?} trains biases, which Lowrank's LoRA does not; use \"none\"",
                self.bias
            ));
        }
        if self.fan_in_fan_out {
            return Some(
                "fan_in_fan_out = true is for weights stored (in, out) like GPT-2's Conv1D; \
                 Lowrank stores every weight (out, in) as nn.Linear does: set it to false"
                    .into(),
            );
        }
        UNSUPPORTED.iter().find_map(|&(field, neutral)| {
            let value = self.other.get(field)?;
            is_set(value).then(|| {
                format!(
                    "{field} = {value} is not supported by Lowrank's LoRA (leave it out or set it to {neutral})"
                )
            })
        })
    }
}

/// Whether a PEFT option holds something other than its "off" value.
fn is_set(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(on) => *on,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        Value::Number(_) => true,
    }
}

/// PEFT's `target_modules`: a list of module names, or one string that is a regular expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TargetModules {
    Names(Vec<String>),
    Regex(String),
}

impl<'de> Deserialize<'de> for TargetModules {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        use serde_json::Value;
        match Value::deserialize(deserializer)? {
            Value::String(pattern) => Ok(TargetModules::Regex(pattern)),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(name) => Ok(name),
                    other => Err(D::Error::custom(format!(
                        "target_modules holds {other}, but every entry must be a module name"
                    ))),
                })
                .collect::<std::result::Result<_, _>>()
                .map(TargetModules::Names),
            other => Err(D::Error::custom(format!(
                "target_modules is {other}; it must be a list of module names (e.g. \
                 [\"q_proj\", \"v_proj\"], PEFT's default for BART) or a regular expression"
            ))),
        }
    }
}

impl TargetModules {
    /// PEFT's rule (`check_target_module_exists`): a listed name matches a layer called exactly
    /// that or ending in `.` + name (`q_proj` matches `encoder.layers.0.self_attn.q_proj`); a
    /// string must match the whole layer name (`re.fullmatch`). An invalid pattern is an error.
    ///
    /// The layer name is the one [`Linears`] lists, without the transformers class's own prefix:
    /// PEFT matches a pattern against `model.encoder…` in BartForConditionalGeneration, which
    /// makes a difference only to patterns that spell that prefix out.
    pub fn matches(&self, name: &str) -> Result<bool> {
        Ok(Matcher::new(self)?.matches(name))
    }
}

enum Matcher<'a> {
    Names(&'a [String]),
    Regex(tokenizers::utils::SysRegex),
}

impl<'a> Matcher<'a> {
    fn new(targets: &'a TargetModules) -> Result<Self> {
        match targets {
            TargetModules::Names(names) => Ok(Matcher::Names(names)),
            // fancy-regex (tokenizers' engine) follows Python's `re` syntax, lookarounds included.
            TargetModules::Regex(pattern) => {
                tokenizers::utils::SysRegex::new(&format!("^(?:{pattern})$"))
                    .map(Matcher::Regex)
                    .map_err(|e| {
                        invalid(format!(
                            "target_modules {pattern:?} is not a valid regular expression: {e}"
                        ))
                    })
            }
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Names(names) => names.iter().any(|target| name_matches(target, name)),
            Matcher::Regex(regex) => regex
                .find_iter(name)
                .any(|(start, end)| start == 0 && end == name.len()),
        }
    }
}

fn name_matches(target: &str, name: &str) -> bool {
    name == target
        || name
            .strip_suffix(target)
            .is_some_and(|head| head.ends_with('.'))
}

/// Wraps every layer `cfg` targets in [`Linear::Lora`] and returns their names, in model order.
///
/// `A` (r×in) is uniform in ±1/√in (torch's `kaiming_uniform_(a=√5)`, as PEFT initialises it),
/// drawn from ChaCha8 seeded with `seed`, layer after layer; `B` (out×r) is zero, so the model's
/// outputs are unchanged until `B` trains. Both are [`Var`]s in `varmap`, named
/// `{layer}.lora_A.weight` and `{layer}.lora_B.weight`, in the base weight's dtype and device;
/// a variable already in the map under that name is reused (as [`VarMap::get`] does), so a second
/// model built on the same map shares the adapter. The base stays a plain tensor: frozen.
///
/// Errors, leaving the model untouched: an invalid config, a listed target that matches no
/// layer (the error names the layers there are; PEFT raises too), a target layer that already
/// carries an adapter.
pub fn apply_lora<M: Linears + ?Sized>(
    model: &mut M,
    cfg: &LoraConfig,
    varmap: &VarMap,
    seed: u64,
) -> Result<Vec<String>> {
    cfg.validate()?;
    if !cfg.init_lora_weights {
        return Err(invalid(
            "LoRA config: init_lora_weights = false (random B) is not implemented; use true, \
             PEFT's default",
        ));
    }
    let targets = target_layers(&*model, cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut vars = varmap
        .data()
        .lock()
        .map_err(|_| invalid("the VarMap's lock is poisoned: a thread panicked holding it"))?;
    // Every factor is made and registered (fallibly) before any layer changes, so an error
    // leaves the model whole.
    let mut planned = Vec::with_capacity(targets.len());
    for (name, layer) in model.linears() {
        if !targets.contains(&name) {
            continue;
        }
        let (dtype, device) = dtype_device(&name, layer)?;
        let (in_dim, out_dim) = (layer.in_dim(), layer.out_dim());
        let bound = 1.0 / (in_dim as f32).sqrt();
        let uniform = rand::distr::Uniform::new(-bound, bound).map_err(|e| {
            invalid(format!(
                "{name}: cannot initialise lora_A for {in_dim} inputs: {e}"
            ))
        })?;
        let values: Vec<f32> = (0..cfg.r * in_dim).map(|_| rng.sample(uniform)).collect();
        let lora_a = Tensor::from_vec(values, (cfg.r, in_dim), &device)?.to_dtype(dtype)?;
        let lora_b = Tensor::zeros((out_dim, cfg.r), dtype, &device)?;
        let a_key = format!("{name}.lora_A.weight");
        let b_key = format!("{name}.lora_B.weight");
        let lora_a = variable(&mut vars, &a_key, lora_a, Existing::Keep)?;
        let lora_b = variable(&mut vars, &b_key, lora_b, Existing::Keep)?;
        planned.push((name, lora_a, lora_b));
    }
    let mut adapted = Vec::with_capacity(planned.len());
    let mut slots = model.linears_mut();
    for (name, lora_a, lora_b) in planned {
        let slot = slot(&mut slots, &name)?;
        **slot = Linear::lora(
            slot.clone(),
            lora_a,
            lora_b,
            cfg.lora_alpha,
            cfg.lora_dropout as f32,
        )?;
        adapted.push(name);
    }
    Ok(adapted)
}

/// The names of the layers `cfg` targets; an error for a list entry that matches nothing, a
/// pattern that matches nothing, or a target that already has an adapter.
fn target_layers<M: Linears + ?Sized>(model: &M, cfg: &LoraConfig) -> Result<Vec<String>> {
    let layers = model.linears();
    let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
    match &cfg.target_modules {
        TargetModules::Names(targets) if targets.is_empty() => {
            return Err(invalid(
                "LoRA config: target_modules is empty; name the layers to adapt, e.g. \
                 [\"q_proj\", \"v_proj\"]",
            ));
        }
        TargetModules::Names(targets) => {
            if let Some(target) = targets
                .iter()
                .find(|t| !names.iter().any(|n| name_matches(t, n)))
            {
                return Err(no_target(target, &names));
            }
        }
        TargetModules::Regex(_) => {}
    }
    let matcher = Matcher::new(&cfg.target_modules)?;
    let mut targets = Vec::new();
    for (name, layer) in &layers {
        if !matcher.matches(name) {
            continue;
        }
        if let Linear::Lora(_) = layer {
            return Err(invalid(format!(
                "{name} already has a LoRA adapter; merge_lora it first or start from a model \
                 without one"
            )));
        }
        targets.push(name.clone());
    }
    if let (TargetModules::Regex(pattern), true) = (&cfg.target_modules, targets.is_empty()) {
        return Err(no_target(pattern, &names));
    }
    Ok(targets)
}

fn no_target(target: &str, names: &[&str]) -> Error {
    let mut kinds: Vec<&str> = names
        .iter()
        .map(|n| n.rsplit('.').next().unwrap_or(n))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    Error::UnknownLayer {
        name: target.to_string(),
        hint: format!(
            "target_modules {target:?} matches none of the model's {} linear layers, whose names \
             end in {} (e.g. {}); an entry matches a name equal to it or ending in \".\" + it",
            names.len(),
            kinds.join(", "),
            names.first().unwrap_or(&"nothing")
        ),
    }
}

fn dtype_device(name: &str, layer: &Linear) -> Result<(DType, Device)> {
    layer
        .tensors()
        .first()
        .map(|(_, t)| (t.dtype(), t.device().clone()))
        .ok_or_else(|| invalid(format!("{name} holds no tensors")))
}

fn slot<'s, 'm>(
    slots: &'s mut [(String, &'m mut Linear)],
    name: &str,
) -> Result<&'s mut &'m mut Linear> {
    slots
        .iter_mut()
        .find(|(n, _)| n == name)
        .map(|(_, slot)| slot)
        .ok_or_else(|| invalid(format!("{name} disappeared from the model's layers")))
}

/// What to do with a variable already in the map.
#[derive(Clone, Copy)]
enum Existing {
    /// Use it as it is (a fresh adapter on a map that already has one).
    Keep,
    /// Give it the new value (an adapter loaded from a file).
    Overwrite,
}

/// The tensor of the map's variable `key`, created from `value` when absent.
fn variable(
    vars: &mut HashMap<String, Var>,
    key: &str,
    value: Tensor,
    existing: Existing,
) -> Result<Tensor> {
    if let Some(var) = vars.get(key) {
        if var.dims() != value.dims() {
            return Err(Error::ShapeMismatch {
                name: format!("{key} (already in the VarMap)"),
                expected: value.dims().to_vec(),
                actual: var.dims().to_vec(),
            });
        }
        if let Existing::Overwrite = existing {
            var.set(&value.to_dtype(var.dtype())?)?;
        }
        return Ok(var.as_tensor().clone());
    }
    let var = Var::from_tensor(&value)?;
    let tensor = var.as_tensor().clone();
    vars.insert(key.to_string(), var);
    Ok(tensor)
}

/// The factors [`merge_lora`] folded in, which [`unmerge_lora`] takes back out.
#[derive(Debug, Clone)]
pub struct MergedLora {
    layers: Vec<MergedLayer>,
}

#[derive(Debug, Clone)]
struct MergedLayer {
    name: String,
    lora_a: Tensor,
    lora_b: Tensor,
    alpha: f64,
    dropout: f32,
    /// A low-rank or Tucker-2 base, kept whole: subtracting from its merged (dense) form could
    /// not give the factors back. A dense base is recovered by subtraction, as PEFT does.
    factored_base: Option<Linear>,
}

impl MergedLora {
    /// The merged layers' names, in model order.
    pub fn names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

/// Folds every adapter into its layer, `W ← W + (α/r)·B·A` (PEFT's `merge`): the model computes
/// the same with one dense product per layer. Returns the factors, for [`unmerge_lora`]; the
/// merged weights are plain tensors, detached from the adapter's variables.
pub fn merge_lora<M: Linears + ?Sized>(model: &mut M) -> Result<MergedLora> {
    let mut slots = model.linears_mut();
    let mut merged = Vec::new();
    let mut records = Vec::new();
    for (name, layer) in slots.iter() {
        let Linear::Lora(lora) = &**layer else {
            continue;
        };
        let dense = Linear::dense(
            layer.effective_weight()?.detach(),
            lora.base.bias().cloned(),
        )?;
        merged.push((name.clone(), dense));
        records.push(MergedLayer {
            name: name.clone(),
            lora_a: lora.lora_a.clone(),
            lora_b: lora.lora_b.clone(),
            alpha: lora.alpha,
            dropout: lora.dropout,
            factored_base: match &*lora.base {
                Linear::Dense(_) => None,
                other => Some(other.clone()),
            },
        });
    }
    for (name, dense) in merged {
        **slot(&mut slots, &name)? = dense;
    }
    Ok(MergedLora { layers: records })
}

/// Takes merged adapters back out, `W ← W − (α/r)·B·A` (PEFT's `unmerge`), restoring each layer
/// [`merge_lora`] merged to LoRA form with the same `A` and `B` (the same variables, so training
/// can go on). Returns the layers' names. Errors, leaving the model untouched, when a layer is
/// missing or is no longer the dense layer the merge left.
pub fn unmerge_lora<M: Linears + ?Sized>(
    model: &mut M,
    merged: &MergedLora,
) -> Result<Vec<String>> {
    let mut slots = model.linears_mut();
    let mut restored = Vec::with_capacity(merged.layers.len());
    for record in &merged.layers {
        let name = &record.name;
        let Some((_, layer)) = slots.iter().find(|(n, _)| n == name) else {
            return Err(invalid(format!(
                "{name} was merged but the model has no such layer now; unmerge the model \
                 merge_lora was called on"
            )));
        };
        let Linear::Dense(_) = &**layer else {
            return Err(invalid(format!(
                "{name} is {} now, not the dense layer merge_lora left; it cannot be unmerged",
                layer.kind()
            )));
        };
        let (a, b) = (record.lora_a.clone(), record.lora_b.clone());
        let lora = match &record.factored_base {
            None => layer.unmerged(a, b, record.alpha, record.dropout)?,
            Some(base) => Linear::lora(base.clone(), a, b, record.alpha, record.dropout)?,
        };
        restored.push((name.clone(), lora));
    }
    let mut names = Vec::with_capacity(restored.len());
    for (name, lora) in restored {
        **slot(&mut slots, &name)? = lora;
        names.push(name);
    }
    Ok(names)
}

/// Gives every adapter of `model` one shared [`DropoutRng`] seeded with `seed` and returns it,
/// inactive: switch it on around training steps (and [`DropoutRng::reseed`] each step) so the
/// adapters' `lora_dropout` acts, reproducibly, and off to evaluate. Returns how many layers
/// received it alongside.
///
/// ```
/// # use candle_core::{Device, Tensor};
/// # use models::linear::{Linear, Linears};
/// # struct One(Linear);
/// # impl Linears for One {
/// #     fn linears(&self) -> Vec<(String, &Linear)> { vec![("fc".into(), &self.0)] }
/// #     fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> { vec![("fc".into(), &mut self.0)] }
/// # }
/// let ones = |shape: (usize, usize)| Tensor::ones(shape, candle_core::DType::F32, &Device::Cpu);
/// let base = Linear::dense(ones((3, 4))?, None)?;
/// let mut model = One(Linear::lora(base, ones((2, 4))?, ones((3, 2))?, 2.0, 0.5)?);
/// let (dropout, layers) = models::lora::attach_dropout(&mut model, 7);
/// assert_eq!(layers, 1);
/// let xs = ones((1, 4))?;
/// let eval = model.0.forward(&xs)?.to_vec2::<f32>()?;
/// dropout.set_active(true);
/// dropout.reseed(0);
/// let first = model.0.forward(&xs)?.to_vec2::<f32>()?;
/// dropout.reseed(0);
/// assert_eq!(model.0.forward(&xs)?.to_vec2::<f32>()?, first); // same seed and step, same masks
/// dropout.set_active(false);
/// assert_eq!(model.0.forward(&xs)?.to_vec2::<f32>()?, eval);
/// # Ok::<(), models::Error>(())
/// ```
pub fn attach_dropout<M: Linears + ?Sized>(model: &mut M, seed: u64) -> (DropoutRng, usize) {
    let rng = DropoutRng::new(seed);
    let mut layers = 0;
    for (_, layer) in model.linears_mut() {
        if let Linear::Lora(lora) = layer {
            lora.dropout_rng = Some(rng.clone());
            layers += 1;
        }
    }
    (rng, layers)
}

/// A model that counts all of its parameters as torch's `model.parameters()` does: a tied weight
/// once, buffers (BART's `final_logits_bias`) not at all, LoRA factors included.
pub trait ParameterCount {
    fn parameter_count(&self) -> usize;
}

impl ParameterCount for Bart {
    fn parameter_count(&self) -> usize {
        Bart::parameter_count(self)
    }
}

/// `(trainable, all)` as PEFT's `get_nb_trainable_parameters` counts them: the LoRA factors, and
/// every parameter of the model, factors included.
pub fn lora_parameter_counts<M: Linears + ParameterCount + ?Sized>(model: &M) -> (usize, usize) {
    let trainable = model
        .linears()
        .iter()
        .map(|(_, layer)| match layer {
            Linear::Lora(l) => l.lora_a.elem_count() + l.lora_b.elem_count(),
            _ => 0,
        })
        .sum();
    (trainable, model.parameter_count())
}

/// The line PEFT's `print_trainable_parameters` prints for `model`, e.g.
/// `trainable params: 1,024 || all params: 125,000 || trainable%: 0.8192`.
pub fn trainable_summary<M: Linears + ParameterCount + ?Sized>(model: &M) -> String {
    let (trainable, all) = lora_parameter_counts(model);
    trainable_parameters_line(trainable, all)
}

/// PEFT's `print_trainable_parameters` line for given counts (Python's `{:,}` and `{:.4f}`).
///
/// ```
/// assert_eq!(
///     models::lora::trainable_parameters_line(1536, 1_234_567),
///     "trainable params: 1,536 || all params: 1,234,567 || trainable%: 0.1244"
/// );
/// ```
pub fn trainable_parameters_line(trainable: usize, all: usize) -> String {
    let percent = if all == 0 {
        0.0
    } else {
        100.0 * trainable as f64 / all as f64
    };
    format!(
        "trainable params: {} || all params: {} || trainable%: {percent:.4}",
        thousands(trainable),
        thousands(all)
    )
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The adapter's factors under the keys PEFT saves them with,
/// `base_model.model.{key_prefix}{layer}.lora_A.weight` and `….lora_B.weight`, in model order.
pub fn adapter_tensors<M: Linears + ?Sized>(model: &M, key_prefix: &str) -> Vec<(String, Tensor)> {
    let mut tensors = Vec::new();
    for (name, layer) in model.linears() {
        if let Linear::Lora(l) = layer {
            let key = format!("{PEFT_KEY_PREFIX}{key_prefix}{name}");
            tensors.push((format!("{key}.lora_A.weight"), l.lora_a.clone()));
            tensors.push((format!("{key}.lora_B.weight"), l.lora_b.clone()));
        }
    }
    tensors
}

/// Writes the model's adapter as PEFT's `save_pretrained` does: `dir/adapter_model.safetensors`
/// (keys as [`adapter_tensors`] names them, metadata `format: pt`) and `dir/adapter_config.json`
/// (`cfg`, with `inference_mode` set as PEFT sets it on save). Each file goes to a temporary file
/// in `dir` first, then is renamed, so an interrupted save leaves the old file whole.
///
/// Errors when the model has no adapter or one whose rank or alpha differ from `cfg`'s.
pub fn save_adapter<M: Linears + ?Sized>(
    model: &M,
    cfg: &LoraConfig,
    dir: &Path,
    key_prefix: &str,
) -> Result<()> {
    cfg.validate()?;
    for (name, layer) in model.linears() {
        if let Linear::Lora(l) = layer
            && (l.rank() != cfg.r || l.alpha != cfg.lora_alpha)
        {
            return Err(invalid(format!(
                "{name} has r = {} and lora_alpha = {} but the config says r = {} and \
                 lora_alpha = {}; save with the config the adapter was made with",
                l.rank(),
                l.alpha,
                cfg.r,
                cfg.lora_alpha
            )));
        }
    }
    let tensors = adapter_tensors(model, key_prefix)
        .into_iter()
        .map(|(key, t)| Ok((key, t.detach().to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<Vec<_>>>()?;
    if tensors.is_empty() {
        return Err(invalid(
            "the model has no LoRA layers to save: apply_lora or load_adapter first",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes =
        safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(metadata))
            .map_err(candle_core::Error::from)?;
    write_atomically(&dir.join(WEIGHTS_FILE), &bytes)?;
    let saved = LoraConfig {
        peft_type: lora_type(),
        inference_mode: true,
        ..cfg.clone()
    };
    let json = serde_json::to_string_pretty(&saved)
        .map_err(|e| invalid(format!("cannot serialise the LoRA config: {e}")))?;
    write_atomically(&dir.join(CONFIG_FILE), json.as_bytes())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    if let Err(source) = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(source));
    }
    Ok(())
}

/// Reads a PEFT adapter folder (`adapter_config.json` + `adapter_model.safetensors`) and wraps
/// each layer it has weights for in [`Linear::Lora`] with those weights, cast to the layer's dtype
/// and device; returns the config. The factors are plain tensors (inference); see
/// [`load_adapter_trainable`] to train them further.
///
/// `key_prefix` as for [`save_adapter`] (`"model."` for BartForConditionalGeneration). Errors,
/// leaving the model untouched: a missing or malformed file, a config [`LoraConfig::validate`]
/// refuses, a tensor for a layer the model does not have or that is not a LoRA factor, a factor
/// without its partner, a shape that does not fit the layer and `r`, a layer that already has an
/// adapter.
pub fn load_adapter<M: Linears + ?Sized>(
    model: &mut M,
    dir: &Path,
    key_prefix: &str,
) -> Result<LoraConfig> {
    load(model, dir, key_prefix, None)
}

/// As [`load_adapter`], with the factors made [`Var`]s in `varmap` (named as [`apply_lora`]
/// names them; existing ones take the file's values), so training resumes from the adapter.
pub fn load_adapter_trainable<M: Linears + ?Sized>(
    model: &mut M,
    dir: &Path,
    key_prefix: &str,
    varmap: &VarMap,
) -> Result<LoraConfig> {
    load(model, dir, key_prefix, Some(varmap))
}

/// One layer's factors as the adapter file holds them.
#[derive(Default)]
struct Factors {
    lora_a: Option<(String, Tensor)>,
    lora_b: Option<(String, Tensor)>,
}

fn load<M: Linears + ?Sized>(
    model: &mut M,
    dir: &Path,
    key_prefix: &str,
    varmap: Option<&VarMap>,
) -> Result<LoraConfig> {
    let cfg = LoraConfig::from_json_file(&dir.join(CONFIG_FILE))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let by_layer = read_factors(&weights_path, key_prefix)?;

    // Check everything before changing anything.
    let mut planned = Vec::with_capacity(by_layer.len());
    for (name, factors) in by_layer {
        let layer = match linear::find(&*model, &name) {
            Ok(layer) => layer,
            Err(Error::UnknownLayer { name, hint }) => {
                return Err(Error::UnknownLayer {
                    hint: format!(
                        "{} has weights for it; check key_prefix ({key_prefix:?} here; \"model.\" \
                         for BartForConditionalGeneration, \"\" for BartModel); {hint}",
                        weights_path.display()
                    ),
                    name,
                });
            }
            Err(other) => return Err(other),
        };
        if let Linear::Lora(_) = layer {
            return Err(invalid(format!(
                "{name} already has a LoRA adapter; load into a model without one"
            )));
        }
        let key = format!("{PEFT_KEY_PREFIX}{key_prefix}{name}");
        let missing = |factor: &str| Error::MissingTensor {
            name: format!("{key}.{factor}.weight (in {})", weights_path.display()),
        };
        let (a_key, lora_a) = factors.lora_a.ok_or_else(|| missing("lora_A"))?;
        let (b_key, lora_b) = factors.lora_b.ok_or_else(|| missing("lora_B"))?;
        check_shape(&a_key, &lora_a, &[cfg.r, layer.in_dim()])?;
        check_shape(&b_key, &lora_b, &[layer.out_dim(), cfg.r])?;
        let (dtype, device) = dtype_device(&name, layer)?;
        let lora_a = lora_a.to_dtype(dtype)?.to_device(&device)?;
        let lora_b = lora_b.to_dtype(dtype)?.to_device(&device)?;
        planned.push((name, lora_a, lora_b));
    }

    let mut vars =
        match varmap {
            Some(varmap) => Some(varmap.data().lock().map_err(|_| {
                invalid("the VarMap's lock is poisoned: a thread panicked holding it")
            })?),
            None => None,
        };
    let mut slots = model.linears_mut();
    for (name, lora_a, lora_b) in planned {
        let (lora_a, lora_b) = match vars.as_deref_mut() {
            Some(vars) => (
                variable(
                    vars,
                    &format!("{name}.lora_A.weight"),
                    lora_a,
                    Existing::Overwrite,
                )?,
                variable(
                    vars,
                    &format!("{name}.lora_B.weight"),
                    lora_b,
                    Existing::Overwrite,
                )?,
            ),
            None => (lora_a, lora_b),
        };
        let slot = slot(&mut slots, &name)?;
        **slot = Linear::lora(
            slot.clone(),
            lora_a,
            lora_b,
            cfg.lora_alpha,
            cfg.lora_dropout as f32,
        )?;
    }
    Ok(cfg)
}

/// The factors in a PEFT adapter file, by layer name (without PEFT's and the class's prefixes).
fn read_factors(path: &Path, key_prefix: &str) -> Result<BTreeMap<String, Factors>> {
    let bytes = std::fs::read(path).map_err(|source| {
        let hint = if path.with_file_name("adapter_model.bin").exists() {
            "only adapter_model.safetensors is read; this adapter was saved as adapter_model.bin \
             (a torch pickle): save it again with save_pretrained(safe_serialization=True)"
        } else {
            "a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors, as \
             save_pretrained writes them"
        };
        Error::Io {
            path: path.to_path_buf(),
            source: with_hint(source, hint),
        }
    })?;
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a readable safetensors file: {e}"),
            ),
        })?;
    let prefix = format!("{PEFT_KEY_PREFIX}{key_prefix}");
    let mut by_layer: BTreeMap<String, Factors> = BTreeMap::new();
    for (key, tensor) in tensors {
        let Some(rest) = key.strip_prefix(&prefix) else {
            return Err(invalid(format!(
                "{}: tensor {key} does not start with {prefix:?}; PEFT saves \
                 base_model.model.<the transformers model's own key>: check key_prefix \
                 (\"model.\" for BartForConditionalGeneration, \"\" for BartModel)",
                path.display()
            )));
        };
        // PEFT ≥ 0.13 saves `lora_A.weight`; older files may keep the adapter name.
        let (layer, is_a) = if let Some(layer) =
            strip_any(rest, &[".lora_A.weight", ".lora_A.default.weight"])
        {
            (layer, true)
        } else if let Some(layer) = strip_any(rest, &[".lora_B.weight", ".lora_B.default.weight"]) {
            (layer, false)
        } else {
            return Err(invalid(format!(
                "{}: tensor {key} is not a lora_A or lora_B weight; adapters that also train \
                 biases, DoRA magnitudes, embeddings or modules_to_save are not supported",
                path.display()
            )));
        };
        let factors = by_layer.entry(layer.to_string()).or_default();
        let entry = if is_a {
            &mut factors.lora_a
        } else {
            &mut factors.lora_b
        };
        if entry.is_some() {
            return Err(invalid(format!(
                "{}: {key} appears twice (with and without the adapter name)",
                path.display()
            )));
        }
        *entry = Some((key, tensor));
    }
    Ok(by_layer)
}

fn strip_any<'a>(key: &'a str, suffixes: &[&str]) -> Option<&'a str> {
    suffixes.iter().find_map(|suffix| key.strip_suffix(suffix))
}

fn check_shape(key: &str, tensor: &Tensor, expected: &[usize]) -> Result<()> {
    if tensor.dims() == expected {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        name: key.to_string(),
        expected: expected.to_vec(),
        actual: tensor.dims().to_vec(),
    })
}

/// An I/O error whose text also says what the user should have there.
fn with_hint(error: std::io::Error, hint: &str) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{error} ({hint})"))
}
