//! Helpers for the parity tests: run an independent reference (numpy, scipy, scikit-learn,
//! scikit-image, tensorly) on the same data as Lowrank and compare.
//!
//! Each reference is a committed script under `tests/reference/` run by the Python of the reference
//! venv that `cargo xtask venv` (or `cargo xtask test`) makes. Inputs and array outputs travel as `.npy`
//! files in a temporary folder; scalar results come back as JSON on the script's stdout.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array, ArrayView, Dimension};
use ndarray_npy::{ReadableElement, WritableElement};

/// The Python interpreter of the reference venv.
///
/// `LOWRANK_PYTHON` wins (xtask sets it); otherwise the venv that `cargo xtask venv` made in the cache.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("LOWRANK_PYTHON") {
        return PathBuf::from(python);
    }
    let python = cache_dir()
        .join(format!("venv-{}", requirements_hash()))
        .join("bin/python");
    assert!(
        python.exists(),
        "the reference venv is missing ({}): run `cargo xtask venv` once, or the whole suite with `cargo xtask test`",
        python.display()
    );
    python
}

/// Where Lowrank caches tools and venvs: `$LOWRANK_CACHE`, else `$XDG_CACHE_HOME/lowrank`, else `~/.cache/lowrank`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOWRANK_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("lowrank")
}

/// FNV-1a of the requirements file: the venv's version, so an edit makes a fresh venv.
/// The same function lives in xtask, which depends on no workspace crate.
fn requirements_hash() -> String {
    let text = include_str!("../reference/requirements.txt");
    let hash = text.bytes().fold(0xcbf29ce484222325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{:08x}", hash >> 32)
}

/// Runs `tests/reference/<script>` with `args` and parses the JSON it prints.
pub fn reference<I, S>(script: &str, args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reference")
        .join(script);
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start the reference python for {script}: {e}"));
    assert!(
        output.status.success(),
        "reference {script} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "reference {script} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Writes `array` to `dir/name.npy` and returns the path.
pub fn save<T: WritableElement, D: Dimension>(
    dir: &Path,
    name: &str,
    array: &ArrayView<T, D>,
) -> PathBuf {
    let path = dir.join(format!("{name}.npy"));
    ndarray_npy::write_npy(&path, array)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Reads an array a reference script wrote.
pub fn load<T: ReadableElement, D: Dimension>(path: &Path) -> Array<T, D> {
    ndarray_npy::read_npy(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A JSON number of a reference result, by key.
pub fn number(value: &serde_json::Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("reference result has no number {key:?}: {value}"))
}

/// Asserts `max |actual − expected| <= tolerance · scale`, naming the worst index on failure.
///
/// `scale` is the size the error is relative to (e.g. the largest singular value or `‖A‖_F`), so a
/// relative tolerance means the same on every matrix.
pub fn assert_close<D: Dimension>(
    what: &str,
    actual: &ArrayView<f64, D>,
    expected: &ArrayView<f64, D>,
    tolerance: f64,
    scale: f64,
) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shapes differ");
    let (worst_index, worst) = actual
        .indexed_iter()
        .zip(expected.iter())
        .map(|((index, a), e)| (format!("{index:?}"), (a - e).abs()))
        .fold((String::new(), 0.0_f64), |acc, (i, d)| {
            if d > acc.1 || d.is_nan() { (i, d) } else { acc }
        });
    assert!(
        worst <= tolerance * scale,
        "{what}: max |difference| {worst:e} at {worst_index} exceeds {tolerance:e} x {scale:e}"
    );
}
