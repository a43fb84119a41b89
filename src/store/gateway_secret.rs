//! The secret that signs the gateway's own URLs (local-store uploads, memories' relay POSTs),
//! resolved in one place with one rule.
//!
//! `PRESIGN_GATEWAY_SECRET` wins when it is set, and then it must be fit: at least
//! [`MIN_SECRET_LEN`] characters. A set but unfit value is a startup error naming the
//! variable, never a silent fallback, so a fleet cannot end up signing with different keys.
//! Unset, the local store keeps a random secret in its data directory (created once, so URLs
//! survive restarts and upgrades), and the S3 mode makes one for this process and says so.

use std::ffi::OsString;
use std::path::Path;

use crate::config::ConfigError;

/// The environment variable that holds the secret.
pub const SECRET_ENV: &str = "PRESIGN_GATEWAY_SECRET";
/// The shortest secret accepted, from the environment or the data directory.
pub const MIN_SECRET_LEN: usize = 32;

/// Where the local store keeps its secret, under its root.
const SECRET_FILE: &str = ".gateway/signing.key";

/// The secret from the environment: `None` when unset, an error when set but unfit.
pub fn from_env() -> Result<Option<String>, ConfigError> {
    check_env_value(std::env::var_os(SECRET_ENV))
}

fn check_env_value(value: Option<OsString>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.into_string().map_err(|_| ConfigError::new(SECRET_ENV, "must be valid UTF-8"))?;
    if value.len() < MIN_SECRET_LEN {
        return Err(ConfigError::new(
            SECRET_ENV,
            format!(
                "is set but only {} characters long; it must be at least {MIN_SECRET_LEN} \
                 (e.g. `openssl rand -hex 32`), the same on every gateway of a fleet",
                value.len()
            ),
        ));
    }
    Ok(Some(value))
}

/// The local store's secret: the environment's, else the one in the data directory under
/// `root`, created there on first use.
pub fn for_local_store(root: &Path) -> Result<String, ConfigError> {
    if let Some(s) = from_env()? {
        return Ok(s);
    }
    let field = "storage.local.root";
    let path = root.join(SECRET_FILE);
    if let Ok(s) = std::fs::read_to_string(&path) {
        if s.trim().len() >= MIN_SECRET_LEN {
            return Ok(s.trim().to_string());
        }
    }
    let secret = random_secret();
    write_private(&path, &secret)
        .map_err(|e| ConfigError::new(field, format!("cannot write {}: {e}", path.display())))?;
    Ok(secret)
}

/// The S3 mode's secret: the environment's, else a random one for this process only (relay
/// URLs then verify only on the gateway that minted them).
pub fn for_stateless_gateway() -> Result<String, ConfigError> {
    if let Some(s) = from_env()? {
        return Ok(s);
    }
    log::warn!(
        "{SECRET_ENV} is not set: relay URLs verify only on this process; set it on every gateway of a fleet"
    );
    Ok(random_secret())
}

fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    hex::encode(b)
}

/// Write `secret` with mode 0600, atomically (temp file, then rename).
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("{}", std::process::id()));
    std::fs::write(&tmp, secret)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_but_unfit_is_an_error_naming_the_variable() {
        let e = check_env_value(Some("short".into())).unwrap_err();
        assert_eq!(e.field, SECRET_ENV);
        assert!(e.message.contains("at least 32"), "{}", e.message);
        assert!(check_env_value(Some("".into())).is_err(), "set to empty is set");
        assert_eq!(check_env_value(None).unwrap(), None);
        let ok = "x".repeat(MIN_SECRET_LEN);
        assert_eq!(check_env_value(Some(ok.clone().into())).unwrap(), Some(ok));
    }

    #[test]
    fn local_secret_is_created_once() {
        if std::env::var_os(SECRET_ENV).is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let a = for_local_store(dir.path()).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(for_local_store(dir.path()).unwrap(), a);
    }
}
