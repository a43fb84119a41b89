//! `presign-gateway sign` on URLs that carry a query (UploadPart's `uploadId` and
//! `partNumber`) against boto3's own presigned `upload_part` URL: byte for byte equal.
//!
//! Needs python3 with boto3 (CI installs it); without it this test fails, never skips.

mod common;

use std::process::Command;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn boto3_upload_part(endpoint: &str, key: &str, upload_id: &str, part: u32, time: &str) -> String {
    let part = part.to_string();
    common::boto3::boto3_reference(
        &["upload_part", endpoint, "media", key, upload_id, &part, "900", time],
        AKID,
        SECRET,
    )
}

fn sign(url: &str, time: &str) -> String {
    let out = Command::new(common::bin())
        .args(["sign", "--method", "PUT", "--expires", "900", "--time", time, url])
        .env("AWS_ACCESS_KEY_ID", AKID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("run presign-gateway sign");
    assert!(out.status.success(), "sign {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8").trim().to_owned()
}

#[test]
fn upload_part_urls_equal_boto3_byte_for_byte() {
    let cases = [
        ("uploads/user/12/uppy/abc/x1-cat.png", "2~f3eWcVb1Xk7zQ", 1, "20261201T100000Z"),
        ("a b/c~d+e.png", "up~id+1/=", 10_000, "20280229T235959Z"),
        ("ключ/файл.mp4", "VXBsb2FkSWQ.-_", 42, "20261231T000001Z"),
    ];
    for (key, upload_id, part, time) in cases {
        let expected = boto3_upload_part("http://127.0.0.1:9000", key, upload_id, part, time);
        // The URL to sign, its query in boto3's order (uploadId, then partNumber).
        let (base, _) = expected.split_once("&X-Amz-").expect("boto3 URL has auth params");
        let ours = sign(base, time);
        assert_eq!(ours, expected, "key {key:?}, upload id {upload_id:?}");
    }
}

#[test]
fn signed_urls_and_fragments_are_refused() {
    for (url, why) in [
        ("http://127.0.0.1:9000/media/a?X-Amz-Date=1", "already carries"),
        ("http://127.0.0.1:9000/media/a#frag", "fragment"),
    ] {
        let out = Command::new(common::bin())
            .args(["sign", url])
            .env("AWS_ACCESS_KEY_ID", AKID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .output()
            .expect("run sign");
        assert_eq!(out.status.code(), Some(2), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{url}: {err}");
    }
}
