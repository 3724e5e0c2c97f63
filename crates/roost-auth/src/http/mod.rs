//! HTTP authentication and authorization against an external service
//! (EMQX style): the broker POSTs (or GETs) templated fields and the answer
//! says allow, deny or ignore.
//!
//! [`HttpAuthorizer`] has two faces:
//! * [`Authorizer::authorize_async`] → [`HttpAuthorizer::check_async`]:
//!   asks the server (or the cache) and caches the answer. The broker awaits
//!   it on the client's own connection task, so a slow service delays only
//!   that client.
//! * [`Authorizer::authorize`] (synchronous, for callers that cannot wait):
//!   answers from the cache; on a miss it starts a background
//!   [`HttpAuthorizer::prefetch`] and answers per `cache_miss` (`ignore` by
//!   default, or `deny`).

mod endpoint;
mod template;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use roost_hooks::{
    AclResult, Action, AuthResult, Authenticator, Authorizer, BoxFuture, ClientInfo,
    ConnectRequest, Grant, ReasonCode,
};
use serde::Deserialize;

use crate::cache::TtlCache;
use crate::{ConfigError, Secret};
use endpoint::{Endpoint, EndpointSettings, Rendered, Verdict};
use template::Vars;

/// The HTTP method used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpMethod {
    /// Parameters in the body (default).
    #[default]
    Post,
    /// Parameters in the query string.
    Get,
}

/// How POST parameters are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// A JSON object of strings (default).
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// What the synchronous authorizer answers on a cache miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMiss {
    /// `Ignore`: the rest of the chain / default policy decides (default).
    #[default]
    Ignore,
    /// `Deny` until the answer is cached.
    Deny,
}

fn default_timeout_ms() -> u64 {
    5000
}
fn default_ttl() -> u64 {
    60
}
fn default_max_entries() -> usize {
    10_000
}

/// `[auth.http]` settings (authentication).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAuthConfig {
    /// The service URL (http or https).
    pub url: String,
    /// `"post"` (default) or `"get"`.
    #[serde(default)]
    pub method: HttpMethod,
    /// `"json"` (default) or `"form"` for POST bodies.
    #[serde(default)]
    pub body: BodyFormat,
    /// Parameter name → template; default `clientid`, `username`,
    /// `password`, `peerhost` from `${clientid}`... Placeholders:
    /// `${clientid}`, `${username}`, `${password}`, `${peerhost}`,
    /// `${peerport}`, `${proto_ver}`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Extra request headers (values are secrets: redacted in `Debug`).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Request timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long answers are cached, seconds (default 60; 0 = no cache).
    #[serde(default = "default_ttl")]
    pub cache_ttl_secs: u64,
    /// Most cached answers (default 10000).
    #[serde(default = "default_max_entries")]
    pub cache_max_entries: usize,
    /// PEM CA certificates to trust instead of the system roots (https).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[auth.http_acl]` settings (authorization).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAclConfig {
    /// The service URL (http or https).
    pub url: String,
    /// `"post"` (default) or `"get"`.
    #[serde(default)]
    pub method: HttpMethod,
    /// `"json"` (default) or `"form"` for POST bodies.
    #[serde(default)]
    pub body: BodyFormat,
    /// Parameter name → template; default `clientid`, `username`,
    /// `peerhost`, `topic`, `action`. Placeholders: those of
    /// authentication except `${password}`, plus `${topic}`, `${action}`
    /// (`publish`/`subscribe`), `${qos}`, `${retain}`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Extra request headers (values are secrets: redacted in `Debug`).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Request timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long answers are cached, seconds (default 60; 0 = no cache, so
    /// the synchronous path always misses).
    #[serde(default = "default_ttl")]
    pub cache_ttl_secs: u64,
    /// Most cached answers (default 10000).
    #[serde(default = "default_max_entries")]
    pub cache_max_entries: usize,
    /// `"ignore"` (default) or `"deny"`: the synchronous answer on a cache miss.
    #[serde(default)]
    pub cache_miss: CacheMiss,
    /// PEM CA certificates to trust instead of the system roots (https).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn params_or(params: &BTreeMap<String, String>, defaults: &[&str]) -> Vec<(String, String)> {
    if params.is_empty() {
        defaults
            .iter()
            .map(|n| ((*n).to_owned(), format!("${{{n}}}")))
            .collect()
    } else {
        params.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

fn headers_of(headers: &BTreeMap<String, Secret>) -> Vec<(String, Secret)> {
    headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Authenticates CONNECTs with an HTTP service.
///
/// allow → `Accept` (with `is_superuser`, `expire_at`); deny → `Refuse(0x86)`;
/// ignore → `Ignore`; unreachable, timeout or 5xx → `Refuse(0x88 Server
/// unavailable)` and a warning (fail closed; failures are not cached).
pub struct HttpAuthenticator {
    endpoint: Endpoint,
    cache: TtlCache<[u8; 32], Verdict>,
}

impl fmt::Debug for HttpAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAuthenticator")
            .field("endpoint", &self.endpoint)
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl HttpAuthenticator {
    /// Builds the authenticator.
    pub fn from_config(config: &HttpAuthConfig) -> Result<Self, ConfigError> {
        let params = params_or(
            &config.params,
            &["clientid", "username", "password", "peerhost"],
        );
        let headers = headers_of(&config.headers);
        let endpoint = Endpoint::new(EndpointSettings {
            url: &config.url,
            method: config.method,
            body: config.body,
            params: &params,
            headers: &headers,
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            ca_file: config.ca_file.as_deref(),
            authz: false,
        })?;
        Ok(Self {
            endpoint,
            cache: TtlCache::new(
                Duration::from_secs(config.cache_ttl_secs),
                config.cache_max_entries,
            ),
        })
    }

    /// Forgets cached answers (e.g. after a configuration reload).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    async fn decide(&self, request: &ConnectRequest<'_>) -> AuthResult {
        let vars = Vars {
            client: request.client,
            password: request.password,
            action: None,
        };
        let rendered = self.endpoint.render(&vars);
        let key = rendered.digest();
        let verdict = match self.cache.get(&key) {
            Some(v) => v,
            None => match self.endpoint.call(&rendered).await {
                Ok(v) => {
                    self.cache.insert(key, v);
                    v
                }
                Err(why) => {
                    tracing::warn!(
                        url = %self.endpoint.url(),
                        client_id = %request.client.client_id,
                        error = %why,
                        "http authentication service unavailable; refusing the client (0x88)"
                    );
                    return AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE);
                }
            },
        };
        match verdict {
            Verdict::Allow {
                superuser,
                expires_at,
            } => {
                let mut grant = Grant::default();
                grant.superuser = superuser;
                grant.expires_at = expires_at;
                AuthResult::Accept(grant)
            }
            Verdict::Deny => AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            Verdict::Ignore => AuthResult::Ignore,
        }
    }
}

impl Authenticator for HttpAuthenticator {
    fn name(&self) -> &str {
        "http"
    }

    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        Box::pin(self.decide(request))
    }
}

/// Most background prefetches running at once.
const MAX_IN_FLIGHT: usize = 1024;

struct AuthzInner {
    endpoint: Endpoint,
    cache: TtlCache<String, AclResult>,
    in_flight: Mutex<HashSet<String>>,
    cache_miss: CacheMiss,
}

/// Authorizes with an HTTP service; see the module docs for the sync/async
/// split. allow/deny/ignore map to `AclResult`; an unreachable service
/// gives `Deny` (not cached) and a warning. Cheap to clone (shared state).
#[derive(Clone)]
pub struct HttpAuthorizer {
    inner: Arc<AuthzInner>,
}

impl fmt::Debug for HttpAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAuthorizer")
            .field("endpoint", &self.inner.endpoint)
            .field("cached", &self.inner.cache.len())
            .field("cache_miss", &self.inner.cache_miss)
            .finish()
    }
}

impl HttpAuthorizer {
    /// Builds the authorizer.
    pub fn from_config(config: &HttpAclConfig) -> Result<Self, ConfigError> {
        let params = params_or(
            &config.params,
            &["clientid", "username", "peerhost", "topic", "action"],
        );
        if params.iter().any(|(_, v)| v.contains("${password}")) {
            return Err(ConfigError::invalid(
                "http acl: ${password} is not available for authorization",
            ));
        }
        let headers = headers_of(&config.headers);
        let endpoint = Endpoint::new(EndpointSettings {
            url: &config.url,
            method: config.method,
            body: config.body,
            params: &params,
            headers: &headers,
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            ca_file: config.ca_file.as_deref(),
            authz: true,
        })?;
        Ok(Self {
            inner: Arc::new(AuthzInner {
                endpoint,
                cache: TtlCache::new(
                    Duration::from_secs(config.cache_ttl_secs),
                    config.cache_max_entries,
                ),
                in_flight: Mutex::new(HashSet::new()),
                cache_miss: config.cache_miss,
            }),
        })
    }

    /// The cached answer, if any.
    pub fn cached(&self, client: &ClientInfo, action: Action, topic: &str) -> Option<AclResult> {
        let (key, _) = self.inner.request(client, action, topic);
        self.inner.cache.get(&key)
    }

    /// Asks the service (unless cached) and caches the answer. Unreachable
    /// service → `Deny` (not cached).
    pub async fn check_async(&self, client: &ClientInfo, action: Action, topic: &str) -> AclResult {
        let (key, rendered) = self.inner.request(client, action, topic);
        if let Some(r) = self.inner.cache.get(&key) {
            return r;
        }
        self.inner
            .fetch(key, &rendered, client, action, topic)
            .await
    }

    /// Starts a background [`Self::check_async`] on the current tokio
    /// runtime (if any) unless the answer is cached or already being fetched.
    pub fn prefetch(&self, client: &ClientInfo, action: Action, topic: &str) {
        let (key, rendered) = self.inner.request(client, action, topic);
        if self.inner.cache.get(&key).is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut in_flight = self.inner.in_flight.lock();
            if in_flight.len() >= MAX_IN_FLIGHT || !in_flight.insert(key.clone()) {
                return;
            }
        }
        let inner = Arc::clone(&self.inner);
        let client = client.clone();
        let topic = topic.to_owned();
        runtime.spawn(async move {
            inner
                .fetch(key.clone(), &rendered, &client, action, &topic)
                .await;
            inner.in_flight.lock().remove(&key);
        });
    }

    /// Forgets cached answers.
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
    }
}

impl AuthzInner {
    /// The request the service would get, and its cache key. The key is made
    /// of exactly the rendered values, so two checks share an answer only
    /// when the service could not tell them apart (whatever the templates
    /// use: `${proto_ver}`, `${peerport}`...).
    fn request(&self, client: &ClientInfo, action: Action, topic: &str) -> (String, Rendered) {
        let vars = Vars {
            client,
            password: None,
            action: Some((action, topic)),
        };
        let rendered = self.endpoint.render(&vars);
        (rendered.key(), rendered)
    }

    async fn fetch(
        &self,
        key: String,
        rendered: &Rendered,
        client: &ClientInfo,
        action: Action,
        topic: &str,
    ) -> AclResult {
        match self.endpoint.call(rendered).await {
            Ok(v) => {
                let r = match v {
                    Verdict::Allow { .. } => AclResult::Allow,
                    Verdict::Deny => AclResult::Deny,
                    Verdict::Ignore => AclResult::Ignore,
                };
                self.cache.insert(key, r);
                r
            }
            Err(why) => {
                let action = match action {
                    Action::Publish { .. } => "publish",
                    Action::Subscribe { .. } => "subscribe",
                };
                tracing::warn!(
                    url = %self.endpoint.url(),
                    client_id = %client.client_id,
                    action,
                    topic,
                    error = %why,
                    "http authorization service unavailable; denying (fail closed)"
                );
                AclResult::Deny
            }
        }
    }
}

impl Authorizer for HttpAuthorizer {
    fn name(&self) -> &str {
        "http_acl"
    }

    fn authorize(&self, client: &ClientInfo, action: Action, topic: &str) -> AclResult {
        if let Some(r) = self.cached(client, action, topic) {
            return r;
        }
        self.prefetch(client, action, topic);
        match self.inner.cache_miss {
            CacheMiss::Ignore => AclResult::Ignore,
            CacheMiss::Deny => AclResult::Deny,
        }
    }

    /// The broker awaits this one: the cached answer, or the service's.
    fn authorize_async<'a>(
        &'a self,
        client: &'a ClientInfo,
        action: Action,
        topic: &'a str,
    ) -> Option<BoxFuture<'a, AclResult>> {
        Some(Box::pin(self.check_async(client, action, topic)))
    }
}

/// `Debug` for the HTTP configs: the URL without credentials or query, and
/// parameter and header names only (templates may hold static secrets).
macro_rules! redacted_debug {
    ($t:ty) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("url", &crate::http_client::loggable_url(&self.url))
                    .field("method", &self.method)
                    .field("body", &self.body)
                    .field("params", &self.params.keys().collect::<Vec<_>>())
                    .field("headers", &self.headers.keys().collect::<Vec<_>>())
                    .field("timeout_ms", &self.timeout_ms)
                    .field("cache_ttl_secs", &self.cache_ttl_secs)
                    .finish_non_exhaustive()
            }
        }
    };
}
redacted_debug!(HttpAuthConfig);
redacted_debug!(HttpAclConfig);
