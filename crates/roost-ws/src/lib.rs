//! MQTT over WebSocket as a byte stream.
//!
//! MQTT over WebSocket carries the MQTT byte stream in binary messages: a
//! packet may span messages and one message may hold several packets
//! ([MQTT-6.0.0-2]), so readers want bytes, not messages.
//! [`WsStream`] wraps a tokio-tungstenite [`WebSocketStream`] (either role:
//! the broker's accepted connections and the load generator's clients) as
//! `AsyncRead + AsyncWrite`. Any frame but binary, ping, pong and close
//! closes the connection with code 1003 ([MQTT-6.0.0-1]).
#![warn(missing_docs)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Largest WebSocket message we send; larger output goes out in several
/// messages (MQTT packets may span messages).
const MAX_OUTGOING_MESSAGE: usize = 128 * 1024;

/// Binary WebSocket messages as a byte stream.
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last binary message.
    pending: Bytes,
    /// The peer closed (or broke) the WebSocket: reads return end of stream.
    eof: bool,
}

impl<S> std::fmt::Debug for WsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsStream")
            .field("pending", &self.pending.len())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<S> WsStream<S> {
    /// Wraps an established WebSocket connection (handshake done) as a byte stream.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            pending: Bytes::new(),
            eof: false,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Queues a close frame and tries once to send it (best effort: the
    /// connection is being dropped anyway).
    fn close_with(&mut self, cx: &mut Context<'_>, code: CloseCode, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if let Poll::Ready(Ok(())) = Pin::new(&mut self.ws).poll_ready(cx)
            && Pin::new(&mut self.ws)
                .start_send(Message::Close(Some(frame)))
                .is_ok()
        {
            let _ = Pin::new(&mut self.ws).poll_flush(cx);
        }
    }
}

fn to_io(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::from(io::ErrorKind::BrokenPipe)
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.pending = data,
                // tungstenite answers pings (and close frames) by itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => this.eof = true,
                Some(Ok(Message::Text(_))) => {
                    tracing::debug!("WebSocket text frame: MQTT needs binary frames; closing");
                    this.close_with(cx, CloseCode::Unsupported, "MQTT needs binary frames");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "WebSocket text frame",
                    )));
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket read failed");
                    if matches!(e, WsError::Capacity(_)) {
                        this.close_with(cx, CloseCode::Size, "frame too large");
                    }
                    return Poll::Ready(Err(to_io(e)));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    /// One binary message per call, made of as many slices as fit in
    /// [`MAX_OUTGOING_MESSAGE`] (at least part of the first).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(to_io)?;
        let mut message = BytesMut::with_capacity(total.min(MAX_OUTGOING_MESSAGE));
        for slice in bufs {
            let room = MAX_OUTGOING_MESSAGE - message.len();
            if room == 0 {
                break;
            }
            message.extend_from_slice(&slice[..slice.len().min(room)]);
        }
        let written = message.len();
        Pin::new(&mut this.ws)
            .start_send(Message::Binary(message.freeze()))
            .map_err(to_io)?;
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(to_io)
    }

    /// Sends a normal close frame and flushes it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_close(cx)
            .map_err(to_io)
    }
}

#[cfg(test)]
mod tests;
