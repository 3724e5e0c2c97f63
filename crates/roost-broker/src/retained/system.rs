//! The broker's own retained values: the `$SYS/broker/...` tree
//! (`crate::sys`). Kept apart from clients' retained messages so that they
//! take none of `max_retained_messages`, are not counted in the retained
//! statistics, are not written to the session store (they are recomputed at
//! start) and are not listed by the retained-message API; a new
//! subscription to a `$SYS` filter gets them as retained messages all the
//! same (`Core::retained_for`).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytestring::ByteString;
use parking_lot::RwLock;
use roost_codec::topic::matches;
use roost_session::Message;

/// The latest value of each `$SYS` topic the broker publishes (a few dozen).
#[derive(Debug, Default)]
pub(crate) struct SystemValues(RwLock<BTreeMap<ByteString, Arc<Message>>>);

impl SystemValues {
    /// Keeps `message` as its topic's value.
    pub(crate) fn set(&self, message: Arc<Message>) {
        self.0.write().insert(message.topic.clone(), message);
    }

    /// The values a new subscription to `filter` gets. Only a filter that
    /// starts with `$` can match a `$SYS` topic (MQTT-4.7.2-1): every other
    /// SUBSCRIBE pays one byte comparison.
    pub(crate) fn matching(&self, filter: &str) -> Vec<Arc<Message>> {
        if !filter.starts_with('$') {
            return Vec::new();
        }
        self.0
            .read()
            .values()
            .filter(|m| matches(filter, &m.topic))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use roost_codec::{PublishProperties, QoS};

    use super::*;

    fn value(topic: &'static str, text: &'static str) -> Arc<Message> {
        Arc::new(Message {
            topic: ByteString::from_static(topic),
            payload: Bytes::from_static(text.as_bytes()),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: PublishProperties::default(),
            expires_at: None,
            publisher: None,
        })
    }

    #[test]
    fn the_latest_value_of_each_topic_matches_sys_filters_only() {
        let values = SystemValues::default();
        values.set(value("$SYS/broker/uptime", "1 seconds"));
        values.set(value("$SYS/broker/uptime", "2 seconds"));
        values.set(value("$SYS/broker/version", "roost"));
        let all = values.matching("$SYS/#");
        assert_eq!(all.len(), 2);
        assert_eq!(
            values.matching("$SYS/broker/uptime")[0].payload,
            "2 seconds"
        );
        assert!(values.matching("#").is_empty());
        assert!(values.matching("+/broker/uptime").is_empty());
    }
}
