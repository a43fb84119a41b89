#!/usr/bin/env bash
# Soak test for presign-gateway (issue 13), loopback only, on a release build:
#
#   bash benches/soak.sh                                   # 8 minutes, the first 5 a warm-up
#   SOAK_MINUTES=30 bash benches/soak.sh 2>&1 | tee benches/results/soak-30min.txt
#
# It builds release, starts examples/origin (a fixed 1 KiB body) and the gateway (the embedded
# default's shape: local store in a temp dir, demo key, all four dialects, every limit at its
# default: header deadline 10 s, keep-alive 60 s), both on 127.0.0.1, and runs
# benches/soak_load.py against it for SOAK_MINUTES, at fixed rates (per second, by default):
#   from 127.0.0.1  120 mints (the four dialects in turn), 5 uploads (a mint, then a PUT or
#                   memories' multipart POST of 2 KiB to 4 MiB), 20 downloads of recent uploads
#                   (bytes compared by SHA-256), 100 pass-through GETs (the origin's body compared),
#                   20 mints over HTTPS on the TLS listener (a self-signed certificate made by
#                   openssl for the run), every 4th with a PUT and a GET; a new connection and
#                   a full handshake every 10 requests
#   from 127.0.0.2  40 connections trickling half a request line, 80 idle keep-alive
#                   connections (both reconnect once closed), 2 garbage request lines a second
# Every minute one line: the gateway's RSS (VmRSS, /proc/PID/status), its open descriptors
# (/proc/PID/fd), its open connections and refusals (/metrics), the honest requests ok/errors
# per kind, and the hostile connections opened/closed. Then the verdict, and the exit status:
# 0 only if, after the warm-up, RSS and descriptors stay within 10% of their first post-warm-up
# sample (its max against it), no honest request failed, every hostile connection was closed
# within its deadline + 5 s, and each kind kept at least 80% of its rate.
#
# Environment (default in brackets):
#   SOAK_MINUTES [8]            length of the run, minutes
#   SOAK_WARMUP_MINUTES [5]     the baseline is the sample at the end of this minute: RSS
#                               climbs for its first 4-5 minutes while mimalloc's page set
#                               fills (the live heap does not); the report also shows the
#                               growth against every earlier minute
#   SOAK_THREADS [2]            gateway worker threads
#   SOAK_MINT_RPS [120]  SOAK_UPLOAD_RPS [5]  SOAK_DOWNLOAD_RPS [20]  SOAK_PASS_RPS [100]
#   SOAK_TLS_RPS [20]           0 runs no TLS listener at all
#   SOAK_TRICKLERS [40]  SOAK_IDLERS [80]  SOAK_GARBAGE_RPS [2]
#   SOAK_BLOCKING_THREADS, SOAK_BLOCKING_IDLE_SECS   the gateway's server.blocking_threads and
#                               server.blocking_threads_idle_seconds (unset: its defaults)
#   SOAK_COOLDOWN_SECS [60]     after the load, the wait before an idle sample (informational)
#   SOAK_BUILD [1]              0 skips cargo build (the binaries must exist)
#   SOAK_HEAP_STATS [1]         1 builds with `--features heap-stats`: each minute then shows the
#                               live heap and what mimalloc's pages hold beside RSS, which tells
#                               a leak (the heap grows) from the allocator's cache (it does not)
#   SOAK_KEEP [0]               1 keeps the temp dir (config, logs, the store); on a failed
#                               run the gateway's log is kept anyway, under $CARGO_TARGET_DIR/soak/
#   CARGO_TARGET_DIR [target]   where cargo builds
# The gateway inherits the environment: MIMALLOC_ALLOW_THP=0 runs it with transparent huge
# pages off (mimalloc madvises its arena MADV_HUGEPAGE otherwise, and khugepaged's collapses
# show as steps in RSS; the start-up lines print the process's THP_enabled).
# Everything it starts is stopped on exit, also on Ctrl-C. Needs python3 (standard library).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[soak] $*"; }
die() { log "error: $*" >&2; exit 1; }

MINUTES=${SOAK_MINUTES:-8}
WARMUP=${SOAK_WARMUP_MINUTES:-5}
THREADS=${SOAK_THREADS:-2}
REL=${CARGO_TARGET_DIR:-target}/release
for v in MINUTES THREADS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "SOAK_$v must be a positive integer, not '${!v}'"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "SOAK_WARMUP_MINUTES must be a whole number, not '$WARMUP'"
[ "$MINUTES" -gt "$WARMUP" ] || die "SOAK_MINUTES ($MINUTES) must be more than SOAK_WARMUP_MINUTES ($WARMUP)"

# --- tools and build ----------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is needed"
TLS_RPS=${SOAK_TLS_RPS:-20}
[ "$TLS_RPS" = 0 ] || command -v openssl >/dev/null || die "openssl is needed for the TLS share (or SOAK_TLS_RPS=0)"
python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.2", 0))' 2>/dev/null ||
    die "cannot bind 127.0.0.2 (the hostile clients' address; Linux routes all of 127.0.0.0/8 to lo)"
FEATURES=()
[ "${SOAK_HEAP_STATS:-1}" = 1 ] && FEATURES=(--features heap-stats)
if [ "${SOAK_BUILD:-1}" = 1 ]; then
    log "cargo build --release --bin presign-gateway --example origin ${FEATURES[*]}"
    cargo build --release --bin presign-gateway --example origin "${FEATURES[@]}" >&2
fi
for b in "$REL/presign-gateway" "$REL/examples/origin"; do
    [ -x "$b" ] || die "$b not built (set CARGO_TARGET_DIR if cargo builds elsewhere)"
done

# --- temp dir, ports, processes -----------------------------------------------------------
TMP=$(mktemp -d -t presign-soak.XXXXXX)
declare -A PID # name -> pid
stop() {        # name: SIGTERM, then SIGKILL if it is still there after 10 s
    local p=${PID[$1]:-} i
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "PID[$1]"
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local n
    for n in "${!PID[@]}"; do stop "$n"; done
    if [ "${SOAK_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports below the ephemeral range (no outgoing connection holds them), never reused.
USED_PORTS=" "
next_port() { # sets PORT
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        USED_PORTS+="$p "
        port_open "$p" || { PORT=$p; return; }
    done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# True when process $1 itself listens on port $2 (ss), else when the port accepts at all.
listens() {
    if command -v ss >/dev/null; then
        ss -Hltnp "sport = :$2" 2>/dev/null | grep -q "pid=$1,"
    else
        port_open "$2"
    fi
}

# Waits (polling, bounded) until `name` listens on every port given; returns 1 when its bind
# failed (the log says the address is in use, so the caller starts it again on fresh ports),
# dies when it exits for another reason or does not listen within 30 s.
wait_listening() { # name log-file port...
    local name=$1 logf=$2 deadline=$((SECONDS + 30)) p ready
    shift 2
    while :; do
        if grep -qE 'in use|cannot listen' "$logf" 2>/dev/null; then return 1; fi
        kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited early; its log:
$(tail -n 20 "$logf")"
        ready=1
        for p in "$@"; do listens "${PID[$name]}" "$p" || ready=0; done
        [ "$ready" = 1 ] && return 0
        [ "$SECONDS" -lt "$deadline" ] || die "$name is not listening on $* after 30 s"
        sleep 0.05
    done
}

start_origin() {
    for _ in 1 2 3; do
        next_port; ORIGIN_PORT=$PORT
        "$REL/examples/origin" "127.0.0.1:$ORIGIN_PORT" >"$TMP/origin.log" 2>&1 &
        PID[origin]=$!
        wait_listening origin "$TMP/origin.log" "$ORIGIN_PORT" && return
        stop origin
    done
    die "the origin found no free port in 3 attempts"
}

start_gateway() {
    mkdir -p "$TMP/data"
    local tls_yaml="" ports blocking_yaml=""
    [ -n "${SOAK_BLOCKING_THREADS:-}" ] && blocking_yaml="  blocking_threads: $SOAK_BLOCKING_THREADS"
    [ -n "${SOAK_BLOCKING_IDLE_SECS:-}" ] && blocking_yaml+="${blocking_yaml:+
}  blocking_threads_idle_seconds: $SOAK_BLOCKING_IDLE_SECS"
    if [ "$TLS_RPS" != 0 ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj /CN=soak -addext subjectAltName=IP:127.0.0.1 \
            -keyout "$TMP/tls-key.pem" -out "$TMP/tls.pem" 2>/dev/null || die "openssl could not make the certificate"
    fi
    for _ in 1 2 3; do
        next_port; GW_PORT=$PORT
        next_port; METRICS_PORT=$PORT
        ports=("$GW_PORT" "$METRICS_PORT")
        if [ "$TLS_RPS" != 0 ]; then
            next_port; TLS_PORT=$PORT
            ports+=("$TLS_PORT")
            tls_yaml="tls:
  listen: 127.0.0.1:$TLS_PORT
  cert_file: $TMP/tls.pem
  key_file: $TMP/tls-key.pem"
        fi
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
metrics:
  listen: 127.0.0.1:$METRICS_PORT
server:
  pid_file: $TMP/gateway.pid
  upgrade_sock: $TMP/gateway.sock
  grace_period_seconds: 0
  graceful_shutdown_timeout_seconds: 1
$blocking_yaml
$tls_yaml
YAML
        # info: the start-up line ("presign-gateway listening on ...") is an info line.
        RUST_LOG=info "$REL/presign-gateway" -c "$TMP/gateway.yaml" >"$TMP/gateway.log" 2>&1 &
        PID[gateway]=$!
        if wait_listening gateway "$TMP/gateway.log" "${ports[@]}"; then
            grep -q "presign-gateway listening on 127.0.0.1:$GW_PORT" "$TMP/gateway.log" ||
                die "the gateway listens but never logged its start-up line"
            return
        fi
        stop gateway
    done
    die "the gateway found no free ports in 3 attempts"
}

# --- the run ------------------------------------------------------------------------------
log "$(date -u +%FT%TZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- . ':!benches/results' 2>/dev/null || echo ' (dirty)'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_origin
start_gateway
log "gateway pid ${PID[gateway]} on 127.0.0.1:$GW_PORT${TLS_PORT:+ and :$TLS_PORT (TLS)} (metrics :$METRICS_PORT, $THREADS threads), origin :$ORIGIN_PORT, store $TMP/data"
log "$(grep -m1 -o 'allocator: .*' "$TMP/gateway.log" || echo 'allocator: (not logged)')"
log "$(grep -m1 'file descriptors:' "$TMP/gateway.log" | sed 's/^.*presign_gateway\] //'); $(grep -h THP_enabled "/proc/${PID[gateway]}/status" | tr -s '\t' ' '); THP mode $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')"

status=0
TLS_ARGS=()
[ "$TLS_RPS" = 0 ] || TLS_ARGS=(--tls "127.0.0.1:$TLS_PORT" --ca "$TMP/tls.pem")
python3 benches/soak_load.py --gateway "127.0.0.1:$GW_PORT" --metrics "127.0.0.1:$METRICS_PORT" \
    --pid "${PID[gateway]}" --minutes "$MINUTES" --warmup "$WARMUP" "${TLS_ARGS[@]}" || status=$?

warns=$(grep -cE '^\[[^]]* (WARN|ERROR) ' "$TMP/gateway.log" || true)
log "gateway log: $(wc -l <"$TMP/gateway.log") lines, $(du -h "$TMP/gateway.log" | cut -f1), $warns warnings or errors; store $(du -sh "$TMP/data" | cut -f1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$warns" -gt 0 ]; then
    log "its warnings and errors by source (count, level, target):"
    grep -oE '^\[[^]]* (WARN|ERROR) +[^] ]+' "$TMP/gateway.log" | awk '{print $(NF-1), $NF}' |
        sort | uniq -c | sort -rn | head -n 10 | sed 's/^/[soak]   /'
    # The hostile traffic's own (pingora_proxy: "Fail to proxy" on a header timeout; edge: the
    # refusal lines) are expected; show the first few of any other.
    grep -E '^\[[^]]* (WARN|ERROR) ' "$TMP/gateway.log" | grep -vE ' (pingora_proxy|edge)\] ' |
        head -n 10 | cut -c1-400 | sed 's/^/[soak]   /' || true
fi
if [ "$status" -ne 0 ] && [ "${SOAK_KEEP:-0}" != 1 ]; then
    mkdir -p "${CARGO_TARGET_DIR:-target}/soak"
    cp "$TMP/gateway.log" "${CARGO_TARGET_DIR:-target}/soak/gateway.log"
    log "failed: the gateway's log is kept at ${CARGO_TARGET_DIR:-target}/soak/gateway.log"
fi
exit "$status"
