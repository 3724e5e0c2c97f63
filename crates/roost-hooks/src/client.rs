//! Who is on the other end of a connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytestring::ByteString;
use roost_codec::ProtocolVersion;

/// The identity of a client's TLS certificate (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsIdentity {
    /// The subject's Common Name, if any.
    pub common_name: Option<String>,
    /// The full subject Distinguished Name (RFC 4514 form).
    pub subject: String,
}

impl TlsIdentity {
    /// Builds an identity.
    pub fn new(common_name: Option<String>, subject: String) -> Self {
        Self {
            common_name,
            subject,
        }
    }
}

/// What the broker knows about a connected (or connecting) client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientInfo {
    /// Client identifier (assigned by the broker when the client sent none).
    pub client_id: ByteString,
    /// User name from CONNECT, or the TLS identity when the listener maps it.
    pub username: Option<ByteString>,
    /// Peer address (the real one when the PROXY protocol is used).
    pub peer: SocketAddr,
    /// Protocol version of the connection.
    pub protocol: ProtocolVersion,
    /// Name of the listener the client came through (e.g. `tcp`, `tls`, `ws`).
    pub listener: Arc<str>,
    /// Client certificate identity, when mutual TLS is used. Boxed: most
    /// clients have none, and every connection keeps a `ClientInfo` (8 bytes
    /// instead of 48).
    pub tls: Option<Box<TlsIdentity>>,
}

impl ClientInfo {
    /// Builds a client description.
    pub fn new(
        client_id: ByteString,
        username: Option<ByteString>,
        peer: SocketAddr,
        protocol: ProtocolVersion,
        listener: Arc<str>,
    ) -> Self {
        Self {
            client_id,
            username,
            peer,
            protocol,
            listener,
            tls: None,
        }
    }

    /// With a TLS identity.
    pub fn with_tls(mut self, tls: Option<TlsIdentity>) -> Self {
        self.tls = tls.map(Box::new);
        self
    }
}
