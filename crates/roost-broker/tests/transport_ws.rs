//! WebSocket and WSS listeners: subprotocol negotiation, MQTT packets
//! spanning messages and several packets per message, ping/pong, close
//! frames, refusals with HTTP statuses, origins, forwarding headers.
#![cfg(feature = "websocket")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transport_support;

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use roost_broker::config::ListenerKind;
use roost_codec::{Decoder, Encoder, Packet, ProtocolVersion, QoS};
use roost_testkit::packets;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use transport_support::{Client, Logs, T, listener, start, tcp};

/// An MQTT client speaking in WebSocket messages.
struct WsClient<S> {
    ws: WebSocketStream<S>,
    rbuf: BytesMut,
    decoder: Decoder,
    encoder: Encoder,
    subprotocol: Option<String>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsClient<S> {
    fn encode(&self, packet: &Packet) -> Bytes {
        let mut buf = BytesMut::new();
        self.encoder.encode(packet, &mut buf).unwrap();
        buf.freeze()
    }

    async fn send(&mut self, packet: Packet) {
        let bytes = self.encode(&packet);
        self.ws.send(Message::Binary(bytes)).await.unwrap();
    }

    async fn recv(&mut self) -> Option<Packet> {
        let read = async {
            loop {
                if let Some(packet) = self.decoder.decode(&mut self.rbuf).unwrap() {
                    return Some(packet);
                }
                match self.ws.next().await {
                    Some(Ok(Message::Binary(data))) => self.rbuf.extend_from_slice(&data),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(T, read)
            .await
            .expect("nothing from the broker in time")
    }

    async fn connect(&mut self, client_id: &str) {
        self.send(Packet::Connect(Box::new(packets::connect(
            ProtocolVersion::V5,
            client_id,
        ))))
        .await;
        assert!(
            matches!(self.recv().await, Some(Packet::ConnAck(ack)) if !ack.reason_code.is_error())
        );
    }

    /// The close frame the server sends next.
    async fn expect_close(&mut self) -> Option<CloseFrame> {
        let read = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => return None,
                }
            }
        };
        tokio::time::timeout(T, read)
            .await
            .expect("no close frame in time")
    }
}

async fn ws_over<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<WsClient<S>, WsError> {
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (ws, response) = tokio_tungstenite::client_async(request, stream).await?;
    let subprotocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(WsClient {
        ws,
        rbuf: BytesMut::new(),
        decoder: Decoder::client(ProtocolVersion::V5, 1 << 20),
        encoder: Encoder::new(ProtocolVersion::V5),
        subprotocol,
    })
}

async fn ws(
    addr: SocketAddr,
    headers: &[(&str, &str)],
) -> Result<WsClient<tokio::net::TcpStream>, WsError> {
    ws_over(tcp(addr).await, &format!("ws://{addr}/mqtt"), headers).await
}

fn http_status(error: WsError) -> u16 {
    match error {
        WsError::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn mqtt_6_0_0_4_websocket_client_gets_mqtt_and_exchanges_with_a_tcp_client() {
    let (logs, _guard) = Logs::capture();
    let broker = start(&format!("{}{}", listener("ws", ""), listener("tcp", ""))).await;
    let ws_addr = broker.addr(ListenerKind::Ws);
    logs.wait_for(&format!("listening on ws://{ws_addr}/mqtt"))
        .await;
    let mut sub = ws(ws_addr, &[("Sec-WebSocket-Protocol", "mqtt")])
        .await
        .unwrap();
    assert_eq!(sub.subprotocol.as_deref(), Some("mqtt"));
    sub.connect("ws-sub").await;
    sub.send(Packet::Subscribe(packets::subscribe(
        1,
        "ws/t",
        QoS::AtLeastOnce,
    )))
    .await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    let (mut publisher, _) = Client::connect(
        tcp(broker.addr(ListenerKind::Tcp)).await,
        ProtocolVersion::V5,
        "ws-pub",
    )
    .await;
    publisher.publish("ws/t", b"to the browser").await;
    match sub.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"to the browser"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

#[tokio::test]
async fn older_clients_get_mqttv31_and_clients_without_subprotocol_are_served() {
    let broker = start(&listener("ws", "")).await;
    let addr = broker.addr(ListenerKind::Ws);
    let old = ws(addr, &[("Sec-WebSocket-Protocol", "mqttv3.1")])
        .await
        .unwrap();
    assert_eq!(old.subprotocol.as_deref(), Some("mqttv3.1"));
    let mut bare = ws(addr, &[]).await.unwrap();
    assert_eq!(bare.subprotocol, None);
    bare.connect("ws-bare").await;
}

#[tokio::test]
async fn mqtt_6_0_0_2_packets_may_span_messages_and_share_one() {
    let broker = start(&listener("ws", "")).await;
    let mut client = ws(
        broker.addr(ListenerKind::Ws),
        &[("Sec-WebSocket-Protocol", "mqtt")],
    )
    .await
    .unwrap();
    // CONNECT cut into three messages.
    let connect = client.encode(&Packet::Connect(Box::new(packets::connect(
        ProtocolVersion::V5,
        "ws-span",
    ))));
    for piece in [connect.slice(..1), connect.slice(1..5), connect.slice(5..)] {
        client.ws.send(Message::Binary(piece)).await.unwrap();
    }
    assert!(matches!(client.recv().await, Some(Packet::ConnAck(_))));
    // SUBSCRIBE and a PUBLISH it matches, in one message.
    let mut both = BytesMut::new();
    both.extend_from_slice(&client.encode(&Packet::Subscribe(packets::subscribe(
        1,
        "span/t",
        QoS::AtMostOnce,
    ))));
    both.extend_from_slice(&client.encode(&Packet::Publish(packets::publish(
        "span/t",
        &b"echo"[..],
        QoS::AtMostOnce,
        None,
    ))));
    client
        .ws
        .send(Message::Binary(both.freeze()))
        .await
        .unwrap();
    assert!(matches!(client.recv().await, Some(Packet::SubAck(_))));
    assert!(matches!(client.recv().await, Some(Packet::Publish(p)) if &p.payload[..] == b"echo"));
}

#[tokio::test]
async fn ping_gets_pong_and_a_close_frame_ends_the_connection() {
    let broker = start(&listener("ws", "")).await;
    let mut client = ws(broker.addr(ListenerKind::Ws), &[]).await.unwrap();
    client.connect("ws-ping").await;
    client
        .ws
        .send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    let pong = tokio::time::timeout(T, client.ws.next()).await.unwrap();
    assert!(matches!(pong, Some(Ok(Message::Pong(data))) if &data[..] == b"hi"));
    client.ws.close(None).await.unwrap();
    transport_support::eventually("the connection is closed", || {
        broker.handle.stats().connections_current == 0
    })
    .await;
}

#[tokio::test]
async fn wrong_subprotocol_is_refused_with_400() {
    let broker = start(&listener("ws", "")).await;
    let err = ws(
        broker.addr(ListenerKind::Ws),
        &[("Sec-WebSocket-Protocol", "chat")],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(http_status(err), 400);
}

#[tokio::test]
async fn required_subprotocol_refuses_clients_that_offer_none() {
    let broker = start(&listener(
        "ws",
        "websocket = { require_subprotocol = true }",
    ))
    .await;
    let err = ws(broker.addr(ListenerKind::Ws), &[]).await.err().unwrap();
    assert_eq!(http_status(err), 400);
}

#[tokio::test]
async fn wrong_path_is_404_and_a_custom_path_works() {
    let broker = start(&listener("ws", "websocket = { path = \"/broker\" }")).await;
    let addr = broker.addr(ListenerKind::Ws);
    let err = ws(addr, &[]).await.err().unwrap();
    assert_eq!(http_status(err), 404);
    let mut ok = ws_over(tcp(addr).await, &format!("ws://{addr}/broker"), &[])
        .await
        .unwrap();
    ok.connect("ws-path").await;
}

#[tokio::test]
async fn plain_http_request_gets_426_and_mqtt_bytes_get_400() {
    let broker = start(&listener("ws", "")).await;
    let addr = broker.addr(ListenerKind::Ws);
    let mut http = tcp(addr).await;
    http.write_all(b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tokio::time::timeout(T, http.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 426"), "{reply}");
    let mut mqtt = Client::new(tcp(addr).await, ProtocolVersion::V5);
    mqtt.send(Packet::Connect(Box::new(packets::connect(
        ProtocolVersion::V5,
        "not-ws",
    ))))
    .await;
    let mut reply = String::new();
    tokio::time::timeout(T, mqtt.stream.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    transport_support::eventually("refusals counted", || {
        broker.handle.stats().connections_refused == 2
    })
    .await;
}

#[tokio::test]
async fn mqtt_6_0_0_1_text_frame_closes_the_connection_with_code_1003() {
    let broker = start(&listener("ws", "")).await;
    let mut client = ws(broker.addr(ListenerKind::Ws), &[]).await.unwrap();
    client.connect("ws-text").await;
    client.ws.send(Message::text("hello")).await.unwrap();
    let frame = client.expect_close().await;
    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Unsupported));
}

#[tokio::test]
async fn frame_above_max_frame_size_is_refused_with_close_code_1009() {
    let broker = start(&listener("ws", "websocket = { max_frame_size = 4096 }")).await;
    let mut client = ws(broker.addr(ListenerKind::Ws), &[]).await.unwrap();
    client.connect("ws-big").await;
    client
        .ws
        .send(Message::Binary(Bytes::from(vec![0u8; 8192])))
        .await
        .unwrap();
    let frame = client.expect_close().await;
    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Size));
}

#[tokio::test]
async fn foreign_origin_is_refused_with_403() {
    let broker = start(&listener(
        "ws",
        "websocket = { allowed_origins = [\"https://app.example\"] }",
    ))
    .await;
    let addr = broker.addr(ListenerKind::Ws);
    let err = ws(addr, &[("Origin", "https://evil.example")])
        .await
        .err()
        .unwrap();
    assert_eq!(http_status(err), 403);
    let mut ok = ws(addr, &[("Origin", "https://app.example")])
        .await
        .unwrap();
    ok.connect("ws-origin").await;
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let (logs, _guard) = Logs::capture();
    let trusted = start(&listener(
        "ws",
        "websocket = { trusted_proxies = [\"127.0.0.0/8\"] }",
    ))
    .await;
    let mut proxied = ws(
        trusted.addr(ListenerKind::Ws),
        &[("X-Forwarded-For", "198.51.100.23")],
    )
    .await
    .unwrap();
    proxied.connect("ws-xff").await;
    logs.wait_for("peer=198.51.100.23:0").await;
    let untrusted = start(&listener("ws", "")).await;
    let mut direct = ws(
        untrusted.addr(ListenerKind::Ws),
        &[("X-Forwarded-For", "192.0.2.99")],
    )
    .await
    .unwrap();
    direct.connect("ws-no-xff").await;
    let text = logs.wait_for("client_id=ws-no-xff").await;
    assert!(
        !text.contains("192.0.2.99"),
        "a forwarding header from an untrusted peer is ignored"
    );
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_serves_mqtt_over_websocket_over_tls() {
    use transport_support::{KeyKind, Pki, TlsClient, p};
    let pki = Pki::new("wss-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let toml = format!(
        "[[listeners]]\nkind = \"wss\"\nbind = \"127.0.0.1:0\"\ntls = {{ cert_file = \"{}\", key_file = \"{}\" }}\n",
        p(&server.cert),
        p(&server.key)
    );
    let broker = start(&toml).await;
    let addr = broker.addr(ListenerKind::Wss);
    let tls = TlsClient::default().connect(&pki, addr).await.unwrap();
    let mut client = ws_over(
        tls,
        &format!("wss://localhost:{}/mqtt", addr.port()),
        &[("Sec-WebSocket-Protocol", "mqtt")],
    )
    .await
    .unwrap();
    assert_eq!(client.subprotocol.as_deref(), Some("mqtt"));
    client.connect("wss-client").await;
    client
        .send(Packet::Subscribe(packets::subscribe(
            1,
            "wss/t",
            QoS::AtMostOnce,
        )))
        .await;
    assert!(matches!(client.recv().await, Some(Packet::SubAck(_))));
    broker.handle.publish(
        "wss/t",
        Bytes::from_static(b"sealed"),
        QoS::AtMostOnce,
        false,
    );
    assert!(matches!(client.recv().await, Some(Packet::Publish(p)) if &p.payload[..] == b"sealed"));
}
