#!/usr/bin/env python3
"""What one change to one key costs at a million keys, on the local file store: the CLI's write
(time, peak RSS, bytes written to the store), how long a disabled key keeps verifying on 3
replicas that poll the store, the replicas' time to apply a change (their `changes_applied`
events), start-up, and the p99 of `/verify` while keys change.

It measures either layout of the store: the whole file rewritten on every change (the build
before the work on O(change) writes), or a snapshot `keys.json` with change objects beside it in
`keys.json.changes/`; which one is told by whether that directory appears. A build that does not
log `changes_applied` gets no apply times, the rest is measured alike.

Called from bench/run.py (`make bench`, `bench/run.py --only changes`), or on its own:

usage: bench/changes.py [--quick] [--keys N] [--bin DIR] [--before [--commit SHA]] [--revoke-runs N]
  --keys N: N keys instead of 1,000,000 (100,000 with --quick), for trying the script
  --bin DIR: the heare-auth and heare-auth-server binaries of DIR (default target/release)
  --before: keep the results as `changes_before` (a build before this layout, for BENCHMARKS.md
    to set beside the current one)
  --revoke-runs N: revocations per mode (default 5, 3 with --quick)
  On its own, the results are merged into target/bench/results.json when it exists (as
  `--only changes` does), else written to target/bench/changes.json.
"""
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import run as bench
from run import OUT, QUICK, REPO, log


def option(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


KEYS = int(option("--keys", 100_000 if QUICK else 1_000_000))
BIN = Path(option("--bin", REPO / "target" / "release")).resolve()
CLI, SERVER = BIN / "heare-auth", BIN / "heare-auth-server"
# Each change command is timed this many times (the median is reported).
WRITE_RUNS = 3 if QUICK else 5
OPERATIONS = ("create", "disable", "enable", "delete")
REPLICAS = 3
POLL_S = 1  # the replicas' REFRESH_INTERVAL
PROBE_S = 0.005
REVOKE_RUNS = int(option("--revoke-runs", 3 if QUICK else 5))
# Where the results go: `changes`, or `changes_before` for the build before this layout.
LABEL = "changes_before" if "--before" in sys.argv else "changes"
REVOKE_TIMEOUT_S = 300
P99_ROUNDS = 2 if QUICK else 5
CHANGE_EVERY_S = 0.1


def changes_dir(keys):
    """Where the store keeps change objects beside the snapshot `keys`."""
    return keys.parent / (keys.name + ".changes")


def change_files(keys):
    """How many change objects the store holds beside the snapshot `keys`."""
    return sum(1 for p in changes_dir(keys).rglob("*") if p.is_file())


def store_files(keys):
    """Every file of the store's directory (the snapshot, its lock, the change objects):
    {path: (size, mtime_ns, inode)}."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(keys.parent.rglob("*")) if p.is_file()}


def written(before, after):
    """The files new or changed between two `store_files`: (their bytes, how many)."""
    new = [path for path, stat in after.items() if before.get(path) != stat]
    return sum(after[path][0] for path in new), len(new)


def cli(keys, *args, env=None, check=True):
    """The CLI on the store `keys`: the completed process."""
    proc = subprocess.run([CLI, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "KEYS_FILE": str(keys), **(env or {})})
    if check and proc.returncode != 0:
        raise RuntimeError(f"heare-auth {' '.join(args)} failed: {proc.stderr}")
    return proc


def measured_change(keys, *args):
    """One CLI command on the store `keys`, under GNU time: its wall time, peak RSS, the bytes
    it wrote to the store's files (new or changed files, whole) and what the kernel counted as
    written (`%O`, 512-byte blocks), and its stdout."""
    report = OUT / "time-changes.out"
    before = store_files(keys)
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M %O", "-o", report, CLI, *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "KEYS_FILE": str(keys)})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"heare-auth {' '.join(args)} failed: {proc.stderr}")
    rss, blocks = map(int, report.read_text().split()[-2:])
    size, files = written(before, store_files(keys))
    return {"seconds": seconds, "rss_kib": rss, "bytes_written": size, "files_written": files,
            "fs_out_bytes": blocks * 512}, proc.stdout


def supports(command):
    """Whether the CLI has `command` (its help lists it)."""
    return f"heare-auth {command}" in cli(Path("unused.json"), "--help").stdout


def store_copy(work, n, name):
    """A copy of the n-key file as the store `work/name/keys.json` (a directory of its own, so
    that its files are the store's alone)."""
    source, secrets = bench.keys_file(n)
    keys = work / name / "keys.json"
    keys.parent.mkdir()
    shutil.copyfile(source, keys)
    return keys, secrets


def summary(rows, key):
    values = [r[key] for r in rows]
    return {"median": statistics.median(values), "max": max(values), "min": min(values)}


def write_cost(work, n):
    """Create, disable, enable and delete a key, WRITE_RUNS times each, on a store of n keys
    (and `compact` once, where the CLI has it): every run and the medians."""
    log(f"changes: the CLI's writes on {n:,} keys")
    keys, _ = store_copy(work, n, f"write-{n}")
    runs = {op: [] for op in OPERATIONS}
    for i in range(WRITE_RUNS):
        row, out = measured_change(keys, "create", "--name", f"x{i}", "--json", "--no-refresh")
        runs["create"].append(row)
        key = json.loads(out)["id"]
        runs["disable"].append(measured_change(keys, "disable", key, "--no-refresh")[0])
        runs["enable"].append(measured_change(keys, "enable", key, "--no-refresh")[0])
        runs["delete"].append(measured_change(keys, "delete", key, "--yes", "--no-refresh")[0])
    out = {"keys": n, "file_bytes": keys.stat().st_size, "runs": runs,
           "change_files": change_files(keys),
           "layout": "changes" if changes_dir(keys).exists() else "whole file",
           **{op: {k: summary(rows, k) for k in ("seconds", "rss_kib", "bytes_written",
                                                   "files_written", "fs_out_bytes")}
              for op, rows in runs.items()}}
    if supports("compact"):
        try:
            out["compact"] = measured_change(keys, "compact")[0]
        except RuntimeError as e:
            out["compact"] = {"error": str(e)[-500:]}
    shutil.rmtree(keys.parent)
    return out


class Probe:
    """A keep-alive connection asking one replica's `/verify` about one secret (connected
    again when the server closed it)."""

    def __init__(self, port, secret):
        self.port, self.body = port, json.dumps({"api_key": secret})
        self.conn = None

    def status(self):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request("POST", "/verify", body=self.body,
                                  headers={"Content-Type": "application/json"})
                response = self.conn.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()


def wait_for(probes, status, timeout=REVOKE_TIMEOUT_S):
    """Waits until every probe answers `status`."""
    deadline = time.time() + timeout
    while not all(p.status() == status for p in probes):
        if time.time() > deadline:
            raise RuntimeError(f"the replicas did not all answer {status}")
        time.sleep(0.05)


def cpu_hogs():
    """One CPU-bound process of normal priority per core."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(bench.CORES)]


def stop_all(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()


def revoke_once(keys, key, probes):
    """Disables `key` with the CLI (no refresh: only the replicas' polls deliver it) and probes
    every replica every PROBE_S until it answers 403: seconds from the CLI's start to each
    replica's first 403 (None past REVOKE_TIMEOUT_S), and to the CLI's exit."""
    start = time.perf_counter()
    proc = subprocess.Popen([CLI, "disable", key, "--no-refresh"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "KEYS_FILE": str(keys)})
    revoked, cli_s, wrong = [None] * len(probes), None, []
    while time.perf_counter() - start < REVOKE_TIMEOUT_S:
        tick = time.perf_counter()
        for i, probe in enumerate(probes):
            if revoked[i] is None:
                status = probe.status()
                if status == 403:
                    revoked[i] = time.perf_counter() - start
                elif status != 200:
                    wrong.append(status)
        if cli_s is None and proc.poll() is not None:
            cli_s = time.perf_counter() - start
        if None not in revoked and cli_s is not None:
            break
        time.sleep(max(0.0, PROBE_S - (time.perf_counter() - tick)))
    if proc.wait() != 0:
        raise RuntimeError(f"heare-auth disable failed: {proc.stderr.read()}")
    return {"replicas_s": revoked, "cli_s": cli_s, "other_statuses": wrong}


def revocation(keys, key, probes, busy):
    """REVOKE_RUNS revocations of `key`, re-enabled (and served again) between runs; `busy`
    runs a CPU-bound neighbour per core during each."""
    log(f"changes: revocation on {REPLICAS} replicas polling every {POLL_S} s"
        f"{', CPU-bound neighbours' if busy else ''}")
    runs = []
    for _ in range(REVOKE_RUNS):
        hogs = cpu_hogs() if busy else []
        try:
            time.sleep(0.5 if busy else 0)
            wait_for(probes, 200)
            runs.append(revoke_once(keys, key, probes))
        finally:
            stop_all(hogs)
        cli(keys, "enable", key, "--no-refresh")
        wait_for(probes, 200)
        time.sleep(POLL_S)  # the replicas' next poll finds nothing new
    latencies = [s for r in runs for s in r["replicas_s"]]
    done = [s for s in latencies if s is not None]
    # From the change stored (the CLI's exit) to each replica's first 403.
    after = [s - r["cli_s"] for r in runs for s in r["replicas_s"] if s is not None]
    return {"runs": runs, "timeouts": len(latencies) - len(done),
            "max_s": max(latencies) if None not in latencies else None,
            "median_s": statistics.median(done) if done else None,
            "max_after_write_s": max(after) if after and None not in latencies else None,
            "cli_median_s": statistics.median(r["cli_s"] for r in runs)}


def log_events(path, event):
    """The JSON lines of `event` in a server's log."""
    needle = f'"event":"{event}"'
    with open(path) as f:
        return [json.loads(line) for line in f if needle in line]


def applied(log_path):
    """What one replica's log says of the changes it applied: its `changes_applied` events
    (absent from the build before them) and its whole loads of the keys file (`keys_file_loaded`;
    before them every reload was whole, and logged `refresh_success`)."""
    events = log_events(log_path, "changes_applied")
    apply_us = sorted(e["apply_us"] for e in events if "apply_us" in e)
    return {"changes_applied_events": len(events), "last_seq": events[-1].get("seq") if events
            else None,
            "changes": sum(e.get("changes", 0) for e in events),
            "keys": sum(e.get("keys", 0) for e in events),
            "apply_us": ({"median": statistics.median(apply_us), "max": apply_us[-1],
                          "p99": apply_us[min(len(apply_us) - 1, int(len(apply_us) * 0.99))]}
                         if apply_us else None),
            "full_reloads": len(log_events(log_path, "keys_file_loaded") if events
                                else log_events(log_path, "refresh_success"))}


def replicas_section(keys, key, secret):
    """The revocation latency, quiet and beside CPU-bound neighbours, on REPLICAS servers
    polling `keys`, and what each logged of applying the changes."""
    servers = [bench.Server(keys, env={"REFRESH_INTERVAL": str(POLL_S)}, pinned=False,
                            binary=SERVER, log_name=f"server-changes-{i}.log")
               for i in range(REPLICAS)]
    probes = [Probe(s.port, secret) for s in servers]
    try:
        out = {"quiet": revocation(keys, key, probes, busy=False),
               "busy": revocation(keys, key, probes, busy=True)}
    finally:
        for p in probes:
            p.close()
        for s in servers:
            s.stop()
    out["replicas"] = [applied(s.log_path) for s in servers]
    for s in servers:
        s.log_path.unlink()
    return out


def startup(keys, secret):
    """Spawn to the first 200 from `/verify` on `keys`, three times."""
    times = [bench.startup_ms(keys, secret, binary=SERVER) for _ in range(3)]
    return {"runs_ms": times, "median_ms": statistics.median(times),
            "change_files": change_files(keys)}


def changing(keys, key, refresh_url, stop, state):
    """Disables and enables `key` in turn (`state["disabled"]` says which it is), one change
    every CHANGE_EVERY_S at most, each asking the server at `refresh_url` to apply it, until
    `stop`: each change's seconds and whether the CLI warned that the refresh failed. The CLI
    runs on wrk's cores, off the server's."""
    made = []
    env = {**os.environ, "KEYS_FILE": str(keys), "REFRESH_URL": refresh_url}
    while not stop.is_set():
        start = time.perf_counter()
        op = "enable" if state["disabled"] else "disable"
        proc = subprocess.run([*bench.WRK_CPUS, CLI, op, key], capture_output=True, text=True,
                              env=env)
        if proc.returncode == 0:
            state["disabled"] = not state["disabled"]
        made.append({"op": op, "seconds": time.perf_counter() - start, "ok": proc.returncode == 0,
                     "refresh_failed": "Failed to refresh" in proc.stderr})
        stop.wait(max(0.0, CHANGE_EVERY_S - (time.perf_counter() - start)))
    return made


def settle(port):
    """Asks the server at `port` to refresh and waits for the answer (given after a reload that
    started after the request, so after any reload running before it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REVOKE_TIMEOUT_S)
    conn.request("POST", "/refresh", body="")
    conn.getresponse().read()
    conn.close()


def p99_while(server, secret, change, settle_after=False):
    """wrk on `/verify` of `server` alone, then while `change(stop, state)` changes a key until
    `stop` (returning the changes it made), in P99_ROUNDS paired rounds; with `settle_after`,
    each round ends once a refresh asked after the changes is answered. Stops `server`."""
    pairs, state = [], {"disabled": False}
    try:
        for _ in range(P99_ROUNDS):
            alone = bench.wrk(server.url(), secret, seconds=bench.PAIR_SECONDS)
            stop, made = threading.Event(), []
            thread = threading.Thread(target=lambda: made.extend(change(stop, state)))
            thread.start()
            try:
                during = bench.wrk(server.url(), secret, seconds=bench.PAIR_SECONDS)
            finally:
                stop.set()
                thread.join()
            if settle_after:
                settle(server.port)
            pairs.append({"alone": alone, "changing": during, "changes": made,
                          "p99_ratio": during["p99_ms"] / alone["p99_ms"]})
    finally:
        server.stop()
    seconds = sorted(c["seconds"] for p in pairs for c in p["changes"])
    out = {"rounds": P99_ROUNDS, "seconds": bench.PAIR_SECONDS, "pairs": pairs,
           "p99_ratio": statistics.median(p["p99_ratio"] for p in pairs),
           "alone": bench.median_run([p["alone"] for p in pairs]),
           "changing": bench.median_run([p["changing"] for p in pairs]),
           "changes": len(seconds),
           "failed_changes": sum(1 for p in pairs for c in p["changes"]
                                 if not c["ok"] or c["refresh_failed"]),
           "change_s_median": statistics.median(seconds) if seconds else None,
           "change_s_p99": seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
           if seconds else None,
           "server": applied(server.log_path)}
    server.log_path.unlink()
    return out


def p99_under_changes(keys, key, secret):
    """wrk on `/verify` alone, then while the CLI changes a key every CHANGE_EVERY_S, in paired
    rounds: the p99 ratios and the changes made."""
    log(f"changes: /verify p99 alone and while a key changes every {CHANGE_EVERY_S} s")
    server = bench.Server(keys, binary=SERVER, log_name="server-changes-p99.log")
    url = server.url("/refresh")
    # A refresh the CLI stopped waiting for may still be running: the next run alone starts
    # once a refresh asked after it has been answered.
    return p99_while(server, secret, lambda stop, state: changing(keys, key, url, stop, state),
                     settle_after=True)


def api_changing(port, key, admin, stop, state):
    """Disables and enables `key` in turn through the management API (each answered once the
    change is stored and served), one change every CHANGE_EVERY_S at most, until `stop`."""
    made = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REVOKE_TIMEOUT_S)
    headers = {"Authorization": f"Bearer {admin}", "Content-Length": "0"}
    while not stop.is_set():
        start = time.perf_counter()
        op = "enable" if state["disabled"] else "disable"
        conn.request("POST", f"/keys/{key}/{op}", headers=headers)
        response = conn.getresponse()
        response.read()
        ok = response.status == 200
        if ok:
            state["disabled"] = not state["disabled"]
        made.append({"op": op, "seconds": time.perf_counter() - start, "ok": ok,
                     "status": response.status, "refresh_failed": False})
        stop.wait(max(0.0, CHANGE_EVERY_S - (time.perf_counter() - start)))
    conn.close()
    return made


def p99_under_api_changes(keys, key, secret, admin):
    """As `p99_under_changes`, the changes made through the management API of the server
    measured (`MANAGEMENT_API=1`): a writer that looks the key up in the keys it serves."""
    log(f"changes: /verify p99 alone and while the management API changes a key every "
        f"{CHANGE_EVERY_S} s")
    server = bench.Server(keys, binary=SERVER, env={"MANAGEMENT_API": "1"},
                          log_name="server-changes-api.log")
    return p99_while(server, secret,
                     lambda stop, state: api_changing(server.port, key, admin, stop, state))


def bench_changes(results):
    """The section `changes` of the results: see this module's docstring."""
    work = Path(tempfile.mkdtemp(prefix="bench-changes-", dir=OUT))
    try:
        out = {"keys": KEYS, "quick": QUICK, "binaries": str(BIN), "poll_s": POLL_S,
               "replicas": REPLICAS, "probe_s": PROBE_S, "revoke_runs": REVOKE_RUNS,
               "write_runs": WRITE_RUNS, "has_compact": supports("compact"),
               "write": [write_cost(work, n) for n in (KEYS // 10, KEYS)]}
        out["layout"] = out["write"][-1]["layout"]
        keys, secrets = store_copy(work, KEYS, "live")
        made = json.loads(cli(keys, "create", "--name", "revoked", "--json",
                              "--no-refresh").stdout)
        admin = bench.admin_key(CLI, keys)
        out["revocation"] = replicas_section(keys, made["id"], made["secret"])
        log(f"changes: start-up on {KEYS:,} keys")
        out["startup"] = startup(keys, secrets[0])
        if out["has_compact"] and cli(keys, "compact", check=False).returncode == 0:
            out["startup_compacted"] = startup(keys, secrets[0])
        out["p99"] = p99_under_changes(keys, made["id"], secrets[0])
        out["p99_api"] = p99_under_api_changes(keys, made["id"], secrets[0], admin)
        out["change_files_at_end"] = change_files(keys)
    finally:
        shutil.rmtree(work)
    if "--commit" in sys.argv:
        out["commit"] = option("--commit", None)
    results[LABEL] = out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    merged = OUT / "results.json"
    results = json.loads(merged.read_text()) if merged.exists() else {}
    bench_changes(results)
    if "machine" in results:
        results.setdefault("partial", []).append(LABEL)
        merged.write_text(json.dumps(results, indent=2) + "\n")
        log(f"merged changes into {merged}")
    else:
        (OUT / f"{LABEL}.json").write_text(json.dumps(results[LABEL], indent=2) + "\n")
        log(f"wrote {OUT / 'changes.json'}")


if __name__ == "__main__":
    main()
