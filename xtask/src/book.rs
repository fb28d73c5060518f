//! `cargo xtask book`: the mdBook with math rendered at build time and figures the library draws.
//!
//! mdBook and mdbook-katex are pinned and cached (see `tools`); KaTeX's stylesheet and fonts come
//! from the npm registry and are copied beside the pages, so the built site needs no network.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::tools;

const MDBOOK: &str = "0.5.3";
const MDBOOK_KATEX: &str = "0.10.0";
/// The KaTeX whose stylesheet matches the HTML mdbook-katex 0.10 renders.
const KATEX: &str = "0.16.4";

pub fn build(sh: &Shell) -> Result<()> {
    let mdbook = tools::cargo_install(sh, "mdbook", MDBOOK, 3)?;
    let katex_bin = tools::cargo_install(sh, "mdbook-katex", MDBOOK_KATEX, 4)?;
    let katex = tools::npm_package(sh, "katex", KATEX)?;
    copy_katex_assets(sh, &katex.join("dist"))?;
    // The dev profile, as the tests build it: dependencies are opt-level 3 there, and a release
    // build would compile the whole model stack a second time for a few seconds of drawing.
    cmd!(
        sh,
        "cargo run --quiet -p lab --example book_figures -- book/src/generated"
    )
    .run()?;
    let path = tools::path_with(&[&mdbook, &katex_bin])?;
    cmd!(sh, "mdbook build book").env("PATH", &path).run()?;
    let site = sh.current_dir().join("target/book");
    check_links(&site)?;
    eprintln!("book: {}", site.join("index.html").display());
    Ok(())
}

fn copy_katex_assets(sh: &Shell, dist: &Path) -> Result<()> {
    let target = Path::new("book/src/katex");
    sh.create_dir(target.join("fonts"))?;
    sh.copy_file(dist.join("katex.min.css"), target)?;
    for font in std::fs::read_dir(dist.join("fonts"))? {
        let font = font?.path();
        if font.extension().is_some_and(|e| e == "woff2") {
            sh.copy_file(&font, target.join("fonts"))?;
        }
    }
    Ok(())
}

/// Every relative `href`/`src` in the built pages must name a file of the site.
pub fn check_links(site: &Path) -> Result<()> {
    let mut broken = Vec::new();
    let mut pages = 0;
    for page in html_files(site)? {
        pages += 1;
        let html = std::fs::read_to_string(&page)?;
        for link in links(&html) {
            let target = link.split(['#', '?']).next().unwrap_or("");
            if target.is_empty()
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.starts_with("data:")
                || target.starts_with("javascript:")
            {
                continue;
            }
            let resolved = page.parent().unwrap_or(site).join(target);
            if !resolved.exists() {
                broken.push(format!(
                    "{} -> {link}",
                    page.strip_prefix(site).unwrap_or(&page).display()
                ));
            }
        }
    }
    if pages == 0 {
        bail!("no pages in {}", site.display());
    }
    if !broken.is_empty() {
        bail!("{} broken links:\n  {}", broken.len(), broken.join("\n  "));
    }
    eprintln!("links: {pages} pages, none broken");
    Ok(())
}

fn html_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(html_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "html") {
            files.push(path);
        }
    }
    Ok(files)
}

/// The values of `href="…"` and `src="…"` attributes.
fn links(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            if let Some(end) = rest.find('"') {
                found.push(&rest[..end]);
                rest = &rest[end..];
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_and_broken_ones_reported() {
        let site = std::env::temp_dir().join(format!("xtask-links-{}", std::process::id()));
        std::fs::create_dir_all(site.join("sub")).unwrap();
        std::fs::write(
            site.join("index.html"),
            r#"<a href="sub/a.html#x">a</a><img src="https://e.org/i.png">"#,
        )
        .unwrap();
        std::fs::write(
            site.join("sub/a.html"),
            r#"<a href="../index.html">home</a>"#,
        )
        .unwrap();
        check_links(&site).unwrap();
        std::fs::write(site.join("sub/b.html"), r#"<a href="missing.html">x</a>"#).unwrap();
        let error = check_links(&site).unwrap_err().to_string();
        assert!(error.contains("sub/b.html -> missing.html"), "{error}");
        std::fs::remove_dir_all(&site).unwrap();
    }
}
