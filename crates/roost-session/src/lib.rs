//! # roost-session
//!
//! The sans-IO, per-client MQTT state machine: what each packet *means* for
//! one client. No sockets, no tasks, no clock reads: every time-dependent
//! call takes `now`, so tests drive it with a virtual clock and the broker
//! wires it to tokio.
//!
//! ```text
//!            CONNECT ─▶ check_connect ─▶ (auth) ─▶ Session::accept ─▶ CONNACK (+ resend on resume)
//!                                                        │
//!  decoded Packet ─▶ handle_packet(now) ─▶ Inbound ─▶ broker: route / authorize / router update
//!                        │   Err(Violation) ─▶ close(reason) ─▶ DISCONNECT       │
//!                        │                                                        ▼
//!                        │                            complete_publish / complete_subscribe / …
//!  Delivery (Arc<Message>) ─▶ handle_delivery(now) ─▶ window? ─yes─▶ PUBLISH ──┐
//!                                                        └─no──▶ pending queue  │
//!                                                                               ▼
//!                                  poll_transmit() ─▶ Packet ─▶ broker encodes (header + payload Bytes)
//!                                  poll_timeout() / handle_timeout(now) ─▶ keep-alive
//!                                  into_state() ─▶ SessionState (stored, resumed later)
//! ```
//!
//! The session is split by concern: [`inflight`] (outbound window and packet
//! identifiers), the inbound receive-maximum quota and awaiting-PUBREL set
//! (in [`SessionState`]), `alias` (topic aliases, both directions),
//! [`keepalive`], [`will`] (timer arithmetic for the broker), and one file
//! per inbound packet type under `session/handle/`. [`violation`] holds the
//! one table from misbehaviour to reason code.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use roost_codec::{Connect, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode};
//! use roost_session::{Inbound, Session, SessionConfig, check_connect};
//!
//! let config = Arc::new(SessionConfig::default());
//! let now = Instant::now();
//! let connect = Connect {
//!     protocol: ProtocolVersion::V5,
//!     client_id: "sensor-1".into(),
//!     keep_alive: 30,
//!     clean_start: true,
//!     ..Connect::default()
//! };
//! assert_eq!(check_connect(&connect, &config), Ok(()));
//! let mut session = Session::accept(connect, None, None, config, None, now);
//! assert!(matches!(session.poll_transmit(now), Some(Packet::ConnAck(_))));
//!
//! let publish = Publish {
//!     qos: QoS::AtLeastOnce,
//!     topic: "a/b".into(),
//!     packet_id: PacketId::new(1),
//!     ..Publish::default()
//! };
//! match session.handle_packet(now, Packet::Publish(publish))? {
//!     Inbound::Publish { message, packet_id: Some(id) } => {
//!         // Route `message` (wrapped in an Arc), then acknowledge it.
//!         session.complete_publish(id, message.qos, ReasonCode::SUCCESS);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert!(matches!(session.poll_transmit(now), Some(Packet::PubAck(_))));
//! assert_eq!(session.poll_timeout(), Some(now + std::time::Duration::from_secs(45)));
//! # Ok::<(), roost_session::Violation>(())
//! ```

#![warn(missing_docs)]

mod alias;
mod config;
mod connect;
mod detach;
mod grant;
pub mod inflight;
pub mod keepalive;
mod message;
mod reason;
mod session;
mod session_event;
mod state;
mod subscribe_check;
mod subscriptions;
pub mod violation;
pub mod will;

pub use config::{QueueFullPolicy, SessionConfig};
pub use connect::{AuthSuccess, check_connect, connack_refusal};
pub use grant::SubscriptionGrant;
pub use inflight::{Inflight, InflightEntry, OutboundStage};
pub use keepalive::{EffectiveKeepAlive, effective_keep_alive};
pub use message::{Delivery, Message};
pub use session::{DeliveryOutcome, Inbound, QuietSession, Session, SessionStats};
pub use session_event::{DropReason, SessionEvent};
pub use state::{
    DropCounters, EnqueueOutcome, InboundQos2, SessionState, Subscription, Subscriptions,
};
pub use subscribe_check::validate_subscribe;
pub use subscriptions::Iter as SubscriptionsIter;
pub use violation::Violation;
pub use will::{SESSION_NEVER_EXPIRES, session_expires_at, will_fire_at};
