//! Keeps buffering transports (TLS, WebSocket) moving without the driver
//! having to call `flush`.
//!
//! rustls and tungstenite accept bytes into their own buffers and may leave
//! part of them unsent when the socket is full. The driver only polls its
//! write side while it has output of its own, so that tail could sit there
//! until the next packet. [`FlushOnRead`] flushes after every write and, while
//! a flush is still owed, again on every read poll: the driver always polls
//! its read side, and a pending flush registers for socket writability, so
//! the task wakes up and finishes the flush as soon as the peer drains.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream that flushes its inner buffered stream eagerly.
#[derive(Debug)]
pub(crate) struct FlushOnRead<S> {
    inner: S,
    owes_flush: bool,
}

impl<S> FlushOnRead<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            owes_flush: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> FlushOnRead<S> {
    /// Tries to flush; remembers a flush still owed (and returns errors).
    fn try_flush(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.owes_flush = false;
                Ok(())
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => {
                self.owes_flush = true;
                Ok(())
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for FlushOnRead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.owes_flush {
            this.try_flush(cx)?;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FlushOnRead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.try_flush(cx)?;
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = std::task::ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.try_flush(cx)?;
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = std::task::ready!(Pin::new(&mut this.inner).poll_flush(cx));
        this.owes_flush = false;
        Poll::Ready(flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
