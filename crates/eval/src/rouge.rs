//! ROUGE, written out to be read: n-gram overlap (ROUGE-N), longest common subsequence (ROUGE-L),
//! its summary-level union form over sentences (ROUGE-Lsum) and skip-bigrams (ROUGE-S), the
//! scores summarization papers report and the compression lessons judge BART by.
//!
//! Every choice follows Google's `rouge-score` package (the implementation behind Hugging Face
//! `evaluate`), so the numbers are the ones papers print:
//! - tokens: lowercase, every run of characters other than `a`–`z` and `0`–`9` is a separator, so
//!   non-ASCII letters vanish ("café" → "caf"); with stemming, words longer than three letters go
//!   through NLTK's Porter stemmer (taken from the `rougers` crate: the stemmer is not the lesson);
//! - ROUGE-N: clipped n-gram counts, precision over the prediction's n-grams, recall over the
//!   target's (an empty side counts as one, so scores are 0, not NaN);
//! - ROUGE-L: LCS length over each side's length; ROUGE-Lsum: sentences are the non-empty lines,
//!   each target sentence is matched against the union of its LCSs with every predicted sentence,
//!   and a token is counted at most as often as both sides hold it;
//! - F = 2PR/(P+R), 0 when both are 0.
//!
//! ROUGE-S is not in `rouge-score`; it follows Lin (2004): skip-bigrams are ordered word pairs
//! with at most `max_gap` words between them (`None`: any distance, ROUGE-S*), clipped counts over
//! the number of pairs on each side. [`fast`] scores the `rouge-score` variants with `rougers`,
//! which gives the same numbers much faster; tests hold the two to each other and to the Python
//! package.
//!
//! ```
//! use eval::rouge::{Rouge, tokenize};
//!
//! assert_eq!(tokenize("The cat's 2 hats!", false), ["the", "cat", "s", "2", "hats"]);
//! let scores = Rouge::new(false).score("the cat sat on the mat", "the cat on the mat");
//! assert_eq!(scores.rouge1.recall, 5.0 / 6.0);
//! assert_eq!(scores.rouge2.precision, 3.0 / 4.0); // "the cat", "on the", "the mat"
//! assert_eq!(scores.rouge_l.fmeasure, 2.0 * 1.0 * (5.0 / 6.0) / (1.0 + 5.0 / 6.0));
//! ```

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Precision, recall and their harmonic mean for one ROUGE variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl Score {
    fn new(precision: f64, recall: f64) -> Self {
        Self {
            precision,
            recall,
            fmeasure: fmeasure(precision, recall),
        }
    }

    const ZERO: Score = Score {
        precision: 0.0,
        recall: 0.0,
        fmeasure: 0.0,
    };
}

/// 2PR/(P+R), or 0 when both are 0 (`rouge-score`'s `scoring.fmeasure`).
pub fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// The variants a summary is usually reported with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RougeScores {
    pub rouge1: Score,
    pub rouge2: Score,
    pub rouge_l: Score,
    pub rouge_lsum: Score,
    /// Skip-bigrams at most four words apart (ROUGE-S4), the form the BART-base compression study
    /// reported beside ROUGE-1/2/L.
    pub rouge_s4: Score,
}

/// `rouge-score`'s tokenizer: lowercase, split on anything but `a`–`z`/`0`–`9`, and with `stem`
/// Porter-stem words of more than three letters.
pub fn tokenize(text: &str, stem: bool) -> Vec<String> {
    let lower = text.to_lowercase();
    let words = lower
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|word| !word.is_empty());
    if !stem {
        return words.map(str::to_string).collect();
    }
    let stemmer = rougers::Tokenizer::new(true);
    words
        .flat_map(|word| {
            if word.len() > 3 {
                stemmer.tokenize(word)
            } else {
                vec![word.to_string()]
            }
        })
        .collect()
}

/// Sentences for ROUGE-Lsum: the non-empty lines (`rouge-score` without `split_summaries`).
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').filter(|line| !line.is_empty())
}

fn counts<T: Hash + Eq>(items: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut counts = HashMap::new();
    for item in items {
        *counts.entry(item).or_insert(0) += 1;
    }
    counts
}

/// Clipped overlap of two multisets, scored against their sizes (each at least one).
fn clipped<T: Hash + Eq>(target: &HashMap<T, usize>, prediction: &HashMap<T, usize>) -> Score {
    let hits: usize = target
        .iter()
        .map(|(item, &n)| n.min(prediction.get(item).copied().unwrap_or(0)))
        .sum();
    let target_total: usize = target.values().sum();
    let prediction_total: usize = prediction.values().sum();
    Score::new(
        hits as f64 / prediction_total.max(1) as f64,
        hits as f64 / target_total.max(1) as f64,
    )
}

/// ROUGE-N of token lists: clipped n-gram matches.
pub fn rouge_n(target: &[String], prediction: &[String], n: usize) -> Score {
    if n == 0 {
        return Score::ZERO;
    }
    clipped(&counts(target.windows(n)), &counts(prediction.windows(n)))
}

/// The LCS table of `a` and `b`: cell (i, j) is the LCS length of `a[..i]` and `b[..j]`.
fn lcs_table(a: &[String], b: &[String]) -> Vec<Vec<usize>> {
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i][j] = if a[i - 1] == b[j - 1] {
                table[i - 1][j - 1] + 1
            } else {
                table[i - 1][j].max(table[i][j - 1])
            };
        }
    }
    table
}

/// ROUGE-L: the longest common subsequence, in order but not necessarily contiguous.
pub fn rouge_l(target: &[String], prediction: &[String]) -> Score {
    if target.is_empty() || prediction.is_empty() {
        return Score::ZERO;
    }
    let lcs = lcs_table(target, prediction)[target.len()][prediction.len()] as f64;
    Score::new(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

/// Indices into `target` of one longest common subsequence with `prediction`, read back from the
/// table the way `rouge-score` does (ties step back along the target).
fn lcs_indices(target: &[String], prediction: &[String]) -> Vec<usize> {
    let table = lcs_table(target, prediction);
    let (mut i, mut j) = (target.len(), prediction.len());
    let mut indices = Vec::new();
    while i > 0 && j > 0 {
        if target[i - 1] == prediction[j - 1] {
            indices.push(i - 1);
            i -= 1;
            j -= 1;
        } else if table[i][j - 1] > table[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    indices.reverse();
    indices
}

/// ROUGE-Lsum (summary-level LCS, Lin 2004 §3.2) of tokenized sentences.
pub fn rouge_lsum(target: &[Vec<String>], prediction: &[Vec<String>]) -> Score {
    let m: usize = target.iter().map(Vec::len).sum();
    let n: usize = prediction.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return Score::ZERO;
    }
    let mut left_target = counts(target.iter().flatten());
    let mut left_prediction = counts(prediction.iter().flatten());
    let mut hits = 0usize;
    for sentence in target {
        let mut union: Vec<usize> = prediction
            .iter()
            .flat_map(|candidate| lcs_indices(sentence, candidate))
            .collect();
        union.sort_unstable();
        union.dedup();
        for token in union.iter().map(|&i| &sentence[i]) {
            let (Some(t), Some(p)) = (left_target.get_mut(token), left_prediction.get_mut(token))
            else {
                continue;
            };
            if *t > 0 && *p > 0 {
                hits += 1;
                *t -= 1;
                *p -= 1;
            }
        }
    }
    Score::new(hits as f64 / n as f64, hits as f64 / m as f64)
}

/// Ordered pairs `(tokens[i], tokens[j])`, i < j, with at most `max_gap` tokens between them.
fn skip_bigrams(tokens: &[String], max_gap: Option<usize>) -> HashMap<(&str, &str), usize> {
    let mut pairs = HashMap::new();
    for (i, first) in tokens.iter().enumerate() {
        let end = match max_gap {
            Some(gap) => (i + gap + 2).min(tokens.len()),
            None => tokens.len(),
        };
        for second in &tokens[i + 1..end] {
            *pairs.entry((first.as_str(), second.as_str())).or_insert(0) += 1;
        }
    }
    pairs
}

/// ROUGE-S: clipped skip-bigram matches; `max_gap` words may lie between the two (`Some(4)`:
/// ROUGE-S4; `None`: ROUGE-S*).
pub fn rouge_s(target: &[String], prediction: &[String], max_gap: Option<usize>) -> Score {
    clipped(
        &skip_bigrams(target, max_gap),
        &skip_bigrams(prediction, max_gap),
    )
}

/// Scores (target, prediction) text pairs, with or without stemming.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rouge {
    stem: bool,
}

impl Rouge {
    pub fn new(stem: bool) -> Self {
        Self { stem }
    }

    /// ROUGE-1, -2, -L, -Lsum and -S4 of `prediction` against `target`.
    pub fn score(&self, target: &str, prediction: &str) -> RougeScores {
        let target_tokens = tokenize(target, self.stem);
        let prediction_tokens = tokenize(prediction, self.stem);
        let split = |text: &str| -> Vec<Vec<String>> {
            sentences(text).map(|s| tokenize(s, self.stem)).collect()
        };
        RougeScores {
            rouge1: rouge_n(&target_tokens, &prediction_tokens, 1),
            rouge2: rouge_n(&target_tokens, &prediction_tokens, 2),
            rouge_l: rouge_l(&target_tokens, &prediction_tokens),
            rouge_lsum: rouge_lsum(&split(target), &split(prediction)),
            rouge_s4: rouge_s(&target_tokens, &prediction_tokens, Some(4)),
        }
    }

    /// The mean of each score over `(target, prediction)` pairs: how corpora are reported.
    pub fn mean(&self, pairs: &[(&str, &str)]) -> Result<RougeScores> {
        mean_scores(pairs.iter().map(|(t, p)| self.score(t, p)), pairs.len())
    }
}

/// Means of precision, recall and F of each variant over `count` scores.
fn mean_scores(scores: impl Iterator<Item = RougeScores>, count: usize) -> Result<RougeScores> {
    if count == 0 {
        return Err(Error::Empty {
            what: "the list of (target, prediction) pairs".into(),
        });
    }
    let mut sum = RougeScores::default();
    for s in scores {
        for (total, part) in sum.parts_mut().into_iter().zip(s.parts()) {
            total.precision += part.precision;
            total.recall += part.recall;
            total.fmeasure += part.fmeasure;
        }
    }
    for total in sum.parts_mut() {
        total.precision /= count as f64;
        total.recall /= count as f64;
        total.fmeasure /= count as f64;
    }
    Ok(sum)
}

impl RougeScores {
    fn parts(&self) -> [Score; 5] {
        [
            self.rouge1,
            self.rouge2,
            self.rouge_l,
            self.rouge_lsum,
            self.rouge_s4,
        ]
    }

    fn parts_mut(&mut self) -> [&mut Score; 5] {
        [
            &mut self.rouge1,
            &mut self.rouge2,
            &mut self.rouge_l,
            &mut self.rouge_lsum,
            &mut self.rouge_s4,
        ]
    }
}

/// The `rouge-score` variants by the `rougers` crate: the same numbers as the teaching code above
/// (tests hold them to it), computed with less allocation. Sweeps over thousands of summaries use
/// this; the lessons read the code above. ROUGE-S, which `rougers` lacks, comes from [`rouge_s`].
pub mod fast {
    use super::{RougeScores, Score, rouge_s, tokenize};
    use crate::error::Result;

    /// A scorer for ROUGE-1, -2, -L and -Lsum (+ S4 from the teaching code).
    #[derive(Debug, Clone)]
    pub struct FastRouge {
        scorer: rougers::RougeScorer,
        stem: bool,
    }

    impl FastRouge {
        pub fn new(stem: bool) -> Result<Self> {
            let scorer =
                rougers::RougeScorer::new(["rouge1", "rouge2", "rougeL", "rougeLsum"], stem)
                    .map_err(|e| crate::Error::InvalidArgument {
                        name: "rouge_types",
                        value: "rouge1, rouge2, rougeL, rougeLsum".into(),
                        reason: e.to_string(),
                    })?;
            Ok(Self { scorer, stem })
        }

        /// The four `rouge-score` variants; `rouge_s4` is left zero (see [`FastRouge::score`]).
        pub fn score_rouge_score_variants(&self, target: &str, prediction: &str) -> RougeScores {
            let scores = self.scorer.score(target, prediction);
            let get = |name: &str| {
                name.parse::<rougers::RougeType>()
                    .ok()
                    .and_then(|t| scores.get(t))
                    .map_or(Score::ZERO, |s| Score {
                        precision: s.precision,
                        recall: s.recall,
                        fmeasure: s.fmeasure,
                    })
            };
            RougeScores {
                rouge1: get("rouge1"),
                rouge2: get("rouge2"),
                rouge_l: get("rougeL"),
                rouge_lsum: get("rougeLsum"),
                rouge_s4: Score::ZERO,
            }
        }

        /// Everything [`Rouge::score`] gives, the `rouge-score` variants by `rougers`.
        pub fn score(&self, target: &str, prediction: &str) -> RougeScores {
            let mut scores = self.score_rouge_score_variants(target, prediction);
            scores.rouge_s4 = rouge_s(
                &tokenize(target, self.stem),
                &tokenize(prediction, self.stem),
                Some(4),
            );
            scores
        }

        /// Means over pairs, as [`Rouge::mean`], scored on every core.
        pub fn mean(&self, pairs: &[(&str, &str)]) -> Result<RougeScores> {
            let scores = self.score_batch(pairs, |scorer, t, p| scorer.score(t, p));
            super::mean_scores(scores.into_iter(), pairs.len())
        }

        /// [`FastRouge::score_rouge_score_variants`] of every pair, in order, the pairs split
        /// over the machine's cores (scoring one pair never depends on another).
        pub fn score_batch_rouge_score_variants(&self, pairs: &[(&str, &str)]) -> Vec<RougeScores> {
            self.score_batch(pairs, |scorer, t, p| {
                scorer.score_rouge_score_variants(t, p)
            })
        }

        fn score_batch(
            &self,
            pairs: &[(&str, &str)],
            score: impl Fn(&Self, &str, &str) -> RougeScores + Sync,
        ) -> Vec<RougeScores> {
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            let chunk = pairs.len().div_ceil(threads).max(1);
            std::thread::scope(|scope| {
                let handles: Vec<_> = pairs
                    .chunks(chunk)
                    .map(|part| {
                        let score = &score;
                        scope.spawn(move || {
                            part.iter()
                                .map(|(t, p)| score(self, t, p))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|handle| match handle.join() {
                        Ok(scores) => scores,
                        // Scoring text cannot panic short of a bug; resume it on this thread.
                        Err(panic) => std::panic::resume_unwind(panic),
                    })
                    .collect()
            })
        }
    }
}
