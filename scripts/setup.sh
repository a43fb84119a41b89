#!/usr/bin/env bash
# Install whatever this machine lacks for building and testing presign-gateway.
# Usage: scripts/setup.sh [run|test]   (run: only what building needs)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
# Pingora's zlib-ng build needs cmake.
command -v cmake >/dev/null || { echo "installing cmake"; apt_install cmake; }
[ "$what" = run ] && exit 0

command -v python3 >/dev/null || apt_install python3 python3-pip
python3 -c 'import botocore, boto3' 2>/dev/null || { echo "installing boto3"; python3 -m pip install -q boto3 || python3 -m pip install -q --break-system-packages boto3; }
python3 -c 'import requests' 2>/dev/null || { echo "installing requests"; python3 -m pip install -q requests || python3 -m pip install -q --break-system-packages requests; }
if ! command -v s3s-fs >/dev/null && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "installing s3s-fs (about 2 minutes)"
  cargo install s3s-fs@0.14.1 --features binary --locked
fi
# The shared rate-limit tests start a real redis-server (Debian's); the distro's own service
# is not used.
command -v redis-server >/dev/null || { echo "installing redis-server"; apt_install redis-server; }
# The fleet tier (tests/fleet.rs) runs a real 3-node Garage: about 15 minutes to build, once.
if ! command -v garage >/dev/null && [ ! -x "$HOME/.cargo/bin/garage" ]; then
  echo "installing garage 2.5.0 (about 15 minutes, once)"
  cargo install garage@2.5.0 --locked
fi
[ -x /usr/bin/chromium ] || { echo "installing chromium"; apt_install chromium; }
command -v node >/dev/null || apt_install nodejs npm
if [ -f tests/browser/package.json ] && { [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/uppy ]; }; then
  echo "installing playwright-core and uppy (npm; the driver uses /usr/bin/chromium)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
