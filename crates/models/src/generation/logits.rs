//! Logits processors and warpers, one row of scores at a time, as transformers'
//! `generation/logits_process.py` defines them.
//!
//! Scores are `f32`, as transformers casts logits to float32 before processing. Processors run in
//! transformers' order for the options Lowrank supports: no-repeat n-gram, minimum length, forced
//! BOS, forced EOS; then, only when sampling, the warpers temperature, top-k and top-p. Banning a
//! token sets its score to `-inf`; forcing one sets every other score to `-inf` and its own to 0.
//!
//! ```
//! use models::generation::logits::top_p;
//!
//! // Probabilities 0.1, 0.15, 0.2, 0.25, 0.3: the smallest set holding more than 0.7 is the top three.
//! let mut scores: Vec<f32> = [0.1f32, 0.15, 0.2, 0.25, 0.3].iter().map(|p| p.ln()).collect();
//! top_p(&mut scores, 0.7, 1);
//! assert!(scores[0].is_infinite() && scores[1].is_infinite());
//! assert!(scores[2..].iter().all(|s| s.is_finite()));
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;

use super::{GenerationConfig, SpecialTokens};

/// The processors transformers' `generate` builds for the options Lowrank supports, in its order.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitsProcessors {
    /// `NoRepeatNGramLogitsProcessor`; 0 turns it off.
    pub no_repeat_ngram_size: usize,
    /// `MinLengthLogitsProcessor`: EOS is banned while the decoder sequence is shorter.
    pub min_length: usize,
    pub eos_token_id: u32,
    /// `ForcedBOSTokenLogitsProcessor`: forced when the sequence holds only the start token.
    pub forced_bos_token_id: Option<u32>,
    /// `ForcedEOSTokenLogitsProcessor`: forced when the sequence length is `max_length - 1`.
    pub forced_eos_token_id: Option<u32>,
    pub max_length: usize,
}

impl LogitsProcessors {
    /// The processors for `config` (its lengths already resolved, see
    /// [`GenerationConfig::resolved_max_length`]) and the model's special tokens; a forced token the
    /// config leaves unset falls back to the model's.
    pub fn new(config: &GenerationConfig, special: &SpecialTokens) -> Self {
        LogitsProcessors {
            no_repeat_ngram_size: config.no_repeat_ngram_size,
            min_length: config.resolved_min_length(),
            eos_token_id: special.eos_token_id,
            forced_bos_token_id: config.forced_bos_token_id.or(special.forced_bos_token_id),
            forced_eos_token_id: config.forced_eos_token_id.or(special.forced_eos_token_id),
            max_length: config.resolved_max_length(),
        }
    }

    /// Applies every processor to the scores of the token that follows `sequence` (the decoder
    /// sequence so far, start token included).
    pub fn apply(&self, sequence: &[u32], scores: &mut [f32]) {
        let cur_len = sequence.len();
        if self.no_repeat_ngram_size > 0 {
            for token in no_repeat_ngram_banned(sequence, self.no_repeat_ngram_size) {
                ban(scores, token);
            }
        }
        if cur_len < self.min_length {
            ban(scores, self.eos_token_id);
        }
        if let Some(bos) = self.forced_bos_token_id
            && cur_len == 1
        {
            force(scores, bos);
        }
        if let Some(eos) = self.forced_eos_token_id
            && cur_len + 1 == self.max_length
        {
            force(scores, eos);
        }
    }

    /// The token ids these processors write to, so a caller can check them against the vocabulary.
    pub fn token_ids(&self) -> Vec<(&'static str, u32)> {
        let mut ids = vec![("eos_token_id", self.eos_token_id)];
        ids.extend(
            self.forced_bos_token_id
                .map(|id| ("forced_bos_token_id", id)),
        );
        ids.extend(
            self.forced_eos_token_id
                .map(|id| ("forced_eos_token_id", id)),
        );
        ids
    }
}

/// The sampling warpers, in transformers' order: temperature, top-k, top-p.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitsWarpers {
    /// Divides the scores; 1 turns it off.
    pub temperature: f64,
    /// Keeps the `top_k` highest scores (and any tied with the last); 0 turns it off.
    pub top_k: usize,
    /// Keeps the smallest set of tokens whose probability exceeds `top_p`; 1 turns it off.
    pub top_p: f64,
    /// At least this many tokens survive top-k and top-p (transformers: 2 for beam sampling, else 1).
    pub min_tokens_to_keep: usize,
}

impl LogitsWarpers {
    pub fn new(config: &GenerationConfig) -> Self {
        LogitsWarpers {
            temperature: config.temperature,
            top_k: config.top_k,
            top_p: config.top_p,
            min_tokens_to_keep: 1,
        }
    }

    pub fn apply(&self, scores: &mut [f32]) {
        if self.temperature != 1.0 {
            temperature(scores, self.temperature);
        }
        if self.top_k != 0 {
            top_k(scores, self.top_k, self.min_tokens_to_keep);
        }
        if self.top_p < 1.0 {
            top_p(scores, self.top_p, self.min_tokens_to_keep);
        }
    }
}

/// Tokens that would complete an n-gram of size `ngram_size` already present in `sequence`:
/// transformers' `_calc_banned_ngram_tokens` for one hypothesis. The last `ngram_size - 1` tokens
/// are the prefix; every token that followed that prefix earlier is banned (duplicates kept, in
/// order of appearance).
///
/// ```
/// use models::generation::logits::no_repeat_ngram_banned;
///
/// // 2-grams: (2,5) (5,5) (5,4) (4,5); after a 5, the tokens 5 and 4 would repeat one.
/// assert_eq!(no_repeat_ngram_banned(&[2, 5, 5, 4, 5], 2), vec![5, 4]);
/// assert!(no_repeat_ngram_banned(&[2, 5], 3).is_empty());
/// ```
pub fn no_repeat_ngram_banned(sequence: &[u32], ngram_size: usize) -> Vec<u32> {
    let cur_len = sequence.len();
    if ngram_size == 0 || cur_len + 1 < ngram_size {
        return Vec::new();
    }
    let mut generated: HashMap<&[u32], Vec<u32>> = HashMap::new();
    for ngram in sequence.windows(ngram_size) {
        let (prefix, last) = ngram.split_at(ngram_size - 1);
        generated.entry(prefix).or_default().extend_from_slice(last);
    }
    let prefix = &sequence[cur_len + 1 - ngram_size..];
    generated.remove(prefix).unwrap_or_default()
}

/// `scores[token] = -inf`; a token outside the vocabulary is ignored.
pub fn ban(scores: &mut [f32], token: u32) {
    if let Some(score) = scores.get_mut(token as usize) {
        *score = f32::NEG_INFINITY;
    }
}

/// Every score `-inf` except `scores[token] = 0`.
pub fn force(scores: &mut [f32], token: u32) {
    scores.fill(f32::NEG_INFINITY);
    if let Some(score) = scores.get_mut(token as usize) {
        *score = 0.0;
    }
}

/// `scores / temperature` (transformers' `TemperatureLogitsWarper`).
pub fn temperature(scores: &mut [f32], temperature: f64) {
    let temperature = temperature as f32;
    scores.iter_mut().for_each(|score| *score /= temperature);
}

/// Sets to `-inf` every score below the `k`-th highest (`TopKLogitsWarper`: ties with the `k`-th
/// survive; `k` is raised to `min_tokens_to_keep` and capped at the vocabulary).
pub fn top_k(scores: &mut [f32], k: usize, min_tokens_to_keep: usize) {
    let k = k.max(min_tokens_to_keep).min(scores.len());
    if k == 0 || k == scores.len() {
        return;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    scores
        .iter_mut()
        .filter(|score| **score < kth)
        .for_each(|score| *score = f32::NEG_INFINITY);
}

/// Nucleus filtering as transformers' `TopPLogitsWarper` does it: sort ascending, remove tokens
/// whose cumulative probability is `<= 1 - top_p`, always keep the `min_tokens_to_keep` highest.
/// What survives is the smallest set of top tokens whose probability exceeds `top_p`.
pub fn top_p(scores: &mut [f32], top_p: f64, min_tokens_to_keep: usize) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Ascending and stable: among equal scores the lower id is removed first.
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let probs = softmax(scores);
    // torch's CPU cumsum accumulates float32 in double; the comparison is in float32.
    let threshold = (1.0 - top_p) as f32;
    let keep_from = scores.len().saturating_sub(min_tokens_to_keep);
    let mut cumulative = 0.0f64;
    let mut remove = Vec::new();
    for (rank, &token) in order.iter().enumerate() {
        cumulative += f64::from(probs[token]);
        if rank < keep_from && (cumulative as f32) <= threshold {
            remove.push(token);
        }
    }
    for token in remove {
        scores[token] = f32::NEG_INFINITY;
    }
}

/// `softmax(scores)` in `f32` (max subtracted first; `-inf` scores get probability 0).
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; scores.len()];
    }
    let exps: Vec<f64> = scores.iter().map(|&s| f64::from(s - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// `log_softmax(scores)` in `f32`, as beam search scores tokens.
pub fn log_softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![f32::NEG_INFINITY; scores.len()];
    }
    let sum: f64 = scores.iter().map(|&s| f64::from(s - max).exp()).sum();
    let log_sum = sum.ln() as f32;
    scores.iter().map(|&s| (s - max) - log_sum).collect()
}

/// The index of the highest score, the first one on ties (as `torch.argmax`).
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (index, &score) in scores.iter().enumerate() {
        if score.total_cmp(&scores[best]) == Ordering::Greater {
            best = index;
        }
    }
    best
}

/// Indices of the `k` highest `values`, highest first, the lower index first on ties.
pub(crate) fn top_k_indices(values: impl Iterator<Item = f32>, k: usize) -> Vec<(usize, f32)> {
    // A short sorted list beats sorting the whole (num_beams · vocab) row for small k.
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (index, value) in values.enumerate() {
        if best.len() == k && best[k - 1].1.total_cmp(&value) != Ordering::Less {
            continue;
        }
        let at = best.partition_point(|&(_, v)| v.total_cmp(&value) != Ordering::Less);
        best.insert(at, (index, value));
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_indices_orders_by_value_then_index() {
        let values = [1.0f32, 3.0, 3.0, -1.0, 2.0];
        let top = top_k_indices(values.iter().copied(), 3);
        assert_eq!(top, vec![(1, 3.0), (2, 3.0), (4, 2.0)]);
        assert_eq!(top_k_indices(values.iter().copied(), 0), vec![]);
        assert_eq!(top_k_indices(values.iter().copied(), 9).len(), 5);
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let lp = log_softmax(&[0.5, -1.0, 2.0, f32::NEG_INFINITY]);
        let total: f32 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(lp[3], f32::NEG_INFINITY);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
    }
}
