//! AUTH from the client on a live connection: re-authentication
//! [MQTT-4.12.1-*], an exchange of AUTH packets with the enhanced
//! authenticator that may end the connection.

use roost_codec::{Auth, AuthProperties, ReasonCode};
use roost_hooks::{AuthExchange, AuthStep};
use roost_session::Session;

use super::{Flow, Inputs};

/// Re-authentication on a live connection (AUTH 0x19, then 0x18 rounds)
/// [MQTT-4.12.1-*]. The session has already checked the method matches the
/// one used at CONNECT [MQTT-4.12.0-5].
pub(super) async fn reauthenticate(
    inputs: &Inputs<'_>,
    session: &mut Session,
    auth: Auth,
    exchange: &mut Option<Box<dyn AuthExchange>>,
) -> Flow {
    let Some(method) = session.auth_method().cloned() else {
        return Flow::Close(ReasonCode::PROTOCOL_ERROR, None);
    };
    if auth.reason_code == ReasonCode::REAUTHENTICATE {
        *exchange = inputs
            .core
            .ext
            .enhanced
            .as_ref()
            .and_then(|a| a.begin(&method, inputs.client));
    }
    let Some(current) = exchange.as_mut() else {
        return Flow::Close(ReasonCode::PROTOCOL_ERROR, None);
    };
    let step = current.step(auth.properties.authentication_data).await;
    let reply = |reason_code: ReasonCode, data| Auth {
        reason_code,
        properties: AuthProperties {
            authentication_method: Some(method.clone()),
            authentication_data: data,
            ..AuthProperties::default()
        },
    };
    match step {
        AuthStep::Continue(data) => {
            session.send_auth(reply(ReasonCode::CONTINUE_AUTHENTICATION, Some(data)));
        }
        AuthStep::Success { data, grant } => {
            *exchange = None;
            // Authorization keeps using the identity of the first
            // authentication: re-authenticating as someone else ends the
            // connection instead of leaving it half-switched.
            if let Some(name) = &grant.username
                && inputs.client.username.as_deref() != Some(name.as_str())
            {
                tracing::warn!(client_id = %inputs.client.client_id, "re-authentication as another user; closing");
                return Flow::Close(ReasonCode::NOT_AUTHORIZED, None);
            }
            session.send_auth(reply(ReasonCode::SUCCESS, data));
        }
        AuthStep::Fail(reason) => {
            *exchange = None;
            // Failed re-authentication: DISCONNECT and close [MQTT-4.12.1-2].
            return Flow::Close(reason, None);
        }
    }
    Flow::Continue
}
