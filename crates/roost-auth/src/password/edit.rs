//! Editing password files in place, for the `roost passwd` command.

use std::path::Path;

use super::{HashKind, PasswordHash};
use crate::FileError;
use crate::file::{check_user_name, replace_user_lines};

/// Sets `user`'s password in the file at `path`, creating the file when it
/// does not exist. Other lines (comments included) are kept in order. The
/// file is replaced atomically and gets mode 0600.
pub fn set_password(
    path: &Path,
    user: &str,
    password: &str,
    kind: HashKind,
) -> Result<(), FileError> {
    check_user_name(path, user)?;
    let hash = PasswordHash::create(password.as_bytes(), kind)
        .map_err(|m| FileError::io(path, std::io::Error::other(m)))?;
    replace_user_lines(path, user, &[format!("{user}:{}", hash.encode())])?;
    Ok(())
}

/// Removes `user` from the file at `path`; returns false when it was not
/// listed (the file is then left as it was).
pub fn delete_user(path: &Path, user: &str) -> Result<bool, FileError> {
    match std::fs::metadata(path) {
        Ok(_) => replace_user_lines(path, user, &[]),
        Err(e) => Err(FileError::io(path, e)),
    }
}
