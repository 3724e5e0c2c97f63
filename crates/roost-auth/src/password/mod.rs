//! Mosquitto-compatible password files: `user:hash` lines, an
//! [`Authenticator`] over them, and the edits behind `roost passwd`.

mod edit;
mod hash;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use roost_hooks::{AuthResult, Authenticator, BoxFuture, ConnectRequest, Grant, ReasonCode};
use serde::Deserialize;

pub use edit::{delete_user, set_password};
pub use hash::{DEFAULT_PBKDF2_ITERATIONS, DEFAULT_SALT_LEN, HashKind, PasswordHash};

use crate::FileError;
use crate::file::{read_for_reload, significant_lines};

/// What to answer for a user name the file does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownUser {
    /// CONNACK 0x86 Bad User Name or Password (the default).
    #[default]
    Refuse,
    /// Let the next authenticator in the chain decide.
    Ignore,
}

/// `[auth.password_file]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordFileConfig {
    /// The password file (Mosquitto format).
    pub path: PathBuf,
    /// `"refuse"` (default) or `"ignore"` for user names not in the file.
    #[serde(default)]
    pub unknown_user: UnknownUser,
}

/// A loaded password file; reloadable while in use.
///
/// As an [`Authenticator`]: a client without a user name is ignored (the
/// broker's anonymous policy decides); a listed user with the right password
/// is accepted; a listed user with a wrong or missing password is refused
/// with 0x86; an unlisted user is refused with 0x86 or ignored, per
/// [`UnknownUser`].
pub struct PasswordFile {
    path: PathBuf,
    entries: ArcSwap<HashMap<String, PasswordHash>>,
    unknown_user: UnknownUser,
    /// Held by `reload` from read to store, so two reloads at once cannot
    /// leave the older file's contents in force.
    reloading: Mutex<()>,
    /// Expensive checks (argon2id, PBKDF2 above 10,000 iterations) running
    /// at once are bounded: each holds a blocking thread and, for argon2id,
    /// its memory cost, and anyone can start one by naming a user.
    expensive: Arc<ExpensiveChecks>,
}

/// The bound on concurrent expensive checks, and the most seen at once.
#[derive(Debug)]
struct ExpensiveChecks {
    permits: tokio::sync::Semaphore,
    limit: usize,
    running: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl ExpensiveChecks {
    fn new() -> Arc<Self> {
        // More checks than cores at once only queue for the CPU while
        // holding their memory.
        let limit = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Self {
            permits: tokio::sync::Semaphore::new(limit),
            limit,
            running: std::sync::atomic::AtomicUsize::new(0),
            peak: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Runs `hash.verify(password)` on a blocking thread once a permit is free.
    async fn verify(self: &Arc<Self>, hash: PasswordHash, password: Vec<u8>) -> bool {
        use std::sync::atomic::Ordering;
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
            this.peak.fetch_max(now, Ordering::SeqCst);
            let ok = hash.verify(&password);
            this.running.fetch_sub(1, Ordering::SeqCst);
            ok
        })
        .await
        .unwrap_or(false)
    }
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("path", &self.path)
            .field("users", &self.entries.load().len())
            .field("unknown_user", &self.unknown_user)
            .finish()
    }
}

impl PasswordFile {
    /// Loads `path`; unknown users are refused.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let path = path.as_ref().to_path_buf();
        let entries = parse_file(&path)?;
        Ok(Self::with_entries(path, entries))
    }

    /// Builds a password file from its text (for embedding, tests and
    /// fuzzing); errors name `origin`. `reload` re-reads the path `origin`.
    pub fn from_text(origin: &str, text: &str) -> Result<Self, FileError> {
        let path = PathBuf::from(origin);
        let entries = parse_text(&path, text)?;
        Ok(Self::with_entries(path, entries))
    }

    /// A password file of `entries` read from `path`; unknown users are refused.
    fn with_entries(path: PathBuf, entries: HashMap<String, PasswordHash>) -> Self {
        Self {
            path,
            entries: ArcSwap::from_pointee(entries),
            unknown_user: UnknownUser::Refuse,
            reloading: Mutex::new(()),
            expensive: ExpensiveChecks::new(),
        }
    }

    /// The user names listed, in no particular order.
    pub fn users(&self) -> Vec<String> {
        self.entries.load().keys().cloned().collect()
    }

    /// The stored hash of `user`, if listed.
    pub fn hash_of(&self, user: &str) -> Option<PasswordHash> {
        self.entries.load().get(user).cloned()
    }

    /// Loads the file a config names.
    pub fn from_config(config: &PasswordFileConfig) -> Result<Self, FileError> {
        Ok(Self::load(&config.path)?.with_unknown_user(config.unknown_user))
    }

    /// Sets the policy for unlisted users.
    pub fn with_unknown_user(mut self, policy: UnknownUser) -> Self {
        self.unknown_user = policy;
        self
    }

    /// Re-reads the file. On error (including a zero-byte file, which is
    /// what a file being rewritten in place looks like) the previous entries
    /// stay in force and the error is returned for logging.
    pub fn reload(&self) -> Result<(), FileError> {
        let _one_at_a_time = self.reloading.lock();
        let text = read_for_reload(&self.path)?;
        let entries = parse_text(&self.path, &text)?;
        self.entries.store(Arc::new(entries));
        Ok(())
    }

    /// How many expensive checks (argon2id, PBKDF2 above 10,000
    /// iterations) may run at once: the number of CPUs.
    pub fn expensive_check_limit(&self) -> usize {
        self.expensive.limit
    }

    /// The most expensive checks that have run at once so far.
    pub fn expensive_check_peak(&self) -> usize {
        self.expensive
            .peak
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The file this was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.entries.load().len()
    }

    /// True when the file lists no user.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `user` is listed and `password` matches its hash.
    /// Unknown users cost a check too (against another entry), so the time
    /// taken does not tell whether `user` is listed.
    pub fn check(&self, user: &str, password: &[u8]) -> bool {
        let entries = self.entries.load();
        match entries.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                let decoy = entries.values().next().unwrap_or_else(|| &*DUMMY_HASH);
                let _ = decoy.verify(password);
                false
            }
        }
    }

    async fn decide(&self, user: &str, password: Option<&[u8]>) -> AuthResult {
        let entries = self.entries.load_full();
        let listed = entries.get(user).cloned();
        if listed.is_none() && self.unknown_user == UnknownUser::Ignore {
            return AuthResult::Ignore;
        }
        // Every answer costs one real check against a hash of the file (the
        // user's own, or another entry's for an unknown user), even without
        // a password: the time taken tells neither whether the user exists
        // nor whether a password was sent.
        let hash = listed
            .clone()
            .or_else(|| entries.values().next().cloned())
            .unwrap_or_else(|| DUMMY_HASH.clone());
        let given = password.unwrap_or_default();
        let matched = if hash.is_expensive() && tokio::runtime::Handle::try_current().is_ok() {
            self.expensive.verify(hash, given.to_vec()).await
        } else {
            hash.verify(given)
        };
        match (listed, password) {
            (Some(_), Some(_)) if matched => AuthResult::Accept(Grant::default()),
            (None, _) => {
                tracing::debug!(user, "password file: unknown user refused");
                AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
            }
            (Some(_), None) => {
                tracing::debug!(user, "password file: no password given");
                AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
            }
            (Some(_), Some(_)) => {
                tracing::debug!(user, "password file: wrong password");
                AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
            }
        }
    }
}

static DUMMY_HASH: LazyLock<PasswordHash> = LazyLock::new(|| {
    PasswordHash::pbkdf2(b"", vec![0; DEFAULT_SALT_LEN], DEFAULT_PBKDF2_ITERATIONS)
});

impl Authenticator for PasswordFile {
    fn name(&self) -> &str {
        "password_file"
    }

    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        Box::pin(async move {
            match request.client.username.as_deref() {
                None => AuthResult::Ignore,
                Some(user) => self.decide(user, request.password).await,
            }
        })
    }
}

/// Parses the text of a password file; errors name `path` and the line.
pub(crate) fn parse_text(
    path: &Path,
    text: &str,
) -> Result<HashMap<String, PasswordHash>, FileError> {
    let mut entries = HashMap::new();
    for (line_no, line) in significant_lines(text) {
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| FileError::parse(path, line_no, "expected user:hash"))?;
        if user.is_empty() {
            return Err(FileError::parse(path, line_no, "empty user name"));
        }
        let hash = PasswordHash::parse(hash).map_err(|m| FileError::parse(path, line_no, m))?;
        if entries.insert(user.to_owned(), hash).is_some() {
            return Err(FileError::parse(
                path,
                line_no,
                format!("user {user:?} is listed twice"),
            ));
        }
    }
    Ok(entries)
}

fn parse_file(path: &Path) -> Result<HashMap<String, PasswordHash>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::io(path, e))?;
    parse_text(path, &text)
}
