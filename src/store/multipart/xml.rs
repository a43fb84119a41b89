//! The little XML multipart needs: reading S3's small answers (InitiateMultipartUploadResult,
//! ListPartsResult, CompleteMultipartUploadResult, Error) and a client's
//! CompleteMultipartUpload body, and writing the body sent to a bucket.
//!
//! The reader is a careful element extractor, not a parser: it finds `<Name>` or
//! `<Name attr…>` (never a longer name that starts the same, e.g. `<PartNumber>` for `Part`),
//! takes the text up to `</Name>`, and decodes the five predefined entities and numeric
//! character references (Go-based stores write `&#34;` for the quotes in ETags). Comments,
//! CDATA and DOCTYPEs are not expected in these documents and are refused where they would
//! change the meaning.

use std::borrow::Cow;

use super::MultipartError;
use crate::s3_error::push_escaped;

/// The raw (still escaped) contents of each `<name>…</name>` element, in document order.
/// Elements of one name are never nested in the documents read here.
pub fn elements<'a>(xml: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let mut rest = xml;
    std::iter::from_fn(move || loop {
        let at = rest.find('<')?;
        rest = &rest[at + 1..];
        let Some(after) = rest.strip_prefix(name) else { continue };
        // The open tag ends the name here: `>`, `/>`, or whitespace before attributes.
        let tag_end = after.find('>')?;
        let head = &after[..tag_end];
        if !(head.is_empty() || head.starts_with(|c: char| c.is_ascii_whitespace() || c == '/')) {
            continue;
        }
        let body = &after[tag_end + 1..];
        if head.ends_with('/') {
            rest = body;
            return Some("");
        }
        let close = format!("</{name}>");
        let end = body.find(&close)?;
        rest = &body[end + close.len()..];
        return Some(&body[..end]);
    })
}

/// The decoded text of the first `<name>` element.
pub fn first_text(xml: &str, name: &str) -> Option<String> {
    elements(xml, name).next().and_then(|raw| unescape(raw).map(Cow::into_owned))
}

/// The name of the document's root element (after any `<?xml …?>` declaration).
pub fn root_name(xml: &str) -> Option<&str> {
    let mut rest = xml.trim_start();
    while let Some(decl) = rest.strip_prefix("<?") {
        rest = decl.split_once("?>")?.1.trim_start();
    }
    let tag = rest.strip_prefix('<')?;
    let end = tag.find(|c: char| c == '>' || c == '/' || c.is_ascii_whitespace())?;
    Some(&tag[..end])
}

/// Character data with its entities decoded; `None` for an unknown entity, a malformed
/// reference, or markup inside what should be text.
pub fn unescape(raw: &str) -> Option<Cow<'_, str>> {
    if raw.contains('<') {
        return None;
    }
    if !raw.contains('&') {
        return Some(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let (entity, after) = rest[at + 1..].split_once(';')?;
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = match entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => entity.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = after;
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

/// The `CompleteMultipartUpload` body for these parts (number, ETag as given).
pub fn complete_body<'a>(parts: impl Iterator<Item = (u32, &'a str)>) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        xml.push_str("<Part><PartNumber>");
        crate::decimal::push_u64(&mut xml, u64::from(n));
        xml.push_str("</PartNumber><ETag>");
        push_escaped(&mut xml, etag);
        xml.push_str("</ETag></Part>");
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// A client's `CompleteMultipartUpload` body as (PartNumber, ETag) pairs, in the order
/// sent (the order rule is checked by the store, so it can answer InvalidPartOrder).
pub fn parse_complete_request(body: &str) -> Result<Vec<(u32, String)>, MultipartError> {
    let bad = |detail: &str| MultipartError::MalformedXml(detail.to_string());
    if body.contains("<!") {
        return Err(bad("comments, CDATA and DOCTYPE are not accepted"));
    }
    if root_name(body) != Some("CompleteMultipartUpload") {
        return Err(bad("the root element is not CompleteMultipartUpload"));
    }
    let mut parts = Vec::new();
    for part in elements(body, "Part") {
        let number = first_text(part, "PartNumber")
            .ok_or_else(|| bad("a Part has no PartNumber"))?
            .trim()
            .parse::<u32>()
            .map_err(|_| MultipartError::InvalidPartNumber)?;
        let etag = first_text(part, "ETag").ok_or_else(|| bad("a Part has no ETag"))?;
        parts.push((number, etag.trim().to_string()));
    }
    if parts.is_empty() {
        return Err(bad("no Part elements"));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>media</Bucket>
<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
<IsTruncated>true</IsTruncated>
<Part><PartNumber>1</PartNumber><ETag>&quot;aa&quot;</ETag><Size>5</Size></Part>
<Part><PartNumber>2</PartNumber><ETag>&#34;bb&#x22;</ETag><Size>7</Size></Part>
</ListPartsResult>"#;

    #[test]
    fn elements_match_whole_names_only() {
        let parts: Vec<&str> = elements(LIST, "Part").collect();
        assert_eq!(parts.len(), 2, "PartNumberMarker is not a Part");
        assert_eq!(first_text(parts[0], "ETag").as_deref(), Some("\"aa\""));
        assert_eq!(first_text(parts[1], "ETag").as_deref(), Some("\"bb\""));
        assert_eq!(first_text(LIST, "NextPartNumberMarker").as_deref(), Some("2"));
        assert_eq!(first_text(LIST, "IsTruncated").as_deref(), Some("true"));
        assert_eq!(root_name(LIST), Some("ListPartsResult"));
        assert_eq!(first_text("<a><Key/><Key>x</Key></a>", "Key").as_deref(), Some(""));
        assert_eq!(first_text("<a><Key>x", "Key"), None, "unclosed");
    }

    #[test]
    fn unescape_knows_the_entities_and_refuses_the_rest() {
        assert_eq!(unescape("a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;").as_deref(), Some("a&b<>\"'AB"));
        assert_eq!(unescape("&nbsp;"), None);
        assert_eq!(unescape("&amp"), None);
        assert_eq!(unescape("&#xD800;"), None);
        assert_eq!(unescape("a<b"), None);
    }

    #[test]
    fn complete_body_round_trips() {
        let body = complete_body([(1, "\"a&b\""), (2, "\"c\"")].into_iter());
        assert_eq!(
            body,
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&amp;b&quot;</ETag>\
             </Part><Part><PartNumber>2</PartNumber><ETag>&quot;c&quot;</ETag></Part></CompleteMultipartUpload>"
        );
        let parsed = parse_complete_request(&body).unwrap();
        assert_eq!(parsed, vec![(1, "\"a&b\"".to_string()), (2, "\"c\"".to_string())]);
        assert!(matches!(parse_complete_request("<X/>"), Err(MultipartError::MalformedXml(_))));
        assert!(matches!(
            parse_complete_request("<CompleteMultipartUpload></CompleteMultipartUpload>"),
            Err(MultipartError::MalformedXml(_))
        ));
        assert!(matches!(
            parse_complete_request(
                "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part>\
                 </CompleteMultipartUpload>"
            ),
            Err(MultipartError::InvalidPartNumber)
        ));
    }
}
