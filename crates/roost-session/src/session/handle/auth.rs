//! AUTH from the client (5.0 re-authentication, [MQTT-4.12.1-1]):
//!
//! - only when CONNECT had an Authentication Method [MQTT-4.12.0-7], and
//!   with the same method [MQTT-4.12.1-1];
//! - 0x19 Re-authenticate starts an exchange (not while one is running);
//!   0x18 Continue authentication only answers our 0x18; 0x00 never comes
//!   from a client.

use roost_codec::{Auth, PacketType, ReasonCode};

use super::super::{Inbound, Session};
use crate::violation::Violation;

impl Session {
    pub(super) fn handle_auth(&mut self, auth: Auth) -> Result<Inbound, Violation> {
        if !self.version.is_v5() {
            return Err(Violation::V5OnlyPacket(PacketType::Auth));
        }
        let Some(method) = &self.auth_method else {
            return Err(Violation::AuthWithoutMethod);
        };
        if auth.properties.authentication_method.as_ref() != Some(&**method) {
            return Err(Violation::BadAuthMethod);
        }
        match auth.reason_code {
            ReasonCode::REAUTHENTICATE if !self.reauth_in_progress => {
                self.reauth_in_progress = true
            }
            ReasonCode::CONTINUE_AUTHENTICATION if self.reauth_in_progress => {}
            other => return Err(Violation::UnexpectedAuthReason(other)),
        }
        Ok(Inbound::Auth(auth))
    }
}
