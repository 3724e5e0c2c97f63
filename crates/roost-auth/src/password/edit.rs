//! Editing password files in place, for the `roost passwd` command.

use std::path::Path;

use super::{HashKind, PasswordHash};
use crate::FileError;
use crate::file::write_atomically;

/// Sets `user`'s password in the file at `path`, creating the file when it
/// does not exist. Other lines (comments included) are kept in order. The
/// file is replaced atomically and gets mode 0600.
pub fn set_password(path: &Path, user: &str, password: &str, kind: HashKind) -> Result<(), FileError> {
    check_user_name(path, user)?;
    let hash = PasswordHash::create(password.as_bytes(), kind)
        .map_err(|m| FileError::io(path, std::io::Error::other(m)))?;
    let new_line = format!("{user}:{}", hash.encode());
    let mut lines = existing_lines(path)?;
    let mut replaced = false;
    for line in &mut lines {
        if line_user(line) == Some(user) {
            *line = new_line.clone();
            replaced = true;
        }
    }
    if !replaced {
        lines.push(new_line);
    }
    write_lines(path, &lines)
}

/// Removes `user` from the file at `path`; returns false when it was not listed.
pub fn delete_user(path: &Path, user: &str) -> Result<bool, FileError> {
    let mut lines = existing_lines(path)?;
    let before = lines.len();
    lines.retain(|l| line_user(l) != Some(user));
    if lines.len() == before {
        return Ok(false);
    }
    write_lines(path, &lines)?;
    Ok(true)
}

fn check_user_name(path: &Path, user: &str) -> Result<(), FileError> {
    if user.is_empty() || user.contains([':', '\n', '\r']) || user.starts_with('#') {
        return Err(FileError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a user name must be non-empty, must not contain ':' or a line break and must not start with '#'",
            ),
        ));
    }
    Ok(())
}

fn line_user(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    trimmed.split_once(':').map(|(u, _)| u)
}

fn existing_lines(path: &Path) -> Result<Vec<String>, FileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FileError::io(path, e)),
    }
}

fn write_lines(path: &Path, lines: &[String]) -> Result<(), FileError> {
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    write_atomically(path, text.as_bytes())
}
