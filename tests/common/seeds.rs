//! The dialect pages' own examples (`tests/fixtures/seeds/*.json`, provenance in the README
//! there) and the shape comparison the contract tests make against them.

use serde_json::Value;

/// Where the page examples live.
pub const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seeds");

/// One page's quoted examples.
pub struct Seed {
    /// The page's short name (the fixture's file name).
    pub page: String,
    /// The page's request example.
    pub request: Value,
    /// The page's success response example.
    pub response: Value,
    /// The page's error examples, keyed by HTTP status.
    errors: serde_json::Map<String, Value>,
}

impl Seed {
    /// Load `tests/fixtures/seeds/<page>.json`.
    pub fn load(page: &str) -> Seed {
        let path = format!("{SEEDS}/{page}.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
        assert_eq!(v["page"], page, "{path} names another page");
        let field = |name: &str| v.get(name).cloned().unwrap_or_else(|| panic!("{path} has no {name}"));
        Seed {
            page: page.to_owned(),
            request: field("request"),
            response: field("response"),
            errors: v.get("errors").and_then(Value::as_object).cloned().unwrap_or_default(),
        }
    }

    /// The page's error example for `status`.
    pub fn error(&self, status: u16) -> &Value {
        let page = &self.page;
        self.errors.get(&status.to_string()).unwrap_or_else(|| panic!("{page} quotes no {status} example"))
    }
}

/// Same keys, same JSON types, equal values except for keys listed as volatile.
pub fn assert_same_shape(actual: &Value, expected: &Value, volatile: &[&str], path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut ak: Vec<_> = a.keys().collect();
            let mut ek: Vec<_> = e.keys().collect();
            ak.sort();
            ek.sort();
            assert_eq!(ak, ek, "keys differ at {path}: {actual} vs {expected}");
            for (k, ev) in e {
                assert_same_shape(&a[k], ev, volatile, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "array length at {path}");
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                assert_same_shape(x, y, volatile, &format!("{path}[{i}]"));
            }
        }
        _ => {
            let same_type = std::mem::discriminant(actual) == std::mem::discriminant(expected);
            assert!(same_type, "type differs at {path}: {actual} vs {expected}");
            let leaf = path.rsplit('.').next().unwrap_or(path);
            if !volatile.contains(&leaf) {
                assert_eq!(actual, expected, "value differs at {path}");
            }
        }
    }
}
