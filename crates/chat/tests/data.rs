//! The intent data: the embedded catalog and its split, catalog validation, and the Banking77
//! (CSV) and CLINC150 (JSON) loaders on small files written here, good and malformed.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chat::Error;
use chat::data::{Catalog, IntentData, load_banking77, load_clinc150};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers

/// The message of a `Data` error (with file and location, as `Display` writes it); panics on any
/// other result.
fn data_error<T: std::fmt::Debug>(result: chat::Result<T>) -> String {
    match result {
        Err(e @ Error::Data { .. }) => e.to_string(),
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An intent as catalog JSON with `n` examples and no slots.
fn intent_json(name: &str, n: usize) -> String {
    let examples: Vec<String> = (0..n).map(|i| format!("\"{name} example {i}\"")).collect();
    format!(
        r#"{{"name": "{name}", "description": "d", "reply": "r", "examples": [{}]}}"#,
        examples.join(", ")
    )
}

/// A catalog file holding `intents` (JSON objects), with two out-of-scope texts.
fn catalog_file(dir: &Path, intents: &[String]) -> PathBuf {
    let text = format!(
        r#"{{"name": "t", "description": "d", "license": "l", "intents": [{}], "out_of_scope": ["a", "b"]}}"#,
        intents.join(", ")
    );
    write(dir, "catalog.json", &text)
}

/// A folder with Banking77's `train.csv` and `test.csv`.
fn banking_dir(train: &str, test: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "train.csv", train);
    write(dir.path(), "test.csv", test);
    dir
}

/// As [`banking_dir`], with `categories.json` listing `names`.
fn banking_dir_with(train: &str, test: &str, names: &[&str]) -> TempDir {
    let dir = banking_dir(train, test);
    write(
        dir.path(),
        "categories.json",
        &serde_json::to_string(names).unwrap(),
    );
    dir
}

const LABELS3: [&str; 3] = ["card_arrival", "transfer_fee", "wrong_charge"];

const GOOD_TEST_CSV: &str =
    "text,category\nwhere is my card,card_arrival\nhow much to send,transfer_fee\n";

/// A train.csv with `counts[i]` rows of category `names[i]`.
fn train_csv(names: &[&str], counts: &[usize]) -> String {
    let mut text = String::from("text,category\n");
    for (name, &n) in names.iter().zip(counts) {
        for i in 0..n {
            text.push_str(&format!("{name} text {i},{name}\n"));
        }
    }
    text
}

fn texts(examples: &[chat::data::Example]) -> Vec<&str> {
    examples.iter().map(|e| e.text.as_str()).collect()
}

fn label_counts(data: &IntentData, examples: &[chat::data::Example]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in examples {
        *counts.entry(data.labels[e.label].clone()).or_default() += 1;
    }
    counts
}

// ---------------------------------------------------------------------------------------------
// The embedded catalog

#[test]
fn embedded_catalog_loads_with_at_least_20_intents_of_40_examples() {
    let catalog = Catalog::embedded().unwrap();
    assert!(
        catalog.intents.len() >= 20,
        "{} intents",
        catalog.intents.len()
    );
    for intent in &catalog.intents {
        assert!(
            intent.examples.len() >= 40,
            "{}: {} examples",
            intent.name,
            intent.examples.len()
        );
    }
}

#[test]
fn embedded_split_is_disjoint_and_loses_nothing() {
    let catalog = Catalog::embedded().unwrap();
    let data = catalog.split();
    let total: usize = catalog.intents.iter().map(|i| i.examples.len()).sum();
    assert_eq!(data.train.len() + data.valid.len() + data.test.len(), total);
    let sets = [&data.train, &data.valid, &data.test].map(|split| {
        split
            .iter()
            .map(|e| e.text.as_str())
            .collect::<BTreeSet<_>>()
    });
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let shared: Vec<_> = sets[a].intersection(&sets[b]).collect();
        assert!(shared.is_empty(), "splits {a} and {b} share {shared:?}");
    }
    // Every example keeps its intent.
    for split in [&data.train, &data.valid, &data.test] {
        for e in split {
            assert!(catalog.intents[e.label].examples.contains(&e.text));
        }
    }
}

#[test]
fn embedded_split_has_every_intent_in_every_split() {
    let data = Catalog::embedded().unwrap().split();
    for (name, split) in [
        ("train", &data.train),
        ("valid", &data.valid),
        ("test", &data.test),
    ] {
        let present: BTreeSet<usize> = split.iter().map(|e| e.label).collect();
        assert_eq!(present.len(), data.labels.len(), "{name} lacks an intent");
    }
}

#[test]
fn embedded_out_of_scope_is_split_into_valid_and_test_without_loss() {
    let catalog = Catalog::embedded().unwrap();
    let data = catalog.split();
    assert!(!data.oos_valid.is_empty() && !data.oos_test.is_empty());
    let mut both: Vec<&String> = data.oos_valid.iter().chain(&data.oos_test).collect();
    let mut all: Vec<&String> = catalog.out_of_scope.iter().collect();
    both.sort();
    all.sort();
    assert_eq!(both, all);
    let valid: BTreeSet<_> = data.oos_valid.iter().collect();
    assert!(data.oos_test.iter().all(|t| !valid.contains(t)));
}

#[test]
fn embedded_reply_placeholders_name_slots_of_their_intent() {
    let catalog = Catalog::embedded().unwrap();
    for intent in &catalog.intents {
        let slots: BTreeSet<&str> = intent.slots.iter().map(|s| s.name.as_str()).collect();
        let mut rest = intent.reply.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').expect("an unclosed { in a reply") + open;
            let name = &rest[open + 1..close];
            assert!(
                slots.contains(name),
                "{}: placeholder {{{name}}} is no slot",
                intent.name
            );
            rest = &rest[close + 1..];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Catalog::from_file

#[test]
fn catalog_from_file_reads_a_valid_file() {
    let dir = TempDir::new().unwrap();
    let path = catalog_file(dir.path(), &[intent_json("a", 5), intent_json("b", 6)]);
    let catalog = Catalog::from_file(&path).unwrap();
    assert_eq!(catalog.intents.len(), 2);
    assert_eq!(catalog.intent("b").unwrap().examples.len(), 6);
    let data = catalog.split();
    assert_eq!(data.train.len() + data.valid.len() + data.test.len(), 11);
}

#[test]
fn catalog_malformed_json_names_the_file_line_and_column() {
    let dir = TempDir::new().unwrap();
    let path = write(
        dir.path(),
        "bad.json",
        "{\n  \"name\": \"t\",\n  \"intents\": [,]\n}\n",
    );
    let message = data_error(Catalog::from_file(&path));
    assert!(message.contains("bad.json"), "{message}");
    assert!(message.contains("line 3, column"), "{message}");
}

#[test]
fn catalog_rejects_duplicate_intent_names() {
    let dir = TempDir::new().unwrap();
    let path = catalog_file(dir.path(), &[intent_json("a", 5), intent_json("a", 5)]);
    let message = data_error(Catalog::from_file(&path));
    assert!(message.contains("intents[1] (a)"), "{message}");
    assert!(message.contains("used by intents[0] too"), "{message}");
}

#[test]
fn catalog_rejects_an_intent_with_fewer_than_5_examples() {
    let dir = TempDir::new().unwrap();
    let path = catalog_file(dir.path(), &[intent_json("a", 5), intent_json("few", 4)]);
    let message = data_error(Catalog::from_file(&path));
    assert!(message.contains("intents[1] (few)"), "{message}");
    assert!(message.contains("4 examples; need at least 5"), "{message}");
}

#[test]
fn catalog_rejects_an_empty_example() {
    let dir = TempDir::new().unwrap();
    let blank = r#"{"name": "blank", "description": "d", "reply": "r", "examples": ["a", "b", "  ", "c", "d"]}"#;
    let path = catalog_file(dir.path(), &[intent_json("a", 5), blank.into()]);
    let message = data_error(Catalog::from_file(&path));
    assert!(
        message.contains("intents[1] (blank).examples[2]"),
        "{message}"
    );
    assert!(message.contains("empty example"), "{message}");
}

#[test]
fn catalog_rejects_a_slot_the_reply_never_uses() {
    let dir = TempDir::new().unwrap();
    let unused = r#"{"name": "s", "description": "d", "reply": "no placeholder",
        "slots": [{"name": "order_date", "kind": "date", "prompt": "When?"}],
        "examples": ["a", "b", "c", "d", "e"]}"#;
    let path = catalog_file(dir.path(), &[intent_json("a", 5), unused.into()]);
    let message = data_error(Catalog::from_file(&path));
    assert!(message.contains("intents[1] (s)"), "{message}");
    assert!(
        message.contains("never uses slot {order_date}"),
        "{message}"
    );
}

#[test]
fn catalog_rejects_a_reply_placeholder_that_names_no_slot() {
    let dir = TempDir::new().unwrap();
    let stray = r#"{"name": "s", "description": "d", "reply": "ordered on {order_date}",
        "examples": ["a", "b", "c", "d", "e"]}"#;
    let path = catalog_file(dir.path(), &[intent_json("a", 5), stray.into()]);
    let message = data_error(Catalog::from_file(&path));
    assert!(message.contains("{order_date}"), "{message}");
}

#[test]
fn catalog_rejects_an_unknown_field() {
    let dir = TempDir::new().unwrap();
    let odd = r#"{"name": "odd", "description": "d", "reply": "r", "colour": "red",
        "examples": ["a", "b", "c", "d", "e"]}"#;
    let path = catalog_file(dir.path(), &[intent_json("a", 5), odd.into()]);
    let message = data_error(Catalog::from_file(&path));
    assert!(message.contains("unknown field `colour`"), "{message}");
    assert!(
        message.contains("catalog.json: line 1, column"),
        "{message}"
    );
}

#[test]
fn catalog_missing_file_is_an_io_error_naming_the_path() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nowhere.json");
    match Catalog::from_file(&path) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("nowhere.json"), "{e}"),
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Banking77 CSV

#[test]
fn banking77_parses_rfc4180_quoting_to_the_exact_texts() {
    let train = "text,category\n\
                 \"I was charged twice, \"\"why\"\"?\",wrong_charge\n\
                 plain text,card_arrival\n";
    let dir = banking_dir_with(train, GOOD_TEST_CSV, &LABELS3);
    let data = load_banking77(dir.path(), 0, 1).unwrap();
    assert_eq!(
        texts(&data.train),
        ["I was charged twice, \"why\"?", "plain text"]
    );
    assert_eq!(texts(&data.test), ["where is my card", "how much to send"]);
    assert_eq!(data.labels[data.train[0].label], "wrong_charge");
}

#[test]
fn banking77_strips_a_utf8_byte_order_mark() {
    let train = "\u{feff}text,category\nhello,card_arrival\n";
    let dir = banking_dir_with(train, "text,category\nhi,card_arrival\n", &["card_arrival"]);
    let data = load_banking77(dir.path(), 0, 1).unwrap();
    assert_eq!(data.labels, ["card_arrival"]);
}

#[test]
fn banking77_labels_are_sorted_unique_without_categories_json() {
    let train = "text,category\na,transfer_fee\nb,card_arrival\nc,transfer_fee\nd,atm\n";
    let dir = banking_dir(train, GOOD_TEST_CSV);
    let data = load_banking77(dir.path(), 0, 1).unwrap();
    assert_eq!(data.labels, ["atm", "card_arrival", "transfer_fee"]);
    assert_eq!(data.name, "banking77");
    assert!(data.oos_valid.is_empty() && data.oos_test.is_empty());
}

#[test]
fn banking77_labels_follow_categories_json_order() {
    let train = "text,category\na,transfer_fee\nb,card_arrival\n";
    let dir = banking_dir(train, GOOD_TEST_CSV);
    write(
        dir.path(),
        "categories.json",
        r#"["transfer_fee", "zzz_unused", "card_arrival"]"#,
    );
    let data = load_banking77(dir.path(), 0, 1).unwrap();
    assert_eq!(data.labels, ["transfer_fee", "zzz_unused", "card_arrival"]);
    assert_eq!(data.train[0].label, 0);
    assert_eq!(data.train[1].label, 2);
}

#[test]
fn banking77_valid_every_zero_holds_nothing_out() {
    let dir = banking_dir_with(
        &train_csv(&["a", "b"], &[4, 6]),
        "text,category\nx,a\n",
        &["a", "b"],
    );
    let data = load_banking77(dir.path(), 0, 7).unwrap();
    assert!(data.valid.is_empty());
    assert_eq!(data.train.len(), 10);
    // In file order.
    assert_eq!(data.train[0].text, "a text 0");
}

#[test]
fn banking77_valid_every_two_holds_out_half_of_every_label() {
    let dir = banking_dir_with(
        &train_csv(&["a", "b", "c"], &[4, 6, 3]),
        "text,category\nx,a\n",
        &["a", "b", "c"],
    );
    let data = load_banking77(dir.path(), 2, 7).unwrap();
    let train = label_counts(&data, &data.train);
    let valid = label_counts(&data, &data.valid);
    assert_eq!(
        valid,
        BTreeMap::from([("a".into(), 2), ("b".into(), 3), ("c".into(), 1)])
    );
    assert_eq!(
        train,
        BTreeMap::from([("a".into(), 2), ("b".into(), 3), ("c".into(), 2)])
    );
    let train_texts: BTreeSet<_> = texts(&data.train).into_iter().collect();
    assert!(texts(&data.valid).iter().all(|t| !train_texts.contains(t)));
}

#[test]
fn banking77_hold_out_is_deterministic_for_a_seed() {
    let dir = banking_dir_with(
        &train_csv(&["a", "b"], &[20, 20]),
        "text,category\nx,a\n",
        &["a", "b"],
    );
    let first = load_banking77(dir.path(), 2, 42).unwrap();
    let again = load_banking77(dir.path(), 2, 42).unwrap();
    let other = load_banking77(dir.path(), 2, 43).unwrap();
    assert_eq!(first.train, again.train);
    assert_eq!(first.valid, again.valid);
    let valid = |d: &IntentData| {
        texts(&d.valid)
            .into_iter()
            .map(String::from)
            .collect::<BTreeSet<_>>()
    };
    assert_ne!(
        valid(&first),
        valid(&other),
        "seeds 42 and 43 held out the same texts"
    );
}

#[test]
fn banking77_wrong_header_says_what_is_expected() {
    let dir = banking_dir("sentence,label\nhello,a\n", GOOD_TEST_CSV);
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(message.contains("train.csv: line 1"), "{message}");
    assert!(message.contains("expected \"text,category\""), "{message}");
}

#[test]
fn banking77_row_with_three_fields_names_its_line() {
    let dir = banking_dir("text,category\nhello,a\nhi,there,a\n", GOOD_TEST_CSV);
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(message.contains("train.csv: line 3:"), "{message}");
    assert!(message.contains("3 fields; expected 2"), "{message}");
}

#[test]
fn banking77_line_numbers_count_lines_inside_quoted_texts() {
    // The quoted text spans lines 2-3, so the bad row is line 4.
    let dir = banking_dir(
        "text,category\n\"two\nlines\",a\nhi,there,a\n",
        GOOD_TEST_CSV,
    );
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(message.contains("train.csv: line 4:"), "{message}");
}

#[test]
fn banking77_line_numbers_count_blank_lines() {
    let dir = banking_dir("text,category\nhello,a\n\nhi,there,a\n", GOOD_TEST_CSV);
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(message.contains("train.csv: line 4:"), "{message}");
}

#[test]
fn banking77_line_numbers_are_right_with_crlf_line_ends() {
    let dir = banking_dir("text,category\r\nhello,a\r\nhi,there,a\r\n", GOOD_TEST_CSV);
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(message.contains("train.csv: line 3:"), "{message}");
}

#[test]
fn banking77_empty_text_is_rejected_with_its_line() {
    let dir = banking_dir("text,category\nhello,a\nhi,a\n  ,a\n", GOOD_TEST_CSV);
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(
        message.contains("train.csv: line 4: the text is empty"),
        "{message}"
    );
}

#[test]
fn banking77_empty_category_is_rejected_with_its_line() {
    let dir = banking_dir("text,category\nhello,\n", GOOD_TEST_CSV);
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(
        message.contains("train.csv: line 2: the category is empty"),
        "{message}"
    );
}

#[test]
fn banking77_unknown_category_in_test_csv_names_file_and_line() {
    let test = "text,category\nwhere is my card,card_arrival\nwhat is this,mystery\n";
    let dir = banking_dir_with(
        "text,category\na,card_arrival\nb,transfer_fee\n",
        test,
        &LABELS3,
    );
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(message.contains("test.csv: line 3"), "{message}");
    assert!(
        message.contains("\"mystery\" is not a known intent"),
        "{message}"
    );
}

#[test]
fn banking77_header_only_is_rejected() {
    let dir = banking_dir("text,category\n", GOOD_TEST_CSV);
    let message = data_error(load_banking77(dir.path(), 0, 1));
    assert!(message.contains("train.csv"), "{message}");
    assert!(message.contains("no rows after the header"), "{message}");
}

#[test]
fn banking77_missing_file_is_an_io_error_naming_the_path() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "train.csv", "text,category\na,b\n");
    match load_banking77(dir.path(), 0, 1) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("test.csv"), "{e}"),
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// CLINC150 JSON

const CLINC: &str = r#"{
  "train": [["how is the weather", "weather"], ["what is my balance", "balance"],
            ["tell me a joke please", "oos"], ["weather tomorrow", "weather"]],
  "val": [["rain today?", "weather"], ["sing me a song", "oos"]],
  "test": [["  money left  ", "balance"], ["who won the game", "oos"]],
  "oos_train": [["ignored", "oos"]],
  "oos_val": [["book a flight", "oos"]],
  "oos_test": [["order a pizza", "oos"]]
}"#;

fn clinc_file(text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "data_full.json", text);
    (dir, path)
}

#[test]
fn clinc150_labels_are_sorted_and_exclude_oos() {
    let (_dir, path) = clinc_file(CLINC);
    let data = load_clinc150(&path).unwrap();
    assert_eq!(data.name, "clinc150");
    assert_eq!(data.labels, ["balance", "weather"]);
    assert_eq!(
        texts(&data.train),
        [
            "how is the weather",
            "what is my balance",
            "weather tomorrow"
        ]
    );
    assert_eq!(data.train[0].label, 1);
    assert_eq!(texts(&data.valid), ["rain today?"]);
    assert_eq!(texts(&data.test), ["money left"]);
    assert_eq!(data.test[0].label, 0);
}

#[test]
fn clinc150_moves_oos_items_and_appends_oos_lists() {
    let (_dir, path) = clinc_file(CLINC);
    let data = load_clinc150(&path).unwrap();
    assert_eq!(data.oos_valid, ["sing me a song", "book a flight"]);
    assert_eq!(data.oos_test, ["who won the game", "order a pizza"]);
}

#[test]
fn clinc150_not_json_names_line_and_column() {
    let (_dir, path) = clinc_file("{\n  \"train\": [\n    oops\n}");
    let message = data_error(load_clinc150(&path));
    assert!(
        message.contains("data_full.json: line 3, column"),
        "{message}"
    );
    assert!(message.contains("not valid JSON"), "{message}");
}

#[test]
fn clinc150_missing_test_list_is_named() {
    let (_dir, path) = clinc_file(r#"{"train": [["a", "x"], ["b", "y"]], "val": []}"#);
    let message = data_error(load_clinc150(&path));
    assert!(message.contains("missing list \"test\""), "{message}");
}

#[test]
fn clinc150_item_that_is_not_two_strings_is_named_by_index() {
    for bad in [
        r#"["only text"]"#,
        r#"["a", "b", "c"]"#,
        r#"["text", 3]"#,
        r#""text""#,
        r#"["", "x"]"#,
    ] {
        let text = format!(r#"{{"train": [["a", "x"], {bad}], "val": [], "test": []}}"#);
        let (_dir, path) = clinc_file(&text);
        let message = data_error(load_clinc150(&path));
        assert!(message.contains("train[1]"), "{bad}: {message}");
        assert!(
            message.contains("expected [text, intent]"),
            "{bad}: {message}"
        );
    }
}

#[test]
fn clinc150_test_intent_not_in_train_is_rejected() {
    let text =
        r#"{"train": [["a", "x"], ["b", "y"]], "val": [], "test": [["c", "x"], ["d", "z"]]}"#;
    let (_dir, path) = clinc_file(text);
    let message = data_error(load_clinc150(&path));
    assert!(message.contains("test[1]"), "{message}");
    assert!(
        message.contains("intent \"z\" never occurs in \"train\""),
        "{message}"
    );
}

#[test]
fn clinc150_fewer_than_two_intents_is_rejected() {
    let (_dir, path) = clinc_file(r#"{"train": [["a", "x"]], "val": [], "test": []}"#);
    let message = data_error(load_clinc150(&path));
    assert!(message.contains("fewer than two intents"), "{message}");
}
