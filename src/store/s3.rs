//! An S3-compatible backend: minted URLs point straight at the bucket.
//!
//! The gateway stays stateless here. It only talks to the store itself when a dialect needs
//! what a bare presigned URL cannot do (memories' multipart POST) or for from-url; then it
//! relays a finished spool with a header-signed PUT, streaming the file in bounded memory.

use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

use crate::config::{Addressing, S3StorageConfig};
use crate::sigv4::{Credentials, HeaderSignRequest, PresignRequest, Signer};

use super::base_url::BaseUrl;
use super::error::StoreError;
use super::local::ObjectMeta;
use super::spool::Spooled;

pub struct S3Store {
    scheme: String,
    /// Authority the object URLs use (bucket.host for virtual addressing).
    host: String,
    /// Path prefix before the key: `/bucket` (path style) or empty (virtual).
    path_prefix: String,
    public_base: Option<String>,
    bucket: String,
    pub signer: Signer,
    client: reqwest::Client,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("host", &self.host).field("path_prefix", &self.path_prefix).finish()
    }
}

impl S3Store {
    /// Build from config; credentials are read from the named environment variables.
    pub fn from_config(c: &S3StorageConfig) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let env = |field: &str, name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::new(field, format!("environment variable {name} is not set")))
        };
        let akid = env("storage.s3.access_key_id_env", &c.access_key_id_env)?;
        let secret = env("storage.s3.secret_access_key_env", &c.secret_access_key_env)?;
        let token = std::env::var(&c.session_token_env).ok().filter(|v| !v.is_empty());
        let url = url::Url::parse(&c.endpoint)
            .map_err(|e| ConfigError::new("storage.s3.endpoint", e.to_string()))?;
        let endpoint =
            BaseUrl::from_url(&url).ok_or_else(|| ConfigError::new("storage.s3.endpoint", "has no host"))?;
        let authority = endpoint.authority;
        let (host, path_prefix) = match c.addressing {
            Addressing::Path => (authority, format!("/{}", c.bucket)),
            Addressing::Virtual => (format!("{}.{authority}", c.bucket), String::new()),
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            // A stalled store must not hold a spool (and a from-url slot) forever.
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ConfigError::new("storage.s3", format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            scheme: endpoint.scheme.into_owned(),
            host,
            path_prefix,
            public_base: c.public_base_url.clone(),
            bucket: c.bucket.clone(),
            signer: Signer::new(Credentials::new(akid, secret, token), &c.region, "s3"),
            client,
        })
    }

    /// The decoded request path of `key`: `/bucket/key` or `/key`.
    pub(crate) fn object_path(&self, key: &str) -> String {
        format!("{}/{key}", self.path_prefix)
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `http` or `https`.
    pub(crate) fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The authority requests to the bucket carry as `Host`.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The HTTP client for the gateway's own requests to the store.
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The URL a form POST goes to: the bucket's, ending in `/`, so that it plus a key is the
    /// object's URL.
    pub fn post_url(&self) -> String {
        format!("{}://{}{}/", self.scheme, self.host, self.path_prefix)
    }

    /// A presigned URL for `method` on `key`, signing `headers` besides host.
    pub fn presign(
        &self,
        method: &str,
        key: &str,
        headers: &[(&str, &str)],
        expires_in: u32,
        now: OffsetDateTime,
    ) -> String {
        let path = self.object_path(key);
        self.signer.presign_url(
            &PresignRequest {
                method,
                scheme: &self.scheme,
                host: &self.host,
                path: &path,
                expires_in,
                headers,
            },
            now,
        )
    }

    /// Where the object can be read.
    pub fn public_url(&self, key: &str) -> String {
        match &self.public_base {
            Some(b) => format!("{b}/{key}"),
            None => format!("{}://{}{}", self.scheme, self.host, self.object_path(key)),
        }
    }

    /// The bucket's URL, for the start-up log.
    pub fn bucket_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path_prefix)
    }

    /// PUT a finished spool as `key` with a header-signed request, streaming the file.
    pub async fn put_spooled(
        &self,
        spooled: Spooled,
        key: &str,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let path = self.object_path(key);
        // Relay spools always hash SHA-256; without it the payload goes unsigned.
        let sha =
            spooled.sha256.map(hex::encode).unwrap_or_else(|| crate::sigv4::UNSIGNED_PAYLOAD.to_owned());
        let len = spooled.len.to_string();
        let signed = self.signer.sign_headers(
            &HeaderSignRequest {
                method: "PUT",
                host: &self.host,
                path: &path,
                query: &[],
                headers: &[("content-length", &len), ("content-type", content_type)],
                payload_sha256_hex: &sha,
            },
            crate::clock::now(),
        );
        let mut url = format!("{}://{}", self.scheme, self.host);
        crate::sigv4::encode_path(&mut url, path.as_bytes());
        let file = tokio::fs::File::open(spooled.path()).await?;
        let mut req = self
            .client
            .put(url)
            .header("host", &self.host)
            .header("content-type", content_type)
            .header("content-length", &len)
            .body(reqwest::Body::wrap_stream(file_chunks(file)));
        for (name, value) in signed {
            req = req.header(name, value);
        }
        let resp = req.send().await.map_err(|e| StoreError::Unreachable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(StoreError::Refused {
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
            });
        }
        let etag = resp.headers().get(http::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(ObjectMeta {
            content_type: content_type.to_string(),
            size: spooled.len,
            etag: etag.unwrap_or_else(|| format!("\"{}\"", &sha[..sha.len().min(32)])),
        })
    }
}

/// A file as a stream of 64 KiB chunks (bounded memory for any size).
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}
