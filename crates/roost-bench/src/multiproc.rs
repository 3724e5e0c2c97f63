//! `--procs N`: one process may hold only ~19,000 sockets here
//! (RLIMIT_NOFILE = 20,000), so larger runs re-execute this same program N
//! times, each with a slice of the clients (`--child I/N`). The parent
//! releases the phases together (see `coord`), samples the broker between
//! them, and merges the children's raw results into one report.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::args::BenchCommand;
use crate::clock::now_ns;
use crate::coord::{READY, RESULT, go_line};
use crate::plan::{self, Slice};
use crate::probe::{BrokerProbe, Samples};
use crate::raw::RawResult;
use crate::report::Report;

/// A line from child `usize`, or `None` when its stdout closed.
type ChildLine = (usize, Option<String>);

/// Runs the scenario over `procs` child processes and prints the merged report.
pub(crate) fn run_parent(cmd: &BenchCommand) -> anyhow::Result<()> {
    let common = cmd.common();
    let procs = common.procs;
    // Validate the arguments (hosts, sizes, file limits) before spawning anything.
    for index in 0..procs as u64 {
        plan::build(
            cmd,
            Slice {
                index,
                count: procs as u64,
            },
        )?;
    }
    let probe = BrokerProbe::new(&common.broker_pid)?;
    let mut samples = Samples::default();
    if let Some(p) = &probe {
        p.sample("base", &mut samples);
    }

    let exe = std::env::current_exe().context("cannot find this program to re-execute it")?;
    let base_args = child_args(std::env::args_os().skip(1));
    let (tx, rx) = mpsc::channel::<ChildLine>();
    let mut children = Vec::with_capacity(procs);
    for i in 0..procs {
        let spawned = Command::new(&exe)
            .args(&base_args)
            .arg("--child")
            .arg(format!("{i}/{procs}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                kill_all(&mut children);
                return Err(e).context("cannot start a child process");
            }
        };
        let stdout = child.stdout.take();
        let stdin = child.stdin.take();
        let tx = tx.clone();
        std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((i, Some(line))).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send((i, None));
        });
        children.push(Proc {
            child,
            stdin,
            ready: None,
            result: None,
            done: false,
        });
    }
    drop(tx);
    ignore_interrupts_in_parent();

    let outcome = drive(cmd, &rx, &mut children, probe.as_ref(), &mut samples);
    if outcome.is_err() {
        kill_all(&mut children);
    }
    for p in &mut children {
        let _ = p.child.wait();
    }
    let merged = outcome?;
    let report = Report::new(cmd, &merged, &samples);
    crate::print_report(&report, common.json)
}

/// One child process and its protocol state.
#[derive(Debug)]
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    ready: Option<String>,
    result: Option<RawResult>,
    done: bool,
}

/// Answers barriers, takes the window samples and collects results.
fn drive(
    cmd: &BenchCommand,
    rx: &mpsc::Receiver<ChildLine>,
    children: &mut [Proc],
    probe: Option<&BrokerProbe>,
    samples: &mut Samples,
) -> anyhow::Result<RawResult> {
    let (warmup_ns, duration_ns) = window_of(cmd);
    // Samples due at a time: (when, name).
    let mut due: Vec<(u64, &'static str)> = Vec::new();
    while children.iter().any(|p| p.result.is_none()) {
        let now = now_ns();
        let next = due.iter().map(|(at, _)| *at).min();
        let wait = next.map_or(Duration::from_secs(1), |at| {
            Duration::from_nanos(at.saturating_sub(now))
        });
        match rx.recv_timeout(wait) {
            Ok((i, Some(line))) => {
                if let Some(phase) = line.strip_prefix(READY) {
                    children[i].ready = Some(phase.to_owned());
                    if children.iter().all(|p| p.ready.as_deref() == Some(phase)) {
                        let phase = phase.to_owned();
                        if let Some(p) = probe {
                            p.sample(&phase, samples);
                        }
                        let go = now_ns();
                        for p in children.iter_mut() {
                            p.ready = None;
                            if let Some(stdin) = &mut p.stdin {
                                writeln!(stdin, "{}", go_line(&phase, go))
                                    .and_then(|()| stdin.flush())
                                    .context("cannot reach a child process")?;
                            }
                        }
                        if phase == "run" {
                            let warm = go.saturating_add(warmup_ns);
                            due.push((warm, "warm"));
                            if duration_ns > 0 {
                                due.push((warm.saturating_add(duration_ns), "end"));
                            }
                        }
                    }
                } else if let Some(json) = line.strip_prefix(RESULT) {
                    let raw: RawResult = serde_json::from_str(json)
                        .with_context(|| format!("child {i} sent an unreadable result"))?;
                    children[i].result = Some(raw);
                } else {
                    eprintln!("roost-bench[{i}]: {line}");
                }
            }
            Ok((i, None)) => {
                children[i].done = true;
                if children[i].result.is_none() {
                    let status = children[i]
                        .child
                        .wait()
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    bail!("child process {i} ended without a result ({status})");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = now_ns();
        due.retain(|(at, name)| {
            if *at <= now {
                if let Some(p) = probe {
                    p.sample(name, samples);
                }
                false
            } else {
                true
            }
        });
    }
    // Unbounded runs end when the children do.
    if samples.get("end").is_none()
        && let Some(p) = probe
    {
        p.sample("end", samples);
    }
    let mut merged = RawResult::default();
    for p in children.iter() {
        if let Some(raw) = &p.result {
            merged.merge(raw);
        }
    }
    Ok(merged)
}

/// Warm-up and duration of the run phase, ns.
fn window_of(cmd: &BenchCommand) -> (u64, u64) {
    let s = |secs: u64| secs.saturating_mul(1_000_000_000);
    match cmd {
        BenchCommand::Conn(a) => (0, s(a.duration_s)),
        BenchCommand::Sub(a) => (0, s(a.duration_s)),
        BenchCommand::Pub(a) => (s(a.warmup_s), s(a.duration_s)),
        BenchCommand::Pubsub(a) => (s(a.warmup_s), s(a.duration_s)),
    }
}

/// The parent's own arguments minus `--procs`, for the children.
pub fn child_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        if arg == "--procs" {
            skip_value = true;
            continue;
        }
        if arg.to_str().is_some_and(|a| a.starts_with("--procs=")) {
            continue;
        }
        out.push(arg);
    }
    out
}

fn kill_all(children: &mut [Proc]) {
    for p in children {
        if !p.done {
            let _ = p.child.kill();
        }
    }
}

/// Ctrl-C reaches the children too (same process group); they finish the
/// run and report, so the parent must survive it to merge their results.
fn ignore_interrupts_in_parent() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let mut count = 0;
            while tokio::signal::ctrl_c().await.is_ok() {
                count += 1;
                if count >= 2 {
                    std::process::exit(130);
                }
            }
        });
    });
}
