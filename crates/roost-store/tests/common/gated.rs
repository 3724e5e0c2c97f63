//! A store whose `sync` waits on a gate the test opens, and that reports
//! each apply and sync: lets writer tests decide exactly what piles up.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use roost_store::{Delta, MemoryStore, Snapshot, Store, StoreError};

/// What the store did.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Applied(usize),
    SyncStarted,
}

#[derive(Debug, Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

/// The gated store (share it with `Arc`).
pub struct GatedStore {
    inner: MemoryStore,
    gate: Arc<Gate>,
    events: Mutex<Sender<Event>>,
}

impl GatedStore {
    /// A closed gate and the receiver of events.
    pub fn new() -> (Arc<GatedStore>, Receiver<Event>) {
        let (tx, rx) = channel();
        let store = GatedStore {
            inner: MemoryStore::new(),
            gate: Arc::new(Gate::default()),
            events: Mutex::new(tx),
        };
        (Arc::new(store), rx)
    }

    /// Lets every sync (now and later) through.
    pub fn open_gate(&self) {
        *self.gate.open.lock().expect("gate") = true;
        self.gate.cond.notify_all();
    }

    fn emit(&self, e: Event) {
        let _ = self.events.lock().expect("events").send(e);
    }
}

impl Store for GatedStore {
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError> {
        self.inner.apply(batch)?;
        self.emit(Event::Applied(batch.len()));
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.emit(Event::SyncStarted);
        let mut open = self.gate.open.lock().expect("gate");
        while !*open {
            open = self.gate.cond.wait(open).expect("gate");
        }
        Ok(())
    }

    fn restore(&self) -> Result<Snapshot, StoreError> {
        self.inner.restore()
    }
}

/// Waits (bounded) for the next event.
pub fn next(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("store event within 10 s")
}
