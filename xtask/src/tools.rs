//! Tools that take minutes to build (mdBook, its KaTeX preprocessor, evcxr_jupyter) installed once
//! into the versioned cache, each under `<cache>/tools/<crate>-<version>/`, and reused by every clone.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::cache;

/// The `bin` folder of `krate` at `version`, built with `cargo install --locked` when missing.
///
/// The build goes to a `.partial` folder renamed when complete, so an interrupted build is redone
/// rather than mistaken for a finished one.
pub fn cargo_install(sh: &Shell, krate: &str, version: &str, minutes: u32) -> Result<PathBuf> {
    let root = cache::dir()
        .join("tools")
        .join(format!("{krate}-{version}"));
    let bin = root.join("bin");
    if bin.join(krate).exists() {
        return Ok(bin);
    }
    let partial = root.with_extension("partial");
    eprintln!(
        "installing {krate} {version} into {} (once; about {minutes} min on 2 cores)",
        root.display()
    );
    cmd!(
        sh,
        "cargo install {krate} --version {version} --locked --root {partial}"
    )
    .run()
    .with_context(|| format!("cargo install {krate} {version} failed"))?;
    std::fs::rename(&partial, &root)
        .with_context(|| format!("cannot move {} into place", partial.display()))?;
    Ok(bin)
}

/// The files of an npm package, unpacked once into `<cache>/tools/npm-<name>-<version>/package`.
pub fn npm_package(sh: &Shell, name: &str, version: &str) -> Result<PathBuf> {
    let root = cache::dir()
        .join("tools")
        .join(format!("npm-{name}-{version}"));
    let package = root.join("package");
    if package.exists() {
        return Ok(package);
    }
    let partial = root.with_extension("partial");
    if partial.exists() {
        sh.remove_path(&partial)?;
    }
    sh.create_dir(&partial)?;
    let spec = format!("{name}@{version}");
    let tarball = {
        let _dir = sh.push_dir(&partial);
        cmd!(sh, "npm pack {spec} --silent")
            .read()
            .with_context(|| {
                format!("npm pack {spec} failed: is npm installed and its registry reachable?")
            })?
    };
    let tarball = partial.join(tarball.trim());
    cmd!(sh, "tar -xzf {tarball} -C {partial}").run()?;
    std::fs::rename(&partial, &root)?;
    Ok(package)
}

/// `PATH` with `dirs` in front, for running a tool that looks for its plug-ins on `PATH`.
pub fn path_with(dirs: &[&Path]) -> Result<std::ffi::OsString> {
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    if let Some(path) = std::env::var_os("PATH") {
        all.extend(std::env::split_paths(&path));
    }
    Ok(std::env::join_paths(all)?)
}
