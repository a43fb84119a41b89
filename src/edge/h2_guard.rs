//! [`H2Guard`]: a reader of the client's HTTP/2 frame headers, below the h2 codec, that ends
//! a connection whose frames are abuse rather than traffic.
//!
//! The codec (the `h2` crate, with Pingora's bounds) already limits streams at once, the
//! decoded header list, resets of streams not yet accepted, and what it buffers to send.
//! Some abuse still costs work per frame above those bounds:
//! - rapid reset (CVE-2023-44487): streams opened and reset at once never count against
//!   the stream limit, yet each accepted one starts a request;
//! - a CONTINUATION flood: one header block spread over endless frames;
//! - PING, SETTINGS or PRIORITY floods, each answered or processed by the codec.
//!
//! The guard sees every byte the codec reads (decrypted, before the codec) and keeps a
//! token bucket per kind. It reads only the 9-byte frame headers and skips payloads, so its
//! cost is a few comparisons per frame. A violation fails the read: the codec ends the
//! connection and every stream on it.

use std::time::Instant;

const PREFACE_LEN: u32 = 24;

const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// The guard's limits (from `tls.http2`); 0 in a per-second limit turns it off.
#[derive(Debug, Clone, Copy)]
pub struct H2Limits {
    pub max_header_frames: u32,
    pub max_resets_per_sec: u32,
    pub max_control_frames_per_sec: u32,
}

/// Why a connection was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    RapidReset,
    ContinuationFlood,
    ControlFlood,
}

impl Violation {
    pub fn describe(self) -> &'static str {
        match self {
            Violation::RapidReset => "streams reset faster than tls.http2.max_resets_per_sec",
            Violation::ContinuationFlood => "a header block over tls.http2.max_header_frames frames",
            Violation::ControlFlood => {
                "PING/SETTINGS/PRIORITY faster than tls.http2.max_control_frames_per_sec"
            }
        }
    }
}

/// A burst of `rate`, refilled at `rate` per second.
#[derive(Debug)]
struct Bucket {
    rate: u32,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        Self { rate, tokens: f64::from(rate), at: None }
    }

    fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        if let Some(at) = self.at {
            let refill = now.duration_since(at).as_secs_f64() * f64::from(self.rate);
            self.tokens = (self.tokens + refill).min(f64::from(self.rate));
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One connection's frame reader.
#[derive(Debug)]
pub struct H2Guard {
    limits: H2Limits,
    /// Bytes of the client preface still to pass.
    preface_left: u32,
    /// A frame header split across reads.
    header: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: u32,
    /// Frames of the header block in progress; 0: none in progress.
    block_frames: u32,
    resets: Bucket,
    control: Bucket,
}

impl H2Guard {
    pub fn new(limits: H2Limits) -> Self {
        Self {
            limits,
            preface_left: PREFACE_LEN,
            header: [0; 9],
            have: 0,
            skip: 0,
            block_frames: 0,
            resets: Bucket::new(limits.max_resets_per_sec),
            control: Bucket::new(limits.max_control_frames_per_sec),
        }
    }

    /// Pass the bytes just read; an error ends the connection.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Violation> {
        let pass = self.preface_left.min(bytes.len() as u32);
        self.preface_left -= pass;
        bytes = &bytes[pass as usize..];
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u32);
                self.skip -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 9 {
                self.have = 0;
                let h = self.header;
                self.skip = u32::from_be_bytes([0, h[0], h[1], h[2]]);
                self.frame(h[3], h[4])?;
            }
        }
        Ok(())
    }

    fn frame(&mut self, kind: u8, flags: u8) -> Result<(), Violation> {
        match kind {
            HEADERS => self.block_frames = u32::from(flags & END_HEADERS == 0),
            CONTINUATION => {
                self.block_frames += 1;
                if self.block_frames > self.limits.max_header_frames {
                    return Err(Violation::ContinuationFlood);
                }
                if flags & END_HEADERS != 0 {
                    self.block_frames = 0;
                }
            }
            RST_STREAM if !self.resets.take(Instant::now()) => return Err(Violation::RapidReset),
            PING | SETTINGS | PRIORITY if !self.control.take(Instant::now()) => {
                return Err(Violation::ControlFlood)
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: H2Limits =
        H2Limits { max_header_frames: 4, max_resets_per_sec: 10, max_control_frames_per_sec: 5 };

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend([kind, flags]);
        f.extend(stream.to_be_bytes());
        f.extend(payload);
        f
    }

    fn preface() -> Vec<u8> {
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()
    }

    #[test]
    fn honest_traffic_passes_even_one_byte_at_a_time() {
        let mut wire = preface();
        wire.extend(frame(SETTINGS, 0, 0, &[0; 6]));
        for s in 0..50u32 {
            wire.extend(frame(HEADERS, 0, 2 * s + 1, &[0; 40]));
            wire.extend(frame(CONTINUATION, END_HEADERS, 2 * s + 1, &[0; 40]));
            wire.extend(frame(0x0, 0x1, 2 * s + 1, &[7; 300]));
        }
        let mut g = H2Guard::new(LIMITS);
        for b in &wire {
            g.feed(std::slice::from_ref(b)).expect("honest frames pass");
        }
        let mut g = H2Guard::new(LIMITS);
        g.feed(&wire).expect("honest frames pass in one read");
    }

    #[test]
    fn a_header_block_over_its_frame_limit_ends_the_connection() {
        let mut wire = preface();
        wire.extend(frame(HEADERS, 0, 1, &[0; 10]));
        for _ in 0..4 {
            wire.extend(frame(CONTINUATION, 0, 1, &[0; 10]));
        }
        let mut g = H2Guard::new(LIMITS);
        assert_eq!(g.feed(&wire), Err(Violation::ContinuationFlood));
    }

    #[test]
    fn resets_beyond_the_burst_end_the_connection() {
        let mut wire = preface();
        for s in 0..11u32 {
            wire.extend(frame(HEADERS, END_HEADERS, 2 * s + 1, &[0; 5]));
            wire.extend(frame(RST_STREAM, 0, 2 * s + 1, &[0, 0, 0, 8]));
        }
        let mut g = H2Guard::new(LIMITS);
        assert_eq!(g.feed(&wire), Err(Violation::RapidReset));
        let mut off = H2Guard::new(H2Limits { max_resets_per_sec: 0, ..LIMITS });
        assert_eq!(off.feed(&wire), Ok(()));
    }

    #[test]
    fn control_frames_beyond_the_burst_end_the_connection() {
        let mut wire = preface();
        for _ in 0..6 {
            wire.extend(frame(PING, 0, 0, &[0; 8]));
        }
        assert_eq!(H2Guard::new(LIMITS).feed(&wire), Err(Violation::ControlFlood));
    }

    #[test]
    fn the_bucket_refills_with_time() {
        let mut b = Bucket::new(2);
        let t0 = Instant::now();
        assert!(b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(b.take(t0 + std::time::Duration::from_millis(600)));
    }
}
