//! [`Session`]: the live protocol state of one connected client plus its
//! persistent [`SessionState`].
//!
//! Methods come in four kinds (as in quinn-proto): getters (`&self`),
//! `handle_*` inputs (packets, deliveries, timeouts), `complete_*` / `send_*`
//! answers to what the broker was asked to do, and `poll_*` outputs (packets
//! to write, the next deadline). The concerns live in their own files:
//! [`accept`] (CONNECT → CONNACK and resume), [`outbound`] (deliveries,
//! inflight window, aliases, size), [`complete`] (acks the broker decides),
//! [`close`], and one file per inbound packet type under [`handle`].

mod accept;
mod close;
mod complete;
mod handle;
mod idle;
mod outbound;
mod quiet;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytestring::ByteString;
use roost_codec::{
    Auth, Encoder, LastWill, Packet, PacketId, ProtocolVersion, ReasonCode, Subscribe, Unsubscribe,
};

use crate::alias::{InboundAliases, OutboundAliases};
use crate::config::SessionConfig;
use crate::keepalive::KeepAlive;
use crate::message::Message;
use crate::session_event::{DropReason, SessionEvent, Wanted};
use crate::state::{DropCounters, InboundQos2, SessionState, Subscriptions};
use crate::violation::Violation;

pub use quiet::QuietSession;

/// What the client's CONNECT said about what it accepts.
#[derive(Debug, Clone, Copy)]
struct PeerLimits {
    /// The client's Receive Maximum (65,535 when absent).
    receive_maximum: u16,
    /// The client's Maximum Packet Size (protocol maximum when absent).
    maximum_packet_size: u32,
    /// Request Problem Information (true when absent).
    problem_information: bool,
}

/// The live protocol state of one connected client plus its [`SessionState`].
#[derive(Debug)]
pub struct Session {
    config: Arc<SessionConfig>,
    state: SessionState,
    version: ProtocolVersion,
    session_present: bool,
    /// Boxed: most clients have no Will, and an idle session should stay small.
    will: Option<Box<LastWill>>,
    keep_alive: KeepAlive,
    peer: PeerLimits,
    /// Authentication Method from CONNECT (enhanced authentication). Boxed:
    /// few clients use one (8 bytes instead of 32 in every session).
    auth_method: Option<Box<ByteString>>,
    /// A client-initiated re-authentication is under way.
    reauth_in_progress: bool,
    /// CONNECT's Session Expiry Interval was 0 (absent), so DISCONNECT may not raise it.
    connect_expiry_was_zero: bool,
    inbound_aliases: InboundAliases,
    outbound_aliases: OutboundAliases,
    /// Inbound QoS 1 PUBLISH handed to the broker and not yet PUBACKed. At
    /// most our Receive Maximum (a `u16`): the quota is taken first.
    inbound_qos1_unacked: u16,
    /// Packets to write, in order.
    transmit: VecDeque<Packet>,
    /// How many packets `transmit` makes room for at its first packet after
    /// [`Session::release_idle_memory`] freed it: the capacity it had then
    /// (at most 128). A publisher's acknowledgements come in bursts (a
    /// read's worth at once in cluster mode, when the forwards are
    /// written); growing the queue again from nothing at each burst moved
    /// every packet at each doubling.
    transmit_hint: RoomHint,
    /// `close` was called: nothing more goes out [MQTT-3.14.4-1].
    closed: bool,
    /// The CONNACK has been handed out by `poll_transmit`; before that no
    /// DISCONNECT may be sent [MQTT-3.14.0-1].
    connack_sent: bool,
    encoder: Encoder,
}

/// A queue's capacity to allocate at its next first item
/// (`Session::transmit_hint`). Not session state, like a queue's capacity:
/// left out of `Debug`, so a session compares equal to itself woken from
/// its compact form (which keeps no hint).
#[derive(Clone, Copy, Default)]
pub(crate) struct RoomHint(pub(crate) u8);

impl std::fmt::Debug for RoomHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("_")
    }
}

/// What the broker must do after [`Session::handle_packet`].
#[derive(Debug)]
pub enum Inbound {
    /// Nothing (acks, ping, PUBREL for a known id, duplicate QoS 2 PUBLISH already answered…).
    Nothing,
    /// A new application message (alias resolved, `expires_at` set). QoS 0:
    /// route and forget. QoS 1/2: route, then
    /// [`Session::complete_publish`]`(packet_id, qos, reason)`.
    Publish {
        /// The message to route.
        message: Message,
        /// Packet identifier to complete (QoS 1/2).
        packet_id: Option<PacketId>,
    },
    /// Validate and authorize each filter ([`Session::validate_subscribe`]),
    /// update the router, then [`Session::complete_subscribe`], then deliver
    /// retained messages per Retain Handling via `handle_delivery`.
    Subscribe(Subscribe),
    /// Update the router, then [`Session::complete_unsubscribe`].
    Unsubscribe(Unsubscribe),
    /// Client DISCONNECT, validated; the Session Expiry Interval is already
    /// updated. `publish_will` is true when the Will survives it (5.0: any
    /// reason but 0x00, e.g. 0x04 Disconnect with Will Message; 3.x: never).
    Disconnect {
        /// The client's reason code.
        reason: ReasonCode,
        /// Whether the Will is to be published (after its delay).
        publish_will: bool,
    },
    /// AUTH from the client (re-authentication): run the authenticator, then
    /// [`Session::send_auth`] or [`Session::close`] with 0x87.
    Auth(Auth),
}

/// Result of [`Session::handle_delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A PUBLISH is queued for transmit.
    Sent,
    /// Queued behind the inflight window (or offline).
    Queued,
    /// Queued; the queue was full and its oldest delivery was dropped (counted).
    QueuedDroppedOldest,
    /// Dropped (counted).
    Dropped(DropReason),
}

/// Counters for metrics and `$SYS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    /// Outbound QoS 1/2 deliveries in flight.
    pub inflight: usize,
    /// Deliveries queued behind the window.
    pub queued: usize,
    /// Inbound QoS 1/2 messages not yet acknowledged (counts against our Receive Maximum).
    pub inbound_unacked: usize,
    /// Packets waiting for `poll_transmit`.
    pub transmit_pending: usize,
    /// Drops by cause.
    pub dropped: DropCounters,
}

impl Session {
    /// The client identifier (the assigned one when the server assigned it).
    pub fn client_id(&self) -> &ByteString {
        &self.state.client_id
    }

    /// The Authentication Method of CONNECT (enhanced authentication), which
    /// a re-authentication must use again [MQTT-4.12.0-5].
    pub fn auth_method(&self) -> Option<&ByteString> {
        self.auth_method.as_deref()
    }

    /// Protocol version of the connection.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// An encoder for this connection, limited to the client's Maximum Packet Size.
    pub fn encoder(&self) -> Encoder {
        self.encoder
    }

    /// Session Present as sent in CONNACK.
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// The Will Message; `None` without one or after a DISCONNECT that deletes it.
    pub fn will(&self) -> Option<&LastWill> {
        self.will.as_deref()
    }

    /// Removes and returns the Will (when the broker publishes it, or a new
    /// connection cancels it) [MQTT-3.1.2-10].
    pub fn take_will(&mut self) -> Option<LastWill> {
        self.will.take().map(|w| *w)
    }

    /// Will Delay Interval in seconds (0 without a Will or for 3.x).
    pub fn will_delay(&self) -> u32 {
        self.will
            .as_ref()
            .and_then(|w| w.properties.will_delay_interval)
            .unwrap_or(0)
    }

    /// Session Expiry Interval in force, in seconds (`u32::MAX` = never).
    pub fn session_expiry_interval(&self) -> u32 {
        self.state.session_expiry_interval
    }

    /// Effective keep-alive in seconds (after the server cap); 0 = none.
    pub fn keep_alive(&self) -> u16 {
        self.keep_alive.seconds()
    }

    /// Granted subscriptions.
    pub fn subscriptions(&self) -> &Subscriptions {
        &self.state.subscriptions
    }

    /// The persistent state (read only).
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// [`SessionState::number_unstored`] on this session's state.
    pub fn number_unstored(&mut self, next: impl FnMut() -> u64) {
        self.state.number_unstored(next);
    }

    /// The configuration this session obeys.
    pub fn config(&self) -> &Arc<SessionConfig> {
        &self.config
    }

    /// True once [`Session::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// How many outbound QoS 1/2 PUBLISH may be unacknowledged at once:
    /// min(client's Receive Maximum, `max_inflight`) [MQTT-3.3.4-9].
    pub fn send_window(&self) -> usize {
        usize::from(
            self.peer
                .receive_maximum
                .min(self.config.max_inflight.max(1)),
        )
    }

    /// Counters for metrics.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            inflight: self.state.inflight.len(),
            queued: self.state.pending.len(),
            inbound_unacked: self.inbound_unacked(),
            transmit_pending: self.transmit.len(),
            dropped: self.state.drop_counters(),
        }
    }

    /// Feeds one decoded inbound packet. `Ok` tells the broker what to do;
    /// `Err` means the connection must close (send
    /// `close(violation.reason_code(), ..)` first).
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) -> Result<Inbound, Violation> {
        // Any packet counts as a sign of life [MQTT-3.1.2-22].
        self.keep_alive.on_packet(now);
        handle::dispatch(self, now, packet)
    }

    /// The next packet to write, in order; `None` when nothing is pending.
    /// PUBLISH packets are meant for `Encoder::encode_publish_header` plus
    /// the payload `Bytes` (zero copy).
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Packet> {
        let packet = self.transmit.pop_front();
        if matches!(packet, Some(Packet::ConnAck(_))) {
            self.connack_sent = true;
        }
        packet
    }

    /// Packets waiting for [`Session::poll_transmit`].
    pub fn transmit_len(&self) -> usize {
        self.transmit.len()
    }

    /// Earliest deadline: 1.5 × keep-alive after the last packet received
    /// [MQTT-3.1.2-22]; `None` when keep-alive is off.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            None
        } else {
            self.keep_alive.deadline()
        }
    }

    /// Runs the timers due at `now`. `Err(Violation::KeepAliveTimeout)` →
    /// the broker closes the connection (with 0x8D for 5.0).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Violation> {
        if !self.closed && self.keep_alive.is_expired(now) {
            return Err(Violation::KeepAliveTimeout);
        }
        Ok(())
    }

    /// Detaches from the connection and returns the persistent state.
    /// Topic-alias maps and other per-connection state are dropped
    /// [MQTT-3.3.2-7]; inflight deliveries stay for resume. An inbound QoS 2
    /// message the broker has not completed is kept as received, so the
    /// client's resend is answered with PUBREC rather than routed twice.
    pub fn into_state(self) -> SessionState {
        let mut state = self.state;
        for stage in state.inbound_qos2.values_mut() {
            if *stage == InboundQos2::Routing {
                *stage = InboundQos2::AwaitingPubRel(ReasonCode::SUCCESS);
            }
        }
        state
    }

    /// The oldest [`SessionEvent`] not yet taken. The broker drains these
    /// after each input (packet, delivery, timer) and hands them to its
    /// store and its hooks; with neither none are produced.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.state.poll_event()
    }

    /// Who wants events beyond the store's (see [`SessionEvent`]).
    fn wanted(&self) -> Wanted {
        Wanted::of(&self.config)
    }

    /// Inbound QoS 2 flows are recorded for the store: a store is attached
    /// and the session outlives its connection.
    fn stores_inbound(&self) -> bool {
        self.config.store_events && self.state.session_expiry_interval > 0
    }

    /// Inbound QoS 1/2 messages counted against our Receive Maximum.
    fn inbound_unacked(&self) -> usize {
        usize::from(self.inbound_qos1_unacked) + self.state.inbound_qos2.len()
    }

    fn push(&mut self, packet: Packet) {
        if !self.closed {
            if self.transmit.capacity() == 0 {
                self.transmit
                    .reserve_exact(usize::from(self.transmit_hint.0));
            }
            self.transmit.push_back(packet);
        }
    }
}
