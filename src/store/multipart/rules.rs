//! The rules of a multipart upload, the same for every backend: checked here against the
//! parts a store reports, so the local store and an S3 bucket refuse alike (and a bucket
//! that is lax about a rule, as s3s-fs is about the 5 MiB minimum, still gets it enforced).

use super::{MultipartError, PartInfo};

/// The smallest part but the last (S3's 5 MiB).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest part (S3's 5 GiB).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Part numbers are 1..=10000.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// Whether `n` is a part number S3 accepts.
pub fn part_number_ok(n: u32) -> bool {
    (1..=MAX_PART_NUMBER).contains(&n)
}

/// What can be refused from the client's list alone, before asking the store: no parts,
/// a part number out of range, numbers not strictly ascending.
pub fn check_request(parts: &[(u32, String)]) -> Result<(), MultipartError> {
    if parts.is_empty() {
        return Err(MultipartError::MalformedXml("no Part elements".into()));
    }
    if parts.len() > MAX_PART_NUMBER as usize {
        return Err(MultipartError::MalformedXml("more than 10000 parts".into()));
    }
    if !parts.iter().all(|(n, _)| part_number_ok(*n)) {
        return Err(MultipartError::InvalidPartNumber);
    }
    if !parts.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(MultipartError::InvalidPartOrder);
    }
    Ok(())
}

/// The stored parts the client's list names, checked: each exists with that ETag (quotes
/// optional), every one but the last is at least [`MIN_PART_SIZE`], and together they are
/// at most `max_size` bytes. `stored` is by ascending part number; `parts` passed
/// [`check_request`]. Returns the selected parts and their total size.
///
/// A stored part with an empty ETag is one whose store did not report it (s3s-fs's
/// ListParts does not); its ETag is then the bucket's to check when it completes.
pub fn select_parts<'a>(
    parts: &[(u32, String)],
    stored: &'a [PartInfo],
    max_size: u64,
) -> Result<(Vec<&'a PartInfo>, u64), MultipartError> {
    let mut selected = Vec::with_capacity(parts.len());
    for (n, etag) in parts {
        let found = stored
            .binary_search_by_key(n, |p| p.part_number)
            .ok()
            .and_then(|i| stored.get(i))
            .ok_or_else(|| MultipartError::InvalidPart(format!("part {n} was not uploaded")))?;
        if !found.etag.is_empty() && !same_etag(&found.etag, etag) {
            return Err(MultipartError::InvalidPart(format!("part {n}: ETag {etag} does not match")));
        }
        selected.push(found);
    }
    if let Some((_, but_last)) = selected.split_last() {
        if but_last.iter().any(|p| p.size < MIN_PART_SIZE) {
            return Err(MultipartError::EntityTooSmall);
        }
    }
    let total = selected.iter().try_fold(0u64, |sum, p| sum.checked_add(p.size));
    match total {
        Some(total) if total <= max_size => Ok((selected, total)),
        _ => Err(MultipartError::EntityTooLarge),
    }
}

/// ETags compared without their quotes (clients send both forms); hex in either case.
pub fn same_etag(a: &str, b: &str) -> bool {
    unquote(a).eq_ignore_ascii_case(unquote(b))
}

/// The ETag without surrounding double quotes, if it has them.
pub fn unquote(etag: &str) -> &str {
    let t = etag.trim();
    t.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(t)
}

/// The ETag in S3's quoted form.
pub fn quoted(etag: &str) -> String {
    format!("\"{}\"", unquote(etag))
}

/// S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then `-<count>`.
/// `None` when a part's ETag is not a hex MD5 (then the parts were not ours to assemble).
pub fn multipart_etag(parts: &[&PartInfo]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for p in parts {
        let mut bin = [0u8; 16];
        hex::decode_to_slice(unquote(&p.etag), &mut bin).ok()?;
        h.update(bin);
    }
    Some(format!("\"{}-{}\"", hex::encode(h.finalize()), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: u32, size: u64) -> PartInfo {
        PartInfo { part_number: n, etag: format!("\"{:032x}\"", n), size }
    }

    fn ask(list: &[(u32, &str)]) -> Vec<(u32, String)> {
        list.iter().map(|(n, e)| (*n, e.to_string())).collect()
    }

    #[test]
    fn request_checks() {
        assert!(matches!(check_request(&[]), Err(MultipartError::MalformedXml(_))));
        assert!(matches!(check_request(&ask(&[(0, "x")])), Err(MultipartError::InvalidPartNumber)));
        assert!(matches!(check_request(&ask(&[(10_001, "x")])), Err(MultipartError::InvalidPartNumber)));
        assert!(matches!(check_request(&ask(&[(2, "x"), (1, "y")])), Err(MultipartError::InvalidPartOrder)));
        assert!(matches!(check_request(&ask(&[(1, "x"), (1, "x")])), Err(MultipartError::InvalidPartOrder)));
        assert!(check_request(&ask(&[(1, "x"), (3, "y"), (10_000, "z")])).is_ok());
    }

    #[test]
    fn selection_checks_etags_sizes_and_total() {
        let stored = [part(1, MIN_PART_SIZE), part(2, 10), part(3, 1)];
        let e1 = format!("{:032x}", 1);
        let e2 = format!("\"{:032x}\"", 2);
        let (sel, total) = select_parts(&ask(&[(1, &e1), (2, &e2)]), &stored, u64::MAX).unwrap();
        assert_eq!((sel.len(), total), (2, MIN_PART_SIZE + 10));
        let r = select_parts(&ask(&[(1, &e1), (4, "x")]), &stored, u64::MAX);
        assert!(matches!(r, Err(MultipartError::InvalidPart(_))), "{r:?}");
        let r = select_parts(&ask(&[(1, &e2)]), &stored, u64::MAX);
        assert!(matches!(r, Err(MultipartError::InvalidPart(_))), "{r:?}");
        let r = select_parts(&ask(&[(2, &e2), (3, &format!("{:032x}", 3))]), &stored, u64::MAX);
        assert!(matches!(r, Err(MultipartError::EntityTooSmall)), "{r:?}");
        let r = select_parts(&ask(&[(1, &e1), (2, &e2)]), &stored, MIN_PART_SIZE + 9);
        assert!(matches!(r, Err(MultipartError::EntityTooLarge)), "{r:?}");
    }

    #[test]
    fn multipart_etag_is_s3s_rule() {
        use md5::{Digest, Md5};
        let a: [u8; 16] = Md5::digest(b"hello ").into();
        let b: [u8; 16] = Md5::digest(b"world").into();
        let parts = [
            PartInfo { part_number: 1, etag: quoted(&hex::encode(a)), size: 6 },
            PartInfo { part_number: 2, etag: quoted(&hex::encode(b)), size: 5 },
        ];
        let mut cat = a.to_vec();
        cat.extend_from_slice(&b);
        let want = format!("\"{}-2\"", hex::encode(Md5::digest(&cat)));
        assert_eq!(multipart_etag(&parts.iter().collect::<Vec<_>>()), Some(want));
        assert_eq!(quoted("\"x\""), "\"x\"");
        assert_eq!(quoted("x"), "\"x\"");
    }
}
