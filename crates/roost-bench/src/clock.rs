//! One clock for every timestamp: `CLOCK_MONOTONIC` in nanoseconds. It is
//! system-wide, so a timestamp written into a payload by one process can be
//! compared with the clock of another (`--procs`), and it never jumps.

use rustix::time::{ClockId, clock_gettime};

/// Nanoseconds on the system-wide monotonic clock.
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Converts a `now_ns` deadline into a tokio instant (for `sleep_until`).
pub fn instant_at(deadline_ns: u64) -> tokio::time::Instant {
    let now_instant = tokio::time::Instant::now();
    let now = now_ns();
    if deadline_ns <= now {
        now_instant
    } else {
        now_instant + std::time::Duration::from_nanos(deadline_ns - now)
    }
}

/// Sleeps until the monotonic clock reads `deadline_ns`.
pub async fn sleep_until_ns(deadline_ns: u64) {
    tokio::time::sleep_until(instant_at(deadline_ns)).await;
}

/// Seconds between two `now_ns` readings (0 if they are out of order).
pub fn secs_between(start_ns: u64, end_ns: u64) -> f64 {
    end_ns.saturating_sub(start_ns) as f64 / 1e9
}
