//! Enhanced authentication at the wire (MQTT 5.0 sections 3.15 and 4.12):
//! the CONNECT → AUTH 0x18 … → CONNACK exchange, refusals, and
//! re-authentication (AUTH 0x19) on a live connection. A test mechanism
//! stands in for SCRAM: challenge "hello" → "challenge" → "response".

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_broker::hooks::{
    AuthExchange, AuthStep, BoxFuture, ClientInfo, EnhancedAuthenticator, Grant, ready,
};
use roost_codec::{Auth, AuthProperties, ConnAck, Connect, Packet, ProtocolVersion, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::barrier::assert_quiet;

const T: Duration = Duration::from_secs(5);

// ------------------------------------------------------- test mechanisms

/// `CHALLENGE`: client data "hello" → challenge "challenge"; then "response"
/// succeeds with final data "welcome", anything else is 0x87.
/// `ONESHOT`: "secret" succeeds at once, anything else is 0x86.
/// `ODD`: fails with 0x98, which is not a CONNACK reason code.
struct TestAuth;

impl EnhancedAuthenticator for TestAuth {
    fn begin(&self, method: &str, _client: &ClientInfo) -> Option<Box<dyn AuthExchange>> {
        match method {
            "CHALLENGE" => Some(Box::new(Challenge { challenged: false })),
            "ONESHOT" => Some(Box::new(OneShot)),
            "ODD" => Some(Box::new(Odd)),
            "IDENTITY" => Some(Box::new(Identity)),
            _ => None,
        }
    }
}

struct Challenge {
    challenged: bool,
}

impl AuthExchange for Challenge {
    fn step(&mut self, data: Option<Bytes>) -> BoxFuture<'_, AuthStep> {
        ready(self.decide(data))
    }
}

impl Challenge {
    fn decide(&mut self, data: Option<Bytes>) -> AuthStep {
        let data = data.unwrap_or_default();
        if !self.challenged {
            if &data[..] != b"hello" {
                return AuthStep::Fail(ReasonCode::NOT_AUTHORIZED);
            }
            self.challenged = true;
            return AuthStep::Continue(Bytes::from_static(b"challenge"));
        }
        if &data[..] == b"response" {
            AuthStep::Success {
                data: Some(Bytes::from_static(b"welcome")),
                grant: Grant::default(),
            }
        } else {
            AuthStep::Fail(ReasonCode::NOT_AUTHORIZED)
        }
    }
}

struct OneShot;

impl AuthExchange for OneShot {
    fn step(&mut self, data: Option<Bytes>) -> BoxFuture<'_, AuthStep> {
        ready(if data.as_deref() == Some(&b"secret"[..]) {
            AuthStep::Success {
                data: None,
                grant: Grant::default(),
            }
        } else {
            AuthStep::Fail(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        })
    }
}

struct Odd;

impl AuthExchange for Odd {
    fn step(&mut self, _data: Option<Bytes>) -> BoxFuture<'_, AuthStep> {
        ready(AuthStep::Fail(ReasonCode::ADMINISTRATIVE_ACTION))
    }
}

/// `IDENTITY`: succeeds at once as the user named by the data.
struct Identity;

impl AuthExchange for Identity {
    fn step(&mut self, data: Option<Bytes>) -> BoxFuture<'_, AuthStep> {
        let mut grant = Grant::default();
        grant.username = data.map(|d| String::from_utf8_lossy(&d).into_owned());
        ready(AuthStep::Success { data: None, grant })
    }
}

// ---------------------------------------------------------------- helpers

async fn start() -> common::TestBroker {
    common::start_with(common::config(""), Some(Arc::new(TestAuth))).await
}

fn with_method(id: &str, method: &str, data: &'static [u8]) -> Connect {
    let mut c = connect(ProtocolVersion::V5, id);
    c.properties.authentication_method = Some(ByteString::from(method));
    c.properties.authentication_data = Some(Bytes::from_static(data));
    c
}

fn auth(reason_code: ReasonCode, method: &str, data: &'static [u8]) -> Packet {
    Packet::Auth(Auth {
        reason_code,
        properties: AuthProperties {
            authentication_method: Some(ByteString::from(method)),
            authentication_data: Some(Bytes::from_static(data)),
            ..AuthProperties::default()
        },
    })
}

async fn recv_auth(client: &mut RawClient) -> Auth {
    match client.recv(T).await.unwrap() {
        Packet::Auth(a) => a,
        other => panic!("expected AUTH, got {other:?}"),
    }
}

async fn recv_connack(client: &mut RawClient) -> ConnAck {
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(a) => a,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// Opens a connection and sends `connect`; nothing is read yet.
async fn begin(addr: SocketAddr, connect: Connect) -> RawClient {
    let mut client = RawClient::connect(addr, ProtocolVersion::V5).await.unwrap();
    client.send(connect).await.unwrap();
    client
}

/// Runs the CHALLENGE exchange to a successful CONNACK.
async fn authenticated(addr: SocketAddr, id: &str) -> RawClient {
    let mut client = begin(addr, with_method(id, "CHALLENGE", b"hello")).await;
    let challenge = recv_auth(&mut client).await;
    assert_eq!(challenge.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
    client
        .send(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "CHALLENGE",
            b"response",
        ))
        .await
        .unwrap();
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    client
}

// ------------------------------------------------- CONNECT-time exchange

#[tokio::test]
async fn v5_mqtt_4_12_0_2_and_mqtt_4_12_0_5_and_mqtt_3_15_2_1_challenge_then_connack_with_the_same_method()
 {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("cr", "CHALLENGE", b"hello")).await;
    let challenge = recv_auth(&mut client).await;
    assert_eq!(challenge.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(
        challenge.properties.authentication_method.as_deref(),
        Some("CHALLENGE")
    );
    assert_eq!(
        challenge.properties.authentication_data.as_deref(),
        Some(&b"challenge"[..])
    );
    client
        .send(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "CHALLENGE",
            b"response",
        ))
        .await
        .unwrap();
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some("CHALLENGE")
    );
    assert_eq!(
        ack.properties.authentication_data.as_deref(),
        Some(&b"welcome"[..])
    );
    assert_quiet(&mut client).await;
}

#[tokio::test]
async fn v5_mqtt_4_12_0_5_one_step_success_echoes_the_method_in_connack() {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("one", "ONESHOT", b"secret")).await;
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some("ONESHOT")
    );
    assert_eq!(ack.properties.authentication_data, None);
}

#[tokio::test]
async fn v5_mqtt_4_12_0_1_unsupported_method_gets_0x8c_and_close() {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("unknown", "KERBEROS", b"x")).await;
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD);
    assert!(!ack.session_present);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_4_12_0_1_method_without_any_mechanism_installed_gets_0x8c() {
    let broker = common::start().await;
    let mut client = begin(broker.addr, with_method("none", "CHALLENGE", b"hello")).await;
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_4_12_0_4_rejection_after_a_challenge_gets_0x87_and_close() {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("wrong", "CHALLENGE", b"hello")).await;
    recv_auth(&mut client).await;
    client
        .send(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "CHALLENGE",
            b"guess",
        ))
        .await
        .unwrap();
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_4_12_0_4_rejection_at_the_first_step_gets_0x86_and_close() {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("bad-secret", "ONESHOT", b"nope")).await;
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_2_2_8_a_mechanism_failure_code_is_sent_as_a_connack_reason_code() {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("odd", "ODD", b"x")).await;
    // The testkit decoder only accepts CONNACK reason codes.
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::UNSPECIFIED_ERROR);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_4_12_0_5_changing_the_method_during_the_exchange_is_a_protocol_error() {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("switch", "CHALLENGE", b"hello")).await;
    recv_auth(&mut client).await;
    client
        .send(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "ONESHOT",
            b"secret",
        ))
        .await
        .unwrap();
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_4_13_1_1_other_packet_instead_of_auth_during_the_exchange_is_a_protocol_error() {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("impatient", "CHALLENGE", b"hello")).await;
    recv_auth(&mut client).await;
    client
        .send(publish(
            "too/early",
            &b"x"[..],
            roost_codec::QoS::AtMostOnce,
            None,
        ))
        .await
        .unwrap();
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
    assert_eq!(broker.handle.stats().sessions, 0, "nothing was attached");
}

#[tokio::test]
async fn v5_mqtt_4_13_1_1_reauthenticate_code_during_the_connect_exchange_is_a_protocol_error() {
    let broker = start().await;
    let mut client = begin(
        broker.addr,
        with_method("early-reauth", "CHALLENGE", b"hello"),
    )
    .await;
    recv_auth(&mut client).await;
    client
        .send(auth(ReasonCode::REAUTHENTICATE, "CHALLENGE", b"response"))
        .await
        .unwrap();
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_unanswered_challenge_times_out_and_closes() {
    let broker = common::start_with(
        common::config("[mqtt]\nconnect_timeout_secs = 1"),
        Some(Arc::new(TestAuth)),
    )
    .await;
    let mut client = begin(broker.addr, with_method("silent", "CHALLENGE", b"hello")).await;
    recv_auth(&mut client).await;
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_authentication_data_without_method_is_refused() {
    let broker = start().await;
    let mut c = connect(ProtocolVersion::V5, "data-only");
    c.properties.authentication_data = Some(Bytes::from_static(b"x"));
    let mut buf = bytes::BytesMut::new();
    roost_codec::Encoder::new(ProtocolVersion::V5)
        .encode(&Packet::Connect(Box::new(c)), &mut buf)
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(broker.addr).await.unwrap();
    stream.write_all(&buf).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(T, stream.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    // CONNACK 0x82 Protocol Error (the property is not allowed alone), then close.
    assert_eq!(got, [0x20, 0x03, 0x00, 0x82, 0x00]);
}

#[tokio::test]
async fn v5_mqtt_4_12_0_6_without_a_method_no_auth_and_no_method_in_connack() {
    let broker = start().await;
    let mut client = begin(broker.addr, connect(ProtocolVersion::V5, "plain")).await;
    let ack = recv_connack(&mut client).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(ack.properties.authentication_method, None);
    assert_eq!(ack.properties.authentication_data, None);
    assert_quiet(&mut client).await;
}

#[tokio::test]
async fn v5_mqtt_3_15_2_2_and_mqtt_3_15_2_3_server_auth_carries_no_reason_string_or_user_properties()
 {
    let broker = start().await;
    let mut c = with_method("small", "CHALLENGE", b"hello");
    c.properties.maximum_packet_size = Some(64);
    let mut client = begin(broker.addr, c).await;
    let challenge = recv_auth(&mut client).await;
    assert_eq!(challenge.properties.reason_string, None);
    assert!(challenge.properties.user_properties.is_empty());
}

// ------------------------------------------------------- re-authentication

#[tokio::test]
async fn v5_mqtt_4_12_0_5_reauthentication_succeeds_with_auth_0x00_and_the_same_method() {
    let broker = start().await;
    let mut client = authenticated(broker.addr, "reauth").await;
    client
        .send(auth(ReasonCode::REAUTHENTICATE, "CHALLENGE", b"hello"))
        .await
        .unwrap();
    let challenge = recv_auth(&mut client).await;
    assert_eq!(challenge.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(
        challenge.properties.authentication_method.as_deref(),
        Some("CHALLENGE")
    );
    assert_eq!(
        challenge.properties.authentication_data.as_deref(),
        Some(&b"challenge"[..])
    );
    // Other packets keep flowing during re-authentication.
    assert_quiet(&mut client).await;
    client
        .send(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "CHALLENGE",
            b"response",
        ))
        .await
        .unwrap();
    let done = recv_auth(&mut client).await;
    assert_eq!(done.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        done.properties.authentication_method.as_deref(),
        Some("CHALLENGE")
    );
    assert_eq!(
        done.properties.authentication_data.as_deref(),
        Some(&b"welcome"[..])
    );
    assert_quiet(&mut client).await;
}

#[tokio::test]
async fn v5_reauthentication_can_be_repeated() {
    let broker = start().await;
    let mut client = authenticated(broker.addr, "reauth-twice").await;
    for _ in 0..2 {
        client
            .send(auth(ReasonCode::REAUTHENTICATE, "CHALLENGE", b"hello"))
            .await
            .unwrap();
        recv_auth(&mut client).await;
        client
            .send(auth(
                ReasonCode::CONTINUE_AUTHENTICATION,
                "CHALLENGE",
                b"response",
            ))
            .await
            .unwrap();
        assert_eq!(
            recv_auth(&mut client).await.reason_code,
            ReasonCode::SUCCESS
        );
    }
}

#[tokio::test]
async fn v5_mqtt_4_12_1_2_failed_reauthentication_sends_disconnect_and_closes() {
    let broker = start().await;
    let mut client = authenticated(broker.addr, "reauth-fail").await;
    client
        .send(auth(ReasonCode::REAUTHENTICATE, "CHALLENGE", b"hello"))
        .await
        .unwrap();
    recv_auth(&mut client).await;
    client
        .send(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "CHALLENGE",
            b"guess",
        ))
        .await
        .unwrap();
    let d = client.expect_closed(T).await.unwrap();
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::NOT_AUTHORIZED));
}

#[tokio::test]
async fn v5_mqtt_4_12_1_2_reauthentication_failing_at_once_maps_to_a_disconnect_code() {
    let broker = start().await;
    let mut client = begin(
        broker.addr,
        with_method("oneshot-reauth", "ONESHOT", b"secret"),
    )
    .await;
    assert_eq!(
        recv_connack(&mut client).await.reason_code,
        ReasonCode::SUCCESS
    );
    client
        .send(auth(ReasonCode::REAUTHENTICATE, "ONESHOT", b"wrong"))
        .await
        .unwrap();
    // 0x86 is not a DISCONNECT reason code: it is sent as 0x87 Not authorized.
    let d = client.expect_closed(T).await.unwrap();
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::NOT_AUTHORIZED));
}

#[tokio::test]
async fn v5_mqtt_4_13_1_1_reauthentication_with_another_method_is_a_protocol_error() {
    let broker = start().await;
    let mut client = authenticated(broker.addr, "reauth-switch").await;
    client
        .send(auth(ReasonCode::REAUTHENTICATE, "ONESHOT", b"secret"))
        .await
        .unwrap();
    let d = client.expect_closed(T).await.unwrap();
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::PROTOCOL_ERROR));
}

#[tokio::test]
async fn v5_mqtt_4_13_1_1_auth_from_a_client_without_enhanced_authentication_is_a_protocol_error() {
    let broker = start().await;
    let (mut client, _) = RawClient::connect_v5(broker.addr, "no-method")
        .await
        .unwrap();
    client
        .send(auth(ReasonCode::REAUTHENTICATE, "CHALLENGE", b"hello"))
        .await
        .unwrap();
    let d = client.expect_closed(T).await.unwrap();
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::PROTOCOL_ERROR));
}

#[tokio::test]
async fn v5_mqtt_4_13_1_1_continue_without_a_running_exchange_is_a_protocol_error() {
    let broker = start().await;
    let mut client = authenticated(broker.addr, "stray-continue").await;
    client
        .send(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "CHALLENGE",
            b"response",
        ))
        .await
        .unwrap();
    let d = client.expect_closed(T).await.unwrap();
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::PROTOCOL_ERROR));
}

#[tokio::test]
async fn v5_mqtt_3_15_1_1_auth_with_reserved_flags_is_malformed() {
    let broker = start().await;
    let mut client = authenticated(broker.addr, "auth-flags").await;
    // AUTH with flag bit 0 set, Success short form.
    client.send_bytes(&[0xF1, 0x00]).await.unwrap();
    let d = client.expect_closed(T).await.unwrap();
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::MALFORMED_PACKET));
}

#[tokio::test]
async fn v311_mqtt_4_8_0_1_auth_packet_on_a_3_1_1_connection_closes() {
    let broker = start().await;
    let (mut client, _) = RawClient::connect_v311(broker.addr, "old-auth")
        .await
        .unwrap();
    client.send_bytes(&[0xF0, 0x00]).await.unwrap();
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_reauthentication_cannot_switch_to_another_user() {
    let broker = start().await;
    let mut client = begin(broker.addr, with_method("who", "IDENTITY", b"alice")).await;
    assert_eq!(
        recv_connack(&mut client).await.reason_code,
        ReasonCode::SUCCESS
    );
    // The same user again: fine.
    client
        .send(auth(ReasonCode::REAUTHENTICATE, "IDENTITY", b"alice"))
        .await
        .unwrap();
    assert_eq!(
        recv_auth(&mut client).await.reason_code,
        ReasonCode::SUCCESS
    );
    // Someone else: the connection keeps alice's identity for authorization,
    // so it is closed rather than left half-switched.
    client
        .send(auth(ReasonCode::REAUTHENTICATE, "IDENTITY", b"bob"))
        .await
        .unwrap();
    common::clients::expect_disconnect(&mut client, ReasonCode::NOT_AUTHORIZED).await;
}
