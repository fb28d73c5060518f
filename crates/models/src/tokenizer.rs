//! A thin wrapper over Hugging Face `tokenizers` that turns a batch of texts into the tensors a
//! model takes: ids and attention mask, padded to the longest text, optionally truncated.
//!
//! Model-agnostic: BERT's WordPiece and BART's byte-level BPE load from the same `tokenizer.json`.
//! Padding and truncation stored in that file are replaced, as transformers' `tokenizer(...)` call
//! replaces them: padding is always to the longest text of the batch, on the right, with the
//! tokenizer's pad token; truncation is off until [`Tokenizer::with_max_length`] sets it.
//! (all-MiniLM-L6-v2's file says truncate to 128 and pad to 128; sentence-transformers truncates to
//! 256 and pads to the batch's longest.)
//!
//! ```
//! use models::tokenizer::Tokenizer;
//!
//! let json = r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
//!     "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
//!     "decoder": null, "model": {"type": "WordLevel", "unk_token": "[UNK]",
//!     "vocab": {"[PAD]": 0, "[UNK]": 1, "low": 2, "rank": 3}}}"#;
//! let tokenizer = Tokenizer::from_tokenizers(json.parse()?)?;
//! let batch = tokenizer.encode_batch(&["low rank", "rank"], false)?;
//! assert_eq!(batch.input_ids.to_vec2::<u32>()?, [[2, 3], [3, 0]]);
//! assert_eq!(batch.attention_mask.to_vec2::<u32>()?, [[1, 1], [1, 0]]);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, PostProcessor, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use crate::error::{Error, Result};

/// Pad tokens tried, in order, when `tokenizer.json` configures no padding: BERT's and BART's.
const PAD_TOKENS: [&str; 2] = ["[PAD]", "<pad>"];

/// A `tokenizer.json` tokenizer with explicit padding (batch-longest, right) and truncation.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Where it came from, for error messages (`<in memory>` when built in code).
    source: PathBuf,
    max_length: Option<usize>,
}

/// A tokenized batch: every tensor is (b, s), u32, on the CPU (models move it to their device).
///
/// u32 because that is what `tokenizers` produces and what candle's embedding lookup takes; the
/// mask is u32 too (1 for a token, 0 for padding) so the three tensors index alike.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Token ids, padded on the right with the tokenizer's pad id.
    pub input_ids: Tensor,
    /// 1 for real tokens (special tokens included), 0 for padding.
    pub attention_mask: Tensor,
    /// Segment ids (0 for a single text; BERT's sentence B gets 1), 0 on padding.
    pub token_type_ids: Tensor,
}

impl Encoded {
    /// Batch size and padded length.
    pub fn dims(&self) -> Result<(usize, usize)> {
        Ok(self.input_ids.dims2()?)
    }

    /// The three tensors moved to `device`.
    pub fn to_device(&self, device: &Device) -> Result<Encoded> {
        Ok(Encoded {
            input_ids: self.input_ids.to_device(device)?,
            attention_mask: self.attention_mask.to_device(device)?,
            token_type_ids: self.token_type_ids.to_device(device)?,
        })
    }
}

impl Tokenizer {
    /// Reads a `tokenizer.json`; a missing file is [`Error::Io`], a malformed one
    /// [`Error::Tokenizer`], both naming the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| Error::Tokenizer {
            message: format!("cannot parse {}: {e}", path.display()),
        })?;
        Self::with_source(inner, path.to_path_buf())
    }

    /// `dir/tokenizer.json`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_file(dir.as_ref().join("tokenizer.json"))
    }

    /// Wraps a tokenizer built in code; its padding and truncation are replaced as for a file.
    pub fn from_tokenizers(inner: tokenizers::Tokenizer) -> Result<Self> {
        Self::with_source(inner, PathBuf::from("<in memory>"))
    }

    fn with_source(mut inner: tokenizers::Tokenizer, source: PathBuf) -> Result<Self> {
        // The file's own pad token wins; else a conventional one if the vocabulary has it.
        let pad = match inner.get_padding() {
            Some(params) => Some((params.pad_token.clone(), params.pad_id, params.pad_type_id)),
            None => PAD_TOKENS.iter().find_map(|token| {
                inner
                    .token_to_id(token)
                    .map(|id| (token.to_string(), id, 0))
            }),
        };
        inner.with_padding(pad.map(|(pad_token, pad_id, pad_type_id)| PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id,
            pad_token,
        }));
        inner
            .with_truncation(None)
            .map_err(|e| tokenizer_error(&source, e))?;
        Ok(Tokenizer {
            inner,
            source,
            max_length: None,
        })
    }

    /// Pads with `token`, which must be in the vocabulary (for tokenizers that name none).
    pub fn with_pad_token(mut self, token: &str) -> Result<Self> {
        let pad_id = self
            .inner
            .token_to_id(token)
            .ok_or_else(|| Error::Tokenizer {
                message: format!(
                    "pad token {token:?} is not in the vocabulary of {}",
                    self.source.display()
                ),
            })?;
        self.inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token: token.to_string(),
        }));
        Ok(self)
    }

    /// Truncates every encoding to `max_length` tokens, special tokens included (transformers'
    /// `truncation=True, max_length=...`: longest-first, from the right); `None` turns it off.
    pub fn with_max_length(mut self, max_length: Option<usize>) -> Result<Self> {
        let params = match max_length {
            Some(max_length) => {
                let n_special = self
                    .inner
                    .get_post_processor()
                    .map_or(0, |processor| processor.added_tokens(false));
                if max_length <= n_special {
                    return Err(Error::Tokenizer {
                        message: format!(
                            "max length {max_length} leaves no room for text: {} adds {n_special} special tokens",
                            self.source.display()
                        ),
                    });
                }
                Some(TruncationParams {
                    direction: TruncationDirection::Right,
                    max_length,
                    strategy: TruncationStrategy::LongestFirst,
                    stride: 0,
                })
            }
            None => None,
        };
        self.inner
            .with_truncation(params)
            .map_err(|e| tokenizer_error(&self.source, e))?;
        self.max_length = max_length;
        Ok(self)
    }

    /// The truncation length, if any.
    pub fn max_length(&self) -> Option<usize> {
        self.max_length
    }

    /// The pad token and its id, if the tokenizer has one.
    pub fn pad_token(&self) -> Option<(&str, u32)> {
        self.inner
            .get_padding()
            .map(|params| (params.pad_token.as_str(), params.pad_id))
    }

    /// The id of `token`, if it is in the vocabulary (added tokens included).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size with added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// One text's ids, truncated but not padded.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| tokenizer_error(&self.source, e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Tokenizes `texts` into (b, s) tensors, s the longest encoding (after truncation); an empty
    /// batch gives (0, 0) tensors.
    pub fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Encoded> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), add_special_tokens)
            .map_err(|e| tokenizer_error(&self.source, e))?;
        let seq_len = encodings.first().map_or(0, |e| e.len());
        if let Some(ragged) = encodings.iter().find(|e| e.len() != seq_len) {
            // Only reachable without a pad token: the tokenizer pads everything otherwise.
            return Err(Error::Tokenizer {
                message: format!(
                    "cannot pad a batch of lengths {seq_len} and {}: {} has no pad token; call with_pad_token",
                    ragged.len(),
                    self.source.display()
                ),
            });
        }
        let stack = |part: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
            let values: Vec<u32> = encodings.iter().flat_map(|e| part(e).to_vec()).collect();
            Ok(Tensor::from_vec(
                values,
                (encodings.len(), seq_len),
                &Device::Cpu,
            )?)
        };
        Ok(Encoded {
            input_ids: stack(tokenizers::Encoding::get_ids)?,
            attention_mask: stack(tokenizers::Encoding::get_attention_mask)?,
            token_type_ids: stack(tokenizers::Encoding::get_type_ids)?,
        })
    }

    /// Text for `ids`; `skip_special_tokens` drops `[CLS]`, `<pad>` and the like.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| tokenizer_error(&self.source, e))
    }

    /// [`Tokenizer::decode`] for each row of ids.
    pub fn decode_batch(&self, ids: &[&[u32]], skip_special_tokens: bool) -> Result<Vec<String>> {
        self.inner
            .decode_batch(ids, skip_special_tokens)
            .map_err(|e| tokenizer_error(&self.source, e))
    }

    /// [`Tokenizer::decode_batch`] for a (b, s) tensor of ids (u32 or i64, say a generation's
    /// output).
    pub fn decode_tensor(&self, ids: &Tensor, skip_special_tokens: bool) -> Result<Vec<String>> {
        let rows = ids.to_dtype(candle_core::DType::U32)?.to_vec2::<u32>()?;
        let rows: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        self.decode_batch(&rows, skip_special_tokens)
    }
}

fn tokenizer_error(source: &Path, error: tokenizers::Error) -> Error {
    Error::Tokenizer {
        message: format!("{}: {error}", source.display()),
    }
}
