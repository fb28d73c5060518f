//! A plain unigram-overlap score between a candidate summary and a reference, and the lead-k
//! baseline, until ROUGE lands (FIXME(#8): replace with ROUGE-1/2/L and keep this as a check).
//!
//! The score is ROUGE-1 without stemming: clipped unigram matches over the candidate's tokens
//! (precision) and over the reference's (recall), and their harmonic mean. It follows Google's
//! `rouge_score` on the edge cases (an empty side gives 0, never NaN) but tokenizes by Unicode: a
//! token is a maximal run of alphanumeric characters, lowercased, so "Überweisung" and "カード"
//! count, where `rouge_score` keeps only `[a-z0-9]`.
//!
//! ```
//! use eval::overlap::{lead_k, unigram_overlap};
//!
//! // "the" and "card" match: 2 of 4 candidate tokens, 2 of 3 reference tokens.
//! let score = unigram_overlap("The card, the PIN", "the new card");
//! assert_eq!(score.precision, 0.5);
//! assert!((score.recall - 2.0 / 3.0).abs() < 1e-12);
//! assert!((score.f1 - 4.0 / 7.0).abs() < 1e-12);
//! assert_eq!(lead_k("Anna: my card\nTom: sorry", 3), "Anna: my card");
//! ```

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Precision, recall and F1 of one candidate against one reference, or their means over pairs;
/// each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlap {
    /// Matched tokens over the candidate's tokens: how much of what was said is right.
    pub precision: f64,
    /// Matched tokens over the reference's tokens: how much of what matters was said.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are.
    pub f1: f64,
}

/// The tokens the score compares: maximal runs of alphanumeric characters (Unicode's definition),
/// lowercased; punctuation, spaces and emoji separate them and are dropped.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Unigram overlap of `candidate` against `reference`. A token matches at most as many times as it
/// occurs in the other text (clipped counts, as ROUGE-1), so repeating a right word earns nothing.
pub fn unigram_overlap(candidate: &str, reference: &str) -> Overlap {
    let candidate = tokens(candidate);
    let reference = tokens(reference);
    let mut reference_counts: HashMap<&str, usize> = HashMap::new();
    for token in &reference {
        *reference_counts.entry(token).or_default() += 1;
    }
    let mut matches = 0usize;
    for token in &candidate {
        if let Some(count) = reference_counts.get_mut(token.as_str())
            && *count > 0
        {
            *count -= 1;
            matches += 1;
        }
    }
    // rouge_score divides by max(count, 1): an empty side scores 0 rather than 0/0.
    let precision = matches as f64 / candidate.len().max(1) as f64;
    let recall = matches as f64 / reference.len().max(1) as f64;
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Overlap {
        precision,
        recall,
        f1,
    }
}

/// Mean precision, recall and F1 over `(candidate, reference)` pairs, each averaged separately
/// (as `rouge_score`'s aggregator does; the mean F1 is not the F1 of the mean precision and
/// recall). An empty list is an error: its mean would be 0/0.
pub fn mean_unigram_overlap(pairs: &[(&str, &str)]) -> Result<Overlap> {
    if pairs.is_empty() {
        return Err(Error::Empty {
            what: "the list of (candidate, reference) pairs".into(),
        });
    }
    let mut sum = Overlap {
        precision: 0.0,
        recall: 0.0,
        f1: 0.0,
    };
    for (candidate, reference) in pairs {
        let score = unigram_overlap(candidate, reference);
        sum.precision += score.precision;
        sum.recall += score.recall;
        sum.f1 += score.f1;
    }
    let n = pairs.len() as f64;
    Ok(Overlap {
        precision: sum.precision / n,
        recall: sum.recall / n,
        f1: sum.f1 / n,
    })
}

/// The lead-k baseline: the first `k` whitespace-separated words of `text` (a dialogue's opening,
/// speaker names included), joined by single spaces. A summarizer worth training beats it; news
/// summarization's lead-3 sentences is the same idea, in words because dialogues have few
/// sentences. Fewer than `k` words give the whole text.
pub fn lead_k(text: &str, k: usize) -> String {
    text.split_whitespace()
        .take(k)
        .collect::<Vec<_>>()
        .join(" ")
}
