//! Per-listener counters for the management plane's metrics
//! (`roost_listener_*`, docs/management.md): connections open, accepted, and
//! refused by reason. Kept beside the listener's open count that every
//! connection's admission permit already points to (`admission.rs`), so a
//! connection pays one relaxed add when it is accepted and nothing more;
//! read only when someone asks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Why a listener did not serve a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The listener's or the server's `max_connections` was reached.
    Limit,
    /// More new connections per second than `max_connection_rate`.
    Rate,
    /// The transport failed (TLS or WebSocket handshake, PROXY header,
    /// or its timeout).
    Transport,
    /// CONNECT was refused, malformed or never came.
    Connect,
}

/// One listener's counters.
#[derive(Debug, Default)]
pub(crate) struct ListenerCounters {
    accepted: AtomicU64,
    /// By [`Refused`] in declaration order.
    refused: [AtomicU64; 4],
}

impl ListenerCounters {
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, why: Refused) {
        if let Some(counter) = self.refused.get(why as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One listener as the management API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ListenerStats {
    /// The URL clients use (`mqtt://127.0.0.1:1883`), as logged.
    pub url: String,
    /// `tcp`, `tls`, `ws`, `wss`, `quic` or `unix`.
    pub kind: String,
    /// Connections open now.
    pub connections: u64,
    /// Connections admitted since start.
    pub accepted: u64,
    /// Refused at the listener's or server's connection limit.
    pub refused_limit: u64,
    /// Refused by the connect-rate limit.
    pub refused_rate: u64,
    /// Lost in the transport's handshake (TLS, WebSocket, PROXY).
    pub refused_transport: u64,
    /// CONNECT refused, malformed or never sent.
    pub refused_connect: u64,
}

/// What a listener registers: its URL and kind, its counters, and how to
/// read its open connections.
type Entry = (
    String,
    String,
    Arc<ListenerCounters>,
    Box<dyn Fn() -> u64 + Send + Sync>,
);

/// Every listener's counters, in the order they started.
#[derive(Default)]
pub(crate) struct ListenerRegistry(Mutex<Vec<Entry>>);

impl std::fmt::Debug for ListenerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ListenerRegistry")
            .field(&self.0.lock().len())
            .finish()
    }
}

impl ListenerRegistry {
    /// Registers a listener when it starts accepting.
    pub(crate) fn register(
        &self,
        url: String,
        kind: String,
        counters: Arc<ListenerCounters>,
        open: Box<dyn Fn() -> u64 + Send + Sync>,
    ) {
        self.0.lock().push((url, kind, counters, open));
    }

    /// Every listener's counters now.
    pub(crate) fn read(&self) -> Vec<ListenerStats> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.0
            .lock()
            .iter()
            .map(|(url, kind, c, open)| ListenerStats {
                url: url.clone(),
                kind: kind.clone(),
                connections: open(),
                accepted: get(&c.accepted),
                refused_limit: get(&c.refused[Refused::Limit as usize]),
                refused_rate: get(&c.refused[Refused::Rate as usize]),
                refused_transport: get(&c.refused[Refused::Transport as usize]),
                refused_connect: get(&c.refused[Refused::Connect as usize]),
            })
            .collect()
    }
}
