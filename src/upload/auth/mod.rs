//! Who is calling: the credential a dialect carries, and the two ways of knowing its owner.
//!
//! - [`keys`]: API keys listed by their SHA-256 in the config or a key file of their own,
//!   reloaded on SIGHUP ([`KeyStore::reload`]).
//! - [`delegated`]: the application behind the gateway answers for its own users, and the
//!   answers are cached ([`DelegatedAuth`]).
//!
//! Either way a request ends with a [`Caller`] or an [`ApiError`] in the dialect's envelope.

mod credential;
pub mod delegated;
pub mod keys;

pub use credential::{credential, AuthStyle};
pub use delegated::DelegatedAuth;
pub use keys::{hash_key, ApiKeys, KeyReloader, KeyStore};

use std::sync::Arc;

use crate::upload::error::ApiError;

/// The caller, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's id (safe to log), from the config or the application.
    pub key_id: Arc<str>,
    pub user_id: u64,
    /// Requests per second on upload routes; `None`: the configured default.
    pub rate_limit_per_sec: Option<u32>,
    /// Largest file this caller may upload; `None`: the store's cap.
    pub max_file_size: Option<u64>,
}

impl Caller {
    /// A caller with no limits of its own.
    pub fn new(key_id: impl Into<Arc<str>>, user_id: u64) -> Self {
        Self { key_id: key_id.into(), user_id, rate_limit_per_sec: None, max_file_size: None }
    }

    /// The key prefix everything this caller writes lives under.
    pub fn namespace(&self) -> String {
        let mut ns = String::with_capacity(32);
        self.push_namespace(&mut ns);
        ns
    }

    /// Append [`Self::namespace`].
    pub fn push_namespace(&self, out: &mut String) {
        out.push_str("uploads/user/");
        crate::decimal::push_u64(out, self.user_id);
    }
}

/// How the routes know their callers, chosen by the config's `auth:` section.
pub enum Authenticator {
    Keys(Arc<KeyStore>),
    Delegated(DelegatedAuth),
}

impl Authenticator {
    /// The caller behind an `Authorization` header in `dialect`'s style.
    pub async fn authenticate(
        &self,
        header: Option<&[u8]>,
        style: AuthStyle,
        dialect: &'static str,
    ) -> Result<Caller, ApiError> {
        let key = credential(header, style)?;
        match self {
            Authenticator::Keys(k) => k.authenticate(key),
            // Boxed: moka's lookup future is large, and unboxed it would grow every
            // request's future, in YAML-key mode too (routes::tests::request_future_stays_small).
            Authenticator::Delegated(d) => Box::pin(d.authenticate(key, dialect)).await,
        }
    }
}
