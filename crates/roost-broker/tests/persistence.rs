//! Restarts with a session store: retained messages, persistent sessions
//! with their subscriptions, queued QoS 1 / QoS 2 messages and QoS 2 flows
//! caught mid-way (both directions) survive a graceful restart, with the
//! disk backend and with Redis; time spent offline counts against expiry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::T;
use common::clients::{open_v5, subscribed};
use common::store::{RedisServer, StoredBroker, start_stored, start_stored_with};
use roost_broker::{DurabilityConfig, StoreConfig};
use roost_codec::{Connect, ConnectProperties, Packet, ProtocolVersion, QoS};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, disconnect, pubcomp, publish, pubrec, pubrel, unique_id};

/// A 5.0 CONNECT resuming (or creating) a session that lasts `expiry` seconds.
fn persistent(client_id: &str, expiry: u32) -> Connect {
    Connect {
        clean_start: false,
        properties: ConnectProperties {
            session_expiry_interval: Some(expiry),
            ..ConnectProperties::default()
        },
        ..connect(ProtocolVersion::V5, client_id)
    }
}

/// Connects and returns the client with its CONNACK's Session Present.
async fn resume(broker: &StoredBroker, client_id: &str, expiry: u32) -> (RawClient, bool) {
    let (client, connack) = RawClient::connect_with(broker.addr, persistent(client_id, expiry))
        .await
        .unwrap();
    (client, connack.session_present)
}

/// Publishes QoS 1 and waits for PUBACK.
async fn publish_qos1(client: &mut RawClient, topic: &str, payload: &'static str, id: u16) {
    client
        .send(publish(topic, payload, QoS::AtLeastOnce, Some(id)))
        .await
        .unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::PubAck(_)));
}

/// Publishes QoS 2 through to PUBCOMP.
async fn publish_qos2(client: &mut RawClient, topic: &str, payload: &'static str, id: u16) {
    client
        .send(publish(topic, payload, QoS::ExactlyOnce, Some(id)))
        .await
        .unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::PubRec(_)));
    client.send(pubrel(id)).await.unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::PubComp(_)));
}

/// Normal DISCONNECT, then waits for the broker to close.
async fn leave(mut client: RawClient) {
    client.send(disconnect()).await.unwrap();
    let _ = client.expect_closed(T).await;
}

fn disk(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig::disk(dir.path())
}

// ------------------------------------------------------------- scenarios

async fn retained_messages_survive(store: StoreConfig) {
    let topic = unique_id("persist/retained");
    let broker = start_stored(store.clone()).await;
    let mut publisher = open_v5(broker.addr, "pub").await;
    let mut retained = publish(&topic, "kept", QoS::AtLeastOnce, Some(1));
    retained.retain = true;
    publisher.send(retained).await.unwrap();
    assert!(matches!(
        publisher.recv(T).await.unwrap(),
        Packet::PubAck(_)
    ));
    leave(publisher).await;
    broker.stop().await;

    let broker = start_stored(store).await;
    assert_eq!(broker.handle.stats().retained_messages, 1);
    let mut subscriber = open_v5(broker.addr, "sub").await;
    subscribed(&mut subscriber, &topic, QoS::AtLeastOnce).await;
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!((got.retain, &got.payload[..]), (true, &b"kept"[..]));
    broker.stop().await;
}

/// Retained changes made through the API, and a delete by an empty
/// retained PUBLISH, are what the restarted broker has.
async fn retained_api_changes_and_deletes_survive(store: StoreConfig) {
    let kept = unique_id("persist/api-kept");
    let gone = unique_id("persist/api-gone");
    let broker = start_stored(store.clone()).await;
    for topic in [&kept, &gone] {
        broker
            .handle
            .retained_set(topic, "set".into(), QoS::AtLeastOnce, Default::default())
            .unwrap();
    }
    let mut publisher = open_v5(broker.addr, "pub").await;
    let mut delete = publish(&gone, "", QoS::AtLeastOnce, Some(1));
    delete.retain = true;
    publisher.send(delete).await.unwrap();
    assert!(matches!(
        publisher.recv(T).await.unwrap(),
        Packet::PubAck(_)
    ));
    leave(publisher).await;
    broker.stop().await;

    let broker = start_stored(store).await;
    let got = broker
        .handle
        .retained_get(&kept)
        .expect("kept across the restart");
    assert_eq!(&got.payload[..], b"set");
    assert!(
        broker.handle.retained_get(&gone).is_none(),
        "the delete was stored too"
    );
    broker.stop().await;
}

async fn session_subscriptions_and_queued_messages_survive(store: StoreConfig) {
    let id = unique_id("persist-sub");
    let topic = unique_id("persist/q");
    let broker = start_stored(store.clone()).await;
    let (mut subscriber, present) = resume(&broker, &id, 3600).await;
    assert!(!present);
    subscribed(&mut subscriber, &format!("{topic}/#"), QoS::ExactlyOnce).await;
    leave(subscriber).await;
    let mut publisher = open_v5(broker.addr, "pub").await;
    publish_qos1(&mut publisher, &format!("{topic}/1"), "one", 1).await;
    publish_qos2(&mut publisher, &format!("{topic}/2"), "two", 2).await;
    leave(publisher).await;
    broker.stop().await;

    let broker = start_stored(store.clone()).await;
    let (mut subscriber, present) = resume(&broker, &id, 3600).await;
    assert!(present, "the session came back from the store");
    let one = subscriber.recv_publish(T).await.unwrap();
    assert_eq!((one.qos, &one.payload[..]), (QoS::AtLeastOnce, &b"one"[..]));
    subscriber
        .send(roost_testkit::packets::puback(one.packet_id.unwrap().get()))
        .await
        .unwrap();
    let two = subscriber.recv_publish(T).await.unwrap();
    assert_eq!((two.qos, &two.payload[..]), (QoS::ExactlyOnce, &b"two"[..]));
    let two_id = two.packet_id.unwrap().get();
    subscriber.send(pubrec(two_id)).await.unwrap();
    assert!(matches!(
        subscriber.recv(T).await.unwrap(),
        Packet::PubRel(_)
    ));
    subscriber.send(pubcomp(two_id)).await.unwrap();
    // The subscription came back too: a new message reaches the session.
    let mut publisher = open_v5(broker.addr, "pub").await;
    publish_qos1(&mut publisher, &format!("{topic}/3"), "three", 1).await;
    let three = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&three.payload[..], b"three");
    subscriber
        .send(roost_testkit::packets::puback(
            three.packet_id.unwrap().get(),
        ))
        .await
        .unwrap();
    leave(publisher).await;
    leave(subscriber).await;
    broker.stop().await;

    // Everything acknowledged left the store: nothing is resent.
    let broker = start_stored(store).await;
    let (mut subscriber, present) = resume(&broker, &id, 3600).await;
    assert!(present);
    common::barrier::assert_quiet(&mut subscriber).await;
    leave(subscriber).await;
    broker.stop().await;
}

/// Outbound QoS 2 caught after PUBREC: on resume only PUBREL is resent.
async fn outbound_qos2_mid_flight_survives(store: StoreConfig) {
    let id = unique_id("persist-out");
    let topic = unique_id("persist/out");
    let broker = start_stored(store.clone()).await;
    let (mut subscriber, _) = resume(&broker, &id, 3600).await;
    subscribed(&mut subscriber, &topic, QoS::ExactlyOnce).await;
    let mut publisher = open_v5(broker.addr, "pub").await;
    publish_qos2(&mut publisher, &topic, "mid", 1).await;
    let got = subscriber.recv_publish(T).await.unwrap();
    let packet_id = got.packet_id.unwrap().get();
    subscriber.send(pubrec(packet_id)).await.unwrap();
    assert!(matches!(
        subscriber.recv(T).await.unwrap(),
        Packet::PubRel(_)
    ));
    // No PUBCOMP: the flow is mid-way when the broker stops.
    leave(subscriber).await;
    leave(publisher).await;
    broker.stop().await;

    let broker = start_stored(store).await;
    let (mut subscriber, present) = resume(&broker, &id, 3600).await;
    assert!(present);
    match subscriber.recv(T).await.unwrap() {
        Packet::PubRel(rel) => assert_eq!(rel.packet_id.get(), packet_id),
        other => panic!("expected the PUBREL again, got {other:?}"),
    }
    subscriber.send(pubcomp(packet_id)).await.unwrap();
    common::barrier::assert_quiet(&mut subscriber).await;
    leave(subscriber).await;
    broker.stop().await;
}

/// Inbound QoS 2 caught after PUBREC: the publisher's resend after the
/// restart is answered with PUBREC and not routed a second time.
async fn inbound_qos2_mid_flight_survives(store: StoreConfig) {
    let id = unique_id("persist-in");
    let topic = unique_id("persist/in");
    let broker = start_stored(store.clone()).await;
    let (mut subscriber, _) = resume(&broker, &unique_id("persist-in-sub"), 3600).await;
    subscribed(&mut subscriber, &topic, QoS::AtLeastOnce).await;
    let (mut publisher, _) = resume(&broker, &id, 3600).await;
    publisher
        .send(publish(&topic, "once", QoS::ExactlyOnce, Some(7)))
        .await
        .unwrap();
    assert!(matches!(
        publisher.recv(T).await.unwrap(),
        Packet::PubRec(_)
    ));
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&got.payload[..], b"once");
    subscriber
        .send(roost_testkit::packets::puback(got.packet_id.unwrap().get()))
        .await
        .unwrap();
    leave(publisher).await;
    broker.stop().await;
    drop(subscriber);

    let broker = start_stored(store).await;
    let sub_id = unique_id("persist-in-sub2");
    let (mut subscriber, _) = resume(&broker, &sub_id, 3600).await;
    subscribed(&mut subscriber, &topic, QoS::AtLeastOnce).await;
    let (mut publisher, present) = resume(&broker, &id, 3600).await;
    assert!(present);
    let mut again = publish(&topic, "once", QoS::ExactlyOnce, Some(7));
    again.dup = true;
    publisher.send(again).await.unwrap();
    assert!(matches!(
        publisher.recv(T).await.unwrap(),
        Packet::PubRec(_)
    ));
    publisher.send(pubrel(7)).await.unwrap();
    match publisher.recv(T).await.unwrap() {
        Packet::PubComp(comp) => assert!(!comp.reason_code.is_error(), "{comp:?}"),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    common::barrier::assert_quiet(&mut subscriber).await;
    leave(publisher).await;
    leave(subscriber).await;
    broker.stop().await;
}

/// A session that expires while the broker is down is gone after the restart.
async fn offline_time_counts_against_expiry(store: StoreConfig) {
    let id = unique_id("persist-exp");
    let broker = start_stored(store.clone()).await;
    let (client, _) = resume(&broker, &id, 1).await;
    leave(client).await;
    let left = std::time::Instant::now();
    broker.stop().await;
    // Time passing is what is tested: stay down past the 1 s expiry.
    tokio::time::sleep(Duration::from_millis(1200).saturating_sub(left.elapsed())).await;

    let broker = start_stored(store).await;
    let (client, present) = resume(&broker, &id, 1).await;
    assert!(!present, "the session expired while the broker was down");
    leave(client).await;
    broker.stop().await;
}

/// Publishes a retained QoS 1 message with a Message Expiry Interval.
async fn publish_retained_expiring(client: &mut RawClient, topic: &str, expiry: u32, id: u16) {
    let mut retained = publish(topic, "kept", QoS::AtLeastOnce, Some(id));
    retained.retain = true;
    retained.properties.message_expiry_interval = Some(expiry);
    client.send(retained).await.unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::PubAck(_)));
}

/// A retained message's Message Expiry counts the time the broker was down
/// [MQTT-3.3.2-5]: after a restart it is delivered with what is left of its
/// interval (less by at least the downtime) [MQTT-3.3.2-6], and one that
/// expired meanwhile is not delivered, and is gone from the store.
async fn v5_mqtt_3_3_2_6_retained_expiry_counts_the_downtime(store: StoreConfig) {
    let base = unique_id("persist/retained-exp");
    let (lasting, expiring) = (format!("{base}/60"), format!("{base}/1"));
    let broker = start_stored(store.clone()).await;
    let mut publisher = open_v5(broker.addr, "pub").await;
    publish_retained_expiring(&mut publisher, &lasting, 60, 1).await;
    publish_retained_expiring(&mut publisher, &expiring, 1, 2).await;
    leave(publisher).await;
    broker.stop().await;
    let down = std::time::Instant::now();
    // Time passing is what is tested: stay down past the 1 s expiry.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let broker = start_stored(store.clone()).await;
    let downtime = down.elapsed();
    let mut subscriber = open_v5(broker.addr, "sub").await;
    subscribed(&mut subscriber, &format!("{base}/#"), QoS::AtLeastOnce).await;
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(
        &*got.topic,
        lasting.as_str(),
        "only the lasting one is delivered"
    );
    let left = got
        .properties
        .message_expiry_interval
        .expect("an expiry interval");
    assert!(
        u64::from(left) <= 60 - downtime.as_secs(),
        "{left} s left after {downtime:?} down: the downtime did not count"
    );
    assert!(left > 0, "{left}");
    subscriber
        .send(roost_testkit::packets::puback(got.packet_id.unwrap().get()))
        .await
        .unwrap();
    common::barrier::assert_quiet(&mut subscriber).await;
    leave(subscriber).await;
    broker.stop().await;

    // The expired one was deleted from the store, not only skipped.
    let broker = start_stored(store).await;
    assert_eq!(broker.handle.stats().retained_messages, 1);
    assert!(broker.handle.retained_get(&expiring).is_none());
    broker.stop().await;
}

/// `retain_ttl` counts from when the message was stored, across restarts:
/// the restored message keeps its store time, and its TTL has the downtime
/// less to run; one whose TTL ran out while the broker was down is not
/// delivered and is deleted from the store.
async fn retain_ttl_counts_from_the_original_store_time(store: StoreConfig) {
    let base = unique_id("persist/retained-ttl");
    let (lasting, ending) = (format!("{base}/long"), format!("{base}/short"));
    let broker = start_stored_with(store.clone(), "[mqtt]\nretain_ttl = 60").await;
    broker
        .handle
        .retained_set(
            &lasting,
            "kept".into(),
            QoS::AtLeastOnce,
            Default::default(),
        )
        .unwrap();
    let stored_at = broker.handle.retained_get(&lasting).unwrap().stored_at;
    broker.stop().await;
    let down = std::time::Instant::now();
    // Time passing is what is tested.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let broker = start_stored_with(store.clone(), "[mqtt]\nretain_ttl = 60").await;
    let downtime = down.elapsed();
    let got = broker.handle.retained_get(&lasting).expect("restored");
    let ms =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert_eq!(
        ms(got.stored_at),
        ms(stored_at),
        "the original store time is kept"
    );
    let left = got.expires_in.expect("a TTL");
    assert!(
        left <= Duration::from_secs(60) - downtime,
        "{left:?} of the TTL left after {downtime:?} down: it restarted at the restore"
    );
    // A message whose 1 s TTL runs out while the broker is down.
    broker.stop().await;
    let broker = start_stored_with(store.clone(), "[mqtt]\nretain_ttl = 1").await;
    broker
        .handle
        .retained_set(
            &ending,
            "brief".into(),
            QoS::AtLeastOnce,
            Default::default(),
        )
        .unwrap();
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let broker = start_stored_with(store.clone(), "[mqtt]\nretain_ttl = 1").await;
    assert!(
        broker.handle.retained_get(&ending).is_none(),
        "its TTL ran out while the broker was down"
    );
    let mut subscriber = open_v5(broker.addr, "sub").await;
    subscribed(&mut subscriber, &ending, QoS::AtLeastOnce).await;
    common::barrier::assert_quiet(&mut subscriber).await;
    leave(subscriber).await;
    broker.stop().await;
    // Deleted from the store: with no TTL it would be served again if not.
    let broker = start_stored(store).await;
    assert!(broker.handle.retained_get(&ending).is_none());
    broker.stop().await;
}

/// `persistent(client_id, 600)` with a QoS 1 will on `topic` delayed `delay` s.
fn with_delayed_will(client_id: &str, topic: &str, delay: u32) -> Connect {
    let mut c = persistent(client_id, 600);
    c.will = Some(roost_codec::LastWill {
        topic: topic.into(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: roost_codec::WillProperties {
            will_delay_interval: Some(delay),
            ..Default::default()
        },
    });
    c
}

/// A graceful restart is not the death of every client: a delayed will of a
/// client connected at shutdown fires after the restart only once its delay
/// has run out, only if the client has not come back, and exactly once.
async fn delayed_wills_survive_a_graceful_restart(store: StoreConfig) {
    let base = unique_id("restart-will");
    let watcher_id = format!("{base}-watcher");
    let broker = start_stored(store.clone()).await;
    let (mut watcher, _) = resume(&broker, &watcher_id, 600).await;
    subscribed(&mut watcher, &format!("{base}/#"), QoS::AtLeastOnce).await;
    leave(watcher).await;
    let (away, returns) = (format!("{base}-away"), format!("{base}-returns"));
    let mut live = Vec::new();
    for id in [&away, &returns] {
        let c = with_delayed_will(id, &format!("{base}/{id}"), 2);
        live.push(RawClient::connect_with(broker.addr, c).await.unwrap().0);
    }
    let shutdown = std::time::Instant::now();
    broker.stop().await;
    drop(live);

    let broker = start_stored(store).await;
    // One client comes back within the delay: its will is cancelled.
    let (back, present) = resume(&broker, &returns, 600).await;
    assert!(present);
    let (mut watcher, present) = resume(&broker, &watcher_id, 600).await;
    assert!(present);
    // The other's will arrives, but not before its delay (counted from the
    // shutdown) has passed.
    let will = watcher.recv_publish(T).await.unwrap();
    assert_eq!(&*will.topic, format!("{base}/{away}").as_str());
    assert!(
        shutdown.elapsed() >= Duration::from_millis(1900),
        "the will fired {:?} after the shutdown, before its 2 s delay",
        shutdown.elapsed()
    );
    // Nothing else: not the returning client's will, not a second copy.
    let mut marker = open_v5(broker.addr, "restart-will-marker").await;
    let topic = format!("{base}/marker");
    marker
        .send(publish(topic.as_str(), "m", QoS::AtMostOnce, None))
        .await
        .unwrap();
    let next = watcher.recv_publish(T).await.unwrap();
    assert_eq!(&*next.topic, topic.as_str());
    leave(back).await;
    broker.stop().await;
}

// -------------------------------------------------------------- backends

/// One test module per scenario, with a `disk` test on a fresh data dir and a
/// `redis` test on a private redis-server.
macro_rules! on_each_backend {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn disk() {
                let dir = tempfile::tempdir().unwrap();
                super::$scenario(super::disk(&dir)).await;
            }

            #[tokio::test]
            async fn redis() {
                let redis = super::RedisServer::start();
                super::$scenario(redis.store()).await;
            }
        }
    )*};
}

on_each_backend!(
    retained_messages_survive,
    retained_api_changes_and_deletes_survive,
    session_subscriptions_and_queued_messages_survive,
    outbound_qos2_mid_flight_survives,
    inbound_qos2_mid_flight_survives,
    offline_time_counts_against_expiry,
    delayed_wills_survive_a_graceful_restart,
    v5_mqtt_3_3_2_6_retained_expiry_counts_the_downtime,
    retain_ttl_counts_from_the_original_store_time,
);

#[tokio::test]
async fn disk_sync_durability_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk(&dir).with_durability(DurabilityConfig::Sync);
    session_subscriptions_and_queued_messages_survive(store).await;
}

#[tokio::test]
async fn a_locked_data_dir_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_stored(disk(&dir)).await;
    let second = roost_broker::Broker::builder()
        .config(common::config(""))
        .store(disk(&dir))
        .bind()
        .await;
    let error = second
        .expect_err("a second broker on the same data dir is refused")
        .to_string();
    assert!(
        error.contains("locked") && error.contains("store.data_dir"),
        "{error}"
    );
    first.stop().await;
}

/// One broker per Redis key prefix, as one per data directory: a second
/// broker is refused while the first runs (after waiting one lease period
/// for a lease a killed broker would have left), and starts at once after
/// the first stopped (its lease is released on close).
#[tokio::test]
async fn a_second_broker_on_the_same_redis_prefix_is_refused() {
    let redis = RedisServer::start();
    let first = start_stored(redis.store()).await;
    let second = roost_broker::Broker::builder()
        .config(common::config(""))
        .store(redis.store())
        .bind()
        .await;
    match second {
        Err(e) => assert!(
            e.to_string().contains("in use by another broker"),
            "unexpected error: {e}"
        ),
        Ok(_) => panic!("a second broker started on the same Redis prefix"),
    }
    first.stop().await;
    let again = start_stored(redis.store()).await;
    again.stop().await;
}
