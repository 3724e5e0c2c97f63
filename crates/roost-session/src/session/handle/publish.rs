//! PUBLISH from the client.
//!
//! ```text
//!  QoS/RETAIN allowed? ─▶ topic alias ─▶ topic depth ─▶ UTF-8 payload ─▶ QoS flow
//!    0x9B / 0x9A          0x94 / 0x82     0x90            0x99
//!  QoS 0 ─▶ Inbound::Publish
//!  QoS 1 ─▶ quota ─▶ Inbound::Publish ─▶ (complete_publish) PUBACK
//!  QoS 2 ─▶ id awaiting PUBREL? yes ─▶ PUBREC again, no second delivery [MQTT-4.3.3-10]
//!                               no  ─▶ quota ─▶ Inbound::Publish ─▶ (complete_publish) PUBREC
//! ```

use std::time::Instant;

use roost_codec::{AckProperties, Packet, PubResponse, Publish, QoS};

use super::super::{Inbound, Session};
use crate::connect::topic_levels;
use crate::message::Message;
use crate::state::InboundQos2;
use crate::violation::Violation;

impl Session {
    pub(super) fn handle_publish(
        &mut self,
        now: Instant,
        mut publish: Publish,
    ) -> Result<Inbound, Violation> {
        if publish.qos > self.config.maximum_qos {
            return Err(Violation::QosNotSupported(publish.qos));
        }
        if publish.retain && !self.config.retain_available {
            return Err(Violation::RetainNotSupported);
        }
        let topic = std::mem::take(&mut publish.topic);
        publish.topic = self
            .inbound_aliases
            .resolve(publish.properties.topic_alias, topic)?;
        let maximum = self.config.max_topic_levels;
        if maximum != 0 {
            let levels = topic_levels(&publish.topic);
            if levels > maximum {
                return Err(Violation::TopicTooDeep { levels, maximum });
            }
        }
        if publish.properties.payload_format_indicator == Some(true)
            && self.config.validate_utf8_payload
            && std::str::from_utf8(&publish.payload).is_err()
        {
            return Err(Violation::PayloadFormatInvalid);
        }

        let packet_id = match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => None,
            (_, None) => return Err(Violation::MissingPacketId),
            (QoS::AtLeastOnce, Some(id)) => {
                self.take_receive_quota()?;
                self.inbound_qos1_unacked = self.inbound_qos1_unacked.saturating_add(1);
                Some(id)
            }
            (QoS::ExactlyOnce, Some(id)) => match self.state.inbound_qos2.get(&id) {
                // Already routed, PUBREC not yet sent: that PUBREC answers both.
                Some(InboundQos2::Routing) => return Ok(Inbound::Nothing),
                Some(InboundQos2::AwaitingPubRel(reason_code)) => {
                    let rec = PubResponse {
                        packet_id: id,
                        reason_code: *reason_code,
                        properties: AckProperties::default(),
                    };
                    self.push(Packet::PubRec(rec));
                    return Ok(Inbound::Nothing);
                }
                None => {
                    self.take_receive_quota()?;
                    self.state.inbound_qos2.insert(id, InboundQos2::Routing);
                    Some(id)
                }
            },
        };
        let message = Message::from_publish(publish, Some(self.state.client_id.clone()), now);
        Ok(Inbound::Publish { message, packet_id })
    }

    /// A 5.0 client may have at most our Receive Maximum QoS 1/2 PUBLISH
    /// packets unacknowledged [MQTT-3.3.4-7]; 3.x clients were never told a
    /// limit, and their QoS 2 identifiers are bounded by the 16-bit space.
    fn take_receive_quota(&self) -> Result<(), Violation> {
        if self.version.is_v5()
            && self.inbound_unacked() >= usize::from(self.config.effective_receive_maximum())
        {
            return Err(Violation::ReceiveMaximumExceeded);
        }
        Ok(())
    }
}
