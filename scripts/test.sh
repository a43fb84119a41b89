#!/usr/bin/env bash
# Run the whole test suite: installs what is missing, then `cargo test` (unit, integration,
# s3s-fs, botocore cross-check, headless Chromium, examples).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$HOME/.cargo/bin:$PATH"
# Plain `cargo test` also builds the examples as binaries (tests/embed.rs runs one) and runs doc tests.
cargo test "$@"
