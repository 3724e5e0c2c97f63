//! Server-initiated close.

use bytestring::ByteString;
use roost_codec::{Disconnect, DisconnectProperties, Packet, ReasonCode};

use super::Session;
use crate::connect::fits;
use crate::reason;

impl Session {
    /// Server-initiated close. Returns the DISCONNECT to send (5.0 only;
    /// `None` for 3.x, and for a second call): the reason code (one a
    /// DISCONNECT may carry [MQTT-3.14.2-1]; e.g. 0x8C becomes 0x87), a
    /// Reason String only when the client did not turn problem information
    /// off, the Server Reference when given, never a Session Expiry Interval
    /// [MQTT-3.14.2-2], and no property that would exceed the client's
    /// Maximum Packet Size [MQTT-3.14.2-3] [MQTT-3.14.2-4].
    ///
    /// Afterwards nothing else is emitted [MQTT-3.14.4-1]: packets still
    /// waiting in `poll_transmit` are discarded, so drain it first to flush them.
    /// If the CONNACK was never polled, no DISCONNECT is returned: a server
    /// sends DISCONNECT only after CONNACK [MQTT-3.14.0-1]; just close.
    pub fn close(
        &mut self,
        reason: ReasonCode,
        reason_string: Option<&str>,
        server_reference: Option<&str>,
    ) -> Option<Packet> {
        if self.closed {
            return None;
        }
        self.closed = true;
        self.transmit.clear();
        if !self.version.is_v5() || !self.connack_sent {
            return None;
        }
        let properties = DisconnectProperties {
            session_expiry_interval: None,
            reason_string: reason_string
                .filter(|_| self.peer.problem_information)
                .map(ByteString::from),
            user_properties: Vec::new(),
            server_reference: server_reference.map(ByteString::from),
        };
        let mut packet = Packet::Disconnect(Disconnect {
            reason_code: reason::for_server_disconnect(reason),
            properties,
        });
        let max = self.peer.maximum_packet_size;
        if !fits(&self.encoder, &packet, max)
            && let Packet::Disconnect(d) = &mut packet
        {
            d.properties.reason_string = None;
        }
        if !fits(&self.encoder, &packet, max)
            && let Packet::Disconnect(d) = &mut packet
        {
            d.properties.server_reference = None;
        }
        Some(packet)
    }
}
