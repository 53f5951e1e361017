//! File helpers of the plugin store.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::PluginError;

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one:
/// a temporary file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PluginError> {
    let io =
        |what: &str, e: std::io::Error| PluginError::Io(format!("{what} {}: {e}", path.display()));
    let dir = path
        .parent()
        .ok_or_else(|| PluginError::Io(format!("{} has no directory", path.display())))?;
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|e| io("creating", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| io("renaming onto", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the directory of", e))
}
