//! Perplexity: exp of the mean negative log-likelihood per target token, the loss a language
//! model was trained on, read as "how many tokens it hesitates between".
//!
//! Two kinds of model. An encoder–decoder ([`seq2seq_perplexity`], BART on dialogue–summary
//! pairs) scores each target given its source under teacher forcing, as transformers'
//! `BartForConditionalGeneration(input_ids, attention_mask, labels=labels)` does: labels are the
//! target's ids (special tokens included) with padding set to -100, the decoder reads the labels
//! shifted right behind the decoder start token. A decoder-only model ([`causal_perplexity`]) scores
//! each text token by token, each position predicting the next, as transformers' causal-LM loss
//! does (transformers' `ForCausalLMLoss`); it takes any closure that maps ids and mask to logits,
//! e.g. `|ids, mask| model.forward(ids, mask)` for [`models::bart::BartForCausalLm`].
//!
//! Batches are padded, so the mean is taken once over all tokens of all batches, never as a mean
//! of batch means: the batch size changes only rounding.
//!
//! ```
//! use eval::perplexity::causal_perplexity;
//! use models::candle::{DType, Tensor};
//! use models::tokenizer::Tokenizer;
//!
//! let json = r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
//!     "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
//!     "decoder": null, "model": {"type": "WordLevel", "unk_token": "[UNK]",
//!     "vocab": {"[PAD]": 0, "[UNK]": 1, "low": 2, "rank": 3}}}"#;
//! let tokenizer = Tokenizer::from_tokenizers(json.parse()?)?;
//! // A model with no opinion (equal logits everywhere) hesitates between the whole vocabulary.
//! let uniform = |ids: &Tensor, _mask: &Tensor| {
//!     let (b_sz, seq_len) = ids.dims2()?;
//!     Ok(Tensor::zeros((b_sz, seq_len, 4), DType::F32, ids.device())?)
//! };
//! let result = causal_perplexity(uniform, &tokenizer, &["low rank low", "rank low"], 8)?;
//! assert_eq!(result.tokens, 3); // two predictions in the first text, one in the second
//! assert!((result.perplexity() - 4.0).abs() < 1e-5);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use models::candle::{DType, Device, Tensor};
use models::generation::Seq2Seq;
use models::loss::{IGNORE_INDEX, nll_sum, shift_tokens_right};
use models::tokenizer::Tokenizer;

use crate::error::{Error, Result};

/// Total and per-example negative log-likelihood (natural log) and the tokens they were summed
/// over; [`Perplexity::perplexity`] is exp(total / tokens).
///
/// Sums rather than means are kept so that results over parts of a data set add up exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Perplexity {
    /// Σ −log p(token) over every scored token of every example.
    pub total_nll: f64,
    /// How many tokens were scored (labels other than -100).
    pub tokens: usize,
    /// Each example's summed NLL, in input order.
    pub example_nll: Vec<f64>,
    /// Each example's scored tokens, in input order.
    pub example_tokens: Vec<usize>,
}

impl Perplexity {
    /// exp(mean NLL per token).
    pub fn perplexity(&self) -> f64 {
        self.mean_nll().exp()
    }

    /// Mean NLL per token: transformers' `loss` over the whole set.
    pub fn mean_nll(&self) -> f64 {
        self.total_nll / self.tokens as f64
    }

    /// Appends one batch's rows.
    fn push_batch(&mut self, logits: &Tensor, labels: &Tensor) -> Result<()> {
        let b_sz = labels.dim(0)?;
        for row in 0..b_sz {
            let (sum, count) = nll_sum(&logits.narrow(0, row, 1)?, &labels.narrow(0, row, 1)?)?;
            let nll = f64::from(sum.to_dtype(DType::F32)?.to_scalar::<f32>()?);
            self.total_nll += nll;
            self.tokens += count;
            self.example_nll.push(nll);
            self.example_tokens.push(count);
        }
        Ok(())
    }

    fn empty() -> Self {
        Perplexity {
            total_nll: 0.0,
            tokens: 0,
            example_nll: Vec::new(),
            example_tokens: Vec::new(),
        }
    }

    /// The finished result; an error when no token was scored (the mean would be 0/0).
    fn finish(self, what: &str) -> Result<Self> {
        if self.tokens == 0 {
            return Err(Error::Empty {
                what: format!("{what} (no token to score)"),
            });
        }
        Ok(self)
    }
}

/// Perplexity of an encoder–decoder `model` on `(source, target)` text pairs, `batch_size` pairs
/// per forward pass; inputs go to `device`, which must be the model's.
///
/// Sources and targets are tokenized with special tokens (for BART `<s> … </s>`), as
/// `tokenizer(source, text_target=target)` does, and truncated only if `tokenizer` has a
/// maximum length. The pad and decoder-start tokens come from [`Seq2Seq::special_tokens`].
pub fn seq2seq_perplexity<M: Seq2Seq>(
    model: &M,
    tokenizer: &Tokenizer,
    pairs: &[(&str, &str)],
    batch_size: usize,
    device: &Device,
) -> Result<Perplexity> {
    check_batch_size(batch_size)?;
    if pairs.is_empty() {
        return Err(Error::Empty {
            what: "the list of (source, target) pairs".into(),
        });
    }
    let special = model.special_tokens();
    let mut result = Perplexity::empty();
    for batch in pairs.chunks(batch_size) {
        let sources: Vec<&str> = batch.iter().map(|(source, _)| *source).collect();
        let targets: Vec<&str> = batch.iter().map(|(_, target)| *target).collect();
        let source = tokenizer.encode_batch(&sources, true)?.to_device(device)?;
        let target = tokenizer.encode_batch(&targets, true)?;
        let labels = seq2seq_labels(&target.input_ids, &target.attention_mask)?;
        let decoder_input_ids = shift_tokens_right(
            &labels,
            special.pad_token_id,
            special.decoder_start_token_id,
        )?
        .to_dtype(DType::U32)?
        .to_device(device)?;
        // One encoder pass, then every decoder position at once under the causal mask: what
        // `forward` does, through the trait so any encoder–decoder is scored alike.
        let encoder_hidden = model.encode(&source.input_ids, &source.attention_mask)?;
        let mut cache = model.new_cache();
        let logits = model.decode(
            &decoder_input_ids,
            &encoder_hidden,
            &source.attention_mask,
            &mut cache,
        )?;
        result.push_batch(&logits, &labels.to_device(device)?)?;
    }
    result.finish("the targets")
}

/// Perplexity of a decoder-only model on `texts`, `batch_size` texts per call of `logits_fn`.
///
/// `logits_fn(input_ids, attention_mask)` gets (b, s) u32 tensors on the CPU (moving them to the
/// model's device is its job) and returns logits (b, s, vocab). Position t predicts token t + 1,
/// so a text of n tokens contributes n − 1 predictions (transformers' causal-LM loss shifts the
/// logits left; [`causal_labels`] shifts the labels instead, which is the same sum). Texts are
/// tokenized with the tokenizer's special tokens, as `tokenizer(texts)` does.
pub fn causal_perplexity<F>(
    mut logits_fn: F,
    tokenizer: &Tokenizer,
    texts: &[&str],
    batch_size: usize,
) -> Result<Perplexity>
where
    F: FnMut(&Tensor, &Tensor) -> models::Result<Tensor>,
{
    check_batch_size(batch_size)?;
    if texts.is_empty() {
        return Err(Error::Empty {
            what: "the list of texts".into(),
        });
    }
    let mut result = Perplexity::empty();
    for batch in texts.chunks(batch_size) {
        let encoded = tokenizer.encode_batch(batch, true)?;
        let labels = causal_labels(&encoded.input_ids, &encoded.attention_mask)?;
        let logits = logits_fn(&encoded.input_ids, &encoded.attention_mask)?;
        let (b_sz, seq_len) = labels.dims2()?;
        let (logits_b_sz, logits_len, _) = logits.dims3()?;
        if (logits_b_sz, logits_len) != (b_sz, seq_len) {
            return Err(Error::InvalidArgument {
                name: "logits_fn",
                value: format!("logits of shape {:?}", logits.dims()),
                reason: format!(
                    "the inputs are ({b_sz}, {seq_len}): need ({b_sz}, {seq_len}, vocab)"
                ),
            });
        }
        result.push_batch(&logits, &labels.to_device(logits.device())?)?;
    }
    result.finish("the texts")
}

/// Encoder–decoder labels: `target_ids` (b, t) as i64 with padding (mask 0) set to -100, so the
/// loss skips it. The decoder inputs are these shifted right ([`shift_tokens_right`]).
pub fn seq2seq_labels(target_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
    let (ids, mask) = rows(target_ids, attention_mask)?;
    let labels = ids
        .iter()
        .zip(&mask)
        .flat_map(|(ids, mask)| {
            ids.iter().zip(mask).map(|(&id, &keep)| {
                if keep == 0 {
                    IGNORE_INDEX
                } else {
                    i64::from(id)
                }
            })
        })
        .collect::<Vec<_>>();
    Ok(Tensor::from_vec(
        labels,
        target_ids.dims2()?,
        target_ids.device(),
    )?)
}

/// Causal-LM labels: position t holds token t + 1 of `input_ids` (b, s), -100 where that token is
/// padding and at the last position, which has no next token.
pub fn causal_labels(input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
    let (ids, mask) = rows(input_ids, attention_mask)?;
    let labels = ids
        .iter()
        .zip(&mask)
        .flat_map(|(ids, mask)| {
            (0..ids.len()).map(move |t| match (ids.get(t + 1), mask.get(t + 1)) {
                (Some(&next), Some(&keep)) if keep != 0 => i64::from(next),
                _ => IGNORE_INDEX,
            })
        })
        .collect::<Vec<_>>();
    Ok(Tensor::from_vec(
        labels,
        input_ids.dims2()?,
        input_ids.device(),
    )?)
}

/// A (b, s) tensor as rows.
type Rows = Vec<Vec<u32>>;

/// Ids and mask as rows of u32, after checking they have one (b, s) shape.
fn rows(ids: &Tensor, mask: &Tensor) -> Result<(Rows, Rows)> {
    let dims = ids.dims2()?;
    if mask.dims() != [dims.0, dims.1] {
        return Err(Error::InvalidArgument {
            name: "attention_mask",
            value: format!("shape {:?}", mask.dims()),
            reason: format!(
                "the ids are {:?}: need the same (batch, length)",
                ids.dims()
            ),
        });
    }
    Ok((
        ids.to_dtype(DType::U32)?.to_vec2()?,
        mask.to_dtype(DType::U32)?.to_vec2()?,
    ))
}

fn check_batch_size(batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::InvalidArgument {
            name: "batch_size",
            value: "0".into(),
            reason: "need at least one example per batch".into(),
        });
    }
    Ok(())
}
