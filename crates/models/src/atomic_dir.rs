//! Writing a whole folder so that readers see the old folder or the new one, never half of one:
//! model checkpoints, compressed models and trained models all publish this way.

use std::path::{Path, PathBuf};

/// Fills a temporary sibling of `dir` with `fill`, then renames it to `dir`. An older folder at
/// `dir` is moved aside first and put back if the rename fails, so a failed write loses nothing;
/// it is deleted only once the new folder is in place. `io_error(action, path, error)` turns a
/// filesystem error into the caller's error type, naming what was being done to which path.
pub fn write_dir_atomically<E>(
    dir: &Path,
    temp_prefix: &str,
    fill: impl FnOnce(&Path) -> Result<(), E>,
    io_error: impl Fn(&'static str, &Path, std::io::Error) -> E,
) -> Result<(), E> {
    let Some(name) = dir.file_name() else {
        let error = std::io::Error::other("the path names no directory");
        return Err(io_error("write", dir, error));
    };
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
    let temp = tempfile::Builder::new()
        .prefix(temp_prefix)
        .tempdir_in(parent)
        .map_err(|e| io_error("create a temp directory in", parent, e))?;
    fill(temp.path())?;
    let target = parent.join(name);
    let old = {
        let mut old = temp.path().as_os_str().to_owned();
        old.push(".old");
        PathBuf::from(old)
    };
    let had_old = target.exists();
    if had_old {
        std::fs::rename(&target, &old).map_err(|e| io_error("move aside", &target, e))?;
    }
    if let Err(e) = std::fs::rename(temp.path(), &target) {
        if had_old {
            let _ = std::fs::rename(&old, &target);
        }
        return Err(io_error("move the new folder into", &target, e));
    }
    // The folder now lives at `target`; the guard must not delete it.
    let _ = temp.keep();
    if had_old {
        std::fs::remove_dir_all(&old).map_err(|e| io_error("remove the old folder", &old, e))?;
    }
    Ok(())
}
