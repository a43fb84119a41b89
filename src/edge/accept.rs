//! Accepting when accept fails: which failures mean what, the backoff, and the reserved
//! descriptor that lets the loop close connections while the process is out of them.
//!
//! Out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), accept(2) fails at once for as long
//! as the condition lasts, and the connection stays in the kernel's backlog: retrying at
//! once is a busy loop, and waiting long leaves clients hanging. So the loop gives up its
//! reserved descriptor (held from the start for this moment), accepts and closes what waits
//! (those clients see a close at once instead of a timeout and may retry), takes the
//! descriptor back, and waits a backoff that starts at 10 ms and doubles to 250 ms, reset
//! by the next successful accept.

use std::fs::File;
use std::time::Duration;

use tokio::net::TcpListener;

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(250);
/// Waiting connections closed per shed: enough to empty a burst, few enough to return to
/// the loop (and the shutdown signal) quickly.
const SHED_MAX: usize = 256;

/// What a failed accept means for the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum AcceptError {
    /// The connection was reset or aborted before we took it: try the next.
    PeerGone,
    /// The process or system is out of descriptors or socket memory.
    OutOfDescriptors,
    /// Anything else: logged, then the backoff.
    Other,
}

impl AcceptError {
    pub fn classify(e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptError::OutOfDescriptors,
            Some(libc::ECONNABORTED | libc::ECONNRESET | libc::EPROTO | libc::EINTR | libc::EAGAIN) => {
                AcceptError::PeerGone
            }
            _ => AcceptError::Other,
        }
    }
}

/// The wait after a failed accept.
#[derive(Debug, Default)]
pub struct Backoff {
    current: Option<Duration>,
}

impl Backoff {
    pub fn next(&mut self) -> Duration {
        let d = self.current.map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX));
        self.current = Some(d);
        d
    }

    pub fn reset(&mut self) {
        self.current = None;
    }
}

/// One descriptor held back for [`Reserve::shed`].
pub struct Reserve(Option<File>);

impl Reserve {
    pub fn open() -> Self {
        Self(File::open("/dev/null").ok())
    }

    /// Give the reserved descriptor up, accept and close up to [`SHED_MAX`] waiting
    /// connections with it, and take it back. Returns how many were closed.
    pub fn shed(&mut self, listener: &TcpListener) -> usize {
        if self.0.is_none() {
            // Taken by someone else last time: try again, else there is nothing to shed with.
            *self = Self::open();
        }
        let Some(held) = self.0.take() else { return 0 };
        drop(held);
        let socket = socket2::SockRef::from(listener);
        let mut closed = 0;
        while closed < SHED_MAX {
            match socket.accept() {
                Ok((conn, _)) => {
                    // A reset, not a FIN: the client learns at once that this connection is
                    // gone, whatever it sent.
                    let _ = conn.set_linger(Some(Duration::ZERO));
                    drop(conn);
                    closed += 1;
                }
                Err(_) => break,
            }
        }
        *self = Self::open();
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u128> = (0..7).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 250, 250]);
        b.reset();
        assert_eq!(b.next(), BACKOFF_MIN);
    }

    #[test]
    fn descriptor_exhaustion_is_told_apart() {
        let e = |n| std::io::Error::from_raw_os_error(n);
        assert_eq!(AcceptError::classify(&e(libc::EMFILE)), AcceptError::OutOfDescriptors);
        assert_eq!(AcceptError::classify(&e(libc::ECONNABORTED)), AcceptError::PeerGone);
        assert_eq!(AcceptError::classify(&e(libc::EINVAL)), AcceptError::Other);
    }
}
