//! What every CLI test does: run the built `lowrank` with an empty cache, read what it printed,
//! and check a failure is a clean one. Each test file uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `lowrank args…` with `LOWRANK_CACHE` pointing at an empty folder, so no test sees a
/// user's cached models or venvs.
pub fn lowrank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lowrank"))
        .args(args)
        .env(
            "LOWRANK_CACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-cache"),
        )
        .output()
        .unwrap_or_else(|e| panic!("cannot run lowrank: {e}"))
}

/// Stdout of a run that must succeed.
pub fn stdout_of(args: &[&str]) -> String {
    let output = lowrank(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts a clean failure: exit code 2, an error line naming every `needles`, no panic.
pub fn check_fails(args: &[&str], needles: &[&str]) {
    let output = lowrank(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
    }
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"))
}

/// The committed model fixtures (tests/fixtures/models).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models")
}

/// The tiny random BART's folder, as a command-line argument.
pub fn tiny_bart() -> String {
    fixtures().join("tiny-bart").to_string_lossy().into_owned()
}
