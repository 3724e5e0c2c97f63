//! Growing the process's file-descriptor table once, before clients come.
//!
//! Linux doubles a process's descriptor table when a new descriptor does
//! not fit, and in a multi-threaded process every growth waits for an RCU
//! grace period. Measured here: three `accept4` calls of a fresh broker took
//! 8, 13 and 34 ms (tables of 256, 512, 1,024…), and every handshake queued
//! behind them waited too: CONNACK p99 15-23 ms in the first burst of
//! clients against 1.4 ms once the table had grown. (Single-threaded
//! Mosquitto pays no grace period.) Duplicating a descriptor to a high
//! number grows the table in one step at start-up; the duplicate is closed
//! at once, the table keeps its size (kernel memory, 8 bytes per slot).

use std::os::fd::AsFd;
use std::sync::Once;

/// The most descriptors asked for (the kernel rounds the table up to a
/// power of two: at most 1 MiB of kernel memory here).
const MAX_SLOTS: u64 = 1 << 17;
/// Below this the table is cheap to grow on demand: not worth it.
const MIN_SLOTS: u64 = 1 << 10;

/// Grows the table (once per process) to hold as many descriptors as the
/// soft `RLIMIT_NOFILE` allows, up to [`MAX_SLOTS`]. `fd` is any open
/// descriptor.
pub(crate) fn grow_once(fd: impl AsFd) {
    static GROWN: Once = Once::new();
    GROWN.call_once(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(MAX_SLOTS)
            .min(MAX_SLOTS);
        if limit < MIN_SLOTS {
            return;
        }
        let Ok(highest) = i32::try_from(limit - 1) else {
            return;
        };
        // A failure only means the table grows on demand, as before.
        match rustix::io::fcntl_dupfd_cloexec(&fd, highest) {
            Ok(_closed_at_once) => tracing::debug!(slots = limit, "file descriptor table grown"),
            Err(e) => tracing::debug!(error = %e, "file descriptor table not grown"),
        }
    });
}
