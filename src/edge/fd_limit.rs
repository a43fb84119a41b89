//! The process's file descriptor limit: raised from the soft to the hard limit at start (the
//! soft limit is often 1024, far below what an edge needs, while the hard limit is what the
//! administrator allows), and read back to size the default connection cap.

/// RLIMIT_NOFILE before and after [`raise`].
#[derive(Debug, Clone, Copy)]
pub struct FdLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

fn get() -> std::io::Result<libc::rlimit> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

/// Raise the soft limit to the hard limit. A failure leaves the soft limit as it was.
pub fn raise() -> std::io::Result<FdLimit> {
    let before = get()?;
    // An unlimited hard limit still stops at the kernel's per-process ceiling.
    let target = if before.rlim_max == libc::RLIM_INFINITY { nr_open() } else { before.rlim_max };
    if before.rlim_cur < target {
        let wanted = libc::rlimit { rlim_cur: target, rlim_max: before.rlim_max };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let after = get()?;
    Ok(FdLimit { soft_before: before.rlim_cur, soft: after.rlim_cur, hard: after.rlim_max })
}

fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// The soft limit now.
pub fn soft() -> u64 {
    get().map(|r| r.rlim_cur).unwrap_or(1024)
}
