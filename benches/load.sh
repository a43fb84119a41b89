#!/usr/bin/env bash
# Load harness for presign-gateway, loopback only. From a fresh clone:
#
#   bash benches/load.sh
#
# Installs what is missing (wrk, nginx, cmake via apt-get), builds release, starts on
# 127.0.0.1: a fixed 1 KiB origin (examples/origin.rs), the gateway (threads 1, local store
# in a temp dir, demo key), a bare Pingora responder (examples/bare.rs) and nginx (1 worker,
# keepalive upstream to the same origin); drives each with wrk and prints a markdown table:
#   mint    POST /api/v1/files/upload-url on the gateway (Bearer demo-key, JSON body)
#   bare    the same POST on the bare responder (the floor for mint)
#   gw      GET pass-through via the gateway to the origin
#   bareproxy GET pass-through via a bare Pingora proxy (examples/bare.rs, BARE_PROXY)
#   nginx   GET pass-through via nginx to the same origin
#   origin  GET on the origin directly (reference: the ceiling for both proxies)
# then 10 concurrent 100 MB uploads through the gateway (MB/s and the gateway's peak RSS).
# Everything it starts is stopped on exit.
#
# Env: LOAD_SECS (10) seconds per target, LOAD_WARMUP (2), LOAD_CONNS (32) wrk connections,
#      LOAD_WRK_THREADS (1), LOAD_THREADS (1) gateway threads = bare threads = nginx workers,
#      LOAD_TARGETS (mint,bare,gw,nginx,origin), LOAD_UPLOADS (1; 0 skips the upload test),
#      LOAD_UPLOAD_COUNT (10), LOAD_UPLOAD_MB (100), LOAD_BUILD (1; 0 skips cargo build),
#      LOAD_PIN (0; 1 pins wrk to cpu 1 and the servers under test to cpu 0),
#      LOAD_WORK_STEALING (false; Pingora work_stealing for the gateway and bare),
#      LOAD_GW_SERVER (extra YAML lines for the gateway's `server:` block, e.g.
#      "  work_stealing: false"), LOAD_KEEP (0; 1 keeps the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${LOAD_SECS:-10}
WARMUP=${LOAD_WARMUP:-2}
CONNS=${LOAD_CONNS:-32}
WRK_THREADS=${LOAD_WRK_THREADS:-1}
THREADS=${LOAD_THREADS:-1}
TARGETS=${LOAD_TARGETS:-mint,bare,gw,bareproxy,nginx,origin}
UPLOADS=${LOAD_UPLOADS:-1}
UPLOAD_COUNT=${LOAD_UPLOAD_COUNT:-10}
UPLOAD_MB=${LOAD_UPLOAD_MB:-100}
PIN=${LOAD_PIN:-0}
WORK_STEALING=${LOAD_WORK_STEALING:-false}

log() { echo "[load] $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools ------------------------------------------------------------------------------
NGINX=$(command -v nginx || true)
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -n "$NGINX" ] || missing+=(nginx)
command -v cmake >/dev/null || missing+=(cmake)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

if [ "${LOAD_BUILD:-1}" = 1 ]; then
    log "cargo build --release --bins --examples"
    cargo build --release --bins --examples >&2
fi
REL=target/release
for b in "$REL/presign-gateway" "$REL/examples/origin" "$REL/examples/bare"; do
    [ -x "$b" ] || die "$b not built"
done

# --- temp dir, ports, cleanup -----------------------------------------------------------
TMP=$(mktemp -d -t presign-load.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${LOAD_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports below the ephemeral range (so no outgoing connection holds them), never reused.
USED_PORTS=" "
PORT=
next_port() { # sets PORT
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        USED_PORTS+="$p "
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; return; fi
    done
}
wait_port() { # port pid name
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || die "$3 exited early (see $TMP/$3.log)"
        sleep 0.05
    done
    die "$3 is not listening on 127.0.0.1:$1"
}
pin() { # cpu: prefix a command with taskset when LOAD_PIN=1
    if [ "$PIN" = 1 ] && command -v taskset >/dev/null; then echo "taskset -c $1"; fi
}

next_port; ORIGIN_PORT=$PORT; next_port; GW_PORT=$PORT; next_port; BARE_PORT=$PORT; next_port; NGINX_PORT=$PORT
next_port; BAREPROXY_PORT=$PORT

# --- origin -----------------------------------------------------------------------------
$(pin 1) "$REL/examples/origin" "127.0.0.1:$ORIGIN_PORT" >"$TMP/origin.log" 2>&1 &
PIDS+=($!); wait_port "$ORIGIN_PORT" $! origin

# --- gateway ----------------------------------------------------------------------------
mkdir -p "$TMP/data"
cat >"$TMP/gateway.yaml" <<YAML
listen: 127.0.0.1:$GW_PORT
origin: [127.0.0.1:$ORIGIN_PORT]
threads: $THREADS
api_keys:
  - id: demo
    sha256: c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c
    user_id: 12
storage:
  local:
    root: $TMP/data
    public_path: /files
    max_upload_bytes: $((UPLOAD_MB * 1048576))
server:
  pid_file: $TMP/gw.pid
  upgrade_sock: $TMP/gw.sock
  work_stealing: $WORK_STEALING
${LOAD_GW_SERVER:-}
YAML
RUST_LOG=${RUST_LOG:-warn} $(pin 0) "$REL/presign-gateway" -c "$TMP/gateway.yaml" >"$TMP/gateway.log" 2>&1 &
GW_PID=$!; PIDS+=($GW_PID); wait_port "$GW_PORT" $GW_PID gateway

# --- bare responder ---------------------------------------------------------------------
RUST_LOG=warn BARE_WORK_STEALING=$WORK_STEALING $(pin 0) "$REL/examples/bare" "127.0.0.1:$BARE_PORT" "$THREADS" >"$TMP/bare.log" 2>&1 &
PIDS+=($!); wait_port "$BARE_PORT" $! bare
# The same binary as a bare Pingora proxy: the framework's own pass-through floor.
RUST_LOG=warn BARE_WORK_STEALING=$WORK_STEALING BARE_PROXY="127.0.0.1:$ORIGIN_PORT" $(pin 0) "$REL/examples/bare" "127.0.0.1:$BAREPROXY_PORT" "$THREADS" >"$TMP/bareproxy.log" 2>&1 &
PIDS+=($!); wait_port "$BAREPROXY_PORT" $! bareproxy

# --- nginx ------------------------------------------------------------------------------
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<NGINX
worker_processes $THREADS;
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
$(pin 0) "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx.log" 2>&1 &
PIDS+=($!); wait_port "$NGINX_PORT" $! nginx

# --- smoke checks -----------------------------------------------------------------------
MINT_PATH=/api/v1/files/upload-url
MINT_BODY='{"filename":"cover.png","content_type":"image/png","file_size":524288}'
check() { # name expected-code curl-args...
    local name=$1 want=$2; shift 2
    local got; got=$(curl -s -o "$TMP/$name.smoke" -w '%{http_code}' "$@") || true
    [ "$got" = "$want" ] || die "$name: HTTP $got, want $want: $(head -c 300 "$TMP/$name.smoke")"
}
check mint 200 -X POST -H 'authorization: Bearer demo-key' -H 'content-type: application/json' \
    --data "$MINT_BODY" "http://127.0.0.1:$GW_PORT$MINT_PATH"
check bare 200 -X POST --data "$MINT_BODY" "http://127.0.0.1:$BARE_PORT$MINT_PATH"
check gw 200 "http://127.0.0.1:$GW_PORT/static/page.html"
check nginx 200 "http://127.0.0.1:$NGINX_PORT/static/page.html"
log "mint answer: $(wc -c <"$TMP/mint.smoke") bytes; bare answer: $(wc -c <"$TMP/bare.smoke") bytes"

cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$MINT_BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-key"
LUA

# --- wrk ----------------------------------------------------------------------------------
to_ms() { # "1.23ms" / "850.00us" / "1.02s" -> ms
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}
declare -A RPS P50 P99 ERRS
run_wrk() { # name url [lua]
    local name=$1 url=$2 script=${3:-} args=()
    [ -n "$script" ] && args=(-s "$script")
    if [ "$WARMUP" != 0 ]; then
        $(pin 1) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${WARMUP}s" "${args[@]}" "$url" >/dev/null 2>&1 || true
    fi
    log "wrk $name: -t$WRK_THREADS -c$CONNS -d${SECS}s $url"
    $(pin 1) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --latency "${args[@]}" "$url" >"$TMP/wrk-$name.txt" 2>&1 \
        || die "wrk $name failed: $(cat "$TMP/wrk-$name.txt")"
    local out; out=$(cat "$TMP/wrk-$name.txt")
    RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    P50[$name]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    local non2xx sock
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    sock=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' <<<"$out")
    ERRS[$name]=$(( ${non2xx:-0} + ${sock:-0} ))
}

IFS=, read -r -a TLIST <<<"$TARGETS"
for t in "${TLIST[@]}"; do
    case $t in
        mint) run_wrk mint "http://127.0.0.1:$GW_PORT$MINT_PATH" "$TMP/post.lua" ;;
        bare) run_wrk bare "http://127.0.0.1:$BARE_PORT$MINT_PATH" "$TMP/post.lua" ;;
        gw) run_wrk gw "http://127.0.0.1:$GW_PORT/static/page.html" ;;
        bareproxy) run_wrk bareproxy "http://127.0.0.1:$BAREPROXY_PORT/static/page.html" ;;
        nginx) run_wrk nginx "http://127.0.0.1:$NGINX_PORT/static/page.html" ;;
        origin) run_wrk origin "http://127.0.0.1:$ORIGIN_PORT/static/page.html" ;;
        *) die "unknown target $t" ;;
    esac
done

ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
label() {
    case $1 in
        mint) echo "mint (POST, gateway)" ;; bare) echo "bare responder (POST)" ;;
        gw) echo "pass-through GET via gateway" ;; nginx) echo "pass-through GET via nginx" ;;
        bareproxy) echo "pass-through GET via bare Pingora proxy" ;;
        origin) echo "origin direct (reference)" ;;
    esac
}
echo
echo "wrk -t$WRK_THREADS -c$CONNS -d${SECS}s; gateway and bare threads $THREADS (work_stealing $WORK_STEALING), nginx worker_processes $THREADS, $(nproc) cores"
echo
echo "| target | req/s | p50 ms | p99 ms | errors |"
echo "|---|---:|---:|---:|---:|"
for t in "${TLIST[@]}"; do
    echo "| $(label "$t") | ${RPS[$t]} | ${P50[$t]} | ${P99[$t]} | ${ERRS[$t]} |"
done
echo
if [ -n "${RPS[mint]:-}" ] && [ -n "${RPS[bare]:-}" ]; then
    echo "- mint/bare req/s: $(ratio "${RPS[mint]}" "${RPS[bare]}") (target >= 0.85); p99 mint/bare: $(ratio "${P99[mint]}" "${P99[bare]}")"
fi
if [ -n "${RPS[gw]:-}" ] && [ -n "${RPS[nginx]:-}" ]; then
    echo "- gateway/nginx req/s: $(ratio "${RPS[gw]}" "${RPS[nginx]}") (target >= 1.00); p99 gateway/nginx: $(ratio "${P99[gw]}" "${P99[nginx]}") (target <= 1.00)"
fi
if [ -n "${RPS[gw]:-}" ] && [ -n "${RPS[bareproxy]:-}" ]; then
    echo "- gateway/bare-proxy req/s: $(ratio "${RPS[gw]}" "${RPS[bareproxy]}"); bare-proxy/nginx: $(ratio "${RPS[bareproxy]}" "${RPS[nginx]:-0}")"
fi

# --- concurrent uploads -------------------------------------------------------------------
if [ "$UPLOADS" != 0 ]; then
    SIZE=$((UPLOAD_MB * 1048576))
    head -c "$SIZE" /dev/urandom >"$TMP/upload.bin"
    urls=()
    for i in $(seq 1 "$UPLOAD_COUNT"); do
        body="{\"filename\":\"clip$i.mp4\",\"content_type\":\"video/mp4\",\"file_size\":$SIZE}"
        resp=$(curl -sS -X POST -H 'authorization: Bearer demo-key' -H 'content-type: application/json' \
            --data "$body" "http://127.0.0.1:$GW_PORT$MINT_PATH")
        u=$(grep -o '"upload_url":"[^"]*"' <<<"$resp" | head -1 | sed 's/^"upload_url":"//; s/"$//')
        [ -n "$u" ] || die "mint for upload $i failed: $resp"
        urls+=("$u")
    done
    echo 5 >"/proc/$GW_PID/clear_refs" 2>/dev/null || true # reset VmHWM when allowed
    rss_before=$(awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status")
    (   peak=0
        while kill -0 "$GW_PID" 2>/dev/null && [ ! -e "$TMP/uploads.done" ]; do
            r=$(awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null || echo 0)
            [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$TMP/rss.peak"
            sleep 0.02
        done ) &
    SAMPLER=$!
    log "uploading $UPLOAD_COUNT x $UPLOAD_MB MB concurrently"
    t0=$(date +%s.%N)
    upids=()
    for i in "${!urls[@]}"; do
        curl -sS -o "$TMP/put-$i.out" -w '%{http_code}' -T "$TMP/upload.bin" \
            -H 'content-type: video/mp4' "${urls[$i]}" >"$TMP/put-$i.code" 2>"$TMP/put-$i.err" &
        upids+=($!)
    done
    for p in "${upids[@]}"; do wait "$p" || true; done
    t1=$(date +%s.%N)
    touch "$TMP/uploads.done"; wait "$SAMPLER" 2>/dev/null || true
    ok=0
    for i in "${!urls[@]}"; do [ "$(cat "$TMP/put-$i.code")" = 200 ] && ok=$((ok + 1)); done
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$GW_PID/status")
    peak=$(cat "$TMP/rss.peak" 2>/dev/null || echo 0)
    stored=$(find "$TMP/data" -type f -size "${SIZE}c" 2>/dev/null | wc -l)
    echo
    echo "| uploads | ok | stored | seconds | MB/s overall | RSS before MB | peak RSS MB (polled) | VmHWM MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -v n="$UPLOAD_COUNT" -v mb="$UPLOAD_MB" -v ok="$ok" -v st="$stored" -v t0="$t0" -v t1="$t1" \
        -v rb="$rss_before" -v pk="$peak" -v hw="$hwm" 'BEGIN {
        s = t1 - t0
        printf "| %d x %d MB PUT | %d | %d | %.2f | %.1f | %.1f | %.1f | %.1f |\n",
            n, mb, ok, st, s, n * mb / s, rb / 1024, pk / 1024, hw / 1024 }'
    [ "$ok" = "$UPLOAD_COUNT" ] || log "some uploads failed: $(cat "$TMP"/put-*.out | head -c 500)"
fi
