//! # roost-broker
//!
//! The tokio wiring of the Roost MQTT broker: listeners, one task per
//! connection driving a sans-IO [`roost_session::Session`], the session
//! registry, the shared router and retained store, and timers.
//!
//! ```text
//!  listener ──accept──▶ driver task ── decode ──▶ Session::handle_packet
//!                          │  ▲                        │ Inbound::Publish
//!                          │  └── outbox doorbell ◀── Core::publish ── Router::route ──▶ other slots
//!                          └── writev(headers + payload Bytes) ◀── Session::poll_transmit
//! ```
//!
//! Embed it:
//!
//! ```no_run
//! # async fn example() -> Result<(), roost_broker::BrokerError> {
//! let broker = roost_broker::Broker::builder().bind().await?;
//! let handle = broker.handle();
//! tokio::spawn(broker.run());
//! handle.shutdown();
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod admin;
mod admin_subs;
mod admission;
mod bans_file;
mod broker;
pub mod builtin_auth;
pub mod check;
mod clients;
mod clock;
mod cluster;
mod cluster_node;
pub mod config;
mod core;
mod credit;
mod driver;
mod error;
mod extensions;
mod hibernate;
mod link;
mod listener;
mod listener_stats;
mod metrics;
mod persist;
mod read_acl;
mod registry;
mod restore;
mod retained;
mod slot;
mod sys;
mod transport;

pub use admin::{ClientDetail, ClientQuery, Page, RouteInfo, SubscriptionInfo, UsersError};
pub use admin_subs::{SubscribeError, Subscribed};
pub use broker::{Broker, BrokerBuilder, BrokerHandle};
pub use clients::ClientSummary;
pub use config::{Config, ConfigError};
pub use config::{DurabilityConfig, RedisStoreConfig, StoreBackend, StoreConfig};
pub use error::BrokerError;
pub use extensions::PanicPolicy;
pub use listener::BoundAddress;
pub use listener_stats::ListenerStats;
pub use metrics::{Latencies, Stats};
pub use retained::{RetainedError, RetainedMessage, RetainedPage};
pub use roost_cluster::Member as ClusterMember;
pub use roost_hooks as hooks;
pub use roost_store::latency::{BUCKETS_MICROS as LATENCY_BUCKETS_MICROS, LatencySnapshot};
pub use transport::{ClientIdentity, ConnectionInfo, PeerAddr, TlsInfo, TlsReloadError};

/// The rustls server configuration a `tls` listener would use for these
/// settings (certificates by SNI, versions, cipher suites, client
/// certificates); for other TLS servers beside the broker, such as the
/// management API's HTTPS. Errors name the file or option.
#[cfg(feature = "tls")]
pub fn tls_server_config(
    config: &config::TlsConfig,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    transport::tls::server_config(config, false).map_err(|e| e.0)
}
