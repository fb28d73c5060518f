//! The course's small BART summarizer, trained from scratch on the generated customer-service
//! dialogues: a byte-level BPE tokenizer learnt from the training split, a tiny BART trained with
//! teacher forcing by the [`Trainer`], saved the way Hugging Face's `save_pretrained` lays a model
//! out (`config.json`, `model.safetensors`, `tokenizer.json`), and judged on the held-out test
//! dialogues: unigram-overlap F1 of its summaries beside the lead-k baseline, and perplexity.
//!
//! ```
//! use train::summarizer::train_tokenizer;
//!
//! let texts = ["Anna: my card is lost", "Tom: I blocked the card"];
//! let tokenizer = train_tokenizer(&texts, 300)?;
//! let ids = tokenizer.encode("my card", true)?;
//! assert_eq!((ids[0], ids[ids.len() - 1]), (0, 2)); // <s> … </s>, as BART's tokenizer adds them
//! assert_eq!(tokenizer.decode(&ids, true)?, "my card");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use models::bart::{Bart, Config};
use models::generation::{self, GenerationConfig};
use models::loss::{IGNORE_INDEX, cross_entropy, nll_sum, shift_tokens_right};
use models::tokenizer::Tokenizer;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, ModelWrapper};

use crate::dialogues::{self, Dialogue, DialogueError};
use crate::optim::{AdamWConfig, OptimizerConfig, named_vars};
use crate::schedule::Schedule;
use crate::trainer::{Progress, Trainer, TrainerConfig};

/// BART's special tokens in id order: `<s>` = 0, `<pad>` = 1, `</s>` = 2, `<unk>` = 3,
/// `<mask>` = 4, as facebook/bart-base numbers them.
pub const SPECIAL_TOKENS: [&str; 5] = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];

/// The files a finished model directory holds; the last is this module's own report, written
/// last, so its presence means the directory is complete.
pub const FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    crate::metrics::LOSS_PLOT_FILE,
    REPORT_FILE,
];

/// The training and evaluation report saved beside the model.
pub const REPORT_FILE: &str = "summarizer_report.json";

/// The module's result.
pub type Result<T, E = SummarizerError> = std::result::Result<T, E>;

/// What training the summarizer can fail on.
#[derive(Debug, thiserror::Error)]
pub enum SummarizerError {
    /// The training loop failed (a non-finite loss, a bad setting).
    #[error(transparent)]
    Train(#[from] crate::Error),
    /// The model, tokenizer or generation failed.
    #[error(transparent)]
    Model(#[from] models::Error),
    /// Scoring failed.
    #[error(transparent)]
    Eval(#[from] eval::Error),
    /// The dialogue set could not be generated.
    #[error(transparent)]
    Dialogues(#[from] DialogueError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The loss chart could not be drawn or saved.
    #[error(transparent)]
    Plot(#[from] viz::Error),
    /// Training the tokenizer failed.
    #[error("cannot train the tokenizer: {0}")]
    Tokenizer(String),
    /// A setting is out of range.
    #[error("invalid summarizer config: {0}")]
    Config(String),
    /// Reading or writing a file failed; `action` says what was being done to `path`.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file of a model directory exists but cannot be parsed.
    #[error("{} is damaged: {message}", path.display())]
    CorruptFile { path: PathBuf, message: String },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SummarizerError {
    let path = path.to_path_buf();
    move |source| SummarizerError::Io {
        action,
        path,
        source,
    }
}

/// Everything that decides a run: data, tokenizer, model shape, optimization and evaluation.
/// Its hash names the cache directory, so two runs with equal configs share a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummarizerConfig {
    /// Training dialogues.
    pub n_train: usize,
    /// Validation dialogues (the loss reported during training).
    pub n_valid: usize,
    /// Held-out test dialogues (overlap, lead-k and perplexity).
    pub n_test: usize,
    /// Seeds the dialogue set, the initial weights and the batch order.
    pub seed: u64,
    /// The BPE vocabulary, special tokens and the 256 byte symbols included.
    pub vocab_size: usize,
    /// Hidden size.
    pub d_model: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Attention heads (encoder and decoder).
    pub attention_heads: usize,
    /// Feed-forward inner size (encoder and decoder).
    pub ffn_dim: usize,
    /// Learned positions (BART keeps two more rows).
    pub max_position_embeddings: usize,
    /// Dialogues are truncated to this many tokens, `<s>` and `</s>` included.
    pub max_source_len: usize,
    /// Summaries are truncated (and generated) to this many tokens.
    pub max_target_len: usize,
    /// Optimizer steps.
    pub steps: usize,
    /// Dialogues per step.
    pub batch_size: usize,
    /// AdamW's peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps, then linear decay to 0.
    pub warmup_steps: usize,
    /// Validation loss every this many steps.
    pub eval_every: usize,
    /// Beams for the test summaries (1: greedy search).
    pub num_beams: usize,
    /// Standard deviation of the initial weights (transformers' `init_std`). bart-base's 0.02
    /// suits d_model = 768; at d_model = 64 it leaves every sublayer's output ~50× smaller than
    /// the residual stream, attention starts uniform, the decoder learns the summaries' language
    /// long before it learns to look at the dialogue, and the encoder's outputs collapse to one
    /// vector within 20 steps (tests/summarizer.rs measures it). About 1/√d_model / 2 trains.
    pub init_std: f64,
}

impl Default for SummarizerConfig {
    /// The course's model: trains in a few minutes on two CPU cores.
    ///
    fn default() -> Self {
        Self {
            n_train: 2000,
            n_valid: 100,
            n_test: 100,
            seed: 0,
            vocab_size: 1000,
            d_model: 64,
            encoder_layers: 2,
            decoder_layers: 2,
            attention_heads: 4,
            ffn_dim: 256,
            max_position_embeddings: 256,
            max_source_len: 192,
            max_target_len: 48,
            steps: 600,
            batch_size: 16,
            lr: 3e-3,
            warmup_steps: 40,
            eval_every: 100,
            num_beams: 1,
            init_std: 0.06,
        }
    }
}

impl SummarizerConfig {
    /// A seconds-long run for tests and `lowrank train summarizer --quick`: the whole pipeline,
    /// a model too small and too briefly trained to summarize well.
    pub fn quick() -> Self {
        Self {
            n_train: 300,
            n_valid: 16,
            n_test: 16,
            vocab_size: 400,
            d_model: 32,
            ffn_dim: 64,
            max_source_len: 128,
            max_target_len: 32,
            steps: 60,
            batch_size: 8,
            lr: 5e-3,
            warmup_steps: 5,
            eval_every: 30,
            ..Self::default()
        }
    }

    /// A one-minute run of the default model on less data and fewer steps: the smallest run the
    /// tests use to show the model summarizes (it beats lead-k on held-out dialogues).
    pub fn small() -> Self {
        Self {
            n_train: 1000,
            n_test: 48,
            n_valid: 32,
            vocab_size: 500,
            max_source_len: 128,
            steps: 300,
            batch_size: 12,
            lr: 4e-3,
            warmup_steps: 20,
            eval_every: 150,
            ..Self::default()
        }
    }

    /// Checks the settings that would otherwise fail deep inside training.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("n_train", self.n_train),
            ("n_valid", self.n_valid),
            ("n_test", self.n_test),
            ("d_model", self.d_model),
            ("encoder_layers", self.encoder_layers),
            ("decoder_layers", self.decoder_layers),
            ("attention_heads", self.attention_heads),
            ("ffn_dim", self.ffn_dim),
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("eval_every", self.eval_every),
            ("num_beams", self.num_beams),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(SummarizerError::Config(format!(
                "{name} must be at least 1"
            )));
        }
        if !self.d_model.is_multiple_of(self.attention_heads) {
            return Err(SummarizerError::Config(format!(
                "d_model {} is not a multiple of attention_heads {}",
                self.d_model, self.attention_heads
            )));
        }
        // 256 byte symbols and the 5 special tokens come before any merge.
        if self.vocab_size < 262 {
            return Err(SummarizerError::Config(format!(
                "vocab_size {} leaves no room for merges: the 256 bytes and 5 special tokens \
                 need 261, use at least 262",
                self.vocab_size
            )));
        }
        for (name, len) in [
            ("max_source_len", self.max_source_len),
            ("max_target_len", self.max_target_len),
        ] {
            if len < 3 || len > self.max_position_embeddings {
                return Err(SummarizerError::Config(format!(
                    "{name} {len} must be between 3 and max_position_embeddings {}",
                    self.max_position_embeddings
                )));
            }
        }
        if !(self.init_std > 0.0 && self.init_std.is_finite()) {
            return Err(SummarizerError::Config(format!(
                "init_std {} must be a positive number",
                self.init_std
            )));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(SummarizerError::Config(format!(
                "lr {} must be a positive number",
                self.lr
            )));
        }
        Ok(())
    }

    /// A short stable hash of the config (FNV-1a of its JSON, 12 hex digits): the cache key.
    pub fn short_hash(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{:012x}", hash >> 16)
    }

    /// `dialogue-bart-<short hash>`: the model's directory name under `<cache>/models`.
    pub fn dir_name(&self) -> String {
        format!("dialogue-bart-{}", self.short_hash())
    }

    /// The BART config.json this run trains and saves, with Hugging Face's keys.
    pub fn bart_config_json(&self) -> Value {
        json!({
            "model_type": "bart",
            "architectures": ["BartForConditionalGeneration"],
            "vocab_size": self.vocab_size,
            "d_model": self.d_model,
            "encoder_layers": self.encoder_layers,
            "decoder_layers": self.decoder_layers,
            "encoder_attention_heads": self.attention_heads,
            "decoder_attention_heads": self.attention_heads,
            "encoder_ffn_dim": self.ffn_dim,
            "decoder_ffn_dim": self.ffn_dim,
            "activation_function": "gelu",
            "max_position_embeddings": self.max_position_embeddings,
            "scale_embedding": false,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "decoder_start_token_id": 2,
            "forced_bos_token_id": 0,
            "forced_eos_token_id": 2,
            "normalize_before": false,
            "add_final_layer_norm": false,
            "num_beams": self.num_beams,
            "no_repeat_ngram_size": 3,
            "early_stopping": true,
            "max_length": self.max_target_len,
            "init_std": self.init_std,
            "dropout": 0.0,
            "attention_dropout": 0.0,
            "activation_dropout": 0.0,
            "torch_dtype": "float32",
        })
    }

    /// [`SummarizerConfig::bart_config_json`] parsed as the model reads it.
    pub fn bart_config(&self) -> Result<Config> {
        serde_json::from_value(self.bart_config_json())
            .map_err(|e| SummarizerError::Config(format!("bad BART config: {e}")))
    }

    /// How test summaries are decoded: the saved config's generation keys.
    pub fn generation_config(&self) -> Result<GenerationConfig> {
        Ok(GenerationConfig::from_model_config(
            &self.bart_config_json(),
        )?)
    }
}

/// One test dialogue with its reference summary and the model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The dialogue (the model's input).
    pub dialogue: String,
    /// The reference summary.
    pub reference: String,
    /// The model's summary.
    pub summary: String,
}

/// What a run did and how good the model is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummarizerReport {
    /// The run's settings.
    pub config: SummarizerConfig,
    /// Parameters, as torch counts them (LM head tied to the embedding).
    pub parameters: usize,
    /// Seconds spent in the training loop (tokenizer training and evaluation excluded).
    pub train_seconds: f64,
    /// Seconds spent on the test evaluation (generation and perplexity).
    pub eval_seconds: f64,
    /// Training loss at every step.
    pub losses: Vec<f64>,
    /// Validation loss at every evaluation, as (step, loss).
    pub valid_losses: Vec<(usize, f64)>,
    /// Mean training loss over the first 10 steps.
    pub first_train_loss: f64,
    /// Mean training loss over the last 10 steps.
    pub final_train_loss: f64,
    /// Test-set perplexity of the reference summaries (teacher forcing).
    pub test_perplexity: f64,
    /// Mean unigram-overlap F1 of the model's test summaries against the references.
    pub overlap_f1: f64,
    /// Its precision and recall means.
    pub overlap_precision: f64,
    /// See `overlap_precision`.
    pub overlap_recall: f64,
    /// The lead-k baseline's mean F1 on the same dialogues.
    pub lead_k_f1: f64,
    /// The k of lead-k: the references' mean length in words, rounded.
    pub lead_k: usize,
    /// Mean ROUGE (rouge-score's definitions, stemmed) of the model's test summaries.
    #[serde(default)]
    pub rouge: eval::rouge::RougeScores,
    /// Mean ROUGE of lead-k on the same dialogues.
    #[serde(default)]
    pub lead_k_rouge: eval::rouge::RougeScores,
    /// The first test dialogues with both summaries.
    pub examples: Vec<Example>,
}

impl SummarizerReport {
    /// Reads `dir/summarizer_report.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(REPORT_FILE);
        let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
        serde_json::from_str(&text).map_err(|e| SummarizerError::CorruptFile {
            path,
            message: e.to_string(),
        })
    }
}

/// Whether `dir` holds a finished model (every file in [`FILES`]).
pub fn is_complete(dir: &Path) -> bool {
    FILES.iter().all(|file| dir.join(file).is_file())
}

/// A byte-level BPE tokenizer learnt from `texts`, BART's way: the 256 byte symbols, merges up to
/// `vocab_size` tokens, special tokens `<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3 `<mask>`=4, and a
/// post-processor that wraps each text in `<s> … </s>`.
pub fn train_tokenizer<S: AsRef<str> + Sync>(texts: &[S], vocab_size: usize) -> Result<Tokenizer> {
    let specials = SPECIAL_TOKENS
        .iter()
        .map(|token| AddedToken::from(*token, true))
        .collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(vocab_size)
        .min_frequency(2)
        .special_tokens(specials)
        .initial_alphabet(
            tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
                .into_iter()
                .collect(),
        )
        .build()
        .into();
    let mut inner = tokenizers::Tokenizer::new(ModelWrapper::BPE(BPE::default()));
    // BART's own settings: no prefix space, offsets trimmed.
    let byte_level = ByteLevel::default().add_prefix_space(false);
    inner
        .with_pre_tokenizer(Some(byte_level))
        .with_decoder(Some(byte_level))
        .with_post_processor(Some(
            RobertaProcessing::new(("</s>".into(), 2), ("<s>".into(), 0))
                .trim_offsets(true)
                .add_prefix_space(false),
        ));
    inner
        .train(&mut trainer, texts.iter())
        .map_err(|e| SummarizerError::Tokenizer(e.to_string()))?;
    for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
        if inner.token_to_id(token) != Some(id as u32) {
            return Err(SummarizerError::Tokenizer(format!(
                "special token {token} did not get id {id}"
            )));
        }
    }
    Ok(Tokenizer::from_tokenizers(inner)?)
}

/// A padded teacher-forcing batch.
struct Batch {
    input_ids: Tensor,
    attention_mask: Tensor,
    decoder_input_ids: Tensor,
    labels: Tensor,
    /// Label tokens (not -100): what the mean loss is over.
    tokens: usize,
}

/// Token ids of one (dialogue, summary) pair, special tokens included.
struct Pair {
    source: Vec<u32>,
    target: Vec<u32>,
}

fn encode_pairs(
    tokenizer: &Tokenizer,
    dialogues: &[Dialogue],
    cfg: &SummarizerConfig,
) -> Result<Vec<Pair>> {
    dialogues
        .iter()
        .map(|d| {
            let mut source = tokenizer.encode(&d.dialogue, true)?;
            let mut target = tokenizer.encode(&d.summary, true)?;
            truncate(&mut source, cfg.max_source_len);
            truncate(&mut target, cfg.max_target_len);
            Ok(Pair { source, target })
        })
        .collect()
}

/// Cuts `ids` to `max_len`, keeping the final `</s>`.
fn truncate(ids: &mut Vec<u32>, max_len: usize) {
    if ids.len() > max_len {
        let last = ids[ids.len() - 1];
        ids.truncate(max_len);
        ids[max_len - 1] = last;
    }
}

fn make_batch(pairs: &[&Pair], device: &Device) -> crate::Result<Batch> {
    const PAD: u32 = 1;
    let b = pairs.len();
    let s = pairs.iter().map(|p| p.source.len()).max().unwrap_or(1);
    let t = pairs.iter().map(|p| p.target.len()).max().unwrap_or(1);
    let mut ids = Vec::with_capacity(b * s);
    let mut mask = Vec::with_capacity(b * s);
    let mut labels = Vec::with_capacity(b * t);
    for pair in pairs {
        ids.extend(pair.source.iter().copied());
        ids.extend(std::iter::repeat_n(PAD, s - pair.source.len()));
        mask.extend(std::iter::repeat_n(1u32, pair.source.len()));
        mask.extend(std::iter::repeat_n(0u32, s - pair.source.len()));
        labels.extend(pair.target.iter().map(|&id| i64::from(id)));
        labels.extend(std::iter::repeat_n(IGNORE_INDEX, t - pair.target.len()));
    }
    let tokens = pairs.iter().map(|p| p.target.len()).sum();
    let labels = Tensor::from_vec(labels, (b, t), device)?;
    let decoder_input_ids = shift_tokens_right(&labels, PAD, 2)?.to_dtype(DType::U32)?;
    Ok(Batch {
        input_ids: Tensor::from_vec(ids, (b, s), device)?,
        attention_mask: Tensor::from_vec(mask, (b, s), device)?,
        decoder_input_ids,
        labels,
        tokens,
    })
}

/// Seeded N(0, init_std²) for every weight matrix and embedding, ones for
/// LayerNorm scales, zeros for biases. candle's `VarMap` creates a variable on first `get` with
/// the caller's hint, and BART's loader asks with the default hint, zeros: a model of zeros has
/// no gradient to break its symmetry, so every variable is set here after loading.
fn init_weights(varmap: &VarMap, seed: u64, std: f64) -> Result<()> {
    let std = std as f32;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_b0a7);
    let mut vars = named_vars(varmap)?;
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        let is_norm = name.contains("layer_norm") || name.contains("layernorm");
        if name.ends_with(".bias") || is_norm {
            continue; // Zeros and ones already: candle's layer_norm hints them.
        }
        let n = var.elem_count();
        let values: Vec<f32> = (0..n).map(|_| std * standard_normal(&mut rng)).collect();
        let tensor = Tensor::from_vec(values, var.shape(), var.device())?;
        var.set(&tensor)?;
    }
    Ok(())
}

/// Box–Muller: one standard normal draw.
fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Mean token NLL of `pairs` (teacher forcing, evaluation batches of 32).
fn mean_loss(model: &Bart, pairs: &[Pair], device: &Device) -> crate::Result<f64> {
    let mut total = 0.0;
    let mut count = 0usize;
    for chunk in pairs.chunks(32) {
        let refs: Vec<&Pair> = chunk.iter().collect();
        let batch = make_batch(&refs, device)?;
        let logits = model.forward(
            &batch.input_ids,
            &batch.attention_mask,
            &batch.decoder_input_ids,
        )?;
        let (sum, n) = nll_sum(&logits, &batch.labels)?;
        total += f64::from(sum.to_scalar::<f32>()?);
        count += n;
    }
    Ok(total / count.max(1) as f64)
}

/// Summaries of `dialogues` by `model`, `config`'s decoding, 32 at a time.
pub fn summarize(
    model: &Bart,
    tokenizer: &Tokenizer,
    dialogues: &[&str],
    config: &GenerationConfig,
    device: &Device,
) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(dialogues.len());
    for chunk in dialogues.chunks(32) {
        let encoded = tokenizer.encode_batch(chunk, true)?.to_device(device)?;
        let sequences =
            generation::generate(model, &encoded.input_ids, &encoded.attention_mask, config)?;
        for sequence in sequences {
            out.push(tokenizer.decode(&sequence, true)?.trim().to_string());
        }
    }
    Ok(out)
}

/// Trains the summarizer `cfg` describes on the CPU and saves it into `out_dir` (replaced if it
/// exists; written into a temporary sibling first and renamed, so an interrupted run leaves no
/// half model). `on_progress` hears about every training step.
pub fn train_summarizer(
    cfg: &SummarizerConfig,
    out_dir: &Path,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<SummarizerReport> {
    cfg.validate()?;
    let device = Device::Cpu;
    let split = dialogues::split(cfg.seed, cfg.n_train, cfg.n_valid, cfg.n_test)?;

    // The tokenizer sees training text only, dialogues and summaries.
    let texts: Vec<&str> = split
        .train
        .iter()
        .flat_map(|d| [d.dialogue.as_str(), d.summary.as_str()])
        .collect();
    let tokenizer =
        train_tokenizer(&texts, cfg.vocab_size)?.with_max_length(Some(cfg.max_source_len))?;
    let train_pairs = encode_pairs(&tokenizer, &split.train, cfg)?;
    let valid_pairs = encode_pairs(&tokenizer, &split.valid, cfg)?;

    let bart_config = cfg.bart_config()?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    // The loader finds the layout by the embedding's name, so it must exist before loading.
    vb.get_with_hints(
        (cfg.vocab_size, cfg.d_model),
        "model.shared.weight",
        Init::Const(0.0),
    )?;
    let model = Bart::load(vb, &bart_config)?;
    init_weights(&varmap, cfg.seed, cfg.init_std)?;
    let parameters = model.parameter_count();

    let mut trainer_config = TrainerConfig::new(
        OptimizerConfig::AdamW(AdamWConfig {
            lr: cfg.lr,
            ..AdamWConfig::default()
        }),
        cfg.steps,
    );
    trainer_config.schedule = Schedule::linear(cfg.warmup_steps, cfg.steps);
    trainer_config.max_grad_norm = Some(1.0);
    trainer_config.eval_every = Some(cfg.eval_every);
    trainer_config.seed = cfg.seed;
    let mut trainer = Trainer::new(trainer_config, &varmap)?;

    let start = Instant::now();
    let n_train = train_pairs.len();
    let batch_size = cfg.batch_size.min(n_train);
    let mut evaluate = || mean_loss(&model, &valid_pairs, &device);
    let report = trainer.fit(
        |_, rng| {
            let picks: Vec<&Pair> = (0..batch_size)
                .map(|_| &train_pairs[rng.random_range(0..n_train)])
                .collect();
            make_batch(&picks, &device)
        },
        |batch, _forward| {
            let logits = model.forward(
                &batch.input_ids,
                &batch.attention_mask,
                &batch.decoder_input_ids,
            )?;
            Ok((cross_entropy(&logits, &batch.labels)?, batch.tokens))
        },
        Some(&mut evaluate),
        on_progress,
    )?;
    let train_seconds = start.elapsed().as_secs_f64();
    let losses = report.losses();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let head = &losses[..losses.len().min(10)];
    let tail = &losses[losses.len().saturating_sub(10)..];

    // Test evaluation: the model's summaries, lead-k on the same dialogues, perplexity.
    let start = Instant::now();
    let sources: Vec<&str> = split.test.iter().map(|d| d.dialogue.as_str()).collect();
    let references: Vec<&str> = split.test.iter().map(|d| d.summary.as_str()).collect();
    let generation_config = cfg.generation_config()?;
    let summaries = summarize(&model, &tokenizer, &sources, &generation_config, &device)?;
    let pairs: Vec<(&str, &str)> = summaries
        .iter()
        .map(String::as_str)
        .zip(references.iter().copied())
        .collect();
    let overlap = eval::overlap::mean_unigram_overlap(&pairs)?;
    let words: usize = references
        .iter()
        .map(|r| r.split_whitespace().count())
        .sum();
    let lead_k = (words as f64 / references.len().max(1) as f64).round() as usize;
    let leads: Vec<String> = sources
        .iter()
        .map(|s| eval::overlap::lead_k(s, lead_k))
        .collect();
    let lead_pairs: Vec<(&str, &str)> = leads
        .iter()
        .map(String::as_str)
        .zip(references.iter().copied())
        .collect();
    let lead = eval::overlap::mean_unigram_overlap(&lead_pairs)?;
    // ROUGE takes (target, prediction): the reference first.
    let rouge = eval::rouge::fast::FastRouge::new(true)?;
    let model_rouge = rouge.mean(&flip(&pairs))?;
    let lead_rouge = rouge.mean(&flip(&lead_pairs))?;
    let test_pairs: Vec<(&str, &str)> = sources
        .iter()
        .copied()
        .zip(references.iter().copied())
        .collect();
    let perplexity =
        eval::perplexity::seq2seq_perplexity(&model, &tokenizer, &test_pairs, 32, &device)?;
    let eval_seconds = start.elapsed().as_secs_f64();

    let examples = split
        .test
        .iter()
        .zip(&summaries)
        .take(2)
        .map(|(d, summary)| Example {
            dialogue: d.dialogue.clone(),
            reference: d.summary.clone(),
            summary: summary.clone(),
        })
        .collect();
    let result = SummarizerReport {
        config: cfg.clone(),
        parameters,
        train_seconds,
        eval_seconds,
        first_train_loss: mean(head),
        final_train_loss: mean(tail),
        losses,
        valid_losses: report.evals.iter().map(|e| (e.step, e.loss)).collect(),
        test_perplexity: perplexity.perplexity(),
        overlap_f1: overlap.f1,
        overlap_precision: overlap.precision,
        overlap_recall: overlap.recall,
        lead_k_f1: lead.f1,
        lead_k,
        rouge: model_rouge,
        lead_k_rouge: lead_rouge,
        examples,
    };
    save(out_dir, cfg, &varmap, &tokenizer, &result)?;
    Ok(result)
}

/// Writes the model directory into a temporary sibling of `out_dir`, then swaps it into place.
fn save(
    out_dir: &Path,
    cfg: &SummarizerConfig,
    varmap: &VarMap,
    tokenizer: &Tokenizer,
    report: &SummarizerReport,
) -> Result<()> {
    models::atomic_dir::write_dir_atomically(
        out_dir,
        ".summarizer-",
        |tmp| {
            let write_json = |name: &str, value: &Value| -> Result<()> {
                let path = tmp.join(name);
                let text = serde_json::to_string_pretty(value)
                    .map_err(|e| SummarizerError::Config(e.to_string()))?;
                std::fs::write(&path, text + "\n").map_err(io("write", &path))
            };
            write_json("config.json", &cfg.bart_config_json())?;
            varmap.save(tmp.join("model.safetensors"))?;
            // The saved tokenizer truncates nothing: `lowrank generate` sets its own limits.
            let mut inner = tokenizer.inner().clone();
            inner
                .with_truncation(None)
                .map_err(|e| SummarizerError::Tokenizer(e.to_string()))?;
            inner.with_padding(None);
            let path = tmp.join("tokenizer.json");
            inner.save(&path, true).map_err(|e| {
                SummarizerError::Tokenizer(format!("cannot write {}: {e}", path.display()))
            })?;
            crate::metrics::loss_plot(
                "Summarizer training loss",
                &report.losses,
                &report.valid_losses,
            )
            .save(tmp.join(crate::metrics::LOSS_PLOT_FILE))?;
            let report_value =
                serde_json::to_value(report).map_err(|e| SummarizerError::Config(e.to_string()))?;
            write_json(REPORT_FILE, &report_value)?;
            Ok(())
        },
        |action, path, e| io(action, path)(e),
    )
}

/// (prediction, reference) pairs as ROUGE takes them: (target, prediction).
fn flip<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    pairs
        .iter()
        .map(|&(prediction, reference)| (reference, prediction))
        .collect()
}
