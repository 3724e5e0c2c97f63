//! Enhanced authentication (MQTT 5.0 AUTH) plumbing. A mechanism (SCRAM comes
//! with the security work) implements [`EnhancedAuth`]; the connection driver
//! runs the exchange: CONNECT → AUTH 0x18 … → CONNACK, and re-authentication
//! (AUTH 0x19) on a live connection.

use bytes::Bytes;
use roost_codec::ReasonCode;

/// One step of an authentication exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Send AUTH 0x18 Continue authentication with this data and wait for the client.
    Continue(Bytes),
    /// Authenticated; optional final data goes into CONNACK / AUTH 0x00.
    Success(Option<Bytes>),
    /// Refused with this reason code (e.g. 0x87 Not authorized, 0x86 Bad user name or password).
    Fail(ReasonCode),
}

/// One running exchange (per connection); holds the mechanism's state.
pub trait AuthExchange: Send {
    /// Feeds the client's Authentication Data (from CONNECT or AUTH).
    fn step(&mut self, data: Option<Bytes>) -> AuthStep;
}

/// A server-side enhanced authentication mechanism.
pub trait EnhancedAuth: Send + Sync + 'static {
    /// Starts an exchange for `method` and `client_id`; `None` when the method is
    /// not supported (the client then gets 0x8C Bad authentication method).
    fn begin(&self, method: &str, client_id: &str) -> Option<Box<dyn AuthExchange>>;
}
