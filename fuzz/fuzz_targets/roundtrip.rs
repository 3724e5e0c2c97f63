//! decode → encode → decode must give the same packet, and the zero-copy
//! PUBLISH header plus payload must equal the full encoding. The first byte
//! picks the version (client decoder: accepts every packet type).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use roost_codec::{Decoder, Encoder, Packet, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let version = match selector % 3 {
        0 => ProtocolVersion::V31,
        1 => ProtocolVersion::V311,
        _ => ProtocolVersion::V5,
    };
    let mut decoder = Decoder::client(version, 1 << 20);
    let mut buf = BytesMut::from(rest);
    while let Ok(Some(packet)) = decoder.decode(&mut buf) {
        let encode_version = match &packet {
            Packet::Connect(c) => c.protocol,
            _ => version,
        };
        let encoder = Encoder::new(encode_version);
        let mut wire = BytesMut::new();
        if let Err(e) = encoder.encode(&packet, &mut wire) {
            panic!("decoded packet does not re-encode: {e} {packet:?}");
        }
        if let Packet::Publish(p) = &packet {
            let mut header = BytesMut::new();
            assert!(encoder.encode_publish_header(p, &mut header).is_ok());
            header.extend_from_slice(&p.payload);
            assert_eq!(
                header, wire,
                "header + payload differs from the full encoding"
            );
        }
        let mut again = Decoder::client(version, 1 << 20);
        let mut copy = wire.clone();
        match again.decode(&mut copy) {
            Ok(Some(decoded)) => {
                assert_eq!(decoded, packet, "round trip changed the packet");
                assert!(copy.is_empty(), "re-encoding has trailing bytes");
            }
            other => panic!("re-encoded packet does not decode: {other:?} {packet:?}"),
        }
    }
});
