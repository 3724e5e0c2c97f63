//! The `roost` binary as a child process on a free port.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// The log line that announces a listener, followed by `IP:PORT`.
const LISTENING: &str = "listening on mqtt://";
/// How much of the broker's stderr is kept (the most recent lines).
const LOG_LINES: usize = 20_000;
/// How long [`BrokerProcess::stop`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a broker process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The binary could not be run.
    #[error("cannot run {binary}: {source}")]
    Spawn {
        /// The binary that was run.
        binary: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The config file could not be written.
    #[error("cannot write the config file: {0}")]
    Config(io::Error),
    /// No `listening on mqtt://` line in time (or the process exited first).
    #[error("no '{LISTENING}' line within {timeout:?} (exit status {status:?}); stderr:\n{log}")]
    NotListening {
        /// The startup timeout.
        timeout: Duration,
        /// The exit status, if the process had exited.
        status: Option<ExitStatus>,
        /// Everything it wrote to stderr.
        log: String,
    },
}

/// Options for starting a broker process: extra arguments, a TOML config,
/// environment variables.
#[derive(Debug)]
pub struct BrokerBuilder {
    binary: PathBuf,
    args: Vec<OsString>,
    config: Option<String>,
    env: Vec<(OsString, OsString)>,
    startup_timeout: Duration,
}

impl BrokerBuilder {
    /// Adds a command-line argument after `-p 0`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Writes `toml` to a temporary file and passes it with `-c FILE`.
    pub fn config_toml(mut self, toml: impl Into<String>) -> Self {
        self.config = Some(toml.into());
        self
    }

    /// Sets an environment variable of the process (`RUST_LOG` defaults to `info`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// How long to wait for the listening line (default 10 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Starts the process and waits until it listens.
    pub fn start(self) -> Result<BrokerProcess, StartError> {
        let config_dir = match &self.config {
            Some(_) => Some(tempfile::tempdir().map_err(StartError::Config)?),
            None => None,
        };
        // The server keeps state on disk (default ./roost-data): each process
        // gets a private store unless the test passes its own (`--data-dir`
        // or ROOST_STORE__DATA_DIR), so parallel brokers never share one.
        let data_dir = tempfile::tempdir().map_err(StartError::Config)?;
        let mut command = Command::new(&self.binary);
        command.arg("-p").arg("0");
        command.env("ROOST_STORE__DATA_DIR", data_dir.path());
        // The management API on a free port too (its default 18083 would be
        // shared by parallel brokers); `http_addr` tells where.
        command.env("ROOST_HTTP__BIND", "127.0.0.1:0");
        if let (Some(dir), Some(toml)) = (&config_dir, &self.config) {
            let path = dir.path().join("roost.toml");
            std::fs::write(&path, toml).map_err(StartError::Config)?;
            command.arg("-c").arg(path);
        }
        command
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var_os("RUST_LOG").unwrap_or_else(|| "info".into()),
            )
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;

        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let reader = child.stderr.take().map(|stderr| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || read_stderr(stderr, &log, &addr_tx))
        });
        let mut broker = BrokerProcess {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            log,
            reader,
            exit_status: None,
            _config_dir: config_dir,
            _data_dir: data_dir,
        };
        match addr_rx.recv_timeout(self.startup_timeout) {
            Ok(addr) => {
                broker.addr = addr;
                Ok(broker)
            }
            Err(_) => {
                let status = broker.stop().ok();
                Err(StartError::NotListening {
                    timeout: self.startup_timeout,
                    status,
                    log: broker.log(),
                })
            }
        }
    }
}

/// A running `roost` process. Stopped (SIGTERM, then SIGKILL) on drop; if the
/// drop happens while a test panics, its stderr is printed.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    reader: Option<JoinHandle<()>>,
    exit_status: Option<ExitStatus>,
    _config_dir: Option<tempfile::TempDir>,
    /// The process's private store directory (removed on drop).
    _data_dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Options for starting `binary` (e.g. `env!("CARGO_BIN_EXE_roost")`).
    pub fn builder(binary: impl AsRef<Path>) -> BrokerBuilder {
        BrokerBuilder {
            binary: binary.as_ref().to_path_buf(),
            args: Vec::new(),
            config: None,
            env: Vec::new(),
            startup_timeout: Duration::from_secs(10),
        }
    }

    /// Starts `binary -p 0` and waits until it listens.
    pub fn start(binary: impl AsRef<Path>) -> Result<Self, StartError> {
        Self::builder(binary).start()
    }

    /// The address clients connect to (loopback when the broker bound the
    /// unspecified address).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The management API's address, from its `management API listening on
    /// http://IP:PORT` line (logged before the MQTT listeners'); `None` when
    /// it is off (`--no-http`).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        let lines = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().find_map(|line| {
            let rest = line
                .split_once("management API listening on http://")
                .or_else(|| line.split_once("management API listening on https://"))?
                .1;
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
    }

    /// The process's private data directory (store, `admin.json`).
    pub fn data_dir(&self) -> &Path {
        self._data_dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the broker wrote to stderr so far (the most recent lines).
    pub fn log(&self) -> String {
        let lines = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        let pid = Pid::from_child(&self.child);
        kill_process(pid, signal).map_err(io::Error::from)
    }

    /// Stops the process: SIGTERM, then SIGKILL if it has not exited within
    /// 5 s. Returns its exit status (a graceful shutdown exits with success).
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        self.stop_within(STOP_GRACE)
    }

    /// Like [`Self::stop`] with an explicit grace period before SIGKILL.
    pub fn stop_within(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.exit_status {
            return Ok(status);
        }
        let status = match self.child.try_wait()? {
            Some(status) => status,
            None => {
                // ESRCH: it exited between try_wait and kill; wait() below reaps it.
                let _ = self.signal(Signal::TERM);
                match self.wait_exit(grace)? {
                    Some(status) => status,
                    None => {
                        self.child.kill()?;
                        self.child.wait()?
                    }
                }
            }
        };
        self.exit_status = Some(status);
        if let Some(reader) = self.reader.take() {
            // The pipe closed when the process exited, so the thread ends.
            let _ = reader.join();
        }
        Ok(status)
    }

    /// Waits up to `limit` for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            // std offers no blocking wait with a timeout; poll the exit status.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let stopped = self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- roost stderr (pid {}, stop: {stopped:?}) ----\n{}\n---- end of roost stderr ----",
                self.child.id(),
                self.log()
            );
        }
    }
}

/// Collects stderr lines; sends the first listener address on `addr_tx`.
fn read_stderr(
    stderr: ChildStderr,
    log: &Mutex<VecDeque<String>>,
    addr_tx: &mpsc::Sender<SocketAddr>,
) {
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::new();
    let mut announced = false;
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = strip_ansi(String::from_utf8_lossy(&raw).trim_end());
        if !announced && let Some(addr) = parse_listening(&line) {
            announced = true;
            // The receiver is gone only if startup already timed out.
            let _ = addr_tx.send(addr);
        }
        let mut lines = log.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// Extracts `IP:PORT` from a line containing `listening on mqtt://IP:PORT`.
fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ',' || c == ')' || c == '/')
        .unwrap_or(rest.len());
    let mut addr: SocketAddr = rest[..end].parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Some(addr)
}

/// Removes terminal color sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_with_ipv4_and_suffix() {
        let line = "2026-01-01T00:00:00Z  INFO roost_broker: listening on mqtt://127.0.0.1:43817 (anonymous clients allowed)";
        assert_eq!(
            parse_listening(line),
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 43817)))
        );
    }

    #[test]
    fn listening_line_with_ipv6() {
        let line = "INFO listening on mqtt://[::1]:1883";
        assert_eq!(
            parse_listening(line),
            Some(SocketAddr::from((Ipv6Addr::LOCALHOST, 1883)))
        );
    }

    #[test]
    fn unspecified_address_becomes_loopback() {
        let line = "listening on mqtt://0.0.0.0:2000, anonymous";
        assert_eq!(
            parse_listening(line),
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 2000)))
        );
    }

    #[test]
    fn other_lines_are_ignored() {
        assert_eq!(
            parse_listening("listening on ws://127.0.0.1:8083/mqtt"),
            None
        );
        assert_eq!(parse_listening("starting roost 0.1.0"), None);
    }

    #[test]
    fn color_codes_are_stripped() {
        let colored = "\u{1b}[32m INFO\u{1b}[0m listening on mqtt://\u{1b}[1m127.0.0.1:5\u{1b}[0m";
        assert_eq!(strip_ansi(colored), " INFO listening on mqtt://127.0.0.1:5");
    }
}

#[cfg(test)]
mod process_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A stand-in for the roost binary: a shell script.
    fn fake_binary(dir: &tempfile::TempDir, script: &str) -> PathBuf {
        let path = dir.path().join("fake-roost");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn start_reads_the_port_and_passes_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_binary(
            &dir,
            r#"echo "args: $*" >&2
echo "config: $(cat "$4")" >&2
echo " INFO roost: listening on mqtt://127.0.0.1:40001 (anonymous clients allowed)" >&2
exec sleep 30"#,
        );
        let mut broker = BrokerProcess::builder(&binary)
            .config_toml("answer = 42")
            .arg("--extra")
            .start()
            .unwrap();
        assert_eq!(
            broker.addr(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 40001))
        );
        let status = broker.stop().unwrap();
        assert!(!status.success(), "sleep dies of SIGTERM");
        let log = broker.log();
        assert!(log.contains("args: -p 0 -c "), "{log}");
        assert!(log.contains("--extra"), "{log}");
        assert!(log.contains("config: answer = 42"), "{log}");
    }

    #[test]
    fn a_process_that_exits_before_listening_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_binary(&dir, "echo 'error: bad config' >&2\nexit 3");
        let error = BrokerProcess::start(&binary).unwrap_err();
        match error {
            StartError::NotListening { status, log, .. } => {
                assert_eq!(status.and_then(|s| s.code()), Some(3));
                assert!(log.contains("bad config"), "{log}");
            }
            other => panic!("unexpected error: {other}"),
        }
    }

    #[test]
    fn a_silent_process_times_out_and_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_binary(&dir, "exec sleep 30");
        let started = Instant::now();
        let error = BrokerProcess::builder(&binary)
            .startup_timeout(Duration::from_millis(200))
            .start()
            .unwrap_err();
        assert!(
            matches!(
                error,
                StartError::NotListening {
                    status: Some(_),
                    ..
                }
            ),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let error = BrokerProcess::start("/nonexistent/roost").unwrap_err();
        assert!(matches!(error, StartError::Spawn { .. }));
    }
}
