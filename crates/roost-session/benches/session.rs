//! Hot-path benchmarks of the session: one outbound delivery (QoS 0, and a
//! full QoS 1 cycle with PUBACK), with and without topic aliases / a packet
//! size limit, and one inbound QoS 1 PUBLISH through to its PUBACK.
//!
//! Run: `cargo bench -p roost-session --bench session -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use roost_codec::{
    Connect, Packet, PacketId, ProtocolVersion, PubResponse, Publish, PublishProperties, QoS,
    ReasonCode,
};
use roost_session::{Delivery, Inbound, Message, Session, SessionConfig};

fn session(
    version: ProtocolVersion,
    alias_max: Option<u16>,
    max_packet: Option<u32>,
) -> (Session, Instant) {
    let now = Instant::now();
    let mut connect = Connect {
        protocol: version,
        client_id: "bench".into(),
        clean_start: true,
        ..Connect::default()
    };
    connect.properties.topic_alias_maximum = alias_max;
    connect.properties.maximum_packet_size = max_packet;
    let mut s = Session::accept(
        connect,
        None,
        None,
        Arc::new(SessionConfig::default()),
        None,
        now,
    );
    while s.poll_transmit(now).is_some() {}
    (s, now)
}

fn message(qos: QoS) -> Arc<Message> {
    Arc::new(Message {
        topic: "site/17/device/42/temperature".into(),
        payload: Bytes::from_static(&[0u8; 64]),
        qos,
        retain: false,
        properties: PublishProperties::default(),
        expires_at: None,
        publisher: Some("publisher".into()),
    })
}

fn outbound(c: &mut Criterion) {
    let mut g = c.benchmark_group("outbound");
    for (name, version, alias, max) in [
        ("v311", ProtocolVersion::V311, None, None),
        ("v5", ProtocolVersion::V5, None, None),
        ("v5_alias", ProtocolVersion::V5, Some(16), None),
        ("v5_max_packet", ProtocolVersion::V5, None, Some(65_536)),
    ] {
        let (mut s, now) = session(version, alias, max);
        let m0 = message(QoS::AtMostOnce);
        g.bench_function(format!("qos0_{name}"), |b| {
            b.iter(|| {
                s.handle_delivery(now, Delivery::new(Arc::clone(&m0), QoS::AtMostOnce, false));
                black_box(s.poll_transmit(now))
            })
        });
        let m1 = message(QoS::AtLeastOnce);
        g.bench_function(format!("qos1_cycle_{name}"), |b| {
            b.iter(|| {
                s.handle_delivery(now, Delivery::new(Arc::clone(&m1), QoS::AtLeastOnce, false));
                let Some(Packet::Publish(p)) = s.poll_transmit(now) else {
                    panic!("no PUBLISH")
                };
                let id = p.packet_id.expect("QoS 1");
                black_box(&p);
                s.handle_packet(now, Packet::PubAck(PubResponse::success(id)))
                    .expect("valid PUBACK")
            })
        });
    }
    g.finish();
}

fn inbound(c: &mut Criterion) {
    let (mut s, now) = session(ProtocolVersion::V5, None, None);
    let publish = Publish {
        qos: QoS::AtLeastOnce,
        topic: "site/17/device/42/temperature".into(),
        packet_id: PacketId::new(1),
        payload: Bytes::from_static(&[0u8; 64]),
        ..Publish::default()
    };
    c.bench_function("inbound/qos1_v5", |b| {
        b.iter(|| {
            let Ok(Inbound::Publish {
                message,
                packet_id: Some(id),
            }) = s.handle_packet(now, Packet::Publish(publish.clone()))
            else {
                panic!("expected a publish")
            };
            black_box(&message);
            s.complete_publish(id, QoS::AtLeastOnce, ReasonCode::SUCCESS);
            black_box(s.poll_transmit(now))
        })
    });
}

criterion_group!(benches, outbound, inbound);
criterion_main!(benches);
