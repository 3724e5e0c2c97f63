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
//! The codec does no I/O and has no async runtime dependency.

pub mod packet;
pub mod types;

pub use packet::*;
pub use types::*;
