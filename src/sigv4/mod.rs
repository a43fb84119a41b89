//! Temporary stub: replaced by the real signer.
use http::HeaderMap;
use time::OffsetDateTime;
pub struct SecretKey(String);
pub struct Credentials { pub access_key_id: String, pub secret_access_key: SecretKey, pub session_token: Option<String> }
impl Credentials { pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>, session_token: Option<String>) -> Self { Self { access_key_id: access_key_id.into(), secret_access_key: SecretKey(secret_access_key.into()), session_token } } }
pub struct Signer { c: Credentials }
impl Signer {
    pub fn new(credentials: Credentials, _region: &str, _service: &str) -> Self { Self { c: credentials } }
    pub fn credentials(&self) -> &Credentials { &self.c }
    pub fn region(&self) -> &str { todo!() }
    pub fn service(&self) -> &str { todo!() }
    pub fn presign_url(&self, _req: &PresignRequest<'_>, _now: OffsetDateTime) -> String { todo!() }
    pub fn sign_headers(&self, _req: &HeaderSignRequest<'_>, _now: OffsetDateTime) -> Vec<(&'static str, String)> { todo!() }
}
pub struct PresignRequest<'a> { pub method: &'a str, pub scheme: &'a str, pub host: &'a str, pub path: &'a str, pub expires_in: u32, pub headers: &'a [(&'a str, &'a str)] }
pub struct HeaderSignRequest<'a> { pub method: &'a str, pub host: &'a str, pub path: &'a str, pub query: &'a [(&'a str, &'a str)], pub headers: &'a [(&'a str, &'a str)], pub payload_sha256_hex: &'a str }
pub fn verify_presigned(_signer: &Signer, _req: &PresignedRequest<'_>, _now: OffsetDateTime) -> Result<Verified, VerifyError> { todo!() }
pub struct PresignedRequest<'a> { pub method: &'a str, pub raw_path: &'a str, pub raw_query: &'a str, pub headers: &'a HeaderMap }
pub struct Verified { pub signed_headers: Vec<String>, pub expires_at: OffsetDateTime, pub date: OffsetDateTime }
#[derive(Debug)]
pub enum VerifyError { X }
impl VerifyError { pub fn code(&self) -> &'static str { todo!() } pub fn message(&self) -> String { todo!() } pub fn status(&self) -> u16 { todo!() } pub fn to_xml(&self, _resource: &str, _request_id: &str) -> String { todo!() } }
