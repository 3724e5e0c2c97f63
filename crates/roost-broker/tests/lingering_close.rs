//! Lingering close: after the broker ends a connection with a reason (a
//! DISCONNECT, a refusing CONNACK) it stops writing but goes on reading what
//! the client still sends, so a client that is still writing reads the
//! reason instead of a reset; and a client that never stops is cut off after
//! a short bound (`driver/linger.rs`: 2 s, 64 KiB).
//!
//! These tests use a bare socket: a reset or a broken pipe is exactly what
//! they look for, and a test client that hid it would hide the bug.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use roost_codec::{Decoder, Encoder, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::packets::{IntoPacket, connect, publish, pubrel, unique_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

/// A bare connection: every I/O error reaches the test.
struct Bare {
    stream: TcpStream,
    rbuf: BytesMut,
    decoder: Decoder,
    encoder: Encoder,
}

impl Bare {
    async fn open(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            rbuf: BytesMut::new(),
            decoder: Decoder::client(ProtocolVersion::V5, 1 << 20),
            encoder: Encoder::new(ProtocolVersion::V5),
        }
    }

    fn encode(&self, packets: &[Packet]) -> BytesMut {
        let mut buf = BytesMut::new();
        for p in packets {
            self.encoder.encode(p, &mut buf).unwrap();
        }
        buf
    }

    /// Writes packets in one write; an error is the test's failure.
    async fn write(&mut self, packets: &[Packet], what: &str) {
        let buf = self.encode(packets);
        if let Err(e) = self.stream.write_all(&buf).await {
            panic!("writing {what} failed: {e} ({:?})", e.kind());
        }
    }

    /// The next packet; `None` at a clean end of stream. A reset fails the test.
    async fn next(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.rbuf).unwrap() {
                return Some(p);
            }
            match tokio::time::timeout(T, self.stream.read_buf(&mut self.rbuf)).await {
                Err(_) => panic!("nothing from the broker within {T:?}"),
                Ok(Ok(0)) => return None,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("reading failed: {e} ({:?})", e.kind()),
            }
        }
    }

    async fn handshake(&mut self, id: &str) -> u16 {
        self.write(
            &[Packet::Connect(Box::new(connect(ProtocolVersion::V5, id)))],
            "CONNECT",
        )
        .await;
        match self.next().await {
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
                ack.properties.receive_maximum.unwrap_or(u16::MAX)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
}

fn qos2(id: u16) -> Packet {
    publish("linger/t", &b"x"[..], QoS::ExactlyOnce, Some(id)).into_packet()
}

/// The interoperability suite's scenario: Receive Maximum + 1 QoS 2
/// PUBLISHes sent without reading, then every PUBREC read and answered with
/// PUBREL (the client goes on writing after the broker closed) until the
/// DISCONNECT 0x93 — and then a clean end of stream, no reset, no broken pipe.
#[tokio::test]
async fn v5_receive_maximum_overflow_is_read_to_the_end_by_a_client_that_keeps_writing() {
    let broker = common::start_with(common::config("[mqtt]\nreceive_maximum = 20\n"), None).await;
    for round in 0..3 {
        let mut c = Bare::open(broker.addr).await;
        let rm = c.handshake(&unique_id(&format!("linger-rm{round}"))).await;
        assert_eq!(rm, 20);
        let publishes: Vec<Packet> = (1..=rm + 1).map(qos2).collect();
        c.write(&publishes, "the PUBLISHes").await;
        let mut pubrecs = 0;
        let disconnect = loop {
            match c.next().await {
                Some(Packet::PubRec(rec)) => {
                    pubrecs += 1;
                    c.write(
                        &[pubrel(rec.packet_id.get())],
                        "a PUBREL after the broker's close",
                    )
                    .await;
                }
                Some(Packet::Disconnect(d)) => break d,
                other => panic!("expected PUBREC or DISCONNECT, got {other:?}"),
            }
        };
        assert_eq!(disconnect.reason_code, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
        assert_eq!(pubrecs, rm);
        // Still writing after the DISCONNECT: the broker reads and discards.
        c.write(&[pubrel(1)], "a PUBREL after the DISCONNECT").await;
        assert!(c.next().await.is_none(), "nothing after DISCONNECT");
    }
}

/// A refusing CONNACK is read by a client that pipelined more packets behind
/// its CONNECT and goes on writing after it.
#[tokio::test]
async fn v5_a_refusing_connack_is_read_by_a_client_that_keeps_writing() {
    let broker = common::start_with(
        common::config("[[auth.banned.entries]]\nwho = \"user:troll\"\n"),
        None,
    )
    .await;
    let mut c = Bare::open(broker.addr).await;
    let mut login = connect(ProtocolVersion::V5, &unique_id("linger-refused"));
    login.username = Some(ByteString::from("troll"));
    let mut burst = vec![Packet::Connect(Box::new(login))];
    burst.extend((1..=50).map(qos2));
    c.write(&burst, "CONNECT and PUBLISHes").await;
    match c.next().await {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::BANNED),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    for id in 1..=5 {
        c.write(&[qos2(id)], "a PUBLISH after the refusal").await;
    }
    assert!(c.next().await.is_none(), "nothing after the CONNACK");
}

/// A client that never stops writing after the broker's DISCONNECT is cut
/// off once the bound is reached (64 KiB here, well before 2 s).
#[tokio::test]
async fn a_client_that_never_stops_writing_is_cut_off_after_the_bound() {
    let broker = common::start().await;
    let mut c = Bare::open(broker.addr).await;
    c.handshake(&unique_id("linger-flood")).await;
    // A PINGRESP from a client: a Protocol Error, DISCONNECT 0x82.
    c.stream.write_all(&[0xD0, 0x00]).await.unwrap();
    match c.next().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, ReasonCode::PROTOCOL_ERROR),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    let started = Instant::now();
    let chunk = Bytes::from(vec![0u8; 4096]);
    let mut written = 0usize;
    let cut = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match c.stream.write_all(&chunk).await {
                Ok(()) => written += chunk.len(),
                Err(e) => break e,
            }
        }
    })
    .await
    .expect("the broker never cut the writing client off");
    assert!(
        matches!(
            cut.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ),
        "{cut:?}"
    );
    // The bound, plus what the socket buffers on both sides hold.
    assert!(written >= 64 * 1024, "cut off after only {written} bytes");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut off after {:?}",
        started.elapsed()
    );
}

/// A client that neither closes nor writes after the broker's DISCONNECT
/// holds the connection at most the time bound.
#[tokio::test]
async fn a_silent_client_is_let_go_after_the_time_bound() {
    let broker = common::start().await;
    let mut c = Bare::open(broker.addr).await;
    c.handshake(&unique_id("linger-silent")).await;
    c.stream.write_all(&[0xD0, 0x00]).await.unwrap();
    assert!(matches!(c.next().await, Some(Packet::Disconnect(_))));
    assert!(c.next().await.is_none());
    // The broker's side is half-closed and still reading: it lets go within
    // the bound, which the listener's connection count shows.
    common::wait_until(
        "the lingering connection to end",
        Duration::from_secs(4),
        || broker.handle.stats().connections_current == 0,
    )
    .await;
}
