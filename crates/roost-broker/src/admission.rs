//! Admission of new connections on one listener: the listener's and the
//! server's connection limits and the listener's connect-rate token bucket.
//! An admitted connection holds a [`ConnectionPermit`]; dropping it (however the
//! connection ends, panics and cancellations included) gives the slot back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::config::ListenerConfig;
use crate::listener_stats::{ListenerCounters, Refused};
use crate::metrics::Metrics;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The listener's `max_connections` is reached.
    ListenerFull,
    /// The server's `limits.max_connections` is reached.
    ServerFull,
    /// More new connections per second than `max_connection_rate` allows.
    RateLimited,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ListenerFull => "listener connection limit reached",
            Self::ServerFull => "server connection limit reached",
            Self::RateLimited => "connection rate limit exceeded",
        })
    }
}

/// The admission state of one listener.
#[derive(Debug)]
pub(crate) struct Gate {
    metrics: Arc<Metrics>,
    open: Arc<OpenCount>,
    /// The server's `limits.max_connections` (0: none).
    server_max: usize,
    max_connections: usize,
    bucket: Option<Mutex<TokenBucket>>,
}

impl Gate {
    /// `server_max`: the server's `limits.max_connections` (0: none);
    /// `metrics`: where connections are counted (server-wide).
    pub(crate) fn new(metrics: Arc<Metrics>, server_max: usize, config: &ListenerConfig) -> Self {
        let bucket = (config.max_connection_rate > 0).then(|| {
            let rate = f64::from(config.max_connection_rate);
            let burst = if config.connection_burst == 0 {
                rate
            } else {
                f64::from(config.connection_burst)
            };
            Mutex::new(TokenBucket::new(rate, burst, Instant::now()))
        });
        Self {
            open: Arc::new(OpenCount {
                metrics: Arc::clone(&metrics),
                open: AtomicUsize::new(0),
                counters: Arc::default(),
            }),
            metrics,
            server_max,
            max_connections: config.max_connections,
            bucket,
        }
    }

    /// Admits a new connection or says why not; a refusal is counted in
    /// `connections_refused`.
    pub(crate) fn admit(&self) -> Result<ConnectionPermit, Refusal> {
        let refusal = self.check();
        if let Err(refusal) = refusal {
            Metrics::inc(&self.metrics.connections_refused);
            self.open.counters.refused(match refusal {
                Refusal::RateLimited => Refused::Rate,
                Refusal::ListenerFull | Refusal::ServerFull => Refused::Limit,
            });
            return Err(refusal);
        }
        self.open.open.fetch_add(1, Ordering::Relaxed);
        self.open.counters.accepted();
        self.metrics.opened();
        Ok(ConnectionPermit(Arc::clone(&self.open)))
    }

    /// Registers this listener's counters under `url` (for the
    /// management API's per-listener metrics).
    pub(crate) fn register(
        &self,
        registry: &crate::listener_stats::ListenerRegistry,
        url: String,
        kind: String,
    ) {
        let open = Arc::clone(&self.open);
        registry.register(
            url,
            kind,
            Arc::clone(&self.open.counters),
            Box::new(move || open.open.load(Ordering::Relaxed) as u64),
        );
    }

    fn check(&self) -> Result<(), Refusal> {
        let server_max = self.server_max;
        let total = self.metrics.connections_current.load(Ordering::Relaxed);
        if server_max > 0 && total >= server_max as u64 {
            return Err(Refusal::ServerFull);
        }
        if self.max_connections > 0 && self.open() >= self.max_connections {
            return Err(Refusal::ListenerFull);
        }
        if let Some(bucket) = &self.bucket
            && !bucket.lock().take(Instant::now())
        {
            return Err(Refusal::RateLimited);
        }
        Ok(())
    }

    /// Connections open on this listener now.
    pub(crate) fn open(&self) -> usize {
        self.open.open.load(Ordering::Relaxed)
    }
}

/// Connections open on one listener, and the server whose total they count
/// in: what a [`ConnectionPermit`] gives back (one pointer per connection).
#[derive(Debug)]
struct OpenCount {
    metrics: Arc<Metrics>,
    open: AtomicUsize,
    /// The listener's counters (`listener_stats.rs`).
    counters: Arc<ListenerCounters>,
}

/// One admitted connection; releases its slot when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionPermit(Arc<OpenCount>);

impl ConnectionPermit {
    /// The connection was not served: counts why, on its listener.
    pub(crate) fn refused(&self, why: Refused) {
        self.0.counters.refused(why);
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let OpenCount { metrics, open, .. } = &*self.0;
        open.fetch_sub(1, Ordering::Relaxed);
        metrics.connections_current.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3.0, start);
        assert!(
            (0..3).all(|_| bucket.take(start)),
            "the burst passes at once"
        );
        assert!(!bucket.take(start), "beyond the burst: refused");
        let later = start + Duration::from_millis(100);
        assert!(bucket.take(later), "one token refills in 1/rate seconds");
        assert!(!bucket.take(later));
        let much_later = start + Duration::from_secs(60);
        assert_eq!(
            (0..10).filter(|_| bucket.take(much_later)).count(),
            3,
            "never more than the burst is stored"
        );
    }
}
