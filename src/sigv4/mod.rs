//! Hand-written AWS Signature Version 4 (`AWS4-HMAC-SHA256`).
//!
//! Two forms share one canonicaliser ([`CanonicalRequest`]):
//! - the query-string form ([`Signer::presign_url`]), which mints S3 presigned URLs and
//!   [`verify_presigned`] checks them strictly;
//! - the header form ([`Signer::sign_headers`]), for the gateway's own requests to S3.
//!
//! Everything here is pure: nothing reads the clock, the time is always an argument.
//! The signing key (kDate → kRegion → kService → kSigning) is cached per date, region and
//! service ([`SigningKeyCache`]), so a URL costs one SHA-256 of the canonical request and one
//! HMAC of the string to sign.
//!
//! References:
//! - Signature Version 4 overview:
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html>
//! - Creating a signed request (canonical request, string to sign, signing key):
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>
//! - S3 query-string authentication (presigned URLs):
//!   <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>
//! - S3 header authentication:
//!   <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
//! - S3 error codes: <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>

mod amz_date;
mod canonical;
mod credentials;
mod digest;
mod error;
mod header_sign;
mod post_policy;
mod presign;
mod signer;
mod signing_key;
mod sink;
mod uri_encode;
mod verify;

pub use amz_date::*;
pub use canonical::*;
pub use credentials::*;
pub use digest::*;
pub use error::*;
pub use header_sign::*;
pub use post_policy::*;
pub use presign::*;
pub use signer::*;
pub use signing_key::*;
pub use sink::*;
pub use uri_encode::*;
pub use verify::*;
