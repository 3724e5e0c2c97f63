//! Phase barriers. In one process a barrier is a point where the broker is
//! sampled. In a `--procs` run each child prints `READY <phase>` on stdout
//! and waits for `GO <phase> <monotonic ns>` on stdin; the parent answers
//! once every child is ready, so all processes connect, subscribe and start
//! publishing together, and the broker is sampled between the phases.
//! The child's result is one `RESULT <json>` line at the end.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use crate::clock::now_ns;
use crate::probe::{BrokerProbe, Samples};

/// Prefix of a child's "ready for phase" line.
pub(crate) const READY: &str = "READY ";
/// Prefix of the parent's "go" line.
pub(crate) const GO: &str = "GO ";
/// Prefix of a child's result line.
pub(crate) const RESULT: &str = "RESULT ";

/// How this process meets the phase boundaries.
#[derive(Debug)]
pub(crate) enum Coordinator {
    /// A single process: barriers only sample the broker.
    Local {
        /// The broker to sample, if any.
        probe: Option<BrokerProbe>,
        /// Samples taken so far.
        samples: Samples,
    },
    /// A child of a `--procs` run.
    Child {
        /// Lines read from stdin.
        lines: mpsc::UnboundedReceiver<String>,
    },
}

impl Coordinator {
    /// A single-process coordinator; takes the `base` sample now.
    pub(crate) fn local(probe: Option<BrokerProbe>) -> Self {
        let mut samples = Samples::default();
        if let Some(p) = &probe {
            p.sample("base", &mut samples);
        }
        Self::Local { probe, samples }
    }

    /// A child coordinator reading the parent's lines from stdin (on a
    /// thread: stdin is blocking).
    pub(crate) fn child() -> Self {
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self::Child { lines }
    }

    /// Waits until every process reached phase `name`; returns the common
    /// start time of the next phase.
    pub(crate) async fn barrier(&mut self, name: &str) -> anyhow::Result<u64> {
        match self {
            Self::Local { probe, samples } => {
                if let Some(p) = probe {
                    p.sample(name, samples);
                }
                Ok(now_ns())
            }
            Self::Child { lines } => {
                emit(&format!("{READY}{name}"))?;
                loop {
                    let Some(line) = lines.recv().await else {
                        bail!("the parent process went away during phase {name}");
                    };
                    if let Some((phase, at)) = parse_go(&line)
                        && phase == name
                    {
                        return Ok(at);
                    }
                }
            }
        }
    }

    /// Samples the broker under `name` (single process only; the parent
    /// samples for its children).
    pub(crate) fn sample(&mut self, name: &str) {
        if let Self::Local {
            probe: Some(p),
            samples,
        } = self
        {
            p.sample(name, samples);
        }
    }

    /// The samples taken (none for a child).
    pub(crate) fn into_samples(self) -> Samples {
        match self {
            Self::Local { samples, .. } => samples,
            Self::Child { .. } => Samples::default(),
        }
    }
}

/// Writes one protocol line to stdout and flushes it.
pub(crate) fn emit(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("write to the parent")?;
    out.flush().context("flush to the parent")
}

/// Parses `GO <phase> <ns>`.
pub(crate) fn parse_go(line: &str) -> Option<(&str, u64)> {
    let rest = line.strip_prefix(GO)?;
    let (phase, at) = rest.trim().rsplit_once(' ')?;
    Some((phase, at.parse().ok()?))
}

/// The `GO` line for `phase` starting at `at_ns`.
pub(crate) fn go_line(phase: &str, at_ns: u64) -> String {
    format!("{GO}{phase} {at_ns}")
}
