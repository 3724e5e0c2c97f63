//! Brokers with a session store that can be stopped and started again on
//! the same store, and a private `redis-server` for the Redis backend.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roost_broker::{Broker, BrokerHandle, StoreConfig};

use super::{T, config};

/// A running broker whose `run` can be awaited, so a restart reopens a
/// store the previous run has closed.
pub struct StoredBroker {
    pub addr: SocketAddr,
    pub handle: BrokerHandle,
    task: tokio::task::JoinHandle<()>,
}

/// Starts a broker (default settings, loopback port 0) on `store`.
pub async fn start_stored(store: StoreConfig) -> StoredBroker {
    start_stored_with(store, "").await
}

/// Starts a broker with the settings of `toml` (loopback port 0) on `store`.
pub async fn start_stored_with(store: StoreConfig, toml: &str) -> StoredBroker {
    let broker = match Broker::builder()
        .config(config(toml))
        .store(store)
        .bind()
        .await
    {
        Ok(b) => b,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = broker.local_addrs()[0];
    let handle = broker.handle();
    let task = tokio::spawn(broker.run());
    StoredBroker { addr, handle, task }
}

impl StoredBroker {
    /// Graceful shutdown; returns once the store is closed.
    pub async fn stop(self) {
        self.handle.shutdown();
        tokio::time::timeout(T * 3, self.task)
            .await
            .expect("broker stops in time")
            .expect("broker task");
    }
}

/// A private `redis-server` on a free loopback port, killed (by its own PID)
/// when dropped. `None` (with a message) when `redis-server` is not installed.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts one without persistence. A missing redis-server fails the test
    /// (scripts/test.sh installs it) rather than letting it pass untested.
    pub fn start() -> RedisServer {
        for _ in 0..3 {
            let port = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free loopback port");
            let spawned = Command::new("redis-server")
                .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let child = match spawned {
                Ok(c) => c,
                Err(e) => panic!(
                    "cannot start redis-server ({e}); install it with \
                     `apt-get update && apt-get install -y redis-server` or scripts/install-test-deps.sh"
                ),
            };
            let mut server = RedisServer { child, port };
            if server.wait_ready() {
                return server;
            }
        }
        panic!("redis-server did not come up");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false; // port taken meanwhile: the caller tries another
            }
            // Ours, not another test's server that took the port meanwhile.
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && roost_testkit::owns_listener(self.child.id(), self.port)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// The store config for this server (a prefix of its own per test).
    pub fn store(&self) -> StoreConfig {
        StoreConfig::redis(format!("redis://127.0.0.1:{}", self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
