//! Streaming behaviour: partial input, several packets per buffer, garbage,
//! and Maximum Packet Size enforced from the fixed header alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::BytesMut;
use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use roost_codec::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every strict prefix of a valid packet needs more bytes and leaves the
    /// buffer untouched; the full packet then decodes.
    #[test]
    fn every_prefix_of_a_valid_packet_needs_more(
        v in proptest::sample::select(VERSIONS.to_vec()),
        seed in any::<u64>(),
    ) {
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(
            ProptestConfig::default(),
            proptest::test_runner::TestRng::from_seed(
                proptest::test_runner::RngAlgorithm::ChaCha,
                &[seed.to_le_bytes(), seed.to_le_bytes(), seed.to_le_bytes(), seed.to_le_bytes()].concat(),
            ),
        );
        let packet = packet(v).new_tree(&mut runner).unwrap().current();
        let bytes = encode(v, &packet);
        for cut in 0..bytes.len() {
            let mut d = decoder_for(v, &packet);
            let mut buf = BytesMut::from(&bytes[..cut]);
            prop_assert_eq!(d.decode(&mut buf), Ok(None), "prefix of {} bytes", cut);
            prop_assert_eq!(&buf[..], &bytes[..cut]);
        }
        let mut d = decoder_for(v, &packet);
        let mut buf = bytes.clone();
        prop_assert_eq!(d.decode(&mut buf).unwrap(), Some(packet));
    }

    /// Packets concatenated in one buffer come out in order, and a byte at a
    /// time works as well.
    #[test]
    fn several_packets_in_one_buffer_decode_in_order(
        packets in vec(publish(ProtocolVersion::V5).prop_map(Packet::Publish), 1..8),
        byte_at_a_time in any::<bool>(),
    ) {
        let mut wire = BytesMut::new();
        for p in &packets {
            Encoder::new(ProtocolVersion::V5).encode(p, &mut wire).unwrap();
        }
        let mut d = Decoder::client(ProtocolVersion::V5, PROTOCOL_MAX_PACKET_SIZE);
        let mut out = Vec::new();
        if byte_at_a_time {
            let mut buf = BytesMut::new();
            for b in wire.iter() {
                buf.extend_from_slice(&[*b]);
                while let Some(p) = d.decode(&mut buf).unwrap() {
                    out.push(p);
                }
            }
        } else {
            while let Some(p) = d.decode(&mut wire).unwrap() {
                out.push(p);
            }
            prop_assert!(wire.is_empty());
        }
        prop_assert_eq!(out, packets);
    }

    /// Arbitrary bytes never panic, in either role and any version; a
    /// decoded packet always consumes bytes.
    #[test]
    fn garbage_never_panics(
        v in proptest::sample::select(VERSIONS.to_vec()),
        server in any::<bool>(),
        bytes in vec(any::<u8>(), 0..64),
    ) {
        let mut d = if server { server_after_connect(v) } else { Decoder::client(v, 1024) };
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = d.decode(&mut buf) {}
        let mut fresh = Decoder::server(1024);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = fresh.decode(&mut buf) {}
    }
}

#[test]
fn huge_remaining_length_is_rejected_without_allocating() {
    let mut d = server_after_connect(ProtocolVersion::V5);
    d.set_max_packet_size(1024);
    // PUBLISH announcing a Remaining Length of 268,435,455 (256 MB).
    let mut buf = BytesMut::with_capacity(8);
    buf.extend_from_slice(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
    let capacity = buf.capacity();
    let err = d.decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: 1024
        }
    );
    assert_eq!(ReasonCode::from(&err), ReasonCode::PACKET_TOO_LARGE);
    assert_eq!(
        buf.capacity(),
        capacity,
        "decoder must not reserve for a rejected packet"
    );
    assert_eq!(buf.len(), 5);
}

#[test]
fn huge_remaining_length_within_the_limit_waits_without_allocating() {
    let mut d = Decoder::client(ProtocolVersion::V311, PROTOCOL_MAX_PACKET_SIZE);
    let mut buf = BytesMut::with_capacity(8);
    buf.extend_from_slice(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00]);
    let capacity = buf.capacity();
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(buf.capacity(), capacity);
}

#[test]
fn too_large_is_detected_before_connect_too() {
    let mut d = Decoder::server(64);
    let mut buf = BytesMut::from(&[0x10, 0x80, 0x01][..]);
    assert_eq!(
        d.decode(&mut buf),
        Err(DecodeError::PacketTooLarge { size: 131, max: 64 })
    );
}

#[test]
fn incomplete_remaining_length_needs_more() {
    let mut d = server_after_connect(ProtocolVersion::V5);
    for bytes in [
        &[0x30][..],
        &[0x30, 0x80],
        &[0x30, 0xFF, 0xFF],
        &[0x30, 0xFF, 0xFF, 0xFF],
    ] {
        let mut buf = BytesMut::from(bytes);
        assert_eq!(d.decode(&mut buf), Ok(None), "{bytes:02X?}");
        assert_eq!(&buf[..], bytes);
    }
}

#[test]
fn empty_buffer_needs_more() {
    let mut d = Decoder::server(1024);
    assert_eq!(d.decode(&mut BytesMut::new()), Ok(None));
}
