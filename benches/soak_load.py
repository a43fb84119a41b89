"""The load and the report of benches/soak.sh (run it through the script, which starts the
gateway and the origin and passes their addresses).

Usage: python3 benches/soak_load.py --gateway 127.0.0.1:PORT --metrics 127.0.0.1:PORT --pid PID
           [--tls 127.0.0.1:PORT --ca CERT.pem] [--minutes M] [--warmup W] [--origin-body-len N]

For M minutes it drives, at fixed rates, from 127.0.0.1 (honest, keep-alive connections):
  mint      mints on the four dialects' routes, round robin (Bearer demo-key; memories: raw key)
  upload    a mint then its upload: PUT to the URL (API Mall, OctopusX, Ctxfy) or memories'
            multipart POST; 2 KiB to 4 MiB of random bytes, remembered with their SHA-256
  download  GET of a recent upload's public URL: status, length and SHA-256 compared
  pass      GET pass-through to the origin: status and the origin's exact body compared
  tls       with --tls: over HTTPS (HTTP/1.1, the certificate verified against --ca), a mint
            whose URLs must be https on the TLS listener, and every 4th time a 2-64 KiB PUT to
            it and a GET of its public URL (SHA-256 compared); a new connection, so a new
            handshake, every TLS_REQUESTS_PER_CONN requests
and from 127.0.0.2 (hostile, asyncio):
  trickle   a constant population of connections sending "GET /api/v1/fil" one byte a second,
            reconnecting once the gateway closes them (header deadline: 408 at 10 s)
  idle      a constant population of keep-alive connections, one request then silence,
            reconnecting once closed (keep-alive timeout: 60 s)
  garbage   connections at a fixed rate sending a garbage request line (400 at once, or a
            408 at the header deadline when it never ends a line)

Every minute one line: the gateway's RSS (VmRSS of /proc/PID/status; in brackets the part of
it in transparent huge pages, AnonHugePages of /proc/PID/smaps_rollup) and open descriptors
(/proc/PID/fd), its open client connections and refusal counters (/metrics), and for that
minute the honest requests ok/errors per kind, their p99 latency, and the hostile
connections opened/closed per kind. Then, once the load has stopped and SOAK_COOLDOWN_SECS
[60] have passed, the gateway's RSS and descriptors with no client (informational), the
totals and the verdict; exit status 0 when it passes, 1 when it does not. Standard library only.
"""

import argparse
import asyncio
import collections
import hashlib
import http.client
import json
import os
import random
import ssl
import sys
import threading
import time
import urllib.parse

KEY = "demo-key"
HONEST_ADDR = "127.0.0.1"
HOSTILE_ADDR = "127.0.0.2"
HONEST_KINDS = ("mint", "upload", "download", "pass", "tls")
HOSTILE_KINDS = ("trickle", "idle", "garbage")
TIMEOUT = 30.0  # seconds for any one honest request
SLACK = 5.0  # seconds past a gateway deadline a hostile connection may take to be closed
RSS_FD_TOLERANCE = 0.10  # the verdict: max after the warm-up within 10% of its first sample
MIN_DONE_SHARE = 0.8  # the verdict: each kind's workers ran at least 80% of their time slots
TLS_REQUESTS_PER_CONN = 10  # then the tls worker reconnects: a full handshake each time

# Upload sizes: (share, smallest, largest) in bytes, uniform within a bucket. Mean ~290 KiB.
UPLOAD_SIZES = ((0.70, 2 << 10, 64 << 10), (0.25, 64 << 10, 1 << 20), (0.05, 1 << 20, 4 << 20))

GARBAGE = (
    b"GARBAGE\r\n\r\n",
    b"BREW /pot HTCPCP/1.0\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nno colon in this header\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n",
    b"\xff\xfe\xfd" * 100,
    b"\r\n\r\n\r\n",  # blank lines only: never a request line, so the header deadline (408)
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gateway", required=True, help="host:port of the gateway (loopback)")
    p.add_argument("--metrics", required=True, help="host:port of its metrics listener")
    p.add_argument("--pid", required=True, type=int, help="the gateway's pid")
    p.add_argument("--tls", help="host:port of the gateway's TLS listener (the tls kind)")
    p.add_argument("--ca", help="the PEM certificate the TLS listener's is checked against")
    p.add_argument("--minutes", type=int, default=8)
    p.add_argument("--warmup", type=int, default=5, help="minutes before the baseline sample")
    p.add_argument("--origin-body-len", type=int, default=1024)
    p.add_argument("--header-timeout", type=float, default=10.0)
    p.add_argument("--keepalive-timeout", type=float, default=60.0)
    a = p.parse_args()
    for hp in (a.gateway, a.metrics):
        if not hp.startswith("127."):
            p.error(f"{hp}: loopback (127.0.0.0/8) only")
    if a.minutes <= a.warmup:
        p.error("--minutes must be greater than --warmup (at least one sample after the warm-up)")
    return a


def env_num(name, default, kind=float):
    v = os.environ.get(name)
    return default if v in (None, "") else kind(v)


# --- what the gateway's process looks like -------------------------------------------------
def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def anon_kib(pid):
    """RssAnon: the part of RSS that is the process's own memory (heap, stacks), without the
    binary's and libraries' pages, which grow as more of the code runs and are reclaimable."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return -1


def huge_pages_kib(pid):
    """AnonHugePages of the process (transparent huge pages, counted in its RSS): mimalloc
    madvises its arenas MADV_HUGEPAGE, so a 2 MiB page may stand for a few small allocations."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def scrape_metrics(hostport):
    """The few gauges and counters the report shows, from the gateway's /metrics."""
    c = http.client.HTTPConnection(hostport, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    want = {
        "presign_connections_open": "conns",
        'presign_connections_refused_total{reason="header_timeout"}': "408",
        'presign_connections_refused_total{reason="bad_request"}': "400",
        'presign_connections_refused_total{reason="per_ip_cap"}': "capped",
        # With `--features heap-stats` only (src/heap_stats.rs).
        "presign_heap_live_bytes": "heap",
        "presign_heap_pages_touched_bytes": "in_pages",
        "presign_heap_pages_used_bytes": "pages_used",
    }
    out = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in want:
            out[want[name]] = int(float(value))
    return out


# --- counters shared by the threads ----------------------------------------------------------
class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = collections.Counter()
        self.err = collections.Counter()
        self.ran = collections.Counter()  # worker kind -> time slots run
        self.skipped = collections.Counter()  # worker kind -> time slots missed (fell behind)
        self.lat = collections.defaultdict(list)  # kind -> seconds, this minute
        self.all_lat = collections.defaultdict(list)  # kind -> seconds, whole run
        self.errors = collections.Counter()  # (kind, reason) -> count
        self.opened = collections.Counter()
        self.closed = collections.Counter()
        self.late = collections.Counter()
        self.worst_close = collections.defaultdict(float)  # kind -> seconds
        self.hostile_open = 0
        self.uploaded_bytes = 0

    def honest(self, kind, seconds, error=None):
        with self.lock:
            if error is None:
                self.ok[kind] += 1
            else:
                self.err[kind] += 1
                self.errors[(kind, error[:160])] += 1
            self.lat[kind].append(seconds)
            self.all_lat[kind].append(seconds)

    def snapshot(self):
        """Copies of the counters, and the latencies since the last snapshot."""
        with self.lock:
            snap = {
                "ok": self.ok.copy(), "err": self.err.copy(),
                "opened": self.opened.copy(), "closed": self.closed.copy(),
                "late": sum(self.late.values()), "hostile_open": self.hostile_open,
                "lat": [s for k in HONEST_KINDS for s in self.lat[k]],
            }
            self.lat.clear()
        return snap


def quantile(values, q):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def slope(points):
    """Least-squares slope of (x, y) points; 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else 0


# --- honest clients (threads, http.client, one keep-alive connection each) ------------------
class Failed(Exception):
    """An honest request that did not get the answer it should have."""


class Honest:
    def __init__(self, gateway, stats, origin_body, stop, tls=None, ca=None):
        self.host, port = gateway.split(":")
        self.port = int(port)
        self.tls = tls
        self.tls_context = ssl.create_default_context(cafile=ca) if tls else None
        self.stats = stats
        self.origin_body = origin_body
        self.stop = stop
        self.recent = collections.deque(maxlen=500)  # (path, length, sha256) of uploads
        self.counter = 0
        self.counter_lock = threading.Lock()

    def next_n(self):
        with self.counter_lock:
            self.counter += 1
            return self.counter

    def connection(self, kind):
        if kind == "tls":
            host, port = self.tls.split(":")
            return http.client.HTTPSConnection(host, int(port), timeout=TIMEOUT, context=self.tls_context,
                                               source_address=(HONEST_ADDR, 0))
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT, source_address=(HONEST_ADDR, 0))

    @staticmethod
    def exchange(conn, method, path, body=None, headers=None):
        """One request on the worker's connection; (status, headers, body). A failure closes the
        connection so the next request opens a fresh one."""
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            if r.will_close:
                conn.close()
            return r.status, r, data
        except Exception:
            conn.close()
            raise

    def timed(self, kind, fn, conn):
        """Run one honest request, count it under `kind`; its result, or None when it failed."""
        t0 = time.monotonic()
        try:
            result = fn(conn)
            self.stats.honest(kind, time.monotonic() - t0)
            return result
        except Failed as e:
            self.stats.honest(kind, time.monotonic() - t0, str(e))
        except Exception as e:  # transport: reset, timeout, refused, a body that is not JSON
            self.stats.honest(kind, time.monotonic() - t0, f"{type(e).__name__}: {e}")
        return None

    # One mint on `dialect`; the answer's (upload URL, public path).
    def mint(self, conn, dialect, size, origin=None):
        n = self.next_n()
        if dialect == "apimall":
            path, auth = "/api/v1/files/upload-url", f"Bearer {KEY}"
            body = {"filename": f"soak-{n}.png", "content_type": "image/png", "file_size": size}
        elif dialect == "octopusx":
            path, auth = "/api/upload/presign", f"Bearer {KEY}"
            body = {"file_name": f"soak-{n}.png", "content_type": "image/png", "expires_in": 900}
        elif dialect == "ctxfy":
            path, auth = "/v1/upload/s3", f"Bearer {KEY}"
            body = {"filename": f"soak {n}", "contentType": "image/png", "size": size}
        else:
            path, auth = "/serve/api/v2/upload/signed-url", KEY
            body = {"original_filename": f"soak-{n}.mp4"}
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        status, _, data = self.exchange(conn, "POST", path, json.dumps(body).encode(), headers)
        if status != 200:
            raise Failed(f"{dialect} mint: HTTP {status}: {data[:100]!r}")
        v = json.loads(data)
        if dialect in ("apimall", "octopusx"):
            url, public = v["data"]["upload_url"], v["data"]["public_url"]
        elif dialect == "ctxfy":
            url, public = v["uploadUrl"], v["publicUrl"]
        else:
            url = v["data"]["signed_url"]
            public = url.split("?", 1)[0]
        return self.local_path(url, origin), self.local_path(public, origin)

    def local_path(self, url, origin=None):
        """The path and query of a URL that must be on the gateway (`origin`: scheme://host:port,
        by default the plain listener's)."""
        u = urllib.parse.urlsplit(url)
        if f"{u.scheme}://{u.netloc}" != (origin or f"http://{self.host}:{self.port}"):
            raise Failed(f"URL not on the gateway: {url[:100]}")
        return u.path + (f"?{u.query}" if u.query else "")

    def do_mint(self, conn, i):
        dialect = ("apimall", "octopusx", "memories", "ctxfy")[i % 4]
        self.timed("mint", lambda c: self.mint(c, dialect, 1234), conn)

    def do_upload(self, conn, i, rng):
        dialect = ("apimall", "octopusx", "memories", "ctxfy")[i % 4]
        share, lo, hi = UPLOAD_SIZES[-1]
        x = rng.random()
        for share, lo, hi in UPLOAD_SIZES:
            if x < share:
                break
            x -= share
        data = rng.randbytes(rng.randint(lo, hi))
        digest = hashlib.sha256(data).hexdigest()
        minted = self.timed("mint", lambda c: self.mint(c, dialect, len(data)), conn)
        if minted is None:
            return
        url, public = minted

        def put(c):
            if dialect == "memories":
                boundary = f"soak-{rng.getrandbits(64):016x}"
                head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="soak.mp4"\r\n'
                        "Content-Type: video/mp4\r\n\r\n").encode()
                body = head + data + f"\r\n--{boundary}--\r\n".encode()
                headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
                status, _, answer = self.exchange(c, "POST", url, body, headers)
            else:
                status, _, answer = self.exchange(c, "PUT", url, data, {"Content-Type": "image/png"})
            if not 200 <= status < 300:
                raise Failed(f"{dialect} upload of {len(data)} bytes: HTTP {status}: {answer[:100]!r}")
            self.recent.append((public, len(data), digest))
            with self.stats.lock:
                self.stats.uploaded_bytes += len(data)

        self.timed("upload", put, conn)

    def do_download(self, conn, rng):
        if not self.recent:
            return False  # nothing uploaded yet: not a request, not counted
        path, length, digest = rng.choice(self.recent)

        def get(c):
            status, _, data = self.exchange(c, "GET", path)
            if status != 200:
                raise Failed(f"GET {path[:60]}: HTTP {status}")
            if len(data) != length or hashlib.sha256(data).hexdigest() != digest:
                raise Failed(f"GET {path[:60]}: {len(data)} bytes, not the {length} uploaded")

        self.timed("download", get, conn)
        return True

    def do_tls(self, conn, i, rng):
        dialect = ("apimall", "octopusx", "ctxfy", "memories")[i % 4]
        data = rng.randbytes(rng.randint(2 << 10, 64 << 10)) if i % 4 == 0 else b""
        minted = self.timed("tls", lambda c: self.mint(c, dialect, len(data) or 1234, f"https://{self.tls}"), conn)
        if minted is None or not data:
            return
        url, public = minted

        def put_and_get(c):
            status, _, answer = self.exchange(c, "PUT", url, data, {"Content-Type": "image/png"})
            if not 200 <= status < 300:
                raise Failed(f"tls upload of {len(data)} bytes: HTTP {status}: {answer[:100]!r}")
            status, _, back = self.exchange(c, "GET", public)
            if status != 200 or hashlib.sha256(back).digest() != hashlib.sha256(data).digest():
                raise Failed(f"tls GET {public[:60]}: HTTP {status}, {len(back)} bytes of {len(data)}")
            with self.stats.lock:
                self.stats.uploaded_bytes += len(data)

        self.timed("tls", put_and_get, conn)

    def do_pass(self, conn, i):
        def get(c):
            status, _, data = self.exchange(c, "GET", f"/soak/page-{i % 100}.html")
            if status != 200:
                raise Failed(f"pass-through: HTTP {status}: {data[:100]!r}")
            if data != self.origin_body:
                raise Failed(f"pass-through: body of {len(data)} bytes is not the origin's")

        self.timed("pass", get, conn)

    def worker(self, kind, rate, workers, index, t0):
        """One thread at rate/workers requests a second, staggered among its kind's workers.
        A worker that falls behind skips the slots it missed (no burst to catch up)."""
        interval = workers / rate
        due = t0 + interval * index / workers
        rng = random.Random(f"{kind}-{index}")
        conn = self.connection(kind)
        i = index
        while not self.stop.is_set():
            wait = due - time.monotonic()
            if wait > 0:
                self.stop.wait(wait)
                continue
            ran = True
            if kind == "mint":
                self.do_mint(conn, i)
            elif kind == "upload":
                self.do_upload(conn, i, rng)
            elif kind == "download":
                ran = self.do_download(conn, rng)
            elif kind == "tls":
                self.do_tls(conn, i, rng)
                if (i // workers) % TLS_REQUESTS_PER_CONN == TLS_REQUESTS_PER_CONN - 1:
                    conn.close()  # the next request opens a new connection: a full handshake
            else:
                self.do_pass(conn, i)
            i += workers
            due += interval
            now = time.monotonic()
            missed = int((now - due) / interval) if due < now - interval else 0
            if missed:
                due += missed * interval
            with self.stats.lock:
                self.stats.ran[kind] += ran
                self.stats.skipped[kind] += missed
        conn.close()


# --- hostile clients (asyncio, from 127.0.0.2) ----------------------------------------------
class Hostile:
    def __init__(self, host, port, stats, header_timeout, keepalive_timeout):
        self.host, self.port, self.stats = host, port, stats
        self.header_timeout, self.keepalive_timeout = header_timeout, keepalive_timeout

    async def connect(self, kind):
        r, w = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, local_addr=(HOSTILE_ADDR, 0)), 10)
        with self.stats.lock:
            self.stats.opened[kind] += 1
            self.stats.hostile_open += 1
        return r, w

    def ended(self, kind, took, deadline, closed_by_gateway):
        with self.stats.lock:
            self.stats.hostile_open -= 1
            if closed_by_gateway:
                self.stats.closed[kind] += 1
                self.stats.worst_close[kind] = max(self.stats.worst_close[kind], took)
            if not closed_by_gateway or took > deadline + SLACK:
                self.stats.late[kind] += 1

    @staticmethod
    async def until_eof(r, limit):
        """Read until the gateway closes; True if it did within `limit` seconds."""
        async def drain():
            try:
                while await r.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass
        try:
            await asyncio.wait_for(drain(), limit)
            return True
        except asyncio.TimeoutError:
            return False

    async def trickle(self, delay):
        """Half a request line, a byte a second, again and again."""
        await asyncio.sleep(delay)
        while True:
            try:
                r, w = await self.connect("trickle")
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(1)
                continue
            t0 = time.monotonic()

            async def feed():
                try:
                    for b in b"GET /api/v1/fil":
                        w.write(bytes([b]))
                        await w.drain()
                        await asyncio.sleep(1)
                except (ConnectionError, OSError):
                    pass
                await asyncio.Event().wait()

            feeder = asyncio.ensure_future(feed())
            try:
                closed = await self.until_eof(r, self.header_timeout + SLACK + 30)
            finally:
                feeder.cancel()
                w.close()
            self.ended("trickle", time.monotonic() - t0, self.header_timeout, closed)

    async def idle(self, delay):
        """One request, its whole answer, then silence until the gateway hangs up."""
        await asyncio.sleep(delay)
        while True:
            try:
                r, w = await self.connect("idle")
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(1)
                continue
            t0 = time.monotonic()
            try:
                w.write(b"GET /files/soak-none HTTP/1.1\r\nHost: gw\r\n\r\n")
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await asyncio.wait_for(r.readexactly(length), 30)
                t0 = time.monotonic()  # the keep-alive timeout counts from the answer
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                pass
            try:
                closed = await self.until_eof(r, self.keepalive_timeout + SLACK + 30)
            finally:
                w.close()
            self.ended("idle", time.monotonic() - t0, self.keepalive_timeout, closed)

    async def garbage(self, payload):
        try:
            r, w = await self.connect("garbage")
        except (OSError, asyncio.TimeoutError):
            return
        t0 = time.monotonic()
        try:
            w.write(payload)
            closed = await self.until_eof(r, self.header_timeout + SLACK + 30)
        finally:
            w.close()
        self.ended("garbage", time.monotonic() - t0, self.header_timeout, closed)

    async def run(self, tricklers, idlers, garbage_rate, stop):
        tasks = [asyncio.ensure_future(self.trickle(i * self.header_timeout / max(tricklers, 1)))
                 for i in range(tricklers)]
        tasks += [asyncio.ensure_future(self.idle(i * self.keepalive_timeout / max(idlers, 1)))
                  for i in range(idlers)]
        n, due = 0, time.monotonic()
        while not stop.is_set():
            if garbage_rate > 0 and time.monotonic() >= due:
                tasks.append(asyncio.ensure_future(self.garbage(GARBAGE[n % len(GARBAGE)])))
                n += 1
                due += 1 / garbage_rate
            tasks = [t for t in tasks if not t.done()]
            await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- the run -----------------------------------------------------------------------------------
def main():
    a = parse_args()
    rates = {
        "mint": env_num("SOAK_MINT_RPS", 120),
        "upload": env_num("SOAK_UPLOAD_RPS", 5),
        "download": env_num("SOAK_DOWNLOAD_RPS", 20),
        "pass": env_num("SOAK_PASS_RPS", 100),
        "tls": env_num("SOAK_TLS_RPS", 20) if a.tls else 0,
    }
    workers = {"mint": 3, "upload": 3, "download": 3, "pass": 3, "tls": 2}
    tricklers = env_num("SOAK_TRICKLERS", 40, int)
    idlers = env_num("SOAK_IDLERS", 80, int)
    garbage_rate = env_num("SOAK_GARBAGE_RPS", 2)
    origin_body = bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(a.origin_body_len))

    stats = Stats()
    stop = threading.Event()
    honest = Honest(a.gateway, stats, origin_body, stop, a.tls, a.ca)
    host, port = a.gateway.split(":")
    hostile = Hostile(host, int(port), stats, a.header_timeout, a.keepalive_timeout)

    print(f"[soak] {a.minutes} min, warm-up {a.warmup} min; honest from {HONEST_ADDR} per second: "
          + ", ".join(f"{k} {v:g}" for k, v in rates.items())
          + f" (upload = mint + upload; tls = a mint over HTTPS, every 4th with a PUT and a GET)"
          f"; hostile from {HOSTILE_ADDR}: {tricklers} trickling, "
          f"{idlers} idle keep-alive, {garbage_rate:g} garbage/s", flush=True)
    start_rss, start_fds = rss_kib(a.pid), open_fds(a.pid)
    print(f"[soak] start: rss {start_rss} KiB, fds {start_fds}", flush=True)
    print("[soak] each minute: rss (anon = of it the process's own memory, not the binary's pages; "
          "thp = of it in transparent huge pages; with heap-stats, heap = "
          "live heap bytes, pages = what mimalloc's pages hold (blocks carved, resident unless "
          "purged), used = of that the blocks their owning thread has not yet seen freed; all KiB); "
          "ok/errors per honest kind and hostile opened/closed in that minute; "
          "conns = the gateway's open client connections, 408/400 = its header-timeout and "
          "bad-request refusals in that minute", flush=True)

    t0 = time.monotonic()
    threads = [threading.Thread(target=honest.worker, args=(k, rates[k], workers[k], i, t0), daemon=True)
               for k in HONEST_KINDS if rates[k] > 0 for i in range(workers[k])]
    threads.append(threading.Thread(
        target=lambda: asyncio.run(hostile.run(tricklers, idlers, garbage_rate, stop)), daemon=True))
    for t in threads:
        t.start()

    samples = []  # (minute, rss, fds)
    prev = stats.snapshot()
    prev_metrics = scrape_metrics(a.metrics)
    dead = None
    for minute in range(1, a.minutes + 1):
        end = t0 + 60 * minute
        while time.monotonic() < end and not dead:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            if not os.path.exists(f"/proc/{a.pid}/status"):
                dead = f"the gateway (pid {a.pid}) exited during minute {minute}"
        if dead:
            break
        rss, fds, thp, anon = rss_kib(a.pid), open_fds(a.pid), huge_pages_kib(a.pid), anon_kib(a.pid)
        try:
            m = scrape_metrics(a.metrics)
        except (OSError, http.client.HTTPException):
            m = {}
        snap = stats.snapshot()
        samples.append((minute, rss, fds))
        def delta(counter, k):
            return snap[counter][k] - prev[counter][k]
        honest_cols = "  ".join(f"{k} {delta('ok', k)}/{delta('err', k)}" for k in HONEST_KINDS if rates[k] > 0)
        hostile_cols = "  ".join(f"{k} {delta('opened', k)}/{delta('closed', k)}" for k in HOSTILE_KINDS)
        print(f"[soak] min {minute:2d}  rss {rss} KiB (anon {anon}, thp {thp}{heap_cols(m)})  fds {fds}  conns {m.get('conns', -1)} | "
              f"{honest_cols}  p99 {quantile(snap['lat'], 0.99) * 1000:.1f} ms | "
              f"hostile {hostile_cols}  late {snap['late']} | "
              f"gw 408 {m.get('408', 0) - prev_metrics.get('408', 0)}  400 {m.get('400', 0) - prev_metrics.get('400', 0)}",
              flush=True)
        prev, prev_metrics = snap, m

    stop.set()
    for t in threads:
        t.join(timeout=TIMEOUT + 5)
    if not dead:
        cool_down(a.pid, start_rss, start_fds, env_num("SOAK_COOLDOWN_SECS", 60), a.metrics)
    return report(a, stats, samples, rates, dead)


def heap_cols(m):
    """", heap L, pages P, used U" in KiB when the gateway reports its heap (heap-stats), else ""."""
    if "heap" not in m:
        return ""
    return f", heap {m['heap'] // 1024}, pages {m.get('in_pages', 0) // 1024}, used {m.get('pages_used', 0) // 1024}"


def cool_down(pid, start_rss, start_fds, secs, metrics):
    """Informational: the gateway with no client at all, `secs` after the load stopped (every
    connection closed by our side). Live memory stays; what the allocator purges goes."""
    end = time.monotonic() + secs
    while time.monotonic() < end and os.path.exists(f"/proc/{pid}/status"):
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    try:
        try:
            m = scrape_metrics(metrics)
        except (OSError, http.client.HTTPException):
            m = {}
        print(f"[soak] {secs:g} s after the load stopped: rss {rss_kib(pid)} KiB (thp {huge_pages_kib(pid)}{heap_cols(m)}), "
              f"fds {open_fds(pid)} (at start: rss {start_rss} KiB, fds {start_fds})", flush=True)
    except OSError:
        print("[soak] the gateway exited after the load stopped", flush=True)


def report(a, stats, samples, rates, dead):
    print("[soak] totals:", flush=True)
    for k in (k for k in HONEST_KINDS if rates[k] > 0):
        lat = stats.all_lat[k]
        print(f"[soak]   {k:8s} {stats.ok[k]} ok, {stats.err[k]} errors; "
              f"latency p50 {quantile(lat, 0.5) * 1000:.1f} ms, p99 {quantile(lat, 0.99) * 1000:.1f} ms, "
              f"max {max(lat, default=0) * 1000:.1f} ms")
    for (kind, why), n in sorted(stats.errors.items()):
        print(f"[soak]   error: {kind}: {why} (x{n})")
    print(f"[soak]   uploaded {stats.uploaded_bytes / 1048576:.0f} MiB")
    for k in HOSTILE_KINDS:
        deadline = a.header_timeout if k != "idle" else a.keepalive_timeout
        print(f"[soak]   {k:8s} {stats.opened[k]} opened, {stats.closed[k]} closed by the gateway, "
              f"slowest close {stats.worst_close[k]:.2f} s (deadline {deadline:g} s + {SLACK:g} s), "
              f"{stats.late[k]} late or never closed")

    checks = []
    if dead:
        checks.append((False, dead))
    after = [s for s in samples if s[0] >= a.warmup]
    if after:
        for name, idx, unit in (("rss", 1, " KiB"), ("fds", 2, "")):
            first = after[0][idx]
            top = max(s[idx] for s in after)
            growth = (top - first) / first if first else 0.0
            checks.append((top <= first * (1 + RSS_FD_TOLERANCE),
                           f"{name}: {first}{unit} at minute {after[0][0]}, max {top}{unit} after it "
                           f"({growth:+.1%}, limit +{RSS_FD_TOLERANCE:.0%})"))
        # Not part of the verdict: what the RSS check would say with a shorter or longer warm-up.
        print("[soak] rss growth (informational) with the baseline at minute "
              + ", ".join(f"{m}: {(max(r for n, r, _ in samples if n >= m) - base) / base:+.1%}"
                          for m, base, _ in samples[:-1] if base), flush=True)
        # Not part of the verdict: a leak grows steadily, allocator and THP steps do not.
        for name, idx in (("rss", 1), ("fds", 2)):
            print(f"[soak] trend (informational) {name}: {slope([(s[0], s[idx]) for s in after]):+.1f} a minute "
                  f"(least squares over minutes {after[0][0]}-{after[-1][0]}); median of the first five "
                  f"{median(s[idx] for s in after[:5])}, of the last five {median(s[idx] for s in after[-5:])}")
    else:
        checks.append((False, "no sample after the warm-up"))
    errors = sum(stats.err.values())
    checks.append((errors == 0, f"honest errors: {errors}"))
    late = sum(stats.late.values())
    checks.append((late == 0, f"hostile connections closed late or never: {late}"))
    closed = sum(stats.closed.values())
    checks.append((closed > 0, f"hostile connections closed by the gateway: {closed}"))
    for k in HONEST_KINDS:
        if rates[k] > 0:
            ran, slots = stats.ran[k], stats.ran[k] + stats.skipped[k]
            share = ran / slots if slots else 0.0
            checks.append((share >= MIN_DONE_SHARE,
                           f"{k} workers kept their rate: {ran} of {slots} time slots run ({share:.0%})"))
    for ok, what in checks:
        print(f"[soak] {'ok  ' if ok else 'FAIL'} {what}")
    passed = all(ok for ok, _ in checks)
    print(f"[soak] verdict: {'PASS' if passed else 'FAIL'}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
