//! The binary's allocator: mimalloc, tuned so that RSS follows the live heap.
//!
//! Measured with `benches/soak.sh` (the mixed load, 2 threads; the live heap stayed at about
//! 6 MiB in every run, so none of this is a leak), and CPU per mint with `benches/load.sh`
//! (1 thread, same binary, same run):
//!
//! | mimalloc 3.3 settings                   | RSS at minute 3 | later             | CPU/mint |
//! |-----------------------------------------|-----------------|-------------------|----------|
//! | defaults (THP allowed, purge after 1 s) | 88 MiB          | 154 MiB, min. 29  | 29-35 µs |
//! | transparent huge pages off              | 43 MiB          | 70 MiB, min. 15   | 35-43 µs |
//! | THP off, purge delay 10 ms              | 40 MiB          | 43 MiB, min. 10   | 34-43 µs |
//! | THP off, purge delay 0                  | 31 MiB          | 39 MiB, min. 29   | 60 µs    |
//!
//! With huge pages, khugepaged fills a 2 MiB page around a few small live blocks; with a long
//! purge delay, pages freed between two bursts stay resident. A delay of 0 purges and faults
//! pages back on every request (twice the system time), 10 ms (mimalloc 2's default) does not.
//!
//! An operator's own `MIMALLOC_ALLOW_THP` or `MIMALLOC_PURGE_DELAY` wins over each choice.

use std::os::raw::{c_int, c_long};

#[cfg(not(feature = "heap-stats"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "heap-stats")]
#[global_allocator]
static GLOBAL: presign_gateway::heap_stats::Counting<mimalloc::MiMalloc> =
    presign_gateway::heap_stats::Counting(mimalloc::MiMalloc);

/// `mi_option_purge_delay` in mimalloc 3.3's `mi_option_t` (libmimalloc-sys exports only the
/// options shared with v1), and the default it has there: reading that default back is how
/// [`tune`] knows the number still names that option after an upgrade.
const PURGE_DELAY: c_int = 15;
const PURGE_DELAY_DEFAULT_MS: c_long = 1000;
const PURGE_DELAY_MS: c_long = 10;

/// Applies the settings above; returns the line to log once logging is up.
pub fn tune() -> String {
    let thp = if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        "transparent huge pages as MIMALLOC_ALLOW_THP says"
    } else {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only. It covers the whole
        // process, mimalloc's arena already reserved included (checked at fault time).
        match unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } {
            0 => "transparent huge pages off",
            _ => "transparent huge pages left on (prctl refused)",
        }
    };
    let purge = if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        "purge delay as MIMALLOC_PURGE_DELAY says".to_string()
    } else {
        // SAFETY: option getters and setters take plain integers.
        match unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) } {
            PURGE_DELAY_DEFAULT_MS => {
                unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
                format!("freed pages purged after {PURGE_DELAY_MS} ms")
            }
            other => format!(
                "purge delay left alone (option {PURGE_DELAY} reads {other}, not mimalloc 3.3's \
                 purge delay default {PURGE_DELAY_DEFAULT_MS})"
            ),
        }
    };
    // SAFETY: takes nothing, returns an integer.
    let version = unsafe { libmimalloc_sys::mi_version() };
    format!(
        "allocator: mimalloc {}.{}.{}, {thp}, {purge}",
        version / 10000,
        version / 100 % 100,
        version % 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when a mimalloc upgrade renumbers the options: then [`PURGE_DELAY`] must follow
    /// the new `mi_option_t` (the running binary would only log that it left the delay alone).
    #[test]
    fn the_purge_delay_option_is_where_mimalloc_3_3_has_it() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: as in tune.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, PURGE_DELAY_DEFAULT_MS);
        assert_eq!(unsafe { libmimalloc_sys::mi_version() } / 100, 303, "mimalloc 3.3.x");
    }
}
