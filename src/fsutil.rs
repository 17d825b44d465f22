//! Durable whole-file writes: every file dbbench writes for a reader (results.json,
//! reports, interval logs, the ground-truth cache) goes through `write_atomic`, so that a
//! reader, or the next run after a crash or power loss, sees the old content or the new,
//! never a torn or empty file.
//!
//! It must never leave its temporary file behind, and never write anywhere but the
//! target's own folder (a rename is atomic only within one file system).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Write `bytes` to `path` atomically and durably: write a temporary file in the same
/// folder, fsync it, rename it over `path`, then fsync the folder so that the rename
/// itself survives a crash. Errors name the path that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = temp_path(dir, path);
    if let Err(e) = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)))
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// A name no other writer uses: hidden, beside the target, unique per process and call.
fn temp_path(dir: &Path, path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)))
}

fn write_synced(tmp: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(tmp).map_err(|e| Error::io(tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(tmp, e))?;
    file.sync_all().map_err(|e| Error::io(tmp, e))
}

/// Make a rename in `dir` durable. Only Unix can open a folder to fsync it; elsewhere
/// the rename is atomic but its durability is the file system's business.
fn sync_dir(dir: &Path) -> Result<()> {
    if cfg!(unix) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn writes_the_content_and_replaces_an_old_file_leaving_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer than the first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer than the first");
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_folder_that_cannot_be_written_is_an_error_naming_the_path() {
        // A regular file where the folder should be: unwritable even for root, which
        // permission bits would not stop.
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("plain-file");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let path = not_a_dir.join("report.md");
        let err = write_atomic(&path, b"content").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        let shown = format!("{err}");
        assert!(shown.contains(&not_a_dir.display().to_string()), "error does not name the path: {shown}");
        assert_eq!(std::fs::read(&not_a_dir).unwrap(), b"x");
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_missing_folder_is_an_error_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("results.json");
        assert!(write_atomic(&path, b"content").is_err());
        assert!(!dir.path().join("absent").exists());
    }

    #[test]
    fn a_failed_rename_removes_the_temp_file() {
        // The target is a non-empty folder: rename over it fails after the temp file
        // was written and synced.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("hlog");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"k").unwrap();
        let err = write_atomic(&target, b"content").unwrap_err();
        assert!(format!("{err}").contains(&target.display().to_string()), "{err}");
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
        assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"k");
    }
}
