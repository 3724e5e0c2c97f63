//! The allocator's contract (size and alignment of every block, contents kept
//! by `realloc`, zeroes from `alloc_zeroed`) and the property it exists for:
//! a request the size of a mimalloc size class gets a block of that class.
#![expect(unsafe_code, reason = "calling the GlobalAlloc methods under test")]

use std::alloc::{GlobalAlloc, Layout};

use super::{Mimalloc, ask_release, release_if_asked};

/// More blocks than one 64 KiB mimalloc page holds for any size tested, so
/// that pages fill up and new ones start.
const MANY: usize = 20_000;

fn usable(ptr: *mut u8) -> usize {
    // SAFETY: `ptr` is a live block of this allocator.
    unsafe { libmimalloc_sys::mi_usable_size(ptr.cast_const().cast()) }
}

/// Allocates `MANY` blocks of `layout`, checks each, and frees them.
fn each_block(layout: Layout, mut check: impl FnMut(*mut u8)) {
    let mut blocks = Vec::with_capacity(MANY);
    for _ in 0..MANY {
        // SAFETY: every layout tested has a non-zero size.
        let ptr = unsafe { Mimalloc.alloc(layout) };
        assert!(!ptr.is_null(), "{layout:?}: out of memory");
        check(ptr);
        blocks.push(ptr);
    }
    for ptr in blocks {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { Mimalloc.dealloc(ptr, layout) };
    }
}

#[test]
fn a_size_class_request_gets_a_block_of_exactly_that_class() {
    // mimalloc size classes on 64-bit targets (16-byte steps up to 64 bytes,
    // then 4 per power of two); through `mi_malloc_aligned` each of these came
    // out one class up, all of them or some.
    for size in [48, 80, 96, 112, 160, 320, 1_280, 1_536, 3_072] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        each_block(layout, |ptr| assert_eq!(usable(ptr), size, "{layout:?}"));
    }
}

#[test]
fn every_block_has_the_requested_size_and_alignment() {
    for align in [1, 2, 4, 8, 16, 32, 64, 128, 4_096] {
        for size in [1, 3, 8, 12, 24, 40, 48, 100, 264, 1_536, 5_000, 70_000] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let count = if size > 4_096 { 100 } else { MANY };
            let mut blocks = Vec::with_capacity(count);
            for _ in 0..count {
                // SAFETY: non-zero size.
                let ptr = unsafe { Mimalloc.alloc(layout) };
                assert!(!ptr.is_null());
                assert!(ptr.addr().is_multiple_of(align), "{layout:?} at {ptr:p}");
                assert!(usable(ptr) >= size, "{layout:?}");
                // SAFETY: the block holds `size` bytes.
                unsafe { ptr.write_bytes(0xA5, size) };
                blocks.push(ptr);
            }
            for ptr in blocks {
                // SAFETY: allocated above with `layout`.
                unsafe { Mimalloc.dealloc(ptr, layout) };
            }
        }
    }
}

#[test]
fn alloc_zeroed_returns_zeroes() {
    for (size, align) in [(24, 8), (48, 16), (1_536, 128), (100_000, 8)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { Mimalloc.alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        assert!(ptr.addr().is_multiple_of(align));
        // SAFETY: the block holds `size` initialised (zeroed) bytes.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, size) };
        assert!(bytes.iter().all(|&b| b == 0), "{layout:?}");
        // SAFETY: allocated above with `layout`.
        unsafe { Mimalloc.dealloc(ptr, layout) };
    }
}

#[test]
fn realloc_keeps_contents_and_alignment_growing_and_shrinking() {
    for align in [8, 16, 128] {
        let mut layout = Layout::from_size_align(16, align).unwrap();
        // SAFETY: non-zero size.
        let mut ptr = unsafe { Mimalloc.alloc(layout) };
        assert!(!ptr.is_null());
        // SAFETY: 16 bytes.
        unsafe { ptr.write_bytes(7, 16) };
        for new_size in [40, 1_000, 70_000, 24, 16] {
            // SAFETY: `ptr` was allocated with `layout`; non-zero new size.
            ptr = unsafe { Mimalloc.realloc(ptr, layout, new_size) };
            assert!(!ptr.is_null());
            assert!(
                ptr.addr().is_multiple_of(align),
                "align {align}, size {new_size}"
            );
            // SAFETY: at least 16 bytes, the first 16 kept from the start.
            let kept = unsafe { std::slice::from_raw_parts(ptr, 16) };
            assert!(
                kept.iter().all(|&b| b == 7),
                "align {align}, size {new_size}"
            );
            layout = Layout::from_size_align(new_size, align).unwrap();
        }
        // SAFETY: `ptr` holds `layout` after the last realloc.
        unsafe { Mimalloc.dealloc(ptr, layout) };
    }
}

/// The process's resident set, from /proc (Linux only).
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn release_if_asked_releases_once_per_ask_and_returns_freed_pages() {
    // Another thread of this test binary may ask too; settle this thread first.
    release_if_asked();
    assert!(!release_if_asked(), "nothing asked since the last release");

    // 64 MiB in 1 KiB blocks, touched so that they are resident, then freed:
    // mimalloc keeps the pages until it purges.
    let layout = Layout::from_size_align(1024, 8).unwrap();
    let blocks: Vec<*mut u8> = (0..65_536)
        .map(|_| {
            // SAFETY: non-zero size.
            let ptr = unsafe { Mimalloc.alloc(layout) };
            assert!(!ptr.is_null());
            // SAFETY: the block holds 1,024 bytes.
            unsafe { ptr.write_bytes(1, 1024) };
            ptr
        })
        .collect();
    for ptr in blocks {
        // SAFETY: allocated above with `layout`.
        unsafe { Mimalloc.dealloc(ptr, layout) };
    }
    let Some(before) = rss_bytes() else {
        return; // not Linux: nothing to measure the release with
    };

    ask_release();
    assert!(release_if_asked(), "asked: this thread releases");
    assert!(!release_if_asked(), "one release per ask");
    let after = rss_bytes().unwrap();
    assert!(
        after + 32 * 1024 * 1024 <= before,
        "RSS {before} -> {after}: less than half of the 64 MiB freed went back"
    );
}
