//! Property tests: for every packet type and every protocol version, a valid
//! packet encodes, reports its exact size, and decodes back to itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::BytesMut;
use common::*;
use proptest::prelude::*;
use roost_codec::*;

fn round_trip(version: ProtocolVersion, packet: &Packet) -> Result<(), TestCaseError> {
    let encoder = Encoder::new(version);
    let mut buf = BytesMut::new();
    encoder
        .encode(packet, &mut buf)
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    prop_assert_eq!(encoder.encoded_len(packet).unwrap(), buf.len());

    let mut decoder = decoder_for(version, packet);
    let decoded = decoder
        .decode(&mut buf)
        .map_err(|e| TestCaseError::fail(format!("decode {packet:?}: {e}")))?
        .ok_or_else(|| TestCaseError::fail("incomplete"))?;
    prop_assert!(buf.is_empty(), "decoder left {} bytes", buf.len());
    prop_assert_eq!(&decoded, packet);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_packet_round_trips_in_v31(p in packet(ProtocolVersion::V31)) {
        round_trip(ProtocolVersion::V31, &p)?;
    }

    #[test]
    fn every_packet_round_trips_in_v311(p in packet(ProtocolVersion::V311)) {
        round_trip(ProtocolVersion::V311, &p)?;
    }

    #[test]
    fn every_packet_round_trips_in_v5(p in packet(ProtocolVersion::V5)) {
        round_trip(ProtocolVersion::V5, &p)?;
    }

    /// The zero-copy path writes exactly the bytes of the copying path.
    #[test]
    fn publish_header_plus_payload_equals_full_encoding(
        v in proptest::sample::select(VERSIONS.to_vec()),
        p in publish(ProtocolVersion::V5),
    ) {
        let p = if v.is_v5() { p } else { Publish { properties: PublishProperties::default(), ..p } };
        let enc = Encoder::new(v);
        let mut full = BytesMut::new();
        enc.encode(&Packet::Publish(p.clone()), &mut full).unwrap();
        let mut header = BytesMut::new();
        enc.encode_publish_header(&p, &mut header).unwrap();
        header.extend_from_slice(&p.payload);
        prop_assert_eq!(&header[..], &full[..]);
        prop_assert_eq!(enc.publish_len(&p), full.len());
    }

    /// Decoded topics and payloads point into the read buffer (no copy).
    #[test]
    fn decoded_publish_is_a_slice_of_the_input(p in publish(ProtocolVersion::V5)) {
        let mut buf = encode(ProtocolVersion::V5, &Packet::Publish(p));
        let start = buf.as_ptr() as usize;
        let end = start + buf.len();
        let decoded = Decoder::client(ProtocolVersion::V5, PROTOCOL_MAX_PACKET_SIZE)
            .decode(&mut buf).unwrap().unwrap();
        let Packet::Publish(d) = decoded else { return Err(TestCaseError::fail("not a PUBLISH")) };
        for slice in [d.topic.as_bytes().as_ref(), d.payload.as_ref()] {
            if !slice.is_empty() {
                let at = slice.as_ptr() as usize;
                prop_assert!(at >= start && at + slice.len() <= end);
            }
        }
    }
}

/// A resumed server decoder is the one that decoded the CONNECT.
#[test]
fn a_resumed_server_decoder_is_the_decoder_after_connect() {
    for v in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        assert_eq!(
            format!("{:?}", Decoder::server_resumed(v, PROTOCOL_MAX_PACKET_SIZE)),
            format!("{:?}", server_after_connect(v)),
        );
    }
}
