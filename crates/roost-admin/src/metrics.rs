//! `GET /metrics`: the broker's counters in the OpenMetrics text format
//! (which Prometheus scrapes), through a `prometheus-client` collector that
//! reads [`roost_broker::Stats`] at scrape time. The broker keeps one set of
//! relaxed atomic counters (single source of truth, shared with
//! `/api/v1/stats` and `$SYS`); nothing here runs, and nothing is recorded,
//! unless somebody scrapes.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use roost_broker::{BrokerHandle, Stats};

use crate::state::Shared;

/// The content type of the OpenMetrics text format (what Prometheus asks for first).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format (curl, `promtool check metrics`, older scrapers).
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A counter: name without `_total` (the encoder appends it), help, value.
type Reading = (&'static str, &'static str, fn(&Stats) -> u64);

/// Counters read from `Stats`.
const COUNTERS: &[Reading] = &[
    (
        "roost_connections_accepted",
        "Connections accepted since start.",
        |s| s.connections_total,
    ),
    (
        "roost_connections_refused",
        "Connections refused (limits, bad CONNECT, authentication).",
        |s| s.connections_refused,
    ),
    (
        "roost_hibernations",
        "Times an idle connection went into hibernation.",
        |s| s.hibernations,
    ),
    (
        "roost_messages_delivered",
        "Deliveries handed to subscriber sessions.",
        |s| s.messages_delivered,
    ),
    (
        "roost_messages_no_subscribers",
        "Messages that matched no subscriber.",
        |s| s.messages_no_subscribers,
    ),
    ("roost_wills_published", "Will messages published.", |s| {
        s.wills_published
    }),
    (
        "roost_wills_refused",
        "CONNECTs refused because the will's topic failed the publish gate.",
        |s| s.wills_refused,
    ),
    (
        "roost_sessions_refused_owner",
        "CONNECTs refused because the session belongs to another identity.",
        |s| s.sessions_refused_owner,
    ),
    ("roost_sessions_expired", "Sessions that expired.", |s| {
        s.sessions_expired
    }),
    (
        "roost_publisher_pauses",
        "Times a publisher paused for a full subscriber outbox.",
        |s| s.publisher_pauses,
    ),
    (
        "roost_publisher_waits_expired",
        "Publisher pauses that ran out (the subscriber was marked slow).",
        |s| s.publisher_waits_expired,
    ),
    (
        "roost_retained_expired",
        "Retained messages removed by expiry.",
        |s| s.retained_expired,
    ),
    (
        "roost_retained_refused",
        "Retained messages not stored because of the limits.",
        |s| s.retained_refused,
    ),
    (
        "roost_store_outages",
        "Session store outages begun since start.",
        |s| s.store_outages,
    ),
    (
        "roost_store_retries",
        "Session store writes retried after a transient failure.",
        |s| s.store_retries,
    ),
    (
        "roost_store_failures",
        "Session store writes that failed for good.",
        |s| s.store_failures,
    ),
    (
        "roost_bytes_received",
        "Bytes read from client connections (MQTT level, after TLS/WebSocket).",
        |s| s.bytes_received,
    ),
    (
        "roost_bytes_sent",
        "Bytes written to client connections (MQTT level, before TLS/WebSocket).",
        |s| s.bytes_sent,
    ),
];

/// Gauges read from `Stats`.
const GAUGES: &[Reading] = &[
    ("roost_connections", "Connections open now.", |s| {
        s.connections_current
    }),
    (
        "roost_connections_hibernating",
        "Open connections hibernating now.",
        |s| s.connections_hibernating,
    ),
    (
        "roost_sessions",
        "Sessions known (online and offline).",
        |s| s.sessions,
    ),
    ("roost_subscriptions", "Subscriptions in the router.", |s| {
        s.subscriptions
    }),
    (
        "roost_retained_messages",
        "Retained messages stored.",
        |s| s.retained_messages,
    ),
    (
        "roost_retained_bytes",
        "Payload bytes of the retained messages stored.",
        |s| s.retained_bytes,
    ),
    (
        "roost_store_unavailable",
        "1 while the session store is unreachable.",
        |s| u64::from(s.store_unavailable),
    ),
    (
        "roost_store_queued_deltas",
        "Changes waiting for the session store writer (its lag).",
        |s| s.store_queued_deltas,
    ),
];

/// Reads the broker's counters at each scrape.
#[derive(Debug)]
struct BrokerCollector {
    broker: BrokerHandle,
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let stats = self.broker.stats();
        for (name, help, read) in COUNTERS {
            let metric = ConstCounter::new(read(&stats));
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        for (name, help, read) in GAUGES {
            gauge(&mut encoder, name, help, as_i64(read(&stats)))?;
        }
        // Drops by reason: the broker counts all dropped deliveries, and
        // those withheld by the ACL among them.
        {
            let mut dropped = encoder.encode_descriptor(
                "roost_messages_dropped",
                "Deliveries dropped, by reason: not_authorized (the subscriber may not read the \
                 topic), queue (full queue or outbox, expired in the queue, or too large for the client).",
                None,
                MetricType::Counter,
            )?;
            let not_authorized = stats.deliveries_not_authorized;
            let queue = stats.messages_dropped.saturating_sub(not_authorized);
            for (reason, value) in [("not_authorized", not_authorized), ("queue", queue)] {
                ConstCounter::new(value).encode(dropped.encode_family(&[("reason", reason)])?)?;
            }
        }
        crate::metrics_detail::encode(&self.broker, &stats, &mut encoder)?;
        gauge(
            &mut encoder,
            "roost_store_outage_seconds",
            "How long the current session store outage has lasted (0 when none).",
            as_i64(stats.store_outage_ms / 1_000),
        )?;
        let uptime = std::time::SystemTime::now()
            .duration_since(self.broker.started_at())
            .map_or(0, |d| d.as_secs());
        if self.broker.is_clustered() {
            // Which node this scrape is of, for joins in PromQL
            // (`* on(instance) group_left(node) roost_cluster_node_info`).
            let node = self.broker.node_name();
            let mut info = encoder.encode_descriptor(
                "roost_cluster_node_info",
                "This broker's cluster node id and version (always 1).",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(1i64).encode(info.encode_family(&[
                ("node", node.as_str()),
                ("version", env!("CARGO_PKG_VERSION")),
            ])?)?;
        }
        gauge(
            &mut encoder,
            "roost_uptime_seconds",
            "Seconds since the broker started.",
            as_i64(uptime),
        )?;
        Ok(())
    }
}

/// The registry with the broker's collector.
pub(crate) fn registry(broker: BrokerHandle) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(BrokerCollector { broker }));
    registry
}

/// OpenMetrics text → Prometheus text format 0.0.4: a counter family is
/// named `x` with samples `x_total` in OpenMetrics, `x_total` throughout
/// in the classic format; `# EOF` and `# UNIT` are OpenMetrics only.
pub(crate) fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|rest| ("# HELP ", rest))
            .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("# TYPE ", rest)));
        match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{kind}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `GET /metrics`: OpenMetrics when the scraper accepts it, else the
/// classic text format.
pub(crate) async fn serve(State(state): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    let mut text = String::with_capacity(8 * 1024);
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response();
    }
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
            to_prometheus_text(&text),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::to_prometheus_text;

    #[test]
    fn counters_are_renamed_for_the_classic_format() {
        let om = "# HELP a_b Help.\n# TYPE a_b counter\na_b_total 5\n# HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_b_total Help.\n# TYPE a_b_total counter\na_b_total 5\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
    }
}
