//! Whole files written atomically: a reader (or a crash) sees the old file
//! or the new one, never half of one.

use std::path::Path;

use crate::RecordingError;

/// Writes `bytes` to `path` through `.NAME.PID.partial` beside it: write, fsync,
/// rename over `path`, then fsync the folder so the rename itself survives
/// a power cut.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RecordingError> {
    let io = |source| RecordingError::Io { path: path.to_path_buf(), source };
    let name = path.file_name().ok_or_else(|| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path")))?;
    // The process id keeps two writers of one path off each other's partial file.
    let partial = path.with_file_name(format!(".{}.{}.partial", name.to_string_lossy(), std::process::id()));
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::File::open(&partial)?.sync_all()).and_then(|()| std::fs::rename(&partial, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(io(e));
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Not every file system lets a folder be synced; the data is safe either way.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_file;

    #[test]
    fn a_file_is_replaced_whole_and_no_partial_file_stays_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.yaml");
        write_file(&path, b"first").unwrap();
        write_file(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("metadata.yaml")]);
        // A rename that fails (a folder stands at the path) leaves no partial file.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(blocked.join("")).unwrap();
        std::fs::write(blocked.join("inside"), b"keep").unwrap();
        assert!(write_file(&blocked, b"x").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".partial")).collect();
        assert!(names.is_empty(), "partial files left behind: {names:?}");
        let missing = dir.path().join("no_such_folder").join("x.png");
        let err = write_file(&missing, b"x").unwrap_err().to_string();
        assert!(err.contains("no_such_folder"), "the error names the path: {err}");
    }
}
