//! # roost-admin
//!
//! Roost's management plane, served by one HTTP listener (`[http]`, default
//! `127.0.0.1:18083`): the REST API under `/api/v1` with API keys and
//! dashboard logins, Prometheus metrics at `/metrics`, the OpenAPI document
//! (docs/management.md).
//!
//! ```text
//!  request ─▶ axum router ─▶ require_auth (basic key:secret | bearer token) ─▶ handler ─▶ BrokerHandle
//!  /metrics ─▶ prometheus-client registry ─▶ BrokerCollector reads Stats at scrape time
//! ```
//!
//! Embed it beside a broker:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = roost_broker::Broker::builder().bind().await?;
//! let addr = roost_admin::start(broker.handle()).await?;
//! broker.run().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod cap;
pub mod dashboard;
mod error;
mod metrics;
mod metrics_detail;
pub mod openapi;
mod peers;
mod server;
mod state;
pub mod store;
mod tls;

pub use error::{ApiError, ErrorBody};
pub use server::{AdminError, AdminServer, start};
