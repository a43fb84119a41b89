//! What the headless-Chromium tests share: where their files are, the tools they need
//! (failing, never skipping, when one is missing), and the screenshot each run leaves.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

pub fn chromium_bin() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fail when node, one of the npm `modules` under tests/browser/node_modules, or Chromium
/// is missing, saying what to install; `test` names the test file for the message.
pub fn require_browser_tools(test: &str, modules: &[&str]) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        matches!(&node, Ok(o) if o.status.success()),
        "node is required for {test}: install Node.js >= 20 (e.g. apt-get install nodejs npm)"
    );
    for module in modules {
        assert!(
            browser_dir().join("node_modules").join(module).join("package.json").exists(),
            "tests/browser/node_modules/{module} is missing: run `npm ci` in tests/browser (no browser download needed)"
        );
    }
    assert!(
        chromium_bin().exists(),
        "{} is missing: install Chromium (e.g. apt-get install chromium) or set CHROMIUM_BIN",
        chromium_bin().display()
    );
}

/// The run's screenshot is a PNG; kept as `name` under `BROWSER_SCREENSHOT_DIR` when set.
pub fn check_screenshot(path: &Path, name: &str) {
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("screenshot {} missing ({e})", path.display()));
    assert!(
        png.len() > 1000 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "screenshot is not a PNG ({} bytes)",
        png.len()
    );
    if let Some(dir) = std::env::var_os("BROWSER_SCREENSHOT_DIR") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(path, Path::new(&dir).join(name));
    }
}
