//! Codec micro-benchmarks: decode and encode of a 16 B and a 1 KB PUBLISH in
//! 3.1.1 and 5.0, and of a CONNECT.
//!
//! `cargo bench -p roost-codec -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use roost_codec::*;

/// Packets per read buffer in the `decode_x64` benchmarks.
const STREAM: usize = 64;

fn publish(version: ProtocolVersion, size: usize) -> Publish {
    let mut p = Publish {
        qos: QoS::AtLeastOnce,
        topic: "sensors/building-7/floor-3/room-12/temperature".into(),
        packet_id: PacketId::new(4242),
        payload: Bytes::from(vec![0x5A; size]),
        ..Publish::default()
    };
    if version.is_v5() {
        p.properties.message_expiry_interval = Some(3600);
        p.properties.payload_format_indicator = Some(false);
    }
    p
}

fn connect(version: ProtocolVersion) -> Packet {
    let mut c = Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: "bench-client-0001".into(),
        will: Some(LastWill {
            topic: "clients/bench-client-0001/status".into(),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"secret-password")),
        properties: ConnectProperties::default(),
    };
    if version.is_v5() {
        c.properties.session_expiry_interval = Some(3600);
        c.properties.receive_maximum = Some(100);
        c.properties
            .user_properties
            .push(("app".into(), "bench".into()));
    }
    Packet::Connect(Box::new(c))
}

fn wire(version: ProtocolVersion, packet: &Packet) -> BytesMut {
    let mut buf = BytesMut::new();
    Encoder::new(version).encode(packet, &mut buf).unwrap();
    buf
}

fn label(version: ProtocolVersion) -> &'static str {
    if version.is_v5() { "v5" } else { "v311" }
}

fn bench_publish(c: &mut Criterion) {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for size in [16usize, 1024] {
            let p = publish(version, size);
            let packet = Packet::Publish(p.clone());
            let bytes = wire(version, &packet);
            let mut group = c.benchmark_group(format!("publish_{}_{size}B", label(version)));
            group.throughput(Throughput::Bytes(bytes.len() as u64));

            group.bench_function("decode", |b| {
                let mut decoder = Decoder::client(version, PROTOCOL_MAX_PACKET_SIZE);
                b.iter_batched(
                    || BytesMut::from(&bytes[..]),
                    |mut buf| black_box(decoder.decode(&mut buf).unwrap()),
                    BatchSize::SmallInput,
                );
            });

            // The broker's case: one read buffer holding many packets.
            let stream: BytesMut = (0..STREAM).flat_map(|_| bytes.iter().copied()).collect();
            group.bench_function(format!("decode_x{STREAM}"), |b| {
                let mut decoder = Decoder::client(version, PROTOCOL_MAX_PACKET_SIZE);
                b.iter_batched(
                    || stream.clone(),
                    |mut buf| {
                        while let Some(p) = decoder.decode(&mut buf).unwrap() {
                            black_box(p);
                        }
                    },
                    BatchSize::SmallInput,
                );
            });

            let encoder = Encoder::new(version);
            let mut out = BytesMut::with_capacity(2048);
            group.bench_function("encode", |b| {
                b.iter(|| {
                    out.clear();
                    encoder.encode(black_box(&packet), &mut out).unwrap();
                });
            });
            group.bench_function("encode_header_only", |b| {
                b.iter(|| {
                    out.clear();
                    encoder
                        .encode_publish_header(black_box(&p), &mut out)
                        .unwrap();
                });
            });
            group.finish();
        }
    }
}

fn bench_connect(c: &mut Criterion) {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let packet = connect(version);
        let bytes = wire(version, &packet);
        let mut group = c.benchmark_group(format!("connect_{}", label(version)));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("decode", |b| {
            b.iter_batched(
                || {
                    (
                        Decoder::server(PROTOCOL_MAX_PACKET_SIZE),
                        BytesMut::from(&bytes[..]),
                    )
                },
                |(mut decoder, mut buf)| black_box(decoder.decode(&mut buf).unwrap()),
                BatchSize::SmallInput,
            );
        });
        let encoder = Encoder::new(version);
        let mut out = BytesMut::with_capacity(512);
        group.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                encoder.encode(black_box(&packet), &mut out).unwrap();
            });
        });
        group.finish();
    }
}

criterion_group!(benches, bench_publish, bench_connect);
criterion_main!(benches);
