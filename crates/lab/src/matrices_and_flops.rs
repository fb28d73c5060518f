//! Lesson 01, matrices and FLOPs: its exercises. The counts themselves live in
//! [`lowrank::matrices`], which the checkers use as the reference.

use rand::Rng;

use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::matrices;

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "01-matmul-flops",
        lesson: "01-matrices-and-flops",
        title: "FLOPs of a matrix product",
        task: "Return the floating-point operations of multiplying an m×n matrix by an n×p matrix \
               (one multiplication and one addition per term of each dot product).",
        hint: "each of the m·p entries is a dot product of length n: n multiplications and n additions",
        template: "fn answer(m: usize, n: usize, p: usize) -> u64 {\n    todo!()\n}\n",
        checker: "lab::matrices_and_flops::check_matmul_flops",
        self_test: || SelfTest {
            reference: check_matmul_flops(matrices::matmul_flops),
            wrong: check_matmul_flops(|m, n, p| (m * n * p) as u64),
        },
    },
    Exercise {
        id: "01-factorized-flops",
        lesson: "01-matrices-and-flops",
        title: "FLOPs of (x·U)·V",
        task: "Return the FLOPs of computing x·U·V as (x·U)·V, where x is b×n, U is n×r and V is r×p.",
        hint: "two thin products: b×n by n×r, then b×r by r×p, each 2·m·n·p",
        template: "fn answer(b: usize, n: usize, r: usize, p: usize) -> u64 {\n    todo!()\n}\n",
        checker: "lab::matrices_and_flops::check_factorized_flops",
        self_test: || SelfTest {
            reference: check_factorized_flops(matrices::factorized_flops),
            wrong: check_factorized_flops(|b, n, r, p| (2 * b * n * r * p) as u64),
        },
    },
    Exercise {
        id: "01-break-even-rank",
        lesson: "01-matrices-and-flops",
        title: "The largest rank that still saves work",
        task: "Return the largest rank r at which (x·U)·V costs fewer FLOPs than x·W for an n×p W \
               (0 when no rank does).",
        hint: "the factorized product is cheaper exactly when r·(n + p) < n·p; watch the strict inequality",
        template: "fn answer(n: usize, p: usize) -> usize {\n    todo!()\n}\n",
        checker: "lab::matrices_and_flops::check_break_even_rank",
        self_test: || SelfTest {
            reference: check_break_even_rank(break_even_rank),
            wrong: check_break_even_rank(|n, p| n * p / (n + p)),
        },
    },
];

/// The largest rank whose factorized product is strictly cheaper than the dense one.
pub fn break_even_rank(n: usize, p: usize) -> usize {
    (0..n.min(p))
        .rev()
        .find(|&r| matrices::factorized_flops(1, n, r, p) < matrices::matmul_flops(1, n, p))
        .unwrap_or(0)
}

fn shapes(count: usize, seed: u64) -> Vec<(usize, usize, usize, usize)> {
    let mut rng = exercise::rng(seed);
    let mut cases = vec![(1, 1, 1, 1), (2, 768, 768, 768), (1, 4, 6, 8)];
    cases.extend((0..count).map(|_| {
        (
            rng.random_range(1..200),
            rng.random_range(1..1000),
            rng.random_range(1..300),
            rng.random_range(1..1000),
        )
    }));
    cases
}

/// Checks `answer(m, n, p)` against [`matrices::matmul_flops`].
pub fn check_matmul_flops(answer: impl Fn(usize, usize, usize) -> u64) -> Verdict {
    let hint = EXERCISES[0].hint;
    Checker::new(EXERCISES[0].id, hint, shapes(30, 1)).run(
        |&(m, n, _, p)| answer(m, n, p),
        |&(m, n, _, p), got| {
            exercise::equal(
                &format!("m={m}, n={n}, p={p}"),
                got,
                matrices::matmul_flops(m, n, p),
            )
        },
    )
}

/// Checks `answer(b, n, r, p)` against [`matrices::factorized_flops`].
pub fn check_factorized_flops(answer: impl Fn(usize, usize, usize, usize) -> u64) -> Verdict {
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, shapes(30, 2)).run(
        |&(b, n, r, p)| answer(b, n, r, p),
        |&(b, n, r, p), got| {
            exercise::equal(
                &format!("b={b}, n={n}, r={r}, p={p}"),
                got,
                matrices::factorized_flops(b, n, r, p),
            )
        },
    )
}

/// Checks `answer(n, p)` against a search over the library's two FLOP counts.
pub fn check_break_even_rank(answer: impl Fn(usize, usize) -> usize) -> Verdict {
    let mut rng = exercise::rng(3);
    let mut cases = vec![(768, 768), (2, 2), (4, 4), (768, 3072), (1, 5)];
    cases.extend((0..30).map(|_| (rng.random_range(1..900), rng.random_range(1..900))));
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, cases).run(
        |&(n, p)| answer(n, p),
        |&(n, p), got| exercise::equal(&format!("n={n}, p={p}"), got, break_even_rank(n, p)),
    )
}
