//! Content types: which ones each route accepts, and the extension tables between types and
//! file names.
//!
//! Minting and serving share these rules: a type accepted at mint time is sent back verbatim
//! as a header when the object is served, so the grammar is strict and active content (HTML,
//! XML, script, SVG) is refused everywhere. Anything that is not image/video/audio is served
//! as a sandboxed attachment ([`is_media_type`] decides).

/// True for `image/*`, `video/*` and `audio/*` with a non-empty, token-like subtype.
pub fn is_media_type(ct: &str) -> bool {
    let Some((ty, sub)) = ct.split_once('/') else {
        return false;
    };
    let sub = sub.split(';').next().unwrap_or("").trim();
    ["image", "video", "audio"].iter().any(|t| ty.eq_ignore_ascii_case(t))
        && !sub.is_empty()
        && sub.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
        && !sub.eq_ignore_ascii_case("svg+xml")
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// A content type safe to send back as a header value and to serve from our origin: strictly
/// `token[/token]` with optional `; name=value` token parameters (no commas, quotes or spaces
/// a browser's lenient parser could split on), bounded, and not a type a browser would
/// execute. Ctxfy's own example type, `example_string`, is a lone token and is accepted.
pub fn is_acceptable_content_type(ct: &str) -> bool {
    if ct.is_empty() || ct.len() > 127 {
        return false;
    }
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("").trim();
    let shape_ok = match essence.split_once('/') {
        Some((ty, sub)) => is_token(ty) && is_token(sub),
        None => is_token(essence),
    };
    let params_ok = parts.all(|p| p.trim().split_once('=').is_some_and(|(n, v)| is_token(n) && is_token(v)));
    let lower = essence.to_ascii_lowercase();
    let active = lower.contains("html")
        || lower.contains("xml")
        || lower.contains("script")
        || lower.contains("xsl")
        || lower == "image/svg+xml";
    shape_ok && params_ok && !active
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
    key.rsplit_once('.').and_then(|(_, ext)| content_type_for(ext)).unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        for ok in ["image/png", "video/mp4", "audio/mpeg", "IMAGE/JPEG", "image/png; charset=x"] {
            assert!(is_media_type(ok), "{ok}");
        }
        for bad in
            ["text/plain", "image/", "image", "application/pdf", "image/svg+xml", "image/p ng", "imagex/png"]
        {
            assert!(!is_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn content_types_are_strict_tokens() {
        for ok in [
            "example_string",
            "image/png",
            "application/pdf",
            "text/plain; charset=utf-8",
            "video/mp4;codecs=avc1",
        ] {
            assert!(is_acceptable_content_type(ok), "{ok}");
        }
        for bad in [
            "text/html",
            "text/html,",
            "TEXT/HTML",
            "text/html;x=1",
            "text/plain,text/html",
            "application/foo+xml",
            "text/xsl",
            "image/svg+xml",
            "application/javascript",
            "text/plain; charset=\"x\"",
            "a b",
            "",
            "text/plain\r\nx: y",
        ] {
            assert!(!is_acceptable_content_type(bad), "{bad:?}");
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
