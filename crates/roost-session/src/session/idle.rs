//! Giving memory back while a connection is idle.
//!
//! A queue that once held a packet keeps its allocation when it drains
//! (`VecDeque` of packets: about 1 KB after the CONNACK alone). Ten
//! thousand idle clients would hold that for nothing, so the broker calls
//! [`Session::release_idle_memory`] when a connection goes quiet; the next
//! packet allocates afresh.

use std::collections::VecDeque;

use super::{RoomHint, Session};

impl Session {
    /// Frees the allocations of empty queues (packets to transmit, queued
    /// deliveries, the inflight window). Changes no protocol state.
    pub fn release_idle_memory(&mut self) {
        if self.transmit.is_empty() && self.transmit.capacity() > 0 {
            self.transmit_hint =
                RoomHint(u8::try_from(self.transmit.capacity().min(128)).unwrap_or(128));
            self.transmit = VecDeque::new();
        }
        if self.state.pending.is_empty() && self.state.pending.capacity() > 0 {
            self.state.pending = VecDeque::new();
        }
        self.state.inflight.release_if_empty();
    }
}
