//! Lesson 03, Tucker decompositions: the library's [`lowrank::tucker`] (re-exported, so
//! `tucker::hooi` reads the same in the lesson) and the lesson's exercises.

pub use lowrank::tucker::*;

use ndarray::{Array2, ArrayD};
use rand::Rng;

use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::gaussian_tensor;

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "03-unfold",
        lesson: "03-tucker",
        title: "Unfold a tensor along a mode",
        task: "Return the mode-n unfolding of a tensor: a matrix with shape[mode] rows whose columns \
               are the mode-n fibres, the other indices in C order (the last varies fastest), as tensorly does.",
        hint: "move axis `mode` to the front (permuted_axes), then reshape to (shape[mode], rest) from a standard-layout copy",
        template: "use lab::*;\n\nfn answer(x: &ArrayD<f64>, mode: usize) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::tucker::check_unfold",
        self_test: || SelfTest {
            reference: check_unfold(|x, mode| {
                unfold(x.view(), mode).unwrap_or_else(|_| Array2::zeros((0, 0)))
            }),
            wrong: check_unfold(|x, mode| {
                let rows = x.shape()[mode];
                let data: Vec<f64> = x.iter().copied().collect();
                Array2::from_shape_vec((rows, data.len() / rows), data)
                    .unwrap_or_else(|_| Array2::zeros((0, 0)))
            }),
        },
    },
    Exercise {
        id: "03-tucker2-parameters",
        lesson: "03-tucker",
        title: "Numbers stored by Tucker-2",
        task: "Return how many numbers W ≈ U₁·Γ·U₂ᵀ stores for an h×w matrix W at ranks (r1, r2).",
        hint: "U₁ is h×r1, Γ is r1×r2, U₂ is w×r2",
        template: "fn answer(h: usize, w: usize, r1: usize, r2: usize) -> usize {\n    todo!()\n}\n",
        checker: "lab::tucker::check_tucker2_parameters",
        self_test: || SelfTest {
            reference: check_tucker2_parameters(tucker2_parameter_count),
            wrong: check_tucker2_parameters(|h, w, r1, r2| h * r1 + w * r2),
        },
    },
    Exercise {
        id: "03-design-space-size",
        lesson: "03-tucker",
        title: "Size of the design space",
        task: "Return |S| for a model of L layers with T compressible tensors each and R candidate ranks: \
               every non-empty set of layers, every non-empty set of tensors, every rank, plus the \
               uncompressed model.",
        hint: "a set of L layers has 2^L − 1 non-empty subsets; do not forget the + 1",
        template: "fn answer(layers: u32, tensors: u32, ranks: u64) -> u64 {\n    todo!()\n}\n",
        checker: "lab::tucker::check_design_space_size",
        self_test: || SelfTest {
            reference: check_design_space_size(design_space_size),
            wrong: check_design_space_size(|l, t, r| 2u64.pow(l) * 2u64.pow(t) * r),
        },
    },
];

/// |S| = (2^L − 1)(2^T − 1)·R + 1, (`compress::design::DesignSpace::size` counts it for a real model).
pub fn design_space_size(layers: u32, tensors: u32, ranks: u64) -> u64 {
    (2u64.pow(layers) - 1) * (2u64.pow(tensors) - 1) * ranks + 1
}

/// Checks `answer(x, mode)` against [`unfold`] on random tensors of order 2 to 4.
pub fn check_unfold(answer: impl Fn(&ArrayD<f64>, usize) -> Array2<f64>) -> Verdict {
    let mut rng = exercise::rng(31);
    let mut cases = Vec::new();
    for seed in 0..10 {
        let order = rng.random_range(2..5);
        let shape: Vec<usize> = (0..order).map(|_| rng.random_range(1..6)).collect();
        let mode = rng.random_range(0..order);
        cases.push((gaussian_tensor(&shape, seed), mode));
    }
    Checker::new(EXERCISES[0].id, EXERCISES[0].hint, cases).run(
        |(x, mode)| answer(x, *mode),
        |(x, mode), got| {
            let want = unfold(x.view(), *mode).map_err(|e| e.to_string())?;
            exercise::close_arrays(
                &format!("shape {:?}, mode {mode}", x.shape()),
                &got,
                &want,
                0.0,
            )
        },
    )
}

/// Checks `answer(h, w, r1, r2)` against [`tucker2_parameter_count`].
pub fn check_tucker2_parameters(answer: impl Fn(usize, usize, usize, usize) -> usize) -> Verdict {
    let mut rng = exercise::rng(32);
    let mut cases = vec![(768, 768, 64, 64), (768, 3072, 1, 1)];
    cases.extend((0..30).map(|_| {
        (
            rng.random_range(1..3000),
            rng.random_range(1..3000),
            rng.random_range(1..100),
            rng.random_range(1..100),
        )
    }));
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, cases).run(
        |&(h, w, r1, r2)| answer(h, w, r1, r2),
        |&(h, w, r1, r2), got| {
            exercise::equal(
                &format!("h={h}, w={w}, r1={r1}, r2={r2}"),
                got,
                tucker2_parameter_count(h, w, r1, r2),
            )
        },
    )
}

/// Checks `answer(L, T, R)` against `compress::design::DesignSpace::size` on real layer and tensor lists.
pub fn check_design_space_size(answer: impl Fn(u32, u32, u64) -> u64) -> Verdict {
    let mut rng = exercise::rng(33);
    let mut cases = vec![(6, 4, 8), (1, 1, 1), (12, 6, 5)];
    cases.extend((0..20).map(|_| {
        (
            rng.random_range(1..20),
            rng.random_range(1..7),
            rng.random_range(1..10),
        )
    }));
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, cases).run(
        |&(l, t, r)| answer(l, t, r),
        |&(l, t, r), got| {
            exercise::equal(
                &format!("L={l}, T={t}, R={r}"),
                got,
                library_design_space_size(l, t, r)?,
            )
        },
    )
}

fn library_design_space_size(layers: u32, tensors: u32, ranks: u64) -> Result<u64, String> {
    let space = compress::design::DesignSpace::new(
        0..layers as usize,
        (0..tensors).map(|t| format!("t{t}")),
        1..=ranks as usize,
    )
    .map_err(|e| e.to_string())?;
    u64::try_from(space.size()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_formula_is_the_design_spaces_size() {
        assert_eq!(
            super::library_design_space_size(6, 4, 8),
            Ok(super::design_space_size(6, 4, 8))
        );
    }
}
