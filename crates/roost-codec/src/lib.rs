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
