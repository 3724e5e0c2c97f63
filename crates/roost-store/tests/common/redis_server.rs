//! Starts a private redis-server on a free loopback port for one test and
//! stops it (by its PID) when dropped. Fails loudly when it cannot start:
//! a missing server must not make the Redis tests pass silently.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts `redis-server` without persistence; `extra` are more arguments.
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::start_on("--port", extra)
    }

    /// Like [`RedisServer::start`], the free port given with `port_flag`
    /// (`--tls-port` for a TLS-only server, with `--port 0` in `extra`).
    pub fn start_on(port_flag: &str, extra: &[&str]) -> RedisServer {
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = Command::new("redis-server");
            cmd.args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .args(extra)
                .args([port_flag, &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => panic!(
                    "cannot start redis-server ({e}); install it with \
                     `apt-get update && apt-get install -y redis-server`"
                ),
            };
            let mut server = RedisServer { child, port };
            match server.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return server,
                Err(e) => last_error = e, // port taken meanwhile: try another
            }
        }
        panic!("redis-server did not come up: {last_error}");
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("redis-server exited: {status}"));
            }
            // Ours, not another test's server that took the port meanwhile.
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && roost_testkit::owns_listener(self.child.id(), self.port)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("not listening after 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a server again on the same port (after [`RedisServer::kill`]),
    /// with `extra` arguments. Panics when it does not come up.
    pub fn restart(&mut self, extra: &[&str]) {
        self.kill();
        self.child = Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(extra)
            .args(["--port", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restart redis-server");
        self.wait_ready(Duration::from_secs(10))
            .expect("redis-server back on its port");
    }

    /// `redis://127.0.0.1:<port>` plus `rest` (e.g. `/3`).
    pub fn url(&self, userinfo: &str, rest: &str) -> String {
        format!("redis://{userinfo}127.0.0.1:{}{rest}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Kill exactly the child this test started, then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free loopback port")
}
