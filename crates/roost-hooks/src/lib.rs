//! # roost-hooks
//!
//! The small, stable surface plugins and embedders program against. The
//! broker depends on this crate, never the other way round.
//!
//! ```text
//!  CONNECT ──▶ Authenticator chain (Accept / Refuse / Ignore → next)
//!          └─▶ EnhancedAuthenticator (AUTH exchange, MQTT 5.0)
//!  PUBLISH / SUBSCRIBE ──▶ Authorizer chain (sync, cached per session)
//!  every packet ──▶ Hooks (async decision hooks + notifications)
//! ```
//!
//! Every trait method has a default, so an implementation overrides only what
//! it needs. Context structs are `#[non_exhaustive]`: fields can be added
//! without breaking plugins. When no hook is registered the broker skips the
//! calls entirely.
#![warn(missing_docs)]

mod auth;
mod authz;
mod client;
mod decision;
mod hooks;
mod listener;

pub use auth::{
    AuthExchange, AuthResult, AuthStep, Authenticator, ConnectRequest, EnhancedAuthenticator, Grant,
};
pub use authz::{AclResult, Action, Authorizer};
pub use client::{ClientInfo, TlsIdentity};
pub use decision::Decision;
pub use hooks::{
    DisconnectCause, DropCause, Hooks, MessageView, PublishCtx, PublishDecision, SubscribeCtx,
};
pub use listener::ListenerKind;
pub use roost_codec::topic::{TopicError, TopicFilter, TopicName};
pub use roost_codec::{ProtocolVersion, QoS, ReasonCode, SubscriptionOptions, UserProperty};

/// MQTT's topic rules (validation, matching, filter relations, the
/// shared-subscription parser), for plugins that check topics themselves.
pub mod topic {
    pub use roost_codec::topic::*;
}

/// A boxed, sendable future: what async trait methods return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A future that is immediately ready: the cheap default for hooks.
pub fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}
