//! DISCONNECT from the client.
//!
//! - 5.0: a Session Expiry Interval may change the one in force, but not
//!   from 0 to non-zero (protocol error); it is capped like CONNECT's.
//!   Reason 0x00 deletes the Will [MQTT-3.14.4-3] [MQTT-3.1.2-10]; any other
//!   reason (0x04 Disconnect with Will Message, errors) keeps it.
//! - 3.x: every DISCONNECT deletes the Will [MQTT-3.14.4-3 (3.1.1)].

use roost_codec::{Disconnect, ReasonCode};

use super::super::{Inbound, Session};
use crate::violation::Violation;

impl Session {
    pub(super) fn handle_disconnect(
        &mut self,
        disconnect: Disconnect,
    ) -> Result<Inbound, Violation> {
        let reason = disconnect.reason_code;
        if self.version.is_v5() {
            if let Some(expiry) = disconnect.properties.session_expiry_interval {
                if self.connect_expiry_was_zero && expiry != 0 {
                    return Err(Violation::SessionExpiryFromZero);
                }
                self.state.session_expiry_interval =
                    expiry.min(self.config.max_session_expiry_interval);
            }
            if reason == ReasonCode::NORMAL_DISCONNECTION {
                self.will = None;
            }
        } else {
            self.will = None;
        }
        Ok(Inbound::Disconnect {
            reason,
            publish_will: self.will.is_some(),
        })
    }
}
