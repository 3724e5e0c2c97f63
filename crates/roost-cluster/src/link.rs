//! One blocking Redis connection owned by one cluster thread, opened again
//! after it broke. Each thread has its own, so a blocking `XREAD` never
//! holds up a write.

use std::time::Duration;

use redis::{Client, Connection, RedisResult};

use crate::ClusterError;

/// A client and its current connection.
pub(crate) struct Link {
    client: Client,
    timeout: Duration,
    conn: Option<Connection>,
}

impl Link {
    /// Parses the URL and connects, so a wrong address fails at start.
    pub(crate) fn connect(url: &str, timeout: Duration) -> Result<Self, ClusterError> {
        let client =
            Client::open(url).map_err(|e| ClusterError::Config(format!("redis URL: {e}")))?;
        let mut link = Link {
            client,
            timeout,
            conn: None,
        };
        link.open()?;
        Ok(link)
    }

    /// A second link to the same server (another thread's).
    pub(crate) fn sibling(&self) -> Link {
        Link {
            client: self.client.clone(),
            timeout: self.timeout,
            conn: None,
        }
    }

    fn open(&mut self) -> Result<&mut Connection, ClusterError> {
        if self.conn.is_none() {
            let conn = self
                .client
                .get_connection_with_timeout(self.timeout)
                .map_err(ClusterError::redis)?;
            conn.set_read_timeout(Some(self.timeout))
                .and_then(|()| conn.set_write_timeout(Some(self.timeout)))
                .map_err(ClusterError::redis)?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => Err(ClusterError::Stopped),
        }
    }

    /// Runs `f` on the connection; a connection that failed is dropped (the
    /// next call opens a new one). Not retried here: callers decide.
    pub(crate) fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, ClusterError> {
        let conn = self.open()?;
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
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
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, ClusterError> {
        let normal = self.timeout;
        let conn = self.open()?;
        let _ = conn.set_read_timeout(Some(normal + block));
        let result = f(conn);
        let _ = conn.set_read_timeout(Some(normal));
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    self.conn = None;
                }
                Err(ClusterError::redis(e))
            }
        }
    }
}
