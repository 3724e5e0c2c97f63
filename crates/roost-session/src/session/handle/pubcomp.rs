//! PUBCOMP from the client: ends an outbound QoS 2 flow [MQTT-4.3.3-5] and
//! frees its packet identifier and window slot. Unknown identifiers are ignored.

use std::time::Instant;

use roost_codec::PubResponse;

use super::super::{Inbound, Session};
use crate::inflight::OutboundStage;
use crate::session_event::SessionEvent;

impl Session {
    pub(super) fn handle_pubcomp(&mut self, now: Instant, comp: &PubResponse) -> Inbound {
        let awaiting = self
            .state
            .inflight
            .get(comp.packet_id)
            .is_some_and(|e| matches!(e.stage, OutboundStage::AwaitingPubComp));
        if awaiting {
            let done = self.state.inflight.remove(comp.packet_id);
            if let Some(seq) = done.and_then(|e| e.store_seq) {
                self.state.record(SessionEvent::Completed { seq });
            }
            self.fill_window(now);
        }
        Inbound::Nothing
    }
}
