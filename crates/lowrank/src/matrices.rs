//! Matrix products and what they cost: FLOP counts, a FLOP/s measurement, memory.
//!
//! A product of an m×n matrix by an n×p one does m·p dot products of length n: n multiplications
//! and n additions each, so 2mnp floating-point operations (FLOPs). The same counting gives the cost
//! of a factorized layer `x·U·V` and of attention, which is what makes low-rank compression pay.

use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};

use crate::{Error, Real, Result};

/// FLOPs of an m×n by n×p product: `2·m·n·p`.
///
/// ```
/// assert_eq!(lowrank::matrices::matmul_flops(2, 3, 4), 48);
/// ```
pub fn matmul_flops(m: usize, n: usize, p: usize) -> u64 {
    2 * m as u64 * n as u64 * p as u64
}

/// FLOPs of `x·U·V` for x (b×n), U (n×r), V (r×p), done as two thin products: `2·b·r·(n + p)`.
///
/// Cheaper than the dense `x·W` (`2·b·n·p`) exactly when `r < n·p / (n + p)`.
///
/// ```
/// use lowrank::matrices::{factorized_flops, matmul_flops};
/// assert_eq!(factorized_flops(1, 768, 64, 768), 2 * 64 * (768 + 768));
/// assert!(factorized_flops(1, 768, 64, 768) < matmul_flops(1, 768, 768));
/// ```
pub fn factorized_flops(b: usize, n: usize, rank: usize, p: usize) -> u64 {
    matmul_flops(b, n, rank) + matmul_flops(b, rank, p)
}

/// FLOPs of one multi-head self-attention layer on a sequence, by stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionFlops {
    /// Q, K and V projections: `3 · 2·s·d·d`.
    pub projections: u64,
    /// Scores `Q·Kᵀ` over all heads: `2·s·s·d`.
    pub scores: u64,
    /// Softmax-weighted sum of values over all heads: `2·s·s·d`.
    pub weighted_values: u64,
    /// Output projection: `2·s·d·d`.
    pub output: u64,
}

impl AttentionFlops {
    /// The sum of all stages (softmax and scaling, O(s²·heads), are left out as is customary).
    pub fn total(&self) -> u64 {
        self.projections + self.scores + self.weighted_values + self.output
    }
}

/// FLOPs of self-attention over `seq_len` tokens of width `d_model` (any number of heads: splitting
/// into heads changes the shapes of the products, not their total cost).
///
/// ```
/// let f = lowrank::matrices::attention_flops(128, 768);
/// assert_eq!(f.projections, 3 * 2 * 128 * 768 * 768);
/// assert_eq!(f.scores, 2 * 128 * 128 * 768);
/// assert_eq!(f.total(), 8 * 128 * 768 * 768 + 4 * 128 * 128 * 768);
/// ```
pub fn attention_flops(seq_len: usize, d_model: usize) -> AttentionFlops {
    let (s, d) = (seq_len, d_model);
    AttentionFlops {
        projections: 3 * matmul_flops(s, d, d),
        scores: matmul_flops(s, d, s),
        weighted_values: matmul_flops(s, s, d),
        output: matmul_flops(s, d, d),
    }
}

/// A product together with the FLOPs it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted<T> {
    pub value: Array2<T>,
    pub flops: u64,
}

/// `a·b` by the textbook triple loop, counting every multiplication and addition as it goes.
///
/// The lesson's from-scratch product: slow, but its count is measured rather than assumed, and it
/// is tested against [`matmul`] and [`matmul_flops`].
pub fn naive_matmul<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Result<Counted<T>> {
    check_inner(a, b)?;
    let (m, n, p) = (a.nrows(), a.ncols(), b.ncols());
    let mut value = Array2::zeros((m, p));
    let mut flops = 0;
    for i in 0..m {
        for j in 0..p {
            let mut sum = T::zero();
            for k in 0..n {
                sum += a[[i, k]] * b[[k, j]];
                flops += 2;
            }
            value[[i, j]] = sum;
        }
    }
    Ok(Counted { value, flops })
}

/// `a·b` by ndarray's optimised kernel, with its FLOP count.
///
/// ```
/// use lowrank::{matrices::matmul, ndarray::array};
/// let c = matmul(array![[1.0, 2.0]].view(), array![[3.0], [4.0]].view())?;
/// assert_eq!((c.value[[0, 0]], c.flops), (11.0, 4));
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn matmul<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Result<Counted<T>> {
    check_inner(a, b)?;
    Ok(Counted {
        value: a.dot(&b),
        flops: matmul_flops(a.nrows(), a.ncols(), b.ncols()),
    })
}

fn check_inner<T>(a: ArrayView2<T>, b: ArrayView2<T>) -> Result<()> {
    if a.ncols() != b.nrows() {
        return Err(Error::ShapeMismatch {
            op: "matrix product (columns of the left must equal rows of the right)".into(),
            left: a.shape().to_vec(),
            right: b.shape().to_vec(),
        });
    }
    Ok(())
}

/// A measured matmul speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlopRate {
    /// Size of the square matrices multiplied.
    pub n: usize,
    /// Median time of one product.
    pub median: Duration,
    /// `2n³ / median`.
    pub flops_per_second: f64,
}

/// Measures this machine's FLOP/s on n×n products (ndarray's kernel, one thread), taking the median
/// of `repeats` timed runs after one warm-up.
///
/// ```
/// let rate = lowrank::matrices::measure_matmul::<f32>(64, 3)?;
/// assert!(rate.flops_per_second > 0.0);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn measure_matmul<T: Real>(n: usize, repeats: usize) -> Result<FlopRate> {
    if n == 0 || repeats == 0 {
        return Err(Error::InvalidArgument {
            name: "size and repeats",
            value: format!("{n}, {repeats}"),
            reason: "both must be at least 1".into(),
        });
    }
    let a = Array2::from_shape_fn((n, n), |(i, j)| T::of(((i * 7 + j * 3) % 11) as f64 - 5.0));
    let b = a.t().to_owned();
    std::hint::black_box(a.dot(&b));
    let mut times: Vec<Duration> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(a.dot(&b));
            start.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    Ok(FlopRate {
        n,
        median,
        flops_per_second: matmul_flops(n, n, n) as f64 / median.as_secs_f64().max(1e-12),
    })
}

/// Bytes of an m×n matrix of `T`.
///
/// ```
/// assert_eq!(lowrank::matrices::matrix_bytes::<f32>(768, 768), 768 * 768 * 4);
/// ```
pub fn matrix_bytes<T>(m: usize, n: usize) -> u64 {
    (m * n * std::mem::size_of::<T>()) as u64
}

/// Bytes of the rank-r factors `U` (m×r) and `V` (r×n) that replace an m×n matrix.
///
/// ```
/// use lowrank::matrices::{factor_bytes, matrix_bytes};
/// assert_eq!(factor_bytes::<f32>(768, 768, 64), (768 + 768) * 64 * 4);
/// assert!(factor_bytes::<f32>(768, 768, 384) == matrix_bytes::<f32>(768, 768)); // break-even rank
/// ```
pub fn factor_bytes<T>(m: usize, n: usize, rank: usize) -> u64 {
    ((m + n) * rank * std::mem::size_of::<T>()) as u64
}
