//! The Companion multipart routes end to end, as Uppy drives them, on both stores: create,
//! sign parts (one and a batch), PUT the parts straight to the store, list, complete, read
//! back; and every refusal S3 defines, with nothing stored. boto3's own presigned UploadPart
//! URL is accepted by the local store.

mod common;

use common::*;
use md5::{Digest, Md5};
use serde_json::{json, Value};

const SECRET: &str = "companion-multipart-test-secret-0123456";
const MIB: usize = 1024 * 1024;

fn local_gateway() -> Gateway {
    Gateway::start(GatewayOpts {
        env: vec![("PRESIGN_GATEWAY_SECRET".into(), SECRET.into())],
        ..Default::default()
    })
}

fn s3_gateway(s3: &S3sFs) -> Gateway {
    let mut env = s3.env();
    env.push(("PRESIGN_GATEWAY_SECRET".into(), SECRET.into()));
    Gateway::start(GatewayOpts { storage_yaml: Some(s3.storage_yaml()), env, ..Default::default() })
}

async fn endpoint(gw: &Gateway, body: Value) -> String {
    let (status, v) =
        post_json(&gw.url("/v1/upload-sessions"), Some("Bearer demo-key"), &body.to_string()).await;
    assert_eq!(status, 201, "{v}");
    v["companion_endpoint"].as_str().unwrap().to_owned()
}

async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client().request(method, url);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One multipart upload through the Companion routes.
struct Upload {
    ep: String,
    key: String,
    id: String,
}

impl Upload {
    async fn create(ep: &str, filename: &str, content_type: &str) -> Upload {
        let (status, v) = call(
            reqwest::Method::POST,
            &format!("{ep}/s3/multipart"),
            Some(json!({"filename": filename, "type": content_type, "metadata": {"name": filename}})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert!(v["bucket"].is_string(), "{v}");
        Upload {
            ep: ep.to_owned(),
            key: v["key"].as_str().unwrap().to_owned(),
            id: v["uploadId"].as_str().unwrap().to_owned(),
        }
    }

    fn route(&self, rest: &str) -> String {
        format!(
            "{}/s3/multipart/{}{rest}",
            self.ep,
            url::form_urlencoded::byte_serialize(self.id.as_bytes()).collect::<String>()
        )
    }

    fn with_key(&self, rest: &str) -> String {
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!("{}{sep}key={}", self.route(rest), enc(&self.key))
    }

    async fn sign(&self, part: u32) -> (u16, Value) {
        call(reqwest::Method::GET, &self.with_key(&format!("/{part}")), None).await
    }

    /// PUT a part to its signed URL; its ETag.
    async fn put(&self, part: u32, bytes: &[u8]) -> String {
        let (status, v) = self.sign(part).await;
        assert_eq!(status, 200, "{v}");
        assert!(v["expires"].as_u64().is_some_and(|e| e > 0), "{v}");
        let r = client().put(v["url"].as_str().unwrap()).body(bytes.to_vec()).send().await.unwrap();
        assert_eq!(r.status(), 200, "part {part}: {}", r.text().await.unwrap());
        r.headers()["etag"].to_str().unwrap().to_owned()
    }

    async fn complete(&self, parts: &[(u32, &str)]) -> (u16, Value) {
        let parts: Vec<Value> = parts.iter().map(|(n, e)| json!({"PartNumber": n, "ETag": e})).collect();
        call(reqwest::Method::POST, &self.with_key("/complete"), Some(json!({ "parts": parts }))).await
    }

    async fn list(&self) -> (u16, Value) {
        call(reqwest::Method::GET, &self.with_key(""), None).await
    }

    async fn abort(&self) -> (u16, Value) {
        call(reqwest::Method::DELETE, &self.with_key(""), None).await
    }
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(u32::from(seed)) as u8).collect()
}

/// S3's multipart ETag: the MD5 of the parts' binary MD5s, then `-N`.
fn s3_etag(parts: &[&[u8]]) -> String {
    let mut all = Md5::new();
    for p in parts {
        all.update(Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(all.finalize()), parts.len())
}

/// Create, sign (one by one and in a batch), PUT three parts, list, complete; returns the
/// upload, its location and the bytes.
async fn three_parts(ep: &str) -> (Upload, String, Vec<u8>) {
    let up = Upload::create(ep, "holiday video.mp4", "video/mp4").await;
    assert!(
        up.key.starts_with("uploads/user/12/uppy/") && up.key.ends_with("-holiday-video.mp4"),
        "{}",
        up.key
    );
    let p1 = bytes(5 * MIB, 1);
    let p2 = bytes(5 * MIB, 2);
    let p3 = bytes(2 * MIB, 3);
    let e1 = up.put(1, &p1).await;
    let (status, v) = call(reqwest::Method::GET, &up.with_key("/batch?partNumbers=2,3"), None).await;
    assert_eq!(status, 200, "{v}");
    let mut etags = vec![e1.clone()];
    for (n, part) in [(2, &p2), (3, &p3)] {
        let url = v["presignedUrls"][n.to_string()].as_str().unwrap_or_else(|| panic!("{v}"));
        let r = client().put(url).body(part.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        etags.push(r.headers()["etag"].to_str().unwrap().to_owned());
    }
    for (etag, part) in etags.iter().zip([&p1, &p2, &p3]) {
        assert_eq!(etag.trim_matches('"'), hex::encode(Md5::digest(part)), "a part's ETag is its MD5");
    }
    let (status, listed) = up.list().await;
    assert_eq!(status, 200, "{listed}");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (i, p) in listed.iter().enumerate() {
        assert_eq!(p["PartNumber"], i + 1);
        // s3s-fs 0.14 lists parts without their ETags; real S3 and the local store list them.
        let listed_etag = p["ETag"].as_str().unwrap_or("").trim_matches('"');
        assert!(listed_etag.is_empty() || listed_etag == etags[i].trim_matches('"'), "{p}");
    }
    assert_eq!(listed[2]["Size"], 2 * MIB);
    // Uppy strips the quotes before complete; S3 accepts either.
    let unquoted: Vec<&str> = etags.iter().map(|e| e.trim_matches('"')).collect();
    let (status, done) = up.complete(&[(1, &etags[0]), (2, unquoted[1]), (3, unquoted[2])]).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["key"], up.key.as_str());
    let location = done["location"].as_str().unwrap().to_owned();
    assert!(location.ends_with(&up.key), "{location}");
    let all = [p1, p2, p3].concat();
    (up, location, all)
}

#[tokio::test]
async fn a_three_part_upload_lands_whole_on_the_local_store() {
    let gw = local_gateway();
    let ep = endpoint(&gw, json!({})).await;
    let (up, location, all) = three_parts(&ep).await;
    assert_eq!(location, format!("http://{}/files/{}", gw.addr, up.key));
    let r = client().get(&location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let chunks: Vec<&[u8]> = all.chunks(5 * MIB).collect();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), s3_etag(&chunks));
    assert_eq!(r.bytes().await.unwrap().as_ref(), &all[..]);
    // Done: the upload is gone, so complete again or list is NoSuchUpload.
    let (status, v) = up.complete(&[(1, "x")]).await;
    assert_eq!(status, 404, "complete twice: {v}");
    assert_eq!(up.list().await.0, 404);
    assert!(!gw.data_dir().join("multipart").join(&up.id).exists());
}

#[tokio::test]
async fn a_three_part_upload_lands_whole_on_s3s_fs() {
    let s3 = S3sFs::start();
    let gw = s3_gateway(&s3);
    let ep = endpoint(&gw, json!({})).await;
    let (up, location, all) = three_parts(&ep).await;
    assert_eq!(location, format!("{}/media/{}", s3.endpoint(), up.key));
    assert_eq!(std::fs::read(s3.object_path(&up.key)).unwrap(), all);
    // Real S3 says NoSuchUpload; s3s-fs lists a finished upload as empty, so the part is
    // not found (InvalidPart). Either way nothing changes.
    let (status, v) = up.complete(&[(1, "x")]).await;
    assert!(status == 404 || status == 400, "complete twice: {status} {v}");
    assert_eq!(std::fs::read(s3.object_path(&up.key)).unwrap(), all);

    // Abort in S3 mode: the store forgets the upload.
    let second = Upload::create(&ep, "b.mp4", "video/mp4").await;
    second.put(1, &bytes(1000, 9)).await;
    assert_eq!(second.abort().await.0, 200);
    let (status, listed) = second.list().await;
    assert!(status == 404 || listed == json!([]), "after abort: {status} {listed}");
    let (status, v) = second.complete(&[(1, "x")]).await;
    assert!(status == 404 || status == 400, "complete after abort: {status} {v}");
    assert!(!s3.object_path(&second.key).exists());
}

/// What a case does, the parts it completes with, and the status and S3 code it must get.
type Case<'a> = (&'a str, Vec<(u32, &'a str)>, u16, &'a str);

#[tokio::test]
async fn s3_rules_refuse_bad_completions_and_store_nothing() {
    let gw = local_gateway();
    let ep = endpoint(&gw, json!({})).await;
    let up = Upload::create(&ep, "a.mp4", "video/mp4").await;
    for n in [0u32, 10_001] {
        let (status, v) = up.sign(n).await;
        assert_eq!(status, 400, "part {n}: {v}");
    }
    let (status, _) = call(reqwest::Method::GET, &up.with_key("/abc"), None).await;
    assert_eq!(status, 400);
    let (status, _) = call(reqwest::Method::GET, &up.with_key("/batch?partNumbers=1,0"), None).await;
    assert_eq!(status, 400);
    let small = bytes(1000, 4);
    let big = bytes(5 * MIB, 5);
    let e_small = up.put(1, &small).await;
    let e_big = up.put(2, &big).await;
    let e_last = up.put(3, &small).await;
    let cases: Vec<Case> = vec![
        ("a wrong ETag", vec![(1, "\"00000000000000000000000000000000\"")], 400, "InvalidPart"),
        ("a part never uploaded", vec![(2, &e_big), (4, &e_last)], 400, "InvalidPart"),
        ("parts out of order", vec![(2, &e_big), (1, &e_small)], 400, "InvalidPartOrder"),
        ("a part under 5 MiB that is not the last", vec![(1, &e_small), (2, &e_big)], 400, "EntityTooSmall"),
    ];
    for (what, parts, status, code) in cases {
        let (got, v) = up.complete(&parts).await;
        assert_eq!(got, status, "{what}: {v}");
        assert!(v["error"].as_str().unwrap().contains(code), "{what}: {v}");
    }
    let (status, v) =
        call(reqwest::Method::POST, &up.with_key("/complete"), Some(json!({"parts": "x"}))).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = call(
        reqwest::Method::POST,
        &up.with_key("/complete"),
        Some(json!({"parts": [{"PartNumber": "1", "ETag": 1}]})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    // Abort, then complete: NoSuchUpload; the parts are gone from disk.
    assert_eq!(up.abort().await.0, 200);
    let (status, _) = up.complete(&[(2, &e_big)]).await;
    assert_eq!(status, 404);
    assert!(!gw.data_dir().join("multipart").join(&up.id).exists());
    assert_eq!(up.abort().await.0, 404, "abort twice");
}

#[tokio::test]
async fn another_sessions_upload_and_a_bad_token_are_refused() {
    let gw = local_gateway();
    let mine = endpoint(&gw, json!({})).await;
    let theirs = endpoint(&gw, json!({})).await;
    let up = Upload::create(&theirs, "a.mp4", "video/mp4").await;
    // Their key through my session: outside my session's prefix.
    let stolen = Upload { ep: mine.clone(), key: up.key.clone(), id: up.id.clone() };
    for (status, v) in
        [stolen.sign(1).await, stolen.list().await, stolen.abort().await, stolen.complete(&[(1, "x")]).await]
    {
        assert_eq!(status, 403, "{v}");
    }
    // Their upload id with one of my keys: the store binds the id to its key.
    let own = Upload::create(&mine, "b.mp4", "video/mp4").await;
    let crossed = Upload { ep: mine.clone(), key: own.key.clone(), id: up.id.clone() };
    assert_eq!(crossed.list().await.0, 404);
    assert_eq!(crossed.abort().await.0, 404);
    assert_eq!(up.list().await.0, 200, "their upload is untouched");
    // An edited token.
    let (base, token) = mine.rsplit_once('/').unwrap();
    let edited = format!("{base}/{}x", token);
    let forged = Upload { ep: edited, key: own.key.clone(), id: own.id.clone() };
    let (status, v) = forged.list().await;
    assert_eq!(status, 401, "{v}");
    // A key outside any session, and routes Companion does not have.
    let (status, _) =
        call(reqwest::Method::GET, &format!("{}?key=uploads%2Fuser%2F12%2Fx.mp4", own.route("")), None).await;
    assert_eq!(status, 403);
    assert_eq!(call(reqwest::Method::GET, &format!("{mine}/s3/sts"), None).await.0, 404);
    assert_eq!(call(reqwest::Method::PUT, &format!("{mine}/s3/multipart"), None).await.0, 405);
    let (status, v) =
        call(reqwest::Method::POST, &format!("{mine}/s3/multipart"), Some(json!({"filename": "a.mp4"})))
            .await;
    assert_eq!(status, 400, "no type: {v}");
}

#[tokio::test]
async fn boto3_upload_part_urls_are_accepted_by_the_local_store() {
    let gw = local_gateway();
    let ep = endpoint(&gw, json!({})).await;
    let up = Upload::create(&ep, "a.mp4", "video/mp4").await;
    let date = presign_gateway::sigv4::AmzDate::new(time::OffsetDateTime::now_utc());
    let stamp = date.as_str();
    let endpoint = format!("http://{}", gw.addr);
    let url = common::boto3::boto3_reference(
        &["upload_part", &endpoint, "files", &up.key, &up.id, "1", "600", stamp],
        "presign-gateway",
        SECRET,
    );
    // boto3's URL and ours are the same URL.
    let (status, ours) = up.sign(1).await;
    assert_eq!(status, 200);
    let ours = ours["url"].as_str().unwrap();
    let strip = |u: &str| u.split("&X-Amz-Date=").next().unwrap().to_owned();
    assert_eq!(strip(&url), strip(ours), "same URL up to the signing time");
    let part = bytes(1234, 8);
    let r = client().put(&url).body(part.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (_, listed) = up.list().await;
    assert_eq!(listed[0]["ETag"].as_str().unwrap().trim_matches('"'), hex::encode(Md5::digest(&part)));
}

#[tokio::test]
async fn parts_past_the_sessions_size_are_refused_as_they_arrive() {
    let gw = local_gateway();
    let ep = endpoint(&gw, json!({"max_file_size": 6 * MIB})).await;
    let up = Upload::create(&ep, "a.mp4", "video/mp4").await;
    up.put(1, &bytes(5 * MIB, 1)).await;
    let (status, v) = up.sign(2).await;
    assert_eq!(status, 200, "{v}");
    // S3 answers EntityTooLarge with 400; the bytes never land.
    let r = client().put(v["url"].as_str().unwrap()).body(bytes(2 * MIB, 2)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("<Code>EntityTooLarge</Code>"));
    // Replacing part 1 with one that fits is fine; the refused part left nothing behind.
    up.put(1, &bytes(6 * MIB, 3)).await;
    let (_, listed) = up.list().await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let mut tmp = Vec::new();
    walk(&gw.data_dir().join("tmp"), &mut tmp);
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[tokio::test]
async fn a_part_url_with_its_names_re_encoded_is_still_only_a_part() {
    let gw = local_gateway();
    let ep = endpoint(&gw, json!({"max_file_size": 6 * MIB})).await;
    let up = Upload::create(&ep, "a.mp4", "video/mp4").await;
    let (_, v) = up.sign(1).await;
    let url = v["url"]
        .as_str()
        .unwrap()
        .replace("uploadId=", "upload%49d=")
        .replace("partNumber=", "part%4Eumber=");
    // The signature still verifies (names are decoded before signing), so it must be the
    // part it signed, never a plain object under the key with a type of the client's choice.
    let r = client()
        .put(&url)
        .header("content-type", "application/pdf")
        .body(bytes(1000, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = client().get(gw.url(&format!("/files/{}", up.key))).send().await.unwrap();
    assert_eq!(r.status(), 404, "no object before complete");
    let (_, listed) = up.list().await;
    assert_eq!(listed[0]["Size"], 1000, "{listed}");
}

/// Parts written in place (same-size parts after part 1) and parts spooled (any other) must
/// assemble to the same bytes whatever the order they arrive in and whatever the list.
#[tokio::test]
async fn every_layout_of_parts_assembles_the_listed_bytes() {
    let gw = local_gateway();
    let ep = endpoint(&gw, json!({})).await;
    struct Layout {
        what: &'static str,
        /// (part number, size in KiB, seed) in upload order.
        uploads: Vec<(u32, usize, u8)>,
        /// The part numbers completed.
        listed: Vec<u32>,
    }
    let k = 1024;
    let layouts = [
        Layout {
            what: "part 2 before part 1 (spooled), the rest in place",
            uploads: vec![(2, 5 * k, 2), (1, 5 * k, 1), (3, 700, 3)],
            listed: vec![1, 2, 3],
        },
        Layout {
            what: "a shorter middle part shifts the next (copy from the regions)",
            uploads: vec![(1, 6 * k, 1), (2, 5 * k, 2), (3, 1000, 3)],
            listed: vec![1, 2, 3],
        },
        Layout {
            what: "an uploaded part left out of the list",
            uploads: vec![(1, 5 * k, 1), (2, 5 * k, 2), (3, 5 * k, 3), (4, 10, 4)],
            listed: vec![1, 3, 4],
        },
        Layout {
            what: "a part uploaded twice (the second wins)",
            uploads: vec![(1, 5 * k, 1), (2, 5 * k, 2), (2, 5 * k, 9), (3, 1, 3)],
            listed: vec![1, 2, 3],
        },
        Layout {
            what: "a larger part after part 1 (spooled)",
            uploads: vec![(1, 5 * k, 1), (2, 6 * k, 2), (3, 5, 3)],
            listed: vec![1, 2, 3],
        },
    ];
    for layout in layouts {
        let up = Upload::create(&ep, "a.mp4", "video/mp4").await;
        let mut latest = std::collections::BTreeMap::new();
        for (n, kib, seed) in &layout.uploads {
            let part = bytes(kib * 1024, *seed);
            let etag = up.put(*n, &part).await;
            latest.insert(*n, (etag, part));
        }
        let parts: Vec<(u32, &str)> = layout.listed.iter().map(|n| (*n, latest[n].0.as_str())).collect();
        let (status, v) = up.complete(&parts).await;
        assert_eq!(status, 200, "{}: {v}", layout.what);
        let expected: Vec<u8> = layout.listed.iter().flat_map(|n| latest[n].1.clone()).collect();
        let got = client().get(v["location"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(got.len(), expected.len(), "{}", layout.what);
        assert!(got.as_ref() == &expected[..], "{}: bytes differ", layout.what);
        let chunks: Vec<&[u8]> = layout.listed.iter().map(|n| latest[n].1.as_slice()).collect();
        let r = client().head(v["location"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.headers()["etag"].to_str().unwrap(), s3_etag(&chunks), "{}", layout.what);
    }
    let mut left = Vec::new();
    walk(&gw.data_dir().join("multipart"), &mut left);
    walk(&gw.data_dir().join("tmp"), &mut left);
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}
