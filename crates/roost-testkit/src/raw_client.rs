//! A raw-packet MQTT client: the test decides every byte on the wire.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use roost_codec::{
    ConnAck, Connect, DecodeError, Decoder, Disconnect, EncodeError, Encoder,
    PROTOCOL_MAX_PACKET_SIZE, Packet, ProtocolVersion, Publish,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::packets::{self, IntoPacket};

/// Why [`RawClient::recv`] (or a helper built on it) returned no packet.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// Nothing complete arrived in time.
    #[error("no packet within {0:?}")]
    Timeout(Duration),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// The server sent bytes that do not decode as a packet.
    #[error("undecodable packet from the server: {0}")]
    Decode(#[from] DecodeError),
    /// A socket error other than the peer closing.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// A packet arrived, but not the kind the helper waits for.
    #[error("unexpected packet: {0:?}")]
    Unexpected(Box<Packet>),
}

/// Why [`RawClient::send`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The packet cannot be encoded (e.g. too large).
    #[error("cannot encode the packet: {0}")]
    Encode(#[from] EncodeError),
    /// Writing to the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

/// Why a CONNECT / CONNACK handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The TCP connection could not be made.
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    /// Sending CONNECT failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// No CONNACK arrived.
    #[error("no CONNACK: {0}")]
    Recv(#[from] RecvError),
    /// The CONNACK refused the connection.
    #[error("connection refused: {0:?}")]
    Refused(Box<ConnAck>),
}

/// An MQTT client over one TCP connection that sends exactly the packets (or
/// bytes) it is given and returns every packet it receives, decoded.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    decoder: Decoder,
    encoder: Encoder,
}

impl RawClient {
    /// Opens a TCP connection; packets are encoded and decoded as `version`.
    /// Nothing is sent yet.
    pub async fn connect(addr: SocketAddr, version: ProtocolVersion) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            read_buf: BytesMut::with_capacity(8 * 1024),
            write_buf: BytesMut::with_capacity(8 * 1024),
            decoder: Decoder::client(version, PROTOCOL_MAX_PACKET_SIZE),
            encoder: Encoder::new(version),
        })
    }

    /// Connects and completes an MQTT 5.0 handshake with a clean session.
    pub async fn connect_v5(
        addr: SocketAddr,
        client_id: &str,
    ) -> Result<(Self, ConnAck), HandshakeError> {
        Self::connect_with(addr, packets::connect(ProtocolVersion::V5, client_id)).await
    }

    /// Connects and completes an MQTT 3.1.1 handshake with a clean session.
    pub async fn connect_v311(
        addr: SocketAddr,
        client_id: &str,
    ) -> Result<(Self, ConnAck), HandshakeError> {
        Self::connect_with(addr, packets::connect(ProtocolVersion::V311, client_id)).await
    }

    /// Connects, sends `connect` (its `protocol` picks the codec version) and
    /// waits for a successful CONNACK.
    pub async fn connect_with(
        addr: SocketAddr,
        connect: Connect,
    ) -> Result<(Self, ConnAck), HandshakeError> {
        let mut client = Self::connect(addr, connect.protocol)
            .await
            .map_err(HandshakeError::Connect)?;
        let connack = client.handshake(connect).await?;
        Ok((client, connack))
    }

    /// Sends `connect` and waits for the CONNACK; a refusing CONNACK is an error.
    pub async fn handshake(&mut self, connect: Connect) -> Result<ConnAck, HandshakeError> {
        self.send(connect).await?;
        match self.recv(crate::TIMEOUT).await? {
            Packet::ConnAck(connack) if connack.reason_code.is_error() => {
                Err(HandshakeError::Refused(Box::new(connack)))
            }
            Packet::ConnAck(connack) => Ok(connack),
            other => Err(RecvError::Unexpected(Box::new(other)).into()),
        }
    }

    /// The protocol version packets are encoded and decoded as.
    pub fn version(&self) -> ProtocolVersion {
        self.encoder.version()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// This client's own address (the broker's view of its peer).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// Encodes and sends one packet.
    pub async fn send(&mut self, packet: impl IntoPacket) -> Result<(), SendError> {
        self.write_buf.clear();
        self.encoder
            .encode(&packet.into_packet(), &mut self.write_buf)?;
        self.stream.write_all(&self.write_buf).await?;
        Ok(())
    }

    /// Encodes several packets and sends them in one write, so the server
    /// finds them in one read (pipelining).
    pub async fn send_all<P: IntoPacket>(
        &mut self,
        packets: impl IntoIterator<Item = P>,
    ) -> Result<(), SendError> {
        self.write_buf.clear();
        for packet in packets {
            self.encoder
                .encode(&packet.into_packet(), &mut self.write_buf)?;
        }
        self.stream.write_all(&self.write_buf).await?;
        Ok(())
    }

    /// Sends bytes as they are: for malformed and partial packets.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Waits up to `timeout` for the next packet from the server.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Packet, RecvError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.read_buf)? {
                return Ok(packet);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.read_buf))
                .await
                .map_err(|_| RecvError::Timeout(timeout))?;
            match read {
                Ok(0) => return Err(RecvError::Closed),
                Ok(_) => {}
                Err(error) if is_reset(&error) => return Err(RecvError::Closed),
                Err(error) => return Err(RecvError::Io(error)),
            }
        }
    }

    /// SUBSCRIBE (packet id 1) to `filter` at QoS 1 and waits for a SUBACK
    /// granting it; panics otherwise (a test's own setup step).
    pub async fn subscribe_qos1(&mut self, filter: &str) {
        let options = roost_codec::SubscriptionOptions {
            qos: roost_codec::QoS::AtLeastOnce,
            ..roost_codec::SubscriptionOptions::default()
        };
        if let Err(e) = self.send(packets::subscribe_with(1, filter, options)).await {
            panic!("SUBSCRIBE {filter}: {e:?}");
        }
        match self.recv(crate::TIMEOUT).await {
            Ok(Packet::SubAck(ack)) => assert!(!ack.reason_codes[0].is_error(), "{ack:?}"),
            other => panic!("expected SUBACK for {filter}, got {other:?}"),
        }
    }

    /// Waits for the next packet and requires it to be a PUBLISH.
    pub async fn recv_publish(&mut self, timeout: Duration) -> Result<Publish, RecvError> {
        match self.recv(timeout).await? {
            Packet::Publish(publish) => Ok(publish),
            other => Err(RecvError::Unexpected(Box::new(other))),
        }
    }

    /// Waits up to `timeout` for the server to close the connection. Returns
    /// the DISCONNECT it sent first, if any (MQTT 5.0 servers may send one).
    /// Any other packet before the close is [`RecvError::Unexpected`].
    pub async fn expect_closed(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Disconnect>, RecvError> {
        let deadline = Instant::now() + timeout;
        let mut disconnect = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Ok(Packet::Disconnect(packet)) if disconnect.is_none() => disconnect = Some(packet),
                Ok(other) => return Err(RecvError::Unexpected(Box::new(other))),
                Err(RecvError::Closed) => return Ok(disconnect),
                Err(RecvError::Timeout(_)) => return Err(RecvError::Timeout(timeout)),
                Err(error) => return Err(error),
            }
        }
    }

    /// Closes the TCP connection without sending DISCONNECT (an abnormal
    /// disconnect: the server publishes the will, if any).
    pub async fn drop_connection(mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }
}

fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::num::NonZeroU16;

    use roost_codec::{PubResponse, ReasonCode};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-connection server that writes `script` (chunks, in order) and then
    /// closes, after reading whatever the client sent first.
    async fn scripted_server(script: Vec<Vec<u8>>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 256];
            let _ = socket.read(&mut first).await;
            for chunk in script {
                socket.write_all(&chunk).await.unwrap();
                socket.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        addr
    }

    fn encoded(version: ProtocolVersion, packet: Packet) -> Vec<u8> {
        let mut buf = BytesMut::new();
        Encoder::new(version).encode(&packet, &mut buf).unwrap();
        buf.to_vec()
    }

    #[tokio::test]
    async fn handshake_decodes_a_connack_split_across_writes() {
        let connack = encoded(
            ProtocolVersion::V5,
            Packet::ConnAck(ConnAck {
                session_present: true,
                ..ConnAck::default()
            }),
        );
        let (head, tail) = connack.split_at(2);
        let addr = scripted_server(vec![head.to_vec(), tail.to_vec()]).await;
        let (_client, connack) = RawClient::connect_v5(addr, "split").await.unwrap();
        assert!(connack.session_present);
    }

    #[tokio::test]
    async fn refused_connack_is_a_handshake_error() {
        let refused = Packet::ConnAck(ConnAck {
            reason_code: ReasonCode::NOT_AUTHORIZED,
            ..ConnAck::default()
        });
        let addr = scripted_server(vec![encoded(ProtocolVersion::V311, refused)]).await;
        let error = RawClient::connect_v311(addr, "refused").await.unwrap_err();
        assert!(
            matches!(error, HandshakeError::Refused(ack) if ack.reason_code == ReasonCode::NOT_AUTHORIZED)
        );
    }

    #[tokio::test]
    async fn expect_closed_returns_the_servers_disconnect() {
        let disconnect = Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::PROTOCOL_ERROR,
            ..Disconnect::default()
        });
        let addr = scripted_server(vec![encoded(ProtocolVersion::V5, disconnect)]).await;
        let mut client = RawClient::connect(addr, ProtocolVersion::V5).await.unwrap();
        client.send_bytes(&[0xE0, 0x00]).await.unwrap();
        let got = client.expect_closed(Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.map(|d| d.reason_code), Some(ReasonCode::PROTOCOL_ERROR));
    }

    #[tokio::test]
    async fn expect_closed_rejects_other_packets() {
        let puback = Packet::PubAck(PubResponse::success(NonZeroU16::MIN));
        let addr = scripted_server(vec![encoded(ProtocolVersion::V5, puback)]).await;
        let mut client = RawClient::connect(addr, ProtocolVersion::V5).await.unwrap();
        client.send_bytes(&[0xC0, 0x00]).await.unwrap();
        let error = client
            .expect_closed(Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(error, RecvError::Unexpected(packet) if matches!(*packet, Packet::PubAck(_)))
        );
    }

    #[tokio::test]
    async fn recv_times_out_when_nothing_arrives() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = RawClient::connect(addr, ProtocolVersion::V5).await.unwrap();
        let _held_open = listener.accept().await.unwrap();
        let error = client.recv(Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(error, RecvError::Timeout(_)));
    }

    #[tokio::test]
    async fn garbage_from_the_server_is_a_decode_error() {
        // Packet type 0 is reserved.
        let addr = scripted_server(vec![vec![0x00, 0x00]]).await;
        let mut client = RawClient::connect(addr, ProtocolVersion::V5).await.unwrap();
        client.send_bytes(&[0xC0, 0x00]).await.unwrap();
        let error = client.recv(Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(error, RecvError::Decode(_)), "{error:?}");
    }
}
