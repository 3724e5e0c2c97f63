//! Server-side settings a session obeys, taken from the broker configuration.

use roost_codec::QoS;

/// Server-side settings a session obeys. Shared between sessions in an `Arc`.
///
/// Defaults are chosen for a general-purpose broker and documented per field.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Our Receive Maximum, advertised in CONNACK: how many QoS 1/2 PUBLISH
    /// packets a v5 client may have unacknowledged. Default 1024 (large enough
    /// for pipelined publishers; bounds the awaiting-PUBREL set). 0 is treated as 1.
    pub receive_maximum: u16,
    /// Highest QoS accepted on PUBLISH. Default `ExactlyOnce`.
    pub maximum_qos: QoS,
    /// Whether retained messages are supported. Default true.
    pub retain_available: bool,
    /// Largest packet we accept, advertised in CONNACK. Default 1 MiB.
    pub maximum_packet_size: u32,
    /// Inbound topic aliases we accept (Topic Alias Maximum in CONNACK). Default 64.
    pub topic_alias_maximum: u16,
    /// Assign topic aliases on outbound PUBLISH when the client allows it. Default true.
    pub outbound_topic_aliases: bool,
    /// Wildcard Subscription Available. Default true.
    pub wildcard_subscription_available: bool,
    /// Subscription Identifiers Available. Default true.
    pub subscription_identifiers_available: bool,
    /// Shared Subscription Available. Default true.
    pub shared_subscription_available: bool,
    /// Keep-alive cap for 5.0 clients: when `Some(k)` and the client asks for 0
    /// or more than `k`, the session uses `k` and sends Server Keep Alive.
    /// 3.x clients cannot be told, so the cap does not apply to them. Default `None`.
    pub server_keep_alive: Option<u16>,
    /// Cap on the Session Expiry Interval; CONNACK carries the capped value
    /// when it applies. Also the expiry of 3.x clean-session-0 sessions.
    /// Default `u32::MAX` (no cap: such sessions never expire).
    pub max_session_expiry_interval: u32,
    /// Outbound inflight cap (also bounded by the client's Receive Maximum).
    /// Default 128. 0 is treated as 1.
    pub max_inflight: u16,
    /// Per-session limit of messages waiting to be sent (offline, or beyond
    /// the inflight window). Default 1000.
    pub max_queued_messages: usize,
    /// What to drop when the queue is full. Default `DropNewest` (as Mosquitto).
    pub queue_full_policy: QueueFullPolicy,
    /// Keep QoS 0 messages for offline sessions. Default false.
    pub queue_qos0_offline: bool,
    /// PUBLISH topic names with more levels are refused (Topic Name invalid,
    /// 0x90); filters with more levels are refused with 0x8F. 0 = no limit. Default 128.
    pub max_topic_levels: usize,
    /// Subscriptions per session; beyond → SUBACK 0x97 Quota exceeded. Default 1000.
    pub max_subscriptions: usize,
    /// Longest client identifier accepted, in bytes. Default 65535: longer
    /// than the 23 the spec requires servers to allow, also for 3.1 clients.
    pub max_client_id_len: usize,
    /// Prefix for Response Information when a client requests it (the
    /// client id is appended), e.g. `"roost/response/"`. Default `None`.
    pub response_information: Option<String>,
    /// Check that payloads flagged as UTF-8 (Payload Format Indicator = 1)
    /// are UTF-8; failures are 0x99 Payload format invalid. Default true.
    pub validate_utf8_payload: bool,
    /// Server Reference to send with 0x9C / 0x9D (not used by the session
    /// itself; kept here for the broker). Default `None`.
    pub server_reference: Option<String>,
    /// A session store is attached: persistent sessions record
    /// [`crate::SessionEvent`]s for inbound QoS 2 flows (stored deliveries
    /// record theirs by their store sequence number). Default false (no
    /// store: nothing is recorded for it).
    pub store_events: bool,
    /// Somebody (the broker's hooks) wants to hear what happens to every
    /// outbound message: sessions record [`crate::SessionEvent`]s with the
    /// message for each delivery sent, acknowledged or dropped. Default
    /// false (nothing is recorded for it: no clone, no allocation).
    pub message_events: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            receive_maximum: 1024,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            maximum_packet_size: 1024 * 1024,
            topic_alias_maximum: 64,
            outbound_topic_aliases: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            server_keep_alive: None,
            max_session_expiry_interval: u32::MAX,
            max_inflight: 128,
            max_queued_messages: 1000,
            queue_full_policy: QueueFullPolicy::DropNewest,
            queue_qos0_offline: false,
            max_topic_levels: 128,
            max_subscriptions: 1000,
            max_client_id_len: 65535,
            response_information: None,
            validate_utf8_payload: true,
            server_reference: None,
            store_events: false,
            message_events: false,
        }
    }
}

impl SessionConfig {
    /// Our Receive Maximum, never 0 (0 is a protocol error on the wire).
    pub(crate) fn effective_receive_maximum(&self) -> u16 {
        self.receive_maximum.max(1)
    }
}

/// What to drop when a session's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QueueFullPolicy {
    /// Drop the oldest queued message to make room for the new one.
    DropOldest,
    /// Drop the new message; what is queued stays.
    #[default]
    DropNewest,
}
