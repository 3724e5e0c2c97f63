//! Builders for the packets tests send. Each returns a packet with the usual
//! defaults; tests change public fields for anything else.

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{
    Connect, Disconnect, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS, Subscribe,
    SubscribeProperties, SubscriptionOptions, Unsubscribe,
};

/// A packet identifier from a literal.
///
/// # Panics
/// On 0, which is never a valid packet identifier: a bug in the test itself.
pub fn pid(id: u16) -> PacketId {
    match PacketId::new(id) {
        Some(id) => id,
        None => panic!("packet identifier 0 is invalid [MQTT-2.2.1-3]"),
    }
}

/// CONNECT with Clean Start, a 30 s keep alive and no will or credentials.
pub fn connect(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 30,
        client_id: ByteString::from(client_id),
        ..Connect::default()
    }
}

/// 5.0 CONNECT resuming (Clean Start 0) a session that lasts 300 s after
/// its connection: what the cluster tests move between nodes.
pub fn connect_persistent(client_id: &str) -> Connect {
    let mut connect = connect(ProtocolVersion::V5, client_id);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(300);
    connect
}

/// PUBLISH of `payload` to `topic`; `packet_id` must be `Some` for QoS 1 and 2.
pub fn publish(
    topic: &str,
    payload: impl Into<Bytes>,
    qos: QoS,
    packet_id: Option<u16>,
) -> Publish {
    Publish {
        qos,
        topic: ByteString::from(topic),
        packet_id: packet_id.map(pid),
        payload: payload.into(),
        ..Publish::default()
    }
}

/// SUBSCRIBE to one filter at `qos`, other options at their defaults.
pub fn subscribe(packet_id: u16, filter: &str, qos: QoS) -> Subscribe {
    subscribe_with(
        packet_id,
        filter,
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
    )
}

/// SUBSCRIBE to one filter with explicit options.
pub fn subscribe_with(packet_id: u16, filter: &str, options: SubscriptionOptions) -> Subscribe {
    Subscribe {
        packet_id: pid(packet_id),
        filters: vec![(ByteString::from(filter), options)],
        properties: SubscribeProperties::default(),
    }
}

/// UNSUBSCRIBE from one filter.
pub fn unsubscribe(packet_id: u16, filter: &str) -> Unsubscribe {
    Unsubscribe {
        packet_id: pid(packet_id),
        filters: vec![ByteString::from(filter)],
        user_properties: Vec::new(),
    }
}

/// PUBACK for `packet_id`.
pub fn puback(packet_id: u16) -> Packet {
    Packet::PubAck(PubResponse::success(pid(packet_id)))
}

/// PUBREC for `packet_id`.
pub fn pubrec(packet_id: u16) -> Packet {
    Packet::PubRec(PubResponse::success(pid(packet_id)))
}

/// PUBREL for `packet_id`.
pub fn pubrel(packet_id: u16) -> Packet {
    Packet::PubRel(PubResponse::success(pid(packet_id)))
}

/// PUBCOMP for `packet_id`.
pub fn pubcomp(packet_id: u16) -> Packet {
    Packet::PubComp(PubResponse::success(pid(packet_id)))
}

/// DISCONNECT with reason 0x00 (Normal disconnection).
pub fn disconnect() -> Packet {
    Packet::Disconnect(Disconnect::default())
}

/// A client id no other test uses: `prefix` plus the process id and a counter.
pub fn unique_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Packet structs that [`crate::RawClient::send`] accepts directly, so tests
/// write `client.send(publish(..))` instead of wrapping in [`Packet`].
pub trait IntoPacket {
    /// Wraps `self` in its [`Packet`] variant.
    fn into_packet(self) -> Packet;
}

impl IntoPacket for Packet {
    fn into_packet(self) -> Packet {
        self
    }
}

impl IntoPacket for Connect {
    fn into_packet(self) -> Packet {
        Packet::Connect(Box::new(self))
    }
}

impl IntoPacket for Publish {
    fn into_packet(self) -> Packet {
        Packet::Publish(self)
    }
}

impl IntoPacket for Subscribe {
    fn into_packet(self) -> Packet {
        Packet::Subscribe(self)
    }
}

impl IntoPacket for Unsubscribe {
    fn into_packet(self) -> Packet {
        Packet::Unsubscribe(self)
    }
}

impl IntoPacket for Disconnect {
    fn into_packet(self) -> Packet {
        Packet::Disconnect(self)
    }
}
