//! The dialects' JSON parsers against arbitrary bodies: never a panic, and whatever they
//! accept obeys the rules every mint relies on (content type policy, file names, sizes).

use proptest::prelude::*;
use serde_json::{json, Value};

use super::Dialect;
use crate::content_type::{is_acceptable_content_type, is_lone_token, is_media_type};
use crate::upload::auth::Caller;
use crate::upload::mint::{build_key, MintInput};

/// JSON values of any shape, biased toward the fields the parsers read.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            "\\PC{0,20}",
            "image/[a-z]{1,5}",
            "[a-z]{1,8}\\.[a-z]{2,4}",
            "uploads/user/12(/[a-z.%]{0,5}){0,3}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| prop::collection::vec(inner, 0..3).prop_map(Value::Array))
}

const FIELDS: &[&str] = &[
    "filename",
    "content_type",
    "file_size",
    "expires_in",
    "file_name",
    "prefix",
    "original_filename",
    "contentType",
    "size",
    "checksum_sha256",
    "checksumSha256",
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::btree_map(prop::sample::select(FIELDS), value(), 0..8).prop_map(|m| {
            let o: serde_json::Map<String, Value> = m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            serde_json::to_vec(&Value::Object(o)).unwrap_or_default()
        }),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn check_accepted(d: Dialect, input: &MintInput, caller: &Caller) -> Result<(), TestCaseError> {
    let ct = input.content_type.as_str();
    match d {
        Dialect::Ctxfy => prop_assert!(is_acceptable_content_type(ct) || is_lone_token(ct), "{ct:?}"),
        _ => prop_assert!(is_media_type(ct), "{d:?} {ct:?}"),
    }
    prop_assert!(input.stem.len() <= 64);
    prop_assert!(
        input.stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{:?}",
        input.stem
    );
    if let Some(size) = input.size {
        prop_assert!((1..=crate::config::MAX_FILE_SIZE).contains(&size));
    }
    let key = build_key(input, caller, time::OffsetDateTime::now_utc(), Some("re_1"));
    prop_assert!(crate::store::key_is_safe(&key), "{key:?}");
    prop_assert!(key.starts_with(&format!("{}/", caller.namespace())), "{key:?}");
    Ok(())
}

proptest! {
    #![proptest_config(crate::fuzz::config())]

    #[test]
    fn parsers_never_panic_and_accept_only_what_mints_allow(d in prop::sample::select(Dialect::ALL.to_vec()), body in body()) {
        let caller = Caller::new("k", 12);
        if let Ok(input) = d.parse(&body, &caller) {
            check_accepted(d, &input, &caller)?;
        }
    }

    /// The file name checker and the key builder: any name, never an unsafe key.
    #[test]
    fn any_filename_makes_a_safe_key(name in "\\PC{0,80}|[a-zA-Z0-9 ._%/\\\\-]{0,40}", user in any::<u64>()) {
        let caller = Caller::new("k", user);
        if let Ok((stem, ext)) = crate::upload::object_key::check_filename("filename", &name) {
            let input = MintInput {
                stem,
                ext,
                content_type: "image/png".into(),
                size: Some(1),
                expires_in: 900,
                prefix: None,
                key_style: crate::upload::mint::KeyStyle::Dated,
                method: crate::upload::mint::UploadMethod::Put,
                checksum_sha256: None,
                create_only: false,
                dialect: None,
            };
            check_accepted(Dialect::ApiMall, &input, &caller)?;
        }
    }
}
