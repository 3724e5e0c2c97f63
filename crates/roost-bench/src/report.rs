//! The figures users see, derived from the (merged) raw result and the
//! broker samples: rates over the measurement window, latency percentiles,
//! loss, and broker cost per message / connection / subscription. Printed
//! as a human summary and, with `--json`, as one JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::args::{BenchCommand, TopicMode};
use crate::clock::secs_between;
use crate::latency::{LatencyHist, LatencySummary};
use crate::pace_report::{self, PacingReport};
use crate::probe::Samples;
use crate::raw::{OnceRaw, RawResult};

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `conn`, `sub`, `pub` or `pubsub`.
    pub scenario: String,
    /// The parameters that shape the load.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Load-generator processes.
    pub procs: u64,
    /// Seconds of the measurement window (after warm-up).
    pub window_s: f64,
    /// Connect phase.
    pub connect: PhaseReport,
    /// Subscribe phase (scenarios that subscribe).
    pub subscribe: Option<PhaseReport>,
    /// Publishers (scenarios that publish).
    pub publish: Option<PublishReport>,
    /// Receivers (scenarios that subscribe).
    pub receive: Option<ReceiveReport>,
    /// Broker resource use (with `--broker-pid`).
    pub broker: Option<BrokerReport>,
    /// CPU seconds the load generator used (all processes).
    pub loadgen_cpu_s: f64,
    /// Seconds the load generator's threads spent runnable but waiting for a CPU.
    pub loadgen_wait_s: f64,
    /// Established connections that broke during the run.
    pub lost_connections: u64,
    /// Errors by message.
    pub errors: BTreeMap<String, u64>,
}

/// A once-per-client phase: connect or subscribe.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// Clients that tried.
    pub attempted: u64,
    /// Clients that succeeded.
    pub ok: u64,
    /// Clients that failed.
    pub failed: u64,
    /// From the first attempt to the last success, seconds.
    pub duration_s: f64,
    /// Successes per second over that time (conn/s or SUBACK/s).
    pub rate_per_s: f64,
    /// Per-client latency (connect: TCP connect start → CONNACK; subscribe: SUBSCRIBE → SUBACK).
    pub latency_us: LatencySummary,
}

/// Publishing side.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// Publishers.
    pub clients: u64,
    /// Messages written in the whole run.
    pub sent: u64,
    /// Messages written in the measurement window.
    pub sent_in_window: u64,
    /// Publish rate over the window, msg/s.
    pub rate_per_s: f64,
    /// QoS 1/2 messages acknowledged.
    pub acked: u64,
    /// QoS 1/2 messages refused by the broker.
    pub rejected: u64,
    /// QoS 1/2 messages never acknowledged.
    pub unacked: u64,
    /// Worst delay behind the open-loop schedule, ms (0 when not paced).
    pub max_schedule_lag_ms: f64,
    /// Pacing accuracy in the window (paced runs only).
    pub pacing: Option<PacingReport>,
}

/// Receiving side.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiveReport {
    /// Receivers.
    pub clients: u64,
    /// Messages received in the whole run (duplicates included).
    pub received: u64,
    /// Messages received in the measurement window.
    pub received_in_window: u64,
    /// Receive rate over the window, msg/s (all receivers together).
    pub rate_per_s: f64,
    /// Distinct messages received.
    pub unique: u64,
    /// Deliveries expected from what was sent (pubsub only).
    pub expected: Option<u64>,
    /// Expected deliveries that never arrived (pubsub only).
    pub lost: Option<u64>,
    /// `lost / expected`.
    pub loss_ratio: Option<f64>,
    /// True if messages were still arriving when the drain timeout
    /// (`--drain-timeout`) ended the run: `lost` includes late messages.
    pub drain_timed_out: bool,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Messages that arrived after a later one of the same publisher.
    pub reordered: u64,
    /// Sequence numbers missing below the highest received, per publisher and receiver.
    pub gaps: u64,
    /// Payloads without a benchmark header (ignored for latency and loss).
    pub foreign: u64,
    /// End-to-end latency of messages sent in the window (publisher write → subscriber read).
    pub latency_us: LatencySummary,
}

/// Broker resource use from /proc samples.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BrokerReport {
    /// Broker CPU seconds during the measurement window.
    pub cpu_s_window: Option<f64>,
    /// Broker CPU use during the window as a fraction of one core (near 1.0
    /// for a single-threaded broker means it was the bottleneck).
    pub cpu_cores_window: Option<f64>,
    /// Average number of broker threads runnable but waiting for a CPU during
    /// the window (> 0.1 means the machine, not the broker, set the pace).
    pub cpu_wait_cores_window: Option<f64>,
    /// Broker CPU seconds per million messages in the window.
    pub cpu_s_per_million_msgs: Option<f64>,
    /// The same per process, in the order of `--broker-pid`, when several
    /// were given (e.g. each cluster node and Redis): which one the CPU is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_s_per_million_msgs_each: Vec<f64>,
    /// What the messages above are: "delivered" (received by subscribers) or "published".
    pub msgs_basis: Option<String>,
    /// Broker CPU milliseconds per connection during the connect phase.
    pub cpu_ms_per_connection: Option<f64>,
    /// Broker CPU microseconds per subscription during the subscribe phase.
    pub cpu_us_per_subscription: Option<f64>,
    /// RSS growth per connection over the connect phase, bytes.
    pub rss_per_connection_bytes: Option<f64>,
    /// RSS growth per connection from before the run to its end, for runs
    /// whose clients only connect and stay idle (`conn`), bytes: what an
    /// idle client costs once the broker has settled (e.g. hibernated it).
    pub rss_per_idle_connection_bytes: Option<f64>,
    /// RSS growth per subscription over the subscribe phase, bytes.
    pub rss_per_subscription_bytes: Option<f64>,
    /// RSS before the run, bytes.
    pub rss_base_bytes: Option<u64>,
    /// RSS when every client was connected, bytes.
    pub rss_connected_bytes: Option<u64>,
    /// RSS when every client was subscribed, bytes.
    pub rss_subscribed_bytes: Option<u64>,
    /// RSS at the end of the window, bytes.
    pub rss_end_bytes: Option<u64>,
    /// Peak RSS of the broker process so far, bytes.
    pub hwm_bytes: Option<u64>,
}

impl Report {
    /// Derives the report.
    pub fn new(cmd: &BenchCommand, raw: &RawResult, samples: &Samples) -> Self {
        let window_s = secs_between(raw.window.warm_ns, raw.window.end_ns);
        let subscribes = matches!(cmd, BenchCommand::Sub(_) | BenchCommand::Pubsub(_));
        let publishes = matches!(cmd, BenchCommand::Pub(_) | BenchCommand::Pubsub(_));
        let publish = publishes.then(|| PublishReport {
            clients: raw.publish.clients,
            sent: raw.publish.sent,
            sent_in_window: raw.publish.sent_window,
            rate_per_s: per_second(raw.publish.sent_window, window_s),
            acked: raw.publish.acked,
            rejected: raw.publish.rejected,
            unacked: raw.publish.unacked,
            max_schedule_lag_ms: raw.publish.max_lag_ns as f64 / 1e6,
            pacing: pace_report::pacing_report(cmd, raw),
        });
        let receive = subscribes.then(|| receive_report(cmd, raw, window_s));
        Self {
            scenario: cmd.name().to_owned(),
            params: params(cmd),
            procs: raw.procs,
            window_s,
            connect: phase_report(&raw.connect),
            subscribe: subscribes.then(|| phase_report(&raw.subscribe)),
            publish,
            receive,
            broker: broker_report(raw, samples),
            loadgen_cpu_s: raw.loadgen_cpu_s,
            loadgen_wait_s: raw.loadgen_wait_s,
            lost_connections: raw.lost_connections,
            errors: raw.errors.clone(),
        }
    }

    /// The human summary.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
            .collect();
        let _ = writeln!(
            s,
            "{}  ({})  procs={}",
            self.scenario,
            params.join(" "),
            self.procs
        );
        let c = &self.connect;
        let _ = writeln!(
            s,
            "connect    {}/{} ok, {} failed, in {:.2} s = {:.0} conn/s; handshake {}",
            c.ok,
            c.attempted,
            c.failed,
            c.duration_s,
            c.rate_per_s,
            latency_line(&c.latency_us)
        );
        if let Some(sub) = &self.subscribe {
            let _ = writeln!(
                s,
                "subscribe  {}/{} granted, {} failed, in {:.2} s = {:.0} SUBACK/s; SUBACK {}",
                sub.ok,
                sub.attempted,
                sub.failed,
                sub.duration_s,
                sub.rate_per_s,
                latency_line(&sub.latency_us)
            );
        }
        if let Some(p) = &self.publish {
            publish_lines(&mut s, p, self.window_s);
        }
        if let Some(r) = &self.receive {
            receive_lines(&mut s, r);
        }
        if let Some(b) = &self.broker {
            let _ = writeln!(s, "broker     {}", broker_parts(b).join("; "));
        }
        let _ = writeln!(
            s,
            "loadgen    CPU {:.2} s, {:.2} s waiting for a CPU; {} connections lost",
            self.loadgen_cpu_s, self.loadgen_wait_s, self.lost_connections
        );
        for (message, count) in &self.errors {
            let _ = writeln!(s, "error      {count} × {message}");
        }
        s
    }
}

/// The publishers' line (and the pacing line when they were paced).
fn publish_lines(s: &mut String, p: &PublishReport, window_s: f64) {
    let _ = writeln!(
        s,
        "publish    {} clients sent {} ({} in the {:.1} s window = {:.0} msg/s); acked {}, rejected {}, unacked {}; max schedule lag {:.1} ms",
        p.clients,
        p.sent,
        p.sent_in_window,
        window_s,
        p.rate_per_s,
        p.acked,
        p.rejected,
        p.unacked,
        p.max_schedule_lag_ms
    );
    if let Some(pacing) = &p.pacing {
        let _ = writeln!(s, "{}", pace_report::human_line(pacing));
    }
}

/// The receivers' line, and their latency when any was measured.
fn receive_lines(s: &mut String, r: &ReceiveReport) {
    let loss = match (r.lost, r.loss_ratio) {
        (Some(lost), Some(ratio)) => format!(
            "lost {lost} ({:.4}%{})",
            ratio * 100.0,
            if r.drain_timed_out {
                ", still arriving at the drain timeout"
            } else {
                ""
            }
        ),
        _ => format!("gaps {}", r.gaps),
    };
    let _ = writeln!(
        s,
        "receive    {} clients received {} ({} in window = {:.0} msg/s); unique {}; {loss}; duplicates {}; reordered {}",
        r.clients,
        r.received,
        r.received_in_window,
        r.rate_per_s,
        r.unique,
        r.duplicates,
        r.reordered
    );
    if r.latency_us.count > 0 {
        let _ = writeln!(s, "latency    {}", latency_line(&r.latency_us));
    }
}

/// The broker's figures that were measured, each as a phrase.
fn broker_parts(b: &BrokerReport) -> Vec<String> {
    let mut parts = Vec::new();
    if let (Some(cpu), Some(per_m), Some(basis)) =
        (b.cpu_s_window, b.cpu_s_per_million_msgs, &b.msgs_basis)
    {
        parts.push(format!(
            "CPU {cpu:.2} s in window ({:.0}% of a core, {:.0}% waiting for a CPU) = {per_m:.3} CPU-s per million {basis}",
            b.cpu_cores_window.unwrap_or(0.0) * 100.0,
            b.cpu_wait_cores_window.unwrap_or(0.0) * 100.0
        ));
    }
    if let Some(v) = b.cpu_ms_per_connection {
        parts.push(format!("{v:.3} CPU-ms per connection"));
    }
    if let Some(v) = b.rss_per_connection_bytes {
        parts.push(format!("{v:.0} B RSS per connection"));
    }
    if let Some(v) = b.rss_per_idle_connection_bytes {
        parts.push(format!("{v:.0} B RSS per idle connection at the end"));
    }
    if let Some(v) = b.cpu_us_per_subscription {
        parts.push(format!("{v:.1} CPU-µs per subscription"));
    }
    if let Some(v) = b.rss_per_subscription_bytes {
        parts.push(format!("{v:.0} B RSS per subscription"));
    }
    if let Some(v) = b.rss_end_bytes.or(b.rss_connected_bytes) {
        parts.push(format!("RSS {}", mib(v)));
    }
    if let Some(v) = b.hwm_bytes {
        parts.push(format!("peak {}", mib(v)));
    }
    parts
}

fn receive_report(cmd: &BenchCommand, raw: &RawResult, window_s: f64) -> ReceiveReport {
    let r = &raw.receive;
    let expected = match cmd {
        BenchCommand::Pubsub(a) => Some(match a.topic_mode {
            TopicMode::Pairs => raw.publish.sent,
            TopicMode::Shared | TopicMode::Fanout => {
                raw.publish.sent.saturating_mul(raw.subscribe.ok)
            }
        }),
        _ => None,
    };
    let lost = expected.map(|e| e.saturating_sub(r.seq.unique));
    ReceiveReport {
        clients: r.clients,
        received: r.received,
        received_in_window: r.received_window,
        rate_per_s: per_second(r.received_window, window_s),
        unique: r.seq.unique,
        expected,
        lost,
        loss_ratio: expected
            .zip(lost)
            .map(|(e, l)| if e == 0 { 0.0 } else { l as f64 / e as f64 }),
        drain_timed_out: raw.drain_timed_out,
        duplicates: r.seq.duplicates,
        reordered: r.seq.reordered,
        gaps: r.seq.gaps,
        foreign: r.foreign,
        latency_us: LatencyHist::from_buckets(&raw.e2e_latency).summary(),
    }
}

fn phase_report(raw: &OnceRaw) -> PhaseReport {
    let duration_s = secs_between(raw.first_ns, raw.last_ns);
    PhaseReport {
        attempted: raw.attempted,
        ok: raw.ok,
        failed: raw.failed,
        duration_s,
        rate_per_s: per_second(raw.ok, duration_s),
        latency_us: LatencyHist::from_buckets(&raw.latency).summary(),
    }
}

fn broker_report(raw: &RawResult, samples: &Samples) -> Option<BrokerReport> {
    if samples.0.is_empty() {
        return None;
    }
    let base = samples.get("base");
    let connected = samples.get("connected");
    let subscribed = samples.get("subscribed");
    let warm = samples.get("warm");
    let end = samples.get("end");
    let mut b = BrokerReport {
        rss_base_bytes: base.map(|s| s.rss_bytes),
        rss_connected_bytes: connected.map(|s| s.rss_bytes),
        rss_subscribed_bytes: subscribed.map(|s| s.rss_bytes),
        rss_end_bytes: end.map(|s| s.rss_bytes),
        hwm_bytes: samples.0.iter().map(|(_, s)| s.hwm_bytes).max(),
        ..BrokerReport::default()
    };
    if let (Some(w), Some(e)) = (warm, end) {
        let cpu = (e.cpu_s - w.cpu_s).max(0.0);
        let (msgs, basis) = if raw.receive.clients > 0 {
            (raw.receive.received_window, "delivered")
        } else {
            (raw.publish.sent_window, "published")
        };
        if raw.publish.clients > 0 || raw.receive.received > 0 {
            b.cpu_s_window = Some(cpu);
            let secs = secs_between(raw.window.warm_ns, raw.window.end_ns);
            b.cpu_cores_window = (secs > 0.0).then(|| cpu / secs);
            b.cpu_wait_cores_window =
                (secs > 0.0).then(|| (e.runqueue_wait_s - w.runqueue_wait_s).max(0.0) / secs);
            b.msgs_basis = Some(basis.to_owned());
            b.cpu_s_per_million_msgs = (msgs > 0).then(|| cpu * 1e6 / msgs as f64);
            let (warm, end) = (samples.each("warm"), samples.each("end"));
            if msgs > 0 && warm.len() == end.len() {
                b.cpu_s_per_million_msgs_each = warm
                    .iter()
                    .zip(&end)
                    .map(|(w, e)| (e.cpu_s - w.cpu_s).max(0.0) * 1e6 / msgs as f64)
                    .collect();
            }
        }
    }
    let conns = raw.connect.ok;
    if let (Some(b0), Some(c)) = (base, connected)
        && conns > 0
    {
        b.cpu_ms_per_connection = Some((c.cpu_s - b0.cpu_s).max(0.0) * 1e3 / conns as f64);
        b.rss_per_connection_bytes =
            Some((c.rss_bytes as f64 - b0.rss_bytes as f64) / conns as f64);
        let idle_only = raw.publish.clients == 0 && raw.subscribe.attempted == 0;
        if let Some(e) = end
            && idle_only
        {
            b.rss_per_idle_connection_bytes =
                Some((e.rss_bytes as f64 - b0.rss_bytes as f64) / conns as f64);
        }
    }
    let subs = raw.subscribe.ok;
    if let (Some(c), Some(s)) = (connected, subscribed)
        && subs > 0
    {
        b.cpu_us_per_subscription = Some((s.cpu_s - c.cpu_s).max(0.0) * 1e6 / subs as f64);
        b.rss_per_subscription_bytes =
            Some((s.rss_bytes as f64 - c.rss_bytes as f64) / subs as f64);
    }
    Some(b)
}

fn params(cmd: &BenchCommand) -> BTreeMap<String, serde_json::Value> {
    use serde_json::json;
    let c = cmd.common();
    let mut p = BTreeMap::new();
    p.insert("version".into(), json!(c.version));
    p.insert("pacer".into(), json!(c.pacer));
    match cmd {
        BenchCommand::Conn(a) => {
            p.insert("clients".into(), json!(a.count));
            p.insert("duration_s".into(), json!(a.duration_s));
        }
        BenchCommand::Sub(a) => {
            p.insert("clients".into(), json!(a.count));
            p.insert("topic".into(), json!(a.topic));
            p.insert("qos".into(), json!(a.qos));
        }
        BenchCommand::Pub(a) => {
            p.insert("clients".into(), json!(a.count));
            p.insert("topic".into(), json!(a.topic));
            p.insert("qos".into(), json!(a.qos));
            p.insert("size".into(), json!(a.size));
            p.insert("interval_ms".into(), json!(a.msg_interval_ms));
            p.insert("limit".into(), json!(a.limit));
            p.insert("inflight".into(), json!(a.inflight));
        }
        BenchCommand::Pubsub(a) => {
            p.insert("pubs".into(), json!(a.pubs));
            p.insert("subs".into(), json!(a.subs));
            p.insert("topic_mode".into(), json!(a.topic_mode));
            p.insert("qos".into(), json!(a.qos));
            p.insert("size".into(), json!(a.size));
            p.insert("rate".into(), json!(a.rate));
            p.insert("duration_s".into(), json!(a.duration_s));
            p.insert("warmup_s".into(), json!(a.warmup_s));
            p.insert("inflight".into(), json!(a.inflight));
            p.insert("max_backlog".into(), json!(a.max_backlog));
        }
    }
    p
}

fn per_second(count: u64, secs: f64) -> f64 {
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

fn latency_line(l: &LatencySummary) -> String {
    if l.count == 0 {
        return "n/a".to_owned();
    }
    format!(
        "p50 {} p90 {} p99 {} p99.9 {} max {} (n={})",
        dur(l.p50_us),
        dur(l.p90_us),
        dur(l.p99_us),
        dur(l.p999_us),
        dur(l.max_us),
        l.count
    )
}

fn dur(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procstat::ProcSample;

    fn cpu(cpu_s: f64) -> ProcSample {
        ProcSample {
            cpu_s,
            ..ProcSample::default()
        }
    }

    #[test]
    fn several_broker_pids_get_their_window_cpu_each_in_the_order_given() {
        let mut raw = RawResult::default();
        raw.receive.clients = 1;
        raw.receive.received = 2_000_000;
        raw.receive.received_window = 2_000_000;
        raw.window.warm_ns = 1_000_000_000;
        raw.window.end_ns = 9_000_000_000;
        let samples = Samples(vec![
            ("warm".into(), cpu(10.0)),
            ("warm#0".into(), cpu(7.0)),
            ("warm#1".into(), cpu(2.0)),
            ("warm#2".into(), cpu(1.0)),
            ("end".into(), cpu(13.1)),
            ("end#0".into(), cpu(10.0)),
            ("end#1".into(), cpu(2.0)),
            ("end#2".into(), cpu(1.1)),
        ]);
        let b = broker_report(&raw, &samples).expect("a report");
        let total = b.cpu_s_per_million_msgs.expect("the sum");
        assert!((total - 1.55).abs() < 1e-9, "{total}");
        let each = &b.cpu_s_per_million_msgs_each;
        assert_eq!(each.len(), 3, "{each:?}");
        for (got, want) in each.iter().zip([1.5, 0.0, 0.05]) {
            assert!((got - want).abs() < 1e-9, "{each:?}");
        }
        // One process: no split.
        let one = Samples(vec![("warm".into(), cpu(1.0)), ("end".into(), cpu(2.0))]);
        let b = broker_report(&raw, &one).expect("a report");
        assert!(b.cpu_s_per_million_msgs_each.is_empty());
    }
}
