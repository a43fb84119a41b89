//! `X-Amz-Date`: the ISO 8601 basic format `yyyyMMdd'T'HHmmss'Z'` (always UTC), written on
//! the stack and parsed strictly. The first 8 characters are the credential-scope date.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A formatted `X-Amz-Date` plus the UTC date and time it denotes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AmzDate {
    text: [u8; 16],
    at: OffsetDateTime,
}

impl AmzDate {
    /// Formats `t` (converted to UTC first). Years outside 0..=9999 cannot be written in
    /// this format and are clamped; no real signing time is near them.
    pub fn new(t: OffsetDateTime) -> Self {
        let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
        let mut text = *b"00000000T000000Z";
        let year = t.year().clamp(0, 9999) as u32;
        put_digits(&mut text[0..4], year);
        put_digits(&mut text[4..6], u32::from(u8::from(t.month())));
        put_digits(&mut text[6..8], u32::from(t.day()));
        put_digits(&mut text[9..11], u32::from(t.hour()));
        put_digits(&mut text[11..13], u32::from(t.minute()));
        put_digits(&mut text[13..15], u32::from(t.second()));
        Self { text, at: t }
    }

    /// Parses `yyyyMMdd'T'HHmmss'Z'` exactly (16 characters, a real calendar date and time).
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        let year = i32::try_from(num(0..4)?).ok()?;
        let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
        let day = u8::try_from(num(6..8)?).ok()?;
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let time = Time::from_hms(
            u8::try_from(num(9..11)?).ok()?,
            u8::try_from(num(11..13)?).ok()?,
            u8::try_from(num(13..15)?).ok()?,
        )
        .ok()?;
        let at = PrimitiveDateTime::new(date, time).assume_utc();
        let mut text = [0u8; 16];
        text.copy_from_slice(b);
        Some(Self { text, at })
    }

    /// The 16-character `X-Amz-Date` text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this never takes the fallback.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The 8-character `yyyyMMdd` used in the credential scope.
    pub fn date_str(&self) -> &str {
        std::str::from_utf8(&self.text[..8]).unwrap_or_default()
    }

    /// The UTC date and time.
    pub fn datetime(&self) -> OffsetDateTime {
        self.at
    }

    /// The UTC date (the credential-scope date).
    pub fn date(&self) -> Date {
        self.at.date()
    }
}

impl std::fmt::Debug for AmzDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes `v` as zero-padded decimal filling `out`.
fn put_digits(out: &mut [u8], mut v: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}
