#!/usr/bin/env bash
# Run the gateway on the embedded default (its own store under ./data, demo key "demo-key").
# Extra arguments go to the gateway, e.g. scripts/run.sh --listen 127.0.0.1:9090
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
cargo build --release --bin presign-gateway
exec "${CARGO_TARGET_DIR:-target}/release/presign-gateway" -c conf/gateway.yaml "$@"
