//! Stored SCRAM credentials and the credentials file.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};

use super::Mechanism;
use crate::FileError;
use crate::file::{check_user_name, replace_user_lines, significant_lines};

/// Iterations used by [`ScramCredentials::generate`] (RFC 7677's minimum).
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;

/// What the server stores for one user and mechanism: salt, iteration count,
/// StoredKey and ServerKey (never the password). `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    mechanism: Mechanism,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives the stored keys from a password (RFC 5802 §3):
    /// SaltedPassword = Hi(password, salt, i), StoredKey = H(HMAC(SaltedPassword,
    /// "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key").
    pub fn derive(mechanism: Mechanism, password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let salted = mechanism.salted_password(password, salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        Self {
            mechanism,
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(&salted, b"Server Key"),
        }
    }

    /// Derives credentials with a fresh random 16-byte salt.
    pub fn generate(mechanism: Mechanism, password: &[u8], iterations: u32) -> Self {
        let mut salt = [0u8; 16];
        rand::fill(&mut salt);
        Self::derive(mechanism, password, &salt, iterations)
    }

    /// Credentials from their stored parts; the keys must be as long as the
    /// mechanism's hash output and the iteration count positive.
    pub fn from_parts(
        mechanism: Mechanism,
        salt: Vec<u8>,
        iterations: u32,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    ) -> Result<Self, String> {
        let len = mechanism.output_len();
        if stored_key.len() != len || server_key.len() != len {
            return Err(format!("{} keys must be {len} bytes", mechanism.name()));
        }
        if iterations == 0 {
            return Err("the iteration count must be positive".into());
        }
        if salt.is_empty() {
            return Err("the salt must not be empty".into());
        }
        Ok(Self {
            mechanism,
            salt,
            iterations,
            stored_key,
            server_key,
        })
    }

    /// The mechanism these keys are for.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    pub(crate) fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }

    pub(crate) fn server_key(&self) -> &[u8] {
        &self.server_key
    }

    /// The credentials-file line for `user`:
    /// `user:<mechanism>:<iterations>:<salt>:<StoredKey>:<ServerKey>` (base64).
    pub fn to_line(&self, user: &str) -> String {
        format!(
            "{user}:{}:{}:{}:{}:{}",
            self.mechanism.name(),
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }
}

/// Credentials by (user, mechanism).
pub(crate) type CredentialMap = HashMap<(String, Mechanism), ScramCredentials>;

/// Parses a credentials file's text; errors name `path` and the line.
pub(crate) fn parse_text(path: &Path, text: &str) -> Result<CredentialMap, FileError> {
    let mut map = CredentialMap::new();
    for (line_no, line) in significant_lines(text) {
        let err = |m: String| FileError::parse(path, line_no, m);
        let fields: Vec<&str> = line.split(':').collect();
        let [user, mech, iterations, salt, stored, server] = fields[..] else {
            return Err(err(
                "expected user:<mechanism>:<iterations>:<salt>:<StoredKey>:<ServerKey>".into(),
            ));
        };
        if user.is_empty() {
            return Err(err("empty user name".into()));
        }
        let mechanism = Mechanism::from_name(mech).ok_or_else(|| {
            err(format!(
                "unknown mechanism {mech:?} (expected SCRAM-SHA-256 or SCRAM-SHA-512)"
            ))
        })?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| err("the iteration count must be a positive integer".into()))?;
        let b64 = |what: &str, v: &str| {
            STANDARD_PAD_INDIFFERENT
                .decode(v)
                .map_err(|_| err(format!("the {what} is not valid base64")))
        };
        let creds = ScramCredentials::from_parts(
            mechanism,
            b64("salt", salt)?,
            iterations,
            b64("StoredKey", stored)?,
            b64("ServerKey", server)?,
        )
        .map_err(err)?;
        if map.insert((user.to_owned(), mechanism), creds).is_some() {
            return Err(err(format!(
                "user {user:?} has two {} lines",
                mechanism.name()
            )));
        }
    }
    Ok(map)
}

/// Sets `user`'s SCRAM credentials for both mechanisms in the credentials
/// file at `path` (created when missing), derived from `password` with fresh
/// salts. The file is replaced atomically and gets mode 0600.
pub fn set_scram_password(
    path: &Path,
    user: &str,
    password: &str,
    iterations: u32,
) -> Result<(), FileError> {
    check_user_name(path, user)?;
    let lines: Vec<String> = Mechanism::ALL
        .iter()
        .map(|&m| {
            ScramCredentials::generate(m, password.as_bytes(), iterations.max(1)).to_line(user)
        })
        .collect();
    replace_user_lines(path, user, &lines)?;
    Ok(())
}

/// Removes `user` from the credentials file; returns false when it was not listed.
pub fn delete_scram_user(path: &Path, user: &str) -> Result<bool, FileError> {
    match std::fs::metadata(path) {
        Ok(_) => replace_user_lines(path, user, &[]),
        Err(e) => Err(FileError::io(path, e)),
    }
}
