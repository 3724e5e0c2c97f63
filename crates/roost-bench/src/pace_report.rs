//! How well the paced publishers kept their schedule, as reported: the lag
//! of each paced write behind its due time, and the gaps between
//! consecutive paced writes of a process next to the planned gap. Evenly
//! spread sends have gaps close to the plan; bunched sends (many tiny gaps,
//! then a long one) make every message wait behind its burst.

use std::fmt::Write as _;

use serde::Serialize;

use crate::args::BenchCommand;
use crate::latency::{LatencyHist, LatencySummary};
use crate::pacing::PacerKind;
use crate::raw::RawResult;

/// Pacing accuracy of a paced run (measurement window only).
#[derive(Debug, Clone, Serialize)]
pub struct PacingReport {
    /// The clock publishers slept on.
    pub pacer: PacerKind,
    /// Planned time between two paced writes of one process, µs: an
    /// average. The schedule is even over all processes; with `--procs` each
    /// process's publishers cover a contiguous part of every interval, so a
    /// process's own gaps alternate between shorter and longer ones.
    pub planned_gap_us: Option<f64>,
    /// Delay of each paced write behind its message's due time.
    pub lag_us: LatencySummary,
    /// Time between consecutive paced writes of a process.
    pub gap_us: GapSummary,
}

/// Distribution of the gaps between writes; the low percentiles show bunching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GapSummary {
    /// Number of gaps.
    pub count: u64,
    /// 1st percentile.
    pub p1_us: f64,
    /// 10th percentile.
    pub p10_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest gap.
    pub max_us: f64,
}

impl GapSummary {
    /// Summarises a histogram of gaps in nanoseconds.
    pub fn of(hist: &LatencyHist) -> Self {
        Self {
            count: hist.count(),
            p1_us: hist.quantile_us(0.01),
            p10_us: hist.quantile_us(0.10),
            p50_us: hist.quantile_us(0.50),
            p90_us: hist.quantile_us(0.90),
            p99_us: hist.quantile_us(0.99),
            max_us: hist.quantile_us(1.0),
        }
    }
}

/// The pacing report, when publishers were paced.
pub fn pacing_report(cmd: &BenchCommand, raw: &RawResult) -> Option<PacingReport> {
    let pacer = raw.pacer?;
    Some(PacingReport {
        pacer,
        planned_gap_us: planned_gap_us(cmd, raw.procs.max(1)),
        lag_us: LatencyHist::from_buckets(&raw.schedule_lag).summary(),
        gap_us: GapSummary::of(&LatencyHist::from_buckets(&raw.send_gaps)),
    })
}

/// Planned time between two paced writes of one of `procs` processes, µs:
/// the offered rate spread over the processes.
pub fn planned_gap_us(cmd: &BenchCommand, procs: u64) -> Option<f64> {
    let rate_per_s = match cmd {
        BenchCommand::Pubsub(a) if a.rate > 0 => a.rate as f64,
        BenchCommand::Pub(a) if a.msg_interval_ms > 0 => {
            a.count as f64 * 1e3 / a.msg_interval_ms as f64
        }
        _ => return None,
    };
    (rate_per_s > 0.0).then(|| procs as f64 * 1e6 / rate_per_s)
}

/// The human summary line.
pub fn human_line(p: &PacingReport) -> String {
    let mut s = format!(
        "pacing     {}: lag p50 {:.0} µs p99 {:.0} µs p99.9 {:.0} µs max {:.0} µs; gaps between writes p1 {:.1} p10 {:.1} p50 {:.1} p90 {:.1} p99 {:.1} µs",
        serde_json::to_value(p.pacer)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        p.lag_us.p50_us,
        p.lag_us.p99_us,
        p.lag_us.p999_us,
        p.lag_us.max_us,
        p.gap_us.p1_us,
        p.gap_us.p10_us,
        p.gap_us.p50_us,
        p.gap_us.p90_us,
        p.gap_us.p99_us,
    );
    if let Some(planned) = p.planned_gap_us {
        let _ = write!(s, " (planned {planned:.1} µs)");
    }
    s
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::BenchArgs;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn cmd(args: &[&str]) -> BenchCommand {
        let mut argv = vec!["roost-bench"];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).bench.command
    }

    #[test]
    fn the_planned_gap_is_the_rate_spread_over_the_processes() {
        let p2p = cmd(&[
            "pubsub", "--pubs", "100", "--subs", "100", "--rate", "20000",
        ]);
        assert_eq!(planned_gap_us(&p2p, 1), Some(50.0));
        assert_eq!(planned_gap_us(&p2p, 2), Some(100.0));
        // emqtt-bench style: 100 clients, one message each every 10 ms.
        let publ = cmd(&["pub", "-c", "100", "-I", "10", "-t", "t"]);
        assert_eq!(planned_gap_us(&publ, 1), Some(100.0));
    }

    #[test]
    fn unpaced_runs_have_no_plan_and_no_report() {
        let max = cmd(&["pubsub", "--pubs", "1", "--subs", "1"]);
        assert_eq!(planned_gap_us(&max, 1), None);
        assert!(pacing_report(&max, &RawResult::default()).is_none());
    }

    #[test]
    fn the_report_summarises_lag_and_gaps_of_the_window() {
        let p2p = cmd(&[
            "pubsub", "--pubs", "100", "--subs", "100", "--rate", "20000",
        ]);
        let mut gaps = LatencyHist::new();
        // Bunched: 19 writes 5 µs apart, then one 905 µs later, per ms.
        gaps.record_n(5_000, 19 * 10);
        gaps.record_n(905_000, 10);
        let mut lag = LatencyHist::new();
        lag.record_n(20_000, 100);
        let raw = RawResult {
            procs: 1,
            pacer: Some(PacerKind::Tokio),
            schedule_lag: lag.to_buckets(),
            send_gaps: gaps.to_buckets(),
            ..RawResult::default()
        };
        let r = pacing_report(&p2p, &raw).unwrap();
        assert_eq!(r.pacer, PacerKind::Tokio);
        assert_eq!(r.planned_gap_us, Some(50.0));
        assert_eq!(r.lag_us.count, 100);
        assert!((r.lag_us.p50_us - 20.0).abs() < 0.1);
        assert_eq!(r.gap_us.count, 200);
        assert!((r.gap_us.p50_us - 5.0).abs() < 0.01);
        assert!(r.gap_us.p99_us > 900.0);
        let line = human_line(&r);
        assert!(
            line.starts_with("pacing     tokio: lag p50 20 µs"),
            "{line}"
        );
        assert!(line.ends_with("(planned 50.0 µs)"), "{line}");
    }
}
