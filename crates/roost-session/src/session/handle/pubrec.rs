//! PUBREC from the client (outbound QoS 2, step 2).
//!
//! - success → PUBREL with the same identifier [MQTT-4.3.3-4]; from now on
//!   only the PUBREL is re-sent, never the PUBLISH [MQTT-4.3.3-6];
//! - error (≥ 0x80) → the flow ends, no PUBREL, the slot is free
//!   [MQTT-4.4.0-2];
//! - duplicate PUBREC after PUBREL → PUBREL again;
//! - unknown identifier → PUBREL 0x92 Packet Identifier not found, so the
//!   client can finish its side.

use std::time::Instant;

use roost_codec::{AckProperties, Packet, PubResponse, ReasonCode};

use super::super::{Inbound, Session};
use crate::inflight::OutboundStage;

impl Session {
    pub(super) fn handle_pubrec(&mut self, now: Instant, rec: &PubResponse) -> Inbound {
        let id = rec.packet_id;
        let Some(entry) = self.state.inflight.get_mut(id) else {
            self.push(Packet::PubRel(PubResponse {
                packet_id: id,
                reason_code: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                properties: AckProperties::default(),
            }));
            return Inbound::Nothing;
        };
        match entry.stage {
            // A PUBREC for a QoS 1 message is the client's confusion; PUBACK still ends it.
            OutboundStage::AwaitingPubAck(_) => {}
            OutboundStage::AwaitingPubRec(_) if rec.reason_code.is_error() => {
                if let Some(done) = self.state.inflight.remove(id) {
                    self.record_acknowledged(
                        done.store_seq,
                        done.packet_id,
                        &done.stage,
                        rec.reason_code,
                    );
                }
                self.fill_window(now);
            }
            OutboundStage::AwaitingPubRec(_) => {
                // The message is no longer needed: drop the Arc now (the
                // event takes it first when hooks want it).
                let stage = std::mem::replace(&mut entry.stage, OutboundStage::AwaitingPubComp);
                let seq = entry.store_seq;
                self.record_acknowledged(seq, id, &stage, rec.reason_code);
                self.push(Packet::PubRel(PubResponse::success(id)));
            }
            OutboundStage::AwaitingPubComp => self.push(Packet::PubRel(PubResponse::success(id))),
        }
        Inbound::Nothing
    }
}
