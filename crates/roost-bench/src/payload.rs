//! The 16-byte header at the front of every benchmark payload, so that a
//! subscriber can tell who sent a message, where it sits in that publisher's
//! sequence and when it was sent (like emqtt-bench `--payload-hdrs cnt64,ts`):
//!
//! ```text
//! 0       4       8               16
//! | pub   | seq   | sent_ns       | padding up to the payload size …
//! ```
//!
//! Big-endian. `pub` is the global publisher index, `seq` counts from 0 per
//! publisher, `sent_ns` is [`crate::clock::now_ns`] when the message was
//! written to the socket.

/// Bytes of the header; payloads shorter than this carry none.
pub const HEADER_LEN: usize = 16;

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    /// Global publisher index.
    pub publisher: u32,
    /// Sequence number of this message for its publisher, from 0.
    pub seq: u32,
    /// Send time on the monotonic clock, nanoseconds.
    pub sent_ns: u64,
}

impl PayloadHeader {
    /// Writes the header into the front of `payload`; returns false (and
    /// writes nothing) if the payload is shorter than [`HEADER_LEN`].
    pub fn write(&self, payload: &mut [u8]) -> bool {
        let Some(head) = payload.get_mut(..HEADER_LEN) else {
            return false;
        };
        head[0..4].copy_from_slice(&self.publisher.to_be_bytes());
        head[4..8].copy_from_slice(&self.seq.to_be_bytes());
        head[8..16].copy_from_slice(&self.sent_ns.to_be_bytes());
        true
    }

    /// Reads the header from the front of `payload`, if it is long enough.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let head: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
        let [p0, p1, p2, p3, s0, s1, s2, s3, t @ ..] = *head;
        Some(Self {
            publisher: u32::from_be_bytes([p0, p1, p2, p3]),
            seq: u32::from_be_bytes([s0, s1, s2, s3]),
            sent_ns: u64::from_be_bytes(t),
        })
    }

    /// The send-to-receive latency, or `None` when the timestamp cannot be
    /// one of ours (in the future, or more than an hour old): a foreign
    /// payload on the same topic must not poison the histogram.
    pub fn latency_ns(&self, received_ns: u64) -> Option<u64> {
        const HOUR_NS: u64 = 3_600 * 1_000_000_000;
        let latency = received_ns.checked_sub(self.sent_ns)?;
        (latency <= HOUR_NS).then_some(latency)
    }
}
