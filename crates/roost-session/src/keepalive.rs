//! Keep-alive: the connection is dead when no packet arrives within one and a
//! half times the Keep Alive [MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]).

use std::time::{Duration, Instant};

use roost_codec::ProtocolVersion;

/// The keep-alive the session uses and whether CONNACK must announce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveKeepAlive {
    /// Seconds; 0 = no keep-alive.
    pub seconds: u16,
    /// `Some` when the server overrides the client's value (5.0 Server Keep Alive).
    pub server_keep_alive: Option<u16>,
}

/// Applies the server's cap: a 5.0 client that asks for 0 or more than `cap`
/// is told to use `cap`. Without a Server Keep Alive the client's value is used
/// [MQTT-3.2.2-22]. 3.x clients cannot be told, so they keep their own value.
pub fn effective_keep_alive(
    requested: u16,
    cap: Option<u16>,
    version: ProtocolVersion,
) -> EffectiveKeepAlive {
    match cap {
        Some(cap) if version.is_v5() && (requested == 0 || requested > cap) => EffectiveKeepAlive {
            seconds: cap,
            server_keep_alive: Some(cap),
        },
        _ => EffectiveKeepAlive {
            seconds: requested,
            server_keep_alive: None,
        },
    }
}

/// Tracks when the last packet arrived.
#[derive(Debug, Clone)]
pub(crate) struct KeepAlive {
    /// 1.5 × Keep Alive; `None` when keep-alive is off.
    grace: Option<Duration>,
    last_received: Instant,
}

impl KeepAlive {
    pub(crate) fn new(seconds: u16, now: Instant) -> Self {
        let grace = (seconds > 0).then(|| Duration::from_millis(u64::from(seconds) * 1500));
        Self {
            grace,
            last_received: now,
        }
    }

    /// Any packet from the client resets the timer.
    pub(crate) fn on_packet(&mut self, now: Instant) {
        // Instants handed in out of order must never move the deadline back.
        if now > self.last_received {
            self.last_received = now;
        }
    }

    /// When the connection is to be considered dead.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.grace.and_then(|g| self.last_received.checked_add(g))
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }
}
