//! JSON Web Tokens as MQTT credentials: HS256/384/512 with a shared secret,
//! RS*/PS*/ES*/EdDSA with a PEM public key, or keys from a JWKS URL.

mod claims;
mod keys;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use roost_hooks::{AuthResult, Authenticator, BoxFuture, ConnectRequest, ReasonCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{ConfigError, Secret, http_client};
use claims::{ClaimMapping, claim_as_string, grant_from_claims};
use keys::JwksCache;

/// Which CONNECT field carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenField {
    /// The password (default).
    #[default]
    Password,
    /// The user name.
    Username,
}

/// What to answer when the field does not look like a JWT at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotAJwt {
    /// CONNACK 0x86 (default).
    #[default]
    Refuse,
    /// Let the next authenticator decide (e.g. a password file for the same clients).
    Ignore,
}

fn default_refresh() -> u64 {
    300
}
fn default_min_refetch() -> u64 {
    10
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_max_stale() -> u64 {
    3600
}
/// Largest clock skew accepted for `exp`/`nbf` (a day): more is a
/// misconfiguration that would make expiry meaningless.
const MAX_LEEWAY_SECS: u64 = 86_400;
fn default_leeway() -> u64 {
    30
}
fn default_true() -> bool {
    true
}
fn default_acl_claim() -> Option<String> {
    Some("acl".to_owned())
}

/// `[auth.jwt.jwks]`: where to fetch verification keys.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// The JWKS URL (http or https).
    pub url: String,
    /// Refetch the document when it is older than this (seconds, default 300).
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// Least time between two fetches, including those caused by an unknown
    /// `kid` (seconds, default 10).
    #[serde(default = "default_min_refetch")]
    pub min_refetch_secs: u64,
    /// Request timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// PEM file of CA certificates to trust instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long keys stay usable when refetching fails (seconds since the
    /// last successful fetch, default 3600; 0 = forever). Past it, tokens
    /// are refused with 0x88 until a fetch succeeds: a key the issuer has
    /// withdrawn cannot be kept alive by blocking the broker's fetches.
    #[serde(default = "default_max_stale")]
    pub max_stale_secs: u64,
}

impl fmt::Debug for JwksConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksConfig")
            .field("url", &http_client::loggable_url(&self.url))
            .field("refresh_secs", &self.refresh_secs)
            .field("min_refetch_secs", &self.min_refetch_secs)
            .field("timeout_ms", &self.timeout_ms)
            .field("ca_file", &self.ca_file)
            .field("max_stale_secs", &self.max_stale_secs)
            .finish()
    }
}

/// `[auth.jwt]` settings. Exactly one of `secret`, `secret_file`,
/// `public_key_file` and `jwks` must be set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// `"password"` (default) or `"username"`.
    #[serde(default)]
    pub from: TokenField,
    /// HMAC secret (HS256/384/512).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// The secret is base64 (standard alphabet) rather than raw text.
    #[serde(default)]
    pub secret_base64: bool,
    /// A file holding the HMAC secret (surrounding whitespace is trimmed).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// PEM public key (RSA, EC P-256/P-384 or Ed25519).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// Keys from a JWKS endpoint.
    #[serde(default)]
    pub jwks: Option<JwksConfig>,
    /// Accepted `alg` values (e.g. `["RS256"]`); default: every algorithm of the key's family.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Clock skew allowed for `exp` and `nbf`, in seconds (default 30).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Accepted `iss` values; empty = not checked.
    #[serde(default)]
    pub issuer: Vec<String>,
    /// Accepted `aud` values; empty = not checked.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Refuse tokens without `exp` (default true).
    #[serde(default = "default_true")]
    pub require_exp: bool,
    /// Claim whose value becomes the user name for authorization (e.g. `"sub"`).
    #[serde(default)]
    pub username_claim: Option<String>,
    /// With the token in the password: refuse unless the CONNECT user name
    /// equals the `username_claim` value.
    #[serde(default)]
    pub match_username: bool,
    /// Claim holding an ACL (default `"acl"`); see `docs/auth.md`.
    #[serde(default = "default_acl_claim")]
    pub acl_claim: Option<String>,
    /// Boolean claim that makes the client a superuser.
    #[serde(default)]
    pub superuser_claim: Option<String>,
    /// `"refuse"` (default) or `"ignore"` when the field is not JWT-shaped.
    #[serde(default)]
    pub not_a_jwt: NotAJwt,
}

enum KeySource {
    Static(DecodingKey),
    Jwks(Arc<JwksCache>),
}

/// Verifies a JWT from the CONNECT password (or user name).
///
/// No token in the field → `Ignore`. Not JWT-shaped → per [`NotAJwt`].
/// Bad signature, disallowed or `none` algorithm, expired, not yet valid,
/// wrong issuer or audience → `Refuse(0x86)`. JWKS keys unavailable →
/// `Refuse(0x88 Server unavailable)`. Accepted tokens give a grant with
/// `expires_at` from `exp`, the mapped user name, superuser flag and ACL.
pub struct JwtAuthenticator {
    from: TokenField,
    keys: KeySource,
    validation: Validation,
    mapping: ClaimMapping,
    match_username: bool,
    not_a_jwt: NotAJwt,
}

impl fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.keys {
            KeySource::Static(_) => "static key <redacted>".to_owned(),
            KeySource::Jwks(j) => format!("{j:?}"),
        };
        f.debug_struct("JwtAuthenticator")
            .field("from", &self.from)
            .field("keys", &keys)
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

fn family_algorithms(family: AlgorithmFamily) -> Vec<Algorithm> {
    family.algorithms().to_vec()
}

fn asymmetric_algorithms() -> Vec<Algorithm> {
    [
        AlgorithmFamily::Rsa,
        AlgorithmFamily::Ec,
        AlgorithmFamily::Ed,
    ]
    .iter()
    .flat_map(|f| f.algorithms().iter().copied())
    .collect()
}

/// The verification key the configuration names (exactly one source) and
/// the algorithms that fit it.
fn key_source(config: &JwtConfig) -> Result<(KeySource, Vec<Algorithm>), ConfigError> {
    if let Some(jwks) = &config.jwks {
        let client = http_client::build(
            Duration::from_millis(jwks.timeout_ms.max(1)),
            jwks.ca_file.as_deref(),
        )?;
        let cache = JwksCache::new(
            jwks.url.clone(),
            client,
            Duration::from_secs(jwks.refresh_secs.max(1)),
            Duration::from_secs(jwks.min_refetch_secs),
            (jwks.max_stale_secs > 0).then(|| Duration::from_secs(jwks.max_stale_secs)),
        );
        return Ok((KeySource::Jwks(Arc::new(cache)), asymmetric_algorithms()));
    }
    if let Some(path) = &config.public_key_file {
        let key = public_key(path)?;
        let allowed = family_algorithms(key.family());
        return Ok((KeySource::Static(key), allowed));
    }
    Ok((
        KeySource::Static(secret_key(config)?),
        family_algorithms(AlgorithmFamily::Hmac),
    ))
}

/// An RSA, EC or Ed25519 public key from a PEM file.
fn public_key(path: &std::path::Path) -> Result<DecodingKey, ConfigError> {
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::invalid(format!("jwt: {}: {e}", path.display())))?;
    let key = DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| {
            ConfigError::invalid(format!(
                "jwt: {}: not an RSA, EC or Ed25519 public key in PEM form",
                path.display()
            ))
        })?;
    Ok(key)
}

/// The shared HMAC secret, inline or from a file, optionally base64.
fn secret_key(config: &JwtConfig) -> Result<DecodingKey, ConfigError> {
    let raw = match (&config.secret, &config.secret_file) {
        (Some(s), _) => s.expose().as_bytes().to_vec(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::invalid(format!("jwt: {}: {e}", path.display())))?;
            text.trim().as_bytes().to_vec()
        }
        (None, None) => Vec::new(),
    };
    let key = if config.secret_base64 {
        let text = String::from_utf8(raw)
            .map_err(|_| ConfigError::invalid("jwt: the base64 secret is not text"))?;
        DecodingKey::from_base64_secret(text.trim())
            .map_err(|_| ConfigError::invalid("jwt: the secret is not valid base64"))?
    } else {
        DecodingKey::from_secret(&raw)
    };
    if key.try_get_as_bytes().map(<[u8]>::is_empty).unwrap_or(true) {
        return Err(ConfigError::invalid("jwt: the secret is empty"));
    }
    Ok(key)
}

/// What a token must satisfy: the algorithms (configured, or all that fit
/// the key), time claims with leeway, audience and issuer when configured.
fn validation(config: &JwtConfig, allowed: Vec<Algorithm>) -> Result<Validation, ConfigError> {
    let algorithms = if config.algorithms.is_empty() {
        allowed
    } else {
        let mut list = Vec::new();
        for name in &config.algorithms {
            let alg: Algorithm = name
                .parse()
                .map_err(|_| ConfigError::invalid(format!("jwt: unknown algorithm {name:?}")))?;
            if !allowed.contains(&alg) {
                return Err(ConfigError::invalid(format!(
                    "jwt: algorithm {name} does not fit the configured key"
                )));
            }
            list.push(alg);
        }
        list
    };
    if config.leeway_secs > MAX_LEEWAY_SECS {
        return Err(ConfigError::invalid(format!(
            "jwt: leeway_secs is at most {MAX_LEEWAY_SECS}"
        )));
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = algorithms;
    validation.leeway = config.leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.required_spec_claims = if config.require_exp {
        ["exp".to_owned()].into_iter().collect()
    } else {
        Default::default()
    };
    // A configured audience or issuer must also be present in the token.
    if !config.audience.is_empty() {
        validation.required_spec_claims.insert("aud".to_owned());
    }
    if !config.issuer.is_empty() {
        validation.required_spec_claims.insert("iss".to_owned());
    }
    validation.validate_aud = !config.audience.is_empty();
    if !config.audience.is_empty() {
        validation.set_audience(&config.audience);
    }
    if !config.issuer.is_empty() {
        validation.set_issuer(&config.issuer);
    }
    Ok(validation)
}

impl JwtAuthenticator {
    /// Builds the authenticator; reads key files now. A JWKS document is
    /// fetched on first use (or call [`Self::refresh_jwks`] at startup).
    pub fn from_config(config: &JwtConfig) -> Result<Self, ConfigError> {
        let sources = usize::from(config.secret.is_some())
            + usize::from(config.secret_file.is_some())
            + usize::from(config.public_key_file.is_some())
            + usize::from(config.jwks.is_some());
        if sources != 1 {
            return Err(ConfigError::invalid(
                "jwt: set exactly one of secret, secret_file, public_key_file, jwks",
            ));
        }
        let (keys, allowed) = key_source(config)?;
        let validation = validation(config, allowed)?;
        // Otherwise the token itself would be the user name: a bearer
        // credential kept as the session's owner, matched by ACL rules and
        // changing with every new token.
        if config.from == TokenField::Username && config.username_claim.is_none() {
            return Err(ConfigError::invalid(
                "jwt: from = \"username\" needs username_claim",
            ));
        }
        if config.match_username && config.username_claim.is_none() {
            return Err(ConfigError::invalid(
                "jwt: match_username needs username_claim",
            ));
        }
        Ok(Self {
            from: config.from,
            keys,
            validation,
            mapping: ClaimMapping {
                username_claim: config.username_claim.clone(),
                acl_claim: config.acl_claim.clone().filter(|c| !c.is_empty()),
                superuser_claim: config.superuser_claim.clone(),
            },
            match_username: config.match_username,
            not_a_jwt: config.not_a_jwt,
        })
    }

    /// Fetches the JWKS document now (no-op without JWKS); false on failure.
    pub async fn refresh_jwks(&self) -> bool {
        match &self.keys {
            KeySource::Jwks(cache) => cache.refresh(true).await,
            KeySource::Static(_) => true,
        }
    }

    /// With JWKS: a future that refetches the document every
    /// `jwks.refresh_secs` forever, for the broker to spawn (and abort at
    /// shutdown) so no CONNECT waits for a scheduled refresh. Without JWKS: `None`.
    pub fn jwks_refresher(&self) -> Option<BoxFuture<'static, ()>> {
        let KeySource::Jwks(cache) = &self.keys else {
            return None;
        };
        let cache = Arc::clone(cache);
        Some(Box::pin(async move {
            loop {
                cache.refresh(true).await;
                tokio::time::sleep(cache.refresh_every()).await;
            }
        }))
    }

    /// Verifies `token`; the claims on success, the CONNACK code otherwise.
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, ReasonCode> {
        let refuse = |why: &str| {
            tracing::debug!(why, "jwt: token refused");
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| refuse("malformed header or unsupported alg"))?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(refuse("algorithm not allowed"));
        }
        // jsonwebtoken wants every listed algorithm to fit the key, and a
        // JWKS mixes families: verify against exactly the (allowed) header alg.
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        match &self.keys {
            KeySource::Static(key) => decode(token, key, &validation).map_err(|e| refuse(&e)),
            KeySource::Jwks(cache) => {
                let set = cache.keys(header.kid.as_deref()).await.map_err(|_| {
                    tracing::warn!("jwt: no JWKS keys available; refusing with Server unavailable");
                    ReasonCode::SERVER_UNAVAILABLE
                })?;
                let candidates = set.keys.iter().filter(|k| {
                    k.fits(header.alg)
                        && match (&header.kid, &k.kid) {
                            (Some(want), Some(have)) => want == have,
                            (Some(_), None) => false,
                            (None, _) => true,
                        }
                });
                let mut last = "no key for this kid and algorithm".to_owned();
                for k in candidates {
                    match decode(token, &k.key, &validation) {
                        Ok(claims) => return Ok(claims),
                        Err(e) => last = e,
                    }
                }
                Err(refuse(&last))
            }
        }
    }

    async fn decide(&self, request: &ConnectRequest<'_>) -> roost_hooks::AuthResult {
        let field: Option<&[u8]> = match self.from {
            TokenField::Password => request.password,
            TokenField::Username => request.client.username.as_deref().map(str::as_bytes),
        };
        let Some(field) = field.filter(|f| !f.is_empty()) else {
            return AuthResult::Ignore;
        };
        let token = match std::str::from_utf8(field) {
            Ok(t) if looks_like_jwt(t) => t,
            _ => {
                return match self.not_a_jwt {
                    NotAJwt::Ignore => AuthResult::Ignore,
                    NotAJwt::Refuse => {
                        tracing::debug!("jwt: credential is not a JWT");
                        AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
                    }
                };
            }
        };
        let claims = match self.verify(token).await {
            Ok(c) => c,
            Err(code) => return AuthResult::Refuse(code),
        };
        // With a username claim configured, the token names the user: one
        // without it would leave the identity to the CONNECT user name,
        // which the client picks freely (any user's ACL rules).
        if let Some(name) = &self.mapping.username_claim {
            let claimed = claims
                .get(name)
                .and_then(claim_as_string)
                .filter(|u| !u.is_empty());
            if claimed.is_none() {
                tracing::debug!(claim = %name, "jwt: token without the username claim");
                return AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
            }
        }
        let connect_user = match self.from {
            TokenField::Password => request.client.username.as_deref(),
            TokenField::Username => None,
        };
        if self.match_username && self.from == TokenField::Password {
            let claimed = self
                .mapping
                .username_claim
                .as_ref()
                .and_then(|c| claims.get(c))
                .and_then(claim_as_string);
            if claimed.is_none() || claimed.as_deref() != connect_user {
                tracing::debug!("jwt: user name does not match the token");
                return AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
            }
        }
        AuthResult::Accept(grant_from_claims(
            &claims,
            &self.mapping,
            &request.client.client_id,
        ))
    }
}

fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Map<String, Value>, String> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| format!("{:?}", e.kind()))
}

/// Three dot-separated base64url segments, the first two non-empty.
fn looks_like_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

impl Authenticator for JwtAuthenticator {
    fn name(&self) -> &str {
        "jwt"
    }

    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        Box::pin(self.decide(request))
    }
}
