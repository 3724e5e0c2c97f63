//! Listeners: accept loops that hand each socket to a connection driver.
//! Transports only produce an `AsyncRead + AsyncWrite` stream plus the peer
//! address; no protocol logic lives here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};

use crate::config::ListenerConfig;
use crate::core::Core;
use crate::driver;
use crate::metrics::Metrics;

/// A bound listener, ready to accept.
#[derive(Debug)]
pub(crate) struct BoundListener {
    pub(crate) config: Arc<ListenerConfig>,
    pub(crate) tcp: TcpListener,
    pub(crate) local_addr: SocketAddr,
}

impl BoundListener {
    pub(crate) async fn bind(config: ListenerConfig) -> std::io::Result<Self> {
        let tcp = TcpListener::bind(config.bind).await?;
        let local_addr = tcp.local_addr()?;
        Ok(Self { config: Arc::new(config), tcp, local_addr })
    }

    /// Accepts until shutdown.
    pub(crate) async fn run(self, core: Arc<Core>) {
        let open = Arc::new(AtomicUsize::new(0));
        let mut shutdown = core.shutdown.subscribe();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.changed() => break,
                accepted = self.tcp.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: log, back off briefly, keep serving.
                    tracing::warn!(listener = %self.local_addr, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            if !admit(&core, &self.config, &open) {
                Metrics::inc(&core.metrics.connections_refused);
                tracing::info!(%peer, listener = %self.local_addr, "connection limit reached, refusing");
                drop(stream);
                continue;
            }
            spawn_connection(Arc::clone(&core), Arc::clone(&self.config), Arc::clone(&open), stream, peer);
        }
    }
}

/// Checks the listener's and the server's connection limits.
fn admit(core: &Core, config: &ListenerConfig, open: &AtomicUsize) -> bool {
    let total = core.metrics.connections_current.load(Ordering::Relaxed) as usize;
    let server_max = core.config.limits.max_connections;
    if server_max > 0 && total >= server_max {
        return false;
    }
    config.max_connections == 0 || open.load(Ordering::Relaxed) < config.max_connections
}

fn spawn_connection(core: Arc<Core>, config: Arc<ListenerConfig>, open: Arc<AtomicUsize>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    open.fetch_add(1, Ordering::Relaxed);
    Metrics::inc(&core.metrics.connections_current);
    Metrics::inc(&core.metrics.connections_total);
    tokio::spawn(async move {
        driver::serve(Arc::clone(&core), config, stream, peer).await;
        open.fetch_sub(1, Ordering::Relaxed);
        core.metrics.connections_current.fetch_sub(1, Ordering::Relaxed);
    });
}
