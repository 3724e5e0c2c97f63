//! Verification keys: a shared secret, a PEM public key, or a JWKS document
//! fetched over HTTP(S) and cached.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;

use crate::http_client;

/// The largest JWKS document read (real ones hold a few keys: a few KiB).
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One usable key of a JWKS document.
#[derive(Clone)]
pub(crate) struct JwkKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Option<Algorithm>,
    pub(crate) key: DecodingKey,
}

impl JwkKey {
    /// True when this key may verify a token signed with `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|a| a == alg)
    }
}

#[derive(Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<JwkKey>,
    fetched_at: Option<Instant>,
}

impl KeySet {
    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// A JWKS endpoint and the keys last fetched from it.
pub(crate) struct JwksCache {
    url: String,
    client: reqwest::Client,
    refresh_every: Duration,
    min_refetch: Duration,
    /// Keys older than this (since their fetch) are no longer used; `None`
    /// = kept until a fetch succeeds.
    max_stale: Option<Duration>,
    keys: ArcSwap<KeySet>,
    fetching: tokio::sync::Mutex<()>,
    last_attempt: Mutex<Option<Instant>>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &http_client::loggable_url(&self.url))
            .field("keys", &self.keys.load().keys.len())
            .finish_non_exhaustive()
    }
}

/// The JWKS endpoint could not provide any key.
#[derive(Debug)]
pub(crate) struct Unavailable;

impl JwksCache {
    pub(crate) fn new(
        url: String,
        client: reqwest::Client,
        refresh_every: Duration,
        min_refetch: Duration,
        max_stale: Option<Duration>,
    ) -> Self {
        Self {
            url,
            client,
            refresh_every,
            min_refetch,
            max_stale,
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetching: tokio::sync::Mutex::new(()),
            last_attempt: Mutex::new(None),
        }
    }

    /// How often the document is refetched.
    pub(crate) fn refresh_every(&self) -> Duration {
        self.refresh_every
    }

    /// The keys to try for a token: refreshed first when the set is older
    /// than the refresh interval or does not know `kid` (at most once per
    /// `min_refetch`, so random `kid`s cannot hammer the endpoint).
    pub(crate) async fn keys(&self, kid: Option<&str>) -> Result<Arc<KeySet>, Unavailable> {
        let current = self.keys.load_full();
        let stale = current
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.refresh_every);
        let unknown_kid = kid.is_some_and(|k| !current.has_kid(k));
        if stale || unknown_kid {
            self.refresh(false).await;
        }
        let keys = self.keys.load_full();
        match keys.fetched_at {
            None => Err(Unavailable),
            Some(t) if self.max_stale.is_some_and(|max| t.elapsed() > max) => {
                tracing::warn!(url = %http_client::loggable_url(&self.url), "jwks: keys older than max_stale_secs and no fetch succeeds; refusing tokens");
                Err(Unavailable)
            }
            Some(_) => Ok(keys),
        }
    }

    /// Fetches the document now (rate-limited unless `force`). On failure the
    /// previous keys stay in use (up to `max_stale` after their fetch) and a
    /// warning is logged.
    pub(crate) async fn refresh(&self, force: bool) -> bool {
        let _guard = self.fetching.lock().await;
        {
            let mut last = self.last_attempt.lock();
            if !force && last.is_some_and(|t| t.elapsed() < self.min_refetch) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(url = %http_client::loggable_url(&self.url), keys = keys.len(), "jwks: fetched");
                self.keys.store(Arc::new(KeySet {
                    keys,
                    fetched_at: Some(Instant::now()),
                }));
                true
            }
            Err(why) => {
                tracing::warn!(url = %http_client::loggable_url(&self.url), error = %why, "jwks: fetch failed; keeping the previous keys");
                false
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<JwkKey>, String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP status {status}"));
        }
        let bytes = http_client::read_limited(response, MAX_JWKS_BYTES).await?;
        let body: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("not a JSON document: {e}"))?;
        let list = body
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or("no \"keys\" array")?;
        Ok(list.iter().filter_map(usable_key).collect())
    }
}

/// A JWK we can verify with, skipping encryption keys, symmetric keys (a JWKS publishes
/// public keys; accepting `oct` keys would invite algorithm confusion) and
/// anything jsonwebtoken does not support.
fn usable_key(value: &serde_json::Value) -> Option<JwkKey> {
    if value.get("kty").and_then(serde_json::Value::as_str) == Some("oct") {
        return None;
    }
    // A key published for encryption (`"use": "enc"`) or without `verify`
    // among its `key_ops` is not the issuer's signing key.
    if value.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    if let Some(ops) = value.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !verify {
            return None;
        }
    }
    let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let alg = match jwk.common.key_algorithm {
        Some(a) => Some(Algorithm::try_from(a).ok()?),
        None => None,
    };
    Some(JwkKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}
