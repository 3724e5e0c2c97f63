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
    /// The effective Keep Alive in seconds; 0 = off. The grace period is
    /// derived from it (24 bytes here instead of 32 with a stored `Duration`).
    seconds: u16,
    last_received: Instant,
}

impl KeepAlive {
    pub(crate) fn new(seconds: u16, now: Instant) -> Self {
        Self {
            seconds,
            last_received: now,
        }
    }

    /// When the last packet arrived (the clock [`Self::new`] takes back).
    pub(crate) fn last_received(&self) -> Instant {
        self.last_received
    }

    /// The effective Keep Alive in seconds; 0 = none.
    pub(crate) fn seconds(&self) -> u16 {
        self.seconds
    }

    /// 1.5 × Keep Alive; `None` when keep-alive is off.
    fn grace(&self) -> Option<Duration> {
        (self.seconds > 0).then(|| Duration::from_millis(u64::from(self.seconds) * 1500))
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
        self.grace().and_then(|g| self.last_received.checked_add(g))
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }
}
