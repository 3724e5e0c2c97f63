//! PUBACK from the client: ends an outbound QoS 1 flow [MQTT-4.3.2-3]. An
//! error code also ends it: the message is never re-sent [MQTT-4.4.0-2] nor
//! passed to another subscriber [MQTT-4.8.2-6]. Unknown identifiers are ignored.

use std::time::Instant;

use roost_codec::PubResponse;

use super::super::{Inbound, Session};
use crate::inflight::OutboundStage;

impl Session {
    pub(super) fn handle_puback(&mut self, now: Instant, ack: &PubResponse) -> Inbound {
        let is_qos1 = self
            .state
            .inflight
            .get(ack.packet_id)
            .is_some_and(|e| matches!(e.stage, OutboundStage::AwaitingPubAck(_)));
        if is_qos1 {
            if let Some(done) = self.state.inflight.remove(ack.packet_id) {
                self.record_acknowledged(
                    done.store_seq,
                    done.packet_id,
                    &done.stage,
                    ack.reason_code,
                );
            }
            self.fill_window(now);
        }
        Inbound::Nothing
    }
}
