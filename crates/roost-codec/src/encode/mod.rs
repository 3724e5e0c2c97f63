//! The encoder: writes packets into the caller's buffer. Every body is first
//! measured (same code, into a counter) so that limits are checked and the
//! buffer is reserved once before anything is written.

mod ack;
mod connect;
mod disconnect;
mod props;
mod publish;
mod sink;
mod subscribe;

use bytes::BytesMut;

use crate::decode::PROTOCOL_MAX_PACKET_SIZE;
use crate::error::EncodeError;
use crate::packet::{Packet, PacketType, Publish};
use crate::types::ProtocolVersion;
use crate::varint::{self, MAX_VARINT};

use props::Strip;
use sink::{Counter, Sink, put_varint};

/// Sans-IO MQTT encoder for one connection (cheap to copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    version: ProtocolVersion,
    max_packet_size: u32,
}

/// Whether a PUBLISH body includes its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Include,
    Exclude,
}

impl Encoder {
    /// An encoder for `version`; the maximum packet size is the protocol
    /// maximum until [`Self::with_max_packet_size`] sets the peer's.
    pub fn new(version: ProtocolVersion) -> Self {
        Self {
            version,
            max_packet_size: PROTOCOL_MAX_PACKET_SIZE,
        }
    }

    /// Sets the peer's Maximum Packet Size (total bytes, fixed header included).
    pub fn with_max_packet_size(self, max: u32) -> Self {
        Self {
            max_packet_size: max,
            ..self
        }
    }

    /// The protocol version packets are encoded for.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The peer's Maximum Packet Size in force.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Encodes a whole packet into `buf` (the payload is copied: for acks,
    /// tests and small packets; use [`Self::encode_publish_header`] to send a
    /// PUBLISH payload without copying).
    ///
    /// The encoder writes the version's form: 5.0-only fields are ignored
    /// for 3.x, CONNACK reason codes become return codes
    /// ([`crate::ConnectReturnCode::from_reason`]), SUBACK failures become
    /// 0x80, and CONNECT carries this encoder's protocol name and level.
    /// For 5.0 acknowledgements (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP,
    /// SUBACK, UNSUBACK, DISCONNECT, AUTH) the Reason String, then the User
    /// Properties, are left out if they would exceed the peer's maximum, as
    /// the spec requires. Fails with [`EncodeError::PacketTooLarge`] if the
    /// packet still exceeds it; nothing is written on failure.
    pub fn encode(&self, packet: &Packet, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let full = self.remaining_length(packet, Strip::Nothing, Payload::Include)?;
        let mut chosen = (Strip::Nothing, full);
        if !self.fits(full) {
            if !is_strippable(packet) || !self.version.is_v5() {
                return Err(self.too_large(full));
            }
            let mut found = None;
            for strip in [Strip::ReasonString, Strip::ReasonStringAndUserProperties] {
                let len = self.remaining_length(packet, strip, Payload::Include)?;
                if self.fits(len) {
                    found = Some((strip, len));
                    break;
                }
            }
            chosen = found.ok_or_else(|| self.too_large(full))?;
        }
        let (strip, remaining) = chosen;
        buf.reserve(total_len(remaining));
        buf.put_u8(self.first_byte(packet));
        put_varint(buf, remaining_u32(remaining)?, "remaining length")?;
        self.body(packet, strip, Payload::Include, buf)
    }

    /// Encodes a PUBLISH without its payload: fixed header (whose Remaining
    /// Length counts the payload), Topic Name, Packet Identifier and
    /// properties. The caller writes `publish.payload` right after (vectored
    /// write), so the payload is never copied.
    pub fn encode_publish_header(
        &self,
        publish: &Publish,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let mut header = Counter::default();
        publish::body(self.version, publish, Payload::Exclude, &mut header)?;
        let remaining = header.0.saturating_add(publish.payload.len());
        if !self.fits(remaining) {
            return Err(self.too_large(remaining));
        }
        buf.reserve(total_len(remaining) - publish.payload.len());
        buf.put_u8(publish::first_byte(publish));
        put_varint(buf, remaining_u32(remaining)?, "remaining length")?;
        publish::body(self.version, publish, Payload::Exclude, buf)
    }

    /// Total size on the wire, fixed header included, with every property:
    /// what a Maximum Packet Size is compared against.
    pub fn encoded_len(&self, packet: &Packet) -> Result<usize, EncodeError> {
        let remaining = self.remaining_length(packet, Strip::Nothing, Payload::Include)?;
        remaining_u32(remaining)?;
        Ok(total_len(remaining))
    }

    /// Total size on the wire of a PUBLISH, payload included. A PUBLISH that
    /// cannot be encoded at all (a field over 65,535 bytes) reports
    /// `usize::MAX`, so it never passes a size check.
    pub fn publish_len(&self, publish: &Publish) -> usize {
        let mut c = Counter::default();
        match publish::body(self.version, publish, Payload::Include, &mut c) {
            Ok(()) => total_len(c.0),
            Err(_) => usize::MAX,
        }
    }

    /// Remaining Length of `packet` encoded with `strip`.
    fn remaining_length(
        &self,
        packet: &Packet,
        strip: Strip,
        payload: Payload,
    ) -> Result<usize, EncodeError> {
        let mut c = Counter::default();
        self.body(packet, strip, payload, &mut c)?;
        Ok(c.0)
    }

    fn fits(&self, remaining: usize) -> bool {
        remaining <= MAX_VARINT as usize
            && total_len(remaining) <= usize::try_from(self.max_packet_size).unwrap_or(usize::MAX)
    }

    fn too_large(&self, remaining: usize) -> EncodeError {
        if remaining > MAX_VARINT as usize {
            EncodeError::RemainingLengthTooLarge { len: remaining }
        } else {
            EncodeError::PacketTooLarge {
                size: total_len(remaining),
                max: self.max_packet_size,
            }
        }
    }

    fn first_byte(&self, packet: &Packet) -> u8 {
        let packet_type = packet.packet_type();
        let flags = match packet {
            Packet::Publish(p) => return publish::first_byte(p),
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        ((packet_type as u8) << 4) | flags
    }

    fn body<S: Sink>(
        &self,
        packet: &Packet,
        strip: Strip,
        payload: Payload,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        let v = self.version;
        match packet {
            Packet::Connect(c) => connect::connect(v, c, s),
            Packet::ConnAck(c) => connect::connack(v, c, strip, s),
            Packet::Publish(p) => publish::body(v, p, payload, s),
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                ack::pub_response(v, a, strip, s)
            }
            Packet::Subscribe(sub) => subscribe::subscribe(v, sub, s),
            Packet::SubAck(a) => ack::suback(v, a, strip, s),
            Packet::Unsubscribe(u) => subscribe::unsubscribe(v, u, s),
            Packet::UnsubAck(a) => ack::unsuback(v, a, strip, s),
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(d) => disconnect::disconnect(v, d, strip, s),
            Packet::Auth(a) => {
                if !v.is_v5() {
                    return Err(EncodeError::NotInVersion {
                        packet_type: PacketType::Auth,
                        version: v,
                    });
                }
                disconnect::auth(a, strip, s)
            }
        }
    }
}

/// Packets whose Reason String and User Properties must be dropped rather
/// than exceed the receiver's Maximum Packet Size.
fn is_strippable(packet: &Packet) -> bool {
    matches!(
        packet,
        Packet::ConnAck(_)
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::Disconnect(_)
            | Packet::Auth(_)
    )
}

/// Fixed header + Remaining Length.
fn total_len(remaining: usize) -> usize {
    let len_bytes = u32::try_from(remaining).map_or(4, varint::len);
    1 + len_bytes + remaining
}

fn remaining_u32(remaining: usize) -> Result<u32, EncodeError> {
    u32::try_from(remaining)
        .ok()
        .filter(|&r| r <= MAX_VARINT)
        .ok_or(EncodeError::RemainingLengthTooLarge { len: remaining })
}
