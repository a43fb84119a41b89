#!/usr/bin/env bash
# CPU time per MB of memories' multipart upload, honest body against hostile body, on the
# release binary: `bash benches/multipart_cpu.sh [MB]` (default 100 MB, 3 runs of each).
# It reads the gateway's utime+stime (/proc/PID/stat) around each upload and its peak RSS
# (VmHWM) at the end. Loopback only; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-100}
RUNS=${RUNS:-3}
BIN=target/release/presign-gateway
[ -x "$BIN" ] || cargo build --release --bin presign-gateway
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$DIR/gw.yaml" <<YAML
listen: 127.0.0.1:$PORT
origin: [127.0.0.1:9]
threads: 2
api_keys:
  - { id: demo, sha256: c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c, user_id: 12 }
storage:
  local: { root: $DIR/data, public_path: /files, max_upload_bytes: 209715200 }
YAML
RUST_LOG=warn "$BIN" -c "$DIR/gw.yaml" 2> "$DIR/gw.log" &
GW=$!
trap 'kill $GW 2>/dev/null; wait $GW 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done

B=----benchBoundary0123456789abcdef
python3 - "$DIR" "$MB" "$B" <<'PY'
import os, sys
d, mb, b = sys.argv[1], int(sys.argv[2]), sys.argv[3]
head = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.mp4\"\r\n"
        f"Content-Type: video/mp4\r\n\r\n").encode()
tail = f"\r\n--{b}--\r\n".encode()
n = mb * 1_000_000
near = f"\r\n--{b[:-1]}".encode()
with open(f"{d}/honest.body", "wb") as f:
    f.write(head)
    left = n
    while left:
        k = min(left, 1 << 20); f.write(os.urandom(k)); left -= k
    f.write(tail)
with open(f"{d}/hostile.body", "wb") as f:
    f.write(head)
    block = near * ((1 << 20) // len(near))
    left = n
    while left:
        k = min(left, len(block)); f.write(block[:k]); left -= k
    f.write(tail)
PY

ticks() { awk '{print $14 + $15}' "/proc/$GW/stat"; }
HZ=$(getconf CLK_TCK)
upload() {
  local url
  url=$(curl -s -X POST "http://127.0.0.1:$PORT/serve/api/v2/upload/signed-url" -H 'Authorization: demo-key' \
    -d '{"original_filename":"v.mp4"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["signed_url"])')
  curl -s -o /dev/null -w '%{http_code}' -X POST "$url" -H "Content-Type: multipart/form-data; boundary=$B" \
    --data-binary @"$DIR/$1.body"
}
for kind in honest hostile; do
  total=0
  for _ in $(seq "$RUNS"); do
    t0=$(ticks)
    code=$(upload $kind)
    t1=$(ticks)
    [ "$code" = 204 ] || { echo "$kind upload: HTTP $code" >&2; exit 1; }
    total=$((total + t1 - t0))
    rm -rf "$DIR/data/objects"
  done
  python3 -c "print(f'$kind: {($total / $HZ) * 1000 / ($RUNS * $MB):.2f} ms CPU per MB ({$RUNS} x $MB MB, {$total} ticks)')"
done
grep VmHWM "/proc/$GW/status"
