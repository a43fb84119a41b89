#!/usr/bin/env bash
# Scale figures for README "Scaling out", loopback only, on a release build:
#
#   bash benches/fleet.sh
#
# 1. Mint: one gateway process on one thread, then two such processes side by side, each
#    driven by its own wrk. Total mints/s and CPU µs per mint (the gateways' utime+stime over
#    the run, /proc/PID/stat, divided by the mints answered).
# 2. Pass-through through a store front (a gateway whose origin pool is N origins, 1 thread):
#    GET of a 1 KiB object with 1, 2 and 3 origins (examples/origin): req/s and CPU µs/req.
# 3. CPU per MB of pass-through: FLEET_PUT_MB [1024] MB PUT through the store front to a
#    receiver that reads it all, the store front's CPU ms per MB.
# Environment: FLEET_SECS [8] per run, FLEET_CONNS [32] wrk connections, FLEET_BUILD [1].
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FLEET_SECS:-8}
CONNS=${FLEET_CONNS:-32}
PUT_MB=${FLEET_PUT_MB:-1024}
REL=${CARGO_TARGET_DIR:-target}/release
log() { echo "[fleet] $*" >&2; }
die() { log "error: $*"; exit 1; }

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "${FLEET_BUILD:-1}" = 1 ] && cargo build --release --bin presign-gateway --example origin >&2

TMP=$(mktemp -d -t presign-fleet.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port pid
    local deadline=$((SECONDS + 30))
    until port_open "$1"; do
        kill -0 "$2" 2>/dev/null || die "process for port $1 exited (logs in $TMP)"
        [ "$SECONDS" -lt "$deadline" ] || die "nothing listens on $1"
        sleep 0.02
    done
}
ticks() { # pid...: utime+stime clock ticks summed
    local p st f t=0
    for p in "$@"; do
        st=$(<"/proc/$p/stat"); read -r -a f <<<"${st##*) }"
        t=$((t + f[11] + f[12]))
    done
    echo "$t"
}
HZ=$(getconf CLK_TCK)

start_origin() { # sets LAST_PORT
    local port; port=$(free_port)
    "$REL/examples/origin" "127.0.0.1:$port" >"$TMP/origin-$port.log" 2>&1 &
    PIDS+=($!); wait_port "$port" $!
    LAST_PORT=$port
}

start_gateway() { # name origins-yaml: sets LAST_PORT LAST_PID
    local name=$1 port; port=$(free_port)
    mkdir -p "$TMP/$name"
    cat >"$TMP/$name.yaml" <<YAML
listen: 127.0.0.1:$port
origin: $2
threads: 1
api_keys:
  - id: demo
    sha256: c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c
    user_id: 12
storage:
  local:
    root: $TMP/$name/data
    public_path: /files
    max_upload_bytes: $((PUT_MB * 1048576 + 1))
server:
  pid_file: $TMP/$name.pid
  upgrade_sock: $TMP/$name.sock
  work_stealing: false
YAML
    RUST_LOG=error "$REL/presign-gateway" -c "$TMP/$name.yaml" >"$TMP/$name.log" 2>&1 &
    LAST_PID=$!; PIDS+=($LAST_PID)
    wait_port "$port" "$LAST_PID"
    LAST_PORT=$port
}

cat >"$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"filename":"cover.png","content_type":"image/png","file_size":524288}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-key"
LUA

# wrk_runs "pids" url [lua] [url2]: one wrk per url, in parallel; prints "reqs ticks"
wrk_runs() {
    local pids=$1 lua=$2; shift 2
    local t0 t1 i=0 w=() total=0
    # shellcheck disable=SC2086
    t0=$(ticks $pids)
    for url in "$@"; do
        wrk -t1 -c"$CONNS" -d"${SECS}s" ${lua:+-s "$lua"} "$url" >"$TMP/wrk-$i.txt" 2>&1 &
        w+=($!); i=$((i + 1))
    done
    for p in "${w[@]}"; do wait "$p"; done
    # shellcheck disable=SC2086
    t1=$(ticks $pids)
    for ((j = 0; j < i; j++)); do
        n=$(awk '/ requests in / {print $1}' "$TMP/wrk-$j.txt")
        bad=$(awk '/Non-2xx/ {print $NF}' "$TMP/wrk-$j.txt")
        [ -z "$bad" ] || die "wrk $j: $bad non-2xx answers"
        total=$((total + n))
    done
    echo "$total $((t1 - t0))"
}

report() { # label reqs ticks
    awk -v l="$1" -v n="$2" -v t="$3" -v s="$SECS" -v hz="$HZ" \
        'BEGIN { printf "| %s | %d | %.1f |\n", l, n / s, (t / hz) * 1e6 / n }'
}

start_origin; O1=$LAST_PORT
start_origin; O2=$LAST_PORT
start_origin; O3=$LAST_PORT

echo "wrk -t1 -c$CONNS -d${SECS}s per driver; $(nproc) cores; gateways on 1 thread each"
echo
echo "| run | req/s | CPU µs per request (gateways) |"
echo "|---|---:|---:|"

start_gateway m1 "[127.0.0.1:$O1]"; M1=$LAST_PORT; M1P=$LAST_PID
read -r n t <<<"$(wrk_runs "$M1P" "$TMP/post.lua" "http://127.0.0.1:$M1/api/v1/files/upload-url")"
report "mint, 1 gateway process" "$n" "$t"
start_gateway m2 "[127.0.0.1:$O1]"; M2=$LAST_PORT; M2P=$LAST_PID
read -r n t <<<"$(wrk_runs "$M1P $M2P" "$TMP/post.lua" "http://127.0.0.1:$M1/api/v1/files/upload-url" "http://127.0.0.1:$M2/api/v1/files/upload-url")"
report "mint, 2 gateway processes (2 wrk)" "$n" "$t"
kill "$M1P" "$M2P"

for origins in "[127.0.0.1:$O1]" "[127.0.0.1:$O1, 127.0.0.1:$O2]" "[127.0.0.1:$O1, 127.0.0.1:$O2, 127.0.0.1:$O3]"; do
    start_gateway "sf$RANDOM" "$origins"; SF=$LAST_PORT; SFP=$LAST_PID
    read -r n t <<<"$(wrk_runs "$SFP" "" "http://127.0.0.1:$SF/media/page.html")"
    count=$(awk -F, '{print NF}' <<<"$origins")
    report "store front GET 1 KiB, $count origin(s)" "$n" "$t"
    kill "$SFP"
done

# CPU per MB: a PUT through the store front to a receiver that reads every byte and then
# answers (nginx's `return` answers before the body, and the proxy would stop sending it).
NG=$(free_port)
python3 - "$NG" >"$TMP/sink.log" 2>&1 <<'PY' &
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(64)
def serve(c):
    f = c.makefile("rb"); buf = bytearray(1 << 20)
    while True:
        n, line = 0, f.readline()
        if not line: return
        while True:
            h = f.readline()
            if h in (b"\r\n", b""): break
            if h.lower().startswith(b"content-length:"): n = int(h.split(b":")[1])
        while n > 0:
            k = f.readinto(memoryview(buf)[: min(n, len(buf))])
            if not k: return
            n -= k
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
while True:
    c, _ = srv.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
PIDS+=($!); wait_port "$NG" $!
start_gateway sfput "[127.0.0.1:$NG]"; SF=$LAST_PORT; SFP=$LAST_PID
head -c $((PUT_MB * 1048576)) /dev/zero >"$TMP/body"
t0=$(ticks "$SFP"); s0=$(date +%s.%N)
code=$(curl -s -o /dev/null -w '%{http_code}' -T "$TMP/body" "http://127.0.0.1:$SF/media/big.bin")
s1=$(date +%s.%N); t1=$(ticks "$SFP")
[ "$code" = 200 ] || die "PUT through the store front: HTTP $code"
echo
awk -v mb="$PUT_MB" -v t=$((t1 - t0)) -v hz="$HZ" -v s0="$s0" -v s1="$s1" \
    'BEGIN { printf "store front PUT %d MB: %.0f MB/s, %.2f CPU ms per MB\n", mb, mb / (s1 - s0), (t / hz) * 1000 / mb }'
