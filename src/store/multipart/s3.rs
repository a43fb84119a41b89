//! Multipart uploads in an S3 bucket, through the bucket's own API: header-signed requests
//! from the gateway for create, list, complete and abort; the parts themselves go from the
//! client straight to the bucket with presigned URLs.

use http::Method;
use sha2::{Digest, Sha256};

use super::rules::{quoted, select_parts, MAX_PART_NUMBER};
use super::xml::{complete_body, elements, first_text, root_name};
use super::{MultipartError, PartInfo};
use crate::sigv4::HeaderSignRequest;
use crate::store::{ObjectMeta, S3Store, StoreError, StoredObject};

/// The largest answer read from the bucket: a ListParts page of 1000 parts is ~200 KB.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// What the bucket answered.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

/// Send one header-signed request for `key` with `query` (decoded pairs) and `body`.
async fn call(
    s3: &S3Store,
    method: Method,
    key: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Answer, MultipartError> {
    let path = s3.object_path(key);
    let sha = hex::encode(Sha256::digest(&body));
    let signed = s3.signer.sign_headers(
        &HeaderSignRequest {
            method: method.as_str(),
            host: s3.host(),
            path: &path,
            query,
            headers,
            payload_sha256_hex: &sha,
        },
        crate::clock::now(),
    );
    let mut url = format!("{}://{}", s3.scheme(), s3.host());
    crate::sigv4::encode_path(&mut url, path.as_bytes());
    for (i, (name, value)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        crate::sigv4::write_query_pair(&mut url, name.as_bytes(), value.as_bytes());
    }
    let mut req = s3.client().request(method.clone(), url).header("host", s3.host()).body(body);
    for (name, value) in headers.iter().copied() {
        req = req.header(name, value);
    }
    for (name, value) in signed {
        req = req.header(name, value);
    }
    let unreachable = |e: reqwest::Error| {
        MultipartError::Store(StoreError::Unreachable(format!("{method} {key} (multipart): {e}")))
    };
    let mut resp = req.send().await.map_err(unreachable)?;
    let status = resp.status().as_u16();
    let headers = std::mem::take(resp.headers_mut());
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(refused(status, "answer larger than 4 MiB"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() })
}

fn refused(status: u16, body: &str) -> MultipartError {
    MultipartError::Store(StoreError::Refused { status, body: body.chars().take(300).collect() })
}

/// The body of a successful answer, or the refusal it carries. S3 may answer a complete
/// with 200 and an `<Error>` document (the failure came after it started answering), so an
/// `Error` root is a refusal whatever the status.
fn success(answer: Answer) -> Result<Answer, MultipartError> {
    let is_error = root_name(&answer.body) == Some("Error");
    if (200..300).contains(&answer.status) && !is_error {
        return Ok(answer);
    }
    let code = first_text(&answer.body, "Code").unwrap_or_default();
    let message = first_text(&answer.body, "Message").unwrap_or_default();
    Err(match code.as_str() {
        "NoSuchUpload" => MultipartError::NoSuchUpload,
        "InvalidPart" => MultipartError::InvalidPart(message),
        "InvalidPartOrder" => MultipartError::InvalidPartOrder,
        "EntityTooSmall" => MultipartError::EntityTooSmall,
        "EntityTooLarge" => MultipartError::EntityTooLarge,
        "MalformedXML" => MultipartError::MalformedXml(message),
        _ => refused(answer.status, &answer.body),
    })
}

/// A required element of a successful answer.
fn required(answer: &Answer, name: &str) -> Result<String, MultipartError> {
    first_text(&answer.body, name)
        .ok_or_else(|| refused(answer.status, &format!("no {name} in: {}", answer.body)))
}

/// CreateMultipartUpload: `POST /key?uploads`.
pub async fn create(s3: &S3Store, key: &str, content_type: &str) -> Result<String, MultipartError> {
    let answer =
        call(s3, Method::POST, key, &[("uploads", "")], &[("content-type", content_type)], Vec::new())
            .await?;
    let answer = success(answer)?;
    let id = required(&answer, "UploadId")?;
    if id.is_empty() {
        return Err(refused(answer.status, "empty UploadId"));
    }
    Ok(id)
}

/// ListParts: `GET /key?uploadId=`, every page.
pub async fn list_parts(s3: &S3Store, key: &str, upload_id: &str) -> Result<Vec<PartInfo>, MultipartError> {
    let mut parts: Vec<PartInfo> = Vec::new();
    let mut marker = String::new();
    loop {
        let mut query = vec![("uploadId", upload_id)];
        if !marker.is_empty() {
            query.push(("part-number-marker", marker.as_str()));
        }
        let answer = success(call(s3, Method::GET, key, &query, &[], Vec::new()).await?)?;
        for part in elements(&answer.body, "Part") {
            parts.push(parse_part(part).ok_or_else(|| refused(answer.status, part))?);
        }
        if first_text(&answer.body, "IsTruncated").as_deref() != Some("true") {
            break;
        }
        let next = required(&answer, "NextPartNumberMarker")?;
        // Each page must move forward, or a confused store would keep us here forever.
        let advanced = next.parse::<u32>().ok().filter(|n| *n > marker.parse::<u32>().unwrap_or(0));
        if advanced.is_none() || parts.len() > MAX_PART_NUMBER as usize {
            return Err(refused(answer.status, "ListParts pages do not advance"));
        }
        marker = next;
    }
    parts.sort_by_key(|p| p.part_number);
    parts.dedup_by_key(|p| p.part_number);
    Ok(parts)
}

fn parse_part(xml: &str) -> Option<PartInfo> {
    Some(PartInfo {
        part_number: first_text(xml, "PartNumber")?.trim().parse().ok()?,
        // Optional: see PartInfo::etag.
        etag: first_text(xml, "ETag").map(|e| quoted(&e)).unwrap_or_default(),
        size: first_text(xml, "Size")?.trim().parse().ok()?,
    })
}

/// CompleteMultipartUpload: the parts are checked against ListParts first (the rules, and
/// the size cap the bucket does not know), then `POST /key?uploadId=`.
pub async fn complete(
    s3: &S3Store,
    key: &str,
    upload_id: &str,
    parts: &[(u32, String)],
    max_size: u64,
) -> Result<ObjectMeta, MultipartError> {
    let stored = list_parts(s3, key, upload_id).await?;
    let size = match select_parts(parts, &stored, max_size) {
        Ok((_, size)) => size,
        Err(MultipartError::EntityTooLarge) => {
            // Final: the bucket must not keep the parts of an upload that can never finish.
            if let Err(e) = abort(s3, key, upload_id).await {
                log::warn!("multipart {upload_id}: abort after EntityTooLarge failed: {e}");
            }
            return Err(MultipartError::EntityTooLarge);
        }
        Err(e) => return Err(e),
    };
    // The client's ETags (quoted): where the store listed its own they matched, and where
    // it did not, the store checks them against its parts.
    let etags: Vec<String> = parts.iter().map(|(_, e)| quoted(e)).collect();
    let body = complete_body(parts.iter().zip(&etags).map(|((n, _), e)| (*n, e.as_str())));
    let query = [("uploadId", upload_id)];
    let headers = [("content-type", "application/xml")];
    let answer = success(call(s3, Method::POST, key, &query, &headers, body.into_bytes()).await?)?;
    let etag = quoted(&required(&answer, "ETag")?);
    Ok(ObjectMeta { content_type: content_type(s3, key).await, size, etag })
}

/// The stored object's content type (set at create; the complete answer does not say it).
/// The object exists already, so a failed HEAD does not fail the complete.
async fn content_type(s3: &S3Store, key: &str) -> String {
    let fallback = "application/octet-stream".to_string();
    match head(s3, key).await {
        Ok(Some(o)) => o.meta.content_type,
        Ok(None) => {
            log::warn!("HEAD {key} after complete: no such object");
            fallback
        }
        Err(e) => {
            log::warn!("HEAD {key} after complete: {e}");
            fallback
        }
    }
}

/// HeadObject, asking for the stored checksum too: `None` when there is no such object.
pub async fn head(s3: &S3Store, key: &str) -> Result<Option<StoredObject>, StoreError> {
    let answer = call(s3, Method::HEAD, key, &[], &[("x-amz-checksum-mode", "ENABLED")], Vec::new())
        .await
        .map_err(|e| match e {
            MultipartError::Store(e) => e,
            other => StoreError::Unreachable(other.to_string()),
        })?;
    if answer.status == 404 {
        return Ok(None);
    }
    if !(200..300).contains(&answer.status) {
        return Err(StoreError::Refused { status: answer.status, body: format!("HEAD {key}") });
    }
    let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let size = header("content-length").and_then(|v| v.trim().parse().ok()).ok_or_else(|| {
        StoreError::Refused { status: answer.status, body: format!("HEAD {key}: no Content-Length") }
    })?;
    Ok(Some(StoredObject {
        meta: ObjectMeta {
            content_type: header("content-type").unwrap_or_else(|| "application/octet-stream".into()),
            size,
            etag: header("etag").map(|e| quoted(&e)).unwrap_or_default(),
        },
        checksum_sha256: header("x-amz-checksum-sha256"),
    }))
}

/// AbortMultipartUpload: `DELETE /key?uploadId=`.
pub async fn abort(s3: &S3Store, key: &str, upload_id: &str) -> Result<(), MultipartError> {
    success(call(s3, Method::DELETE, key, &[("uploadId", upload_id)], &[], Vec::new()).await?).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, headers: http::HeaderMap::new(), body: body.to_string() }
    }

    #[test]
    fn error_documents_are_refusals_even_with_200() {
        let err = |code: &str| {
            format!("<?xml version=\"1.0\"?>\n<Error><Code>{code}</Code><Message>m</Message></Error>")
        };
        assert!(
            matches!(success(answer(200, &err("InvalidPart"))), Err(MultipartError::InvalidPart(m)) if m == "m")
        );
        assert!(matches!(success(answer(404, &err("NoSuchUpload"))), Err(MultipartError::NoSuchUpload)));
        assert!(matches!(
            success(answer(400, &err("InvalidPartOrder"))),
            Err(MultipartError::InvalidPartOrder)
        ));
        assert!(matches!(success(answer(400, &err("EntityTooSmall"))), Err(MultipartError::EntityTooSmall)));
        assert!(matches!(
            success(answer(403, &err("AccessDenied"))),
            Err(MultipartError::Store(StoreError::Refused { status: 403, .. }))
        ));
        assert!(matches!(success(answer(503, "")), Err(MultipartError::Store(_))));
        assert!(success(answer(200, "<CompleteMultipartUploadResult/>")).is_ok());
    }

    /// AWS's ListParts lists ETags, and a mismatch is refused before any complete is sent.
    #[test]
    fn listed_etags_are_checked() {
        let page = "<ListPartsResult><IsTruncated>false</IsTruncated>\
            <Part><PartNumber>1</PartNumber><ETag>&quot;7ac66c0f148de9519b8bd264312c4d64&quot;</ETag>\
            <Size>5</Size></Part></ListPartsResult>";
        let stored: Vec<PartInfo> = elements(page, "Part").filter_map(parse_part).collect();
        assert_eq!(
            stored,
            vec![PartInfo { part_number: 1, etag: "\"7ac66c0f148de9519b8bd264312c4d64\"".into(), size: 5 }]
        );
        let wrong = [(1, "00000000000000000000000000000000".to_string())];
        assert!(matches!(select_parts(&wrong, &stored, u64::MAX), Err(MultipartError::InvalidPart(_))));
        let right = [(1, "7ac66c0f148de9519b8bd264312c4d64".to_string())];
        assert!(select_parts(&right, &stored, u64::MAX).is_ok());
        // Without ETags (s3s-fs), the check is the bucket's.
        let bare: Vec<PartInfo> = elements("<Part><PartNumber>1</PartNumber><Size>5</Size></Part>", "Part")
            .filter_map(parse_part)
            .collect();
        assert_eq!(bare[0].etag, "");
        assert!(select_parts(&wrong, &bare, u64::MAX).is_ok());
    }
}
