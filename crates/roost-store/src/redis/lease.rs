//! One broker per key prefix: a lease key (`<p>{meta}:lease`) holding a
//! random token with a short expiry, renewed by a thread while the broker
//! runs and deleted when it stops. A second broker on the same prefix waits
//! up to one lease period (a broker killed with SIGKILL cannot delete its
//! lease, which then simply expires) and is refused if the lease is still
//! renewed by someone else — as a second broker on one data directory is.
//! (The cluster mode will share a prefix on purpose; it will not take this
//! lease.)

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::redis::RedisConfig;
use crate::redis::connection::Link;
use crate::redis::keys::Keys;

/// Renews the lease when it still holds our token.
const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
/// Deletes the lease when it still holds our token.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) else return 0 end";

/// A held lease; released when dropped.
pub struct Lease {
    key: String,
    token: String,
    link: Arc<Link>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    renewer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// Takes the prefix's lease, waiting up to `ttl` for one left by a
    /// broker that died; [`StoreError::PrefixInUse`] when another broker
    /// keeps renewing it.
    pub fn acquire(config: &RedisConfig, ttl: Duration) -> Result<Lease, StoreError> {
        let keys = Keys::new(&config.key_prefix)?;
        let key = keys.lease();
        let link = Arc::new(Link::connect(config)?);
        let token = uuid_like();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let deadline = Instant::now() + ttl + Duration::from_millis(200);
        loop {
            let taken: Option<String> = link.run(|c| {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query(c)
            })?;
            if taken.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(StoreError::PrefixInUse {
                    prefix: config.key_prefix.clone(),
                });
            }
            // Polls until the holder's lease expires or the deadline: Redis
            // has no blocking "wait until this key is gone".
            std::thread::sleep(Duration::from_millis(100));
        }
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let renewer = {
            let (link, key, token, stop) = (
                Arc::clone(&link),
                key.clone(),
                token.clone(),
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name("roost-redis-lease".into())
                .spawn(move || renew(&link, &key, &token, ttl_ms, &stop))
                .map_err(|e| StoreError::io("starting the redis lease thread", e))?
        };
        Ok(Lease {
            key,
            token,
            link,
            stop,
            renewer: Some(renewer),
        })
    }
}

/// Renews every third of the lease period until told to stop.
fn renew(link: &Link, key: &str, token: &str, ttl_ms: u64, stop: &(Mutex<bool>, Condvar)) {
    let period = Duration::from_millis((ttl_ms / 3).max(1));
    let (lock, wake) = stop;
    let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let (guard, _) = wake
            .wait_timeout(stopped, period)
            .unwrap_or_else(PoisonError::into_inner);
        stopped = guard;
        if *stopped {
            return;
        }
        let renewed: Result<i64, _> = link.run(|c| {
            redis::cmd("EVAL")
                .arg(RENEW)
                .arg(1)
                .arg(key)
                .arg(token)
                .arg(ttl_ms)
                .query(c)
        });
        match renewed {
            Ok(1) => {}
            Ok(_) => tracing::error!(
                key,
                "redis lease lost (expired during an outage and taken?); another broker may share this prefix"
            ),
            Err(e) => tracing::warn!(key, error = %e, "redis lease not renewed; retrying"),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        {
            let (lock, wake) = &*self.stop;
            *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
            wake.notify_all();
        }
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        let released: Result<i64, _> = self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&self.key)
                .arg(&self.token)
                .query(c)
        });
        if let Err(e) = released {
            tracing::warn!(key = %self.key, error = %e, "redis lease not released; it expires by itself");
        }
    }
}

/// A random token: 128 bits from the OS's hasher seeds and the clock, which
/// is all a lease needs (it must differ between brokers, not be secret).
fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
