//! Will delay and session expiry arithmetic for the broker's timers. The
//! session itself arms no timer after the connection is gone: the broker
//! calls these with the instant the connection closed.

use std::time::{Duration, Instant};

/// Session Expiry Interval value meaning "never expires".
pub const SESSION_NEVER_EXPIRES: u32 = u32::MAX;

/// When the Will Message is to be published after the connection closed at
/// `disconnected_at`: at the end of the Will Delay Interval or when the
/// session ends, whichever is first [MQTT-3.1.2-8] [MQTT-3.1.3-9]. A new
/// connection for the client before that instant cancels it.
pub fn will_fire_at(disconnected_at: Instant, will_delay: u32, session_expiry: u32) -> Instant {
    let delay = will_delay.min(session_expiry);
    disconnected_at
        .checked_add(Duration::from_secs(u64::from(delay)))
        .unwrap_or(disconnected_at)
}

/// When the session state may be discarded after the connection closed at
/// `disconnected_at` [MQTT-4.1.0-2]; `None` when it never expires
/// ([`SESSION_NEVER_EXPIRES`]). An interval of 0 ends the session with the
/// connection.
pub fn session_expires_at(disconnected_at: Instant, session_expiry: u32) -> Option<Instant> {
    if session_expiry == SESSION_NEVER_EXPIRES {
        return None;
    }
    disconnected_at.checked_add(Duration::from_secs(u64::from(session_expiry)))
}
