//! One file per inbound packet type; this dispatcher is the only place that
//! matches on the packet.

mod auth;
mod disconnect;
mod ping;
mod puback;
mod pubcomp;
mod publish;
mod pubrec;
mod pubrel;
mod subscribe;
mod unsubscribe;

use std::time::Instant;

use roost_codec::Packet;

use super::{Inbound, Session};
use crate::violation::Violation;

pub(super) fn dispatch(
    s: &mut Session,
    now: Instant,
    packet: Packet,
) -> Result<Inbound, Violation> {
    let packet_type = packet.packet_type();
    match packet {
        Packet::Publish(p) => s.handle_publish(now, p),
        Packet::PubAck(a) => Ok(s.handle_puback(now, &a)),
        Packet::PubRec(r) => Ok(s.handle_pubrec(now, &r)),
        Packet::PubRel(r) => Ok(s.handle_pubrel(&r)),
        Packet::PubComp(c) => Ok(s.handle_pubcomp(now, &c)),
        Packet::Subscribe(sub) => s.handle_subscribe(sub),
        Packet::Unsubscribe(u) => Ok(s.handle_unsubscribe(u)),
        Packet::PingReq => Ok(s.handle_pingreq()),
        Packet::Disconnect(d) => s.handle_disconnect(d),
        Packet::Auth(a) => s.handle_auth(a),
        // [MQTT-3.1.0-2]
        Packet::Connect(_) => Err(Violation::SecondConnect),
        Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
            Err(Violation::ServerOnlyPacket(packet_type))
        }
    }
}
