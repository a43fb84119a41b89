//! Decimal numbers written without `core::fmt`: the mint path writes a dozen of them per
//! request (dates, sizes, expiries, user ids), and the formatter's machinery cost more than
//! the digits.

/// A `u64` in decimal, on the stack.
#[derive(Clone, Copy)]
pub struct Decimal {
    buf: [u8; 20],
    start: usize,
}

impl Decimal {
    pub fn new(n: u64) -> Self {
        let mut buf = [b'0'; 20];
        let mut start = buf.len();
        let mut n = n;
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Self { buf, start }
    }

    /// At least `width` digits, zero-padded (never truncated).
    pub fn padded(n: u64, width: usize) -> Self {
        let mut d = Self::new(n);
        d.start = d.start.min(d.buf.len().saturating_sub(width));
        d
    }

    /// Append the digits.
    pub fn push_to(&self, out: &mut String) {
        out.push_str(self.as_str());
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

/// Append `n` in decimal.
pub fn push_u64(out: &mut String, n: u64) {
    Decimal::new(n).push_to(out);
}

/// Append `n` in decimal, zero-padded to at least `width` digits.
pub fn push_padded(out: &mut String, n: u64, width: usize) {
    Decimal::padded(n, width).push_to(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_match_the_formatter() {
        for n in [0, 1, 9, 10, 99, 100, 524_288, 104_857_600, u64::MAX] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
            assert_eq!(Decimal::padded(n, 4).as_str(), format!("{n:04}"));
        }
        let mut s = String::new();
        push_padded(&mut s, 7, 2);
        push_u64(&mut s, 2026);
        push_padded(&mut s, 123, 2);
        assert_eq!(s, "072026123");
    }
}
