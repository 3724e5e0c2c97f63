//! PINGREQ → PINGRESP [MQTT-3.12.4-1]. Never held back by flow control
//! [MQTT-3.3.4-10].

use roost_codec::Packet;

use super::super::{Inbound, Session};

impl Session {
    pub(super) fn handle_pingreq(&mut self) -> Inbound {
        self.push(Packet::PingResp);
        Inbound::Nothing
    }
}
