//! `cargo xtask notebooks`: one source per lesson. Each chapter `book/src/NN-slug.md` becomes
//! `notebooks/NN-slug.ipynb`: prose becomes markdown cells, each ```` ```rust ```` fence a code cell.
//! Notebooks are committed without outputs; a test proves they equal a fresh generation.
//!
//! `<!-- book-only -->` … `<!-- /book-only -->` keeps build-time figures out of the notebook, and the
//! folded `<details>` of solutions becomes a plain "Solutions" heading.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The cell tag naming the check a cell's printed values must pass (`check:NAME`).
pub const CHECK_TAG: &str = "check:";

/// Chapters that are lessons: `NN-slug.md` in book/src.
pub fn chapters(root: &Path) -> Result<Vec<PathBuf>> {
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(root.join("book/src"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "md") && is_lesson(path))
        .collect();
    chapters.sort();
    Ok(chapters)
}

fn is_lesson(path: &Path) -> bool {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    name.len() > 3
        && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
        && name.as_bytes()[2] == b'-'
}

pub fn notebook_path(root: &Path, chapter: &Path) -> PathBuf {
    let stem = chapter
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    root.join("notebooks").join(stem).with_extension("ipynb")
}

/// Writes every notebook (`check == false`) or fails naming those that differ from their chapter.
pub fn run(root: &Path, check: bool) -> Result<()> {
    let mut stale = Vec::new();
    for chapter in chapters(root)? {
        let markdown = std::fs::read_to_string(&chapter)?;
        let notebook = render(&markdown)?;
        let path = notebook_path(root, &chapter);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(notebook.as_str()) {
                stale.push(path.display().to_string());
            }
        } else {
            write_atomically(&path, &notebook)?;
            eprintln!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        bail!(
            "notebooks differ from their chapters (run `cargo xtask notebooks`): {}",
            stale.join(", ")
        );
    }
    Ok(())
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    // The process id keeps two runs at once from renaming each other's half-written file.
    let temp = path.with_extension(format!("ipynb.{}.partial", std::process::id()));
    std::fs::write(&temp, text).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot move into {}", path.display()))?;
    Ok(())
}

enum Cell {
    Markdown(String),
    /// Source and, for a ```` ```rust,check=NAME ```` fence, the check its output must pass.
    Code(String, Option<String>),
}

/// The notebook JSON for one chapter, formatted as Jupyter formats it (indent 1, trailing newline).
pub fn render(markdown: &str) -> Result<String> {
    let cells: Vec<Value> = split(markdown)?
        .into_iter()
        .enumerate()
        .map(|(i, cell)| match cell {
            Cell::Markdown(text) => json!({
                "cell_type": "markdown", "id": format!("cell-{i}"), "metadata": {}, "source": lines(&text)
            }),
            Cell::Code(code, check) => json!({
                "cell_type": "code", "execution_count": null, "id": format!("cell-{i}"),
                "metadata": check.map_or(json!({}), |name| json!({"tags": [format!("{CHECK_TAG}{name}")]})),
                "outputs": [], "source": lines(&code)
            }),
        })
        .collect();
    let notebook = json!({
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Rust (Lowrank)", "language": "rust", "name": "lowrank-rust"},
            "language_info": {"codemirror_mode": "rust", "file_extension": ".rs", "mimetype": "text/rust", "name": "Rust", "pygment_lexer": "rust"}
        },
        "nbformat": 4,
        "nbformat_minor": 5
    });
    let mut text = String::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut serializer = serde_json::Serializer::with_formatter(Vec::new(), formatter);
    serde::Serialize::serialize(&notebook, &mut serializer)?;
    text.push_str(std::str::from_utf8(&serializer.into_inner())?);
    text.push('\n');
    Ok(text)
}

fn split(markdown: &str) -> Result<Vec<Cell>> {
    let mut cells = Vec::new();
    let mut prose = String::new();
    let mut code: Option<String> = None;
    let mut check: Option<String> = None;
    let mut book_only = false;
    for (number, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(body) = code.as_mut() {
            if trimmed == "```" {
                cells.push(Cell::Code(body.trim_end().to_string(), check.take()));
                code = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        match trimmed {
            "<!-- book-only -->" => book_only = true,
            "<!-- /book-only -->" => book_only = false,
            _ if book_only => {}
            "```rust" => {
                flush(&mut prose, &mut cells);
                code = Some(String::new());
            }
            _ if trimmed.starts_with("```rust,check=") => {
                flush(&mut prose, &mut cells);
                code = Some(String::new());
                check = Some(trimmed["```rust,check=".len()..].to_string());
            }
            "<details>" | "</details>" => {}
            "<summary>Solutions</summary>" => prose.push_str("### Solutions\n"),
            _ => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
        if book_only && number + 1 == markdown.lines().count() {
            bail!("a <!-- book-only --> block is never closed");
        }
    }
    if code.is_some() {
        bail!("a ```rust fence is never closed");
    }
    flush(&mut prose, &mut cells);
    Ok(cells)
}

fn flush(prose: &mut String, cells: &mut Vec<Cell>) {
    let text = prose.trim();
    if !text.is_empty() {
        cells.push(Cell::Markdown(text.to_string()));
    }
    prose.clear();
}

/// Jupyter stores a cell's source as lines that keep their newline, except the last.
fn lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if let Some(last) = lines.last_mut()
        && last.ends_with('\n')
    {
        last.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        crate::project_root()
    }

    #[test]
    fn committed_notebooks_equal_a_fresh_generation() {
        run(&root(), true).unwrap();
    }

    #[test]
    fn every_lesson_has_a_chapter_and_a_notebook_of_one_name() {
        let chapters = chapters(&root()).unwrap();
        assert!(!chapters.is_empty());
        let notebooks: Vec<PathBuf> = std::fs::read_dir(root().join("notebooks"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "ipynb"))
            .collect();
        for chapter in &chapters {
            assert!(
                notebooks.contains(&notebook_path(&root(), chapter)),
                "{} has no notebook",
                chapter.display()
            );
        }
        assert_eq!(
            notebooks.len(),
            chapters.len(),
            "a notebook without a chapter: {notebooks:?}"
        );
    }

    #[test]
    fn prose_and_code_become_cells_and_book_only_text_is_dropped() {
        let md = "# T\n\ntext $x$\n\n```rust\nlet a = 1;\n```\n<!-- book-only -->\n![f](f.svg)\n<!-- /book-only -->\n```sh\nls\n```\n";
        let notebook: Value = serde_json::from_str(&render(md).unwrap()).unwrap();
        let cells = notebook["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 3);
        assert_eq!(cells[0]["source"], json!(["# T\n", "\n", "text $x$"]));
        assert_eq!(cells[1]["cell_type"], "code");
        assert_eq!(cells[1]["source"], json!(["let a = 1;"]));
        assert_eq!(cells[2]["source"], json!(["```sh\n", "ls\n", "```"]));
        assert!(render("```rust\nlet a = 1;\n").is_err());
    }

    #[test]
    fn a_check_fence_tags_its_cell() {
        let md = "```rust,check=flops\nprintln!(\"2\");\n```\n```rust\nlet b = 2;\n```\n";
        let notebook: Value = serde_json::from_str(&render(md).unwrap()).unwrap();
        let cells = notebook["cells"].as_array().unwrap();
        assert_eq!(cells[0]["metadata"], json!({"tags": ["check:flops"]}));
        assert_eq!(cells[1]["metadata"], json!({}));
    }
}
