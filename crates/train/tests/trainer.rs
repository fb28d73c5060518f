//! The training loop on toy problems: accumulation equals one big batch, the same seed gives the
//! same run, bf16 still learns, early stopping keeps the best parameters, metrics are whole rows,
//! and bad losses or settings fail with a message.

#![allow(clippy::unwrap_used)]

mod common;

use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use common::*;
use rand_chacha::ChaCha8Rng;
use train::metrics::{self, Kind, MetricsLog, Record};
use train::optim::{AdamWConfig, OptimizerConfig, SgdConfig};
use train::schedule::Schedule;
use train::trainer::{Forward, Precision, Progress, Report, Trainer, TrainerConfig};
use train::{Error, Result};

fn adamw(lr: f64) -> OptimizerConfig {
    OptimizerConfig::AdamW(AdamWConfig {
        lr,
        ..AdamWConfig::default()
    })
}

/// Trains the MLP on micro-batches of `sizes[index % len]` consecutive rows; returns the report
/// and the final parameters.
fn run_rows(config: TrainerConfig, sizes: &[usize], seed: u64) -> (Report, VarMap) {
    let (xs, ys) = dataset(64, 7);
    let varmap = mlp_varmap(seed);
    let mut trainer = Trainer::new(config, &varmap).unwrap();
    let starts: Vec<usize> = sizes
        .iter()
        .scan(0, |acc, &s| {
            let start = *acc;
            *acc += s;
            Some(start)
        })
        .collect();
    let period: usize = sizes.iter().sum();
    let report = trainer
        .fit(
            |index, _rng: &mut ChaCha8Rng| {
                let i = index % sizes.len();
                let cycle = index / sizes.len();
                Ok(rows(&xs, &ys, cycle * period + starts[i], sizes[i]))
            },
            |(x, y): &(Tensor, Tensor), f: Forward| Ok((mse(&mlp(&varmap, x, f)?, y)?, x.dim(0)?)),
            None,
            &mut |_| {},
        )
        .unwrap();
    (report, varmap)
}

#[test]
fn accumulated_micro_batches_equal_one_big_batch() {
    let mut big = TrainerConfig::new(adamw(1e-2), 6);
    big.max_grad_norm = Some(0.5);
    big.schedule = Schedule::linear(2, 6);
    let mut small = big.clone();
    small.accumulation_steps = 4;

    let (big_report, big_params) = run_rows(big.clone(), &[16], 1);
    let (small_report, small_params) = run_rows(small, &[4], 1);
    let diff = max_diff(&snapshot(&big_params), &snapshot(&small_params));
    assert!(diff < 1e-6, "parameters differ by {diff:e}");
    for (a, b) in big_report.steps.iter().zip(&small_report.steps) {
        assert!(
            (a.loss - b.loss).abs() < 1e-6,
            "step {}: {} vs {}",
            a.step,
            a.loss,
            b.loss
        );
        assert!((a.grad_norm - b.grad_norm).abs() < 1e-5);
        assert_eq!(a.tokens, b.tokens);
    }

    // Unequal micro-batches (2 + 6 rows) are weighted by their counts, so they still equal the
    // batch of 8; a plain loss / k would weight the 2 rows three times too much.
    let mut pooled = big;
    pooled.accumulation_steps = 2;
    let mut whole = pooled.clone();
    whole.accumulation_steps = 1;
    let (_, uneven) = run_rows(pooled, &[2, 6], 1);
    let (_, even) = run_rows(whole, &[8], 1);
    let diff = max_diff(&snapshot(&uneven), &snapshot(&even));
    assert!(diff < 1e-6, "parameters differ by {diff:e}");
}

/// Trains the MLP on batches sampled with the trainer's stream.
fn run_sampled(config: TrainerConfig, init_seed: u64) -> Report {
    let (xs, ys) = dataset(64, 7);
    let varmap = mlp_varmap(init_seed);
    let mut trainer = Trainer::new(config, &varmap).unwrap();
    trainer
        .fit(
            |_, rng: &mut ChaCha8Rng| Ok(sample(&xs, &ys, 8, rng)),
            |(x, y): &(Tensor, Tensor), f: Forward| Ok((mse(&mlp(&varmap, x, f)?, y)?, x.dim(0)?)),
            None,
            &mut |_| {},
        )
        .unwrap()
}

#[test]
fn the_same_seed_gives_the_same_losses() {
    let mut config = TrainerConfig::new(adamw(1e-2), 15);
    config.seed = 3;
    let first = run_sampled(config.clone(), 1);
    let second = run_sampled(config.clone(), 1);
    assert_eq!(first.losses(), second.losses());
    config.seed = 4;
    let other = run_sampled(config, 1);
    assert_ne!(first.losses(), other.losses());
}

#[test]
fn adamw_and_sgd_bring_the_loss_down() {
    for optimizer in [
        adamw(2e-2),
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.9,
            ..SgdConfig::new(5e-2)
        }),
    ] {
        let mut config = TrainerConfig::new(optimizer, 60);
        config.schedule = Schedule::cosine(5, 60);
        let losses = run_sampled(config, 2).losses();
        let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
        let last: f64 = losses[55..].iter().sum::<f64>() / 5.0;
        assert!(last < 0.5 * first, "{optimizer:?}: loss {first} -> {last}");
    }
}

#[test]
fn bf16_forward_still_learns_with_f32_master_weights() {
    let mut config = TrainerConfig::new(adamw(2e-2), 40);
    config.precision = Precision::Bf16;
    let (xs, ys) = dataset(64, 7);
    let varmap = mlp_varmap(2);
    let mut trainer = Trainer::new(config, &varmap).unwrap();
    let mut dtypes = Vec::new();
    let report = trainer
        .fit(
            |_, rng: &mut ChaCha8Rng| Ok(sample(&xs, &ys, 16, rng)),
            |(x, y): &(Tensor, Tensor), f: Forward| {
                let loss = mse(&mlp(&varmap, x, f)?, y)?;
                dtypes.push(loss.dtype());
                Ok((loss, x.dim(0)?))
            },
            None,
            &mut |_| {},
        )
        .unwrap();
    assert!(dtypes.iter().all(|&d| d == DType::BF16));
    for var in varmap.all_vars() {
        assert_eq!(var.dtype(), DType::F32);
    }
    let losses = report.losses();
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[35..].iter().sum::<f64>() / 5.0;
    assert!(last < 0.5 * first, "bf16 loss {first} -> {last}");
}

#[test]
fn early_stopping_restores_the_best_parameters() {
    let mut config = TrainerConfig::new(adamw(1e-2), 100);
    config.eval_every = Some(3);
    config.patience = Some(2);
    config.restore_best = true;
    let (xs, ys) = dataset(64, 7);
    let varmap = mlp_varmap(1);
    let mut trainer = Trainer::new(config, &varmap).unwrap();
    // Scripted evaluation losses: best at the second evaluation, then two worse ones.
    let script = [1.0, 0.5, 0.7, 0.6, 0.1];
    let mut seen = Vec::new();
    let mut evaluate = || -> Result<f64> {
        seen.push(snapshot(&varmap));
        Ok(script[seen.len() - 1])
    };
    let mut progress: Vec<Progress> = Vec::new();
    let report = trainer
        .fit(
            |_, rng: &mut ChaCha8Rng| Ok(sample(&xs, &ys, 8, rng)),
            |(x, y): &(Tensor, Tensor), f: Forward| Ok((mse(&mlp(&varmap, x, f)?, y)?, x.dim(0)?)),
            Some(&mut evaluate),
            &mut |p| progress.push(p.clone()),
        )
        .unwrap();
    assert!(report.stopped_early);
    assert_eq!(report.final_step, 12);
    assert_eq!(report.evals.len(), 4);
    let best = report.best.unwrap();
    assert_eq!((best.step, best.loss), (6, 0.5));
    assert_eq!(snapshot(&varmap), seen[1]);
    // One progress call per step, carrying the evaluation loss on evaluation steps.
    assert_eq!(progress.len(), 12);
    let evals: Vec<(usize, f64)> = progress
        .iter()
        .filter_map(|p| p.eval_loss.map(|l| (p.step, l)))
        .collect();
    assert_eq!(evals, [(3, 1.0), (6, 0.5), (9, 0.7), (12, 0.6)]);
    assert!(progress.iter().all(|p| p.max_steps == 100 && p.lr == 1e-2));
}

#[test]
fn metrics_files_hold_one_whole_row_per_step_and_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TrainerConfig::new(adamw(1e-2), 6);
    config.eval_every = Some(2);
    config.output_dir = Some(dir.path().to_path_buf());
    let (xs, ys) = dataset(64, 7);
    let varmap = mlp_varmap(1);
    let mut trainer = Trainer::new(config, &varmap).unwrap();
    let mut evaluate = || eval_loss(&varmap, &xs, &ys);
    let report = trainer
        .fit(
            |_, rng: &mut ChaCha8Rng| Ok(sample(&xs, &ys, 8, rng)),
            |(x, y): &(Tensor, Tensor), f: Forward| Ok((mse(&mlp(&varmap, x, f)?, y)?, x.dim(0)?)),
            Some(&mut evaluate),
            &mut |_| {},
        )
        .unwrap();
    let rows = metrics::read_jsonl(&dir.path().join(metrics::JSONL_FILE)).unwrap();
    let train: Vec<&Record> = rows.iter().filter(|r| r.kind == Kind::Train).collect();
    let evals: Vec<&Record> = rows.iter().filter(|r| r.kind == Kind::Eval).collect();
    assert_eq!(train.len(), 6);
    assert_eq!(evals.iter().map(|r| r.step).collect::<Vec<_>>(), [2, 4, 6]);
    for (row, stats) in train.iter().zip(&report.steps) {
        assert_eq!(
            (row.step, row.loss, row.lr),
            (stats.step, stats.loss, Some(stats.lr))
        );
        assert_eq!(row.tokens, Some(8));
    }
    let csv = std::fs::read_to_string(dir.path().join(metrics::CSV_FILE)).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "kind,step,loss,lr,grad_norm,tokens,tokens_per_second"
    );
    assert_eq!(lines.len(), 1 + 6 + 3);
    assert!(lines[1].starts_with(&format!("train,1,{},0.01,", report.steps[0].loss)));
    assert!(
        lines[3].starts_with("eval,2,") && lines[3].ends_with(",,,,"),
        "{}",
        lines[3]
    );
    assert!(csv.ends_with('\n'));
}

#[test]
fn resuming_a_log_drops_later_rows_and_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = MetricsLog::create(dir.path()).unwrap();
    for step in 1..=5 {
        log.append(&Record {
            kind: Kind::Train,
            step,
            loss: 1.0 / step as f64,
            lr: Some(0.1),
            grad_norm: Some(1.0),
            tokens: Some(8),
            tokens_per_second: Some(100.0),
        })
        .unwrap();
    }
    drop(log);
    // A crash in the middle of a write.
    for file in [metrics::CSV_FILE, metrics::JSONL_FILE] {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(file))
            .unwrap();
        f.write_all(b"train,6,0.1").unwrap();
    }
    let mut log = MetricsLog::resume(dir.path(), 3).unwrap();
    log.append(&Record {
        kind: Kind::Eval,
        step: 4,
        loss: 0.2,
        lr: None,
        grad_norm: None,
        tokens: None,
        tokens_per_second: None,
    })
    .unwrap();
    let rows = metrics::read_jsonl(log.jsonl_path()).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.step).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let csv = std::fs::read_to_string(log.csv_path()).unwrap();
    let steps: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(steps, ["1", "2", "3", "4"]);
    assert!(csv.lines().next().unwrap().starts_with("kind,step"));
}

#[test]
fn a_diverging_run_stops_with_finite_parameters() {
    let config = TrainerConfig::new(OptimizerConfig::Sgd(SgdConfig::new(1e4)), 200);
    let (xs, ys) = dataset(64, 7);
    let varmap = linear_varmap(1);
    let mut trainer = Trainer::new(config, &varmap).unwrap();
    let err = trainer
        .fit(
            |_, rng: &mut ChaCha8Rng| Ok(sample(&xs, &ys, 8, rng)),
            |(x, y): &(Tensor, Tensor), f: Forward| {
                Ok((mse(&linear(&varmap, x, f)?, y)?, x.dim(0)?))
            },
            None,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteLoss { .. } | Error::NonFiniteGradient { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
    for (_, values) in snapshot(&varmap) {
        assert!(values.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn bad_settings_and_losses_are_refused() {
    let varmap = linear_varmap(1);
    let base = TrainerConfig::new(adamw(1e-2), 5);
    let refused = |config: TrainerConfig, needle: &str| {
        let err = Trainer::new(config, &varmap).err().unwrap().to_string();
        assert!(err.contains(needle), "{err}");
    };
    refused(
        TrainerConfig {
            accumulation_steps: 0,
            ..base.clone()
        },
        "accumulation_steps",
    );
    refused(
        TrainerConfig {
            patience: Some(2),
            ..base.clone()
        },
        "eval_every",
    );
    refused(
        TrainerConfig {
            checkpoint_every: Some(2),
            ..base.clone()
        },
        "output_dir",
    );
    refused(
        TrainerConfig {
            max_grad_norm: Some(-1.0),
            ..base.clone()
        },
        "max_grad_norm",
    );
    refused(
        TrainerConfig::new(
            OptimizerConfig::AdamW(AdamWConfig {
                beta2: 1.0,
                ..AdamWConfig::default()
            }),
            5,
        ),
        "beta2",
    );
    let empty = Trainer::new(base.clone(), &VarMap::new()).err().unwrap();
    assert!(empty.to_string().contains("no float parameters"), "{empty}");

    // A per-example loss instead of the mean.
    let (xs, ys) = dataset(8, 7);
    let mut trainer = Trainer::new(base, &varmap).unwrap();
    let err = trainer
        .fit(
            |_, _: &mut ChaCha8Rng| Ok(()),
            |_: &(), f: Forward| {
                let per_example = linear(&varmap, &xs, f)?.sub(&ys)?.sqr()?;
                Ok((per_example, 8))
            },
            None,
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("[8, 1]") && err.contains("mean loss"), "{err}");

    // A loss that never touches the parameters (a detached model, another VarMap).
    let err = trainer
        .fit(
            |_, _: &mut ChaCha8Rng| Ok(()),
            |_: &(), _: Forward| Ok((Tensor::new(1f32, &candle_core::Device::Cpu)?, 8)),
            None,
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("none of the VarMap's parameters"), "{err}");
}
