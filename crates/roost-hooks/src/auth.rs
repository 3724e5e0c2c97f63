//! Authentication: a chain of [`Authenticator`]s for CONNECT credentials, and
//! [`EnhancedAuthenticator`]s for MQTT 5.0 AUTH exchanges (e.g. SCRAM).

use std::time::SystemTime;

use bytes::Bytes;
use roost_codec::{ReasonCode, UserProperty};

use crate::{BoxFuture, ClientInfo};

/// What an authenticator sees of a CONNECT.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectRequest<'a> {
    /// The client (its `username` is the CONNECT user name).
    pub client: &'a ClientInfo,
    /// The CONNECT password, if any. Never log it.
    pub password: Option<&'a [u8]>,
    /// Clean Start / Clean Session.
    pub clean_start: bool,
    /// Requested keep-alive in seconds.
    pub keep_alive: u16,
    /// CONNECT User Properties (5.0).
    pub user_properties: &'a [UserProperty],
}

impl<'a> ConnectRequest<'a> {
    /// Builds a request.
    pub fn new(
        client: &'a ClientInfo,
        password: Option<&'a [u8]>,
        clean_start: bool,
        keep_alive: u16,
        user_properties: &'a [UserProperty],
    ) -> Self {
        Self {
            client,
            password,
            clean_start,
            keep_alive,
            user_properties,
        }
    }
}

/// What a successful authentication grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// Replaces the user name for authorization (e.g. a JWT subject).
    pub username: Option<String>,
    /// The credentials stop being valid at this time (e.g. JWT `exp`); the
    /// broker may close the connection then (DISCONNECT 0xA0).
    pub expires_at: Option<SystemTime>,
    /// Topic filters this client may publish to, when the credential carries
    /// its own ACL (e.g. JWT claims); `None` = no restriction from here.
    pub publish_acl: Option<Vec<String>>,
    /// Topic filters this client may subscribe to; `None` = no restriction from here.
    pub subscribe_acl: Option<Vec<String>>,
    /// Bypasses authorization.
    pub superuser: bool,
}

/// The answer of one authenticator in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    /// Authenticated; the chain stops.
    Accept(Grant),
    /// Refused with this CONNACK reason code (e.g. 0x86, 0x87, 0x8A); the chain stops.
    Refuse(ReasonCode),
    /// Not this authenticator's business; ask the next one.
    Ignore,
}

/// Checks CONNECT credentials.
pub trait Authenticator: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> &str;
    /// Decides on one CONNECT.
    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult>;
}

/// One step of an enhanced authentication exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Send AUTH 0x18 with this data and wait for the client's answer.
    Continue(Bytes),
    /// Authenticated; optional final data goes into CONNACK / AUTH 0x00.
    Success {
        /// Final server data (e.g. SCRAM server-final-message).
        data: Option<Bytes>,
        /// What the client is granted.
        grant: Grant,
    },
    /// Refused with this reason code (0x87 Not authorized, 0x86, 0x8C ...).
    Fail(ReasonCode),
}

/// One running exchange; holds the mechanism's per-connection state.
pub trait AuthExchange: Send {
    /// Feeds the client's Authentication Data (from CONNECT or AUTH).
    fn step(&mut self, data: Option<Bytes>) -> BoxFuture<'_, AuthStep>;
}

/// A server-side MQTT 5.0 enhanced authentication mechanism.
pub trait EnhancedAuthenticator: Send + Sync + 'static {
    /// Starts an exchange for `method`; `None` when the method is not supported
    /// (the client gets CONNACK 0x8C Bad authentication method).
    fn begin(&self, method: &str, client: &ClientInfo) -> Option<Box<dyn AuthExchange>>;
}
