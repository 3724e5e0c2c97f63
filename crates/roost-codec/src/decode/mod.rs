//! The decoder: frames packets out of a [`BytesMut`] (partial input, several
//! packets, garbage) and dispatches each to its packet's file.
//!
//! Framing order, so that hostile input is rejected as early as possible:
//! 1. packet type (reserved types; a server connection must start with CONNECT),
//! 2. fixed-header flags (reserved bits, PUBLISH QoS 3, DUP at QoS 0),
//! 3. Remaining Length (at most 4 bytes, minimal),
//! 4. Maximum Packet Size, from the header alone: nothing is buffered or
//!    allocated for a packet that is too large,
//! 5. wait until the whole packet is there, split it off the buffer
//!    (`split_to(len).freeze()`) and parse fields as slices of it.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod subscribe;
mod unsubscribe;

use bytes::{Buf, BytesMut};

use crate::error::DecodeError;
use crate::packet::{Packet, PacketType};
use crate::reader::Reader;
use crate::types::ProtocolVersion;
use crate::varint::{self, VarintRead};

/// The largest packet MQTT can express: 1 type byte, 4 length bytes and a
/// Remaining Length of 268,435,455.
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 1 + 4 + varint::MAX_VARINT;

/// Which side of the connection this decoder sits on. A few rules depend on
/// the direction and are stated as such in the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Decodes client → server packets.
    Server,
    /// Decodes server → client packets.
    Client,
}

/// Sans-IO MQTT decoder for one connection.
#[derive(Debug, Clone)]
pub struct Decoder {
    role: Role,
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
}

impl Decoder {
    /// Server side: decodes client → server packets. The first packet must be
    /// CONNECT; its protocol level fixes the version (3 → 3.1 `MQIsdp`,
    /// 4 → 3.1.1, 5 → 5.0) for the rest of the connection. The version is
    /// fixed as soon as the level is read, even if the rest of the CONNECT is
    /// bad, so the caller knows how to answer.
    pub fn server(max_packet_size: u32) -> Self {
        Self {
            role: Role::Server,
            version: None,
            max_packet_size,
        }
    }

    /// Server side for a connection whose CONNECT already fixed `version`:
    /// the decoder [`Self::server`] becomes after that CONNECT (e.g. rebuilt
    /// for a connection resumed after hibernating, which keeps no decoder).
    pub fn server_resumed(version: ProtocolVersion, max_packet_size: u32) -> Self {
        Self {
            role: Role::Server,
            version: Some(version),
            max_packet_size,
        }
    }

    /// Client side with a known version: decodes server → client packets.
    pub fn client(version: ProtocolVersion, max_packet_size: u32) -> Self {
        Self {
            role: Role::Client,
            version: Some(version),
            max_packet_size,
        }
    }

    /// The connection's protocol version, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Changes the largest packet (fixed header included) this decoder
    /// accepts; larger ones fail with [`DecodeError::PacketTooLarge`].
    pub fn set_max_packet_size(&mut self, max: u32) {
        self.max_packet_size = max;
    }

    /// The largest packet this decoder accepts.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Decodes one packet from the front of `buf`.
    ///
    /// * `Ok(None)`: more bytes are needed; `buf` is untouched.
    /// * `Ok(Some(packet))`: the packet's bytes were split off the front of
    ///   `buf`; its topic, payload and strings are slices of them (no copy).
    /// * `Err(e)`: the peer misbehaved; close the connection, reporting
    ///   `ReasonCode::from(&e)` where the version allows.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type = self.packet_type(first >> 4)?;
        let flags = first & 0x0F;
        check_flags(packet_type, flags)?;

        let (remaining, len_bytes) = match varint::read(&buf[1..]) {
            VarintRead::Done(value, n) => (value, n),
            VarintRead::Incomplete => return Ok(None),
            VarintRead::TooLong => {
                return Err(DecodeError::VarintTooLong {
                    field: "remaining length",
                });
            }
            VarintRead::NonMinimal => {
                return Err(DecodeError::NonMinimalVarint {
                    field: "remaining length",
                });
            }
        };
        let header = 1 + len_bytes;
        // u32 → usize cannot fail on 32/64-bit targets; saturate otherwise.
        let size = header.saturating_add(usize::try_from(remaining).unwrap_or(usize::MAX));
        if size > usize::try_from(self.max_packet_size).unwrap_or(usize::MAX) {
            return Err(DecodeError::PacketTooLarge {
                size,
                max: self.max_packet_size,
            });
        }
        if buf.len() < size {
            return Ok(None);
        }

        let mut frame = buf.split_to(size).freeze();
        // Dropping the fixed header in place avoids a second reference count.
        frame.advance(header);
        let mut r = Reader::new(frame, packet_type);
        self.parse(packet_type, flags, &mut r).map(Some)
    }

    /// Validates the packet type nibble against the connection state.
    fn packet_type(&self, nibble: u8) -> Result<PacketType, DecodeError> {
        let reserved = DecodeError::ReservedPacketType {
            packet_type: nibble,
        };
        let Some(packet_type) = packet_type_from(nibble) else {
            return Err(reserved);
        };
        match self.version {
            None if packet_type != PacketType::Connect => Err(DecodeError::FirstPacketNotConnect {
                packet_type: nibble,
            }),
            Some(v) if packet_type == PacketType::Auth && !v.is_v5() => Err(reserved),
            _ => Ok(packet_type),
        }
    }

    fn parse(
        &mut self,
        packet_type: PacketType,
        flags: u8,
        r: &mut Reader,
    ) -> Result<Packet, DecodeError> {
        // `packet_type` refused everything but CONNECT while the version is
        // unknown; `version()` repeats that check for the arms that need it.
        let known = self.version;
        let version = || {
            known.ok_or(DecodeError::FirstPacketNotConnect {
                packet_type: packet_type as u8,
            })
        };
        let role = self.role;
        // A server-only packet from a client is a Protocol Error however its
        // body looks (its fixed-header flags were checked: wrong ones are
        // still malformed). Its bytes are consumed, so nothing stalls.
        if role == Role::Server
            && matches!(
                packet_type,
                PacketType::ConnAck
                    | PacketType::SubAck
                    | PacketType::UnsubAck
                    | PacketType::PingResp
            )
        {
            return Err(DecodeError::WrongDirection { packet_type });
        }
        Ok(match packet_type {
            PacketType::Connect => {
                Packet::Connect(Box::new(connect::decode(r, &mut self.version)?))
            }
            PacketType::ConnAck => Packet::ConnAck(connack::decode(r, version()?)?),
            PacketType::Publish => Packet::Publish(publish::decode(r, flags, version()?, role)?),
            PacketType::PubAck => Packet::PubAck(ack::decode(r, version()?)?),
            PacketType::PubRec => Packet::PubRec(ack::decode(r, version()?)?),
            PacketType::PubRel => Packet::PubRel(ack::decode(r, version()?)?),
            PacketType::PubComp => Packet::PubComp(ack::decode(r, version()?)?),
            PacketType::Subscribe => Packet::Subscribe(subscribe::decode_subscribe(r, version()?)?),
            PacketType::SubAck => Packet::SubAck(subscribe::decode_suback(r, version()?)?),
            PacketType::Unsubscribe => {
                Packet::Unsubscribe(unsubscribe::decode_unsubscribe(r, version()?)?)
            }
            PacketType::UnsubAck => Packet::UnsubAck(unsubscribe::decode_unsuback(r, version()?)?),
            PacketType::PingReq => {
                r.finish()?;
                Packet::PingReq
            }
            PacketType::PingResp => {
                r.finish()?;
                Packet::PingResp
            }
            PacketType::Disconnect => Packet::Disconnect(disconnect::decode(r, version()?, role)?),
            PacketType::Auth => Packet::Auth(auth::decode(r)?),
        })
    }
}

/// The packet type for a fixed-header nibble; `None` for reserved 0.
pub(crate) fn packet_type_from(nibble: u8) -> Option<PacketType> {
    Some(match nibble {
        1 => PacketType::Connect,
        2 => PacketType::ConnAck,
        3 => PacketType::Publish,
        4 => PacketType::PubAck,
        5 => PacketType::PubRec,
        6 => PacketType::PubRel,
        7 => PacketType::PubComp,
        8 => PacketType::Subscribe,
        9 => PacketType::SubAck,
        10 => PacketType::Unsubscribe,
        11 => PacketType::UnsubAck,
        12 => PacketType::PingReq,
        13 => PacketType::PingResp,
        14 => PacketType::Disconnect,
        15 => PacketType::Auth,
        _ => return None,
    })
}

/// Fixed-header flag rules (5.0 Table 2-2 [MQTT-2.1.3-1], 3.1.1 Table 2.2
/// [MQTT-2.2.2-1]): PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010, PUBLISH
/// carries DUP/QoS/RETAIN, every other packet 0. Checked before the packet
/// is buffered.
fn check_flags(packet_type: PacketType, flags: u8) -> Result<(), DecodeError> {
    let expected = match packet_type {
        PacketType::Publish => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::PublishQos3);
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::DupOnQos0);
            }
            return Ok(());
        }
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
        _ => 0,
    };
    if flags == expected {
        Ok(())
    } else {
        Err(DecodeError::InvalidFixedHeaderFlags { packet_type, flags })
    }
}

/// Reads a non-zero Packet Identifier [MQTT-2.2.1-3].
pub(crate) fn read_packet_id(r: &mut Reader) -> Result<crate::PacketId, DecodeError> {
    let raw = r.u16("packet identifier")?;
    crate::PacketId::new(raw).ok_or(DecodeError::PacketIdZero {
        packet_type: r.packet_type(),
    })
}
