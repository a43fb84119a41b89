//! A real `s3s-fs` server with bucket `media`, started on a fresh port (retried if another
//! process takes it first) and killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::ports::start_listening;

pub const S3_ACCESS_KEY: &str = "AKIDTESTGATEWAY";
pub const S3_SECRET_KEY: &str = "test-secret-key-for-s3s-fs-0123456789";

/// A running s3s-fs.
pub struct S3sFs {
    pub child: Child,
    pub port: u16,
    /// The served root: one directory per bucket.
    pub root: tempfile::TempDir,
    /// Holds `s3s-fs.log` (its stderr), outside the served root.
    pub log_dir: tempfile::TempDir,
}

/// Where s3s-fs is installed (PATH or ~/.cargo/bin); tests fail clearly without it.
pub fn s3s_fs_bin() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = Path::new(&home).join(".cargo/bin/s3s-fs");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    PathBuf::from("s3s-fs")
}

impl S3sFs {
    pub fn start() -> S3sFs {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("media")).expect("bucket dir");
        let log_dir = tempfile::tempdir().expect("tempdir");
        let log = log_dir.path().join("s3s-fs.log");
        let spawn = |ports: &[u16]| {
            Command::new(s3s_fs_bin())
                .args(["--host", "127.0.0.1", "--port", &ports[0].to_string()])
                .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
                .arg(root.path())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("s3s-fs log"))
                .spawn()
                .expect("s3s-fs must be installed: cargo install s3s-fs@0.14.1 --features binary --locked")
        };
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let (child, ports) = start_listening("s3s-fs", 1, spawn, read_log);
        S3sFs { child, port: ports[0], root, log_dir }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `storage:` YAML for a gateway using this server.
    pub fn storage_yaml(&self) -> String {
        format!(
            "  s3:\n    endpoint: {}\n    region: us-east-1\n    bucket: media\n    addressing: path\n    access_key_id_env: TEST_S3_AKID\n    secret_access_key_env: TEST_S3_SECRET\n",
            self.endpoint()
        )
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![("TEST_S3_AKID".into(), S3_ACCESS_KEY.into()), ("TEST_S3_SECRET".into(), S3_SECRET_KEY.into())]
    }

    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.path().join("media").join(key)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
