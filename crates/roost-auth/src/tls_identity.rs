//! Mutual-TLS client certificates as credentials.

use roost_hooks::{AuthResult, Authenticator, BoxFuture, ConnectRequest, Grant, ReasonCode};
use serde::Deserialize;

/// `[auth.tls_identity]` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsIdentityConfig {
    /// Refuse (0x87) unless the certificate's Common Name equals the CONNECT user name.
    #[serde(default)]
    pub require_cn_matches_username: bool,
    /// Use the Common Name as the user name for authorization
    /// (`Grant::username`); a certificate without one is refused (0x87).
    #[serde(default)]
    pub use_cn_as_username: bool,
}

/// Accepts clients that presented a client certificate the TLS listener
/// verified; ignores the others (so a password authenticator later in the
/// chain can still accept them).
#[derive(Debug, Clone, Default)]
pub struct TlsIdentityAuthenticator {
    config: TlsIdentityConfig,
}

impl TlsIdentityAuthenticator {
    /// Builds the authenticator.
    pub fn new(config: TlsIdentityConfig) -> Self {
        Self { config }
    }

    /// The decision for one CONNECT.
    pub fn decide(&self, request: &ConnectRequest<'_>) -> AuthResult {
        let Some(tls) = request.client.tls.as_ref() else {
            return AuthResult::Ignore;
        };
        let cn = tls.common_name.as_deref();
        if self.config.require_cn_matches_username {
            let user = request.client.username.as_deref();
            if cn.is_none() || cn != user {
                tracing::debug!(
                    client_id = %request.client.client_id,
                    "tls identity: certificate CN does not match the user name"
                );
                return AuthResult::Refuse(ReasonCode::NOT_AUTHORIZED);
            }
        }
        let mut grant = Grant::default();
        if self.config.use_cn_as_username {
            // The certificate is the identity: without a Common Name the
            // CONNECT user name, which the client picks freely, would stand
            // in for it.
            let Some(cn) = cn.filter(|c| !c.is_empty()) else {
                tracing::debug!(
                    client_id = %request.client.client_id,
                    "tls identity: certificate without a Common Name refused"
                );
                return AuthResult::Refuse(ReasonCode::NOT_AUTHORIZED);
            };
            grant.username = Some(cn.to_owned());
        }
        AuthResult::Accept(grant)
    }
}

impl Authenticator for TlsIdentityAuthenticator {
    fn name(&self) -> &str {
        "tls_identity"
    }

    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        roost_hooks::ready(self.decide(request))
    }
}
