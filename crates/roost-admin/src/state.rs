//! What every request handler shares.

use std::sync::Arc;

use roost_broker::BrokerHandle;

use crate::auth::Auth;

/// Shared by the handlers (behind an `Arc`).
#[derive(Debug)]
pub(crate) struct AppState {
    /// The broker.
    pub(crate) broker: BrokerHandle,
    /// Credentials, tokens and the login limit.
    pub(crate) auth: Auth,
    /// This node's name (computed once: it reads the host name).
    pub(crate) node: String,
    /// `/metrics` asks for credentials.
    pub(crate) metrics_auth: bool,
    /// Cluster mode: the other nodes' management APIs.
    pub(crate) peers: crate::peers::Peers,
    /// The Prometheus registry (the broker's collector).
    pub(crate) registry: prometheus_client::registry::Registry,
}

/// The state as axum hands it to handlers.
pub(crate) type Shared = Arc<AppState>;
