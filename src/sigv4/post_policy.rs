//! Browser-based uploads: S3's POST policy, signed with the SigV4 key and checked strictly.
//!
//! ```text
//! policy    = base64(JSON { "expiration": "...Z", "conditions": [ ... ] })
//! signature = HexEncode(HMAC-SHA256(kSigning, policy))
//! ```
//! The form then carries `key`, the signed fields, `x-amz-algorithm`, `x-amz-credential`,
//! `x-amz-date`, `policy` and `x-amz-signature`, and the `file` last. Conditions are exact
//! matches (`{"name": "value"}` or `["eq", "$name", "value"]`), prefixes
//! (`["starts-with", "$name", "prefix"]`) and `["content-length-range", min, max]`; every form
//! field but `x-amz-signature`, `file`, `policy` and `x-ignore-*` must be named by one.
//!
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html>

use base64::Engine;
use hmac::Mac;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::sigv4::{check_credential, parse_lower_hex64, AmzDate, Signer, VerifyError, ALGORITHM};

/// A form upload to presign.
#[derive(Debug, Clone, Copy)]
pub struct PostPolicyRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub content_type: &'a str,
    /// Inclusive bounds on the file's size in bytes.
    pub content_length_range: (u64, u64),
    pub expires_in: u32,
    /// More form fields, each signed as an exact match (e.g. `success_action_status`).
    pub fields: &'a [(&'a str, &'a str)],
}

/// The form fields of a presigned POST, in the order to send them (the file goes last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPost {
    pub fields: Vec<(String, String)>,
    pub expires_at: OffsetDateTime,
}

/// `2026-12-01T12:00:00.000Z`, as S3 and the AWS SDKs write a policy's expiration.
fn expiration_text(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl Signer {
    /// Presigns a form upload of `req.key` valid from `now` for `req.expires_in` seconds.
    pub fn presign_post(&self, req: &PostPolicyRequest<'_>, now: OffsetDateTime) -> PresignedPost {
        let date = AmzDate::new(now);
        let key = self.signing_key(date.date());
        let creds = self.credentials();
        let credential = format!("{}/{}", creds.access_key_id, key.scope());
        let expires_at = now + Duration::seconds(i64::from(req.expires_in.max(1)));

        let mut signed: Vec<(&str, &str)> = vec![("Content-Type", req.content_type)];
        signed.extend(req.fields.iter().copied());
        signed.extend([("x-amz-algorithm", ALGORITHM), ("x-amz-credential", &credential)]);
        signed.push(("x-amz-date", date.as_str()));
        if let Some(token) = &creds.session_token {
            signed.push(("x-amz-security-token", token));
        }
        let mut conditions = vec![
            serde_json::json!({ "bucket": req.bucket }),
            serde_json::json!(["eq", "$key", req.key]),
            serde_json::json!([
                "content-length-range",
                req.content_length_range.0,
                req.content_length_range.1
            ]),
        ];
        for (name, value) in &signed {
            conditions.push(serde_json::json!(["eq", format!("${name}"), value]));
        }
        let policy =
            serde_json::json!({ "expiration": expiration_text(expires_at), "conditions": conditions });
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let signature = key.sign(&policy);

        let mut fields: Vec<(String, String)> = Vec::with_capacity(signed.len() + 3);
        fields.push(("key".into(), req.key.into()));
        fields.extend(signed.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        fields.push(("policy".into(), policy));
        fields.push(("x-amz-signature".into(), signature.as_str().to_owned()));
        PresignedPost { fields, expires_at }
    }
}

/// Why a form upload was refused, each with S3's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostPolicyError {
    /// A required field is absent (`key`, `policy`, the signature fields).
    MissingField(&'static str),
    /// The credential, date or algorithm is malformed or not ours.
    Credential(VerifyError),
    SignatureDoesNotMatch,
    /// The policy is not base64 JSON of the documented shape; the text says what.
    InvalidPolicyDocument(String),
    Expired,
    /// A condition does not hold; the text is the condition.
    ConditionFailed(String),
    /// A form field no condition names.
    ExtraField(String),
}

impl PostPolicyError {
    pub fn to_s3(&self) -> crate::s3_error::S3Error {
        use std::borrow::Cow;
        let e = |status, code, message: String| crate::s3_error::S3Error {
            status,
            code,
            message: Cow::Owned(message),
        };
        match self {
            Self::MissingField(name) => e(
                400,
                "InvalidArgument",
                format!("Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."),
            ),
            Self::Credential(v) => v.to_s3(),
            Self::SignatureDoesNotMatch => e(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.".into(),
            ),
            Self::InvalidPolicyDocument(why) => {
                e(400, "InvalidPolicyDocument", format!("Invalid Policy: {why}"))
            }
            Self::Expired => e(403, "AccessDenied", "Invalid according to Policy: Policy expired.".into()),
            Self::ConditionFailed(c) => {
                e(403, "AccessDenied", format!("Invalid according to Policy: Policy Condition failed: {c}"))
            }
            Self::ExtraField(f) => {
                e(403, "AccessDenied", format!("Invalid according to Policy: Extra input fields: {f}"))
            }
        }
    }
}

/// What a verified form allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPost {
    pub key: String,
    /// `content-length-range`, when the policy has one.
    pub content_length_range: Option<(u64, u64)>,
    /// The form's `Content-Type` field.
    pub content_type: Option<String>,
    /// `success_action_status`, when it is 200, 201 or 204.
    pub success_action_status: Option<u16>,
}

/// One form field (name as sent, value).
pub type FormField = (String, String);

fn field<'f>(fields: &'f [FormField], name: &str) -> Option<&'f str> {
    fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Checks the policy of a form POSTed to `bucket` at `now`: signature, expiry, then every
/// condition against the fields (the file's size is checked by the caller while it streams,
/// against [`VerifiedPost::content_length_range`]).
pub fn verify_post(
    signer: &Signer,
    bucket: &str,
    fields: &[FormField],
    now: OffsetDateTime,
) -> Result<VerifiedPost, PostPolicyError> {
    let key = field(fields, "key").ok_or(PostPolicyError::MissingField("key"))?;
    let policy = field(fields, "policy").ok_or(PostPolicyError::MissingField("policy"))?;
    let algorithm =
        field(fields, "x-amz-algorithm").ok_or(PostPolicyError::MissingField("x-amz-algorithm"))?;
    let credential =
        field(fields, "x-amz-credential").ok_or(PostPolicyError::MissingField("x-amz-credential"))?;
    let date = field(fields, "x-amz-date").ok_or(PostPolicyError::MissingField("x-amz-date"))?;
    let signature =
        field(fields, "x-amz-signature").ok_or(PostPolicyError::MissingField("x-amz-signature"))?;
    let query_error = |m: &str| PostPolicyError::Credential(VerifyError::QueryParameters(m.into()));
    if algorithm != ALGORITHM {
        return Err(query_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""));
    }
    let date = AmzDate::parse(date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    check_credential(signer, credential, &date).map_err(PostPolicyError::Credential)?;
    check_token(signer, field(fields, "x-amz-security-token"))?;
    let signature = parse_lower_hex64(signature).ok_or(PostPolicyError::SignatureDoesNotMatch)?;
    let mut mac = signer.signing_key(date.date()).mac();
    mac.update(policy.as_bytes());
    mac.verify_slice(&signature).map_err(|_| PostPolicyError::SignatureDoesNotMatch)?;

    let doc = decode_policy(policy)?;
    if now > doc.expiration {
        return Err(PostPolicyError::Expired);
    }
    let mut range = None;
    let mut covered: Vec<String> = vec!["bucket".into()];
    for c in &doc.conditions {
        match check_condition(c, bucket, fields)? {
            Checked::Field(name) => covered.push(name),
            Checked::Range(min, max) => range = Some((min, max)),
        }
    }
    for (name, _) in fields {
        let lower = name.to_ascii_lowercase();
        let exempt =
            matches!(lower.as_str(), "x-amz-signature" | "file" | "policy") || lower.starts_with("x-ignore-");
        if !exempt && !covered.contains(&lower) {
            return Err(PostPolicyError::ExtraField(name.clone()));
        }
    }
    Ok(VerifiedPost {
        key: key.to_owned(),
        content_length_range: range,
        content_type: field(fields, "content-type").map(str::to_owned),
        success_action_status: field(fields, "success_action_status")
            .and_then(|s| s.parse().ok())
            .filter(|s| matches!(s, 200 | 201 | 204)),
    })
}

fn check_token(signer: &Signer, token: Option<&str>) -> Result<(), PostPolicyError> {
    let ours = signer.credentials().session_token.as_deref();
    match (ours, token) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if crate::sigv4::ct_eq(a.as_bytes(), b.as_bytes()) => Ok(()),
        _ => Err(PostPolicyError::Credential(VerifyError::InvalidToken)),
    }
}

struct PolicyDoc {
    expiration: OffsetDateTime,
    conditions: Vec<serde_json::Value>,
}

fn decode_policy(policy: &str) -> Result<PolicyDoc, PostPolicyError> {
    let bad = |m: &str| PostPolicyError::InvalidPolicyDocument(m.into());
    let json = base64::engine::general_purpose::STANDARD.decode(policy).map_err(|_| bad("not base64"))?;
    let v: serde_json::Value = serde_json::from_slice(&json).map_err(|_| bad("not JSON"))?;
    let expiration = v
        .get("expiration")
        .and_then(|e| e.as_str())
        .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
        .ok_or_else(|| bad("Policy missing expiration."))?;
    let conditions = v
        .get("conditions")
        .and_then(|c| c.as_array())
        .cloned()
        .ok_or_else(|| bad("Policy missing conditions."))?;
    Ok(PolicyDoc { expiration, conditions })
}

enum Checked {
    /// A field this condition names (lowercase).
    Field(String),
    Range(u64, u64),
}

/// Checks one condition; what it covers.
fn check_condition(
    c: &serde_json::Value,
    bucket: &str,
    fields: &[FormField],
) -> Result<Checked, PostPolicyError> {
    let bad = || PostPolicyError::InvalidPolicyDocument(format!("Invalid condition: {c}"));
    let failed = || PostPolicyError::ConditionFailed(c.to_string());
    let value_of = |name: &str| -> Option<String> {
        if name.eq_ignore_ascii_case("bucket") {
            Some(bucket.to_owned())
        } else {
            field(fields, name).map(str::to_owned)
        }
    };
    if let Some(obj) = c.as_object() {
        let (name, want) = obj.iter().next().filter(|_| obj.len() == 1).ok_or_else(bad)?;
        let want = want.as_str().ok_or_else(bad)?;
        return match value_of(name) {
            Some(got) if got == want => Ok(Checked::Field(name.to_ascii_lowercase())),
            _ => Err(failed()),
        };
    }
    let arr = c.as_array().ok_or_else(bad)?;
    let op = arr.first().and_then(|o| o.as_str()).ok_or_else(bad)?;
    if op.eq_ignore_ascii_case("content-length-range") {
        let n = |i: usize| arr.get(i).and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        return match (arr.len(), n(1), n(2)) {
            (3, Some(min), Some(max)) if min <= max => Ok(Checked::Range(min, max)),
            _ => Err(bad()),
        };
    }
    let [_, name, want] = arr.as_slice() else {
        return Err(bad());
    };
    let name = name.as_str().and_then(|n| n.strip_prefix('$')).ok_or_else(bad)?;
    let want = want.as_str().ok_or_else(bad)?;
    let got = value_of(name);
    let holds = match op.to_ascii_lowercase().as_str() {
        "eq" => got.as_deref() == Some(want),
        "starts-with" => got.as_deref().is_some_and(|g| g.starts_with(want)),
        _ => return Err(bad()),
    };
    if holds {
        Ok(Checked::Field(name.to_ascii_lowercase()))
    } else {
        Err(failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::Credentials;

    fn signer() -> Signer {
        Signer::new(
            Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
            "us-east-1",
            "s3",
        )
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-01 10:00:00 UTC)
    }

    fn form() -> Vec<FormField> {
        let post = signer().presign_post(
            &PostPolicyRequest {
                bucket: "files",
                key: "uploads/user/12/a.png",
                content_type: "image/png",
                content_length_range: (1, 1000),
                expires_in: 600,
                fields: &[("success_action_status", "201")],
            },
            now(),
        );
        post.fields
    }

    #[test]
    fn own_post_verifies() {
        let v = verify_post(&signer(), "files", &form(), now()).unwrap();
        assert_eq!(v.key, "uploads/user/12/a.png");
        assert_eq!(v.content_length_range, Some((1, 1000)));
        assert_eq!(v.content_type.as_deref(), Some("image/png"));
        assert_eq!(v.success_action_status, Some(201));
    }

    #[test]
    fn every_edit_is_refused() {
        let s = signer();
        let set = |name: &str, value: &str| {
            let mut f = form();
            f.iter_mut().filter(|(n, _)| n.eq_ignore_ascii_case(name)).for_each(|(_, v)| *v = value.into());
            f
        };
        let later = now() + Duration::seconds(601);
        assert_eq!(verify_post(&s, "files", &form(), later), Err(PostPolicyError::Expired));
        assert!(matches!(verify_post(&s, "other", &form(), now()), Err(PostPolicyError::ConditionFailed(_))));
        assert!(matches!(
            verify_post(&s, "files", &set("key", "uploads/user/13/a.png"), now()),
            Err(PostPolicyError::ConditionFailed(_))
        ));
        assert!(matches!(
            verify_post(&s, "files", &set("content-type", "text/html"), now()),
            Err(PostPolicyError::ConditionFailed(_))
        ));
        let sig = form().iter().find(|(n, _)| n == "x-amz-signature").unwrap().1.clone();
        let flipped = format!("{}{}", if sig.starts_with('0') { "1" } else { "0" }, &sig[1..]);
        assert_eq!(
            verify_post(&s, "files", &set("x-amz-signature", &flipped), now()),
            Err(PostPolicyError::SignatureDoesNotMatch)
        );
        let policy = form().iter().find(|(n, _)| n == "policy").unwrap().1.clone();
        let mut doc: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&policy).unwrap())
                .unwrap();
        doc["conditions"][2] = serde_json::json!(["content-length-range", 1, 10_000_000]);
        let edited = base64::engine::general_purpose::STANDARD.encode(doc.to_string());
        assert_eq!(
            verify_post(&s, "files", &set("policy", &edited), now()),
            Err(PostPolicyError::SignatureDoesNotMatch)
        );
        let mut extra = form();
        extra.push(("acl".into(), "public-read".into()));
        assert_eq!(verify_post(&s, "files", &extra, now()), Err(PostPolicyError::ExtraField("acl".into())));
        let mut ignored = form();
        ignored.push(("x-ignore-me".into(), "1".into()));
        assert!(verify_post(&s, "files", &ignored, now()).is_ok());
        let no_key: Vec<FormField> = form().into_iter().filter(|(n, _)| n != "key").collect();
        assert_eq!(verify_post(&s, "files", &no_key, now()), Err(PostPolicyError::MissingField("key")));
    }

    #[test]
    fn expiration_is_written_as_sdks_write_it() {
        assert_eq!(expiration_text(now()), "2026-12-01T10:00:00.000Z");
    }
}
