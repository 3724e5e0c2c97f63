//! Answers the broker decides: PUBACK/PUBREC after routing, SUBACK, UNSUBACK
//! and AUTH.

use bytestring::ByteString;
use roost_codec::{
    AckProperties, Auth, Packet, PacketId, PubResponse, QoS, ReasonCode, SubAck, Subscribe,
    UnsubAck, Unsubscribe,
};

use super::Session;
use crate::connect::fits;
use crate::detach;
use crate::inflight::OutboundStage;
use crate::reason;
use crate::session_event::SessionEvent;
use crate::state::{InboundQos2, Subscription};

impl Session {
    /// Records the client's PUBACK or PUBREC (with `reason`) for the entry
    /// `packet_id` that was at `stage` (awaiting it), when it is stored or
    /// hooks want to hear of it.
    pub(super) fn record_acknowledged(
        &mut self,
        seq: Option<u64>,
        packet_id: PacketId,
        stage: &OutboundStage,
        reason: ReasonCode,
    ) {
        let wanted = self.wanted();
        if seq.is_none() && !wanted.messages {
            return;
        }
        let (qos, message) = match stage {
            OutboundStage::AwaitingPubAck(d) | OutboundStage::AwaitingPubRec(d) => {
                (d.qos, wanted.message(d))
            }
            OutboundStage::AwaitingPubComp => return,
        };
        self.state.record(SessionEvent::Acknowledged {
            seq,
            packet_id,
            qos,
            reason,
            message,
        });
    }

    /// Completes an [`super::Inbound::Publish`] of QoS 1/2 after routing:
    /// queues PUBACK [MQTT-4.3.2-4] or PUBREC [MQTT-4.3.3-8] with the same
    /// packet identifier and `reason` (0x00 Success, 0x10 No matching
    /// subscribers, 0x87 Not authorized, 0x97 Quota exceeded, 0x99 …; a code
    /// PUBACK cannot carry becomes 0x80). QoS 2 with a success code waits for
    /// PUBREL; with an error code the identifier is free again [MQTT-4.3.3-9].
    /// QoS 0 needs no completion (ignored).
    pub fn complete_publish(&mut self, packet_id: PacketId, qos: QoS, reason: ReasonCode) {
        self.complete_publish_explained(packet_id, qos, reason, None);
    }

    /// [`Session::complete_publish`] with a Reason String for the PUBACK /
    /// PUBREC (e.g. why a hook refused the message). It goes out only where
    /// the client may receive it: see [`Session::complete_subscribe_explained`].
    pub fn complete_publish_explained(
        &mut self,
        packet_id: PacketId,
        qos: QoS,
        reason: ReasonCode,
        reason_string: Option<&str>,
    ) {
        let rc = reason::for_puback(reason);
        let response = PubResponse {
            packet_id,
            reason_code: rc,
            properties: self.ack_properties(reason_string),
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.inbound_qos1_unacked = self.inbound_qos1_unacked.saturating_sub(1);
                let ack = self.fitted(Packet::PubAck(response));
                self.push(ack);
            }
            QoS::ExactlyOnce => {
                if rc.is_error() {
                    self.state.inbound_qos2.remove(&packet_id);
                } else {
                    self.state
                        .inbound_qos2
                        .insert(packet_id, InboundQos2::AwaitingPubRel(rc));
                    if self.stores_inbound() {
                        self.state.record(SessionEvent::InboundPubRec {
                            packet_id,
                            reason_code: rc,
                        });
                    }
                }
                let ack = self.fitted(Packet::PubRec(response));
                self.push(ack);
            }
        }
    }

    /// Completes an [`super::Inbound::Subscribe`]: one result per filter, in
    /// order (granted QoS 0x00..=0x02 or a failure code; missing results are
    /// 0x80). Granted subscriptions replace any with the same filter
    /// [MQTT-3.8.4-3] and are recorded in the session state. Queues one
    /// SUBACK with the SUBSCRIBE's packet identifier [MQTT-3.8.4-1]
    /// [MQTT-3.8.4-2] and one code per filter in filter order [MQTT-3.9.3-1];
    /// 3.1.1 clients see any failure as 0x80.
    pub fn complete_subscribe(&mut self, subscribe: &Subscribe, results: &[ReasonCode]) {
        self.complete_subscribe_explained(subscribe, results, None);
    }

    /// [`Session::complete_subscribe`] with a Reason String for the SUBACK
    /// (one per packet, e.g. why filters were refused). Like every
    /// `*_explained` completion it is sent to 5.0 clients only, never when the
    /// client set Request Problem Information to 0 [MQTT-3.1.2-29], and it is
    /// left out when it would make the packet exceed the client's Maximum
    /// Packet Size [MQTT-3.4.2-2] [MQTT-3.5.2-2] [MQTT-3.9.2-1] [MQTT-3.11.2-1].
    pub fn complete_subscribe_explained(
        &mut self,
        subscribe: &Subscribe,
        results: &[ReasonCode],
        reason_string: Option<&str>,
    ) {
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        for (i, (filter, options)) in subscribe.filters.iter().enumerate() {
            let rc = results
                .get(i)
                .copied()
                .unwrap_or(ReasonCode::UNSPECIFIED_ERROR);
            let rc = reason::for_suback(rc, self.version);
            if let Some(granted) = QoS::from_u8(rc.0) {
                let mut options = *options;
                options.qos = granted;
                let identifier = subscribe.properties.subscription_identifier;
                // Kept for the session's lifetime: do not pin the read buffer.
                self.state.subscriptions.insert(
                    detach::string(filter),
                    Subscription {
                        options,
                        identifier,
                    },
                );
            }
            codes.push(rc);
        }
        let ack = self.fitted(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reason_codes: codes,
            properties: self.ack_properties(reason_string),
        }));
        self.push(ack);
    }

    /// Completes an [`super::Inbound::Unsubscribe`]: one result per filter
    /// (0x00 Success, 0x11 No subscription existed, or a failure that keeps
    /// the subscription). Missing results are filled in by the session: 0x00
    /// when the exact filter was subscribed [MQTT-3.10.4-1], else 0x11.
    /// Queues one UNSUBACK with the packet identifier [MQTT-3.10.4-4]
    /// [MQTT-3.10.4-5], codes in filter order (5.0) [MQTT-3.11.3-1].
    pub fn complete_unsubscribe(&mut self, unsubscribe: &Unsubscribe, results: &[ReasonCode]) {
        self.complete_unsubscribe_explained(unsubscribe, results, None);
    }

    /// [`Session::complete_unsubscribe`] with a Reason String for the
    /// UNSUBACK, sent under the rules of [`Session::complete_subscribe_explained`].
    pub fn complete_unsubscribe_explained(
        &mut self,
        unsubscribe: &Unsubscribe,
        results: &[ReasonCode],
        reason_string: Option<&str>,
    ) {
        let v5 = self.version.is_v5();
        let mut codes = Vec::with_capacity(if v5 { unsubscribe.filters.len() } else { 0 });
        for (i, filter) in unsubscribe.filters.iter().enumerate() {
            let existed = self.state.subscriptions.contains_key(filter);
            let default = if existed {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            };
            let rc = reason::for_unsuback(results.get(i).copied().unwrap_or(default));
            if !rc.is_error() {
                self.state.subscriptions.remove(filter);
            }
            if v5 {
                codes.push(rc);
            }
        }
        let ack = self.fitted(Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            reason_codes: codes,
            properties: self.ack_properties(reason_string),
        }));
        self.push(ack);
    }

    /// An acknowledgement's properties: the Reason String only for a 5.0
    /// client that did not turn problem information off [MQTT-3.1.2-29].
    fn ack_properties(&self, reason_string: Option<&str>) -> AckProperties {
        AckProperties {
            reason_string: reason_string
                .filter(|_| self.version.is_v5() && self.peer.problem_information)
                .map(ByteString::from),
            user_properties: Vec::new(),
        }
    }

    /// Drops an acknowledgement's Reason String and User Properties when they
    /// would take it past the client's Maximum Packet Size [MQTT-3.4.2-2]
    /// [MQTT-3.4.2-3] [MQTT-3.5.2-2] [MQTT-3.5.2-3] [MQTT-3.9.2-1]
    /// [MQTT-3.9.2-2] [MQTT-3.11.2-1] [MQTT-3.11.2-2]. Measured only when
    /// there is a property to drop.
    fn fitted(&self, mut packet: Packet) -> Packet {
        let has_properties = ack_properties_mut(&mut packet).is_some_and(|p| !p.is_empty());
        if has_properties
            && !fits(&self.encoder, &packet, self.peer.maximum_packet_size)
            && let Some(properties) = ack_properties_mut(&mut packet)
        {
            *properties = AckProperties::default();
        }
        packet
    }

    /// Queues the server's AUTH in a (re-)authentication exchange: 0x18
    /// Continue authentication with data, or 0x00 Success (any other code is
    /// sent as 0x18 [MQTT-3.15.2-1]; refuse by `close` instead). The
    /// Authentication Method is always CONNECT's [MQTT-4.12.0-5]. Nothing is
    /// sent to 3.x clients or to clients that did not use enhanced
    /// authentication [MQTT-4.12.0-6]. Reason String and User Properties are
    /// left out when the client set Request Problem Information to 0
    /// [MQTT-3.1.2-29].
    pub fn send_auth(&mut self, mut auth: Auth) {
        let Some(method) = self.auth_method.as_deref().cloned() else {
            return;
        };
        if !self.version.is_v5() {
            return;
        }
        auth.reason_code = reason::for_server_auth(auth.reason_code);
        auth.properties.authentication_method = Some(method);
        if !self.peer.problem_information {
            auth.properties.reason_string = None;
            auth.properties.user_properties.clear();
        }
        self.reauth_in_progress = auth.reason_code == ReasonCode::CONTINUE_AUTHENTICATION;
        self.push(Packet::Auth(auth));
    }
}

/// The properties of an acknowledgement the broker decides.
fn ack_properties_mut(packet: &mut Packet) -> Option<&mut AckProperties> {
    match packet {
        Packet::PubAck(a) | Packet::PubRec(a) => Some(&mut a.properties),
        Packet::SubAck(a) => Some(&mut a.properties),
        Packet::UnsubAck(a) => Some(&mut a.properties),
        _ => None,
    }
}
