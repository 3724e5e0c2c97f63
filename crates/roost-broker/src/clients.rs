//! The broker handle's view of its sessions: who is there, connected or not.

use crate::core::Core;

/// One session as [`crate::BrokerHandle::clients`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSummary {
    /// The client identifier.
    pub client_id: String,
    /// The user name the session was authorized as (`None`: anonymous, or a
    /// restored session no connection has claimed yet).
    pub username: Option<String>,
    /// A connection is attached; otherwise the session is parked offline.
    pub connected: bool,
    /// Messages dropped for this session so far.
    pub dropped: u64,
}

/// Every session in the registry, sorted by client id.
pub(crate) fn list(core: &Core) -> Vec<ClientSummary> {
    let mut out: Vec<ClientSummary> = core
        .sessions
        .iter()
        .filter_map(|entry| {
            let slot = entry.value();
            let inner = slot.inner.lock();
            (!inner.ended).then(|| ClientSummary {
                client_id: slot.client_id.to_string(),
                username: inner.owner.clone().flatten().map(|u| u.to_string()),
                connected: inner.link.is_some(),
                dropped: slot.dropped.load(std::sync::atomic::Ordering::Relaxed),
            })
        })
        .collect();
    out.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    out
}
