//! # roost-bench
//!
//! An MQTT load generator for Roost and the brokers it is compared with.
//! `conn`, `sub` and `pub` follow emqtt-bench's flags; `pubsub` runs
//! publishers and subscribers together and measures end-to-end latency,
//! loss, duplicates and reordering from a 16-byte header in every payload.
//!
//! ```text
//!  args ─▶ plan (this process's clients and roles)
//!            │
//!            ▼
//!  orchestrate: Connect ─▶ Subscribe ─▶ Run(window) ─▶ drain ─▶ Stop
//!            │   (watch channel; barriers across --procs children)
//!            ▼
//!  client tasks: client::connect ─▶ Session (reads, acks, accounts)
//!                                   └▶ publisher (pre-encoded batches)
//!            │
//!            ▼
//!  RawResult (mergeable) ─▶ Report (human summary / --json)
//! ```
//!
//! The load generator shares its cores with the broker it measures, so it
//! is built to be cheap per message: PUBLISH packets are encoded once and
//! patched, writes are batched, reads are 64 KiB, the clock is read once
//! per batch, and one single-threaded runtime is the default.
//! `--broker-pid` samples the broker's CPU time and RSS at every phase so
//! results can be stated per message, per connection and per subscription.
//!
//! The `roost` binary exposes this as `roost bench …`; the `roost-bench`
//! binary is the same thing standalone.
#![warn(missing_docs)]
// Tests may unwrap: a panic there is a failed test.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod args;
pub mod backlog;
pub mod client;
pub mod clock;
mod coord;
pub mod hrtimer;
pub mod latency;
mod multiproc;
mod orchestrate;
pub mod pace_report;
pub mod pacing;
pub mod payload;
pub mod phase;
pub mod plan;
pub mod probe;
pub mod procstat;
pub mod publisher;
pub mod raw;
pub mod report;
pub mod seq;
pub mod session;
pub mod stats;
pub mod target;
pub mod template;
pub mod transport;

pub use args::{
    BenchArgs, BenchCommand, CommonArgs, ConnArgs, PubArgs, PubSubArgs, SubArgs, TopicMode,
};
pub use multiproc::child_args;

use anyhow::{Context, bail};

use crate::coord::{Coordinator, RESULT};
use crate::plan::Slice;
use crate::probe::BrokerProbe;
use crate::report::Report;

/// Runs a benchmark scenario to completion and prints its report (a human
/// summary on stdout, or JSON on stdout and the summary on stderr with
/// `--json`). Builds its own tokio runtime.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let cmd = &args.command;
    let common = cmd.common();
    if common.procs == 0 {
        bail!("--procs must be at least 1");
    }
    let slice = match &common.child {
        Some(text) => Slice::parse(text)?,
        None => Slice::single(),
    };
    if common.procs > 1 && !slice.is_child() {
        return multiproc::run_parent(cmd);
    }
    let plan = plan::build(cmd, slice)?;
    let runtime = build_runtime(common.threads)?;
    if slice.is_child() {
        let (raw, _) = runtime.block_on(orchestrate::run(plan, Coordinator::child()))?;
        let json = serde_json::to_string(&raw).context("encode the result")?;
        return coord::emit(&format!("{RESULT}{json}"));
    }
    let probe = BrokerProbe::new(&common.broker_pid)?;
    let (raw, samples) = runtime.block_on(orchestrate::run(plan, Coordinator::local(probe)))?;
    print_report(&Report::new(cmd, &raw, &samples), common.json)
}

fn build_runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// Prints the report: JSON on stdout plus the summary on stderr with
/// `--json`, else the summary on stdout. A run in which no client could
/// connect is an error (exit status 1) once reported.
fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        eprint!("{}", report.human());
        let text = serde_json::to_string_pretty(report).context("encode the report")?;
        println!("{text}");
    } else {
        print!("{}", report.human());
    }
    let connect = &report.connect;
    if connect.attempted > 0 && connect.ok == 0 {
        let first = report.errors.keys().next().map_or("", String::as_str);
        bail!(
            "none of the {} connections succeeded (first error: {first})",
            connect.attempted
        );
    }
    Ok(())
}
