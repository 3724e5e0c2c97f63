//! Server redirection (MQTT 5.0 §4.11): CONNACK 0x9C / 0x9D with a Server
//! Reference; 3.1.1 clients, which cannot be redirected, are served.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use roost_codec::{Packet, ProtocolVersion, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, unique_id};

const T: Duration = Duration::from_secs(5);

async fn connack(addr: std::net::SocketAddr, version: ProtocolVersion) -> roost_codec::ConnAck {
    let mut client = RawClient::connect(addr, version).await.unwrap();
    client
        .send(Packet::Connect(Box::new(connect(
            version,
            &unique_id("redirect"),
        ))))
        .await
        .unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn v5_clients_are_sent_to_the_server_reference() {
    for (mode, code) in [
        ("use_another_server", ReasonCode::USE_ANOTHER_SERVER),
        ("server_moved", ReasonCode::SERVER_MOVED),
    ] {
        let toml = format!(
            "[mqtt.redirect]\nmode = \"{mode}\"\nserver_reference = \"mqtt2.example.com:1883\"\n"
        );
        let broker = common::start_with(common::config(&toml), None).await;
        let ack = connack(broker.addr, ProtocolVersion::V5).await;
        assert_eq!(ack.reason_code, code);
        assert_eq!(
            ack.properties.server_reference.as_deref(),
            Some("mqtt2.example.com:1883")
        );
        // 3.1.1 has no way to redirect: the client is served.
        assert_eq!(
            connack(broker.addr, ProtocolVersion::V311)
                .await
                .reason_code,
            ReasonCode::SUCCESS
        );
    }
}

#[test]
fn redirect_without_a_server_reference_is_a_config_error_naming_the_key() {
    let err = roost_broker::Config::from_toml("[mqtt.redirect]\nmode = \"server_moved\"\n", "test")
        .unwrap_err();
    assert!(
        err.to_string().contains("mqtt.redirect.server_reference"),
        "{err}"
    );
}
