#!/usr/bin/env python3
"""`make soak`: a long run of mixed traffic against the release server while the admin CLI
creates, rotates, disables, enables and deletes keys in S3 (s3s-fs), with the server polling the
store every second. The store holds 400 keys no one presents besides, so that the keys file is too
large to be folded at every change: each change is an object beside it, which the server applies
in place (and every 64th is folded in). Every answer is checked against what its key's state allowed at that moment,
every change must reach the server within one poll interval (plus the poll's own time), and
the server's memory and descriptors must stay flat. Results go to target/bench/soak.json
(bench/report.py puts them in BENCHMARKS.md); the exit status is 1 if any check failed.

The oracle: the CLI is the only writer, one change at a time, and for each change the time the
CLI started and returned is kept. A key's state after a change may be served from the moment the
CLI started until one interval plus MARGIN after the next change returned (or until a probe has
seen the server answer per the next state: the server swaps its key set atomically, so it never
goes back). An answer is expected if some state that may have been served during its request
allows it. Expiries and the end of a grace period are instants of the server's clock, which is
this machine's: within EDGE of one, either side is accepted.

Propagation is checked twice for every change made during the run: by the server's own
`keys_changed` event naming the key, and, where the change alters what a secret gets, by a probe
on /verify. Both must come within one interval plus MARGIN of the CLI's return.

For the middle third of the run, REPLICAS more servers on the same store share their counts
(rate limits, usage) through a Redis of the soak's own, and a client of their own spreads
requests over them. Their answers are judged by the same oracle; the usage Redis holds
afterwards must be, key by key, what their client received, and the rate-limited key must pass
through them together no more than through one server, plus a lease per replica.

usage: bench/soak.py [--seconds N] [--rps N] [--processes N] [--redis-rps N]
       (SOAK_SECONDS sets the default duration, 600 s)
"""
import argparse
import bisect
import collections
import dataclasses
import datetime
import http.client
import json
import os
import random
import resource
import re
import secrets as csprng
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import zlib
from pathlib import Path

from redis_server import RedisServer

if sys.version_info < (3, 10):
    sys.exit(f"bench/soak.py needs Python 3.10 or newer; this is {sys.version.split()[0]}")

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "target" / "bench"
SERVER = REPO / "target" / "release" / "heare-auth-server"
CLI = REPO / "target" / "release" / "heare-auth"
S3S_FS = REPO / ".cache" / "tools" / "bin" / "s3s-fs"
BUCKET, ACCESS_KEY, SECRET_KEY = "heare-keys", "soak-access", "soak-secret-0123456789"

INTERVAL = 1.0  # the server's REFRESH_INTERVAL
# What a change may take beyond the interval, from the CLI's return: the time of one poll. A
# poll starts one interval after the last one ended, so a write is loaded at most an interval
# plus the next poll's time after it; the write is earlier than the CLI's return (the CLI reads
# the object back, and exits); and a write landing inside a poll, after its HEAD, waits for the
# rest of that poll too, but the mutator changes a key 0.2 s or more after the last change was
# served, so that poll found nothing new: a LIST and a HEAD alone, shorter than the CLI's read
# back. A poll (the loader waking, a LIST of the changes, a GET of each new one, its
# application, a HEAD) took 62 ms at p99 and at most 0.07 s in a 300 s run; before change
# objects (a HEAD, a GET of the whole object, the parse) 5 ms (median), 65 ms (p99)
# and at most 0.15 s in a 600 s run under the soak's own load: the margin covers that, and the
# probe's 20 ms step. Other work keeping both cores busy (compilers) stretches polls (0.33 s,
# once 0.83 s, in trial runs while the loader ran at idle priority), and then a change can
# arrive late and fail the run; poll_times() and the samples' other_work_cores show when.
MARGIN = 0.2
SLACK = INTERVAL + MARGIN
EDGE = 0.05  # seconds either side of an expiry or a grace period's end
SAMPLE_EVERY = 2.0
RATE_LIMIT = (5, 1)  # the rate-limited key: 5 requests per 1 s
DYNAMIC_KEYS = (3, 10)  # the mutator keeps between 3 and 10 keys of its own
FILLER_KEYS = 400  # keys no one presents, so that changes are stored beside the keys file
RETIRE_AFTER = 20.0  # a deleted key's secrets are still sent for this long
HEADER_TIMEOUT = BODY_TIMEOUT = 10.0  # the server's defaults, which slow clients stay within
# The paced clients' rate, in all. Two client processes and the server together sustained
# about 4,200/s on a 2-core machine in trial runs (the Python clients use most of the CPU, the
# server a quarter of a core): 3,500/s keeps both cores busy and leaves room for noise.
TARGET_RPS = 3500
RATE_FLOOR = 0.9  # the paced clients must achieve this share of the target rate
SLOW_EVERY = 20.0  # each slow client must complete a request per this many seconds, at least
WORKER_SHARE = 0.25  # each HTTP worker's CPU time at least this share of the workers' mean
# The S3 client opens a connection per request, one at a time, and keeps none between polls;
# the one before may still be closing (each has two descriptors: the client dups the socket for
# a timer thread, which closes its copy last).
S3_CONNECTIONS = 2
UNATTACHED_SOCKETS = 1  # the S3 client's socket between its creation and its connect
# The middle third of the run: this many more servers on the same store, sharing counts
# through Redis, and a client spreading REDIS_RPS requests/s over them (on top of TARGET_RPS).
REPLICAS = 3
REDIS_RPS = 300
REDIS_PREFIX = "heare-auth:"  # the servers' default REDIS_PREFIX

# Scopes a request demands: none twice as often as each of the others.
SCOPE_DEMANDS = [(), (), ("read",), ("read", "write"), ("admin",)]
ROUTES = {"v": "/verify", "a": "/auth", "x": "/auth", "m": "/auth", "b": "/verify"}
VERIFY_STATUS = {"VALID": 200, "RATE_LIMITED": 429}  # every other code: 403
# The codes of a key found, which its usage counts (valid, or refused).
COUNTED = {"VALID", "EXPIRED", "DISABLED", "INSUFFICIENT_SCOPE", "RATE_LIMITED", "USAGE_EXCEEDED"}
AUTH_STATUS = {"VALID": 200, "INSUFFICIENT_SCOPE": 403, "RATE_LIMITED": 429}  # others: 401


def log(message):
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rfc3339_ms(text):
    """Milliseconds since the epoch of a timestamp as the CLI prints it, or None."""
    if text is None:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_secret():
    """A secret shaped like the CLI's, from the CSPRNG: `sec_1`, the time, 43 base62 characters
    and the CRC32 of all that (core/src/format.rs), so that it is looked up, not refused for its
    checksum."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

    def base62(n, width):
        return "".join(alphabet[n // 62 ** i % 62] for i in reversed(range(width)))

    body = ("sec_1" + base62(int(time.time() * 1000), 8)
            + "".join(csprng.choice(alphabet) for _ in range(43)))
    return body + base62(zlib.crc32(body.encode()), 6)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else None


# ------------------------------------------------------------------------------------------
# The clients: separate processes (`--client CONFIG`), so that the interpreter's lock does not
# cap the load; each writes one line per request to its own file.

def build_request(rng, entries):
    """One request of the mix: (label, route, scope index, method, path, headers, body).
    Routes: v POST /verify, a /auth with a bearer key, x /auth with X-API-Key, m /auth without
    a key, b /verify with a malformed body."""
    label, secret = rng.choice(entries)
    scope = rng.randrange(len(SCOPE_DEMANDS))
    demanded = SCOPE_DEMANDS[scope]
    r = rng.random()
    if r < 0.55:
        body = {"api_key": secret}
        if demanded:
            body["required_scopes"] = list(demanded)
        return (label, "v", scope, "POST", "/verify", {"Content-Type": "application/json"},
                json.dumps(body).encode())
    query = ""
    if demanded:
        query = "?" + ("scope=" + ",".join(demanded) if rng.random() < 0.5
                       else "&".join("scope=" + s for s in demanded))
    if r < 0.90:
        return (label, "a", scope, "GET", "/auth" + query,
                {"Authorization": "Bearer " + secret}, None)
    if r < 0.96:
        return label, "x", scope, "GET", "/auth/api/items" + query, {"X-API-Key": secret}, None
    if r < 0.98:
        return -1, "m", scope, "GET", "/auth" + query, {}, None
    return (-1, "b", 0, "POST", "/verify", {"Content-Type": "application/json"},
            b'{"api_key": 42}')


def record(kind, t0, t1, req, status, headers, body):
    """A request's line: what was asked and what came back, never the secret."""
    code = key_id = scopes = "-"
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict):
        code = doc.get("code", "-")
        if "key_id" in doc:
            key_id, scopes = doc["key_id"], ",".join(doc.get("scopes") or [])
    if req[1] in "axm":
        key_id = headers.get("x-key-id", "-")
        scopes = headers.get("x-key-scopes", "-")
    challenge = headers.get("www-authenticate")
    www = "-" if challenge is None else (re.findall(r'error="([^"]*)"', challenge) or ["none"])[0]
    fields = [kind, f"{t0:.6f}", f"{t1:.6f}", str(req[0]), req[1], str(req[2]), str(status),
              code, key_id, scopes, headers.get("retry-after", "-"), www]
    return "\t".join(fields) + "\n"


def failure(kind, t0, req, error, status=0):
    return "\t".join([kind, f"{t0:.6f}", f"{time.time():.6f}", str(req[0]), req[1], str(req[2]),
                      str(status), type(error).__name__ if error else "abandoned",
                      "-", "-", "-", "-"]) + "\n"


class Pool:
    """The secrets to send, read from the file the mutator rewrites, again when it changes."""

    def __init__(self, path):
        self.path, self.stamp, self.entries, self.checked = path, None, [], 0.0
        self.lock = threading.Lock()
        self.refresh()

    def refresh(self):
        if time.monotonic() - self.checked < 0.2:
            return
        with self.lock:
            self.checked = time.monotonic()
            st = os.stat(self.path)
            if (st.st_ino, st.st_mtime_ns) != self.stamp:
                self.entries = json.loads(Path(self.path).read_text())
                self.stamp = (st.st_ino, st.st_mtime_ns)


def paced(rate, deadline, pool, rng):
    """Requests at `rate` per second until `deadline`. A client that falls behind (a slow answer,
    a stall) carries on from where it is, never faster than `rate` to catch up: what it lost
    shows in the achieved rate."""
    next_at = time.time()
    while True:
        now = time.time()
        if now >= deadline:
            return
        if next_at > now:
            time.sleep(next_at - now)
        else:
            next_at = now
        next_at += 1 / rate
        pool.refresh()
        yield build_request(rng, pool.entries)


def keepalive_client(ports, pool, rate, deadline, out, rng, kind="k"):
    """One connection to each of `ports` for as long as it lasts, requests round-robin over
    them; a failed request opens a new one."""
    conns = [None] * len(ports)
    for n, req in enumerate(paced(rate, deadline, pool, rng)):
        i = n % len(ports)
        if conns[i] is None:
            conns[i] = http.client.HTTPConnection("127.0.0.1", ports[i], timeout=30)
        conn = conns[i]
        t0 = time.time()
        try:
            conn.request(req[3], req[4], body=req[6], headers=req[5])
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            out.write(failure(kind, t0, req, e))
            conn.close()
            conns[i] = None
            continue
        t1 = time.time()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        out.write(record(kind, t0, t1, req, resp.status, headers, data))
        if resp.will_close:  # the server ended the connection: noted, not a failure
            out.write(failure(kind, t1, req, None, status=-2))
            conn.close()
            conns[i] = None


def close_client(port, pool, rate, deadline, out, rng):
    """A new connection for every request (`Connection: close`)."""
    for req in paced(rate, deadline, pool, rng):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t0 = time.time()
        try:
            conn.request(req[3], req[4], body=req[6], headers={**req[5], "Connection": "close"})
            resp = conn.getresponse()
            data = resp.read()
            t1 = time.time()
            out.write(record("c", t0, t1, req, resp.status,
                             {k.lower(): v for k, v in resp.getheaders()}, data))
        except (OSError, http.client.HTTPException) as e:
            out.write(failure("c", t0, req, e))
        finally:
            conn.close()


def read_response(sock):
    """Status, lower-cased headers and body of one response read from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed before the response's headers")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in
                   (line.split(":", 1) for line in lines[1:]))
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed inside the response's body")
        body += chunk
    return int(lines[0].split()[1]), headers, body


def slow_client(port, pool, deadline, out, rng):
    """Requests written in pieces with pauses, a few per connection: headers in four pieces over
    up to half the server's HEADER_TIMEOUT, a body in two over up to a third of BODY_TIMEOUT.
    One request in ten is abandoned part-way through its headers and the connection closed:
    those are counted, not checked."""
    while time.time() < deadline:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError as e:
            out.write(failure("s", time.time(), (-1, "v", 0), e))
            time.sleep(1)
            continue
        with sock:
            for _ in range(rng.randint(1, 4)):
                if time.time() >= deadline:
                    break
                pool.refresh()
                req = build_request(rng, pool.entries)
                head = [f"{req[3]} {req[4]} HTTP/1.1\r\n", "Host: soak\r\n",
                        "User-Agent: soak-slow\r\n"]
                head += [f"{k}: {v}\r\n" for k, v in req[5].items()]
                if req[6] is not None:
                    head.append(f"Content-Length: {len(req[6])}\r\n")
                head = "".join(head + ["\r\n"]).encode()
                cuts = sorted(rng.sample(range(1, len(head)), 3))
                pieces = [head[a:b] for a, b in zip([0] + cuts, cuts + [len(head)])]
                t0 = time.time()
                try:
                    if rng.random() < 0.1:
                        sock.sendall(pieces[0])
                        time.sleep(rng.uniform(0.1, 1.0))
                        out.write(failure("s", t0, req, None, status=-1))
                        break
                    if req[6] is not None:
                        half = len(req[6]) // 2
                        pieces += [req[6][:half], req[6][half:]]
                    for n, piece in enumerate(pieces):
                        if n:
                            limit = HEADER_TIMEOUT if n < 4 else BODY_TIMEOUT
                            time.sleep(rng.uniform(0.1, limit / 6))
                        sock.sendall(piece)
                    t0 = time.time()  # the server answers once the request is complete
                    status, headers, body = read_response(sock)
                except OSError as e:
                    out.write(failure("s", t0, req, e))
                    break
                out.write(record("s", t0, time.time(), req, status, headers, body))
                if headers.get("connection", "").lower() == "close":
                    out.write(failure("s", time.time(), req, None, status=-2))
                    break
                time.sleep(rng.uniform(0, 0.5))


def client_main(config_path):
    cfg = json.loads(Path(config_path).read_text())
    pool = Pool(cfg["pool"])
    threads = []
    for n in range(cfg["keepalive"] + cfg["close"] + cfg["slow"]):
        out = open(f"{cfg['out']}-{n}.tsv", "w", buffering=1 << 16)
        rng = random.Random(f"{cfg['seed']}-{n}")
        if n < cfg["keepalive"]:
            args = (keepalive_client, [cfg["port"]], pool, cfg["keepalive_rate"],
                    cfg["deadline"])
        elif n < cfg["keepalive"] + cfg["close"]:
            args = (close_client, cfg["port"], pool, cfg["close_rate"], cfg["deadline"])
        else:
            args = (slow_client, cfg["port"], pool, cfg["deadline"])
        threads.append((threading.Thread(target=args[0], args=(*args[1:], out, rng)), out))
    if cfg.get("replica_ports"):
        out = open(f"{cfg['out']}.tsv", "w", buffering=1 << 16)
        client = threading.Thread(target=keepalive_client, kwargs={"kind": "r"}, args=(
            cfg["replica_ports"], pool, cfg["replica_rate"], cfg["deadline"], out,
            random.Random(f"{cfg['seed']}-replicas")))
        threads.append((client, out))
    time.sleep(max(0.0, cfg["start"] - time.time()))
    for thread, _ in threads:
        thread.start()
    for thread, out in threads:
        thread.join()
        out.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(f"{cfg['out']}-cpu").write_text(str(usage.ru_utime + usage.ru_stime))


# ------------------------------------------------------------------------------------------
# The oracle: every key's states over time, and what they allow.

@dataclasses.dataclass(frozen=True)
class State:
    exists: bool = False
    disabled: bool = False
    expires_ms: int | None = None
    current: int | None = None  # the label of the key's secret
    previous: int | None = None  # the label of the secret before a rotation
    previous_until_ms: int | None = None
    scopes: frozenset = frozenset()
    limited: bool = False


@dataclasses.dataclass
class Change:
    start: float  # the CLI started
    end: float  # the CLI returned
    state: State
    op: str
    seen: float | None = None  # a probe's answer per this state arrived


def outcome(state, label, t, demanded):
    """The code the server gives `label`'s secret in `state` at time `t` (seconds)."""
    ms = t * 1000
    if not state.exists:
        return "NOT_FOUND"
    if label != state.current and not (label == state.previous
                                       and ms <= state.previous_until_ms):
        return "NOT_FOUND"
    if state.disabled:
        return "DISABLED"
    if state.expires_ms is not None and ms > state.expires_ms:
        return "EXPIRED"
    if not set(demanded) <= state.scopes:
        return "INSUFFICIENT_SCOPE"
    return "VALID"


class Oracle:
    """Labels (a number for each secret, so that records and results never hold a secret), the
    key each belongs to, and each key's changes."""

    def __init__(self):
        self.labels = []  # label -> (key id or None, class, role)
        self.secrets = {}  # label -> secret, in memory only
        self.changes = {}  # key id -> [Change]
        self.lock = threading.Lock()

    def label(self, key, cls, role, secret):
        with self.lock:
            self.labels.append((key, cls, role))
            self.secrets[len(self.labels) - 1] = secret
            return len(self.labels) - 1

    def change(self, key, start, end, state, op):
        change = Change(start, end, state, op)
        with self.lock:
            self.changes.setdefault(key, [Change(float("-inf"), float("-inf"), State(), "none")])
            self.changes[key].append(change)
        return change

    def state(self, key):
        return self.changes[key][-1].state

    def identity(self, key):
        """The key's state when it was created: its scopes and limit, which no change alters."""
        if key is None:
            return State()
        return next(c.state for c in self.changes[key] if c.state.exists)

    def acceptable(self, label, t0, t1, demanded, probed=True):
        """Every code the server may have answered for `label` between t0 and t1. `probed`: by
        the server the probes ask, which never goes back to a state once a probe saw the next
        (other servers poll the store on their own)."""
        key = self.labels[label][0]
        if key is None:
            return {"NOT_FOUND"}
        timeline = self.changes[key]
        codes = set()
        for i, change in enumerate(timeline):
            following = timeline[i + 1] if i + 1 < len(timeline) else None
            until = float("inf")
            if following is not None:
                until = following.end + SLACK
                if following.seen is not None and probed:
                    until = min(until, following.seen)
            a, b = max(t0, change.start), min(t1, until)
            if a <= b:
                codes.add(outcome(change.state, label, a - EDGE, demanded))
                codes.add(outcome(change.state, label, b + EDGE, demanded))
        return codes


# ------------------------------------------------------------------------------------------
# The processes: s3s-fs, the server, the CLI.

class S3:
    """s3s-fs on 127.0.0.1 over a directory, the bucket a sub-directory of it."""

    def __init__(self, tmp):
        self.data = tmp / "s3"
        (self.data / BUCKET).mkdir(parents=True)
        self.log = open(tmp / "s3s-fs.log", "w")
        for _ in range(20):
            port = free_port()
            self.proc = subprocess.Popen(
                [S3S_FS, "--host", "127.0.0.1", "--port", str(port), "--access-key", ACCESS_KEY,
                 "--secret-key", SECRET_KEY, self.data],
                stdout=subprocess.DEVNULL, stderr=self.log)
            for _ in range(250):
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    self.endpoint = f"http://127.0.0.1:{port}"
                    return
                except OSError:
                    time.sleep(0.02)
            self.stop()  # the port was taken between free_port() and the bind: another one
        raise RuntimeError("s3s-fs did not start")

    def env(self):
        return {"S3_BUCKET": BUCKET, "S3_KEY": "keys.json", "S3_REGION": "us-east-1",
                "S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)


class Server:
    """The release server on an ephemeral port, polling the store every INTERVAL, its log
    (without the per-request lines, which would fill the disk on a long run) in a file."""

    def __init__(self, tmp, env, name="server"):
        self.log_path = tmp / f"{name}.log"
        self.log_file = open(self.log_path, "w")
        full_env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "info",
                    "REFRESH_INTERVAL": str(INTERVAL), "METRICS_ADDR": "127.0.0.1:0", **env}
        self.proc = subprocess.Popen([SERVER, "--host", "127.0.0.1", "--port", "0"],
                                     env=full_env, stderr=subprocess.PIPE)
        self.filter = subprocess.Popen(
            ["grep", "--line-buffered", "-v", '"event":"verification_'],
            stdin=self.proc.stderr, stdout=self.log_file)
        self.proc.stderr.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            for line in self.log_path.read_text().splitlines():
                if '"event":"startup"' in line:
                    start = json.loads(line)
                    self.port = int(start["address"].rsplit(":", 1)[1])
                    self.metrics_port = int(start["metrics_address"].rsplit(":", 1)[1])
                    self.threads = start["threads"]
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self):
        """SIGTERM, as an orchestrator would; the exit status (0 is a clean shutdown)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.filter.wait(timeout=10)
        self.log_file.close()
        return code

    def events(self):
        """Counts of the log's events; the `keys_changed` ones as (time, ids named); and the
        times of the reloads the poller logged."""
        counts, changed, reloads = collections.Counter(), [], []
        for line in self.log_path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                counts["(not JSON)"] += 1
                continue
            name = event.get("event", "?")
            counts[name] += 1
            if name == "keys_changed":
                ids = {i for field in ("added", "removed", "changed")
                       for i in event.get(field, "").split(",") if i}
                changed.append((rfc3339_ms(event["timestamp"]) / 1000, ids))
            elif name == "refresh_success" and event.get("trigger") == "poll":
                reloads.append(rfc3339_ms(event["timestamp"]) / 1000)
        return dict(counts), changed, reloads

    def warnings(self):
        """The events logged as warnings or errors, counted by name."""
        found = collections.Counter()
        for line in self.log_path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # counted by events()
            if event.get("level") in ("warn", "error"):
                found[event.get("event", "?")] += 1
        return dict(found)


class Replicas(threading.Thread):
    """The middle third of the soak: Redis, and REPLICAS more servers on the same store sharing
    counts through it, with a client process of its own spreading requests round-robin over
    them. Afterwards (the replicas stopped, which sends what they counted): their metrics, logs
    and exit statuses, and the usage Redis holds."""

    def __init__(self, tmp, s3, pool_path, begin, end, rate, sampler):
        super().__init__(daemon=True)
        self.tmp, self.s3, self.pool_path, self.sampler = tmp, s3, pool_path, sampler
        self.begin, self.end, self.rate = begin, end, rate
        self.result, self.error = None, None
        self.cancel, self.children = threading.Event(), []  # the processes it started

    def run(self):
        try:
            self.result = self.phase()
        except (OSError, RuntimeError, subprocess.SubprocessError, http.client.HTTPException,
                ValueError) as e:
            self.error = repr(e)

    def kill(self):
        """Ends what still runs of the phase, when the soak stops short."""
        self.cancel.set()
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()

    def phase(self):
        if self.cancel.wait(max(0.0, self.begin - time.time())):
            return None
        redis = RedisServer(self.tmp / "redis.log")
        self.children.append(redis.proc)
        servers, client = [], None
        try:
            env = {**self.s3.env(), "REDIS_URL": redis.url}
            for n in range(REPLICAS):
                servers.append(Server(self.tmp, env, name=f"replica-{n}"))
                self.children.append(servers[-1].proc)
            deadline = time.time() + 10
            while not all('"event":"redis_up"' in s.log_path.read_text() for s in servers):
                if time.time() > deadline:
                    raise RuntimeError("a replica did not connect to Redis")
                time.sleep(0.02)
            self.sampler.pids += [redis.proc.pid, *(s.proc.pid for s in servers)]
            started = time.time()
            config = {"pool": str(self.pool_path), "out": str(self.tmp / "replicas"),
                      "start": started, "deadline": self.end, "seed": f"{random.random()}",
                      "keepalive": 0, "close": 0, "slow": 0, "replica_rate": self.rate,
                      "replica_ports": [s.port for s in servers]}
            (self.tmp / "replicas.json").write_text(json.dumps(config))
            client = subprocess.Popen([sys.executable, __file__, "--client",
                                       self.tmp / "replicas.json"])
            self.children.append(client)
            self.sampler.pids.append(client.pid)
            client_code = client.wait(timeout=self.end - started + 120)
            metrics = []
            for server in servers:
                conn = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
                metrics.append(scrape(conn))
                conn.close()
            exit_codes = [server.stop() for server in servers]
            return types.SimpleNamespace(
                seconds=self.end - started, client_code=client_code, exit_codes=exit_codes,
                metrics=metrics, events=[server.events()[0] for server in servers],
                warnings=[server.warnings() for server in servers],
                usage=redis.usage(REDIS_PREFIX),
                last_used=set(redis.cli("ZRANGE", f"{REDIS_PREFIX}last-used", 0, -1)))
        finally:
            if client is not None and client.poll() is None:
                client.kill()
            for server in servers:
                if server.proc.poll() is None:
                    server.proc.kill()
            redis.stop()


def scrape(conn):
    """The metrics page as {sample name with labels: value}."""
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def sockets(pid):
    """{socket inode: (local port, remote port, state)} of the process's network namespace:
    TCP sockets with their ports, Unix ones as (0, 0, "unix")."""
    table = {}
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        table[cols[9]] = (int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16),
                          cols[3])
    for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
        table[line.split()[6]] = (0, 0, "unix")
    return table


class Sampler(threading.Thread):
    """Every SAMPLE_EVERY: the server's RSS, threads, CPU time and descriptors, how busy the
    machine is, and how much of that was work other than the soak's. Descriptors are sorted by
    what they are (the kernel's socket tables tell sockets apart): the connections of clients,
    which come and go with the clients; those of the S3 client, open while a poll is, and
    sockets in no table yet (being connected); and the rest (listeners, files, pipes, the
    runtime's own), the baseline, which must not grow."""

    def __init__(self, server, s3_port, stop):
        super().__init__(daemon=True)
        self.server, self.s3_port, self.stop, self.samples = server, s3_port, stop, []
        self.conn = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
        self.pids = [server.proc.pid]  # the soak's processes besides this one

    def run(self):
        pid = self.server.proc.pid
        last_cpu = machine_cpu(self.pids)
        while not self.stop.wait(SAMPLE_EVERY):
            try:
                self.samples.append(self.sample(pid, last_cpu))
                last_cpu = machine_cpu(self.pids)
            except (OSError, http.client.HTTPException, ValueError) as e:
                log(f"sample failed: {e!r}")
                self.conn.close()

    def sample(self, pid, last_cpu):
        gauge = scrape(self.conn)["heare_auth_open_connections"]
        # A socket closed between the two reads of the tables and the listing is missed by
        # neither: the listing happens between them. One opened after the first read and
        # closed before the second is in neither, and a read of a table that changes meanwhile
        # may skip a line: a socket found in neither is looked for again while its descriptor
        # stays open, and left out of the sample once closed.
        table = sockets(pid)
        fds = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                fds[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                pass  # closed since the listing
        table.update(sockets(pid))
        for _ in range(3):
            unknown = [fd for fd, link in fds.items()
                       if link.startswith("socket:[") and link[8:-1] not in table]
            if not unknown:
                break
            for fd in unknown:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == fds[fd]:
                        continue
                except FileNotFoundError:
                    pass
                del fds[fd]
            table.update(sockets(pid))
        kinds, s3_sockets = collections.Counter(), set()
        for link in fds.values():
            local, remote, state = table.get(link[8:-1], (0, 0, "")) if link.startswith(
                "socket:[") else (0, 0, "file")
            if state == "":
                kinds["unattached_sockets"] += 1
            elif state in ("file", "unix", "0A"):  # 0A: listening
                kinds["baseline"] += 1
            elif local in (self.server.port, self.server.metrics_port):
                kinds["client_connections"] += 1
                kinds["close_wait"] += state == "08"
            elif remote == self.s3_port:
                kinds["s3_descriptors"] += 1  # the S3 client dups each socket for a timer
                s3_sockets.add(link)
            else:
                kinds["other_sockets"] += 1
        kinds["s3_connections"] = len(s3_sockets)
        status = dict(line.split(":", 1) for line in
                      Path(f"/proc/{pid}/status").read_text().splitlines())
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        busy, total, ours = (a - b for a, b in zip(machine_cpu(self.pids), last_cpu))
        return {"t": time.time(), "rss_kib": int(status["VmRSS"].split()[0]),
                "threads": int(status["Threads"]), "fds": len(fds),
                **{k: kinds[k] for k in ("baseline", "client_connections", "close_wait",
                                         "s3_connections", "s3_descriptors",
                                         "unattached_sockets", "other_sockets")},
                "open_connections_gauge": int(gauge),
                "cpu_s": (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK"),
                "machine_busy": round(busy / total, 3) if total else 0,
                "other_work_cores": round(max(0, busy - ours) / total * os.cpu_count(), 2)
                if total else 0}


def thread_times(pid):
    """({thread name: CPU seconds}, {thread name: seconds spent runnable but waiting for a CPU})
    of a process's threads, from the scheduler's own account (/proc/PID/task/TID/schedstat);
    names made unique with a suffix."""
    cpu, waits = {}, {}
    for task in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        name = Path(f"/proc/{pid}/task/{task}/comm").read_text().strip()
        ran, waited = Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[:2]
        key = name if name not in cpu else f"{name} ({task})"
        cpu[key], waits[key] = round(int(ran) / 1e9, 3), round(int(waited) / 1e9, 3)
    return cpu, waits


def machine_cpu(pids):
    """(busy, total) jiffies of the whole machine, from /proc/stat (all cores), and the busy
    ones of this process, its children waited for (the CLI), and `pids` while they run."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    idle = values[3] + values[4]
    hz = os.sysconf("SC_CLK_TCK")
    own = os.times()
    ours = (own.user + own.system + own.children_user + own.children_system) * hz
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ours += int(stat[11]) + int(stat[12])
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended: counted with the children waited for
    return sum(values) - idle, sum(values), ours


# ------------------------------------------------------------------------------------------
# The mutator: the CLI changing keys during the run, and probes timing each change's arrival.

class Mutator(threading.Thread):
    """The CLI changing keys of its own during the run, one change at a time, each followed by
    probes (on one keep-alive connection) timing the change's arrival at the server."""

    def __init__(self, oracle, env, publish, rng):
        super().__init__(daemon=True)
        self.oracle, self.env, self.publish, self.rng = oracle, env, publish, rng
        self.port = None
        self.deadline = 0.0
        self.dynamic = []  # keys of the mutator's own, in creation order
        self.retired = {}  # label -> when it leaves the pool
        self.ops = collections.Counter()
        self.cli_errors = []
        self.latencies = collections.defaultdict(list)  # op -> seconds from CLI return
        self.unmeasured = collections.Counter()
        self.late = []
        self.probes = []  # probe lines, judged with the clients'
        self.made = []  # (op, key, Change) of the changes made during the run
        self.conn = None

    def cli(self, *args):
        start = time.time()
        proc = subprocess.run([CLI, *args], env=self.env, capture_output=True, text=True)
        end = time.time()
        self.ops[args[0]] += 1
        if proc.returncode != 0:
            # stderr names keys by id; the CLI prints secrets only on stdout, for create/rotate.
            what = " ".join(a for a in args[:3] if not a.startswith("-"))
            self.cli_errors.append(f"{what}: exit {proc.returncode}: "
                                   f"{proc.stderr.strip()[:300]}")
            return None, start, end
        return proc.stdout, start, end

    # The operations. Each returns (op, key, probe label, old state, change) or None.

    def create(self, name, cls, scopes=(), expires_at=None, extra=()):
        args = ["create", "--name", name, "--json", "--no-refresh"]
        if scopes:
            args += ["--scopes", ",".join(scopes)]
        if expires_at is not None:
            args += ["--expires-at", expires_at]
        out, start, end = self.cli(*args, *extra)
        if out is None:
            return None
        made = json.loads(out)
        label = self.oracle.label(made["id"], cls, "current", made["secret"])
        state = State(exists=True, expires_ms=rfc3339_ms(made.get("expires_at")), current=label,
                      scopes=frozenset(made.get("scopes") or []), limited=bool(extra))
        change = self.oracle.change(made["id"], start, end, state, "create")
        return "create", made["id"], label, State(), change

    def rotate(self, key, grace):
        old = self.oracle.state(key)
        out, start, end = self.cli("rotate", key, "--grace", grace, "--json", "--no-refresh")
        if out is None:
            return None
        made = json.loads(out)
        cls = self.oracle.labels[old.current][1]  # a seeded "rotated-old" key's is "rotated-new"
        cls = cls if cls == "dynamic" else cls.rsplit("-", 1)[0] + "-new"
        label = self.oracle.label(key, cls, "rotated in", made["secret"])
        if old.previous is not None:
            self.retired[old.previous] = end + RETIRE_AFTER
        until = rfc3339_ms(made["previous_expires_at"])  # null: `--grace 0`, stopped at once
        if until is None:
            self.retired[old.current] = end + RETIRE_AFTER
        state = dataclasses.replace(old, current=label, previous_until_ms=until,
                                    previous=old.current if until is not None else None)
        return "rotate", key, label, old, self.oracle.change(key, start, end, state, "rotate")

    def toggle(self, key, disable):
        old = self.oracle.state(key)
        op = "disable" if disable else "enable"
        out, start, end = self.cli(op, key, "--json", "--no-refresh")
        if out is None:
            return None
        state = dataclasses.replace(old, disabled=disable)
        return op, key, old.current, old, self.oracle.change(key, start, end, state, op)

    def delete(self, key):
        old = self.oracle.state(key)
        out, start, end = self.cli("delete", key, "--yes", "--no-refresh")
        if out is None:
            return None
        for label in (old.current, old.previous):
            if label is not None:
                self.retired[label] = end + RETIRE_AFTER
        self.dynamic.remove(key)
        change = self.oracle.change(key, start, end, State(), "delete")
        return "delete", key, old.current, old, change

    def settled(self, key):
        """Whether the key's last change is older than the slack, so that each change of a key
        reaches the server on its own (its `keys_changed` event is then this change's alone)."""
        return time.time() - self.oracle.changes[key][-1].end > SLACK

    def choose(self):
        """The next change to a key of the mutator's own."""
        rng, alive = self.rng, [k for k in self.dynamic if self.settled(k)]
        low, high = DYNAMIC_KEYS
        keys = {"rotate": alive, "delete": alive if len(self.dynamic) > low else [],
                "disable": [k for k in alive if not self.oracle.state(k).disabled],
                "enable": [k for k in alive if self.oracle.state(k).disabled]}
        choices = ["create"] * 3 + ["create-expiring"] if len(self.dynamic) < high else []
        choices += ["rotate"] * 3 + ["delete", "disable", "enable"] * 2
        possible = [c for c in choices if c.startswith("create") or keys[c]]
        if not possible:
            return None  # every key changed a moment ago: one turn without a change
        op = "create" if len(self.dynamic) < low else rng.choice(possible)
        if op.startswith("create"):
            expires = iso(time.time() + rng.uniform(4, 15)) if op == "create-expiring" else None
            done = self.create(f"dynamic {self.ops['create']}", "dynamic",
                               rng.choice([(), ("read",), ("read", "write")]), expires)
            if done:
                self.dynamic.append(done[1])
            return done
        key = rng.choice(keys[op])
        if op == "rotate":
            return self.rotate(key, rng.choice(["0", "2s", "5s", "30s", "10m"]))
        if op in ("disable", "enable"):
            return self.toggle(key, op == "disable")
        return self.delete(key)

    def pool(self):
        now = time.time()
        return [[label, secret] for label, secret in self.oracle.secrets.items()
                if self.retired.get(label, now + 1) > now]

    def run(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        # Stop early enough for the last change's probe to finish inside the run.
        while time.time() < self.deadline - SLACK - 1:
            done = self.choose()
            self.publish(self.pool())
            if done:
                self.made.append((done[0], done[1], done[4]))
                self.probe(*done)
            time.sleep(self.rng.uniform(0.2, 1.0))

    def verify(self, label):
        """One probe of `label` on /verify: (t0, t1, code, key id); recorded like a client's."""
        req = (label, "v", 0)
        body = json.dumps({"api_key": self.oracle.secrets[label]})
        t0 = time.time()
        try:
            self.conn.request("POST", "/verify", body=body,
                              headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.probes.append(failure("p", t0, req, e))
            self.conn.close()
            return t0, time.time(), "-", "-"
        t1 = time.time()
        line = record("p", t0, t1, req, resp.status, {k.lower(): v for k, v in
                                                      resp.getheaders()}, data)
        self.probes.append(line)
        fields = line.split("\t")
        return t0, t1, fields[7], fields[8]

    def probe(self, op, key, label, old, change):
        """How long after the CLI returned the server first answers `label` per the new state.
        Changes that do not alter the answer, or whose answer is about to change by itself
        (an expiry, a grace period's end), are not timed."""
        now = time.time()
        new = change.state
        before, after = outcome(old, label, now, ()), outcome(new, label, now, ())
        later = now + SLACK + 1
        if (before == after or after != outcome(new, label, later, ())
                or before != outcome(old, label, later, ())):
            self.unmeasured[op] += 1
            return
        while True:
            t0, t1, code, key_id = self.verify(label)
            if code == after and (after != "VALID" or key_id == key):
                change.seen = t1
                self.latencies[op].append(t1 - change.end)
                return
            if t1 - change.end > SLACK + 5:
                self.late.append({"op": op, "key": key, "after_s": round(t1 - change.end, 3),
                                  "expected": after, "got": code})
                return
            time.sleep(0.02)


def seed(mutator, seconds):
    """The keys of every class, written by the CLI before the server starts. Each is required:
    one that cannot be set up (a CLI without `create --rate-limit`, say) stops the soak here."""
    now = time.time()

    def made(done, what):
        if done is None:
            raise RuntimeError(f"cannot set up the {what} key: {mutator.cli_errors[-1]}")
        return done[1]

    # Keys no traffic presents, enough for a keys file too large to be folded at every change:
    # the changes stay beside it (keys.json.changes/) and the server applies them in place.
    filler = OUT / "soak-filler.json"
    filler.write_text(json.dumps({"keys": [
        {"id": f"key_filler_{i:04}", "secret_hash": f"{i:064x}", "name": "filler " + "x" * 200}
        for i in range(FILLER_KEYS)]}))
    if mutator.cli("import", str(filler), "--yes", "--no-refresh")[0] is None:
        raise RuntimeError(f"cannot import the filler keys: {mutator.cli_errors[-1]}")
    filler.unlink()
    limit = f"{RATE_LIMIT[0]}/{RATE_LIMIT[1]}s"
    made(mutator.create("rate-limited", "rate-limited", extra=("--rate-limit", limit)),
         "rate-limited")
    for n in range(2):
        made(mutator.create(f"valid {n}", "valid"), "valid")
    made(mutator.create("scoped", "scoped", ("read", "write")), "scoped")
    made(mutator.create("expired", "expired", expires_at="2020-01-01T00:00:00Z"), "expired")
    # Lapses a third of the way through the run (the run starts a few seconds from now).
    made(mutator.create("expiring", "expiring", expires_at=iso(now + 5 + seconds / 3)),
         "expiring")
    made(mutator.toggle(made(mutator.create("disabled", "disabled"), "disabled"), True),
         "disabled")
    for cls, grace in (("rotated", "2h"), ("grace-ends", f"{int(5 + seconds / 2)}s")):
        made(mutator.rotate(made(mutator.create(cls, f"{cls}-old"), cls), grace), cls)
    for n in range(2):
        mutator.oracle.label(None, "unknown", "never a key", new_secret())


# ------------------------------------------------------------------------------------------
# The verdict.

# The traffic the issue asks for, each shown by the expected answers that could only come from
# it: (name, test of an answer judged expected). Every one must occur.
KINDS = [
    ("valid key", lambda a: a.cls == "valid" and a.code == "VALID"),
    ("unknown secret", lambda a: a.cls == "unknown" and a.code == "NOT_FOUND"),
    ("expired key", lambda a: a.code == "EXPIRED"),
    ("disabled key", lambda a: a.code == "DISABLED"),
    ("old secret in its grace period", lambda a: a.cls.endswith("-old") and a.code == "VALID"),
    ("over the rate limit", lambda a: a.code == "RATE_LIMITED"),
    ("/auth, no scope demanded", lambda a: a.route in "ax" and not a.demanded),
    ("/auth, scopes demanded", lambda a: a.route in "ax" and bool(a.demanded)),
    ("/auth, without a key", lambda a: a.route == "m"),
    ("keep-alive clients", lambda a: a.client == "k"),
    ("connection-per-request clients", lambda a: a.client == "c"),
    ("slow clients", lambda a: a.client == "s"),
    ("replicas sharing counts through Redis", lambda a: a.client == "r"),
]


def judge(oracle, lines, start):
    """Checks every request line, given as (client, line); returns the counts (by class, by
    client, by kind of traffic), the unexpected answers (times in seconds since `start`) and the
    times of the rate-limited key's passes; the answers of the replicas sharing Redis (client
    kind "r") are counted apart, with the usage they add up to per key."""
    by_class = collections.defaultdict(collections.Counter)
    by_route = collections.Counter()
    by_client = collections.Counter()  # client -> answers received
    kinds = collections.Counter({name: 0 for name, _ in KINDS})
    served = collections.Counter()  # (route, code) -> answers, to compare with the server's
    replica_served = collections.Counter()  # the same, of the replicas'
    replica_usage = collections.defaultdict(lambda: [0, 0])  # key -> [valid, refused]
    notes = collections.Counter()
    unexpected, examples, passes, replica_passes = 0, [], [], []
    for client, line in lines:
        kind, t0, t1, label, route, scope, status, code, key_id, scopes, retry, www = \
            line.rstrip("\n").split("\t")
        t0, t1, label, scope, status = float(t0), float(t1), int(label), int(scope), int(status)
        if status == -1:
            notes["abandoned (slow clients, on purpose)"] += 1
            continue
        if status == -2:
            notes["connections the server closed"] += 1
            continue
        cls = oracle.labels[label][1] if label >= 0 else {"b": "malformed"}.get(route, "no key")
        by_class[cls][status] += 1
        if status > 0:
            by_client[client] += 1
        by_route[f"{kind} {ROUTES[route]}"] += 1
        replica = kind == "r"
        if status > 0 and route != "b":
            (replica_served if replica else served)[(ROUTES[route], code)] += 1
        if replica and status > 0 and label >= 0 and code in COUNTED:
            replica_usage[oracle.labels[label][0]][code != "VALID"] += 1
        problem, expected = None, None
        if status == 0:
            problem, expected = f"connection failed ({code})", "an answer"
        elif route == "b":
            if (status, code) != (400, "-"):
                problem, expected = "wrong answer", "400"
        elif route == "m":
            if (status, code, www) != (401, "MISSING_KEY", "none"):
                problem, expected = "wrong answer", "401 MISSING_KEY"
        else:
            key, _, _ = oracle.labels[label]
            state = oracle.identity(key)
            codes = oracle.acceptable(label, t0, t1, SCOPE_DEMANDS[scope], probed=not replica)
            if state.limited and "VALID" in codes:
                codes.add("RATE_LIMITED")
            table, other = (VERIFY_STATUS, 403) if route == "v" else (AUTH_STATUS, 401)
            expected = " or ".join(f"{table.get(c, other)} {c}" for c in sorted(codes))
            want_www = {401: "invalid_token", 403: "insufficient_scope"}
            if code not in codes or status != table.get(code, other):
                problem = "wrong answer"
            elif code == "VALID" and (key_id != key or set(filter(None, scopes.split(",")))
                                      != state.scopes):
                problem = f"wrong identity (key {key_id}, scopes {scopes})"
            elif code == "RATE_LIMITED" and not (retry.isdigit() and int(retry) >= 1):
                problem = f"Retry-After {retry}"
            elif route != "v" and www != want_www.get(status, "-"):
                problem = f"WWW-Authenticate error {www}"
            if code == "VALID" and state.limited and status == 200:
                (replica_passes if replica else passes).append(t1)
        if not problem:
            answer = types.SimpleNamespace(cls=cls, code=code, route=route, client=kind,
                                           demanded=SCOPE_DEMANDS[scope])
            for name, test in KINDS:
                kinds[name] += test(answer)
        if problem:
            unexpected += 1
            if len(examples) < 30:
                key, cls_, role = oracle.labels[label] if label >= 0 else (None, cls, "")
                examples.append({"t": round(t0 - start, 3), "client": kind, "route": ROUTES[route],
                                 "key": key, "secret": f"{cls_} {role}".strip(),
                                 "demanded": list(SCOPE_DEMANDS[scope]), "expected": expected,
                                 "got": f"{status} {code}", "problem": problem})
    return {"by_class": {c: dict(sorted(v.items())) for c, v in sorted(by_class.items())},
            "by_client_route": dict(sorted(by_route.items())), "notes": dict(notes),
            "by_client": dict(sorted(by_client.items())), "kinds": dict(kinds),
            "unexpected": unexpected, "examples": examples, "served": served,
            "passes": sorted(passes), "replica_served": replica_served,
            "replica_passes": sorted(replica_passes), "replica_usage": dict(replica_usage)}


def max_in_window(times, width):
    """The most events in any window of `width` seconds."""
    best = 0
    for i, t in enumerate(times):
        best = max(best, bisect.bisect_right(times, t + width) - i)
    return best


# The fewest samples of the steady state (after the warm-up) that the flatness checks compare,
# and so the shortest soak: its warm-up is half of it.
MIN_SAMPLES = 5
MIN_SECONDS = 2 * MIN_SAMPLES * SAMPLE_EVERY


def warmup_for(seconds):
    """The warm-up of a soak of `seconds`: a fifth of it, at least 30 s, at most half of it."""
    return min(max(0.2 * seconds, 30.0), 0.5 * seconds)


def flat(samples, field, tolerance=0.10):
    values = [s[field] for s in samples]
    return {"min": min(values), "max": max(values),
            "ok": max(values) <= min(values) * (1 + tolerance)}


def summarise(value):
    return None if value is None else round(value, 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--rps", type=float, default=TARGET_RPS,
                        help="requests per second of the paced clients, in all")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--redis-rps", type=float, default=REDIS_RPS,
                        help="requests per second to the replicas sharing Redis")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args.client)
    if args.seconds < MIN_SECONDS:
        sys.exit(f"soak: --seconds (SOAK_SECONDS) must be at least {MIN_SECONDS:.0f}, not "
                 f"{args.seconds:g}: the steady state after the warm-up needs "
                 f"{MIN_SAMPLES} samples, one every {SAMPLE_EVERY:g} s")
    for path in (SERVER, CLI, S3S_FS):
        if not path.exists():
            sys.exit(f"{path} is missing: run `make soak`")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="heare-soak-") as tmp:
        try:
            return soak(Path(tmp), args)
        except RuntimeError as e:  # the soak could not be set up as asked
            sys.exit(f"soak: {e}")


def soak(tmp, args):
    (OUT / "soak.json").unlink(missing_ok=True)  # a run that stops short leaves none behind
    seconds = args.seconds
    warmup = warmup_for(seconds)
    rng = random.Random()
    oracle = Oracle()
    s3 = S3(tmp)
    server = clients = replicas = None
    stop = threading.Event()
    try:
        env = {"PATH": os.environ.get("PATH", ""), "HEARE_AUTH_ACTOR": "soak@bench", **s3.env()}
        pool_path = tmp / "pool.json"

        def publish(entries):
            scratch = pool_path.with_suffix(".tmp")
            scratch.write_text(json.dumps(entries))
            os.chmod(scratch, 0o600)
            os.replace(scratch, pool_path)

        mutator = Mutator(oracle, env, publish, rng)
        seed(mutator, seconds)
        seeded_ops = dict(mutator.ops)
        mutator.ops.clear()
        publish(mutator.pool())
        server = Server(tmp, s3.env())
        log(f"server on :{server.port} ({server.threads} worker threads), s3s-fs at "
            f"{s3.endpoint}; {seconds:.0f} s of traffic, warm-up {warmup:.0f} s")

        sampler = Sampler(server, int(s3.endpoint.rsplit(":", 1)[1]), stop)
        sampler.pids.append(s3.proc.pid)
        rest = sampler.sample(server.proc.pid, machine_cpu(sampler.pids))  # before any client

        # Clients: per process, 4 keep-alive, 2 connection-per-request and 2 slow ones.
        start = time.time() + 1
        deadline = start + seconds
        per_process = {"keepalive": 4, "close": 2, "slow": 2}
        clients = []
        for n in range(args.processes):
            config = {"pool": str(pool_path), "out": str(tmp / f"records-{n}"),
                      "port": server.port, "start": start, "deadline": deadline,
                      "seed": f"{rng.random()}-{n}",
                      "keepalive_rate": args.rps * 0.75 / args.processes / per_process["keepalive"],
                      "close_rate": args.rps * 0.25 / args.processes / per_process["close"],
                      **per_process}
            (tmp / f"client-{n}.json").write_text(json.dumps(config))
            clients.append(subprocess.Popen([sys.executable, __file__, "--client",
                                             tmp / f"client-{n}.json"]))
        sampler.pids += [proc.pid for proc in clients]
        mutator.port, mutator.deadline = server.port, deadline
        replicas = Replicas(tmp, s3, pool_path, start + seconds / 3, start + 2 * seconds / 3,
                            args.redis_rps, sampler)
        while time.time() < start:
            time.sleep(0.01)
        sampler.start()
        mutator.start()
        replicas.start()
        for proc in clients:
            proc.wait(timeout=seconds + 120)
        replicas.join(timeout=120)
        if replicas.result is None:
            raise RuntimeError(f"the replicas sharing Redis: {replicas.error or 'no result'}")
        mutator.join(timeout=60)
        stop.set()
        sampler.join(timeout=30)
        ended = time.time()
        time.sleep(0.2)
        metrics_conn = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
        metrics = scrape(metrics_conn)
        metrics_conn.close()
        threads, waits = thread_times(server.proc.pid)
        exit_code = server.stop()
        server_events, keys_changed, reloads = server.events()
        shutil.copy(server.log_path, OUT / "soak-server.log")
        client_codes = [proc.returncode for proc in clients]
    finally:
        stop.set()
        if replicas is not None:
            replicas.kill()
        for proc in clients or []:
            if proc.poll() is None:
                proc.kill()
        if server is not None and server.proc.poll() is None:
            server.proc.kill()
        s3.stop()

    log("judging every answer")
    files = sorted(tmp.glob("records-*.tsv")) + [tmp / "replicas.tsv"]

    def lines():
        for path in files:
            with open(path) as f:
                for line in f:
                    yield path.stem, line
        for line in mutator.probes:
            yield "probe", line

    verdict = judge(oracle, lines(), start)
    client_cpu = sum(float(path.read_text())
                     for path in [*tmp.glob("records-*-cpu"), tmp / "replicas-cpu"])
    run = types.SimpleNamespace(
        seconds=seconds, warmup=warmup, start=start, ended=ended, seeded_ops=seeded_ops,
        metrics=metrics, threads=threads, waits=waits, exit_code=exit_code,
        server_events=server_events,
        keys_changed=keys_changed, reloads=reloads, client_codes=client_codes,
        client_cpu=client_cpu, server_threads=server.threads, per_process=per_process,
        rest=rest, replicas=replicas.result)
    return report(args, run, oracle, mutator, sampler, verdict)


def propagation_by_log(made, keys_changed):
    """For each change made during the run, seconds from the CLI's return to the server's first
    `keys_changed` naming its key after the CLI started (None: never). A key is changed again
    only once its last change is older than the slack (Mutator.settled), so the first such
    event is this change's unless the change was late, which fails the check either way."""
    times = [t for t, _ in keys_changed]
    lags = []
    for op, key, change in made:
        lag = None
        for i in range(bisect.bisect_right(times, change.start), len(times)):
            if key in keys_changed[i][1]:
                lag = times[i] - change.end
                break
        lags.append((op, key, change, lag))
    return lags


def poll_times(keys_changed, reloads):
    """How long the polls that found a change took: from the end of the poll before (its
    `refresh_success`) plus the interval, to the `keys_changed` of the poll that found it. This
    is the loader being woken, the HEAD and GET to S3, the parse and the comparison; only polls
    right after a poll that also found a change can be timed so (the others log nothing)."""
    times = []
    for t, _ in keys_changed:
        i = bisect.bisect_left(reloads, t)
        if i:
            took = t - reloads[i - 1] - INTERVAL
            if 0 <= took < INTERVAL:
                times.append(took)
    return times


def stats(values):
    if not values:
        return {"n": 0, "max_s": None, "p99_s": None, "median_s": None}
    return {"n": len(values), "max_s": summarise(max(values)),
            "p99_s": summarise(percentile(values, 99)),
            "median_s": summarise(statistics.median(values))}


def report(args, run, oracle, mutator, sampler, verdict):
    checks = []

    def check(name, ok, detail):
        checks.append({"name": name, "ok": bool(ok), "detail": detail})

    total = sum(sum(v.values()) for v in verdict["by_class"].values())
    errors = sum(v.get(0, 0) for v in verdict["by_class"].values())
    check("every answer expected", verdict["unexpected"] == 0,
          f"{verdict['unexpected']} unexpected of {total:,} ({errors} connection failures)")

    kinds = verdict["kinds"]
    fewest = min(kinds, key=kinds.get)
    check("every kind of traffic present", all(kinds.values()),
          f"{len(kinds)} kinds, the rarest {fewest} ({kinds[fewest]:,} answers)")

    # The paced clients' rate against their target; slow clients come on top.
    clients = {"k": ("keepalive", 0.75), "c": ("close", 0.25), "s": ("slow", None)}
    answered = collections.Counter()
    for name, n in verdict["by_client"].items():
        if name not in ("probe", "replicas"):
            answered[client_kind(name, run)] += n
    paced = answered["k"] + answered["c"]
    rates = {kind: round(answered[kind] / run.seconds, 1) for kind in clients}
    shortfall = [f"{clients[k][0]} {rates[k]:,.0f}/s of {args.rps * share:,.0f}/s"
                 for k, (_, share) in clients.items()
                 if share and rates[k] < RATE_FLOOR * args.rps * share]
    check(f"request rate at least {RATE_FLOOR:.0%} of the target",
          paced >= RATE_FLOOR * args.rps * run.seconds and not shortfall,
          f"{paced / run.seconds:,.0f}/s from the paced clients for {args.rps:,.0f}/s "
          f"({rates['k']:,.0f} keep-alive, {rates['c']:,.0f} connection per request)"
          + (f"; short: {', '.join(shortfall)}" if shortfall else "")
          + f"; {rates['s']:.1f}/s from slow clients")
    per_client = {name: n for name, n in verdict["by_client"].items()
                  if name not in ("probe", "replicas")}
    expected_clients = {f"records-{p}-{n}" for p in range(args.processes)
                        for n in range(sum(run.per_process.values()))}
    idle = sorted(expected_clients - {n for n, c in per_client.items() if c})
    slow = [per_client.get(n, 0) for n in expected_clients if client_kind(n, run) == "s"]
    slow_floor = run.seconds / SLOW_EVERY
    check("every client completed requests", not idle and min(slow) >= slow_floor,
          f"{len(expected_clients) - len(idle)} of {len(expected_clients)} clients answered; "
          f"the slowest slow client {min(slow)} requests (at least {slow_floor:.0f}: one per "
          f"{SLOW_EVERY:g} s)" + (f"; none for {', '.join(idle)}" if idle else ""))

    # Propagation: the server's own account (every change), and the probes' (the changes that
    # alter what a secret gets).
    lags = propagation_by_log(mutator.made, run.keys_changed)
    polls = poll_times(run.keys_changed, run.reloads)
    by_log = collections.defaultdict(list)
    for op, _, _, lag in lags:
        if lag is not None:
            by_log[op].append(lag)
    missing = [(op, key) for op, key, _, lag in lags if lag is None]
    worst_log = max((lag for _, _, _, lag in lags if lag is not None), default=None)
    check(f"every change loaded within {INTERVAL:g} s + {MARGIN:g} s (server log)",
          lags and not missing and worst_log <= SLACK,
          f"slowest {summarise(worst_log)} s after the CLI returned, over {len(lags)} changes; "
          f"{len(missing)} never logged; polls that found a change took at most "
          f"{summarise(max(polls, default=None))} s (p99 {summarise(percentile(polls, 99))}, "
          f"{len(polls)} timed)")
    worst = max((v for values in mutator.latencies.values() for v in values), default=None)
    timed = sum(map(len, mutator.latencies.values()))
    check(f"every change served within {INTERVAL:g} s + {MARGIN:g} s (probes)",
          not mutator.late and worst is not None and worst <= SLACK,
          f"slowest {summarise(worst)} s over {timed} probed changes "
          f"({sum(mutator.unmeasured.values())} alter no answer a probe can see at once); "
          f"{len(mutator.late)} not seen within {SLACK + 5:g} s")
    propagation = {}
    for op in sorted(set(by_log) | set(mutator.latencies)):
        propagation[op] = {"log": stats(by_log.get(op, [])),
                           "probe": {**stats(mutator.latencies.get(op, [])),
                                     "unmeasured": mutator.unmeasured.get(op, 0)}}
    check("every CLI change succeeded", not mutator.cli_errors,
          f"{sum(mutator.ops.values())} changes, {len(mutator.cli_errors)} failed")

    steady = (run.start + run.warmup, run.start + run.seconds)
    for s in [run.rest, *sampler.samples]:
        s["baseline"] += s.pop("other_sockets")  # TCP, neither the clients' nor S3's: none yet
    later = [s for s in sampler.samples if steady[0] <= s["t"] <= steady[1]]

    def most(field):
        return max((s[field] for s in later), default=0)

    if len(later) < MIN_SAMPLES:  # cannot be, given MIN_SECONDS; said plainly if it is
        raise RuntimeError(f"only {len(later)} samples after the warm-up of {run.warmup:.0f} s "
                           f"in {run.seconds:.0f} s: too short a soak to judge RSS and descriptors")
    rss = flat(later, "rss_kib")
    fds = flat(later, "baseline")
    check("RSS flat after warm-up (within 10%)", rss["ok"],
          f"{rss['min']:,}-{rss['max']:,} KiB over {len(later)} samples")
    check("descriptors flat after warm-up (within 10%; connections apart)", fds["ok"],
          f"{fds['min']}-{fds['max']} descriptors besides connections")
    # Each client holds at most one connection, and so do the probe and the sampler.
    held = sum(run.per_process.values()) * args.processes + 2
    check("no connection kept beyond its client", most("client_connections") <= held,
          f"at most {most('client_connections')} connections open (clients hold up to {held}); "
          f"{most('close_wait')} at most in CLOSE_WAIT")
    check(f"S3 connections at most {S3_CONNECTIONS}, sockets being opened at most "
          f"{UNATTACHED_SOCKETS}",
          most("s3_connections") <= S3_CONNECTIONS
          and most("s3_descriptors") <= 2 * S3_CONNECTIONS
          and most("unattached_sockets") <= UNATTACHED_SOCKETS,
          f"at most {most('s3_connections')} connections to S3 ({most('s3_descriptors')} "
          f"descriptors) and {most('unattached_sockets')} socket unconnected at a sample")
    own = run.rest["fds"] - run.rest["client_connections"]
    spare = 2 * S3_CONNECTIONS + UNATTACHED_SOCKETS
    fd_bound = own + held + spare
    check("all descriptors bounded by the clients' connections",
          later and most("fds") <= fd_bound,
          f"at most {most('fds')} open (bound {fd_bound}: {own} before any client, "
          f"{held} client connections, {spare} for S3)")

    per_window = max_in_window(verdict["passes"], RATE_LIMIT[1])
    # A full bucket, plus a refill over the window and a little more for the spread between
    # the server's clock and the client's receive time.
    allowance = int(RATE_LIMIT[0] + RATE_LIMIT[0] * (RATE_LIMIT[1] + 0.2) / RATE_LIMIT[1])
    rate_stats = verdict["by_class"].get("rate-limited", {})
    check(f"rate limit {RATE_LIMIT[0]}/{RATE_LIMIT[1]}s held",
          per_window <= allowance and rate_stats.get(429, 0) > 0,
          f"at most {per_window} passes in any {RATE_LIMIT[1]} s (allowed {allowance}); "
          f"{rate_stats.get(200, 0)} passed, {rate_stats.get(429, 0)} limited")

    workers = {name: cpu for name, cpu in run.threads.items() if name.startswith("http-worker")}
    mean = statistics.mean(workers.values()) if workers else 0
    least = min(workers, key=workers.get) if workers else None
    check(f"every HTTP worker did its share (at least {WORKER_SHARE:g} of the mean CPU)",
          len(workers) == run.server_threads and mean > 0
          and all(cpu >= WORKER_SHARE * mean for cpu in workers.values()),
          f"{len(workers)} workers of {run.server_threads}, "
          + ", ".join(f"{cpu:.1f} s" for cpu in workers.values())
          + (f"; the least {workers[least] / mean:.2f} of the mean" if mean else ""))

    server_counts = {}
    for name, value in run.metrics.items():
        m = re.fullmatch(r'heare_auth_verifications_total\{route="([^"]+)",code="([^"]+)"\}', name)
        if m and value:
            server_counts[(m.group(1), m.group(2))] = int(value)
    mismatched = {f"{r} {c}": {"server": server_counts.get((r, c), 0),
                               "clients": verdict["served"].get((r, c), 0)}
                  for r, c in set(server_counts) | set(verdict["served"])
                  if server_counts.get((r, c), 0) != verdict["served"].get((r, c), 0)}
    check("the server counted every answer the clients received", not mismatched,
          f"{sum(server_counts.values()):,} verifications counted by the server; "
          f"{len(mismatched)} (route, code) pairs differ")
    rejections = {name.split('"')[1]: int(v) for name, v in run.metrics.items()
                  if name.startswith("heare_auth_transport_rejections_total")}
    check("no connection cut off (slow clients stay within the timeouts)",
          not any(rejections.values()),
          ", ".join(f"{n} {reason}" for reason, n in rejections.items()))
    failed_events = {e: n for e, n in run.server_events.items()
                     if e in ("refresh_failed", "accept_failed", "connections_at_capacity",
                              "shutdown_timeout", "(not JSON)")}
    check("server log clean, clean shutdown", not failed_events and run.exit_code == 0,
          f"exit {run.exit_code}; {failed_events or 'no failure events'}")
    check("client processes exited cleanly", all(c == 0 for c in run.client_codes),
          str(run.client_codes))
    shared = replicas_checks(check, run.replicas, verdict, args.redis_rps, allowance)

    busy = [s["machine_busy"] for s in sampler.samples]
    other = [s["other_work_cores"] for s in sampler.samples]
    cpu = sampler.samples[-1]["cpu_s"] - sampler.samples[0]["cpu_s"] if sampler.samples else 0
    span = sampler.samples[-1]["t"] - sampler.samples[0]["t"] if len(sampler.samples) > 1 else 1
    log_lags = {id(change): lag for _, _, change, lag in lags}
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"make soak SOAK_SECONDS={run.seconds:g}",
        "seconds": run.seconds, "warmup_s": run.warmup, "refresh_interval_s": INTERVAL,
        "margin_s": MARGIN, "edge_s": EDGE,
        "load": {"processes": args.processes,
                 **{f"{name}_clients": n * args.processes
                    for name, n in run.per_process.items()},
                 "target_rps": args.rps, "rate_floor": RATE_FLOOR,
                 "rps": round(total / run.seconds), "paced_rps": round(paced / run.seconds),
                 "rps_by_client": {clients[k][0]: rates[k] for k in clients},
                 "answers_by_client": per_client,
                 "machine_busy_median": statistics.median(busy) if busy else None,
                 "other_work_cores_median": statistics.median(other) if other else None,
                 "other_work_cores_max": max(other, default=None),
                 "server_cpu_share": round(cpu / span, 3),
                 "clients_cpu_share": round(run.client_cpu / run.seconds, 3)},
        "requests": {"total": total, **verdict["notes"], "by_class": verdict["by_class"],
                     "by_client_route": verdict["by_client_route"]},
        "kinds": kinds,
        "unexpected": verdict["unexpected"], "unexpected_examples": verdict["examples"],
        "operations": dict(mutator.ops), "seeded_operations": run.seeded_ops,
        "cli_errors": mutator.cli_errors[:20], "propagation": propagation,
        "poll_s": stats(polls), "late_changes": mutator.late[:20],
        "never_logged": missing[:20],
        "shared_counts": shared,
        "rate_limit": {"limit": f"{RATE_LIMIT[0]}/{RATE_LIMIT[1]}s",
                       "passed": rate_stats.get(200, 0), "limited": rate_stats.get(429, 0),
                       "max_passes_in_window": per_window, "allowance": allowance},
        "server": {"threads": len(run.threads), "http_workers": len(workers),
                   "thread_cpu_s": run.threads, "thread_run_queue_wait_s": run.waits,
                   "rss_kib": {"first": sampler.samples[0]["rss_kib"] if sampler.samples else 0,
                               "min": rss["min"], "max": rss["max"]},
                   "threads_seen": sorted({s["threads"] for s in sampler.samples}),
                   "fds": {"at_rest": own, "bound": fd_bound,
                           "min": min((s["fds"] for s in later), default=0),
                           "max": most("fds"), "baseline_min": fds["min"],
                           "baseline_max": fds["max"], "client_connections_max":
                               most("client_connections"), "clients_hold": held,
                           "close_wait_max": most("close_wait"),
                           "s3_connections_max": most("s3_connections"),
                           "s3_descriptors_max": most("s3_descriptors"),
                           "unattached_sockets_max": most("unattached_sockets")},
                   "exit_code": run.exit_code, "log_events": run.server_events},
        "metrics_mismatches": mismatched, "transport_rejections": rejections,
        "checks": checks, "passed": all(c["ok"] for c in checks),
        "changes": [{"t": round(c.start - run.start, 3), "op": c.op, "key": key,
                     "cli_s": round(c.end - c.start, 3),
                     "logged_after_s": summarise(log_lags.get(id(c))),
                     "seen_after_s": None if c.seen is None else round(c.seen - c.end, 3)}
                    for key, timeline in oracle.changes.items() for c in timeline
                    if c.start >= run.start],
        "samples": sampler.samples,
    }
    (OUT / "soak.json").write_text(json.dumps(result, indent=1) + "\n")

    print(f"soak: {result['seconds']:.0f} s, {total:,} requests ({result['load']['rps']:,}/s), "
          f"{sum(mutator.ops.values())} CLI changes; machine busy "
          f"{result['load']['machine_busy_median']:.0%} (median), server "
          f"{result['load']['server_cpu_share']:.2f} cores, clients "
          f"{result['load']['clients_cpu_share']:.2f} cores")
    print("  server threads' CPU: " + ", ".join(f"{name} {cpu:.1f} s"
                                                for name, cpu in run.threads.items()))
    print("  waiting for a CPU: " + ", ".join(f"{name} {wait:.1f} s"
                                              for name, wait in run.waits.items())
          + f"; other work on the machine {result['load']['other_work_cores_median']:.2f} "
          f"cores (median), {result['load']['other_work_cores_max']:.2f} at most")
    for cls, counts in verdict["by_class"].items():
        print(f"  {cls:<18} " + ", ".join(f"{s}: {n:,}" for s, n in counts.items()))
    print("  traffic: " + ", ".join(f"{name} {n:,}" for name, n in kinds.items()))
    for op, p in propagation.items():
        print(f"  {op:<8} loaded in at most {p['log']['max_s']} s (p99 {p['log']['p99_s']}, "
              f"{p['log']['n']} changes), served in at most {p['probe']['max_s']} s "
              f"(p99 {p['probe']['p99_s']}, {p['probe']['n']} probed)")
    for example in verdict["examples"][:10]:
        print(f"  unexpected: {example}")
    for late in mutator.late[:10]:
        print(f"  late: {late}")
    for error in mutator.cli_errors[:5]:
        print(f"  CLI error: {error}")
    if mismatched:
        print(f"  server counts vs clients: {mismatched}")
    for c in checks:
        print(f"  [{'ok' if c['ok'] else 'FAILED'}] {c['name']}: {c['detail']}")
    print(f"wrote {OUT / 'soak.json'}")
    return 0 if result["passed"] else 1


def replicas_checks(check, replicas, verdict, rate, allowance):
    """The checks of the replicas sharing Redis; what they measured, for soak.json."""
    answered = verdict["by_client"].get("replicas", 0)
    check(f"{REPLICAS} replicas sharing Redis served their client at least {RATE_FLOOR:.0%} of "
          f"its rate", answered >= RATE_FLOOR * rate * replicas.seconds,
          f"{answered / replicas.seconds:,.0f}/s for {rate:,.0f}/s over {replicas.seconds:.0f} s")
    counted = collections.Counter()
    for metrics in replicas.metrics:
        for name, value in metrics.items():
            m = re.fullmatch(r'heare_auth_verifications_total\{route="([^"]+)",code="([^"]+)"\}',
                             name)
            if m and value:
                counted[(m.group(1), m.group(2))] += int(value)
    differ = {pair for pair in set(counted) | set(verdict["replica_served"])
              if counted[pair] != verdict["replica_served"][pair]}
    check("the replicas counted every answer their client received", not differ,
          f"{sum(counted.values()):,} verifications counted by the replicas; {len(differ)} "
          "(route, code) pairs differ")
    mismatched = {key: {"redis": replicas.usage.get(key), "clients": counts}
                  for key, counts in verdict["replica_usage"].items()
                  if replicas.usage.get(key) != counts}
    mismatched.update({key: {"redis": counts, "clients": None} for key, counts
                       in replicas.usage.items() if key not in verdict["replica_usage"]})
    unlisted = set(verdict["replica_usage"]) - replicas.last_used
    total = sum(valid + refused for valid, refused in replicas.usage.values())
    check("usage in Redis is what the replicas' client received, per key",
          verdict["replica_usage"] and not mismatched and not unlisted,
          f"{len(replicas.usage)} keys' usage in Redis ({total:,} verifications), "
          f"{len(mismatched)} keys' counts differ from the answers; {len(unlisted)} used keys "
          "missing from last-used")
    up = [m.get("heare_auth_redis_up") for m in replicas.metrics]
    ups, downs = ([events.get(e, 0) for events in replicas.events]
                  for e in ("redis_up", "redis_down"))
    warnings = collections.Counter()
    for w in replicas.warnings:
        warnings.update(w)
    check("replicas connected to Redis throughout, logs without warnings, clean shutdown",
          up == [1] * REPLICAS and ups == [1] * REPLICAS and not any(downs) and not warnings
          and replicas.exit_codes == [0] * REPLICAS and replicas.client_code == 0,
          f"heare_auth_redis_up {', '.join(map(str, up))} at the end; `redis_up` "
          f"logged {', '.join(map(str, ups))} times, `redis_down` {sum(downs)}; "
          f"{sum(warnings.values())} warnings{f' ({dict(warnings)})' if warnings else ''}; "
          f"exit {', '.join(map(str, replicas.exit_codes))}, their client's "
          f"{replicas.client_code}")
    # Together they hold the key to one bucket, each replica at most one lease (a token) over.
    per_window = max_in_window(verdict["replica_passes"], RATE_LIMIT[1])
    bound = allowance + REPLICAS * max(1, RATE_LIMIT[0] // 40)
    limited = verdict["replica_served"][("/verify", "RATE_LIMITED")] + \
        verdict["replica_served"][("/auth", "RATE_LIMITED")]
    check(f"rate limit {RATE_LIMIT[0]}/{RATE_LIMIT[1]}s held by the replicas together",
          per_window <= bound and limited > 0,
          f"at most {per_window} passes in any {RATE_LIMIT[1]} s (allowed {bound}: one more per "
          f"replica); {len(verdict['replica_passes'])} passed, {limited} limited")
    return {"replicas": REPLICAS, "seconds": round(replicas.seconds, 1), "target_rps": rate,
            "rps": round(answered / replicas.seconds, 1), "answers": answered,
            "usage_keys": len(replicas.usage), "usage_mismatches": mismatched,
            "rate_limit": {"passed": len(verdict["replica_passes"]), "limited": limited,
                           "max_passes_in_window": per_window, "allowance": bound},
            "exit_codes": replicas.exit_codes, "warnings": replicas.warnings,
            "log_events": replicas.events}


def client_kind(name, run):
    """"k", "c" or "s": the kind of client that wrote `records-P-N`."""
    n = int(name.rsplit("-", 1)[1])
    if n < run.per_process["keepalive"]:
        return "k"
    return "c" if n < run.per_process["keepalive"] + run.per_process["close"] else "s"


if __name__ == "__main__":
    sys.exit(main())
