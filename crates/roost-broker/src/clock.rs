//! Deadlines a connection keeps, awake or hibernating.

use roost_hooks::Grant;
use tokio::time::Instant;

/// When the credentials `grant` gives stop being valid (e.g. a JWT's
/// `exp`): the connection ends then (0xA0).
pub(crate) fn credentials_deadline(grant: Option<&Grant>) -> Option<Instant> {
    grant.and_then(|grant| grant.expires_at).map(|at| {
        let left = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        Instant::now() + left
    })
}

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
