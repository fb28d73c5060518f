//! The tokenizer wrapper on two tokenizers built in code, BERT's WordPiece and BART's byte-level
//! BPE: batch padding with the tokenizer's own pad id, truncation, decoding, and errors that name
//! the file.

// Tests may unwrap (clippy.toml); allow-unwrap-in-tests does not reach the helpers.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use models::Error;
use models::tokenizer::{Encoded, Tokenizer};
use serde_json::{Value, json};

/// A temporary folder removed on drop, unique per test (tests of one binary share a process).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("lowrank-tokenizer-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, json: &Value) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, serde_json::to_string(json).unwrap()).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn special(id: usize, content: &str) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": false, "special": true})
}

/// A bert-base-uncased-style tokenizer.json: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then `words`.
fn wordpiece_json(words: &[&str]) -> Value {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let vocab: serde_json::Map<String, Value> = specials
        .iter()
        .chain(words)
        .enumerate()
        .map(|(id, token)| (token.to_string(), json!(id)))
        .collect();
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(id, t)| special(id, t))
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    })
}

const WORDS: [&str; 8] = ["hello", "world", "!", "the", "cat", "sat", "on", "mat"];

/// A BART-style byte-level BPE: <s>=0 <pad>=1 </s>=2 <unk>=3, `Ġ` marking a leading space.
fn byte_level_bpe_json() -> Value {
    let tokens = [
        "<s>", "<pad>", "</s>", "<unk>", "h", "i", "Ġ", "t", "e", "r", "hi", "th", "the", "Ġthe",
        "re",
    ];
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.to_string(), json!(id)))
        .collect();
    let added: Vec<Value> = tokens[..4]
        .iter()
        .enumerate()
        .map(|(id, t)| special(id, t))
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                          "use_regex": true},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                           "trim_offsets": true, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": ["h i", "t h", "th e", "Ġ the", "r e"]}
    })
}

fn load(dir: &TempDir, json: &Value) -> Tokenizer {
    Tokenizer::from_file(dir.write("tokenizer.json", json)).unwrap()
}

fn rows(t: &candle_core::Tensor) -> Vec<Vec<u32>> {
    t.to_vec2::<u32>().unwrap()
}

/// Every check of a batch goes through here: ids, mask and type ids row by row.
fn check(encoded: &Encoded, ids: &[&[u32]], mask: &[&[u32]]) {
    assert_eq!(rows(&encoded.input_ids), ids, "input_ids");
    assert_eq!(rows(&encoded.attention_mask), mask, "attention_mask");
    let zeros: Vec<Vec<u32>> = ids.iter().map(|row| vec![0; row.len()]).collect();
    assert_eq!(rows(&encoded.token_type_ids), zeros, "token_type_ids");
}

#[test]
fn wordpiece_batch_is_padded_to_the_longest_with_the_pad_id() {
    let dir = TempDir::new("wordpiece-batch");
    let tokenizer = load(&dir, &wordpiece_json(&WORDS));
    assert_eq!(tokenizer.pad_token(), Some(("[PAD]", 0)));
    let encoded = tokenizer
        .encode_batch(&["Hello world!", "the cat sat on the mat"], true)
        .unwrap();
    assert_eq!(encoded.dims().unwrap(), (2, 8));
    check(
        &encoded,
        &[&[2, 5, 6, 7, 3, 0, 0, 0], &[2, 8, 9, 10, 11, 8, 12, 3]],
        &[&[1, 1, 1, 1, 1, 0, 0, 0], &[1; 8]],
    );
    let plain = tokenizer.encode_batch(&["hello world"], false).unwrap();
    check(&plain, &[&[5, 6]], &[&[1, 1]]);
}

#[test]
fn settings_stored_in_the_file_are_replaced() {
    // all-MiniLM-L6-v2's tokenizer.json says truncate to 128 and pad to 128; transformers ignores
    // both when called, and so does the wrapper.
    let dir = TempDir::new("file-settings");
    let mut json = wordpiece_json(&WORDS);
    json["truncation"] =
        json!({"max_length": 3, "strategy": "LongestFirst", "stride": 0, "direction": "Right"});
    json["padding"] = json!({"strategy": {"Fixed": 12}, "direction": "Left",
                             "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0,
                             "pad_token": "[PAD]"});
    let tokenizer = load(&dir, &json);
    let encoded = tokenizer
        .encode_batch(&["hello", "hello world"], true)
        .unwrap();
    check(
        &encoded,
        &[&[2, 5, 3, 0], &[2, 5, 6, 3]],
        &[&[1, 1, 1, 0], &[1, 1, 1, 1]],
    );
}

#[test]
fn truncation_keeps_special_tokens_within_max_length() {
    let dir = TempDir::new("truncation");
    let tokenizer = load(&dir, &wordpiece_json(&WORDS))
        .with_max_length(Some(4))
        .unwrap();
    assert_eq!(tokenizer.max_length(), Some(4));
    let encoded = tokenizer
        .encode_batch(&["the cat sat on the mat", "hi"], true)
        .unwrap();
    check(
        &encoded,
        &[&[2, 8, 9, 3], &[2, 1, 3, 0]],
        &[&[1, 1, 1, 1], &[1, 1, 1, 0]],
    );
    assert_eq!(tokenizer.encode("the cat sat", true).unwrap(), [2, 8, 9, 3]);

    let untruncated = tokenizer.with_max_length(None).unwrap();
    assert_eq!(untruncated.encode("the cat sat", true).unwrap().len(), 5);
}

#[test]
fn max_length_must_leave_room_for_text() {
    let dir = TempDir::new("max-length-too-small");
    let tokenizer = load(&dir, &wordpiece_json(&WORDS));
    let error = tokenizer.with_max_length(Some(2)).unwrap_err();
    assert!(matches!(error, Error::Tokenizer { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("max length 2") && message.contains("tokenizer.json"),
        "{message}"
    );
}

#[test]
fn decode_drops_special_tokens_and_padding_on_request() {
    let dir = TempDir::new("decode");
    let tokenizer = load(&dir, &wordpiece_json(&WORDS));
    let encoded = tokenizer
        .encode_batch(&["Hello world!", "the cat sat on the mat"], true)
        .unwrap();
    assert_eq!(
        tokenizer.decode_tensor(&encoded.input_ids, true).unwrap(),
        ["hello world!", "the cat sat on the mat"]
    );
    assert_eq!(
        tokenizer.decode(&[2, 5, 6, 3, 0], false).unwrap(),
        "[CLS] hello world [SEP] [PAD]"
    );
    let batch: [&[u32]; 2] = [&[5, 6], &[8, 9]];
    assert_eq!(
        tokenizer.decode_batch(&batch, true).unwrap(),
        ["hello world", "the cat"]
    );
}

#[test]
fn byte_level_bpe_pads_with_its_own_pad_token() {
    let dir = TempDir::new("bpe");
    let tokenizer = load(&dir, &byte_level_bpe_json());
    assert_eq!(tokenizer.pad_token(), Some(("<pad>", 1)));
    let encoded = tokenizer.encode_batch(&["hi there", "hi"], true).unwrap();
    check(
        &encoded,
        &[&[0, 10, 13, 14, 2], &[0, 10, 2, 1, 1]],
        &[&[1, 1, 1, 1, 1], &[1, 1, 1, 0, 0]],
    );
    assert_eq!(
        tokenizer.decode_tensor(&encoded.input_ids, true).unwrap(),
        ["hi there", "hi"]
    );
}

#[test]
fn a_tokenizer_without_pad_token_needs_one_for_ragged_batches() {
    let dir = TempDir::new("no-pad");
    let mut json = byte_level_bpe_json();
    // Rename <pad> so no conventional pad token is left.
    let vocab = json["model"]["vocab"].as_object_mut().unwrap();
    vocab.remove("<pad>");
    vocab.insert("<blank>".into(), json!(1));
    json["added_tokens"][1]["content"] = json!("<blank>");
    let tokenizer = load(&dir, &json);
    assert_eq!(tokenizer.pad_token(), None);
    // Equal lengths need no padding.
    tokenizer.encode_batch(&["hi", "hi"], true).unwrap();
    let error = tokenizer
        .encode_batch(&["hi there", "hi"], true)
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("no pad token") && message.contains("with_pad_token"),
        "{message}"
    );

    let tokenizer = tokenizer.with_pad_token("<blank>").unwrap();
    let encoded = tokenizer.encode_batch(&["hi there", "hi"], true).unwrap();
    assert_eq!(rows(&encoded.input_ids)[1], [0, 10, 2, 1, 1]);
    let error = tokenizer.with_pad_token("<nothing>").unwrap_err();
    assert!(error.to_string().contains("<nothing>"), "{error}");
}

#[test]
fn an_empty_batch_gives_empty_tensors() {
    let dir = TempDir::new("empty");
    let tokenizer = load(&dir, &wordpiece_json(&WORDS));
    let encoded = tokenizer.encode_batch(&[], true).unwrap();
    assert_eq!(encoded.dims().unwrap(), (0, 0));
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let path = Path::new("/nonexistent/lowrank/tokenizer.json");
    let error = Tokenizer::from_file(path).unwrap_err();
    assert!(
        matches!(&error, Error::Io { path: p, .. } if p == path),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("/nonexistent/lowrank/tokenizer.json")
    );

    let error = Tokenizer::from_dir("/nonexistent/lowrank").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("/nonexistent/lowrank/tokenizer.json"),
        "{error}"
    );
}

#[test]
fn a_malformed_file_is_a_tokenizer_error_naming_it() {
    let dir = TempDir::new("malformed");
    let path = dir.write("tokenizer.json", &json!({"version": "1.0", "model": 3}));
    let error = Tokenizer::from_file(&path).unwrap_err();
    assert!(matches!(error, Error::Tokenizer { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}
