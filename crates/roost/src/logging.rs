//! The broker's log output: a writer that can neither panic nor block.
//!
//! The broker logs to stderr, which may be a pipe whose reader goes away
//! (`roost 2>&1 | head -1`, a closed terminal, a restarted journald) or stops
//! reading. tracing-subscriber's own stderr writer reports a failed write with
//! `eprintln!`, which panics on EPIPE, and the panic killed the task that was
//! logging "shutting down" before it shut the broker down (issue 19, bug 1).
//! Here every formatted line goes into a bounded queue that a dedicated
//! thread drains to stderr: a full queue drops the line (and counts it), a
//! failed write is ignored, so logging costs the broker a `try_send` at most.
//!
//! [`init`] also builds the filter: the operator's level for Roost's own
//! targets, the storage engine's chatty internals kept at `warn` unless
//! named, and an invalid filter refused with the valid levels listed.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writer thread. A burst larger than this (stderr
/// stalled) loses lines rather than stalling the broker.
const QUEUE_LINES: usize = 8_192;
/// How long [`LogGuard`] waits on exit for the queue to drain.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Dependency targets kept quieter than the operator's level unless the
/// filter names them (`fjall=debug`): the storage engine logs every table it
/// writes at `info`; rustls warns about what peers send (`Illegal SNI
/// extension` for every client that connects by IP address), which is not
/// the operator's to fix.
const QUIET_TARGETS: &[(&str, &str)] = &[
    ("fjall", "warn"),
    ("lsm_tree", "warn"),
    ("quinn", "warn"),
    ("quinn_proto", "warn"),
    ("rustls", "error"),
];

/// The level words a filter accepts, for the error message.
pub(crate) const LEVELS: &str = "error, warn, info, debug, trace, off";

/// Builds the filter for `level` (a `tracing` directive list such as `info`
/// or `info,roost_broker::driver=debug`). `verbose` (`-v`) raises Roost's own
/// targets to `debug` while the dependencies stay where `level` put them.
pub(crate) fn filter(level: &str, verbose: bool) -> Result<EnvFilter, String> {
    check_directives(level)?;
    let mut directives = level.to_string();
    for (target, quiet) in QUIET_TARGETS {
        if !level.contains(target) {
            directives.push_str(&format!(",{target}={quiet}"));
        }
    }
    if verbose {
        directives.push_str(",roost=debug,roost_broker=debug,roost_auth=debug");
    }
    EnvFilter::try_new(&directives).map_err(|e| format!("invalid log filter `{level}`: {e}"))
}

/// Refuses a directive that `EnvFilter` would read as a target name: a bare
/// word that is not a level (`verbose`) turns into "target `verbose` at
/// trace", which silences every other target, errors included.
fn check_directives(level: &str) -> Result<(), String> {
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level_part = match directive.rsplit_once('=') {
            Some((_, level)) => level,
            None if directive.contains(['[', ':']) => continue,
            None => directive,
        };
        if level_part
            .parse::<tracing::level_filters::LevelFilter>()
            .is_err()
        {
            return Err(format!(
                "invalid log level `{level_part}` in `{level}`: use one of {LEVELS}, \
                 optionally per target (`info,roost_broker=debug`)"
            ));
        }
    }
    Ok(())
}

/// Installs the global subscriber: `filter` as built by [`filter`], text or
/// JSON lines, colours only on a terminal. Keep the guard until exit.
pub(crate) fn init(filter: EnvFilter, json: bool) -> LogGuard {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = spawn_writer(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        // Its report of a failed write is an `eprintln!`, which panics when
        // stderr is gone; our writer never fails anyway.
        .log_internal_errors(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    guard
}

/// Where formatted lines go: the queue of the writer thread.
#[derive(Clone, Debug)]
pub(crate) struct QueueWriter {
    lines: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            // An empty line is the flush marker of [`LogGuard`].
            return Ok(0);
        }
        match self.lines.try_send(buf.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer thread is gone: nothing can be logged any more.
            Err(TrySendError::Disconnected(_)) => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Keeps the writer thread; dropping it flushes what is queued (bounded).
#[derive(Debug)]
pub(crate) struct LogGuard {
    lines: SyncSender<Vec<u8>>,
    flushed: Receiver<()>,
    _thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // The global subscriber keeps a sender, so the thread never sees the
        // channel close: queue an empty line as a flush marker and wait,
        // boundedly, for the thread to reach it. A stalled stderr costs the
        // exit at most FLUSH_TIMEOUT.
        while self.flushed.try_recv().is_ok() {}
        if self.lines.try_send(Vec::new()).is_ok() {
            let _ = self.flushed.recv_timeout(FLUSH_TIMEOUT);
        }
    }
}

/// A writer to `out` through a bounded queue and a thread of its own.
pub(crate) fn spawn_writer<W: Write + Send + 'static>(mut out: W) -> (QueueWriter, LogGuard) {
    let (lines, queue) = sync_channel::<Vec<u8>>(QUEUE_LINES);
    let (flushed_tx, flushed) = sync_channel::<()>(1);
    let dropped = Arc::new(AtomicU64::new(0));
    let reported = Arc::clone(&dropped);
    let thread = std::thread::Builder::new()
        .name("roost-log".into())
        .spawn(move || {
            let mut last_dropped = 0;
            while let Ok(line) = queue.recv() {
                let now = reported.load(Ordering::Relaxed);
                if now != last_dropped {
                    let _ = writeln!(out, "roost: {} log lines dropped", now - last_dropped);
                    last_dropped = now;
                }
                if line.is_empty() {
                    let _ = out.flush();
                    let _ = flushed_tx.try_send(());
                    continue;
                }
                // Errors (EPIPE after the reader left) are ignored: the
                // broker goes on and shuts down on its signals regardless.
                let _ = out.write_all(&line);
            }
        })
        .ok();
    let guard = LogGuard {
        lines: lines.clone(),
        flushed,
        _thread: thread,
    };
    (QueueWriter { lines, dropped }, guard)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A sink whose reader has gone: every write fails like a closed pipe.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn writes_to_a_closed_pipe_succeed_for_the_logger() {
        let (mut writer, guard) = spawn_writer(ClosedPipe);
        for _ in 0..3 * QUEUE_LINES {
            assert_eq!(writer.write(b"line\n").unwrap(), 5);
        }
        drop(guard);
    }

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dropping_the_guard_flushes_every_queued_line_in_order() {
        let sink = Shared::default();
        let (mut writer, guard) = spawn_writer(sink.clone());
        for i in 0..100 {
            writer.write_all(format!("{i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..100).map(|i| format!("{i}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_bare_word_that_is_not_a_level_is_refused_with_the_levels() {
        let err = filter("verbose", false).unwrap_err();
        assert!(err.contains("verbose") && err.contains(LEVELS), "{err}");
        assert!(filter("info,roost_broker=verbose", false).is_err());
    }

    #[test]
    fn levels_and_per_target_directives_are_accepted() {
        for ok in [
            "info",
            "DEBUG",
            "warn,roost_broker=debug",
            "roost_broker::driver=trace",
            "off",
            "",
        ] {
            assert!(filter(ok, false).is_ok(), "{ok}");
        }
    }

    #[test]
    fn storage_engine_targets_stay_at_warn_unless_named() {
        let quiet = filter("info", true).unwrap().to_string();
        assert!(quiet.contains("fjall=warn"), "{quiet}");
        assert!(quiet.contains("roost_broker=debug"), "{quiet}");
        let named = filter("info,fjall=debug", false).unwrap().to_string();
        assert!(!named.contains("fjall=warn"), "{named}");
    }
}
