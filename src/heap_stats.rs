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
        gauge(out, name, help, v);
    }
    render_pages(out);
}

fn gauge(out: &mut Vec<u8>, name: &str, help: &str, v: impl std::fmt::Display) {
    out.extend_from_slice(format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n").as_bytes());
}

/// One block size's pages, summed over every thread's heap.
#[derive(Clone, Copy, Default)]
struct Bin {
    block_size: usize,
    pages: usize,
    touched: usize,
    used: usize,
}

/// Fixed room, so that the visitor (which runs inside mimalloc) never allocates.
struct Bins {
    bins: [Bin; 128],
    len: usize,
}

unsafe extern "C" fn visit_area(
    _heap: *const libmimalloc_sys::mi_heap_t,
    area: *const libmimalloc_sys::mi_heap_area_t,
    _block: *mut std::ffi::c_void,
    _block_size: usize,
    arg: *mut std::ffi::c_void,
) -> bool {
    // SAFETY: mimalloc passes a valid area for the call, and `arg` is the `Bins` that
    // `render_pages` lent it for the walk.
    let (area, bins) = unsafe { (&*area, &mut *(arg as *mut Bins)) };
    let i = match bins.bins[..bins.len].iter().position(|b| b.block_size == area.full_block_size) {
        Some(i) => i,
        None if bins.len < bins.bins.len() => {
            bins.len += 1;
            bins.bins[bins.len - 1].block_size = area.full_block_size;
            bins.len - 1
        }
        None => return true,
    };
    let b = &mut bins.bins[i];
    b.pages += 1;
    b.touched += area.committed;
    b.used += area.used * area.full_block_size;
    true
}

/// Where the pages mimalloc holds go, by block size: `touched` is the part of each page its
/// blocks have been carved from (resident unless purged), `used` the blocks not yet freed by
/// the page's owner (a block freed by another thread counts until the owner collects it).
/// The walk reads the pages' headers without locking them: figures for a soak, not exact.
fn render_pages(out: &mut Vec<u8>) {
    let mut bins = Bins { bins: [Bin::default(); 128], len: 0 };
    // SAFETY: a null heap is the process's main heap, whose pages span every thread; the
    // visitor only reads the area it is given and writes `bins`, which outlives the call.
    unsafe {
        libmimalloc_sys::mi_heap_visit_blocks(
            std::ptr::null_mut(),
            false,
            Some(visit_area),
            &mut bins as *mut Bins as *mut std::ffi::c_void,
        );
    }
    let bins = &mut bins.bins[..bins.len];
    bins.sort_by_key(|b| b.block_size);
    let (pages, touched, used) =
        bins.iter().fold((0, 0, 0), |(p, t, u), b| (p + b.pages, t + b.touched, u + b.used));
    for (name, help, v) in [
        ("presign_heap_pages", "mimalloc pages held, over every thread.", pages),
        ("presign_heap_pages_touched_bytes", "Bytes of those pages carved into blocks.", touched),
        ("presign_heap_pages_used_bytes", "Bytes of blocks their owner has not seen freed.", used),
    ] {
        gauge(out, name, help, v);
    }
    out.extend_from_slice(b"# TYPE presign_heap_bin_touched_bytes gauge\n");
    for b in bins.iter() {
        out.extend_from_slice(
            format!(
                "presign_heap_bin_touched_bytes{{block_size=\"{}\",pages=\"{}\",used=\"{}\"}} {}\n",
                b.block_size, b.pages, b.used, b.touched
            )
            .as_bytes(),
        );
    }
}
