//! The admin file (`<data_dir>/admin.json`): API keys and dashboard users,
//! stored hashed. `roost ctl api-key create` / `admin create` edit it
//! locally; the running server re-reads it when its modification time
//! changes, so no restart is needed.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use roost_auth::password::{HashKind, PasswordHash};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file's contents.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// API keys (HTTP basic auth `key:secret`).
    #[serde(default)]
    pub api_keys: Vec<ApiKeyRecord>,
    /// Dashboard users (login → token).
    #[serde(default)]
    pub users: Vec<UserRecord>,
}

/// One API key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRecord {
    /// The public part (`rk_` + 16 hex digits), sent as the basic-auth user.
    pub key: String,
    /// A label for people.
    #[serde(default)]
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: String,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: u64,
}

/// One dashboard user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// Login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: u64,
}

/// A failure reading or writing the admin file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (with line and column).
        message: String,
    },
    /// A bad argument (user name, password).
    #[error("{0}")]
    Argument(String),
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// SHA-256 of `secret`, hex. API-key secrets are 256 random bits, so a
/// fast hash is enough: nobody can guess such a secret, hashed slowly or
/// not, and a stolen file gives no dictionary to try. Argon2 is for
/// passwords people choose (the dashboard users), whose search space is
/// small; it would cost ~20 ms of CPU on every API request here.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl AdminFile {
    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| StoreError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Writes to `path` atomically (temporary file, fsync, rename; mode 0600),
    /// creating its directory when missing.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        text.push('\n');
        roost_auth::write_atomically(path, text.as_bytes()).map_err(|e| StoreError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Adds a new API key; returns `(key, secret)` (the secret is not kept).
    pub fn add_api_key(&mut self, name: &str) -> (String, String) {
        let mut key = [0u8; 8];
        rand::fill(&mut key);
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let key = format!("rk_{}", hex::encode(key));
        let secret = hex::encode(secret);
        self.api_keys.push(ApiKeyRecord {
            key: key.clone(),
            name: name.to_string(),
            secret_sha256: hash_secret(&secret),
            created_at: now_s(),
        });
        (key, secret)
    }

    /// Removes an API key; false when unknown.
    pub fn remove_api_key(&mut self, key: &str) -> bool {
        let before = self.api_keys.len();
        self.api_keys.retain(|k| k.key != key);
        before != self.api_keys.len()
    }

    /// Creates or replaces dashboard user `username` (argon2id hash).
    pub fn set_user(&mut self, username: &str, password: &str) -> Result<(), StoreError> {
        check_username(username)?;
        if password.len() < 8 {
            return Err(StoreError::Argument(
                "the password must have at least 8 characters".into(),
            ));
        }
        let hash = PasswordHash::create(password.as_bytes(), HashKind::Argon2id)
            .map_err(StoreError::Argument)?
            .encode();
        self.users.retain(|u| u.username != username);
        self.users.push(UserRecord {
            username: username.to_string(),
            password_hash: hash,
            created_at: now_s(),
        });
        Ok(())
    }
}

/// 1 to 64 printable characters, no `:` (basic auth's separator) or spaces.
pub fn check_username(username: &str) -> Result<(), StoreError> {
    if username.is_empty()
        || username.len() > 64
        || username
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == ':')
    {
        return Err(StoreError::Argument(
            "a user name has 1 to 64 characters, no spaces, control characters or `:`".into(),
        ));
    }
    Ok(())
}

/// Makes an argon2id hash for `[http] admin_password_hash`.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    PasswordHash::create(password.as_bytes(), HashKind::Argon2id)
        .map(|h| h.encode())
        .map_err(StoreError::Argument)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_file_loads_back_and_keeps_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/admin.json");
        let mut file = AdminFile::default();
        let (key, secret) = file.add_api_key("ci");
        file.set_user("alice", "correct horse").unwrap();
        file.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&secret));
        assert!(!text.contains("correct horse"));
        let back = AdminFile::load(&path).unwrap();
        assert_eq!(back, file);
        assert_eq!(back.api_keys[0].key, key);
        assert_eq!(back.api_keys[0].secret_sha256, hash_secret(&secret));
        assert!(back.users[0].password_hash.starts_with("$argon2id$"));
    }

    #[test]
    fn short_passwords_and_bad_names_are_refused() {
        let mut file = AdminFile::default();
        assert!(file.set_user("bob", "short").is_err());
        assert!(file.set_user("a:b", "long enough").is_err());
        assert!(file.set_user("", "long enough").is_err());
    }
}
