//! Decoding for encoder–decoder models: greedy, beam search and sampling over a KV cache.
//!
//! The contract a model offers to the decoders is [`Seq2Seq`]; `bart` implements it. [`generate`]
//! follows transformers' `GenerationMixin.generate` for encoder–decoders, token for token on the
//! same logits: the semantics of transformers 4.50 and later (whose beam search is the vectorized
//! rewrite), checked against transformers 5.17 by tests/generation.rs on the tiny-BART fixtures:
//! - the input is encoded once; each decoder sequence starts with `decoder_start_token_id`, and the
//!   returned sequences keep it, as transformers returns them;
//! - each step decodes only the newest token against the model's cache (`use_cache: false`
//!   decodes the whole sequence afresh each step, which gives the same tokens, slower);
//! - the logits are cast to `f32` and processed in transformers' order (see [`logits`]);
//! - greedy search takes the argmax; rows that produced EOS continue with `pad_token_id` until
//!   every row has finished or the sequences reach `max_length`, so all rows have one length;
//! - beam search and its length penalty are described in [`beam_search`];
//! - sampling draws from the processed, warped distribution with a seeded ChaCha20 RNG: the same
//!   seed gives the same tokens on every machine, but never the tokens torch's RNG would draw.
//!
//! ```
//! use models::generation::{GenerationConfig, generate};
//! # use candle_core::{Device, Tensor};
//! # use models::generation::{Seq2Seq, SpecialTokens};
//! # /// Logits favour `last token + 1`, and EOS (2) once the sequence holds 3 tokens.
//! # struct Counter;
//! # impl Seq2Seq for Counter {
//! #     type Cache = Vec<u32>;
//! #     fn encode(&self, ids: &Tensor, _: &Tensor) -> models::Result<Tensor> {
//! #         Ok(ids.to_dtype(candle_core::DType::F32)?.unsqueeze(2)?)
//! #     }
//! #     fn new_cache(&self) -> Vec<u32> { Vec::new() }
//! #     fn decode(&self, ids: &Tensor, _: &Tensor, _: &Tensor, cache: &mut Vec<u32>)
//! #         -> models::Result<Tensor> {
//! #         let mut rows = Vec::new();
//! #         for &token in &ids.flatten_all()?.to_vec1::<u32>()? {
//! #             cache.push(token);
//! #             let mut logits = vec![0f32; 8];
//! #             logits[if cache.len() >= 3 { 2 } else { (token as usize + 1) % 8 }] = 5.0;
//! #             rows.extend(logits);
//! #         }
//! #         Ok(Tensor::from_vec(rows, (1, ids.dim(1)?, 8), &Device::Cpu)?)
//! #     }
//! #     fn reorder_cache(&self, _: &mut Vec<u32>, _: &Tensor) -> models::Result<()> { Ok(()) }
//! #     fn special_tokens(&self) -> SpecialTokens {
//! #         SpecialTokens { bos_token_id: Some(0), eos_token_id: 2, pad_token_id: 1,
//! #             decoder_start_token_id: 2, forced_bos_token_id: None, forced_eos_token_id: None }
//! #     }
//! # }
//! # let model = Counter;
//! let input_ids = Tensor::new(&[[0u32, 5, 6, 2]], &Device::Cpu)?;
//! let attention_mask = Tensor::new(&[[1u32, 1, 1, 1]], &Device::Cpu)?;
//! let sequences = generate(&model, &input_ids, &attention_mask, &GenerationConfig::default())?;
//! assert_eq!(sequences, vec![vec![2, 3, 4, 2]]); // start token, two tokens, EOS
//! # Ok::<(), models::Error>(())
//! ```

mod beam;
mod config;
pub mod logits;

use candle_core::{DType, Device, IndexOp, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub use beam::beam_search;
pub use config::{EarlyStopping, GenerationConfig};

use crate::error::{Error, Result, invalid};
use logits::{LogitsProcessors, LogitsWarpers};

/// Token ids a decoder needs, read from the model's config.json as Hugging Face names them.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecialTokens {
    pub bos_token_id: Option<u32>,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
    pub decoder_start_token_id: u32,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<u32>,
}

/// An encoder–decoder model as the decoders see it.
pub trait Seq2Seq {
    /// Per-layer past keys and values of the decoder (self-attention grows by one position per
    /// step; cross-attention K/V are computed at the first step and then reused).
    type Cache;

    /// Encoder states (b, s, d) for `input_ids` (b, s) and `attention_mask` (b, s) of 1/0.
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor>;

    fn new_cache(&self) -> Self::Cache;

    /// Logits (b, t, vocab) for the `t` new decoder tokens `decoder_input_ids` (b, t), given the
    /// positions already in `cache`, which this call extends.
    fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut Self::Cache,
    ) -> Result<Tensor>;

    /// Keeps, for each row of the batch, the cache row `indices[row]` (beam search reorders beams).
    fn reorder_cache(&self, cache: &mut Self::Cache, indices: &Tensor) -> Result<()>;

    fn special_tokens(&self) -> SpecialTokens;
}

/// What the decoders report after each step, for progress bars and lessons that trace decoding.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Decoder sequence length after this step, start token included (2 after the first step).
    pub cur_len: usize,
    /// The length at which decoding stops at the latest.
    pub max_length: usize,
    /// The sequences being extended: one per row for greedy search and sampling, the running beams
    /// (batch · num_beams, each input's beams together) for beam search.
    pub sequences: &'a [Vec<u32>],
    /// Which of `sequences` are still open (greedy search and sampling: no EOS yet; beam search:
    /// every running beam is open).
    pub unfinished: &'a [bool],
}

/// Decodes `input_ids` (b, s) with `attention_mask` (b, s) as `config` says: beam search when
/// `num_beams > 1`, sampling when `do_sample`, else greedy search. Returns `b ·
/// num_return_sequences` token sequences of one length, each starting with the decoder start token
/// and padded with `pad_token_id`, as transformers' `generate` returns them for encoder–decoders.
pub fn generate<M: Seq2Seq>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Vec<Vec<u32>>> {
    generate_with_progress(model, input_ids, attention_mask, config, &mut |_| {})
}

/// [`generate`], calling `on_step` after every decoder step.
pub fn generate_with_progress<M: Seq2Seq>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
    on_step: &mut dyn FnMut(&Step<'_>),
) -> Result<Vec<Vec<u32>>> {
    config.validate()?;
    if config.num_beams > 1 {
        beam::run(model, input_ids, attention_mask, config, on_step)
    } else if config.do_sample {
        sample_or_greedy(model, input_ids, attention_mask, config, true, on_step)
    } else {
        sample_or_greedy(model, input_ids, attention_mask, config, false, on_step)
    }
}

/// Greedy search whatever `config.num_beams` and `config.do_sample` say: at each step the argmax
/// of the processed logits.
pub fn greedy_search<M: Seq2Seq>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Vec<Vec<u32>>> {
    let config = GenerationConfig {
        num_beams: 1,
        do_sample: false,
        ..config.clone()
    };
    config.validate()?;
    sample_or_greedy(
        model,
        input_ids,
        attention_mask,
        &config,
        false,
        &mut |_| {},
    )
}

/// Sampling whatever `config.num_beams` and `config.do_sample` say: each step draws from the
/// softmax of the processed logits after temperature, top-k and top-p, with a ChaCha20 RNG seeded
/// by `config.seed` (reproducible in Rust; torch's generator draws other numbers). Returns
/// `num_return_sequences` samples per input, each input's together.
pub fn sample<M: Seq2Seq>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Vec<Vec<u32>>> {
    let config = GenerationConfig {
        num_beams: 1,
        do_sample: true,
        ..config.clone()
    };
    config.validate()?;
    sample_or_greedy(model, input_ids, attention_mask, &config, true, &mut |_| {})
}

/// Greedy search (`sampling` false) or sampling: transformers' `_sample`.
fn sample_or_greedy<M: Seq2Seq>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
    sampling: bool,
    on_step: &mut dyn FnMut(&Step<'_>),
) -> Result<Vec<Vec<u32>>> {
    let special = model.special_tokens();
    let processors = LogitsProcessors::new(config, &special);
    let warpers = LogitsWarpers::new(config);
    let max_length = config.resolved_max_length();
    let mut rng = sampling.then(|| sampling_rng(config.seed));
    let copies = if sampling {
        config.num_return_sequences
    } else {
        1
    };
    let Some(mut decoder) = Decoder::new(model, input_ids, attention_mask, copies, config)? else {
        return Ok(Vec::new());
    };
    let rows = decoder.rows;
    let mut sequences = vec![vec![special.decoder_start_token_id]; rows];
    let mut unfinished = vec![true; rows];
    loop {
        let mut logits = decoder.next_logits(&sequences)?;
        check_vocab(&processors, &special, logits.first().map_or(0, Vec::len))?;
        for (row, scores) in logits.iter_mut().enumerate() {
            // Finished rows receive pad whatever they score; skipping them changes nothing.
            let token = if !unfinished[row] {
                special.pad_token_id
            } else {
                processors.apply(&sequences[row], scores);
                match rng.as_mut() {
                    Some(rng) => {
                        warpers.apply(scores);
                        draw(scores, rng)?
                    }
                    None => logits::argmax(scores) as u32,
                }
            };
            sequences[row].push(token);
            if token == special.eos_token_id {
                unfinished[row] = false;
            }
        }
        let cur_len = sequences.first().map_or(0, Vec::len);
        if cur_len >= max_length {
            unfinished.fill(false);
        }
        on_step(&Step {
            cur_len,
            max_length,
            sequences: &sequences,
            unfinished: &unfinished,
        });
        if !unfinished.contains(&true) {
            return Ok(sequences);
        }
    }
}

/// The sampling RNG: seeded by `seed`, else by a seed drawn from the thread RNG.
fn sampling_rng(seed: Option<u64>) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed.unwrap_or_else(|| rand::rng().random()))
}

/// One token drawn from `softmax(scores)` (torch's `multinomial` with one sample).
fn draw(scores: &[f32], rng: &mut ChaCha20Rng) -> Result<u32> {
    let probs = logits::softmax(scores);
    let total: f64 = probs.iter().map(|&p| f64::from(p)).sum();
    if total.is_nan() || total <= 0.0 || total.is_infinite() {
        return Err(invalid(
            "cannot sample: every token has probability 0 after the logits processors",
        ));
    }
    let target = rng.random::<f64>() * total;
    let mut cumulative = 0.0;
    let mut last_possible = 0;
    for (token, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            cumulative += f64::from(p);
            last_possible = token;
            if cumulative > target {
                return Ok(token as u32);
            }
        }
    }
    Ok(last_possible as u32)
}

/// The special and forced token ids must index the logits.
fn check_vocab(processors: &LogitsProcessors, special: &SpecialTokens, vocab: usize) -> Result<()> {
    let mut ids = processors.token_ids();
    ids.push(("pad_token_id", special.pad_token_id));
    for (name, id) in ids {
        if id as usize >= vocab {
            return Err(invalid(format!(
                "{name} {id} is outside the model's vocabulary of {vocab} logits"
            )));
        }
    }
    Ok(())
}

/// The encoder output, expanded to one row per decoded sequence, and the decoder's cache.
struct Decoder<'m, M: Seq2Seq> {
    model: &'m M,
    encoder_hidden: Tensor,
    encoder_mask: Tensor,
    /// `None` when `use_cache` is off: every step decodes the whole sequence with a fresh cache.
    cache: Option<M::Cache>,
    device: Device,
    /// Inputs in the batch.
    batch_size: usize,
    /// Decoded sequences: `batch_size · copies`.
    rows: usize,
}

impl<'m, M: Seq2Seq> Decoder<'m, M> {
    /// Encodes once, then repeats each input's encoder states and mask `copies` times in a row
    /// (torch's `repeat_interleave`, as transformers expands inputs for beams and samples).
    /// `None` for an empty batch.
    fn new(
        model: &'m M,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        copies: usize,
        config: &GenerationConfig,
    ) -> Result<Option<Self>> {
        let (b_sz, seq_len) = input_ids.dims2().map_err(|_| {
            invalid(format!(
                "input_ids must be (batch, seq_len), not {:?}",
                input_ids.dims()
            ))
        })?;
        if attention_mask.dims() != input_ids.dims() {
            return Err(invalid(format!(
                "attention_mask has shape {:?} but input_ids has {:?}; they must match, 1 for \
                 tokens and 0 for padding",
                attention_mask.dims(),
                [b_sz, seq_len]
            )));
        }
        if b_sz == 0 {
            return Ok(None);
        }
        let encoder_hidden = model.encode(input_ids, attention_mask)?;
        let (encoder_hidden, encoder_mask) = if copies > 1 {
            let device = encoder_hidden.device();
            let index: Vec<u32> = (0..b_sz as u32)
                .flat_map(|row| std::iter::repeat_n(row, copies))
                .collect();
            let index = Tensor::from_vec(index, b_sz * copies, device)?;
            let mask_index = index.to_device(attention_mask.device())?;
            (
                encoder_hidden.index_select(&index, 0)?,
                attention_mask.index_select(&mask_index, 0)?,
            )
        } else {
            (encoder_hidden, attention_mask.clone())
        };
        Ok(Some(Decoder {
            model,
            device: input_ids.device().clone(),
            cache: config.use_cache.then(|| model.new_cache()),
            encoder_hidden,
            encoder_mask,
            batch_size: b_sz,
            rows: b_sz * copies,
        }))
    }

    /// The `f32` logits of the token after each of `sequences` (one per row).
    fn next_logits(&mut self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let rows = sequences.len();
        let mut fresh;
        let (tokens, width, cache) = match self.cache.as_mut() {
            Some(cache) => {
                let last: Vec<u32> = sequences.iter().filter_map(|s| s.last().copied()).collect();
                (last, 1, cache)
            }
            None => {
                fresh = self.model.new_cache();
                let width = sequences.first().map_or(0, Vec::len);
                (sequences.concat(), width, &mut fresh)
            }
        };
        if tokens.len() != rows * width {
            return Err(invalid(
                "decoder sequences must all have one length (an internal invariant)",
            ));
        }
        let decoder_input_ids = Tensor::from_vec(tokens, (rows, width), &self.device)?;
        let logits = self.model.decode(
            &decoder_input_ids,
            &self.encoder_hidden,
            &self.encoder_mask,
            cache,
        )?;
        let (b_sz, t, vocab) = logits.dims3()?;
        if b_sz != rows || t != width {
            return Err(Error::ShapeMismatch {
                name: "decoder logits".into(),
                expected: vec![rows, width, vocab],
                actual: vec![b_sz, t, vocab],
            });
        }
        // (rows, t, vocab) -> (rows, vocab): the newest position only.
        let last = logits.i((.., t - 1, ..))?.to_dtype(DType::F32)?;
        Ok(last.to_vec2::<f32>()?)
    }

    /// Keeps cache row `indices[row]` for each row (no-op without a cache).
    fn reorder(&mut self, indices: &[u32]) -> Result<()> {
        if let Some(cache) = self.cache.as_mut() {
            let indices = Tensor::from_vec(indices.to_vec(), indices.len(), &self.device)?;
            self.model.reorder_cache(cache, &indices)?;
        }
        Ok(())
    }
}
