//! Retention policies: `retain_ttl`, Message Expiry of stored messages, the
//! periodic sweep, and the count and payload limits as publishers see them.

use super::*;

use std::time::Duration;

use bytes::Bytes;
use roost_codec::{PubResponse, PublishProperties};
use roost_testkit::packets::pid;

use common::barrier::next_is_marker;
use common::wait_until;

/// Long enough for a 1 s TTL plus a sweep tick on a busy machine.
const EXPIRY_WAIT: Duration = Duration::from_secs(10);

/// Sends a PUBLISH (QoS 1 or 2) and returns the reason code of its PUBACK or
/// PUBREC.
async fn ack_code(client: &mut RawClient, message: Publish) -> ReasonCode {
    client.send(message).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::PubAck(ack) | Packet::PubRec(ack) => ack.reason_code,
        other => panic!("expected PUBACK or PUBREC, got {other:?}"),
    }
}

fn with_expiry(mut message: Publish, secs: u32) -> Publish {
    message.properties.message_expiry_interval = Some(secs);
    message
}

#[tokio::test]
async fn retain_ttl_stops_delivery_and_removes_the_message() {
    let broker = common::start_with(common::config("[mqtt]\nretain_ttl = 1\n"), None).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "ttl").await;
    publish_acked(
        &mut publisher,
        retained("ttl/t", b"x", QoS::AtLeastOnce, Some(1)),
    )
    .await;
    let stored = broker.handle.retained_get("ttl/t").expect("stored");
    assert!(stored.expires_in.expect("the TTL sets a deadline") <= Duration::from_secs(1));
    // Delivered before the TTL runs out, and the TTL is not sent as a
    // Message Expiry Interval: it is the broker's policy, not the message's.
    let got = retained_for(broker.addr, ProtocolVersion::V5, "ttl/#").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].properties.message_expiry_interval, None);

    wait_until("the TTL to run out", EXPIRY_WAIT, || {
        broker.handle.retained_get("ttl/t").is_none()
    })
    .await;
    assert!(
        retained_for(broker.addr, ProtocolVersion::V5, "ttl/#")
            .await
            .is_empty()
    );
    let stats = broker.handle.stats();
    assert_eq!((stats.retained_messages, stats.retained_expired), (0, 1));
}

#[tokio::test]
async fn retain_ttl_counts_from_the_latest_replacement() {
    let broker = common::start_with(common::config("[mqtt]\nretain_ttl = 3600\n"), None).await;
    let handle = &broker.handle;
    handle
        .retained_set(
            "ttl2/t",
            Bytes::from_static(b"1"),
            QoS::AtMostOnce,
            PublishProperties::default(),
        )
        .unwrap();
    let first = handle.retained_get("ttl2/t").unwrap();
    handle
        .retained_set(
            "ttl2/t",
            Bytes::from_static(b"2"),
            QoS::AtMostOnce,
            PublishProperties::default(),
        )
        .unwrap();
    let second = handle.retained_get("ttl2/t").unwrap();
    assert!(second.stored_at >= first.stored_at);
    let left = second.expires_in.unwrap();
    assert!(
        left > Duration::from_secs(3590) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
}

#[tokio::test]
async fn the_sweep_removes_expired_retained_messages_nobody_looks_up() {
    let broker = common::start_with(common::config("[mqtt]\nretain_ttl = 1\n"), None).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "sweep").await;
    for (i, topic) in ["sw/1", "sw/2", "sw/3"].into_iter().enumerate() {
        let id = u16::try_from(i + 1).unwrap();
        publish_acked(
            &mut publisher,
            retained(topic, b"abc", QoS::AtLeastOnce, Some(id)),
        )
        .await;
    }
    assert_eq!(broker.handle.stats().retained_bytes, 9);
    // stats() looks nothing up: only the sweep can empty the store.
    wait_until("the sweep to remove them", EXPIRY_WAIT, || {
        broker.handle.stats().retained_messages == 0
    })
    .await;
    let stats = broker.handle.stats();
    assert_eq!((stats.retained_expired, stats.retained_bytes), (3, 0));
}

#[tokio::test]
async fn the_earlier_of_retain_ttl_and_message_expiry_removes_a_retained_message() {
    let broker = common::start_with(common::config("[mqtt]\nretain_ttl = 60\n"), None).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "earlier").await;
    publish_acked(
        &mut publisher,
        with_expiry(retained("ea/short", b"s", QoS::AtLeastOnce, Some(1)), 1),
    )
    .await;
    publish_acked(
        &mut publisher,
        with_expiry(retained("ea/long", b"l", QoS::AtLeastOnce, Some(2)), 3600),
    )
    .await;
    let long = broker.handle.retained_get("ea/long").unwrap();
    assert!(
        long.expires_in.unwrap() <= Duration::from_secs(60),
        "the TTL is earlier"
    );
    wait_until("the 1 s Message Expiry to run out", EXPIRY_WAIT, || {
        broker.handle.retained_get("ea/short").is_none()
    })
    .await;
    let got = retained_for(broker.addr, ProtocolVersion::V5, "ea/+").await;
    let topics: Vec<_> = got.iter().map(|p| &*p.topic).collect();
    assert_eq!(topics, vec!["ea/long"]);
    let left = got[0].properties.message_expiry_interval.unwrap();
    assert!(
        (3590..=3600).contains(&left),
        "its own expiry is sent: {left}"
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_2_5_expired_retained_message_is_removed_without_a_lookup() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "expsweep").await;
    publish_acked(
        &mut publisher,
        with_expiry(retained("es/t", b"x", QoS::AtLeastOnce, Some(1)), 1),
    )
    .await;
    assert_eq!(broker.handle.stats().retained_messages, 1);
    wait_until("the sweep to remove it", EXPIRY_WAIT, || {
        broker.handle.stats().retained_messages == 0
    })
    .await;
    assert_eq!(broker.handle.stats().retained_expired, 1);
    assert!(
        retained_for(broker.addr, ProtocolVersion::V5, "es/t")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn v5_mqtt_3_4_2_1_v5_mqtt_3_5_2_1_retained_message_over_a_limit_gets_0x97_and_is_not_routed()
{
    let broker = common::start_with(
        common::config("[mqtt]\nmax_retained_messages = 1\nmax_retained_payload = 4\n"),
        None,
    )
    .await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "quota-sub").await;
    sub(&mut subscriber, "qx/#", QoS::AtMostOnce).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "quota").await;
    let stored = ack_code(
        &mut publisher,
        retained("qx/1", b"a", QoS::AtLeastOnce, Some(1)),
    )
    .await;
    assert_eq!(stored, ReasonCode::SUCCESS);
    // A new topic beyond the count, at QoS 1 and 2; a payload beyond the size.
    for (message, what) in [
        (
            retained("qx/2", b"b", QoS::AtLeastOnce, Some(2)),
            "count, QoS 1",
        ),
        (
            retained("qx/3", b"c", QoS::ExactlyOnce, Some(3)),
            "count, QoS 2",
        ),
        (
            retained("qx/1", b"12345", QoS::AtLeastOnce, Some(4)),
            "size",
        ),
    ] {
        let code = ack_code(&mut publisher, message).await;
        assert_eq!(code, ReasonCode::QUOTA_EXCEEDED, "{what}");
    }
    // Replacing a stored topic is no growth: allowed at the count limit.
    let replaced = ack_code(
        &mut publisher,
        retained("qx/1", b"a2", QoS::AtLeastOnce, Some(5)),
    )
    .await;
    assert_eq!(replaced, ReasonCode::SUCCESS);
    // The refused ones were routed to nobody: the subscriber got "a", then "a2".
    assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], b"a");
    assert_eq!(
        &subscriber.recv_publish(T).await.unwrap().payload[..],
        b"a2"
    );
    next_is_marker(&mut publisher, &mut subscriber, "qx/marker").await;
    let stats = broker.handle.stats();
    assert_eq!((stats.retained_messages, stats.retained_refused), (1, 3));
    assert_eq!(
        &broker.handle.retained_get("qx/1").unwrap().payload[..],
        b"a2"
    );
}

#[tokio::test]
async fn v5_mqtt_4_3_3_9_packet_id_of_a_pubrec_0x97_starts_a_new_message() {
    let broker =
        common::start_with(common::config("[mqtt]\nmax_retained_payload = 1\n"), None).await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "q2new-sub").await;
    sub(&mut subscriber, "q2n/t", QoS::AtMostOnce).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "q2new").await;
    let refused = ack_code(
        &mut publisher,
        retained("q2n/t", b"too big", QoS::ExactlyOnce, Some(7)),
    )
    .await;
    assert_eq!(refused, ReasonCode::QUOTA_EXCEEDED);
    // Same packet id again: a new message, accepted and routed.
    let accepted = ack_code(
        &mut publisher,
        retained("q2n/t", b"k", QoS::ExactlyOnce, Some(7)),
    )
    .await;
    assert_eq!(accepted, ReasonCode::SUCCESS);
    publisher
        .send(Packet::PubRel(PubResponse::success(pid(7))))
        .await
        .unwrap();
    assert!(matches!(
        publisher.recv(T).await.unwrap(),
        Packet::PubComp(c) if c.reason_code == ReasonCode::SUCCESS
    ));
    assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], b"k");
    assert_eq!(broker.handle.stats().retained_messages, 1);
}

#[tokio::test]
async fn retained_message_over_a_limit_from_a_publisher_that_cannot_be_told_is_routed_not_retained()
{
    let broker =
        common::start_with(common::config("[mqtt]\nmax_retained_messages = 1\n"), None).await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "untold-sub").await;
    sub(&mut subscriber, "un/#", QoS::AtMostOnce).await;
    broker
        .handle
        .retained_set(
            "un/full",
            Bytes::from_static(b"f"),
            QoS::AtMostOnce,
            PublishProperties::default(),
        )
        .unwrap();
    // 3.1.1 has no reason codes; a 5.0 QoS 0 PUBLISH has no acknowledgement.
    let mut v311 = open(broker.addr, ProtocolVersion::V311, "untold311").await;
    publish_acked(&mut v311, retained("un/a", b"1", QoS::AtLeastOnce, Some(1))).await;
    let mut v5 = open(broker.addr, ProtocolVersion::V5, "untold5").await;
    publish_acked(&mut v5, retained("un/b", b"2", QoS::AtMostOnce, None)).await;
    for payload in [b"1", b"2"] {
        assert_eq!(
            &subscriber.recv_publish(T).await.unwrap().payload[..],
            payload
        );
    }
    let stats = broker.handle.stats();
    assert_eq!((stats.retained_messages, stats.retained_refused), (1, 2));
}

#[test]
fn a_bad_retain_ttl_is_a_config_error_naming_the_key_and_line() {
    let err = roost_broker::Config::from_toml("[mqtt]\nretain_ttl = -5\n", "roost.toml")
        .expect_err("a negative TTL is refused")
        .to_string();
    assert!(err.contains("retain_ttl"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    let ok = roost_broker::Config::from_toml("[mqtt]\nretain_ttl = 86400\n", "roost.toml").unwrap();
    assert_eq!(ok.mqtt.retain_ttl, 86_400);
}
