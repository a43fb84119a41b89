//! Live heap bytes, for telling a leak from the allocator's high-water mark in a soak
//! (`--features heap-stats`; benches/soak.sh reports them beside RSS).
//!
//! Off by default: every allocation and free then pays two contended atomic adds, which the
//! hot path has not been measured with.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

/// Counts what passes through to the allocator `A`.
pub struct Counting<A>(pub A);

unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) };
        count(-(layout.size() as isize), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize, 0);
        }
        p
    }
}

fn count(bytes: isize, blocks: isize) {
    LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    if blocks != 0 {
        LIVE_BLOCKS.fetch_add(blocks, Ordering::Relaxed);
    }
}

/// The Prometheus text for the live heap and, from mimalloc, the memory it has committed
/// (what it holds from the OS, live or cached): RSS well above the live heap and near the
/// committed bytes is the allocator's cache, not a leak.
pub fn render(out: &mut Vec<u8>) {
    let (mut elapsed, mut user, mut sys, mut rss, mut peak_rss, mut commit, mut peak_commit, mut faults) =
        (0, 0, 0, 0, 0, 0, 0, 0);
    // SAFETY: mi_process_info writes each out-parameter and keeps none of the pointers.
    unsafe {
        libmimalloc_sys::mi_process_info(
            &mut elapsed,
            &mut user,
            &mut sys,
            &mut rss,
            &mut peak_rss,
            &mut commit,
            &mut peak_commit,
            &mut faults,
        )
    };
    let lines = [
        (
            "presign_heap_live_bytes",
            "Bytes allocated and not yet freed.",
            LIVE_BYTES.load(Ordering::Relaxed) as i64,
        ),
        (
            "presign_heap_live_blocks",
            "Allocations not yet freed.",
            LIVE_BLOCKS.load(Ordering::Relaxed) as i64,
        ),
        ("presign_heap_committed_bytes", "Memory mimalloc has committed from the OS.", commit as i64),
        (
            "presign_heap_committed_peak_bytes",
            "The most memory mimalloc has had committed.",
            peak_commit as i64,
        ),
    ];
    for (name, help, v) in lines {
        out.extend_from_slice(format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n").as_bytes());
    }
}
