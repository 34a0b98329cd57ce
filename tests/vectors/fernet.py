#!/usr/bin/env python3
"""Writes tests/vectors/fernet.json: encrypted keys files made by Python's `cryptography` Fernet,
exactly as the original heare-auth encrypted them (HEARE_ENCRYPTED_V1: + Fernet token, key =
urlsafe_b64encode(sha256(STORAGE_SECRET))). Fixed-IV cases must be reproduced byte for byte by the
Rust encoder; random-IV cases must be decrypted by it. Run: python3 tests/vectors/fernet.py"""

import base64
import hashlib
import json
import os
import sys

from cryptography.fernet import Fernet

PREFIX = b"HEARE_ENCRYPTED_V1:"


def fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


PLAINTEXTS = [
    ("empty keys", "s3cret", json.dumps({"keys": []}, indent=2)),
    (
        "legacy file",
        "correct horse battery staple",
        json.dumps(
            {
                "keys": [
                    {
                        "id": "key_0VPq2bPUzK1nmBe4JtYvLdHt",
                        "secret": "sec_0VPq2bPUnvQHkq0wC8XP0Mt1LrX2H4ZyHfRtfLZ9xQhAF7dkcJfBXy3Wq1cDmz",
                        "name": "Legacy service",
                        "created_at": "2025-03-01T10:11:12.131415Z",
                        "metadata": {"team": "payments"},
                    }
                ]
            },
            indent=2,
        ),
    ),
    ("unicode secret and 16-byte block", "pässwörd ✓", "0123456789abcdef"),
]


def main() -> None:
    cases = []
    for i, (name, secret, plaintext) in enumerate(PLAINTEXTS):
        f = fernet(secret)
        iv = bytes(range(i * 16, i * 16 + 16))
        when = 1_795_569_434 + i
        fixed = PREFIX + f._encrypt_from_parts(plaintext.encode(), when, iv)
        rnd = PREFIX + f.encrypt(plaintext.encode())
        for token in (fixed, rnd):
            assert f.decrypt(token[len(PREFIX):]) == plaintext.encode()
        cases.append(
            {
                "name": name,
                "storage_secret": secret,
                "plaintext": plaintext,
                "iv_hex": iv.hex(),
                "time": when,
                "file_fixed_iv": fixed.decode(),
                "file_random_iv": rnd.decode(),
            }
        )
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fernet.json")
    with open(out, "w") as fh:
        json.dump({"generator": "python cryptography " + __import__("cryptography").__version__, "cases": cases}, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    print(f"wrote {len(cases)} cases to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
