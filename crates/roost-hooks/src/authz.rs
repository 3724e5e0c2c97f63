//! Authorization: a chain of [`Authorizer`]s, consulted on the publish and
//! subscribe paths. Synchronous answers are cached per session by the
//! broker; an authorizer that must wait offers an async form.

use roost_codec::QoS;

use crate::{BoxFuture, ClientInfo};

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
///
/// Most authorizers answer at once ([`Authorizer::authorize`]); the broker
/// caches their answers per session (keyed by action and topic) until the
/// rules are reloaded, so they must depend only on the client, the action
/// and the rules. One that must wait (e.g. ask an HTTP service) implements
/// [`Authorizer::authorize_async`]: the broker then awaits it on the
/// client's own connection task (other connections never wait for it) and
/// does not cache its answers — it keeps its own cache with its own expiry.
///
/// Wildcard subscriptions ([security] `acl_wildcards`): `authorize` with
/// [`Action::Subscribe`] answers for the filter as a whole ("may this client
/// receive every message of it"). Under `per_message`, a filter it does not
/// allow as a whole is asked again with [`Authorizer::authorize_per_message`]
/// ("may this client hold it, each message being checked at delivery"), and
/// every message such a subscription would receive is then checked with
/// `authorize(Subscribe, topic name)` at delivery. Only synchronous answers
/// are consulted at delivery: the routing path cannot wait.
pub trait Authorizer: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> &str;
    /// Checks one action. Must be fast: it runs on the publish path.
    fn authorize(&self, client: &ClientInfo, action: Action, topic: &str) -> AclResult;
    /// The asynchronous form, for authorizers that must wait. `None` (the
    /// default) means "call [`Authorizer::authorize`]"; it allocates nothing,
    /// so synchronous authorizers pay nothing for this method existing.
    /// When it returns a future, the broker awaits it instead of calling
    /// `authorize`. It should fail closed (answer `Deny`) when whatever it
    /// asks cannot answer.
    fn authorize_async<'a>(
        &'a self,
        client: &'a ClientInfo,
        action: Action,
        topic: &'a str,
    ) -> Option<BoxFuture<'a, AclResult>> {
        let _ = (client, action, topic);
        None
    }
    /// Under `acl_wildcards = "per_message"`: may `client` subscribe to the
    /// wildcard `filter` (which [`Authorizer::authorize`] did not allow as a
    /// whole), each message it brings being checked at delivery? The default
    /// repeats `authorize`'s answer for the filter: an authorizer that only
    /// knows whole filters keeps deciding them. The ACL file answers Deny only
    /// when a deny rule covers the whole filter, Allow when an allow rule
    /// overlaps it. Not called for authorizers with an async form (they are
    /// awaited on the filter instead).
    fn authorize_per_message(&self, client: &ClientInfo, qos: QoS, filter: &str) -> AclResult {
        self.authorize(client, Action::Subscribe { qos }, filter)
    }
}
