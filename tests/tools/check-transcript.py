#!/usr/bin/env python3
"""Searches the transcript of a test run for secrets: everything the server and the CLI printed
(logs, stdout, stderr), every HTTP answer and /metrics scrape the tests read, against every secret
the suite created (`create`, `rotate`) or presented (`sec_...` keys sent to /verify). A secret may
appear only in the output of the `create` or `rotate` that issued it.

usage: check-transcript.py DIR   (DIR: HEARE_AUTH_TRANSCRIPT of the test run)
"""
import re
import sys
from pathlib import Path

# Fewer than this many issued secrets means the transcript was not recorded as it should be.
MIN_ISSUED = 20


def main(directory):
    root = Path(directory)
    if not root.is_dir():
        sys.exit(f"check-transcript: {root} does not exist: run the tests with "
                 "HEARE_AUTH_TRANSCRIPT set (make test does)")
    issuer = {}  # secret -> the file allowed to show it ("-": none)
    for notes in sorted(root.glob("secrets-*.txt")):
        for line in notes.read_text().splitlines():
            secret, allowed = line.split("\t")
            if issuer.get(secret, "-") == "-":
                issuer[secret] = allowed
    issued = sum(1 for allowed in issuer.values() if allowed != "-")
    files = [p for p in sorted(root.iterdir()) if not p.name.startswith("secrets-")]
    kinds = {p.name.split("-")[0] for p in files}
    missing = {"server", "cli", "http", "metrics"} - kinds
    if issued < MIN_ISSUED or missing:
        sys.exit(f"check-transcript: only {issued} issued secrets, and no {sorted(missing)} "
                 f"output in {root}: the transcript is incomplete")

    # One pass per file over a pattern of every secret, longest first.
    pattern = re.compile("|".join(re.escape(s) for s in sorted(issuer, key=len, reverse=True)))
    leaks = []
    size = 0
    for path in files:
        text = path.read_text(errors="replace")
        size += len(text)
        for match in pattern.finditer(text):
            secret = match.group(0)
            if issuer[secret] != path.name:
                line = text.count("\n", 0, match.start()) + 1
                leaks.append(f"{path.name}:{line}: a secret ({secret[:9]}…, issued in "
                             f"{issuer[secret]}) appears here")
    print(f"check-transcript: {len(issuer)} secrets ({issued} issued by create/rotate) searched "
          f"for in {len(files)} files ({size / 1e6:.1f} MB of logs, CLI output, HTTP answers "
          f"and /metrics): {len(leaks)} leaks")
    for leak in leaks[:50]:
        print(f"  {leak}")
    return 1 if leaks else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
