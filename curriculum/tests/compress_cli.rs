#![allow(clippy::unwrap_used)]
//! `lowrank compress` end to end on the tiny random BART and BERT fixtures: the saved folder
//! reloads into a model computing what the in-process compression computes, the report's counts
//! are the model's, and bad requests fail cleanly.

use compress::{Plan, RankRule, compress_model, load_compressed_bart};
use models::bart::Bart;
use models::candle::{DType, Device, Tensor};

mod common;
use common::{check_fails, fixtures, stdout_of, temp_dir, tiny_bart};

fn logits(model: &Bart) -> Tensor {
    let ids = Tensor::new(&[[0u32, 31, 7, 99, 2]], &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 5), DType::U32, &Device::Cpu).unwrap();
    let decoder = Tensor::new(&[[2u32, 0, 42]], &Device::Cpu).unwrap();
    model.forward(&ids, &mask, &decoder).unwrap()
}

#[test]
fn compressed_bart_reloads_as_compressed_in_process() {
    let dir = temp_dir();
    let out = dir.path().join("small");
    let out_arg = out.to_string_lossy();
    let model = tiny_bart();
    let stdout = stdout_of(&[
        "compress", "--model", &model, "--keep", "0.5", "--blocks", "0,1", "--out", &out_arg,
    ]);
    assert!(
        stdout.contains("24 layers: 25344 → 13056 parameters"),
        "{stdout}"
    );
    assert!(stdout.contains("compressed model written to"), "{stdout}");

    let (reloaded, manifest) = load_compressed_bart(&out, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(manifest.layers.len(), 24);
    let mut expected =
        Bart::from_dir(&fixtures().join("tiny-bart"), DType::F32, &Device::Cpu).unwrap();
    let plan = Plan::new(RankRule::ParamRatio(0.5))
        .select(["*.q_proj", "*.k_proj", "*.v_proj", "*.out_proj"])
        .layers([0, 1]);
    compress_model(&mut expected, &plan).unwrap();
    let diff = (logits(&reloaded) - logits(&expected))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-5, "reloaded logits differ by {diff}");
}

#[test]
fn sentence_encoder_reports_embedding_cosines() {
    let dir = temp_dir();
    let out = dir.path().join("bert");
    let model = fixtures().join("tiny-bert");
    let stdout = stdout_of(&[
        "compress",
        "--model",
        &model.to_string_lossy(),
        "--rank",
        "2",
        "--out",
        &out.to_string_lossy(),
        "--text",
        "my card is lost",
        "--text",
        "reset the PIN",
    ]);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("embedding cosine to the original: mean "))
        .unwrap_or_else(|| panic!("no cosine line in {stdout}"));
    let mean: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(mean > -1.0 && mean < 1.0, "{line}");
    assert!(out.join("compression.json").is_file());
}

#[test]
fn bad_requests_exit_2_naming_the_problem() {
    let dir = temp_dir();
    let out = dir.path().join("x").to_string_lossy().into_owned();
    let model = tiny_bart();
    check_fails(
        &["compress", "--model", &model, "--out", &out],
        &["--rank", "--keep"],
    );
    check_fails(
        &["compress", "--model", &model, "--rank", "99", "--out", &out],
        &["rank 99", "1..=15"],
    );
    check_fails(
        &[
            "compress", "--model", &model, "--layers", "*.nope", "--rank", "2", "--out", &out,
        ],
        &["*.nope", "encoder.layers.*.self_attn.q_proj"],
    );
    check_fails(
        &[
            "compress", "--model", &model, "--keep", "1.5", "--out", &out,
        ],
        &["1.5"],
    );
    check_fails(
        &[
            "compress",
            "--model",
            "/no/such/model",
            "--rank",
            "2",
            "--out",
            &out,
        ],
        &["/no/such/model/config.json"],
    );
}

#[test]
fn inspect_prints_effective_ranks_beside_random_and_plots() {
    let dir = temp_dir();
    let plot = dir.path().join("spectra.svg");
    let stdout = stdout_of(&[
        "inspect",
        "--model",
        &tiny_bart(),
        "--layers",
        "encoder.*.fc1",
        "--plot",
        &plot.to_string_lossy(),
    ]);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("encoder.layers."))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    // fc1 is 64×32: at most 32 singular values, so every effective rank lies in 1..=32.
    for row in rows {
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields[1], "64×32", "{row}");
        let effective: f64 = fields[2].parse().unwrap();
        let rank_90: usize = fields[3].parse().unwrap();
        assert!(
            (1.0..=32.0).contains(&effective) && (1..=32).contains(&rank_90),
            "{row}"
        );
    }
    assert!(
        std::fs::read_to_string(&plot)
            .unwrap()
            .contains("random Gaussian")
    );
    check_fails(
        &["inspect", "--model", &tiny_bart(), "--layers", "*.nope"],
        &["no linear layer", "*.nope"],
    );
}

#[test]
fn whitened_compression_calibrates_on_a_text_file_and_lowers_output_error() {
    let dir = temp_dir();
    let calibration = dir.path().join("calibration.txt");
    std::fs::write(
        &calibration,
        "Anna: my card has not arrived\nTom: I will send a new one to Berlin\n\n\
         Ben: why was my transfer declined?\nAgent: the IBAN was wrong\n",
    )
    .unwrap();
    let calibration = calibration.to_string_lossy().into_owned();
    let mean_output_error = |method: &str| -> f64 {
        let out = dir.path().join(method).to_string_lossy().into_owned();
        let stdout = stdout_of(&[
            "compress",
            "--model",
            &tiny_bart(),
            "--keep",
            "0.5",
            "--method",
            method,
            "--calibration",
            &calibration,
            "--out",
            &out,
        ]);
        let errors: Vec<f64> = stdout
            .lines()
            .filter_map(|l| l.split("output error ").nth(1))
            .map(|e| e.trim().parse().unwrap())
            .collect();
        assert_eq!(errors.len(), 24, "{stdout}");
        errors.iter().sum::<f64>() / errors.len() as f64
    };
    // Whitening minimizes the error on the calibration inputs; plain SVD ignores them.
    let (svd, whitened) = (mean_output_error("svd"), mean_output_error("whitened"));
    assert!(whitened < svd, "whitened {whitened} vs svd {svd}");
    check_fails(
        &[
            "compress",
            "--model",
            &tiny_bart(),
            "--keep",
            "0.5",
            "--method",
            "whitened",
            "--out",
            &dir.path().join("x").to_string_lossy(),
        ],
        &["--calibration"],
    );
}

#[test]
fn allocated_ranks_meet_the_budget_and_reload() {
    let dir = temp_dir();
    let probe = dir.path().join("probe.txt");
    std::fs::write(
        &probe,
        "my card is lost\nreset the PIN please\nwhere is my refund\n",
    )
    .unwrap();
    let model = fixtures().join("tiny-bert");
    let model = model.to_string_lossy();
    for allocate in ["spectral", "relative", "measured"] {
        let out = dir.path().join(allocate);
        let stdout = stdout_of(&[
            "compress",
            "--model",
            &model,
            "--keep",
            "0.5",
            "--allocate",
            allocate,
            "--probe",
            &probe.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ]);
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("allocation ({allocate}):")))
            .unwrap_or_else(|| panic!("no allocation line in {stdout}"));
        assert!(
            line.ends_with("8192 → 4096 weights") || line.contains("→ 40"),
            "{line}"
        );
        let (_, manifest) =
            compress::load_compressed_sentence_encoder(&out, DType::F32, &Device::Cpu).unwrap();
        let weights: usize = manifest
            .layers
            .iter()
            .map(|l| l.rank * (l.in_dim + l.out_dim))
            .sum();
        let dense = (8 - manifest.layers.len()) * 32 * 32;
        assert!(
            weights + dense <= 4096,
            "{allocate}: {weights} + {dense} weights"
        );
    }
    let out = dir.path().join("bad").to_string_lossy().into_owned();
    check_fails(
        &[
            "compress",
            "--model",
            &model,
            "--rank",
            "4",
            "--allocate",
            "spectral",
            "--out",
            &out,
        ],
        &["--keep"],
    );
    check_fails(
        &[
            "compress",
            "--model",
            &model,
            "--keep",
            "0.5",
            "--allocate",
            "measured",
            "--out",
            &out,
        ],
        &["--probe"],
    );
    check_fails(
        &[
            "compress",
            "--model",
            &model,
            "--keep",
            "0.5",
            "--allocate",
            "best",
            "--out",
            &out,
        ],
        &["spectral, relative or measured"],
    );
    check_fails(
        &[
            "compress",
            "--model",
            &tiny_bart(),
            "--keep",
            "0.5",
            "--allocate",
            "measured",
            "--out",
            &out,
        ],
        &["sentence encoders"],
    );
}
