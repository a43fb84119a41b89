#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable where req/s and even
# CPU time are noise on a shared machine. User-space only (the kernel's send/recv is not
# counted), so it measures exactly what the gateway's own code can change.
#
# Usage: bash benches/instructions.sh [N]        (N requests per target, default 2000)
#   INSTR_TARGETS   mint,delegated,bare,gw,bareproxy (default: all five; delegated is mint in
#                   delegated-auth mode with a warm cache)
#   INSTR_BIN       directory of release binaries (default target/release; built if missing)
#   INSTR_GATEWAY   another presign-gateway binary to measure instead (e.g. an older build)
#
# Each server runs with 1 thread under callgrind with instrumentation off; after a warm-up,
# instrumentation is switched on, N requests are sent over one keep-alive connection, the
# counters are dumped, and the total is divided by N. Everything is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
WARM=200
TARGETS=${INSTR_TARGETS:-mint,delegated,bare,gw,bareproxy}
BIN=${INSTR_BIN:-target/release}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
if [ ! -x "$BIN/presign-gateway" ] || [ ! -x "$BIN/examples/bare" ] || [ ! -x "$BIN/examples/origin" ]; then
    cargo build --release --bin presign-gateway --example bare --example origin
fi
GATEWAY=${INSTR_GATEWAY:-$BIN/presign-gateway}
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
if [ -n "${INSTR_KEEP:-}" ]; then trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; echo "kept $TMP"' EXIT; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port pid: until something accepts on the port (the process must stay alive)
    for _ in $(seq 1 600); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "process for port $1 exited" >&2; return 1; }
        read -rt 0.1 <> <(:) || true
    done
    echo "nothing on port $1" >&2; return 1
}

ORIGIN_PORT=$(free_port)
"$BIN/examples/origin" "127.0.0.1:$ORIGIN_PORT" >"$TMP/origin.log" 2>&1 &
PIDS+=($!); wait_port "$ORIGIN_PORT" $!

# The application's auth endpoint for the delegated target: demo-key is user 12.
AUTH_PORT=
start_auth_app() {
    AUTH_PORT=$(free_port)
    python3 benches/auth_app.py "$AUTH_PORT" >"$TMP/auth.log" 2>&1 &
    PIDS+=($!); wait_port "$AUTH_PORT" $!
}

gateway_conf() { # port [delegated]
    local auth="api_keys:
  - id: demo
    sha256: c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c
    user_id: 12"
    [ "${2:-}" = delegated ] && auth="auth:
  delegated:
    url: http://127.0.0.1:$AUTH_PORT/auth
    cache_ttl_secs: 3600
    negative_cache_ttl_secs: 60"
    cat <<YAML
listen: 127.0.0.1:$1
origin: [127.0.0.1:$ORIGIN_PORT]
threads: 1
$auth
storage:
  local:
    root: $TMP/data
    public_path: /files
server:
  pid_file: $TMP/gw-$1.pid
  upgrade_sock: $TMP/gw-$1.sock
  work_stealing: false
YAML
}

# Send requests over one connection: client METHOD PORT PATH COUNT
client() {
    python3 - "$@" <<'PY'
import http.client, sys
method, port, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
body = b'{"filename":"cover.png","content_type":"image/png","file_size":524288,"expires_in":900}'
c = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Authorization": "Bearer demo-key", "Content-Type": "application/json"}
for _ in range(n):
    if method == "POST":
        c.request("POST", path, body=body, headers=headers)
    else:
        c.request("GET", path)
    r = c.getresponse(); r.read()
    if r.status not in (200,):
        sys.exit(f"{method} {path}: status {r.status}")
PY
}

server_cmd() { # target port: the command line of the server under test
    case $1 in
        mint | gw)
            gateway_conf "$2" >"$TMP/gw-$2.yaml"
            echo "$GATEWAY -c $TMP/gw-$2.yaml" ;;
        delegated)
            gateway_conf "$2" delegated >"$TMP/gw-$2.yaml"
            echo "$GATEWAY -c $TMP/gw-$2.yaml" ;;
        bare | bareproxy) echo "$BIN/examples/bare 127.0.0.1:$2 1" ;;
        *) echo "unknown target $1" >&2; return 2 ;;
    esac
}

measure() { # target method path
    local name=$1 method=$2 path=$3 port pid total
    port=$(free_port)
    local out="$TMP/$name.callgrind"
    # shellcheck disable=SC2046 # the command line is split on purpose
    # The environment goes to valgrind itself: it does not follow an exec of the server.
    local envs=(BARE_WORK_STEALING=false RUST_LOG=error)
    [ "$name" = bareproxy ] && envs+=("BARE_PROXY=127.0.0.1:$ORIGIN_PORT")
    env "${envs[@]}" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        $(server_cmd "$name" "$port") >"$TMP/$name.log" 2>&1 &
    pid=$!; PIDS+=("$pid")
    wait_port "$port" "$pid"
    client "$method" "$port" "$path" "$WARM"
    callgrind_control -i on "$pid" >/dev/null
    client "$method" "$port" "$path" "$N"
    callgrind_control -d "$pid" >/dev/null
    callgrind_control -i off "$pid" >/dev/null
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    total=$(awk '/^summary:/ {print $2; exit}' "$out.1")
    # valgrind hides SHA-NI, so SHA-256 runs in software here (about 3,500 instructions a
    # block, a few hundred cycles on real hardware): reported apart, and left out of the ratio.
    sha=$(callgrind_annotate --inclusive=no --threshold=100 "$out.1" 2>/dev/null \
        | awk '/compress256/ {gsub(",", "", $1); s+=$1} END {print s+0}')
    printf '%-10s %10.0f instructions/request (%6.0f of them SHA-256 compression)\n' "$name" \
        "$(echo "$total / $N" | bc -l)" "$(echo "$sha / $N" | bc -l)"
    echo "$name $(echo "($total - $sha) / $N" | bc -l)" >>"$TMP/results"
}

mkdir -p "$TMP/data"
case ",$TARGETS," in *,delegated,*) start_auth_app ;; esac
for t in ${TARGETS//,/ }; do
    case $t in
        mint | delegated | bare) measure "$t" POST /api/v1/files/upload-url ;;
        gw | bareproxy) measure "$t" GET /static/page.html ;;
        *) echo "unknown target $t" >&2; exit 2 ;;
    esac
done
awk '{v[$1]=$2} END {
    if (v["delegated"] && v["mint"]) printf "delegated / mint: %.3fx instructions without SHA-256 (delegated - mint: %.0f)\n", v["delegated"]/v["mint"], v["delegated"]-v["mint"];
    if (v["mint"] && v["bare"]) printf "mint / bare: %.2fx instructions without SHA-256 (mint - bare: %.0f)\n", v["mint"]/v["bare"], v["mint"]-v["bare"];
    if (v["gw"] && v["bareproxy"]) printf "pass-through gateway / bare proxy: %.3fx instructions\n", v["gw"]/v["bareproxy"];
}' "$TMP/results"
