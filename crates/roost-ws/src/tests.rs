#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::*;

const WAIT: Duration = Duration::from_secs(5);

/// A server-side byte stream and the raw client end of one WebSocket.
async fn pair() -> (WsStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let server = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
    let client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
    (WsStream::new(server), client)
}

async fn read_exactly(stream: &mut WsStream<DuplexStream>, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("read in time")
        .expect("read");
    buf
}

#[tokio::test]
async fn mqtt_6_0_0_2_packets_may_span_messages_and_share_them() {
    let (mut server, mut client) = pair().await;
    // PINGREQ split over two messages, then two PINGREQs in one.
    client.send(Message::binary(vec![0xC0])).await.unwrap();
    client.send(Message::binary(vec![0x00])).await.unwrap();
    client
        .send(Message::binary(vec![0xC0, 0x00, 0xC0, 0x00]))
        .await
        .unwrap();
    assert_eq!(
        read_exactly(&mut server, 6).await,
        [0xC0, 0x00, 0xC0, 0x00, 0xC0, 0x00]
    );
}

#[tokio::test]
async fn mqtt_6_0_0_1_writes_go_out_as_binary_messages_of_bounded_size() {
    let (mut server, mut client) = pair().await;
    let big = vec![7u8; MAX_OUTGOING_MESSAGE + 10];
    server.write_all(&big).await.unwrap();
    server.flush().await.unwrap();
    let mut got = Vec::new();
    while got.len() < big.len() {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("message in time")
            .expect("open")
            .unwrap();
        let Message::Binary(data) = message else {
            panic!("expected a binary message, got {message:?}");
        };
        assert!(data.len() <= MAX_OUTGOING_MESSAGE);
        got.extend_from_slice(&data);
    }
    assert_eq!(got, big);
}

#[tokio::test]
async fn mqtt_6_0_0_1_a_text_frame_closes_with_1003() {
    let (mut server, mut client) = pair().await;
    client.send(Message::text("CONNECT")).await.unwrap();
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(WAIT, server.read(&mut buf))
        .await
        .expect("read in time");
    assert_eq!(
        read.map_err(|e| e.kind()).err(),
        Some(io::ErrorKind::InvalidData)
    );
    let close = tokio::time::timeout(WAIT, client.next())
        .await
        .expect("close in time")
        .expect("a close frame")
        .unwrap();
    let Message::Close(Some(frame)) = close else {
        panic!("expected a close frame, got {close:?}");
    };
    assert_eq!(frame.code, CloseCode::Unsupported);
}

#[tokio::test]
async fn a_close_frame_reads_as_end_of_stream() {
    let (mut server, mut client) = pair().await;
    client
        .send(Message::binary(vec![0xC0, 0x00]))
        .await
        .unwrap();
    client.close(None).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, server.read_to_end(&mut all))
        .await
        .expect("end of stream in time")
        .unwrap();
    assert_eq!(all, [0xC0, 0x00]);
}
