//! One benchmark client's connection: TCP connect (optionally from a chosen
//! source address), CONNECT, wait for CONNACK, and small helpers to send
//! control packets. Packets are encoded with Roost's own codec.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU16;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use roost_codec::{
    Connect, ConnectProperties, Decoder, Disconnect, Encoder, PROTOCOL_MAX_PACKET_SIZE, Packet,
    ProtocolVersion, PubResponse, QoS, Subscribe, SubscribeProperties, SubscriptionOptions,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

use crate::clock::now_ns;
use crate::transport::{self, Stream, Transport};

/// Read buffer size: large reads amortise the syscall over many packets.
pub const READ_BUFFER: usize = 64 * 1024;
/// Read buffer with `-l/--lowmem`: many idle clients cost 4 KiB each
/// instead of 64 KiB, at the price of more reads per burst.
pub const LOWMEM_READ_BUFFER: usize = 4 * 1024;

/// Settings shared by every client of a run.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Keep Alive we ask for, in seconds.
    pub keepalive: u16,
    /// Clean Start / Clean Session.
    pub clean: bool,
    /// Session Expiry Interval (5.0).
    pub session_expiry: u32,
    /// User name.
    pub username: Option<ByteString>,
    /// Password.
    pub password: Option<Bytes>,
    /// Time allowed for TCP connect, TLS and WebSocket handshakes and CONNECT/CONNACK.
    pub connect_timeout: Duration,
    /// TCP, TLS, WebSocket or WebSocket over TLS.
    pub transport: Transport,
    /// Bytes reserved per read: [`READ_BUFFER`], or [`LOWMEM_READ_BUFFER`]
    /// with `-l/--lowmem`.
    pub read_buffer: usize,
}

impl ClientConfig {
    /// Maps `-V 3|4|5` to a protocol version.
    pub fn version_from_level(level: u8) -> anyhow::Result<ProtocolVersion> {
        match level {
            3 => Ok(ProtocolVersion::V31),
            4 => Ok(ProtocolVersion::V311),
            5 => Ok(ProtocolVersion::V5),
            other => bail!("-V {other}: the protocol level must be 3, 4 or 5"),
        }
    }
}

/// Who a client is and where it connects from and to.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// Global client index (`%i`).
    pub index: u64,
    /// Client identifier (`%c`).
    pub client_id: String,
    /// Broker address.
    pub broker: SocketAddr,
    /// Local address to bind, if any.
    pub source: Option<IpAddr>,
}

/// An established MQTT connection (CONNACK received).
#[derive(Debug)]
pub struct Connection {
    /// The byte stream (TCP, or TLS / WebSocket over it).
    pub stream: Stream,
    /// Decoder for server → client packets.
    pub decoder: Decoder,
    /// Encoder for client → server packets.
    pub encoder: Encoder,
    /// Bytes read but not decoded yet.
    pub rbuf: BytesMut,
    /// Bytes reserved per read (the config's `read_buffer`).
    pub read_buffer: usize,
    /// The server's Receive Maximum: QoS 1/2 publishes it accepts unacknowledged.
    pub receive_maximum: u16,
    /// Keep Alive in force (the server's if it set one), seconds.
    pub keepalive: u16,
}

/// Connects and completes the MQTT handshake; returns the connection and
/// the handshake latency (TCP connect start → CONNACK, TLS and WebSocket included) in nanoseconds.
pub async fn connect(spec: &ClientSpec, cfg: &ClientConfig) -> anyhow::Result<(Connection, u64)> {
    let started = now_ns();
    let conn = tokio::time::timeout(cfg.connect_timeout, handshake(spec, cfg))
        .await
        .map_err(|_| anyhow!("connect timed out after {:?}", cfg.connect_timeout))??;
    Ok((conn, now_ns().saturating_sub(started)))
}

async fn handshake(spec: &ClientSpec, cfg: &ClientConfig) -> anyhow::Result<Connection> {
    let socket = if spec.broker.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .context("socket")?;
    if let Some(ip) = spec.source {
        // Without this, bind reserves an ephemeral port host-wide (the kernel
        // cannot know the destination yet), so 60,000 clients from one source
        // address took every port the host had and other programs' connects
        // failed with EADDRNOTAVAIL. With it, connect picks the port, unique
        // per 4-tuple only. Best effort: a kernel without it (< 4.2) still works.
        let _ = roost_sys::set_ip_bind_address_no_port(&socket, true);
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let tcp = socket
        .connect(spec.broker)
        .await
        .with_context(|| format!("TCP connect to {}", spec.broker))?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let mut stream = cfg.transport.establish(tcp).await?;

    let encoder = Encoder::new(cfg.version);
    let connect = Connect {
        protocol: cfg.version,
        clean_start: cfg.clean,
        keep_alive: cfg.keepalive,
        client_id: ByteString::from(spec.client_id.as_str()),
        will: None,
        username: cfg.username.clone(),
        password: cfg.password.clone(),
        properties: ConnectProperties {
            session_expiry_interval: (cfg.version.is_v5() && cfg.session_expiry > 0)
                .then_some(cfg.session_expiry),
            ..ConnectProperties::default()
        },
    };
    let mut out = BytesMut::with_capacity(128);
    encoder
        .encode(&Packet::Connect(Box::new(connect)), &mut out)
        .context("encode CONNECT")?;
    transport::send(&mut stream, &out)
        .await
        .context("send CONNECT")?;

    let mut decoder = Decoder::client(cfg.version, PROTOCOL_MAX_PACKET_SIZE);
    let mut rbuf = BytesMut::with_capacity(cfg.read_buffer);
    let connack = loop {
        if let Some(packet) = decoder.decode(&mut rbuf).context("decode CONNACK")? {
            match packet {
                Packet::ConnAck(ack) => break ack,
                other => bail!("expected CONNACK, got {:?}", other.packet_type()),
            }
        }
        if stream.read_buf(&mut rbuf).await.context("read CONNACK")? == 0 {
            bail!("connection closed before CONNACK");
        }
    };
    if connack.reason_code.is_error() {
        bail!("CONNACK refused: {}", connack.reason_code);
    }
    Ok(Connection {
        stream,
        decoder,
        encoder,
        rbuf,
        read_buffer: cfg.read_buffer,
        receive_maximum: connack.properties.receive_maximum.unwrap_or(u16::MAX),
        keepalive: connack
            .properties
            .server_keep_alive
            .unwrap_or(cfg.keepalive),
    })
}

/// Appends a SUBSCRIBE for one filter.
pub fn encode_subscribe(
    encoder: &Encoder,
    packet_id: NonZeroU16,
    filter: &str,
    qos: QoS,
    out: &mut BytesMut,
) -> anyhow::Result<()> {
    let subscribe = Subscribe {
        packet_id,
        filters: vec![(
            ByteString::from(filter),
            SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        )],
        properties: SubscribeProperties::default(),
    };
    encoder
        .encode(&Packet::Subscribe(subscribe), out)
        .context("encode SUBSCRIBE")
}

/// Appends an acknowledgement (PUBACK, PUBREC, PUBREL or PUBCOMP) built by `make`.
pub fn encode_ack(
    encoder: &Encoder,
    packet_id: NonZeroU16,
    make: fn(PubResponse) -> Packet,
    out: &mut BytesMut,
) -> anyhow::Result<()> {
    encoder
        .encode(&make(PubResponse::success(packet_id)), out)
        .context("encode acknowledgement")
}

/// Appends a PINGREQ.
pub fn encode_pingreq(encoder: &Encoder, out: &mut BytesMut) -> anyhow::Result<()> {
    encoder
        .encode(&Packet::PingReq, out)
        .context("encode PINGREQ")
}

/// Appends a normal DISCONNECT.
pub fn encode_disconnect(encoder: &Encoder, out: &mut BytesMut) -> anyhow::Result<()> {
    encoder
        .encode(&Packet::Disconnect(Disconnect::default()), out)
        .context("encode DISCONNECT")
}

/// The interval between PINGREQs for a Keep Alive (None when disabled):
/// three quarters of it, so a ping always lands before the broker's 1.5×
/// deadline even on a loaded box.
pub fn ping_interval(keepalive: u16) -> Option<Duration> {
    (keepalive > 0).then(|| Duration::from_millis(u64::from(keepalive) * 750))
}
