//! The `[auth]` section: builds the built-in authenticators and authorizers
//! of `roost-auth` from the configuration and keeps the reloadable ones for
//! SIGHUP. Built-ins run before anything an embedder registers.

use std::sync::Arc;

use roost_auth::{
    AclFile, AclFileConfig, BanAuthenticator, BanList, BannedConfig, HttpAclConfig, HttpAuthConfig,
    HttpAuthenticator, HttpAuthorizer, JwtAuthenticator, JwtConfig, PasswordFile,
    PasswordFileConfig, ScramAuthenticator, ScramConfig, TlsIdentityAuthenticator,
    TlsIdentityConfig,
};
use serde::Deserialize;

use crate::extensions::Extensions;
use roost_hooks::BoxFuture;

/// Which built-ins are enabled. Authenticators are asked in this order:
/// banned, tls_identity, password_file, jwt, http; authorizers: acl_file, http_acl.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Banned client ids, user names and addresses (CONNACK 0x8A).
    pub banned: Option<BannedConfig>,
    /// The client certificate's identity as the credential.
    pub tls_identity: Option<TlsIdentityConfig>,
    /// A Mosquitto-compatible password file.
    pub password_file: Option<PasswordFileConfig>,
    /// JSON Web Tokens.
    pub jwt: Option<JwtConfig>,
    /// An HTTP authentication service.
    pub http: Option<HttpAuthConfig>,
    /// SCRAM-SHA-256/512 enhanced authentication (MQTT 5.0 AUTH).
    pub scram: Option<ScramConfig>,
    /// An ACL file.
    pub acl_file: Option<AclFileConfig>,
    /// An HTTP authorization service.
    pub http_acl: Option<HttpAclConfig>,
}

/// A built-in that can re-read its file.
type Reload = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the built-ins need at run time.
#[derive(Default)]
pub(crate) struct Builtins {
    /// Reloaded on SIGHUP ([`crate::BrokerHandle::reload_auth`]).
    pub(crate) reloads: Vec<(&'static str, Reload)>,
    /// The ban list, for the broker handle.
    pub(crate) bans: Option<Arc<BanList>>,
}

impl std::fmt::Debug for Builtins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtins")
            .field(
                "reloads",
                &self.reloads.iter().map(|r| r.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Background work of the built-ins (JWKS refresh), started with the broker.
pub(crate) type Tasks = Vec<BoxFuture<'static, ()>>;

/// When the ACL file that failed to load is in Mosquitto's format (`user`,
/// `topic`, `pattern` lines), says so and where the translation is.
fn mosquitto_acl_hint(path: &std::path::Path) -> &'static str {
    let Ok(text) = std::fs::read_to_string(path) else {
        return "";
    };
    let mosquitto = text.lines().map(str::trim).any(|line| {
        let first = line.split_whitespace().next().unwrap_or("");
        matches!(first, "topic" | "pattern" | "user")
    });
    if mosquitto {
        "\n  this looks like a Mosquitto ACL file (`user`/`topic`/`pattern` lines); Roost's rules \
         are `allow|deny <who> <action> <filter>`: see docs/coming-from-mosquitto.md"
    } else {
        ""
    }
}

/// Builds the configured built-ins into `ext` (in front of the embedder's).
/// Errors name the file and line (or the key).
pub(crate) fn install(
    config: &AuthConfig,
    ext: &mut Extensions,
) -> Result<(Builtins, Tasks), String> {
    let mut builtins = Builtins::default();
    let mut tasks = Tasks::new();
    let mut authenticators: Vec<Arc<dyn roost_hooks::Authenticator>> = Vec::new();
    let mut authorizers: Vec<Arc<dyn roost_hooks::Authorizer>> = Vec::new();
    if let Some(c) = &config.banned {
        let bans = Arc::new(BanList::from_config(c).map_err(|e| format!("auth.banned: {e}"))?);
        authenticators.push(Arc::new(BanAuthenticator::new(Arc::clone(&bans))));
        builtins.bans = Some(bans);
    }
    // The ban list only refuses: it is a filter, not an authenticator, and
    // on its own leaves user names to the listener's anonymous policy. The
    // filters lead the chain, ahead of the embedder's (the count says where
    // they end).
    let filters = authenticators.len();
    if let Some(c) = &config.tls_identity {
        authenticators.push(Arc::new(TlsIdentityAuthenticator::new(c.clone())));
    }
    if let Some(c) = &config.password_file {
        let file =
            Arc::new(PasswordFile::from_config(c).map_err(|e| format!("auth.password_file: {e}"))?);
        let reload = Arc::clone(&file);
        builtins.reloads.push((
            "password_file",
            Box::new(move || reload.reload().map_err(|e| e.to_string())),
        ));
        authenticators.push(file);
    }
    if let Some(c) = &config.jwt {
        let jwt = Arc::new(JwtAuthenticator::from_config(c).map_err(|e| format!("auth.jwt: {e}"))?);
        if let Some(task) = jwt.jwks_refresher() {
            tasks.push(task);
        }
        authenticators.push(jwt);
    }
    if let Some(c) = &config.http {
        authenticators.push(Arc::new(
            HttpAuthenticator::from_config(c).map_err(|e| format!("auth.http: {e}"))?,
        ));
    }
    if let Some(c) = &config.scram {
        let scram =
            Arc::new(ScramAuthenticator::from_config(c).map_err(|e| format!("auth.scram: {e}"))?);
        let reload = Arc::clone(&scram);
        builtins.reloads.push((
            "scram",
            Box::new(move || reload.reload().map_err(|e| e.to_string())),
        ));
        if ext.enhanced.is_none() {
            ext.enhanced = Some(scram);
        }
    }
    if let Some(c) = &config.acl_file {
        let acl = Arc::new(
            AclFile::from_config(c)
                .map_err(|e| format!("auth.acl_file: {e}{}", mosquitto_acl_hint(&c.path)))?,
        );
        let reload = Arc::clone(&acl);
        builtins.reloads.push((
            "acl_file",
            Box::new(move || reload.reload().map_err(|e| e.to_string())),
        ));
        authorizers.push(acl);
    }
    if let Some(c) = &config.http_acl {
        authorizers.push(Arc::new(
            HttpAuthorizer::from_config(c).map_err(|e| format!("auth.http_acl: {e}"))?,
        ));
    }
    authenticators.append(&mut ext.authenticators);
    ext.authenticators = authenticators;
    ext.filters += filters;
    authorizers.append(&mut ext.authorizers);
    ext.authorizers = authorizers;
    Ok((builtins, tasks))
}
