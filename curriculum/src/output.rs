//! Files the CLI writes: always through a temp file in the target folder, renamed into place, so an
//! interrupted run never leaves a half-written file where a good one was.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes a file atomically: `write` fills a temp file beside `path`, which then replaces `path`.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        let mut writer = std::io::BufWriter::new(temp.as_file_mut());
        write(&mut writer)?;
        writer.flush()?;
    }
    temp.persist(path)
        .with_context(|| format!("cannot move the output into {}", path.display()))?;
    Ok(())
}
