//! Lingering close: after the broker ends a connection with a reason (a
//! DISCONNECT it sent, or a refusing CONNACK), it stops writing and reads and
//! discards what the client still sends, for a short bounded while, before
//! it lets the socket go.
//!
//! Why: a client that is still writing when the broker closes at once sends
//! its next bytes to a closed socket; the peer's kernel answers with a reset,
//! the client's next write fails (broken pipe) and its stack may drop the
//! DISCONNECT or CONNACK it had not read yet, so it never learns the reason.
//! Closing only our write side (a FIN, a TLS close_notify, a WebSocket close
//! frame, a finished QUIC stream: whatever the transport's `shutdown` does)
//! and reading on until the client closes lets it read everything first.
//!
//! A hostile client must not keep the connection this way: the drain stops
//! after [`LINGER_TIME`] or [`LINGER_BYTES`], whichever comes first, and its
//! buffer exists only while it runs.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a closing connection goes on reading what the client sends.
/// Long enough for a client to read the reason and close (a round trip or
/// two), short enough that a client that never closes costs little.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);
/// How many bytes a closing connection reads and discards at most.
pub(crate) const LINGER_BYTES: usize = 64 * 1024;
/// The drain's read size (on the heap, and only while it runs).
const DISCARD_CHUNK: usize = 4 * 1024;

/// What ended a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drained {
    /// The client closed (end of stream) or the socket failed.
    Closed,
    /// The client sent more than [`LINGER_BYTES`].
    TooMuch,
    /// [`LINGER_TIME`] passed.
    TimedOut,
}

/// Shuts the write side down, then drains the read side: for a connection
/// whose halves are apart (the CONNECT phase). The shutdown counts against
/// the same time bound.
pub(crate) async fn close<R, W>(reader: &mut R, writer: &mut W) -> Drained
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    if tokio::time::timeout_at(deadline, writer.shutdown())
        .await
        .is_err()
    {
        return Drained::TimedOut;
    }
    drain_until(reader, deadline).await
}

/// Reads and discards until the client closes or a bound is reached. The
/// write side must be shut down already (the caller's closing flush did).
pub(crate) async fn drain<R: AsyncRead + Unpin>(reader: &mut R) -> Drained {
    drain_until(reader, tokio::time::Instant::now() + LINGER_TIME).await
}

async fn drain_until<R: AsyncRead + Unpin>(
    reader: &mut R,
    deadline: tokio::time::Instant,
) -> Drained {
    let mut buf = vec![0u8; DISCARD_CHUNK];
    let mut discarded = 0usize;
    let outcome = loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => break Drained::TimedOut,
            Ok(Ok(0) | Err(_)) => break Drained::Closed,
            Ok(Ok(n)) => {
                discarded += n;
                if discarded > LINGER_BYTES {
                    break Drained::TooMuch;
                }
            }
        }
    };
    tracing::trace!(?outcome, discarded, "lingering close ended");
    outcome
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_client_that_closes_ends_the_drain() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"late bytes").await.unwrap();
        drop(client);
        assert_eq!(drain(&mut server).await, Drained::Closed);
    }

    #[tokio::test]
    async fn a_client_that_keeps_writing_is_cut_off_after_the_byte_bound() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            let chunk = [0u8; 1024];
            while client.write_all(&chunk).await.is_ok() {}
        });
        assert_eq!(drain(&mut server).await, Drained::TooMuch);
        drop(server);
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_cut_off_after_the_time_bound() {
        let (_client, mut server) = tokio::io::duplex(1024);
        let started = tokio::time::Instant::now();
        assert_eq!(drain(&mut server).await, Drained::TimedOut);
        assert_eq!(started.elapsed(), LINGER_TIME);
    }

    #[tokio::test]
    async fn close_shuts_the_write_side_then_drains() {
        let (mut client, server) = tokio::io::duplex(1024);
        let (mut reader, mut writer) = tokio::io::split(server);
        client.write_all(b"unread").await.unwrap();
        let closing = tokio::spawn(async move { close(&mut reader, &mut writer).await });
        // The client sees the end of the broker's output, then closes.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        drop(client);
        assert_eq!(closing.await.unwrap(), Drained::Closed);
    }
}
