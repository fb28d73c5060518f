//! The versioned cache outside the clone where slow installs live, reused by every clone and by CI.

use std::path::PathBuf;

/// `$LOWRANK_CACHE`, else `$XDG_CACHE_HOME/lowrank`, else `~/.cache/lowrank`.
/// The tests crate resolves the same folder the same way.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOWRANK_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("lowrank")
}

/// FNV-1a of a file's text, as a short version tag: editing the file makes a new cache entry.
pub fn version_of(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf29ce484222325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{:08x}", hash >> 32)
}
