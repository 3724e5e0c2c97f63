//! The operator's log of connections, at `info` under target
//! `roost::client`: one line when a client connects (address, client id,
//! protocol, clean start, keep-alive, user name, as Mosquitto's "New client
//! connected from … as …"), one when it disconnects and why, one per refused
//! connection with its reason code and what it means. Never a password.

use roost_codec::{ProtocolVersion, ReasonCode};
use roost_hooks::ClientInfo;

use super::connect::{Refused, Seen};
use super::connection::Ending;
use crate::config::ListenerConfig;
use crate::transport::PeerAddr;

/// The target of these lines: `RUST_LOG=roost::client=warn` silences them.
const TARGET: &str = "roost::client";

fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V31 => "3.1",
        ProtocolVersion::V311 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

/// A client was accepted (CONNACK 0x00 is on its way).
pub(crate) fn connected(client: &ClientInfo, seen: &Seen) {
    tracing::info!(
        target: TARGET,
        peer = %client.peer,
        client_id = %client.client_id,
        protocol = version_name(client.protocol),
        clean_start = seen.clean_start,
        keep_alive = seen.keep_alive,
        username = client.username.as_deref().unwrap_or("-"),
        listener = %client.listener,
        "client connected"
    );
}

/// The CONNECT phase ended without a session.
pub(crate) fn refused(peer: PeerAddr, listener: &ListenerConfig, seen: &Seen, refused: &Refused) {
    let client_id = seen.client_id.as_deref().unwrap_or("-");
    let username = seen.username.as_deref().unwrap_or("-");
    match refused {
        // A port scan or a health check: not worth an operator's line.
        Refused::Silent(why) if seen.version.is_none() => {
            tracing::debug!(target: TARGET, %peer, why, "connection closed before CONNECT");
        }
        Refused::Silent(why) => {
            tracing::info!(target: TARGET, %peer, client_id, username, why, "connection refused");
        }
        Refused::ConnAck(reason) => {
            let why = explain(*reason, seen, listener);
            tracing::info!(
                target: TARGET,
                %peer,
                client_id,
                username,
                protocol = seen.version.map_or("-", version_name),
                reason = %reason,
                why,
                "connection refused"
            );
        }
    }
}

/// What a CONNACK refusal means for the operator.
fn explain(reason: ReasonCode, seen: &Seen, listener: &ListenerConfig) -> &'static str {
    match reason {
        ReasonCode::NOT_AUTHORIZED if seen.username.is_none() && !listener.anonymous_allowed() => {
            "no user name, and anonymous clients are refused on this listener (allow_anonymous)"
        }
        ReasonCode::NOT_AUTHORIZED => "not authorized (an authenticator or hook refused)",
        ReasonCode::BAD_USER_NAME_OR_PASSWORD => "unknown user name or wrong password",
        ReasonCode::BANNED => "banned ([auth.banned] or BrokerHandle::ban)",
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => "client identifier not accepted",
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => "protocol level not supported",
        ReasonCode::SERVER_UNAVAILABLE => "the broker is shutting down",
        ReasonCode::SERVER_BUSY | ReasonCode::QUOTA_EXCEEDED => "too many connections",
        ReasonCode::USE_ANOTHER_SERVER | ReasonCode::SERVER_MOVED => "redirected ([mqtt.redirect])",
        ReasonCode::BAD_AUTHENTICATION_METHOD => "authentication method not supported",
        _ => "see the reason code",
    }
}

/// A connected client's connection ended.
pub(crate) fn disconnected(client: &ClientInfo, ending: &Ending) {
    let (why, reason) = match ending {
        Ending::Disconnect {
            publish_will: false,
        } => ("client disconnected", None),
        Ending::Disconnect { publish_will: true } => {
            ("client disconnected, asking for its will", None)
        }
        Ending::Lost => ("connection lost without DISCONNECT", None),
        Ending::Violation(rc) => ("closed: protocol violation", Some(*rc)),
        Ending::TakenOver => ("closed: a new connection took the session over", None),
        Ending::Closed(rc, _) => ("closed by the broker", Some(*rc)),
    };
    match reason {
        Some(reason) => tracing::info!(
            target: TARGET,
            peer = %client.peer,
            client_id = %client.client_id,
            username = client.username.as_deref().unwrap_or("-"),
            reason = %reason,
            "{why}"
        ),
        None => tracing::info!(
            target: TARGET,
            peer = %client.peer,
            client_id = %client.client_id,
            username = client.username.as_deref().unwrap_or("-"),
            "{why}"
        ),
    }
}
