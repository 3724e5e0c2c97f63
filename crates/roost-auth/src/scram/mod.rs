//! SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) as an MQTT 5.0
//! enhanced authentication method, without channel binding.
//!
//! ```text
//!  CONNECT  Authentication Method = SCRAM-SHA-256
//!           Authentication Data   = n,,n=user,r=<cnonce>            client-first
//!  AUTH 0x18                        r=<cnonce><snonce>,s=<salt>,i=<n> server-first
//!  AUTH 0x18                        c=biws,r=<nonce>,p=<proof>        client-final
//!  CONNACK 0x00 (or AUTH 0x00)      v=<server signature>              server-final
//! ```
//!
//! The server stores only salt, iteration count, StoredKey and ServerKey.
//! An unknown user gets a believable server-first message (a salt derived
//! from a per-process secret and the user name) and fails at the end, like a
//! wrong password, so the exchange does not reveal which users exist.
//! User names and passwords are used as UTF-8 bytes without SASLprep.

mod credentials;
mod crypto;
mod exchange;
mod messages;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use roost_hooks::{AuthExchange, ClientInfo, EnhancedAuthenticator};
use serde::Deserialize;

pub use credentials::{
    DEFAULT_SCRAM_ITERATIONS, ScramCredentials, delete_scram_user, set_scram_password,
};
pub use crypto::Mechanism;

use crate::FileError;
use credentials::CredentialMap;

fn default_unknown_iterations() -> u32 {
    DEFAULT_SCRAM_ITERATIONS
}

/// `[auth.scram]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScramConfig {
    /// The credentials file (`user:<mechanism>:<iterations>:<salt>:<StoredKey>:<ServerKey>`).
    pub credentials_file: PathBuf,
    /// Iteration count announced to unknown users; set it to what real
    /// entries use so the two cannot be told apart (default 4096).
    #[serde(default = "default_unknown_iterations")]
    pub unknown_user_iterations: u32,
}

pub(crate) struct Inner {
    path: Option<PathBuf>,
    credentials: ArcSwap<CredentialMap>,
    fake_key: [u8; 32],
    unknown_iterations: u32,
    /// Held by `reload` from read to store, so two reloads at once cannot
    /// leave the older file's credentials in force.
    reloading: parking_lot::Mutex<()>,
}

/// The SCRAM enhanced authenticator. Each [`EnhancedAuthenticator::begin`]
/// starts an independent exchange, so re-authentication is a new exchange.
#[derive(Clone)]
pub struct ScramAuthenticator {
    inner: Arc<Inner>,
}

impl fmt::Debug for ScramAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramAuthenticator")
            .field("path", &self.inner.path)
            .field("entries", &self.inner.credentials.load().len())
            .finish_non_exhaustive()
    }
}

impl Default for ScramAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl ScramAuthenticator {
    /// An authenticator with no users (add them with [`Self::insert`]).
    pub fn new() -> Self {
        Self::with_map(None, CredentialMap::new(), DEFAULT_SCRAM_ITERATIONS)
    }

    fn with_map(path: Option<PathBuf>, map: CredentialMap, unknown_iterations: u32) -> Self {
        let mut fake_key = [0u8; 32];
        rand::fill(&mut fake_key);
        Self {
            inner: Arc::new(Inner {
                path,
                credentials: ArcSwap::from_pointee(map),
                fake_key,
                unknown_iterations: unknown_iterations.max(1),
                reloading: parking_lot::Mutex::new(()),
            }),
        }
    }

    /// Loads a credentials file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let path = path.as_ref().to_path_buf();
        let map = parse_file(&path)?;
        Ok(Self::with_map(Some(path), map, DEFAULT_SCRAM_ITERATIONS))
    }

    /// Builds the authenticator from credentials-file text (for embedding,
    /// tests and fuzzing); errors name `origin`, which is not re-read.
    pub fn from_text(origin: &str, text: &str) -> Result<Self, FileError> {
        let map = credentials::parse_text(Path::new(origin), text)?;
        Ok(Self::with_map(None, map, DEFAULT_SCRAM_ITERATIONS))
    }

    /// Loads the file a config names.
    pub fn from_config(config: &ScramConfig) -> Result<Self, FileError> {
        let map = parse_file(&config.credentials_file)?;
        Ok(Self::with_map(
            Some(config.credentials_file.clone()),
            map,
            config.unknown_user_iterations,
        ))
    }

    /// Re-reads the credentials file (a no-op without one). On error the
    /// previous credentials stay in force and the error is returned.
    /// A zero-byte file (a file being rewritten in place) is an error too.
    pub fn reload(&self) -> Result<(), FileError> {
        if let Some(path) = &self.inner.path {
            let _one_at_a_time = self.inner.reloading.lock();
            let text = crate::file::read_for_reload(path)?;
            let map = credentials::parse_text(path, &text)?;
            self.inner.credentials.store(Arc::new(map));
        }
        Ok(())
    }

    /// Adds or replaces the credentials of `user` for their mechanism (e.g.
    /// built at startup with [`ScramCredentials::derive`]). A later
    /// [`Self::reload`] replaces the whole set with the file's contents.
    pub fn insert(&self, user: &str, credentials: ScramCredentials) {
        self.inner.credentials.rcu(|map| {
            let mut map = CredentialMap::clone(map);
            map.insert(
                (user.to_owned(), credentials.mechanism()),
                credentials.clone(),
            );
            map
        });
    }

    /// Every (user, credentials) entry, in no particular order.
    pub fn entries(&self) -> Vec<(String, ScramCredentials)> {
        self.inner
            .credentials
            .load()
            .iter()
            .map(|((user, _), c)| (user.clone(), c.clone()))
            .collect()
    }

    /// Number of (user, mechanism) entries.
    pub fn len(&self) -> usize {
        self.inner.credentials.load().len()
    }

    /// True when no credentials are loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl EnhancedAuthenticator for ScramAuthenticator {
    fn begin(&self, method: &str, _client: &ClientInfo) -> Option<Box<dyn AuthExchange>> {
        let mechanism = Mechanism::from_name(method)?;
        Some(Box::new(exchange::ScramExchange::new(
            Arc::clone(&self.inner),
            mechanism,
        )))
    }
}

fn parse_file(path: &Path) -> Result<CredentialMap, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::io(path, e))?;
    credentials::parse_text(path, &text)
}
