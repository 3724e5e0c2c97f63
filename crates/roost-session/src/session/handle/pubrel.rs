//! PUBREL from the client (inbound QoS 2, step 3): PUBCOMP with the same
//! identifier [MQTT-4.3.3-11]; the identifier is then free, so a later
//! PUBLISH with it is a new message [MQTT-4.3.3-12]. An identifier not
//! awaiting PUBREL gets PUBCOMP 0x92 Packet Identifier not found (3.x
//! clients see a plain PUBCOMP).

use roost_codec::{AckProperties, Packet, PubResponse, ReasonCode};

use super::super::{Inbound, Session};
use crate::session_event::SessionEvent;
use crate::state::InboundQos2;

impl Session {
    pub(super) fn handle_pubrel(&mut self, rel: &PubResponse) -> Inbound {
        let id = rel.packet_id;
        let reason_code = match self.state.inbound_qos2.get(&id) {
            Some(InboundQos2::AwaitingPubRel(_)) => {
                self.state.inbound_qos2.remove(&id);
                if self.stores_inbound() {
                    self.state
                        .record(SessionEvent::InboundReleased { packet_id: id });
                }
                ReasonCode::SUCCESS
            }
            Some(InboundQos2::Routing) | None => ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        };
        self.push(Packet::PubComp(PubResponse {
            packet_id: id,
            reason_code,
            properties: AckProperties::default(),
        }));
        Inbound::Nothing
    }
}
