#!/usr/bin/env python3
"""`make bench`: every figure of BENCHMARKS.md, measured in one run on this machine.

HTTP figures are ratios against nginx serving the same body in the same run, because the machines
are shared and noisy. Results go to target/bench/results.json; bench/report.py turns them into
BENCHMARKS.md and bench/throughput.svg.

usage: bench/run.py [--quick] [--only SECTION]
  --quick: shorter runs, for trying the script itself
  --only manage|redis|wasm|core|changes: only that section, merged into the results of the last
    full run (BENCHMARKS.md then names the sections measured after the run); wasm needs
    `make wasm-size` first; changes also takes bench/changes.py's --keys N and --bin DIR
"""
import hashlib
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
from pathlib import Path

import keygen
import wasm_parts
from redis_server import RedisServer

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "target" / "bench"
SERVER = REPO / "target" / "release" / "heare-auth-server"
QUICK = "--quick" in sys.argv
SECONDS = 3 if QUICK else 10
SWEEP_SECONDS = 2 if QUICK else 5
# The comparison with nginx alternates short runs of each and pairs them, so that the machine's
# drift (these are shared machines) hits both alike.
PAIR_SECONDS = 2 if QUICK else 3
PAIR_ROUNDS = 3 if QUICK else 10
CONNECTIONS = [1, 4, 16, 32, 64, 128, 256]
ROUNDS = 1 if QUICK else 3
CORES = os.cpu_count() or 1
WRK_THREADS = 2
# On two cores or more, the servers get CPU 0 and wrk the rest (one thread per core it has),
# so that a server and its load generator do not fight over one core: without this, which of the
# two the scheduler favours decides much of a run.
PINNED = CORES >= 2
SERVER_CPUS = ["taskset", "-c", "0"] if PINNED else []
WRK_CPUS = ["taskset", "-c", f"1-{CORES - 1}"] if PINNED else []
if PINNED:
    WRK_THREADS = CORES - 1
INVALID_KEY = "sec_0NotAKeyOfThisFile000000000000000000000000000000000000000000"


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def keys_file(n):
    """A keys file of n keys (made once, kept in target/bench, and again when its secrets are
    of an earlier format than keygen.py's) and a few of its secrets."""
    path, secrets = OUT / f"keys-{n}.json", OUT / f"keys-{n}.secrets"
    if not path.exists() or not secrets.exists() or not secrets.read_text().startswith("sec_1"):
        log(f"generating {n} keys")
        run([sys.executable, REPO / "bench" / "keygen.py", str(n), path, secrets])
    return path, [s for s in secrets.read_text().split() if s]


class Server:
    """The release heare-auth-server on 127.0.0.1, an ephemeral port, logging to a file."""

    def __init__(self, keys, threads=None, env=None, pinned=True, binary=SERVER,
                 log_name="server.log"):
        self.log_path = OUT / log_name
        cmd = [binary, "--host", "127.0.0.1", "--port", "0", "--keys-file", keys]
        if threads:
            cmd += ["--threads", str(threads)]
        self.started = time.perf_counter()
        self.log_file = open(self.log_path, "w")
        full_env = {**os.environ, "REFRESH_INTERVAL": "0", **(env or {})}
        cpus = SERVER_CPUS if pinned else []
        self.proc = subprocess.Popen([*cpus, *cmd], stderr=self.log_file, env=full_env)
        self.port = self._wait_for_port()

    def _wait_for_port(self):
        deadline = time.time() + 120
        while time.time() < deadline:
            for line in self.log_path.read_text().splitlines():
                if '"event":"startup"' in line:
                    return int(json.loads(line)["address"].rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.005)
        raise RuntimeError("server did not start")

    def url(self, path="/verify"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log_file.close()


class Nginx:
    """nginx with 2 workers answering `return 200` with the same JSON body, access log off."""

    def __init__(self, body):
        self.dir = Path(tempfile.mkdtemp(prefix="bench-nginx-", dir=OUT))
        self.port = free_port()
        body = body.replace("\\", "\\\\").replace("'", "\\'")
        (self.dir / "nginx.conf").write_text(f"""
worker_processes {1 if PINNED else 2};
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.dir};
    proxy_temp_path {self.dir};
    fastcgi_temp_path {self.dir};
    uwsgi_temp_path {self.dir};
    scgi_temp_path {self.dir};
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
""")
        self.proc = subprocess.Popen([*SERVER_CPUS, "nginx", "-p", self.dir, "-c",
                                      self.dir / "nginx.conf"],
                                     stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("nginx did not start")

    def url(self, path="/verify"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wrk_script(secret, close=False):
    """A wrk script that POSTs `secret` to /verify; `close` sends `Connection: close`, so every
    request is made on a new connection."""
    path = OUT / f"wrk-{abs(hash(secret))}{'-close' if close else ''}.lua"
    body = json.dumps({"api_key": secret})
    script = ('wrk.method = "POST"\n'
              f"wrk.body = {json.dumps(body)}\n"
              'wrk.headers["Content-Type"] = "application/json"\n')
    if close:
        script += 'wrk.headers["Connection"] = "close"\n'
    path.write_text(script)
    return path


def auth_script(secret):
    """A wrk script that asks `/auth` about a request carrying `secret` as a bearer token."""
    path = OUT / f"wrk-auth-{abs(hash(secret))}.lua"
    path.write_text(f'wrk.headers["Authorization"] = {json.dumps("Bearer " + secret)}\n')
    return path


def parse_duration_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def served_connections(port):
    """The server side's established connections on `port` and the request bytes each has
    received so far (`ss -i`), to show that every connection wrk opened is being served."""
    out = subprocess.run(["ss", "-tnHi", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return [int(b) for b in re.findall(r"bytes_received:(\d+)", out)]


def wrk(url, secret, connections=32, seconds=SECONDS, expect=200, close=False, pinned=True,
        script_path=None):
    """One wrk run: requests/s, latency percentiles, failed requests. `secret` None sends a plain
    GET. With keep-alive, the connections are checked half-way through the run: how many exist
    on the server's side and how many of them have carried requests."""
    if script_path is not None:
        script = ["-s", script_path]
    else:
        script = ["-s", wrk_script(secret, close)] if secret is not None else []
    cpus, threads = (WRK_CPUS, WRK_THREADS) if pinned else ([], 2)
    proc = subprocess.Popen([*cpus, "wrk", "-t", str(min(threads, connections)), "-c",
                             str(connections), "-d", f"{seconds}s", "--latency", *script, url],
                            stdout=subprocess.PIPE, text=True)
    check = None
    if not close:
        time.sleep(seconds / 2)
        received = served_connections(int(url.split(":")[2].split("/")[0]))
        mean = statistics.mean(received) if received else 0
        check = {"open": len(received),
                 "served": sum(1 for b in received if b > 0.1 * mean),
                 "min_bytes": min(received, default=0), "mean_bytes": round(mean)}
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {out}")
    result = {"connections": connections, "seconds": seconds, "close": close,
              "connection_check": check}
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = parse_duration_ms(m.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(map(int, errors.groups())) if errors else 0
    # An invalid key is answered with 403 on purpose: count wrong statuses only.
    result["unexpected_status"] = (int(non2xx.group(1)) if non2xx else 0) if expect == 200 else 0
    if expect != 200 and not non2xx:
        raise RuntimeError("an invalid key was accepted")
    return result


def median_run(runs):
    """The run with the median requests/s (its latencies with it), every run's rate, the
    failures of all runs, and every run's connection check."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    return {**ordered[len(ordered) // 2], "all_rps": [r["rps"] for r in runs],
            "failed_all": sum(r["unexpected_status"] + r["socket_errors"] for r in runs),
            "checks": [r["connection_check"] for r in runs]}


def count_events(log_path, event):
    needle = f'"event":"{event}"'
    with open(log_path) as f:
        return sum(1 for line in f if needle in line)


def post(port, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    conn.request("POST", path, body=json.dumps(body) if body is not None else "", headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def bench_http(results, keys10k, secrets):
    log("HTTP verify: heare-auth vs nginx, keep-alive and a connection per request")
    server = Server(keys10k)
    status, valid_body = post(server.port, "/verify", {"api_key": secrets[0]})
    assert status == 200, valid_body
    nginx = Nginx(valid_body.decode())
    try:
        # Short runs alternating with nginx's, paired: drift on a shared machine hits both alike.
        runs = {k: [] for k in ("nginx", "valid", "invalid", "auth", "health", "nginx_close",
                                "valid_close")}
        for _ in range(PAIR_ROUNDS):
            runs["nginx"].append(wrk(nginx.url(), secrets[0], seconds=PAIR_SECONDS))
            runs["valid"].append(wrk(server.url(), secrets[0], seconds=PAIR_SECONDS))
            runs["invalid"].append(wrk(server.url(), INVALID_KEY, seconds=PAIR_SECONDS,
                                       expect=403))
            runs["auth"].append(wrk(server.url("/auth"), None, seconds=PAIR_SECONDS,
                                    script_path=auth_script(secrets[0])))
            runs["health"].append(wrk(server.url("/health"), None, seconds=PAIR_SECONDS))
            runs["nginx_close"].append(wrk(nginx.url(), secrets[0], seconds=PAIR_SECONDS,
                                           close=True))
            before = count_events(server.log_path, "verification_success")
            run = wrk(server.url(), secrets[0], seconds=PAIR_SECONDS, close=True)
            time.sleep(0.2)  # the log flusher writes every 50 ms
            run["server_answered"] = count_events(server.log_path, "verification_success") - before
            runs["valid_close"].append(run)
        pairs = {"valid": "nginx", "invalid": "nginx", "auth": "nginx", "health": "nginx",
                 "valid_close": "nginx_close"}
        ratios = {k: [a["rps"] / b["rps"] for a, b in zip(runs[k], runs[ref])]
                  for k, ref in pairs.items()}
        results["http"] = {k: median_run(v) for k, v in runs.items()}
        for k, values in ratios.items():
            quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
            results["http"][k]["ratio"] = {"median": statistics.median(values),
                                           "q1": quartiles[0], "q3": quartiles[-1]}
        results["http"]["close_answered"] = {
            "server": sum(r["server_answered"] for r in runs["valid_close"]),
            "wrk": sum(r["requests"] for r in runs["valid_close"])}
        results["http"]["threads"] = server_threads(server)
        log("connection sweep")
        sweep = {"connections": CONNECTIONS, "heare-auth": [], "nginx": []}
        for c in CONNECTIONS:
            sweep["nginx"].append(wrk(nginx.url(), secrets[0], c, SWEEP_SECONDS))
            sweep["heare-auth"].append(wrk(server.url(), secrets[0], c, SWEEP_SECONDS))
        results["sweep"] = sweep
    finally:
        server.stop()
        nginx.stop()
    results["http"]["log_lines"] = sum(1 for _ in open(OUT / "server.log"))

    log("thread sweep")
    # Three interleaved rounds, the median of each: single runs on two shared cores swing widely.
    runs = {threads: [] for threads in sorted({1, 2, 4, CORES * 2})}
    for _ in range(ROUNDS):
        for threads, rows in runs.items():
            server = Server(keys10k, threads=threads, pinned=False)
            try:
                rows.append(wrk(server.url(), secrets[0], 32, SWEEP_SECONDS, pinned=False))
            finally:
                server.stop()
    results["thread_sweep"] = [
        {"threads": threads, "runs": len(rows),
         **{k: statistics.median(r[k] for r in rows) for k in ("rps", "p50_ms", "p99_ms")}}
        for threads, rows in runs.items()
    ]


def bench_idle_connections(results):
    """RSS and threads with 1,000 idle keep-alive connections open."""
    log("1,000 idle connections")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    path, _ = keys_file(1000)
    server = Server(path)
    try:
        before = rss_kib(server.proc.pid)
        sockets = []
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            sockets.append(s)
        answered = sum(1 for s in sockets if s.recv(4096).startswith(b"HTTP/1.1 200"))
        time.sleep(0.5)
        results["idle_connections"] = {"connections": 1000, "answered": answered,
                                       "rss_before_kib": before,
                                       "rss_kib": rss_kib(server.proc.pid),
                                       "threads": server_threads(server)}
        for s in sockets:
            s.close()
    finally:
        server.stop()


def server_threads(server):
    return len(os.listdir(f"/proc/{server.proc.pid}/task"))


def bench_load(results):
    log("load time and memory")
    rows = []
    empty, _ = keys_file(0)
    server = Server(empty)
    base = {"rss_kib": rss_kib(server.proc.pid), "hwm_kib": rss_kib(server.proc.pid, "VmHWM")}
    server.stop()
    for n in (1000, 10_000, 100_000, 1_000_000):
        path, secrets = keys_file(n)
        load_ms = statistics.median(
            float(run([REPO / "target" / "release" / "examples" / "load", path]).split()[0])
            for _ in range(3)
        )
        server = Server(path)
        try:
            status, _ = post(server.port, "/verify", {"api_key": secrets[-1]})
            assert status == 200
            rss, hwm = rss_kib(server.proc.pid), rss_kib(server.proc.pid, "VmHWM")
        finally:
            server.stop()
        data = json.loads(path.read_text())
        metadata = sum(len(json.dumps(k["metadata"], separators=(",", ":"))) for k in data["keys"])
        rows.append({
            "keys": n, "file_bytes": path.stat().st_size, "load_ms": load_ms,
            "rss_kib": rss, "hwm_kib": hwm,
            "bytes_per_key": (rss - base["rss_kib"]) * 1024 / n,
            "metadata_bytes_per_key": metadata / n,
        })
    results["load"] = {"empty": base, "rows": rows}


def bench_refresh(results):
    """Verify traffic at full speed while the 100k-key file changes and is reloaded every 100 ms
    over one keep-alive connection, in rounds alternating with runs of no reload at all, paired;
    and, as a control, a new connection every 100 ms with no reload."""
    log("refresh under load (100k keys, a changed file reloaded every 100 ms)")
    path, secrets = keys_file(100_000)
    live = OUT / "keys-refresh.json"
    versions = [path.read_bytes()]
    data = json.loads(versions[0])
    data["keys"].pop()
    versions.append(json.dumps({"keys": data["keys"]}, indent=2).encode())
    live.write_bytes(versions[0])
    server = Server(live)
    rounds, seconds = (2, 3) if QUICK else (6, 5)
    try:
        def every_100ms(action):
            stop, outcomes = threading.Event(), []

            def loop():
                n = 0
                while not stop.is_set():
                    n += 1
                    outcomes.append(action(n))
                    stop.wait(0.1)

            thread = threading.Thread(target=loop)
            thread.start()
            return stop, thread, outcomes

        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

        def reload(n):
            """Rewrites the file and asks for a reload: (ok, seconds until answered)."""
            tmp = live.with_suffix(".tmp")
            tmp.write_bytes(versions[n % 2])
            tmp.replace(live)
            started = time.perf_counter()
            conn.request("POST", "/refresh")
            response = conn.getresponse()
            response.read()
            return response.status == 200, time.perf_counter() - started

        quiet = [reload(n)[1] for n in range(1, 6)]
        pairs = []
        for _ in range(rounds):
            alone = wrk(server.url(), secrets[0], seconds=seconds)
            stop, thread, outcomes = every_100ms(reload)
            reloading = wrk(server.url(), secrets[0], seconds=seconds)
            stop.set()
            thread.join()
            pairs.append({"alone": alone, "reloading": reloading,
                          "reloads": len(outcomes),
                          "failed_reloads": sum(1 for ok, _ in outcomes if not ok),
                          "reload_s": [s for _, s in outcomes]})
        conn.close()

        def new_connection(_):
            c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            c.request("GET", "/health")
            ok = c.getresponse().status == 200
            c.close()
            return ok, 0.0

        stop, thread, outcomes = every_100ms(new_connection)
        churn = wrk(server.url(), secrets[0], seconds=seconds)
        stop.set()
        thread.join()
        connections = {"ok": sum(1 for ok, _ in outcomes if ok),
                       "failed": sum(1 for ok, _ in outcomes if not ok)}
    finally:
        server.stop()
    changed = sum(1 for line in open(server.log_path) if '"event":"keys_changed"' in line)
    latencies = sorted(s for p in pairs for s in p["reload_s"])
    results["refresh"] = {
        "rounds": rounds, "seconds": seconds, "pairs": pairs,
        "p99_ratio": statistics.median(p["reloading"]["p99_ms"] / p["alone"]["p99_ms"]
                                       for p in pairs),
        "alone": median_run([p["alone"] for p in pairs]),
        "reloading": median_run([p["reloading"] for p in pairs]),
        "reloads": sum(p["reloads"] for p in pairs),
        "failed_reloads": sum(p["failed_reloads"] for p in pairs),
        "reload_under_load_s": {"median": statistics.median(latencies), "max": latencies[-1]},
        "reload_quiet_s": statistics.median(quiet),
        "keys_changed_events": changed, "churn": churn, "new_connections": connections}


def startup_ms(path, secret, binary=SERVER):
    """Milliseconds from the spawn of the server on `path` to its first 200 from `/verify` for
    `secret` (a client retrying every millisecond)."""
    body = json.dumps({"api_key": secret}).encode()
    request = (b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port),
                             "--keys-file", path], stderr=subprocess.DEVNULL,
                            env={**os.environ, "REFRESH_INTERVAL": "0"})
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(request)
                    reply = s.recv(64)
                if reply.startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError("server exited during start-up")
            time.sleep(0.001)
        return (time.perf_counter() - start) * 1000
    finally:
        proc.terminate()
        proc.wait()


def bench_startup(results):
    log("start-up to the first successful /verify (100k keys)")
    path, secrets = keys_file(100_000)
    times = [startup_ms(path, secrets[0]) for _ in range(3 if QUICK else 7)]
    results["startup"] = {"keys": 100_000, "runs_ms": times, "median_ms": statistics.median(times)}


def bench_idle(results):
    path, secrets = keys_file(1000)
    server = Server(path)
    try:
        post(server.port, "/verify", {"api_key": secrets[0]})
        time.sleep(0.5)
        results["idle"] = {"keys": 1000, "rss_kib": rss_kib(server.proc.pid)}
    finally:
        server.stop()


def timed(cmd, env=None):
    """Runs `cmd` to completion: (seconds of wall time, peak RSS in KiB, stdout). The peak RSS
    comes from GNU time, a small parent: a child of this Python process would report this
    process's own RSS at the fork as its peak."""
    report = OUT / "time.out"
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report, *cmd],
                          capture_output=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.decode()}")
    return seconds, int(report.read_text().split()[-1]), proc.stdout


def bench_cli(results, cli=REPO / "target" / "release" / "heare-auth", label="cli"):
    """The admin CLI on a 100,000-key file (create, list --json) against Python's json.load of
    the same file, and a create on a 10-key file."""
    log("CLI create and list on 100,000 keys, against Python's json.load")
    path, _ = keys_file(100_000)
    work = Path(tempfile.mkdtemp(prefix="bench-cli-", dir=OUT))
    runs = 3 if QUICK else 5
    loader = ("import json, sys, time; t = time.perf_counter(); json.load(open(sys.argv[1])); "
              "print(time.perf_counter() - t)")
    python = []
    for _ in range(runs):
        _, rss, out = timed([sys.executable, "-c", loader, path])
        python.append({"seconds": float(out.split()[0]), "rss_kib": rss})
    rows = {"create": [], "list": []}
    for _ in range(runs):
        live = work / "keys.json"
        live.write_bytes(path.read_bytes())
        env = {**os.environ, "KEYS_FILE": str(live)}
        seconds, rss, _ = timed([cli, "create", "--name", "bench", "--no-refresh"], env)
        rows["create"].append({"seconds": seconds, "rss_kib": rss})
        seconds, rss, out = timed([cli, "list", "--json"], env)
        assert out.count(b'"id"') == 100_001, "list --json did not list every key"
        rows["list"].append({"seconds": seconds, "rss_kib": rss})
    small = work / "small.json"
    ten, _ = keys_file(10)
    small.write_bytes(ten.read_bytes())
    env = {**os.environ, "KEYS_FILE": str(small)}
    small_creates = [timed([cli, "create", "--name", "bench", "--no-refresh"], env)[0]
                     for _ in range(3 if QUICK else 10)]
    median = lambda rows, k: statistics.median(r[k] for r in rows)
    results[label] = {
        "file_bytes": path.stat().st_size, "runs": runs,
        "python_load_s": median(python, "seconds"), "python_rss_kib": median(python, "rss_kib"),
        **{f"{op}_s": median(rows[op], "seconds") for op in rows},
        **{f"{op}_rss_kib": max(r["rss_kib"] for r in rows[op]) for op in rows},
        "create_10_keys_ms": statistics.median(small_creates) * 1000,
    }


def api(port, method, path, key, body=None, conn=None):
    """One management API request: (status, parsed body, milliseconds)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body)
    started = time.perf_counter()
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    text = response.read()
    took = (time.perf_counter() - started) * 1000
    if own:
        conn.close()
    return response.status, json.loads(text) if text else None, took


def admin_key(cli, keys):
    """An admin key (`keys:admin`) added to `keys` with the CLI: its secret."""
    out = subprocess.run([cli, "create", "--name", "bench-admin", "--scopes", "keys:admin",
                          "--json", "--no-refresh"], env={**os.environ, "KEYS_FILE": str(keys)},
                         check=True, capture_output=True)
    return json.loads(out.stdout)["secret"]


def bench_manage(results, keys10k, secrets, cli=REPO / "target" / "release" / "heare-auth"):
    """The management API: `/verify` and `/auth` with it on against off (paired runs, 10,000
    keys), then listing and creating on a local file of 100,000 keys and of 10."""
    log("management API: /verify and /auth with MANAGEMENT_API=1 against without")
    work = Path(tempfile.mkdtemp(prefix="bench-manage-", dir=OUT))
    off = Server(keys10k, log_name="server-api-off.log")
    on = Server(keys10k, env={"MANAGEMENT_API": "1"}, log_name="server-api-on.log")
    runs = {k: [] for k in ("verify_off", "verify_on", "auth_off", "auth_on")}
    try:
        for _ in range(PAIR_ROUNDS):
            runs["verify_off"].append(wrk(off.url(), secrets[0], seconds=PAIR_SECONDS))
            runs["verify_on"].append(wrk(on.url(), secrets[0], seconds=PAIR_SECONDS))
            runs["auth_off"].append(wrk(off.url("/auth"), None, seconds=PAIR_SECONDS,
                                        script_path=auth_script(secrets[0])))
            runs["auth_on"].append(wrk(on.url("/auth"), None, seconds=PAIR_SECONDS,
                                       script_path=auth_script(secrets[0])))
    finally:
        off.stop()
        on.stop()
    manage = {"pair_rounds": PAIR_ROUNDS}
    for route in ("verify", "auth"):
        ratios = [a["rps"] / b["rps"] for a, b in zip(runs[f"{route}_on"], runs[f"{route}_off"])]
        manage[route] = {"ratio": statistics.median(ratios),
                         "on": median_run(runs[f"{route}_on"]),
                         "off": median_run(runs[f"{route}_off"])}

    log("management API: GET /keys?limit=1000 and POST /keys on 100,000 keys")
    big, _ = keys_file(100_000)
    sizes = {}
    for n, source in ((100_000, big), (10, keys_file(10)[0])):
        live = work / f"keys-{n}.json"
        live.write_bytes(source.read_bytes())
        key = admin_key(cli, live)
        server = Server(live, env={"MANAGEMENT_API": "1"}, log_name=f"server-api-{n}.log")
        try:
            row = {"keys": n, "file_bytes": live.stat().st_size}
            if n == 100_000:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                lists = []
                for _ in range(10 if QUICK else 50):
                    status, body, took = api(server.port, "GET", "/keys?limit=1000", key,
                                             conn=conn)
                    assert status == 200 and len(body["keys"]) == 1000, status
                    lists.append(took)
                conn.close()
                row["list_1000_ms"] = {"median": statistics.median(lists),
                                       "p99": sorted(lists)[int(len(lists) * 0.99) - 1],
                                       "runs": len(lists)}
            creates = []
            for i in range(5 if QUICK else 20):
                status, body, took = api(server.port, "POST", "/keys", key, {"name": f"b{i}"})
                assert status == 201, (status, body)
                creates.append(took)
            # Each create is served before it is answered.
            status, _ = post(server.port, "/verify", {"api_key": body["secret"]})
            assert status == 200, status
            row["create_ms"] = {"median": statistics.median(creates), "max": max(creates),
                                "runs": len(creates)}
            sizes[n] = row
        finally:
            server.stop()
    manage["rows"] = [sizes[n] for n in sorted(sizes)]
    results["manage"] = manage


REDIS_RATES = [1, 10, 100, 1000, 10_000]


def accuracy_rows():
    """The accuracy table's rows: (requests/s offered, the limit's window in seconds, the
    limit's requests, replicas, shared through Redis). The limit is half the offered rate; each
    rate is also offered to 3 replicas without Redis, at 4 x a limit (each replica is then over
    it alone)."""
    rows = []
    for rate in REDIS_RATES:
        windows = [10] if rate == 1 else [1] if QUICK else [1, 10]
        rows += [(rate, w, rate * w // 2, n, True) for w in windows for n in (1, 3)]
        rows.append((rate, windows[0], max(1, rate * windows[0] // 4), 3, False))
    return rows


def steady_windows(window):
    """Windows measured after the first (which the full bucket serves)."""
    return (3 if QUICK else 10) if window == 1 else (1 if QUICK else 3)


def exact_bucket(sent, rate, window, limit):
    """Which of `sent` requests, request i at i / rate s, one exact token bucket (capacity
    `limit`, refilled by `limit` every `window` s, full at the start) accepts, in integers: a
    unit of time is 1 / (rate * limit) s, request i comes at i * limit, a token every
    window * rate."""
    step, burst, tat, accepted = window * rate, (limit - 1) * window * rate, 0, []
    for i in range(sent):
        t = i * limit
        tat = max(tat, t)
        if tat - t <= burst:
            accepted.append(i)
            tat += step
    return accepted


def per_window(accepted, rate, window, count):
    counts = [0] * count
    for i in accepted:
        if i // (rate * window) < count:
            counts[i // (rate * window)] += 1
    return counts


def redis_servers(keys, n, redis, name):
    """`n` servers on `keys`, sharing counts through `redis` (None: each alone), up and (with
    Redis) connected to it."""
    env = {"REDIS_URL": redis.url} if redis else {}
    servers = [Server(keys, env=env, log_name=f"server-{name}-{i}.log") for i in range(n)]
    deadline = time.time() + 10
    while redis and not all('"event":"redis_up"' in s.log_path.read_text() for s in servers):
        if time.time() > deadline:
            raise RuntimeError("a server did not connect to Redis")
        time.sleep(0.01)
    return servers


def accuracy_row(redis, rate, window, limit, replicas, shared):
    """One row of the accuracy table: the paced load on a new key of `limit` per `window` s."""
    work = Path(tempfile.mkdtemp(prefix="bench-redis-", dir=OUT))
    made = subprocess.run([REPO / "target" / "release" / "heare-auth", "create", "--name",
                           "accuracy", "--rate-limit", f"{limit}/{window}s", "--json",
                           "--no-refresh"], env={**os.environ, "KEYS_FILE": str(work / "k.json")},
                          check=True, capture_output=True, text=True)
    secret = json.loads(made.stdout)["secret"]
    count = 1 + steady_windows(window)
    servers = redis_servers(work / "k.json", replicas, redis if shared else None, "accuracy")
    try:
        load = json.loads(run([*WRK_CPUS, sys.executable, REPO / "bench" / "paced.py",
                               str(rate), str(count * window), secret,
                               *(str(s.port) for s in servers)]))
    finally:
        for s in servers:
            s.stop()
    down = sum(count_events(s.log_path, "redis_down") for s in servers)
    accepted = load.pop("accepted")
    exact = exact_bucket(load["sent"], rate, window, limit)
    windows = per_window(accepted, rate, window, count)
    steady = windows[1:]
    cap = max(1, limit // 40) if shared else 0  # a replica's lease at most (counts::lease_cap)
    return {
        "rate": rate, "window_s": window, "limit": limit, "replicas": replicas,
        "shared": shared, "lease_cap": cap, "bound": limit + replicas * cap, **load,
        "accepted": len(accepted), "exact": len(exact),
        "error": len(accepted) / len(exact) - 1,
        "windows": windows, "exact_windows": per_window(exact, rate, window, count),
        "steady": {"min": min(steady), "max": max(steady), "mean": statistics.mean(steady)},
        "redis_down_events": down,
        "load_ok": (load["answered"] == load["sent"] == int(rate * count * window)
                    and set(load["statuses"]) <= {"200", "429"} and down == 0),
        "goal_met": (all(abs(w - limit) <= 0.1 * limit for w in steady)
                     and max(steady) <= limit + replicas * cap),
    }


def counted_keys(keys10k):
    """`keys10k` and two keys more, made here: one with a rate limit no load here reaches
    (1,000,000/s) and one with more credits than it spends; the file and their secrets."""
    rng = random.Random(7)
    data = json.loads(keys10k.read_text())
    secrets = {}
    extra = {"rate": {"rate_limit": {"requests": 1_000_000, "per_seconds": 1}},
             "credits": {"credits": {"amount": 10**12, "since": "2026-01-01T00:00:00Z"}}}
    for name, fields in extra.items():
        secrets[name] = keygen.secret_of("".join(rng.choices(keygen.ALPHABET, k=43)))
        data["keys"].append({
            "id": "key_0" + keygen.base62(keygen.CREATED_MS, 8)
                  + "".join(rng.choices(keygen.ALPHABET, k=16)),
            "secret_hash": hashlib.sha256(secrets[name].encode()).hexdigest(),
            "name": f"bench {name}", "created_at": "2026-11-25T01:27:14.316985Z",
            "expires_at": None, "metadata": {}, **fields})
    path = OUT / "keys-10000-counted.json"
    path.write_text(json.dumps(data, indent=2))
    return path, secrets


def metric(port, name):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def bench_redis(results, keys10k):
    """Counts shared through Redis: how closely replicas together hold a key to its rate limit
    (a paced load, round-robin over 1 or 3 replicas), and what sharing costs `/verify` and
    `/auth` (paired runs with REDIS_URL and without)."""
    redis = RedisServer(OUT / "redis.log")
    try:
        rows = []
        for rate, window, limit, replicas, shared in accuracy_rows():
            log(f"Redis accuracy: {rate}/s offered, {limit}/{window}s, {replicas} replica(s)"
                f"{'' if shared else ', without Redis'}")
            rows.append(accuracy_row(redis, rate, window, limit, replicas, shared))
        overhead = redis_overhead(redis, keys10k)
    finally:
        redis.stop()
    results["redis"] = {"quick": QUICK, "accuracy": rows, **overhead}


def redis_overhead(redis, keys10k):
    log("Redis: /verify and /auth with REDIS_URL against without (paired runs)")
    keys, secrets = counted_keys(keys10k)
    off = Server(keys, log_name="server-redis-off.log")
    on = redis_servers(keys, 1, redis, "redis-on")[0]
    routes = [(f"{path}_{key}", path, key) for path in ("verify", "auth") for key in secrets]
    runs = {f"{name}_{side}": [] for name, _, _ in routes for side in ("off", "on")}
    try:
        for n in range(PAIR_ROUNDS):
            for name, path, key in routes:
                # Either side first, in turn, so that neither always runs on a warmer machine.
                for side, server in ((("off", off), ("on", on))[::1 if n % 2 else -1]):
                    runs[f"{name}_{side}"].append(
                        wrk(server.url(), secrets[key], seconds=PAIR_SECONDS)
                        if path == "verify" else
                        wrk(server.url("/auth"), None, seconds=PAIR_SECONDS,
                            script_path=auth_script(secrets[key])))
        up = metric(on.port, "heare_auth_redis_up")
    finally:
        off.stop()
        on.stop()
    out = {"pair_rounds": PAIR_ROUNDS, "pair_seconds": PAIR_SECONDS, "redis_up": up,
           "credits_spent_in_redis": redis.credits_spent("heare-auth:"),
           "credits_answers": sum(r["requests"] for name in ("verify_credits_on",
                                                             "auth_credits_on")
                                  for r in runs[name]),
           "redis_down_events": count_events(on.log_path, "redis_down")}
    for name, _, _ in routes:
        pairs = list(zip(runs[f"{name}_on"], runs[f"{name}_off"]))
        out[name] = {"ratio": statistics.median(a["rps"] / b["rps"] for a, b in pairs),
                     "p99_ratio": statistics.median(a["p99_ms"] / b["p99_ms"] for a, b in pairs),
                     "on": median_run(runs[f"{name}_on"]),
                     "off": median_run(runs[f"{name}_off"])}
    return out


def bench_wasm(results):
    log("WebAssembly verifier in Node")
    path, secrets = keys_file(10_000)
    out = run(["node", REPO / "bench" / "wasm.mjs", path, OUT / "keys-10000.secrets",
               "1" if QUICK else "3"])
    results["wasm"] = json.loads(out)
    log("what each part of the WebAssembly package costs (bench/wasm_parts.py)")
    named = REPO / "target" / "wasm-named" / "heare_auth_wasm_bg.wasm"
    results["wasm"]["parts"] = wasm_parts.measure(named.read_bytes())


def machine():
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    first = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    return {
        "cpu": model, "cores": CORES, "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "rustc": first(["rustc", "--version"]), "node": first(["node", "--version"]),
        "nginx": nginx.replace("nginx version: ", ""),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
        "date": time.strftime("%Y-%m-%d"),
    }


def wasm_sizes(results):
    wasm = REPO / "wasm" / "pkg" / "heare_auth_wasm_bg.wasm"
    gz = len(subprocess.run(["gzip", "-9c", wasm], capture_output=True, check=True).stdout)
    results.setdefault("sizes", {}).update({"wasm_bytes": wasm.stat().st_size,
                                            "wasm_gzip_bytes": gz})


def sizes(results):
    server = SERVER.stat().st_size
    static = REPO / "target" / "static" / "x86_64-unknown-linux-musl" / "release"
    if (static / "heare-auth-server").exists():
        results["static"] = {"server_bytes": (static / "heare-auth-server").stat().st_size,
                             "cli_bytes": (static / "heare-auth").stat().st_size}
    results["sizes"] = {"server_bytes": server,
                        "cli_bytes": (REPO / "target" / "release" / "heare-auth").stat().st_size}
    wasm_sizes(results)


def criterion(results):
    log("core verify (criterion, 1,000,000 keys)")
    args = ["cargo", "bench", "-q", "-p", "heare-auth-core", "--bench", "verify", "--",
            "--noplot"]
    if QUICK:
        args += ["--warm-up-time", "1", "--measurement-time", "2"]
    subprocess.run(args, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    core = {}
    for name in ("valid", "invalid", "invalid_earlier", "bad_checksum", "valid_with_body"):
        estimates = OUT.parent / "criterion" / "verify_1m_keys" / name / "new" / "estimates.json"
        core[name + "_ns"] = json.loads(estimates.read_text())["median"]["point_estimate"]
    results["core"] = core


def main():
    import changes  # it imports this module: imported here, once this one is whole
    OUT.mkdir(parents=True, exist_ok=True)
    if "--only" in sys.argv:
        section = sys.argv[sys.argv.index("--only") + 1]
        results = json.loads((OUT / "results.json").read_text())
        keys10k, secrets = keys_file(10_000)
        {"manage": lambda: bench_manage(results, keys10k, secrets),
         "load": lambda: bench_load(results),
         "startup": lambda: bench_startup(results),
         "redis": lambda: bench_redis(results, keys10k),
         "wasm": lambda: (wasm_sizes(results), bench_wasm(results)),
         "core": lambda: criterion(results),
         "changes": lambda: changes.bench_changes(results)}[section]()
        results.setdefault("partial", []).append(section)
        (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        log(f"merged {section} into {OUT / 'results.json'}")
        return
    results = {"machine": machine(), "quick": QUICK, "wrk_threads": WRK_THREADS,
               "pinned": PINNED, "pair_rounds": PAIR_ROUNDS, "pair_seconds": PAIR_SECONDS,
               "command": "make bench"}
    keys10k, secrets = keys_file(10_000)
    sizes(results)
    bench_http(results, keys10k, secrets)
    bench_idle_connections(results)
    bench_refresh(results)
    bench_startup(results)
    bench_idle(results)
    bench_load(results)
    bench_cli(results)
    bench_manage(results, keys10k, secrets)
    bench_redis(results, keys10k)
    changes.bench_changes(results)
    bench_wasm(results)
    criterion(results)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
