//! The binary's command line: shipped configs load, `-t` checks, bad configs name the field,
//! `sign` matches the S3 documentation example, `hash-key` matches the config's hashes.

mod common;

use std::process::Command;

use common::*;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_configs_load_and_validate() {
    for name in ["gateway.yaml", "s3s-fs.yaml"] {
        let cfg = presign_gateway::Config::load(&root().join("conf").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!cfg.routes.api_keys.is_empty(), "{name}");
        assert_eq!(cfg.routes.api_keys[0].sha256, DEMO_KEY_SHA256, "{name}: the demo key");
    }
    let routes = presign_gateway::RoutesConfig::load(&root().join("conf/embed-routes.yaml"))
        .unwrap_or_else(|e| panic!("embed-routes.yaml: {e}"));
    assert_eq!(routes.api_keys[0].sha256, DEMO_KEY_SHA256, "embed-routes.yaml: the demo key");
    // `-t` checks everything (the store's environment included) and exits 0.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .current_dir(dir.path())
        .arg("-c")
        .arg(root().join("conf/gateway.yaml"))
        .arg("-t")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(bin())
        .current_dir(dir.path())
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .arg("-c")
        .arg(root().join("conf/s3s-fs.yaml"))
        .arg("-t")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `-t` only checks: no data directory, no secret file, nothing written.
#[test]
fn config_check_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .current_dir(dir.path())
        .env_remove("PRESIGN_GATEWAY_SECRET")
        .args(["-c", root().join("conf/gateway.yaml").to_str().unwrap(), "-t"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "-t wrote {left:?}");
}

/// A secret that is set but too short is refused at startup, naming the variable, in both
/// store modes (a fleet must never sign with different keys without a word).
#[test]
fn unfit_gateway_secret_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    for (conf, extra_env) in [("conf/gateway.yaml", false), ("conf/s3s-fs.yaml", true)] {
        let mut cmd = Command::new(bin());
        cmd.current_dir(dir.path()).env("PRESIGN_GATEWAY_SECRET", "too-short");
        if extra_env {
            cmd.env("AWS_ACCESS_KEY_ID", "x").env("AWS_SECRET_ACCESS_KEY", "y");
        }
        let out = cmd.args(["-c", root().join(conf).to_str().unwrap(), "-t"]).output().unwrap();
        assert!(!out.status.success(), "{conf}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("`PRESIGN_GATEWAY_SECRET`") && err.contains("at least 32"), "{conf}: {err}");
    }
}

/// One start-up line says where it listens, which store it uses and which dialects are on.
#[test]
fn startup_line_names_listener_store_and_dialects() {
    let gw = Gateway::start(GatewayOpts { no_rust_log: true, ..Default::default() });
    let log = gw.log();
    let line =
        log.lines().find(|l| l.contains("listening on")).unwrap_or_else(|| panic!("no start line in {log}"));
    assert!(line.contains(&gw.addr.to_string()), "{line}");
    assert!(line.contains("local store at") && line.contains(gw.data_dir().to_str().unwrap()), "{line}");
    assert!(line.contains("dialects: apimall, octopusx, memories, ctxfy"), "{line}");
}

#[test]
fn bad_configs_fail_at_startup_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("listen: nope\nstorage:\n  local:\n    root: d\n", "`listen`"),
        ("listen: 127.0.0.1:1\nstorage:\n  local:\n    root: d\n    public_path: files\n", "storage.local.public_path"),
        ("listen: 127.0.0.1:1\nstorage:\n  local:\n    root: d\ncors:\n  allowed_origins: ['*']\n", "cors.allowed_origins[0]"),
        ("listen: 127.0.0.1:1\nstorage: {}\n", "exactly one of"),
        ("listen: 127.0.0.1:1\nstorage:\n  local:\n    root: d\ntypo: 1\n", "typo"),
        (
            "listen: 127.0.0.1:1\nstorage:\n  s3:\n    endpoint: http://127.0.0.1:1\n    region: r\n    bucket: b\n    access_key_id_env: SURELY_UNSET_VAR_X\n",
            "storage.s3.access_key_id_env",
        ),
    ];
    for (yaml, needle) in cases {
        let conf = dir.path().join("c.yaml");
        std::fs::write(&conf, yaml).unwrap();
        let out =
            Command::new(bin()).current_dir(dir.path()).arg("-c").arg(&conf).arg("-t").output().unwrap();
        assert!(!out.status.success(), "{yaml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    // A bad override is refused too.
    let out = Command::new(bin())
        .current_dir(dir.path())
        .args(["-c", root().join("conf/gateway.yaml").to_str().unwrap(), "-t", "--listen", "bogus"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`listen`"));
}

#[test]
fn sign_matches_the_s3_documentation_example() {
    let out = Command::new(bin())
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        .env_remove("AWS_SESSION_TOKEN")
        .args([
            "sign",
            "--time",
            "20130524T000000Z",
            "--expires",
            "86400",
            "https://examplebucket.s3.amazonaws.com/test.txt",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        url.trim(),
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    // Without credentials in the environment: a clear error, no URL.
    let out = Command::new(bin())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["sign", "https://b.example/k"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AWS_ACCESS_KEY_ID"));
}

#[test]
fn sign_with_headers_and_method_verifies() {
    let out = Command::new(bin())
        .env("AWS_ACCESS_KEY_ID", "AKID")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .args([
            "sign",
            "--method",
            "PUT",
            "--header",
            "Content-Type: image/png",
            "--region",
            "eu-west-1",
            "http://127.0.0.1:9000/b/a%20b.png",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    let u = url::Url::parse(url.trim()).unwrap();
    assert_eq!(u.path(), "/b/a%20b.png");
    assert!(url.contains("X-Amz-SignedHeaders=content-type%3Bhost"), "{url}");
    assert!(url.contains("%2Feu-west-1%2Fs3%2F"), "{url}");
    // Our verifier accepts it for the same method and type, and refuses another type.
    use presign_gateway::sigv4::{verify_presigned, Credentials, PresignedRequest, Signer};
    let signer = Signer::new(Credentials::new("AKID", "secret", None), "eu-west-1", "s3");
    let mut h = http::HeaderMap::new();
    h.insert("host", "127.0.0.1:9000".parse().unwrap());
    h.insert("content-type", "image/png".parse().unwrap());
    let req =
        PresignedRequest { method: "PUT", raw_path: u.path(), raw_query: u.query().unwrap(), headers: &h };
    assert!(verify_presigned(&signer, &req, time::OffsetDateTime::now_utc()).is_ok());
    h.insert("content-type", "image/jpeg".parse().unwrap());
    let req =
        PresignedRequest { method: "PUT", raw_path: u.path(), raw_query: u.query().unwrap(), headers: &h };
    assert!(verify_presigned(&signer, &req, time::OffsetDateTime::now_utc()).is_err());
}

#[test]
fn hash_key_prints_the_config_hash() {
    let out = Command::new(bin()).args(["hash-key", DEMO_KEY]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), DEMO_KEY_SHA256);
    use std::io::Write;
    let mut child = Command::new(bin())
        .arg("hash-key")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"demo-key\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), DEMO_KEY_SHA256);
}
