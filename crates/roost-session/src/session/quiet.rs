//! [`QuietSession`]: the compact form of a session with nothing under way,
//! kept while its connection hibernates.
//!
//! A live [`Session`] carries five queues and maps (packets to transmit,
//! queued deliveries, the inflight window, inbound QoS 2 awaiting PUBREL,
//! changes for the session store): 160 of its 344 bytes, empty in every
//! idle client. A hibernating connection keeps its session for as long as
//! the client stays idle, so [`Session::into_quiet`] drops the empty ones and
//! [`QuietSession::wake`] rebuilds them, changing no protocol state. The
//! client identifier is left with the caller too (the broker's registry
//! slot holds it), the encoder is rebuilt from the version and the client's
//! Maximum Packet Size, the keep-alive and alias-table limits are packed with
//! the other small fields, the last packet's time takes 8 bytes, and drop
//! counters and the authentication method, which few sessions have, share
//! one pointer: 104 bytes kept.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use roost_codec::{Encoder, LastWill, ProtocolVersion};

use super::{PeerLimits, RoomHint, Session};
use crate::alias::{InboundAliases, InboundTopics, OutboundAliases, OutboundAssigned};
use crate::config::SessionConfig;
use crate::inflight::Inflight;
use crate::keepalive::KeepAlive;
use crate::state::{DropCounters, SessionState, Subscriptions};

/// A session with nothing to transmit, in flight, queued, awaiting PUBREL
/// or owed to the store (see the module documentation).
#[derive(Debug)]
pub struct QuietSession {
    config: Arc<SessionConfig>,
    subscriptions: Subscriptions,
    will: Option<Box<LastWill>>,
    /// Drop counters and the authentication method, which few sessions
    /// have: one pointer for both.
    rare: Option<Box<Rare>>,
    /// When the last packet arrived ([`Moment`]), and the Keep Alive (with
    /// the small fields below): the session's `KeepAlive` in its parts.
    last_received: Moment,
    keep_alive_seconds: u16,
    inbound_alias_topics: InboundTopics,
    outbound_alias_assigned: OutboundAssigned,
    peer: PeerLimits,
    session_expiry_interval: u32,
    inbound_alias_maximum: u16,
    outbound_alias_maximum: u16,
    /// The inflight window's last packet identifier: the next one handed out
    /// follows it, as it would have without the hibernation.
    last_packet_id: u16,
    version: ProtocolVersion,
    session_present: bool,
    reauth_in_progress: bool,
    connect_expiry_was_zero: bool,
    closed: bool,
    connack_sent: bool,
}

/// An `Instant` in 8 bytes instead of 16: signed nanoseconds from a
/// process-wide reference, exact either side of it (±292 years).
#[derive(Debug, Clone, Copy)]
struct Moment(i64);

/// The reference of every [`Moment`].
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

impl Moment {
    fn of(at: Instant) -> Self {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let epoch = *EPOCH;
        Self(match at.checked_duration_since(epoch) {
            Some(after) => nanos(after),
            None => -nanos(epoch.duration_since(at)),
        })
    }

    fn instant(self) -> Instant {
        let epoch = *EPOCH;
        let offset = Duration::from_nanos(self.0.unsigned_abs());
        let at = if self.0 >= 0 {
            epoch.checked_add(offset)
        } else {
            epoch.checked_sub(offset)
        };
        at.unwrap_or(epoch)
    }
}

/// What few quiet sessions have: one box for both, none for most.
#[derive(Debug, Default)]
struct Rare {
    dropped: Option<Box<DropCounters>>,
    auth_method: Option<Box<ByteString>>,
}

impl Session {
    /// The compact form, when nothing is under way: nothing to transmit, in
    /// flight or queued, no inbound QoS 1 or 2 exchange open, nothing owed
    /// to the session store. Otherwise the session comes back unchanged, in a
    /// box (it is kept aside just the same, and is large).
    /// The client identifier is dropped: [`QuietSession::wake`] takes it back.
    pub fn into_quiet(self) -> Result<QuietSession, Box<Session>> {
        let state = &self.state;
        let busy = !self.transmit.is_empty()
            || self.inbound_qos1_unacked != 0
            || !state.inflight.is_empty()
            || !state.pending.is_empty()
            || !state.inbound_qos2.is_empty()
            || !state.events.is_empty();
        if busy {
            return Err(Box::new(self));
        }
        let Session {
            config,
            state,
            version,
            session_present,
            will,
            keep_alive,
            peer,
            auth_method,
            reauth_in_progress,
            connect_expiry_was_zero,
            inbound_aliases,
            outbound_aliases,
            inbound_qos1_unacked: _,
            transmit: _,
            transmit_hint: _,
            closed,
            connack_sent,
            encoder: _,
        } = self;
        let (inbound_alias_maximum, inbound_alias_topics) = inbound_aliases.into_parts();
        let (outbound_alias_maximum, outbound_alias_assigned) = outbound_aliases.into_parts();
        let SessionState {
            client_id: _,
            subscriptions,
            inflight,
            pending: _,
            inbound_qos2: _,
            session_expiry_interval,
            dropped,
            events: _,
        } = state;
        let rare = (dropped.is_some() || auth_method.is_some()).then(|| {
            Box::new(Rare {
                dropped,
                auth_method,
            })
        });
        Ok(QuietSession {
            config,
            subscriptions,
            will,
            rare,
            last_received: Moment::of(keep_alive.last_received()),
            keep_alive_seconds: keep_alive.seconds(),
            inbound_alias_topics,
            outbound_alias_assigned,
            peer,
            session_expiry_interval,
            inbound_alias_maximum,
            outbound_alias_maximum,
            last_packet_id: inflight.last_id(),
            version,
            session_present,
            reauth_in_progress,
            connect_expiry_was_zero,
            closed,
            connack_sent,
        })
    }
}

impl QuietSession {
    /// When the session needs its connection awake again (the keep-alive
    /// deadline), as [`Session::poll_timeout`] would say.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            None
        } else {
            KeepAlive::new(self.keep_alive_seconds, self.last_received.instant()).deadline()
        }
    }

    /// The live session again, exactly as it was put to sleep, with its
    /// client identifier (the one [`Session::client_id`] gave before).
    pub fn wake(self, client_id: ByteString) -> Session {
        let QuietSession {
            config,
            subscriptions,
            will,
            rare,
            last_received,
            keep_alive_seconds,
            inbound_alias_topics,
            outbound_alias_assigned,
            peer,
            session_expiry_interval,
            inbound_alias_maximum,
            outbound_alias_maximum,
            last_packet_id,
            version,
            session_present,
            reauth_in_progress,
            connect_expiry_was_zero,
            closed,
            connack_sent,
        } = self;
        let Rare {
            dropped,
            auth_method,
        } = rare.map(|rare| *rare).unwrap_or_default();
        Session {
            config,
            state: SessionState {
                client_id,
                subscriptions,
                inflight: Inflight::after(last_packet_id),
                pending: VecDeque::new(),
                inbound_qos2: BTreeMap::new(),
                session_expiry_interval,
                dropped,
                events: VecDeque::new(),
            },
            version,
            session_present,
            will,
            keep_alive: KeepAlive::new(keep_alive_seconds, last_received.instant()),
            peer,
            auth_method,
            reauth_in_progress,
            connect_expiry_was_zero,
            inbound_aliases: InboundAliases::from_parts(
                inbound_alias_maximum,
                inbound_alias_topics,
            ),
            outbound_aliases: OutboundAliases::from_parts(
                outbound_alias_maximum,
                outbound_alias_assigned,
            ),
            inbound_qos1_unacked: 0,
            transmit: VecDeque::new(),
            transmit_hint: RoomHint::default(),
            closed,
            connack_sent,
            // What `Session::accept` builds; nothing changes it later.
            encoder: Encoder::new(version).with_max_packet_size(peer.maximum_packet_size),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{EPOCH, Moment};

    #[test]
    fn a_moment_gives_back_its_instant_on_either_side_of_the_reference() {
        let epoch = *EPOCH;
        for at in [
            epoch,
            epoch + Duration::from_nanos(1),
            epoch + Duration::from_secs(86_400 * 365),
            epoch
                .checked_sub(Duration::from_nanos(123_456_789))
                .unwrap_or(epoch),
            Instant::now(),
        ] {
            assert_eq!(Moment::of(at).instant(), at);
        }
    }
}
