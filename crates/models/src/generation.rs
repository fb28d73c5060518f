//! Decoding for encoder–decoder models: greedy, beam search and sampling over a KV cache.
//!
//! The contract a model offers to the decoders is [`Seq2Seq`]; `bart` implements it.

use candle_core::Tensor;

use crate::error::Result;

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
