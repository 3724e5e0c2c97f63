//! Which reason codes each packet type may carry, so the session never puts
//! a code on the wire that the packet does not allow, whatever the caller
//! passed. An unsuitable code becomes the packet's closest generic failure.

use roost_codec::{ProtocolVersion, ReasonCode};

/// PUBACK / PUBREC codes [MQTT-3.4.2-1] [MQTT-3.5.2-1].
pub(crate) fn for_puback(rc: ReasonCode) -> ReasonCode {
    match rc.0 {
        0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99 => rc,
        _ => ReasonCode::UNSPECIFIED_ERROR,
    }
}

/// SUBACK codes [MQTT-3.9.3-2]; 3.1.1 only has 0x00, 0x01, 0x02 and 0x80
/// [MQTT-3.9.3-2 (3.1.1)].
pub(crate) fn for_suback(rc: ReasonCode, version: ProtocolVersion) -> ReasonCode {
    match (rc.0, version.is_v5()) {
        (0x00..=0x02, _) => rc,
        (0x80 | 0x83 | 0x87 | 0x8F | 0x91 | 0x97 | 0x9E | 0xA1 | 0xA2, true) => rc,
        _ => ReasonCode::UNSPECIFIED_ERROR,
    }
}

/// UNSUBACK codes [MQTT-3.11.3-2].
pub(crate) fn for_unsuback(rc: ReasonCode) -> ReasonCode {
    match rc.0 {
        0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91 => rc,
        _ => ReasonCode::UNSPECIFIED_ERROR,
    }
}

/// DISCONNECT codes a server may send [MQTT-3.14.2-1]. Authentication
/// failures that only CONNACK can name become 0x87 Not authorized.
pub(crate) fn for_server_disconnect(rc: ReasonCode) -> ReasonCode {
    match rc.0 {
        0x00 | 0x80..=0x83 | 0x87 | 0x89 | 0x8B | 0x8D..=0x90 | 0x93..=0xA2 => rc,
        0x86 | 0x8A | 0x8C => ReasonCode::NOT_AUTHORIZED,
        _ => ReasonCode::UNSPECIFIED_ERROR,
    }
}

/// AUTH codes a server may send: 0x00 Success or 0x18 Continue authentication
/// [MQTT-3.15.2-1]. A refusal is not an AUTH (the broker closes instead), so
/// anything but Success is sent as Continue.
pub(crate) fn for_server_auth(rc: ReasonCode) -> ReasonCode {
    if rc == ReasonCode::SUCCESS {
        rc
    } else {
        ReasonCode::CONTINUE_AUTHENTICATION
    }
}

/// CONNACK refusal codes [MQTT-3.2.2-8].
pub(crate) fn for_connack_refusal(rc: ReasonCode) -> ReasonCode {
    match rc.0 {
        0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F => rc,
        _ => ReasonCode::UNSPECIFIED_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_mqtt_3_4_2_1_puback_codes_are_puback_codes() {
        assert_eq!(
            for_puback(ReasonCode::NO_MATCHING_SUBSCRIBERS),
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        );
        assert_eq!(
            for_puback(ReasonCode::QUOTA_EXCEEDED),
            ReasonCode::QUOTA_EXCEEDED
        );
        assert_eq!(
            for_puback(ReasonCode::BANNED),
            ReasonCode::UNSPECIFIED_ERROR
        );
        assert_eq!(
            for_puback(ReasonCode::GRANTED_QOS_1),
            ReasonCode::UNSPECIFIED_ERROR
        );
    }

    #[test]
    fn v5_mqtt_3_14_2_1_server_disconnect_codes_are_disconnect_codes() {
        assert_eq!(
            for_server_disconnect(ReasonCode::SESSION_TAKEN_OVER),
            ReasonCode::SESSION_TAKEN_OVER
        );
        assert_eq!(
            for_server_disconnect(ReasonCode::BAD_AUTHENTICATION_METHOD),
            ReasonCode::NOT_AUTHORIZED
        );
        assert_eq!(
            for_server_disconnect(ReasonCode::DISCONNECT_WITH_WILL),
            ReasonCode::UNSPECIFIED_ERROR
        );
        assert_eq!(
            for_server_disconnect(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
            ReasonCode::UNSPECIFIED_ERROR
        );
    }

    #[test]
    fn v5_mqtt_3_2_2_8_connack_codes_are_connect_reason_codes() {
        assert_eq!(for_connack_refusal(ReasonCode::BANNED), ReasonCode::BANNED);
        assert_eq!(
            for_connack_refusal(ReasonCode::KEEP_ALIVE_TIMEOUT),
            ReasonCode::UNSPECIFIED_ERROR
        );
        assert_eq!(
            for_connack_refusal(ReasonCode::SUCCESS),
            ReasonCode::UNSPECIFIED_ERROR
        );
    }

    #[test]
    fn v5_mqtt_3_15_2_1_server_auth_codes_are_auth_codes() {
        assert_eq!(for_server_auth(ReasonCode::SUCCESS), ReasonCode::SUCCESS);
        assert_eq!(
            for_server_auth(ReasonCode::REAUTHENTICATE),
            ReasonCode::CONTINUE_AUTHENTICATION
        );
    }
}
