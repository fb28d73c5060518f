//! `lowrank flops`: what a product, a factorized product and attention cost, in FLOPs, bytes and —
//! using this machine's measured speed — seconds.

use anyhow::{Result, ensure};
use lowrank::matrices::{
    attention_flops, factor_bytes, factorized_flops, matmul_flops, matrix_bytes, measure_matmul,
};

/// Sizes default to one BART-base projection applied to 128 tokens.
#[derive(clap::Args)]
pub struct Args {
    /// Rows of the left matrix (tokens in a batch).
    #[arg(long, default_value_t = 128)]
    m: usize,
    /// Inner dimension (the layer's input width).
    #[arg(long, default_value_t = 768)]
    n: usize,
    /// Columns of the right matrix (the layer's output width).
    #[arg(long, default_value_t = 768)]
    p: usize,
    /// Rank of the factorization W ≈ U·V compared with the dense product.
    #[arg(long, default_value_t = 64)]
    rank: usize,
    /// Sequence length for the attention count (its width is --n).
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Size of the square f32 product timed to measure this machine's FLOP/s (0 skips it).
    #[arg(long, default_value_t = 512)]
    measure: usize,
}

pub fn run(args: &Args) -> Result<()> {
    let Args {
        m,
        n,
        p,
        rank,
        seq_len,
        measure,
    } = *args;
    ensure!(
        m > 0 && n > 0 && p > 0 && seq_len > 0,
        "--m, --n, --p and --seq-len must be at least 1"
    );
    ensure!(rank > 0, "--rank must be at least 1");
    let dense = matmul_flops(m, n, p);
    let factorized = factorized_flops(m, n, rank, p);
    println!(
        "dense product      ({m}x{n}) · ({n}x{p})            {:>16} FLOPs  (2·m·n·p)",
        group(dense)
    );
    println!(
        "factorized product ({m}x{n}) · ({n}x{rank}) · ({rank}x{p}) {:>16} FLOPs  (2·m·r·(n+p)), {:.2}x the dense cost",
        group(factorized),
        factorized as f64 / dense as f64
    );
    println!(
        "  break-even rank n·p/(n+p) = {:.1}: factorizing pays below it",
        (n * p) as f64 / (n + p) as f64
    );
    println!(
        "weights W ({n}x{p}) in f32: {} bytes; factors U, V at rank {rank}: {} bytes ({:.1}% of W)",
        group(matrix_bytes::<f32>(n, p)),
        group(factor_bytes::<f32>(n, p, rank)),
        100.0 * factor_bytes::<f32>(n, p, rank) as f64 / matrix_bytes::<f32>(n, p) as f64
    );
    let attention = attention_flops(seq_len, n);
    println!("self-attention, {seq_len} tokens of width {n}:");
    println!(
        "  Q, K, V projections {:>16} FLOPs",
        group(attention.projections)
    );
    println!(
        "  scores Q·Kᵀ         {:>16} FLOPs",
        group(attention.scores)
    );
    println!(
        "  weights · V         {:>16} FLOPs",
        group(attention.weighted_values)
    );
    println!(
        "  output projection   {:>16} FLOPs",
        group(attention.output)
    );
    println!(
        "  total               {:>16} FLOPs",
        group(attention.total())
    );
    if measure > 0 {
        let rate = measure_matmul::<f32>(measure, 5)?;
        let per_second = rate.flops_per_second;
        println!(
            "this machine: {:.2} GFLOP/s on {measure}x{measure} f32 products (median of 5, {:.2} ms each)",
            per_second / 1e9,
            rate.median.as_secs_f64() * 1e3
        );
        println!(
            "  so the dense product takes about {:.3} ms, the factorized one {:.3} ms, the attention layer {:.3} ms",
            1e3 * dense as f64 / per_second,
            1e3 * factorized as f64 / per_second,
            1e3 * attention.total() as f64 / per_second
        );
    }
    Ok(())
}

/// 1234567 → "1_234_567": FLOP counts are long numbers.
fn group(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}
