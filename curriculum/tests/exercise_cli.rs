#![allow(clippy::unwrap_used)]
//! `lowrank exercise`: the list matches the registry, `show` and `start` give the starting file, and
//! `check` compiles a student's file and grades it with the notebooks' checker: a wrong answer fails
//! with the failing input and a hint (exit 1), the right one passes (exit 0), code that does not
//! compile is reported with the compiler's message (exit 2).

use std::path::Path;
use std::process::{Command, Output};

fn lowrank(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lowrank"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn list_names_every_exercise_and_show_prints_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let listed = text(&lowrank(&["exercise", "list"], dir.path()));
    for exercise in lab::exercise::all() {
        assert!(listed.contains(exercise.id), "{} missing", exercise.id);
    }
    let shown = lowrank(&["exercise", "show", "01-matmul-flops"], dir.path());
    assert!(shown.status.success());
    let shown = text(&shown);
    assert!(
        shown.contains("fn answer(m: usize, n: usize, p: usize) -> u64"),
        "{shown}"
    );
    assert!(shown.contains("hint:"));
    let unknown = lowrank(&["exercise", "show", "01-nope"], dir.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown).contains("01-matmul-flops"),
        "{}",
        text(&unknown)
    );
}

#[test]
fn start_writes_the_template_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = lowrank(&["exercise", "start", "03-unfold"], dir.path());
    assert!(started.status.success(), "{}", text(&started));
    let written = std::fs::read_to_string(dir.path().join("03-unfold.rs")).unwrap();
    assert_eq!(written, lab::exercise::find("03-unfold").unwrap().template);
    let again = lowrank(&["exercise", "start", "03-unfold"], dir.path());
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("not overwriting"), "{}", text(&again));
}

#[test]
fn check_grades_a_compiled_answer() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        std::fs::write(dir.path().join(name), body).unwrap();
        name.to_string()
    };
    let wrong = write(
        "wrong.rs",
        "fn answer(m: usize, n: usize, p: usize) -> u64 {\n    (m * n * p) as u64\n}\n",
    );
    let output = lowrank(
        &["exercise", "check", "01-matmul-flops", &wrong],
        dir.path(),
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("✗ 01-matmul-flops: m=1, n=1, p=1: you returned 1, expected 2"),
        "{said}"
    );
    assert!(said.contains("hint: each of the m·p entries"), "{said}");

    let right = write(
        "right.rs",
        "use lab::*;\n\nfn answer(m: usize, n: usize, p: usize) -> u64 {\n    matrices::matmul_flops(m, n, p)\n}\n",
    );
    let output = lowrank(
        &["exercise", "check", "01-matmul-flops", &right],
        dir.path(),
    );
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("✓ 01-matmul-flops: correct on all"), "{said}");

    let broken = write(
        "broken.rs",
        "fn answer(m: usize, n: usize, p: usize) -> u64 {\n    2 * m * n * p\n}\n",
    );
    let output = lowrank(
        &["exercise", "check", "01-matmul-flops", &broken],
        dir.path(),
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("does not compile") && said.contains("mismatched types"),
        "{said}"
    );

    let none = write("none.rs", "fn helper() {}\n");
    let output = lowrank(&["exercise", "check", "01-matmul-flops", &none], dir.path());
    assert!(
        text(&output).contains("defines no `fn answer`"),
        "{}",
        text(&output)
    );
    let missing = lowrank(
        &["exercise", "check", "01-matmul-flops", "absent.rs"],
        dir.path(),
    );
    assert!(
        text(&missing).contains("cannot read your answer absent.rs"),
        "{}",
        text(&missing)
    );
}
