//! Transports: everything between an accepted socket and the connection
//! driver. Each one turns a socket into an `AsyncRead + AsyncWrite` byte
//! stream plus a [`ConnectionInfo`]; the driver does the rest, the same for
//! all of them. No MQTT logic lives here.
//!
//! | kind | stack |
//! | --- | --- |
//! | `tcp` | TCP [→ PROXY header] |
//! | `tls` | TCP [→ PROXY header] → TLS (rustls) |
//! | `ws` | TCP [→ PROXY header] → HTTP upgrade → WebSocket binary messages |
//! | `wss` | TCP [→ PROXY header] → TLS → HTTP upgrade → WebSocket |
//! | `quic` | UDP → QUIC (quinn) → one bidirectional stream |
//! | `unix` | Unix domain socket |

pub(crate) mod config;
#[cfg(not(all(feature = "tls", feature = "websocket", feature = "quic")))]
mod disabled;
#[cfg(unix)]
pub(crate) mod fd_table;
#[cfg(any(feature = "tls", feature = "websocket"))]
pub(crate) mod flush;
#[cfg(feature = "websocket")]
pub(crate) mod http_head;
#[cfg(feature = "tls")]
pub(crate) mod identity;
pub(crate) mod prefixed;
pub(crate) mod proxy;
#[cfg(feature = "quic")]
pub(crate) mod quic;
#[cfg(feature = "tls")]
pub(crate) mod reload;
pub(crate) mod stack;
#[cfg(feature = "tls")]
pub(crate) mod tls;
#[cfg(feature = "tls")]
mod tls_stage;
// Config validation parses trusted proxies even without WebSocket support.
#[cfg_attr(not(feature = "websocket"), allow(dead_code))]
pub(crate) mod trusted;
#[cfg(unix)]
pub(crate) mod unix;
#[cfg(feature = "websocket")]
pub(crate) mod ws;

#[cfg(not(feature = "quic"))]
pub(crate) use disabled::QuicListener;
#[cfg(not(feature = "tls"))]
pub(crate) use disabled::TlsStage;
#[cfg(not(feature = "websocket"))]
pub(crate) use disabled::WsStage;
#[cfg(feature = "quic")]
pub(crate) use quic::QuicListener;
#[cfg(feature = "tls")]
pub(crate) use tls_stage::TlsStage;
#[cfg(feature = "websocket")]
pub(crate) use ws::WsStage;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use roost_codec::{Connect, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite};

use self::config::{IdentitySource, ListenerConfig, ListenerKind};

/// A listener that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListenerError {
    /// The socket could not be bound.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Its configuration cannot be used (certificate files, cipher suites, missing feature).
    #[error("{0}")]
    Config(String),
}

/// Something whose TLS certificates can be reloaded from their files.
pub(crate) trait Reloadable: fmt::Debug + Send + Sync {
    /// Re-reads the files; on error the previous certificates stay in use.
    fn reload(&self) -> Result<(), String>;
    /// `scheme://address` of the listener.
    fn name(&self) -> &str;
}

/// Some listeners could not reload their certificates; they keep the
/// previous ones. The others reloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TLS reload failed: {}", .failures.join("; "))]
pub struct TlsReloadError {
    /// One message per listener that failed, naming the listener and the file.
    pub failures: Vec<String>,
    /// Listeners that did reload.
    pub reloaded: usize,
}

/// A transport's byte stream, boxed so the driver is compiled once for all
/// transports but plain TCP.
pub(crate) type BoxedStream = Box<dyn ByteStream>;

/// What the driver needs from a transport.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAddr {
    /// An IP peer: the socket's address, or the client address a trusted
    /// proxy reported (PROXY header, `X-Forwarded-For`).
    Inet(SocketAddr),
    /// A local process on a Unix domain socket.
    Unix,
}

impl PeerAddr {
    /// The peer's IP address, when it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Inet(addr) => Some(addr.ip()),
            Self::Unix => None,
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet(addr) => addr.fmt(f),
            Self::Unix => f.write_str("unix"),
        }
    }
}

/// The subject of a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject's Common Name, when it has one.
    pub common_name: Option<String>,
    /// The subject distinguished name, RFC 4514 (`CN=dev1,O=Acme,C=DE`).
    pub subject_dn: String,
}

impl ClientIdentity {
    /// The identity as configured: CN or full DN. None when the CN is asked
    /// for and the certificate has none.
    pub fn as_configured(&self, source: IdentitySource) -> Option<&str> {
        match source {
            IdentitySource::Cn => self.common_name.as_deref(),
            IdentitySource::Dn => Some(&self.subject_dn),
        }
    }
}

/// What TLS negotiated for a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The server name the client asked for (SNI).
    pub server_name: Option<String>,
    /// The ALPN protocol agreed on.
    pub alpn: Option<Vec<u8>>,
    /// The client certificate's subject, when the client sent a verified one.
    pub identity: Option<ClientIdentity>,
}

/// Facts about one connection that the transport knows and the MQTT layer
/// cannot see: who the peer is, which listener accepted it, and its TLS
/// identity. Logs, authentication, ACL placeholders and the admin view read it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The client's address (after PROXY protocol / trusted forwarding headers).
    pub peer: PeerAddr,
    /// The listener's transport.
    pub listener: ListenerKind,
    /// TLS details, on TLS-based transports.
    pub tls: Option<TlsInfo>,
    /// True when `peer` came from a PROXY header or a forwarding header rather
    /// than from the socket.
    pub proxied: bool,
}

impl ConnectionInfo {
    /// A connection whose peer is the socket's own address.
    pub fn new(peer: PeerAddr, listener: ListenerKind) -> Self {
        Self {
            peer,
            listener,
            tls: None,
            proxied: false,
        }
    }

    /// The verified client certificate's subject, if any.
    pub fn identity(&self) -> Option<&ClientIdentity> {
        self.tls.as_ref().and_then(|t| t.identity.as_ref())
    }
}

/// Applies `use_identity_as_username` / `use_identity_as_client_id`: the
/// client certificate's CN or DN replaces the CONNECT user name / client id
/// (like Mosquitto's `use_identity_as_username`). A listener that asks for it
/// refuses a client without a usable certificate identity (0x87 Not
/// authorized / 3.1.1 return code 5). Returns true when the certificate
/// became the user name: it is then the client's credential, no password is
/// checked.
pub(crate) fn apply_identity(
    listener: &ListenerConfig,
    info: &ConnectionInfo,
    connect: &mut Connect,
) -> Result<bool, ReasonCode> {
    let Some(tls) = &listener.tls else {
        return Ok(false);
    };
    if !tls.uses_identity() {
        return Ok(false);
    }
    let identity = info
        .identity()
        .and_then(|id| id.as_configured(tls.identity));
    let Some(identity) = identity else {
        tracing::info!(peer = %info.peer, "refusing client: the listener takes the identity from a client certificate and none was presented");
        return Err(ReasonCode::NOT_AUTHORIZED);
    };
    if tls.use_identity_as_username {
        connect.username = Some(identity.into());
        // The certificate is the credential; a password would be meaningless.
        connect.password = None;
    }
    if tls.use_identity_as_client_id {
        connect.client_id = identity.into();
    }
    Ok(tls.use_identity_as_username)
}
