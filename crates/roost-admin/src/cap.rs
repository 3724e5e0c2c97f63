//! The management listener's connection cap (`[http] max_connections`): a
//! connection is served only with a permit; one accepted while every permit
//! is held is closed at once (the client sees the connection reset or
//! closed, not a hang), so a flood of idle or slow clients cannot take the
//! broker's file descriptors or memory. Permits go back when connections
//! close. Serves HTTP (as an axum [`Listener`]) and HTTPS (`tls.rs`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most one warning about refused connections this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A listener whose connections hold one of `max` permits.
#[derive(Debug)]
pub(crate) struct CappedListener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    last_warning: Option<Instant>,
}

impl CappedListener {
    pub(crate) fn new(listener: TcpListener, max: usize) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(max)),
            max,
            last_warning: None,
        }
    }

    /// The next connection under the cap; those over it are closed.
    pub(crate) async fn accept_capped(&mut self) -> (CappedStream, SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and the like: wait a little instead of spinning.
                    tracing::warn!("management API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(permit) => {
                    let stream = CappedStream {
                        stream,
                        _permit: permit,
                    };
                    return (stream, peer);
                }
                Err(_) => {
                    drop(stream);
                    if self
                        .last_warning
                        .is_none_or(|at| at.elapsed() >= WARN_EVERY)
                    {
                        self.last_warning = Some(Instant::now());
                        tracing::warn!(
                            %peer,
                            max = self.max,
                            "management API: connection refused, [http] max_connections reached"
                        );
                    }
                }
            }
        }
    }
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.accept_capped().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A connection and its permit (returned when it is dropped).
#[derive(Debug)]
pub(crate) struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
