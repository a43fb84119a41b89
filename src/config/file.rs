//! Reading the binary's file as two parts at one level: the binary's own keys
//! ([`ServerPart`]) and the routes' keys ([`RoutesPart`]).
//!
//! Each part is read from the text itself, so a bad value keeps its line and column. serde's
//! `flatten` would lose them and cannot be combined with `deny_unknown_fields`; instead the
//! routes' part is read through a map that skips the binary's keys, and refuses any other key
//! it does not know.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::limits::LimitsConfig;
use super::origin_pool::OriginPoolConfig;
use super::origin_tls::OriginTlsConfig;
use super::routes::RoutesConfig;
use super::server::{LoggingConfig, MetricsConfig, OriginTimeouts, ServerSettings};
use super::tls::TlsConfig;

/// The binary's own keys; the routes' keys are ignored here and read by [`RoutesPart`].
#[derive(Deserialize)]
pub(super) struct ServerPart {
    pub listen: String,
    #[serde(default)]
    pub origin: Vec<String>,
    #[serde(default = "default_threads")]
    pub threads: usize,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub origin_timeouts: OriginTimeouts,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub origin_pool: OriginPoolConfig,
    #[serde(default)]
    pub origin_tls: OriginTlsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// The keys of [`ServerPart`], which [`RoutesPart`] passes over.
pub(super) const SERVER_KEYS: [&str; 11] = [
    "listen",
    "origin",
    "threads",
    "metrics",
    "logging",
    "origin_timeouts",
    "server",
    "origin_pool",
    "origin_tls",
    "limits",
    "tls",
];

fn default_threads() -> usize {
    2
}

/// The routes' keys of the binary's file.
pub(super) struct RoutesPart(pub RoutesConfig);

impl<'de> Deserialize<'de> for RoutesPart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RoutesPartVisitor)
    }
}

struct RoutesPartVisitor;

impl<'de> Visitor<'de> for RoutesPartVisitor {
    type Value = RoutesPart;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of configuration keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RoutesPart, A::Error> {
        RoutesConfig::deserialize(MapAccessDeserializer::new(SkipServerKeys(map))).map(RoutesPart)
    }
}

/// A map without the binary's keys.
struct SkipServerKeys<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SkipServerKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.0.next_key::<String>()? {
            if SERVER_KEYS.contains(&key.as_str()) {
                self.0.next_value::<IgnoredAny>()?;
                continue;
            }
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(seed)
    }
}
