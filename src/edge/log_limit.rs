//! [`LimitedLogger`]: warnings and errors, at most [`PER_SECOND`] a second from any one call
//! site, with the count of those dropped written on the site's next line.
//!
//! Many warning and error lines are one per connection or per request that a client can
//! cause without a key: Pingora's "Fail to proxy" for every connection cut mid-headers, an
//! origin error per request while the origin is down. Unbounded, they let anyone fill the
//! disk. The edge's own refusals log once per reason per second already
//! ([`crate::refusals`]); this bounds everything else. Info and lower pass untouched (the
//! access log is one line per request by the operator's choice).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use log::{Level, Log, Metadata, Record};

/// Lines a second from one call site.
pub const PER_SECOND: u32 = 10;

/// Where a record comes from: its file and line (or target, for records without a file).
type Site = (&'static str, u32);

struct Window {
    second: u64,
    lines: u32,
    dropped: u64,
}

pub struct LimitedLogger<L> {
    inner: L,
    start: Instant,
    sites: Mutex<HashMap<Site, Window>>,
}

/// What to do with one record.
enum Verdict {
    Log { dropped: u64 },
    Drop,
}

impl<L: Log> LimitedLogger<L> {
    pub fn new(inner: L) -> Self {
        Self { inner, start: Instant::now(), sites: Mutex::new(HashMap::new()) }
    }

    fn verdict(&self, site: Site) -> Verdict {
        let second = self.start.elapsed().as_secs();
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: one entry per warn/error call site in the binary.
        let w = sites.entry(site).or_insert(Window { second, lines: 0, dropped: 0 });
        if w.second != second {
            w.second = second;
            w.lines = 0;
        }
        if w.lines < PER_SECOND {
            w.lines += 1;
            Verdict::Log { dropped: std::mem::take(&mut w.dropped) }
        } else {
            w.dropped += 1;
            Verdict::Drop
        }
    }
}

impl<L: Log> Log for LimitedLogger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() > Level::Warn || !self.inner.enabled(record.metadata()) {
            self.inner.log(record);
            return;
        }
        let site = match (record.file_static(), record.line()) {
            (Some(f), Some(l)) => (f, l),
            // The log macros always give a static file; anything else shares one budget.
            _ => ("<unknown>", 0),
        };
        match self.verdict(site) {
            Verdict::Drop => {}
            Verdict::Log { dropped: 0 } => self.inner.log(record),
            Verdict::Log { dropped } => self.inner.log(
                &Record::builder()
                    .args(format_args!("{} ({dropped} more like this not logged)", record.args()))
                    .metadata(record.metadata().clone())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            ),
        }
    }

    fn flush(&self) {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Count(Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>);

    impl Log for Count {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &Record<'_>) {
            self.0.fetch_add(1, Ordering::Relaxed);
            self.1.lock().unwrap().push(r.args().to_string());
        }
        fn flush(&self) {}
    }

    #[test]
    fn one_site_is_capped_per_second_and_info_passes() {
        let (n, lines) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let l = LimitedLogger::new(Count(n.clone(), lines.clone()));
        let warn = |l: &LimitedLogger<Count>| {
            l.log(
                &Record::builder()
                    .level(Level::Warn)
                    .args(format_args!("w"))
                    .file_static(Some("f.rs"))
                    .line(Some(1))
                    .build(),
            )
        };
        for _ in 0..1000 {
            warn(&l);
        }
        let logged = n.load(Ordering::Relaxed);
        // PER_SECOND, or twice that when a second began during the loop.
        assert!(logged as u32 >= PER_SECOND && logged as u32 <= 2 * PER_SECOND + 1, "{logged}");
        for _ in 0..100 {
            l.log(
                &Record::builder()
                    .level(Level::Info)
                    .args(format_args!("i"))
                    .file_static(Some("f.rs"))
                    .line(Some(2))
                    .build(),
            );
        }
        assert_eq!(n.load(Ordering::Relaxed), logged + 100);
        // The next second's first line carries the count of those dropped.
        l.sites.lock().unwrap().values_mut().for_each(|w| w.second = u64::MAX);
        warn(&l);
        let last = lines.lock().unwrap().last().cloned().unwrap();
        assert!(last.contains("more like this not logged"), "{last}");
    }
}
