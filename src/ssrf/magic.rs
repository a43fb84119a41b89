//! Content-type sniffing from magic bytes. A fetched source's `Content-Type`
//! is whatever the remote chose to say; the first bytes of the body are what
//! the stored object actually is. Pass the first chunk (16+ bytes recognise
//! everything here; 64 helps Matroska and ISO-BMFF compatible brands).

/// Formats recognised by a fixed prefix alone, checked before the ISO-BMFF `ftyp` box at
/// offset 4 (so a file that starts with one of these is that format, whatever follows).
const LEADING: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\0", "image/tiff"),
    (b"MM\0*", "image/tiff"),
    (b"\xff\x0a", "image/jxl"),
    (b"\0\0\0\x0cJXL \r\n\x87\n", "image/jxl"),
];

/// Fixed prefixes checked after `ftyp` and EBML (the order the checks have always had).
const TRAILING: &[(&[u8], &str)] = &[
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"MThd", "audio/midi"),
    (b"ID3", "audio/mpeg"),
    (b"ADIF", "audio/aac"),
    (b"%PDF-", "application/pdf"),
];

fn prefixed(b: &[u8], table: &[(&[u8], &'static str)]) -> Option<&'static str> {
    table.iter().find(|(magic, _)| b.starts_with(magic)).map(|(_, t)| *t)
}

/// Media type for well-known formats, from the start of a file. `None` when
/// nothing matches (callers fall back to the declared type or
/// `application/octet-stream`).
pub fn sniff_content_type(b: &[u8]) -> Option<&'static str> {
    if let Some(t) = prefixed(b, LEADING) {
        return Some(t);
    }
    if b.starts_with(b"RIFF") {
        return sniff_riff(b);
    }
    if let Some(t) = sniff_bitmap_or_icon(b) {
        return Some(t);
    }
    if at(b, 4, b"ftyp") {
        return sniff_ftyp(b);
    }
    if b.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        return Some(sniff_ebml(b));
    }
    if let Some(t) = prefixed(b, TRAILING) {
        return Some(t);
    }
    if b.starts_with(b"FORM") && (at(b, 8, b"AIFF") || at(b, 8, b"AIFC")) {
        return Some("audio/aiff");
    }
    sniff_audio_frame(b)
}

/// `magic` at `offset` of `b`.
fn at(b: &[u8], offset: usize, magic: &[u8]) -> bool {
    b.get(offset..offset + magic.len()) == Some(magic)
}

/// RIFF containers: the form type at offset 8 says which.
fn sniff_riff(b: &[u8]) -> Option<&'static str> {
    [(b"WEBP", "image/webp"), (b"WAVE", "audio/wav"), (b"AVI ", "video/x-msvideo")]
        .into_iter()
        .find(|(form, _)| at(b, 8, *form))
        .map(|(_, t)| t)
}

/// EBML: the DocType element says webm or matroska.
fn sniff_ebml(b: &[u8]) -> &'static str {
    let head = &b[..b.len().min(64)];
    if head.windows(4).any(|w| w == b"webm") {
        "video/webm"
    } else {
        "video/x-matroska"
    }
}

/// BMP and ICO, whose short magic needs a structural check too.
fn sniff_bitmap_or_icon(b: &[u8]) -> Option<&'static str> {
    // "BM" alone is too weak: also require the zero reserved fields of the
    // BITMAPFILEHEADER.
    if b.starts_with(b"BM") && at(b, 6, &[0, 0, 0, 0]) {
        return Some("image/bmp");
    }
    // ICONDIR: reserved 0, type 1 (icon), at least one image.
    if b.starts_with(&[0, 0, 1, 0]) && b.len() >= 6 && (b[4] != 0 || b[5] != 0) {
        return Some("image/x-icon");
    }
    None
}

/// Raw AAC (ADTS) and MPEG audio frames, recognised by their sync bits.
fn sniff_audio_frame(b: &[u8]) -> Option<&'static str> {
    let [0xff, b1, b2, ..] = *b else { return None };
    // ADTS (AAC): 12-bit sync, layer bits 00.
    if b1 & 0xf6 == 0xf0 {
        return Some("audio/aac");
    }
    // MPEG audio frame: 11-bit sync, valid version, layer and bitrate.
    let version = (b1 >> 3) & 0b11;
    let layer = (b1 >> 1) & 0b11;
    let bitrate = b2 >> 4;
    (b1 & 0xe0 == 0xe0 && version != 0b01 && layer != 0 && bitrate != 0xf).then_some("audio/mpeg")
}

/// ISO base media file format: the major brand (and for the generic image
/// brands, the compatible brands) picks the type.
fn sniff_ftyp(b: &[u8]) -> Option<&'static str> {
    let major = b.get(8..12)?;
    let by_brand = |brand: &[u8]| -> Option<&'static str> {
        Some(match brand {
            b"avif" | b"avis" => "image/avif",
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" => "image/heic",
            b"M4A " | b"M4B " => "audio/mp4",
            b"qt  " => "video/quicktime",
            b"3gp4" | b"3gp5" | b"3gp6" | b"3gp7" | b"3ge6" | b"3ge7" | b"3gg6" => "video/3gpp",
            b"3g2a" | b"3g2b" | b"3g2c" => "video/3gpp2",
            b"isom" | b"iso2" | b"iso3" | b"iso4" | b"iso5" | b"iso6" | b"mp41" | b"mp42" | b"avc1"
            | b"dash" | b"M4V " | b"M4VH" | b"M4VP" | b"MSNV" | b"NDAS" | b"f4v " => "video/mp4",
            _ => return None,
        })
    };
    if major == b"mif1" || major == b"msf1" {
        // Generic HEIF brand: the compatible brands say AVIF or HEIC.
        let box_len = b.get(0..4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize);
        let end = box_len.min(b.len());
        let compatible = b.get(16..end).unwrap_or(&[]);
        for brand in compatible.chunks_exact(4) {
            if let Some(t @ ("image/avif" | "image/heic")) = by_brand(brand) {
                return Some(t);
            }
        }
        return Some("image/heif");
    }
    by_brand(major)
}

#[cfg(test)]
mod tests {
    use super::sniff_content_type as sniff;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let len = 16 + 4 * compatible.len();
        let mut v = (len as u32).to_be_bytes().to_vec();
        v.extend_from_slice(b"ftyp");
        v.extend_from_slice(major);
        v.extend_from_slice(&[0, 0, 0, 0]);
        for c in compatible {
            v.extend_from_slice(*c);
        }
        v
    }

    #[test]
    fn images() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a\x01\0"), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0"), Some("image/bmp"));
        assert_eq!(sniff(b"BMP is a word"), None);
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some("image/tiff"));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some("image/tiff"));
        assert_eq!(sniff(&[0, 0, 1, 0, 1, 0, 16, 16]), Some("image/x-icon"));
        assert_eq!(sniff(&[0, 0, 1, 0, 0, 0]), None);
        assert_eq!(sniff(&ftyp(b"avif", &[b"mif1"])), Some("image/avif"));
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1"])), Some("image/heic"));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"mif1", b"avif"])), Some("image/avif"));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"heic"])), Some("image/heic"));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"miaf"])), Some("image/heif"));
    }

    #[test]
    fn video() {
        assert_eq!(sniff(&ftyp(b"isom", &[b"mp41"])), Some("video/mp4"));
        assert_eq!(sniff(&ftyp(b"qt  ", &[])), Some("video/quicktime"));
        assert_eq!(sniff(&ftyp(b"3gp5", &[])), Some("video/3gpp"));
        assert_eq!(sniff(&ftyp(b"zzzz", &[])), None);
        let webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm";
        assert_eq!(sniff(webm), Some("video/webm"));
        let mkv = b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska";
        assert_eq!(sniff(mkv), Some("video/x-matroska"));
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI LIST"), Some("video/x-msvideo"));
    }

    #[test]
    fn audio() {
        assert_eq!(sniff(b"ID3\x04\0\0\0\0\0\0"), Some("audio/mpeg"));
        // MPEG-1 Layer III, 128 kbit/s.
        assert_eq!(sniff(&[0xff, 0xfb, 0x90, 0x64]), Some("audio/mpeg"));
        // Bad bitrate index 1111 is not a frame.
        assert_eq!(sniff(&[0xff, 0xfb, 0xf0, 0x64]), None);
        // ADTS AAC.
        assert_eq!(sniff(&[0xff, 0xf1, 0x50, 0x80]), Some("audio/aac"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), Some("audio/wav"));
        assert_eq!(sniff(b"OggS\0\x02"), Some("audio/ogg"));
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Some("audio/flac"));
        assert_eq!(sniff(&ftyp(b"M4A ", &[b"isom"])), Some("audio/mp4"));
        assert_eq!(sniff(b"FORM\0\0\0\0AIFF"), Some("audio/aiff"));
    }

    #[test]
    fn unknown_and_short() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\x89PN"), None);
        assert_eq!(sniff(b"<html>"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0XXXX"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftyp"), None);
        assert_eq!(sniff(b"%PDF-1.7"), Some("application/pdf"));
    }

    #[test]
    fn earlier_signatures_win_over_a_later_ftyp() {
        // The checks keep their old order where a file could match two of them: an icon
        // directory or a JPEG whose bytes 4..8 read "ftyp" stays what it starts as, while
        // "ftyp" is still checked before the Ogg and ID3 prefixes.
        assert_eq!(sniff(b"\0\0\x01\0ftypzzzz"), Some("image/x-icon"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0ftypisom"), Some("image/jpeg"));
        assert_eq!(sniff(b"OggSftypisom"), Some("video/mp4"));
        assert_eq!(sniff(b"ID3\x04ftypisom"), Some("video/mp4"));
    }
}
