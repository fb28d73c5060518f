//! BART's blocks (positional embedding, encoder and decoder layers) and `BartForConditionalGeneration`
//! itself, following transformers' modeling_bart.py
//! (<https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/bart/modeling_bart.py>).

use candle_core::{Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};

use super::config::{Activation, Config};
use crate::attention::{KvCache, MultiHeadAttention, causal_mask, padding_mask};
use crate::error::{Error, Result, invalid};
use crate::generation::{Seq2Seq, SpecialTokens};
use crate::linear::{Linear, Linears, linear};

/// Every LayerNorm in BART uses PyTorch's default epsilon.
const LAYER_NORM_EPS: f64 = 1e-5;

/// BART reserves the first two rows of its position table (a fairseq leftover), so position p
/// reads row p + 2.
const POSITION_OFFSET: usize = 2;

/// BART's LayerNorm, differentiable when training (see `crate::norm`).
pub(super) fn ln(norm: &LayerNorm, xs: &Tensor) -> Result<Tensor> {
    crate::norm::layer_norm(norm, xs)
}

fn layer_norm(size: usize, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(candle_nn::layer_norm(size, LAYER_NORM_EPS, vb)?)
}

/// `fc2(act(fc1(xs)))`, the position-wise feed-forward block.
fn feed_forward(fc1: &Linear, fc2: &Linear, activation: Activation, xs: &Tensor) -> Result<Tensor> {
    fc2.forward(&activation.forward(&fc1.forward(xs)?)?)
}

/// transformers `BartLearnedPositionalEmbedding`: a learned table of
/// `max_position_embeddings + 2` rows, read from row `past + 2` on.
#[derive(Debug, Clone)]
struct LearnedPositionalEmbedding {
    weight: Tensor,
}

impl LearnedPositionalEmbedding {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let rows = cfg.max_position_embeddings + POSITION_OFFSET;
        let weight = vb.get((rows, cfg.d_model), "weight")?;
        Ok(Self { weight })
    }

    /// Embeddings (t, d) of positions `past..past + t`.
    fn forward(&self, seq_len: usize, past: usize) -> Result<Tensor> {
        let rows = self.weight.dim(0)?;
        if past + seq_len + POSITION_OFFSET > rows {
            return Err(invalid(format!(
                "{} positions exceed max_position_embeddings = {}",
                past + seq_len,
                rows - POSITION_OFFSET
            )));
        }
        Ok(self.weight.narrow(0, past + POSITION_OFFSET, seq_len)?)
    }
}

/// transformers `BartEncoderLayer`: post-LayerNorm self-attention, then feed-forward.
#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: MultiHeadAttention,
    self_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
    activation: Activation,
}

impl EncoderLayer {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (d, ffn) = (cfg.d_model, cfg.encoder_ffn_dim);
        Ok(Self {
            self_attn: MultiHeadAttention::load(
                vb.pp("self_attn"),
                d,
                cfg.encoder_attention_heads,
            )?,
            self_attn_layer_norm: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            fc1: linear(d, ffn, vb.pp("fc1"))?,
            fc2: linear(ffn, d, vb.pp("fc2"))?,
            final_layer_norm: layer_norm(d, vb.pp("final_layer_norm"))?,
            activation: cfg.activation()?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let attended = self.self_attn.forward(xs, Some(mask), None)?;
        let xs = ln(&self.self_attn_layer_norm, &(xs + attended)?)?;
        let fed = feed_forward(&self.fc1, &self.fc2, self.activation, &xs)?;
        ln(&self.final_layer_norm, &(xs + fed)?)
    }

    fn linears<'a>(&'a self, prefix: &str, out: &mut Vec<(String, &'a Linear)>) {
        push_attention(out, &format!("{prefix}.self_attn"), &self.self_attn);
        out.push((format!("{prefix}.fc1"), &self.fc1));
        out.push((format!("{prefix}.fc2"), &self.fc2));
    }

    fn linears_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Linear)>) {
        push_attention_mut(out, &format!("{prefix}.self_attn"), &mut self.self_attn);
        out.push((format!("{prefix}.fc1"), &mut self.fc1));
        out.push((format!("{prefix}.fc2"), &mut self.fc2));
    }
}

/// Past keys and values of one decoder layer.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    /// Grows by the new positions at every step.
    pub self_attn: KvCache,
    /// The encoder's K/V, computed at the first step and reused.
    pub encoder_attn: KvCache,
}

/// The decoder's cache, one [`LayerCache`] per layer; `BartCache::default()` is sized on first use.
#[derive(Debug, Clone, Default)]
pub struct BartCache {
    pub layers: Vec<LayerCache>,
}

impl BartCache {
    /// Decoder positions already processed.
    pub fn past_len(&self) -> usize {
        self.layers
            .first()
            .map_or(0, |layer| layer.self_attn.seq_len())
    }
}

/// transformers `BartDecoderLayer`: causal self-attention, cross-attention over the encoder's
/// output, feed-forward, each followed by residual and LayerNorm.
#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: MultiHeadAttention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: MultiHeadAttention,
    encoder_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
    activation: Activation,
}

impl DecoderLayer {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (d, ffn, heads) = (
            cfg.d_model,
            cfg.decoder_ffn_dim,
            cfg.decoder_attention_heads,
        );
        Ok(Self {
            self_attn: MultiHeadAttention::load(vb.pp("self_attn"), d, heads)?,
            self_attn_layer_norm: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            encoder_attn: MultiHeadAttention::load(vb.pp("encoder_attn"), d, heads)?,
            encoder_attn_layer_norm: layer_norm(d, vb.pp("encoder_attn_layer_norm"))?,
            fc1: linear(d, ffn, vb.pp("fc1"))?,
            fc2: linear(ffn, d, vb.pp("fc2"))?,
            final_layer_norm: layer_norm(d, vb.pp("final_layer_norm"))?,
            activation: cfg.activation()?,
        })
    }

    /// Without `encoder_hidden` (the causal LM) the cross-attention block is skipped, as
    /// transformers skips it when `encoder_hidden_states` is None.
    fn forward(
        &self,
        xs: &Tensor,
        encoder_hidden: Option<&Tensor>,
        masks: &DecoderMasks,
        cache: &mut LayerCache,
    ) -> Result<Tensor> {
        let attended =
            self.self_attn
                .forward(xs, masks.causal.as_ref(), Some(&mut cache.self_attn))?;
        let mut xs = ln(&self.self_attn_layer_norm, &(xs + attended)?)?;
        if let Some(encoder_hidden) = encoder_hidden {
            let attended = self.encoder_attn.forward_cross(
                &xs,
                encoder_hidden,
                masks.encoder.as_ref(),
                Some(&mut cache.encoder_attn),
            )?;
            xs = ln(&self.encoder_attn_layer_norm, &(xs + attended)?)?;
        }
        let fed = feed_forward(&self.fc1, &self.fc2, self.activation, &xs)?;
        ln(&self.final_layer_norm, &(xs + fed)?)
    }

    fn linears<'a>(&'a self, prefix: &str, out: &mut Vec<(String, &'a Linear)>) {
        push_attention(out, &format!("{prefix}.self_attn"), &self.self_attn);
        push_attention(out, &format!("{prefix}.encoder_attn"), &self.encoder_attn);
        out.push((format!("{prefix}.fc1"), &self.fc1));
        out.push((format!("{prefix}.fc2"), &self.fc2));
    }

    fn linears_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Linear)>) {
        push_attention_mut(out, &format!("{prefix}.self_attn"), &mut self.self_attn);
        push_attention_mut(
            out,
            &format!("{prefix}.encoder_attn"),
            &mut self.encoder_attn,
        );
        out.push((format!("{prefix}.fc1"), &mut self.fc1));
        out.push((format!("{prefix}.fc2"), &mut self.fc2));
    }
}

/// The decoder's additive masks: causal (1, 1, t, past + t), `None` for a single new token, which
/// may see every cached position anyway, or (b, 1, t, t) when the causal LM's own padding is
/// masked too; and encoder padding (b, 1, 1, s), `None` without an encoder.
struct DecoderMasks {
    causal: Option<Tensor>,
    encoder: Option<Tensor>,
}

fn push_attention<'a>(
    out: &mut Vec<(String, &'a Linear)>,
    prefix: &str,
    attn: &'a MultiHeadAttention,
) {
    for (name, layer) in attn.named_linears() {
        out.push((format!("{prefix}.{name}"), layer));
    }
}

fn push_attention_mut<'a>(
    out: &mut Vec<(String, &'a mut Linear)>,
    prefix: &str,
    attn: &'a mut MultiHeadAttention,
) {
    for (name, layer) in attn.named_linears_mut() {
        out.push((format!("{prefix}.{name}"), layer));
    }
}

/// The encoder stack (transformers `BartEncoder`) without its token embedding, which [`Bart`] shares.
#[derive(Debug, Clone)]
struct Encoder {
    embed_positions: LearnedPositionalEmbedding,
    layernorm_embedding: LayerNorm,
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let layers = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(vb.pp(format!("layers.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed_positions: LearnedPositionalEmbedding::load(vb.pp("embed_positions"), cfg)?,
            layernorm_embedding: layer_norm(cfg.d_model, vb.pp("layernorm_embedding"))?,
            layers,
        })
    }

    /// `tokens` (b, s, d) already embedded; `mask` the additive padding mask (b, 1, 1, s).
    fn forward(&self, tokens: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (_b_sz, seq_len, _) = tokens.dims3()?;
        let positions = self.embed_positions.forward(seq_len, 0)?;
        let mut xs = ln(
            &self.layernorm_embedding,
            &tokens.broadcast_add(&positions)?,
        )?;
        for layer in &self.layers {
            xs = layer.forward(&xs, mask)?;
        }
        Ok(xs)
    }
}

/// The decoder stack (transformers `BartDecoder`) without its token embedding.
#[derive(Debug, Clone)]
pub(super) struct Decoder {
    embed_positions: LearnedPositionalEmbedding,
    layernorm_embedding: LayerNorm,
    layers: Vec<DecoderLayer>,
}

impl Decoder {
    pub(super) fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let layers = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::load(vb.pp(format!("layers.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed_positions: LearnedPositionalEmbedding::load(vb.pp("embed_positions"), cfg)?,
            layernorm_embedding: layer_norm(cfg.d_model, vb.pp("layernorm_embedding"))?,
            layers,
        })
    }

    /// Hidden states (b, t, d) of `t` new tokens (embedded), after the `cache.past_len()` before.
    /// `encoder` is the encoder's output and additive padding mask; `self_padding` the additive
    /// padding mask (b, 1, 1, t) of the tokens themselves (the causal LM's padded batches).
    pub(super) fn forward(
        &self,
        tokens: &Tensor,
        encoder: Option<(&Tensor, &Tensor)>,
        self_padding: Option<&Tensor>,
        cache: &mut BartCache,
    ) -> Result<Tensor> {
        let (_b_sz, seq_len, _) = tokens.dims3()?;
        self.size_cache(cache)?;
        let past = cache.past_len();
        let positions = self.embed_positions.forward(seq_len, past)?;
        let mut xs = ln(
            &self.layernorm_embedding,
            &tokens.broadcast_add(&positions)?,
        )?;
        let causal = match seq_len {
            1 => None,
            _ => Some(causal_mask(seq_len, past, xs.dtype(), xs.device())?),
        };
        // The smaller of the two additive masks: their sum would overflow to −∞.
        let causal = match (causal, self_padding) {
            (Some(causal), Some(padding)) => Some(causal.broadcast_minimum(padding)?),
            (None, Some(padding)) => Some(padding.clone()),
            (causal, None) => causal,
        };
        let masks = DecoderMasks {
            causal,
            encoder: encoder.map(|(_, mask)| mask.clone()),
        };
        let encoder_hidden = encoder.map(|(hidden, _)| hidden);
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            xs = layer.forward(&xs, encoder_hidden, &masks, layer_cache)?;
        }
        Ok(xs)
    }

    fn size_cache(&self, cache: &mut BartCache) -> Result<()> {
        if cache.layers.is_empty() {
            cache.layers = vec![LayerCache::default(); self.layers.len()];
        }
        if cache.layers.len() != self.layers.len() {
            return Err(invalid(format!(
                "the cache holds {} layers but the decoder has {}",
                cache.layers.len(),
                self.layers.len()
            )));
        }
        Ok(())
    }
}

/// Where a checkpoint keeps its tensors. BartForConditionalGeneration saves under `model.`,
/// BartModel (facebook/bart-base) at the root; the token embedding is `shared`, or only one of its
/// tied copies `encoder.embed_tokens` / `decoder.embed_tokens` (facebook/bart-large-cnn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    prefix: Option<&'static str>,
    embedding: &'static str,
}

impl Layout {
    fn detect(vb: &VarBuilder) -> Result<Self> {
        for prefix in [Some("model"), None] {
            for embedding in ["shared", "encoder.embed_tokens", "decoder.embed_tokens"] {
                let layout = Self { prefix, embedding };
                if vb.contains_tensor(&layout.key(&format!("{embedding}.weight"))) {
                    return Ok(layout);
                }
            }
        }
        Err(Error::MissingTensor {
            name: "model.shared.weight (or a tied encoder/decoder embed_tokens.weight)".into(),
        })
    }

    fn key(&self, name: &str) -> String {
        match self.prefix {
            Some(prefix) => format!("{prefix}.{name}"),
            None => name.to_string(),
        }
    }

    /// `vb` at the model's root (`model.` or the file's root).
    fn base<'a>(&self, vb: &VarBuilder<'a>) -> VarBuilder<'a> {
        match self.prefix {
            Some(prefix) => vb.pp(prefix),
            None => vb.clone(),
        }
    }
}

/// BART for conditional generation (transformers `BartForConditionalGeneration`): encoder,
/// decoder, and an LM head tied to the shared token embedding, plus `final_logits_bias`.
///
/// Every projection is a [`Linear`] listed by [`Linears`] under its checkpoint name without
/// `model.` and `.weight`, e.g. `encoder.layers.3.self_attn.q_proj`, so compression can swap it.
#[derive(Debug, Clone)]
pub struct Bart {
    shared: Embedding,
    embed_scale: f64,
    encoder: Encoder,
    decoder: Decoder,
    lm_head: Linear,
    final_logits_bias: Tensor,
    config: Config,
}

impl Bart {
    /// Loads the model from `vb` (device and dtype are the builder's), detecting the checkpoint's
    /// layout (see the key names above).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        cfg.validate()?;
        let layout = Layout::detect(&vb)?;
        let base = layout.base(&vb);
        let embedding = base.get(
            (cfg.vocab_size, cfg.d_model),
            &format!("{}.weight", layout.embedding),
        )?;
        let lm_weight = if vb.contains_tensor("lm_head.weight") {
            vb.get((cfg.vocab_size, cfg.d_model), "lm_head.weight")?
        } else {
            embedding.clone()
        };
        Ok(Self {
            shared: Embedding::new(embedding, cfg.d_model),
            embed_scale: if cfg.scale_embedding {
                (cfg.d_model as f64).sqrt()
            } else {
                1.0
            },
            encoder: Encoder::load(base.pp("encoder"), cfg)?,
            decoder: Decoder::load(base.pp("decoder"), cfg)?,
            lm_head: Linear::dense(lm_weight, None)?,
            final_logits_bias: final_logits_bias(&vb, cfg)?,
            config: cfg.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shared token embedding (vocab, d).
    pub fn shared_embedding(&self) -> &Tensor {
        self.shared.embeddings()
    }

    /// Logits (b, t, vocab) of `decoder_input_ids` (b, t) given `input_ids` and `attention_mask`
    /// (b, s): one encoder pass, then the whole decoder sequence at once under a causal mask.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        decoder_input_ids: &Tensor,
    ) -> Result<Tensor> {
        let encoder_hidden = self.encode(input_ids, attention_mask)?;
        let mut cache = self.new_cache();
        self.decode(
            decoder_input_ids,
            &encoder_hidden,
            attention_mask,
            &mut cache,
        )
    }

    /// The encoder's last hidden state (b, s, d).
    pub fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        check_mask(input_ids, attention_mask)?;
        let tokens = self.embed(input_ids)?;
        let mask = padding_mask(attention_mask, tokens.dtype())?;
        self.encoder.forward(&tokens, &mask)
    }

    /// Logits (b, t, vocab) for `t` new decoder tokens after those in `cache`, which grows by `t`.
    /// `encoder_mask` (b, s) is the encoder's 1/0 attention mask.
    pub fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut BartCache,
    ) -> Result<Tensor> {
        let hidden = self.decode_hidden(decoder_input_ids, encoder_hidden, encoder_mask, cache)?;
        Ok(self
            .lm_head
            .forward(&hidden)?
            .broadcast_add(&self.final_logits_bias)?)
    }

    /// The decoder's last hidden state (b, t, d), before the LM head.
    pub fn decode_hidden(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut BartCache,
    ) -> Result<Tensor> {
        let (b_sz, _) = decoder_input_ids.dims2()?;
        let (enc_b_sz, enc_len, _) = encoder_hidden.dims3()?;
        if b_sz != enc_b_sz || encoder_mask.dims() != [enc_b_sz, enc_len] {
            return Err(invalid(format!(
                "decoder batch {b_sz}, encoder states {:?} and encoder mask {:?} disagree",
                encoder_hidden.dims(),
                encoder_mask.dims()
            )));
        }
        let tokens = self.embed(decoder_input_ids)?;
        let mask = padding_mask(encoder_mask, tokens.dtype())?;
        self.decoder
            .forward(&tokens, Some((encoder_hidden, &mask)), None, cache)
    }

    /// Parameters as torch's `model.parameters()` counts them for BartForConditionalGeneration:
    /// the shared embedding once (the LM head is tied to it unless the checkpoint had its own),
    /// positions, LayerNorms and every [`Linear`], LoRA factors included; `final_logits_bias` is
    /// a buffer, not a parameter.
    pub fn parameter_count(&self) -> usize {
        let norm =
            |ln: &LayerNorm| ln.weight().elem_count() + ln.bias().map_or(0, Tensor::elem_count);
        let encoder_norms: usize = self
            .encoder
            .layers
            .iter()
            .map(|l| norm(&l.self_attn_layer_norm) + norm(&l.final_layer_norm))
            .sum();
        let decoder_norms: usize = self
            .decoder
            .layers
            .iter()
            .map(|l| {
                norm(&l.self_attn_layer_norm)
                    + norm(&l.encoder_attn_layer_norm)
                    + norm(&l.final_layer_norm)
            })
            .sum();
        let lm_head = match self.lm_head.tensors().first() {
            Some((_, weight)) if weight.id() == self.shared.embeddings().id() => 0,
            _ => self.lm_head.parameter_count(),
        };
        let linears: usize = self
            .linears()
            .iter()
            .map(|(_, l)| l.parameter_count())
            .sum();
        self.shared.embeddings().elem_count()
            + self.encoder.embed_positions.weight.elem_count()
            + self.decoder.embed_positions.weight.elem_count()
            + norm(&self.encoder.layernorm_embedding)
            + norm(&self.decoder.layernorm_embedding)
            + encoder_norms
            + decoder_norms
            + linears
            + lm_head
    }

    pub fn new_cache(&self) -> BartCache {
        BartCache {
            layers: vec![LayerCache::default(); self.decoder.layers.len()],
        }
    }

    /// Token embeddings (b, s, d), scaled by √d when the config asks (transformers
    /// `BartScaledWordEmbedding`).
    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let tokens = self.shared.forward(ids)?;
        if self.embed_scale == 1.0 {
            return Ok(tokens);
        }
        Ok((tokens * self.embed_scale)?)
    }
}

/// `final_logits_bias` (1, vocab); zeros when the checkpoint lacks it, as transformers does when it
/// loads a BartModel checkpoint into BartForConditionalGeneration.
fn final_logits_bias(vb: &VarBuilder, cfg: &Config) -> Result<Tensor> {
    if vb.contains_tensor("final_logits_bias") {
        return Ok(vb.get((1, cfg.vocab_size), "final_logits_bias")?);
    }
    Ok(Tensor::zeros((1, cfg.vocab_size), vb.dtype(), vb.device())?)
}

fn check_mask(input_ids: &Tensor, attention_mask: &Tensor) -> Result<()> {
    if input_ids.dims() != attention_mask.dims() || input_ids.rank() != 2 {
        return Err(invalid(format!(
            "input_ids {:?} and attention_mask {:?} must both be (batch, seq_len)",
            input_ids.dims(),
            attention_mask.dims()
        )));
    }
    Ok(())
}

impl Linears for Bart {
    fn linears(&self) -> Vec<(String, &Linear)> {
        let mut out = Vec::new();
        for (i, layer) in self.encoder.layers.iter().enumerate() {
            layer.linears(&format!("encoder.layers.{i}"), &mut out);
        }
        for (i, layer) in self.decoder.layers.iter().enumerate() {
            layer.linears(&format!("decoder.layers.{i}"), &mut out);
        }
        out
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::new();
        for (i, layer) in self.encoder.layers.iter_mut().enumerate() {
            layer.linears_mut(&format!("encoder.layers.{i}"), &mut out);
        }
        for (i, layer) in self.decoder.layers.iter_mut().enumerate() {
            layer.linears_mut(&format!("decoder.layers.{i}"), &mut out);
        }
        out
    }
}

impl Seq2Seq for Bart {
    type Cache = BartCache;

    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        Bart::encode(self, input_ids, attention_mask)
    }

    fn new_cache(&self) -> BartCache {
        Bart::new_cache(self)
    }

    fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut BartCache,
    ) -> Result<Tensor> {
        Bart::decode(self, decoder_input_ids, encoder_hidden, encoder_mask, cache)
    }

    /// Reorders self- and cross-attention K/V alike, so any row permutation stays consistent
    /// (transformers skips the cross K/V, identical within a beam group, to save a copy).
    fn reorder_cache(&self, cache: &mut BartCache, indices: &Tensor) -> Result<()> {
        for layer in &mut cache.layers {
            layer.self_attn.index_select(indices)?;
            layer.encoder_attn.index_select(indices)?;
        }
        Ok(())
    }

    fn special_tokens(&self) -> SpecialTokens {
        self.config.special_tokens()
    }
}
