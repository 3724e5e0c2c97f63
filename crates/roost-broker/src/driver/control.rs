//! The command line to a connection's driver (takeover, administrative
//! close): at most one pending [`Control`] and a doorbell.
//!
//! A tokio `mpsc` channel did this before, at ~600 B per connection (its
//! cache-padded shared state plus a 32-slot block) — a sixth of what an
//! idle connection cost. The driver ends on the first command it receives,
//! so one pending command is all that is ever needed: later ones are
//! accepted and dropped, exactly as the driver would ignore them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::slot::Control;

#[derive(Debug)]
struct Shared {
    pending: Mutex<Option<Control>>,
    /// Live senders; the receiver sees `None` once the last one is gone.
    senders: AtomicUsize,
    receiver_alive: AtomicBool,
    doorbell: Notify,
}

/// A new line: the sending end goes to the session slot, the receiving end
/// to the driver.
pub(crate) fn channel() -> (ControlSender, ControlReceiver) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(None),
        senders: AtomicUsize::new(1),
        receiver_alive: AtomicBool::new(true),
        doorbell: Notify::new(),
    });
    (ControlSender(Arc::clone(&shared)), ControlReceiver(shared))
}

/// Sends commands to one driver.
#[derive(Debug)]
pub(crate) struct ControlSender(Arc<Shared>);

/// The driver's end.
#[derive(Debug)]
pub(crate) struct ControlReceiver(Arc<Shared>);

impl ControlSender {
    /// Hands `command` to the driver without waiting; `Err` gives it back
    /// when the driver is gone. A command already pending is kept (the driver
    /// acts on the first one only).
    pub(crate) fn try_send(&self, command: Control) -> Result<(), Control> {
        if !self.0.receiver_alive.load(Ordering::Acquire) {
            return Err(command);
        }
        self.0.pending.lock().get_or_insert(command);
        self.0.doorbell.notify_one();
        Ok(())
    }
}

impl Clone for ControlSender {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(&self.0))
    }
}

impl Drop for ControlSender {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Wake the driver so it sees that nobody can reach it any more.
            self.0.doorbell.notify_one();
        }
    }
}

impl ControlReceiver {
    /// The next command; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Control> {
        loop {
            if let Some(command) = self.0.pending.lock().take() {
                return Some(command);
            }
            if self.0.senders.load(Ordering::Acquire) == 0 {
                return None;
            }
            // `notify_one` leaves a permit when nobody waits, so a command
            // sent between the checks above and this wait is not missed.
            self.0.doorbell.notified().await;
        }
    }
}

impl Drop for ControlReceiver {
    fn drop(&mut self) {
        self.0.receiver_alive.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_codec::ReasonCode;

    #[tokio::test]
    async fn first_command_wins_and_the_line_closes_with_its_senders() {
        let (tx, mut rx) = channel();
        let second = tx.clone();
        assert!(tx.try_send(Control::Takeover).is_ok());
        assert!(
            second
                .try_send(Control::Close(ReasonCode::ADMINISTRATIVE_ACTION))
                .is_ok()
        );
        assert!(matches!(rx.recv().await, Some(Control::Takeover)));
        drop(tx);
        drop(second);
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_driver_is_woken_and_a_gone_driver_refuses() {
        let (tx, mut rx) = channel();
        let waiter = tokio::spawn(async move { rx.recv().await.is_some() });
        tokio::task::yield_now().await;
        assert!(tx.try_send(Control::Takeover).is_ok());
        let woke = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
        assert!(matches!(woke, Ok(Ok(true))));
        assert!(tx.try_send(Control::Takeover).is_err());
    }
}
