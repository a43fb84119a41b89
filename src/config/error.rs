//! [`ConfigError`]: a configuration error that names the field it is about.

use std::fmt;

/// A configuration error that names the field it is about.
#[derive(Debug)]
pub struct ConfigError {
    /// The field, as a path into the file (`storage.local.root`, `api_keys[2].sha256`), or
    /// the environment variable or command-line flag at fault.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}
