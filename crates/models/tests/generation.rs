//! Decoding on a toy `Seq2Seq` whose logits are a fixed function of the source and the decoder
//! prefix, so each test can state the tokens greedy search, beam search and sampling must produce.
#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use models::Error;
use models::bart::Bart;
use models::generation::logits::{self, no_repeat_ngram_banned};
use models::generation::{
    EarlyStopping, GenerationConfig, Seq2Seq, SpecialTokens, Step, beam_search, generate,
    generate_with_progress, greedy_search, sample,
};
use rand::{Rng, SeedableRng};

const BOS: u32 = 0;
const PAD: u32 = 1;
const EOS: u32 = 2;
/// BART's decoder starts with EOS.
const START: u32 = 2;

type Rule = dyn Fn(&[u32], &[u32]) -> Vec<f32>;

/// Logits = `rule(source tokens, decoder prefix)`. The cache holds each row's prefix; the encoder
/// states carry the source ids, so a wrong expansion or reorder shows up as wrong tokens.
struct Toy {
    vocab: usize,
    rule: Box<Rule>,
    special: SpecialTokens,
    /// Every `reorder_cache` call's indices.
    reorders: RefCell<Vec<Vec<u32>>>,
    /// Decoder positions computed, over all calls.
    positions: Cell<usize>,
}

impl Toy {
    fn new(vocab: usize, rule: impl Fn(&[u32], &[u32]) -> Vec<f32> + 'static) -> Self {
        Toy {
            vocab,
            rule: Box::new(rule),
            special: SpecialTokens {
                bos_token_id: Some(BOS),
                eos_token_id: EOS,
                pad_token_id: PAD,
                decoder_start_token_id: START,
                forced_bos_token_id: None,
                forced_eos_token_id: None,
            },
            reorders: RefCell::new(Vec::new()),
            positions: Cell::new(0),
        }
    }

    /// A model whose logits are pseudo-random in (source, prefix), EOS growing likelier with length.
    fn random(vocab: usize, seed: u64) -> Self {
        Toy::new(vocab, move |source, prefix| {
            let mut hasher = DefaultHasher::new();
            (seed, source, prefix).hash(&mut hasher);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(hasher.finish());
            let mut logits: Vec<f32> = (0..vocab).map(|_| rng.random_range(-3.0..3.0)).collect();
            logits[EOS as usize] += 0.5 * prefix.len() as f32 - 1.5;
            logits
        })
    }

    fn logits(&self, source: &[u32], prefix: &[u32]) -> Vec<f32> {
        let logits = (self.rule)(source, prefix);
        assert_eq!(logits.len(), self.vocab, "the rule must give vocab logits");
        logits
    }
}

impl Seq2Seq for Toy {
    type Cache = Vec<Vec<u32>>;

    fn encode(&self, input_ids: &Tensor, _attention_mask: &Tensor) -> models::Result<Tensor> {
        Ok(input_ids.to_dtype(DType::F32)?.unsqueeze(2)?)
    }

    fn new_cache(&self) -> Self::Cache {
        Vec::new()
    }

    fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut Self::Cache,
    ) -> models::Result<Tensor> {
        let ids = decoder_input_ids.to_vec2::<u32>()?;
        let hidden = encoder_hidden.squeeze(2)?.to_vec2::<f32>()?;
        let mask = encoder_mask.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        if cache.is_empty() {
            cache.resize(ids.len(), Vec::new());
        }
        if cache.len() != ids.len() || hidden.len() != ids.len() {
            return Err(Error::InvalidArgument(format!(
                "toy: {} decoder rows, {} cache rows, {} encoder rows",
                ids.len(),
                cache.len(),
                hidden.len()
            )));
        }
        let mut out = Vec::new();
        for (row, tokens) in ids.iter().enumerate() {
            let source: Vec<u32> = hidden[row]
                .iter()
                .zip(&mask[row])
                .filter(|(_, keep)| **keep > 0.5)
                .map(|(id, _)| *id as u32)
                .collect();
            for &token in tokens {
                cache[row].push(token);
                out.extend(self.logits(&source, &cache[row]));
                self.positions.set(self.positions.get() + 1);
            }
        }
        let t = ids.first().map_or(0, Vec::len);
        Ok(Tensor::from_vec(
            out,
            (ids.len(), t, self.vocab),
            &Device::Cpu,
        )?)
    }

    fn reorder_cache(&self, cache: &mut Self::Cache, indices: &Tensor) -> models::Result<()> {
        let indices = indices.to_vec1::<u32>()?;
        *cache = indices.iter().map(|&i| cache[i as usize].clone()).collect();
        self.reorders.borrow_mut().push(indices);
        Ok(())
    }

    fn special_tokens(&self) -> SpecialTokens {
        self.special.clone()
    }
}

/// Logits whose softmax is `listed`; tokens not listed get probability 1e-9.
fn probs(vocab: usize, listed: &[(u32, f32)]) -> Vec<f32> {
    let mut logits = vec![1e-9f32.ln(); vocab];
    for &(token, p) in listed {
        logits[token as usize] = p.ln();
    }
    logits
}

/// Logits ranking `order` from first to last, every other token below.
fn ranked(vocab: usize, order: &[u32]) -> Vec<f32> {
    let mut logits = vec![-100.0; vocab];
    for (rank, &token) in order.iter().enumerate() {
        logits[token as usize] = -(rank as f32);
    }
    logits
}

/// `input_ids` and `attention_mask` for `sources`, right-padded with PAD.
fn batch(sources: &[&[u32]]) -> (Tensor, Tensor) {
    let width = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for source in sources {
        for i in 0..width {
            ids.push(source.get(i).copied().unwrap_or(PAD));
            mask.push(u32::from(i < source.len()));
        }
    }
    let shape = (sources.len(), width);
    (
        Tensor::from_vec(ids, shape, &Device::Cpu).expect("input_ids"),
        Tensor::from_vec(mask, shape, &Device::Cpu).expect("attention_mask"),
    )
}

fn run(model: &Toy, sources: &[&[u32]], config: &GenerationConfig) -> Vec<Vec<u32>> {
    let (ids, mask) = batch(sources);
    generate(model, &ids, &mask, config).expect("generate")
}

/// The one assertion every decoding test goes through.
fn check(model: &Toy, sources: &[&[u32]], config: &GenerationConfig, expected: &[&[u32]]) {
    let expected: Vec<Vec<u32>> = expected.iter().map(|s| s.to_vec()).collect();
    assert_eq!(run(model, sources, config), expected, "{config:?}");
}

fn config(max_length: usize) -> GenerationConfig {
    GenerationConfig {
        max_length,
        ..GenerationConfig::default()
    }
}

fn beams(num_beams: usize, max_length: usize, early_stopping: EarlyStopping) -> GenerationConfig {
    GenerationConfig {
        num_beams,
        max_length,
        early_stopping,
        ..GenerationConfig::default()
    }
}

/// Copies the source, then EOS.
fn copier(vocab: usize) -> Toy {
    Toy::new(vocab, move |source, prefix| {
        let next = source.get(prefix.len() - 1).copied().unwrap_or(EOS);
        ranked(vocab, &[next])
    })
}

/// Greedy search straight from the rule, without any processor, for one source.
fn reference_greedy(model: &Toy, source: &[u32], max_length: usize) -> Vec<u32> {
    let mut sequence = vec![START];
    while sequence.len() < max_length {
        let token = logits::argmax(&model.logits(source, &sequence)) as u32;
        sequence.push(token);
        if token == EOS {
            break;
        }
    }
    sequence
}

fn strip_padding(mut sequence: Vec<u32>) -> Vec<u32> {
    while sequence.len() > 1 && sequence.last() == Some(&PAD) {
        sequence.pop();
    }
    sequence
}

const SOURCES: [&[u32]; 3] = [&[5, 6, 7, 8], &[9, 3], &[4, 4, 4, 4, 4, 4]];

#[test]
fn greedy_copies_then_pads_finished_rows() {
    let model = copier(10);
    check(
        &model,
        &[&[5, 6, 7], &[4]],
        &config(20),
        &[&[START, 5, 6, 7, EOS], &[START, 4, EOS, PAD, PAD]],
    );
    // max_length counts the start token: three tokens fit in 4.
    check(
        &model,
        &[&[5, 6, 7, 8, 9]],
        &config(4),
        &[&[START, 5, 6, 7]],
    );
    let config = GenerationConfig {
        max_new_tokens: Some(2),
        ..config(100)
    };
    check(&model, &[&[5, 6, 7, 8, 9]], &config, &[&[START, 5, 6]]);
}

#[test]
fn greedy_takes_the_argmax_of_random_logits() {
    for seed in 0..20 {
        let model = Toy::random(12, seed);
        let got = run(&model, &SOURCES, &config(15));
        let width = got[0].len();
        for (row, source) in SOURCES.iter().enumerate() {
            let mut expected = reference_greedy(&model, source, 15);
            expected.resize(width, PAD);
            assert_eq!(got[row], expected, "seed {seed} row {row}");
        }
    }
}

#[test]
fn no_repeat_ngram_bans_repeats() {
    assert_eq!(no_repeat_ngram_banned(&[2, 5, 5, 4, 5], 2), vec![5, 4]);
    assert_eq!(no_repeat_ngram_banned(&[2, 5, 6, 2, 5], 3), vec![6]);
    assert_eq!(
        no_repeat_ngram_banned(&[2, 5, 6, 2, 6], 3),
        Vec::<u32>::new()
    );
    // transformers bans nothing while the sequence is shorter than n - 1.
    assert!(no_repeat_ngram_banned(&[2], 3).is_empty());

    // The model always prefers 5, then 4, 3, 6, 7; EOS last.
    let model = Toy::new(10, |_, _| ranked(10, &[5, 4, 3, 6, 7, 8, 9, 0, 1, 2]));
    let config = GenerationConfig {
        no_repeat_ngram_size: 2,
        ..config(8)
    };
    // After a 5 the bigrams (5,5), then (5,4), then (5,3) are used up.
    check(&model, &[&[4]], &config, &[&[START, 5, 5, 4, 5, 3, 5, 6]]);
    for ngram_size in 1..5 {
        let config = GenerationConfig {
            no_repeat_ngram_size: ngram_size,
            ..config.clone()
        };
        for sequence in run(&Toy::random(12, 7), &SOURCES, &config) {
            // Up to the first EOS after the start token; padding follows it.
            let end = sequence[1..]
                .iter()
                .position(|&token| token == EOS)
                .map_or(sequence.len(), |at| at + 2);
            let mut seen = std::collections::HashSet::new();
            for ngram in sequence[..end].windows(ngram_size) {
                assert!(
                    seen.insert(ngram.to_vec()),
                    "{ngram:?} repeats in {sequence:?}"
                );
            }
        }
    }
}

#[test]
fn min_length_blocks_eos() {
    let model = Toy::new(10, |_, _| ranked(10, &[EOS, 5]));
    check(&model, &[&[4]], &config(20), &[&[START, EOS]]);
    let config = GenerationConfig {
        min_length: 4,
        ..config(20)
    };
    check(&model, &[&[4]], &config, &[&[START, 5, 5, 5, EOS]]);
    let config = GenerationConfig {
        min_new_tokens: Some(2),
        ..config.clone()
    };
    check(&model, &[&[4]], &config, &[&[START, 5, 5, EOS]]);
}

#[test]
fn forced_bos_and_eos() {
    let mut model = Toy::new(10, |_, _| ranked(10, &[5, 6]));
    let forced = GenerationConfig {
        forced_bos_token_id: Some(BOS),
        forced_eos_token_id: Some(EOS),
        ..config(5)
    };
    check(&model, &[&[4]], &forced, &[&[START, BOS, 5, 5, EOS]]);
    check(&model, &[&[4]], &config(5), &[&[START, 5, 5, 5, 5]]);
    // Unset in the config, the model's own forced tokens apply, as BART's config.json sets them.
    model.special.forced_bos_token_id = Some(BOS);
    model.special.forced_eos_token_id = Some(EOS);
    check(&model, &[&[4]], &config(5), &[&[START, BOS, 5, 5, EOS]]);
    let beam = GenerationConfig {
        num_beams: 3,
        ..config(5)
    };
    check(&model, &[&[4]], &beam, &[&[START, BOS, 5, 5, EOS]]);
}

#[test]
fn beam_search_with_one_beam_is_greedy_search() {
    for seed in 0..20 {
        let model = Toy::random(9, seed);
        for config in [
            config(12),
            GenerationConfig {
                no_repeat_ngram_size: 2,
                min_length: 5,
                forced_bos_token_id: Some(BOS),
                forced_eos_token_id: Some(EOS),
                ..config(10)
            },
        ] {
            let (ids, mask) = batch(&SOURCES);
            let greedy = greedy_search(&model, &ids, &mask, &config).unwrap();
            for early_stopping in [
                EarlyStopping::Heuristic,
                EarlyStopping::WhenFull,
                EarlyStopping::Never,
            ] {
                let config = GenerationConfig {
                    early_stopping,
                    length_penalty: 0.0,
                    ..config.clone()
                };
                let beam = beam_search(&model, &ids, &mask, &config).unwrap();
                assert_eq!(beam, greedy, "seed {seed} {config:?}");
            }
        }
    }
}

/// Greedy takes 3 (p 0.6) and is stuck with 0.6 · 0.3; beam search keeps 4 (p 0.4), whose EOS
/// (p 0.9) scores ln(0.36) / 2 = -0.51 against greedy's ln(0.18) / 3 = -0.57.
fn myopic() -> Toy {
    Toy::new(10, |_, prefix| match prefix {
        [START] => probs(10, &[(3, 0.6), (4, 0.4)]),
        [START, 3] => probs(10, &[(5, 0.3), (3, 0.25), (4, 0.25), (EOS, 0.2)]),
        [START, 4] => probs(10, &[(EOS, 0.9), (3, 0.1)]),
        _ => probs(10, &[(EOS, 1.0)]),
    })
}

#[test]
fn beam_search_beats_myopic_greedy() {
    let model = myopic();
    check(&model, &[&[7]], &config(10), &[&[START, 3, 5, EOS]]);
    let beam = beams(2, 10, EarlyStopping::Heuristic);
    check(&model, &[&[7]], &beam, &[&[START, 4, EOS]]);
    // Both hypotheses, best first, padded to one length.
    let both = GenerationConfig {
        num_return_sequences: 2,
        ..beam
    };
    check(
        &model,
        &[&[7]],
        &both,
        &[&[START, 4, EOS, PAD], &[START, 3, 5, EOS]],
    );
}

/// After step 1 both beams extend beam 0; at step 2 the continuation of beam 1 ([2, 4, 7]) is the
/// best, so the cache rows swap.
fn swapping() -> Toy {
    Toy::new(10, |_, prefix| match prefix {
        [START] => probs(10, &[(3, 0.6), (4, 0.4)]),
        [START, 3] => probs(10, &[(5, 0.5), (6, 0.5)]),
        [START, 4] => probs(10, &[(7, 0.95), (8, 0.05)]),
        _ => probs(10, &[(EOS, 1.0)]),
    })
}

#[test]
fn beam_search_reorders_the_cache_by_parent_beam() {
    let model = swapping();
    let config = beams(2, 10, EarlyStopping::Heuristic);
    check(
        &model,
        &[&[7], &[8, 9]],
        &config,
        &[&[START, 4, 7, EOS], &[START, 4, 7, EOS]],
    );
    // Rows are input · num_beams + beam; the search stops before a third reorder.
    assert_eq!(
        *model.reorders.borrow(),
        vec![vec![0, 0, 2, 2], vec![1, 0, 3, 2]]
    );
}

/// One hypothesis finishes at step 2 ([2, 3, 2]), another at step 3 ([2, 3, 6, 2]); the running
/// [2, 4, 7, 8] then still scores -1.415 / 3 > -0.554, the worst finished, and ends better.
fn late_bloomer() -> Toy {
    Toy::new(10, |_, prefix| match prefix {
        [START] => probs(10, &[(3, 0.55), (4, 0.45)]),
        [START, 3] => probs(10, &[(EOS, 0.6), (6, 0.4)]),
        [START, 4] => probs(10, &[(7, 0.9), (EOS, 0.1)]),
        [START, 4, 7] => probs(10, &[(EOS, 0.4), (8, 0.6)]),
        _ => probs(10, &[(EOS, 1.0)]),
    })
}

#[test]
fn early_stopping_true_stops_once_num_beams_hypotheses_finish() {
    let model = late_bloomer();
    let when_full = beams(2, 10, EarlyStopping::WhenFull);
    check(&model, &[&[7]], &when_full, &[&[START, 3, 6, EOS]]);
    let heuristic = beams(2, 10, EarlyStopping::Heuristic);
    check(&model, &[&[7]], &heuristic, &[&[START, 4, 7, 8, EOS]]);
    let never = beams(2, 10, EarlyStopping::Never);
    check(&model, &[&[7]], &never, &[&[START, 4, 7, 8, EOS]]);
}

/// Two hypotheses finish at step 2; the heuristic (current length) stops there, "never" with a
/// positive length penalty scores the running beams at max_length and goes on to a longer one.
#[test]
fn early_stopping_never_hopes_for_max_length() {
    let model = Toy::new(10, |_, prefix| match prefix {
        [START] => probs(10, &[(3, 0.55), (4, 0.45)]),
        [START, 3] | [START, 4] => probs(10, &[(EOS, 0.6), (6, 0.4)]),
        _ => probs(10, &[(EOS, 1.0)]),
    });
    let heuristic = beams(2, 10, EarlyStopping::Heuristic);
    check(&model, &[&[7]], &heuristic, &[&[START, 3, EOS]]);
    let never = beams(2, 10, EarlyStopping::Never);
    check(&model, &[&[7]], &never, &[&[START, 3, 6, EOS]]);
    // Without a length penalty, longer is never better, and "never" stops as the heuristic does.
    let flat = GenerationConfig {
        length_penalty: 0.0,
        ..never
    };
    check(&model, &[&[7]], &flat, &[&[START, 3, EOS]]);
}

#[test]
fn batched_decoding_equals_one_input_at_a_time() {
    for seed in 0..8 {
        let model = Toy::random(11, seed);
        for config in [
            config(14),
            beams(3, 14, EarlyStopping::Heuristic),
            beams(4, 12, EarlyStopping::WhenFull),
            GenerationConfig {
                length_penalty: 2.0,
                no_repeat_ngram_size: 3,
                ..beams(2, 12, EarlyStopping::Never)
            },
        ] {
            let together = run(&model, &SOURCES, &config);
            for (row, source) in SOURCES.iter().enumerate() {
                let alone = run(&model, &[source], &config);
                assert_eq!(
                    strip_padding(together[row].clone()),
                    strip_padding(alone[0].clone()),
                    "seed {seed} row {row} {config:?}"
                );
            }
        }
    }
}

#[test]
fn kv_cache_and_full_recompute_give_the_same_tokens() {
    for seed in 0..8 {
        let model = Toy::random(11, seed);
        for config in [
            config(14),
            beams(3, 14, EarlyStopping::Heuristic),
            beams(2, 14, EarlyStopping::Never),
            GenerationConfig {
                do_sample: true,
                seed: Some(seed),
                num_return_sequences: 2,
                ..config(14)
            },
        ] {
            model.positions.set(0);
            let cached = run(&model, &SOURCES, &config);
            let cached_positions = model.positions.get();
            model.positions.set(0);
            let uncached = GenerationConfig {
                use_cache: false,
                ..config.clone()
            };
            assert_eq!(run(&model, &SOURCES, &uncached), cached, "{config:?}");
            // The cache computes each position once; recomputing costs about length²/2.
            assert!(model.positions.get() > cached_positions, "{config:?}");
        }
    }
}

#[test]
fn sampling_repeats_with_a_seed() {
    let model = Toy::new(8, |_, prefix| {
        let mut logits = vec![0.0; 8];
        logits[EOS as usize] = -3.0 + prefix.len() as f32 * 0.2;
        logits
    });
    let sampling = |seed| GenerationConfig {
        do_sample: true,
        seed: Some(seed),
        ..config(16)
    };
    let first = run(&model, &SOURCES, &sampling(3));
    assert_eq!(run(&model, &SOURCES, &sampling(3)), first);
    assert_ne!(run(&model, &SOURCES, &sampling(4)), first);
    let (ids, mask) = batch(&SOURCES);
    assert_eq!(sample(&model, &ids, &mask, &sampling(3)).unwrap(), first);
    let three = GenerationConfig {
        num_return_sequences: 3,
        ..sampling(3)
    };
    assert_eq!(run(&model, &SOURCES, &three).len(), 9);
}

#[test]
fn sampling_with_top_k_1_is_greedy_search() {
    for seed in 0..10 {
        let model = Toy::random(12, seed);
        let greedy = run(&model, &SOURCES, &config(15));
        let top1 = GenerationConfig {
            do_sample: true,
            top_k: 1,
            temperature: 0.7,
            seed: Some(seed),
            ..config(15)
        };
        assert_eq!(run(&model, &SOURCES, &top1), greedy, "seed {seed}");
        let tiny_top_p = GenerationConfig {
            top_k: 0,
            top_p: 1e-6,
            ..top1
        };
        assert_eq!(run(&model, &SOURCES, &tiny_top_p), greedy, "seed {seed}");
    }
}

#[test]
fn top_p_keeps_the_smallest_set_above_p() {
    // Probabilities 0.25 0.1 0.3 0.15 0.2; ascending cumulative sums 0.1 0.25 0.45 0.7 1.0.
    let distribution = [0.25f32, 0.1, 0.3, 0.15, 0.2];
    let kept = |top_p: f64, min_tokens_to_keep: usize| {
        let mut scores: Vec<f32> = distribution.iter().map(|p| p.ln()).collect();
        logits::top_p(&mut scores, top_p, min_tokens_to_keep);
        let kept: Vec<usize> = (0..5).filter(|&i| scores[i].is_finite()).collect();
        for &i in &kept {
            assert_eq!(scores[i], distribution[i].ln(), "kept scores are unchanged");
        }
        kept
    };
    // 1 - 0.7 = 0.3: tokens whose ascending cumulative sum is <= 0.3 (0.1 and 0.15) go.
    assert_eq!(kept(0.7, 1), vec![0, 2, 4]);
    // 1 - 0.5 = 0.5 removes 0.1, 0.15, 0.2; 0.3 + 0.25 = 0.55 > 0.5.
    assert_eq!(kept(0.5, 1), vec![0, 2]);
    assert_eq!(kept(0.2, 1), vec![2]);
    assert_eq!(kept(0.2, 3), vec![0, 2, 4]);
    assert_eq!(kept(1.0, 1), vec![0, 1, 2, 3, 4]);
}

#[test]
fn top_k_and_temperature_warp_as_transformers() {
    let mut scores = vec![1.0f32, 3.0, 3.0, 2.0, -1.0];
    logits::top_k(&mut scores, 2, 1);
    // Ties with the k-th score survive.
    assert_eq!(scores[..3], [f32::NEG_INFINITY, 3.0, 3.0]);
    let mut scores = vec![1.0f32, 3.0, 2.0, -1.0];
    logits::top_k(&mut scores, 2, 1);
    assert_eq!(scores, vec![f32::NEG_INFINITY, 3.0, 2.0, f32::NEG_INFINITY]);
    let mut scores = vec![1.0f32, 3.0, 2.0, -1.0];
    logits::top_k(&mut scores, 1, 3);
    assert_eq!(scores.iter().filter(|s| s.is_finite()).count(), 3);
    let mut scores = vec![1.0f32, -4.0];
    logits::temperature(&mut scores, 0.5);
    assert_eq!(scores, vec![2.0, -8.0]);
    let probs = logits::softmax(&[0.0, 2f32.ln()]);
    assert!((probs[0] - 1.0 / 3.0).abs() < 1e-6 && (probs[1] - 2.0 / 3.0).abs() < 1e-6);
}

#[test]
fn progress_reports_every_step() {
    let model = copier(10);
    let (ids, mask) = batch(&[&[5, 6, 7], &[4]]);
    let mut lengths = Vec::new();
    let mut open = Vec::new();
    let mut on_step = |step: &Step<'_>| {
        lengths.push(step.cur_len);
        open.push(step.unfinished.to_vec());
        assert_eq!(step.max_length, 20);
        assert!(step.sequences.iter().all(|s| s.len() == step.cur_len));
    };
    generate_with_progress(&model, &ids, &mask, &config(20), &mut on_step).unwrap();
    assert_eq!(lengths, vec![2, 3, 4, 5]);
    assert_eq!(open[1], vec![true, false]);
    assert_eq!(open[3], vec![false, false]);
}

#[test]
fn config_reads_transformers_keys() {
    // facebook/bart-large-cnn's config.json, generation keys and a few others.
    let json = serde_json::json!({
        "d_model": 1024, "early_stopping": true, "forced_bos_token_id": 0,
        "forced_eos_token_id": 2, "length_penalty": 2.0, "max_length": 142, "min_length": 56,
        "no_repeat_ngram_size": 3, "num_beams": 4, "max_new_tokens": null, "top_k": null,
        "task_specific_params": {"summarization": {"num_beams": 2}}
    });
    let config = GenerationConfig::from_model_config(&json).unwrap();
    assert_eq!(
        config,
        GenerationConfig {
            early_stopping: EarlyStopping::WhenFull,
            forced_bos_token_id: Some(0),
            forced_eos_token_id: Some(2),
            length_penalty: 2.0,
            max_length: 142,
            min_length: 56,
            no_repeat_ngram_size: 3,
            num_beams: 4,
            ..GenerationConfig::default()
        }
    );
    let mut config = config;
    let unused = config
        .update(
            &serde_json::json!({"early_stopping": "never", "max_new_tokens": 5,
                                    "forced_eos_token_id": [2], "output_scores": true}),
        )
        .unwrap();
    assert_eq!(unused, vec!["output_scores".to_string()]);
    assert_eq!(config.early_stopping, EarlyStopping::Never);
    assert_eq!(config.resolved_max_length(), 6);
    // Round trip through JSON with transformers' spelling.
    let text = serde_json::to_string(&config).unwrap();
    assert!(text.contains(r#""early_stopping":"never""#), "{text}");
    let back: GenerationConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back, config);
    let error = GenerationConfig::from_model_config(&serde_json::json!({"num_beams": "four"}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("num_beams"), "{error}");
    let error = GenerationConfig::from_model_config(&serde_json::json!({"early_stopping": "yes"}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("never"), "{error}");
}

#[test]
fn invalid_options_are_reported_with_the_fix() {
    let model = copier(10);
    let (ids, mask) = batch(&[&[5, 6]]);
    let error = |config: GenerationConfig| match generate(&model, &ids, &mask, &config) {
        Err(Error::InvalidArgument(message)) => message,
        other => panic!("{config:?} gave {other:?}"),
    };
    let base = config(10);
    let cases = [
        (
            GenerationConfig {
                num_beams: 0,
                ..base.clone()
            },
            "num_beams",
        ),
        (
            GenerationConfig {
                top_p: 0.0,
                ..base.clone()
            },
            "top_p",
        ),
        (
            GenerationConfig {
                top_p: 1.5,
                ..base.clone()
            },
            "top_p",
        ),
        (
            GenerationConfig {
                do_sample: true,
                temperature: 0.0,
                ..base.clone()
            },
            "temperature",
        ),
        (
            GenerationConfig {
                max_length: 1,
                ..base.clone()
            },
            "max_length",
        ),
        (
            GenerationConfig {
                max_new_tokens: Some(0),
                ..base.clone()
            },
            "max_new_tokens",
        ),
        (
            GenerationConfig {
                do_sample: true,
                num_beams: 2,
                ..base.clone()
            },
            "not supported",
        ),
        (
            GenerationConfig {
                num_beams: 2,
                num_return_sequences: 3,
                ..base.clone()
            },
            "num_return_sequences",
        ),
        (
            GenerationConfig {
                num_return_sequences: 2,
                ..base.clone()
            },
            "greedy",
        ),
    ];
    for (config, expected) in cases {
        let message = error(config);
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    let (_, wrong_mask) = batch(&[&[5, 6, 7]]);
    match generate(&model, &ids, &wrong_mask, &base) {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("attention_mask")),
        other => panic!("a mask of another shape gave {other:?}"),
    }
    let mut model = copier(10);
    model.special.eos_token_id = 10;
    match generate(&model, &ids, &mask, &base) {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("eos_token_id 10")),
        other => panic!("an EOS outside the vocabulary gave {other:?}"),
    }
}

#[test]
fn an_empty_batch_generates_nothing() {
    let model = copier(10);
    let ids = Tensor::zeros((0, 3), DType::U32, &Device::Cpu).unwrap();
    assert!(
        generate(&model, &ids, &ids, &config(10))
            .unwrap()
            .is_empty()
    );
}

/// The workspace's tests/fixtures/models, where tests/fixtures/make_model_fixtures.py writes.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; regenerate the fixtures with \
             tests/fixtures/make_model_fixtures.py (its docstring says how)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn ids_tensor(rows: &[Vec<u32>]) -> Tensor {
    let width = rows.first().map_or(0, Vec::len);
    Tensor::from_vec(rows.concat(), (rows.len(), width), &Device::Cpu).expect("ids tensor")
}

#[derive(serde::Deserialize)]
struct GenerateCase {
    name: String,
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
    options: serde_json::Value,
    sequences: Vec<Vec<u32>>,
    /// Added to the EOS logit bias (`final_logits_bias[0, 2]`), as the fixture script did.
    #[serde(default)]
    eos_bias: Option<f32>,
}

/// tiny-bart with `bias` added to its EOS logit bias, so hypotheses end at many lengths.
fn eos_prone(dir: &Path, bias: f32) -> Bart {
    let cfg = models::bart::Config::from_json_file(&dir.join("config.json")).unwrap();
    let mut tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let key = "final_logits_bias";
    let mut values: Vec<f32> = tensors[key].flatten_all().unwrap().to_vec1().unwrap();
    values[2] += bias;
    let shape = tensors[key].shape().clone();
    tensors.insert(
        key.to_string(),
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap(),
    );
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    Bart::load(vb, &cfg).unwrap()
}

/// transformers' `generate` on the random tiny BART, greedy and beam search, token for token.
#[test]
fn tiny_bart_generate_matches_transformers() {
    let root = fixtures();
    let cases: Vec<GenerateCase> =
        serde_json::from_value(read_json(&root.join("tiny-bart-generate.json"))).unwrap();
    let dir = root.join("tiny-bart");
    let model = Bart::from_dir(&dir, DType::F32, &Device::Cpu).unwrap();
    let mut biased: Vec<(f32, Bart)> = Vec::new();
    // generate starts from the model's generation config, then applies its keyword arguments.
    let mut base =
        GenerationConfig::from_model_config(&read_json(&dir.join("config.json"))).unwrap();
    let generation_config = dir.join("generation_config.json");
    if generation_config.exists() {
        base.update(&read_json(&generation_config)).unwrap();
    }
    assert!(!cases.is_empty(), "no cases in tiny-bart-generate.json");
    let mut mismatches = Vec::new();
    for case in &cases {
        let mut config = base.clone();
        let unused = config.update(&case.options).unwrap();
        assert!(
            unused.is_empty(),
            "{}: options {unused:?} are not supported",
            case.name
        );
        let ids = ids_tensor(&case.input_ids);
        let mask = ids_tensor(&case.attention_mask);
        let model = match case.eos_bias {
            None => &model,
            Some(bias) => {
                if !biased.iter().any(|(b, _)| *b == bias) {
                    biased.push((bias, eos_prone(&dir, bias)));
                }
                &biased.iter().find(|(b, _)| *b == bias).unwrap().1
            }
        };
        for use_cache in [true, false] {
            let config = GenerationConfig {
                use_cache,
                ..config.clone()
            };
            let got = generate(model, &ids, &mask, &config).unwrap();
            if got != case.sequences {
                mismatches.push(format!(
                    "{} (use_cache {use_cache}):\n  transformers {:?}\n  lowrank      {got:?}",
                    case.name, case.sequences
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} runs differ from transformers:\n{}",
        mismatches.len(),
        2 * cases.len(),
        mismatches.join("\n")
    );
}
