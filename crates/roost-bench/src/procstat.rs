//! CPU time and memory of a process, from /proc: how much the broker spent
//! on a phase (utime+stime delta over clock ticks) and how much it holds
//! (VmRSS, VmHWM), and how long its threads sat runnable waiting for a CPU
//! (schedstat): on a shared machine that tells a starved broker from a slow
//! one. Also used on ourselves to show whether the load generator was the
//! bottleneck.

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One reading of a process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size, bytes.
    pub hwm_bytes: u64,
    /// Seconds the live threads spent runnable but waiting for a CPU
    /// (sum over /proc/PID/task/*/schedstat; 0 if unavailable).
    #[serde(default)]
    pub runqueue_wait_s: f64,
}

/// Reads the resource use of `pid`, or of this process when `None`.
pub fn sample(pid: Option<u32>) -> anyhow::Result<ProcSample> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat"))
        .with_context(|| format!("cannot read {dir}/stat (is the process running?)"))?;
    let status = std::fs::read_to_string(format!("{dir}/status"))
        .with_context(|| format!("cannot read {dir}/status"))?;
    let ticks = parse_cpu_ticks(&stat).with_context(|| format!("unexpected {dir}/stat format"))?;
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Ok(ProcSample {
        cpu_s: ticks as f64 / per_second as f64,
        rss_bytes: parse_status_kb(&status, "VmRSS:").unwrap_or(0) * 1024,
        hwm_bytes: parse_status_kb(&status, "VmHWM:").unwrap_or(0) * 1024,
        runqueue_wait_s: runqueue_wait_ns(&dir) as f64 / 1e9,
    })
}

/// Sum of the run-queue wait of every thread of the process, ns.
fn runqueue_wait_ns(dir: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("{dir}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| parse_schedstat_wait_ns(&text))
        .sum()
}

/// The second field of /proc/PID/task/TID/schedstat: time spent waiting on
/// a run queue, ns.
pub fn parse_schedstat_wait_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime (fields 14 and 15 of /proc/PID/stat) in clock ticks. The
/// command name (field 2) may contain spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   123 kB` line of /proc/PID/status, in kB.
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
