//! Exercises graded by the library: each runs a student's function on random inputs beside the
//! library's own implementation and says which input went wrong, what came back, and a hint.
//!
//! One registry ([`all`]) serves the notebooks (call a lesson's `check_…` function on your answer),
//! `lowrank exercise list | show | check` (which compiles the student's file against this crate), and
//! the test that every checker accepts the reference and rejects a wrong answer.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One exercise as the CLI and the book see it.
#[derive(Debug, Clone, Copy)]
pub struct Exercise {
    /// `NN-name`, the lesson's number first: `04-sigmoid-grad`.
    pub id: &'static str,
    /// The lesson's chapter, `04-neural-networks`.
    pub lesson: &'static str,
    pub title: &'static str,
    /// What to write, in a sentence or three.
    pub task: &'static str,
    pub hint: &'static str,
    /// A file the student starts from: `use` lines and `fn answer(...) { todo!() }`.
    pub template: &'static str,
    /// The path of the checker the CLI calls on the student's `answer`, `lab::…::check_…`.
    pub checker: &'static str,
    /// Runs the checker on the reference and on a deliberately wrong answer (for the tests).
    pub self_test: fn() -> SelfTest,
}

/// What the checker said about the reference answer and about a wrong one.
#[derive(Debug)]
pub struct SelfTest {
    pub reference: Verdict,
    pub wrong: Verdict,
}

/// Every exercise of every lesson, in lesson order.
pub fn all() -> Vec<Exercise> {
    [
        crate::matrices_and_flops::EXERCISES,
        crate::svd_on_images::EXERCISES,
        crate::tucker::EXERCISES,
        crate::neural_networks::EXERCISES,
        crate::attention::EXERCISES,
        crate::transformer::EXERCISES,
        crate::decoding::EXERCISES,
        crate::lora::EXERCISES,
        crate::compressing_bart::EXERCISES,
        crate::design_space::EXERCISES,
        crate::chatbot::EXERCISES,
    ]
    .concat()
}

/// The exercise with this id, or an error listing the close ones.
pub fn find(id: &str) -> Result<Exercise, String> {
    let all = all();
    if let Some(exercise) = all.iter().find(|e| e.id == id) {
        return Ok(*exercise);
    }
    let prefix: String = id.chars().take(2).collect();
    let same_lesson: Vec<&str> = all
        .iter()
        .filter(|e| e.id.starts_with(&prefix))
        .map(|e| e.id)
        .collect();
    let known = if same_lesson.is_empty() {
        all.iter().map(|e| e.id).collect::<Vec<_>>()
    } else {
        same_lesson
    };
    Err(format!(
        "no exercise {id:?}; try one of: {} (`lowrank exercise list` shows all)",
        known.join(", ")
    ))
}

/// The checker's judgement: how many cases passed, or the first that failed and why.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub exercise: &'static str,
    pub outcome: Result<usize, Failure>,
}

#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong, naming the input.
    pub problem: String,
    pub hint: &'static str,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }

    /// `Ok` when passed, else an error carrying the whole message: `check(...).ok()?` in a notebook
    /// cell stops the cell with the reason.
    pub fn ok(&self) -> Result<(), String> {
        if self.passed() {
            Ok(())
        } else {
            Err(self.to_string())
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(cases) => write!(f, "✓ {}: correct on all {cases} test inputs", self.exercise),
            Err(failure) => write!(
                f,
                "✗ {}: {}\n  hint: {}",
                self.exercise, failure.problem, failure.hint
            ),
        }
    }
}

impl Verdict {
    pub fn evcxr_display(&self) {
        println!("{self}");
    }
}

/// The inputs of one exercise and how to judge an answer on them.
pub struct Checker<I> {
    exercise: &'static str,
    hint: &'static str,
    cases: Vec<I>,
}

impl<I> Checker<I> {
    pub fn new(exercise: &'static str, hint: &'static str, cases: Vec<I>) -> Self {
        Self {
            exercise,
            hint,
            cases,
        }
    }

    /// Runs `answer` on every case; `judge(input, answer's output)` says what is wrong, if anything.
    /// A panic in the answer (`todo!()` included) is a failure, not a crash.
    pub fn run<O>(
        self,
        answer: impl Fn(&I) -> O,
        judge: impl Fn(&I, O) -> Result<(), String>,
    ) -> Verdict {
        let total = self.cases.len();
        for input in &self.cases {
            let output = match quietly(|| answer(input)) {
                Ok(output) => output,
                Err(message) => return self.fail(format!("your function panicked: {message}")),
            };
            if let Err(problem) = judge(input, output) {
                return self.fail(problem);
            }
        }
        Verdict {
            exercise: self.exercise,
            outcome: Ok(total),
        }
    }

    fn fail(&self, problem: String) -> Verdict {
        Verdict {
            exercise: self.exercise,
            outcome: Err(Failure {
                problem,
                hint: self.hint,
            }),
        }
    }
}

static PANIC_HOOK: Mutex<()> = Mutex::new(());

/// Runs `f`, turning a panic into its message without printing it (a notebook treats a printed
/// panic as a failed cell; here the panic is the student's, and the verdict reports it).
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let _guard = PANIC_HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into())
    })
}

/// A seeded generator, so a failing case is the same on every run.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `Ok` when `got` is within `tolerance` of `want`, relative to `max(1, |want|)`.
pub fn close(what: &str, got: f64, want: f64, tolerance: f64) -> Result<(), String> {
    if !got.is_finite() {
        return Err(format!("{what}: you returned {got}, expected {want:.6}"));
    }
    if (got - want).abs() <= tolerance * want.abs().max(1.0) {
        Ok(())
    } else {
        Err(format!("{what}: you returned {got:.6}, expected {want:.6}"))
    }
}

/// Compares two arrays of any shape: the shapes, then each element (the first wrong one is named).
pub fn close_arrays<D: ndarray::Dimension>(
    what: &str,
    got: &ndarray::Array<f64, D>,
    want: &ndarray::Array<f64, D>,
    tolerance: f64,
) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "{what}: your result has shape {:?}, expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    for ((index, &g), &w) in got.indexed_iter().zip(want.iter()) {
        if !g.is_finite() || (g - w).abs() > tolerance * w.abs().max(1.0) {
            return Err(format!(
                "{what}: element {:?} is {g:.6}, expected {w:.6}",
                index.into_pattern_debug()
            ));
        }
    }
    Ok(())
}

/// `Debug` of an ndarray index pattern, without the trait bound noise at call sites.
trait PatternDebug {
    fn into_pattern_debug(self) -> String;
}

impl<T: ndarray::IntoDimension> PatternDebug for T {
    fn into_pattern_debug(self) -> String {
        use ndarray::Dimension;
        format!("{:?}", self.into_dimension().slice())
    }
}

/// Exact equality with a message naming the input.
pub fn equal<T: PartialEq + fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: you returned {got:?}, expected {want:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_checker_accepts_the_reference_and_rejects_a_wrong_answer() {
        let all = all();
        assert!(all.len() >= 33, "only {} exercises", all.len());
        for exercise in &all {
            let test = (exercise.self_test)();
            assert!(
                test.reference.passed(),
                "{}: the reference fails: {}",
                exercise.id,
                test.reference
            );
            assert!(
                !test.wrong.passed(),
                "{}: a wrong answer passes",
                exercise.id
            );
            let message = test.wrong.to_string();
            assert!(
                message.contains("hint:") && message.contains(exercise.id),
                "{message}"
            );
        }
    }

    #[test]
    fn every_lesson_has_three_exercises_with_unique_ids_in_its_chapter() {
        let all = all();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book/src");
        let mut ids: Vec<&str> = all.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "duplicate exercise ids");
        let mut lessons: Vec<&str> = all.iter().map(|e| e.lesson).collect();
        lessons.dedup();
        assert_eq!(lessons.len(), 11);
        for lesson in lessons {
            let chapter = std::fs::read_to_string(root.join(format!("{lesson}.md")))
                .unwrap_or_else(|e| panic!("{lesson}.md: {e}"));
            let exercises: Vec<&Exercise> = all.iter().filter(|e| e.lesson == lesson).collect();
            assert!(exercises.len() >= 3, "{lesson} has {}", exercises.len());
            for exercise in exercises {
                assert!(exercise.id.starts_with(&lesson[..3]), "{}", exercise.id);
                assert!(
                    chapter.contains(exercise.id),
                    "{lesson}.md never names exercise {}",
                    exercise.id
                );
                let checker = exercise.checker.rsplit("::").next().unwrap_or_default();
                assert!(
                    chapter.contains(checker),
                    "{lesson}.md never calls {}",
                    exercise.checker
                );
                assert!(exercise.template.contains("fn answer"), "{}", exercise.id);
            }
        }
    }

    #[test]
    fn a_panicking_answer_fails_quietly_with_its_message() {
        let verdict = Checker::new("00-test", "write it", vec![1.0_f64, 2.0])
            .run(|_| -> f64 { todo!() }, |_, _| Ok(()));
        let message = verdict.to_string();
        assert!(
            message.contains("panicked: not yet implemented"),
            "{message}"
        );
        assert!(message.contains("hint: write it"));
    }

    #[test]
    fn unknown_ids_list_the_lessons_exercises() {
        let error = find("04-nope").unwrap_err();
        assert!(error.contains("04-"), "{error}");
    }

    #[test]
    fn array_comparison_names_shape_and_element() {
        let want = ndarray::array![[1.0, 2.0], [3.0, 4.0]];
        let shape = close_arrays("x", &ndarray::array![[1.0, 2.0]], &want, 1e-9).unwrap_err();
        assert!(
            shape.contains("[1, 2]") && shape.contains("[2, 2]"),
            "{shape}"
        );
        let element =
            close_arrays("x", &ndarray::array![[1.0, 2.0], [3.0, 5.0]], &want, 1e-9).unwrap_err();
        assert!(
            element.contains("[1, 1]") && element.contains("5.0"),
            "{element}"
        );
        assert!(close_arrays("x", &want.clone(), &want, 1e-9).is_ok());
    }
}
