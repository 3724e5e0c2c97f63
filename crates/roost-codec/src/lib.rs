//! # roost-codec
//!
//! A sans-IO, zero-copy encoder and decoder for every MQTT control packet of
//! MQTT 3.1 (protocol level 3), 3.1.1 (level 4) and 5.0 (level 5).
//!
//! ```text
//!  socket bytes ──▶ BytesMut ──▶ Decoder::decode ──▶ Packet { topic: ByteString, payload: Bytes }
//!                                   │  (slices of the read buffer: no copy)
//!                                   └─ DecodeError { spec id } ──▶ ReasonCode (one table)
//!  Packet ──▶ Encoder::encode ──▶ caller's BytesMut
//!  Publish ──▶ Encoder::encode_publish_header ──▶ header bytes; payload Bytes chained by the caller
//! ```
//!
//! The codec does no I/O and has no async runtime dependency. Packets are
//! version-neutral ([`Packet`]); the [`Decoder`] and [`Encoder`] of a
//! connection know its [`ProtocolVersion`] and read or write that version's
//! wire form. Every validation rule is tagged with the id of the normative
//! statement it enforces (see [`DecodeError::spec_id`]), and
//! `ReasonCode::from(&DecodeError)` is the one table that maps errors to
//! reason codes. See `docs/codec.md` for the full rule table.
//!
//! ```
//! use bytes::BytesMut;
//! use roost_codec::{Decoder, Encoder, Packet, ProtocolVersion, ReasonCode};
//!
//! // A 3.1.1 CONNECT (client id "c") followed by half of a PINGREQ.
//! let mut read_buf = BytesMut::from(&b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c\xc0"[..]);
//! let mut decoder = Decoder::server(1024 * 1024);
//! let Some(Packet::Connect(connect)) = decoder.decode(&mut read_buf)? else { unreachable!() };
//! assert_eq!(decoder.version(), Some(ProtocolVersion::V311));
//! assert_eq!(&*connect.client_id, "c");
//! assert_eq!(decoder.decode(&mut read_buf)?, None); // need more bytes
//!
//! // Errors map to a reason code in one place.
//! let mut garbage = BytesMut::from(&b"\x36\x00"[..]); // PUBLISH with QoS 3
//! let err = decoder.decode(&mut garbage).unwrap_err();
//! assert_eq!(ReasonCode::from(&err), ReasonCode::MALFORMED_PACKET);
//! assert_eq!(err.spec_id(), Some("MQTT-3.3.1-4"));
//!
//! let mut out = BytesMut::new();
//! Encoder::new(ProtocolVersion::V311).encode(&Packet::PingResp, &mut out)?;
//! assert_eq!(&out[..], b"\xd0\x00");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// Tests may unwrap: a panic there is a failed test, not a peer-triggered crash.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod decode;
mod encode;
pub mod error;
pub mod packet;
mod props;
mod reader;
pub mod topic;
pub mod types;
mod varint;

pub use decode::{Decoder, PROTOCOL_MAX_PACKET_SIZE};
pub use encode::Encoder;
pub use error::{DecodeError, EncodeError};
pub use packet::*;
pub use topic::TopicError;
pub use types::*;
pub use varint::MAX_VARINT;
