#![allow(clippy::unwrap_used)]
//! `lowrank train summarizer` end to end: a quick run writes a model directory that
//! `lowrank generate` loads, a second run reuses it, and bad flags fail cleanly.

use std::path::Path;
use std::process::{Command, Output};

fn lowrank(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lowrank"))
        .args(args)
        .env("LOWRANK_CACHE", cache)
        .output()
        .unwrap_or_else(|e| panic!("cannot run lowrank: {e}"))
}

#[test]
fn quick_summarizer_trains_saves_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let out_arg = out.to_string_lossy();
    let args = ["train", "summarizer", "--quick", "--out", &out_arg];
    let output = lowrank(&args, dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(out.join(file).is_file(), "{file} missing: {stdout}");
    }
    for needle in ["Test perplexity:", "Overlap F1:", "lead-", "Example 2:"] {
        assert!(stdout.contains(needle), "{needle:?} not in {stdout}");
    }

    // The same settings again: nothing to train.
    let output = lowrank(&args, dir.path());
    let again = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{again}");
    assert!(again.contains("Reusing"), "{again}");

    // `lowrank generate` loads what was saved.
    let output = lowrank(
        &[
            "generate",
            "--model",
            &out_arg,
            "--text",
            "Anna: my card is lost",
        ],
        dir.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn bad_flag_values_exit_with_code_2_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (&["train", "summarizer", "--steps", "0"][..], "--steps"),
        (&["train", "summarizer", "--steps", "many"][..], "--steps"),
        (&["train", "summarizer", "--seed", "-1"][..], "-1"),
        (&["train", "summarizer", "--seed=x"][..], "--seed"),
        (&["train", "tokenizer"][..], "tokenizer"),
    ] {
        let output = lowrank(args, dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
