//! Who is on the other end of a connection.

use std::net::SocketAddr;

use bytestring::ByteString;
use roost_codec::ProtocolVersion;

use crate::ListenerKind;

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
    /// The kind of listener the client came through (its transport).
    pub listener: ListenerKind,
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
        listener: ListenerKind,
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

#[cfg(test)]
mod tests {
    use super::ClientInfo;

    #[test]
    fn client_info_fits_the_128_byte_size_class_with_its_reference_counts() {
        // Every connection, idle ones included, keeps one in an `Arc`.
        let size = std::mem::size_of::<ClientInfo>() + 2 * std::mem::size_of::<usize>();
        assert!(size <= 128, "Arc<ClientInfo> is {size} bytes");
    }
}
