//! SUBSCRIBE and UNSUBSCRIBE bodies.

use crate::error::EncodeError;
use crate::packet::{Subscribe, Unsubscribe};
use crate::types::{ProtocolVersion, SubscriptionOptions};

use super::props::{Strip, UserPropertiesOnly, put_block};
use super::sink::{Sink, put_str};

pub(super) fn subscribe<S: Sink>(
    version: ProtocolVersion,
    sub: &Subscribe,
    s: &mut S,
) -> Result<(), EncodeError> {
    s.put_u16(sub.packet_id.get());
    let v5 = version.is_v5();
    if v5 {
        put_block(s, &sub.properties, Strip::Nothing)?;
    }
    for (filter, options) in &sub.filters {
        put_str(s, filter, "topic filter")?;
        s.put_u8(options_byte(options, v5));
    }
    Ok(())
}

/// 5.0 3.8.3.1; 3.x carries the QoS bits only.
fn options_byte(o: &SubscriptionOptions, v5: bool) -> u8 {
    let qos = o.qos as u8;
    if !v5 {
        return qos;
    }
    qos | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | ((o.retain_handling as u8) << 4)
}

pub(super) fn unsubscribe<S: Sink>(
    version: ProtocolVersion,
    u: &Unsubscribe,
    s: &mut S,
) -> Result<(), EncodeError> {
    s.put_u16(u.packet_id.get());
    if version.is_v5() {
        put_block(s, &UserPropertiesOnly(&u.user_properties), Strip::Nothing)?;
    }
    for filter in &u.filters {
        put_str(s, filter, "topic filter")?;
    }
    Ok(())
}
