//! `cargo xtask bench math`: Lowrank and its references timed on the same inputs in one run, printed
//! as ratios against the targets of issue #4. Benchmarks, not tests: a missed target is reported,
//! not failed, because timings depend on the machine.

use anyhow::{Context, Result};
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::phases::Phases;
use crate::venv;

pub fn math(sh: &Shell) -> Result<()> {
    let mut phases = Phases::default();
    let python = phases.run("reference venv", || venv::ensure(sh))?;
    let dir = sh.create_temp_dir()?;
    let dir = dir.path();
    phases.run("lowrank (release build + run)", || {
        Ok(cmd!(
            sh,
            "cargo run --release --quiet -p lowrank --example bench_math -- {dir}"
        )
        .run()?)
    })?;
    // Unset together, as the machine notes say, only for this timing run: they slow current OpenBLAS.
    phases.run("numpy / scikit-learn / tensorly", || {
        Ok(cmd!(sh, "{python} tests/reference/bench_math.py {dir}")
            .env_remove("OPENBLAS_CORETYPE")
            .env_remove("OPENBLAS_L2_SIZE")
            .run()?)
    })?;
    let rust = read_json(&dir.join("rust.json"))?;
    let reference = read_json(&dir.join("python.json"))?;
    print_report(&rust, &reference);
    phases.summary();
    Ok(())
}

/// Runs the stand-alone comparison crate (outside the workspace, so nalgebra never slows the tests).
pub fn svd_backends(sh: &Shell) -> Result<()> {
    let manifest = "xtask/svd-backends/Cargo.toml";
    let target = "target/svd-backends";
    cmd!(
        sh,
        "cargo run --release --quiet --manifest-path {manifest} --target-dir {target}"
    )
    .run()?;
    Ok(())
}

fn read_json(path: &std::path::Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("missing {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn print_report(rust: &Value, reference: &Value) {
    let number = |v: &Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "\nreferences: numpy {}, scikit-learn {}, tensorly {}; BLAS {}",
        reference["numpy"], reference["scikit-learn"], reference["tensorly"], reference["blas"]
    );
    println!("lowrank: faer, {} threads\n", rust["threads"]);
    println!(
        "{:<44} {:>10} {:>10} {:>8}  target",
        "operation", "lowrank", "reference", "ratio"
    );
    let rows = [
        (
            "full SVD 768x768 f64 vs numpy",
            "svd_768x768_s",
            "svd_768x768_s",
            "time <= 0.8x numpy",
            Goal::AtMost(0.8),
        ),
        (
            "full SVD 3072x768 f64 vs numpy",
            "svd_3072x768_s",
            "svd_3072x768_s",
            "time <= 0.8x numpy",
            Goal::AtMost(0.8),
        ),
        (
            "randomized rank-64 3072x768 vs sklearn",
            "rsvd_3072x768_s",
            "rsvd_3072x768_s",
            ">= 1.5x faster",
            Goal::AtMost(1.0 / 1.5),
        ),
        (
            "HOOI 100^3 ranks 10 vs tensorly",
            "hooi_s",
            "hooi_s",
            ">= 3x faster",
            Goal::AtMost(1.0 / 3.0),
        ),
    ];
    for (name, ours, theirs, target, goal) in rows {
        let (a, b) = (number(rust, ours), number(reference, theirs));
        let ratio = a / b;
        println!(
            "{name:<44} {a:>9.4}s {b:>9.4}s {ratio:>7.3}x  {target}: {}",
            goal.verdict(ratio)
        );
    }
    let speedup = number(rust, "svd_3072x768_s") / number(rust, "rsvd_3072x768_s");
    println!(
        "{:<44} {:>10} {:>10} {speedup:>7.1}x  >= 10x faster: {}",
        "randomized vs full SVD (lowrank, 3072x768)",
        "",
        "",
        if speedup >= 10.0 { "met" } else { "MISSED" }
    );
    let (ours, theirs) = (
        number(rust, "rsvd_relative_error"),
        number(reference, "rsvd_relative_error"),
    );
    println!(
        "randomized SVD relative error: lowrank {ours:.6}, sklearn {theirs:.6}: equal or lower: {}",
        if ours <= theirs * (1.0 + 1e-9) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "HOOI relative error: lowrank {:.8} in {} iterations, tensorly {:.8} in {} iterations",
        number(rust, "hooi_relative_error"),
        rust["hooi_iterations"],
        number(reference, "hooi_relative_error"),
        reference["hooi_iterations"]
    );
}

#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
}

impl Goal {
    fn verdict(self, ratio: f64) -> String {
        match self {
            Goal::AtMost(limit) if ratio <= limit => "met".into(),
            Goal::AtMost(limit) => format!("MISSED by {:.0}%", (ratio / limit - 1.0) * 100.0),
        }
    }
}
