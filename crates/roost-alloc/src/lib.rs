//! The `roost` server's global allocator: mimalloc, asked the way C's `malloc` is.
//!
//! mimalloc took about a third less broker CPU per message than glibc malloc
//! (docs/performance.md, "Allocator"). This crate holds the one piece of
//! `unsafe` that using it needs, so every other crate keeps `unsafe_code`
//! forbidden.
//!
//! # Why not `mimalloc::MiMalloc`
//!
//! That allocator passes every request to `mi_malloc_aligned(size, align)`.
//! mimalloc 3 serves an aligned request from its exact size class only when
//! that class's current page has a free block at hand; otherwise, and so
//! always for a class whose page nothing else starts, it over-allocates
//! `size + align - 1` bytes, which lands in the next class up (mimalloc issue
//! 889). Measured with 20,000 allocations of one size at alignment 8: 80 -> 96,
//! 160 -> 192, 320 -> 384, 1,280 -> 1,536 and 1,536 -> 1,792 bytes (48 -> 64
//! for some); in the broker, the two 48-byte blocks of each subscription took
//! 64 bytes.
//!
//! An alignment up to 16 needs no aligned call: every mimalloc block is
//! 8-aligned, and a block whose size is a multiple of 16 is 16-aligned (pages
//! start 16-aligned, and on 64-bit targets every size class above 8 bytes is
//! a multiple of 16). So [`Mimalloc`] rounds the size up to a multiple of the
//! alignment (Rust layouts usually are already) and calls plain `mi_malloc`,
//! which always uses the size's own class. Larger alignments (tokio's
//! 128-byte task cells) keep the aligned calls.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

use libmimalloc_sys as ffi;

/// mimalloc's `MI_MAX_ALIGN_SIZE`: the largest alignment that a plain
/// `mi_malloc` of a multiple of it guarantees.
const PLAIN_ALIGN: usize = 16;

/// mimalloc as a Rust global allocator (see the crate documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mimalloc;

/// The size to ask plain `mi_malloc` for, when `align` allows a plain call:
/// `size` rounded up to a multiple of `align`, so that the block's size class
/// gives the alignment. `None` when the alignment needs an aligned call, or
/// when rounding would overflow (the aligned call then reports the failure).
fn plain_size(size: usize, align: usize) -> Option<usize> {
    if align > PLAIN_ALIGN {
        return None;
    }
    size.checked_next_multiple_of(align)
}

// SAFETY: every method hands mimalloc a request it documents as valid and
// returns what mimalloc returned: a block of at least the requested size at
// the requested alignment (see `plain_size` for why plain calls are aligned),
// or null. Blocks are freed and resized only by mimalloc, which accepts any
// block it handed out, whichever of its allocation calls made it.
#[expect(unsafe_code, reason = "the GlobalAlloc contract and mimalloc's FFI")]
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = match plain_size(layout.size(), layout.align()) {
            // SAFETY: mi_malloc accepts any size.
            Some(size) => unsafe { ffi::mi_malloc(size) },
            // SAFETY: `Layout` guarantees a power-of-two alignment.
            None => unsafe { ffi::mi_malloc_aligned(layout.size(), layout.align()) },
        };
        debug_assert!(ptr.is_null() || ptr.addr().is_multiple_of(layout.align()));
        ptr.cast()
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = match plain_size(layout.size(), layout.align()) {
            // SAFETY: mi_zalloc accepts any size.
            Some(size) => unsafe { ffi::mi_zalloc(size) },
            // SAFETY: `Layout` guarantees a power-of-two alignment.
            None => unsafe { ffi::mi_zalloc_aligned(layout.size(), layout.align()) },
        };
        debug_assert!(ptr.is_null() || ptr.addr().is_multiple_of(layout.align()));
        ptr.cast()
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned.
        unsafe { ffi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = match plain_size(new_size, layout.align()) {
            // SAFETY: the caller passes a block this allocator returned; a
            // block that mi_realloc moves is allocated as by mi_malloc, so the
            // same rounding keeps it aligned.
            Some(size) => unsafe { ffi::mi_realloc(ptr.cast::<c_void>(), size) },
            // SAFETY: as above, with the block's own alignment.
            None => unsafe {
                ffi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align())
            },
        };
        debug_assert!(moved.is_null() || moved.addr().is_multiple_of(layout.align()));
        moved.cast()
    }
}

/// Bumped by [`ask_release`]; each thread remembers the value it last
/// released at.
static RELEASE_ASKED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RELEASED_AT: Cell<u64> = const { Cell::new(0) };
}

/// Asks every thread to hand its free memory back to the OS the next time it
/// calls [`release_if_asked`].
///
/// mimalloc returns freed pages to the OS only when it purges, and it purges
/// from inside later allocations and frees: a server that has just freed a
/// lot and then sits idle (connections that hibernate, a burst that ended)
/// keeps every freed page resident, since nothing runs that would purge
/// them. Purging eagerly all the time (`MIMALLOC_PURGE_DELAY=0`) costs 4-7 %
/// CPU per message (docs/performance.md, "Hibernation"), so the broker asks
/// for a release at the moments it knows it freed memory and went quiet.
pub fn ask_release() {
    RELEASE_ASKED.fetch_add(1, Ordering::Relaxed);
}

/// Hands this thread's free memory back to the OS if [`ask_release`] was
/// called since this thread last did so. Meant for a runtime's park hook
/// (`tokio::runtime::Builder::on_thread_park`): a thread about to idle is the
/// one that can collect its own pages (mimalloc frees a thread's empty pages
/// only on that thread), and the check costs one atomic load otherwise.
/// Returns whether it released.
pub fn release_if_asked() -> bool {
    let asked = RELEASE_ASKED.load(Ordering::Relaxed);
    if RELEASED_AT.get() == asked {
        return false;
    }
    RELEASED_AT.set(asked);
    // SAFETY: mi_collect takes no pointer and may be called at any time on
    // any thread; `force` frees this thread's empty pages and purges the
    // arenas' free ranges now instead of after the purge delay.
    #[expect(unsafe_code, reason = "mimalloc's FFI")]
    unsafe {
        ffi::mi_collect(true);
    }
    true
}

#[cfg(test)]
mod tests;
