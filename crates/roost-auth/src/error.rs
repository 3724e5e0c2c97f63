//! Errors of loading files and building authenticators from config.

use std::path::{Path, PathBuf};

/// A file could not be read or one of its lines is wrong. The message names
/// the file and, for a parse error, the line (`path:line: what`).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never contains a secret).
        message: String,
    },
}

impl FileError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A parse error at `line` of `path`.
    pub(crate) fn parse(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Self::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// A configuration cannot be turned into a working authenticator or authorizer.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A referenced file is missing or malformed.
    #[error(transparent)]
    File(#[from] FileError),
    /// A setting is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// An invalid setting.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}
