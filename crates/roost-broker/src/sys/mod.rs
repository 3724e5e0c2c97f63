//! The `$SYS` topics (docs/management.md, "$SYS topics"): every
//! `[sys] interval` seconds, the broker's counters as Mosquitto names and
//! formats them, retained, published through the core's routing (so
//! subscribers, the retained store and read ACLs apply; in a cluster, to
//! this node's subscribers only: each node has its own tree). The broker is the
//! publisher, not a client: the gate that keeps `$SYS` read-only for
//! clients (`driver/authz.rs`) is not on this path. `events.rs`: the
//! EMQX-style client events.
//!
//! Floor: above the core (it reads the counters and publishes through
//! `Core::publish`), below the connection drivers (which call `events`).

pub(crate) mod events;
mod heap;
mod load;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{PublishProperties, QoS};
use roost_session::Message;

use crate::core::Core;
use crate::metrics::Stats;
use load::Load;

/// Mosquitto publishes its tree at QoS 2 (`SYS_TREE_QOS`): a subscriber
/// gets them at the QoS it asked for.
const SYS_QOS: QoS = QoS::ExactlyOnce;

/// Publishes the `$SYS/broker/...` tree every `[sys] interval` seconds
/// until shutdown; returns at once when the interval is 0.
pub(crate) async fn run(core: Arc<Core>) {
    let interval = core.config.sys.interval;
    if interval == 0 {
        return;
    }
    let mut shutdown = core.shutdown.subscribe();
    let mut tree = Tree::new(&core.stats(), Instant::now());
    tree.publish_static(&core);
    let mut ticker = tokio::time::interval(Duration::from_secs(interval));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => tree.update(&core, &core.stats(), Instant::now()),
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}

/// The `load/...` topics of each counter, over 1, 5 and 15 minutes.
const LOADS: [[&str; 3]; 8] = [
    [
        "$SYS/broker/load/messages/received/1min",
        "$SYS/broker/load/messages/received/5min",
        "$SYS/broker/load/messages/received/15min",
    ],
    [
        "$SYS/broker/load/messages/sent/1min",
        "$SYS/broker/load/messages/sent/5min",
        "$SYS/broker/load/messages/sent/15min",
    ],
    [
        "$SYS/broker/load/publish/dropped/1min",
        "$SYS/broker/load/publish/dropped/5min",
        "$SYS/broker/load/publish/dropped/15min",
    ],
    [
        "$SYS/broker/load/publish/received/1min",
        "$SYS/broker/load/publish/received/5min",
        "$SYS/broker/load/publish/received/15min",
    ],
    [
        "$SYS/broker/load/publish/sent/1min",
        "$SYS/broker/load/publish/sent/5min",
        "$SYS/broker/load/publish/sent/15min",
    ],
    [
        "$SYS/broker/load/bytes/received/1min",
        "$SYS/broker/load/bytes/received/5min",
        "$SYS/broker/load/bytes/received/15min",
    ],
    [
        "$SYS/broker/load/bytes/sent/1min",
        "$SYS/broker/load/bytes/sent/5min",
        "$SYS/broker/load/bytes/sent/15min",
    ],
    [
        "$SYS/broker/load/connections/1min",
        "$SYS/broker/load/connections/5min",
        "$SYS/broker/load/connections/15min",
    ],
];

/// The counter values of [`LOADS`], in order.
fn load_counts(stats: &Stats) -> [u64; 8] {
    [
        stats.messages_received,
        stats.messages_delivered,
        stats.messages_dropped,
        stats.messages_received,
        stats.messages_delivered,
        stats.bytes_received,
        stats.bytes_sent,
        stats.connections_total,
    ]
}

/// What the tree last published, to publish only what changed (as
/// Mosquitto does; the uptime always).
struct Tree {
    started: Instant,
    last_update: Instant,
    /// False until the first update, which publishes every value.
    primed: bool,
    loads: [Load; 8],
    published: HashMap<&'static str, String>,
}

impl Tree {
    fn new(stats: &Stats, now: Instant) -> Self {
        let counts = load_counts(stats);
        Self {
            started: now,
            last_update: now,
            primed: false,
            loads: counts.map(Load::starting_at),
            published: HashMap::new(),
        }
    }

    /// What never changes while the broker runs.
    fn publish_static(&self, core: &Core) {
        let version = format!("roost version {}", env!("CARGO_PKG_VERSION"));
        publish(core, "$SYS/broker/version", version);
    }

    /// One tick: the uptime, then every value that changed.
    fn update(&mut self, core: &Core, stats: &Stats, now: Instant) {
        let uptime = now.duration_since(self.started).as_secs();
        publish(core, "$SYS/broker/uptime", format!("{uptime} seconds"));
        let connected = stats.connections_current;
        let disconnected = stats.sessions.saturating_sub(connected);
        let mut values: Vec<(&'static str, String)> = vec![
            ("$SYS/broker/clients/total", stats.sessions.to_string()),
            ("$SYS/broker/clients/connected", connected.to_string()),
            ("$SYS/broker/clients/active", connected.to_string()),
            ("$SYS/broker/clients/disconnected", disconnected.to_string()),
            ("$SYS/broker/clients/inactive", disconnected.to_string()),
            (
                "$SYS/broker/clients/maximum",
                stats.connections_maximum.to_string(),
            ),
            (
                "$SYS/broker/clients/expired",
                stats.sessions_expired.to_string(),
            ),
            (
                "$SYS/broker/messages/received",
                stats.messages_received.to_string(),
            ),
            (
                "$SYS/broker/messages/sent",
                stats.messages_delivered.to_string(),
            ),
            (
                "$SYS/broker/messages/stored",
                stats.retained_messages.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/received",
                stats.messages_received.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/sent",
                stats.messages_delivered.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/dropped",
                stats.messages_dropped.to_string(),
            ),
            (
                "$SYS/broker/bytes/received",
                stats.bytes_received.to_string(),
            ),
            ("$SYS/broker/bytes/sent", stats.bytes_sent.to_string()),
            (
                "$SYS/broker/subscriptions/count",
                stats.subscriptions.to_string(),
            ),
            (
                "$SYS/broker/retained messages/count",
                stats.retained_messages.to_string(),
            ),
            (
                "$SYS/broker/store/messages/count",
                stats.retained_messages.to_string(),
            ),
            (
                "$SYS/broker/store/messages/bytes",
                stats.retained_bytes.to_string(),
            ),
        ];
        if let Some((current, maximum)) = heap::resident() {
            values.push(("$SYS/broker/heap/current", current.to_string()));
            values.push(("$SYS/broker/heap/maximum", maximum.to_string()));
        }
        let elapsed = now.duration_since(self.last_update).as_secs_f64();
        self.last_update = now;
        for ((load, topics), count) in self.loads.iter_mut().zip(LOADS).zip(load_counts(stats)) {
            let averages = load.update(count, elapsed);
            for (average, topic) in averages.into_iter().zip(topics) {
                let text = load::format(average);
                // Mosquitto: a load is published when it moved by 0.01 or
                // more; the two-decimal text says exactly that.
                if self.published.get(topic).is_none_or(|old| *old != text) {
                    publish(core, topic, text.clone());
                    self.published.insert(topic, text);
                }
            }
        }
        for (topic, text) in values {
            if !self.primed || self.published.get(topic) != Some(&text) {
                publish(core, topic, text.clone());
                self.published.insert(topic, text);
            }
        }
        self.primed = true;
    }
}

/// Publishes one retained `$SYS` value as the broker.
fn publish(core: &Core, topic: &'static str, text: String) {
    let message = Message {
        topic: ByteString::from_static(topic),
        payload: Bytes::from(text),
        qos: SYS_QOS,
        retain: true,
        properties: PublishProperties::default(),
        expires_at: None,
        publisher: None,
    };
    core.publish_local(message, Instant::now());
}
