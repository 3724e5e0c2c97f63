//! A dead node's janitor job taken over by another node (docs/cluster.md,
//! "The janitor's job", "A cut-off janitor stops"): a delayed will keeps
//! the fire time the first janitor gave it, and a janitor paused past its
//! lease in the middle of its replay stops when it resumes instead of
//! replaying the dead node's inbox alongside the node that took its job
//! over. Three
//! `roost` processes on a private redis-server, lease 1.5 s; every wait is
//! on an event (a log line, a message) with a bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roost_codec::{Packet, QoS};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::redis::SharedRedis;
use roost_testkit::{BrokerProcess, RawClient};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// One redis-server, or a 3-primary Redis Cluster in `cluster_janitor_on_redis_cluster`.
fn start_redis() -> SharedRedis {
    SharedRedis::start_for(module_path!())
}

/// The longest a route, a janitor or a delivery may take here (documented
/// bounds are a lease or two; slack for a loaded machine).
const WAIT: Duration = Duration::from_secs(30);

/// What the node that collects a dead node logs (`lease.rs`).
const COLLECTED: &str = "lease lapsed: its sessions are adoptable";
/// What a node logs when it takes over a dead janitor's job (`job.rs`).
const TAKEN_OVER: &str = "janitor job of a dead node taken over";

/// A node named `name`, lease 1.5 s, `cluster` lines added to `[cluster]`
/// (`top`: sections before it).
fn node(redis: &SharedRedis, name: &str, top: &str, cluster: &str) -> BrokerProcess {
    roost_testkit::cluster_node(BIN, &redis.url(), name, 1500, top, cluster)
}

/// The node among `nodes` whose log shows `line` (waits up to [`WAIT`]).
async fn logged<'n>(nodes: &[&'n BrokerProcess], line: &str) -> &'n BrokerProcess {
    roost_testkit::first_to_log(nodes, line, WAIT).await
}

/// The first janitor of A is killed right after it collected A (it took
/// the will of A's client, delayed 6 s, and scheduled it); the third node
/// takes the job over 1.5-2 s later (the dead janitor's lease) and
/// publishes the will at A's death + 6 s, the time the first janitor had
/// it due, not 6 s after the takeover.
#[tokio::test]
async fn cluster_a_delayed_will_taken_over_from_a_dead_janitor_fires_at_the_death_plus_its_delay() {
    const DELAY: u32 = 6;
    let redis = start_redis();
    let run = unique_id("wt");
    let [a, b, c] = ["a", "b", "c"].map(|n| node(&redis, &format!("{run}-{n}"), "", ""));
    let will_topic = format!("{}/w", unique_id("will"));
    let mut connect = packets::connect_persistent(&unique_id("willer"));
    connect.will = Some(roost_codec::LastWill {
        topic: will_topic.as_str().into(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: roost_codec::WillProperties {
            will_delay_interval: Some(DELAY),
            ..Default::default()
        },
    });
    let (willer, _) = RawClient::connect_with(a.addr(), connect).await.unwrap();
    let mut watchers = Vec::new();
    for node in [&b, &c] {
        let (mut watcher, _) = RawClient::connect_v5(node.addr(), &unique_id("watch"))
            .await
            .unwrap();
        watcher.subscribe_qos1(&will_topic).await;
        watchers.push(watcher);
    }
    {
        let (mut probe, _) = RawClient::connect_v5(b.addr(), &unique_id("probe"))
            .await
            .unwrap();
        let [w0, w1] = &mut watchers[..] else {
            unreachable!()
        };
        roost_testkit::wait_for_route(&mut probe, &will_topic, &mut [w0, w1], WAIT).await;
    }
    a.signal(rustix::process::Signal::KILL).unwrap();
    let killed = Instant::now();
    drop(willer);
    let janitor = logged(&[&b, &c], COLLECTED).await;
    janitor.signal(rustix::process::Signal::KILL).unwrap();
    let (survivor, mut watcher) = if std::ptr::eq(janitor, &b) {
        (&c, watchers.pop().unwrap())
    } else {
        (&b, watchers.swap_remove(0))
    };
    logged(&[survivor], TAKEN_OVER).await;
    let taken = Instant::now();
    let will = watcher
        .recv_publish(WAIT)
        .await
        .expect("the delayed will is published");
    let arrived = Instant::now();
    assert_eq!(&will.payload[..], b"gone");
    eprintln!(
        "will delayed {DELAY} s: published {:?} after the death, {:?} after the takeover",
        arrived - killed,
        arrived - taken
    );
    let delay = Duration::from_secs(u64::from(DELAY));
    assert!(
        arrived >= killed + delay,
        "the will came {:?} after the death, before its delay",
        arrived - killed
    );
    // Counted again from the takeover it would come at `taken + delay` or
    // later; from the death (1.5 s or more before the takeover), earlier.
    assert!(
        arrived + Duration::from_millis(300) < taken + delay,
        "the will came {:?} after the takeover ({:?} after the death): its delay was counted from the takeover\nsurvivor log:\n{}",
        arrived - taken,
        arrived - killed,
        survivor.log()
    );
}

/// Publishes QoS 1 messages `{tag}-{i}` on `topic` (up to 100 awaiting
/// their PUBACK) until `until` says stop or `max` were sent; returns those
/// acknowledged.
async fn publish_while(
    client: &mut RawClient,
    topic: &str,
    tag: &str,
    max: u32,
    until: impl Fn() -> bool,
) -> Vec<String> {
    const WINDOW: u32 = 100;
    let mut acked = Vec::new();
    let (mut sent, mut pending) = (0u32, BTreeMap::new());
    loop {
        let stop = until() || sent >= max;
        while !stop && pending.len() < WINDOW as usize && sent < max {
            sent += 1;
            let id = u16::try_from(sent % 60_000).unwrap() + 1;
            let payload = format!("{tag}-{sent}");
            let publish = packets::publish(
                topic,
                bytes::Bytes::from(payload.clone().into_bytes()),
                QoS::AtLeastOnce,
                Some(id),
            );
            client.send(publish).await.unwrap();
            pending.insert(id, payload);
        }
        if pending.is_empty() {
            return acked;
        }
        match client.recv(WAIT).await.unwrap() {
            Packet::PubAck(ack) => {
                if let Some(payload) = pending.remove(&ack.packet_id.get()) {
                    acked.push(payload);
                }
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

/// Receives (acknowledging QoS 1) into `got` (payload → times) until
/// `stop`; probes are not counted.
async fn count(
    mut client: RawClient,
    got: Arc<Mutex<BTreeMap<String, usize>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match client.recv(Duration::from_millis(200)).await {
            Ok(Packet::Publish(p)) => {
                if let (QoS::AtLeastOnce, Some(id)) = (p.qos, p.packet_id) {
                    client.send(packets::puback(id.get())).await.unwrap();
                }
                if &p.payload[..] != b"probe" {
                    *got.lock()
                        .unwrap()
                        .entry(String::from_utf8_lossy(&p.payload).into_owned())
                        .or_default() += 1;
                }
            }
            Ok(_) | Err(roost_testkit::RecvError::Timeout(_)) => {}
            Err(e) => panic!("the resumed subscriber's connection ended: {e:?}"),
        }
    }
}

/// Durable mode. A is killed -9 while 20,000 messages for its persistent
/// QoS 1 subscriber pile up in its inbox (nothing reads it); the
/// subscriber resumes on S. A's janitor J is paused (SIGSTOP) as soon as
/// the subscriber gets the first message of J's replay (J is in the middle
/// of it: its first page, whose end it has not recorded), past its lease:
/// S declares J dead, takes its job over and replays A's inbox from the
/// start again. J is resumed (SIGCONT) then: it sees at once that its
/// lease lapsed and stops instead of replaying the rest alongside S. So
/// only what J delivered before its pause reaches the subscriber twice
/// (at least once: what J's writer wrote or still held when the signal
/// landed, at most a chunk of 1,024 past what it wrote; 1,000–3,700 here),
/// not most of the inbox as when J went on (7,149 of 10,000 with the fence
/// disabled; 10,000–11,700 of 20,000 with the fence but J's writer
/// holding a whole page's forwards).
#[tokio::test]
async fn cluster_durable_a_janitor_paused_mid_replay_stops_instead_of_replaying_alongside_its_successor()
 {
    let redis = start_redis();
    let run = unique_id("cut");
    // The replayed inbox arrives faster than the subscriber takes it: its
    // queue holds all of it.
    let top = "[mqtt]\nmax_queued_messages = 100000\n";
    let [a, b, c] =
        ["a", "b", "c"].map(|n| node(&redis, &format!("{run}-{n}"), top, "durable = true"));
    let base = unique_id("cut");
    let sub_id = unique_id("sub-a");
    let (mut sub, _) = RawClient::connect_with(a.addr(), packets::connect_persistent(&sub_id))
        .await
        .unwrap();
    sub.subscribe_qos1(&format!("{base}/#")).await;
    let (mut publisher, _) = RawClient::connect_v5(c.addr(), &unique_id("pub"))
        .await
        .unwrap();
    roost_testkit::wait_for_route(
        &mut publisher,
        &format!("{base}/probe"),
        &mut [&mut sub],
        WAIT,
    )
    .await;
    a.signal(rustix::process::Signal::KILL).unwrap();
    drop(sub);
    // A's routes stay up: what is published now waits in its inbox.
    let sent = publish_while(&mut publisher, &format!("{base}/t"), "m", 20_000, || {
        b.log().contains(COLLECTED) || c.log().contains(COLLECTED)
    })
    .await;
    drop(publisher);
    let janitor = logged(&[&b, &c], COLLECTED).await;
    let successor = if std::ptr::eq(janitor, &b) { &c } else { &b };
    // Resumed on S before J's replay (due a lease after the collection).
    let (back, connack) =
        RawClient::connect_with(successor.addr(), packets::connect_persistent(&sub_id))
            .await
            .unwrap();
    assert!(connack.session_present);
    let got = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let counting = tokio::spawn(count(back, Arc::clone(&got), Arc::clone(&stop)));
    let deadline = Instant::now() + WAIT;
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "J's replay never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    janitor.signal(rustix::process::Signal::STOP).unwrap();
    let before_pause = got.lock().unwrap().len();
    logged(&[successor], TAKEN_OVER).await;
    janitor.signal(rustix::process::Signal::CONT).unwrap();
    // Every message, then 3 s more for any duplicate still under way.
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline && !sent.iter().all(|p| got.lock().unwrap().contains_key(p)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    counting.await.unwrap();
    assert!(
        janitor.log().contains("fencing this node"),
        "J was paused past its lease:\n{}",
        janitor.log()
    );
    let got = got.lock().unwrap();
    let lost: Vec<&String> = sent.iter().filter(|p| !got.contains_key(*p)).collect();
    let twice = got.values().filter(|n| **n > 1).count();
    eprintln!(
        "{} messages acknowledged into the dead node's inbox; {before_pause} received before J's pause; {} lost, {twice} received more than once",
        sent.len(),
        lost.len(),
    );
    assert!(
        lost.is_empty(),
        "{} of {} lost, e.g. {:?}\nsuccessor log:\n{}",
        lost.len(),
        sent.len(),
        &lost[..lost.len().min(10)],
        successor.log()
    );
    assert!(
        sent.len() >= 5_000 && twice < sent.len() / 2,
        "{twice} of {} received twice ({before_pause} before J's pause): the paused janitor went on replaying alongside S\njanitor log:\n{}",
        sent.len(),
        janitor.log()
    );
}
