//! The acknowledgements' bytes on the wire (MQTT 5.0 3.4.2.1, 3.5.2.1,
//! 3.6.2.1, 3.7.2.1): PUBACK, PUBREC, PUBREL and PUBCOMP with reason 0x00
//! and no properties go out in the 2-byte form (Remaining Length 2), as
//! Mosquitto sends them. A PUBLISH that reached no subscriber is answered
//! 0x10 No matching subscribers (Remaining Length 3), unless
//! `[mqtt] no_matching_subscribers = false`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use roost_codec::{Decoder, Encoder, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::packets::{IntoPacket, connect, publish, pubrec, pubrel, subscribe, unique_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

/// A connection whose incoming bytes can be read raw or decoded.
struct Wire {
    stream: TcpStream,
    rbuf: BytesMut,
    decoder: Decoder,
    encoder: Encoder,
}

impl Wire {
    async fn connect(addr: SocketAddr, prefix: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut w = Self {
            stream,
            rbuf: BytesMut::new(),
            decoder: Decoder::client(ProtocolVersion::V5, 1 << 20),
            encoder: Encoder::new(ProtocolVersion::V5),
        };
        w.send(Packet::Connect(Box::new(connect(
            ProtocolVersion::V5,
            &unique_id(prefix),
        ))))
        .await;
        assert!(
            matches!(w.next().await, Packet::ConnAck(a) if a.reason_code == ReasonCode::SUCCESS)
        );
        w
    }

    async fn send(&mut self, packet: impl IntoPacket) {
        let mut buf = BytesMut::new();
        self.encoder
            .encode(&packet.into_packet(), &mut buf)
            .unwrap();
        self.stream.write_all(&buf).await.unwrap();
    }

    async fn fill(&mut self, n: usize) {
        while self.rbuf.len() < n {
            let read = tokio::time::timeout(T, self.stream.read_buf(&mut self.rbuf))
                .await
                .expect("timed out")
                .unwrap();
            assert!(read > 0, "closed");
        }
    }

    /// The next `n` bytes, in hex.
    async fn raw(&mut self, n: usize) -> String {
        self.fill(n).await;
        hex(&self.rbuf.split_to(n))
    }

    async fn next(&mut self) -> Packet {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.rbuf).unwrap() {
                return p;
            }
            let len = self.rbuf.len();
            self.fill(len + 1).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[tokio::test]
async fn v5_success_acks_without_properties_use_remaining_length_2_on_the_wire() {
    let broker = common::start().await;
    let topic = format!("acks/{}", unique_id("t"));
    let mut sub = Wire::connect(broker.addr, "acks-sub").await;
    sub.send(subscribe(1, &topic, QoS::ExactlyOnce)).await;
    assert!(matches!(sub.next().await, Packet::SubAck(_)));
    let mut publ = Wire::connect(broker.addr, "acks-pub").await;

    // Inbound QoS 2 with a subscriber: PUBREC then PUBCOMP, 2-byte forms.
    publ.send(publish(&topic, &b"x"[..], QoS::ExactlyOnce, Some(7)))
        .await;
    assert_eq!(publ.raw(4).await, "50020007", "PUBREC");
    publ.send(pubrel(7)).await;
    assert_eq!(publ.raw(4).await, "70020007", "PUBCOMP");
    // Inbound QoS 1 with a subscriber: PUBACK.
    publ.send(publish(&topic, &b"y"[..], QoS::AtLeastOnce, Some(8)))
        .await;
    assert_eq!(publ.raw(4).await, "40020008", "PUBACK");

    // Outbound QoS 2: the broker's PUBREL answering the subscriber's PUBREC.
    let Packet::Publish(first) = sub.next().await else {
        panic!("expected PUBLISH");
    };
    let id = first.packet_id.unwrap().get();
    assert!(matches!(sub.next().await, Packet::Publish(p) if &p.payload[..] == b"y"));
    sub.send(pubrec(id)).await;
    assert_eq!(sub.raw(4).await, format!("6202{id:04X}"), "PUBREL");
}

#[tokio::test]
async fn v5_no_matching_subscribers_is_0x10_by_default_and_0x00_in_2_bytes_when_turned_off() {
    let broker = common::start().await;
    let mut c = Wire::connect(broker.addr, "acks-nobody").await;
    let topic = format!("nobody/{}", unique_id("t"));
    c.send(publish(&topic, &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await;
    assert_eq!(c.raw(5).await, "4003000110", "PUBACK 0x10");
    c.send(publish(&topic, &b"x"[..], QoS::ExactlyOnce, Some(2)))
        .await;
    assert_eq!(c.raw(5).await, "5003000210", "PUBREC 0x10");

    let quiet = common::start_with(
        common::config("[mqtt]\nno_matching_subscribers = false\n"),
        None,
    )
    .await;
    let mut c = Wire::connect(quiet.addr, "acks-nobody-off").await;
    c.send(publish(&topic, &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await;
    assert_eq!(c.raw(4).await, "40020001", "PUBACK");
    c.send(publish(&topic, &b"x"[..], QoS::ExactlyOnce, Some(2)))
        .await;
    assert_eq!(c.raw(4).await, "50020002", "PUBREC");
    c.send(pubrel(2)).await;
    assert_eq!(c.raw(4).await, "70020002", "PUBCOMP");
}
