//! The one reader of session events (`roost_session::SessionEvent`): what
//! happened to a session's messages goes to the hooks (delivered, dropped)
//! and, as deltas, to the store, from one queue the session fills only when
//! one of them asked (`SessionConfig::message_events`, a store sequence
//! number). A live session's events are read after every turn of its
//! connection (and before its CONNACK's batch, and before a routed
//! message's batch); a parked session's right after each delivery is
//! queued in it.

use std::future::Future;

use bytestring::ByteString;
use roost_session::{Session, SessionEvent};
use roost_store::Delta;

use super::Core;

impl Core {
    /// Reads one event of `client_id`'s session: the hooks hear it now, its
    /// delta (with a store) is appended to `batch`.
    fn read_event(&self, client_id: &ByteString, event: SessionEvent, batch: &mut Vec<Delta>) {
        self.ext.hear(client_id, &event);
        if self.persist.is_some() {
            batch.extend(crate::persist::delta(client_id, event));
        }
    }

    /// Reads every event a live session recorded since the last call and
    /// returns the store's deltas (empty, unallocated, without events or a
    /// store).
    pub(crate) fn session_events(&self, session: &mut Session) -> Vec<Delta> {
        let mut batch = Vec::new();
        let Some(first) = session.poll_event() else {
            return batch;
        };
        let client_id = session.client_id().clone();
        self.read_event(&client_id, first, &mut batch);
        while let Some(event) = session.poll_event() {
            self.read_event(&client_id, event, &mut batch);
        }
        batch
    }

    /// After a turn of a live session's connection: reads its events now and
    /// returns the write of their deltas to await (`persist::write_events`:
    /// in `sync` mode it waits for the store before the turn's packets go
    /// out). Not an `async fn`: the connection's future then holds only the
    /// write, not the session borrow beside it.
    pub(crate) fn flush_events(&self, session: &mut Session) -> impl Future<Output = ()> + '_ {
        let batch = self.session_events(session);
        crate::persist::write_events(self.persist(), batch)
    }

    /// Reads the events a parked session recorded while a delivery was
    /// queued in it (drops: expired, QoS 0 while offline, queue full) and
    /// submits their deltas at once (not waited for: acks only). Called
    /// without the slot's lock where the caller can.
    pub(crate) fn read_parked_events(&self, client_id: &ByteString, events: Vec<SessionEvent>) {
        let mut batch = Vec::new();
        for event in events {
            self.read_event(client_id, event, &mut batch);
        }
        if let (Some(persist), false) = (self.persist(), batch.is_empty()) {
            drop(persist.submit(batch));
        }
    }
}
