//! Lesson 07 (`07-decoding-and-evaluation`): turning a model's next-token distribution into text
//! (greedy, beam search, top-k / top-p sampling in [`models::generation`]), what the KV cache saves
//! (measured here), and judging the result: perplexity ([`eval::perplexity`]) and ROUGE
//! ([`eval::rouge`]).
//!
//! The lesson's own code is small: the formulas written out on plain slices (filtering,
//! renormalizing, perplexity from log-probabilities), a timing of cached against uncached
//! generation, and the model the chapter decodes with. The library is the reference for all of it.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use models::bart::{Bart, Config, synthetic_weights};
use models::generation::{self, GenerationConfig, logits};
use rand::Rng;
use train::summarizer::{self, SummarizerConfig};

use crate::LessonResult;
use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::transformer::{self, DialogueBart};

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "07-top-k",
        lesson: "07-decoding-and-evaluation",
        title: "Top-k filtering",
        task: "Return the scores with every score below the k-th highest set to -inf (f32::NEG_INFINITY); \
               scores tied with the k-th highest survive. k = 0 or k ≥ the number of scores keeps all.",
        hint: "sort a copy in decreasing order, take the k-th value as the threshold, and remove only scores strictly below it",
        template: "fn answer(scores: &[f32], k: usize) -> Vec<f32> {\n    todo!()\n}\n",
        checker: "lab::decoding::check_top_k",
        self_test: || SelfTest {
            reference: check_top_k(|scores, k| {
                let mut out = scores.to_vec();
                logits::top_k(&mut out, k, 1);
                out
            }),
            wrong: check_top_k(|scores, k| {
                // Keeps exactly k indices: drops tokens tied with the k-th.
                let mut order: Vec<usize> = (0..scores.len()).collect();
                order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
                let mut out = vec![f32::NEG_INFINITY; scores.len()];
                let keep = if k == 0 { scores.len() } else { k };
                for &i in order.iter().take(keep) {
                    out[i] = scores[i];
                }
                out
            }),
        },
    },
    Exercise {
        id: "07-top-p",
        lesson: "07-decoding-and-evaluation",
        title: "Top-p (nucleus) filtering",
        task: "Return the scores with every token outside the nucleus set to -inf: the nucleus is the \
               smallest set of highest-probability tokens whose probabilities (softmax of the scores) \
               sum to at least p. The highest token always stays.",
        hint: "sort tokens by probability, highest first, and keep adding them while the sum of those already kept is below p; the token that reaches p is kept",
        template: "fn answer(scores: &[f32], p: f64) -> Vec<f32> {\n    todo!()\n}\n",
        checker: "lab::decoding::check_top_p",
        self_test: || SelfTest {
            reference: check_top_p(|scores, p| {
                let mut out = scores.to_vec();
                logits::top_p(&mut out, p, 1);
                out
            }),
            wrong: check_top_p(|scores, p| {
                // Stops before the token that crosses p.
                let probs = logits::softmax(scores);
                let mut order: Vec<usize> = (0..scores.len()).collect();
                order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
                let mut out = vec![f32::NEG_INFINITY; scores.len()];
                let mut total = 0.0;
                for (rank, &i) in order.iter().enumerate() {
                    total += f64::from(probs[i]);
                    if rank > 0 && total > p {
                        break;
                    }
                    out[i] = scores[i];
                }
                out
            }),
        },
    },
    Exercise {
        id: "07-perplexity",
        lesson: "07-decoding-and-evaluation",
        title: "Perplexity from log-probabilities",
        task: "Given the natural-log probabilities a model gave each token of a text, return its \
               perplexity: exp of the mean negative log-likelihood per token.",
        hint: "PPL = exp(-(1/N)·Σ log p): the mean, not the sum, and the sign turns log-probabilities into a loss",
        template: "fn answer(log_probs: &[f64]) -> f64 {\n    todo!()\n}\n",
        checker: "lab::decoding::check_perplexity",
        self_test: || SelfTest {
            reference: check_perplexity(perplexity),
            wrong: check_perplexity(|lp| (-lp.iter().sum::<f64>()).exp()),
        },
    },
    Exercise {
        id: "07-rouge-1",
        lesson: "07-decoding-and-evaluation",
        title: "ROUGE-1 F1",
        task: "Return the ROUGE-1 F-measure of a prediction against a target as rouge-score computes \
               it without stemming: lowercase, split on every character that is not a-z or 0-9, \
               count unigrams, overlap = Σ min(count in target, count in prediction), precision = \
               overlap / prediction tokens, recall = overlap / target tokens, F = 2PR/(P+R) (0 when \
               both are 0).",
        hint: "tokenize with text.to_lowercase().split(|c: char| !c.is_ascii_alphanumeric()) and drop empty pieces; clip each word's count by the other side's",
        template: "fn answer(target: &str, prediction: &str) -> f64 {\n    todo!()\n}\n",
        checker: "lab::decoding::check_rouge_1",
        self_test: || SelfTest {
            reference: check_rouge_1(rouge_1),
            wrong: check_rouge_1(|target, prediction| {
                // Whitespace tokens, case kept: "Card," and "card" differ.
                let t: Vec<&str> = target.split_whitespace().collect();
                let p: Vec<&str> = prediction.split_whitespace().collect();
                let overlap = p.iter().filter(|w| t.contains(w)).count() as f64;
                eval::rouge::fmeasure(
                    overlap / p.len().max(1) as f64,
                    overlap / t.len().max(1) as f64,
                )
            }),
        },
    },
];

// ---------------------------------------------------------------------------------------------
// Distributions on plain slices.

/// Softmax in f64: probabilities of `scores` (−inf → 0).
pub fn probabilities(scores: &[f32]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; scores.len()];
    }
    let exps: Vec<f64> = scores.iter().map(|&s| f64::from(s - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// The distribution sampling draws from after temperature `t`, top-k `k` (0: off) and top-p `p`
/// (1: off), in transformers' order, through the library's warpers.
pub fn warped(scores: &[f32], t: f64, k: usize, p: f64) -> Vec<f64> {
    let mut scores = scores.to_vec();
    let warpers = logits::LogitsWarpers {
        temperature: t,
        top_k: k,
        top_p: p,
        min_tokens_to_keep: 1,
    };
    warpers.apply(&mut scores);
    probabilities(&scores)
}

/// `exp(−mean(log_probs))`, the perplexity of a text whose tokens got these log-probabilities.
pub fn perplexity(log_probs: &[f64]) -> f64 {
    if log_probs.is_empty() {
        return f64::NAN;
    }
    (-log_probs.iter().sum::<f64>() / log_probs.len() as f64).exp()
}

/// ROUGE-1 F without stemming, through [`eval::rouge`].
pub fn rouge_1(target: &str, prediction: &str) -> f64 {
    eval::rouge::Rouge::new(false)
        .score(target, prediction)
        .rouge1
        .fmeasure
}

// ---------------------------------------------------------------------------------------------
// The models the chapter decodes with.

/// The dialogue summarizer the chapter decodes with: the course's full model
/// (`SummarizerConfig::default()`, what `lowrank train summarizer` trains) when it is in the
/// cache, else the quick one of chapter 6 (trained now if need be: about a quarter of a minute).
pub fn summarizer() -> LessonResult<DialogueBart> {
    let full = SummarizerConfig::default();
    let dir = transformer::cache_dir()
        .join("models")
        .join(full.dir_name());
    if summarizer::is_complete(&dir) {
        return transformer::dialogue_bart(&full);
    }
    transformer::dialogue_bart(&SummarizerConfig::quick())
}

/// A BART of moderate width with the library's synthetic weights, for timing decoding: d = 256,
/// 2 + 2 layers, 4 heads, vocabulary 2000, 512 positions (BART-base is 768 wide, 6 + 6 deep).
pub fn timing_bart() -> LessonResult<Bart> {
    let cfg = Config {
        vocab_size: 2000,
        d_model: 256,
        encoder_layers: 2,
        decoder_layers: 2,
        encoder_attention_heads: 4,
        decoder_attention_heads: 4,
        encoder_ffn_dim: 1024,
        decoder_ffn_dim: 1024,
        max_position_embeddings: 512,
        ..Config::bart_base()
    };
    let weights = synthetic_weights(&cfg, &Device::Cpu)?;
    Ok(Bart::load(
        VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu),
        &cfg,
    )?)
}

/// Seconds one greedy generation of exactly `length` decoder tokens took with and without the KV
/// cache (the best of `repeats` runs each).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheTiming {
    pub length: usize,
    pub cached_s: f64,
    pub uncached_s: f64,
}

impl CacheTiming {
    /// How many times faster the cached generation was.
    pub fn speedup(&self) -> f64 {
        self.uncached_s / self.cached_s
    }
}

/// Times greedy generation of each of `lengths` tokens for a 32-token input, with `use_cache`
/// true and false. `min_length = max_length` bans EOS until the end, so every run produces
/// exactly that many tokens whatever the model prefers; both runs must produce the same tokens.
pub fn kv_cache_timing(
    model: &Bart,
    lengths: &[usize],
    repeats: usize,
) -> LessonResult<Vec<CacheTiming>> {
    let vocab = model.config().vocab_size as u32;
    let ids: Vec<u32> = (0..32u32).map(|i| 5 + (i * 37) % (vocab - 5)).collect();
    let input_ids = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    let mask = Tensor::ones((1, ids.len()), DType::U32, &Device::Cpu)?;
    let mut timings = Vec::with_capacity(lengths.len());
    for &length in lengths {
        let mut best = [f64::INFINITY; 2];
        let mut outputs: [Vec<Vec<u32>>; 2] = Default::default();
        for _ in 0..repeats.max(1) {
            for (slot, use_cache) in [(0, true), (1, false)] {
                let config = GenerationConfig {
                    max_length: length,
                    min_length: length,
                    use_cache,
                    ..GenerationConfig::default()
                };
                let start = Instant::now();
                outputs[slot] = generation::greedy_search(model, &input_ids, &mask, &config)?;
                best[slot] = best[slot].min(start.elapsed().as_secs_f64());
            }
        }
        if outputs[0] != outputs[1] {
            return Err(format!("cached and uncached decoding differ at length {length}").into());
        }
        timings.push(CacheTiming {
            length,
            cached_s: best[0],
            uncached_s: best[1],
        });
    }
    Ok(timings)
}

/// Time against output length, with and without the cache.
pub fn kv_cache_plot(timings: &[CacheTiming]) -> viz::Plot {
    let lengths: Vec<f64> = timings.iter().map(|t| t.length as f64).collect();
    let cached: Vec<f64> = timings.iter().map(|t| t.cached_s * 1e3).collect();
    let uncached: Vec<f64> = timings.iter().map(|t| t.uncached_s * 1e3).collect();
    viz::Plot::new("Greedy decoding with and without the KV cache")
        .x_label("decoder tokens generated")
        .y_label("milliseconds")
        .line("use_cache: false", &lengths, &uncached)
        .line("use_cache: true", &lengths, &cached)
}

/// The softmax of `scores` beside what top-k and top-p leave of it, as a plot over token ids.
pub fn filtering_plot(scores: &[f32], k: usize, p: f64) -> viz::Plot {
    let ids: Vec<f64> = (0..scores.len()).map(|i| i as f64).collect();
    viz::Plot::new(format!(
        "One distribution, filtered: top-k (k = {k}) and top-p (p = {p})"
    ))
    .x_label("token id")
    .y_label("probability")
    .line("softmax", &ids, &probabilities(scores))
    .scatter(
        format!("top-k, k = {k}"),
        &ids,
        &warped(scores, 1.0, k, 1.0),
    )
    .scatter(format!("top-p, p = {p}"), &ids, &warped(scores, 1.0, 0, p))
}

/// Scores the chapter filters: `2·cos(0.9·i) + 0.1·i` for 12 tokens (any numbers would do; a
/// formula lets Python rebuild them).
pub fn example_scores() -> Vec<f32> {
    (0..12)
        .map(|i| (2.0 * (0.9 * i as f64).cos() + 0.1 * i as f64) as f32)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Checkers.

fn random_scores(rng: &mut impl Rng, ties: bool) -> Vec<f32> {
    let n = rng.random_range(1..30);
    (0..n)
        .map(|_| {
            if ties {
                rng.random_range(0..6) as f32 * 0.5
            } else {
                rng.random_range(-4.0..4.0)
            }
        })
        .collect()
}

fn same_filter(what: &str, got: &[f32], want: &[f32]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: you returned {} scores, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let same = (g.is_infinite() && w.is_infinite() && g.signum() == w.signum())
            || (g - w).abs() <= 1e-6 * w.abs().max(1.0);
        if !same {
            return Err(format!("{what}: token {i} is {g}, expected {w}"));
        }
    }
    Ok(())
}

/// Checks `answer(scores, k)` against [`logits::top_k`].
pub fn check_top_k(answer: impl Fn(&[f32], usize) -> Vec<f32>) -> Verdict {
    let mut rng = exercise::rng(71);
    let mut cases: Vec<(Vec<f32>, usize)> = vec![
        (vec![1.0, 3.0, 2.0, 0.5], 2),
        (vec![1.0, 2.0, 2.0, 0.5], 2),
        (vec![1.0, 2.0], 0),
        (vec![1.0, 2.0], 5),
    ];
    for i in 0..30 {
        let scores = random_scores(&mut rng, i % 2 == 0);
        let k = rng.random_range(1..=scores.len());
        cases.push((scores, k));
    }
    Checker::new(EXERCISES[0].id, EXERCISES[0].hint, cases).run(
        |(scores, k)| answer(scores, *k),
        |(scores, k), got| {
            let mut want = scores.clone();
            logits::top_k(&mut want, *k, 1);
            same_filter(&format!("k={k} on {scores:?}"), &got, &want)
        },
    )
}

/// Checks `answer(scores, p)` against [`logits::top_p`].
pub fn check_top_p(answer: impl Fn(&[f32], f64) -> Vec<f32>) -> Verdict {
    let mut rng = exercise::rng(72);
    let mut cases: Vec<(Vec<f32>, f64)> = vec![
        ([0.1f32, 0.15, 0.2, 0.25, 0.3].map(f32::ln).to_vec(), 0.7),
        (vec![0.0, 5.0, 1.0], 0.5),
        (vec![2.0], 0.9),
    ];
    for _ in 0..30 {
        let scores = random_scores(&mut rng, false);
        cases.push((scores, rng.random_range(0.05..0.99)));
    }
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, cases).run(
        |(scores, p)| answer(scores, *p),
        |(scores, p), got| {
            let mut want = scores.clone();
            logits::top_p(&mut want, *p, 1);
            same_filter(&format!("p={p:.3} on {scores:?}"), &got, &want)
        },
    )
}

/// Checks `answer(log_probs)` against [`eval::perplexity::Perplexity::perplexity`].
pub fn check_perplexity(answer: impl Fn(&[f64]) -> f64) -> Verdict {
    let mut rng = exercise::rng(73);
    let mut cases: Vec<Vec<f64>> = vec![vec![(0.25f64).ln(); 4], vec![(0.5f64).ln()]];
    for _ in 0..20 {
        let n = rng.random_range(1..40);
        cases.push(
            (0..n)
                .map(|_| rng.random_range(1e-4f64..1.0).ln())
                .collect(),
        );
    }
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, cases).run(
        |log_probs| answer(log_probs),
        |log_probs, got| {
            let result = eval::perplexity::Perplexity {
                total_nll: -log_probs.iter().sum::<f64>(),
                tokens: log_probs.len(),
                example_nll: Vec::new(),
                example_tokens: Vec::new(),
            };
            exercise::close(
                &format!("{} log-probabilities {log_probs:.3?}", log_probs.len()),
                got,
                result.perplexity(),
                1e-9,
            )
        },
    )
}

/// Checks `answer(target, prediction)` against [`eval::rouge::Rouge`] (no stemming).
pub fn check_rouge_1(answer: impl Fn(&str, &str) -> f64) -> Verdict {
    let words = [
        "the", "card", "Card,", "was", "blocked", "refund", "of", "€40", "Anna's", "sent", "a",
        "new", "PIN", "pin.", "on", "Monday", "2", "days",
    ];
    let mut rng = exercise::rng(74);
    let mut cases: Vec<(String, String)> = vec![
        ("the cat sat on the mat".into(), "the cat on the mat".into()),
        (
            "Anna's card was blocked.".into(),
            "anna s CARD was blocked".into(),
        ),
        ("".into(), "anything".into()),
        ("a a a".into(), "a".into()),
    ];
    for _ in 0..20 {
        let text = |rng: &mut rand_chacha::ChaCha8Rng| {
            let n = rng.random_range(1..12);
            (0..n)
                .map(|_| words[rng.random_range(0..words.len())])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let target = text(&mut rng);
        let prediction = text(&mut rng);
        cases.push((target, prediction));
    }
    Checker::new(EXERCISES[3].id, EXERCISES[3].hint, cases).run(
        |(target, prediction)| answer(target, prediction),
        |(target, prediction), got| {
            exercise::close(
                &format!("target {target:?}, prediction {prediction:?}"),
                got,
                rouge_1(target, prediction),
                1e-9,
            )
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// The chapter's figures, drawn into `out` when the book is built: time against output length
/// with and without the KV cache (the timing model), and top-k / top-p on the example scores.
pub fn figures(out: &Path) -> LessonResult<()> {
    let model = timing_bart()?;
    let timings = kv_cache_timing(&model, &[8, 16, 32, 48, 64, 96], 1)?;
    kv_cache_plot(&timings).save(out.join("07-kv-cache.svg"))?;
    filtering_plot(&example_scores(), 3, 0.8).save(out.join("07-filtering.svg"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perplexity_of_uniform_guesses_is_the_vocabulary() {
        assert!((perplexity(&[(0.1f64).ln(); 7]) - 10.0).abs() < 1e-9);
        assert!(perplexity(&[]).is_nan());
    }

    #[test]
    fn warped_distributions_sum_to_one_and_shrink() {
        let scores = example_scores();
        for (t, k, p) in [(1.0, 0, 1.0), (1.0, 3, 1.0), (1.0, 0, 0.8), (0.5, 5, 0.9)] {
            let probs = warped(&scores, t, k, p);
            assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        assert_eq!(
            warped(&scores, 1.0, 3, 1.0)
                .iter()
                .filter(|&&q| q > 0.0)
                .count(),
            3
        );
    }

    #[test]
    fn cached_and_uncached_decoding_agree_on_a_small_model() {
        let cfg = Config {
            vocab_size: 60,
            d_model: 16,
            encoder_layers: 1,
            decoder_layers: 1,
            encoder_attention_heads: 2,
            decoder_attention_heads: 2,
            encoder_ffn_dim: 32,
            decoder_ffn_dim: 32,
            max_position_embeddings: 40,
            ..Config::bart_base()
        };
        let weights = synthetic_weights(&cfg, &Device::Cpu).unwrap();
        let model = Bart::load(
            VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu),
            &cfg,
        )
        .unwrap();
        let timings = kv_cache_timing(&model, &[4, 12], 1).unwrap();
        assert_eq!(timings.len(), 2);
        assert!(
            timings
                .iter()
                .all(|t| t.cached_s > 0.0 && t.uncached_s > 0.0)
        );
    }
}
