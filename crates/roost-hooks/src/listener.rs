//! The kind of listener a client came through: its transport.
//!
//! Here rather than in the broker because [`crate::ClientInfo`] names it
//! (one byte per connection, where the scheme's name was a 16-byte
//! pointer), and the broker's `[[listeners]]` tables read it by its
//! lowercase name (`kind = "tcp"`).

use std::fmt;

use serde::Deserialize;

/// The transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// MQTT over plain TCP (default port 1883).
    Tcp,
    /// MQTT over TLS (default port 8883).
    Tls,
    /// MQTT over WebSocket (default port 8083, path `/mqtt`).
    Ws,
    /// MQTT over WebSocket over TLS (default port 8084).
    Wss,
    /// MQTT over QUIC, one bidirectional stream per connection (UDP 14567).
    Quic,
    /// MQTT over a Unix domain socket.
    Unix,
}

impl ListenerKind {
    /// The URL scheme logged at start-up: `listening on <scheme>://<addr>`.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "mqtt",
            Self::Tls => "mqtts",
            Self::Ws => "ws",
            Self::Wss => "wss",
            Self::Quic => "quic",
            Self::Unix => "unix",
        }
    }

    /// The port used when `bind` names no port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tcp | Self::Unix => 1883,
            Self::Tls => 8883,
            Self::Ws => 8083,
            Self::Wss => 8084,
            Self::Quic => 14567,
        }
    }

    /// Whether the transport runs TLS (and so needs a `tls` table).
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Tls | Self::Wss | Self::Quic)
    }

    /// Whether the transport speaks WebSocket.
    pub fn uses_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }

    /// Whether the transport runs over TCP (every kind but QUIC and Unix sockets).
    pub fn is_tcp_based(self) -> bool {
        matches!(self, Self::Tcp | Self::Tls | Self::Ws | Self::Wss)
    }

    /// Whether a PROXY protocol header can precede the connection (TCP-based kinds).
    pub fn accepts_proxy_protocol(self) -> bool {
        self.is_tcp_based()
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Ws => "ws",
            Self::Wss => "wss",
            Self::Quic => "quic",
            Self::Unix => "unix",
        })
    }
}
