//! Outgoing bytes of one connection: packet headers are encoded into a scratch
//! buffer and PUBLISH payloads are chained as they are (the same `Bytes` every
//! subscriber shares), then written with one vectored write per turn.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use roost_codec::{Encoder, Packet};
use tokio::io::AsyncWrite;

/// At most this many slices per `writev`.
const MAX_IOVECS: usize = 512;
/// Queues up to this many chunks use a short slice array.
const FEW_IOVECS: usize = 16;

/// Encoded-but-unwritten output of a connection.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    chunks: VecDeque<Bytes>,
    scratch: BytesMut,
    pending: usize,
}

impl Outgoing {
    /// Encodes one packet. A PUBLISH payload is chained, not copied. Returns
    /// false when the packet could not be encoded (too large for the peer).
    pub(crate) fn push(&mut self, encoder: &Encoder, packet: &Packet) -> bool {
        let before = self.scratch.len();
        let encoded = match packet {
            Packet::Publish(publish) => encoder.encode_publish_header(publish, &mut self.scratch),
            other => encoder.encode(other, &mut self.scratch),
        };
        if encoded.is_err() {
            self.scratch.truncate(before);
            return false;
        }
        self.pending += self.scratch.len() - before;
        if let Packet::Publish(publish) = packet
            && !publish.payload.is_empty()
        {
            self.seal();
            self.pending += publish.payload.len();
            self.chunks.push_back(publish.payload.clone());
        }
        true
    }

    /// Moves encoded header bytes into the chunk queue.
    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.chunks.push_back(self.scratch.split().freeze());
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Prepares for a write: seals the scratch buffer.
    pub(crate) fn prepare(&mut self) {
        self.seal();
        if self.chunks.is_empty() {
            // Idle: hold no output buffers. The next packet allocates afresh.
            // Even with no spare capacity left, the handle may still share
            // the buffer of the last write: let it go.
            self.scratch = BytesMut::new();
            if self.chunks.capacity() > 0 {
                self.chunks = VecDeque::new();
            }
        }
    }

    /// Writes as much as the socket takes in one vectored write.
    pub(crate) fn write_some<'a, W: AsyncWrite + Unpin>(
        &'a self,
        writer: &'a mut W,
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + 'a {
        std::future::poll_fn(move |cx| self.poll_write_some(Pin::new(&mut *writer), cx))
    }

    /// One write attempt. A single chunk (an acknowledgement, a SUBACK, a
    /// packet without payload) goes out with a plain write: on a TCP socket
    /// that is `send`, which skips `writev`'s iovec import and checks
    /// (3 % of the broker's CPU per SUBSCRIBE, docs/performance.md §5).
    /// More chunks go out in one vectored write; the slice array lives on the
    /// stack of each poll, not in the connection's future, so it costs idle
    /// connections nothing, and a short queue fills a short array (setting
    /// up all [`MAX_IOVECS`] slices cost 8 KiB of stores per write).
    pub(crate) fn poll_write_some<W: AsyncWrite + ?Sized>(
        &self,
        writer: Pin<&mut W>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        match self.chunks.len() {
            0 => Poll::Ready(Ok(0)),
            1 => writer.poll_write(cx, &self.chunks[0]),
            n if n <= FEW_IOVECS => self.poll_write_vectored::<W, FEW_IOVECS>(writer, cx),
            _ => self.poll_write_vectored::<W, MAX_IOVECS>(writer, cx),
        }
    }

    /// One vectored write of up to `N` chunks.
    fn poll_write_vectored<W: AsyncWrite + ?Sized, const N: usize>(
        &self,
        writer: Pin<&mut W>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); N];
        let mut n = 0;
        for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        writer.poll_write_vectored(cx, &slices[..n])
    }

    /// Drops `written` bytes from the front.
    pub(crate) fn advance(&mut self, mut written: usize) {
        self.pending = self.pending.saturating_sub(written);
        while written > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() <= written {
                written -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
}
