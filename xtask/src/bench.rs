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
    phases.run("release build", || {
        Ok(cmd!(
            sh,
            "cargo build --release --quiet -p lowrank --example bench_math"
        )
        .run()?)
    })?;
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    // One thread each is the like-for-like comparison of the algorithms; all cores is what a user gets.
    let rounds: Vec<usize> = if all > 1 { vec![1, all] } else { vec![1] };
    let temp = sh.create_temp_dir()?;
    for threads in rounds {
        let dir = temp.path().join(format!("threads-{threads}"));
        sh.create_dir(&dir)?;
        let threads_text = threads.to_string();
        phases.run(&format!("lowrank, {threads} thread(s)"), || {
            Ok(cmd!(sh, "target/release/examples/bench_math {dir}")
                .env("RAYON_NUM_THREADS", &threads_text)
                .ignore_stdout()
                .run()?)
        })?;
        // OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset together, for this timing run only, as the
        // machine notes advise: they slow a current OpenBLAS.
        phases.run(
            &format!("numpy / scikit-learn / tensorly, {threads} thread(s)"),
            || {
                Ok(cmd!(sh, "{python} tests/reference/bench_math.py {dir}")
                    .env_remove("OPENBLAS_CORETYPE")
                    .env_remove("OPENBLAS_L2_SIZE")
                    .env("OPENBLAS_NUM_THREADS", &threads_text)
                    .env("OMP_NUM_THREADS", &threads_text)
                    .env("MKL_NUM_THREADS", &threads_text)
                    .ignore_stdout()
                    .run()?)
            },
        )?;
        let rust = read_json(&dir.join("rust.json"))?;
        let reference = read_json(&dir.join("python.json"))?;
        print_report(threads, &rust, &reference);
    }
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

fn print_report(threads: usize, rust: &Value, reference: &Value) {
    let number = |v: &Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "\n## {threads} thread(s): lowrank (faer) vs numpy {}, scikit-learn {}, tensorly {}",
        reference["numpy"], reference["scikit-learn"], reference["tensorly"]
    );
    println!("BLAS: {}\n", reference["blas"]);
    println!(
        "{:<44} {:>10} {:>10} {:>8}  target",
        "operation", "lowrank", "reference", "ratio"
    );
    let rows = [
        (
            "full SVD 768x768 f64 vs numpy",
            "svd_768x768_s",
            "time <= 0.8x numpy",
            0.8,
        ),
        (
            "full SVD 3072x768 f64 vs numpy",
            "svd_3072x768_s",
            "time <= 0.8x numpy",
            0.8,
        ),
        (
            "randomized rank-64 3072x768 vs sklearn",
            "rsvd_3072x768_s",
            ">= 1.5x faster",
            1.0 / 1.5,
        ),
        (
            "HOOI 100^3 ranks 10 vs tensorly",
            "hooi_s",
            ">= 3x faster",
            1.0 / 3.0,
        ),
    ];
    for (name, key, target, limit) in rows {
        let (ours, theirs) = (number(rust, key), number(reference, key));
        let ratio = ours / theirs;
        println!(
            "{name:<44} {ours:>9.4}s {theirs:>9.4}s {ratio:>7.3}x  {target}: {}",
            verdict(ratio, limit)
        );
    }
    let (ours, theirs) = (
        number(rust, "rsvd_relative_error"),
        number(reference, "rsvd_relative_error"),
    );
    println!(
        "randomized SVD error ‖A−A_k‖/‖A‖ (mean of {} seeds, {} power iterations): lowrank {ours:.6}, sklearn {theirs:.6}, optimal {:.6}: equal or lower: {}",
        rust["rsvd_seeds"],
        rust["rsvd_power_iterations"],
        number(rust, "rsvd_optimal_relative_error"),
        if ours <= theirs {
            "met".to_string()
        } else {
            format!("MISSED by {:.3}%", (ours / theirs - 1.0) * 100.0)
        }
    );
    println!(
        "HOOI relative error: lowrank {:.10} in {} iterations, tensorly {:.10} in {} iterations",
        number(rust, "hooi_relative_error"),
        rust["hooi_iterations"],
        number(reference, "hooi_relative_error"),
        reference["hooi_iterations"]
    );
    let full = number(rust, "svd_3072x768_s");
    println!("\nrandomized vs full SVD (lowrank, 3072x768, rank 64): target >= 10x faster");
    println!(
        "{:>17} {:>10} {:>9} {:>20}",
        "power iterations", "seconds", "speed-up", "error / optimal"
    );
    for point in rust["rsvd_sweep"].as_array().into_iter().flatten() {
        let seconds = number(point, "seconds");
        let speedup = full / seconds;
        println!(
            "{:>17} {seconds:>9.4}s {speedup:>8.1}x {:>20.4}  {}",
            point["power_iterations"],
            number(point, "relative_error") / number(rust, "rsvd_optimal_relative_error"),
            if speedup >= 10.0 { "met" } else { "missed" }
        );
    }
}

fn verdict(ratio: f64, limit: f64) -> String {
    if ratio <= limit {
        "met".into()
    } else {
        format!("MISSED by {:.0}%", (ratio / limit - 1.0) * 100.0)
    }
}
