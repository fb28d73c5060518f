//! The intent model: a sentence encoder (MiniLM), optionally with LoRA adapters, mean-pooled, and
//! a linear head over the intents. A softmax confidence below the calibrated threshold means
//! "out of scope". Saved as a folder: `intent_model.json` (labels, threshold, where the base
//! encoder is, how it was trained), `head.safetensors`, and the PEFT adapter files for LoRA.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use models::bert::SentenceEncoder;
use models::candle::{DType, Device, Tensor};
use models::lora;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid, io_error};

/// The model card's file name inside a model folder.
pub const CARD_FILE: &str = "intent_model.json";
const HEAD_FILE: &str = "head.safetensors";
const CARD_FORMAT: u32 = 1;
/// How many runners-up a prediction lists.
pub const ALTERNATIVES: usize = 3;

/// How the encoder was adapted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Adaptation {
    /// The encoder as pretrained; only the head was trained (the cheap baseline).
    Frozen,
    /// LoRA adapters (saved beside the card as a PEFT adapter) plus the head.
    Lora {
        r: usize,
        alpha: f64,
        targets: Vec<String>,
    },
}

/// Everything about a trained model except its tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: u32,
    pub adaptation: Adaptation,
    pub labels: Vec<String>,
    /// Below this top-intent probability the input is out of scope.
    pub threshold: f32,
    /// The base sentence encoder's folder when the model was trained.
    pub encoder: PathBuf,
    pub dataset: String,
    /// Training facts for the report: epochs, batch, learning rate, seconds, device.
    pub training: serde_json::Value,
}

/// What the model thinks of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most likely intent's index.
    pub label: usize,
    /// Its probability.
    pub confidence: f32,
    /// Whether `confidence` reaches the threshold.
    pub in_scope: bool,
    /// The most likely intents after it, best first, with probabilities.
    pub alternatives: Vec<(usize, f32)>,
    /// Every intent's probability (label order).
    pub probabilities: Vec<f32>,
}

/// A sentence encoder and a linear head: logits = W·pool(encoder(text)) + b.
pub struct IntentModel {
    encoder: SentenceEncoder,
    weight: Tensor,
    bias: Tensor,
    card: ModelCard,
}

impl IntentModel {
    /// A model from its parts; `weight` is (intents, dim), `bias` (intents).
    pub fn new(
        encoder: SentenceEncoder,
        weight: Tensor,
        bias: Tensor,
        card: ModelCard,
    ) -> Result<Self> {
        if card.labels.len() < 2 {
            return Err(invalid("an intent model needs at least two intents"));
        }
        let expected = (card.labels.len(), encoder.dim());
        if weight.dims2()? != expected || bias.dims1()? != expected.0 {
            return Err(invalid(format!(
                "the head has shapes {:?} and {:?}; expected {expected:?} and [{}] for {} intents over {}-dimensional embeddings",
                weight.dims(),
                bias.dims(),
                expected.0,
                expected.0,
                expected.1
            )));
        }
        Ok(Self {
            encoder,
            weight,
            bias,
            card,
        })
    }

    /// Loads a model folder. The base encoder comes from `encoder` when given, else from the
    /// folder the card records. LoRA adapters are merged into the weights: serving then costs what
    /// the plain encoder costs.
    pub fn load(dir: &Path, encoder: Option<&Path>, device: &Device) -> Result<Self> {
        let card_path = dir.join(CARD_FILE);
        let text = std::fs::read_to_string(&card_path).map_err(|source| Error::Io {
            action: "read the intent model card",
            path: card_path.clone(),
            source,
        })?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|e| Error::Data {
            path: card_path.clone(),
            location: format!("line {}", e.line()),
            message: e.to_string(),
        })?;
        if card.format != CARD_FORMAT {
            return Err(invalid(format!(
                "{} has format {}; this build reads format {CARD_FORMAT}: retrain the model",
                card_path.display(),
                card.format
            )));
        }
        let encoder_dir = encoder.unwrap_or(&card.encoder);
        let mut sentence_encoder = SentenceEncoder::from_dir(encoder_dir, DType::F32, device)
            .map_err(|e| {
                invalid(format!(
                    "cannot load the base encoder from {} ({e}); pass the MiniLM folder with --encoder",
                    encoder_dir.display()
                ))
            })?;
        if let Adaptation::Lora { .. } = card.adaptation {
            lora::load_adapter(&mut sentence_encoder, dir, "")?;
            lora::merge_lora(&mut sentence_encoder)?;
        }
        let head_path = dir.join(HEAD_FILE);
        let mut tensors = models::candle::safetensors::load(&head_path, device)
            .map_err(|e| invalid(format!("cannot read {}: {e}", head_path.display())))?;
        let mut take = |name: &str| {
            tensors
                .remove(name)
                .ok_or_else(|| invalid(format!("{} has no tensor {name:?}", head_path.display())))
        };
        let (weight, bias) = (take("weight")?, take("bias")?);
        Self::new(sentence_encoder, weight, bias, card)
    }

    /// Writes the card, the head and (for LoRA, while the adapters are still separate) the
    /// adapter into `dir`, replacing it as a whole: a reader never sees half a model.
    pub fn save(&self, dir: &Path, lora_config: Option<&lora::LoraConfig>) -> Result<()> {
        models::atomic_dir::write_dir_atomically(
            dir,
            ".intent-model-",
            |temp| {
                if let Some(cfg) = lora_config {
                    lora::save_adapter(&self.encoder, cfg, temp, "")?;
                }
                let head = HashMap::from([
                    ("weight".to_string(), self.weight.to_device(&Device::Cpu)?),
                    ("bias".to_string(), self.bias.to_device(&Device::Cpu)?),
                ]);
                let head_path = temp.join(HEAD_FILE);
                models::candle::safetensors::save(&head, &head_path)?;
                let json = serde_json::to_string_pretty(&self.card)
                    .map_err(|e| invalid(format!("cannot serialise the model card: {e}")))?;
                std::fs::write(temp.join(CARD_FILE), json)
                    .map_err(io_error("write", temp.join(CARD_FILE)))
            },
            |action, path, source| Error::Io {
                action,
                path: path.to_path_buf(),
                source,
            },
        )
    }

    /// Folds LoRA adapters into the encoder's weights (after saving): inference then costs what
    /// the plain encoder costs. A no-op without adapters.
    pub fn merge_adapters(&mut self) -> Result<()> {
        lora::merge_lora(&mut self.encoder)?;
        Ok(())
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    pub fn labels(&self) -> &[String] {
        &self.card.labels
    }

    pub fn threshold(&self) -> f32 {
        self.card.threshold
    }

    pub fn set_threshold(&mut self, threshold: f32) {
        self.card.threshold = threshold;
    }

    pub fn encoder(&self) -> &SentenceEncoder {
        &self.encoder
    }

    /// The encoder, for surgery (compressing its attention, say) after loading.
    pub fn encoder_mut(&mut self) -> &mut SentenceEncoder {
        &mut self.encoder
    }

    pub fn device(&self) -> &Device {
        self.encoder.model().device()
    }

    /// Logits (n, intents) for `texts`, in batches of 64.
    pub fn logits(&self, texts: &[&str]) -> Result<Tensor> {
        if texts.is_empty() {
            return Err(invalid("no text to classify"));
        }
        let batches = texts
            .chunks(64)
            .map(|chunk| {
                let features = self.encoder.pooled(&self.encoder.encode(chunk)?)?;
                head_logits(&features, &self.weight, &self.bias)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&batches, 0)?)
    }

    /// Predictions for `texts`, in order.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        let probabilities = candle_nn::ops::softmax_last_dim(&self.logits(texts)?)?
            .to_device(&Device::Cpu)?
            .to_vec2::<f32>()?;
        Ok(probabilities
            .into_iter()
            .map(|p| prediction(p, self.card.threshold))
            .collect())
    }
}

/// `features·Wᵀ + b`.
pub(crate) fn head_logits(features: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    Ok(features.matmul(&weight.t()?)?.broadcast_add(bias)?)
}

/// Ranks one row of probabilities.
pub fn prediction(probabilities: Vec<f32>, threshold: f32) -> Prediction {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    let label = order[0];
    let confidence = probabilities[label];
    let alternatives = order
        .iter()
        .skip(1)
        .take(ALTERNATIVES)
        .map(|&i| (i, probabilities[i]))
        .collect();
    Prediction {
        label,
        confidence,
        in_scope: confidence >= threshold,
        alternatives,
        probabilities,
    }
}

/// The card's format number, for the training code that writes new cards.
pub(crate) fn card_format() -> u32 {
    CARD_FORMAT
}
