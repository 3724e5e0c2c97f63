//! Hibernation of idle plain-TCP connections (driver/hibernate.rs): a
//! connection idle for `limits.hibernate_after_ms` gives up its task, and
//! everything that concerns it wakes it with its state intact — packets,
//! deliveries, commands (takeover, shutdown), its keep-alive or credentials
//! deadline, the peer closing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use roost_codec::{LastWill, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, puback, publish, subscribe, unique_id};

use common::short_lived::ShortLived;
use common::{TestBroker, config, start_built, start_with, wait_until};

const T: Duration = Duration::from_secs(5);

/// A broker whose connections hibernate after 20 ms without traffic.
async fn sleepy_broker() -> TestBroker {
    start_with(config("[limits]\nhibernate_after_ms = 20\n"), None).await
}

/// Waits until `n` connections hibernate (and have done so at least `n` times).
async fn hibernating(broker: &TestBroker, n: u64) {
    let handle = broker.handle.clone();
    wait_until("connections hibernating", T, || {
        let stats = handle.stats();
        stats.connections_hibernating == n && stats.hibernations >= n
    })
    .await;
}

async fn subscriber(broker: &TestBroker, filter: &str, qos: QoS) -> RawClient {
    let (mut c, _) = RawClient::connect_v5(broker.addr, &unique_id("sleeper"))
        .await
        .unwrap();
    c.send(subscribe(1, filter, qos)).await.unwrap();
    assert!(matches!(c.recv(T).await.unwrap(), Packet::SubAck(_)));
    c
}

#[tokio::test]
async fn a_delivery_wakes_a_hibernating_subscriber() {
    let broker = sleepy_broker().await;
    let mut sub = subscriber(&broker, "hib/deliver", QoS::AtMostOnce).await;
    hibernating(&broker, 1).await;

    broker.handle.publish(
        "hib/deliver",
        Bytes::from_static(b"wake up"),
        QoS::AtMostOnce,
        false,
    );
    let got = sub.recv_publish(T).await.unwrap();
    assert_eq!(&got.payload[..], b"wake up");
    // Idle again afterwards: it goes back to sleep.
    hibernating(&broker, 1).await;
    assert!(broker.handle.stats().hibernations >= 2);
}

#[tokio::test]
async fn a_hibernating_connection_answers_pingreq() {
    let broker = sleepy_broker().await;
    let (mut c, _) = RawClient::connect_v311(broker.addr, &unique_id("ping"))
        .await
        .unwrap();
    hibernating(&broker, 1).await;
    c.send(Packet::PingReq).await.unwrap();
    assert!(matches!(c.recv(T).await.unwrap(), Packet::PingResp));
    assert_eq!(broker.handle.stats().connections_current, 1);
}

#[tokio::test]
async fn inflight_state_survives_hibernation() {
    // Receive Maximum 1: the second message waits for the first one's PUBACK,
    // which arrives only after the subscriber hibernated.
    let broker = sleepy_broker().await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("inflight"));
    c.properties.receive_maximum = Some(1);
    let (mut sub, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    sub.send(subscribe(1, "hib/inflight", QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(matches!(sub.recv(T).await.unwrap(), Packet::SubAck(_)));
    for payload in ["one", "two"] {
        broker.handle.publish(
            "hib/inflight",
            Bytes::from(payload),
            QoS::AtLeastOnce,
            false,
        );
    }
    let first = sub.recv_publish(T).await.unwrap();
    assert_eq!(&first.payload[..], b"one");
    hibernating(&broker, 1).await;

    sub.send(puback(first.packet_id.unwrap().get()))
        .await
        .unwrap();
    let second = sub.recv_publish(T).await.unwrap();
    assert_eq!(&second.payload[..], b"two");
    assert_ne!(second.packet_id, first.packet_id);
}

#[tokio::test]
async fn a_publisher_woken_from_hibernation_is_acknowledged_and_routed() {
    let broker = sleepy_broker().await;
    let mut sub = subscriber(&broker, "hib/route", QoS::AtLeastOnce).await;
    let (mut publisher, _) = RawClient::connect_v5(broker.addr, &unique_id("pub"))
        .await
        .unwrap();
    hibernating(&broker, 2).await;

    publisher
        .send(publish("hib/route", "routed", QoS::AtLeastOnce, Some(7)))
        .await
        .unwrap();
    match publisher.recv(T).await.unwrap() {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), 7),
        other => panic!("{other:?}"),
    }
    assert_eq!(&sub.recv_publish(T).await.unwrap().payload[..], b"routed");
}

#[tokio::test]
async fn topic_aliases_in_both_directions_survive_hibernation() {
    // An idle session sleeps in its compact form; its aliases must not.
    let broker = sleepy_broker().await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("alias-sub"));
    c.properties.topic_alias_maximum = Some(4);
    let (mut sub, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    sub.send(subscribe(1, "hib/alias", QoS::AtMostOnce))
        .await
        .unwrap();
    assert!(matches!(sub.recv(T).await.unwrap(), Packet::SubAck(_)));
    let (mut publisher, _) = RawClient::connect_v5(broker.addr, &unique_id("alias-pub"))
        .await
        .unwrap();
    let mut first = publish("hib/alias", "one", QoS::AtMostOnce, None);
    first.properties.topic_alias = Some(1);
    publisher.send(first).await.unwrap();
    let got = sub.recv_publish(T).await.unwrap();
    assert_eq!(got.topic, "hib/alias");
    let alias = got
        .properties
        .topic_alias
        .expect("the broker assigns an alias");
    hibernating(&broker, 2).await;

    // Inbound: the alias alone names the topic [MQTT-3.3.2-12].
    let mut second = publish("", "two", QoS::AtMostOnce, None);
    second.properties.topic_alias = Some(1);
    publisher.send(second).await.unwrap();
    // Outbound: the broker sends the alias it assigned, without the topic.
    let got = sub.recv_publish(T).await.unwrap();
    assert_eq!(&got.payload[..], b"two");
    assert_eq!(
        (got.topic.as_ref(), got.properties.topic_alias),
        ("", Some(alias))
    );
}

#[tokio::test]
async fn keep_alive_expiry_closes_a_hibernating_connection_and_publishes_its_will() {
    let broker = sleepy_broker().await;
    let mut watcher = subscriber(&broker, "hib/will", QoS::AtMostOnce).await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("silent"));
    c.keep_alive = 1;
    c.will = Some(LastWill {
        topic: "hib/will".into(),
        payload: Bytes::from_static(b"gone quiet"),
        ..LastWill::default()
    });
    let (mut silent, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    hibernating(&broker, 2).await;

    // 1.5 x keep-alive without a packet [MQTT-3.1.2-22]: DISCONNECT 0x8D.
    let disconnect = silent.expect_closed(T).await.unwrap().unwrap();
    assert_eq!(disconnect.reason_code, ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert_eq!(
        &watcher.recv_publish(T).await.unwrap().payload[..],
        b"gone quiet"
    );
}

#[tokio::test]
async fn credentials_expiring_during_hibernation_close_the_connection_with_0xa0() {
    let builder = roost_broker::Broker::builder()
        .config(config("[limits]\nhibernate_after_ms = 20\n"))
        .authenticator(Arc::new(ShortLived(Duration::from_millis(600))));
    let broker = start_built(builder).await;
    let (mut c, _) = RawClient::connect_v5(broker.addr, &unique_id("expiring"))
        .await
        .unwrap();
    // Asleep well before the credentials expire (the box keeps no deadline:
    // the dormitory derives it from the grant).
    hibernating(&broker, 1).await;
    let disconnect = c.expect_closed(T).await.unwrap().unwrap();
    assert_eq!(disconnect.reason_code, ReasonCode::MAXIMUM_CONNECT_TIME);
}

#[tokio::test]
async fn the_peer_closing_a_hibernating_connection_publishes_its_will() {
    let broker = sleepy_broker().await;
    let mut watcher = subscriber(&broker, "hib/lost", QoS::AtMostOnce).await;
    let mut c = connect(ProtocolVersion::V311, &unique_id("lost"));
    c.will = Some(LastWill {
        topic: "hib/lost".into(),
        payload: Bytes::from_static(b"lost"),
        ..LastWill::default()
    });
    let (lost, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    hibernating(&broker, 2).await;

    lost.drop_connection().await.unwrap();
    assert_eq!(&watcher.recv_publish(T).await.unwrap().payload[..], b"lost");
    let handle = broker.handle.clone();
    wait_until("the connection is gone", T, || {
        handle.stats().connections_current == 1
    })
    .await;
}

#[tokio::test]
async fn a_takeover_wakes_the_hibernating_owner_with_0x8e() {
    let broker = sleepy_broker().await;
    let id = unique_id("taken");
    let (mut old, _) = RawClient::connect_v5(broker.addr, &id).await.unwrap();
    hibernating(&broker, 1).await;

    let (_new, _) = RawClient::connect_v5(broker.addr, &id).await.unwrap();
    let disconnect = old.expect_closed(T).await.unwrap().unwrap();
    assert_eq!(disconnect.reason_code, ReasonCode::SESSION_TAKEN_OVER);
}

#[tokio::test]
async fn shutdown_wakes_hibernating_connections_with_0x8b() {
    let broker = sleepy_broker().await;
    let (mut a, _) = RawClient::connect_v5(broker.addr, &unique_id("down"))
        .await
        .unwrap();
    let (mut b, _) = RawClient::connect_v5(broker.addr, &unique_id("down"))
        .await
        .unwrap();
    hibernating(&broker, 2).await;

    broker.handle.shutdown();
    for client in [&mut a, &mut b] {
        let disconnect = client.expect_closed(T).await.unwrap().unwrap();
        assert_eq!(disconnect.reason_code, ReasonCode::SERVER_SHUTTING_DOWN);
    }
}

#[tokio::test]
async fn connections_stay_awake_when_hibernation_is_off() {
    let awake = start_with(config("[limits]\nhibernate_after_ms = 0\n"), None).await;
    let (mut c, _) = RawClient::connect_v5(awake.addr, &unique_id("awake"))
        .await
        .unwrap();
    // The control: a client of a sleepy broker, connected after `c`, goes to
    // sleep; by then `c` has been idle at least as long.
    let sleepy = sleepy_broker().await;
    let (_control, _) = RawClient::connect_v5(sleepy.addr, &unique_id("control"))
        .await
        .unwrap();
    hibernating(&sleepy, 1).await;

    let stats = awake.handle.stats();
    assert_eq!((stats.hibernations, stats.connections_hibernating), (0, 0));
    c.send(Packet::PingReq).await.unwrap();
    assert!(matches!(c.recv(T).await.unwrap(), Packet::PingResp));
}

/// Calls of [`count_release`]; only the test below installs it.
static RELEASES: AtomicUsize = AtomicUsize::new(0);

fn count_release() {
    RELEASES.fetch_add(1, Ordering::Relaxed);
}

#[tokio::test]
async fn hibernation_asks_the_allocator_to_release_memory_once_per_wave() {
    let builder = roost_broker::Broker::builder()
        .config(config("[limits]\nhibernate_after_ms = 20\n"))
        .memory_release(count_release);
    let broker = start_built(builder).await;
    let _a = subscriber(&broker, "hib/release/a", QoS::AtMostOnce).await;
    let _b = subscriber(&broker, "hib/release/b", QoS::AtMostOnce).await;
    hibernating(&broker, 2).await;
    let hibernations = broker.handle.stats().hibernations;
    // About a second after the first of them went to sleep: one release for both.
    wait_until("the memory release", T, || {
        RELEASES.load(Ordering::Relaxed) > 0
    })
    .await;
    assert_eq!(RELEASES.load(Ordering::Relaxed), 1);
    assert_eq!(
        broker.handle.stats().hibernations,
        hibernations,
        "nothing else hibernated meanwhile"
    );
}
