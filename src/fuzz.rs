//! What the property tests share: how many cases to run. CI runs a few thousand of each;
//! `PROPTEST_CASES=1000000 cargo test --lib proptest` runs them as long as you like.

use proptest::test_runner::Config;

/// Cases per property when `PROPTEST_CASES` is unset.
const DEFAULT_CASES: u32 = 2000;

pub fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    Config { cases, failure_persistence: None, ..Config::default() }
}
