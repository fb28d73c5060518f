//! The `lowrank` binary end to end: what a student types, what comes back, and the exit code.

use std::path::Path;

mod common;
use common::{check_fails, lowrank, temp_dir};

#[test]
fn svd_image_compresses_a_sample_and_writes_the_output() {
    let dir = temp_dir();
    let out = dir.path().join("rings.png");
    let out_arg = out.to_string_lossy();
    let output = lowrank(&[
        "svd-image",
        "sample:rings",
        "--rank",
        "20",
        "--size",
        "128",
        "--out",
        &out_arg,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.exists(), "no output file: {stdout}");
    for needle in [
        "128×128",
        "values of 49152",
        "storage ratio 3.19×",
        "PSNR",
        "dB",
        "wrote",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in {stdout}");
    }
    let written = std::fs::metadata(&out).map_or(0, |m| m.len());
    assert!(written > 1000, "output of {written} bytes");
}

#[test]
fn svd_image_by_energy_reports_ranks_per_channel() {
    let dir = temp_dir();
    let out = dir.path().join("board.jpg");
    let out_arg = out.to_string_lossy();
    let output = lowrank(&[
        "svd-image",
        "sample:checkerboard",
        "--energy",
        "0.99",
        "--size",
        "64x48",
        "--out",
        &out_arg,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.exists());
    assert!(stdout.contains("64×48"), "{stdout}");
    let ranks: Vec<&str> = stdout
        .lines()
        .filter(|line| ["R ", "G ", "B "].iter().any(|c| line.starts_with(c)))
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    assert_eq!(ranks, vec!["2", "2", "1"], "{stdout}");
}

#[test]
fn svd_image_errors_exit_2_and_name_the_problem() {
    let dir = temp_dir();
    let out = dir.path().join("out.png");
    let out_arg = out.to_string_lossy();
    let missing = dir.path().join("missing.png");
    let missing_arg = missing.to_string_lossy();
    check_fails(
        &["svd-image", &missing_arg, "--rank", "5", "--out", &out_arg],
        &["missing.png"],
    );
    check_fails(
        &["svd-image", "sample:nope", "--rank", "5", "--out", &out_arg],
        &["nope", "rings", "astronaut"],
    );
    check_fails(
        &[
            "svd-image",
            "sample:astronaut",
            "--rank",
            "5",
            "--out",
            &out_arg,
        ],
        &["cargo xtask venv"],
    );
    check_fails(
        &[
            "svd-image",
            "sample:rings",
            "--rank",
            "600",
            "--size",
            "64",
            "--out",
            &out_arg,
        ],
        &["rank 600", "1..=64"],
    );
    check_fails(
        &[
            "svd-image",
            "sample:rings",
            "--rank",
            "5",
            "--out",
            "out.gif",
        ],
        &["out.gif", ".png"],
    );
    check_fails(
        &[
            "svd-image",
            "sample:rings",
            "--energy",
            "1.5",
            "--out",
            &out_arg,
        ],
        &["--energy", "(0, 1]"],
    );
    check_fails(
        &[
            "svd-image",
            "sample:rings",
            "--rank",
            "0",
            "--out",
            &out_arg,
        ],
        &["--rank"],
    );
    check_fails(
        &[
            "svd-image",
            "sample:rings",
            "--rank",
            "5",
            "--energy",
            "0.9",
            "--out",
            &out_arg,
        ],
        &["--energy"],
    );
    check_fails(
        &["svd-image", "sample:rings", "--out", &out_arg],
        &["--rank"],
    );
    assert!(!out.exists(), "a failed run wrote {}", out.display());
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn generate_runs_beam_search_on_a_local_bart() {
    let model = fixture("tiny-bart");
    let output = lowrank(&[
        "generate",
        "--model",
        &model,
        "--text",
        "My card has not arrived.",
        "--beams",
        "3",
        "--max-new-tokens",
        "6",
        "--ids",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("> My card has not arrived.\n"),
        "{stdout}"
    );
    // The decoder start token, then at most six new tokens.
    let ids = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ids: "))
        .unwrap_or_default();
    assert!(
        ids.starts_with("[2, ") && ids.split(',').count() <= 7,
        "{ids}"
    );
}

#[test]
fn embed_prints_cosines_and_writes_unit_vectors() {
    let dir = temp_dir();
    let out = dir.path().join("e.npy");
    let out_arg = out.to_string_lossy();
    let model = fixture("tiny-bert");
    let output = lowrank(&[
        "embed",
        "--model",
        &model,
        "--text",
        "my card",
        "--text",
        "the transfer",
        "--out",
        &out_arg,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 texts, 32 dimensions") && stdout.contains("cosine similarities"));
    let matrix: ndarray::Array2<f32> =
        ndarray_npy::read_npy(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(matrix.dim(), (2, 32));
    for row in matrix.rows() {
        assert!((row.dot(&row) - 1.0).abs() < 1e-5);
    }
}

#[test]
fn model_commands_name_what_is_wrong() {
    let bart = fixture("tiny-bart");
    check_fails(
        &["generate", "--model", "/nonexistent", "--text", "x"],
        &["/nonexistent/config.json"],
    );
    check_fails(
        &[
            "generate", "--model", &bart, "--text", "x", "--top-p", "1.5",
        ],
        &["top_p 1.5"],
    );
    check_fails(
        &["generate", "--model", &bart, "--text", "x", "--beams", "0"],
        &["num_beams"],
    );
    check_fails(&["embed", "--model", &bart], &["nothing to embed"]);
    if !cfg!(feature = "cuda") {
        check_fails(
            &["embed", "--model", &bart, "--text", "x", "--device", "cuda"],
            &["built without CUDA"],
        );
    }
}
