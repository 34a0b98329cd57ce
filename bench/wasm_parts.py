#!/usr/bin/env python3
"""What each part of the WebAssembly package costs, in bytes and in bytes gzipped (`gzip -9`).

usage: bench/wasm_parts.py NAMED_WASM [--json]

NAMED_WASM is the package built with its function names kept (`make wasm-size` builds it into
target/wasm-named/ and runs this). Each function goes to a part by its name (the crate, or what it
does: float formatting, panics); a function whose name says nothing (a generic helper of std) goes
to the part of the nearest function that dominates it in the call graph, that is, the one through
which every call to it passes, as twiggy counts retained sizes. The data segment is split into the
file names that panic locations carry and the rest; the other sections are the module's structure.
A part's gzipped cost is what leaving its bytes out saves: gzip -9 of the package without the names,
less gzip -9 of the same bytes without that part. So the rows do not add up to the total exactly.
"""
import json
import re
import subprocess
import sys

PARTS = [
    ("Fernet decryption (aes, cbc, hmac, base64)",
     r"\baes::|\bcbc::|\bcipher::|\bhmac::|block_padding::|\bbase64::|heare_auth_core::encryption|"
     r"\bsubtle::|digest::mac::|as digest::mac::Mac>|crypto_common::KeyInit"),
    ("SHA-256 (sha2)", r"\bsha2::|\bdigest::|block_buffer::|generic_array::"),
    ("timestamps (time)", r"\btime::|\btime_core::|num_conv::|heare_auth_core::timestamp"),
    ("JSON (serde, serde_json)", r"serde|\bzmij::|\bmemchr::"),
    ("float formatting (f64 Display)",
     r"flt2dec|core::fmt::float|core::num::bignum|diy_float|<f64 as core::fmt"),
    ("allocator", r"\btalc::|dlmalloc|allocator_api2|__rdl_|__rust_(re|de)?alloc"),
    ("heare-auth-core's own code", r"heare_auth_core::"),
    ("the wasm crate's exports and wasm-bindgen's glue",
     r"wasm_bindgen|js_sys::|heare_auth_wasm::|externref|__wbindgen|__wbg|^[a-z][A-Za-z]*(_[A-Za-z]+)?$"),
    ("hash tables (hashbrown, SipHash)", r"hashbrown::|core::hash::"),
    ("formatting and panics (core::fmt, Debug, std::panicking)",
     r"core::fmt|alloc::fmt|panick|panic_|as core::fmt::(Display|Debug)>|escape|core::unicode|"
     r"core::str::count|slice_error_fail|slice_index_fail|unwrap_failed"),
    ("compiler builtins (128-bit arithmetic, fmod)", r"compiler_builtins|^__|^fmod$"),
]
REST = "the rest of std (strings, vectors, iterators)"
FILE_NAMES = "data: file names of panic locations"
DATA = "data: the rest (messages, tables)"
STRUCTURE = "module structure (types, imports, exports, tables)"
# A source file's name as a panic location carries it: `/rustc/<hash>/library/core/src/fmt/mod.rs`,
# `/home/ci/.cargo/registry/src/<index>/time-0.3.55/src/date.rs`, `core/src/keyset/mod.rs`.
FILE_NAME = re.compile(rb"[A-Za-z0-9_./-]*/[A-Za-z0-9_./-]*\.rs")


def leb(b, i):
    value = shift = 0
    while True:
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def skip_leb(b, i):
    while b[i] & 0x80:
        i += 1
    return i + 1


def text(b, i):
    n, i = leb(b, i)
    return b[i:i + n].decode("utf-8", "replace"), i + n


def sections(b):
    """(id, custom section name or None, start, payload start, end) of each section."""
    out, i = [], 8
    while i < len(b):
        start, sid = i, b[i]
        size, i = leb(b, i + 1)
        out.append((sid, text(b, i)[0] if sid == 0 else None, start, i, i + size))
        i += size
    return out


def imported_functions(b, i):
    n, i = leb(b, i)
    count = 0
    for _ in range(n):
        _, i = text(b, i)
        _, i = text(b, i)
        kind, i = b[i], i + 1
        if kind == 0:
            i = skip_leb(b, i)
            count += 1
        elif kind in (1, 2):  # a table (reference type, limits) or a memory (limits)
            i += kind == 1
            flags, i = b[i], i + 1
            i = skip_leb(b, i)
            if flags & 1:
                i = skip_leb(b, i)
        elif kind == 3:
            i += 2
        else:
            i = skip_leb(b, i + 1)
    return count


def function_names(b, i, end):
    _, i = text(b, i)
    names = {}
    while i < end:
        sub = b[i]
        size, i = leb(b, i + 1)
        if sub == 1:
            n, j = leb(b, i)
            for _ in range(n):
                index, j = leb(b, j)
                names[index], j = text(b, j)
        i += size
    return names


def bodies(b, i):
    """(start of the entry, start of the body, end) of each function of the code section."""
    n, i = leb(b, i)
    out = []
    for _ in range(n):
        size, j = leb(b, i)
        out.append((i, j, j + size))
        i = j + size
    return out


def skip_expr(b, i):
    while b[i] != 0x0B:
        op, i = b[i], i + 1
        if op in (0x23, 0x41, 0x42, 0xD2):
            i = skip_leb(b, i)
        elif op == 0xD0:
            i += 1
    return i + 1


def callees(b, i, end):
    """The functions a body calls or takes a reference to."""
    n, i = leb(b, i)
    for _ in range(n):
        i = skip_leb(b, i) + 1
    out = set()
    while i < end:
        op, i = b[i], i + 1
        if op in (0x02, 0x03, 0x04):
            i = i + 1 if b[i] == 0x40 or b[i] >= 0x6B else skip_leb(b, i)
        elif op in (0x10, 0x12, 0xD2):
            f, i = leb(b, i)
            out.add(f)
        elif op in (0x0C, 0x0D, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x41, 0x42):
            i = skip_leb(b, i)
        elif op == 0x0E:
            n, i = leb(b, i)
            for _ in range(n + 1):
                i = skip_leb(b, i)
        elif op in (0x11, 0x13):
            i = skip_leb(b, skip_leb(b, i))
        elif op == 0x1C:
            n, i = leb(b, i)
            i += n
        elif 0x28 <= op <= 0x3E:
            align, i = leb(b, i)
            if align & 0x40:
                i = skip_leb(b, i)
            i = skip_leb(b, i)
        elif op in (0x3F, 0x40, 0xD0):
            i += 1
        elif op == 0x43:
            i += 4
        elif op == 0x44:
            i += 8
        elif op == 0xFC:
            sub, i = leb(b, i)
            if sub in (8, 10, 12, 14):
                i = skip_leb(b, skip_leb(b, i))
            elif sub in (9, 11, 13, 15, 16, 17):
                i = skip_leb(b, i)
        elif not (op in (0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B, 0xD1) or 0x45 <= op <= 0xC4):
            raise ValueError(f"opcode {op:#x} at byte {i - 1} is not one this script reads")
    return out


def roots(b, export, elem):
    """The exported functions and those an element segment puts in a table (called indirectly)."""
    out = set()
    n, i = leb(b, export[3])
    for _ in range(n):
        _, i = text(b, i)
        kind = b[i]
        index, i = leb(b, i + 1)
        if kind == 0:
            out.add(index)
    if elem:
        n, i = leb(b, elem[3])
        for _ in range(n):
            flags, i = leb(b, i)
            if flags & 3 == 2:
                i = skip_leb(b, i)
            if not flags & 1:
                i = skip_expr(b, i)
            if flags & 3:
                i += 1
            count, i = leb(b, i)
            for _ in range(count):
                if flags & 4:
                    if b[i] == 0xD2:
                        out.add(leb(b, i + 1)[0])
                    i = skip_expr(b, i)
                else:
                    index, i = leb(b, i)
                    out.add(index)
    return out


def dominators(succ, root):
    """The immediate dominator of each node reachable from root (Cooper, Harvey and Kennedy)."""
    order, seen, stack = [], {root}, [(root, iter(succ.get(root, ())))]
    while stack:
        node, it = stack[-1]
        nxt = next((s for s in it if s not in seen), None)
        if nxt is None:
            order.append(node)
            stack.pop()
        else:
            seen.add(nxt)
            stack.append((nxt, iter(succ.get(nxt, ()))))
    order.reverse()
    rank = {n: k for k, n in enumerate(order)}
    preds = {n: [] for n in order}
    for n in order:
        for s in succ.get(n, ()):
            preds[s].append(n)
    idom = {root: root}
    changed = True
    while changed:
        changed = False
        for n in order[1:]:
            done = [p for p in preds[n] if p in idom]
            new = done[0]
            for p in done[1:]:
                a, c = p, new
                while a != c:
                    while rank[a] > rank[c]:
                        a = idom[a]
                    while rank[c] > rank[a]:
                        c = idom[c]
                new = a
            if idom.get(n) != new:
                idom[n], changed = new, True
    return idom


def part_of_name(name):
    name = re.sub(r"\[[0-9a-f]{16}\]", "", name)
    return next((part for part, rule in PARTS if re.search(rule, name)), None)


def gzipped(data):
    return len(subprocess.run(["gzip", "-9n"], input=data, capture_output=True, check=True).stdout)


def measure(b):
    """The package's bytes and gzipped bytes, and each part's, measured on NAMED_WASM's bytes."""
    secs = sections(b)
    by_id = {}
    for s in secs:
        if s[0]:
            by_id.setdefault(s[0], s)
    names_section = next((s for s in secs if s[1] == "name"), None)
    if names_section is None:
        raise SystemExit("the module has no name section: build it with its names kept")
    names = function_names(b, names_section[3], names_section[4])
    first = imported_functions(b, by_id[2][3]) if 2 in by_id else 0
    entries = bodies(b, by_id[10][3])
    succ = {first + k: callees(b, body, end) for k, (_, body, end) in enumerate(entries)}
    succ[-1] = roots(b, by_id[7], by_id.get(9))
    idom = dominators(succ, -1)

    def part(f):
        node = f
        while node in idom and node != -1:
            found = part_of_name(names.get(node, ""))
            if found:
                return found
            node = idom[node]
        return REST

    # The package is NAMED_WASM without its name and producers sections; cut it down alike.
    kept = [s for s in secs if s[1] not in ("name", "producers")]
    package = b[:8] + b"".join(b[s[2]:s[4]] for s in kept)
    shift, offset = {}, 8
    for s in kept:
        shift[s[2]] = offset - s[2]
        offset += s[4] - s[2]

    def moved(start, end, section):
        return start + shift[section[2]], end + shift[section[2]]

    ranges = {}
    for k, (start, _, end) in enumerate(entries):
        ranges.setdefault(part(first + k), []).append(moved(start, end, by_id[10]))
    if 11 in by_id:
        data = by_id[11]
        files = [moved(m.start(), m.end(), data)
                 for m in FILE_NAME.finditer(b, data[3], data[4]) if m.end() - m.start() >= 6]
        ranges[FILE_NAMES] = files
        ranges[DATA] = gaps(moved(data[2], data[4], data), files)
    ranges[STRUCTURE] = [moved(s[2], s[4], s) for s in kept if s[0] not in (10, 11)]
    ranges[STRUCTURE].append((0, 8))

    total = gzipped(package)
    parts = []
    for name, spans in ranges.items():
        size = sum(end - start for start, end in spans)
        parts.append({"part": name, "bytes": size, "gzip_bytes": total - gzipped(cut(package, spans))})
    parts.sort(key=lambda p: -p["gzip_bytes"])
    return {"bytes": len(package), "gzip_bytes": total, "functions": len(entries), "parts": parts}


def gaps(span, holes):
    """The pieces of span outside the sorted holes."""
    out, at = [], span[0]
    for start, end in holes:
        if start > at:
            out.append((at, start))
        at = max(at, end)
    if span[1] > at:
        out.append((at, span[1]))
    return out


def cut(data, spans):
    out, at = [], 0
    for start, end in sorted(spans):
        out.append(data[at:start])
        at = end
    out.append(data[at:])
    return b"".join(out)


def table(result):
    lines = ["| part | bytes | gzipped |", "|---|---|---|"]
    for p in result["parts"]:
        lines.append(f"| {p['part']} | {p['bytes']:,} | {p['gzip_bytes']:,} |")
    lines.append(f"| the package | {result['bytes']:,} | {result['gzip_bytes']:,} |")
    return "\n".join(lines)


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    if len(args) != 1:
        raise SystemExit(__doc__)
    with open(args[0], "rb") as f:
        result = measure(f.read())
    print(json.dumps(result, indent=2) if "--json" in sys.argv else table(result))


if __name__ == "__main__":
    main()
