//! Copies of small, long-lived strings out of the read buffer.
//!
//! Decoded strings are slices of the connection's read buffer, and a slice
//! keeps the whole buffer allocation alive. What a session keeps for its
//! lifetime (client id, will, subscription filters, topic-alias maps) is
//! copied once into its own small allocation, so an idle connection does not
//! pin a read buffer. Messages in flight are not copied: they are short-lived
//! and their payload must not be.

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{LastWill, UserProperty, WillProperties};

/// A copy of `s` that owns its bytes.
pub(crate) fn string(s: &ByteString) -> ByteString {
    ByteString::from(&**s)
}

fn bytes(b: &Bytes) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn user_properties(props: &[UserProperty]) -> Vec<UserProperty> {
    props.iter().map(|(k, v)| (string(k), string(v))).collect()
}

/// A copy of the Will that owns all its data (done once per connection).
pub(crate) fn will(w: &LastWill) -> LastWill {
    let p = &w.properties;
    LastWill {
        topic: string(&w.topic),
        payload: bytes(&w.payload),
        qos: w.qos,
        retain: w.retain,
        properties: WillProperties {
            will_delay_interval: p.will_delay_interval,
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.as_ref().map(string),
            response_topic: p.response_topic.as_ref().map(string),
            correlation_data: p.correlation_data.as_ref().map(bytes),
            user_properties: user_properties(&p.user_properties),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_do_not_share_the_buffer() {
        let buf = Bytes::from_static(b"xx-client-xx");
        let s = ByteString::try_from(buf.slice(3..9)).unwrap_or_default();
        let c = string(&s);
        assert_eq!(c, "client");
        assert_ne!(c.as_ptr(), s.as_ptr());
    }
}
