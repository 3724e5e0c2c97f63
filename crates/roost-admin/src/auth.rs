//! Who may call the API: API keys (HTTP basic `key:secret`), dashboard
//! users (argon2 passwords → short-lived bearer tokens kept in memory), and
//! the per-peer limit on failed logins. The admin file is re-read when its
//! modification time changes, so `roost ctl admin create` and
//! `api-key create` take effect without a restart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use parking_lot::Mutex;
use roost_auth::password::PasswordHash;
use subtle::ConstantTimeEq;

use crate::store::{AdminFile, hash_secret};

/// Live tokens kept at most: a login beyond it evicts the one closest to
/// expiry (tokens are per login; a bound keeps a login loop from growing
/// memory).
const MAX_TOKENS: usize = 10_000;
/// Peers whose failed logins are tracked at most; when full, windows that
/// ended are purged, and if none ended the oldest is dropped.
const MAX_TRACKED_PEERS: usize = 10_000;

/// The `Authorization` scheme of a request forwarded by another node.
pub(crate) const NODE_SCHEME: &str = "RoostNode ";

/// The principal a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An API key (its public part).
    ApiKey(String),
    /// A dashboard user, through a login token.
    User(String),
    /// Another node of the cluster forwarding a request it authenticated
    /// (the cluster's node credential, `peers.rs`): answered by this node
    /// alone, never forwarded again.
    Node,
}

/// Settings from `[http]`.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The admin file.
    pub admin_file: PathBuf,
    /// Lifetime of a login token.
    pub token_ttl: Duration,
    /// Failed logins allowed per peer within `login_window`.
    pub login_max_failures: u32,
    /// Rate-limit window.
    pub login_window: Duration,
    /// A user from the config: `(name, argon2 hash)`.
    pub config_user: Option<(String, String)>,
}

/// The file as last read, with the modification time it had.
#[derive(Debug, Default)]
struct Cached {
    modified: Option<SystemTime>,
    file: AdminFile,
}

/// The outcome of a login.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A token and its lifetime.
    Token(String, Duration),
    /// Wrong user or password.
    BadCredentials,
    /// Too many failures from this peer; retry after the duration.
    TooManyAttempts(Duration),
}

/// Authentication state of one HTTP server.
#[derive(Debug)]
pub struct Auth {
    settings: AuthSettings,
    cached: Mutex<Cached>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Cluster mode: the credential the nodes' APIs give each other
    /// (`peers.rs`), once read from Redis.
    node_secret: Mutex<Option<String>>,
}

impl Auth {
    /// Reads the admin file (a broken file is logged and treated as empty
    /// until it is fixed: nobody gets in, nobody is locked out for good).
    pub fn new(settings: AuthSettings) -> Self {
        let auth = Self {
            settings,
            cached: Mutex::new(Cached::default()),
            tokens: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            node_secret: Mutex::new(None),
        };
        auth.refresh();
        auth
    }

    /// Whether anyone can log in or call the API at all (for the startup hint).
    pub fn has_credentials(&self) -> bool {
        self.refresh();
        let cached = self.cached.lock();
        self.settings.config_user.is_some()
            || !cached.file.users.is_empty()
            || !cached.file.api_keys.is_empty()
    }

    /// Re-reads the admin file if its modification time changed: one
    /// `stat` per authenticated request.
    fn refresh(&self) {
        let path = &self.settings.admin_file;
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut cached = self.cached.lock();
        if cached.modified == modified && modified.is_some() {
            return;
        }
        match AdminFile::load(path) {
            Ok(file) => {
                if modified.is_some() && cached.modified.is_some() {
                    tracing::info!(file = %path.display(), "admin file reloaded");
                }
                cached.file = file;
                cached.modified = modified;
            }
            Err(e) => {
                tracing::error!(
                    "admin file: {e}; no API key or dashboard user is accepted until it is fixed"
                );
                cached.file = AdminFile::default();
                cached.modified = modified;
            }
        }
    }

    /// Checks an `Authorization` header value.
    pub fn check_header(&self, header: &str) -> Option<Principal> {
        if let Some(basic) = header.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic.trim())
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (key, secret) = decoded.split_once(':')?;
            return self.check_api_key(key, secret);
        }
        if let Some(token) = header.strip_prefix("Bearer ") {
            return self.check_token(token.trim());
        }
        if let Some(secret) = header.strip_prefix(NODE_SCHEME) {
            let known = self.node_secret.lock();
            let known = known.as_deref()?;
            return bool::from(secret.trim().as_bytes().ct_eq(known.as_bytes()))
                .then_some(Principal::Node);
        }
        None
    }

    /// Cluster mode: accepts `RoostNode <secret>` from the other nodes.
    pub(crate) fn set_node_secret(&self, secret: &str) {
        *self.node_secret.lock() = Some(secret.to_string());
    }

    /// The node credential, once known.
    pub(crate) fn node_secret(&self) -> Option<String> {
        self.node_secret.lock().clone()
    }

    /// `key:secret` of an API key.
    pub fn check_api_key(&self, key: &str, secret: &str) -> Option<Principal> {
        self.refresh();
        let cached = self.cached.lock();
        let record = cached.file.api_keys.iter().find(|k| k.key == key)?;
        let given = hash_secret(secret);
        bool::from(given.as_bytes().ct_eq(record.secret_sha256.as_bytes()))
            .then(|| Principal::ApiKey(key.to_string()))
    }

    fn check_token(&self, token: &str) -> Option<Principal> {
        let mut tokens = self.tokens.lock();
        let (user, expires) = tokens.get(token)?;
        if *expires <= Instant::now() {
            tokens.remove(token);
            return None;
        }
        Some(Principal::User(user.clone()))
    }

    /// The argon2 hash of `username`: the config's user first, then the file's.
    fn hash_of(&self, username: &str) -> Option<String> {
        if let Some((user, hash)) = &self.settings.config_user
            && user == username
        {
            return Some(hash.clone());
        }
        self.refresh();
        let cached = self.cached.lock();
        cached
            .file
            .users
            .iter()
            .find(|u| u.username == username)
            .map(|u| u.password_hash.clone())
    }

    /// How long `peer` must still wait, when it has used up its failures.
    fn blocked_for(&self, peer: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock();
        let (start, count) = failures.get(&peer)?;
        let end = *start + self.settings.login_window;
        (*count >= self.settings.login_max_failures && end > now).then(|| end - now)
    }

    fn record_failure(&self, peer: IpAddr, now: Instant) {
        let window = self.settings.login_window;
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED_PEERS && !failures.contains_key(&peer) {
            failures.retain(|_, (start, _)| *start + window > now);
            if failures.len() >= MAX_TRACKED_PEERS
                && let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, (s, _))| *s)
                    .map(|(k, _)| *k)
            {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(peer).or_insert((now, 0));
        if entry.0 + window <= now {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// A login: checks the rate limit, then the password (argon2, on a
    /// blocking thread), and hands out a token.
    pub async fn login(&self, peer: IpAddr, username: &str, password: &str) -> LoginOutcome {
        let now = Instant::now();
        if let Some(wait) = self.blocked_for(peer, now) {
            tracing::warn!(%peer, username, "login refused: too many failed attempts");
            return LoginOutcome::TooManyAttempts(wait);
        }
        let hash = self.hash_of(username);
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => PasswordHash::parse(&hash).is_ok_and(|h| h.verify(password.as_bytes())),
            None => {
                // The same work for an unknown user, so timing does not tell
                // which user names exist.
                let _ = crate::store::hash_password(&password);
                false
            }
        })
        .await
        .unwrap_or(false);
        if !ok {
            self.record_failure(peer, Instant::now());
            tracing::warn!(%peer, username, "login failed");
            return LoginOutcome::BadCredentials;
        }
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let ttl = self.settings.token_ttl;
        let mut tokens = self.tokens.lock();
        if tokens.len() >= MAX_TOKENS {
            let now = Instant::now();
            tokens.retain(|_, (_, expires)| *expires > now);
            if tokens.len() >= MAX_TOKENS
                && let Some(first) = tokens
                    .iter()
                    .min_by_key(|(_, (_, e))| *e)
                    .map(|(k, _)| k.clone())
            {
                tokens.remove(&first);
            }
        }
        tokens.insert(token.clone(), (username.to_string(), Instant::now() + ttl));
        tracing::info!(%peer, username, "login");
        LoginOutcome::Token(token, ttl)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path) -> AuthSettings {
        AuthSettings {
            admin_file: dir.join("admin.json"),
            token_ttl: Duration::from_secs(60),
            login_max_failures: 2,
            login_window: Duration::from_secs(60),
            config_user: None,
        }
    }

    #[test]
    fn a_key_created_after_start_is_accepted_and_a_wrong_secret_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::new(settings(dir.path()));
        assert!(!auth.has_credentials());
        let mut file = AdminFile::default();
        let (key, secret) = file.add_api_key("t");
        file.save(&dir.path().join("admin.json")).unwrap();
        assert_eq!(
            auth.check_api_key(&key, &secret),
            Some(Principal::ApiKey(key.clone()))
        );
        assert_eq!(auth.check_api_key(&key, "nope"), None);
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
        );
        assert!(auth.check_header(&header).is_some());
    }

    #[tokio::test]
    async fn failed_logins_are_rate_limited_per_peer() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = AdminFile::default();
        file.set_user("admin", "long password").unwrap();
        file.save(&dir.path().join("admin.json")).unwrap();
        let auth = Auth::new(settings(dir.path()));
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(matches!(
            auth.login(peer, "admin", "wrong").await,
            LoginOutcome::BadCredentials
        ));
        assert!(matches!(
            auth.login(peer, "admin", "wrong").await,
            LoginOutcome::BadCredentials
        ));
        assert!(matches!(
            auth.login(peer, "admin", "long password").await,
            LoginOutcome::TooManyAttempts(_)
        ));
        let LoginOutcome::Token(token, _) = auth.login(other, "admin", "long password").await
        else {
            panic!("the other peer is not limited");
        };
        assert_eq!(
            auth.check_header(&format!("Bearer {token}")),
            Some(Principal::User("admin".into()))
        );
        assert_eq!(auth.check_header("Bearer forged"), None);
    }
}
