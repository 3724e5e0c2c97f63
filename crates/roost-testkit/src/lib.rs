//! Test helpers for Roost.
//!
//! * [`RawClient`]: an MQTT client that sends and receives exactly the packets
//!   a test gives it (or raw bytes, for malformed input), over a tokio
//!   `TcpStream` with the `roost-codec` encoder and decoder. For conformance
//!   and negative tests where a real client library would hide the wire.
//! * [`BrokerProcess`]: runs the `roost` binary on a free port (`roost -p 0`),
//!   reads the port from its `listening on mqtt://IP:PORT` log line, keeps its
//!   stderr for failure reports and stops it (SIGTERM, then SIGKILL) on drop.
//! * [`packets`]: short builders for the packets tests send.
//! * [`redis`]: a private Redis Cluster or Sentinel setup.
//!
//! Every wait takes a timeout: a test fails with a clear error instead of
//! hanging.
#![warn(missing_docs)]

mod broker_process;
mod cluster_node;
mod listener;
pub mod packets;
mod raw_client;
pub mod redis;
mod route;

pub use broker_process::{BrokerBuilder, BrokerProcess, StartError};
pub use cluster_node::{cluster_config, cluster_node, first_to_log};
pub use listener::owns_listener;
pub use raw_client::{HandshakeError, RawClient, RecvError, SendError};
pub use route::wait_for_route;

/// The default bound for one wait in tests (a CONNACK, a SUBACK, a message).
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
