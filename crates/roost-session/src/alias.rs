//! Topic aliases, both directions. Both maps belong to one network
//! connection and are never carried to the next [MQTT-3.3.2-7].

use std::collections::HashMap;

use bytestring::ByteString;

use crate::detach;
use crate::violation::Violation;

/// Aliases the client sets on its PUBLISH packets (5.0).
#[derive(Debug, Default)]
pub(crate) struct InboundAliases {
    /// Our Topic Alias Maximum as advertised in CONNACK.
    maximum: u16,
    /// `topics[a - 1]` is the topic of alias `a`; created and grown on first
    /// use, so a client that never uses aliases costs nothing (boxed: 8 bytes
    /// in every session instead of an empty `Vec`'s 24).
    topics: InboundTopics,
}

/// The topics of [`InboundAliases`], apart from their maximum. A boxed
/// vector: 8 bytes in sessions that never use aliases.
pub(crate) type InboundTopics = Option<Box<Vec<Option<ByteString>>>>;

/// The assignments of [`OutboundAliases`], apart from their maximum. A
/// boxed map: 8 bytes in sessions that never use aliases.
pub(crate) type OutboundAssigned = Option<Box<HashMap<ByteString, u16>>>;

impl InboundAliases {
    pub(crate) fn new(maximum: u16) -> Self {
        Self {
            maximum,
            topics: None,
        }
    }

    /// Maximum and topics apart: a sleeping session packs the maximum with
    /// its other small fields (8 bytes less than the whole struct).
    pub(crate) fn into_parts(self) -> (u16, InboundTopics) {
        (self.maximum, self.topics)
    }

    /// The aliases [`Self::into_parts`] took apart.
    pub(crate) fn from_parts(maximum: u16, topics: InboundTopics) -> Self {
        Self { maximum, topics }
    }

    /// Resolves the topic of an inbound PUBLISH: a non-empty topic with an
    /// alias (re)binds the alias; an empty topic uses the bound one.
    pub(crate) fn resolve(
        &mut self,
        alias: Option<u16>,
        topic: ByteString,
    ) -> Result<ByteString, Violation> {
        let Some(alias) = alias else {
            return if topic.is_empty() {
                Err(Violation::EmptyTopic)
            } else {
                Ok(topic)
            };
        };
        // Every alias in 1..=maximum is accepted [MQTT-3.3.2-12]; 0 and
        // anything above are not [MQTT-3.3.2-8] [MQTT-3.2.2-17].
        if alias == 0 || alias > self.maximum {
            return Err(Violation::TopicAliasInvalid(alias));
        }
        let index = usize::from(alias - 1);
        if topic.is_empty() {
            return self
                .topics
                .as_deref()
                .and_then(|topics| topics.get(index))
                .and_then(Option::clone)
                .ok_or(Violation::UnknownTopicAlias(alias));
        }
        let topics = self.topics.get_or_insert_default();
        if topics.len() <= index {
            topics.resize(index + 1, None);
        }
        if let Some(slot) = topics.get_mut(index) {
            // Lives as long as the connection: do not pin the read buffer.
            *slot = Some(detach::string(&topic));
        }
        Ok(topic)
    }
}

/// What to put on one outbound PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AliasPlan {
    /// No alias: full topic.
    None,
    /// Send topic and this new alias; commit after the packet is accepted.
    Assign(u16),
    /// The alias is already bound: send it with an empty topic.
    Reuse(u16),
}

/// Aliases the server assigns on PUBLISH packets to the client (5.0).
///
/// Policy: the first `maximum` distinct topics get aliases 1, 2, … in the
/// order they are sent, and keep them for the connection; later topics are
/// sent in full. No eviction, so there is no bookkeeping per message beyond
/// one map lookup.
#[derive(Debug, Default)]
pub(crate) struct OutboundAliases {
    /// The client's Topic Alias Maximum (0 = none may be sent [MQTT-3.1.2-27]).
    maximum: u16,
    /// Created on the first assignment: most connections never get one,
    /// and an empty map still costs 48 bytes in every session.
    assigned: OutboundAssigned,
}

impl OutboundAliases {
    pub(crate) fn new(maximum: u16) -> Self {
        Self {
            maximum,
            assigned: None,
        }
    }

    /// Maximum and assignments apart (see [`InboundAliases::into_parts`]).
    pub(crate) fn into_parts(self) -> (u16, OutboundAssigned) {
        (self.maximum, self.assigned)
    }

    /// The aliases [`Self::into_parts`] took apart.
    pub(crate) fn from_parts(maximum: u16, assigned: OutboundAssigned) -> Self {
        Self { maximum, assigned }
    }

    /// Decides the alias for `topic` without changing state.
    pub(crate) fn plan(&self, topic: &str) -> AliasPlan {
        if self.maximum == 0 {
            return AliasPlan::None;
        }
        let assigned = self.assigned.as_deref();
        if let Some(&alias) = assigned.and_then(|a| a.get(topic)) {
            return AliasPlan::Reuse(alias);
        }
        // Never above the client's maximum [MQTT-3.1.2-26] and never 0
        // [MQTT-3.3.2-8]: aliases run 1..=maximum.
        match u16::try_from(assigned.map_or(0, HashMap::len)) {
            Ok(used) if used < self.maximum => AliasPlan::Assign(used + 1),
            _ => AliasPlan::None,
        }
    }

    /// Records an `Assign` plan once its PUBLISH is on its way.
    pub(crate) fn commit(&mut self, plan: AliasPlan, topic: &ByteString) {
        if let AliasPlan::Assign(alias) = plan {
            // Lives as long as the connection: do not pin the publisher's buffer.
            self.assigned
                .get_or_insert_default()
                .insert(detach::string(topic), alias);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_aliases_stop_at_maximum() {
        let mut a = OutboundAliases::new(2);
        for (topic, want) in [
            ("a", AliasPlan::Assign(1)),
            ("b", AliasPlan::Assign(2)),
            ("c", AliasPlan::None),
        ] {
            let plan = a.plan(topic);
            assert_eq!(plan, want);
            a.commit(plan, &ByteString::from(topic));
        }
        assert_eq!(a.plan("a"), AliasPlan::Reuse(1));
    }

    #[test]
    fn inbound_alias_rebinds() {
        let mut a = InboundAliases::new(3);
        assert_eq!(a.resolve(Some(3), "x".into()), Ok("x".into()));
        assert_eq!(a.resolve(Some(3), "".into()), Ok("x".into()));
        assert_eq!(a.resolve(Some(3), "y".into()), Ok("y".into()));
        assert_eq!(a.resolve(Some(3), "".into()), Ok("y".into()));
        assert_eq!(
            a.resolve(Some(2), "".into()),
            Err(Violation::UnknownTopicAlias(2))
        );
    }
}
