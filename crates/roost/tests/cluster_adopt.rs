//! A dead node's sessions adopted (docs/cluster.md, "Adoption"): after a
//! kill -9, the janitor parks the sessions of the dead node's clients that
//! have not come back by the inbox handoff on its own node, so what the
//! dead node's inbox held and what is published afterwards is queued for
//! them, and a client coming back late (after the replay) gets it. Three
//! `roost` processes on a private redis-server; every wait is on an event
//! (a log line, a message) with a bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roost_codec::{Packet, QoS};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::redis::SharedRedis;
use roost_testkit::{BrokerProcess, RawClient, TIMEOUT};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// One redis-server, or a 3-primary Redis Cluster in `cluster_adopt_on_redis_cluster`.
fn start_redis() -> SharedRedis {
    SharedRedis::start_for(module_path!())
}

/// The longest a route, a janitor or a delivery may take here (documented
/// bounds are a lease or two, 1.5 s in these tests; slack for a loaded
/// machine and a debug build).
const WAIT: Duration = Duration::from_secs(30);

/// What a node's janitor logs once it replayed a dead node's inbox (its
/// sessions adopted first) and removed its routes.
const HANDED_OFF: &str = "inbox handoff replayed";

/// A node named `name`, lease 1.5 s, `cluster` lines added to `[cluster]`.
fn node(redis: &SharedRedis, name: &str, cluster: &str) -> BrokerProcess {
    roost_testkit::cluster_node(BIN, &redis.url(), name, 1500, "", cluster)
}

async fn connect_persistent(addr: SocketAddr, client_id: &str) -> (RawClient, bool) {
    let (client, connack) = RawClient::connect_with(addr, packets::connect_persistent(client_id))
        .await
        .unwrap();
    (client, connack.session_present)
}

/// Receives (acknowledging QoS 1) into `got` until `stop` or the
/// connection ends (its node killed); probes are not counted.
async fn collect(mut client: RawClient, got: Arc<Mutex<BTreeSet<String>>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match client.recv(Duration::from_millis(200)).await {
            Ok(Packet::Publish(p)) => {
                if let (QoS::AtLeastOnce, Some(id)) = (p.qos, p.packet_id) {
                    let _ = client.send(packets::puback(id.get())).await;
                }
                if &p.payload[..] != b"probe" {
                    got.lock()
                        .unwrap()
                        .insert(String::from_utf8_lossy(&p.payload).into_owned());
                }
            }
            Ok(_) | Err(roost_testkit::RecvError::Timeout(_)) => {}
            Err(_) => return,
        }
    }
}

/// Publishes QoS 1 on `topic` until `stop` (or its node dies), each
/// message waited for; returns the payloads whose PUBACK came, with when.
async fn publish_until(
    mut client: RawClient,
    topic: String,
    tag: &'static str,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> Vec<(String, Instant)> {
    let mut done = Vec::new();
    let mut i: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let payload = format!("{tag}-{i}");
        let id = u16::try_from(i % 60_000).unwrap() + 1;
        let publish = packets::publish(
            &topic,
            bytes::Bytes::from(payload.clone().into_bytes()),
            QoS::AtLeastOnce,
            Some(id),
        );
        if client.send(publish).await.is_err() {
            break;
        }
        match client.recv(TIMEOUT).await {
            Ok(Packet::PubAck(ack)) if ack.packet_id.get() == id => {
                done.push((payload, Instant::now()));
                acked.fetch_add(1, Ordering::Relaxed);
            }
            _ => break,
        }
        // Paced: the run spans the death, the janitor and the handoff.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    done
}

/// The node among `nodes` whose log shows `line` (waits up to [`WAIT`]).
async fn logged<'n>(nodes: &[&'n BrokerProcess], line: &str) -> &'n BrokerProcess {
    roost_testkit::first_to_log(nodes, line, WAIT).await
}

/// Durable mode, kill -9 of A mid-traffic; A's persistent QoS 1
/// subscriber stays away until the janitor has adopted its session and
/// replayed A's inbox, and publishing goes on after that: when it comes
/// back (on another node) it gets every message acknowledged to a
/// publisher, those A's inbox held, those published while A's routes were
/// still up and those published after they went down.
#[tokio::test]
async fn cluster_durable_kill_9_a_client_back_after_the_handoff_gets_every_acknowledged_message() {
    let redis = start_redis();
    let run = unique_id("adopt");
    let [a, b, c] = ["a", "b", "c"].map(|n| node(&redis, &format!("{run}-{n}"), "durable = true"));
    let base = unique_id("adopted");
    let sub_id = unique_id("sub-a");
    let (mut sub, _) = connect_persistent(a.addr(), &sub_id).await;
    sub.subscribe_qos1(&format!("{base}/#")).await;
    let mut pubs = [
        RawClient::connect_v5(b.addr(), &unique_id("pub-b"))
            .await
            .unwrap()
            .0,
        RawClient::connect_v5(c.addr(), &unique_id("pub-c"))
            .await
            .unwrap()
            .0,
    ];
    for publisher in &mut pubs {
        roost_testkit::wait_for_route(publisher, &format!("{base}/probe"), &mut [&mut sub], WAIT)
            .await;
    }
    let received = Arc::new(Mutex::new(BTreeSet::new()));
    let stop_sub = Arc::new(AtomicBool::new(false));
    let first = tokio::spawn(collect(sub, Arc::clone(&received), Arc::clone(&stop_sub)));
    let stop_pub = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let publishers: Vec<_> = pubs
        .into_iter()
        .zip(["pb", "pc"])
        .map(|(publisher, tag)| {
            tokio::spawn(publish_until(
                publisher,
                format!("{base}/{tag}"),
                tag,
                Arc::clone(&stop_pub),
                Arc::clone(&acked),
            ))
        })
        .collect();
    let deadline = Instant::now() + WAIT;
    while acked.load(Ordering::Relaxed) < 100 {
        assert!(Instant::now() < deadline, "publishers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.signal(rustix::process::Signal::KILL).unwrap();
    // The subscriber's connection ends with A; it does not reconnect yet.
    first.await.unwrap();
    // The janitor adopted the session at the handoff; publishing goes on
    // past it (messages for the adopted session only, A's routes gone).
    let janitor = logged(&[&b, &c], HANDED_OFF).await;
    let at_adoption = acked.load(Ordering::Relaxed);
    let deadline = Instant::now() + WAIT;
    while acked.load(Ordering::Relaxed) < at_adoption + 100 {
        assert!(
            Instant::now() < deadline,
            "publishers stalled after the adoption"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_pub.store(true, Ordering::Relaxed);
    let mut sent = BTreeSet::new();
    for publisher in publishers {
        sent.extend(publisher.await.unwrap().into_iter().map(|(p, _)| p));
    }
    // Back, late, on the node that is not the janitor (a takeover from it).
    let other = if std::ptr::eq(janitor, &b) { &c } else { &b };
    let (back, present) = connect_persistent(other.addr(), &sub_id).await;
    assert!(present, "the adopted session resumes (Session Present 1)");
    stop_sub.store(false, Ordering::Relaxed);
    let second = tokio::spawn(collect(back, Arc::clone(&received), Arc::clone(&stop_sub)));
    let missing = || -> Vec<String> {
        let got = received.lock().unwrap();
        sent.iter().filter(|p| !got.contains(*p)).cloned().collect()
    };
    let deadline = Instant::now() + WAIT;
    while !missing().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_sub.store(true, Ordering::Relaxed);
    second.await.unwrap();
    let lost = missing();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost, e.g. {:?}\njanitor log:\n{}",
        lost.len(),
        sent.len(),
        &lost[..lost.len().min(10)],
        janitor.log()
    );
}

/// Publishers on B and C at QoS 1 to `{base}/…`, counting acknowledgements.
struct Publishers {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(String, Instant)>>>,
}

impl Publishers {
    fn start(pubs: Vec<RawClient>, base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let tasks = pubs
            .into_iter()
            .zip(["pb", "pc"])
            .map(|(publisher, tag)| {
                tokio::spawn(publish_until(
                    publisher,
                    format!("{base}/{tag}"),
                    tag,
                    Arc::clone(&stop),
                    Arc::clone(&acked),
                ))
            })
            .collect();
        Self { stop, acked, tasks }
    }

    /// Waits (bounded) until `more` further messages were acknowledged.
    async fn until_more(&self, more: usize, what: &str) {
        let target = self.acked.load(Ordering::Relaxed) + more;
        let deadline = Instant::now() + WAIT;
        while self.acked.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "publishers stalled: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops them: every acknowledged payload, with when.
    async fn stop(self) -> Vec<(String, Instant)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut sent = Vec::new();
        for task in self.tasks {
            sent.extend(task.await.unwrap());
        }
        sent
    }
}

/// A persistent QoS 1 subscriber of `{base}/#` on `on`, with the route from
/// publishers on `pubs_on` seen; returns it and the publishers' clients.
async fn subscriber_and_publishers(
    on: &BrokerProcess,
    pubs_on: [&BrokerProcess; 2],
    sub_id: &str,
    base: &str,
) -> (RawClient, Vec<RawClient>) {
    let (mut sub, _) = connect_persistent(on.addr(), sub_id).await;
    sub.subscribe_qos1(&format!("{base}/#")).await;
    let mut pubs = Vec::new();
    for node in pubs_on {
        let mut publisher = RawClient::connect_v5(node.addr(), &unique_id("pub"))
            .await
            .unwrap()
            .0;
        roost_testkit::wait_for_route(
            &mut publisher,
            &format!("{base}/probe"),
            &mut [&mut sub],
            WAIT,
        )
        .await;
        pubs.push(publisher);
    }
    (sub, pubs)
}

/// Reconnects `sub_id` on `addr` (its session must be there) and receives
/// into `received` until `done` says it has all it should, or [`WAIT`].
async fn come_back(
    addr: SocketAddr,
    sub_id: &str,
    received: &Arc<Mutex<BTreeSet<String>>>,
    done: impl Fn(&BTreeSet<String>) -> bool,
) {
    let (back, present) = connect_persistent(addr, sub_id).await;
    assert!(present, "the adopted session resumes (Session Present 1)");
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(collect(back, Arc::clone(received), Arc::clone(&stop)));
    let deadline = Instant::now() + WAIT;
    while !done(&received.lock().unwrap()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    task.await.unwrap();
}

/// What the node that collects a dead node logs (`lease.rs`).
const COLLECTED: &str = "lease lapsed: its sessions are adoptable";

/// Durable mode: A killed -9 mid-traffic, then its janitor killed right
/// after it collected A (claimed its inbox, took its clients' wills, before
/// the replay one lease later): the third node takes the janitor job over
/// (it is recorded in Redis), adopts A's subscriber's session and replays
/// A's inbox, so the subscriber coming back late gets every acknowledged
/// message; and a delayed will the dead janitor had taken is published by
/// the third node, once.
#[tokio::test]
async fn cluster_durable_a_janitor_killed_after_its_claim_leaves_the_handoff_and_delayed_will_to_another_node()
 {
    let redis = start_redis();
    let run = unique_id("jk");
    let [a, b, c] = ["a", "b", "c"].map(|n| node(&redis, &format!("{run}-{n}"), "durable = true"));
    let base = unique_id("taken");
    let sub_id = unique_id("sub-a");
    let (sub, pubs) = subscriber_and_publishers(&a, [&b, &c], &sub_id, &base).await;
    // A client of A with a will delayed 3 s (longer than the janitor lives).
    let will_topic = format!("{base}-will/w");
    let mut connect = packets::connect_persistent(&unique_id("willer"));
    connect.will = Some(roost_codec::LastWill {
        topic: will_topic.as_str().into(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: roost_codec::WillProperties {
            will_delay_interval: Some(3),
            ..Default::default()
        },
    });
    let (willer, _) = RawClient::connect_with(a.addr(), connect).await.unwrap();
    let mut watchers = Vec::new();
    for node in [&b, &c] {
        let mut watcher = RawClient::connect_v5(node.addr(), &unique_id("watch"))
            .await
            .unwrap()
            .0;
        watcher.subscribe_qos1(&will_topic).await;
        watchers.push(watcher);
    }
    {
        let mut probe = RawClient::connect_v5(b.addr(), &unique_id("probe"))
            .await
            .unwrap()
            .0;
        let [w0, w1] = &mut watchers[..] else {
            unreachable!()
        };
        roost_testkit::wait_for_route(&mut probe, &will_topic, &mut [w0, w1], WAIT).await;
    }
    let received = Arc::new(Mutex::new(BTreeSet::new()));
    let stop_first = Arc::new(AtomicBool::new(false));
    let first = tokio::spawn(collect(sub, Arc::clone(&received), stop_first));
    let publishers = Publishers::start(pubs, &base);
    publishers.until_more(100, "before the kill").await;
    a.signal(rustix::process::Signal::KILL).unwrap();
    first.await.unwrap();
    drop(willer);
    let janitor = logged(&[&b, &c], COLLECTED).await;
    janitor.signal(rustix::process::Signal::KILL).unwrap();
    let (survivor, watcher) = if std::ptr::eq(janitor, &b) {
        (&c, watchers.pop().unwrap())
    } else {
        (&b, watchers.swap_remove(0))
    };
    logged(&[survivor], "janitor job of a dead node taken over").await;
    logged(&[survivor], HANDED_OFF).await;
    publishers.until_more(50, "after the takeover").await;
    let sent: BTreeSet<String> = publishers
        .stop()
        .await
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    come_back(survivor.addr(), &sub_id, &received, |got| {
        sent.is_subset(got)
    })
    .await;
    let lost: Vec<String> = {
        let got = received.lock().unwrap();
        sent.iter().filter(|p| !got.contains(*p)).cloned().collect()
    };
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost, e.g. {:?}\nsurvivor log:\n{}",
        lost.len(),
        sent.len(),
        &lost[..lost.len().min(10)],
        survivor.log()
    );
    // The will: once, from the survivor (the janitor that took it is dead).
    let mut watcher = watcher;
    let will = watcher
        .recv_publish(WAIT)
        .await
        .expect("the delayed will is published");
    assert_eq!(&will.payload[..], b"gone");
    if let Some(id) = will.packet_id {
        watcher.send(packets::puback(id.get())).await.unwrap();
    }
    assert!(
        watcher.recv_publish(Duration::from_secs(3)).await.is_err(),
        "the will was published twice"
    );
}

/// Without durable mode, the loss after a kill -9 is what docs/cluster.md
/// says: only QoS 1 messages the dead node had read from its inbox (or
/// taken from a local publisher) and not yet written to its subscriber's
/// rows (the store writer's queue, `async` durability; its inbox
/// checkpoint is written once a second) — so every lost message was
/// acknowledged shortly before the kill (2 s here: the checkpoint's second
/// plus slack for the store writer on a loaded machine); nothing
/// acknowledged after the kill is lost (the inbox handoff and the adoption
/// carry it), even for a client back late. Prints the count.
#[tokio::test]
async fn cluster_kill_9_without_durable_mode_loses_only_what_the_docs_say() {
    let redis = start_redis();
    let run = unique_id("nd");
    let [a, b, c] = ["a", "b", "c"].map(|n| node(&redis, &format!("{run}-{n}"), ""));
    let base = unique_id("nondurable");
    let sub_id = unique_id("sub-a");
    let (sub, pubs) = subscriber_and_publishers(&a, [&b, &c], &sub_id, &base).await;
    let received = Arc::new(Mutex::new(BTreeSet::new()));
    let first = tokio::spawn(collect(
        sub,
        Arc::clone(&received),
        Arc::new(AtomicBool::new(false)),
    ));
    let publishers = Publishers::start(pubs, &base);
    publishers.until_more(150, "before the kill").await;
    a.signal(rustix::process::Signal::KILL).unwrap();
    let killed_at = Instant::now();
    first.await.unwrap();
    let janitor = logged(&[&b, &c], HANDED_OFF).await;
    publishers.until_more(50, "after the adoption").await;
    let sent = publishers.stop().await;
    let window = Duration::from_secs(2);
    // May be lost: acknowledged in the window before the kill.
    let may_lose = |at: &Instant| *at <= killed_at && killed_at.duration_since(*at) <= window;
    let other = if std::ptr::eq(janitor, &b) { &c } else { &b };
    come_back(other.addr(), &sub_id, &received, |got| {
        sent.iter().all(|(p, at)| got.contains(p) || may_lose(at))
    })
    .await;
    let got = received.lock().unwrap();
    let lost: Vec<&(String, Instant)> = sent.iter().filter(|(p, _)| !got.contains(p)).collect();
    let beyond: Vec<(&str, Duration)> = lost
        .iter()
        .filter(|(_, at)| !may_lose(at))
        .map(|(p, at)| {
            let from_kill = if *at > killed_at {
                *at - killed_at
            } else {
                killed_at - *at
            };
            (p.as_str(), from_kill)
        })
        .collect();
    eprintln!(
        "without durable mode: {} of {} acknowledged messages lost ({} acknowledged in the {window:?} before the kill)",
        lost.len(),
        sent.len(),
        sent.iter().filter(|(_, at)| may_lose(at)).count()
    );
    assert!(
        beyond.is_empty(),
        "lost beyond the documented bound: {:?}",
        &beyond[..beyond.len().min(10)]
    );
}

/// Publishes `n` QoS 1 messages `{tag}-{i}` on `topic`, each acknowledged.
async fn publish_n(client: &mut RawClient, topic: &str, tag: &str, n: u16) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 1..=n {
        let payload = format!("{tag}-{i}");
        let publish = packets::publish(
            topic,
            bytes::Bytes::from(payload.clone().into_bytes()),
            QoS::AtLeastOnce,
            Some(i),
        );
        client.send(publish).await.unwrap();
        match client.recv(TIMEOUT).await.unwrap() {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), i),
            other => panic!("expected PUBACK, got {other:?}"),
        }
        sent.push(payload);
    }
    sent
}

/// Adoption spread over the live nodes (docs/cluster.md, "Adoption"):
/// durable mode, A holds 16 persistent QoS 1 sessions whose clients are
/// away, with messages queued for them, and is killed -9; the sessions
/// nobody resumed end up parked on both B and C (their owner records in
/// Redis name each of them, not only the janitor's node), and every client
/// coming back later, on either node, gets what was queued before the
/// death and what was published after the adoption.
#[tokio::test]
async fn cluster_durable_kill_9_spreads_the_dead_nodes_sessions_over_both_survivors() {
    let redis = start_redis();
    let run = unique_id("spread");
    let names = ["a", "b", "c"].map(|n| format!("{run}-{n}"));
    let [a, b, c] = names.clone().map(|n| node(&redis, &n, "durable = true"));
    let base = unique_id("spread");
    let ids: Vec<String> = (0..16).map(|i| unique_id(&format!("sp{i}"))).collect();
    let mut subs = Vec::new();
    for id in &ids {
        let (mut sub, _) = connect_persistent(a.addr(), id).await;
        sub.subscribe_qos1(&format!("{base}/#")).await;
        subs.push(sub);
    }
    let (mut pub_b, _) = RawClient::connect_v5(b.addr(), &unique_id("pub-b"))
        .await
        .unwrap();
    {
        let mut refs: Vec<&mut RawClient> = subs.iter_mut().collect();
        roost_testkit::wait_for_route(&mut pub_b, &format!("{base}/probe"), &mut refs, WAIT).await;
    }
    // Away: their sessions are parked on A.
    for mut sub in subs {
        sub.send(packets::disconnect()).await.unwrap();
        sub.expect_closed(TIMEOUT).await.unwrap();
    }
    // Queued for them on A (durable: in their rows, or in A's inbox).
    let mut sent = publish_n(&mut pub_b, &format!("{base}/before"), "before", 20).await;
    a.signal(rustix::process::Signal::KILL).unwrap();
    logged(&[&b, &c], HANDED_OFF).await;
    // Where each session is parked now.
    let owners: BTreeSet<String> = ids
        .iter()
        .map(|id| {
            redis
                .cli(&["HGET", &format!("roost:cl:{{c:{id}}}:own"), "node"])
                .trim()
                .to_string()
        })
        .collect();
    let survivors: BTreeSet<String> = names[1..].iter().cloned().collect();
    assert_eq!(
        owners,
        survivors,
        "the dead node's sessions are parked on both survivors\nB:\n{}\nC:\n{}",
        b.log(),
        c.log()
    );
    // Published after the adoption, on both survivors.
    let (mut pub_c, _) = RawClient::connect_v5(c.addr(), &unique_id("pub-c"))
        .await
        .unwrap();
    sent.extend(publish_n(&mut pub_b, &format!("{base}/after-b"), "after-b", 10).await);
    sent.extend(publish_n(&mut pub_c, &format!("{base}/after-c"), "after-c", 10).await);
    let sent: BTreeSet<String> = sent.into_iter().collect();
    for (i, id) in ids.iter().enumerate() {
        let on = if i % 2 == 0 { &b } else { &c };
        let received = Arc::new(Mutex::new(BTreeSet::new()));
        come_back(on.addr(), id, &received, |got| sent.is_subset(got)).await;
        let got = received.lock().unwrap();
        let lost: Vec<&String> = sent.iter().filter(|p| !got.contains(*p)).collect();
        assert!(
            lost.is_empty(),
            "{id}: {} of {} messages lost, e.g. {:?}",
            lost.len(),
            sent.len(),
            &lost[..lost.len().min(10)]
        );
    }
}
