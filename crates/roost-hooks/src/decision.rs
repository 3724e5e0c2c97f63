//! Allow or deny, with the reason code that goes on the wire.

use roost_codec::ReasonCode;

/// The answer of a decision hook. A denial carries the reason code the broker
/// sends (in CONNACK, PUBACK/PUBREC, SUBACK for that filter, UNSUBACK, AUTH or
/// DISCONNECT, whichever answers the packet) and an optional Reason String
/// (sent only when the client did not turn problem information off).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Decision {
    /// Go on.
    #[default]
    Allow,
    /// Refuse.
    Deny {
        /// Reason code, 0x80 or above.
        reason: ReasonCode,
        /// Optional human-readable reason.
        reason_string: Option<String>,
    },
}

impl Decision {
    /// Denies with a reason code.
    pub fn deny(reason: ReasonCode) -> Self {
        Self::Deny {
            reason,
            reason_string: None,
        }
    }

    /// Denies with a reason code and a reason string.
    pub fn deny_with(reason: ReasonCode, reason_string: impl Into<String>) -> Self {
        Self::Deny {
            reason,
            reason_string: Some(reason_string.into()),
        }
    }

    /// True for [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow)
    }
}
