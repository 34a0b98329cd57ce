#!/usr/bin/env python3
"""`make bench-history`: what later features cost. The server as built at earlier commits and as
it is now, each paired with nginx in the same rounds, `/verify` (and `/auth` where a build has
it) at 32 keep-alive connections, as `make bench` measures them; the builds take turns at each
place in a round, and each is compared with the build now round by round.

Each commit is checked out in a temporary worktree and built in release mode into
target/bench/history-target; the results go to target/bench/history.json, which bench/report.py
adds to BENCHMARKS.md.

usage: bench/history.py [--quick] [COMMIT=LABEL ...]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as bench
from run import OUT, REPO, log

# What each earlier build is: the last commit before a group of features.
DEFAULT = {
    "d4bd2fc": "before scopes, codes, /auth and the lifecycle (the hyper transport and the "
               "store rework in place)",
    "e8020b0": "before metrics and rate limits",
}


def build(commit):
    """The release server built at `commit`, copied to target/bench/history/COMMIT."""
    out = OUT / "history" / commit / "heare-auth-server"
    if out.exists():
        return out
    log(f"building the server at {commit}")
    with tempfile.TemporaryDirectory(prefix="heare-auth-history-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", "--quiet", tree, commit],
                       check=True)
        try:
            subprocess.run(["cargo", "build", "--quiet", "--release", "--bin", "heare-auth-server"],
                           check=True, cwd=tree,
                           env={**os.environ,
                                "CARGO_TARGET_DIR": str(OUT / "history-target")})
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes((OUT / "history-target" / "release" / "heare-auth-server")
                            .read_bytes())
            out.chmod(0o755)
        finally:
            subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", tree], check=True)
    return out


def has_auth(server):
    """Whether this build serves `/auth` (older ones answer 404)."""
    status, _ = bench.post(server.port, "/auth")
    return status != 404


def main():
    args = [a for a in sys.argv[1:] if a != "--quick"]
    commits = dict(a.split("=", 1) for a in args) if args else DEFAULT
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    builds = {c: build(c) for c in commits}
    builds["now"] = bench.SERVER
    labels = {**commits, "now": f"now ({head})"}
    keys, secrets = bench.keys_file(10_000)
    rounds = 3 if bench.QUICK else 8
    runs = {name: {"verify": [], "auth": []} for name in builds}
    nginx_runs = []
    servers = {name: bench.Server(keys, binary=binary, log_name=f"history-{name}.log")
               for name, binary in builds.items()}
    nginx = None
    try:
        status, body = bench.post(servers["now"].port, "/verify", {"api_key": secrets[0]})
        assert status == 200, body
        nginx = bench.Nginx(body.decode())
        auth = {name: has_auth(s) for name, s in servers.items()}
        names = list(servers)
        for r in range(rounds):
            log(f"round {r + 1} of {rounds}")
            nginx_runs.append(bench.wrk(nginx.url(), secrets[0], seconds=bench.PAIR_SECONDS))
            # The builds take turns at each place in the round: the machine's speed drifts
            # within a round, and a fixed order would favour whichever comes first.
            for name in names[r % len(names):] + names[:r % len(names)]:
                server = servers[name]
                runs[name]["verify"].append(
                    bench.wrk(server.url(), secrets[0], seconds=bench.PAIR_SECONDS))
                if auth[name]:
                    runs[name]["auth"].append(
                        bench.wrk(server.url("/auth"), None, seconds=bench.PAIR_SECONDS,
                                  script_path=bench.auth_script(secrets[0])))
    finally:
        for server in servers.values():
            server.stop()
        if nginx:
            nginx.stop()
    results = {"date": time.strftime("%Y-%m-%d"), "rounds": rounds,
               "seconds": bench.PAIR_SECONDS, "command": "make bench-history",
               "nginx_rps": statistics.median(r["rps"] for r in nginx_runs), "builds": []}
    for name, routes in runs.items():
        row = {"commit": name if name != "now" else head, "label": labels[name]}
        for route, rows in routes.items():
            if not rows:
                continue
            for run in rows:
                if run["socket_errors"] or run["unexpected_status"]:
                    raise RuntimeError(f"{name} {route}: failed requests: {run}")
                if run["connection_check"]["served"] != run["connections"]:
                    raise RuntimeError(f"{name} {route}: not every connection served: {run}")
            ratios = [a["rps"] / b["rps"] for a, b in zip(rows, nginx_runs)]
            now = runs["now"][route]
            row[route] = {"ratio": statistics.median(ratios),
                          "rps": statistics.median(x["rps"] for x in rows),
                          "p99_ms": statistics.median(x["p99_ms"] for x in rows),
                          # The build now against this one, round by round.
                          "now_over_this": statistics.median(
                              a["rps"] / b["rps"] for a, b in zip(now, rows))}
        results["builds"].append(row)
    (OUT / "history.json").write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {OUT / 'history.json'}")


if __name__ == "__main__":
    main()
