//! CONNECT accepted → CONNACK, and the resume of a stored session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytestring::ByteString;
use roost_codec::{
    ConnAck, ConnAckProperties, Connect, ConnectProperties, Encoder, Packet, PubResponse, QoS,
    ReasonCode,
};

use super::outbound::{build_publish, publish_fits};
use super::{DropReason, PeerLimits, RoomHint, Session};
use crate::alias::{InboundAliases, OutboundAliases};
use crate::config::SessionConfig;
use crate::connect::AuthSuccess;
use crate::detach;
use crate::inflight::OutboundStage;
use crate::keepalive::{EffectiveKeepAlive, KeepAlive, effective_keep_alive};
use crate::message::Delivery;
use crate::state::SessionState;
use crate::will::SESSION_NEVER_EXPIRES;
use roost_codec::PROTOCOL_MAX_PACKET_SIZE;

impl Session {
    /// Accepts a CONNECT that passed [`crate::check_connect`] and
    /// authentication.
    ///
    /// - `connect.client_id` (or `assigned_client_id`) is kept for the
    ///   session's life as given: pass an owned copy, not a slice of a read
    ///   buffer, which it would pin. (The broker shares one copy between the
    ///   session, its registry slot and the hooks' `ClientInfo`.) Everything
    ///   else the session keeps from CONNECT it copies out.
    /// - `assigned_client_id`: `Some(id)` when the client sent an empty
    ///   identifier and the broker chose one [MQTT-3.1.3-6]; 5.0 clients get it
    ///   in CONNACK [MQTT-3.1.3-7] [MQTT-3.2.2-16].
    /// - `previous`: the stored state to resume; ignored (dropped) when Clean
    ///   Start is 1 [MQTT-3.1.2-4]. Session Present is 1 exactly when it is
    ///   resumed [MQTT-3.2.2-2] [MQTT-3.2.2-3].
    /// - `auth`: the outcome of enhanced authentication, echoed in CONNACK
    ///   only when CONNECT carried an Authentication Method [MQTT-4.12.0-6].
    ///
    /// Queues the CONNACK first [MQTT-3.2.0-1], then, on resume, every
    /// unacknowledged PUBLISH (DUP = 1) and PUBREL in original order with
    /// original packet identifiers [MQTT-4.4.0-1], then queued messages
    /// within the client's Receive Maximum.
    pub fn accept(
        connect: Connect,
        assigned_client_id: Option<ByteString>,
        previous: Option<SessionState>,
        config: Arc<SessionConfig>,
        auth: Option<AuthSuccess>,
        now: Instant,
    ) -> Session {
        let Connect {
            protocol,
            clean_start,
            keep_alive,
            client_id,
            will,
            properties,
            ..
        } = connect;
        let v5 = protocol.is_v5();
        let client_id = assigned_client_id.clone().unwrap_or(client_id);

        let resumed = if clean_start { None } else { previous };
        let session_present = resumed.is_some();
        let mut state = resumed.unwrap_or_else(|| SessionState::new(client_id.clone()));
        state.client_id = client_id.clone();

        let requested_expiry = match (v5, clean_start) {
            (true, _) => properties.session_expiry_interval.unwrap_or(0),
            (false, true) => 0,
            (false, false) => SESSION_NEVER_EXPIRES,
        };
        state.session_expiry_interval = requested_expiry.min(config.max_session_expiry_interval);

        let ka = effective_keep_alive(keep_alive, config.server_keep_alive, protocol);
        let peer = PeerLimits {
            receive_maximum: properties.receive_maximum.unwrap_or(u16::MAX).max(1),
            maximum_packet_size: properties
                .maximum_packet_size
                .unwrap_or(PROTOCOL_MAX_PACKET_SIZE)
                .max(1),
            problem_information: properties.request_problem_information != Some(false),
        };
        let outbound_alias_max = if v5 && config.outbound_topic_aliases {
            properties.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        };
        let inbound_alias_max = if v5 { config.topic_alias_maximum } else { 0 };

        let connack = if v5 {
            ConnAck {
                session_present,
                reason_code: ReasonCode::SUCCESS,
                properties: connack_properties(
                    &config,
                    &properties,
                    &client_id,
                    assigned_client_id,
                    requested_expiry,
                    state.session_expiry_interval,
                    ka,
                    auth,
                ),
            }
        } else {
            ConnAck {
                session_present,
                reason_code: ReasonCode::SUCCESS,
                properties: ConnAckProperties::default(),
            }
        };

        let mut session = Session {
            encoder: Encoder::new(protocol).with_max_packet_size(peer.maximum_packet_size),
            version: protocol,
            session_present,
            will: will.as_ref().map(|w| Box::new(detach::will(w))),
            keep_alive: KeepAlive::new(ka.seconds, now),
            peer,
            auth_method: properties
                .authentication_method
                .as_ref()
                .map(|method| Box::new(detach::string(method))),
            reauth_in_progress: false,
            connect_expiry_was_zero: requested_expiry == 0,
            inbound_aliases: InboundAliases::new(inbound_alias_max),
            outbound_aliases: OutboundAliases::new(outbound_alias_max),
            inbound_qos1_unacked: 0,
            transmit: VecDeque::new(),
            transmit_hint: RoomHint::default(),
            closed: false,
            connack_sent: false,
            config,
            state,
        };
        session.transmit.push_back(Packet::ConnAck(connack));
        if session_present {
            session.resend_inflight(now);
        }
        session.fill_window(now);
        session
    }

    /// Re-sends, in original order and with original packet identifiers,
    /// every PUBLISH the client has not acknowledged (DUP = 1
    /// [MQTT-3.3.1-1]) and every PUBREL it has not completed [MQTT-4.4.0-1].
    /// A PUBLISH that no longer fits the client's Maximum Packet Size is
    /// dropped as if delivered [MQTT-3.1.2-25].
    fn resend_inflight(&mut self, now: Instant) {
        let Session {
            config,
            state,
            transmit,
            outbound_aliases,
            encoder,
            version,
            peer,
            ..
        } = self;
        let mut too_large = Vec::new();
        for entry in state.inflight.iter() {
            let delivery = match &entry.stage {
                OutboundStage::AwaitingPubAck(d) | OutboundStage::AwaitingPubRec(d) => d,
                OutboundStage::AwaitingPubComp => {
                    transmit.push_back(Packet::PubRel(PubResponse::success(entry.packet_id)));
                    continue;
                }
            };
            let plan = outbound_aliases.plan(&delivery.message.topic);
            let publish = build_publish(*version, delivery, Some(entry.packet_id), true, plan, now);
            if publish_fits(encoder, &publish, peer.maximum_packet_size) {
                outbound_aliases.commit(plan, &delivery.message.topic);
                transmit.push_back(Packet::Publish(publish));
            } else {
                too_large.push(entry.packet_id);
            }
        }
        if !too_large.is_empty() {
            state.dropped_mut().too_large += too_large.len() as u64;
            let wanted = crate::session_event::Wanted::of(config);
            let dropped: Vec<(Option<u64>, Delivery)> = state
                .inflight
                .iter()
                .filter(|e| too_large.contains(&e.packet_id))
                .filter_map(|e| match &e.stage {
                    OutboundStage::AwaitingPubAck(d) | OutboundStage::AwaitingPubRec(d) => {
                        Some((e.store_seq, d.clone()))
                    }
                    OutboundStage::AwaitingPubComp => None,
                })
                .collect();
            for (seq, mut delivery) in dropped {
                delivery.store_seq = seq;
                state.record_dropped(&delivery, DropReason::TooLarge, wanted);
            }
            state.inflight.retain(|e| !too_large.contains(&e.packet_id));
        }
    }
}

/// The 5.0 CONNACK properties: every server limit that differs from the
/// protocol default is advertised.
#[allow(clippy::too_many_arguments)]
fn connack_properties(
    config: &SessionConfig,
    connect: &ConnectProperties,
    client_id: &ByteString,
    assigned_client_id: Option<ByteString>,
    requested_expiry: u32,
    granted_expiry: u32,
    ka: EffectiveKeepAlive,
    auth: Option<AuthSuccess>,
) -> ConnAckProperties {
    let receive_maximum = config.effective_receive_maximum();
    let mut p = ConnAckProperties {
        session_expiry_interval: (granted_expiry != requested_expiry).then_some(granted_expiry),
        receive_maximum: (receive_maximum != u16::MAX).then_some(receive_maximum),
        // Advertised when QoS 1 or 2 is unsupported [MQTT-3.2.2-9].
        maximum_qos: (config.maximum_qos != QoS::ExactlyOnce).then_some(config.maximum_qos),
        retain_available: (!config.retain_available).then_some(false),
        maximum_packet_size: (config.maximum_packet_size < PROTOCOL_MAX_PACKET_SIZE)
            .then_some(config.maximum_packet_size.max(1)),
        assigned_client_identifier: assigned_client_id,
        topic_alias_maximum: (config.topic_alias_maximum > 0).then_some(config.topic_alias_maximum),
        wildcard_subscription_available: (!config.wildcard_subscription_available).then_some(false),
        subscription_identifiers_available: (!config.subscription_identifiers_available)
            .then_some(false),
        shared_subscription_available: (!config.shared_subscription_available).then_some(false),
        server_keep_alive: ka.server_keep_alive,
        ..ConnAckProperties::default()
    };
    // Only when asked for [MQTT-3.1.2-28].
    if connect.request_response_information == Some(true)
        && let Some(prefix) = &config.response_information
    {
        p.response_information = Some(ByteString::from(format!("{prefix}{client_id}")));
    }
    // Only when CONNECT used enhanced authentication [MQTT-4.12.0-6], and
    // then with CONNECT's method [MQTT-4.12.0-5].
    if let Some(method) = &connect.authentication_method {
        p.authentication_method = Some(method.clone());
        p.authentication_data = auth.and_then(|a| a.data);
    }
    p
}
