//! EMQX-style client events (`[sys] client_events`, off by default):
//! `$SYS/brokers/<node>/clients/<client id>/connected` and `/disconnected`,
//! one JSON object each, QoS 0, not retained, published through the core's
//! normal path (subscribers' ACLs apply). When off, a connection pays one
//! boolean test.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{ProtocolVersion, PublishProperties, QoS};
use roost_hooks::ClientInfo;
use roost_session::Message;
use serde_json::json;

use crate::core::Core;

/// A client was accepted (its CONNACK 0x00 is on its way).
pub(crate) fn connected(core: &Core, client: &ClientInfo, keep_alive: u16, clean_start: bool) {
    if !core.config.sys.client_events {
        return;
    }
    let now = unix_ms();
    let body = json!({
        "clientid": &*client.client_id,
        "username": client.username.as_deref(),
        "ipaddress": client.peer.ip().to_string(),
        "port": client.peer.port(),
        "proto_name": "MQTT",
        "proto_ver": proto_ver(client.protocol),
        "keepalive": keep_alive,
        "clean_start": clean_start,
        "connack": 0,
        "connected_at": now,
        "ts": now,
    });
    publish(core, client, "connected", &body);
}

/// A connected client's connection ended; `reason` as EMQX names it
/// (`normal`, `kicked`, `takenover`, `keepalive_timeout`, ...).
pub(crate) fn disconnected(core: &Core, client: &ClientInfo, reason: &str) {
    if !core.config.sys.client_events {
        return;
    }
    let now = unix_ms();
    let body = json!({
        "clientid": &*client.client_id,
        "username": client.username.as_deref(),
        "ipaddress": client.peer.ip().to_string(),
        "proto_ver": proto_ver(client.protocol),
        "reason": reason,
        "disconnected_at": now,
        "ts": now,
    });
    publish(core, client, "disconnected", &body);
}

fn publish(core: &Core, client: &ClientInfo, event: &str, body: &serde_json::Value) {
    let topic = format!(
        "$SYS/brokers/{}/clients/{}/{event}",
        core.node_id(),
        topic_level(&client.client_id)
    );
    let message = Message {
        topic: ByteString::from(topic),
        payload: Bytes::from(body.to_string()),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: PublishProperties::default(),
        expires_at: None,
        publisher: None,
    };
    core.publish(message, None, Instant::now());
}

/// A client id as one topic level: `/`, `+`, `#` and `%` percent-encoded
/// (a client id may hold them; a topic level may not, or would split).
fn topic_level(client_id: &str) -> std::borrow::Cow<'_, str> {
    if !client_id.contains(['/', '+', '#', '%']) {
        return client_id.into();
    }
    let mut level = String::with_capacity(client_id.len() + 8);
    for c in client_id.chars() {
        match c {
            '/' => level.push_str("%2F"),
            '+' => level.push_str("%2B"),
            '#' => level.push_str("%23"),
            '%' => level.push_str("%25"),
            c => level.push(c),
        }
    }
    level.into()
}

/// The protocol level byte of CONNECT, as EMQX reports it.
fn proto_ver(version: ProtocolVersion) -> u8 {
    match version {
        ProtocolVersion::V31 => 3,
        ProtocolVersion::V311 => 4,
        ProtocolVersion::V5 => 5,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_becomes_one_topic_level() {
        assert_eq!(topic_level("sensor-1"), "sensor-1");
        assert_eq!(topic_level("a/b+c#d%e"), "a%2Fb%2Bc%23d%25e");
    }
}
