//! Reading line-oriented config files and replacing files atomically.

use std::io::Write;
use std::path::Path;

use crate::FileError;

/// The lines of `text` that are neither blank nor comments, numbered from 1,
/// with surrounding whitespace (including a CR of CRLF endings) removed.
pub(crate) fn significant_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// Replaces `path` with `contents` atomically: a temporary file in the same
/// directory (mode 0600 on Unix) is written, synced and renamed over `path`,
/// so a reader sees either the old or the new file, never half of one.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let mut suffix = [0u8; 6];
    rand::fill(&mut suffix);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}",
        suffix.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(FileError::io(path, e));
    }
    Ok(())
}
