//! An authenticator whose credentials expire (like a JWT's `exp`).

use std::time::{Duration, SystemTime};

use roost_broker::hooks::{AuthResult, Authenticator, BoxFuture, ConnectRequest, Grant, ready};

/// Accepts everyone with credentials valid for this long after CONNECT.
pub struct ShortLived(pub Duration);

impl Authenticator for ShortLived {
    fn name(&self) -> &str {
        "short-lived"
    }
    fn authenticate<'a>(&'a self, _request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        let mut grant = Grant::default();
        grant.expires_at = Some(SystemTime::now() + self.0);
        ready(AuthResult::Accept(grant))
    }
}
