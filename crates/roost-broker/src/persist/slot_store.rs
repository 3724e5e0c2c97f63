//! What a session slot remembers about its rows in the store.

/// Per-slot persistence state (under the slot's lock).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SlotStore {
    /// The store holds a session record for this client id.
    pub(crate) session: bool,
    /// The store holds a will for this client id.
    pub(crate) will: bool,
    /// The next message sequence number (monotonic for the slot's life, so
    /// a seq is never reused while an older row might still be stored).
    pub(crate) next_seq: u64,
}
