//! One blocking connection, re-opened once when it breaks. Errors that say
//! "the server is not there or not taking writes right now" become
//! [`StoreError::Unavailable`], so the writer retries them instead of
//! dropping the batch.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::{RedisError, RedisResult};

use crate::error::StoreError;
use crate::redis::RedisConfig;
use crate::redis::target::{Conn, Target, must_reconnect};

/// The client and its current connection.
pub(crate) struct Link {
    target: Target,
    timeout: Duration,
    conn: Mutex<Option<Conn>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The target's Debug shows the address only, not the password.
        f.debug_struct("Link")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Server error codes meaning "not now": loading a dump, a script running,
/// a failover or resharding in progress, a replica that was the primary.
const TRANSIENT_CODES: [&str; 6] = [
    "LOADING",
    "BUSY",
    "TRYAGAIN",
    "MASTERDOWN",
    "READONLY",
    "CLUSTERDOWN",
];

/// Whether `e` says the server is unreachable or temporarily refusing
/// writes (the same command may succeed later), as opposed to a refusal
/// that would repeat (bad command, authentication, wrong type). A
/// `MULTI`/`EXEC` refused with `EXECABORT` is judged by the errors of the
/// commands it queued (a replica answers each write with `READONLY`).
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        || e.clone().into_server_errors().is_some_and(|errors| {
            errors
                .iter()
                .any(|(_, s)| TRANSIENT_CODES.contains(&s.code()))
        })
}

pub(crate) fn redis_error(e: &RedisError) -> StoreError {
    if is_transient(e) {
        StoreError::Unavailable {
            backend: "redis",
            message: e.to_string(),
        }
    } else {
        StoreError::Backend {
            backend: "redis",
            message: e.to_string(),
        }
    }
}

impl Link {
    /// Parses the URL and connects (so a wrong address or password fails now).
    pub(crate) fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let target = Target::parse(
            config.url.as_str(),
            config.ca_cert_pem.as_deref(),
            config.timeout,
        )
        .map_err(|e| StoreError::Invalid(format!("redis URL: {e}")))?;
        let link = Link {
            target,
            timeout: config.timeout,
            conn: Mutex::new(None),
        };
        let conn = link.open_connection()?;
        *link.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn);
        Ok(link)
    }

    /// Whether the server is a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        self.target.is_cluster()
    }

    fn open_connection(&self) -> Result<Conn, StoreError> {
        self.target
            .connect(self.timeout)
            .map_err(|e| redis_error(&e))
    }

    /// Runs `f` on the connection; when the connection broke, opens a new
    /// one and runs `f` once more (callers only send idempotent commands).
    pub(crate) fn run<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        for attempt in 0..2 {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => guard.insert(self.open_connection()?),
            };
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(e) if attempt == 0 && (e.is_io_error() || e.is_connection_dropped()) => {
                    *guard = None;
                }
                Err(e) => {
                    if must_reconnect(&e) {
                        *guard = None;
                    }
                    return Err(redis_error(&e));
                }
            }
        }
        Err(StoreError::Unavailable {
            backend: "redis",
            message: "connection lost twice in a row".into(),
        })
    }
}
