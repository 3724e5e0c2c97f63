//! In-process broker for integration tests: binds port 0 on loopback, runs
//! on the test's runtime, shuts down when the guard drops.

// Test helpers fail the test on anything unexpected: unwrap/expect is how.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod barrier;
pub mod clients;
pub mod http;
pub mod raw;
pub mod short_lived;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roost_broker::hooks::EnhancedAuthenticator;
use roost_broker::{Broker, BrokerHandle, Config};

/// How long a helper waits for the broker before the test fails.
pub const T: Duration = Duration::from_secs(5);

/// A running broker; shuts down on drop.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub handle: BrokerHandle,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Parses a TOML config (listeners are replaced by one loopback listener on port 0).
pub fn config(toml: &str) -> Config {
    let mut config = match Config::from_toml(toml, "test") {
        Ok(c) => c,
        Err(e) => panic!("test config: {e}"),
    };
    config.listeners = vec![roost_broker::config::ListenerConfig::loopback(0)];
    config
}

/// Starts a broker with default settings.
pub async fn start() -> TestBroker {
    start_with(config(""), None).await
}

/// Starts a broker with this config and optional enhanced authentication.
pub async fn start_with(
    config: Config,
    auth: Option<Arc<dyn EnhancedAuthenticator>>,
) -> TestBroker {
    let mut builder = Broker::builder().config(config);
    if let Some(auth) = auth {
        builder = builder.enhanced_authenticator(auth);
    }
    start_built(builder).await
}

/// Binds and runs a broker the test built (its own authenticators,
/// authorizers, hooks).
pub async fn start_built(builder: roost_broker::BrokerBuilder) -> TestBroker {
    let broker = match builder.bind().await {
        Ok(b) => b,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = broker.local_addrs()[0];
    let handle = broker.handle();
    tokio::spawn(broker.run());
    TestBroker { addr, handle }
}

/// Polls `done` every 10 ms until it holds; fails the test naming `what`
/// after `within`. For states that follow from time passing (expiry, sweeps)
/// rather than from a packet the test could wait for.
pub async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
