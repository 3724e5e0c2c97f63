//! The labelled families and histograms of `/metrics` (docs/management.md,
//! "Metrics"): messages received by QoS, per-listener connections and
//! refusals, and the latency histograms of store writes, hooks and
//! authentication. All read from the broker's atomics at scrape time.

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use roost_broker::{
    BrokerHandle, LATENCY_BUCKETS_MICROS as BUCKETS_MICROS, LatencySnapshot, Stats,
};

/// Encodes the families below into `encoder`.
pub(crate) fn encode(
    broker: &BrokerHandle,
    stats: &Stats,
    encoder: &mut DescriptorEncoder,
) -> std::fmt::Result {
    received_by_qos(stats, encoder)?;
    listeners(broker, encoder)?;
    let latencies = broker.latencies();
    for (name, help, snapshot) in [
        (
            "roost_store_write_duration_seconds",
            "How long each apply of the session store writer to its backend took.",
            &latencies.store_write,
        ),
        (
            "roost_hook_duration_seconds",
            "How long each hook decision (on_subscribe, on_publish, ...) took.",
            &latencies.hooks,
        ),
        (
            "roost_authentication_duration_seconds",
            "How long the authenticator chain took per CONNECT.",
            &latencies.authentication,
        ),
    ] {
        histogram(encoder, name, help, snapshot)?;
    }
    Ok(())
}

fn received_by_qos(stats: &Stats, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(
        "roost_messages_received",
        "Application messages received from clients, by the QoS they were published at.",
        None,
        MetricType::Counter,
    )?;
    for (qos, value) in ["0", "1", "2"].iter().zip(stats.messages_received_by_qos) {
        family
            .encode_family(&[("qos", *qos)])?
            .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

fn listeners(broker: &BrokerHandle, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    let listeners = broker.listener_stats();
    {
        let mut open = encoder.encode_descriptor(
            "roost_listener_connections",
            "Connections open now, per listener.",
            None,
            MetricType::Gauge,
        )?;
        for l in &listeners {
            let labels = [("listener", l.url.as_str()), ("kind", l.kind.as_str())];
            let value = i64::try_from(l.connections).unwrap_or(i64::MAX);
            open.encode_family(&labels)?.encode_gauge(&value)?;
        }
    }
    {
        let mut accepted = encoder.encode_descriptor(
            "roost_listener_connections_accepted",
            "Connections admitted since start, per listener.",
            None,
            MetricType::Counter,
        )?;
        for l in &listeners {
            let labels = [("listener", l.url.as_str()), ("kind", l.kind.as_str())];
            accepted
                .encode_family(&labels)?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                    &l.accepted,
                    None,
                )?;
        }
    }
    let mut refused = encoder.encode_descriptor(
        "roost_listener_connections_refused",
        "Connections not served, per listener and reason: limit (max_connections), rate \
         (max_connection_rate), transport (TLS/WebSocket/PROXY handshake), connect (CONNECT \
         refused, malformed or never sent).",
        None,
        MetricType::Counter,
    )?;
    for l in &listeners {
        for (reason, value) in [
            ("limit", l.refused_limit),
            ("rate", l.refused_rate),
            ("transport", l.refused_transport),
            ("connect", l.refused_connect),
        ] {
            let labels = [
                ("listener", l.url.as_str()),
                ("kind", l.kind.as_str()),
                ("reason", reason),
            ];
            refused
                .encode_family(&labels)?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&value, None)?;
        }
    }
    Ok(())
}

/// One histogram in seconds; the encoder wants per-bucket counts (it
/// accumulates them), the snapshot holds cumulative ones.
fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    snapshot: &LatencySnapshot,
) -> std::fmt::Result {
    let mut buckets = Vec::with_capacity(BUCKETS_MICROS.len() + 1);
    let mut below = 0;
    for (bound, cumulative) in BUCKETS_MICROS.iter().zip(snapshot.cumulative) {
        buckets.push((*bound as f64 / 1e6, cumulative.saturating_sub(below)));
        below = cumulative;
    }
    buckets.push((f64::INFINITY, snapshot.count.saturating_sub(below)));
    let sum = snapshot.sum_micros as f64 / 1e6;
    encoder
        .encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            sum,
            snapshot.count,
            &buckets,
            None,
        )
}
