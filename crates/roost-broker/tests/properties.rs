//! PUBLISH properties through the whole broker (MQTT 5.0 section 3.3.2.3,
//! 3.3.4, request/response of 4.10): what subscribers receive unchanged,
//! what the broker rewrites (Message Expiry Interval, Subscription
//! Identifiers), what it refuses, and Response Information.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{
    Packet, ProtocolVersion, Publish, PublishProperties, QoS, ReasonCode, Subscribe,
};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, subscribe, unique_id};

use common::clients::{expect_disconnect, open_v5, open_with};

const T: Duration = Duration::from_secs(5);

async fn send_subscribe(client: &mut RawClient, request: Subscribe) {
    client.send(request).await.unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));
}

async fn sub(client: &mut RawClient, filter: &str) {
    send_subscribe(client, subscribe(1, filter, QoS::AtLeastOnce)).await;
}

async fn sub_with_id(client: &mut RawClient, filter: &str, id: u32) {
    let mut request = subscribe(1, filter, QoS::AtLeastOnce);
    request.properties.subscription_identifier = Some(id);
    send_subscribe(client, request).await;
}

fn user(name: &str, value: &str) -> (ByteString, ByteString) {
    (ByteString::from(name), ByteString::from(value))
}

/// Every application property a publisher can set, with repeated and
/// out-of-order User Property names.
fn all_properties() -> PublishProperties {
    PublishProperties {
        payload_format_indicator: Some(true),
        response_topic: Some(ByteString::from("reply/to/me")),
        correlation_data: Some(Bytes::from_static(b"\x00corr\xff")),
        user_properties: vec![user("z", "1"), user("a", "2"), user("z", "0"), user("", "")],
        content_type: Some(ByteString::from("application/json; charset=utf-8")),
        ..PublishProperties::default()
    }
}

/// Publishes `properties` (QoS 1) from one client and returns what a
/// subscriber received.
async fn forwarded(properties: PublishProperties) -> Publish {
    let broker = common::start().await;
    let mut subscriber = open_v5(broker.addr, "props-sub").await;
    sub(&mut subscriber, "props/#").await;
    let mut publisher = open_v5(broker.addr, "props-pub").await;
    let mut message = publish("props/t", &b"{}"[..], QoS::AtLeastOnce, Some(1));
    message.properties = properties;
    publisher.send(message).await.unwrap();
    subscriber.recv_publish(T).await.unwrap()
}

/// A PUBLISH (QoS 0, topic "p/t", payload "x") with a raw property block.
fn raw_publish_with_properties(properties: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 3, b'p', b'/', b't', properties.len() as u8];
    body.extend_from_slice(properties);
    body.push(b'x');
    let mut packet = vec![0x30, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

#[tokio::test]
async fn v5_mqtt_3_3_2_4_payload_format_indicator_is_forwarded_unaltered() {
    for indicator in [Some(true), Some(false), None] {
        let got = forwarded(PublishProperties {
            payload_format_indicator: indicator,
            ..PublishProperties::default()
        })
        .await;
        assert_eq!(got.properties.payload_format_indicator, indicator);
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_2_15_response_topic_is_forwarded_unaltered() {
    let got = forwarded(all_properties()).await;
    assert_eq!(
        got.properties.response_topic,
        all_properties().response_topic
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_2_16_correlation_data_is_forwarded_unaltered() {
    let got = forwarded(all_properties()).await;
    assert_eq!(
        got.properties.correlation_data,
        all_properties().correlation_data
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_2_17_v5_mqtt_3_3_2_18_user_properties_are_forwarded_unaltered_and_in_order() {
    let got = forwarded(all_properties()).await;
    assert_eq!(
        got.properties.user_properties,
        all_properties().user_properties
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_2_20_content_type_is_forwarded_unaltered() {
    let got = forwarded(all_properties()).await;
    assert_eq!(got.properties.content_type, all_properties().content_type);
}

#[tokio::test]
async fn properties_not_set_by_the_publisher_are_not_added() {
    let got = forwarded(PublishProperties::default()).await;
    assert_eq!(got.properties, PublishProperties::default());
}

#[tokio::test]
async fn v5_mqtt_3_3_2_13_response_topic_that_is_not_utf8_closes() {
    let broker = common::start().await;
    let mut client = open_v5(broker.addr, "rt-utf8").await;
    // Response Topic (0x08) = 0xFF 0xFE.
    client
        .send_bytes(&raw_publish_with_properties(&[0x08, 0, 2, 0xFF, 0xFE]))
        .await
        .unwrap();
    expect_disconnect(&mut client, ReasonCode::MALFORMED_PACKET).await;
}

#[tokio::test]
async fn v5_mqtt_3_3_2_14_response_topic_with_wildcards_is_a_protocol_error() {
    let broker = common::start().await;
    for topic in [&b"a/+"[..], b"#"] {
        let mut client = open_v5(broker.addr, "rt-wild").await;
        let mut properties = vec![0x08, 0, topic.len() as u8];
        properties.extend_from_slice(topic);
        client
            .send_bytes(&raw_publish_with_properties(&properties))
            .await
            .unwrap();
        expect_disconnect(&mut client, ReasonCode::PROTOCOL_ERROR).await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_2_19_content_type_that_is_not_utf8_closes() {
    let broker = common::start().await;
    let mut client = open_v5(broker.addr, "ct-utf8").await;
    // Content Type (0x03) = an overlong encoding of '/'.
    client
        .send_bytes(&raw_publish_with_properties(&[0x03, 0, 2, 0xC0, 0xAF]))
        .await
        .unwrap();
    expect_disconnect(&mut client, ReasonCode::MALFORMED_PACKET).await;
}

#[tokio::test]
async fn v5_mqtt_3_3_2_5_message_expired_while_queued_for_an_offline_client_is_not_delivered() {
    let broker = common::start().await;
    let id = unique_id("exp-off");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.properties.session_expiry_interval = Some(600);
    let mut subscriber = open_with(broker.addr, c.clone()).await;
    sub(&mut subscriber, "ex/#").await;
    subscriber
        .send(Packet::Disconnect(Default::default()))
        .await
        .unwrap();
    subscriber.expect_closed(T).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while broker.handle.stats().connections_current > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut publisher = open_v5(broker.addr, "exp-off-pub").await;
    let mut short = publish("ex/short", &b"short"[..], QoS::AtLeastOnce, Some(1));
    short.properties.message_expiry_interval = Some(1);
    publisher.send(short).await.unwrap();
    let mut long = publish("ex/long", &b"long"[..], QoS::AtLeastOnce, Some(2));
    long.properties.message_expiry_interval = Some(100);
    publisher.send(long).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(
            publisher.recv(T).await.unwrap(),
            Packet::PubAck(_)
        ));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let dropped = broker.handle.stats().messages_dropped;
    c.clean_start = false;
    let mut subscriber = open_with(broker.addr, c).await;
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&*got.topic, "ex/long");
    subscriber.send(Packet::PingReq).await.unwrap();
    assert_eq!(subscriber.recv(T).await.unwrap(), Packet::PingResp);
    assert_eq!(
        broker.handle.stats().messages_dropped,
        dropped + 1,
        "the expiry is counted"
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_2_6_message_expiry_interval_is_reduced_by_the_time_waited() {
    let broker = common::start().await;
    let id = unique_id("exp-count");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.properties.session_expiry_interval = Some(600);
    let mut subscriber = open_with(broker.addr, c.clone()).await;
    sub(&mut subscriber, "ec/#").await;

    // Delivered at once: the interval is forwarded as received.
    let mut publisher = open_v5(broker.addr, "exp-count-pub").await;
    let mut message = publish("ec/t", &b"x"[..], QoS::AtLeastOnce, Some(1));
    message.properties.message_expiry_interval = Some(30);
    publisher.send(message.clone()).await.unwrap();
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(got.properties.message_expiry_interval, Some(30));
    subscriber
        .send(roost_testkit::packets::puback(got.packet_id.unwrap().get()))
        .await
        .unwrap();

    // Queued while the client is away: the interval shrinks.
    subscriber
        .send(Packet::Disconnect(Default::default()))
        .await
        .unwrap();
    subscriber.expect_closed(T).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while broker.handle.stats().connections_current > 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    message.packet_id = Some(roost_testkit::packets::pid(2));
    publisher.send(message).await.unwrap();
    assert!(matches!(
        publisher.recv(T).await.unwrap(),
        Packet::PubAck(_)
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.clean_start = false;
    let mut subscriber = open_with(broker.addr, c).await;
    let got = subscriber.recv_publish(T).await.unwrap();
    let left = got.properties.message_expiry_interval.unwrap();
    assert!(
        (1..=29).contains(&left),
        "waited more than a second: {left}"
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_4_3_v5_mqtt_3_3_4_4_one_copy_carries_every_matching_subscription_identifier() {
    let broker = common::start().await;
    let mut subscriber = open_v5(broker.addr, "subids").await;
    sub_with_id(&mut subscriber, "si/#", 1).await;
    sub_with_id(&mut subscriber, "si/+", 2).await;
    sub(&mut subscriber, "si/t").await;
    sub_with_id(&mut subscriber, "other/si", 3).await;
    broker
        .handle
        .publish("si/t", Bytes::from_static(b"x"), QoS::AtMostOnce, false);
    let got = subscriber.recv_publish(T).await.unwrap();
    let mut ids = got.properties.subscription_identifiers.to_vec();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
    // One copy only.
    broker
        .handle
        .publish("other/si", Bytes::from_static(b"m"), QoS::AtMostOnce, false);
    let next = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(
        (
            &*next.topic,
            next.properties.subscription_identifiers.to_vec()
        ),
        ("other/si", vec![3])
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_4_3_retained_message_sent_on_subscribe_carries_the_subscription_identifier() {
    let broker = common::start().await;
    broker
        .handle
        .publish("sr/t", Bytes::from_static(b"r"), QoS::AtMostOnce, true);
    let mut subscriber = open_v5(broker.addr, "subid-retained").await;
    sub_with_id(&mut subscriber, "sr/#", 42).await;
    let got = subscriber.recv_publish(T).await.unwrap();
    assert!(got.retain);
    assert_eq!(got.properties.subscription_identifiers.to_vec(), vec![42]);
}

#[tokio::test]
async fn replacing_a_subscription_replaces_its_identifier() {
    let broker = common::start().await;
    let mut subscriber = open_v5(broker.addr, "subid-replace").await;
    sub_with_id(&mut subscriber, "rr/t", 5).await;
    sub_with_id(&mut subscriber, "rr/t", 6).await;
    broker
        .handle
        .publish("rr/t", Bytes::from_static(b"x"), QoS::AtMostOnce, false);
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(got.properties.subscription_identifiers.to_vec(), vec![6]);
    sub(&mut subscriber, "rr/t").await;
    broker
        .handle
        .publish("rr/t", Bytes::from_static(b"y"), QoS::AtMostOnce, false);
    let got = subscriber.recv_publish(T).await.unwrap();
    assert!(got.properties.subscription_identifiers.is_empty());
}

#[tokio::test]
async fn v311_subscriber_gets_the_message_without_properties_and_v5_gets_them_from_a_v311_publisher()
 {
    let broker = common::start().await;
    let mut old = open_with(
        broker.addr,
        connect(ProtocolVersion::V311, &unique_id("p311")),
    )
    .await;
    old.send(subscribe(1, "mix/#", QoS::AtMostOnce))
        .await
        .unwrap();
    assert!(matches!(old.recv(T).await.unwrap(), Packet::SubAck(_)));
    let mut new = open_v5(broker.addr, "p5").await;
    sub(&mut new, "mix/#").await;
    let mut publisher = open_v5(broker.addr, "pmix").await;
    let mut message = publish("mix/t", &b"x"[..], QoS::AtMostOnce, None);
    message.properties = all_properties();
    publisher.send(message).await.unwrap();
    assert_eq!(&old.recv_publish(T).await.unwrap().payload[..], b"x");
    assert_eq!(
        new.recv_publish(T)
            .await
            .unwrap()
            .properties
            .user_properties,
        all_properties().user_properties
    );

    let mut publisher = open_with(
        broker.addr,
        connect(ProtocolVersion::V311, &unique_id("p311pub")),
    )
    .await;
    publisher
        .send(publish("mix/u", &b"y"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(
        new.recv_publish(T).await.unwrap().properties,
        PublishProperties::default()
    );
}

#[tokio::test]
async fn payload_flagged_utf8_is_checked_when_configured() {
    let config = common::config("[mqtt]\nvalidate_utf8_payload = true\n");
    let broker = common::start_with(config, None).await;
    let mut subscriber = open_v5(broker.addr, "pfi-sub").await;
    sub(&mut subscriber, "pf/#").await;
    let mut publisher = open_v5(broker.addr, "pfi-pub").await;
    // Not flagged as UTF-8: not checked.
    publisher
        .send(publish("pf/raw", &b"\xff"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(
        &subscriber.recv_publish(T).await.unwrap().payload[..],
        b"\xff"
    );
    let mut valid = publish(
        "pf/text",
        "h\u{e9}".as_bytes().to_vec(),
        QoS::AtMostOnce,
        None,
    );
    valid.properties.payload_format_indicator = Some(true);
    publisher.send(valid.clone()).await.unwrap();
    assert_eq!(&*subscriber.recv_publish(T).await.unwrap().topic, "pf/text");
    valid.payload = Bytes::from_static(b"\xff");
    publisher.send(valid).await.unwrap();
    expect_disconnect(&mut publisher, ReasonCode::PAYLOAD_FORMAT_INVALID).await;
}

#[tokio::test]
async fn response_information_is_returned_only_when_requested() {
    let config = common::config("[mqtt]\nresponse_information = \"prefix/\"\n");
    let broker = common::start_with(config, None).await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("respinfo"));
    c.properties.request_response_information = Some(true);
    let (_client, connack) = RawClient::connect_with(broker.addr, c).await.unwrap();
    let info = connack.properties.response_information.expect("requested");
    assert!(info.starts_with("prefix/"), "{info}");

    for request in [None, Some(false)] {
        let mut c = connect(ProtocolVersion::V5, &unique_id("respinfo-no"));
        c.properties.request_response_information = request;
        let (_client, connack) = RawClient::connect_with(broker.addr, c).await.unwrap();
        assert_eq!(connack.properties.response_information, None);
    }
}

#[tokio::test]
async fn request_response_round_trip_through_the_broker() {
    let config = common::config("[mqtt]\nresponse_information = \"resp/\"\n");
    let broker = common::start_with(config, None).await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("requester"));
    c.properties.request_response_information = Some(true);
    let (mut requester, connack) = RawClient::connect_with(broker.addr, c).await.unwrap();
    let reply_to = format!("{}/reply", connack.properties.response_information.unwrap());
    sub(&mut requester, &reply_to).await;
    let mut responder = open_v5(broker.addr, "responder").await;
    sub(&mut responder, "service/echo").await;

    let mut request = publish("service/echo", &b"ping"[..], QoS::AtLeastOnce, Some(1));
    request.properties.response_topic = Some(ByteString::from(reply_to.as_str()));
    request.properties.correlation_data = Some(Bytes::from_static(b"req-1"));
    requester.send(request).await.unwrap();
    assert!(matches!(
        requester.recv(T).await.unwrap(),
        Packet::PubAck(_)
    ));

    let got = responder.recv_publish(T).await.unwrap();
    let mut response = publish(
        got.properties.response_topic.as_deref().unwrap(),
        &b"pong"[..],
        QoS::AtMostOnce,
        None,
    );
    response.properties.correlation_data = got.properties.correlation_data.clone();
    responder.send(response).await.unwrap();

    let answer = requester.recv_publish(T).await.unwrap();
    assert_eq!(
        (&*answer.topic, &answer.payload[..]),
        (reply_to.as_str(), &b"pong"[..])
    );
    assert_eq!(
        answer.properties.correlation_data,
        Some(Bytes::from_static(b"req-1"))
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_2_5_message_expired_behind_a_full_window_is_not_delivered() {
    let broker = common::start().await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("exp-window"));
    c.properties.receive_maximum = Some(1);
    let mut subscriber = open_with(broker.addr, c).await;
    sub(&mut subscriber, "ew/#").await;
    let mut publisher = open_v5(broker.addr, "exp-window-pub").await;
    publisher
        .send(publish("ew/first", &b"1"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    let mut short = publish("ew/short", &b"2"[..], QoS::AtLeastOnce, Some(2));
    short.properties.message_expiry_interval = Some(1);
    publisher.send(short).await.unwrap();
    publisher
        .send(publish("ew/last", &b"3"[..], QoS::AtLeastOnce, Some(3)))
        .await
        .unwrap();
    let first = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&*first.topic, "ew/first");
    // The other two wait behind the window of one; the short one expires there.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let dropped = broker.handle.stats().messages_dropped;
    subscriber
        .send(roost_testkit::packets::puback(
            first.packet_id.unwrap().get(),
        ))
        .await
        .unwrap();
    let next = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&*next.topic, "ew/last");
    assert_eq!(broker.handle.stats().messages_dropped, dropped + 1);
}
