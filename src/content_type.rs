//! Content types: the one policy every way in shares (mint, from-url, form POST, memories'
//! multipart, the local PUT), and the extension tables between types and file names.
//!
//! A type that is stored is sent back verbatim as a header when the object is served, so it
//! must pass one strict grammar ([`is_well_formed`]): `type "/" subtype *( *SP ";" *SP name
//! "=" value )`, every part an RFC 9110 token, at most 127 bytes. That leaves no room for
//! control characters, CR, LF, NUL, quotes, commas or angle brackets. On top of the grammar,
//! types a browser executes (HTML, XML, script, XSL, SVG) are refused everywhere
//! ([`is_acceptable_content_type`]), and the media routes take only inert media
//! ([`is_media_type`]). Serving ([`served_type`]) re-checks what it reads back, and anything
//! that is not inert media is a sandboxed attachment.

/// Longest content type taken anywhere.
pub const MAX_CONTENT_TYPE_BYTES: usize = 127;

/// What the store serves when it has no acceptable type for an object.
pub const FALLBACK_TYPE: &str = "application/octet-stream";

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// The strict grammar: `token/token`, then `; name=value` token parameters, spaces only
/// around the `;`. Nothing is trimmed: a type that needs trimming is not well formed.
pub fn is_well_formed(ct: &str) -> bool {
    if ct.is_empty() || ct.len() > MAX_CONTENT_TYPE_BYTES {
        return false;
    }
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("");
    let essence_ok = essence.split_once('/').is_some_and(|(ty, sub)| is_token(ty) && is_token(sub));
    essence_ok
        && parts.all(|p| p.trim_matches(' ').split_once('=').is_some_and(|(n, v)| is_token(n) && is_token(v)))
}

/// A type a browser would run as a document or script from our origin.
fn is_active(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").to_ascii_lowercase();
    ["html", "xml", "script", "xsl"].iter().any(|w| essence.contains(w))
}

/// A type that may be stored and served: well formed and not active content. This is the
/// general policy (Ctxfy, upload sessions, form POSTs, the local PUT).
pub fn is_acceptable_content_type(ct: &str) -> bool {
    is_well_formed(ct) && !is_active(ct)
}

/// Inert media: an acceptable `image/*`, `video/*` or `audio/*` type whose subtype is plain
/// (`[A-Za-z0-9.+_-]`). The media routes take only these, and only these are served inline.
pub fn is_media_type(ct: &str) -> bool {
    if !is_acceptable_content_type(ct) {
        return false;
    }
    let essence = ct.split(';').next().unwrap_or("");
    let Some((ty, sub)) = essence.split_once('/') else { return false };
    ["image", "video", "audio"].iter().any(|t| ty.eq_ignore_ascii_case(t))
        && sub.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_'))
}

/// A lone token such as Ctxfy's own example type `example_string`: its mint signs it (the
/// page's example must work), but it is no `type/subtype`, so the store keeps
/// [`FALLBACK_TYPE`] for it.
pub fn is_lone_token(ct: &str) -> bool {
    ct.len() <= MAX_CONTENT_TYPE_BYTES && is_token(ct)
}

/// The type to store for an upload that declared `declared` (a header or form field): none
/// or a lone token is [`FALLBACK_TYPE`]; an acceptable type is itself; anything else is
/// `None`, and the upload is refused.
pub fn type_to_store(declared: Option<&str>) -> Option<&str> {
    match declared {
        None => Some(FALLBACK_TYPE),
        Some(t) if is_acceptable_content_type(t) => Some(t),
        Some(t) if is_lone_token(t) => Some(FALLBACK_TYPE),
        Some(_) => None,
    }
}

/// The `Content-Type` to serve for a stored type: itself when it passes the policy (a
/// metadata file written by an older build, or edited by hand, may not), else
/// [`FALLBACK_TYPE`].
pub fn served_type(stored: &str) -> &str {
    if is_acceptable_content_type(stored) {
        stored
    } else {
        FALLBACK_TYPE
    }
}

/// The extension for a content type, for keys whose filename gave none.
pub fn extension_for(content_type: &str) -> Option<&'static str> {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    Some(match ct.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/avif" => "avif",
        "image/svg+xml" => "svg",
        "image/bmp" => "bmp",
        "image/tiff" => "tiff",
        "image/heic" => "heic",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "video/quicktime" => "mov",
        "video/x-matroska" => "mkv",
        "audio/mpeg" => "mp3",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/ogg" => "ogg",
        "audio/flac" => "flac",
        "audio/aac" => "aac",
        "audio/mp4" => "m4a",
        "audio/webm" => "weba",
        _ => return None,
    })
}

/// The content type for an extension (memories sends only a filename).
pub fn content_type_for(ext: &str) -> Option<&'static str> {
    Some(match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" | "oga" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "m4a" => "audio/mp4",
        _ => return None,
    })
}

/// The type a stored key's extension implies, for objects that arrive without one.
pub fn type_for_key(key: &str) -> &'static str {
    key.rsplit_once('.').and_then(|(_, ext)| content_type_for(ext)).unwrap_or(FALLBACK_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list every way in is tested with (`tests/content_type_policy.rs` too).
    fn hostile() -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/hostile-content-types.json")).unwrap();
        v["hostile"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn media_types() {
        for ok in ["image/png", "video/mp4", "audio/mpeg", "IMAGE/JPEG", "image/png; charset=x", "image/x_y"]
        {
            assert!(is_media_type(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "image/",
            "image",
            "application/pdf",
            "image/svg+xml",
            "image/p ng",
            "imagex/png",
            "image/png'",
        ] {
            assert!(!is_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn content_types_are_strict_tokens() {
        for ok in [
            "image/png",
            "application/pdf",
            "text/plain; charset=utf-8",
            "video/mp4;codecs=avc1",
            "a/b;  c=d",
        ] {
            assert!(is_acceptable_content_type(ok), "{ok}");
        }
        for bad in
            ["example_string", "text/plain,text/html", "application/foo+xml", "a b", "text/plain\r\nx: y"]
        {
            assert!(!is_acceptable_content_type(bad), "{bad:?}");
        }
        assert!(is_lone_token("example_string") && !is_lone_token("a/b") && !is_lone_token(""));
    }

    #[test]
    fn hostile_types_are_refused_everywhere() {
        for bad in hostile() {
            assert!(!is_acceptable_content_type(&bad), "{bad:?}");
            assert!(!is_media_type(&bad), "{bad:?}");
            assert!(!is_lone_token(&bad), "{bad:?}");
            assert_eq!(served_type(&bad), FALLBACK_TYPE, "{bad:?}");
        }
    }

    #[test]
    fn extensions_round_trip() {
        assert_eq!(extension_for("image/png; charset=x"), Some("png"));
        assert_eq!(content_type_for("MP4"), Some("video/mp4"));
        assert_eq!(extension_for("application/pdf"), None);
        assert_eq!(type_for_key("a/b.MP3"), "audio/mpeg");
        assert_eq!(type_for_key("a/b"), "application/octet-stream");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
    }

    proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Whatever is accepted is safe to send back as a header and obeys the grammar.
        #[test]
        fn accepted_types_are_safe_headers(ct in any::<String>()) {
            for (accepted, what) in [(is_acceptable_content_type(&ct), "acceptable"), (is_media_type(&ct), "media")] {
                if accepted {
                    prop_assert!(http::HeaderValue::from_str(&ct).is_ok(), "{what} {ct:?}");
                    prop_assert!(ct.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{what} {ct:?}");
                    prop_assert!(!ct.contains(['<', '>', '"', ',', '\\']), "{what} {ct:?}");
                    prop_assert!(is_well_formed(&ct) && !is_active(&ct));
                }
            }
            if is_media_type(&ct) {
                prop_assert!(is_acceptable_content_type(&ct));
            }
            let stored = type_to_store(Some(&ct));
            prop_assert!(stored.is_none_or(is_acceptable_content_type), "{ct:?} -> {stored:?}");
            prop_assert!(is_acceptable_content_type(served_type(&ct)));
        }

        /// Well-formed types built from the grammar are accepted unless active.
        #[test]
        fn grammar_types_are_accepted(
            ty in token(),
            sub in token(),
            params in prop::collection::vec((token(), token(), " {0,2}"), 0..3),
        ) {
            let mut ct = format!("{ty}/{sub}");
            for (n, v, sp) in &params {
                ct.push_str(&format!(";{sp}{n}={v}"));
            }
            prop_assume!(ct.len() <= MAX_CONTENT_TYPE_BYTES);
            prop_assert!(is_well_formed(&ct), "{ct:?}");
            prop_assert_eq!(is_acceptable_content_type(&ct), !is_active(&ct));
            // One byte the grammar forbids, anywhere, breaks it.
            for bad in ['\r', '\n', '\0', '<', '"', ','] {
                for at in [0, ct.len() / 2, ct.len()] {
                    let mut broken = ct.clone();
                    broken.insert(at, bad);
                    prop_assert!(!is_acceptable_content_type(&broken), "{broken:?}");
                }
            }
        }
    }
}
