//! The broker handle's view of its sessions: who is there, connected or
//! not, and closing the live connections a ban now covers.

use std::time::SystemTime;

use roost_auth::BanList;
use roost_codec::ReasonCode;

use crate::core::Core;
use crate::link::Control;

/// DISCONNECT reason for a connection closed by a ban. 0x8A Banned is a
/// CONNACK code only: a DISCONNECT must use one of its own codes
/// [MQTT-3.14.2-1], and a ban is an administrative action (the client's next
/// CONNECT is refused with 0x8A).
pub(crate) const BANNED_DISCONNECT: ReasonCode = ReasonCode::ADMINISTRATIVE_ACTION;

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
    let mut out = Vec::new();
    core.sessions().for_each(|slot| {
        let inner = slot.inner.lock();
        if !inner.ended {
            out.push(ClientSummary {
                client_id: slot.client_id.to_string(),
                username: inner
                    .owner
                    .as_ref()
                    .and_then(|owner| owner.client.username.as_ref())
                    .map(|u| u.to_string()),
                connected: inner.link.is_some(),
                dropped: slot.dropped.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
    });
    out.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    out
}

/// Closes every live connection `bans` covers at `now` (by client id, user
/// name as authorized, or peer address) with DISCONNECT 0x98 (5.0; 3.x just
/// closes). Each closes like any server-initiated close: its will is
/// published. Returns how many were told to close.
pub(crate) fn close_banned(core: &Core, bans: &BanList, now: SystemTime) -> usize {
    // Collected first: no registry or slot lock is held while sending.
    let mut banned = Vec::new();
    core.sessions().for_each(|slot| {
        if let Some(link) = &slot.inner.lock().link
            && bans.is_banned(&link.client, now)
        {
            tracing::info!(client_id = %link.client.client_id, peer = %link.client.peer, "banned; closing the connection");
            banned.push(link.control.clone());
        }
    });
    banned
        .into_iter()
        .filter(|control| control.try_send(Control::Close(BANNED_DISCONNECT)).is_ok())
        .count()
}
