#!/usr/bin/env python3
"""Writes a keys file of N keys, as `heare-auth create` writes them (hashed secrets of the
checksummed format, realistic ids, names and small metadata), and the secrets of a few of them for
the load generators.

usage: keygen.py N KEYS_FILE SECRETS_FILE [--seed S]
"""
import hashlib
import json
import random
import sys
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TEAMS = ["payments", "search", "identity", "mobile", "data-platform", "billing", "growth", "infra"]
SERVICES = ["API gateway", "Billing worker", "Mobile app", "Partner sync", "Reporting job",
            "Search indexer", "Webhook relay", "Admin console"]
CREATED_MS = 1_795_570_034_316  # 2026-11-25T01:27:14.316Z


def base62(n, width):
    out = ""
    for _ in range(width):
        n, digit = divmod(n, 62)
        out = ALPHABET[digit] + out
    return out


def secret_of(random_part):
    """`sec_1`, the creation time, 43 random characters and the CRC32 of all that: the format
    of core/src/format.rs."""
    body = "sec_1" + base62(CREATED_MS, 8) + random_part
    return body + base62(zlib.crc32(body.encode()), 6)


def main():
    n, keys_path, secrets_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    token = lambda k: "".join(rng.choices(ALPHABET, k=k))
    keys, sample = [], []
    for i in range(n):
        secret = secret_of(token(43))
        keys.append({
            "id": "key_0" + base62(CREATED_MS, 8) + token(16),
            "secret_hash": hashlib.sha256(secret.encode()).hexdigest(),
            "name": f"{rng.choice(SERVICES)} {i}",
            "created_at": "2026-11-25T01:27:14.316985Z",
            "expires_at": None,
            "metadata": {"team": rng.choice(TEAMS), "env": rng.choice(["prod", "staging"])},
        })
        if i % max(1, n // 100) == 0:
            sample.append(secret)
    with open(keys_path, "w") as f:
        json.dump({"keys": keys}, f, indent=2)
    with open(secrets_path, "w") as f:
        f.write("\n".join(sample) + "\n")


if __name__ == "__main__":
    main()
