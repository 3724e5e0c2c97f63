//! What a running connection is, below the code that runs it: what a
//! connected client keeps ([`Connected`]), how its task begins ([`Start`])
//! and how its connection ended ([`Ending`]). The loop (`run.rs`), its
//! ending (`ending.rs`), the operator's log (`oplog.rs`) and hibernation
//! (`sleep.rs`, `wake.rs`) all use these; this file imports none of them,
//! so they import each other one way only.

use std::sync::Arc;

use roost_codec::ReasonCode;
use roost_hooks::{ClientInfo, DisconnectCause, Grant};
use roost_session::{Session, Violation};

use super::connect::Attached;
use crate::link::ControlReceiver;
use crate::slot::SessionSlot;

/// What a connected client keeps for as long as it is connected: all that
/// survives a hibernation (`hibernate.rs` keeps it in a more compact form).
pub(crate) struct Connected {
    pub(crate) session: Session,
    pub(crate) slot: Arc<SessionSlot>,
    pub(crate) connection_id: u64,
    pub(crate) control: ControlReceiver,
    pub(crate) decoder: roost_codec::Decoder,
    pub(crate) client: Arc<ClientInfo>,
    /// `None`: the default grant (most clients).
    pub(crate) grant: Option<Box<Grant>>,
    /// Drops of the session already counted in the broker's statistics.
    pub(crate) drops_seen: u64,
    /// When the client's credentials expire (e.g. a JWT's `exp`).
    pub(crate) credentials_expire: Option<tokio::time::Instant>,
}

/// How a connection's task begins.
pub(crate) enum Start {
    /// Just attached: CONNACK first.
    Fresh(Box<Attached>),
    /// Woken from hibernation.
    Resumed(Box<Connected>),
}

/// How the connection ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The client sent DISCONNECT.
    Disconnect { publish_will: bool },
    /// The socket closed or failed without DISCONNECT.
    Lost,
    /// We closed it because the client broke the protocol.
    Violation(ReasonCode),
    /// Another connection took the client id over.
    TakenOver,
    /// Administrative close, shutdown, or a refusal (with the hook's Reason
    /// String, if any).
    Closed(ReasonCode, Option<Box<str>>),
}

impl Ending {
    /// The ending for a protocol violation, logged with the spec statement
    /// it breaks.
    pub(crate) fn violation(violation: &Violation, client_id: &str) -> Self {
        tracing::info!(%client_id, %violation, spec = violation.spec_id().unwrap_or("-"), "closing connection: protocol violation");
        Self::Violation(violation.reason_code())
    }

    /// What the `on_disconnect` hook is told.
    pub(super) fn cause(&self) -> DisconnectCause {
        match self {
            Self::Disconnect {
                publish_will: false,
            } => DisconnectCause::Client(ReasonCode::NORMAL_DISCONNECTION),
            Self::Disconnect { publish_will: true } => {
                DisconnectCause::Client(ReasonCode::DISCONNECT_WITH_WILL)
            }
            Self::Lost => DisconnectCause::Lost,
            Self::Violation(rc) | Self::Closed(rc, _) => DisconnectCause::Server(*rc),
            Self::TakenOver => DisconnectCause::Server(ReasonCode::SESSION_TAKEN_OVER),
        }
    }

    /// The reason (and Reason String) of the DISCONNECT the broker sends,
    /// when it is the one closing.
    pub(super) fn close_reason(&self) -> Option<(ReasonCode, Option<&str>)> {
        match self {
            Self::Violation(rc) => Some((*rc, None)),
            Self::Closed(rc, reason_string) => Some((*rc, reason_string.as_deref())),
            Self::TakenOver => Some((ReasonCode::SESSION_TAKEN_OVER, None)),
            Self::Disconnect { .. } | Self::Lost => None,
        }
    }
}
