//! A streaming `multipart/form-data` parser with bounds on everything a hostile body can
//! grow: the preamble, each part's header block, and the number of parts ([`Limits`]).
//!
//! It is sans-I/O: [`Parser::push`] feeds bytes, [`Parser::next`] hands back events, so the
//! same code runs under the gateway's body pump and under the property tests.
//!
//! The search for the boundary is linear. Bytes that cannot start a delimiter are handed
//! out (or dropped) as soon as they are scanned; what is kept is at most the delimiter's
//! length, and only when it is a prefix of the delimiter, so a later chunk only continues
//! that match. No byte is ever searched twice, however the body is split into chunks, and
//! memory stays at one chunk plus one delimiter (a header block at most its limit).

mod boundary;
mod head;
mod params;

pub use boundary::parse_boundary;
pub use head::PartHead;

use bytes::{Buf, Bytes, BytesMut};

/// The bounds on a form, beyond the size cap its caller puts on the whole body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes before the first boundary (browsers send none).
    pub preamble: usize,
    /// One part's header block, from the end of its boundary line to the blank line.
    pub part_headers: usize,
    /// Parts in one form.
    pub parts: usize,
}

/// The gateway's limits (documented in README.md, "Running it on the internet").
pub const LIMITS: Limits = Limits { preamble: 4096, part_headers: 8192, parts: 64 };

/// Why a body is not a form we take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    PreambleTooLong,
    HeadersTooLong,
    TooManyParts,
    /// The body ended before the closing boundary.
    Truncated,
    /// Not `multipart/form-data` as RFC 7578 writes it; says where.
    Malformed(&'static str),
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormError::PreambleTooLong => {
                write!(f, "more than {} bytes before the first boundary", LIMITS.preamble)
            }
            FormError::HeadersTooLong => write!(f, "a part's headers exceed {} bytes", LIMITS.part_headers),
            FormError::TooManyParts => write!(f, "more than {} parts", LIMITS.parts),
            FormError::Truncated => f.write_str("the body ended before the closing boundary"),
            FormError::Malformed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FormError {}

/// What the parser found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A part begins (the previous one, if any, has ended).
    Part(PartHead),
    /// Bytes of the current part's body, in order.
    Data(Bytes),
    /// The closing boundary: the form is complete. Whatever follows is never read.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    /// Just past a delimiter: `--` closes the form, anything else starts a part's headers.
    AfterDelimiter,
    Headers,
    Body,
    Done,
}

/// One form being parsed.
pub struct Parser {
    /// `\r\n--{boundary}`.
    delim: Vec<u8>,
    finder: memchr::memmem::Finder<'static>,
    buf: BytesMut,
    state: State,
    limits: Limits,
    /// `buf[..partial]` is a proper prefix of `delim` kept from the last scan.
    partial: usize,
    /// How far a header block has been searched for its blank line.
    headers_scanned: usize,
    /// Preamble bytes dropped so far (the virtual CRLF included).
    preamble_seen: usize,
    parts: usize,
    eof: bool,
}

/// The CRLF the parser puts in front of the body, so a body that starts with its boundary
/// (as every browser's does) matches the same `\r\n--boundary` as every later one.
const VIRTUAL_CRLF: &[u8] = b"\r\n";

/// Where a delimiter search ended.
enum Scan {
    /// A delimiter starts at this index of `buf`.
    Found(usize),
    /// None in `buf`; `buf[..safe]` can never be part of one.
    Clear { safe: usize },
}

impl Parser {
    /// A parser for `boundary` (as [`parse_boundary`] returns it) with `limits`.
    pub fn new(boundary: &str, limits: Limits) -> Result<Self, FormError> {
        if !boundary::is_valid(boundary) {
            return Err(FormError::Malformed("the boundary is not 1 to 70 boundary characters"));
        }
        let mut delim = b"\r\n--".to_vec();
        delim.extend_from_slice(boundary.as_bytes());
        let finder = memchr::memmem::Finder::new(&delim).into_owned();
        let mut buf = BytesMut::with_capacity(8192);
        buf.extend_from_slice(VIRTUAL_CRLF);
        Ok(Self {
            delim,
            finder,
            buf,
            state: State::Preamble,
            limits,
            partial: 0,
            headers_scanned: 0,
            preamble_seen: 0,
            parts: 0,
            eof: false,
        })
    }

    /// More of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.state != State::Done {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The body has ended; [`Parser::next`] now reports a form cut short as
    /// [`FormError::Truncated`].
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// The next event, or `Ok(None)` when more input is needed (or the form has ended).
    pub fn next(&mut self) -> Result<Option<Event>, FormError> {
        loop {
            let progressed = match self.state {
                State::Done => return Ok(None),
                State::Preamble => self.preamble()?,
                State::AfterDelimiter => match self.after_delimiter()? {
                    Some(ev) => return Ok(Some(ev)),
                    None => false,
                },
                State::Headers => match self.headers()? {
                    Some(ev) => return Ok(Some(ev)),
                    None => false,
                },
                State::Body => match self.body() {
                    Some(ev) => return Ok(Some(ev)),
                    None => self.state != State::Body,
                },
            };
            if !progressed {
                return if self.eof { Err(FormError::Truncated) } else { Ok(None) };
            }
        }
    }

    /// Whether the closing boundary has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn scan(&mut self) -> Scan {
        let d = &self.delim;
        let mut from = 0;
        if self.partial > 0 {
            let n = d.len().min(self.buf.len());
            if self.buf[..n] == d[..n] {
                return if n == d.len() { Scan::Found(0) } else { Scan::Clear { safe: 0 } };
            }
            // The kept prefix failed. The delimiter's only CR is its first byte and the
            // boundary has none, so no delimiter starts inside the kept bytes either.
            from = self.partial;
        }
        if let Some(i) = self.finder.find(&self.buf[from..]) {
            return Scan::Found(from + i);
        }
        // Keep the longest tail that could still grow into a delimiter: it starts at the
        // tail's last CR, if anywhere.
        let tail = from.max(self.buf.len().saturating_sub(d.len() - 1));
        let safe = match memchr::memrchr(b'\r', &self.buf[tail..]) {
            Some(j) if d.starts_with(&self.buf[tail + j..]) => tail + j,
            _ => self.buf.len(),
        };
        Scan::Clear { safe }
    }

    /// Drop preamble bytes up to the first delimiter. Returns whether it got there.
    fn preamble(&mut self) -> Result<bool, FormError> {
        let (dropped, found) = match self.scan() {
            Scan::Found(i) => (i, true),
            Scan::Clear { safe } => (safe, false),
        };
        self.preamble_seen += dropped;
        if self.preamble_seen > self.limits.preamble + VIRTUAL_CRLF.len() {
            return Err(FormError::PreambleTooLong);
        }
        self.buf.advance(dropped);
        if found {
            self.buf.advance(self.delim.len());
            self.partial = 0;
            self.state = State::AfterDelimiter;
        } else {
            self.partial = self.buf.len();
        }
        Ok(found)
    }

    fn after_delimiter(&mut self) -> Result<Option<Event>, FormError> {
        if self.buf.len() < 2 {
            return Ok(None);
        }
        if self.buf.starts_with(b"--") {
            self.state = State::Done;
            self.buf = BytesMut::new();
            return Ok(Some(Event::End));
        }
        self.parts += 1;
        if self.parts > self.limits.parts {
            return Err(FormError::TooManyParts);
        }
        self.headers_scanned = 0;
        self.state = State::Headers;
        self.headers()
    }

    /// The header block: the rest of the boundary line, the header lines, the blank line.
    fn headers(&mut self) -> Result<Option<Event>, FormError> {
        const END: &[u8] = b"\r\n\r\n";
        let from = self.headers_scanned.saturating_sub(END.len() - 1);
        let Some(i) = memchr::memmem::find(&self.buf[from..], END).map(|i| from + i) else {
            if self.buf.len() > self.limits.part_headers {
                return Err(FormError::HeadersTooLong);
            }
            self.headers_scanned = self.buf.len();
            return Ok(None);
        };
        if i + END.len() > self.limits.part_headers {
            return Err(FormError::HeadersTooLong);
        }
        let block = self.buf.split_to(i + END.len());
        let head = head::parse(&block)?;
        self.partial = 0;
        self.state = State::Body;
        Ok(Some(Event::Part(head)))
    }

    fn body(&mut self) -> Option<Event> {
        match self.scan() {
            Scan::Found(i) => {
                let data = self.buf.split_to(i).freeze();
                self.buf.advance(self.delim.len());
                self.partial = 0;
                self.state = State::AfterDelimiter;
                (!data.is_empty()).then_some(Event::Data(data))
            }
            Scan::Clear { safe } => {
                let data = self.buf.split_to(safe).freeze();
                self.partial = self.buf.len();
                (!data.is_empty()).then_some(Event::Data(data))
            }
        }
    }
}

#[cfg(test)]
mod tests;
