//! Command line: run the gateway (`-c`, `-t`, `-d`, `-u`, `--listen`, `--origin`), or the
//! helper subcommands `sign` (like `aws s3 presign`) and `hash-key`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use time::OffsetDateTime;

use presign_gateway::sigv4::{percent_decode_str, Credentials, PresignRequest, Signer};
use presign_gateway::store::BaseUrl;

#[derive(Debug, Parser)]
#[command(
    name = "presign-gateway",
    version,
    about = "An upload edge on Pingora that mints SigV4 presigned URLs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The configuration file.
    #[arg(short = 'c', long = "conf", global = false)]
    pub conf: Option<PathBuf>,
    /// Test the configuration and exit.
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// Run in the background.
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// Take over the listening sockets of a running gateway (graceful upgrade).
    #[arg(short = 'u', long = "upgrade")]
    pub upgrade: bool,
    /// Values that win over the file's.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Command-line values that win over the configuration file's.
#[derive(Debug, clap::Args)]
pub struct Overrides {
    /// Override `listen` from the file.
    #[arg(long)]
    pub listen: Option<String>,
    /// Override `origin` from the file (one host:port).
    #[arg(long)]
    pub origin: Option<String>,
}

impl Overrides {
    /// Apply every override. Destructured, so a new flag breaks the build until it is
    /// handled here.
    pub fn apply(self, cfg: &mut presign_gateway::Config) {
        let Overrides { listen, origin } = self;
        if let Some(l) = listen {
            cfg.listen = l;
        }
        if let Some(o) = origin {
            cfg.origin = vec![o];
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a presigned URL. Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    /// and optionally AWS_SESSION_TOKEN, never from the command line.
    Sign(SignArgs),
    /// Print the SHA-256 form of an API key for `api_keys[].sha256` (reads stdin if no key given).
    HashKey { key: Option<String> },
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    #[arg(long, default_value = "GET")]
    pub method: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    #[arg(long, default_value = "s3")]
    pub service: String,
    /// Lifetime in seconds (1..=604800).
    #[arg(long, default_value_t = 900)]
    pub expires: u32,
    /// Signing time, e.g. 20130524T000000Z; defaults to now.
    #[arg(long)]
    pub time: Option<String>,
    /// Extra signed header, `name: value`; repeatable.
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// The object URL, e.g. https://examplebucket.s3.amazonaws.com/test.txt
    pub url: String,
}

/// Parse `20130524T000000Z`.
pub fn parse_amz_time(s: &str) -> Result<OffsetDateTime, String> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &fmt)
        .map(|t| t.assume_utc())
        .map_err(|e| format!("--time {s:?}: expected YYYYMMDDTHHMMSSZ ({e})"))
}

/// The `sign` subcommand, as a pure function of its arguments, credentials and clock.
pub fn sign(args: &SignArgs, creds: Credentials, now: OffsetDateTime) -> Result<String, String> {
    if !(1..=604_800).contains(&args.expires) {
        return Err("--expires must be between 1 and 604800".into());
    }
    let now = match &args.time {
        Some(t) => parse_amz_time(t)?,
        None => now,
    };
    let url = url::Url::parse(&args.url).map_err(|e| format!("URL {:?}: {e}", args.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("URL must be http or https".into());
    }
    if url.fragment().is_some() {
        return Err("URL must not carry a fragment".into());
    }
    // Decoded as botocore's parse_qs decodes them ('+' is a space); they keep their order.
    let query: Vec<(String, String)> =
        url.query_pairs().map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
    if let Some((n, _)) = query.iter().find(|(n, _)| n.starts_with("X-Amz-")) {
        return Err(format!("URL already carries {n}: pass the URL to sign, not a signed one"));
    }
    let query: Vec<(&str, &str)> = query.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let base = BaseUrl::from_url(&url).ok_or("URL has no host")?;
    let path = percent_decode_str(url.path()).ok_or("URL path has a bad %-escape")?;
    let owned = parse_headers(&args.headers)?;
    let headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let method = args.method.to_ascii_uppercase();
    let signer = Signer::new(creds, &args.region, &args.service);
    Ok(signer.presign_url_with_query(
        &PresignRequest {
            method: &method,
            scheme: &base.scheme,
            host: &base.authority,
            path: &path,
            expires_in: args.expires,
            headers: &headers,
        },
        &query,
        now,
    ))
}

/// `--header 'name: value'` pairs, names lowercased; `host` is always signed, never given.
fn parse_headers(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::with_capacity(raw.len());
    for h in raw {
        let (n, v) = h.split_once(':').ok_or_else(|| format!("--header {h:?}: expected 'name: value'"))?;
        let n = n.trim().to_ascii_lowercase();
        if n.is_empty() || n == "host" || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("--header {h:?}: bad header name"));
        }
        out.push((n, v.trim().to_string()));
    }
    Ok(out)
}

/// Credentials from the environment only.
pub fn credentials_from_env() -> Result<Credentials, String> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let id = get("AWS_ACCESS_KEY_ID").ok_or("AWS_ACCESS_KEY_ID is not set")?;
    let secret = get("AWS_SECRET_ACCESS_KEY").ok_or("AWS_SECRET_ACCESS_KEY is not set")?;
    Ok(Credentials::new(id, secret, get("AWS_SESSION_TOKEN")))
}
