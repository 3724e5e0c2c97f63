//! Per-packet hooks. Decision hooks may allow or deny (with a reason code);
//! `on_publish` may also rewrite the message. Notification hooks return
//! nothing. All have no-op defaults.

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{PacketId, QoS, ReasonCode, SubscriptionOptions, UserProperty};

use crate::{BoxFuture, ClientInfo, Decision, ready};

/// A message as hooks see it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageView {
    /// Topic name.
    pub topic: ByteString,
    /// Payload.
    pub payload: Bytes,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// User Properties (5.0), in order.
    pub user_properties: Vec<UserProperty>,
}

impl std::fmt::Debug for MessageView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageView")
            .field("topic", &self.topic)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .finish_non_exhaustive()
    }
}

impl MessageView {
    /// Builds a view.
    pub fn new(
        topic: ByteString,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        user_properties: Vec<UserProperty>,
    ) -> Self {
        Self {
            topic,
            payload,
            qos,
            retain,
            user_properties,
        }
    }
}

/// An inbound PUBLISH offered to `on_publish`. Changing `message` rewrites what
/// is routed (topic, payload, QoS, retain, user properties).
#[derive(Debug)]
#[non_exhaustive]
pub struct PublishCtx<'a> {
    /// The publisher.
    pub client: &'a ClientInfo,
    /// Its packet identifier (QoS > 0).
    pub packet_id: Option<PacketId>,
    /// The message; mutable for rewriting.
    pub message: MessageView,
}

impl<'a> PublishCtx<'a> {
    /// Builds a context.
    pub fn new(client: &'a ClientInfo, packet_id: Option<PacketId>, message: MessageView) -> Self {
        Self {
            client,
            packet_id,
            message,
        }
    }
}

/// The answer of `on_publish`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PublishDecision {
    /// Route the (possibly rewritten) message.
    #[default]
    Allow,
    /// Do not route; answer PUBACK/PUBREC with this reason (5.0), or drop
    /// silently for QoS 0 and 3.x.
    Deny {
        /// Reason code, 0x80 or above.
        reason: ReasonCode,
        /// Optional reason string.
        reason_string: Option<String>,
    },
    /// Close the connection with DISCONNECT and this reason.
    Disconnect(ReasonCode),
}

/// One filter of a SUBSCRIBE offered to `on_subscribe`.
#[derive(Debug)]
#[non_exhaustive]
pub struct SubscribeCtx<'a> {
    /// The subscriber.
    pub client: &'a ClientInfo,
    /// The filter as sent (including any `$share/group/` prefix).
    pub filter: &'a str,
    /// Requested options.
    pub options: SubscriptionOptions,
}

impl<'a> SubscribeCtx<'a> {
    /// Builds a context.
    pub fn new(client: &'a ClientInfo, filter: &'a str, options: SubscriptionOptions) -> Self {
        Self {
            client,
            filter,
            options,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectCause {
    /// The client sent DISCONNECT with this reason.
    Client(ReasonCode),
    /// The server closed it with this reason.
    Server(ReasonCode),
    /// The network connection was lost.
    Lost,
}

/// Why the broker discarded a message instead of delivering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropCause {
    /// The session's queue (or the live connection's outbox) was full.
    QueueFull,
    /// The Message Expiry Interval ran out while the message waited.
    Expired,
    /// Larger than the client's Maximum Packet Size.
    TooLarge,
    /// QoS 0 for an offline session (not queued unless `queue_qos0_offline`).
    Offline,
    /// The session ended (expired, Clean Start, or a connection with Session
    /// Expiry 0 closed) while still holding the message.
    SessionEnded,
    /// The publisher was not authorized to publish to the topic; the message
    /// was never routed (`client_id` is the publisher's).
    NotAuthorized,
    /// The client answered PUBACK / PUBREC with this error reason code
    /// (0x80 or above): it refused the message.
    Rejected(ReasonCode),
}

/// Per-packet hooks. Register one implementation with the broker builder;
/// compose several inside it if needed.
#[allow(unused_variables)]
pub trait Hooks: Send + Sync + 'static {
    /// After authentication, before CONNACK. Deny → CONNACK with the reason.
    fn on_connect<'a>(&'a self, client: &'a ClientInfo) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// An inbound PUBLISH, after authorization, before routing.
    fn on_publish<'a>(&'a self, ctx: &'a mut PublishCtx<'_>) -> BoxFuture<'a, PublishDecision> {
        ready(PublishDecision::Allow)
    }
    /// The client acknowledged a QoS 1 message we sent.
    fn on_puback<'a>(
        &'a self,
        client: &'a ClientInfo,
        packet_id: PacketId,
        reason: ReasonCode,
    ) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// The client sent PUBREC for a QoS 2 message we sent.
    fn on_pubrec<'a>(
        &'a self,
        client: &'a ClientInfo,
        packet_id: PacketId,
        reason: ReasonCode,
    ) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// The client sent PUBREL for a QoS 2 message it published.
    fn on_pubrel<'a>(
        &'a self,
        client: &'a ClientInfo,
        packet_id: PacketId,
        reason: ReasonCode,
    ) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// The client completed a QoS 2 message we sent.
    fn on_pubcomp<'a>(
        &'a self,
        client: &'a ClientInfo,
        packet_id: PacketId,
        reason: ReasonCode,
    ) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// One filter of a SUBSCRIBE. Deny → that filter's SUBACK code.
    fn on_subscribe<'a>(&'a self, ctx: &'a SubscribeCtx<'a>) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// One filter of an UNSUBSCRIBE. Deny → that filter's UNSUBACK code.
    fn on_unsubscribe<'a>(
        &'a self,
        client: &'a ClientInfo,
        filter: &'a str,
    ) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// PINGREQ. Deny → DISCONNECT with the reason.
    fn on_ping<'a>(&'a self, client: &'a ClientInfo) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// AUTH from the client (re-authentication). Deny → DISCONNECT with the reason.
    fn on_auth<'a>(
        &'a self,
        client: &'a ClientInfo,
        reason: ReasonCode,
    ) -> BoxFuture<'a, Decision> {
        ready(Decision::Allow)
    }
    /// The connection ended.
    fn on_disconnect(&self, client: &ClientInfo, cause: DisconnectCause) {}
    /// Whether this implementation wants [`Hooks::on_message_delivered`] and
    /// [`Hooks::on_message_dropped`]. Asked once when the broker is built;
    /// return `false` to spare their per-message cost when those two hooks
    /// are not overridden: each session then records an event per message
    /// sent, acknowledged or dropped (one reference count on the message),
    /// and the broker builds a [`MessageView`] per event.
    fn wants_message_events(&self) -> bool {
        true
    }
    /// A message reached a client. The exact point depends on the QoS it
    /// was delivered with: **QoS 0** — the PUBLISH was queued for the
    /// client's transport (written in the same turn of the connection's
    /// loop; QoS 0 has no acknowledgement). **QoS 1** — the client's PUBACK
    /// arrived with a success code. **QoS 2** — the client's PUBREC arrived
    /// with a success code: the client now owns the message and the broker
    /// never sends it again [MQTT-4.3.3]; PUBREL/PUBCOMP only release the
    /// packet identifier. `message.qos` is the QoS it was delivered with.
    /// Runs on the connection's task: keep it short.
    fn on_message_delivered(&self, client_id: &str, message: &MessageView) {}
    /// The broker discarded a message meant for `client_id` (or, for
    /// [`DropCause::NotAuthorized`], published by it). Every discard is
    /// reported once: full queue or outbox, expiry while waiting, too large
    /// for the client, QoS 0 while offline, left over when the session
    /// ended, refused by the client, or not authorized. Runs on whichever
    /// task discarded it (a publisher's, the client's, or a timer): keep it
    /// short and never block.
    fn on_message_dropped(&self, client_id: &str, message: &MessageView, cause: DropCause) {}
    /// A new session was created.
    fn on_session_created(&self, client: &ClientInfo) {}
    /// A client resumed its session.
    fn on_session_resumed(&self, client: &ClientInfo) {}
    /// A session expired (or ended with its connection).
    fn on_session_expired(&self, client_id: &str) {}
}
