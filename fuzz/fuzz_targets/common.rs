//! Shared by the fuzz targets: drive a decoder over a whole buffer and check
//! the invariants that must hold for any input.

// Each target uses only some of these helpers.
#![allow(dead_code)]

use bytes::BytesMut;
use roost_codec::{Decoder, Encoder, Packet, ProtocolVersion};

/// Decodes every packet in `data`; stops at the first error or when more
/// bytes are needed. Each decoded packet must have consumed bytes, and must
/// be encodable again in the decoder's version.
pub fn drain(decoder: &mut Decoder, data: &[u8]) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                assert!(buf.len() < before, "a decoded packet must consume bytes");
                if let Some(version) = decoder.version() {
                    reencode(version, &packet);
                }
            }
            Ok(None) => {
                assert_eq!(
                    buf.len(),
                    before,
                    "need-more must leave the buffer untouched"
                );
                return;
            }
            Err(e) => {
                // Every error maps to a reason code and formats.
                let _ = roost_codec::ReasonCode::from(&e);
                let _ = e.to_string();
                return;
            }
        }
    }
}

/// The encoder must accept whatever the decoder produced (CONNECT in its own
/// version), and report the size it writes.
pub fn reencode(version: ProtocolVersion, packet: &Packet) {
    let version = match packet {
        Packet::Connect(c) => c.protocol,
        _ => version,
    };
    let encoder = Encoder::new(version);
    let mut out = BytesMut::new();
    match encoder.encode(packet, &mut out) {
        Ok(()) => assert_eq!(encoder.encoded_len(packet).ok(), Some(out.len())),
        Err(e) => panic!("decoded packet does not re-encode: {e} {packet:?}"),
    }
}

/// A valid CONNECT of `version` as bytes.
pub fn connect_bytes(version: ProtocolVersion) -> BytesMut {
    let connect = roost_codec::Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 30,
        client_id: "fuzz".into(),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    let packet = Packet::Connect(Box::new(connect));
    if Encoder::new(version).encode(&packet, &mut buf).is_err() {
        unreachable!("a minimal CONNECT always encodes");
    }
    buf
}

/// A server decoder that has accepted a CONNECT of `version`.
pub fn server_after_connect(version: ProtocolVersion, max_packet_size: u32) -> Decoder {
    let mut decoder = Decoder::server(max_packet_size);
    let mut connect = connect_bytes(version);
    match decoder.decode(&mut connect) {
        Ok(Some(_)) => decoder,
        other => panic!("fixed CONNECT must decode: {other:?}"),
    }
}
