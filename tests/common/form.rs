//! multipart/form-data bodies built by hand, so tests control every byte (fields, order,
//! the file part) as a browser's FormData would send them.

pub const BOUNDARY: &str = "----presign-gateway-test-boundary-7MA4YWxkTrZu0gW";

/// The body of a form with `fields` in order, then the `file` part.
pub fn form_body(fields: &[(String, String)], file_name: &str, file_type: &str, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.len() + 4096);
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {file_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub fn form_content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// POST a form; returns (status, headers, body text).
pub async fn post_form(
    url: &str,
    fields: &[(String, String)],
    file: &[u8],
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = super::client()
        .post(url)
        .header("content-type", form_content_type())
        .body(form_body(fields, "upload.bin", "application/octet-stream", file))
        .send()
        .await
        .expect("POST form");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap_or_default())
}

/// The `fields` object of a Companion `/s3/params` answer, in its order.
pub fn fields_of(params: &serde_json::Value) -> Vec<(String, String)> {
    params["fields"]
        .as_object()
        .expect("fields")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string field").to_owned()))
        .collect()
}

/// The three PUT dialects' mint requests for an `n`-byte PNG: (mint path, body, pointer to
/// the upload URL, pointer to the key) in each page's own field names.
pub fn put_dialect_mints(n: usize) -> [(&'static str, serde_json::Value, &'static str, &'static str); 3] {
    use serde_json::json;
    [
        (
            "/api/v1/files/upload-url",
            json!({"filename":"a.png","content_type":"image/png","file_size":n}),
            "/data/upload_url",
            "/data/key",
        ),
        (
            "/api/upload/presign",
            json!({"file_name":"a.png","content_type":"image/png"}),
            "/data/upload_url",
            "/data/object_key",
        ),
        (
            "/v1/upload/s3",
            json!({"filename":"a.png","contentType":"image/png","size":n}),
            "/uploadUrl",
            "/fileKey",
        ),
    ]
}
