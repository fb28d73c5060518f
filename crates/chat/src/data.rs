//! Intent data: the embedded customer-service set (written for this project, with a reply per
//! intent), Banking77's CSV files and CLINC150's JSON, all split into train / validation / test
//! plus out-of-scope texts for calibrating and testing the "I can't help with that" threshold.

use std::collections::BTreeMap;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::error::{Error, Result, io_error};

/// The embedded set's file (compiled into the binary, so a fresh clone runs offline).
const EMBEDDED: &str = include_str!("../data/intents.json");

/// One labelled utterance; `label` indexes [`IntentData::labels`].
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub label: usize,
}

/// A labelled intent set, split. `oos_*` are out-of-scope texts (no label): the validation ones
/// calibrate the confidence threshold, the test ones measure it; Banking77 has none.
#[derive(Debug, Clone)]
pub struct IntentData {
    pub name: String,
    pub labels: Vec<String>,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    pub test: Vec<Example>,
    pub oos_valid: Vec<String>,
    pub oos_test: Vec<String>,
}

impl IntentData {
    /// How many of each label the training split holds, in label order.
    pub fn train_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        for example in &self.train {
            counts[example.label] += 1;
        }
        counts
    }

    /// A one-line description: sizes of every split.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} intents, {} train / {} validation / {} test, {} + {} out-of-scope",
            self.name,
            self.labels.len(),
            self.train.len(),
            self.valid.len(),
            self.test.len(),
            self.oos_valid.len(),
            self.oos_test.len()
        )
    }
}

/// What kind of detail a slot asks for; the dialogue accepts an answer only if it looks like one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    Date,
    Amount,
    Text,
}

/// A detail an intent's reply needs (the order date for a card that has not arrived, say).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    pub name: String,
    pub kind: SlotKind,
    pub prompt: String,
}

/// An intent of the embedded set: its reply (with `{slot}` placeholders) and examples.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentSpec {
    pub name: String,
    pub description: String,
    pub reply: String,
    #[serde(default)]
    pub slots: Vec<Slot>,
    pub examples: Vec<String>,
}

/// The embedded set as written: intents with replies and examples, out-of-scope texts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub name: String,
    pub description: String,
    pub license: String,
    pub intents: Vec<IntentSpec>,
    pub out_of_scope: Vec<String>,
}

impl Catalog {
    /// The set compiled into the crate (`crates/chat/data/intents.json`).
    pub fn embedded() -> Result<Self> {
        Self::from_json(EMBEDDED, Path::new("crates/chat/data/intents.json"))
    }

    /// Reads a catalog file of the same format (your own intents and replies).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_error("read", path))?;
        Self::from_json(&text, path)
    }

    fn from_json(text: &str, path: &Path) -> Result<Self> {
        let catalog: Catalog = serde_json::from_str(text).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            location: format!("line {}, column {}", e.line(), e.column()),
            message: e.to_string(),
        })?;
        catalog.validate(path)?;
        Ok(catalog)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let fail = |location: String, message: String| Error::Data {
            path: path.to_path_buf(),
            location,
            message,
        };
        if self.intents.len() < 2 {
            return Err(fail("intents".into(), "need at least two intents".into()));
        }
        let mut seen = BTreeMap::new();
        for (i, intent) in self.intents.iter().enumerate() {
            let at = format!("intents[{i}] ({})", intent.name);
            if let Some(first) = seen.insert(intent.name.as_str(), i) {
                return Err(fail(
                    at,
                    format!("the name is used by intents[{first}] too"),
                ));
            }
            if intent.examples.len() < 5 {
                return Err(fail(
                    at,
                    format!(
                        "{} examples; need at least 5 to split into train, validation and test",
                        intent.examples.len()
                    ),
                ));
            }
            if let Some(j) = intent.examples.iter().position(|e| e.trim().is_empty()) {
                return Err(fail(format!("{at}.examples[{j}]"), "empty example".into()));
            }
            for placeholder in placeholders(&intent.reply) {
                if !intent.slots.iter().any(|s| s.name == placeholder) {
                    return Err(fail(
                        at.clone(),
                        format!(
                            "the reply uses {{{placeholder}}} but the intent has no slot of that name"
                        ),
                    ));
                }
            }
            for slot in &intent.slots {
                if !intent.reply.contains(&format!("{{{}}}", slot.name)) {
                    return Err(fail(
                        at.clone(),
                        format!("the reply never uses slot {{{}}}", slot.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The intent called `name`.
    pub fn intent(&self, name: &str) -> Option<&IntentSpec> {
        self.intents.iter().find(|i| i.name == name)
    }

    /// Splits each intent's examples in order: every 5th to test, every 10th (offset 3) to
    /// validation, the rest to training (70 / 10 / 20); out-of-scope texts alternate between
    /// validation and test. Deterministic, so the report's numbers are reproducible.
    pub fn split(&self) -> IntentData {
        let labels: Vec<String> = self.intents.iter().map(|i| i.name.clone()).collect();
        let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
        for (label, intent) in self.intents.iter().enumerate() {
            for (i, text) in intent.examples.iter().enumerate() {
                let example = Example {
                    text: text.clone(),
                    label,
                };
                match (i % 5, i % 10) {
                    (4, _) => test.push(example),
                    (_, 2) => valid.push(example),
                    _ => train.push(example),
                }
            }
        }
        let (oos_valid, oos_test) = alternate(&self.out_of_scope);
        IntentData {
            name: self.name.clone(),
            labels,
            train,
            valid,
            test,
            oos_valid,
            oos_test,
        }
    }
}

/// Each label's position, by name.
fn label_index(labels: &[String]) -> BTreeMap<&str, usize> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect()
}

/// The `{name}` placeholders of a reply.
fn placeholders(reply: &str) -> Vec<&str> {
    reply
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

fn alternate(texts: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut even, mut odd) = (Vec::new(), Vec::new());
    for (i, text) in texts.iter().enumerate() {
        if i % 2 == 0 {
            even.push(text.clone());
        } else {
            odd.push(text.clone());
        }
    }
    (even, odd)
}

/// Banking77 as PolyAI publishes it: `dir/train.csv` and `dir/test.csv` with the header
/// `text,category` (and `categories.json`, the label order, when present). One training example
/// in `valid_every` (per intent, seeded) is held out for validation; 0 holds out none.
pub fn load_banking77(dir: &Path, valid_every: usize, seed: u64) -> Result<IntentData> {
    let train_rows = read_text_category_csv(&dir.join("train.csv"))?;
    let test_rows = read_text_category_csv(&dir.join("test.csv"))?;
    let categories = dir.join("categories.json");
    let labels: Vec<String> = if categories.is_file() {
        let text = std::fs::read_to_string(&categories).map_err(io_error("read", &categories))?;
        serde_json::from_str(&text).map_err(|e| Error::Data {
            path: categories.clone(),
            location: format!("line {}", e.line()),
            message: format!("expected a JSON list of category names: {e}"),
        })?
    } else {
        let mut names: Vec<String> = train_rows.iter().map(|r| r.2.clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    let index = label_index(&labels);
    let to_examples = |rows: &[(usize, String, String)], path: &Path| -> Result<Vec<Example>> {
        rows.iter()
            .map(
                |(line, text, category)| match index.get(category.as_str()) {
                    Some(&label) => Ok(Example {
                        text: text.clone(),
                        label,
                    }),
                    None => Err(Error::Data {
                        path: path.to_path_buf(),
                        location: format!("line {line}"),
                        message: format!("category {category:?} is not a known intent"),
                    }),
                },
            )
            .collect()
    };
    let train_all = to_examples(&train_rows, &dir.join("train.csv"))?;
    let test = to_examples(&test_rows, &dir.join("test.csv"))?;
    let (train, valid) = hold_out(train_all, labels.len(), valid_every, seed);
    Ok(IntentData {
        name: "banking77".into(),
        labels,
        train,
        valid,
        test,
        oos_valid: Vec::new(),
        oos_test: Vec::new(),
    })
}

/// Every `every`-th example of each label (after a seeded shuffle) goes to validation.
fn hold_out(
    mut examples: Vec<Example>,
    n_labels: usize,
    every: usize,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    if every == 0 {
        return (examples, Vec::new());
    }
    examples.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut seen = vec![0usize; n_labels];
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for example in examples {
        seen[example.label] += 1;
        if seen[example.label].is_multiple_of(every) {
            valid.push(example);
        } else {
            train.push(example);
        }
    }
    (train, valid)
}

/// Rows `(line, text, category)` of a `text,category` CSV (quoted fields as RFC 4180 has them).
fn read_text_category_csv(path: &Path) -> Result<Vec<(usize, String, String)>> {
    let fail = |location: String, message: String| Error::Data {
        path: path.to_path_buf(),
        location,
        message,
    };
    let bytes = std::fs::read(path).map_err(io_error("read", path))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .map_err(|e| fail("line 1".into(), format!("cannot read the header: {e}")))?
        .clone();
    if header.len() != 2 || &header[0] != "text" || &header[1] != "category" {
        return Err(fail(
            "line 1".into(),
            format!(
                "the header is {:?}; expected \"text,category\"",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            fail(format!("line {line}"), format!("not valid CSV: {e}"))
        })?;
        let line = record
            .position()
            .map_or(0, |p| line_at(&bytes, p.byte() as usize));
        if record.len() != 2 {
            return Err(fail(
                format!("line {line}"),
                format!(
                    "{} fields; expected 2 (text,category) — quote texts that contain commas",
                    record.len()
                ),
            ));
        }
        let (text, category) = (record[0].trim(), record[1].trim());
        if text.is_empty() {
            return Err(fail(format!("line {line}"), "the text is empty".into()));
        }
        if category.is_empty() {
            return Err(fail(format!("line {line}"), "the category is empty".into()));
        }
        rows.push((line, text.to_string(), category.to_string()));
    }
    if rows.is_empty() {
        return Err(fail("line 2".into(), "no rows after the header".into()));
    }
    Ok(rows)
}

/// The 1-based line where the record starting at byte `offset` begins. The csv reader's own
/// count lags behind after blank lines and CRLF line ends (it records a position before skipping
/// them), so the line is counted from the bytes, skipping the line ends at `offset`.
fn line_at(bytes: &[u8], mut offset: usize) -> usize {
    let offset_clamped = offset.min(bytes.len());
    let mut line = 1 + bytes[..offset_clamped]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    offset = offset_clamped;
    while offset < bytes.len() && (bytes[offset] == b'\n' || bytes[offset] == b'\r') {
        if bytes[offset] == b'\n' {
            line += 1;
        }
        offset += 1;
    }
    line
}

/// CLINC150's `data_full.json` layout: `train`, `val`, `test` lists of `[text, intent]` pairs,
/// and `oos_train`, `oos_val`, `oos_test` with intent `"oos"`. Out-of-scope pairs found in the
/// in-scope lists are moved to the out-of-scope splits; `oos_train` is not used for training.
pub fn load_clinc150(path: &Path) -> Result<IntentData> {
    let text = std::fs::read_to_string(path).map_err(io_error("read", path))?;
    let fail = |location: String, message: String| Error::Data {
        path: path.to_path_buf(),
        location,
        message,
    };
    let root: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        fail(
            format!("line {}, column {}", e.line(), e.column()),
            format!("not valid JSON: {e}"),
        )
    })?;
    let pairs = |key: &str, required: bool| -> Result<Vec<(String, String)>> {
        let Some(value) = root.get(key) else {
            return if required {
                Err(fail(key.into(), format!("missing list {key:?}")))
            } else {
                Ok(Vec::new())
            };
        };
        let items = value
            .as_array()
            .ok_or_else(|| fail(key.into(), "expected a list of [text, intent] pairs".into()))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_array().map(Vec::as_slice) {
                Some([serde_json::Value::String(t), serde_json::Value::String(l)])
                    if !t.trim().is_empty() && !l.is_empty() =>
                {
                    Ok((t.trim().to_string(), l.clone()))
                }
                _ => Err(fail(
                    format!("{key}[{i}]"),
                    format!("expected [text, intent], two non-empty strings; found {item}"),
                )),
            })
            .collect()
    };
    let (train, valid, test) = (
        pairs("train", true)?,
        pairs("val", true)?,
        pairs("test", true)?,
    );
    let mut labels: Vec<String> = train
        .iter()
        .map(|(_, l)| l.clone())
        .filter(|l| l != "oos")
        .collect();
    labels.sort();
    labels.dedup();
    let index = label_index(&labels);
    let split = |key: &str, rows: Vec<(String, String)>| -> Result<(Vec<Example>, Vec<String>)> {
        let (mut examples, mut oos) = (Vec::new(), Vec::new());
        for (i, (text, label)) in rows.into_iter().enumerate() {
            if label == "oos" {
                oos.push(text);
            } else if let Some(&label) = index.get(label.as_str()) {
                examples.push(Example { text, label });
            } else {
                return Err(fail(
                    format!("{key}[{i}]"),
                    format!("intent {label:?} never occurs in \"train\""),
                ));
            }
        }
        Ok((examples, oos))
    };
    let (train, _) = split("train", train)?;
    let (valid, mut oos_valid) = split("val", valid)?;
    let (test, mut oos_test) = split("test", test)?;
    oos_valid.extend(pairs("oos_val", false)?.into_iter().map(|(t, _)| t));
    oos_test.extend(pairs("oos_test", false)?.into_iter().map(|(t, _)| t));
    if labels.len() < 2 {
        return Err(fail("train".into(), "fewer than two intents".into()));
    }
    Ok(IntentData {
        name: "clinc150".into(),
        labels,
        train,
        valid,
        test,
        oos_valid,
        oos_test,
    })
}
