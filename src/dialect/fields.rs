//! Typed access to a JSON request object, with errors that name the field.
//!
//! Unknown fields are ignored (as the real APIs do) and a wrong type gets "field must be a
//! string", not a serde error about line and column. The body is read in one pass into a
//! flat list of its top-level members: strings borrow from the body unless they hold escapes,
//! nested arrays and objects are skipped, so a mint body costs one allocation, not a tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::upload::error::ApiError;

/// A top-level member's value, as far as the routes care.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    /// An integer past `i64::MAX`: every field reading it reports it out of range.
    BigInt,
    /// A number with a fraction or exponent.
    Float,
    Null,
    /// A bool, an array or an object.
    Other,
}

/// A parsed JSON object body.
pub struct Fields<'a>(Vec<(Cow<'a, str>, Scalar<'a>)>);

impl<'a> Fields<'a> {
    /// Parse a body that must be a JSON object.
    pub fn parse(body: &'a [u8]) -> Result<Self, ApiError> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ApiError::MalformedBody("request body is empty".into()));
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let top = de.deserialize_any(TopVisitor).and_then(|t| de.end().map(|()| t)).map_err(|e| {
            ApiError::MalformedBody(if e.is_syntax() || e.is_eof() {
                "invalid JSON".into()
            } else {
                e.to_string()
            })
        })?;
        top.ok_or_else(|| ApiError::MalformedBody("expected a JSON object".into()))
    }

    /// The last non-null value of `name` (JSON objects keep the last of duplicate keys).
    fn get(&self, name: &str) -> Option<&Scalar<'a>> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v).filter(|v| **v != Scalar::Null)
    }

    /// An optional string; present but not a string is an error.
    pub fn opt_str(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Scalar::Str(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(name, "must be a string")),
        }
    }

    pub fn req_str(&self, name: &'static str) -> Result<&str, ApiError> {
        self.opt_str(name)?.ok_or_else(|| invalid(name, "is required"))
    }

    /// An optional integer (no fractions, no strings); one past `i64::MAX` reads as
    /// `i64::MAX`, so range checks refuse it with their own message.
    pub fn opt_i64(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Scalar::Int(i)) => Ok(Some(*i)),
            Some(Scalar::BigInt) => Ok(Some(i64::MAX)),
            Some(_) => Err(invalid(name, "must be an integer")),
        }
    }

    pub fn req_i64(&self, name: &'static str) -> Result<i64, ApiError> {
        self.opt_i64(name)?.ok_or_else(|| invalid(name, "is required"))
    }

    /// An optional SHA-256 of the file, base64 as S3 writes `x-amz-checksum-sha256` (44
    /// characters, 32 bytes); returned as sent, to be signed as that header.
    pub fn opt_checksum_sha256(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        let Some(v) = self.opt_str(name)? else { return Ok(None) };
        let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v);
        match decoded {
            Ok(bytes) if bytes.len() == 32 => Ok(Some(v.to_owned())),
            _ => Err(invalid(name, "must be the file's SHA-256, base64-encoded (44 characters)")),
        }
    }
}

/// The whole body: `Some` members for an object, `None` for any other JSON value.
struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Option<Fields<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        // serde's own `Cow<str>` always copies; the key seed borrows unless a key has escapes.
        while let Some(key) = map.next_key_seed(KeySeed)? {
            members.push((key, map.next_value_seed(ScalarSeed)?));
        }
        Ok(Some(Fields(members)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A nested value that is read and dropped. Unlike serde's `IgnoredAny` (which serde_json
/// skips without decoding), it reads every string, so bad UTF-8 or a lone surrogate anywhere in
/// the body is still invalid JSON, and nesting keeps serde_json's depth limit.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor).map(|_| Skip)
    }
}

/// One member's name, borrowed from the body when it has no escapes.
struct KeySeed;

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match d.deserialize_str(ScalarVisitor)? {
            Scalar::Str(s) => Ok(s),
            _ => Err(de::Error::custom("object keys are strings")),
        }
    }
}

/// One member's value.
struct ScalarSeed;

impl<'de> de::DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Scalar::BigInt, Scalar::Int))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// An `InvalidField` error with the message "`name` `what`".
pub fn invalid(name: &'static str, what: &str) -> ApiError {
    ApiError::InvalidField { field: name, message: format!("{name} {what}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked() {
        let f =
            Fields::parse(br#"{"a":"x","n":5,"f":1.5,"s":"5","z":null,"big":18446744073709551615}"#).unwrap();
        assert_eq!(f.req_str("a").unwrap(), "x");
        assert!(f.req_str("n").is_err());
        assert_eq!(f.req_i64("n").unwrap(), 5);
        assert!(f.req_i64("f").is_err());
        assert!(f.req_i64("s").is_err());
        assert_eq!(f.opt_str("z").unwrap(), None);
        assert!(f.req_str("missing").is_err());
        assert_eq!(f.req_i64("big").unwrap(), i64::MAX);
    }

    #[test]
    fn escapes_nesting_and_duplicates() {
        let f = Fields::parse(br#"{"a":"x\"y","n":{"deep":[1,{"k":2}]},"a2":[1],"d":"1","d":"2","z":true}"#)
            .unwrap();
        assert_eq!(f.req_str("a").unwrap(), "x\"y");
        assert_eq!(f.req_str("d").unwrap(), "2", "the last of duplicate keys wins");
        let f = Fields::parse(br#"{"file\u005fname":"x.png"}"#).unwrap();
        assert_eq!(f.req_str("file_name").unwrap(), "x.png", "an escaped key is decoded");
        assert!(f.req_str("n").is_err() && f.req_i64("a2").is_err() && f.req_str("z").is_err());
        let f = Fields::parse(br#"{"neg":-5,"exp":1e3,"big":99999999999999999999999}"#).unwrap();
        assert_eq!(f.req_i64("neg").unwrap(), -5);
        assert!(f.req_i64("exp").is_err());
        assert!(f.req_i64("big").is_err(), "past u64 is a float to JSON");
    }

    #[test]
    fn bodies_must_be_objects() {
        for b in
            [&b""[..], b"[]", b"\"x\"", b"{", b"{\"a\":\"\xff\"}", b"  ", b"{} x", b"[1,2]", b"null", b"1"]
        {
            assert!(matches!(Fields::parse(b), Err(ApiError::MalformedBody(_))), "{b:?}");
        }
        let msg = |b: &[u8]| match Fields::parse(b) {
            Err(ApiError::MalformedBody(m)) => m,
            _ => String::new(),
        };
        assert_eq!(msg(b"[]"), "expected a JSON object");
        assert_eq!(msg(b"{"), "invalid JSON");
        assert_eq!(msg(b"{} x"), "invalid JSON");
        assert_eq!(msg(b"{\"x\":[\"\xff\"]}"), "invalid JSON", "nested strings are decoded too");
        assert_eq!(msg(b"[\"\xff\"]"), "invalid JSON");
        assert_eq!(msg(br#"{"x":{"k":"\ud800"}}"#), "invalid JSON", "a lone surrogate, nested");
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(Fields::parse(deep.as_bytes()).is_err(), "nesting keeps the depth limit");
    }
}
