//! rumqttc over TLS and mutual TLS against the `roost` binary. rumqttc is
//! built with `use-rustls-no-provider`: the test installs rustls' ring
//! provider. Certificates are made at test time with the `openssl` command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

mod common;

use common::pki::Pki;
use roost_testkit::{BrokerProcess, TIMEOUT, packets::unique_id};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio::time::timeout;

fn install_ring() {
    // Several tests race to install it; only the first succeeds, which is fine.
    let _ = rumqttc::tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

/// Starts roost with a TLS listener (plus the TCP one the harness waits for)
/// and returns it with the TLS port, read from the `listening on mqtts://` line.
/// `listener_extra` goes into the listener table, `tls_extra` into its `tls` table.
fn start(pki: &Pki, listener_extra: &str, tls_extra: &str) -> (BrokerProcess, u16) {
    let toml = format!(
        "[[listeners]]\nkind = \"tcp\"\nbind = \"127.0.0.1:0\"\n\
         [[listeners]]\nkind = \"tls\"\nbind = \"127.0.0.1:0\"\n{listener_extra}\n\
         [listeners.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n{tls_extra}\n",
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt"),
    );
    let broker = BrokerProcess::builder(env!("CARGO_BIN_EXE_roost"))
        .config_toml(toml)
        .start()
        .expect("start roost");
    let port = common::listener_port(&broker, "mqtts");
    (broker, port)
}

fn options(pki: &Pki, port: u16, client_cert: bool) -> MqttOptions {
    let mut options = MqttOptions::new(unique_id("rumqttc-tls"), "localhost", port);
    options.set_keep_alive(Duration::from_secs(30));
    let client_auth = client_cert.then(|| (pki.read("client.crt"), pki.read("client.key")));
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: pki.read("ca.crt"),
        alpn: None,
        client_auth,
    }));
    options
}

/// Runs the event loop until `pick` accepts a packet; errors end the wait.
async fn until<T>(
    eventloop: &mut rumqttc::v5::EventLoop,
    what: &str,
    mut pick: impl FnMut(Packet) -> Option<T>,
) -> Result<T, String> {
    let wait = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(packet)) => {
                    if let Some(found) = pick(packet) {
                        return Ok(found);
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    timeout(TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {TIMEOUT:?}"))
}

async fn exchange(options: MqttOptions) {
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let ack = until(&mut eventloop, "CONNACK", |p| match p {
        Packet::ConnAck(ack) => Some(ack),
        _ => None,
    })
    .await
    .expect("TLS connection");
    assert_eq!(ack.code, ConnectReturnCode::Success);
    let topic = format!("tls/{}", unique_id("t"));
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    until(&mut eventloop, "SUBACK", |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await
    .unwrap();
    client
        .publish(&topic, QoS::AtLeastOnce, false, "over rustls")
        .await
        .unwrap();
    let message = until(&mut eventloop, "PUBLISH", |p| match p {
        Packet::Publish(publish) => Some(publish),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(&message.payload[..], b"over rustls");
}

#[tokio::test]
async fn rumqttc_v5_exchanges_messages_over_tls() {
    install_ring();
    let pki = Pki::new();
    let (_broker, port) = start(&pki, "", "");
    exchange(options(&pki, port, false)).await;
}

#[tokio::test]
async fn rumqttc_with_a_client_certificate_passes_mutual_tls_as_its_identity() {
    install_ring();
    let pki = Pki::new();
    // Anonymous clients are refused: the certificate's CN is the user name.
    let (_broker, port) = start(
        &pki,
        "allow_anonymous = false",
        "verify_peer = true\nuse_identity_as_username = true",
    );
    exchange(options(&pki, port, true)).await;
    // Without a certificate the TLS handshake is refused.
    let (_client, mut eventloop) = AsyncClient::new(options(&pki, port, false), 16);
    assert!(
        until(&mut eventloop, "CONNACK", |p| matches!(
            p,
            Packet::ConnAck(_)
        )
        .then_some(()))
        .await
        .is_err()
    );
}
