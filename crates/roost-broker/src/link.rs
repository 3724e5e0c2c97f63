//! The line to a connection's driver: at most one pending [`Control`]
//! (takeover, administrative close, management requests) and the doorbell the driver waits on,
//! rung for a command and for deliveries (the session slot rings it when its
//! outbox stops being empty, [`ControlSender::ring`]). One doorbell per
//! connection, not one per slot as well: 32 bytes less in every slot, and
//! one wait less in every turn of the driver's loop.
//!
//! A tokio `mpsc` channel did this before, at ~600 B per connection (its
//! cache-padded shared state plus a 32-slot block) — a sixth of what an
//! idle connection cost. The driver ends on the first command it receives,
//! so one pending command is all that is ever needed: later ones are
//! accepted and dropped, exactly as the driver would ignore them. The one
//! command that does not end it, [`Control::Admin`], carries nothing (the
//! requests wait in `crate::admin_subs`) and gives way to any other.
//!
//! While the connection hibernates (`hibernate/`) no driver waits on the
//! doorbell: the line then holds a [`Sleeper`], which a command, the last
//! sender leaving, or a delivery ([`ControlSender::ring`]) wakes by putting
//! its id on the dormitory's [`WakeList`].
//!
//! The slot holds the sending end, the driver (or the dormitory) the
//! receiving end: this file sits below both, and imports neither.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use roost_codec::ReasonCode;

/// Commands a broker sends to the driver that owns a session.
#[derive(Debug)]
pub(crate) enum Control {
    /// Another connection took the client id: send DISCONNECT 0x8E, close, and
    /// hand the session over through the slot's `handover` sender.
    Takeover,
    /// Close the connection with this reason (administrative action, shutdown).
    Close(ReasonCode),
    /// The management API queued requests for this connection (subscribe,
    /// unsubscribe, its live detail) in `crate::admin_subs`: take and
    /// answer them, and go on. The only command that does not end the
    /// driver, so any other replaces it while it is pending.
    Admin,
}

impl Control {
    /// Whether `self`, pending, gives way to `next`: an ending command
    /// always wins over [`Control::Admin`] (whose requests then go
    /// unanswered: their callers time out), and the first ending one stays.
    fn yields_to(&self, next: &Control) -> bool {
        matches!(self, Control::Admin) && !matches!(next, Control::Admin)
    }
}

/// Where hibernating connections' wake-ups go: their ids, and the bell the
/// dormitory's task waits on (it also rings for arrivals).
#[derive(Debug, Default)]
pub(crate) struct WakeList {
    ids: Mutex<Vec<u32>>,
    /// Rung for every wake-up.
    pub(crate) bell: Notify,
}

impl WakeList {
    /// The ids woken since the last call.
    pub(crate) fn take(&self) -> Vec<u32> {
        std::mem::take(&mut *self.ids.lock())
    }
}

/// How a hibernating connection is woken: its id on the dormitory's wake list.
#[derive(Debug)]
pub(crate) struct Sleeper {
    wakes: Weak<WakeList>,
    id: u32,
}

impl Sleeper {
    /// The sleeper of bed `id` of the dormitory whose list `wakes` is.
    pub(crate) fn new(wakes: &Arc<WakeList>, id: u32) -> Self {
        Self {
            wakes: Arc::downgrade(wakes),
            id,
        }
    }

    /// Puts the id on the list and rings (nothing once the dormitory is gone).
    pub(crate) fn wake(self) {
        if let Some(wakes) = self.wakes.upgrade() {
            wakes.ids.lock().push(self.id);
            wakes.bell.notify_one();
        }
    }
}

/// 64 bytes: with its reference counts, the 80-byte size class (every
/// connection has one, idle ones included).
#[derive(Debug)]
struct Shared {
    line: Mutex<Line>,
    /// Live senders; the receiver hears `Heard::Closed` once the last one is gone.
    senders: AtomicU32,
    /// A command was sent: the driver, which looks every turn, takes the
    /// lock only then.
    commanded: AtomicBool,
    receiver_alive: AtomicBool,
    /// A sleeper is installed: lets [`ControlSender::ring`], which runs for
    /// deliveries, skip the lock while the connection is awake.
    asleep: AtomicBool,
    doorbell: Notify,
}

/// What senders and the driver exchange, under one lock: a command and the
/// sleeper that must hear of it are never missed between two locks. The
/// sleeper is kept in its parts, so that the command fits beside its id
/// (16 bytes, not 24).
#[derive(Debug, Default)]
struct Line {
    pending: Option<Control>,
    sleeper_id: u32,
    /// Set while a sleeper is installed.
    sleeper_wakes: Option<Weak<WakeList>>,
}

impl Line {
    fn install(&mut self, sleeper: Sleeper) {
        self.sleeper_wakes = Some(sleeper.wakes);
        self.sleeper_id = sleeper.id;
    }

    fn take_sleeper(&mut self) -> Option<Sleeper> {
        let wakes = self.sleeper_wakes.take()?;
        Some(Sleeper {
            wakes,
            id: self.sleeper_id,
        })
    }
}

/// A new line: the sending end goes to the session slot, the receiving end
/// to the driver.
pub(crate) fn channel() -> (ControlSender, ControlReceiver) {
    let shared = Arc::new(Shared {
        line: Mutex::new(Line::default()),
        senders: AtomicU32::new(1),
        commanded: AtomicBool::new(false),
        receiver_alive: AtomicBool::new(true),
        asleep: AtomicBool::new(false),
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
    /// acts on the first one only), except [`Control::Admin`], which an
    /// ending command replaces.
    pub(crate) fn try_send(&self, command: Control) -> Result<(), Control> {
        if !self.0.receiver_alive.load(Ordering::Acquire) {
            return Err(command);
        }
        let sleeper = {
            let mut line = self.0.line.lock();
            match &line.pending {
                Some(pending) if !pending.yields_to(&command) => {}
                _ => line.pending = Some(command),
            }
            self.0.commanded.store(true, Ordering::Release);
            self.0.take_sleeper(&mut line)
        };
        self.0.doorbell.notify_one();
        if let Some(sleeper) = sleeper {
            sleeper.wake();
        }
        Ok(())
    }

    /// Deliveries are waiting for the driver: rings its doorbell, or wakes
    /// the connection if it hibernates (a lock-free check while it is awake).
    pub(crate) fn ring(&self) {
        self.0.doorbell.notify_one();
        if self.0.asleep.load(Ordering::Acquire) {
            let sleeper = self.0.take_sleeper(&mut self.0.line.lock());
            if let Some(sleeper) = sleeper {
                sleeper.wake();
            }
        }
    }
}

impl Shared {
    fn take_sleeper(&self, line: &mut Line) -> Option<Sleeper> {
        let sleeper = line.take_sleeper();
        if sleeper.is_some() {
            self.asleep.store(false, Ordering::Release);
        }
        sleeper
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
            let sleeper = self.0.take_sleeper(&mut self.0.line.lock());
            if let Some(sleeper) = sleeper {
                sleeper.wake();
            }
        }
    }
}

/// What the driver finds on its line after the doorbell rang.
#[derive(Debug)]
pub(crate) enum Heard {
    Command(Control),
    /// Every sender is gone: nobody can reach this driver any more.
    Closed,
    /// No command: the ring was for deliveries.
    Nothing,
}

impl ControlReceiver {
    /// The doorbell's next ring. `notify_one` leaves a permit when nobody
    /// waits, so a ring between [`Self::take`] and this wait is not missed.
    pub(crate) fn doorbell(&self) -> Notified<'_> {
        self.0.doorbell.notified()
    }

    /// The pending command, if any.
    pub(crate) fn take(&self) -> Heard {
        if self.0.commanded.load(Ordering::Acquire)
            && let Some(command) = self.0.line.lock().pending.take()
        {
            return Heard::Command(command);
        }
        if self.0.senders.load(Ordering::Acquire) == 0 {
            return Heard::Closed;
        }
        Heard::Nothing
    }
}

impl ControlReceiver {
    /// Installs the sleeper of a hibernating connection; false (and nothing
    /// installed) when a command is pending or nobody can send any more:
    /// the connection must stay awake to act on it.
    pub(crate) fn sleep(&self, sleeper: Sleeper) -> bool {
        let mut line = self.0.line.lock();
        if line.pending.is_some() || self.0.senders.load(Ordering::Acquire) == 0 {
            return false;
        }
        line.install(sleeper);
        self.0.asleep.store(true, Ordering::Release);
        true
    }

    /// Removes the sleeper (the connection is awake again).
    pub(crate) fn wake_up(&self) {
        drop(self.0.take_sleeper(&mut self.0.line.lock()));
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

    impl ControlReceiver {
        /// The next command; `None` once every sender is gone.
        async fn recv(&self) -> Option<Control> {
            loop {
                match self.take() {
                    Heard::Command(command) => return Some(command),
                    Heard::Closed => return None,
                    Heard::Nothing => self.doorbell().await,
                }
            }
        }
    }

    #[tokio::test]
    async fn first_command_wins_and_the_line_closes_with_its_senders() {
        let (tx, rx) = channel();
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
        let (tx, rx) = channel();
        let waiter = tokio::spawn(async move { rx.recv().await.is_some() });
        tokio::task::yield_now().await;
        assert!(tx.try_send(Control::Takeover).is_ok());
        let woke = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
        assert!(matches!(woke, Ok(Ok(true))));
        assert!(tx.try_send(Control::Takeover).is_err());
    }

    #[tokio::test]
    async fn an_ending_command_replaces_a_pending_admin_request_and_not_the_reverse() {
        let (tx, rx) = channel();
        assert!(tx.try_send(Control::Admin).is_ok());
        assert!(
            tx.try_send(Control::Close(ReasonCode::ADMINISTRATIVE_ACTION))
                .is_ok()
        );
        assert!(tx.try_send(Control::Admin).is_ok());
        assert!(matches!(
            rx.recv().await,
            Some(Control::Close(ReasonCode::ADMINISTRATIVE_ACTION))
        ));
        assert!(tx.try_send(Control::Admin).is_ok());
        assert!(tx.try_send(Control::Admin).is_ok());
        assert!(matches!(rx.recv().await, Some(Control::Admin)));
        assert!(matches!(rx.take(), Heard::Nothing));
    }

    #[test]
    fn a_line_fits_the_80_byte_size_class_with_its_reference_counts() {
        let size = std::mem::size_of::<Shared>() + 2 * std::mem::size_of::<usize>();
        assert!(size <= 80, "Arc<Shared> is {size} bytes");
    }

    #[tokio::test]
    async fn a_ring_for_deliveries_wakes_the_driver_without_a_command() {
        let (tx, rx) = channel();
        tx.ring(); // before the driver waits: kept as a permit
        let rung = tokio::time::timeout(std::time::Duration::from_secs(5), rx.doorbell()).await;
        assert!(rung.is_ok());
        assert!(matches!(rx.take(), Heard::Nothing));
    }
}
