//! A loader for dialogue–summary data in SAMSum's format, for users who have the data set.
//!
//! SAMSum (Gliwa et al., 2019) is the usual benchmark for dialogue summarization, but its licence
//! (CC BY-NC-ND) keeps it out of this repository and its tests: the course trains on generated
//! dialogues (`train::dialogues`), and this module lets anyone who has downloaded SAMSum, or made
//! data in its shape, evaluate on it.
//!
//! Two layouts are read, told apart by the first non-blank character: `[` starts a JSON array of
//! objects (the original release's `train.json`), anything else is JSON Lines, one object per line
//! (what Hugging Face `datasets` writes with `to_json`); blank lines are skipped. Each object
//! needs string fields `dialogue` and `summary`; `id` is optional (a string, or a number kept as
//! its text); other fields are ignored. SAMSum's dialogues break lines with "\r\n", which is
//! normalized to "\n" so that line-based scoring (ROUGE-Lsum) and printing behave. A file with no
//! dialogue is an error, as is anything else wrong, named by file, line (JSONL, from 1) or item
//! (JSON array, from 0), and field.
//!
//! ```
//! use eval::samsum::parse_samsum;
//!
//! let jsonl = r#"{"id": "13818513", "dialogue": "Amanda: I baked cookies.\r\nJerry: Sure!", "summary": "Amanda baked cookies."}
//! {"dialogue": "Tom: hi", "summary": "Tom greets."}
//! "#;
//! let pairs = parse_samsum(jsonl, "val.jsonl")?;
//! assert_eq!(pairs.len(), 2);
//! assert_eq!(pairs[0].id.as_deref(), Some("13818513"));
//! assert_eq!(pairs[0].dialogue, "Amanda: I baked cookies.\nJerry: Sure!");
//!
//! let broken = parse_samsum(r#"[{"dialogue": "Tom: hi"}]"#, "train.json").unwrap_err();
//! assert_eq!(broken.to_string(), r#"train.json, item 0: missing field "summary""#);
//! # Ok::<(), eval::Error>(())
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DataLocation, Error, Result};

/// One dialogue and its reference summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogueSummary {
    /// The example's id when the file has one (SAMSum's are numeric strings like "13818513").
    pub id: Option<String>,
    /// The conversation, one "Speaker: text" turn per line, lines broken by "\n".
    pub dialogue: String,
    /// The reference summary.
    pub summary: String,
}

/// Reads a SAMSum-format file (JSON array or JSON Lines, see the module docs).
pub fn load_samsum(path: &Path) -> Result<Vec<DialogueSummary>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_samsum(&text, &path.display().to_string())
}

/// Parses SAMSum-format text; `source_name` (a path, a URL) names it in errors.
pub fn parse_samsum(text: &str, source_name: &str) -> Result<Vec<DialogueSummary>> {
    let error = |location, reason: String| Error::Data {
        source_name: source_name.to_string(),
        location,
        reason,
    };
    // Windows editors save UTF-8 with a byte-order mark; it is not JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(error(
            None,
            "the file is empty: expected a JSON array or JSON lines of dialogues".into(),
        ));
    }
    if !text.trim_start().starts_with('[') {
        return parse_lines(text, &error);
    }
    let pairs = parse_array(text, &error)?;
    if pairs.is_empty() {
        return Err(error(None, "the JSON array holds no dialogue".into()));
    }
    Ok(pairs)
}

/// Builds an [`Error::Data`] for one location of the file being parsed.
type MakeError<'a> = dyn Fn(Option<DataLocation>, String) -> Error + 'a;

/// A JSON array of objects.
fn parse_array(text: &str, error: &MakeError) -> Result<Vec<DialogueSummary>> {
    let items: Vec<Value> =
        serde_json::from_str(text).map_err(|e| error(None, format!("bad JSON: {e}")))?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            pair(item).map_err(|reason| error(Some(DataLocation::Item(index)), reason))
        })
        .collect()
}

/// One JSON object per non-blank line.
fn parse_lines(text: &str, error: &MakeError) -> Result<Vec<DialogueSummary>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let at = Some(DataLocation::Line(index + 1));
            let item: Value = serde_json::from_str(line).map_err(|e| {
                // serde_json ends its message with "at line 1 column N"; within one line only the
                // column says anything.
                let position = format!(" at line {} column {}", e.line(), e.column());
                let message = e.to_string();
                let message = message.strip_suffix(&position).unwrap_or(&message);
                error(at, format!("bad JSON at column {}: {message}", e.column()))
            })?;
            pair(&item).map_err(|reason| error(at, reason))
        })
        .collect()
}

/// The fields of one object, or what is wrong with it.
fn pair(item: &Value) -> std::result::Result<DialogueSummary, String> {
    let object = item
        .as_object()
        .ok_or_else(|| format!("expected an object, found {}", kind(item)))?;
    let text = |field: &str| match object.get(field) {
        Some(Value::String(text)) => Ok(text.replace("\r\n", "\n")),
        Some(other) => Err(format!(
            "field {field:?} is {}, expected a string",
            kind(other)
        )),
        None => Err(format!("missing field {field:?}")),
    };
    let id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Number(id)) => Some(id.to_string()),
        Some(other) => {
            return Err(format!(
                "field \"id\" is {}, expected a string or a number",
                kind(other)
            ));
        }
    };
    Ok(DialogueSummary {
        id,
        dialogue: text("dialogue")?,
        summary: text("summary")?,
    })
}

/// "a number", "an array": a JSON value's type for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` parsed as `name` fails with exactly `message`.
    fn check_error(text: &str, name: &str, message: &str) {
        match parse_samsum(text, name) {
            Ok(pairs) => panic!("{text:?} parsed as {pairs:?}, expected {message:?}"),
            Err(e) => assert_eq!(e.to_string(), message, "for {text:?}"),
        }
    }

    fn pair(id: Option<&str>, dialogue: &str, summary: &str) -> DialogueSummary {
        DialogueSummary {
            id: id.map(str::to_string),
            dialogue: dialogue.into(),
            summary: summary.into(),
        }
    }

    #[test]
    fn json_arrays_and_json_lines_give_the_same_pairs() {
        let array = "\u{feff}  [\n {\"id\": \"1\", \"dialogue\": \"A: hi\\r\\nB: yo\", \"summary\": \"Greetings.\"},\n \
                     {\"id\": 2, \"dialogue\": \"C: bye\", \"summary\": \"C leaves.\", \"topic\": \"x\"},\n \
                     {\"id\": null, \"dialogue\": \"\", \"summary\": \"\"}\n]\n";
        let lines = "{\"id\": \"1\", \"dialogue\": \"A: hi\\r\\nB: yo\", \"summary\": \"Greetings.\"}\r\n\
                     \r\n\
                     {\"id\": 2, \"dialogue\": \"C: bye\", \"summary\": \"C leaves.\", \"topic\": \"x\"}\n   \n\
                     {\"dialogue\": \"\", \"summary\": \"\"}";
        let expected = vec![
            pair(Some("1"), "A: hi\nB: yo", "Greetings."),
            pair(Some("2"), "C: bye", "C leaves."),
            pair(None, "", ""),
        ];
        assert_eq!(parse_samsum(array, "a.json").unwrap(), expected);
        assert_eq!(parse_samsum(lines, "a.jsonl").unwrap(), expected);
    }

    #[test]
    fn every_problem_is_named_with_its_place() {
        let empty = "the file is empty: expected a JSON array or JSON lines of dialogues";
        check_error("", "e.json", &format!("e.json: {empty}"));
        check_error(" \n\r\n\t", "e.jsonl", &format!("e.jsonl: {empty}"));
        check_error("\u{feff}", "e.jsonl", &format!("e.jsonl: {empty}"));
        check_error(" [ ]", "e.json", "e.json: the JSON array holds no dialogue");
        check_error(
            "[{\"dialogue\": \"A: hi\", \"summary\": \"x\"},]",
            "t.json",
            "t.json: bad JSON: trailing comma at line 1 column 40",
        );
        check_error(
            "{\"dialogue\": \"A\", \"summary\": \"x\"}\n{\"dialogue\": \"B\" \"summary\": \"y\"}\n",
            "t.jsonl",
            "t.jsonl, line 2: bad JSON at column 18: expected `,` or `}`",
        );
        check_error(
            "[{\"dialogue\": \"A\", \"summary\": \"x\"}, \"B: hi\"]",
            "t.json",
            "t.json, item 1: expected an object, found a string",
        );
        check_error(
            "[1, 2]",
            "t.json",
            "t.json, item 0: expected an object, found a number",
        );
        check_error(
            "{\"summary\": \"x\"}",
            "t.jsonl",
            "t.jsonl, line 1: missing field \"dialogue\"",
        );
        check_error(
            "\n{\"dialogue\": \"A\", \"summary\": [\"x\"]}",
            "t.jsonl",
            "t.jsonl, line 2: field \"summary\" is an array, expected a string",
        );
        check_error(
            "[{\"dialogue\": null, \"summary\": \"x\"}]",
            "t.json",
            "t.json, item 0: field \"dialogue\" is null, expected a string",
        );
        check_error(
            "{\"id\": true, \"dialogue\": \"A\", \"summary\": \"x\"}",
            "t.jsonl",
            "t.jsonl, line 1: field \"id\" is a boolean, expected a string or a number",
        );
        check_error(
            "[\"dialogue\", \"summary\"",
            "t.json",
            "t.json: bad JSON: EOF while parsing a list at line 1 column 22",
        );
    }

    #[test]
    fn files_are_loaded_and_a_missing_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("val.jsonl");
        std::fs::write(
            &path,
            "{\"dialogue\": \"A: hi\", \"summary\": \"A greets.\"}\n",
        )
        .unwrap();
        assert_eq!(
            load_samsum(&path).unwrap(),
            vec![pair(None, "A: hi", "A greets.")]
        );
        let missing = dir.path().join("test.json");
        let error = load_samsum(&missing).unwrap_err();
        assert!(matches!(error, Error::Io { .. }));
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{error}"
        );
        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(
            load_samsum(&empty).unwrap_err().to_string(),
            format!(
                "{}: the file is empty: expected a JSON array or JSON lines of dialogues",
                empty.display()
            )
        );
    }
}
