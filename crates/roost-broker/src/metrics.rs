//! Broker-wide counters. Relaxed atomics: they are statistics, not
//! synchronisation.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters readable through [`crate::BrokerHandle::stats`].
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) connections_current: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) connections_hibernating: AtomicU64,
    pub(crate) hibernations: AtomicU64,
    /// Application messages received, by the QoS they were published at.
    pub(crate) messages_received_by_qos: [AtomicU64; 3],
    pub(crate) messages_delivered: AtomicU64,
    pub(crate) messages_dropped: AtomicU64,
    pub(crate) messages_no_subscribers: AtomicU64,
    pub(crate) wills_published: AtomicU64,
    pub(crate) wills_refused: AtomicU64,
    pub(crate) deliveries_not_authorized: AtomicU64,
    pub(crate) sessions_refused_owner: AtomicU64,
    pub(crate) sessions_expired: AtomicU64,
    pub(crate) publisher_pauses: AtomicU64,
    pub(crate) publisher_waits_expired: AtomicU64,
    /// Most connections open at once since start.
    pub(crate) connections_maximum: AtomicU64,
    /// Bytes of MQTT packets read from connected clients' streams.
    pub(crate) bytes_received: AtomicU64,
    /// Bytes of MQTT packets written to clients' streams.
    pub(crate) bytes_sent: AtomicU64,
}

/// A snapshot of the broker's counters (serialized as is by the management
/// API's `GET /api/v1/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Connections open now.
    pub connections_current: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused (limits, bad CONNECT, authentication).
    pub connections_refused: u64,
    /// Open connections hibernating now (idle, without a task; counted in
    /// `connections_current` too).
    pub connections_hibernating: u64,
    /// Times a connection went into hibernation since start.
    pub hibernations: u64,
    /// Application messages received from clients.
    pub messages_received: u64,
    /// The same by QoS 0, 1, 2.
    pub messages_received_by_qos: [u64; 3],
    /// Deliveries handed to subscriber sessions.
    pub messages_delivered: u64,
    /// Deliveries dropped (full queues, expiry, too large).
    pub messages_dropped: u64,
    /// Messages that matched no subscriber.
    pub messages_no_subscribers: u64,
    /// Will messages published.
    pub wills_published: u64,
    /// CONNECTs refused because the will's topic failed the publish gate.
    pub wills_refused: u64,
    /// Deliveries withheld because the subscriber may not read the topic
    /// (`acl_wildcards = "per_message"`; counted in `messages_dropped` too).
    pub deliveries_not_authorized: u64,
    /// CONNECTs refused because the session belongs to another identity.
    pub sessions_refused_owner: u64,
    /// Sessions that expired.
    pub sessions_expired: u64,
    /// Times a publisher stopped reading because a subscriber's outbox
    /// reached `limits.outbox_high_water` (back-pressure, issue 21).
    pub publisher_pauses: u64,
    /// Pauses that lasted `limits.publisher_wait_ms`: the subscriber was
    /// marked slow, and its deliveries beyond `max_outbox` are dropped.
    pub publisher_waits_expired: u64,
    /// Most connections open at once since start.
    pub connections_maximum: u64,
    /// Bytes of MQTT packets read from clients since start (what the
    /// transport handed over: TLS records and WebSocket frames unwrapped).
    pub bytes_received: u64,
    /// Bytes of MQTT packets written to clients since start (before TLS and
    /// WebSocket framing).
    pub bytes_sent: u64,
    /// Sessions known (online and offline).
    pub sessions: u64,
    /// Subscriptions in the router.
    pub subscriptions: u64,
    /// Retained messages stored (expired ones count until they are purged).
    pub retained_messages: u64,
    /// Payload bytes of the retained messages stored.
    pub retained_bytes: u64,
    /// Retained messages removed because their Message Expiry or `retain_ttl` ran out.
    pub retained_expired: u64,
    /// Retained messages not stored because of `max_retained_messages` or
    /// `max_retained_payload`.
    pub retained_refused: u64,
    /// Session store (docs/persistence.md, "When Redis goes away"): the
    /// backend is unreachable right now and writes wait in the queue.
    pub store_unavailable: bool,
    /// Store outages begun since start.
    pub store_outages: u64,
    /// Store writes that failed transiently and were retried.
    pub store_retries: u64,
    /// How long the current store outage has lasted, in milliseconds (0 when none).
    pub store_outage_ms: u64,
    /// Deltas waiting for the store writer (its lag).
    pub store_queued_deltas: u64,
    /// Store writes that failed for good (their changes may not survive a restart).
    pub store_failures: u64,
}

/// The broker's latency histograms (read when someone asks: a scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latencies {
    /// Each apply of the session store's writer to its backend.
    pub store_write: roost_store::LatencySnapshot,
    /// Each hook decision (`on_subscribe`, `on_publish`, ...).
    pub hooks: roost_store::LatencySnapshot,
    /// The authenticator chain, per CONNECT.
    pub authentication: roost_store::LatencySnapshot,
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One more connection open: counts it and raises the maximum.
    pub(crate) fn opened(&self) {
        let now = self.connections_current.fetch_add(1, Ordering::Relaxed) + 1;
        // Read first: the maximum is rarely beaten, and a load keeps the
        // cache line shared where a `fetch_max` would always take it.
        if now > self.connections_maximum.load(Ordering::Relaxed) {
            self.connections_maximum.fetch_max(now, Ordering::Relaxed);
        }
        Self::inc(&self.connections_total);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connections_current: get(&self.connections_current),
            connections_total: get(&self.connections_total),
            connections_refused: get(&self.connections_refused),
            connections_hibernating: get(&self.connections_hibernating),
            hibernations: get(&self.hibernations),
            messages_received: self.messages_received_by_qos.iter().map(get).sum(),
            messages_received_by_qos: [
                get(&self.messages_received_by_qos[0]),
                get(&self.messages_received_by_qos[1]),
                get(&self.messages_received_by_qos[2]),
            ],
            messages_delivered: get(&self.messages_delivered),
            messages_dropped: get(&self.messages_dropped),
            messages_no_subscribers: get(&self.messages_no_subscribers),
            wills_published: get(&self.wills_published),
            wills_refused: get(&self.wills_refused),
            deliveries_not_authorized: get(&self.deliveries_not_authorized),
            sessions_refused_owner: get(&self.sessions_refused_owner),
            sessions_expired: get(&self.sessions_expired),
            publisher_pauses: get(&self.publisher_pauses),
            publisher_waits_expired: get(&self.publisher_waits_expired),
            connections_maximum: get(&self.connections_maximum),
            bytes_received: get(&self.bytes_received),
            bytes_sent: get(&self.bytes_sent),
            ..Stats::default()
        }
    }
}
