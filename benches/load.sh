#!/usr/bin/env bash
# Load harness for presign-gateway, loopback only. From a fresh clone:
#
#   bash benches/load.sh            # table on stdout, JSON and chart under target/load/
#   bash benches/load.sh --help     # options and environment variables
#
# Layout: settings and argument parsing, then one function per job (tools, build, servers,
# measuring one target, reports, JSON, chart, uploads), then `main` at the bottom.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    cat <<'EOF'
Usage: bash benches/load.sh [--json FILE] [--chart FILE] [--no-chart] [--help]

Load harness for presign-gateway. From a fresh clone it installs what is missing (wrk, nginx,
cmake, curl, python3 with apt-get; matplotlib with pip into a venv under the target dir, for
the chart), builds release, and starts everything on 127.0.0.1 only:
  origin     a fixed 1 KiB keep-alive origin (examples/origin.rs, 1 thread, whole run)
  gateway    presign-gateway (local store in a temp dir, demo key)
  bare       a bare Pingora responder (examples/bare.rs)
  bareproxy  the same binary as a bare Pingora proxy to the origin (BARE_PROXY)
  nginx      nginx with a keep-alive upstream to the same origin
The last four are started afresh for each server thread count in LOAD_THREADS (Pingora
threads = nginx worker_processes). Each target is driven by wrk (warm-up, then a measured run):
  mint       POST /api/v1/files/upload-url on the gateway (Bearer demo-key, JSON body)
  delegated  the same mint on a second gateway in delegated-auth mode, its cache warm (the
             application's auth endpoint is a small Python server, asked once per TTL)
  shared     the same mint on a third gateway whose rate limit is shared on a real
             redis-server (Unix socket; one Lua round trip per mint, the limit set high
             enough never to refuse)
  bare       the same POST on the bare responder (the floor for mint)
  gw         GET pass-through via the gateway to the origin
  bareproxy  GET pass-through via the bare Pingora proxy (the framework's floor for gw)
  nginx      GET pass-through via nginx
  origin     GET on the origin directly (the ceiling for the proxies)

For each target and thread count it prints req/s, p50, p99 and the CPU time per request of
the server under test: user, sys and total microseconds, from utime and stime in
/proc/PID/stat (clock ticks, getconf CLK_TCK) summed over the server's processes (nginx:
master and workers) across the measured run, divided by the requests wrk completed. Then the
ratios mint/bare, gw/bareproxy, gw/nginx and bareproxy/nginx (req/s, p99, CPU per request),
how each target scales across thread counts, and concurrent uploads through the gateway
(MB/s and peak RSS). On a shared machine req/s is noisy; CPU per request is much less so.
Everything it starts is stopped on exit, also on Ctrl-C.

Options:
  --json FILE   write the results as JSON (default: $CARGO_TARGET_DIR/load/load.json,
                CARGO_TARGET_DIR defaulting to target)
  --chart FILE  draw the chart to FILE, PNG or SVG by extension (default: the JSON path
                with .png for .json); `python3 benches/plot.py RESULTS.json OUT.png` redraws it
  --no-chart    no chart (and no matplotlib install)
  -h, --help    this text

Environment (default in brackets):
  LOAD_SECS [10]           seconds of each measured wrk run
  LOAD_WARMUP [2]          seconds of wrk warm-up before each measured run (0: none)
  LOAD_CONNS [32]          wrk connections
  LOAD_WRK_THREADS [1]     wrk threads
  LOAD_THREADS [1]         server thread counts, comma-separated (e.g. 1,2): gateway and bare
                           threads, nginx worker_processes; every target runs at each
  LOAD_TARGETS [mint,delegated,shared,params,signpart,bare,gw,bareproxy,nginx,origin]   targets, in run order
                           (params: Companion's GET /s3/params, a presigned POST policy;
                           signpart: GET /s3/multipart/{id}/{n}, a presigned UploadPart URL)
  LOAD_WORK_STEALING [false]  Pingora work_stealing for the gateway and bare
  LOAD_GW_SERVER []        extra YAML lines for the gateway's `server:` block
  LOAD_PIN [0]             1: pin wrk to cpu 1 and the servers under test to cpu 0 (taskset)
  LOAD_UPLOADS [1]         0 skips the upload test (run once, at the first thread count)
  LOAD_UPLOAD_COUNT [10]   concurrent uploads
  LOAD_UPLOAD_MB [100]     size of each upload, MB
  LOAD_MULTIPART_MB [1024] one multipart upload of this size to the local store, in
                           LOAD_MULTIPART_PARTS [4] parts PUT in parallel, against dd
                           conv=fsync of the same size on the same disk (0: skip)
  LOAD_BUILD [1]           0 skips cargo build (binaries must exist)
  LOAD_KEEP [0]            1 keeps the temp dir (configs, logs, raw wrk output)
  CARGO_TARGET_DIR [target]  where cargo builds, and where results go by default
  RUST_LOG [warn]          gateway log level
EOF
}

log() { echo "[load] $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- settings -----------------------------------------------------------------------------
SECS=${LOAD_SECS:-10}
WARMUP=${LOAD_WARMUP:-2}
CONNS=${LOAD_CONNS:-32}
WRK_THREADS=${LOAD_WRK_THREADS:-1}
THREADS=${LOAD_THREADS:-1}
TARGETS=${LOAD_TARGETS:-mint,delegated,shared,params,signpart,bare,gw,bareproxy,nginx,origin}
MULTIPART_MB=${LOAD_MULTIPART_MB:-1024}
MULTIPART_PARTS=${LOAD_MULTIPART_PARTS:-4}
UPLOADS=${LOAD_UPLOADS:-1}
UPLOAD_COUNT=${LOAD_UPLOAD_COUNT:-10}
UPLOAD_MB=${LOAD_UPLOAD_MB:-100}
PIN=${LOAD_PIN:-0}
WORK_STEALING=${LOAD_WORK_STEALING:-false}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
REL=$TARGET_DIR/release
JSON_OUT=
CHART_OUT=
CHART=1

parse_args() {
    while [ $# -gt 0 ]; do
        case $1 in
            --json) [ $# -ge 2 ] || die "--json needs a file"; JSON_OUT=$2; shift 2 ;;
            --json=*) JSON_OUT=${1#--json=}; shift ;;
            --chart) [ $# -ge 2 ] || die "--chart needs a file"; CHART_OUT=$2; shift 2 ;;
            --chart=*) CHART_OUT=${1#--chart=}; shift ;;
            --no-chart) CHART=0; shift ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
    JSON_OUT=${JSON_OUT:-$TARGET_DIR/load/load.json}
    CHART_OUT=${CHART_OUT:-${JSON_OUT%.json}.png}
}

validate_settings() {
    local v
    for v in SECS CONNS WRK_THREADS UPLOAD_COUNT UPLOAD_MB MULTIPART_PARTS; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "LOAD_$v must be a positive integer, not '${!v}'"
    done
    [[ $WARMUP =~ ^[0-9]+$ ]] || die "LOAD_WARMUP must be a whole number, not '$WARMUP'"
    [[ $MULTIPART_MB =~ ^[0-9]+$ ]] || die "LOAD_MULTIPART_MB must be a whole number, not '$MULTIPART_MB'"
    IFS=, read -r -a THREAD_LIST <<<"$THREADS"
    [ ${#THREAD_LIST[@]} -gt 0 ] || die "LOAD_THREADS is empty"
    for v in "${THREAD_LIST[@]}"; do
        [[ $v =~ ^[1-9][0-9]*$ ]] || die "LOAD_THREADS must list positive integers, not '$THREADS'"
    done
    IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
    for v in "${TARGET_LIST[@]}"; do
        case $v in mint | delegated | shared | params | signpart | bare | gw | bareproxy | nginx | origin) ;; *) die "unknown target '$v'" ;; esac
    done
    case $WORK_STEALING in true | false) ;; *) die "LOAD_WORK_STEALING must be true or false" ;; esac
}

# --- tools and build ----------------------------------------------------------------------
NGINX=
install_tools() {
    NGINX=$(command -v nginx || true)
    [ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    [ -n "$NGINX" ] || missing+=(nginx)
    command -v cmake >/dev/null || missing+=(cmake)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    [ ${#missing[@]} -eq 0 ] && return
    apt_install "${missing[@]}"
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
}

apt_install() { # package...
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    log "installing $* (apt-get)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

build() {
    if [ "${LOAD_BUILD:-1}" = 1 ]; then
        log "cargo build --release --bins --examples"
        cargo build --release --bins --examples >&2
    fi
    local b
    for b in "$REL/presign-gateway" "$REL/examples/origin" "$REL/examples/bare"; do
        [ -x "$b" ] || die "$b not built (set CARGO_TARGET_DIR if cargo builds elsewhere)"
    done
}

# --- temp dir, ports, processes -----------------------------------------------------------
TMP=
declare -A PID # server name -> pid
cleanup() {
    local n
    for n in "${!PID[@]}"; do stop "$n"; done
    [ -n "$TMP" ] || return 0
    if [ "${LOAD_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}

make_tmp() {
    TMP=$(mktemp -d -t presign-load.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

# Ports below the ephemeral range (so no outgoing connection holds them), never reused.
USED_PORTS=" "
PORT=
next_port() { # sets PORT
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        USED_PORTS+="$p "
        if ! port_open "$p"; then PORT=$p; return; fi
    done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Polls a condition (no fixed sleeps): wait_for name seconds command...; dies when the
# server `name` exits or the deadline passes.
wait_for() {
    local name=$1 secs=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@"; do
        kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited early (see $TMP/$name.log)"
        [ "$SECONDS" -lt "$deadline" ] || die "$name: timed out waiting for: $*"
        sleep 0.02
    done
}

# The pid and all its descendants (nginx: master and workers), one per line.
proc_tree() {
    local c kids=()
    echo "$1"
    read -r -a kids <<<"$(cat /proc/"$1"/task/*/children 2>/dev/null)"
    for c in "${kids[@]}"; do proc_tree "$c"; done
}
child_count() { proc_tree "$1" | tail -n +2 | wc -l; }
has_children() { [ "$(child_count "$1")" -ge "$2" ]; }

# taskset prefixes for LOAD_PIN=1: servers on cpu 0, load generator (and origin) on cpu 1
PIN_SERVER=()
PIN_CLIENT=()
setup_pinning() {
    [ "$PIN" = 1 ] || return 0
    command -v taskset >/dev/null || { log "LOAD_PIN=1 but no taskset; not pinning"; return 0; }
    PIN_SERVER=(taskset -c 0)
    PIN_CLIENT=(taskset -c 1)
}

start_origin() {
    next_port; ORIGIN_PORT=$PORT
    "${PIN_CLIENT[@]}" "$REL/examples/origin" "127.0.0.1:$ORIGIN_PORT" >"$TMP/origin.log" 2>&1 &
    PID[origin]=$!
    wait_for origin 15 port_open "$ORIGIN_PORT"
}

# The application's delegated-auth endpoint for the `delegated` target: demo-key is user 12.
start_auth_app() {
    next_port; AUTH_PORT=$PORT
    "${PIN_CLIENT[@]}" python3 benches/auth_app.py "$AUTH_PORT" >"$TMP/auth-app.log" 2>&1 &
    PID[authapp]=$!
    wait_for authapp 15 port_open "$AUTH_PORT"
}

# A redis-server for the `shared` target, on a Unix socket in the temp dir.
start_redis() {
    command -v redis-server >/dev/null || apt_install redis-server
    redis-server --port 0 --save '' --appendonly no --unixsocket "$TMP/redis.sock" --dir "$TMP" \
        >"$TMP/redis.log" 2>&1 &
    PID[redis]=$!
    wait_for redis 15 test -S "$TMP/redis.sock"
}

GW_KEYS='api_keys:
  - id: demo
    sha256: c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c
    user_id: 12'

start_gateway() { # threads [name auth-yaml]: the gateway (gw), or a second one (gwd) with other auth
    local name=${2:-gw} auth=${3:-$GW_KEYS}
    next_port; GW_PORT=$PORT
    mkdir -p "$TMP/data-$name"
    cat >"$TMP/$name.yaml" <<YAML
listen: 127.0.0.1:$GW_PORT
origin: [127.0.0.1:$ORIGIN_PORT]
threads: $1
$auth
storage:
  local:
    root: $TMP/data-$name
    public_path: /files
    max_upload_bytes: $((UPLOAD_MB * 1048576))
upload_sessions:
  max_files: 4000000000
  max_file_size: $(((MULTIPART_MB + 1) * 1048576))
server:
  pid_file: $TMP/$name.pid
  upgrade_sock: $TMP/$name.sock
  work_stealing: $WORK_STEALING
  grace_period_seconds: 0
  graceful_shutdown_timeout_seconds: 1
${LOAD_GW_SERVER:-}
YAML
    RUST_LOG=${RUST_LOG:-warn} "${PIN_SERVER[@]}" "$REL/presign-gateway" -c "$TMP/$name.yaml" \
        >"$TMP/$name.log" 2>&1 &
    PID[$name]=$!
    wait_for "$name" 30 port_open "$GW_PORT"
}

start_bare() { # name threads [proxy-upstream]: the bare responder, or with an upstream the bare proxy
    local name=$1 threads=$2 env=(RUST_LOG=warn "BARE_WORK_STEALING=$WORK_STEALING")
    [ -n "${3:-}" ] && env+=("BARE_PROXY=$3")
    next_port
    env "${env[@]}" "${PIN_SERVER[@]}" "$REL/examples/bare" "127.0.0.1:$PORT" "$threads" \
        >"$TMP/$name.log" 2>&1 &
    PID[$name]=$!
    PORTS[$name]=$PORT
    wait_for "$name" 30 port_open "$PORT"
}

start_nginx() { # workers
    next_port; NGINX_PORT=$PORT
    rm -rf "$TMP/nginx"; mkdir -p "$TMP/nginx/logs"
    cat >"$TMP/nginx/nginx.conf" <<NGINX
worker_processes $1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGINX
    "${PIN_SERVER[@]}" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" \
        >"$TMP/nginx.log" 2>&1 &
    PID[nginx]=$!
    wait_for nginx 15 port_open "$NGINX_PORT"
    wait_for nginx 15 has_children "${PID[nginx]}" "$1" # all workers up
}

declare -A PORTS
start_servers() { # threads: everything but the origin
    start_gateway "$1"; PORTS[gw]=$GW_PORT
    if have delegated; then
        start_gateway "$1" gwd "auth:
  delegated:
    url: http://127.0.0.1:$AUTH_PORT/auth
    cache_ttl_secs: 3600
    negative_cache_ttl_secs: 60"
        PORTS[gwd]=$GW_PORT
    fi
    if have shared; then
        start_gateway "$1" gws "$GW_KEYS
rate_limit:
  default_per_sec: 1000000000
  shared:
    url: unix://$TMP/redis.sock
    expected_fleet_size: 2
    timeout_ms: 50"
        PORTS[gws]=$GW_PORT
    fi
    start_bare bare "$1"
    start_bare bareproxy "$1" "127.0.0.1:$ORIGIN_PORT"
    start_nginx "$1"; PORTS[nginx]=$NGINX_PORT
    PORTS[origin]=$ORIGIN_PORT
    log "servers up with $1 thread(s): gateway :${PORTS[gw]}, bare :${PORTS[bare]}, bareproxy :${PORTS[bareproxy]}, nginx :${PORTS[nginx]}, origin :$ORIGIN_PORT"
}

# Stops one server: SIGTERM, then SIGKILL if it is still there after 10 s.
stop() { # name
    local p=${PID[$1]:-} deadline=$((SECONDS + 10))
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null || true
    while kill -0 "$p" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.02; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "PID[$1]"
}

stop_servers() {
    local n
    for n in gw gwd gws bare bareproxy nginx; do stop "$n"; done
}

# --- smoke checks and request bodies -----------------------------------------------------
MINT_PATH=/api/v1/files/upload-url
MINT_BODY='{"filename":"cover.png","content_type":"image/png","file_size":524288}'
PAGE_PATH=/static/page.html

check() { # name expected-code curl-args...
    local name=$1 want=$2; shift 2
    local got; got=$(curl -s --max-time 10 -o "$TMP/$name.smoke" -w '%{http_code}' "$@") || true
    [ "$got" = "$want" ] || die "$name: HTTP $got, want $want: $(head -c 300 "$TMP/$name.smoke")"
}

smoke_checks() {
    check mint 200 -X POST -H 'authorization: Bearer demo-key' -H 'content-type: application/json' \
        --data "$MINT_BODY" "http://127.0.0.1:${PORTS[gw]}$MINT_PATH"
    check bare 200 -X POST --data "$MINT_BODY" "http://127.0.0.1:${PORTS[bare]}$MINT_PATH"
    if have shared; then
        check shared 200 -X POST -H 'authorization: Bearer demo-key' -H 'content-type: application/json' \
            --data "$MINT_BODY" "http://127.0.0.1:${PORTS[gws]}$MINT_PATH"
    fi
    if have delegated; then
        check delegated 200 -X POST -H 'authorization: Bearer demo-key' -H 'content-type: application/json' \
            --data "$MINT_BODY" "http://127.0.0.1:${PORTS[gwd]}$MINT_PATH"
    fi
    local n
    for n in gw bareproxy nginx origin; do check "$n" 200 "http://127.0.0.1:${PORTS[$n]}$PAGE_PATH"; done
    log "mint answer: $(wc -c <"$TMP/mint.smoke") bytes; bare answer: $(wc -c <"$TMP/bare.smoke") bytes"
    if have params || have signpart || [ "$MULTIPART_MB" != 0 ]; then open_companion; fi
}

# A browser upload session on the gateway (COMPANION) and one multipart upload in it
# (SIGNPART_URL signs its part 1), for the params and signpart targets.
COMPANION=
SIGNPART_URL=
open_companion() {
    local gw=http://127.0.0.1:${PORTS[gw]} resp key id
    resp=$(curl -sS --max-time 10 -X POST -H 'authorization: Bearer demo-key' \
        --data '{"max_files": 4000000000}' "$gw/v1/upload-sessions")
    COMPANION=$(json_field "$resp" companion_endpoint)
    [ -n "$COMPANION" ] || die "no upload session: $resp"
    check params 200 "$COMPANION/s3/params?filename=a.png&type=image%2Fpng"
    resp=$(curl -sS --max-time 10 -X POST --data '{"filename":"a.mp4","type":"video/mp4"}' "$COMPANION/s3/multipart")
    key=$(json_field "$resp" key); id=$(json_field "$resp" uploadId)
    [ -n "$id" ] || die "no multipart upload: $resp"
    SIGNPART_URL="$COMPANION/s3/multipart/$id/1?key=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$key")"
    check signpart 200 "$SIGNPART_URL"
}

json_field() { # json name: a top-level string field
    python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null || true
}

write_post_lua() {
    cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$MINT_BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-key"
LUA
}

# --- measuring ------------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
NCPU_STAT=$(grep -c '^cpu[0-9]' /proc/stat)

# "utime stime" in clock ticks, summed over the given pids (fields 14 and 15 of /proc/PID/stat,
# counted after the parenthesised command name, which may contain spaces).
cpu_ticks() {
    local p st u=0 s=0 fields
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        st=$(<"/proc/$p/stat")
        read -r -a fields <<<"${st##*) }"
        u=$((u + fields[11])); s=$((s + fields[12]))
    done
    echo "$u $s"
}

# "busy total" clock ticks of the whole host from /proc/stat (all cpus).
host_ticks() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# Milliseconds of CPU (user+sys) used by this shell's reaped children so far: bash `times`,
# run in this shell (a subshell starts from zero), so wrk's time shows once it is reaped.
CHILD_MS=0
children_cpu_ms() { # sets CHILD_MS
    times >"$TMP/times"
    CHILD_MS=$(awk 'END { s = 0; for (i = 1; i <= 2; i++) { split($i, m, "m"); s += m[1] * 60 + m[2] }
        printf "%d", s * 1000 }' "$TMP/times")
}

to_ms() { # "1.23ms" / "850.00us" / "1.02s" -> ms
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

server_of() { # target -> server name
    case $1 in mint | params | signpart | gw) echo gw ;; delegated) echo gwd ;; shared) echo gws ;; *) echo "$1" ;; esac
}
target_url() {
    local port=${PORTS[$(server_of "$1")]}
    case $1 in
        mint | delegated | shared | bare) echo "http://127.0.0.1:$port$MINT_PATH" ;;
        params) echo "$COMPANION/s3/params?filename=cat.png&type=image%2Fpng" ;;
        signpart) echo "$SIGNPART_URL" ;;
        *) echo "http://127.0.0.1:$port$PAGE_PATH" ;;
    esac
}

# Results, keyed "target@threads".
declare -A RPS P50 P99 REQS ERRS USER_US SYS_US CPU_US OS_THREADS ORIGIN_US WRK_US OTHER_CORES

# Runs WRK in the background and waits for it, so that Ctrl-C or SIGTERM reach the trap at
# once (bash defers traps while a foreground child runs); cleanup stops it.
run_wrk() { # output-file
    "${WRK[@]}" >"$1" 2>&1 &
    PID[wrk]=$!
    local rc=0
    wait "${PID[wrk]}" || rc=$?
    unset "PID[wrk]"
    return "$rc"
}

WRK=()
wrk_cmd() { # secs url [lua]: sets WRK to a wrk command line, under `timeout` so it is bounded
    local secs=$1 url=$2 lua=${3:-}
    WRK=(timeout $((secs + 30)) "${PIN_CLIENT[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" --latency)
    [ -n "$lua" ] && WRK+=(-s "$lua")
    WRK+=("$url")
}

measure() { # target threads
    local t=$1 threads=$2 key=$1@$2 server url lua='' pids
    server=$(server_of "$t")
    url=$(target_url "$t")
    case $t in mint | delegated | shared | bare) lua=$TMP/post.lua ;; esac
    if [ "$WARMUP" != 0 ]; then
        wrk_cmd "$WARMUP" "$url" "$lua"
        run_wrk /dev/null || true
    fi
    mapfile -t pids < <(proc_tree "${PID[$server]}")
    wrk_cmd "$SECS" "$url" "$lua"
    log "wrk $key: -t$WRK_THREADS -c$CONNS -d${SECS}s $url (server pids ${pids[*]})"

    local c0 o0 h0 w0 c1 o1 h1 w1 out="$TMP/wrk-$key.txt"
    c0=$(cpu_ticks "${pids[@]}"); o0=$(cpu_ticks "${PID[origin]}"); h0=$(host_ticks); children_cpu_ms; w0=$CHILD_MS
    run_wrk "$out" || die "wrk $key failed: $(cat "$out")"
    c1=$(cpu_ticks "${pids[@]}"); o1=$(cpu_ticks "${PID[origin]}"); h1=$(host_ticks); children_cpu_ms; w1=$CHILD_MS

    [ "$(proc_tree "${PID[$server]}" | wc -l)" = "${#pids[@]}" ] || log "warning: $server's process count changed during the run"
    parse_wrk "$key" "$out"
    OS_THREADS[$key]=$(os_threads "${pids[@]}")
    [ "${REQS[$key]:-0}" -gt 0 ] || die "wrk $key completed no requests: $(cat "$out")"

    cpu_per_request "$key" "$c0" "$c1" "$o0" "$o1" "$h0" "$h1" "$w0" "$w1"
    case $t in gw | bareproxy | nginx) ;; *) ORIGIN_US[$key]= ;; esac
}

# CPU per request from the counters taken around the run: the server's user, sys and total
# µs; for pass-through the origin's share; wrk's own; and the load outside the benchmark
# (host busy minus server, origin and wrk, in cores) as a noise indicator.
cpu_per_request() { # key server0 server1 origin0 origin1 host0 host1 wrk_ms0 wrk_ms1
    local key=$1 u s c o w x
    read -r u s c o w x < <(
        awk -v c0="$2" -v c1="$3" -v o0="$4" -v o1="$5" -v h0="$6" -v h1="$7" -v w0="$8" -v w1="$9" \
            -v n="${REQS[$key]}" -v hz="$CLK_TCK" -v ncpu="$NCPU_STAT" -v same="$([[ $key == origin@* ]] && echo 1 || echo 0)" 'BEGIN {
            split(c0, a, " "); split(c1, b, " "); split(o0, oa, " "); split(o1, ob, " ")
            split(h0, ha, " "); split(h1, hb, " ")
            u = (b[1] - a[1]) / hz; s = (b[2] - a[2]) / hz         # seconds of server CPU
            o = same ? 0 : (ob[1] + ob[2] - oa[1] - oa[2]) / hz   # origin
            w = (w1 - w0) / 1000                                   # wrk
            busy = (hb[1] - ha[1]) / hz; elapsed = (hb[2] - ha[2]) / hz / ncpu
            other = busy - (u + s) - o - w; if (other < 0) other = 0
            cores = 0; if (elapsed > 0) cores = other / elapsed
            printf "%.2f %.2f %.2f %.2f %.2f %.2f\n", u * 1e6 / n, s * 1e6 / n, (u + s) * 1e6 / n,
                o * 1e6 / n, w * 1e6 / n, cores }')
    USER_US[$key]=$u; SYS_US[$key]=$s; CPU_US[$key]=$c; ORIGIN_US[$key]=$o; WRK_US[$key]=$w; OTHER_CORES[$key]=$x
}

parse_wrk() { # key file
    local key=$1 out non2xx sock
    out=$(cat "$2")
    RPS[$key]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    P50[$key]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    P99[$key]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    REQS[$key]=$(awk '/ requests in / {print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    sock=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' <<<"$out")
    ERRS[$key]=$((${non2xx:-0} + ${sock:-0}))
}

os_threads() { # pid...: kernel threads (tasks) across the processes
    local p n=0 t
    for p in "$@"; do
        t=$(awk '/^Threads:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        n=$((n + ${t:-0}))
    done
    echo "$n"
}

# --- reports --------------------------------------------------------------------------------
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
thousands() { # 77595.12 -> 77,595
    awk -v v="$1" 'BEGIN { s = sprintf("%d", v + 0.5); out = ""
        while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
        print s out }'
}
label() {
    case $1 in
        mint) echo "mint (POST, gateway)" ;; delegated) echo "mint, delegated auth (warm cache)" ;; shared) echo "mint, rate limit shared on Redis" ;; bare) echo "bare responder (POST)" ;;
        gw) echo "pass-through GET via gateway" ;; nginx) echo "pass-through GET via nginx" ;;
        bareproxy) echo "pass-through GET via bare Pingora proxy" ;;
        origin) echo "origin direct (reference)" ;;
        params) echo "Uppy params (GET, presigned POST)" ;;
        signpart) echo "Uppy sign part (GET)" ;;
    esac
}
have() { [[ " ${TARGET_LIST[*]} " == *" $1 "* ]]; }

# Ratio pairs: "a b goal"
RATIO_PAIRS=(
    "mint bare req/s >= 0.85, CPU/req <= 1.25"
    "delegated mint req/s >= 0.90 (issue 10: within 10%)"
    "shared mint -"
    "params mint -"
    "signpart mint -"
    "gw bareproxy CPU/req <= 1.03"
    "gw nginx req/s >= 1.00, p99 <= 1.00"
    "bareproxy nginx -"
)

print_settings() {
    echo
    echo "wrk -t$WRK_THREADS -c$CONNS -d${SECS}s (warm-up ${WARMUP}s); server threads ${THREAD_LIST[*]} (gateway and bare threads, work_stealing $WORK_STEALING; nginx worker_processes); $(nproc) cores; CPU from /proc/PID/stat at $CLK_TCK ticks/s"
}

print_table() { # threads
    local th=$1 t k
    echo
    echo "Server threads: $th"
    echo
    echo "| target | req/s | p50 ms | p99 ms | user µs/req | sys µs/req | CPU µs/req | errors | other load (cores) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${TARGET_LIST[@]}"; do
        k=$t@$th
        echo "| $(label "$t") | $(thousands "${RPS[$k]}") | ${P50[$k]} | ${P99[$k]} | ${USER_US[$k]} | ${SYS_US[$k]} | ${CPU_US[$k]} | ${ERRS[$k]} | ${OTHER_CORES[$k]} |"
    done
}

print_ratios() { # threads
    local th=$1 pair a b goal
    echo
    echo "| ratio ($th thr) | req/s | p99 | user µs/req | sys µs/req | CPU µs/req | goal |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for pair in "${RATIO_PAIRS[@]}"; do
        read -r a b goal <<<"$pair"
        if ! have "$a" || ! have "$b"; then continue; fi
        echo "| $a / $b | $(ratio "${RPS[$a@$th]}" "${RPS[$b@$th]}") | $(ratio "${P99[$a@$th]}" "${P99[$b@$th]}") | $(ratio "${USER_US[$a@$th]}" "${USER_US[$b@$th]}") | $(ratio "${SYS_US[$a@$th]}" "${SYS_US[$b@$th]}") | $(ratio "${CPU_US[$a@$th]}" "${CPU_US[$b@$th]}") | $goal |"
    done
}

print_scaling() {
    [ ${#THREAD_LIST[@]} -gt 1 ] || return 0
    local first=${THREAD_LIST[0]} t th head="| target |" sep="|---|" row
    for th in "${THREAD_LIST[@]}"; do
        head+=" req/s @$th |"; sep+="---:|"
        [ "$th" = "$first" ] || { head+=" × vs @$first |"; sep+="---:|"; }
    done
    for th in "${THREAD_LIST[@]}"; do head+=" CPU µs/req @$th |"; sep+="---:|"; done
    echo
    echo "Scaling with server threads (origin: always 1 thread)"
    echo
    echo "$head"
    echo "$sep"
    for t in "${TARGET_LIST[@]}"; do
        row="| $(label "$t") |"
        for th in "${THREAD_LIST[@]}"; do
            row+=" $(thousands "${RPS[$t@$th]}") |"
            [ "$th" = "$first" ] || row+=" $(ratio "${RPS[$t@$th]}" "${RPS[$t@$first]}") |"
        done
        for th in "${THREAD_LIST[@]}"; do row+=" ${CPU_US[$t@$th]} |"; done
        echo "$row"
    done
}

print_uploads() {
    [ -n "${UP[ok]:-}" ] || return 0
    echo
    echo "| uploads | ok | stored | seconds | MB/s overall | RSS before MB | peak RSS MB (polled) | VmHWM MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    echo "| ${UP[count]} x ${UP[mb]} MB PUT | ${UP[ok]} | ${UP[stored]} | ${UP[secs]} | ${UP[mbps]} | ${UP[rss_before_mb]} | ${UP[peak_rss_mb]} | ${UP[hwm_mb]} |"
}

# --- JSON -------------------------------------------------------------------------------------
json_str() {
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/}
    printf '"%s"' "$s"
}
json_num() { if [[ ${1:-} =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then printf '%s' "$1"; else printf null; fi; }

versions() { # sets VER_* once
    VER_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    VER_DIRTY=false
    git diff --quiet HEAD -- 2>/dev/null || VER_DIRTY=true
    VER_NGINX=$("$NGINX" -v 2>&1 | head -1)
    VER_WRK=$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//' || true)
    VER_RUSTC=$(rustc -V 2>/dev/null || echo unknown)
    VER_KERNEL=$(uname -sr)
    VER_CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
}

json_ratios() { # target threads: {"other": {"rps":..,...}, ...} for the pairs where target is the numerator
    local t=$1 th=$2 pair a b _goal first=1
    printf '{'
    for pair in "${RATIO_PAIRS[@]}"; do
        read -r a b _goal <<<"$pair"
        if [ "$a" != "$t" ] || ! have "$b"; then continue; fi
        [ $first = 1 ] || printf ', '
        first=0
        printf '%s: {"rps": %s, "p50": %s, "p99": %s, "user_us_per_req": %s, "sys_us_per_req": %s, "cpu_us_per_req": %s}' \
            "$(json_str "$b")" \
            "$(json_num "$(ratio "${RPS[$t@$th]}" "${RPS[$b@$th]}")")" \
            "$(json_num "$(ratio "${P50[$t@$th]}" "${P50[$b@$th]}")")" \
            "$(json_num "$(ratio "${P99[$t@$th]}" "${P99[$b@$th]}")")" \
            "$(json_num "$(ratio "${USER_US[$t@$th]}" "${USER_US[$b@$th]}")")" \
            "$(json_num "$(ratio "${SYS_US[$t@$th]}" "${SYS_US[$b@$th]}")")" \
            "$(json_num "$(ratio "${CPU_US[$t@$th]}" "${CPU_US[$b@$th]}")")"
    done
    printf '}'
}

json_target() { # target threads
    local t=$1 th=$2 k=$1@$2 first=${THREAD_LIST[0]}
    printf '    {"name": %s, "label": %s, "server": %s, "threads": %s, "os_threads": %s,\n' \
        "$(json_str "$t")" "$(json_str "$(label "$t")")" "$(json_str "$(server_of "$t")")" \
        "$(json_num "$th")" "$(json_num "${OS_THREADS[$k]}")"
    printf '     "rps": %s, "p50_ms": %s, "p99_ms": %s, "requests": %s, "errors": %s,\n' \
        "$(json_num "${RPS[$k]}")" "$(json_num "${P50[$k]}")" "$(json_num "${P99[$k]}")" \
        "$(json_num "${REQS[$k]}")" "$(json_num "${ERRS[$k]}")"
    printf '     "user_us_per_req": %s, "sys_us_per_req": %s, "cpu_us_per_req": %s,\n' \
        "$(json_num "${USER_US[$k]}")" "$(json_num "${SYS_US[$k]}")" "$(json_num "${CPU_US[$k]}")"
    printf '     "origin_cpu_us_per_req": %s, "wrk_cpu_us_per_req": %s, "other_load_cores": %s,\n' \
        "$(json_num "${ORIGIN_US[$k]}")" "$(json_num "${WRK_US[$k]}")" "$(json_num "${OTHER_CORES[$k]}")"
    printf '     "rps_vs_first_threads": %s,\n' "$(json_num "$(ratio "${RPS[$k]}" "${RPS[$t@$first]}")")"
    printf '     "ratios": %s}' "$(json_ratios "$t" "$th")"
}

write_json() { # file
    local file=$1 t th sep=""
    mkdir -p "$(dirname "$file")"
    {
        printf '{\n  "schema": "presign-gateway/load/1",\n'
        printf '  "date": %s,\n' "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
        printf '  "machine": {"cores": %s, "cores_online": %s, "cpu": %s, "kernel": %s, "clk_tck": %s},\n' \
            "$(nproc)" "$(getconf _NPROCESSORS_ONLN)" "$(json_str "$VER_CPU")" "$(json_str "$VER_KERNEL")" "$CLK_TCK"
        printf '  "versions": {"gateway_commit": %s, "gateway_dirty": %s, "nginx": %s, "wrk": %s, "rustc": %s},\n' \
            "$(json_str "$VER_COMMIT")" "$VER_DIRTY" "$(json_str "$VER_NGINX")" "$(json_str "$VER_WRK")" "$(json_str "$VER_RUSTC")"
        printf '  "settings": {"duration_s": %s, "warmup_s": %s, "connections": %s, "wrk_threads": %s, "server_threads": [%s], "work_stealing": %s, "pin": %s, "targets": [%s]},\n' \
            "$SECS" "$WARMUP" "$CONNS" "$WRK_THREADS" "$(IFS=,; echo "${THREAD_LIST[*]}")" "$WORK_STEALING" \
            "$([ "$PIN" = 1 ] && echo true || echo false)" "$(for t in "${TARGET_LIST[@]}"; do printf '%s' "$sep$(json_str "$t")"; sep=", "; done)"
        printf '  "goals": {"mint_vs_bare": {"rps_min": 0.85, "cpu_max": 1.25}, "gw_vs_bareproxy": {"cpu_max": 1.03}, "gw_vs_nginx": {"rps_min": 1.0, "p99_max": 1.0}},\n'
        printf '  "targets": [\n'
        sep=""
        for th in "${THREAD_LIST[@]}"; do
            for t in "${TARGET_LIST[@]}"; do
                printf '%s' "$sep"; json_target "$t" "$th"; sep=$',\n'
            done
        done
        printf '\n  ],\n  "uploads": '
        if [ -n "${UP[ok]:-}" ]; then
            printf '{"threads": %s, "count": %s, "mb_each": %s, "ok": %s, "stored": %s, "seconds": %s, "mb_per_s": %s, "rss_before_mb": %s, "peak_rss_mb": %s, "vm_hwm_mb": %s}\n' \
                "${THREAD_LIST[0]}" "${UP[count]}" "${UP[mb]}" "${UP[ok]}" "${UP[stored]}" "${UP[secs]}" "${UP[mbps]}" \
                "${UP[rss_before_mb]}" "${UP[peak_rss_mb]}" "${UP[hwm_mb]}"
        else
            printf 'null\n'
        fi
        printf '  ,"multipart": '
        if [ -n "${MP[ok]:-}" ]; then
            printf '{"mb": %s, "parts": %s, "ok": %s, "seconds": %s, "mb_per_s": %s, "dd_fsync_mb_per_s": %s, "vs_dd": %s, "rss_before_mb": %s, "peak_rss_mb": %s, "vm_hwm_mb": %s}\n' \
                "${MP[mb]}" "${MP[parts]}" "$([ "${MP[ok]}" = 1 ] && echo true || echo false)" "$(json_num "${MP[secs]}")" \
                "$(json_num "${MP[mbps]}")" "$(json_num "${MP[dd_mbps]}")" "$(json_num "${MP[vs_dd]}")" \
                "$(json_num "${MP[rss_before_mb]}")" "$(json_num "${MP[peak_rss_mb]}")" "$(json_num "${MP[hwm_mb]}")"
        else
            printf 'null\n'
        fi
        printf '}\n'
    } >"$file"
    python3 -m json.tool "$file" >/dev/null || die "wrote invalid JSON to $file"
    log "JSON: $file"
}

# --- chart --------------------------------------------------------------------------------
# A python that can import matplotlib: the system one, else a venv under the target dir
# (created, and matplotlib installed with pip, on first use).
chart_python() {
    if python3 -c 'import matplotlib' 2>/dev/null; then echo python3; return; fi
    local venv=$TARGET_DIR/load/venv
    if ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
        log "installing matplotlib into $venv (pip)"
        python3 -m venv "$venv" >&2 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv" >&2; }
        "$venv/bin/python" -m pip install -q --disable-pip-version-check matplotlib >&2
    fi
    echo "$venv/bin/python"
}

draw_chart() { # json chart
    local py
    py=$(chart_python) || { log "warning: no matplotlib, no chart"; return 0; }
    mkdir -p "$(dirname "$2")"
    "$py" benches/plot.py "$1" "$2" >&2 || { log "warning: chart failed"; return 0; }
    log "chart: $2"
}

# --- concurrent uploads ---------------------------------------------------------------------
declare -A UP
upload_test() {
    local size=$((UPLOAD_MB * 1048576)) gw_pid=${PID[gw]} urls=() i body resp u
    head -c "$size" /dev/urandom >"$TMP/upload.bin"
    for i in $(seq 1 "$UPLOAD_COUNT"); do
        body="{\"filename\":\"clip$i.mp4\",\"content_type\":\"video/mp4\",\"file_size\":$size}"
        resp=$(curl -sS --max-time 10 -X POST -H 'authorization: Bearer demo-key' -H 'content-type: application/json' \
            --data "$body" "http://127.0.0.1:${PORTS[gw]}$MINT_PATH")
        u=$(grep -o '"upload_url":"[^"]*"' <<<"$resp" | head -1 | sed 's/^"upload_url":"//; s/"$//')
        [ -n "$u" ] || die "mint for upload $i failed: $resp"
        urls+=("$u")
    done
    echo 5 >"/proc/$gw_pid/clear_refs" 2>/dev/null || true # reset VmHWM when allowed
    local rss_before; rss_before=$(awk '/^VmRSS/ {print $2}' "/proc/$gw_pid/status")
    rss_sampler "$gw_pid" &
    local sampler=$! t0 t1 upids=() p ok=0
    log "uploading $UPLOAD_COUNT x $UPLOAD_MB MB concurrently"
    t0=$(date +%s.%N)
    for i in "${!urls[@]}"; do
        curl -sS --max-time 600 -o "$TMP/put-$i.out" -w '%{http_code}' -T "$TMP/upload.bin" \
            -H 'content-type: video/mp4' "${urls[$i]}" >"$TMP/put-$i.code" 2>"$TMP/put-$i.err" &
        upids+=($!)
    done
    for p in "${upids[@]}"; do wait "$p" || true; done
    t1=$(date +%s.%N)
    touch "$TMP/uploads.done"; wait "$sampler" 2>/dev/null || true
    for i in "${!urls[@]}"; do [ "$(cat "$TMP/put-$i.code")" = 200 ] && ok=$((ok + 1)); done
    [ "$ok" = "$UPLOAD_COUNT" ] || log "some uploads failed: $(cat "$TMP"/put-*.out | head -c 500)"
    UP[count]=$UPLOAD_COUNT; UP[mb]=$UPLOAD_MB; UP[ok]=$ok
    UP[stored]=$(find "$TMP/data-gw" -type f -size "${size}c" 2>/dev/null | wc -l)
    local secs mbps rb pk hw
    read -r secs mbps rb pk hw < <(
        awk -v n="$UPLOAD_COUNT" -v mb="$UPLOAD_MB" -v t0="$t0" -v t1="$t1" -v rb="$rss_before" \
            -v pk="$(cat "$TMP/rss.peak" 2>/dev/null || echo 0)" \
            -v hw="$(awk '/^VmHWM/ {print $2}' "/proc/$gw_pid/status")" 'BEGIN {
            s = t1 - t0
            printf "%.2f %.1f %.1f %.1f %.1f\n", s, n * mb / s, rb / 1024, pk / 1024, hw / 1024 }')
    UP[secs]=$secs; UP[mbps]=$mbps; UP[rss_before_mb]=$rb; UP[peak_rss_mb]=$pk; UP[hwm_mb]=$hw
    rm -f "$TMP/upload.bin"
}

# One multipart upload of MULTIPART_MB to the local store through the Companion routes, its
# parts PUT in parallel with curl, timed from create to complete; against dd conv=fsync of
# the same size on the same disk, and the gateway's peak RSS meanwhile.
declare -A MP
multipart_test() {
    local total=$((MULTIPART_MB * 1048576)) n=$MULTIPART_PARTS gw_pid=${PID[gw]} part i resp key id
    part=$(((total + n - 1) / n))
    [ "$part" -ge 5242880 ] || die "LOAD_MULTIPART_MB / LOAD_MULTIPART_PARTS must be at least 5 MiB a part"
    log "multipart: $n parts of $((part / 1048576)) MiB from /dev/urandom"
    for i in $(seq 1 "$n"); do
        local len=$part; [ "$i" = "$n" ] && len=$((total - part * (n - 1)))
        head -c "$len" /dev/urandom >"$TMP/mp-part-$i"
    done
    sync
    local dd_out; dd_out=$(dd if=/dev/zero of="$TMP/dd.bin" bs=1M count="$MULTIPART_MB" conv=fsync 2>&1 | tail -1)
    rm -f "$TMP/dd.bin"; sync
    MP[dd_mbps]=$(awk -v mb="$MULTIPART_MB" '{ for (i = 1; i <= NF; i++) if ($i == "s,") { printf "%.1f", mb * 1.048576 / $(i - 1); exit } }' <<<"$dd_out")
    rm -f "$TMP/uploads.done" "$TMP/rss.peak"
    echo 5 >"/proc/$gw_pid/clear_refs" 2>/dev/null || true
    MP[rss_before_mb]=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$gw_pid/status")
    rss_sampler "$gw_pid" &
    local sampler=$! t0 t1 pids=() etags=() ok=1
    t0=$(date +%s.%N)
    resp=$(curl -sS --max-time 10 -X POST --data '{"filename":"big.mp4","type":"video/mp4"}' "$COMPANION/s3/multipart")
    key=$(json_field "$resp" key); id=$(json_field "$resp" uploadId)
    [ -n "$id" ] || die "multipart create failed: $resp"
    local qkey; qkey=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$key")
    for i in $(seq 1 "$n"); do
        resp=$(curl -sS --max-time 10 "$COMPANION/s3/multipart/$id/$i?key=$qkey")
        curl -sS --max-time 600 -o /dev/null -D "$TMP/mp-head-$i" -T "$TMP/mp-part-$i" "$(json_field "$resp" url)" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || ok=0; done
    local parts="" sep=""
    for i in $(seq 1 "$n"); do
        local etag; etag=$(awk 'tolower($1) == "etag:" { gsub(/[\r"]/, "", $2); print $2 }' "$TMP/mp-head-$i")
        [ -n "$etag" ] || ok=0
        parts+="$sep{\"PartNumber\": $i, \"ETag\": \"$etag\"}"; sep=", "
    done
    resp=$(curl -sS --max-time 600 -X POST --data "{\"parts\": [$parts]}" "$COMPANION/s3/multipart/$id/complete?key=$qkey")
    t1=$(date +%s.%N)
    touch "$TMP/uploads.done"; wait "$sampler" 2>/dev/null || true
    [ -n "$(json_field "$resp" location)" ] || { ok=0; log "complete failed: $resp"; }
    local stored; stored=$(stat -c %s "$TMP/data-gw/objects/$key" 2>/dev/null || echo 0)
    [ "$stored" = "$total" ] || ok=0
    MP[ok]=$ok; MP[mb]=$MULTIPART_MB; MP[parts]=$n
    MP[secs]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    MP[mbps]=$(awk -v mb="$MULTIPART_MB" -v s="${MP[secs]}" 'BEGIN { printf "%.1f", mb * 1.048576 / s }')
    MP[vs_dd]=$(ratio "${MP[mbps]}" "${MP[dd_mbps]}")
    MP[peak_rss_mb]=$(awk '{printf "%.1f", $1 / 1024}' "$TMP/rss.peak" 2>/dev/null || echo 0)
    MP[hwm_mb]=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$gw_pid/status")
    rm -f "$TMP"/mp-part-* "$TMP/data-gw/objects/$key"
}

print_multipart() {
    [ -n "${MP[ok]:-}" ] || return 0
    echo
    echo "| multipart upload | ok | seconds | MB/s | dd conv=fsync MB/s | vs dd | RSS before MB | peak RSS MB (polled) | VmHWM MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    echo "| ${MP[mb]} MiB in ${MP[parts]} parallel parts (local store) | ${MP[ok]} | ${MP[secs]} | ${MP[mbps]} | ${MP[dd_mbps]} | ${MP[vs_dd]} | ${MP[rss_before_mb]} | ${MP[peak_rss_mb]} | ${MP[hwm_mb]} |"
}

rss_sampler() { # pid: polls VmRSS every 20 ms until uploads.done, keeps the peak in rss.peak
    local peak=0 r
    while kill -0 "$1" 2>/dev/null && [ ! -e "$TMP/uploads.done" ]; do
        r=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
        [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$TMP/rss.peak"
        sleep 0.02
    done
}

# --- main -----------------------------------------------------------------------------------
main() {
    parse_args "$@"
    validate_settings
    install_tools
    build
    versions
    make_tmp
    setup_pinning
    write_post_lua
    start_origin
    if have delegated; then start_auth_app; fi
    if have shared; then start_redis; fi
    local th t
    for th in "${THREAD_LIST[@]}"; do
        start_servers "$th"
        smoke_checks
        for t in "${TARGET_LIST[@]}"; do measure "$t" "$th"; done
        if [ "$UPLOADS" != 0 ] && [ "$th" = "${THREAD_LIST[0]}" ]; then upload_test; fi
        if [ "$MULTIPART_MB" != 0 ] && [ "$th" = "${THREAD_LIST[0]}" ]; then multipart_test; fi
        stop_servers
    done

    print_settings
    for th in "${THREAD_LIST[@]}"; do
        print_table "$th"
        print_ratios "$th"
    done
    print_scaling
    print_uploads
    print_multipart
    write_json "$JSON_OUT"
    [ "$CHART" = 1 ] && draw_chart "$JSON_OUT" "$CHART_OUT"
    return 0
}

main "$@"
