//! Beam search as transformers' `GenerationMixin._beam_search` runs it since the vectorized
//! rewrite of transformers 4.50 (pull request 35802), with the per-input early-stop flags of later
//! releases (`_check_early_stop_heuristic`), through 5.x.
//!
//! The tensors of the Python code become plain vectors, one entry per beam, in the same order and
//! with the same `f32` arithmetic, so ties and the `-1e9` sentinels resolve as they do there.

use candle_core::Tensor;

use super::logits::{self, LogitsProcessors, top_k_indices};
use super::{Decoder, EarlyStopping, GenerationConfig, Seq2Seq, Step, check_vocab};
use crate::error::{Result, invalid};

/// transformers' stand-in for "impossible" (a finite number, so sums stay ordered).
const BIG: f32 = 1.0e9;

/// Beam search whatever `config.do_sample` says, with `config.num_beams` beams (1 is allowed and
/// gives greedy search's tokens).
///
/// Each step, for every input: the `num_beams` running beams' logits become log-probabilities,
/// the logits processors apply to them, each beam's running score is added, and the best
/// `2 · num_beams` (beam, token) continuations over all beams are kept. Those ending in EOS (or
/// reaching `max_length`) finish; only the first `num_beams` of them may enter the finished set,
/// scored `sum_logprobs / generated_len^length_penalty`, where `generated_len` counts the tokens
/// after the decoder start token, EOS included (transformers ≥ 4.50; for encoder–decoders this
/// equals the older `hyp.shape[-1]`, which counted the start token but not EOS). The best
/// `num_beams` unfinished continuations run on; the cache is reordered to follow them. An input
/// stops collecting hypotheses once its best running beam cannot beat its worst finished one
/// (scored at the current length, or at `max_length` for `early_stopping: "never"` with a positive
/// penalty), or, with `early_stopping: true`, once `num_beams` hypotheses have finished. The best
/// `num_return_sequences` finished hypotheses are returned, padded to one length.
pub fn beam_search<M: Seq2Seq>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Vec<Vec<u32>>> {
    let config = GenerationConfig {
        do_sample: false,
        ..config.clone()
    };
    config.validate()?;
    run(model, input_ids, attention_mask, &config, &mut |_| {})
}

/// One of an input's `num_beams` best finished hypotheses (or a placeholder while fewer exist).
#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    score: f32,
    /// Tokens generated after the start token (transformers counts `beam_indices != -1`).
    generated: usize,
    is_finished: bool,
}

/// A (beam, token) continuation among an input's best `2 · num_beams`.
struct Candidate {
    /// Flat row (input · num_beams + beam) of the beam it extends.
    row: usize,
    token: u32,
    log_prob: f32,
    /// Ends in EOS or reaches `max_length`.
    hits_stop: bool,
}

pub(super) fn run<M: Seq2Seq>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
    on_step: &mut dyn FnMut(&Step<'_>),
) -> Result<Vec<Vec<u32>>> {
    let special = model.special_tokens();
    let processors = LogitsProcessors::new(config, &special);
    let num_beams = config.num_beams;
    let max_length = config.resolved_max_length();
    let length_penalty = config.length_penalty;
    let early_stopping = config.early_stopping;
    // The decoder prompt is the start token alone.
    let prompt_len = 1;
    // transformers keeps max(2, 1 + number of EOS ids) · num_beams; Lowrank has one EOS id.
    let beams_to_keep = 2 * num_beams;
    // transformers fills with `pad_token_id or eos_token_id[0]`: a pad id of 0 falls through to EOS.
    let fill = if special.pad_token_id != 0 {
        special.pad_token_id
    } else {
        special.eos_token_id
    };
    let Some(mut decoder) = Decoder::new(model, input_ids, attention_mask, num_beams, config)?
    else {
        return Ok(Vec::new());
    };
    let (batch_size, rows) = (decoder.batch_size, decoder.rows);
    let start = special.decoder_start_token_id;

    // Beam 0 of each input starts at 0, the others at -1e9, so the first step expands one beam.
    let mut running = vec![vec![start]; rows];
    let mut running_scores: Vec<f32> = (0..rows)
        .map(|row| if row % num_beams == 0 { 0.0 } else { -BIG })
        .collect();
    let mut finished = vec![
        Hypothesis {
            tokens: vec![start],
            score: -BIG,
            generated: 0,
            is_finished: false,
        };
        rows
    ];
    // transformers' `is_early_stop_heuristic_unsatisfied`: the input may still gain hypotheses.
    let mut open = vec![true; batch_size];
    let all_open = vec![true; rows];
    let mut cur_len = prompt_len;
    loop {
        let logits = decoder.next_logits(&running)?;
        let vocab = logits.first().map_or(0, Vec::len);
        check_vocab(&processors, &special, vocab)?;
        if vocab < 2 {
            return Err(invalid(format!(
                "beam search needs at least 2 logits per step, the model gives {vocab}"
            )));
        }
        let log_probs: Vec<Vec<f32>> = logits
            .iter()
            .zip(&running)
            .map(|(scores, sequence)| {
                let mut log_probs = logits::log_softmax(scores);
                processors.apply(sequence, &mut log_probs);
                log_probs
            })
            .collect();

        let mut next_running = Vec::with_capacity(rows);
        let mut next_scores = Vec::with_capacity(rows);
        let mut parents = Vec::with_capacity(rows);
        let mut all_hit_stop = true;
        for (input, &input_open) in open.iter().enumerate() {
            let beams = input * num_beams..(input + 1) * num_beams;
            // (num_beams · vocab) accumulated scores, beam-major as transformers reshapes them.
            let accumulated = beams.clone().flat_map(|row| {
                let score = running_scores[row];
                log_probs[row].iter().map(move |&log_prob| log_prob + score)
            });
            let candidates: Vec<Candidate> = top_k_indices(accumulated, beams_to_keep)
                .into_iter()
                .map(|(index, log_prob)| {
                    let token = (index % vocab) as u32;
                    Candidate {
                        row: input * num_beams + index / vocab,
                        token,
                        log_prob,
                        hits_stop: token == special.eos_token_id || cur_len + 1 >= max_length,
                    }
                })
                .collect();
            all_hit_stop &= candidates.iter().all(|c| c.hits_stop);
            let extend = |candidate: &Candidate| {
                let mut tokens = Vec::with_capacity(cur_len + 1);
                tokens.extend_from_slice(&running[candidate.row]);
                tokens.push(candidate.token);
                tokens
            };

            // The best unfinished continuations run on (finished ones sink by 1e9).
            let running_values: Vec<f32> = candidates
                .iter()
                .map(|c| c.log_prob + if c.hits_stop { -BIG } else { 0.0 })
                .collect();
            for (index, score) in top_k_indices(running_values.into_iter(), num_beams) {
                let candidate = &candidates[index];
                next_running.push(extend(candidate));
                next_scores.push(score);
                parents.push(candidate.row as u32);
            }

            // Finished continuations among the first num_beams compete with the kept hypotheses.
            let hypotheses = &finished[beams.clone()];
            let generated = cur_len + 1 - prompt_len;
            let denominator = (generated as f64).powf(length_penalty) as f32;
            let full = early_stopping == EarlyStopping::WhenFull
                && hypotheses.iter().all(|h| h.is_finished);
            let mut merged: Vec<f32> = hypotheses.iter().map(|h| h.score).collect();
            for (index, candidate) in candidates.iter().enumerate() {
                let just_finished = candidate.hits_stop && index < num_beams;
                let mut score = candidate.log_prob / denominator;
                // Added one at a time, in transformers' order, for the same f32 rounding.
                for excluded in [full, !input_open, !just_finished] {
                    score += if excluded { -BIG } else { 0.0 };
                }
                merged.push(score);
            }
            let kept: Vec<Hypothesis> = top_k_indices(merged.into_iter(), num_beams)
                .into_iter()
                .map(|(index, score)| match index.checked_sub(num_beams) {
                    None => hypotheses[index].clone(),
                    Some(c) => Hypothesis {
                        tokens: extend(&candidates[c]),
                        score,
                        generated,
                        is_finished: candidates[c].hits_stop && c < num_beams,
                    },
                })
                .collect();
            for (slot, hypothesis) in finished[beams].iter_mut().zip(kept) {
                *slot = hypothesis;
            }
        }
        if next_running.len() != rows {
            return Err(invalid(format!(
                "beam search kept {} beams instead of {rows}; the vocabulary is too small for \
                 num_beams {num_beams}",
                next_running.len()
            )));
        }
        running = next_running;
        running_scores = next_scores;
        cur_len += 1;

        for (input, open) in open.iter_mut().enumerate() {
            let best_length = if early_stopping == EarlyStopping::Never && length_penalty > 0.0 {
                max_length - prompt_len
            } else {
                cur_len - prompt_len
            };
            let best_running = running_scores[input * num_beams]
                / (best_length as f64).powf(length_penalty) as f32;
            let hypotheses = &finished[input * num_beams..(input + 1) * num_beams];
            let worst = hypotheses
                .iter()
                .map(|h| h.score)
                .fold(f32::INFINITY, f32::min);
            let improvable = hypotheses
                .iter()
                .any(|h| best_running > if h.is_finished { worst } else { -BIG });
            *open = *open && improvable;
        }
        let improvement_possible = open.contains(&true);
        let exists_open_beam =
            !(early_stopping == EarlyStopping::WhenFull && finished.iter().all(|h| h.is_finished));
        on_step(&Step {
            cur_len,
            max_length,
            sequences: &running,
            unfinished: &all_open,
        });
        if !(improvement_possible && exists_open_beam && !all_hit_stop) {
            break;
        }
        decoder.reorder(&parents)?;
    }

    let returned: Vec<&Hypothesis> = finished
        .chunks(num_beams)
        .flat_map(|hypotheses| hypotheses.iter().take(config.num_return_sequences))
        .collect();
    let output_length = prompt_len + returned.iter().map(|h| h.generated).max().unwrap_or(0);
    Ok(returned
        .into_iter()
        .map(|hypothesis| {
            let mut tokens = hypothesis.tokens.clone();
            tokens.resize(output_length, fill);
            tokens
        })
        .collect())
}
