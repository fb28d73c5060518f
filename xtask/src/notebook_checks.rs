//! Tagged cells: a chapter fence ```` ```rust,check=NAME ```` makes a cell whose printed numbers the
//! test compares with an independent reference (`tests/reference/notebook_checks.py`, numpy,
//! scikit-image, tensorly). A cell that prints a wrong number fails its notebook.
//!
//! The reference gives, per notebook and check, regexes whose groups must read as numbers within a
//! tolerance of its values. Every tagged cell needs an entry and every entry a tagged cell.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::notebooks::CHECK_TAG;

#[derive(Debug, Deserialize)]
pub struct Expectation {
    pattern: String,
    values: Vec<f64>,
    tolerance: f64,
}

/// Notebook name → check name → what its cell must print.
pub type Expected = BTreeMap<String, BTreeMap<String, Vec<Expectation>>>;

/// Runs the reference script in the reference venv.
pub fn expected(sh: &Shell, python: &Path, root: &Path, cache: &Path) -> Result<Expected> {
    let script = root.join("tests/reference/notebook_checks.py");
    let output = cmd!(sh, "{python} {script} {cache}")
        .quiet()
        .read()
        .context("tests/reference/notebook_checks.py failed")?;
    serde_json::from_str(&output).context("notebook_checks.py printed something other than JSON")
}

/// Every problem with one executed notebook's tagged cells; empty when all pass.
pub fn judge(name: &str, notebook: &Value, expected: &Expected) -> Vec<String> {
    let empty = BTreeMap::new();
    let checks = expected.get(name).unwrap_or(&empty);
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (index, cell) in notebook["cells"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(check) = check_of(cell) else {
            continue;
        };
        seen.push(check.clone());
        let Some(expectations) = checks.get(&check) else {
            problems.push(format!(
                "cell {} is tagged {CHECK_TAG}{check} but tests/reference/notebook_checks.py has no \
                 {check:?} for {name}",
                index + 1
            ));
            continue;
        };
        let stdout = stdout_of(cell);
        for expectation in expectations {
            if let Err(problem) = compare(&stdout, expectation) {
                problems.push(format!(
                    "cell {} ({CHECK_TAG}{check}): {problem}",
                    index + 1
                ));
            }
        }
    }
    for check in checks.keys().filter(|check| !seen.contains(check)) {
        problems.push(format!(
            "no cell is tagged {CHECK_TAG}{check}, which the reference expects (a ```rust,check={check} fence)"
        ));
    }
    problems
}

fn check_of(cell: &Value) -> Option<String> {
    cell["metadata"]["tags"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|tag| tag.strip_prefix(CHECK_TAG))
        .map(str::to_string)
}

fn stdout_of(cell: &Value) -> String {
    let text = |output: &Value| match &output["text"] {
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        Value::String(text) => text.clone(),
        _ => String::new(),
    };
    cell["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["output_type"] == "stream" && o["name"] == "stdout")
        .map(text)
        .collect()
}

fn compare(stdout: &str, expectation: &Expectation) -> Result<(), String> {
    let pattern = Regex::new(&expectation.pattern)
        .map_err(|e| format!("bad pattern {:?}: {e}", expectation.pattern))?;
    let captures = pattern.captures(stdout).ok_or_else(|| {
        format!(
            "printed nothing matching {:?}; it printed: {:?}",
            expectation.pattern,
            stdout.chars().take(300).collect::<String>()
        )
    })?;
    for (group, &want) in expectation.values.iter().enumerate() {
        let text = captures.get(group + 1).map_or("", |m| m.as_str());
        let got: f64 = text
            .parse()
            .map_err(|_| format!("{:?} is not a number in {:?}", text, &captures[0]))?;
        if (got - want).abs() > expectation.tolerance {
            return Err(format!(
                "printed {got} in {:?}, the reference computes {want} (tolerance {})",
                &captures[0], expectation.tolerance
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn notebook(tag: &str, stdout: &str) -> Value {
        json!({"cells": [
            {"cell_type": "markdown", "metadata": {}, "source": []},
            {"cell_type": "code", "metadata": {"tags": [tag]},
             "outputs": [{"output_type": "stream", "name": "stdout", "text": [stdout]}]}
        ]})
    }

    fn expected(pattern: &str, values: &[f64], tolerance: f64) -> Expected {
        let expectation = Expectation {
            pattern: pattern.into(),
            values: values.to_vec(),
            tolerance,
        };
        BTreeMap::from([(
            "01-x".to_string(),
            BTreeMap::from([("flops".to_string(), vec![expectation])]),
        )])
    }

    #[test]
    fn a_right_number_passes_and_a_wrong_one_fails() {
        let want = expected(r"FLOPs = (\d+), ratio ([\d.]+)", &[120.0, 0.5], 0.005);
        let right = notebook("check:flops", "FLOPs = 120, ratio 0.50\n");
        assert!(judge("01-x", &right, &want).is_empty());
        let wrong = notebook("check:flops", "FLOPs = 121, ratio 0.50\n");
        let problems = judge("01-x", &wrong, &want);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("printed 121"), "{problems:?}");
        let off = notebook("check:flops", "FLOPs = 120, ratio 0.51\n");
        assert_eq!(judge("01-x", &off, &want).len(), 1);
    }

    #[test]
    fn missing_output_untagged_cells_and_unknown_tags_fail() {
        let want = expected(r"FLOPs = (\d+)", &[120.0], 0.0);
        let silent = notebook("check:flops", "");
        assert!(judge("01-x", &silent, &want)[0].contains("printed nothing"));
        let untagged = notebook("other", "FLOPs = 120\n");
        assert!(judge("01-x", &untagged, &want)[0].contains("no cell is tagged check:flops"));
        let unknown = notebook("check:nope", "");
        let problems = judge("01-x", &unknown, &want);
        assert!(
            problems.iter().any(|p| p.contains("has no \"nope\"")),
            "{problems:?}"
        );
    }
}
