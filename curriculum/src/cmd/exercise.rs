//! `lowrank exercise list | show ID | start ID [FILE] | check ID FILE`: the chapters' exercises from a
//! terminal. `check` compiles the student's file against the `lab` crate in a scratch crate and runs
//! the same checker the notebooks call, so both grade alike.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use lab::exercise::{self, Exercise};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Every exercise: id, lesson and title.
    List,
    /// An exercise's task, hint and the file to start from.
    Show { id: String },
    /// Write the exercise's starting file (default `<ID>.rs`); never overwrites a file.
    Start { id: String, file: Option<PathBuf> },
    /// Compile FILE (which defines `fn answer`) and grade it on the checker's test inputs.
    Check { id: String, file: PathBuf },
}

pub fn run(args: &Args) -> Result<()> {
    match &args.action {
        Action::List => {
            list();
            Ok(())
        }
        Action::Show { id } => {
            show(&find(id)?);
            Ok(())
        }
        Action::Start { id, file } => start(&find(id)?, file.as_deref()),
        Action::Check { id, file } => check(&find(id)?, file),
    }
}

fn find(id: &str) -> Result<Exercise> {
    exercise::find(id).map_err(anyhow::Error::msg)
}

fn list() {
    let all = exercise::all();
    let width = all.iter().map(|e| e.id.len()).max().unwrap_or(0);
    let mut lesson = "";
    for e in &all {
        if e.lesson != lesson {
            lesson = e.lesson;
            println!("{lesson}");
        }
        println!("  {:<width$}  {}", e.id, e.title);
    }
    println!(
        "\n{} exercises. `lowrank exercise show ID` for one.",
        all.len()
    );
}

fn show(e: &Exercise) {
    println!("{} ({}): {}\n", e.id, e.lesson, e.title);
    println!("{}\n", e.task);
    println!("hint: {}\n", e.hint);
    println!(
        "Start from this file (`lowrank exercise start {}` writes it):\n",
        e.id
    );
    println!("{}", e.template);
    println!("Grade it: lowrank exercise check {} {}.rs", e.id, e.id);
    println!(
        "In the notebook: write `fn answer`, then run `{}(answer)`.",
        e.checker
    );
}

fn start(e: &Exercise, file: Option<&Path>) -> Result<()> {
    let path = file.map_or_else(|| PathBuf::from(format!("{}.rs", e.id)), Path::to_path_buf);
    if path.exists() {
        bail!(
            "{} exists; not overwriting your work (name another file, or check it with `lowrank exercise check {} {}`)",
            path.display(),
            e.id,
            path.display()
        );
    }
    crate::output::write_atomically(&path, |w| {
        use std::io::Write;
        w.write_all(e.template.as_bytes())?;
        Ok(())
    })?;
    println!(
        "wrote {}; edit `answer`, then: lowrank exercise check {} {}",
        path.display(),
        e.id,
        path.display()
    );
    Ok(())
}

fn check(e: &Exercise, file: &Path) -> Result<()> {
    let answer = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read your answer {}", file.display()))?;
    if !answer.contains("fn answer") {
        bail!(
            "{} defines no `fn answer`; start from `lowrank exercise show {}`",
            file.display(),
            e.id
        );
    }
    let source = source_tree()?;
    let scratch = source.join("target/exercises").join(e.id);
    write_scratch_crate(&source, &scratch, e, &answer)?;
    eprintln!("compiling your answer against the lab crate (the first time takes a while)…");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(scratch.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", source.join("target"))
        .output()
        .context("cannot run cargo (is the Rust toolchain on PATH?)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    match output.status.code() {
        Some(0) => Ok(()),
        Some(1) if stdout.contains('✗') => std::process::exit(1),
        _ => bail!(
            "your answer in {} does not compile or crashed:\n{}",
            file.display(),
            compiler_messages(&String::from_utf8_lossy(&output.stderr))
        ),
    }
}

/// The clone this binary was built from: the checker compiles against its `crates/lab`.
fn source_tree() -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if !root.join("crates/lab/Cargo.toml").is_file() {
        bail!(
            "`exercise check` compiles against the Lowrank source tree this binary was built from ({}), which is gone; run it from a clone with `cargo run -p curriculum -- exercise check …`",
            root.display()
        );
    }
    Ok(root)
}

/// The workspace's crates keep the opt-levels the root Cargo.toml gives them (members default to 0);
/// outside the workspace they would fall under `"*"` and be rebuilt at 3.
const WORKSPACE_OPT_LEVELS: [(&str, u8); 8] = [
    ("lab", 0),
    ("models", 0),
    ("train", 0),
    ("eval", 0),
    ("chat", 0),
    ("viz", 0),
    ("lowrank", 3),
    ("compress", 3),
];

fn write_scratch_crate(source: &Path, scratch: &Path, e: &Exercise, answer: &str) -> Result<()> {
    std::fs::create_dir_all(scratch.join("src"))
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let lab = source.join("crates/lab");
    // The workspace's profile, so the libraries the tests already built are reused, not rebuilt.
    let mut manifest = format!(
        "[package]\nname = \"exercise-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\nlab = {{ path = {:?} }}\n\n\
         [profile.dev.package.\"*\"]\nopt-level = 3\n",
        lab.display().to_string()
    );
    for (package, level) in WORKSPACE_OPT_LEVELS {
        manifest.push_str(&format!(
            "\n[profile.dev.package.{package}]\nopt-level = {level}\n"
        ));
    }
    let main = format!(
        "#![allow(unused_imports, dead_code)]\ninclude!(\"answer.rs\");\n\n\
         fn main() {{\n    let verdict = {}(answer);\n    println!(\"{{verdict}}\");\n    \
         std::process::exit(if verdict.passed() {{ 0 }} else {{ 1 }});\n}}\n",
        e.checker
    );
    let files = [
        (scratch.join("Cargo.toml"), manifest),
        (scratch.join("src/main.rs"), main),
        (scratch.join("src/answer.rs"), answer.to_string()),
    ];
    for (path, text) in files {
        crate::output::write_atomically(&path, |w| {
            use std::io::Write;
            w.write_all(text.as_bytes())?;
            Ok(())
        })?;
    }
    // The workspace's lock file pins the same versions the lab crate was tested with.
    let lock = std::fs::read(source.join("Cargo.lock")).context("cannot read Cargo.lock")?;
    crate::output::write_atomically(&scratch.join("Cargo.lock"), |w| {
        use std::io::Write;
        w.write_all(&lock)?;
        Ok(())
    })
}

/// Cargo's stderr without its progress lines: what the student must read.
fn compiler_messages(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| {
            let trimmed = line.trim_start();
            !(trimmed.starts_with("Compiling")
                || trimmed.starts_with("Finished")
                || trimmed.starts_with("Running")
                || trimmed.starts_with("Blocking"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
