//! One blocking Redis connection owned by one cluster thread, opened again
//! after it broke. Each thread has its own, so a blocking `XREAD` never
//! holds up a write. The URL may name one server, a Redis Cluster or a
//! Sentinel-managed primary ([`roost_store::redis::target`]).

use std::sync::Arc;
use std::time::Duration;

use redis::RedisResult;
use roost_store::redis::target::{Conn, Target, must_reconnect};

use crate::ClusterError;

/// A target and this thread's current connection to it.
pub(crate) struct Link {
    target: Arc<Target>,
    timeout: Duration,
    conn: Option<Conn>,
}

impl Link {
    /// Parses the URL and connects, so a wrong address fails at start.
    pub(crate) fn connect(url: &str, timeout: Duration) -> Result<Self, ClusterError> {
        let target = Target::parse(url, None, timeout)
            .map_err(|e| ClusterError::Config(format!("redis URL: {e}")))?;
        let mut link = Link {
            target: Arc::new(target),
            timeout,
            conn: None,
        };
        link.open()?;
        Ok(link)
    }

    /// A second link to the same server (another thread's).
    pub(crate) fn sibling(&self) -> Link {
        Link {
            target: Arc::clone(&self.target),
            timeout: self.timeout,
            conn: None,
        }
    }

    /// Whether the keys are spread over a Redis Cluster's primaries (a
    /// command's keys must then share one slot).
    pub(crate) fn is_cluster(&self) -> bool {
        self.target.is_cluster()
    }

    fn open(&mut self) -> Result<&mut Conn, ClusterError> {
        if self.conn.is_none() {
            let conn = self
                .target
                .connect(self.timeout)
                .map_err(ClusterError::redis)?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => Err(ClusterError::Stopped),
        }
    }

    /// Runs `f` on the connection; a connection that failed is dropped (the
    /// next call opens a new one). Not retried here (callers decide), with
    /// one exception: on a Redis Cluster, a connection refused by the node
    /// the slot map named (a primary that died; its replica took over)
    /// means the command never left, and the map is stale. The cluster
    /// client does not refresh it on that error, so `f` runs once more on a
    /// new connection, whose map comes fresh from the seeds: otherwise the
    /// first call of each thread after a failover fails (a CONNECT's claim
    /// refused with 0x88 although Redis serves again).
    pub(crate) fn run<T>(
        &mut self,
        mut f: impl FnMut(&mut Conn) -> RedisResult<T>,
    ) -> Result<T, ClusterError> {
        let conn = self.open()?;
        let result = match f(conn) {
            Err(e) if self.target.is_cluster() && e.is_connection_refusal() => {
                self.conn = None;
                let conn = self.open()?;
                f(conn)
            }
            result => result,
        };
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                if must_reconnect(&e) {
                    self.conn = None;
                }
                Err(ClusterError::redis(e))
            }
        }
    }

    /// Like [`Link::run`] with a longer read timeout for this call (a
    /// blocking `XREAD` of `block`).
    pub(crate) fn run_blocking<T>(
        &mut self,
        block: Duration,
        f: impl FnOnce(&mut Conn) -> RedisResult<T>,
    ) -> Result<T, ClusterError> {
        let normal = self.timeout;
        let conn = self.open()?;
        let _ = conn.set_read_timeout(Some(normal + block));
        let result = f(conn);
        let _ = conn.set_read_timeout(Some(normal));
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                if must_reconnect(&e) {
                    self.conn = None;
                }
                Err(ClusterError::redis(e))
            }
        }
    }
}
