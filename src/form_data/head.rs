//! A part's header block: `Content-Disposition: form-data; name=...` and `Content-Type`.

use super::params::{self, is_token};
use super::FormError;

/// What a part says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    /// The form field's name.
    pub name: String,
    pub filename: Option<String>,
    /// The part's `Content-Type`, as sent (its caller applies its own policy).
    pub content_type: Option<String>,
}

const fn bad(what: &'static str) -> FormError {
    FormError::Malformed(what)
}

/// Parse a block: the rest of the boundary line (transport padding only), CRLF, header
/// lines each ending in CRLF, and the blank line's CRLF.
pub(super) fn parse(block: &[u8]) -> Result<PartHead, FormError> {
    let text = std::str::from_utf8(block).map_err(|_| bad("a part's headers are not UTF-8"))?;
    let inner = text.strip_suffix("\r\n\r\n").ok_or(bad("a part's headers do not end in a blank line"))?;
    let (padding, lines) = inner.split_once("\r\n").unwrap_or((inner, ""));
    if !padding.bytes().all(|b| b == b' ' || b == b'\t') {
        return Err(bad("a boundary line has more than the boundary"));
    }
    let mut disposition = None;
    let mut content_type = None;
    for line in lines.split("\r\n").filter(|_| !lines.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(bad("a part header without a colon"))?;
        if !is_token(name) {
            return Err(bad("a part header's name is not a token"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("a part header's value has a control character"));
        }
        let slot = if name.eq_ignore_ascii_case("content-disposition") {
            &mut disposition
        } else if name.eq_ignore_ascii_case("content-type") {
            &mut content_type
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(bad("a part repeats a header"));
        }
    }
    let disposition = disposition.ok_or(bad("a part without Content-Disposition"))?;
    let (kind, list) = disposition.split_once(';').unwrap_or((disposition, ""));
    if !kind.trim_matches([' ', '\t']).eq_ignore_ascii_case("form-data") {
        return Err(bad("a part's Content-Disposition is not form-data"));
    }
    let list = params::parse(list).ok_or(bad("a part's Content-Disposition does not parse"))?;
    let mut name = None;
    let mut filename = None;
    for (n, v) in list {
        let slot = if n.eq_ignore_ascii_case("name") {
            &mut name
        } else if n.eq_ignore_ascii_case("filename") {
            &mut filename
        } else {
            continue;
        };
        if slot.replace(v.to_owned()).is_some() {
            return Err(bad("a part's Content-Disposition repeats a parameter"));
        }
    }
    Ok(PartHead {
        name: name.ok_or(bad("a part without a name"))?,
        filename,
        content_type: content_type.map(str::to_owned),
    })
}
