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

/// Reads `path` for a `reload()`. A zero-byte file is refused: it is what a
/// reader sees between the truncation and the write of a file rewritten in
/// place (`cat > file`, some editors), and taking it would drop every entry.
/// A file meant to list nothing can hold a comment line.
pub(crate) fn read_for_reload(path: &Path) -> Result<String, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::io(path, e))?;
    if text.is_empty() {
        return Err(FileError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file is empty (being rewritten?); the previous contents stay in force \
                 (a file meant to list nothing can hold a comment line)",
            ),
        ));
    }
    Ok(text)
}

/// Replaces `path` with `contents` atomically: a temporary file in the same
/// directory (mode 0600 on Unix) is written, synced and renamed over `path`,
/// so a reader sees either the old or the new file, never half of one.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), FileError> {
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
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
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

/// Replaces every line of `path` that belongs to `user` (its text before the
/// first `:` is `user`) with `new_lines`, placed where the first old line was
/// (or appended). `new_lines` empty = delete. Comments and other lines are
/// kept in order. Creates the file when missing. Returns whether `user` had
/// lines before. The write is atomic and the file gets mode 0600.
pub(crate) fn replace_user_lines(
    path: &Path,
    user: &str,
    new_lines: &[String],
) -> Result<bool, FileError> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(FileError::io(path, e)),
    };
    let mut out: Vec<&str> = Vec::new();
    let mut found = false;
    for line in old.lines() {
        if line_user(line) == Some(user) {
            if !found {
                out.extend(new_lines.iter().map(String::as_str));
            }
            found = true;
        } else {
            out.push(line);
        }
    }
    if !found {
        out.extend(new_lines.iter().map(String::as_str));
    }
    let mut text = out.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    write_atomically(path, text.as_bytes())?;
    Ok(found)
}

/// The user a `user:...` line belongs to; `None` for blanks and comments.
fn line_user(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    trimmed.split_once(':').map(|(u, _)| u)
}

/// Checks a user name that is about to be written into a `user:...` file.
pub(crate) fn check_user_name(path: &Path, user: &str) -> Result<(), FileError> {
    if user.is_empty()
        || user.contains([':', '\n', '\r'])
        || user.trim() != user
        || user.starts_with('#')
    {
        return Err(FileError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a user name must be non-empty, without ':', line breaks or surrounding spaces, and must not start with '#'",
            ),
        ));
    }
    Ok(())
}
