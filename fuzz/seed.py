#!/usr/bin/env python3
"""Regenerates the fuzz targets' seed corpus, fuzz/corpus/<target>/, from tests/vectors/.

Each seed is one input in the target's own format (see the `//!` of each fuzz_targets/*.rs):
fields apart by a NUL byte. Run it after changing a vector; its output is committed.
"""

import base64
import json
import re
import shutil
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "tests" / "vectors"
SEP = b"\0"


def load(name):
    return json.loads((VECTORS / name).read_text())


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def keys_files():
    """Every keys file of the vectors, loadable or not, encrypted ones excepted."""
    for suite in load("verify.json")["suites"]:
        if "file" in suite:
            yield slug(suite["name"]), json.dumps(suite["file"], indent=2, ensure_ascii=False)
        elif not suite["file_text"].startswith("HEARE_ENCRYPTED_V1:"):
            yield slug(suite["name"]), suite["file_text"]
    for name in ("requests.json", "auth.json"):
        yield slug(name), json.dumps(load(name)["file"], indent=2, ensure_ascii=False)


def encrypted_files():
    """A storage secret and a file: the Fernet vectors (right secret, wrong one), the encrypted
    suites, and plaintexts with an IV, a time and a position to encrypt them with."""
    for case in load("fernet.json")["cases"]:
        secret = case["storage_secret"].encode()
        for field in ("file_fixed_iv", "file_random_iv"):
            yield f"{slug(case['name'])}-{field}", secret + SEP + case[field].encode()
        yield f"{slug(case['name'])}-wrong-secret", b"nope" + SEP + case["file_fixed_iv"].encode()
        knobs = bytes.fromhex(case["iv_hex"]) + struct.pack(">QQ", case["time"], 7)
        yield f"{slug(case['name'])}-plaintext", secret + SEP + case["plaintext"].encode() + SEP + knobs
    for suite in load("verify.json")["suites"]:
        text = suite.get("file_text", "")
        if text.startswith("HEARE_ENCRYPTED_V1:"):
            secret = (suite.get("storage_secret") or "").encode()
            yield slug(suite["name"]), secret + SEP + text.encode()


def requests():
    """Flags (1: Content-Type, 2: Authorization, 4: X-API-Key, 8: query; then which `now`),
    the four header values and the body: every /verify and /auth vector."""
    for case in load("requests.json")["cases"]:
        if "body_base64" in case:
            body = base64.b64decode(case["body_base64"])
        else:
            body = case["body"].encode()
        body = body.ljust(case.get("pad_to", 0), b" ")
        ct = case["content_type"]
        flags = bytes([1 if ct is not None else 0, 0])
        fields = [flags, (ct or "").encode(), b"", b"", b"", body]
        yield "verify-" + slug(case["name"]), SEP.join(fields)
    for case in load("auth.json")["cases"]:
        values = [case["authorization"], case["x_api_key"], case["query"]]
        flags = sum(bit for bit, v in zip((2, 4, 8), values) if v is not None)
        fields = [bytes([flags, 0]), b""] + [(v or "").encode() for v in values] + [b""]
        yield "auth-" + slug(case["name"]), SEP.join(fields)


def timestamps():
    """Every timestamp in the keys-file vectors, and the forms the parser documents."""
    seen = set()
    for _, text in keys_files():
        for value in re.findall(r'"(?:expires_at|created_at|previous_expires_at)": "([^"]*)"', text):
            seen.add(value)
    seen.update([
        "2026-11-25T01:17:14.316985Z",
        "2026-11-25T01:17:14.316985+00:00",
        "2026-11-25 01:17:14.316985",
        "2026-11-25T03:17:14.316+02:00",
        "2026-11-25",
        " 1970-01-01 ",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "2016-12-31T23:59:60Z",
    ])
    for value in sorted(seen):
        yield slug(value) or "empty", value.encode()


def command_lines():
    """Command lines of every command, right and wrong."""
    lines = [
        ["create", "--name", "Billing service", "--scopes", "read,write", "--ttl", "90d"],
        ["create", "--name=Zoë", "--metadata", '{"team": "edge"}', "--expires-at", "2026-12-31"],
        ["create", "--name", "x", "--scopes=read", "--scopes", "keys:write", "--json"],
        ["create", "--name", "--json"],
        ["list", "--detailed", "--json"],
        ["show", "key_0VPq2bPUzK1nmBe4JtYvLdHt", "--json"],
        ["disable", "key_a", "--no-refresh"],
        ["enable", "key_a", "--json"],
        ["rotate", "key_a", "--grace", "60m"],
        ["delete", "-y", "key_a"],
        ["refresh", "--url", "http://localhost:8080/refresh"],
        ["doctor", "--json"],
        ["help", "create"],
        ["--help"],
        ["--version"],
        ["create", "--nme", "typo"],
        ["create", "--name", "x", "--rate-limit", "100/60s"],
        ["set-rate-limit", "key_a", "100/60s"],
        ["set-rate-limit", "key_a", "none", "--json"],
        ["update", "key_a", "--name", "Billing service", "--scopes", "read,write", "--json"],
        ["update", "key_a", "--metadata", '{"team": "edge"}', "--ttl", "90d", "--no-refresh"],
        ["update", "key_a", "--expires-at", "2026-12-31", "--no-expiry"],
        ["update", "key_a"],
        ["check", "keys.json", "--json"],
        ["migrate", "--hash-secrets", "--yes"],
        ["export", "--json"],
        ["import", "keys.json", "--yes"],
        ["identify", "--json"],
        ["identify", "sec_legacy_plain"],
        ["scan", ".", "--any-prefix", "--include-git", "--no-store", "--json"],
    ]
    for words in lines:
        yield slug(" ".join(words)), SEP.join(w.encode() for w in words)


def write(target, seeds):
    out = FUZZ / "corpus" / target
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name, data in seeds:
        data = data.encode() if isinstance(data, str) else data
        path = out / name
        n = 2
        while path.exists():
            path, n = out / f"{name}-{n}", n + 1
        path.write_bytes(data)
    print(f"{target}: {len(list(out.iterdir()))} seeds")


write("keys_file", keys_files())
write("encrypted_file", encrypted_files())
write("verify_request", requests())
write("timestamp", timestamps())
write("cli_args", command_lines())
