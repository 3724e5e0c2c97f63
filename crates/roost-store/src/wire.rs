//! Serde adapters that store protocol types by their MQTT wire values, so the
//! stored format does not move when a Rust type in `roost-codec` changes.

use roost_codec::{PacketId, QoS, RetainHandling, SubscriptionOptions};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// `QoS` as its 2-bit value (0, 1, 2).
pub(crate) mod qos {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(q: &QoS, s: S) -> Result<S::Ok, S::Error> {
        (*q as u8).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<QoS, D::Error> {
        let v = u8::deserialize(d)?;
        QoS::from_u8(v).ok_or_else(|| D::Error::custom(format!("QoS {v}")))
    }
}

/// `PacketId` as a non-zero `u16`.
pub(crate) mod packet_id {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(id: &PacketId, s: S) -> Result<S::Ok, S::Error> {
        id.get().serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PacketId, D::Error> {
        PacketId::new(u16::deserialize(d)?).ok_or_else(|| D::Error::custom("packet id 0"))
    }
}

/// The SUBSCRIBE options byte (MQTT 5.0 §3.8.3.1): bits 0-1 QoS, bit 2 No
/// Local, bit 3 Retain As Published, bits 4-5 Retain Handling.
pub(crate) fn options_to_byte(o: &SubscriptionOptions) -> u8 {
    (o.qos as u8)
        | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | ((o.retain_handling as u8) << 4)
}

/// Parses the options byte; `None` for reserved bits, QoS 3 or Retain Handling 3.
pub(crate) fn options_from_byte(b: u8) -> Option<SubscriptionOptions> {
    if b & 0b1100_0000 != 0 {
        return None;
    }
    let retain_handling = match (b >> 4) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return None,
    };
    Some(SubscriptionOptions {
        qos: QoS::from_u8(b & 0b11)?,
        no_local: b & 0b100 != 0,
        retain_as_published: b & 0b1000 != 0,
        retain_handling,
    })
}

/// `SubscriptionOptions` as the SUBSCRIBE options byte.
pub(crate) mod sub_options {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        o: &SubscriptionOptions,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        options_to_byte(o).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<SubscriptionOptions, D::Error> {
        let b = u8::deserialize(d)?;
        options_from_byte(b).ok_or_else(|| D::Error::custom(format!("options byte {b:#04x}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_options_byte_round_trips_and_invalid_ones_are_refused() {
        for b in 0..=u8::MAX {
            match options_from_byte(b) {
                Some(o) => assert_eq!(options_to_byte(&o), b),
                None => assert!(
                    b & 0xC0 != 0 || b & 0b11 == 3 || (b >> 4) & 0b11 == 3,
                    "{b:#x}"
                ),
            }
        }
    }
}
