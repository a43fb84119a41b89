//! boto3 as the reference for what AWS computes (`tests/boto3_reference.py`), run with the
//! given credentials and no session token. Without python3 and boto3 a test fails, never
//! skips.

/// What `boto3_reference.py ARGS...` printed.
pub fn boto3_reference(args: &[&str], access_key: &str, secret_key: &str) -> String {
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/boto3_reference.py"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("python3 with boto3 is required");
    assert!(out.status.success(), "boto3_reference.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("boto3_reference.py prints UTF-8")
}
