//! Checkpoints: an interrupted run resumed from its checkpoint retraces the uninterrupted one bit
//! for bit; damaged, missing or foreign files fail naming the file and what differs, and leave
//! the model untouched; saving over a checkpoint replaces it whole.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use common::*;
use rand_chacha::ChaCha8Rng;
use train::checkpoint::{self, BEST_MODEL_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE};
use train::metrics;
use train::optim::{AdamWConfig, OptimizerConfig};
use train::schedule::Schedule;
use train::trainer::{CHECKPOINT_DIR, Forward, Report, Trainer, TrainerConfig};
use train::{Error, Result};

const STEPS: usize = 10;

/// Every feature whose state a checkpoint must carry: AdamW moments, a warm-up schedule,
/// clipping, two micro-batches sampled from the trainer's stream, evaluations with the best
/// parameters kept.
fn config(output_dir: &Path) -> TrainerConfig {
    TrainerConfig {
        schedule: Schedule::cosine(3, STEPS),
        accumulation_steps: 2,
        max_grad_norm: Some(0.3),
        eval_every: Some(2),
        patience: Some(100),
        restore_best: true,
        seed: 11,
        output_dir: Some(output_dir.to_path_buf()),
        checkpoint_every: Some(3),
        ..TrainerConfig::new(
            OptimizerConfig::AdamW(AdamWConfig {
                lr: 3e-2,
                ..AdamWConfig::default()
            }),
            STEPS,
        )
    }
}

/// Runs `trainer` on the MLP over `varmap`; `fail_at` makes the batch closure fail at that
/// micro-batch index, as a crash would.
fn fit(trainer: &mut Trainer, varmap: &VarMap, fail_at: Option<usize>) -> Result<Report> {
    let (xs, ys) = dataset(64, 7);
    let (eval_xs, eval_ys) = dataset(32, 8);
    let mut evaluate = || eval_loss(varmap, &eval_xs, &eval_ys);
    trainer.fit(
        |index, rng: &mut ChaCha8Rng| {
            if Some(index) == fail_at {
                return Err(train::Error::InvalidArgument("simulated crash".into()));
            }
            Ok(sample(&xs, &ys, 4, rng))
        },
        |(x, y): &(Tensor, Tensor), f: Forward| Ok((mse(&mlp(varmap, x, f)?, y)?, x.dim(0)?)),
        Some(&mut evaluate),
        &mut |_| {},
    )
}

/// (kind, step, loss) of each metrics row: the deterministic columns.
fn logged(dir: &Path) -> Vec<(metrics::Kind, usize, f64)> {
    metrics::read_jsonl(&dir.join(metrics::JSONL_FILE))
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.step, r.loss))
        .collect()
}

#[test]
fn a_resumed_run_retraces_the_uninterrupted_one() {
    let straight_dir = tempfile::tempdir().unwrap();
    let straight_params = mlp_varmap(5);
    let mut trainer = Trainer::new(config(straight_dir.path()), &straight_params).unwrap();
    let straight = fit(&mut trainer, &straight_params, None).unwrap();
    assert_eq!(straight.steps.len(), STEPS);

    // Crash while fetching step 8's first micro-batch: the last checkpoint is at step 6, and
    // the log already has a row for step 7.
    let crashed_dir = tempfile::tempdir().unwrap();
    let varmap = mlp_varmap(5);
    let mut trainer = Trainer::new(config(crashed_dir.path()), &varmap).unwrap();
    let err = fit(&mut trainer, &varmap, Some(7 * 2)).unwrap_err();
    assert!(err.to_string().contains("simulated crash"));
    drop(trainer);

    // A fresh process: other initial weights, everything else from the checkpoint.
    let fresh = mlp_varmap(99);
    let mut resumed = Trainer::resume(&crashed_dir.path().join(CHECKPOINT_DIR), &fresh).unwrap();
    assert_eq!(resumed.step(), 6);
    let rest = fit(&mut resumed, &fresh, None).unwrap();
    assert_eq!(rest.losses(), straight.losses()[6..]);
    for (a, b) in rest.steps.iter().zip(&straight.steps[6..]) {
        assert_eq!(
            (a.step, a.lr, a.grad_norm, a.tokens),
            (b.step, b.lr, b.grad_norm, b.tokens)
        );
    }
    assert_eq!(rest.best, straight.best);
    // The final model (the best one, restored) and the final checkpoints, bit for bit.
    assert_eq!(snapshot(&fresh), snapshot(&straight_params));
    let device = candle_core::Device::Cpu;
    let a = checkpoint::load(&straight_dir.path().join(CHECKPOINT_DIR), &device).unwrap();
    let b = checkpoint::load(&crashed_dir.path().join(CHECKPOINT_DIR), &device).unwrap();
    assert_eq!(a.state.step, STEPS);
    assert_eq!(
        (
            &a.state.rng,
            a.state.best,
            a.state.evals_without_improvement
        ),
        (
            &b.state.rng,
            b.state.best,
            b.state.evals_without_improvement
        )
    );
    for (x, y) in [(&a.model, &b.model), (&a.optimizer, &b.optimizer)] {
        assert_eq!(x.len(), y.len());
        for (name, tensor) in x {
            let diff = tensor
                .to_dtype(candle_core::DType::F64)
                .unwrap()
                .sub(&y[name].to_dtype(candle_core::DType::F64).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert_eq!(diff, 0.0, "{name} differs");
        }
    }
    assert_eq!(logged(crashed_dir.path()), logged(straight_dir.path()));
}

#[test]
fn save_by_hand_and_train_on_equals_one_run() {
    let mut plain = config(Path::new("unused"));
    plain.output_dir = None;
    plain.checkpoint_every = None;
    plain.restore_best = false;
    let varmap = mlp_varmap(5);
    let mut trainer = Trainer::new(plain.clone(), &varmap).unwrap();
    let straight = fit(&mut trainer, &varmap, None).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let first = mlp_varmap(5);
    let mut trainer = Trainer::new(plain, &first).unwrap();
    trainer.set_max_steps(4);
    let head = fit(&mut trainer, &first, None).unwrap();
    trainer.save_checkpoint(&ckpt).unwrap();
    let second = mlp_varmap(6);
    let mut trainer = Trainer::resume(&ckpt, &second).unwrap();
    trainer.set_max_steps(STEPS);
    let tail = fit(&mut trainer, &second, None).unwrap();
    let mut losses = head.losses();
    losses.extend(tail.losses());
    assert_eq!(losses, straight.losses());
    assert_eq!(snapshot(&second), snapshot(&varmap));
}

/// A saved checkpoint of the MLP after two steps, and the trainer's config.
fn saved_checkpoint() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_steps = 2;
    config.checkpoint_every = Some(2);
    let varmap = mlp_varmap(5);
    let mut trainer = Trainer::new(config, &varmap).unwrap();
    fit(&mut trainer, &varmap, None).unwrap();
    let ckpt = dir.path().join(CHECKPOINT_DIR);
    (dir, ckpt)
}

/// Resuming into `varmap` fails with `needles` in the message, and leaves the model as it was.
fn refused(ckpt: &Path, varmap: &VarMap, needles: &[&str]) -> Error {
    let before = snapshot(varmap);
    let err = Trainer::resume(ckpt, varmap).err().unwrap();
    let message = err.to_string();
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    assert_eq!(
        snapshot(varmap),
        before,
        "a failed resume changed the model"
    );
    err
}

#[test]
fn damaged_and_missing_files_are_named() {
    let (_dir, ckpt) = saved_checkpoint();
    let varmap = mlp_varmap(1);

    let model = ckpt.join(MODEL_FILE);
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let err = refused(&ckpt, &varmap, &[MODEL_FILE, "damaged"]);
    assert!(matches!(err, Error::CorruptFile { .. }), "{err:?}");
    std::fs::write(&model, &bytes).unwrap();

    let state = ckpt.join(STATE_FILE);
    let json = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, &json[..json.len() - 5]).unwrap();
    let err = refused(&ckpt, &varmap, &[STATE_FILE, "damaged", "line"]);
    assert!(matches!(err, Error::CorruptFile { .. }), "{err:?}");
    std::fs::write(&state, json.replace("\"step\": 2", "\"step\": \"two\"")).unwrap();
    refused(&ckpt, &varmap, &[STATE_FILE, "invalid type"]);
    std::fs::write(&state, &json).unwrap();

    let optimizer = ckpt.join(OPTIMIZER_FILE);
    std::fs::remove_file(&optimizer).unwrap();
    let err = refused(&ckpt, &varmap, &[OPTIMIZER_FILE, "missing"]);
    assert!(matches!(err, Error::MissingFile { .. }), "{err:?}");
}

#[test]
fn a_checkpoint_of_another_model_is_refused_by_parameter() {
    let (_dir, ckpt) = saved_checkpoint();

    // Hidden width 8 instead of 16.
    let narrow = seeded_varmap(
        &[
            ("fc1.weight", &[8, IN]),
            ("fc1.bias", &[8]),
            ("fc2.weight", &[1, 8]),
            ("fc2.bias", &[1]),
        ],
        1,
    );
    let err = refused(
        &ckpt,
        &narrow,
        &[MODEL_FILE, "fc1.weight", "[16, 4]", "[8, 4]", "fc2.weight"],
    );
    assert!(matches!(err, Error::Mismatch { .. }), "{err:?}");

    // A renamed layer: one parameter missing, one tensor left over.
    let renamed = seeded_varmap(
        &[
            ("fc1.weight", &[HIDDEN, IN]),
            ("fc1.bias", &[HIDDEN]),
            ("out.weight", &[1, HIDDEN]),
            ("fc2.bias", &[1]),
        ],
        1,
    );
    refused(
        &ckpt,
        &renamed,
        &[
            "parameter out.weight is missing",
            "tensor fc2.weight in the file is not a parameter",
        ],
    );

    // The right model, but the state file says SGD with momentum: the optimizer file lacks
    // its buffers.
    let state = ckpt.join(STATE_FILE);
    let json = std::fs::read_to_string(&state).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["config"]["optimizer"] = serde_json::json!({
        "name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": false
    });
    std::fs::write(&state, serde_json::to_string(&value).unwrap()).unwrap();
    refused(
        &ckpt,
        &mlp_varmap(1),
        &[OPTIMIZER_FILE, "momentum_buffer", "fc1.bias"],
    );
}

#[test]
fn saving_again_replaces_the_checkpoint_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let mut config = config(dir.path());
    config.output_dir = None;
    config.checkpoint_every = None;
    config.max_steps = 2;
    let varmap = mlp_varmap(5);
    let mut trainer = Trainer::new(config, &varmap).unwrap();
    trainer.save_checkpoint(&ckpt).unwrap();
    std::fs::write(ckpt.join("stale.txt"), "from the old checkpoint").unwrap();
    fit(&mut trainer, &varmap, None).unwrap();
    trainer.save_checkpoint(&ckpt).unwrap();

    let mut names: Vec<String> = std::fs::read_dir(&ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [BEST_MODEL_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE]
    );
    // Nothing left beside it: no temp or old directory.
    let siblings: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(siblings.len(), 1);
    let loaded = checkpoint::load(&ckpt, &candle_core::Device::Cpu).unwrap();
    assert_eq!(loaded.state.step, 2);
}
