//! Authorization: a chain of synchronous [`Authorizer`]s, consulted on the
//! hot path (results may be cached per session by the broker).

use roost_codec::QoS;

use crate::ClientInfo;

/// What a client tries to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Publish to a topic name.
    Publish {
        /// QoS of the PUBLISH.
        qos: QoS,
        /// RETAIN flag.
        retain: bool,
    },
    /// Subscribe with a topic filter.
    Subscribe {
        /// Requested QoS.
        qos: QoS,
    },
}

/// The answer of one authorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclResult {
    /// Allowed; the chain stops.
    Allow,
    /// Denied; the chain stops.
    Deny,
    /// No rule matched; ask the next authorizer (the last one falls back to
    /// the configured default policy).
    Ignore,
}

/// Decides whether a client may publish to a topic or subscribe to a filter.
pub trait Authorizer: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> &str;
    /// Checks one action. Must be fast: it runs on the publish path.
    fn authorize(&self, client: &ClientInfo, action: Action, topic: &str) -> AclResult;
}
