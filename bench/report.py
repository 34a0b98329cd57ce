#!/usr/bin/env python3
"""Turns target/bench/results.json (from bench/run.py) into BENCHMARKS.md and bench/throughput.svg.
bench/NOTES.md, written by hand, is included as the discussion of the figures, and
target/bench/soak.json (from `make soak`, bench/soak.py), when present, as the Soak section.
With --soak, only the Soak section of BENCHMARKS.md is rewritten, from soak.json alone.

usage: bench/report.py [--soak]
"""
import json
import statistics
import sys
from pathlib import Path

import wasm_parts

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "target" / "bench" / "results.json"
SOAK = REPO / "target" / "bench" / "soak.json"
HISTORY = REPO / "target" / "bench" / "history.json"


def fmt_int(x):
    return f"{x:,.0f}"


def ms(x):
    return f"{x:.2f} ms" if x < 10 else f"{x:.0f} ms"


def mark(ok):
    return "met" if ok else "**missed**"


def served(run):
    """How many of a keep-alive run's connections carried requests, as 'served/opened'."""
    check = run.get("connection_check")
    if not check:
        return "-"
    return f"{check['served']}/{run['connections']}"


def all_served(runs):
    """Whether every connection of every keep-alive run carried requests."""
    checks = [(c, r["connections"]) for r in runs for c in r.get("checks", [r["connection_check"]])]
    return all(c["served"] == n == c["open"] for c, n in checks if c)


def refresh_row(label, r, side):
    failed = r.get("failed_all", r["unexpected_status"] + r["socket_errors"])
    return (f"| {label} | {fmt_int(r['rps'])} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} | "
            f"{failed} | {side} |")


def chart(sweep):
    """Requests/s against connections, one line per server, as a small self-contained SVG."""
    width, height, left, right, top, bottom = 640, 360, 70, 150, 30, 50
    conns = sweep["connections"]
    series = [("nginx (reference)", "#888888", [r["rps"] for r in sweep["nginx"]]),
              ("heare-auth /verify", "#1f6feb", [r["rps"] for r in sweep["heare-auth"]])]
    top_rps = max(max(values) for _, _, values in series) * 1.1
    plot_w, plot_h = width - left - right, height - top - bottom
    x = lambda i: left + plot_w * i / (len(conns) - 1)
    y = lambda v: top + plot_h * (1 - v / top_rps)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">Requests/s against keep-alive connections '
           f'(wrk, loopback)</text>']
    step = 10 ** (len(str(int(top_rps))) - 1)
    step = step * 2 if top_rps / step < 4 else step
    tick = 0
    while tick <= top_rps:
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                   f'stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
                   f'{tick / 1000:.0f}k</text>')
        tick += step
    for i, c in enumerate(conns):
        out.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{c}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 10}" text-anchor="middle">'
               f'connections</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="black"/>')
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
               f'stroke="black"/>')
    for n, (label, color, values) in enumerate(series):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, v in enumerate(values):
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"/>')
        ly = top + 20 + 20 * n
        out.append(f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 32}" y1="{ly}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{left + plot_w + 38}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def shared_counts_paragraph(r):
    """What the soak's replicas sharing Redis did (none in soaks before they were added)."""
    if not r:
        return []
    limit = r["rate_limit"]
    return [
        f"For the middle third of the run ({r['seconds']:.0f} s), {r['replicas']} more servers "
        "on the same store shared their counts through Redis (Debian's `redis-server` on "
        "loopback), and a client of their own sent them "
        f"{fmt_int(r['target_rps'])} requests/s of the same mix, round-robin, keep-alive "
        f"(they answered {r['rps']:,.0f}/s, {fmt_int(r['answers'])} in all), judged like the "
        "others: each replica polls the store on its own, so a change may reach it up to one "
        "interval and the margin after the CLI returned, whatever the probes saw of the first "
        f"server. Redis held the usage of {r['usage_keys']} keys once the replicas had "
        "stopped, to be compared key by key with the answers their client received; the "
        f"rate-limited key passed {fmt_int(limit['passed'])} times through them, at most "
        f"{limit['max_passes_in_window']} in any window of its period (allowed "
        f"{limit['allowance']}: one server's allowance and a lease of one token per replica), "
        f"and was refused {fmt_int(limit['limited'])} times.",
        "",
    ]


def soak_section(s):
    """The Soak section, from bench/soak.py's results."""
    load, server, fds = s["load"], s["server"], s["server"]["fds"]
    ops = ", ".join(f"{n} {op}" for op, n in sorted(s["operations"].items()))
    workers = {n: cpu for n, cpu in server["thread_cpu_s"].items() if n.startswith("http-worker")}
    poll, limit = s["poll_s"], s["rate_limit"]
    lines = [
        "",
        "## Soak",
        "",
        f"`{s['command']}` (`bench/soak.py`, {s['date']}): {s['seconds']:.0f} s of mixed traffic "
        f"on the release server ({server['http_workers']} HTTP worker threads) from "
        f"{load['processes']} client processes on the same machine: "
        f"{load['keepalive_clients']} keep-alive clients and {load['close_clients']} opening a "
        f"connection per request, paced at {fmt_int(load['target_rps'])} requests/s in all "
        f"(they achieved {fmt_int(load['paced_rps'])}/s; at least "
        f"{load['rate_floor']:.0%} is required), and {load['slow_clients']} slow ones writing "
        "each request in pieces over a few seconds (one request in ten abandoned part-way, on "
        "purpose), to `/verify` and `/auth`, with and without demanded scopes. Meanwhile the CLI "
        f"made {sum(s['operations'].values())} changes to keys in s3s-fs ({ops}), and the server "
        f"polled it every {s['refresh_interval_s']:g} s.",
        "",
        *shared_counts_paragraph(s.get("shared_counts")),
        "Every answer is checked against what its key's state allowed at that moment: after a "
        "change either state is accepted until one poll interval plus "
        f"{s['margin_s']:g} s after the CLI returned (or until a probe saw the new one). The "
        "margin allows for one poll (a poll starts one interval after the last ended, and "
        "loads what was written before it), with room to spare, and the probe's 20 ms step. A "
        "poll is the loader thread waking, a LIST of the changes after the keys it serves and "
        "a GET of each new one, their application in place, and a HEAD of the keys object "
        "(a whole load, paced, would run on a thread of its own); those that found a change "
        "took "
        f"{poll['median_s']:.3f} s (median), "
        f"{poll['p99_s']:.3f} s (p99), {poll['max_s']:.3f} s at most in this run "
        f"({poll['n']} timed from the server's log). Every change is timed twice: to the "
        "server's own `keys_changed` event naming the key, and to the first answer per the new "
        "state on a probe's keep-alive connection; both must come within the bound.",
        "",
        f"The server used {load['server_cpu_share']:.2f} cores (its HTTP workers "
        + ", ".join(f"{cpu:.1f} s" for cpu in workers.values())
        + f" of CPU), the clients (in Python) {load['clients_cpu_share']:.2f}; the machine was "
        f"{load['machine_busy_median']:.0%} busy (median), work other than the soak's taking "
        f"{load['other_work_cores_median']:.2f} cores (median; "
        f"{load['other_work_cores_max']:.2f} at most). The loader thread waited "
        f"{server['thread_run_queue_wait_s'].get('keys-loader', 0):.2f} s in all for a CPU "
        f"(it ran {server['thread_cpu_s'].get('keys-loader', 0):.2f} s), each HTTP worker "
        + ", ".join(f"{w:.1f} s" for n, w in server["thread_run_queue_wait_s"].items()
                    if n.startswith("http-worker")) + ".",
        "",
        "| check | measured | |",
        "|---|---|---|",
    ]
    lines += [f"| {c['name']} | {c['detail']} | {mark(c['ok'])} |" for c in s["checks"]]
    lines += ["", "| traffic (expected answers showing it) | answers |", "|---|---|"]
    lines += [f"| {name} | {fmt_int(n)} |" for name, n in s["kinds"].items()]
    classes = s["requests"]["by_class"]
    statuses = sorted({int(k) for counts in classes.values() for k in counts})
    lines += ["", "| secret sent | " + " | ".join(str(k) if k else "failed" for k in statuses)
              + " |", "|---|" + "---|" * len(statuses)]
    for cls, counts in classes.items():
        lines.append(f"| {cls} | " + " | ".join(fmt_int(counts.get(str(k), 0))
                                                 for k in statuses) + " |")

    def seconds(x):
        return "-" if x is None else f"{x:.3f} s"

    lines += ["", "| change | made | loaded (server log): max | p99 | median | probed | "
              "served (probe): max | p99 | median |", "|---|---|---|---|---|---|---|---|---|"]
    for op, p in s["propagation"].items():
        g, q = p["log"], p["probe"]
        lines.append(f"| `{op}` | {g['n']} | {seconds(g['max_s'])} | {seconds(g['p99_s'])} | "
                     f"{seconds(g['median_s'])} | {q['n']} | {seconds(q['max_s'])} | "
                     f"{seconds(q['p99_s'])} | {seconds(q['median_s'])} |")
    cli = sorted(c["cli_s"] for c in s["changes"])
    lines += [
        "",
        f"Times are from the CLI's return (each change took it {cli[len(cli) // 2]:.3f} s, "
        f"median, and at most {cli[-1]:.3f} s), so the write itself is earlier. A change a "
        "probe cannot see at once (disabling a key that has expired, say) is timed by the "
        "server's log alone.",
        "",
        f"After the warm-up ({s['warmup_s']:.0f} s): RSS {fmt_int(server['rss_kib']['min'])} to "
        f"{fmt_int(server['rss_kib']['max'])} KiB ({fmt_int(server['rss_kib']['first'])} KiB at "
        f"the first sample); descriptors {fds['min']} to {fds['max']} in all (bound "
        f"{fds['bound']}: {fds['at_rest']} before any client, one per client connection the "
        f"load generator can hold, {fds['clients_hold']}, and "
        f"{fds['bound'] - fds['at_rest'] - fds['clients_hold']} for S3 and sockets being "
        f"opened), of which {fds['baseline_min']} to {fds['baseline_max']} besides "
        f"connections, at most {fds['client_connections_max']} client connections "
        f"({fds['close_wait_max']} in CLOSE_WAIT), {fds['s3_connections_max']} to S3 and "
        f"{fds['unattached_sockets_max']} unattached at a sample. The rate-limited key "
        f"({limit['limit']}) passed {fmt_int(limit['passed'])} requests, at most "
        f"{limit['max_passes_in_window']} in any window of its period, and refused "
        f"{fmt_int(limit['limited'])}.",
    ]
    return lines


def history_section(history):
    """What later features cost (`make bench-history`), when it has been run."""
    if not history:
        return []
    lines = [
        "## What the features cost",
        "",
        f"`{history['command']}` (`bench/history.py`, {history['date']}): the release server "
        "as built at earlier commits and as it is now, 10,000 keys, 32 keep-alive connections, "
        f"{history['rounds']} rounds of {history['seconds']} s runs of each, every run paired "
        "with nginx in the same round (median of the paired ratios; nginx served "
        f"{fmt_int(history['nginx_rps'])} requests/s, median).",
        "",
        "| build | `/verify` x nginx | now / this | req/s | p99 | `/auth` x nginx | now / this "
        "| req/s | p99 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in history["builds"]:
        cells = []
        for route in ("verify", "auth"):
            x = b.get(route)
            cells += ([f"{x['ratio']:.2f}", f"{x['now_over_this']:.2f}", fmt_int(x["rps"]),
                       ms(x["p99_ms"])] if x else ["-", "-", "-", "-"])
        lines.append(f"| `{b['commit']}`: {b['label']} | " + " | ".join(cells) + " |")
    return lines + [""]


def update_soak_section():
    """Puts the Soak section from target/bench/soak.json into BENCHMARKS.md in place of the one
    there (before the notes when there is none), leaving the rest as `make bench` wrote it."""
    section = soak_section(json.loads(SOAK.read_text()))[1:] + [""]
    doc = REPO / "BENCHMARKS.md"
    lines = doc.read_text().rstrip("\n").split("\n") if doc.exists() else ["# Benchmarks"]
    notes = REPO / "bench" / "NOTES.md"
    heading = notes.read_text().split("\n", 1)[0] if notes.exists() else None
    if "## Soak" in lines:
        start = lines.index("## Soak")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
    elif heading in lines:
        start = end = lines.index(heading)
    else:
        lines.append("")
        start = end = len(lines)
    lines[start:end] = section
    doc.write_text("\n".join(lines).rstrip("\n") + "\n")
    print("wrote the Soak section of BENCHMARKS.md")


def checksum_rows(core):
    """The checksum's row of the targets table (none before it was measured)."""
    if "bad_checksum_ns" not in core:
        return []
    bad, unknown = core["bad_checksum_ns"], core["invalid_ns"]
    return [f"| invalid checksum refused faster than an unknown key | < an unknown key "
            f"({unknown:.0f} ns) | {bad:.0f} ns ({bad / unknown:.2f} x) | {mark(bad < unknown)} |"]


def wasm_section(w, sizes):
    lines = [
        "## WebAssembly",
        "",
        f"`bench/wasm.mjs` in Node {w['node']}, {fmt_int(w['keys'])} keys: "
        f"{fmt_int(w['valid_per_s'])} valid and {fmt_int(w['invalid_per_s'])} "
        f"invalid verifications per second (`verifyJson`, best of the rounds), "
        f"{ms(w['load_ms'])} to build the `Verifier`. Package: "
        f"{fmt_int(sizes['wasm_bytes'])} bytes, {fmt_int(sizes['wasm_gzip_bytes'])} gzipped.",
        "",
    ]
    parts = w.get("parts")
    if parts:
        lines += [
            "What each part of it costs (`make wasm-size`, `bench/wasm_parts.py`): a function "
            "counts for its crate or its purpose by name, and a generic helper for the function "
            "through which every call to it passes; *gzipped* is what leaving the part's bytes "
            "out of the package saves of its `gzip -9` size, so the rows overlap a little and do "
            f"not add up to the {fmt_int(parts['gzip_bytes'])} bytes of the whole (the package "
            "without its file name in the gzip header).",
            "",
            *wasm_parts.table(parts).split("\n"),
            "",
        ]
    return lines


def manage_rows(g):
    """The management API's rows of the targets table (none before it was measured)."""
    if not g:
        return []
    rows = {row["keys"]: row for row in g["rows"]}
    big, small = rows[100_000], rows[10]
    lst, big_create, small_create = big["list_1000_ms"], big["create_ms"], small["create_ms"]
    out = []
    for route in ("verify", "auth"):
        ratio = g[route]["ratio"]
        out.append(
            f"| `/{route}` throughput with `MANAGEMENT_API=1` | within 5% of without "
            f"(>= 0.95 x) | {ratio:.2f} x (median of {g['pair_rounds']} paired runs; "
            f"{g[route]['on']['rps']:,.0f} against {g[route]['off']['rps']:,.0f} req/s) | "
            f"{mark(ratio >= 0.95)} |")
    out += [
        f"| management API `GET /keys?limit=1000`, 100,000 keys | < 50 ms | "
        f"{lst['median']:.1f} ms median, {lst['p99']:.1f} ms p99 ({lst['runs']} requests) | "
        f"{mark(lst['median'] < 50)} |",
        f"| management API `POST /keys`, 100,000 keys, local file | < 20 ms | "
        f"{big_create['median']:.0f} ms median (a {big['file_bytes'] / 1e6:.0f} MB file; "
        f"answered once the replica serves the change) | "
        f"{mark(big_create['median'] < 20)} |",
        f"| management API `POST /keys`, 10 keys, local file | < 20 ms | "
        f"{small_create['median']:.1f} ms median, {small_create['max']:.1f} ms at most | "
        f"{mark(small_create['median'] < 20)} |",
    ]
    return out


CHANGE_OPS = ("create", "disable", "enable", "delete")


def kb(x):
    return f"{x / 1000:,.1f} KB" if x < 10_000_000 else f"{x / 1e6:,.0f} MB"


def seconds_or_timeout(x):
    return "timed out" if x is None else f"{x:.2f} s"


def changes_rss(g):
    """The CLI's peak RSS at the smaller and the larger size (the most of the commands'
    medians), and their ratio."""
    small, big = (max(w[op]["rss_kib"]["median"] for op in CHANGE_OPS) for w in g["write"])
    return small, big, big / small


def changes_rate(p):
    """Changes made per second during the runs with changes, and whether that is at least 80%
    of the one every 100 ms asked for."""
    rate = p["changes"] / (p["rounds"] * p["seconds"])
    return rate, rate >= 8


def changes_rows(g):
    """The rows of the targets of one change at a million keys (none before they were
    measured)."""
    if not g:
        return []
    big = g["write"][-1]
    n = fmt_int(big["keys"])
    most = max(big[op]["bytes_written"]["median"] for op in CHANGE_OPS)
    slowest = max(CHANGE_OPS, key=lambda op: big[op]["seconds"]["median"])
    slow_s = big[slowest]["seconds"]["median"]
    small_rss, big_rss, rss_ratio = changes_rss(g)
    bound = g["poll_s"] + 1
    rows = [
        f"| bytes written to the store by one change, {n} keys | <= 10 KB | {kb(most)} "
        f"(the most of {', '.join(CHANGE_OPS)}; medians) | {mark(most <= 10_000)} |",
        f"| `heare-auth` change, {n} keys | < 50 ms | {slow_s * 1000:,.0f} ms "
        f"(`{slowest}`, the slowest median) | {mark(slow_s < 0.05)} |",
        f"| peak RSS of a change independent of the keys | at {n} keys <= 1.25 x at "
        f"{fmt_int(g['write'][0]['keys'])} | {big_rss / 1024:,.0f} MiB against "
        f"{small_rss / 1024:,.0f} MiB ({rss_ratio:.2f} x) | {mark(rss_ratio <= 1.25)} |",
    ]
    for mode, label in (("quiet", "quiet"), ("busy", "a CPU-bound neighbour per core")):
        r = g["revocation"][mode]
        stored = r.get("max_after_write_s")
        ok = stored is not None and stored <= bound
        rows.append(
            f"| a disabled key refused by every replica ({g['replicas']}, polling every "
            f"{g['poll_s']} s), {label}, {n} keys | <= {bound} s from the change stored (the "
            f"CLI's exit) | {seconds_or_timeout(stored)} at most ({len(r['runs'])} runs; from "
            f"the CLI's start: {seconds_or_timeout(r['max_s'])} at most, median "
            f"{seconds_or_timeout(r['median_s'])}) | {mark(ok)} |")
    applies = [r["apply_us"] for r in g["revocation"].get("replicas", []) if r.get("apply_us")]
    if applies:
        worst = max(a["max"] for a in applies)
        medians = ", ".join(f"{a['median']:.0f}" for a in applies)
        rows.append(
            f"| a replica applies a one-key change, {n} keys | < 10 ms of CPU | "
            f"{worst / 1000:.2f} ms at most ({len(applies)} replicas; medians "
            f"{medians} µs) | {mark(worst < 10_000)} |")
    start = g["startup"]["median_ms"]
    rows.append(f"| start-up to first `/verify`, {n} keys, a snapshot never folded (as the "
                f"original service wrote it) and {g['startup']['change_files']} changes | "
                f"< 700 ms | {ms(start)} | {mark(start < 700)} |")
    folded = g.get("startup_compacted")
    if folded:
        rows.append(f"| start-up to first `/verify`, {n} keys, the snapshot folded "
                    f"(`heare-auth compact`) | < 700 ms | {ms(folded['median_ms'])} | "
                    f"{mark(folded['median_ms'] < 700)} |")
    for key, by in (("p99", "the CLI"), ("p99_api", "the management API")):
        p = g.get(key)
        if not p:
            continue
        rate, rate_ok = changes_rate(p)
        failed = p["alone"]["failed_all"] + p["changing"]["failed_all"]
        rows.append(
            f"| `/verify` p99 while {by} changes a key every 100 ms, {n} keys | <= 2 x alone, "
            f"the changes made at >= 8/s | {p['p99_ratio']:.2f} x (median of {p['rounds']} "
            f"paired runs), {rate:.1f} changes/s, {failed} failed requests | "
            f"{mark(p['p99_ratio'] <= 2 and rate_ok and failed == 0)} |")
    api = g.get("p99_api")
    if api and api.get("change_s_median") is not None:
        median, p99 = api["change_s_median"], api["change_s_p99"]
        rows.append(
            f"| management API change (`POST /keys/{{id}}/disable`, answered once served), {n} "
            f"keys, local file | < 50 ms | {median * 1000:,.1f} ms median, {p99 * 1000:,.1f} ms "
            f"p99 ({api['changes']} changes under load) | {mark(median < 0.05)} |")
    return rows


def changes_why(g):
    """Why the targets of one change at a million keys that were missed were missed."""
    lines = []
    p = g.get("p99")
    if p and p["p99_ratio"] > 2:
        # A pair in which a CLI command took over a second: one that folded the changes.
        folding = [pair for pair in p["pairs"]
                   if any(c["seconds"] > 1 for c in pair["changes"])]
        others = sorted(pair["p99_ratio"] for pair in p["pairs"] if pair not in folding)
        lines.append(
            "**Why the CLI's p99 misses.** Each CLI change reads a few kilobytes (the index "
            "and the key's record) and writes one small change, but every 64th change folds "
            "the changes into a new snapshot: the whole 340 MB file read, parsed, checked and "
            "written again (`heare-auth compact` above: seconds of work, the file's size "
            "twice over in memory, 340 MB of writeback), at the lowest CPU priority once the "
            "command has answered, on wrk's core of this 2-core machine; its memory and disk "
            "traffic are not lowered by the priority, and the changing loop waits for the "
            "command to exit, which lowers the rate of changes. Between folds, each change is "
            "a new process started on wrk's core about ten times a second (a few milliseconds "
            "of CPU each), beside the client whose latencies are measured. "
            + (f"{len(folding)} of the {len(p['pairs'])} pairs had a command that folded "
               "(one taking over a second): "
               + ", ".join(f"{pair['p99_ratio']:.2f} x with {len(pair['changes'])} "
                           + ("change" if len(pair["changes"]) == 1 else "changes")
                           for pair in folding)
               + "; the others: " + ", ".join(f"{r:.2f} x" for r in others) + ". "
               if folding else "No pair had a command that folded. ")
            + "The management API folds on a thread of its replica, and with it as the "
            "writer the p99 stays within the target.")
    api = g.get("p99_api")
    if api and api.get("change_s_median") is not None and api["change_s_median"] >= 0.05:
        medians = [statistics.median(c["seconds"] for c in pair["changes"])
                   for pair in api["pairs"] if pair["changes"]]
        lines.append(
            "**Why the management API's change time misses.** An answer waits until the "
            "replica serves the change, and on this machine the server shares CPU 0 with "
            "wrk's load, its writer and loader threads with the request handlers: the "
            "pairs' medians were " + ", ".join(f"{m * 1000:.0f} ms" for m in medians)
            + ": the median over all of them moves about the target from run to run.")
    if g["startup"]["median_ms"] >= 700:
        lines.append(
            "**Why start-up misses on a snapshot never folded.** It reads the 340 MB snapshot "
            "(about 0.16 s) and parses it on two threads (`load`: about 0.47 s); a file that "
            "does not say where its changes begin at its start (`next_change`, which every "
            "fold writes first) is searched whole for it first (about 45 ms), as the field "
            "may be anywhere. Once folded (every 64th change, or `compact`), it is not.")
    return [line for text in lines for line in (text, "")]


def changes_section(g, before=None):
    """One change at a million keys: the CLI's writes, revocation on replicas that poll,
    the replicas' apply times, start-up and the p99 while keys change; beside them, the same
    rows for the build before change objects (`before`), when measured."""
    if not g:
        return []
    n = fmt_int(g["keys"])
    layout = ("a snapshot `keys.json` and change objects in `keys.json.changes/`"
              if g["layout"] == "changes" else "the whole `keys.json` rewritten by every change")
    lines = [
        "## Changes at a million keys",
        "",
        f"`bench/changes.py` (`bench/run.py --only changes`) on the local file store"
        + (f", **measured at {n} keys, not 1,000,000**" if g["keys"] != 1_000_000 else "")
        + f"; the store's layout as the CLI wrote it: {layout}.",
        "",
        "| what | target | measured | |",
        "|---|---|---|---|",
        *changes_rows(g),
        "",
        *([f"Before: the same rows for the build before change objects, where every change "
           f"rewrote the whole file and every replica re-read it ("
           + (f"commit {before['commit']}, " if before.get("commit") else "")
           + f"`bench/changes.py --before --bin DIR`, the same machine in the same session"
           + (f", {before['revoke_runs']} revocations per mode" if before.get('revoke_runs')
              else "") + "):",
           "",
           "| what | target | measured | |",
           "|---|---|---|---|",
           *changes_rows(before),
           ""] if before else []),
        *(changes_why(g) if g["layout"] == "changes" else []),
        f"**The CLI's writes.** `heare-auth create --name x --json`, then `disable`, `enable` "
        f"and `delete --yes` of that key (all `--no-refresh`), {g['write_runs']} times each on "
        "a copy of the keys file, whole processes under GNU time: wall time and peak RSS "
        "(medians). *Written*: the bytes of the store's files (the snapshot, its lock, every "
        "change object) that are new or changed after the command, counted whole; *kernel*: "
        "what the kernel counted the process as writing (`%O`).",
        "",
        "| command | keys | file | time | peak RSS | written | files | kernel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in g["write"]:
        for op in CHANGE_OPS:
            x = w[op]
            lines.append(
                f"| `{op}` | {fmt_int(w['keys'])} | {w['file_bytes'] / 1e6:,.1f} MB | "
                f"{x['seconds']['median'] * 1000:,.1f} ms | "
                f"{x['rss_kib']['median'] / 1024:,.1f} MiB | {kb(x['bytes_written']['median'])} "
                f"| {x['files_written']['median']:g} | {kb(x['fs_out_bytes']['median'])} |")
    for w in g["write"]:
        first = w["runs"]["create"][0]
        lines += ["", f"The first change on the copy of {fmt_int(w['keys'])} keys (a `create`) "
                      "found no index of the snapshot, read it whole and wrote its index: "
                      f"{first['seconds'] * 1000:,.0f} ms, {first['rss_kib'] / 1024:,.0f} MiB "
                      f"peak, {kb(first['bytes_written'])} written (the change and the index); "
                      "every change after it found its key through the index."]
    for w in g["write"]:
        c = w.get("compact")
        if c and "error" in c:
            lines += ["", f"`heare-auth compact` on {fmt_int(w['keys'])} keys failed: "
                          f"{c['error']}"]
        elif c:
            lines += ["", f"`heare-auth compact` on {fmt_int(w['keys'])} keys, with "
                          f"{w['change_files']} change objects: {c['seconds'] * 1000:,.0f} ms, "
                          f"{c['rss_kib'] / 1024:,.0f} MiB peak, {kb(c['bytes_written'])} "
                          "written."]
    rv = g["revocation"]
    lines += [
        "",
        f"**Revocation.** {g['replicas']} servers on the same keys file, polling it every "
        f"{g['poll_s']} s (`REFRESH_INTERVAL`), not pinned. A key is made, all answer 200 for "
        "it, then `heare-auth disable ID --no-refresh` (only the polls deliver it) while a "
        f"client asks each replica every {g['probe_s'] * 1000:.0f} ms over keep-alive; the "
        "time is from the CLI's start to each replica's first 403. The key is enabled again "
        "(and served) between runs. *Busy*: one CPU-bound process of normal priority per core "
        "running through each run.",
        "",
        "| | runs | every replica refused it within: max | median | the CLI took (median) | "
        "timed out | other answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in ("quiet", "busy"):
        r = rv[mode]
        other = sum(len(run["other_statuses"]) for run in r["runs"])
        lines.append(f"| {mode} | {len(r['runs'])} | {seconds_or_timeout(r['max_s'])} | "
                     f"{seconds_or_timeout(r['median_s'])} | {r['cli_median_s']:.2f} s | "
                     f"{r['timeouts']} | {other} |")
    lines += ["", "Every run, each replica's time:", ""]
    for mode in ("quiet", "busy"):
        runs = "; ".join(", ".join(seconds_or_timeout(s) for s in run["replicas_s"])
                         for run in rv[mode]["runs"])
        lines.append(f"- {mode}: {runs}")
    lines += [
        "",
        "**What each replica logged** over the revocation runs (both modes): its "
        "`changes_applied` events (change objects and keys applied, and the CPU time of each "
        "application, `apply_us`), and its whole loads of the keys file (`keys_file_loaded`; before change objects, every reload was whole: `refresh_success`).",
        "",
        "| replica | `changes_applied` | change objects | keys | apply: median | p99 | max | "
        "full reloads |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, a in enumerate(rv["replicas"] + [g["p99"]["server"]]):
        us = a["apply_us"]
        name = str(i + 1) if i < len(rv["replicas"]) else "the p99 runs' server"
        cells = ([f"{us[k]:,.0f} µs" for k in ("median", "p99", "max")] if us
                 else ["not logged"] * 3)
        lines.append(f"| {name} | {a['changes_applied_events']} | {a['changes']} | {a['keys']} "
                     f"| {' | '.join(cells)} | {a['full_reloads']} |")
    s = g["startup"]
    lines += [
        "",
        f"**Start-up** of one server on the store after those runs ({s['change_files']} change "
        "objects beside the snapshot), spawn to the first 200 from `/verify`: "
        + ", ".join(ms(t) for t in s["runs_ms"]) + f"; median {ms(s['median_ms'])}."
        + (f" After `heare-auth compact`: "
           + ", ".join(ms(t) for t in g["startup_compacted"]["runs_ms"])
           + f"; median {ms(g['startup_compacted']['median_ms'])}."
           if g.get("startup_compacted") else ""),
    ]
    p = g["p99"]
    rate, _ = changes_rate(p)
    lines += [
        "",
        f"**`/verify` while keys change.** One server (CPU 0), wrk at 32 keep-alive "
        f"connections, {p['rounds']} rounds of {p['seconds']} s runs alone paired with runs "
        "while the CLI (on wrk's core) disables and enables a key in turn, a change every "
        "100 ms at most, each asking the server to apply it at once (`REFRESH_URL`, its "
        f"`/refresh`) and waiting for the answer: {p['changes']} changes made "
        f"({rate:.1f}/s; {p['failed_changes']} failed or not applied at once), each taking the "
        f"CLI {p['change_s_median'] * 1000:,.0f} ms (median). The p99 ratio is the median of "
        "the pairs', the other columns are from the runs with the median rate.",
        "",
        "| | req/s | p50 | p99 | failed requests | side traffic |",
        "|---|---|---|---|---|---|",
        refresh_row("alone", p["alone"], "none"),
        refresh_row("a key changing", p["changing"], f"{p['changes']} changes"),
        "",
    ]
    return lines


def redis_rows(g):
    """The shared counts' rows of the targets table (none before they were measured)."""
    if not g:
        return []
    shared = [row for row in g["accuracy"] if row["shared"]]
    worst = max(shared, key=window_error)
    met = sum(1 for row in shared if row["goal_met"] and row["load_ok"])
    out = [
        f"| a rate limit shared by 1 and 3 replicas through Redis, 1 to 10,000 req/s offered | "
        f"every window after the first within 10% of the limit, none above the limit + one "
        f"lease per replica | {met} of {len(shared)} runs; the worst window "
        f"{window_error(worst):.0%} off ({fmt_int(worst['rate'])}/s, {limit_text(worst)}, "
        f"{worst['replicas']} replica(s)) | {mark(met == len(shared))} |"]
    for name, label in REDIS_ROUTES:
        x = g[name]
        out.append(
            f"| {label} with `REDIS_URL` | throughput >= 0.90 x, p99 <= 1.2 x without | "
            f"{x['ratio']:.2f} x, p99 {x['p99_ratio']:.2f} x (medians of {g['pair_rounds']} "
            f"paired runs) | {mark(redis_overhead_met(x))} |")
    return out


REDIS_ROUTES = [("verify_rate", "`/verify`, a key with a rate limit"),
                ("verify_credits", "`/verify`, a key with credits"),
                ("auth_rate", "`/auth`, a key with a rate limit"),
                ("auth_credits", "`/auth`, a key with credits")]


def redis_overhead_met(x):
    """The goal, on a load as claimed: no failed request, every connection served."""
    failed = x["on"]["failed_all"] + x["off"]["failed_all"]
    return (x["ratio"] >= 0.90 and x["p99_ratio"] <= 1.2 and failed == 0
            and all_served([x["on"], x["off"]]))


def window_error(row):
    """How far the furthest window after the first is from the limit, as a share of it."""
    steady, limit = row["steady"], row["limit"]
    return max(abs(steady["min"] - limit), abs(steady["max"] - limit)) / limit


def limit_text(row):
    return f"{fmt_int(row['limit'])}/{row['window_s']}s"


def redis_section(g):
    """The shared counts' section: the rate limits' accuracy and what Redis costs a request."""
    if not g:
        return []
    more = {row["window_s"]: len(row["windows"]) - 1 for row in g["accuracy"]}
    lines = [
        "## Shared counts (Redis)",
        "",
        "Debian's `redis-server` on loopback (nothing saved), the release servers pinned to CPU 0 "
        "(one worker thread each), the load on the other core"
        + (" (quick mode: short runs)" if g["quick"] else "") + ".",
        "",
        "**How closely replicas hold a key to its rate limit.** Each run makes a new key with a "
        "rate limit, starts 1 or 3 servers on the same keys file and the same Redis, and "
        "`bench/paced.py` offers `/verify` requests of that key at a fixed rate, round-robin "
        "over the servers, open-loop: request i is written i / rate s after the start whatever "
        "came back before (pipelined, one keep-alive connection per server), so slow answers "
        "cannot slow the load. A run lasts the first window and "
        + " or ".join(f"{n} more ({w}-s windows)" for w, n in sorted(more.items()))
        + ". The limit is half the offered rate. *Achieved*: requests written over the time "
        "taken, and how late a write was behind its time (p99). The load is as claimed only "
        "if every request was answered, each with 200 or 429, and no server logged "
        "`redis_down`. *Per window*: requests accepted (200) in each window after the first "
        "(the first also spends the full bucket), by when they were due. *Exact bucket*: what "
        "one exact token bucket (capacity the limit, refilled by the limit every window, full "
        "at the start) accepts of the same requests at the same times, in integer arithmetic; "
        "*error*: the requests accepted in the whole run over the exact bucket's, less 1. "
        "Goal: every window after the first within 10% of the limit, and none above the limit "
        "plus one lease (max(1, limit / 40) tokens) per replica. Without Redis each replica "
        "keeps a bucket of the whole limit: those runs offer 4 x the limit, so that each of "
        "the 3 is over it alone once its own full bucket is spent, and show the overshoot "
        "shared counts remove.",
        "",
        "| offered | achieved (late, p99) | limit | replicas | Redis | per window: min-max "
        "(mean) | exact bucket | at most allowed | accepted / exact bucket | error | |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in g["accuracy"]:
        steady = row["steady"]
        exact = row["exact_windows"][1:]
        if not row["load_ok"]:
            verdict = "**load not as claimed**"
        elif row["shared"]:
            verdict = mark(row["goal_met"])
        else:
            verdict = f"{row['windows'][-1] / row['limit']:.1f} x the limit (last window)"
        lines.append(
            f"| {fmt_int(row['rate'])}/s | {row['achieved_rate']:,.1f}/s "
            f"({ms(row['late_ms']['p99'])}) | {limit_text(row)} | {row['replicas']} | "
            f"{'yes' if row['shared'] else 'no'} | {fmt_int(steady['min'])}-"
            f"{fmt_int(steady['max'])} ({steady['mean']:,.1f}) | {fmt_int(min(exact))}-"
            f"{fmt_int(max(exact))} | {fmt_int(row['bound']) if row['shared'] else '-'} | "
            f"{fmt_int(row['accepted'])} / {fmt_int(row['exact'])} | {row['error']:+.1%} | "
            f"{verdict} |")
    lines += [
        "",
        f"**What sharing costs a request.** One server with `REDIS_URL` and one without, on "
        f"the 10,000-key file and two keys more: one with a rate limit no run reaches "
        f"(1,000,000/s) and one with more credits than it spends; wrk at 32 keep-alive "
        f"connections, {g['pair_rounds']} rounds of {g['pair_seconds']} s runs, each run with "
        "Redis paired with the run without it in the same round (either first, in turn). *x* is "
        "the median of the paired ratios, the other columns are from the runs with the median "
        "rate. Goal: throughput within 10% (>= 0.90 x) and p99 at most 1.2 x. Redis counted "
        f"{fmt_int(g['credits_spent_in_redis'])} credits spent for the "
        f"{fmt_int(g['credits_answers'])} answers wrk counted on the key with credits (wrk "
        "leaves the answers in flight at a run's end uncounted); `heare_auth_redis_up` was "
        f"{g['redis_up']:.0f} at the end, and the server logged `redis_down` "
        f"{g['redis_down_events']} times.",
        "",
        "| | req/s without | with | x | p99 without | with | x | failed (all runs) | "
        "every connection served | |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in REDIS_ROUTES:
        x = g[name]
        lines.append(
            f"| {label} | {fmt_int(x['off']['rps'])} | {fmt_int(x['on']['rps'])} | "
            f"{x['ratio']:.2f} | {ms(x['off']['p99_ms'])} | {ms(x['on']['p99_ms'])} | "
            f"{x['p99_ratio']:.2f} | {x['off']['failed_all'] + x['on']['failed_all']} | "
            f"{'yes' if all_served([x['on'], x['off']]) else 'no'} | "
            f"{mark(redis_overhead_met(x))} |")
    return lines + [""]


def main():
    r = json.loads(RESULTS.read_text())
    m, h = r["machine"], r["http"]
    nginx_rps = h["nginx"]["rps"]
    ratio = h["valid"]["ratio"]["median"]
    ratio_close = h["valid_close"]["ratio"]["median"]
    load = {row["keys"]: row for row in r["load"]["rows"]}
    refresh = r["refresh"]
    refresh_p99_ratio = refresh["p99_ratio"]
    refresh_errors = (refresh["reloading"]["failed_all"] + refresh["alone"]["failed_all"]
                      + refresh["failed_reloads"])
    history = json.loads(HISTORY.read_text()) if HISTORY.exists() else None
    per_key = load[1_000_000]["bytes_per_key"]
    meta = load[1_000_000]["metadata_bytes_per_key"]
    sizes = r["sizes"]
    static = r.get("static")
    keepalive_runs = [h[k] for k in ("nginx", "valid", "invalid", "auth", "health")]
    keepalive_runs += r["sweep"]["nginx"] + r["sweep"]["heare-auth"]
    every_served = all_served(keepalive_runs)
    close = h["valid_close"]
    answered = h["close_answered"]
    close_counted = answered["server"] >= answered["wrk"]
    idle = r["idle_connections"]
    c = r["cli"]
    file_mb = c["file_bytes"] / 1e6
    lines = [
        "# Benchmarks",
        "",
        "Every figure below comes from one run of `make bench` (`bench/run.py`, then `bench/report.py`,",
        "which writes this file and `bench/throughput.svg`). HTTP figures are ratios against nginx",
        "serving the same JSON body in the same run, because these machines are shared and noisy;",
        "absolute numbers only describe this machine on this day.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}",
        f"- Toolchain: {m['rustc']}; {m['nginx']}; {m['wrk']}; Node {m['node']}",
        f"- Date: {m['date']}{' (quick mode: short runs)' if r['quick'] else ''}",
        *([f"- Measured again on their own after the run (`bench/run.py --only`): "
           f"{', '.join(sorted(set(r['partial'])))}"] if r.get("partial") else []),
        ("- Load: wrk on 127.0.0.1. " + (
            f"The server measured (and nginx) run on CPU 0, wrk with {r['wrk_threads']} "
            "thread(s) on the other core(s), so that neither takes CPU from the other; the "
            "server's default thread count is then 1 (the cores it may use)."
            if r["pinned"] else "wrk and the server share the machine's cores.")),
        "",
        "## Targets",
        "",
        "| what | target | measured | |",
        "|---|---|---|---|",
        f"| `/verify` throughput, valid key, 32 keep-alive connections | >= 0.90 x nginx | "
        f"{ratio:.2f} x nginx (median of {r['pair_rounds']} paired runs; quartiles "
        f"{h['valid']['ratio']['q1']:.2f}-{h['valid']['ratio']['q3']:.2f}) | "
        f"{mark(ratio >= 0.90)} |",
        f"| `/verify` throughput, a new connection per request | >= 1.0 x nginx | "
        f"{ratio_close:.2f} x nginx (quartiles {close['ratio']['q1']:.2f}-"
        f"{close['ratio']['q3']:.2f}) | {mark(ratio_close >= 1.0)} |",
        f"| `/verify` p99, keep-alive | <= nginx's p99 ({ms(h['nginx']['p99_ms'])}) | "
        f"{ms(h['valid']['p99_ms'])} | {mark(h['valid']['p99_ms'] <= h['nginx']['p99_ms'])} |",
        f"| `/verify` p99, a new connection per request | <= nginx's p99 "
        f"({ms(h['nginx_close']['p99_ms'])}) | {ms(close['p99_ms'])} | "
        f"{mark(close['p99_ms'] <= h['nginx_close']['p99_ms'])} |",
        f"| every connection served | all opened connections carry requests | "
        f"{'yes' if every_served else 'no'} (keep-alive: `ss` half-way through each run); "
        f"{fmt_int(answered['server'])} verifications logged for {fmt_int(answered['wrk'])} "
        f"responses wrk counted (a connection per request) | "
        f"{mark(every_served and close_counted)} |",
        f"| core verify, 1,000,000 keys | < 100 ns | {r['core']['valid_ns']:.0f} ns valid, "
        f"{r['core']['invalid_ns']:.0f} ns invalid | "
        f"{mark(max(r['core']['valid_ns'], r['core']['invalid_ns']) < 100)} |",
        *checksum_rows(r["core"]),
        f"| load 1,000,000 keys | < 0.7 s | {load[1_000_000]['load_ms'] / 1000:.2f} s | "
        f"{mark(load[1_000_000]['load_ms'] < 700)} |",
        f"| memory per key (1M keys) | < 300 B + metadata ({meta:.0f} B) | {per_key:.0f} B | "
        f"{mark(per_key < 300 + meta)} |",
        f"| reload every 100 ms under load | 0 errors, p99 <= 2 x | {refresh_errors} errors, "
        f"p99 {refresh_p99_ratio:.2f} x (median of {refresh['rounds']} paired runs), "
        f"{refresh['reloads']} reloads done | "
        f"{mark(refresh_errors == 0 and refresh_p99_ratio <= 2)} |",
        f"| `heare-auth create`, 100,000 keys | faster than Python's `json.load` of the file "
        f"({c['python_load_s']:.2f} s) | {c['create_s']:.2f} s, "
        f"{c['create_s'] / c['python_load_s']:.2f} x | "
        f"{mark(c['create_s'] < c['python_load_s'])} |",
        f"| `heare-auth list --json`, 100,000 keys | faster than `json.load` | "
        f"{c['list_s']:.2f} s, {c['list_s'] / c['python_load_s']:.2f} x | "
        f"{mark(c['list_s'] < c['python_load_s'])} |",
        f"| peak RSS of `create` and `list`, 100,000 keys | < 3 x the file ({3 * file_mb:.0f} MB) | "
        f"{c['create_rss_kib'] * 1024 / 1e6:.0f} MB and {c['list_rss_kib'] * 1024 / 1e6:.0f} MB | "
        f"{mark(max(c['create_rss_kib'], c['list_rss_kib']) * 1024 < 3 * c['file_bytes'])} |",
        f"| `heare-auth create`, 10 keys, local file | < 10 ms | {c['create_10_keys_ms']:.1f} ms | "
        f"{mark(c['create_10_keys_ms'] < 10)} |",
        *manage_rows(r.get("manage")),
        *redis_rows(r.get("redis")),
        *changes_rows(r.get("changes")),
        f"| start-up to first `/verify`, 100k keys | < 300 ms | {ms(r['startup']['median_ms'])} | "
        f"{mark(r['startup']['median_ms'] < 300)} |",
        f"| idle RSS, 1,000 keys | < 10 MB | {r['idle']['rss_kib'] / 1024:.1f} MiB | "
        f"{mark(r['idle']['rss_kib'] * 1024 < 10_000_000)} |",
    ]
    if history:
        now = history["builds"][-1]
        for before in history["builds"][:-1]:
            for route in ("verify", "auth"):
                if route not in before or route not in now:
                    continue
                change = before[route]["now_over_this"]
                lines.append(
                    f"| `/{route}` throughput against `{before['commit']}` ({before['label']}) "
                    f"| within 5% (>= 0.95 x) | {change:.2f} x (median of the rounds' ratios; "
                    f"{now[route]['ratio']:.2f} against {before[route]['ratio']:.2f} x nginx), "
                    "`make bench-history` | "
                    f"{mark(change >= 0.95)} |")
    if static:
        lines.append(f"| static server binary (musl, stripped) | < 6 MB | "
                     f"{static['server_bytes'] / 1e6:.2f} MB | "
                     f"{mark(static['server_bytes'] < 6_000_000)} |")
    lines += [
        f"| WebAssembly package | <= 100 KB gzipped | {sizes['wasm_gzip_bytes'] / 1000:.1f} KB "
        f"gzipped ({sizes['wasm_bytes'] / 1000:.1f} KB raw) | "
        f"{mark(sizes['wasm_gzip_bytes'] <= 100_000)} |",
        "",
        "## HTTP verify (10,000 keys, logging on, to a file)",
        "",
        f"Release server with its default thread count ({h['threads'] - 3} HTTP worker(s)), 32 "
        f"connections, {r['pair_rounds']} rounds of {r['pair_seconds']} s runs, each "
        "heare-auth run paired with the nginx run just before it; *x nginx* is the median of "
        "the paired ratios, and the other columns are from the run with the median rate. nginx: "
        "`return 200` with the same body, access log off, as many workers as the server has "
        "cores. *Served*: connections that had carried requests half-way through the run (`ss -i` "
        "on the server's side), of those wrk opened.",
        "",
        "| | req/s | x nginx | p50 | p90 | p99 | failed (all runs) | served |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, key in [("nginx, keep-alive", "nginx"),
                       ("heare-auth, valid key (200)", "valid"),
                       ("heare-auth, invalid key (403)", "invalid"),
                       ("heare-auth, `GET /auth` with a valid bearer key (200)", "auth"),
                       ("heare-auth, `GET /health` (static body)", "health"),
                       ("nginx, a connection per request", "nginx_close"),
                       ("heare-auth, a connection per request", "valid_close")]:
        row = h[key]
        failed = row["failed_all"]
        x_nginx = f"{row['ratio']['median']:.2f}" if "ratio" in row else "1.00"
        lines.append(f"| {label} | {fmt_int(row['rps'])} | {x_nginx} | "
                     f"{ms(row['p50_ms'])} | {ms(row['p90_ms'])} | {ms(row['p99_ms'])} | "
                     f"{failed} | {served(row)} |")
    lines += [
        "",
        f"With a connection per request, the server logged {fmt_int(answered['server'])} "
        f"verifications over all rounds, for the {fmt_int(answered['wrk'])} responses wrk "
        f"counted. The server logged {fmt_int(h['log_lines'])} lines in all.",
        "",
        "![Requests/s against connections, heare-auth and nginx](bench/throughput.svg)",
        "",
        "| connections | " + " | ".join(str(c) for c in r["sweep"]["connections"]) + " |",
        "|---|" + "---|" * len(r["sweep"]["connections"]),
        "| nginx req/s | " + " | ".join(fmt_int(x["rps"]) for x in r["sweep"]["nginx"]) + " |",
        "| heare-auth req/s | " + " | ".join(fmt_int(x["rps"]) for x in r["sweep"]["heare-auth"])
        + " |",
        "| ratio | " + " | ".join(f"{a['rps'] / b['rps']:.2f}" for a, b in
                                   zip(r["sweep"]["heare-auth"], r["sweep"]["nginx"])) + " |",
        "| nginx p99 | " + " | ".join(ms(x["p99_ms"]) for x in r["sweep"]["nginx"]) + " |",
        "| heare-auth p99 | " + " | ".join(ms(x["p99_ms"]) for x in r["sweep"]["heare-auth"])
        + " |",
        "| heare-auth connections served | "
        + " | ".join(served(x) for x in r["sweep"]["heare-auth"]) + " |",
        "",
        f"With {fmt_int(idle['connections'])} idle keep-alive connections open (each answered "
        f"once: {fmt_int(idle['answered'])}), the server (1,000 keys) holds "
        f"{idle['rss_kib'] / 1024:.1f} MiB RSS ({idle['rss_before_kib'] / 1024:.1f} MiB before) "
        f"in {idle['threads']} threads.",
        "",
        "### Worker threads (`--threads`, 32 connections, median of interleaved runs)",
        "",
        "Here the server and wrk share both cores (no pinning), as they would on a machine where "
        "the load comes from elsewhere and the server may use every core.",
        "",
        "| threads | req/s | p50 | p99 |",
        "|---|---|---|---|",
    ]
    for row in r["thread_sweep"]:
        lines.append(f"| {row['threads']} | {fmt_int(row['rps'])} | {ms(row['p50_ms'])} | "
                     f"{ms(row['p99_ms'])} |")
    lines += [
        "",
        "## Core verify (criterion, 1,000,000 keys)",
        "",
        "`cargo bench -p heare-auth-core --bench verify`: median time per call.",
        "",
        "| | ns |",
        "|---|---|",
        f"| valid secret | {r['core']['valid_ns']:.0f} |",
        f"| unknown secret (checksum right: checksum, SHA-256, lookup) | "
        f"{r['core']['invalid_ns']:.0f} |",
        *[f"| {label} | {r['core'][key]:.0f} |" for label, key in [
            ("unknown secret of the earlier `sec_0…` form (SHA-256, lookup)", "invalid_earlier_ns"),
            ("secret with a wrong checksum (refused before any lookup)", "bad_checksum_ns"),
        ] if key in r["core"]],
        f"| valid secret and the `/verify` body written | {r['core']['valid_with_body_ns']:.0f} |",
        "",
        "## Load time and memory",
        "",
        "Keys files as `heare-auth create` writes them (pretty JSON, hashed secrets, names, two "
        "metadata fields; `bench/keygen.py`). Load time: `KeySet::from_json` alone, median of 3 "
        "(`target/release/examples/load FILE`). RSS: the release server after loading, minus the "
        f"same server with an empty file ({r['load']['empty']['rss_kib'] / 1024:.1f} MiB); peak is "
        "the process's high-water mark (the file, the old set and the new set coexist while "
        "loading).",
        "",
        "| keys | file | load | RSS | peak RSS | bytes per key | of which metadata |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["load"]["rows"]:
        lines.append(f"| {fmt_int(row['keys'])} | {row['file_bytes'] / 2**20:.1f} MiB | "
                     f"{ms(row['load_ms'])} | {row['rss_kib'] / 1024:.1f} MiB | "
                     f"{row['hwm_kib'] / 1024:.1f} MiB | {row['bytes_per_key']:.0f} | "
                     f"{row['metadata_bytes_per_key']:.0f} |")
    lines += [
        "",
        "## The admin CLI (100,000 keys)",
        "",
        f"`heare-auth create --no-refresh` and `heare-auth list --json` on a copy of the "
        f"100,000-key file ({file_mb:.1f} MB), whole processes, median of {c['runs']} runs; "
        "peak RSS is the highest of the runs. The reference is Python's `json.load` of the same "
        "file, timed inside the interpreter (its start-up excluded).",
        "",
        "| | time | peak RSS |",
        "|---|---|---|",
        f"| Python `json.load` | {c['python_load_s']:.3f} s | "
        f"{c['python_rss_kib'] / 1024:.0f} MiB |",
        f"| `heare-auth create` | {c['create_s']:.3f} s | {c['create_rss_kib'] / 1024:.0f} MiB |",
        f"| `heare-auth list --json` | {c['list_s']:.3f} s | {c['list_rss_kib'] / 1024:.0f} MiB |",
        "",
        f"`heare-auth create` on a 10-key file: {c['create_10_keys_ms']:.1f} ms (median).",
        "",
        "## Refresh under load (100,000 keys)",
        "",
        f"wrk at 32 connections, {refresh['rounds']} rounds of {refresh['seconds']} s runs, "
        "each run alone paired with one while another client, every 100 ms, rewrites the keys "
        "file (alternately with and without one key) and POSTs `/refresh` on one keep-alive "
        "connection, waiting for each answer (each refresh re-reads, re-parses and re-indexes "
        "the file, then logs `keys_changed`); the p99 ratio is the median of the pairs' ratios, "
        "the other columns are from the runs with the median rate. As a control with no reload "
        "at all, one run while a client opens a new connection for `GET /health` every 100 ms. "
        "A reload of this file takes "
        f"{refresh['reload_quiet_s'] * 1000:.0f} ms on a quiet server (median of 5); under "
        f"full load it took {refresh['reload_under_load_s']['median']:.2f} s (median, at most "
        f"{refresh['reload_under_load_s']['max']:.2f} s), from the request to the answer.",
        "",
        "| | req/s | p50 | p99 | failed requests | side traffic |",
        "|---|---|---|---|---|---|",
        refresh_row("no reload", refresh["alone"], "none"),
        refresh_row("reload every 100 ms", refresh["reloading"],
            f"{refresh['reloads']} reloads in all ({refresh['failed_reloads']} failed), "
            f"{refresh['keys_changed_events']} `keys_changed` logged"),
        refresh_row("new connection every 100 ms (control)", refresh["churn"],
            f"{refresh['new_connections']['ok']} connections "
            f"({refresh['new_connections']['failed']} failed)"),
        "",
        *redis_section(r.get("redis")),
        *changes_section(r.get("changes"), r.get("changes_before")),
        *history_section(history),
        "## Start-up",
        "",
        "From `exec` of the release server with 100,000 keys to the first 200 from `/verify` (a "
        "client retrying every millisecond): "
        + ", ".join(ms(t) for t in r["startup"]["runs_ms"])
        + f"; median {ms(r['startup']['median_ms'])}.",
        "",
        *wasm_section(r["wasm"], sizes),
        "## Binaries",
        "",
        f"- `target/release/heare-auth-server`: {fmt_int(sizes['server_bytes'])} bytes; "
        f"`target/release/heare-auth`: {fmt_int(sizes['cli_bytes'])} bytes.",
    ]
    if static:
        lines.append(f"- static (musl) `heare-auth-server`: {fmt_int(static['server_bytes'])} "
                     f"bytes; `heare-auth`: {fmt_int(static['cli_bytes'])} bytes "
                     "(`make static`, see `deploy/README.md`).")
    if SOAK.exists():
        lines += soak_section(json.loads(SOAK.read_text()))
    notes = REPO / "bench" / "NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    (REPO / "BENCHMARKS.md").write_text("\n".join(lines) + "\n")
    (REPO / "bench" / "throughput.svg").write_text(chart(r["sweep"]))
    print("wrote BENCHMARKS.md and bench/throughput.svg")


if __name__ == "__main__":
    if sys.argv[1:] == ["--soak"]:
        update_soak_section()
    else:
        main()
