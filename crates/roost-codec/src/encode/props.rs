//! Writing MQTT 5.0 property blocks. Each property struct lists its
//! properties once in [`WriteProps::write`]; the block length comes from
//! running the same function into a counter.

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::EncodeError;
use crate::packet::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UserProperty, WillProperties,
};
use crate::props::id;

use super::sink::{Counter, Sink, put_binary, put_str, put_varint};

/// Optional properties dropped to fit the receiver's Maximum Packet Size:
/// the spec requires leaving out Reason String and User Properties rather
/// than exceeding it (e.g. [MQTT-3.4.2-2], [MQTT-3.4.2-3]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Strip {
    /// Send every property.
    Nothing,
    /// Leave out the Reason String.
    ReasonString,
    /// Leave out the Reason String and the User Properties.
    ReasonStringAndUserProperties,
}

impl Strip {
    fn keeps_reason_string(self) -> bool {
        self == Strip::Nothing
    }
    fn keeps_user_properties(self) -> bool {
        self != Strip::ReasonStringAndUserProperties
    }
}

/// A property block.
pub(crate) trait WriteProps {
    /// Writes each present property (identifier then value).
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError>;
}

/// The length of a property block without its length prefix.
pub(crate) fn block_len<P: WriteProps>(p: &P, strip: Strip) -> Result<usize, EncodeError> {
    let mut c = Counter::default();
    p.write(&mut c, strip)?;
    Ok(c.0)
}

/// Writes Property Length then the properties [MQTT-2.2.2-1: 0 when none].
pub(crate) fn put_block<S: Sink, P: WriteProps>(
    s: &mut S,
    p: &P,
    strip: Strip,
) -> Result<(), EncodeError> {
    let len = block_len(p, strip)?;
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    put_varint(s, len, "property length")?;
    p.write(s, strip)
}

fn byte<S: Sink>(s: &mut S, property: u8, v: Option<u8>) {
    if let Some(v) = v {
        s.put_u8(property);
        s.put_u8(v);
    }
}

fn flag<S: Sink>(s: &mut S, property: u8, v: Option<bool>) {
    byte(s, property, v.map(u8::from));
}

fn two<S: Sink>(s: &mut S, property: u8, v: Option<u16>) {
    if let Some(v) = v {
        s.put_u8(property);
        s.put_u16(v);
    }
}

fn four<S: Sink>(s: &mut S, property: u8, v: Option<u32>) {
    if let Some(v) = v {
        s.put_u8(property);
        s.put_u32(v);
    }
}

fn string<S: Sink>(
    s: &mut S,
    property: u8,
    v: Option<&ByteString>,
    field: &'static str,
) -> Result<(), EncodeError> {
    match v {
        Some(v) => {
            s.put_u8(property);
            put_str(s, v, field)
        }
        None => Ok(()),
    }
}

fn binary<S: Sink>(
    s: &mut S,
    property: u8,
    v: Option<&Bytes>,
    field: &'static str,
) -> Result<(), EncodeError> {
    match v {
        Some(v) => {
            s.put_u8(property);
            put_binary(s, v, field)
        }
        None => Ok(()),
    }
}

fn reason_string<S: Sink>(
    s: &mut S,
    v: Option<&ByteString>,
    strip: Strip,
) -> Result<(), EncodeError> {
    if strip.keeps_reason_string() {
        string(s, id::REASON_STRING, v, "Reason String")?;
    }
    Ok(())
}

fn user_properties<S: Sink>(
    s: &mut S,
    v: &[UserProperty],
    strip: Strip,
) -> Result<(), EncodeError> {
    if strip.keeps_user_properties() {
        for (key, value) in v {
            s.put_u8(id::USER_PROPERTY);
            put_str(s, key, "User Property name")?;
            put_str(s, value, "User Property value")?;
        }
    }
    Ok(())
}

impl WriteProps for ConnectProperties {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        four(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        two(s, id::RECEIVE_MAXIMUM, self.receive_maximum);
        four(s, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        two(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        flag(
            s,
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        flag(
            s,
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        user_properties(s, &self.user_properties, strip)?;
        string(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
            "Authentication Method",
        )?;
        binary(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
            "Authentication Data",
        )
    }
}

impl WriteProps for WillProperties {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        four(s, id::WILL_DELAY_INTERVAL, self.will_delay_interval);
        flag(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
        );
        four(s, id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        string(
            s,
            id::CONTENT_TYPE,
            self.content_type.as_ref(),
            "Content Type",
        )?;
        string(
            s,
            id::RESPONSE_TOPIC,
            self.response_topic.as_ref(),
            "Response Topic",
        )?;
        binary(
            s,
            id::CORRELATION_DATA,
            self.correlation_data.as_ref(),
            "Correlation Data",
        )?;
        user_properties(s, &self.user_properties, strip)
    }
}

impl WriteProps for ConnAckProperties {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        four(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        two(s, id::RECEIVE_MAXIMUM, self.receive_maximum);
        byte(s, id::MAXIMUM_QOS, self.maximum_qos.map(|q| q as u8));
        flag(s, id::RETAIN_AVAILABLE, self.retain_available);
        four(s, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        string(
            s,
            id::ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier.as_ref(),
            "Assigned Client Identifier",
        )?;
        two(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        reason_string(s, self.reason_string.as_ref(), strip)?;
        user_properties(s, &self.user_properties, strip)?;
        flag(
            s,
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        flag(
            s,
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        flag(
            s,
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        two(s, id::SERVER_KEEP_ALIVE, self.server_keep_alive);
        string(
            s,
            id::RESPONSE_INFORMATION,
            self.response_information.as_ref(),
            "Response Information",
        )?;
        string(
            s,
            id::SERVER_REFERENCE,
            self.server_reference.as_ref(),
            "Server Reference",
        )?;
        string(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
            "Authentication Method",
        )?;
        binary(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
            "Authentication Data",
        )
    }
}

impl WriteProps for PublishProperties {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        flag(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
        );
        four(s, id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        two(s, id::TOPIC_ALIAS, self.topic_alias);
        string(
            s,
            id::RESPONSE_TOPIC,
            self.response_topic.as_ref(),
            "Response Topic",
        )?;
        binary(
            s,
            id::CORRELATION_DATA,
            self.correlation_data.as_ref(),
            "Correlation Data",
        )?;
        user_properties(s, &self.user_properties, strip)?;
        for &sub_id in &self.subscription_identifiers {
            s.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            put_varint(s, sub_id, "Subscription Identifier")?;
        }
        string(
            s,
            id::CONTENT_TYPE,
            self.content_type.as_ref(),
            "Content Type",
        )
    }
}

impl WriteProps for AckProperties {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        reason_string(s, self.reason_string.as_ref(), strip)?;
        user_properties(s, &self.user_properties, strip)
    }
}

impl WriteProps for SubscribeProperties {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        if let Some(sub_id) = self.subscription_identifier {
            s.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            put_varint(s, sub_id, "Subscription Identifier")?;
        }
        user_properties(s, &self.user_properties, strip)
    }
}

/// UNSUBSCRIBE has User Properties only.
pub(crate) struct UserPropertiesOnly<'a>(pub(crate) &'a [UserProperty]);

impl WriteProps for UserPropertiesOnly<'_> {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        user_properties(s, self.0, strip)
    }
}

impl WriteProps for DisconnectProperties {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        four(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        reason_string(s, self.reason_string.as_ref(), strip)?;
        user_properties(s, &self.user_properties, strip)?;
        string(
            s,
            id::SERVER_REFERENCE,
            self.server_reference.as_ref(),
            "Server Reference",
        )
    }
}

impl WriteProps for AuthProperties {
    fn write<S: Sink>(&self, s: &mut S, strip: Strip) -> Result<(), EncodeError> {
        string(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
            "Authentication Method",
        )?;
        binary(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
            "Authentication Data",
        )?;
        reason_string(s, self.reason_string.as_ref(), strip)?;
        user_properties(s, &self.user_properties, strip)
    }
}
