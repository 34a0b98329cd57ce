#!/usr/bin/env bash
# Installs the Python tools the tests use into .cache/venv, only when missing or when the pinned
# versions change: schemathesis (checks the server against openapi.yaml) and prometheus-client
# (its parser reads /metrics). Safe to run concurrently.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$repo/.cache/venv"
want="schemathesis==4.3.3 hypothesis==6.170.9 prometheus-client==0.23.1"
installed() { [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.installed" 2>/dev/null)" = "$want" ]; }
installed && exit 0
mkdir -p "$repo/.cache"
exec 9>"$repo/.cache/.python-tools.lock"
flock 9
installed && exit 0
echo "installing $want into $venv" >&2
python3 -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/pip" install --quiet --disable-pip-version-check $want
echo "$want" > "$venv/.installed"
