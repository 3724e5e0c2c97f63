//! The broker through a Redis outage (docs/persistence.md, "When Redis goes
//! away"): with `redis-server` killed, connected clients keep publishing and
//! receiving, the stats show the outage, and once the server is back on the
//! same port and data directory the writes held meanwhile land in Redis, as
//! a restarted broker proves. In `sync` mode a PUBACK waits for the outage
//! to end; traffic that writes nothing is not held up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{open_v5, subscribed};
use common::store::{StoredBroker, start_stored};
use common::{T, wait_until};
use roost_broker::{DurabilityConfig, StoreConfig};
use roost_codec::{Connect, ConnectProperties, Packet, ProtocolVersion, QoS};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, disconnect, puback, publish, unique_id};

/// A `redis-server` with an append-only file fsynced on every write, in a
/// directory of its own, that can be killed and started again on the same
/// port and directory. Stopped by its own PID when dropped.
struct DurableRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl DurableRedis {
    fn start() -> DurableRedis {
        let mut dir = tempfile::tempdir().unwrap();
        for _ in 0..3 {
            let port = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free loopback port");
            let mut server = DurableRedis {
                child: Some(spawn(port, dir.path())),
                port,
                dir,
            };
            if server.wait_ready() {
                return server;
            }
            // Port taken meanwhile: try another.
            server.kill();
            dir = tempfile::tempdir().unwrap();
        }
        panic!("redis-server did not come up");
    }

    /// SIGKILL, and waits for the process to be gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (it reloads its AOF).
    fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn(self.port, self.dir.path()));
        assert!(self.wait_ready(), "redis-server back on port {}", self.port);
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn store(&self) -> StoreConfig {
        StoreConfig::redis(format!("redis://127.0.0.1:{}", self.port))
            .with_durability(DurabilityConfig::Async)
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start redis-server ({e}); install it with \
                 `apt-get update && apt-get install -y redis-server` or scripts/install-test-deps.sh"
            )
        })
}

/// A 5.0 CONNECT resuming (or creating) a session of an hour.
fn persistent(client_id: &str) -> Connect {
    Connect {
        clean_start: false,
        properties: ConnectProperties {
            session_expiry_interval: Some(3600),
            ..ConnectProperties::default()
        },
        ..connect(ProtocolVersion::V5, client_id)
    }
}

async fn resume(broker: &StoredBroker, client_id: &str) -> (RawClient, bool) {
    let (client, connack) = RawClient::connect_with(broker.addr, persistent(client_id))
        .await
        .unwrap();
    (client, connack.session_present)
}

/// Publishes and, for QoS 1, waits for the PUBACK.
async fn send(client: &mut RawClient, topic: &str, payload: &'static str, qos: QoS, retain: bool) {
    let id = (qos != QoS::AtMostOnce).then_some(1);
    let mut p = publish(topic, payload, qos, id);
    p.retain = retain;
    client.send(p).await.unwrap();
    if qos == QoS::AtLeastOnce {
        assert!(matches!(client.recv(T).await.unwrap(), Packet::PubAck(_)));
    }
}

/// Receives one PUBLISH (acknowledging QoS 1) and returns its payload.
async fn receive(client: &mut RawClient) -> Vec<u8> {
    let got = client.recv_publish(T).await.unwrap();
    if let Some(id) = got.packet_id {
        client.send(puback(id.get())).await.unwrap();
    }
    got.payload.to_vec()
}

#[tokio::test]
async fn clients_keep_being_served_while_redis_is_down_and_the_held_writes_land_once_it_is_back() {
    let mut redis = DurableRedis::start();
    let store = redis.store();
    let topic = unique_id("outage/live");
    let retained = unique_id("outage/retained");
    let parked_id = unique_id("outage-parked");

    let broker = start_stored(store.clone()).await;
    let mut subscriber = open_v5(broker.addr, "outage-sub").await;
    subscribed(&mut subscriber, &topic, QoS::AtLeastOnce).await;
    // A persistent session that is offline during the outage.
    let (mut parked, _) = resume(&broker, &parked_id).await;
    subscribed(&mut parked, &topic, QoS::AtLeastOnce).await;
    parked.send(disconnect()).await.unwrap();
    let _ = parked.expect_closed(T).await;
    let mut publisher = open_v5(broker.addr, "outage-pub").await;
    send(&mut publisher, &topic, "before", QoS::AtLeastOnce, false).await;
    assert_eq!(receive(&mut subscriber).await, b"before");
    assert!(!broker.handle.stats().store_unavailable);

    redis.kill();

    // Live traffic between connected clients goes on (async durability:
    // PUBACK does not wait for the store).
    send(&mut publisher, &topic, "during-0", QoS::AtMostOnce, false).await;
    assert_eq!(receive(&mut subscriber).await, b"during-0");
    send(&mut publisher, &topic, "during-1", QoS::AtLeastOnce, false).await;
    assert_eq!(receive(&mut subscriber).await, b"during-1");
    send(&mut publisher, &retained, "kept", QoS::AtLeastOnce, true).await;
    // The parked session's enqueue of "during-1" failed to reach Redis.
    wait_until("the stats to show the outage", T, || {
        let s = broker.handle.stats();
        // Three failed attempts: the backoff (50, 100, 200 ms) is running.
        s.store_unavailable && s.store_outages == 1 && s.store_retries >= 3
    })
    .await;
    let during = broker.handle.stats();
    assert!(
        during.store_queued_deltas > 0,
        "later writes wait: {during:?}"
    );
    assert_eq!(during.store_failures, 0, "nothing given up: {during:?}");
    // Still serving while the writer retries.
    send(&mut publisher, &topic, "during-2", QoS::AtLeastOnce, false).await;
    assert_eq!(receive(&mut subscriber).await, b"during-2");

    redis.restart();
    // Backoff is capped at 5 s: recovery shows within a few retries.
    wait_until("the writer to catch up", Duration::from_secs(30), || {
        let s = broker.handle.stats();
        !s.store_unavailable && s.store_queued_deltas == 0
    })
    .await;
    let after = broker.handle.stats();
    assert_eq!((after.store_outages, after.store_failures), (1, 0));
    assert_eq!(after.store_outage_ms, 0);
    assert!(after.store_retries >= 3);
    drop(subscriber);
    drop(publisher);
    broker.stop().await;

    // A new broker reads only what is in Redis.
    let broker = start_stored(store).await;
    let got = broker
        .handle
        .retained_get(&retained)
        .expect("retained message set during the outage");
    assert_eq!(&got.payload[..], b"kept");
    let (mut parked, present) = resume(&broker, &parked_id).await;
    assert!(present, "the parked session was stored");
    // Queued before, during (QoS 1; QoS 0 is not queued offline) and after
    // the kill, in order.
    assert_eq!(receive(&mut parked).await, b"before");
    assert_eq!(receive(&mut parked).await, b"during-1");
    assert_eq!(receive(&mut parked).await, b"during-2");
    broker.stop().await;
}

#[tokio::test]
async fn in_sync_mode_a_puback_waits_for_redis_and_arrives_once_it_is_back() {
    let mut redis = DurableRedis::start();
    let store = redis.store().with_durability(DurabilityConfig::Sync);
    let topic = unique_id("outage/sync");
    let live = unique_id("outage/sync-live");

    let broker = start_stored(store.clone()).await;
    let mut publisher = open_v5(broker.addr, "outage-sync-pub").await;
    let mut talker = open_v5(broker.addr, "outage-sync-talker").await;
    let mut listener = open_v5(broker.addr, "outage-sync-listener").await;
    subscribed(&mut listener, &live, QoS::AtMostOnce).await;
    send(&mut publisher, &topic, "before", QoS::AtLeastOnce, true).await;

    redis.kill();
    // A retained QoS 1 publish: its RetainSet must reach Redis before the
    // PUBACK may go out.
    let mut held = publish(&topic, "held", QoS::AtLeastOnce, Some(2));
    held.retain = true;
    publisher.send(held).await.unwrap();
    wait_until("the stats to show the outage", T, || {
        broker.handle.stats().store_unavailable
    })
    .await;
    assert!(
        publisher.recv(Duration::from_millis(300)).await.is_err(),
        "no PUBACK while the write is not stored"
    );
    // Traffic that writes nothing to the store is not held up.
    send(&mut talker, &live, "chat", QoS::AtMostOnce, false).await;
    assert_eq!(receive(&mut listener).await, b"chat");

    redis.restart();
    match publisher.recv(Duration::from_secs(30)).await.unwrap() {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), 2),
        other => panic!("expected the held PUBACK, got {other:?}"),
    }
    let after = broker.handle.stats();
    assert!(!after.store_unavailable);
    assert_eq!((after.store_outages, after.store_failures), (1, 0));
    drop((publisher, talker, listener));
    broker.stop().await;

    let broker = start_stored(store).await;
    let got = broker.handle.retained_get(&topic).expect("retained");
    assert_eq!(&got.payload[..], b"held");
    broker.stop().await;
}

#[tokio::test]
async fn in_sync_mode_pipelined_publishes_are_routed_while_their_pubacks_wait_for_the_store() {
    let mut redis = DurableRedis::start();
    let store = redis.store().with_durability(DurabilityConfig::Sync);
    let topic = unique_id("outage/pipelined");

    let broker = start_stored(store).await;
    let mut publisher = open_v5(broker.addr, "outage-pipe-pub").await;
    let mut listener = open_v5(broker.addr, "outage-pipe-listener").await;
    subscribed(&mut listener, &topic, QoS::AtMostOnce).await;
    send(&mut publisher, &topic, "before", QoS::AtLeastOnce, true).await;
    assert_eq!(receive(&mut listener).await, b"before");

    redis.kill();
    // Three retained QoS 1 publishes in one write: each writes a RetainSet,
    // so none may be acknowledged before Redis has it.
    let burst = ["one", "two", "three"]
        .into_iter()
        .zip(1u16..)
        .map(|(payload, id)| {
            let mut p = publish(&topic, payload, QoS::AtLeastOnce, Some(id));
            p.retain = true;
            p
        });
    publisher.send_all(burst).await.unwrap();
    // The broker reads past the first unacknowledged publish: all three are
    // routed to the live subscriber (whose session writes nothing) while
    // their PUBACKs wait for the store.
    assert_eq!(receive(&mut listener).await, b"one");
    assert_eq!(receive(&mut listener).await, b"two");
    assert_eq!(receive(&mut listener).await, b"three");
    wait_until("the stats to show the outage", T, || {
        broker.handle.stats().store_unavailable
    })
    .await;
    assert!(
        publisher.recv(Duration::from_millis(300)).await.is_err(),
        "no PUBACK while the writes are not stored"
    );

    redis.restart();
    for id in 1..=3 {
        match publisher.recv(Duration::from_secs(30)).await.unwrap() {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), id, "PUBACKs in order"),
            other => panic!("expected PUBACK {id}, got {other:?}"),
        }
    }
    drop((publisher, listener));
    broker.stop().await;
}

/// In `sync` mode a QoS 1 PUBLISH to a stored session leaves before its
/// `Sent` stage (and the message's enqueue) is stored: lost in a crash, it
/// is only sent again, which QoS 1 permits. A QoS 2 PUBLISH still waits for
/// the store (a lost `Sent` would let a restarted broker resend a message
/// the client completed), and so does every publisher's acknowledgement.
/// The store is held mid-commit by a Redis outage.
#[tokio::test]
async fn in_sync_mode_qos1_deliveries_to_stored_sessions_do_not_wait_for_the_store_but_qos2_ones_do()
 {
    let mut redis = DurableRedis::start();
    let store = redis.store().with_durability(DurabilityConfig::Sync);
    let topic1 = unique_id("outage/sync-q1");
    let topic2 = unique_id("outage/sync-q2");

    let broker = start_stored(store).await;
    let (mut sub1, _) = resume(&broker, &unique_id("outage-sync-sub1")).await;
    subscribed(&mut sub1, &topic1, QoS::AtLeastOnce).await;
    let (mut sub2, _) = resume(&broker, &unique_id("outage-sync-sub2")).await;
    subscribed(&mut sub2, &topic2, QoS::ExactlyOnce).await;
    let mut publisher = open_v5(broker.addr, "outage-sync-pub").await;

    redis.kill();
    publisher
        .send(publish(&topic1, "q1", QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    // Delivered while nothing of it can be stored (Redis is gone).
    let got = sub1.recv_publish(T).await.unwrap();
    assert_eq!((&got.payload[..], got.qos), (&b"q1"[..], QoS::AtLeastOnce));
    wait_until("the stats to show the outage", T, || {
        broker.handle.stats().store_unavailable
    })
    .await;
    sub1.send(puback(got.packet_id.unwrap().get()))
        .await
        .unwrap();

    publisher
        .send(publish(&topic2, "q2", QoS::ExactlyOnce, Some(2)))
        .await
        .unwrap();
    assert!(
        sub2.recv(Duration::from_millis(300)).await.is_err(),
        "no QoS 2 PUBLISH while its Sent stage is not stored"
    );
    assert!(
        publisher.recv(Duration::from_millis(100)).await.is_err(),
        "no PUBACK while the message is not stored"
    );

    redis.restart();
    match publisher.recv(Duration::from_secs(30)).await.unwrap() {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), 1),
        other => panic!("expected PUBACK 1, got {other:?}"),
    }
    let got = sub2.recv_publish(Duration::from_secs(30)).await.unwrap();
    assert_eq!((&got.payload[..], got.qos), (&b"q2"[..], QoS::ExactlyOnce));
    drop((publisher, sub1, sub2));
    broker.stop().await;
}

/// A full store writer queue makes retained *writers* wait for room, but
/// never readers: a new subscription still gets its retained messages while
/// another client's retained PUBLISH waits for the store (the change is
/// handed to the store after the retained index's lock is released).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_writer_queue_does_not_block_retained_lookups() {
    let mut redis = DurableRedis::start();
    let mut store = redis.store();
    store.max_queued_deltas = 4;
    store.retry_initial_ms = 20;
    store.retry_max_ms = 50;
    store.close_grace_ms = 100;
    let broker = start_stored(store).await;
    let seed = unique_id("full/seed");
    let mut publisher = open_v5(broker.addr, "full-pub").await;
    send(&mut publisher, &seed, "kept", QoS::AtLeastOnce, true).await;

    redis.kill();
    // Retained sets until the writer's queue is full and one of them waits.
    let mut writer = open_v5(broker.addr, "full-writer").await;
    for i in 0..16 {
        send(
            &mut writer,
            &format!("full/{i}"),
            "x",
            QoS::AtMostOnce,
            true,
        )
        .await;
    }
    wait_until("the writer queue to fill", T, || {
        broker.handle.stats().store_queued_deltas >= 4
    })
    .await;

    let mut reader = open_v5(broker.addr, "full-reader").await;
    subscribed(&mut reader, &seed, QoS::AtMostOnce).await;
    assert_eq!(receive(&mut reader).await, b"kept");
    // The waiting writer is released once the store is back.
    redis.restart();
    send(&mut writer, &seed, "after", QoS::AtLeastOnce, true).await;
    broker.stop().await;
}
