//! `GenerationConfig`: the decoding options, named and defaulted as transformers'
//! `generation/configuration_utils.py` names them, read from a model's config.json.

use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, invalid};

/// When beam search stops, transformers' `early_stopping` (`true`, `false` or `"never"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// `false`: stop once the best running beam, scored at the current length, cannot beat the
    /// worst finished hypothesis (transformers' default heuristic).
    #[default]
    Heuristic,
    /// `true`: stop as soon as `num_beams` hypotheses have finished.
    WhenFull,
    /// `"never"`: canonical beam search; with `length_penalty > 0` the running beams are scored at
    /// `max_length`, the best length they could reach.
    Never,
}

impl From<bool> for EarlyStopping {
    fn from(early_stopping: bool) -> Self {
        if early_stopping {
            EarlyStopping::WhenFull
        } else {
            EarlyStopping::Heuristic
        }
    }
}

impl Serialize for EarlyStopping {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            EarlyStopping::Heuristic => serializer.serialize_bool(false),
            EarlyStopping::WhenFull => serializer.serialize_bool(true),
            EarlyStopping::Never => serializer.serialize_str("never"),
        }
    }
}

impl<'de> Deserialize<'de> for EarlyStopping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bool(flag) => Ok(flag.into()),
            Raw::Text(text) if text == "never" => Ok(EarlyStopping::Never),
            Raw::Text(text) => Err(serde::de::Error::custom(format!(
                "early_stopping must be true, false or \"never\", not {text:?}"
            ))),
        }
    }
}

/// Decoding options with transformers' names and defaults (`GenerationConfig()`), plus `seed`.
///
/// Lengths count decoder tokens including the decoder start token, as transformers' do for
/// encoder–decoders: `max_length: 20` yields at most 19 generated tokens.
///
/// ```
/// use models::generation::{EarlyStopping, GenerationConfig};
///
/// // facebook/bart-large-cnn's config.json carries its generation settings.
/// let config = GenerationConfig::from_model_config(&serde_json::json!({
///     "num_beams": 4, "max_length": 142, "min_length": 56, "length_penalty": 2.0,
///     "no_repeat_ngram_size": 3, "early_stopping": true, "forced_bos_token_id": 0,
///     "forced_eos_token_id": 2, "d_model": 1024
/// }))?;
/// assert_eq!((config.num_beams, config.max_length, config.min_length), (4, 142, 56));
/// assert_eq!(config.early_stopping, EarlyStopping::WhenFull);
/// assert_eq!(config.top_k, 50); // transformers' default, untouched
/// # Ok::<(), models::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationConfig {
    /// Longest decoder sequence, start token included.
    pub max_length: usize,
    /// When set, overrides `max_length` with `max_new_tokens + 1`.
    pub max_new_tokens: Option<usize>,
    /// EOS is banned while the decoder sequence (start token included) is shorter.
    pub min_length: usize,
    /// When set, overrides `min_length` with `min_new_tokens + 1`.
    pub min_new_tokens: Option<usize>,
    /// 1: greedy search or sampling; more: beam search.
    pub num_beams: usize,
    /// Beam hypotheses score `sum_logprobs / generated_len^length_penalty`.
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// No n-gram of this size occurs twice in a decoder sequence; 0 turns it off.
    pub no_repeat_ngram_size: usize,
    pub do_sample: bool,
    pub temperature: f64,
    pub top_k: usize,
    pub top_p: f64,
    /// Sequences returned per input: 1 for greedy search, at most `num_beams` for beam search.
    pub num_return_sequences: usize,
    /// Forced as the first generated token; unset falls back to the model's special tokens.
    #[serde(deserialize_with = "one_token")]
    pub forced_bos_token_id: Option<u32>,
    /// Forced when the sequence reaches `max_length - 1`; unset falls back to the model's.
    #[serde(deserialize_with = "one_token")]
    pub forced_eos_token_id: Option<u32>,
    /// Decode the newest token against a KV cache (true), or the whole sequence afresh each step.
    pub use_cache: bool,
    /// Lowrank's: the sampling RNG seed (ChaCha20); unset draws one from the OS.
    pub seed: Option<u64>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_length: 20,
            max_new_tokens: None,
            min_length: 0,
            min_new_tokens: None,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            do_sample: false,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            num_return_sequences: 1,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            use_cache: true,
            seed: None,
        }
    }
}

/// The keys [`GenerationConfig::update`] understands, as transformers spells them.
const KEYS: &[&str] = &[
    "max_length",
    "max_new_tokens",
    "min_length",
    "min_new_tokens",
    "num_beams",
    "length_penalty",
    "early_stopping",
    "no_repeat_ngram_size",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "num_return_sequences",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "use_cache",
    "seed",
];

impl GenerationConfig {
    /// Transformers' defaults overridden by the generation keys of a model's config.json (or a
    /// generation_config.json); other keys are ignored, as `GenerationConfig.from_model_config`
    /// does.
    pub fn from_model_config(config: &Value) -> Result<Self> {
        let mut generation = GenerationConfig::default();
        generation.update(config)?;
        Ok(generation)
    }

    /// Sets the generation keys present in `options` (a JSON object, such as the keyword
    /// arguments given to transformers' `generate`) and returns the keys it did not use, as
    /// `GenerationConfig.update` does. `null` clears an optional key and leaves the others alone.
    pub fn update(&mut self, options: &Value) -> Result<Vec<String>> {
        let Some(options) = options.as_object() else {
            return Err(invalid(format!(
                "generation options must be a JSON object, not {options}"
            )));
        };
        let mut unused = Vec::new();
        for (key, value) in options {
            if !self.set(key, value)? {
                unused.push(key.clone());
            }
        }
        Ok(unused)
    }

    fn set(&mut self, key: &str, value: &Value) -> Result<bool> {
        fn parse<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T> {
            T::deserialize(value)
                .map_err(|error| invalid(format!("generation config key {key}: {error}")))
        }
        let optional = matches!(
            key,
            "max_new_tokens"
                | "min_new_tokens"
                | "forced_bos_token_id"
                | "forced_eos_token_id"
                | "seed"
        );
        if value.is_null() && !optional {
            return Ok(KEYS.contains(&key));
        }
        match key {
            "max_length" => self.max_length = parse(key, value)?,
            "max_new_tokens" => self.max_new_tokens = parse(key, value)?,
            "min_length" => self.min_length = parse(key, value)?,
            "min_new_tokens" => self.min_new_tokens = parse(key, value)?,
            "num_beams" => self.num_beams = parse(key, value)?,
            "length_penalty" => self.length_penalty = parse(key, value)?,
            "early_stopping" => self.early_stopping = parse(key, value)?,
            "no_repeat_ngram_size" => self.no_repeat_ngram_size = parse(key, value)?,
            "do_sample" => self.do_sample = parse(key, value)?,
            "temperature" => self.temperature = parse(key, value)?,
            "top_k" => self.top_k = parse(key, value)?,
            "top_p" => self.top_p = parse(key, value)?,
            "num_return_sequences" => self.num_return_sequences = parse(key, value)?,
            "forced_bos_token_id" => {
                self.forced_bos_token_id = one_token(value)
                    .map_err(|error| invalid(format!("generation config key {key}: {error}")))?
            }
            "forced_eos_token_id" => {
                self.forced_eos_token_id = one_token(value)
                    .map_err(|error| invalid(format!("generation config key {key}: {error}")))?
            }
            "use_cache" => self.use_cache = parse(key, value)?,
            "seed" => self.seed = parse(key, value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The longest decoder sequence: `max_new_tokens + 1` when set, else `max_length`.
    pub fn resolved_max_length(&self) -> usize {
        self.max_new_tokens
            .map_or(self.max_length, |new_tokens| new_tokens + 1)
    }

    /// The shortest decoder sequence: `min_new_tokens + 1` when set, else `min_length`.
    pub fn resolved_min_length(&self) -> usize {
        self.min_new_tokens
            .map_or(self.min_length, |new_tokens| new_tokens + 1)
    }

    /// Checks the options for contradictions before any model work; each error names the option
    /// and what to set instead.
    pub fn validate(&self) -> Result<()> {
        if self.num_beams == 0 {
            return Err(invalid(
                "num_beams is 0; use 1 for greedy search or sampling, more for beam search",
            ));
        }
        if self.top_p.is_nan() || self.top_p <= 0.0 || self.top_p > 1.0 {
            return Err(invalid(format!(
                "top_p {} is outside (0, 1]; use 1 to turn nucleus filtering off",
                self.top_p
            )));
        }
        if self.do_sample && (self.temperature.is_nan() || self.temperature <= 0.0) {
            return Err(invalid(format!(
                "temperature {} must be > 0 when do_sample is true; for the most likely tokens set \
                 do_sample false (greedy search)",
                self.temperature
            )));
        }
        if self.do_sample && self.num_beams > 1 {
            return Err(invalid(format!(
                "beam sampling (do_sample with num_beams {}) is not supported; set do_sample false \
                 for beam search or num_beams 1 for sampling",
                self.num_beams
            )));
        }
        let max_length = self.resolved_max_length();
        if max_length <= 1 {
            let source = match self.max_new_tokens {
                Some(new_tokens) => format!("max_new_tokens {new_tokens}"),
                None => format!("max_length {}", self.max_length),
            };
            return Err(invalid(format!(
                "{source} leaves no room to generate: max_length counts the decoder start token, \
                 so it must be at least 2 (or max_new_tokens at least 1)"
            )));
        }
        if self.num_return_sequences == 0 {
            return Err(invalid("num_return_sequences is 0; use at least 1"));
        }
        if self.num_beams > 1 && self.num_return_sequences > self.num_beams {
            return Err(invalid(format!(
                "num_return_sequences {} exceeds num_beams {}; beam search returns at most \
                 num_beams hypotheses",
                self.num_return_sequences, self.num_beams
            )));
        }
        if self.num_beams == 1 && !self.do_sample && self.num_return_sequences > 1 {
            return Err(invalid(format!(
                "greedy search returns one sequence per input, not num_return_sequences {}; use \
                 beam search (num_beams >= {0}) or sampling (do_sample true)",
                self.num_return_sequences
            )));
        }
        Ok(())
    }
}

/// A token id given as a number or, as some configs write `forced_eos_token_id`, a one-element
/// list.
fn one_token<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(u32),
        List(Vec<u32>),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::One(id)) => Ok(Some(id)),
        Some(Raw::List(ids)) if ids.len() == 1 => Ok(ids.first().copied()),
        Some(Raw::List(ids)) => Err(serde::de::Error::custom(format!(
            "expected one token id, got {ids:?}; Lowrank forces a single token"
        ))),
    }
}
