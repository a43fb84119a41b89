//! Typed access to a JSON request object, with errors that name the field.
//!
//! Dialect parsers read the body as a generic object first so that unknown fields are
//! ignored (as the real APIs do) and a wrong type gets "field must be a string", not a
//! serde error about line and column.

use serde_json::{Map, Value};

use crate::upload::error::ApiError;

/// A parsed JSON object body.
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Parse a body that must be a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ApiError::MalformedBody("request body is empty".into()));
        }
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::MalformedBody(if e.is_syntax() || e.is_eof() {
                "invalid JSON".into()
            } else {
                e.to_string()
            })
        })?;
        match v {
            Value::Object(m) => Ok(Fields(m)),
            _ => Err(ApiError::MalformedBody("expected a JSON object".into())),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// An optional string; present but not a string is an error.
    pub fn opt_str(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(name, "must be a string")),
        }
    }

    pub fn req_str(&self, name: &'static str) -> Result<&str, ApiError> {
        self.opt_str(name)?.ok_or_else(|| invalid(name, "is required"))
    }

    /// An optional integer (no fractions, no strings).
    pub fn opt_i64(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None if n.as_u64().is_some() => Ok(Some(i64::MAX)),
                None => Err(invalid(name, "must be an integer")),
            },
            Some(_) => Err(invalid(name, "must be an integer")),
        }
    }

    pub fn req_i64(&self, name: &'static str) -> Result<i64, ApiError> {
        self.opt_i64(name)?.ok_or_else(|| invalid(name, "is required"))
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
    fn bodies_must_be_objects() {
        for b in [&b""[..], b"[]", b"\"x\"", b"{", b"{\"a\":\"\xff\"}", b"  "] {
            assert!(matches!(Fields::parse(b), Err(ApiError::MalformedBody(_))), "{b:?}");
        }
    }
}
