//! Perplexity: derived facts (a model with equal logits has perplexity = vocabulary size), a hand
//! computation on a toy bigram model, batch-size and padding invariance on the committed tiny BART,
//! bad inputs, and parity with transformers (tests/fixtures/models/tiny-bart-perplexity.json).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use eval::Error;
use eval::perplexity::{
    Perplexity, causal_labels, causal_perplexity, seq2seq_labels, seq2seq_perplexity,
};
use models::bart::Bart;
use models::generation::{Seq2Seq, SpecialTokens};
use models::tokenizer::Tokenizer;

const FIXTURE_SCRIPT: &str = "tests/fixtures/make_perplexity_fixtures.py";

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

fn tiny_bart() -> (Bart, Tokenizer) {
    let dir = models_dir().join("tiny-bart");
    (
        Bart::from_dir(&dir, DType::F32, &Device::Cpu).unwrap(),
        Tokenizer::from_dir(&dir).unwrap(),
    )
}

/// Dialogue–summary pairs of different lengths, so batches pad.
const PAIRS: [(&str, &str); 5] = [
    (
        "Anna: My card has not arrived yet.\nTom: I will send a new one.",
        "Anna's card has not arrived; Tom sends a new one.",
    ),
    ("Ben: PIN?", "Ben asks about his PIN."),
    (
        "Chloe: The transfer was declined again today, why?\nAgent: The IBAN was wrong, please check it and try again.",
        "Chloe's transfer was declined: wrong IBAN.",
    ),
    (
        "Dev: refund please",
        "Dev wants a refund for a payment that was charged twice.",
    ),
    ("Eva: close my account", "Eva closes her account."),
];

/// A words-only tokenizer with no special tokens: ids are easy to follow by hand.
fn word_tokenizer() -> Tokenizer {
    let json = r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "unk_token": "[UNK]",
        "vocab": {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4}}}"#;
    Tokenizer::from_tokenizers(json.parse().unwrap()).unwrap()
}

fn assert_relative(actual: f64, expected: f64, tolerance: f64, what: &str) {
    let error = (actual - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        error <= tolerance,
        "{what}: {actual} vs expected {expected} (relative error {error:.2e} > {tolerance:.0e})"
    );
}

/// Totals and every example's NLL agree to `tolerance`, token counts exactly.
fn check_same(actual: &Perplexity, expected: &Perplexity, tolerance: f64, what: &str) {
    assert_eq!(actual.tokens, expected.tokens, "{what}: token count");
    assert_eq!(
        actual.example_tokens, expected.example_tokens,
        "{what}: per-example tokens"
    );
    assert_relative(
        actual.total_nll,
        expected.total_nll,
        tolerance,
        &format!("{what}: total NLL"),
    );
    for (i, (a, e)) in actual
        .example_nll
        .iter()
        .zip(&expected.example_nll)
        .enumerate()
    {
        assert_relative(*a, *e, tolerance, &format!("{what}: example {i} NLL"));
    }
}

// ---------------------------------------------------------------- derived facts

/// An encoder–decoder with no opinion: equal logits for every token whatever the input.
struct Uniform {
    vocab: usize,
}

impl Seq2Seq for Uniform {
    type Cache = ();

    fn encode(&self, input_ids: &Tensor, _attention_mask: &Tensor) -> models::Result<Tensor> {
        let (b_sz, seq_len) = input_ids.dims2()?;
        Ok(Tensor::zeros(
            (b_sz, seq_len, 1),
            DType::F32,
            input_ids.device(),
        )?)
    }

    fn new_cache(&self) {}

    fn decode(
        &self,
        decoder_input_ids: &Tensor,
        _encoder_hidden: &Tensor,
        _encoder_mask: &Tensor,
        _cache: &mut (),
    ) -> models::Result<Tensor> {
        let (b_sz, t) = decoder_input_ids.dims2()?;
        Ok(Tensor::zeros(
            (b_sz, t, self.vocab),
            DType::F32,
            decoder_input_ids.device(),
        )?)
    }

    fn reorder_cache(&self, _cache: &mut (), _indices: &Tensor) -> models::Result<()> {
        Ok(())
    }

    fn special_tokens(&self) -> SpecialTokens {
        SpecialTokens {
            bos_token_id: Some(0),
            eos_token_id: 2,
            pad_token_id: 1,
            decoder_start_token_id: 2,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
        }
    }
}

#[test]
fn a_model_with_equal_logits_has_the_vocabulary_size_as_perplexity() {
    let (_, tokenizer) = tiny_bart();
    let vocab = tokenizer.vocab_size();
    let model = Uniform { vocab };
    let result = seq2seq_perplexity(&model, &tokenizer, &PAIRS, 2, &Device::Cpu).unwrap();
    assert_relative(
        result.perplexity(),
        vocab as f64,
        1e-5,
        "seq2seq perplexity",
    );
    // Every target token is scored once, <s> and </s> included, padding never.
    let expected_tokens: usize = PAIRS
        .iter()
        .map(|(_, target)| tokenizer.encode(target, true).unwrap().len())
        .sum();
    assert_eq!(result.tokens, expected_tokens);

    let uniform = |ids: &Tensor, _mask: &Tensor| -> models::Result<Tensor> {
        let (b_sz, seq_len) = ids.dims2()?;
        Ok(Tensor::zeros((b_sz, seq_len, 5), DType::F32, ids.device())?)
    };
    let result = causal_perplexity(uniform, &word_tokenizer(), &["a b c", "c a"], 1).unwrap();
    assert_eq!(result.example_tokens, [2, 1]);
    assert_relative(result.perplexity(), 5.0, 1e-6, "causal perplexity");
}

// ---------------------------------------------------------------- causal: labels and a hand computation

#[test]
fn causal_labels_are_the_next_token_and_skip_padding_and_the_last_position() {
    let ids = Tensor::new(&[[2u32, 3, 4, 2], [4, 3, 0, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1], [1, 1, 0, 0]], &Device::Cpu).unwrap();
    let labels = causal_labels(&ids, &mask)
        .unwrap()
        .to_vec2::<i64>()
        .unwrap();
    assert_eq!(labels, [[3, 4, 2, -100], [3, -100, -100, -100]]);
    let labels = seq2seq_labels(&ids, &mask)
        .unwrap()
        .to_vec2::<i64>()
        .unwrap();
    assert_eq!(labels, [[2, 3, 4, 2], [4, 3, -100, -100]]);
}

/// p(next | previous) of the toy bigram model: rows are the previous token, columns the next.
/// Ids 0 ([PAD]) and 1 ([UNK]) are never predicted; their rows are uniform.
const BIGRAM: [[f64; 5]; 5] = [
    [0.2, 0.2, 0.2, 0.2, 0.2],
    [0.2, 0.2, 0.2, 0.2, 0.2],
    [0.05, 0.05, 0.1, 0.5, 0.3],   // after "a": b with 1/2, c with 3/10
    [0.05, 0.05, 0.45, 0.05, 0.4], // after "b"
    [0.1, 0.1, 0.6, 0.1, 0.1],     // after "c"
];

/// Logits = ln p, so softmax gives back BIGRAM's rows exactly (each sums to 1).
fn bigram_logits(ids: &Tensor, _mask: &Tensor) -> models::Result<Tensor> {
    let rows: Vec<Vec<u32>> = ids.to_vec2()?;
    let (b_sz, seq_len) = ids.dims2()?;
    let logits: Vec<f32> = rows
        .iter()
        .flatten()
        .flat_map(|&id| BIGRAM[id as usize].map(|p| p.ln() as f32))
        .collect();
    Ok(Tensor::from_vec(logits, (b_sz, seq_len, 5), ids.device())?)
}

#[test]
fn causal_perplexity_matches_a_hand_computation_on_a_bigram_model() {
    let texts = ["a b c a", "c a", "b b a c"];
    // a→b, b→c, c→a | c→a | b→b, b→a, a→c
    let p = |previous: usize, next: usize| BIGRAM[previous][next];
    let (a, b, c) = (2, 3, 4);
    let transitions = [
        vec![p(a, b), p(b, c), p(c, a)],
        vec![p(c, a)],
        vec![p(b, b), p(b, a), p(a, c)],
    ];
    let example_nll: Vec<f64> = transitions
        .iter()
        .map(|text| text.iter().map(|q| -q.ln()).sum())
        .collect();
    let total: f64 = example_nll.iter().sum();
    let expected_perplexity = (total / 7.0).exp();

    for batch_size in [1, 2, 3, 8] {
        let result =
            causal_perplexity(bigram_logits, &word_tokenizer(), &texts, batch_size).unwrap();
        let what = format!("batch size {batch_size}");
        assert_eq!(result.tokens, 7, "{what}");
        assert_eq!(result.example_tokens, [3, 1, 3], "{what}");
        for (i, (actual, expected)) in result.example_nll.iter().zip(&example_nll).enumerate() {
            assert_relative(*actual, *expected, 1e-6, &format!("{what}: text {i}"));
        }
        assert_relative(result.perplexity(), expected_perplexity, 1e-6, &what);
        assert_relative(result.mean_nll(), total / 7.0, 1e-6, &what);
    }
}

// ---------------------------------------------------------------- seq2seq on the committed tiny BART

#[test]
fn batch_size_changes_neither_the_total_nor_any_pair() {
    let (model, tokenizer) = tiny_bart();
    let one_by_one = seq2seq_perplexity(&model, &tokenizer, &PAIRS, 1, &Device::Cpu).unwrap();
    assert_eq!(one_by_one.example_nll.len(), PAIRS.len());
    assert!(one_by_one.total_nll.is_finite() && one_by_one.total_nll > 0.0);
    for batch_size in [2, 3, 5, 64] {
        let batched =
            seq2seq_perplexity(&model, &tokenizer, &PAIRS, batch_size, &Device::Cpu).unwrap();
        check_same(
            &batched,
            &one_by_one,
            1e-5,
            &format!("batch size {batch_size}"),
        );
        assert_relative(
            batched.perplexity(),
            one_by_one.perplexity(),
            1e-5,
            &format!("batch size {batch_size}: perplexity"),
        );
    }
}

#[test]
fn one_pair_matches_the_models_own_cross_entropy() {
    // Built by hand from the model's forward and the crate's loss, without padding or batching.
    let (model, tokenizer) = tiny_bart();
    let (source, target) = PAIRS[0];
    let source_ids = tokenizer.encode(source, true).unwrap();
    let target_ids = tokenizer.encode(target, true).unwrap();
    let input_ids = Tensor::new(source_ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mask = input_ids.ones_like().unwrap();
    let labels = Tensor::new(target_ids.as_slice(), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    // Decoder input: </s> (the decoder start), then the target without its last token.
    let mut decoder_ids = vec![model.config().decoder_start_token_id];
    decoder_ids.extend(&target_ids[..target_ids.len() - 1]);
    let decoder_ids = Tensor::new(decoder_ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model.forward(&input_ids, &mask, &decoder_ids).unwrap();
    let loss = models::loss::cross_entropy(&logits, &labels)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();

    let result = seq2seq_perplexity(&model, &tokenizer, &PAIRS[..1], 1, &Device::Cpu).unwrap();
    assert_eq!(result.tokens, target_ids.len());
    assert_relative(result.mean_nll(), f64::from(loss), 1e-6, "mean NLL");
    assert_relative(
        result.perplexity(),
        f64::from(loss).exp(),
        1e-6,
        "perplexity",
    );
}

#[test]
fn bad_inputs_are_errors_naming_what_to_change() {
    let (model, tokenizer) = tiny_bart();
    let error = seq2seq_perplexity(&model, &tokenizer, &PAIRS, 0, &Device::Cpu).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                name: "batch_size",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("batch_size = 0"), "{error}");

    let error = seq2seq_perplexity(&model, &tokenizer, &[], 4, &Device::Cpu).unwrap_err();
    assert!(matches!(error, Error::Empty { .. }), "{error}");

    // Texts with no tokens (no special tokens here): 0/0 is refused, not NaN.
    let error = causal_perplexity(bigram_logits, &word_tokenizer(), &["", "a"], 2).unwrap_err();
    assert!(error.to_string().contains("no token to score"), "{error}");

    let wrong_shape = |ids: &Tensor, _mask: &Tensor| -> models::Result<Tensor> {
        let (b_sz, _) = ids.dims2()?;
        Ok(Tensor::zeros((b_sz, 1, 5), DType::F32, ids.device())?)
    };
    let error = causal_perplexity(wrong_shape, &word_tokenizer(), &["a b c"], 2).unwrap_err();
    assert!(error.to_string().contains("need (1, 3, vocab)"), "{error}");

    let ids = Tensor::new(&[[2u32, 3]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1]], &Device::Cpu).unwrap();
    let error = causal_labels(&ids, &mask).unwrap_err();
    assert!(error.to_string().contains("attention_mask"), "{error}");
}

// ---------------------------------------------------------------- parity with transformers

#[derive(serde::Deserialize)]
struct FixturePair {
    source: String,
    target: String,
    source_ids: Vec<u32>,
    target_ids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    pairs: Vec<FixturePair>,
    per_pair_nll: Vec<f64>,
    per_pair_tokens: Vec<usize>,
    total_nll: f64,
    tokens: usize,
    perplexity: f64,
}

#[test]
fn seq2seq_perplexity_matches_transformers() {
    let path = models_dir().join("tiny-bart-perplexity.json");
    assert!(
        path.exists(),
        "parity fixture {} is missing: run `python {FIXTURE_SCRIPT} --out <dir>` from the \
         repository root where torch and transformers are installed, then copy \
         <dir>/tiny-bart-perplexity.json to tests/fixtures/models/",
        path.display()
    );
    let fixture: Fixture = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (model, tokenizer) = tiny_bart();
    // Same tokens first: a tokenizer difference would otherwise read as a model difference.
    for (i, pair) in fixture.pairs.iter().enumerate() {
        assert_eq!(
            tokenizer.encode(&pair.source, true).unwrap(),
            pair.source_ids,
            "pair {i} source"
        );
        assert_eq!(
            tokenizer.encode(&pair.target, true).unwrap(),
            pair.target_ids,
            "pair {i} target"
        );
    }
    let pairs: Vec<(&str, &str)> = fixture
        .pairs
        .iter()
        .map(|pair| (pair.source.as_str(), pair.target.as_str()))
        .collect();
    let expected = Perplexity {
        total_nll: fixture.total_nll,
        tokens: fixture.tokens,
        example_nll: fixture.per_pair_nll.clone(),
        example_tokens: fixture.per_pair_tokens.clone(),
    };
    for batch_size in [1, 4, pairs.len()] {
        let actual =
            seq2seq_perplexity(&model, &tokenizer, &pairs, batch_size, &Device::Cpu).unwrap();
        let what = format!("transformers parity, batch size {batch_size}");
        check_same(&actual, &expected, 1e-4, &what);
        assert_relative(
            actual.perplexity(),
            fixture.perplexity,
            1e-4,
            &format!("{what}: perplexity"),
        );
    }
}

#[derive(serde::Deserialize)]
struct CausalFixture {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    first_text_logits: Vec<Vec<f32>>,
    per_text_nll: Vec<f64>,
    per_text_tokens: Vec<usize>,
    total_nll: f64,
    tokens: usize,
    perplexity: f64,
}

/// A tiny random BartForCausalLM that transformers made and saved (tiny-bart-causal): the same
/// logits, and the same NLL per text as transformers' causal-LM loss, alone and in padded batches.
#[test]
fn causal_perplexity_matches_transformers() {
    let path = models_dir().join("tiny-bart-causal-perplexity.json");
    assert!(
        path.exists(),
        "parity fixture {} is missing: run `python {FIXTURE_SCRIPT} --out <dir>` where torch \
         and transformers are installed and copy the causal files it names",
        path.display()
    );
    let fixture: CausalFixture =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let model = models::bart::BartForCausalLm::from_dir(
        &models_dir().join("tiny-bart-causal"),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let tokenizer = Tokenizer::from_dir(models_dir().join("tiny-bart")).unwrap();
    for (text, ids) in fixture.texts.iter().zip(&fixture.ids) {
        assert_eq!(&tokenizer.encode(text, true).unwrap(), ids, "{text:?}");
    }

    let first = Tensor::new(fixture.ids[0].as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model
        .forward(&first, &first.ones_like().unwrap())
        .unwrap()
        .squeeze(0)
        .unwrap();
    let expected = Tensor::new(fixture.first_text_logits.clone(), &Device::Cpu).unwrap();
    let diff = (logits.narrow(0, 0, expected.dim(0).unwrap()).unwrap() - &expected)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-4, "logits differ from transformers by {diff}");

    let texts: Vec<&str> = fixture.texts.iter().map(String::as_str).collect();
    let expected = Perplexity {
        total_nll: fixture.total_nll,
        tokens: fixture.tokens,
        example_nll: fixture.per_text_nll.clone(),
        example_tokens: fixture.per_text_tokens.clone(),
    };
    for batch_size in [1, 5, texts.len()] {
        let actual = causal_perplexity(
            |ids, mask| model.forward(ids, mask),
            &tokenizer,
            &texts,
            batch_size,
        )
        .unwrap();
        let what = format!("causal transformers parity, batch size {batch_size}");
        check_same(&actual, &expected, 1e-4, &what);
        assert_relative(actual.perplexity(), fixture.perplexity, 1e-4, &what);
    }
}
